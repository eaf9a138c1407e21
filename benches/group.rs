//! Group performance over veth as ratios to raw AF_PACKET measured in the
//! same run (`cargo bench --bench group`, as root): unicast RTT, anycast
//! throughput, broadcast throughput to 1, 4 and 8 members and frames on the
//! wire per broadcast. Options: `--runs N` (5), `--secs S` (2), `--n N` (5000).
//!
//! The throughput figures are each the median of `--runs` rounds in the
//! same sitting, printed with the lowest and highest round: one round's
//! figure swings with thread placement by a factor of two or more.
//! Anycast throughput counts a message when a reader has it, so the figure
//! is the delivered rate, not the rate the sender's window accepts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::wire::{Instance, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::pin_to_cpu;

fn start(ns: &Netns, name: &str, cpu: usize) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        pin_to_cpu(cpu).expect("pin");
        Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id")).start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

fn join(s: &Stack, inst: u32) -> Arc<GroupSocket> {
    let g = s.group_socket().expect("socket");
    g.join(GroupSpec {
        stype: ServiceType(4800),
        instance: Instance(inst),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    })
    .expect("join");
    Arc::new(g)
}

fn wait_members(socks: &[Arc<GroupSocket>], n: usize) {
    let end = Instant::now() + Duration::from_secs(20);
    while socks.iter().any(|s| s.members().len() < n) {
        assert!(Instant::now() < end, "membership");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One anycast round: member 0 sends 1 KiB messages to instance 1 (held by
/// the other members) for `secs` seconds; the rate is the messages sent
/// divided by the time until the readers had them all (msg/s).
fn anycast_round(socks: &[Arc<GroupSocket>], secs: u32) -> f64 {
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rs: Vec<_> = socks[1..]
        .iter()
        .map(|s| {
            let (s, got, stop) = (s.clone(), got.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(GroupEvent::Message { .. }) = s.recv_timeout(Duration::from_millis(20)) {
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < Duration::from_secs(u64::from(secs)) {
        socks[0].send_anycast(Instance(1), Bytes::from(vec![1u8; 1024])).expect("anycast");
        sent += 1;
    }
    let end = Instant::now() + Duration::from_secs(20);
    while got.load(Ordering::Relaxed) < sent {
        assert!(Instant::now() < end, "zero loss: {} of {sent} delivered", got.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_micros(200));
    }
    let rate = sent as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for r in rs {
        r.join().expect("reader");
    }
    assert_eq!(got.load(Ordering::Relaxed), sent, "no message twice");
    rate
}

/// The median, lowest and highest of `v`, and `v` in round order.
fn spread(v: Vec<f64>) -> (f64, f64, f64, Vec<f64>) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (median(&mut v.clone()), lo, hi, v)
}

/// Rates as percentages of `raw`, in round order.
fn rounds(v: &[f64], raw: f64) -> String {
    v.iter().map(|r| format!("{:.0}", 100.0 * r / raw)).collect::<Vec<_>>().join(" ")
}

/// Readers that each count messages until `expect` arrived, or until 10 s
/// pass without one; each returns its count.
fn readers(socks: &[Arc<GroupSocket>], expect: u64) -> Vec<std::thread::JoinHandle<u64>> {
    socks
        .iter()
        .map(|s| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while n < expect {
                    match s.recv_timeout(Duration::from_secs(10)) {
                        Ok(GroupEvent::Message { .. }) => n += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                n
            })
        })
        .collect()
}

fn main() {
    if !privileged() {
        eprintln!("group bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let secs: u32 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: u64 = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let runs: u32 = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let raw = build_rawlimit();
    let lab = Lab::bridge("gbench", 9).expect("bridge");
    let mac1 = lab.node(1).mac(NODE_IF).expect("mac").to_string();
    let raw_rtt = raw_rtt(&raw, lab.node(0), lab.node(1), 64, 20_000, 0);
    let raw_fps = raw_blast(&raw, lab.node(0), lab.node(1), &mac1, 1070, secs, 0, 1);
    // node 0 (sender) and node 1 (echo) on CPU 0 like the raw RTT; the other receivers on CPU 1
    let stacks: Vec<Stack> = (0..9).map(|i| start(lab.node(i), &format!("gb-{i}"), usize::from(i >= 2))).collect();
    for s in &stacks {
        s.wait_for_nodes(8, Duration::from_secs(20)).expect("links");
    }
    let socks: Vec<Arc<GroupSocket>> =
        stacks.iter().enumerate().map(|(i, s)| join(s, if i == 0 { 0 } else { 1 })).collect();
    wait_members(&socks, 8);

    // unicast RTT, both sides on CPU 0
    let rtt = group_rtt(&socks[0], &socks[1], 20_000, 2000, (0, 0));

    // anycast throughput: member 0 -> instance 1 (8 holders), 1 KiB
    let any = spread((0..runs).map(|_| anycast_round(&socks, secs)).collect());

    // broadcast throughput to 1, 4 and 8 members (fresh groups each round)
    let mut bc = Vec::new();
    for (k, members) in [1usize, 4, 8].into_iter().enumerate() {
        let mut rates = Vec::new();
        let mut fpm = 0.0;
        for run in 0..runs {
            let t = ServiceType(4900 + 3 * run + k as u32);
            let g: Vec<Arc<GroupSocket>> = stacks[..=members]
                .iter()
                .map(|s| {
                    let g = s.group_socket().expect("socket");
                    g.join(GroupSpec {
                        stype: t,
                        instance: Instance(1),
                        scope: Scope::Cluster,
                        loopback: false,
                        member_events: false,
                    })
                    .expect("join");
                    Arc::new(g)
                })
                .collect();
            wait_members(&g, members);
            let rs = readers(&g[1..], n);
            let before = stacks[0].bearer_stats().expect("stats").tx_frames;
            let t0 = Instant::now();
            for _ in 0..n {
                g[0].broadcast(Bytes::from(vec![2u8; 1024])).expect("broadcast");
            }
            let counts: Vec<u64> = rs.into_iter().map(|r| r.join().expect("reader")).collect();
            let secs_taken = t0.elapsed().as_secs_f64();
            assert!(counts.iter().all(|&c| c == n), "zero loss: {counts:?}");
            let frames = stacks[0].bearer_stats().expect("stats").tx_frames - before;
            rates.push(n as f64 / secs_taken);
            fpm = frames as f64 / n as f64;
        }
        bc.push((members, spread(rates), fpm));
    }
    let pct = |r: f64| 100.0 * r / raw_fps;
    println!("\ngroup bench (same sitting, same namespaces; throughput: median of {runs} rounds [lowest-highest])");
    println!("raw.rtt.64.same                 {raw_rtt:>10.2} us");
    println!("raw.blast.1070.cross            {raw_fps:>10.0} frames/s");
    println!("group unicast RTT (64 B)        {rtt:>10.2} us   = {:.2}x raw", rtt / raw_rtt);
    let (any, any_lo, any_hi, any_rounds) = any;
    println!(
        "group anycast 1 KiB             {any:>10.0} msg/s = {:.0}% of raw blast [{:.0}-{:.0}%]",
        pct(any),
        pct(any_lo),
        pct(any_hi)
    );
    println!("rounds: anycast {}", rounds(&any_rounds, raw_fps));
    for (m, (_, _, _, v), _) in &bc {
        println!("rounds: broadcast to {m} {}", rounds(v, raw_fps));
    }
    for (m, (rate, lo, hi, _), fpm) in bc {
        println!(
            "group broadcast 1 KiB to {m}      {rate:>10.0} msg/s = {:.0}% of raw blast [{:.0}-{:.0}%], {fpm:.2} frames per broadcast",
            pct(rate),
            pct(lo),
            pct(hi)
        );
    }
    drop(socks);
    for s in stacks {
        s.shutdown();
    }
}
