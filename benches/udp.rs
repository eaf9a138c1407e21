//! The UDP bearer over veth (`cargo bench --bench udp`, as root for the
//! namespaces; the bearer itself needs no privileges): a 64 B SEQPACKET
//! round trip and the one-way rate of 1 KiB RDM messages between two of
//! our nodes on UDP, each as a ratio to the kernel's own UDP measured in
//! the same sitting and placement — a 64 B UDP ping-pong, and a 1 KiB UDP
//! blast (datagrams that arrived per second; the kernel's UDP may drop,
//! TIPC may not). Round trips with both sides on CPU 0, one-way rates with
//! the sender on CPU 0 and the receiver on CPU 1.
//! Options: `--runs N` (3), `--secs S` (2), `--n N` (20000 round trips).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::Stack;
use tipc_rs::wire::NodeId;
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::pin_to_cpu;

const A: &str = "10.78.0.1";
const B: &str = "10.78.0.2";

fn start(ns: &Netns, ip: &str, name: &str) -> Stack {
    let (name, local): (String, SocketAddr) = (name.to_string(), format!("{ip}:6118").parse().expect("addr"));
    ns.spawn("start", move || {
        pin_to_cpu(0).expect("pin");
        Stack::builder().udp(local).node_id(NodeId::from_text(&name).expect("id")).start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

/// 1 KiB RDM messages per second from `a` to a socket on `b`, sent for
/// `secs`; the clock stops when the last one arrived (none may be lost).
fn tipc_rate(a: &Stack, b: &Stack, secs: u64) -> f64 {
    let rx = b.port_socket().expect("socket");
    let to = rx.id();
    let count = std::thread::spawn(move || {
        pin_to_cpu(1).expect("pin");
        let mut got = 0u64;
        let mut last = Instant::now();
        while let Ok(m) = rx.recv_timeout(Duration::from_secs(2)) {
            if m.data.len() == 8 {
                break;
            }
            got += 1;
            last = Instant::now();
        }
        (got, last)
    });
    let tx = a.port_socket().expect("socket");
    let msg = Bytes::from(vec![1u8; 1024]);
    let (t0, sent) = std::thread::scope(|s| {
        s.spawn(|| {
            pin_to_cpu(0).expect("pin");
            let t0 = Instant::now();
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(secs) {
                tx.send_to(to.node, to.port, msg.clone()).expect("send");
                sent += 1;
            }
            tx.send_to(to.node, to.port, Bytes::from_static(b"the end.")).expect("end");
            (t0, sent)
        })
        .join()
        .expect("sender")
    });
    let (got, t1) = count.join().expect("receiver");
    assert_eq!(got, sent, "every message arrived");
    got as f64 / (t1 - t0).as_secs_f64()
}

/// The kernel's UDP: median 64 B ping-pong round trip (µs).
fn udp_rtt(a: &Netns, b: &Netns, port: u16, n: usize) -> f64 {
    let srv = b
        .spawn("udp-echo", move || {
            pin_to_cpu(0).expect("pin");
            let s = UdpSocket::bind((B, port)).expect("bind");
            s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
            let mut buf = [0u8; 64];
            while let Ok((len, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..len], from);
            }
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(200));
    let rtt = a
        .spawn("udp-ping", move || {
            pin_to_cpu(0).expect("pin");
            let s = UdpSocket::bind((A, port)).expect("bind");
            s.connect((B, port)).expect("connect");
            let mut buf = [7u8; 64];
            median_rtt_us(n, || {
                s.send(&buf).expect("send");
                s.recv(&mut buf).expect("recv");
            })
        })
        .expect("spawn")
        .join()
        .expect("client");
    let _ = srv.join();
    rtt
}

/// The kernel's UDP: 1 KiB datagrams per second that arrived, sent as fast
/// as `send` takes them for `secs`.
fn udp_blast(a: &Netns, b: &Netns, port: u16, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sink = b
        .spawn("udp-sink", move || {
            pin_to_cpu(1).expect("pin");
            let s = UdpSocket::bind((B, port)).expect("bind");
            s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let mut buf = [0u8; 2048];
            let mut got = 0u64;
            let mut first = None;
            let mut last = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                if s.recv(&mut buf).is_ok() {
                    got += 1;
                    last = Instant::now();
                    first.get_or_insert(last);
                }
            }
            (got, first.unwrap_or(last), last)
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(200));
    a.spawn("udp-src", move || {
        pin_to_cpu(0).expect("pin");
        let s = UdpSocket::bind((A, port)).expect("bind");
        s.connect((B, port)).expect("connect");
        let buf = [1u8; 1024];
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            let _ = s.send(&buf);
        }
    })
    .expect("spawn")
    .join()
    .expect("source");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (got, t0, t1) = sink.join().expect("sink");
    got as f64 / (t1 - t0).as_secs_f64()
}

fn main() {
    if !privileged() {
        eprintln!("udp bench: needs root (network namespaces)");
        std::process::exit(1);
    }
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let secs: u64 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let lab = Lab::pair("ubench").expect("veth pair");
    let (a, b) = (lab.node(0), lab.node(1));
    a.ip(&["addr", "add", &format!("{A}/24"), "dev", NODE_IF]).expect("address a");
    b.ip(&["addr", "add", &format!("{B}/24"), "dev", NODE_IF]).expect("address b");
    let mut r = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        r.entry("udp.rtt").or_default().push(udp_rtt(a, b, 7000 + 2 * run as u16, n));
        r.entry("udp.blast").or_default().push(udp_blast(a, b, 7001 + 2 * run as u16, secs));
        let sa = start(a, A, "ub-a");
        let sb = start(b, B, "ub-b");
        sa.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        sb.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        r.entry("tipc.rtt").or_default().push(seqpacket_rtt(&sa, &sb, 1, n));
        r.entry("tipc.rate").or_default().push(tipc_rate(&sa, &sb, secs));
        sa.shutdown();
        sb.shutdown();
    }
    let m = |k: &str| median(&mut r.get(k).cloned().unwrap_or_default());
    println!("\nudp bench (medians of {runs} runs, same sitting, same veth pair)");
    println!("kernel UDP 64 B ping-pong RTT  {:>9.2} us", m("udp.rtt"));
    println!(
        "tipc/UDP SEQPACKET 64 B RTT    {:>9.2} us = {:.2}x kernel UDP",
        m("tipc.rtt"),
        m("tipc.rtt") / m("udp.rtt")
    );
    println!("kernel UDP blast, 1 KiB        {:>9.0} msg/s arrived", m("udp.blast"));
    println!(
        "tipc/UDP RDM, 1 KiB one-way    {:>9.0} msg/s = {:.0}% of the blast",
        m("tipc.rate"),
        100.0 * m("tipc.rate") / m("udp.blast")
    );
    for (k, v) in &r {
        eprintln!("{k}: {v:?}");
    }
}
