//! Node and address conflicts on one segment, as the kernel resolves them
//! (net/tipc/discover.c `tipc_disc_rcv`, net/tipc/node.c
//! `tipc_node_try_addr`): the address trial moves a newcomer off an address
//! in use — whoever holds it, whatever its identity — and every conflict
//! is reported as an event, never met in silence.

use tipc_rs::sim::{NodeIx, SimNet};
use tipc_rs::wire::{Duration, NodeAddr};
use tipc_rs::{CoreEvent, NodeCore};

fn seed() -> u64 {
    std::env::var("TIPC_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xc0f1_1c75)
}

fn address(net: &mut SimNet, i: NodeIx) -> NodeAddr {
    net.core(i).address().unwrap_or_else(|| panic!("seed {}: node {i} has no address", net.seed()))
}

fn conflicts(net: &mut SimNet, i: NodeIx) -> Vec<String> {
    net.take_events(i)
        .into_iter()
        .filter_map(|(_, e)| match e {
            CoreEvent::Conflict(c) => Some(c.to_string()),
            _ => None,
        })
        .collect()
}

fn linked(core: &NodeCore, to: NodeAddr) -> bool {
    core.link().up_nodes().contains(&to)
}

/// Two nodes configured with one identity, started 3 s apart: the second
/// one's trial meets the first one's address, moves to another, and the two
/// link — as two Linux nodes with one identity do.
#[test]
fn a_second_node_with_our_identity_moves_to_another_address_and_links() {
    let mut net = SimNet::new(seed());
    let first = net.add_node("dup-node", |_| {});
    net.run_for(Duration::from_secs(3));
    let second = net.add_node("dup-node", |_| {});
    net.run_for(Duration::from_secs(6));
    let (a, b) = (address(&mut net, first), address(&mut net, second));
    assert_ne!(a, b, "seed {}: both nodes took address {a}", net.seed());
    assert!(linked(net.core(first), b) && linked(net.core(second), a), "seed {}: no link between {a} and {b}", seed());
    let told = conflicts(&mut net, first);
    assert!(told.iter().any(|c| c.contains("our identity")), "the first node says nothing: {told:?}");
    let moved = conflicts(&mut net, second);
    assert!(moved.iter().any(|c| c.contains("is taken")), "the second node says nothing: {moved:?}");
}

/// Two fixed (legacy) addresses that are the same: no trial can move
/// either; they never link, and both report the other.
#[test]
fn two_nodes_fixed_at_one_address_report_each_other_and_do_not_link() {
    let mut net = SimNet::new(seed());
    let addr = NodeAddr(0x0100_1001);
    let fixed = |c: &mut tipc_rs::link::LinkConfig| c.addr_mode = tipc_rs::link::AddrMode::Fixed(addr);
    let x = net.add_node("fixed-x", fixed);
    let y = net.add_node("fixed-y", fixed);
    net.run_for(Duration::from_secs(5));
    assert!(net.core(x).link().up_nodes().is_empty() && net.core(y).link().up_nodes().is_empty());
    for i in [x, y] {
        let c = conflicts(&mut net, i);
        assert!(c.iter().any(|c| c.contains("uses our address")), "node {i}: {c:?}");
    }
}

/// A node of another cluster is ignored, as by the kernel, but reported
/// once (not at every discovery message) and counted.
#[test]
fn a_node_of_another_cluster_is_reported_once_and_ignored() {
    let mut net = SimNet::new(seed());
    let ours = net.add_node("home", |_| {});
    let _other = net.add_node("stranger", |c| c.net_id = 4712);
    net.run_for(Duration::from_secs(10));
    assert!(net.core(ours).link().up_nodes().is_empty());
    let c = conflicts(&mut net, ours);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].contains("cluster 4712"), "{c:?}");
    assert_eq!(net.core(ours).link().stats().conflicts, 1);
}
