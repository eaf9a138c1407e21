//! Group performance over veth as ratios to raw AF_PACKET measured in the
//! same run (`cargo bench --bench group`, as root): unicast RTT, anycast
//! throughput, broadcast throughput to 1, 4 and 8 members and frames on the
//! wire per broadcast. Options: `--runs N` (1), `--secs S` (2), `--n N` (5000).

mod common;

use std::sync::Arc;
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

/// Readers that count messages until `expect` arrived; returns the time it took from `t0`.
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
    let (a, b) = (socks[0].clone(), socks[1].clone());
    let bid = b.id();
    let echo = std::thread::spawn(move || {
        pin_to_cpu(0).expect("pin");
        for _ in 0..22_000 {
            match b.recv_timeout(Duration::from_secs(2)) {
                Ok(GroupEvent::Message { from, data, .. }) => {
                    let _ = b.send_unicast(from, data);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let mut rtts = std::thread::spawn(move || {
        pin_to_cpu(0).expect("pin");
        let mut v = Vec::new();
        for i in 0..22_000 {
            let t = Instant::now();
            a.send_unicast(bid, Bytes::from_static(&[7u8; 64])).expect("send");
            loop {
                if let Ok(GroupEvent::Message { .. }) = a.recv_timeout(Duration::from_secs(2)) {
                    break;
                }
            }
            if i >= 2000 {
                v.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        v
    })
    .join()
    .expect("client");
    let _ = echo.join();
    let rtt = median(&mut rtts);

    // anycast throughput: member 0 -> instance 1 (8 holders), 1 KiB
    let t0 = Instant::now();
    let rs = readers(&socks[1..], u64::MAX);
    let mut sent = 0u64;
    while t0.elapsed() < Duration::from_secs(u64::from(secs)) {
        socks[0].send_anycast(Instance(1), Bytes::from(vec![1u8; 1024])).expect("anycast");
        sent += 1;
    }
    let any_rate = sent as f64 / t0.elapsed().as_secs_f64();
    drop(rs);

    // broadcast throughput to 1, 4 and 8 members (fresh groups)
    let mut bc = Vec::new();
    for (k, members) in [1usize, 4, 8].into_iter().enumerate() {
        let t = ServiceType(4900 + k as u32);
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
        bc.push((members, n as f64 / secs_taken, frames as f64 / n as f64));
    }
    let _ = rtts;
    println!("\ngroup bench (same sitting, same namespaces)");
    println!("raw.rtt.64.same                 {raw_rtt:>10.2} us");
    println!("raw.blast.1070.cross            {raw_fps:>10.0} frames/s");
    println!("group unicast RTT (64 B)        {rtt:>10.2} us   = {:.2}x raw", rtt / raw_rtt);
    println!(
        "group anycast 1 KiB             {any_rate:>10.0} msg/s = {:.0}% of raw blast",
        100.0 * any_rate / raw_fps
    );
    for (m, rate, fpm) in bc {
        println!(
            "group broadcast 1 KiB to {m}      {rate:>10.0} msg/s = {:.0}% of raw blast, {fpm:.2} frames per broadcast",
            100.0 * rate / raw_fps
        );
    }
    drop(socks);
    for s in stacks {
        s.shutdown();
    }
}
