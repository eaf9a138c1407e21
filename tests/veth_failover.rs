//! Parallel links between our nodes over real veth interfaces: three
//! namespaces, each with two Ethernet bearers on two bridges (two
//! switches). One bridge fails in the middle of a stream — group
//! broadcasts and unicasts one way, RDM the other way — and comes back:
//! the traffic fails over to the other link and back (as with the kernel,
//! net/tipc/node.c `tipc_node_check_state`, link.c `tipc_link_tnl_prepare`)
//! and every message arrives exactly once, in order, with no member or node
//! reported down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::link::LinkState;
use tipc_rs::{Eth, GroupEvent, Stack, StackEvent};
use tipc_testkit::netns::{Lab, NODE_IF, NODE_IF2, Netns};

/// A node on both interfaces of `ns`; `tipc1` at priority `prio1`.
fn start(ns: &Netns, name: &str, prio1: u8) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        let id = tipc_rs::wire::NodeId::from_text(&name).expect("identity");
        Stack::builder().bearer(Eth::new(NODE_IF)).bearer(Eth::new(NODE_IF2).priority(prio1)).node_id(id).start()
    })
    .expect("spawn")
    .join()
    .expect("start thread")
    .expect("stack starts")
}

/// Waits until every stack has both links up to every other.
fn wait_all_links(stacks: &[Stack], timeout: Duration) {
    let want = 2 * (stacks.len() - 1);
    let end = Instant::now() + timeout;
    loop {
        let up: Vec<usize> =
            stacks.iter().map(|s| s.links().iter().filter(|l| l.state == LinkState::Established).count()).collect();
        if up.iter().all(|&n| n == want) {
            return;
        }
        assert!(Instant::now() < end, "links up per node {up:?}, want {want} each");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sum of a link counter over a stack's links.
fn sum(s: &Stack, f: impl Fn(&tipc_rs::link::LinkStats) -> u64) -> u64 {
    s.links().iter().map(|l| f(&l.stats)).sum()
}

#[test]
fn three_nodes_two_bearers_a_switch_failing_mid_stream_loses_nothing() {
    let Some(lab) = rig("two bridges", || Lab::two_bridges("vfover", 3)) else { return };
    // bearer 1 (br1) at the higher priority carries all traffic: its
    // failure moves everything to br0, its return moves it back
    let stacks: Vec<Stack> = (0..3).map(|i| start(lab.node(i), &format!("fover-{i}"), 20)).collect();
    wait_all_links(&stacks, Duration::from_secs(10));
    let down: Vec<_> = stacks.iter().map(Stack::events).collect();
    let socks = common::join_group(&stacks);
    let ids: Vec<_> = socks.iter().map(|s| s.id()).collect();
    // RDM the other way: node 2 to node 0
    let rdm_rx = stacks[0].port_socket().expect("socket");
    let rdm_tx = stacks[2].port_socket().expect("socket");
    let rdm_to = rdm_rx.id();

    const N: u64 = 30_000;
    let received = Arc::new(AtomicBool::new(false));
    let mut socks = socks.into_iter();
    let (s0, s1, s2) = (socks.next().expect("s0"), socks.next().expect("s1"), socks.next().expect("s2"));
    let to1 = ids[1];
    let group_sender = std::thread::spawn(move || {
        for i in 0..N {
            let data = Bytes::from(i.to_be_bytes().to_vec());
            if i % 2 == 0 { s0.send_unicast(to1, data) } else { s0.broadcast(data) }.expect("group send");
        }
        s0
    });
    let rdm_sender = std::thread::spawn(move || {
        for i in 0..N {
            let data = Bytes::from(i.to_be_bytes().to_vec());
            rdm_tx.send_to(rdm_to.node, rdm_to.port, data).expect("rdm send");
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        rdm_tx
    });
    // receivers check order as they go
    let check_group = |s: tipc_rs::GroupSocket, every: bool, flag: Arc<AtomicBool>| {
        std::thread::spawn(move || {
            let mut next = if every { 0 } else { 1 };
            while next < N {
                match s.recv_timeout(Duration::from_secs(30)).expect("group message within 30 s") {
                    GroupEvent::Message { data, .. } => {
                        let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                        assert_eq!(seq, next, "group: lost, duplicated or reordered");
                        next += if every { 1 } else { 2 };
                        if seq > N / 4 {
                            flag.store(true, Ordering::Release);
                        }
                    }
                    GroupEvent::MemberDown { member, .. } => panic!("member {member} reported down"),
                    _ => {}
                }
            }
            s
        })
    };
    let r1 = check_group(s1, true, received.clone());
    let r2 = check_group(s2, false, Arc::new(AtomicBool::new(false)));
    let rdm = std::thread::spawn(move || {
        for i in 0..N {
            let m = rdm_rx.recv_timeout(Duration::from_secs(30)).expect("rdm message within 30 s");
            let seq = u64::from_be_bytes(m.data[..8].try_into().expect("8 bytes"));
            assert_eq!(seq, i, "rdm: lost, duplicated or reordered");
        }
        rdm_rx
    });
    // a quarter through, the preferred switch fails for 3 s
    let t0 = Instant::now();
    while !received.load(Ordering::Acquire) {
        assert!(t0.elapsed() < Duration::from_secs(60), "the stream never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    lab.set_bridge("br1", false).expect("br1 down");
    std::thread::sleep(Duration::from_secs(3));
    let failed_over = sum(&stacks[0], |s| s.failovers);
    lab.set_bridge("br1", true).expect("br1 up");
    let _ = group_sender.join().expect("group sender");
    let _ = rdm_sender.join().expect("rdm sender");
    let _ = r1.join().expect("receiver 1: every message once, in order");
    let _ = r2.join().expect("receiver 2: every broadcast once, in order");
    let _ = rdm.join().expect("rdm receiver: every message once, in order");
    // the links come back and take the traffic again
    wait_all_links(&stacks, Duration::from_secs(20));
    for (i, rx) in down.iter().enumerate() {
        let lost: Vec<_> = rx.try_iter().filter(|e| matches!(e, StackEvent::NodeDown(_))).collect();
        assert!(lost.is_empty(), "node {i} lost a node: {lost:?}");
    }
    let synchs = sum(&stacks[0], |s| s.synchs);
    eprintln!("{}", stacks[0].stats());
    assert!(failed_over >= 2, "node 0 failed both its links over: {failed_over}");
    assert!(synchs >= 2, "the returning links synched: {synchs}");
    let sent_after: Vec<u64> = stacks[0].links().iter().map(|l| l.stats.sent_pkts).collect();
    let probe = stacks[0].port_socket().expect("socket");
    let sink = stacks[1].port_socket().expect("socket");
    for i in 0..200u32 {
        probe.send_to(sink.id().node, sink.id().port, Bytes::from(i.to_be_bytes().to_vec())).expect("send");
    }
    for _ in 0..200 {
        sink.recv_timeout(Duration::from_secs(5)).expect("after the return");
    }
    let links = stacks[0].links();
    let moved: Vec<(u8, bool, u64)> = links
        .iter()
        .zip(&sent_after)
        .filter(|(l, _)| l.peer == ids[1].node)
        .map(|(l, b)| (l.bearer, l.active, l.stats.sent_pkts - b))
        .collect();
    eprintln!("to node 1 after the return: (bearer, active, packets) {moved:?}");
    // (200 small messages go in fewer packets: bundles)
    assert!(
        moved.iter().all(|&(b, active, n)| if b == 1 { active && n > 0 } else { !active && n == 0 }),
        "br1 carries the traffic again, br0 stands by: {moved:?}"
    );
    for s in stacks {
        s.shutdown();
    }
}

/// A bearer disabled at run time fails its links over (nothing lost) and
/// one enabled again makes them anew.
#[test]
fn a_bearer_disabled_and_enabled_at_run_time() {
    let Some(lab) = rig("two bridges", || Lab::two_bridges("vbdis", 2)) else { return };
    let mut stacks: Vec<Stack> = (0..2).map(|i| start(lab.node(i), &format!("bdis-{i}"), 10)).collect();
    wait_all_links(&stacks, Duration::from_secs(10));
    let rx = stacks[1].port_socket().expect("socket");
    let tx = stacks[0].port_socket().expect("socket");
    let to = rx.id();
    const N: u32 = 20_000;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            tx.send_to(to.node, to.port, Bytes::from(i.to_be_bytes().to_vec())).expect("send");
        }
        tx
    });
    let mut disabled = false;
    for i in 0..N {
        let m = rx.recv_timeout(Duration::from_secs(20)).expect("message");
        assert_eq!(u32::from_be_bytes(m.data[..4].try_into().expect("4 bytes")), i, "lost or reordered");
        if i == N / 3 && !disabled {
            // both bearers of node 0 carry traffic (equal priorities): take
            // away the one this sender's socket uses, or the other
            stacks[0].disable_bearer(1).expect("disable");
            disabled = true;
            assert_eq!(stacks[0].bearers().len(), 1);
            assert!(matches!(stacks[0].disable_bearer(1), Err(tipc_rs::Error::NoSuchBearer(1))));
        }
    }
    let _ = sender.join().expect("sender");
    assert!(stacks[1].links().iter().filter(|l| l.state == LinkState::Established).count() == 1);
    // an Ethernet bearer opens in its interface's namespace
    let s0 = stacks.remove(0);
    let s0 = lab.node(0).spawn("enable", move || {
        let id = s0.enable_bearer(Eth::new(NODE_IF2));
        (s0, id)
    });
    let (s0, id) = s0.expect("spawn").join().expect("enable thread");
    assert_eq!(id.expect("enable"), 1);
    stacks.insert(0, s0);
    wait_all_links(&stacks, Duration::from_secs(10));
    for s in stacks {
        s.shutdown();
    }
}
