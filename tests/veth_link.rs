//! Two of our nodes over a real veth link (and through the fault relay).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::Stack;
use tipc_rs::fault::FaultConfig;
use tipc_testkit::netns::Lab;
use tipc_testkit::relay::Relay;

/// Sends `n` numbered messages of mixed sizes from `a` to `b`; checks all
/// arrive once, in order. Returns the elapsed time.
fn exchange(a: &Stack, b: &Stack, n: u64) -> Duration {
    let sa = a.port_socket().expect("socket");
    let sb = b.port_socket().expect("socket");
    let dest = sb.id();
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            let len = 8 + (i as usize * 7919) % 3000;
            let mut v = vec![(i % 251) as u8; len];
            v[..8].copy_from_slice(&i.to_be_bytes());
            sa.send_to(dest.node, dest.port, Bytes::from(v)).expect("send");
        }
        sa
    });
    for i in 0..n {
        let m = sb.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|e| panic!("message {i} of {n}: {e}"));
        let seq = u64::from_be_bytes(m.data[..8].try_into().expect("8 bytes"));
        assert_eq!(seq, i, "lost or out of order");
        assert_eq!(m.data.len(), 8 + (i as usize * 7919) % 3000);
        assert!(m.data[8..].iter().all(|&x| x == (i % 251) as u8), "payload intact");
    }
    let _sa = sender.join().expect("sender");
    t0.elapsed()
}

#[test]
fn two_nodes_link_up_within_two_seconds_and_exchange_100k_messages() {
    let Some(lab) = rig("veth link", || Lab::pair("vlink")) else { return };
    let t0 = Instant::now();
    let a = common::start_node(lab.node(0), "veth-a");
    let b = common::start_node(lab.node(1), "veth-b");
    let up = a.wait_for_nodes(1, Duration::from_secs(5)).expect("link up");
    b.wait_for_nodes(1, Duration::from_secs(5)).expect("link up on b");
    let took = t0.elapsed();
    eprintln!("link up after {took:?}");
    assert!(took < Duration::from_secs(2), "link up took {took:?}");
    assert_eq!(up, vec![b.address().expect("b addr")]);
    let t = exchange(&a, &b, 100_000);
    eprintln!("100k messages in {t:?}; links a: {:?}", a.links()[0].stats);
    a.shutdown();
    b.shutdown();
}

#[test]
fn five_percent_loss_through_the_relay_loses_nothing_and_keeps_order() {
    let Some(lab) = rig("veth link 5% loss", || Lab::relayed_pair("vloss")) else { return };
    let relay = Relay::start(lab.relay_ns().expect("relay"), "ra", "rb", FaultConfig::loss(0.05), 77).expect("relay");
    let a = common::start_node(lab.node(0), "loss-a");
    let b = common::start_node(lab.node(1), "loss-b");
    a.wait_for_nodes(1, Duration::from_secs(10)).expect("link up");
    b.wait_for_nodes(1, Duration::from_secs(10)).expect("link up on b");
    let t = exchange(&a, &b, 20_000);
    let st = relay.stats();
    eprintln!("20k messages through 5% loss in {t:?}; relay {st:?}; a: {:?}", a.links()[0].stats);
    assert!(st[0].faults.dropped > 100, "the relay did drop frames");
    assert!(a.links()[0].stats.retransmitted > 0);
    a.shutdown();
    b.shutdown();
}
