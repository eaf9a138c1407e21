//! Client of `anycast_server`: anycasts numbered requests to instance 1 of
//! the group and prints which server answered each, and the round-trip time.
//!
//! ```text
//! sudo cargo run --release --example anycast_client -- --iface eth0 --requests 10
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Anycast request/response client")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Group id.
    #[arg(long, default_value_t = 4800)]
    group: u32,
    /// Number of requests.
    #[arg(long, default_value_t = 10)]
    requests: u64,
    /// How many servers to wait for before starting.
    #[arg(long, default_value_t = 1)]
    servers: usize,
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("anycast_client");
    let sock = stack.group_socket().expect("socket");
    let spec = GroupSpec {
        stype: ServiceType(a.group),
        instance: Instance(2),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    };
    sock.join(spec).expect("join");
    common::node_signals(&stack, || {});
    let t0 = Instant::now();
    while sock.members().iter().filter(|(_, i)| *i == Instance(1)).count() < a.servers {
        if t0.elapsed() > Duration::from_secs(15) {
            eprintln!("anycast_client: fewer than {} servers found", a.servers);
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = false;
    for i in 0..a.requests {
        let t = Instant::now();
        if let Err(e) = sock.send_anycast(Instance(1), format!("request {i}").into()) {
            eprintln!("request {i}: {e}");
            failed = true;
            break;
        }
        loop {
            match sock.recv_timeout(Duration::from_secs(5)) {
                Ok(GroupEvent::Message { data, .. }) => {
                    let text = String::from_utf8_lossy(&data).to_string();
                    println!("{text} ({:.0} us)", t.elapsed().as_secs_f64() * 1e6);
                    *by.entry(text.split(' ').next().unwrap_or("?").to_string()).or_default() += 1;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("request {i}: no answer: {e}");
                    failed = true;
                    break;
                }
            }
        }
    }
    println!("answers per server: {by:?}");
    drop(sock);
    stack.close();
    eprintln!("{}", stack.stats());
    std::process::exit(i32::from(failed));
}
