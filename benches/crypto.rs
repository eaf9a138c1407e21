//! What encryption costs (`cargo bench --bench crypto`, as root): two
//! pairs of nodes on one veth bridge, one pair clear and one pair with a
//! master key (AES-128-GCM, running on their session keys), measured in
//! alternating rounds of the same sitting. Group unicast RTT (64 bytes)
//! and the 1 KiB group unicast one-way rate, each encrypted over clear.
//! Options: `--runs N` (5), `--secs S` (2), `--n N` (20000 round trips).
//!
//! The target (issue 17): encryption costs at most 25 % of the clear rate.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::crypto::KeySpec;
use tipc_rs::wire::{Instance, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::pin_to_cpu;

const K1: &str = "0x000102030405060708090a0b0c0d0e0f10111213 master";

fn start(ns: &Netns, name: &str, cpu: usize, key: Option<KeySpec>) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        pin_to_cpu(cpu).expect("pin");
        let mut b = Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id"));
        if let Some(k) = key {
            b = b.key(k);
        }
        b.start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

fn join(s: &Stack, stype: u32, inst: u32) -> Arc<GroupSocket> {
    let g = s.group_socket().expect("socket");
    g.join(GroupSpec {
        stype: ServiceType(stype),
        instance: Instance(inst),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    })
    .expect("join");
    Arc::new(g)
}

fn wait_members(socks: &[Arc<GroupSocket>]) {
    let end = Instant::now() + Duration::from_secs(20);
    while socks.iter().any(|g| g.members().is_empty()) {
        assert!(Instant::now() < end, "membership");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 1 KiB group unicasts a → b for `secs`: messages delivered per second.
fn rate(a: &Arc<GroupSocket>, b: &Arc<GroupSocket>, secs: u32) -> f64 {
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (b, got, stop) = (b.clone(), got.clone(), stop.clone());
        std::thread::spawn(move || {
            pin_to_cpu(1).expect("pin");
            while !stop.load(Ordering::Relaxed) {
                if let Ok(GroupEvent::Message { .. }) = b.recv_timeout(Duration::from_millis(50)) {
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let bid = b.id();
    let a = a.clone();
    let sent = std::thread::spawn(move || {
        pin_to_cpu(0).expect("pin");
        let end = Instant::now() + Duration::from_secs(u64::from(secs));
        let mut sent = 0u64;
        while Instant::now() < end {
            a.send_unicast(bid, Bytes::from(vec![3u8; 1024])).expect("send");
            sent += 1;
        }
        sent
    })
    .join()
    .expect("sender");
    let t0 = Instant::now() - Duration::from_secs(u64::from(secs));
    while got.load(Ordering::Relaxed) < sent {
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = sent as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    r
}

fn main() {
    if !privileged() {
        eprintln!("crypto bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let secs: u32 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let runs: u32 = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let lab = Lab::bridge("cbench", 4).expect("bridge");
    let key = || Some(K1.parse::<KeySpec>().expect("key"));
    let clear = [start(lab.node(0), "cb-clear-0", 0, None), start(lab.node(1), "cb-clear-1", 1, None)];
    let enc = [start(lab.node(2), "cb-enc-0", 0, key()), start(lab.node(3), "cb-enc-1", 1, key())];
    for s in clear.iter().chain(&enc) {
        s.wait_for_nodes(1, Duration::from_secs(20)).expect("link");
    }
    // the encrypted pair on its session keys, as it runs for good
    let end = Instant::now() + Duration::from_secs(30);
    while enc.iter().any(|s| s.crypto_stats().tx_active == 0) {
        assert!(Instant::now() < end, "session keys");
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = [join(&clear[0], 4800, 0), join(&clear[1], 4800, 1)];
    let e = [join(&enc[0], 4800, 0), join(&enc[1], 4800, 1)];
    wait_members(&c);
    wait_members(&e);
    let (mut rc, mut re, mut tc, mut te) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        rc.push(group_rtt(&c[0], &c[1], n / runs as usize, 200, (0, 1)));
        re.push(group_rtt(&e[0], &e[1], n / runs as usize, 200, (0, 1)));
        tc.push(rate(&c[0], &c[1], secs));
        te.push(rate(&e[0], &e[1], secs));
    }
    let s = enc[0].crypto_stats();
    // (the clear pair's discovery on the same bridge is dropped as clear)
    assert!(s.tx_encrypted > 0 && s.rx_bad_tag + s.rx_replay == 0, "the encrypted pair ran encrypted: {s:?}");
    let (rc, re, tc, te) = (median(&mut rc), median(&mut re), median(&mut tc), median(&mut te));
    println!(
        "\ncrypto bench (same sitting, alternating rounds; medians of {runs}); AEAD: {}",
        tipc_rs::crypto::AEAD_IMPL
    );
    println!("group unicast RTT 64 B   clear {rc:>8.2} us  encrypted {re:>8.2} us  = {:.2}x", re / rc);
    println!(
        "group unicast 1 KiB      clear {tc:>8.0} msg/s encrypted {te:>8.0} msg/s = {:.0}% of clear (cost {:.0}%)",
        100.0 * te / tc,
        100.0 * (1.0 - te / tc)
    );
    for s in clear.into_iter().chain(enc) {
        s.shutdown();
    }
}
