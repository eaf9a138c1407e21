//! The UDP bearer between network namespaces on a veth bridge: three
//! nodes with IPv4 addresses find each other through the cluster's
//! multicast group, run a group and notice a killed node; and, with every
//! multicast datagram dropped on the way in (nftables), three nodes in
//! replicast mode still link, by their configured peers alone, while two
//! in multicast mode do not find each other.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{GroupEvent, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns};

/// Gives node `i` of `lab` the address 10.93.0.(i+1)/24.
fn addresses(lab: &Lab, n: usize) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| {
            let ip = format!("10.93.0.{}", i + 1);
            lab.node(i).ip(&["addr", "add", &format!("{ip}/24"), "dev", NODE_IF]).expect("address");
            format!("{ip}:6118").parse().expect("addr")
        })
        .collect()
}

/// A UDP stack in `ns` at `local`, listing `peers` (none: multicast).
fn start(ns: &Netns, local: SocketAddr, peers: Vec<SocketAddr>) -> Stack {
    ns.spawn("start", move || {
        let mut b = Stack::builder().udp(local);
        for p in peers {
            b = b.udp_peer(p);
        }
        b.start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

/// Drops (and counts) the IPv4 packets `ns` receives that match `rule`,
/// in an nftables table `table` of its own.
fn input_drop(ns: &Netns, table: &str, rule: &[&str]) {
    let _ = ns.exec(&["nft", "delete", "table", "ip", table]);
    ns.exec(&["nft", "add", "table", "ip", table]).expect("nft table");
    ns.exec(&["nft", "add", "chain", "ip", table, "in", "{ type filter hook input priority 0 ; }"]).expect("nft chain");
    let mut cmd = vec!["nft", "add", "rule", "ip", table, "in"];
    cmd.extend_from_slice(rule);
    cmd.extend_from_slice(&["counter", "drop"]);
    ns.exec(&cmd).expect("nft rule");
}

#[test]
fn multicast_discovery_a_group_and_a_killed_node() {
    let Some(lab) = rig("veth UDP multicast", || Lab::bridge("vudpm", 3)) else { return };
    let ips = addresses(&lab, 3);
    let mut n: Vec<Stack> = (0..3).map(|i| start(lab.node(i), ips[i], Vec::new())).collect();
    for s in &n {
        s.wait_for_nodes(2, Duration::from_secs(15)).expect("links through the multicast group");
    }
    let g = common::join_group(&n);
    // 500 broadcasts from node 0 arrive whole and in order at 1 and 2 (the
    // broadcast link goes to the group); the receivers read meanwhile, or
    // the group's flow control would hold the sender
    let mut g = g.into_iter();
    let sender = g.next().expect("member 1");
    let readers: Vec<_> = g
        .map(|s| {
            std::thread::spawn(move || {
                let mut next = 0u32;
                let end = Instant::now() + Duration::from_secs(20);
                while next < 500 {
                    assert!(Instant::now() < end, "got {next} of 500");
                    if let Ok(GroupEvent::Message { data, .. }) = s.recv_timeout(Duration::from_millis(100)) {
                        assert_eq!(data[..], next.to_be_bytes(), "in order");
                        next += 1;
                    }
                }
                s
            })
        })
        .collect();
    for k in 0..500u32 {
        sender.broadcast(Bytes::from(k.to_be_bytes().to_vec())).expect("bcast");
    }
    for r in readers {
        r.join().expect("a reader got all 500 in order");
    }
    let stats = n[0].stats().to_string();
    assert!(!stats.contains("broadcast-link: sent 0,"), "the broadcast link carried them:\n{stats}");
    // node 2 dies: the others see its member leave within the tolerance
    let t0 = Instant::now();
    n.pop().expect("node 2").kill();
    let end = t0 + Duration::from_secs(5);
    while n[0].up_nodes().len() != 1 {
        assert!(Instant::now() < end, "the killed node is still up");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("the killed node went down after {:?}", t0.elapsed());
}

#[test]
fn replicast_links_with_multicast_dropped() {
    let Some(lab) = rig("veth UDP replicast", || Lab::bridge("vudpr", 5)) else { return };
    if !common::have_tool("nft", "nftables") {
        return;
    }
    let ips = addresses(&lab, 5);
    for i in 0..5 {
        input_drop(lab.node(i), "nomcast", &["ip", "daddr", "224.0.0.0/4"]);
    }
    let n: Vec<Stack> = (0..3)
        .map(|i| {
            let peers = ips[..3].iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| *a).collect();
            start(lab.node(i), ips[i], peers)
        })
        .collect();
    for s in &n {
        s.wait_for_nodes(2, Duration::from_secs(15)).expect("links by replicast");
    }
    // names (the broadcast link, replicated) reach every node
    let sock = n[0].port_socket().expect("socket");
    sock.bind(tipc_rs::wire::ServiceRange::single(ServiceType(1000), Instance(9)), Scope::Cluster).expect("bind");
    let end = Instant::now() + Duration::from_secs(10);
    while n[1..].iter().any(|s| !s.name_table().iter().any(|p| p.range.stype == ServiceType(1000))) {
        assert!(Instant::now() < end, "the binding did not spread");
        std::thread::sleep(Duration::from_millis(20));
    }
    // and multicast was indeed dropped: two multicast-mode nodes (the
    // fourth and fifth namespaces) do not find each other
    let m = start(lab.node(3), ips[3], Vec::new());
    let m2 = start(lab.node(4), ips[4], Vec::new());
    assert!(m.wait_for_nodes(1, Duration::from_secs(3)).is_err(), "multicast should not pass here: {:?}", m.links());
    assert!(m2.up_nodes().is_empty());
}

/// 5 % of the UDP datagrams one node receives are dropped (nftables):
/// 3 000 RDM messages still arrive whole, once and in order, by the
/// link's retransmissions.
#[test]
fn five_percent_datagram_loss_loses_nothing() {
    let Some(lab) = rig("veth UDP loss", || Lab::bridge("vudpl", 2)) else { return };
    if !common::have_tool("nft", "nftables") {
        return;
    }
    let ips = addresses(&lab, 2);
    let a = start(lab.node(0), ips[0], vec![ips[1]]);
    let b = start(lab.node(1), ips[1], vec![ips[0]]);
    a.wait_for_nodes(1, Duration::from_secs(15)).expect("link");
    let ns = lab.node(1);
    input_drop(ns, "udploss", &["udp", "dport", "6118", "numgen", "random", "mod", "100", "<", "5"]);
    let rx = b.port_socket().expect("socket");
    let to = rx.id();
    let tx = a.port_socket().expect("socket");
    let reader = std::thread::spawn(move || {
        let mut next = 0u32;
        while next < 3000 {
            let m = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|e| panic!("after {next}: {e}"));
            assert_eq!(m.data[..4], next.to_be_bytes(), "once and in order");
            next += 1;
        }
    });
    for k in 0..3000u32 {
        let mut d = k.to_be_bytes().to_vec();
        d.resize(200 + (k as usize % 900), 7);
        tx.send_to(to.node, to.port, Bytes::from(d)).expect("send");
    }
    reader.join().expect("all 3000 arrived");
    let dropped = ns.exec(&["nft", "list", "table", "ip", "udploss"]).expect("nft list");
    let text = String::from_utf8_lossy(&dropped.stdout).to_string();
    let packets: u64 =
        text.split_whitespace().skip_while(|w| *w != "packets").nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(packets > 20, "the rule dropped datagrams: {text}");
    let retx: u64 = a.links().iter().map(|l| l.stats.retransmitted).sum();
    assert!(retx > 0, "the link retransmitted");
    eprintln!("{packets} datagrams dropped, {retx} retransmitted");
}
