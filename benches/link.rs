//! Link throughput and latency of the whole stack (two nodes in two
//! namespaces over veth) as ratios to raw AF_PACKET measured in the same run
//! and CPU placement (`cargo bench --bench link`, as root).
//! Options: `--runs N` (3), `--secs S` (2), `--n N` round trips (20000),
//! `--window W` (link window, default 50 as the kernel).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::Stack;
use tipc_rs::wire::NodeId;
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::pin_to_cpu;

fn start(ns: &Netns, name: &str, cpu: usize, window: u16) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        pin_to_cpu(cpu).expect("pin");
        Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id")).window(window).start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

fn main() {
    if !privileged() {
        eprintln!("link bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let secs: u64 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let window: u16 = arg("--window").and_then(|v| v.parse().ok()).unwrap_or(50);
    let raw = build_rawlimit();
    let lab = Lab::pair("lbench").expect("veth pair");
    let (a, b) = (lab.node(0), lab.node(1));
    let mac_b = b.mac(NODE_IF).expect("mac").to_string();
    let mut r = std::collections::BTreeMap::<String, Vec<f64>>::new();

    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        r.entry("raw.rtt.64.same".into()).or_default().push(raw_rtt(&raw, a, b, 64, n, 0));
        // 64 B and 1 KiB TIPC messages are 110- and 1070-byte frames
        for (label, frame) in [("64", 110usize), ("1k", 1070)] {
            r.entry(format!("raw.blast.{label}.cross")).or_default().push(raw_blast(
                &raw,
                a,
                b,
                &mac_b,
                frame,
                secs as u32,
                0,
                1,
            ));
        }

        // our RTT: both stacks and both applications on CPU 0
        let sa = start(a, "bench-a", 0, window);
        let sb = start(b, "bench-b", 0, window);
        sa.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        sb.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
        let echo_sock = sb.port_socket().expect("socket");
        let echo_id = echo_sock.id();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let echo = std::thread::spawn(move || {
            pin_to_cpu(0).expect("pin");
            while !s2.load(Ordering::Relaxed) {
                if let Ok(m) = echo_sock.recv_timeout(Duration::from_millis(100)) {
                    let _ = echo_sock.send_to(m.from_node, m.from_port, m.data);
                }
            }
        });
        let client = sa.port_socket().expect("socket");
        let mut rtts = std::thread::scope(|s| {
            s.spawn(|| {
                pin_to_cpu(0).expect("pin");
                let msg = Bytes::from(vec![7u8; 64]);
                let warm = n / 10;
                let mut v = Vec::with_capacity(n);
                for i in 0..n + warm {
                    let t = Instant::now();
                    client.send_to(echo_id.node, echo_id.port, msg.clone()).expect("send");
                    client.recv_timeout(Duration::from_secs(2)).expect("reply");
                    if i >= warm {
                        v.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                v
            })
            .join()
            .expect("client")
        });
        stop.store(true, Ordering::Relaxed);
        echo.join().expect("echo");
        {
            let mut v = rtts.clone();
            v.sort_by(f64::total_cmp);
            let p = |q: usize| v.get(v.len() * q / 100).copied().unwrap_or(f64::NAN);
            eprintln!("  stack RTT µs: p10 {:.2}, p50 {:.2}, p90 {:.2}, p99 {:.2}", p(10), p(50), p(90), p(99));
        }
        r.entry("stack.rtt.64.same".into()).or_default().push(median(&mut rtts));
        drop(client);
        sa.shutdown();
        sb.shutdown();

        // one-way throughput: sender stack + app on CPU 0, receiver on CPU 1
        for (label, size) in [("64", 64usize), ("1k", 1024)] {
            let sa = start(a, "bench-a", 0, window);
            let sb = start(b, "bench-b", 1, window);
            sa.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
            sb.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
            let rx = sb.port_socket().expect("socket");
            let dst = rx.id();
            let tx = sa.port_socket().expect("socket");
            let sender = std::thread::spawn(move || {
                pin_to_cpu(0).expect("pin");
                let msg = Bytes::from(vec![1u8; size]);
                let end = Instant::now() + Duration::from_secs(secs);
                let mut sent = 0u64;
                while Instant::now() < end {
                    for _ in 0..256 {
                        tx.send_to(dst.node, dst.port, msg.clone()).expect("send");
                    }
                    sent += 256;
                }
                (sent, tx)
            });
            let receiver = std::thread::spawn(move || {
                pin_to_cpu(1).expect("pin");
                let mut got = 0u64;
                let mut first = None;
                let mut last = Instant::now();
                while let Ok(m) = rx.recv_timeout(Duration::from_secs(2)) {
                    assert_eq!(m.data.len(), size);
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    got += 1;
                }
                (got, first.map(|f| last.duration_since(f).as_secs_f64()).unwrap_or(0.0))
            });
            let (sent, _tx) = sender.join().expect("sender");
            let (got, window_s) = receiver.join().expect("receiver");
            assert_eq!(got, sent, "zero loss");
            let rate = got as f64 / window_s;
            let st = &sa.links()[0].stats;
            eprintln!(
                "  {label}: {sent} messages, {:.3} M msg/s, retransmitted {}, congestion waits {}",
                rate / 1e6,
                st.retransmitted,
                st.link_congs
            );
            r.entry(format!("stack.oneway.{label}.cross")).or_default().push(rate);
            sa.shutdown();
            sb.shutdown();
        }
    }

    let med: std::collections::BTreeMap<String, f64> = r.iter_mut().map(|(k, v)| (k.clone(), median(v))).collect();
    println!("\nlink bench: median of {runs} runs (window {window}), same sitting, same namespaces");
    for (k, v) in &med {
        let unit = if k.contains("rtt") { "us" } else { "per s" };
        println!("{k:<28} {v:>14.2} {unit}");
    }
    let g = |k: &str| med.get(k).copied().unwrap_or(f64::NAN);
    println!("\nratios to raw AF_PACKET:");
    println!("  RTT 64 B message        : {:.2}x raw (target <= 1.5x)", g("stack.rtt.64.same") / g("raw.rtt.64.same"));
    println!(
        "  one-way 64 B messages   : {:.0}% of raw blast (110-byte frames)",
        100.0 * g("stack.oneway.64.cross") / g("raw.blast.64.cross")
    );
    println!(
        "  one-way 1 KiB messages  : {:.0}% of raw blast (1070-byte frames; target >= 60%)",
        100.0 * g("stack.oneway.1k.cross") / g("raw.blast.1k.cross")
    );
}
