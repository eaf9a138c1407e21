//! A name-bound echo service over SEQPACKET connections: binds service
//! `--service`:`--instance`, accepts every client on a thread of its own
//! and sends each message back until the client ends the connection (see
//! `echo_client`). Runs next to Linux TIPC servers and clients alike.
//!
//! ```text
//! sudo cargo run --release --example echo_server -- --iface eth0
//! ```

use std::time::Duration;

use clap::Parser;
use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, Error, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "SEQPACKET echo server bound to a service name")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    #[command(flatten)]
    name: common::ServiceArgs,
    /// Stop after this many seconds (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("echo_server");
    let listener = stack.conn_socket(ConnKind::Seqpacket).expect("socket");
    let name = ServiceRange::single(ServiceType(a.name.service), Instance(a.name.instance));
    if let Err(e) = listener.bind(name, Scope::Cluster).and_then(|()| listener.listen()) {
        eprintln!("echo_server: {}", e.with_errno());
        std::process::exit(1);
    }
    println!("echo_server listening on {}:{} at {}", a.name.service, a.name.instance, listener.id());
    common::node_signals(&stack, || {});
    let end = (a.seconds > 0).then(|| std::time::Instant::now() + Duration::from_secs(a.seconds));
    while end.is_none_or(|e| std::time::Instant::now() < e) {
        let (conn, peer) = match listener.accept_timeout(Duration::from_millis(200)) {
            Ok(c) => c,
            Err(Error::Timeout) => continue,
            Err(e) => {
                eprintln!("echo_server: accept: {e}");
                break;
            }
        };
        println!("connection from {peer}");
        std::thread::spawn(move || {
            let mut n = 0u64;
            let why = loop {
                match conn.recv() {
                    Ok(Some(m)) => {
                        n += 1;
                        if let Err(e) = conn.send(m) {
                            break format!("send: {e}");
                        }
                    }
                    Ok(None) => break "closed by the client".to_string(),
                    Err(e) => break e.to_string(),
                }
            };
            println!("connection from {peer} ended after {n} messages: {why}");
        });
    }
    drop(listener);
    stack.close();
}
