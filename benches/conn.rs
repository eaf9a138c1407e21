//! Connection performance over veth (`cargo bench --bench conn`, as root):
//! SEQPACKET round trip of 64 B messages and STREAM goodput, each as a
//! ratio to raw AF_PACKET (the repository's `rawlimit` probe) and to the
//! kernel's TCP over the same veth, all measured in the same sitting and
//! the same CPU placement: RTTs with both sides on CPU 0, streams with the
//! sender on CPU 0 and the receiver on CPU 1.
//! Options: `--runs N` (3), `--secs S` (2), `--n N` (20000 round trips).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::wire::{Instance, NodeId, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::pin_to_cpu;

const SVC: ServiceType = BENCH_SVC;
const PIECE: usize = 65_536;

fn start(ns: &Netns, name: &str) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        pin_to_cpu(0).expect("pin");
        Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id")).start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

/// STREAM goodput (bytes/s): 64 KiB writes for `secs` on CPU 0, a reader
/// on CPU 1; the time runs until the reader has the last byte.
fn tipc_stream(a: &Stack, b: &Stack, inst: u32, secs: u64) -> f64 {
    let l = b.conn_socket(ConnKind::Stream).expect("socket");
    l.bind(ServiceRange::single(SVC, Instance(inst)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let reader = std::thread::spawn(move || {
        pin_to_cpu(1).expect("pin");
        let (c, _) = l.accept_timeout(Duration::from_secs(10)).expect("accept");
        let mut buf = vec![0u8; PIECE];
        let mut got = 0u64;
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        (got, Instant::now())
    });
    let c = connect(a, ConnKind::Stream, inst);
    let piece = Bytes::from(vec![1u8; PIECE]);
    let (t0, sent) = std::thread::scope(|s| {
        s.spawn(|| {
            pin_to_cpu(0).expect("pin");
            let t0 = Instant::now();
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(secs) {
                c.send(piece.clone()).expect("send");
                sent += PIECE as u64;
            }
            c.shutdown().expect("shutdown");
            (t0, sent)
        })
        .join()
        .expect("sender")
    });
    let (got, t1) = reader.join().expect("reader");
    assert_eq!(got, sent, "every byte arrived");
    drop(c);
    got as f64 / (t1 - t0).as_secs_f64()
}

/// The same two measurements over the kernel's TCP (TCP_NODELAY for the
/// round trips).
fn tcp_rtt(a: &Netns, b: &Netns, port: u16, n: usize) -> f64 {
    let srv = b
        .spawn("tcp-echo", move || {
            pin_to_cpu(0).expect("pin");
            let l = TcpListener::bind(("10.77.0.2", port)).expect("listen");
            let (mut s, _) = l.accept().expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let mut buf = [0u8; 64];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(200));
    let rtt = a
        .spawn("tcp-ping", move || {
            pin_to_cpu(0).expect("pin");
            let mut s = TcpStream::connect(("10.77.0.2", port)).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut buf = [7u8; 64];
            median_rtt_us(n, || {
                s.write_all(&buf).expect("write");
                s.read_exact(&mut buf).expect("read");
            })
        })
        .expect("spawn")
        .join()
        .expect("client");
    let _ = srv.join();
    rtt
}

fn tcp_stream(a: &Netns, b: &Netns, port: u16, secs: u64) -> f64 {
    let srv = b
        .spawn("tcp-sink", move || {
            pin_to_cpu(1).expect("pin");
            let l = TcpListener::bind(("10.77.0.2", port)).expect("listen");
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = vec![0u8; PIECE];
            let mut got = 0u64;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            (got, Instant::now())
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(200));
    let (t0, sent) = a
        .spawn("tcp-src", move || {
            pin_to_cpu(0).expect("pin");
            let mut s = TcpStream::connect(("10.77.0.2", port)).expect("connect");
            let buf = vec![1u8; PIECE];
            let t0 = Instant::now();
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(secs) {
                s.write_all(&buf).expect("write");
                sent += PIECE as u64;
            }
            (t0, sent)
        })
        .expect("spawn")
        .join()
        .expect("source");
    let (got, t1) = srv.join().expect("sink");
    assert_eq!(got, sent);
    got as f64 / (t1 - t0).as_secs_f64()
}

fn main() {
    if !privileged() {
        eprintln!("conn bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let secs: u64 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let raw = build_rawlimit();
    let lab = Lab::pair("cbench").expect("veth pair");
    let (a, b) = (lab.node(0), lab.node(1));
    a.ip(&["addr", "add", "10.77.0.1/24", "dev", NODE_IF]).expect("address a");
    b.ip(&["addr", "add", "10.77.0.2/24", "dev", NODE_IF]).expect("address b");
    let mac_b = b.mac(NODE_IF).expect("mac").to_string();
    let mut r = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        r.entry("raw.rtt").or_default().push(raw_rtt(&raw, a, b, 64, n, 0));
        // bytes per second of full 1500-byte frames
        r.entry("raw.blast").or_default().push(1500.0 * raw_blast(&raw, a, b, &mac_b, 1500, secs as u32, 0, 1));
        r.entry("tcp.rtt").or_default().push(tcp_rtt(a, b, 7000 + 2 * run as u16, n));
        r.entry("tcp.stream").or_default().push(tcp_stream(a, b, 7001 + 2 * run as u16, secs));
        let sa = start(a, "cb-a");
        let sb = start(b, "cb-b");
        sa.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        sb.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        r.entry("tipc.rtt").or_default().push(seqpacket_rtt(&sa, &sb, 1, n));
        r.entry("tipc.stream").or_default().push(tipc_stream(&sa, &sb, 2, secs));
        sa.shutdown();
        sb.shutdown();
    }
    let m = |k: &str| median(&mut r.get(k).cloned().unwrap_or_default());
    let mb = |x: f64| x / 1e6;
    println!("\nconn bench (medians of {runs} runs, same sitting, same veth pair)");
    println!("raw AF_PACKET 64 B RTT         {:>9.2} us", m("raw.rtt"));
    println!("kernel TCP 64 B RTT            {:>9.2} us", m("tcp.rtt"));
    println!(
        "tipc SEQPACKET 64 B RTT        {:>9.2} us = {:.2}x raw, {:.2}x TCP",
        m("tipc.rtt"),
        m("tipc.rtt") / m("raw.rtt"),
        m("tipc.rtt") / m("tcp.rtt")
    );
    println!("raw blast, 1500 B frames       {:>9.1} MB/s", mb(m("raw.blast")));
    println!("kernel TCP stream              {:>9.1} MB/s", mb(m("tcp.stream")));
    println!(
        "tipc STREAM goodput            {:>9.1} MB/s = {:.0}% of raw blast, {:.0}% of TCP",
        mb(m("tipc.stream")),
        100.0 * m("tipc.stream") / m("raw.blast"),
        100.0 * m("tipc.stream") / m("tcp.stream")
    );
    for (k, v) in &r {
        eprintln!("{k}: {v:?}");
    }
}
