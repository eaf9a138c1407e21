//! The workload `tools/instructions` counts instructions of (under
//! `valgrind --tool=callgrind`): two nodes over UDP on loopback in this
//! one process, group members on each, and `N` group messages in one of
//! three modes. Instruction counts repeat from run to run whatever else
//! the machine does, so they show what a change to the per-message path
//! costs or saves where times are noise. Run alone it just runs.
//!
//! `instructions MODE N`: `pingpong` (64-byte unicast round trips, N of
//! them), `unicast` (N 1 KiB unicasts one way) or `broadcast` (N 1 KiB
//! broadcasts to the one other member). Needs no privileges. Without
//! them (a plain `cargo bench`) it runs each workload briefly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match (args.first(), args.get(1).and_then(|n| n.parse::<usize>().ok())) {
        (Some(m), Some(n)) if MODES.contains(&m.as_str()) => run(m, n),
        // a plain `cargo bench` (or one with other benches' options): the
        // workload once, briefly, so it is known to run
        _ => {
            for m in MODES {
                run(m, 1000);
            }
            println!("instructions: ran each workload 1000 times; the counts come from tools/instructions");
        }
    }
}

/// The workloads.
const MODES: [&str; 3] = ["pingpong", "unicast", "broadcast"];

/// `n` messages of `mode` between two fresh nodes.
fn run(mode: &str, n: usize) {
    let at = |ip: &str| -> std::net::SocketAddr { format!("{ip}:6118").parse().expect("address") };
    let (a, b) = ("127.79.99.1", "127.79.99.2");
    let stacks = [
        Stack::builder().udp(at(a)).udp_peer(at(b)).start().expect("node a"),
        Stack::builder().udp(at(b)).udp_peer(at(a)).start().expect("node b"),
    ];
    for s in &stacks {
        s.wait_for_nodes(1, Duration::from_secs(60)).expect("the nodes link");
    }
    let g: Vec<GroupSocket> = stacks.iter().map(|s| s.group_socket().expect("socket")).collect();
    for (i, s) in g.iter().enumerate() {
        let spec = GroupSpec {
            stype: ServiceType(4711),
            instance: Instance(i as u32 + 1),
            scope: Scope::Cluster,
            loopback: false,
            member_events: true,
        };
        s.join(spec).expect("join");
    }
    while g.iter().any(|s| s.members().is_empty()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (from, to) = (g[0].id(), g[1].id());
    let g = Arc::new(g);
    let other = g.clone();
    let size = if mode == "pingpong" { 64 } else { 1024 };
    let msg = Bytes::from(vec![7u8; size]);
    // node b's member: echoes (pingpong) or reads (the others)
    let echo = mode == "pingpong";
    let peer = std::thread::spawn(move || {
        for _ in 0..n {
            let data = next_message(&other[1]);
            if echo {
                other[1].send_unicast(from, data).expect("echo");
            }
        }
    });
    for _ in 0..n {
        match size {
            64 => {
                g[0].send_unicast(to, msg.clone()).expect("send");
                next_message(&g[0]);
            }
            _ if mode == "unicast" => g[0].send_unicast(to, msg.clone()).expect("send"),
            _ => g[0].broadcast(msg.clone()).expect("broadcast"),
        }
    }
    peer.join().expect("the peer member");
}

/// The next message `s` receives (member events pass).
fn next_message(s: &GroupSocket) -> Bytes {
    loop {
        if let GroupEvent::Message { data, .. } = s.recv().expect("receive") {
            return data;
        }
    }
}
