//! Chat over a TIPC communication group on a real LAN: every line typed is
//! broadcast to the group; joins, leaves and messages of others are shown.
//! Works with kernel TIPC nodes (`tipcmsg -e join:4711:N ... bcast:TEXT`).
//!
//! ```text
//! sudo cargo run --release --example group_chat -- --iface eth0 --member 7
//! ```
//! `kill -USR1 <pid>` prints link, member and name-table statistics; they
//! are printed at exit too (to stderr).

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Scope};

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
    let usr1 = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, stop2) = (sock.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            match s2.recv_timeout(Duration::from_millis(100)) {
                Ok(GroupEvent::MemberUp { member, instance }) => println!("* member {} ({member}) joined", instance.0),
                Ok(GroupEvent::MemberDown { member, instance }) => println!("* member {} ({member}) left", instance.0),
                Ok(GroupEvent::Message { from, instance, data, .. }) => {
                    println!("<{} {from}> {}", instance.0, String::from_utf8_lossy(&data).trim_end())
                }
                _ => {}
            }
        }
    });
    let stats_stack = &stack;
    let watcher = {
        let usr1 = usr1.clone();
        let stop = stop.clone();
        move || {
            if usr1.swap(false, Ordering::Relaxed) {
                eprintln!("{}", stats_stack.stats());
            }
            !stop.load(Ordering::Relaxed)
        }
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let _ = watcher();
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
    eprintln!("{}", stack.stats());
    drop(sock);
    stack.shutdown();
}
