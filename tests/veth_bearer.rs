//! The Ethernet bearer on real veth links in private network namespaces.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{mixed_size, numbered_msg, rig, seq_of};
use tipc_rs::bearer::{Bearer, BearerConfig, BearerError};
use tipc_rs::wire::MacAddr;
use tipc_testkit::netns::{Lab, NODE_IF};

/// Receives until `want` frames arrived or nothing came for `idle`; returns the sequence numbers.
fn collect(b: &Bearer, want: usize, idle: Duration) -> Vec<(u64, usize, MacAddr)> {
    let rx = b.rx().expect("channel mode");
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        match rx.recv_timeout(idle) {
            Ok(batch) => {
                for f in batch {
                    got.push((seq_of(&f.msg).unwrap_or(u64::MAX), f.msg.len(), f.src.mac().unwrap_or_default()));
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn hundred_thousand_mixed_frames_arrive_complete_and_in_order() {
    let Some(lab) = rig("bearer 100k", || Lab::pair("b100k")) else { return };
    const N: u64 = 100_000;
    let mac_b = lab.node(1).mac(NODE_IF).expect("mac");
    let received = Arc::new(AtomicU64::new(0));
    let r2 = received.clone();
    let rx = lab
        .node(1)
        .spawn("rx", move || {
            let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("open bearer b");
            let rx = b.rx().expect("channel mode").clone();
            let mut next = 0u64;
            let mut sizes_ok = true;
            while next < N {
                let Ok(batch) = rx.recv_timeout(Duration::from_secs(5)) else { break };
                for f in batch {
                    assert_eq!(seq_of(&f.msg), Some(next), "frame out of order or lost");
                    sizes_ok &= f.msg.len() == mixed_size(next, 1500);
                    next += 1;
                }
                r2.store(next, Ordering::Release);
            }
            (next, sizes_ok, b.stats())
        })
        .expect("spawn");
    let tx = lab
        .node(0)
        .spawn("tx", move || {
            let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("open bearer a");
            // wait for the receiver's socket
            std::thread::sleep(Duration::from_millis(200));
            let tx = b.tx();
            let t0 = Instant::now();
            for i in 0..N {
                // a rate the receiver keeps up with: at most 2000 frames in flight
                while i.saturating_sub(received.load(Ordering::Acquire)) > 2000 {
                    std::thread::yield_now();
                    assert!(
                        t0.elapsed() < Duration::from_secs(60),
                        "receiver stalled at {}",
                        received.load(Ordering::Relaxed)
                    );
                }
                tx.send(mac_b, numbered_msg(mixed_size(i, 1500), i)).expect("send");
            }
            let secs = t0.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_millis(100));
            (b.stats(), secs)
        })
        .expect("spawn");
    let (sent_stats, secs) = tx.join().expect("tx thread");
    let (got, sizes_ok, rx_stats) = rx.join().expect("rx thread");
    eprintln!("100k frames in {secs:.2}s; tx {sent_stats:?}; rx {rx_stats:?}");
    assert_eq!(got, N);
    assert!(sizes_ok, "a frame arrived with the wrong length");
    assert_eq!(sent_stats.tx_frames, N);
    assert_eq!(rx_stats.rx_frames, N);
    assert_eq!(rx_stats.drop_kernel, 0);
}

#[test]
fn broadcast_reaches_every_namespace_and_never_comes_back() {
    let Some(lab) = rig("bearer broadcast", || Lab::bridge("bbcast", 4)) else { return };
    const PER: u64 = 200;
    let macs: Vec<MacAddr> = (0..4).map(|i| lab.node(i).mac(NODE_IF).expect("mac")).collect();
    let start = Arc::new(std::sync::Barrier::new(4));
    let mut hs = Vec::new();
    for i in 0..4 {
        let start = start.clone();
        hs.push(
            lab.node(i)
                .spawn("node", move || {
                    let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("open");
                    start.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    let tx = b.tx();
                    for s in 0..PER {
                        tx.send(MacAddr::BROADCAST, numbered_msg(64 + (s as usize % 900), (i as u64) << 32 | s))
                            .expect("send");
                        if s % 50 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    let got = collect(&b, 3 * PER as usize, Duration::from_secs(2));
                    (got, b.stats())
                })
                .expect("spawn"),
        );
    }
    for (i, h) in hs.into_iter().enumerate() {
        let (got, stats) = h.join().expect("node");
        assert_eq!(got.len(), 3 * PER as usize, "node {i} got {} broadcasts", got.len());
        for (seq, _, src) in &got {
            let from = (seq >> 32) as usize;
            assert_ne!(from, i, "node {i} received its own broadcast");
            assert_eq!(*src, macs[from], "source MAC matches the sender");
        }
        for from in (0..4).filter(|f| *f != i) {
            let seqs: Vec<u64> =
                got.iter().filter(|g| (g.0 >> 32) as usize == from).map(|g| g.0 & 0xffff_ffff).collect();
            assert_eq!(seqs, (0..PER).collect::<Vec<_>>(), "node {i} from {from}: complete and in order");
        }
        assert_eq!(stats.tx_frames, PER);
        assert_eq!(stats.drop_own, 0, "the kernel does not even loop our frames back");
    }
}

#[test]
fn each_error_case_is_typed() {
    let Some(lab) = rig("bearer errors", || Lab::pair("berr")) else { return };
    let ns = lab.node(0);
    ns.ip(&["link", "add", "small0", "type", "veth", "peer", "name", "small1"]).expect("veth small");
    ns.ip(&["link", "set", "small0", "mtu", "68", "up"]).expect("mtu");
    ns.ip(&["link", "add", "down0", "type", "veth", "peer", "name", "down1"]).expect("veth down");
    let r = ns
        .spawn("errors", || {
            let missing = Bearer::open(BearerConfig::new("nope0")).map(|_| ()).unwrap_err();
            let down = Bearer::open(BearerConfig::new("down0")).map(|_| ()).unwrap_err();
            let small = Bearer::open(BearerConfig::new("small0")).map(|_| ()).unwrap_err();
            let b = Bearer::open(BearerConfig::new(NODE_IF)).expect("the good one opens");
            let big = b.tx().send(MacAddr::BROADCAST, bytes::Bytes::from(vec![0u8; 1501])).unwrap_err();
            // capabilities are per thread: this one gives up CAP_NET_RAW
            tipc_testkit::sys::drop_effective_caps_on_this_thread().expect("capset");
            let perm = Bearer::open(BearerConfig::new(NODE_IF)).map(|_| ()).unwrap_err();
            (missing, down, small, big, perm)
        })
        .expect("spawn")
        .join()
        .expect("thread");
    assert!(matches!(r.0, BearerError::NoSuchInterface(ref n) if n == "nope0"), "{:?}", r.0);
    assert!(matches!(r.1, BearerError::InterfaceDown(ref n) if n == "down0"), "{:?}", r.1);
    assert!(matches!(r.2, BearerError::MtuTooSmall { mtu: 68, min: 100, .. }), "{:?}", r.2);
    assert!(matches!(r.3, BearerError::TooLarge { len: 1501, mtu: 1500 }), "{:?}", r.3);
    assert!(matches!(r.4, BearerError::PermissionDenied), "{:?}", r.4);
    assert!(r.4.to_string().contains("setcap cap_net_raw+ep"));
}
