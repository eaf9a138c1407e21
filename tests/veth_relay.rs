//! The fault-injecting relay and the nftables loss rule on real veth links.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{numbered_msg, rig, seq_of};
use tipc_rs::bearer::{Bearer, BearerConfig};
use tipc_rs::fault::FaultConfig;
use tipc_testkit::netns::{Lab, NODE_IF};
use tipc_testkit::relay::Relay;

/// Opens a bearer in node 1 that records, in arrival order, the sequence
/// number of every frame until `idle` passes without one; `count` follows
/// the number received. Returns once the bearer is open.
fn receiver(lab: &Lab, idle: Duration, count: Arc<AtomicU64>) -> std::thread::JoinHandle<Vec<u64>> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let rx = lab
        .node(1)
        .spawn("rx", move || {
            let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("open receiver");
            ready_tx.send(()).expect("ready");
            let mut order = Vec::new();
            while let Ok(batch) = b.rx().expect("channel").recv_timeout(idle) {
                order.extend(batch.iter().map(|f| seq_of(&f.msg).expect("numbered")));
                count.store(order.len() as u64, Ordering::Release);
            }
            order
        })
        .expect("spawn");
    ready_rx.recv().expect("receiver ready");
    rx
}

/// Sends `n` numbered frames of `size(i)` bytes from node 0 to node 1,
/// calling `pause(sent)` after every `chunk` frames.
fn sender(lab: &Lab, n: u64, size: fn(u64) -> usize, chunk: u64, mut pause: impl FnMut(u64) + Send + 'static) {
    let mac_b = lab.node(1).mac(NODE_IF).expect("mac");
    lab.node(0)
        .spawn("tx", move || {
            let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("open sender");
            for i in 0..n {
                b.tx().send(mac_b, numbered_msg(size(i), i)).expect("send");
                if i % chunk == chunk - 1 || i + 1 == n {
                    pause(i + 1);
                }
            }
        })
        .expect("spawn")
        .join()
        .expect("tx");
}

/// Sends `n` numbered frames in rounds of 1000, each round waiting until
/// every frame either arrived or was dropped by `lost()`; returns the set
/// that arrived.
fn run_through(lab: &Lab, n: u64, lost: Arc<dyn Fn() -> u64 + Send + Sync>) -> BTreeSet<u64> {
    let got = Arc::new(AtomicU64::new(0));
    let rx = receiver(lab, Duration::from_secs(3), got.clone());
    sender(
        lab,
        n,
        |i| 60 + (i % 200) as usize,
        1000,
        move |sent| {
            let t0 = Instant::now();
            while got.load(Ordering::Acquire) + lost() < sent {
                assert!(t0.elapsed() < Duration::from_secs(20), "frames vanished outside the relay");
                std::thread::sleep(Duration::from_micros(200));
            }
        },
    );
    rx.join().expect("rx").into_iter().collect()
}

#[test]
fn relay_drops_ten_percent_and_the_seed_decides_which() {
    let Some(lab) = rig("relay 10% drop", || Lab::relayed_pair("relay")) else { return };
    const N: u64 = 100_000;
    let cfg = FaultConfig::loss(0.10);
    let relay_ns = lab.relay_ns().expect("relay ns");
    let mut runs = Vec::new();
    for seed in [42u64, 42, 43] {
        let relay = Arc::new(Relay::start(relay_ns, "ra", "rb", cfg, seed).expect("relay"));
        let r2 = relay.clone();
        let got = run_through(&lab, N, Arc::new(move || r2.stats()[0].faults.dropped));
        let st = relay.stats()[0];
        let rate = 1.0 - got.len() as f64 / N as f64;
        eprintln!("seed {seed}: {} of {N} arrived, drop rate {:.4}, relay {st:?}", got.len(), rate);
        assert_eq!(st.received, N, "the relay saw every frame");
        assert_eq!(st.faults.dropped, N - got.len() as u64, "every loss is the relay's");
        assert!((rate - 0.10).abs() <= 0.01, "drop rate {rate}");
        runs.push(got);
    }
    assert_eq!(runs[0], runs[1], "same seed, same drops");
    assert_ne!(runs[0], runs[2], "another seed, other drops");
}

#[test]
fn relay_duplicates_reorders_and_delays() {
    let Some(lab) = rig("relay faults", || Lab::relayed_pair("relayf")) else { return };
    let cfg = FaultConfig {
        duplicate: 0.05,
        reorder: 0.05,
        reorder_delay: tipc_rs::wire::Duration::from_millis(3),
        delay: tipc_rs::wire::Duration::from_micros(200),
        ..FaultConfig::default()
    };
    let relay = Relay::start(lab.relay_ns().expect("ns"), "ra", "rb", cfg, 9).expect("relay");
    let rx = receiver(&lab, Duration::from_secs(1), Arc::new(AtomicU64::new(0)));
    sender(&lab, 5000, |_| 80, 100, |_| std::thread::sleep(Duration::from_millis(2)));
    let order = rx.join().expect("rx");
    let st = relay.stats()[0];
    let distinct: BTreeSet<u64> = order.iter().copied().collect();
    assert_eq!(distinct.len(), 5000, "nothing lost");
    assert_eq!(order.len() as u64, 5000 + st.faults.duplicated, "duplicates arrive");
    assert!(st.faults.duplicated > 150 && st.faults.reordered > 150, "{st:?}");
    // frames overtaken by later ones: the held-back share (plus late duplicates)
    let mut max = 0;
    let late = order
        .iter()
        .filter(|&&s| {
            let is_late = s < max;
            max = max.max(s);
            is_late
        })
        .count();
    assert!(late as u64 >= st.faults.reordered / 2, "reordering shows: {late} late frames, {st:?}");
}

#[test]
fn nftables_numgen_rule_drops_about_the_configured_share() {
    let Some(lab) = rig("nft loss", || Lab::pair("nft")) else { return };
    if !common::have_tool("nft", "nftables") {
        return;
    }
    if let Err(e) = Lab::nft_drop(lab.node(1), NODE_IF, 20) {
        panic!("nft rule: {e} (install nftables)");
    }
    const N: u64 = 20_000;
    let got = run_through_plain(&lab, N);
    let rate = 1.0 - got as f64 / N as f64;
    eprintln!("nft 20%: {got} of {N} arrived ({rate:.4})");
    assert!((rate - 0.20).abs() < 0.02, "drop rate {rate}");
}

/// Sends `n` frames paced by time (no relay to ask) and counts arrivals.
fn run_through_plain(lab: &Lab, n: u64) -> u64 {
    let rx = receiver(lab, Duration::from_secs(2), Arc::new(AtomicU64::new(0)));
    sender(lab, n, |_| 100, 500, |_| std::thread::sleep(Duration::from_millis(1)));
    rx.join().expect("rx").len() as u64
}
