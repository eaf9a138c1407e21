//! The topology service among three of our nodes on a veth bridge:
//! node-state and link-state subscriptions (with link names) that see a
//! killed node go within the tolerance (that the link goes first is the
//! socket layer's test: two subscriptions cannot show an order); service subscriptions with the PORTS and
//! SERVICE filters on bindings made elsewhere; a timeout that ends a
//! subscription; a cancel.

mod common;

use std::time::{Duration, Instant};

use common::rig;
use tipc_rs::topology::{EventKind, Subscription, TopologyEvent};
use tipc_rs::wire::{Instance, MemberId, NodeAddr, PortId, ServiceRange, ServiceType};
use tipc_rs::{Error, Scope, Stack, Subscriber};
use tipc_testkit::netns::{Lab, NODE_IF};

const SVC: ServiceType = ServiceType(1000);

fn nodes(lab: &Lab, tag: &str) -> Vec<Stack> {
    let v: Vec<Stack> = (0..3).map(|i| common::start_node(lab.node(i), &format!("{tag}-{i}"))).collect();
    for s in &v {
        s.wait_for_nodes(2, Duration::from_secs(10)).expect("links up");
    }
    v
}

/// The next event within 5 s, as (kind, found lower, found upper, socket).
fn next(sub: &Subscriber) -> (EventKind, u32, u32, MemberId) {
    let e: TopologyEvent = sub.recv_timeout(Duration::from_secs(5)).expect("an event");
    (e.kind, e.found.lower.0, e.found.upper.0, e.port)
}

/// Nothing more arrives within `ms`.
fn quiet(sub: &Subscriber, ms: u64) {
    match sub.recv_timeout(Duration::from_millis(ms)) {
        Err(Error::Timeout) => {}
        other => panic!("expected no event, got {other:?}"),
    }
}

fn range(lo: u32, hi: u32) -> ServiceRange {
    ServiceRange { stype: SVC, lower: Instance(lo), upper: Instance(hi) }
}

