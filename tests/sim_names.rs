//! Name table, name distribution and the broadcast link in the simulator.
#![allow(clippy::needless_range_loop)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use tipc_rs::fault::{FaultConfig, Rng};
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Instance, NodeAddr, PortId, Scope, ServiceRange, ServiceType};
use tipc_rs::{CoreEvent, Dest, Error, SendOpts};

fn seed() -> u64 {
    std::env::var("TIPC_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0005)
}

fn up(net: &mut SimNet, n: usize) -> Vec<NodeAddr> {
    let ix = net.add_nodes(n);
    let ok =
        net.run_while(Duration::from_secs(20), |net| ix.iter().any(|&i| net.core(i).link().up_nodes().len() + 1 < n));
    assert!(ok, "seed {}: links did not come up", net.seed());
    ix.iter().map(|&i| net.core(i).address().expect("addr")).collect()
}

/// The table as seen by node `i`: (type, lower, upper, node, port) of cluster bindings.
fn table(net: &mut SimNet, i: usize) -> BTreeSet<(u32, u32, u32, NodeAddr, PortId)> {
    net.core(i)
        .names()
        .iter()
        .filter(|p| p.scope == Scope::Cluster && !p.range.stype.is_reserved())
        .map(|p| (p.range.stype.0, p.range.lower.0, p.range.upper.0, p.node, p.port))
        .collect()
}

#[test]
fn publish_withdraw_storms_under_loss_converge_and_crashes_purge() {
    let mut net = SimNet::new(seed());
    let addrs = up(&mut net, 8);
    net.set_faults(FaultConfig { drop: 0.10, ..FaultConfig::default() });
    let mut rng = Rng::new(seed());
    let ports: Vec<PortId> = (0..8).map(|i| net.with(i, |c, _| c.open_port())).collect();
    let mut bound: BTreeMap<usize, Vec<ServiceRange>> = BTreeMap::new();
    for round in 0..2000 {
        let i = rng.below(8) as usize;
        let v = bound.entry(i).or_default();
        if v.is_empty() || rng.chance(0.6) {
            let lo = rng.below(100) as u32;
            let r = ServiceRange {
                stype: ServiceType(1000 + rng.below(3) as u32),
                lower: Instance(lo),
                upper: Instance(lo + rng.below(5) as u32),
            };
            if !v.contains(&r) {
                v.push(r);
                let scope = if rng.chance(0.2) { Scope::Node } else { Scope::Cluster };
                net.with(i, |c, _| c.bind(ports[i], r, scope)).expect("bind");
            }
        } else {
            let k = rng.below(v.len() as u64) as usize;
            let r = v.remove(k);
            net.with(i, |c, _| c.unbind(ports[i], r));
        }
        if round % 20 == 0 {
            net.run_for(Duration::from_millis(3));
        }
    }
    net.run_for(Duration::from_secs(10));
    let t0 = table(&mut net, 0);
    for i in 1..8 {
        assert_eq!(table(&mut net, i), t0, "seed {}: node {i} disagrees", net.seed());
    }
    // what is there is exactly the cluster-scope bindings still held
    let held: usize = (0..8)
        .map(|i| {
            net.core(i)
                .names()
                .iter()
                .filter(|p| p.node == addrs[i] && p.scope == Scope::Cluster && p.range.stype.0 >= 64)
                .count()
        })
        .sum();
    assert_eq!(t0.len(), held);
    assert!(!t0.is_empty());
    // a crash purges the node's names everywhere
    net.crash(3);
    net.run_for(Duration::from_secs(4));
    for i in (0..8).filter(|&i| i != 3) {
        assert!(
            table(&mut net, i).iter().all(|e| e.3 != addrs[3]),
            "seed {}: node {i} keeps names of the crashed node",
            net.seed()
        );
    }
}

#[test]
fn fifty_thousand_broadcasts_to_seven_under_loss_arrive_once_in_order() {
    let n_msgs: u64 = std::env::var("TIPC_SIM_MSGS").ok().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let mut net = SimNet::new(seed());
    up(&mut net, 8);
    let ports: Vec<PortId> = (0..8).map(|i| net.with(i, |c, _| c.open_port())).collect();
    let range = ServiceRange { stype: ServiceType(2000), lower: Instance(0), upper: Instance(0) };
    for i in 1..8 {
        net.with(i, |c, _| c.bind(ports[i], range, Scope::Cluster)).expect("bind");
    }
    net.run_for(Duration::from_secs(1));
    net.set_faults(FaultConfig { drop: 0.05, ..FaultConfig::default() });
    let mut next = vec![0u64; 8];
    let mut sent = 0u64;
    let end = net.now() + Duration::from_secs(3600);
    while next[1..].iter().any(|&n| n < n_msgs) {
        while sent < n_msgs {
            let data = Bytes::from(sent.to_be_bytes().to_vec());
            match net.with(0, |c, now| c.send(now, ports[0], Dest::Range(range), data, SendOpts::default())) {
                Ok(()) => sent += 1,
                Err(Error::WouldBlock(_)) => break,
                Err(e) => panic!("seed {}: {e}", net.seed()),
            }
        }
        let t = net.now() + Duration::from_millis(2);
        net.run_until(t);
        for i in 1..8 {
            for (_, ev) in net.take_events(i) {
                if let CoreEvent::Message(m) = ev {
                    let s = u64::from_be_bytes(m.data[..8].try_into().expect("8"));
                    assert_eq!(s, next[i], "seed {}: node {i} got {s}, expected {}", net.seed(), next[i]);
                    next[i] += 1;
                }
            }
        }
        assert!(net.now() < end, "seed {}: stalled at {next:?}", net.seed());
    }
    let st = net.core(0).stats();
    let (bsent, retx, _, _) = net.core(0).link().bcast_stats();
    eprintln!(
        "seed {}: {n_msgs} x 7 delivered; broadcast sends {}, bcast packets {bsent}, retransmitted {retx}, replicast copies {}",
        net.seed(),
        st.bcast_sends,
        st.replicast_copies
    );
    assert_eq!(st.bcast_sends, n_msgs, "every message went on the broadcast link");
    assert_eq!(st.replicast_copies, 0);
}

/// Service types 0–63 are reserved, as in the kernel (net/tipc/socket.c:
/// bind and group join below TIPC_RESERVED_TYPES fail with EACCES), in
/// cluster and node scope; 64 is the first a socket may bind. A refused
/// bind publishes nothing, here or on the peer.
#[test]
fn binding_a_reserved_service_type_is_refused() {
    let mut net = SimNet::new(seed());
    up(&mut net, 2);
    let port = net.with(0, |c, _| c.open_port());
    net.run_for(Duration::from_millis(500));
    let seen_before = net.core(1).names().iter().count();
    for (stype, scope) in [(0, Scope::Cluster), (1, Scope::Cluster), (1, Scope::Node), (63, Scope::Cluster)] {
        let r = ServiceRange { stype: ServiceType(stype), lower: Instance(5), upper: Instance(5) };
        match net.with(0, |c, _| c.bind(port, r, scope)) {
            Err(Error::ReservedType(t)) => assert_eq!(t, stype),
            other => panic!("bind to type {stype} ({scope:?}): {other:?}"),
        }
    }
    let msg = Error::ReservedType(1).to_string();
    assert!(msg.contains("0–63") && msg.contains("reserved"), "the error names the rule: {msg}");
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.core(1).names().iter().count(), seen_before, "nothing published");
    let r = ServiceRange { stype: ServiceType(64), lower: Instance(5), upper: Instance(5) };
    net.with(0, |c, _| c.bind(port, r, Scope::Cluster)).expect("type 64 is the first free one");
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.core(1).names().iter().count(), seen_before + 1);
}
