//! Unit tests of the peer nodes: the table and its limits, links going up and down, through link layers on a
//! simulated segment ([`crate::testkit`]).

use super::*;
use crate::testkit::*;

/// With the peer table full, a newcomer takes the place of the node
/// silent longest among those whose link is down; a linked node is
/// never evicted, however long since it was heard.
#[test]
fn a_full_peer_table_evicts_the_longest_silent_down_node_only() {
    let mut s = Seg::up(2);
    let t0 = s.now + MS(1);
    for n in 0..(MAX_PEERS as u32 - 1) {
        fake_discovery(&mut s.nodes[0], t0 + Duration::from_micros(u64::from(n)), n);
    }
    assert_eq!(s.nodes[0].links().len(), MAX_PEERS);
    let before = s.nodes[0].stats().peers_forgotten;
    fake_discovery(&mut s.nodes[0], t0 + MS(100), 1_000_000);
    assert_eq!(s.nodes[0].stats().peers_forgotten, before + 1, "the newcomer got a place");
    let known: Vec<NodeAddr> = s.nodes[0].links().iter().map(|l| l.peer).collect();
    assert!(known.contains(&addr(2)), "the linked node stays");
    assert!(known.contains(&NodeAddr(0x0200_0000 + 1_000_000)));
    assert!(!known.contains(&NodeAddr(0x0200_0000)), "the longest silent went");
    assert!(s.nodes[0].is_up(addr(2)));
}

/// A node whose link never came up is forgotten a PEER_EXPIRY after it
/// was last heard; a linked node is not.
#[test]
fn silent_unlinked_nodes_expire() {
    let mut s = Seg::up(2);
    let t0 = s.now;
    fake_discovery(&mut s.nodes[0], t0, 7);
    assert_eq!(s.nodes[0].links().len(), 2);
    s.run(PEER_EXPIRY - MS(500));
    assert_eq!(s.nodes[0].links().len(), 2);
    s.run(MS(1000));
    let known: Vec<NodeAddr> = s.nodes[0].links().iter().map(|l| l.peer).collect();
    assert_eq!(known, [addr(2)]);
    assert_eq!(s.nodes[0].stats().peers_forgotten, 1);
}

/// A node whose link fails is reported down once; discovery then speeds
/// up again (every 125 ms at first) to find it back.
#[test]
fn a_lost_link_reports_the_node_down_and_speeds_up_discovery() {
    let mut s = Seg::up(2);
    s.events(0);
    s.drop = Box::new(|_, _, _| true);
    s.run(MS(2500));
    let downs =
        s.events(0).into_iter().filter(|e| matches!(e, LinkEvent::NodeDown { addr: a } if *a == addr(2))).count();
    assert_eq!(downs, 1);
    assert!(!s.nodes[0].is_up(addr(2)));
    let t = s.now;
    assert!(s.nodes[0].poll_timeout().is_some_and(|d| d <= t + MS(125)), "discovery within 125 ms");
    s.drop = Box::new(|_, _, _| false);
    s.run(MS(3000));
    assert!(s.nodes[0].is_up(addr(2)), "found again");
}

/// The broadcast acknowledgement a packet to the peer carried is
/// remembered, so that supervision does not send it again; a call that
/// sent nothing changes nothing.
#[test]
fn the_broadcast_ack_sent_is_remembered() {
    let mut s = Seg::up(2);
    s.nodes[0].broadcast(s.now, bmsg(1)).expect("sent");
    s.flush();
    let now = s.now;
    let rx = &mut s.nodes[1];
    assert_eq!(rx.peers[&addr(1)].bc.rcv_nxt, SeqNo(2));
    let before = rx.peers[&addr(1)].bc.acked_sent;
    rx.on_link(now, addr(1), 0, |_, _, _| ());
    assert_eq!(rx.peers[&addr(1)].bc.acked_sent, before, "nothing sent");
    rx.send(now, addr(1), umsg(2, 1, 0, 10)).expect("sent");
    assert_eq!(rx.peers[&addr(1)].bc.acked_sent, SeqNo(1), "the data packet carried ack 1");
}

/// A link whose ACTIVATE and first STATE were lost comes up on the first
/// data packet (the broadcast init), and the node is reported up once.
#[test]
fn a_link_comes_up_on_data_when_its_activate_is_lost() {
    let mut s = Seg::new(2);
    let mut lost = 0;
    s.drop = Box::new(move |from, to, t| {
        let proto = matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.msg_type != LinkProtoType::Reset);
        if from == 0 && to == 1 && proto && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    s.run(MS(3000));
    assert!(s.nodes[1].is_up(addr(1)) && s.nodes[0].is_up(addr(2)));
    let ups = s.events(1).into_iter().filter(|e| matches!(e, LinkEvent::NodeUp { .. })).count();
    assert_eq!(ups, 1);
}

/// A peer's RESET of a new session takes the link down without a
/// stopping RESET from us (the new session must live); a peer that says
/// it is stopping while our link is coming up gets our stopping RESET.
#[test]
fn peer_reset_and_peer_stopping_as_the_kernel_handles_them() {
    let mut s = Seg::up(2);
    let now = s.now;
    let reset = |s: &mut Seg, stopping: bool| {
        let p = s.nodes[1].peers.get_mut(&addr(1)).expect("peer");
        p.e0_mut().link.reset();
        p.e0_mut().link.build_proto(LinkProtoType::Reset, false, false, 0, stopping, &BcCtx::default())
    };
    let r = reset(&mut s, false);
    sent(&mut s.nodes[0]);
    s.nodes[0].handle_frame(now, mac(2), r);
    let tx = sent(&mut s.nodes[0]);
    let stops =
        tx.iter().filter(|t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.peer_stopping)).count();
    assert_eq!(stops, 0, "no stopping RESET after a peer reset");
    assert_eq!(s.nodes[0].peers[&addr(2)].e0().link.state, LinkState::Establishing);
    let r = reset(&mut s, true);
    s.nodes[0].handle_frame(now, mac(2), r);
    let tx = sent(&mut s.nodes[0]);
    let stops =
        tx.iter().filter(|t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.peer_stopping)).count();
    assert_eq!(stops, 1, "our link was coming up: it resets and says so");
    assert_eq!(s.nodes[0].peers[&addr(2)].e0().link.state, LinkState::Reset);
}

/// With the table full and every known node linked, a newcomer is
/// refused and counted.
#[test]
fn a_full_table_of_linked_nodes_refuses_newcomers() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    for n in 0..MAX_PEERS as u32 {
        fake_discovery(&mut l, now, n);
    }
    for p in l.peers.values_mut() {
        p.node_up = true;
    }
    fake_discovery(&mut l, now, 1_000_000);
    assert_eq!(l.stats().peers_refused, 1);
    assert_eq!(l.stats().peers_forgotten, 0);
    assert_eq!(l.links().len(), MAX_PEERS);
}