/// Waits until `s`'s name table holds `n` bindings of `SVC`.
fn wait_names(s: &Stack, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while s.name_table().iter().filter(|p| p.range.stype == SVC).count() != n {
        assert!(Instant::now() < end, "bindings did not spread");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn node_and_link_subscriptions_see_a_killed_node_go() {
    let Some(lab) = rig("veth topology nodes", || Lab::bridge("vtop", 3)) else { return };
    let mut n = nodes(&lab, "top");
    let addrs: Vec<NodeAddr> = n.iter().map(|s| s.address().expect("address")).collect();
    let ns = n[0].subscribe(Subscription::nodes()).expect("subscribe nodes");
    let ls = n[0].subscribe(Subscription::links()).expect("subscribe links");
    // what exists: all three nodes (port 0 on each), our two links (our
    // node, link id 0: bearer 0 at both ends)
    let mut up: Vec<(EventKind, u32, u32, MemberId)> = (0..3).map(|_| next(&ns)).collect();
    up.sort_by_key(|e| e.1);
    let mut want: Vec<_> =
        addrs.iter().map(|a| (EventKind::Published, a.0, a.0, MemberId { node: *a, port: PortId(0) })).collect();
    want.sort_by_key(|e| e.1);
    assert_eq!(up, want);
    let own_link =
        |peer: NodeAddr| (EventKind::Published, peer.0, peer.0, MemberId { node: addrs[0], port: PortId(0) });
    let mut links = vec![next(&ls), next(&ls)];
    links.sort_by_key(|e| e.1);
    let mut peers = vec![own_link(addrs[1]), own_link(addrs[2])];
    peers.sort_by_key(|e| e.1);
    assert_eq!(links, peers);
    quiet(&ns, 200);
    quiet(&ls, 10);
    // the link names the kernel would give them
    for (i, peer) in addrs.iter().enumerate().skip(1) {
        let want = format!("{}:{NODE_IF}-{}:{NODE_IF}", n[0].node_id(), n[i].node_id());
        assert_eq!(n[0].link_name(*peer, PortId(0)), Some(want));
    }
    // node 2 dies: its link and node go within the tolerance
    let t0 = Instant::now();
    n.pop().expect("node 2").kill();
    let gone = next(&ls);
    assert_eq!(gone, (EventKind::Withdrawn, addrs[2].0, addrs[2].0, MemberId { node: addrs[0], port: PortId(0) }));
    let gone = next(&ns);
    assert_eq!(gone, (EventKind::Withdrawn, addrs[2].0, addrs[2].0, MemberId { node: addrs[2], port: PortId(0) }));
    let took = t0.elapsed();
    let tolerance = n[0].links()[0].tolerance;
    assert!(took < Duration::from(tolerance) + Duration::from_secs(1), "took {took:?}");
    // the name of the lost link is still known
    assert!(n[0].link_name(addrs[2], PortId(0)).is_some());
    quiet(&ns, 200);
    quiet(&ls, 10);
}

#[test]
fn service_subscriptions_filter_time_out_and_cancel() {
    let Some(lab) = rig("veth topology services", || Lab::bridge("vtos", 3)) else { return };
    let n = nodes(&lab, "tos");
    let ports = n[0].subscribe(Subscription::ports(range(0, 100))).expect("subscribe");
    let service = n[0].subscribe(Subscription::service(range(0, 100))).expect("subscribe");
    let cancelled = n[0].subscribe(Subscription::ports(range(0, 100))).expect("subscribe");
    cancelled.cancel();
    let timed = n[0]
        .subscribe(Subscription::service(range(500, 600)).with_timeout(Duration::from_millis(300).into()))
        .expect("subscribe");
    // two sockets on 40 (nodes 1 and 2), one on 31-35 (node 1)
    let a = n[1].port_socket().expect("socket");
    let b = n[2].port_socket().expect("socket");
    let (ia, ib) = (a.id(), b.id());
    a.bind(range(40, 40), Scope::Cluster).expect("bind");
    wait_names(&n[0], 1);
    b.bind(range(40, 40), Scope::Cluster).expect("bind");
    wait_names(&n[0], 2);
    a.bind(range(31, 35), Scope::Cluster).expect("bind");
    wait_names(&n[0], 3);
    use EventKind::{Published as P, Withdrawn as W};
    assert_eq!([next(&ports), next(&ports), next(&ports)], [(P, 40, 40, ia), (P, 40, 40, ib), (P, 31, 35, ia)]);
    assert_eq!([next(&service), next(&service)], [(P, 40, 40, ia), (P, 31, 35, ia)]);
    // the timeout: one event with the subscribed range and port 0 on node
    // 0, then the end
    let t = timed.recv_timeout(Duration::from_secs(5)).expect("timeout event");
    let none = MemberId { node: NodeAddr(0), port: PortId(0) };
    assert_eq!((t.kind, t.found, t.port), (EventKind::Timeout, range(500, 600), none));
    assert!(matches!(timed.recv_timeout(Duration::from_millis(100)), Err(Error::SubscriptionEnded)));
    // one of the two on 40 goes: PORTS sees it, SERVICE does not; then the
    // last goes (its socket closes): both see it, naming that socket
    a.unbind(range(40, 40));
    wait_names(&n[0], 2);
    drop(b);
    wait_names(&n[0], 1);
    assert_eq!([next(&ports), next(&ports)], [(W, 40, 40, ia), (W, 40, 40, ib)]);
    assert_eq!(next(&service), (W, 40, 40, ib));
    // a late subscriber is told what exists
    let late = n[0].subscribe(Subscription::ports(range(0, 100))).expect("subscribe");
    assert_eq!(next(&late), (P, 31, 35, ia));
    for s in [&ports, &service, &late] {
        quiet(s, 100);
    }
}
