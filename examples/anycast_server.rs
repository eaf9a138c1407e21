//! A load-balanced request/response service on a TIPC group: every server
//! joins as instance 1; clients anycast requests to instance 1 and each
//! request reaches one server, round robin (see `anycast_client`).
//!
//! ```text
//! sudo cargo run --release --example anycast_server -- --iface eth0 --name srv-a
//! ```

use std::time::Duration;

use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Anycast request/response server (answers every request)")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Server name put in every reply.
    #[arg(long, default_value = "server")]
    name: String,
    /// Group id.
    #[arg(long, default_value_t = 4800)]
    group: u32,
    /// Stop after this many seconds (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("anycast_server");
    let sock = stack.group_socket().expect("socket");
    let spec = GroupSpec {
        stype: ServiceType(a.group),
        instance: Instance(1),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    };
    sock.join(spec).expect("join");
    println!("{} serving group {} instance 1 at {}", a.name, a.group, sock.id());
    common::node_signals(&stack, || {});
    let end = (a.seconds > 0).then(|| std::time::Instant::now() + Duration::from_secs(a.seconds));
    let mut served = 0u64;
    while end.is_none_or(|e| std::time::Instant::now() < e) {
        if let Ok(GroupEvent::Message { from, data, .. }) = sock.recv_timeout(Duration::from_millis(100)) {
            let reply = format!("{} answers {}", a.name, String::from_utf8_lossy(&data));
            if let Err(e) = sock.send_unicast(from, reply.into()) {
                eprintln!("reply to {from}: {e}");
            }
            served += 1;
        }
    }
    println!("{} served {served} requests", a.name);
    drop(sock);
    stack.close();
    eprintln!("{}", stack.stats());
}
