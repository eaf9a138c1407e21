//! The client of `echo_server` (or of any SEQPACKET echo service, a Linux
//! one included): connects by service name, sends `--requests` messages of
//! `--size` bytes one at a time, checks each answer and prints the round
//! trip times.
//!
//! ```text
//! sudo cargo run --release --example echo_client -- --iface eth0 --requests 100
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{ConnKind, Error};

mod common;

#[derive(Parser, Debug)]
#[command(about = "SEQPACKET echo client: requests by service name, answers checked")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    #[command(flatten)]
    name: common::ServiceArgs,
    /// How many requests.
    #[arg(long, default_value_t = 10)]
    requests: u64,
    /// Bytes per request (1 to 66000).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=66_000))]
    size: u32,
    /// How long to wait for the service to appear, in seconds.
    #[arg(long, default_value_t = 10)]
    wait: u64,
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("echo_client");
    let fail = |what: &str, e: Error| -> ! {
        eprintln!("echo_client: {what}: {}", e.with_errno());
        std::process::exit(1)
    };
    // the service may not be known yet: a fresh node learns names from its
    // peers as links come up
    let end = Instant::now() + Duration::from_secs(a.wait);
    let conn = loop {
        let c = stack.conn_socket(ConnKind::Seqpacket).unwrap_or_else(|e| fail("socket", e));
        match c.connect(ServiceType(a.name.service), Instance(a.name.instance)) {
            Ok(()) => break c,
            Err(Error::NoService(..) | Error::ConnRefused(_)) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => fail("connect", e),
        }
    };
    println!("connected to {}", conn.peer().map_or_else(|| "?".into(), |p| p.to_string()));
    let mut rtts = Vec::new();
    for i in 0..a.requests {
        let msg: Bytes = (0..a.size).map(|k| (k as u64 + i) as u8).collect::<Vec<u8>>().into();
        let t = Instant::now();
        conn.send(msg.clone()).unwrap_or_else(|e| fail("send", e));
        match conn.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(back)) if back == msg => rtts.push(t.elapsed()),
            Ok(Some(_)) => fail("answer", Error::ConnClosed),
            Ok(None) => fail("answer", Error::ConnClosed),
            Err(e) => fail("answer", e),
        }
    }
    rtts.sort();
    let med = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
    println!("{} answers of {} bytes checked; median round trip {med:?}", rtts.len(), a.size);
    let _ = conn.shutdown();
    drop(conn);
    stack.close();
}
