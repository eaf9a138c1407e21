//! Chat over a TIPC communication group on a real LAN: every line typed is
//! broadcast to the group; joins, leaves and messages of others are shown.
//! Works with kernel TIPC nodes (`tipcmsg -e join:4711:N ... bcast:TEXT`).
//!
//! ```text
//! sudo cargo run --release --example group_chat -- --iface eth0 --member 7
//! ```
//! `kill -USR1 <pid>` prints link, member and name-table statistics at
//! once (to stderr); Ctrl-C, SIGTERM or the end of input leave the group
//! (the others see this member leave at once), print them and exit 0.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{Error, GroupEvent, GroupSpec, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Chat over a TIPC communication group")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Group id (service type).
    #[arg(long, default_value_t = 4711)]
    group: u32,
    /// Our member id (instance).
    #[arg(long, default_value_t = 1)]
    member: u32,
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("group_chat");
    let me = stack.address().unwrap_or_default();
    let _ = stack.wait_for_nodes(1, Duration::from_secs(5));
    let sock = Arc::new(stack.group_socket().expect("socket"));
    sock.join(GroupSpec {
        stype: ServiceType(a.group),
        instance: Instance(a.member),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    })
    .unwrap_or_else(|e| {
        eprintln!("group_chat: join: {e}");
        std::process::exit(1)
    });
    println!("* joined group {} as member {} ({me}:{}); type lines to broadcast", a.group, a.member, sock.id().port.0);
    common::node_signals(&stack, || {});
    let (s2, stop2) = (sock.clone(), Arc::new(AtomicBool::new(false)));
    let stop = stop2.clone();
    let reader = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            match s2.recv_timeout(Duration::from_millis(100)) {
                Ok(GroupEvent::MemberUp { member, instance }) => println!("* member {} ({member}) joined", instance.0),
                Ok(GroupEvent::MemberDown { member, instance }) => println!("* member {} ({member}) left", instance.0),
                Ok(GroupEvent::Message { from, instance, data, .. }) => {
                    println!("<{} {from}> {}", instance.0, String::from_utf8_lossy(&data).trim_end())
                }
                Ok(GroupEvent::Unblocked) | Err(Error::Timeout) => {}
                Err(_) => return, // the node was closed
            }
        }
    });
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Err(e) = sock.broadcast(Bytes::from(line)) {
            eprintln!("send: {e}");
        }
    }
    // stdin closed: let the last messages arrive, then leave
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let _ = sock.leave();
    stack.close();
    eprintln!("{}", stack.stats());
}
