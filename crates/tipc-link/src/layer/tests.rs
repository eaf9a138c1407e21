//! Unit tests of the link layer: nodes wired to one simulated segment,
//! time in the test's hands.

use super::*;
use crate::config::caps;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

/// Node `i`: fixed address 1.1.i, its own MAC, identity and seed.
fn cfg(i: u8) -> LinkConfig {
    let mut c = LinkConfig::new(NodeId::from_mac(mac(i)), mac(i), 1500);
    c.addr_mode = AddrMode::Fixed(addr(i));
    c.seed = u64::from(i);
    c
}

fn addr(i: u8) -> NodeAddr {
    NodeAddr(0x0100_1000 + u32::from(i))
}

/// Decides whether the frame from node index `from` to `to` is lost.
type DropFn = Box<dyn FnMut(usize, usize, &Transmit) -> bool>;

/// Layers on one segment: frames to the broadcast MAC reach every other
/// layer, others the layer with that MAC; `drop` may lose frames.
struct Seg {
    nodes: Vec<LinkLayer>,
    now: Instant,
    /// Frames sent, in order, with sender index.
    log: Vec<(usize, Transmit)>,
    /// When each frame of `log` was sent.
    times: Vec<Instant>,
    drop: DropFn,
}

impl Seg {
    fn new(n: u8) -> Seg {
        let now = Instant::ZERO;
        Seg {
            nodes: (1..=n).map(|i| LinkLayer::new(cfg(i), now)).collect(),
            now,
            log: Vec::new(),
            times: Vec::new(),
            drop: Box::new(|_, _, _| false),
        }
    }

    /// Delivers every queued frame, repeatedly, until none is left.
    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    any = true;
                    self.log.push((i, t.clone()));
                    self.times.push(self.now);
                    let src = self.nodes[i].config().mac;
                    for j in 0..self.nodes.len() {
                        if j != i
                            && (t.dst.is_broadcast() || t.dst == self.nodes[j].config().mac)
                            && !(self.drop)(i, j, &t)
                        {
                            self.nodes[j].handle_frame(self.now, src, t.msg.clone());
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("frames never stop");
    }

    /// Runs timers and frames until `d` has passed.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            let next = self.nodes.iter().filter_map(LinkLayer::poll_timeout).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for l in &mut self.nodes {
                        if l.poll_timeout().is_some_and(|t| t <= now) {
                            l.handle_timeout(now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn events(&mut self, i: usize) -> Vec<LinkEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    /// Runs until every pair of nodes is linked.
    fn up(n: u8) -> Seg {
        let mut s = Seg::new(n);
        s.run(MS(3000));
        for l in &s.nodes {
            assert_eq!(l.up_nodes().len(), usize::from(n) - 1, "links up");
        }
        s
    }
}

/// The generator is SplitMix64: its reference outputs for seed 0.
#[test]
fn the_generator_is_splitmix64() {
    let mut r = Rng(0);
    assert_eq!([r.next(), r.next(), r.next()], [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
}

/// Two nodes find each other and link up; each knows the other's
/// capabilities; nodes never heard of are neither up nor known.
#[test]
fn two_nodes_link_up_and_know_each_others_capabilities() {
    let mut s = Seg::new(2);
    assert!(!s.nodes[0].is_up(addr(2)));
    s.run(MS(3000));
    assert!(s.nodes[0].is_up(addr(2)) && s.nodes[1].is_up(addr(1)));
    assert!(!s.nodes[0].is_up(addr(9)));
    assert_eq!(s.nodes[0].peer_caps(addr(2)), Some(caps::OURS));
    assert_eq!(s.nodes[0].peer_caps(addr(9)), None);
    let ev = s.events(0);
    assert!(
        ev.iter().any(|e| matches!(e, LinkEvent::NodeUp { addr: a, caps: c, .. } if *a == addr(2) && *c == caps::OURS))
    );
}

/// A discovery request from `prev` with identity `id` at `media`:
/// signature 1, our capabilities, our cluster, for any node.
fn disc_msg(prev: NodeAddr, id: NodeId, media: MediaAddr) -> DiscoveryMsg {
    DiscoveryMsg {
        msg_type: DiscoveryType::Req,
        flags: Flags { non_seq: true, ..Flags::default() },
        capabilities: caps::OURS,
        signature: 1,
        dest_domain: NodeAddr(0),
        prev_node: prev,
        net_id: 4711,
        media,
        peer_net_hash: 0,
        suggested: NodeAddr(0),
        node_id: Some(id),
    }
}

fn enc(d: DiscoveryMsg) -> Bytes {
    Msg::Discovery(d).to_bytes().expect("discovery")
}

/// A discovery request from node `n` (a made-up identity) to `l`.
fn fake_discovery(l: &mut LinkLayer, now: Instant, n: u32) {
    let m = mac_of(n);
    l.handle_frame(now, m, enc(disc_msg(NodeAddr(0x0200_0000 + n), NodeId::from_mac(m), MediaAddr::Eth(m))));
}

fn mac_of(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([6, 0, b[0], b[1], b[2], b[3]])
}

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

/// A broadcast data message numbered `i`.
fn bmsg(i: u8) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Mcast, Bytes::from(vec![i; 100]));
    d.orig_node = addr(1);
    Msg::Data(d).to_bytes().expect("data")
}

/// The broadcast gap (STATE word 8) that node `from` reported to the
/// others in the frames logged since `since`.
fn bcast_gaps(s: &Seg, from: usize, since: usize) -> Vec<u16> {
    s.log[since..]
        .iter()
        .filter(|(i, _)| *i == from)
        .filter_map(|(_, t)| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) if m.msg_type == LinkProtoType::State => Some(m.bcast_gap),
            _ => None,
        })
        .collect()
}

/// A receiver that missed a broadcast packet reports the gap in its
/// STATE messages until it is repaired, then reports none; every
/// broadcast is delivered once, in order.
#[test]
fn broadcast_gaps_are_reported_until_repaired() {
    let mut s = Seg::up(2);
    s.events(1);
    let mut lost = false;
    s.drop = Box::new(move |from, to, t| {
        let second = user_seq(&t.msg) == Some((User::LowImportance, SeqNo(2)));
        if from == 0 && to == 1 && t.dst.is_broadcast() && second && !lost {
            lost = true;
            return true;
        }
        false
    });
    let since = s.log.len();
    for i in 0..4 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.run(MS(3000));
    let got: Vec<u8> = s
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::Deliver { bcast: true, msg, .. } => msg.last().copied(),
            _ => None,
        })
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
    let gaps = bcast_gaps(&s, 1, since);
    assert!(gaps.contains(&1), "the missing packet was reported: {gaps:?}");
    assert_eq!(gaps.last(), Some(&0), "and no gap once repaired: {gaps:?}");
    assert!(s.nodes[0].bcast_stats().1 >= 1, "retransmitted");
}

/// A discovery message of type `t` from `prev`, identity `id`, media
/// address `media`, signature `sig`, capabilities `caps`, to `dest`.
#[allow(clippy::too_many_arguments)]
fn disc(
    t: DiscoveryType,
    prev: NodeAddr,
    id: NodeId,
    media: MacAddr,
    sig: u16,
    caps: u16,
    dest: NodeAddr,
    suggested: NodeAddr,
) -> Bytes {
    enc(DiscoveryMsg {
        msg_type: t,
        capabilities: caps,
        signature: sig,
        dest_domain: dest,
        suggested,
        ..disc_msg(prev, id, MediaAddr::Eth(media))
    })
}

fn conflicts(l: &mut LinkLayer) -> usize {
    std::iter::from_fn(|| l.poll_event()).filter(|e| matches!(e, LinkEvent::Conflict { .. })).count()
}

fn sent(l: &mut LinkLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn disc_types(tx: &[Transmit]) -> Vec<DiscoveryType> {
    tx.iter()
        .filter_map(|t| match Msg::parse(t.msg.clone()) {
            Ok(Msg::Discovery(d)) => Some(d.msg_type),
            _ => None,
        })
        .collect()
}

/// Discovery from another cluster, from our own MAC, naming the broadcast
/// MAC or addressed to another node is foreign; an unknown discovery type
/// is malformed; none of them creates a peer.
#[test]
fn foreign_and_malformed_discovery_creates_nothing() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    let (id, m) = (NodeId::from_mac(mac(9)), mac(9));
    let req = |media, dest| disc(DiscoveryType::Req, addr(9), id, media, 1, caps::OURS, dest, NodeAddr(0));
    l.handle_frame(now, m, enc(DiscoveryMsg { net_id: 4712, ..disc_msg(addr(9), id, MediaAddr::Eth(m)) }));
    l.handle_frame(now, m, req(mac(1), NodeAddr(0)));
    l.handle_frame(now, m, req(MacAddr::BROADCAST, NodeAddr(0)));
    l.handle_frame(now, m, req(m, addr(5)));
    assert_eq!(l.stats().foreign, 4);
    l.handle_frame(now, m, disc(DiscoveryType::Unknown(7), addr(9), id, m, 1, 0, NodeAddr(0), NodeAddr(0)));
    assert_eq!(l.stats().malformed, 1);
    assert_eq!(l.stats().disc_rx, 5);
    assert!(l.links().is_empty());
    // addressed to us, or to anyone: a peer, and a response to a request
    sent(&mut l);
    l.handle_frame(now, m, req(m, addr(1)));
    assert_eq!(l.links().len(), 1);
    let tx = sent(&mut l);
    assert_eq!(disc_types(&tx), [DiscoveryType::Resp]);
    assert_eq!(tx[0].dst, m, "the response goes to the requester");
    assert_eq!(l.stats().disc_tx, 1);
}

/// A node claiming our address, or address 0, is a conflict; an identity
/// already known at another address is a conflict; a known address with
/// another identity is a conflict. None of them changes the peer table.
#[test]
fn address_and_identity_conflicts_are_reported() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    let (id9, m9) = (NodeId::from_mac(mac(9)), mac(9));
    let req = |prev, id| disc(DiscoveryType::Req, prev, id, m9, 1, caps::OURS, NodeAddr(0), NodeAddr(0));
    l.handle_frame(now, m9, req(addr(1), id9));
    l.handle_frame(now, m9, req(NodeAddr(0), id9));
    assert_eq!(conflicts(&mut l), 2);
    assert!(l.links().is_empty());
    l.handle_frame(now, m9, req(addr(9), id9));
    assert_eq!(l.links().len(), 1);
    l.handle_frame(now, m9, req(addr(8), id9));
    l.handle_frame(now, m9, req(addr(9), NodeId::from_mac(mac(8))));
    assert_eq!(conflicts(&mut l), 2);
    assert_eq!(l.links().len(), 1);
    assert_eq!(l.links()[0].peer_id, id9);
}

/// What a repeated discovery from a known node does, by whether its
/// signature and MAC match what we know and whether the link is up
/// (net/tipc/discover.c, tipc_disc_rcv).
#[test]
fn repeated_discovery_follows_the_kernels_matrix() {
    // a linked peer (node 2) and what it sends
    let id2 = NodeId::from_mac(mac(2));
    for (same_sig, same_mac) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut s = Seg::up(2);
        let now = s.now;
        sent(&mut s.nodes[0]);
        s.events(0);
        let sig = if same_sig { sig2_of(&s.nodes[0]) } else { sig2_of(&s.nodes[0]) ^ 1 };
        let m = if same_mac { mac(2) } else { mac(7) };
        let l = &mut s.nodes[0];
        l.handle_frame(now, m, disc(DiscoveryType::Req, addr(2), id2, m, sig, caps::OURS, NodeAddr(0), NodeAddr(0)));
        let tx = sent(l);
        let c = conflicts(l);
        assert!(l.is_up(addr(2)), "an up link stays up ({same_sig}, {same_mac})");
        assert!(disc_types(&tx).is_empty(), "no response to a linked node ({same_sig}, {same_mac})");
        assert_eq!(c, usize::from(!same_mac), "a second MAC is a conflict ({same_sig}, {same_mac})");
        assert_eq!(l.peers[&addr(2)].mac, mac(2));
        assert_eq!(l.peers[&addr(2)].signature, if same_mac { sig } else { sig2_of(l) });
    }
    // a known node whose link is down
    for (same_sig, same_mac) in [(true, true), (false, true), (true, false), (false, false)] {
        let now = Instant::ZERO;
        let mut l = LinkLayer::new(cfg(1), now);
        l.handle_frame(now, mac(2), disc(DiscoveryType::Req, addr(2), id2, mac(2), 5, 0, NodeAddr(0), NodeAddr(0)));
        l.handle_timeout(now);
        sent(&mut l);
        for _ in 0..6 {
            l.peers.get_mut(&addr(2)).expect("peer").link.tick(now, &BcCtx::default(), false, &mut Vec::new());
        }
        let sig = if same_sig { 5 } else { 6 };
        let m = if same_mac { mac(2) } else { mac(7) };
        let t1 = now + MS(10);
        l.handle_frame(t1, m, disc(DiscoveryType::Req, addr(2), id2, m, sig, caps::OURS, NodeAddr(0), NodeAddr(0)));
        let tx = sent(&mut l);
        assert_eq!(disc_types(&tx), [DiscoveryType::Resp], "({same_sig}, {same_mac})");
        assert_eq!(tx[0].dst, m);
        let p = &l.peers[&addr(2)];
        assert_eq!(
            (p.mac, p.signature, p.caps, p.heard),
            (m, sig, if same_sig && same_mac { 0 } else { caps::OURS }, t1)
        );
        assert_eq!(p.link.peer_caps, p.caps);
        assert_eq!(p.link.stats.resets, 0, "a link already down is not reset again");
        let mut resets = Vec::new();
        l.peers.get_mut(&addr(2)).expect("peer").link.tick(t1, &BcCtx::default(), false, &mut resets);
        assert_eq!(resets.len(), usize::from(same_mac), "RESETs hastened for the same MAC");
        assert_eq!(conflicts(&mut l), 0);
        // a response is not answered
        l.handle_frame(t1, m, disc(DiscoveryType::Resp, addr(2), id2, m, sig, caps::OURS, NodeAddr(0), NodeAddr(0)));
        assert!(disc_types(&sent(&mut l)).is_empty());
    }
}

fn sig2_of(l: &LinkLayer) -> u16 {
    l.peers[&addr(2)].signature
}

/// During its address trial a node broadcasts TRIAL every 125 ms; a node
/// holding that address (or knowing another identity there) answers
/// TRIAL_FAIL with a free address, which the new node then tries; a node
/// that knows the identity suggests its old address. After a quiet trial
/// period the address is confirmed (net/tipc/discover.c, tipc_disc_rcv).
#[test]
fn the_address_trial_moves_off_a_taken_address() {
    let now = Instant::ZERO;
    let mut fresh_cfg = cfg(3);
    fresh_cfg.addr_mode = AddrMode::Hashed;
    let proposed = fresh_cfg.node_id.hash_addr();
    let mut holder_cfg = cfg(2);
    holder_cfg.addr_mode = AddrMode::Fixed(proposed);
    let mut s = Seg::new(0);
    s.nodes = vec![LinkLayer::new(fresh_cfg, now), LinkLayer::new(holder_cfg, now)];
    assert_eq!(s.nodes[0].address(), None);
    s.run(MS(100));
    let trials: Vec<NodeAddr> = s
        .log
        .iter()
        .filter(|(i, _)| *i == 0)
        .filter_map(|(_, t)| match Msg::parse(t.msg.clone()) {
            Ok(Msg::Discovery(d)) if d.msg_type == DiscoveryType::Trial => Some(d.prev_node),
            _ => None,
        })
        .collect();
    let fails: Vec<DiscoveryMsg> = s
        .log
        .iter()
        .filter(|(i, _)| *i == 1)
        .filter_map(|(_, t)| match Msg::parse(t.msg.clone()) {
            Ok(Msg::Discovery(d)) if d.msg_type == DiscoveryType::TrialFail => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(fails.len(), 1);
    let suggested = fails[0].suggested;
    assert_eq!(fails[0].dest_domain, proposed);
    assert!(suggested != proposed && suggested.0 != 0);
    assert_eq!(trials, [proposed, suggested], "the suggestion is tried at once");
    let own_disc =
        |s: &Seg| disc_types(&s.log.iter().filter(|(i, _)| *i == 0).map(|(_, t)| t.clone()).collect::<Vec<_>>());
    assert!(!own_disc(&s).contains(&DiscoveryType::Req), "no requests during the trial");
    assert_eq!(s.nodes[0].stats().disc_tx, own_disc(&s).len() as u64, "every discovery message counted");
    let holder_disc = disc_types(&s.log.iter().filter(|(i, _)| *i == 1).map(|(_, t)| t.clone()).collect::<Vec<_>>());
    assert_eq!(s.nodes[1].stats().disc_tx, holder_disc.len() as u64, "TRIAL_FAIL counted too");
    assert_eq!(conflicts(&mut s.nodes[0]), 1);
    // the TRIAL_FAIL came at once: a full trial period from then
    s.run(MS(850));
    assert_eq!(s.nodes[0].address(), None, "the trial restarted with the suggestion");
    s.run(MS(100));
    assert_eq!(s.nodes[0].address(), Some(suggested));
    s.run(MS(3000));
    assert!(s.nodes[0].is_up(proposed) && s.nodes[1].is_up(suggested));
    // a node that knows the identity suggests the address it had
    let mut again = LinkLayer::new(cfg(5), now);
    let id = NodeId::from_mac(mac(9));
    again.handle_frame(now, mac(9), disc(DiscoveryType::Req, addr(9), id, mac(9), 1, 0, NodeAddr(0), NodeAddr(0)));
    sent(&mut again);
    again.handle_frame(now, mac(9), disc(DiscoveryType::Trial, addr(5), id, mac(9), 1, 0, NodeAddr(0), NodeAddr(0)));
    let tx = sent(&mut again);
    match Msg::parse(tx[0].msg.clone()) {
        Ok(Msg::Discovery(d)) => assert_eq!((d.msg_type, d.suggested), (DiscoveryType::TrialFail, addr(9))),
        other => panic!("expected TRIAL_FAIL, got {other:?}"),
    }
    // a trial for a free address, or by the identity that holds it, is fine
    again.handle_frame(now, mac(9), disc(DiscoveryType::Trial, addr(6), id, mac(9), 1, 0, NodeAddr(0), NodeAddr(0)));
    again.handle_frame(now, mac(9), disc(DiscoveryType::Trial, addr(9), id, mac(9), 1, 0, NodeAddr(0), NodeAddr(0)));
    assert!(sent(&mut again).is_empty());
}

/// TRIAL_FAIL is taken only during our trial, for our proposed address,
/// with a suggestion.
#[test]
fn trial_fail_is_taken_only_when_it_applies() {
    let now = Instant::ZERO;
    let mut c = cfg(3);
    c.addr_mode = AddrMode::Hashed;
    let proposed = c.node_id.hash_addr();
    let id = NodeId::from_mac(mac(9));
    let fail = |dest, sugg| disc(DiscoveryType::TrialFail, addr(9), id, mac(9), 1, 0, dest, sugg);
    let mut l = LinkLayer::new(c, now);
    l.handle_frame(now, mac(9), fail(addr(7), addr(8)));
    l.handle_frame(now, mac(9), fail(proposed, NodeAddr(0)));
    assert_eq!(conflicts(&mut l), 0);
    l.handle_timeout(now + MS(1000));
    assert_eq!(l.address(), Some(proposed));
    l.handle_frame(now, mac(9), fail(proposed, addr(8)));
    assert_eq!(conflicts(&mut l), 0, "a confirmed address stays");
    assert_eq!(l.address(), Some(proposed));
}

/// A unicast data message from node `from` to node `to`, numbered `i`.
fn umsg(from: u8, to: u8, i: u8, len: usize) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Direct, Bytes::from(vec![i; len]));
    d.orig_node = addr(from);
    d.dest_node = addr(to);
    Msg::Data(d).to_bytes().expect("data")
}

fn delivered(s: &mut Seg, i: usize) -> Vec<(NodeAddr, bool, Bytes)> {
    s.events(i)
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::Deliver { from, bcast, msg } => Some((from, bcast, msg)),
            _ => None,
        })
        .collect()
}

/// Messages sent to a linked node are delivered there in order, large
/// ones reassembled; sends to unknown or unlinked nodes and messages of
/// impossible length are refused with their error.
#[test]
fn unicast_reaches_the_linked_node_and_errors_are_typed() {
    let mut s = Seg::up(2);
    s.events(1);
    let now = s.now;
    for (i, len) in [(0u8, 10usize), (1, 5000), (2, 60_000)] {
        s.nodes[0].send(now, addr(2), umsg(1, 2, i, len)).expect("sent");
    }
    s.run(MS(100));
    let got = delivered(&mut s, 1);
    assert_eq!(
        got.iter().map(|(f, b, m)| (*f, *b, m.len(), m[m.len() - 1])).collect::<Vec<_>>(),
        [(addr(1), false, 10 + 32, 0), (addr(1), false, 5000 + 32, 1), (addr(1), false, 60_000 + 32, 2)]
    );
    assert_eq!(s.nodes[0].send(now, addr(9), umsg(1, 9, 0, 10)), Err(LinkError::NoLink(addr(9))));
    assert!(matches!(s.nodes[0].send(now, addr(2), Bytes::from_static(&[0; 8])), Err(LinkError::BadMessage(_))));
    let huge = Bytes::from(vec![0u8; tipc_wire::MAX_MSG_SIZE + 1]);
    assert!(matches!(s.nodes[0].send(now, addr(2), huge), Err(LinkError::BadMessage(_))));
    assert_eq!(s.nodes[0].max_pkt(addr(2)), 1500 - INT_H_SIZE);
    assert_eq!(s.nodes[0].max_pkt(addr(9)), 1500 - INT_H_SIZE);
    assert!(s.nodes[0].all_acked());
}

/// Frames claiming a peer's address from another MAC, LINK_PROTOCOL
/// messages for another node, unparsable protocol messages and frames
/// too short for a header are counted and dropped; the link stays up.
#[test]
fn forged_misrouted_and_malformed_frames_are_counted_and_dropped() {
    let mut s = Seg::up(2);
    let now = s.now;
    let l = &mut s.nodes[0];
    let base = l.stats();
    let state = {
        let p = l.peers.get_mut(&addr(2)).expect("peer");
        p.link.build_proto(LinkProtoType::State, false, false, 0, false, &BcCtx::default())
    };
    // our own STATE names node 2 as destination; as if node 2 sent it to us:
    let from2 = edited(&state, |h| h.set_prev_node(addr(2)));
    l.handle_frame(now, mac(7), from2.clone());
    assert_eq!(l.stats().foreign, base.foreign + 1, "wrong MAC");
    l.handle_frame(now, mac(2), from2.clone());
    assert_eq!(l.stats().foreign, base.foreign + 2, "addressed to node 2, not us");
    // for us, with a gap of 7 packets that were never sent
    let Ok(Msg::LinkProto(mut bad)) = Msg::parse(from2.clone()) else { panic!("a STATE") };
    bad.hdr.dest_node = addr(1);
    bad.gap = 7;
    l.handle_frame(now, mac(2), Msg::LinkProto(bad).to_bytes().expect("STATE"));
    l.handle_frame(now, mac(2), Bytes::from_static(&[0; 10]));
    let st = l.stats();
    assert!(st.malformed > base.malformed, "short frame");
    assert!(l.is_up(addr(2)));
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

/// Discovery requests go out at 125 ms, doubling up to 1 s while no link
/// is up, and up to 60 s once one is (net/tipc/discover.c).
#[test]
fn discovery_backs_off_to_one_second_alone_and_a_minute_linked() {
    let mut s = Seg::new(1);
    s.run(MS(10_000));
    assert_eq!(req_gaps(&s, 0, 0), [125, 250, 500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    assert_eq!(s.nodes[0].stats().disc_tx, 13, "every request counted");
    let mut linked = Seg::up(2);
    let since = linked.log.len();
    linked.run(MS(200_000));
    let gaps = req_gaps(&linked, 0, since);
    assert_eq!(&gaps[gaps.len() - 2..], [60_000, 60_000], "{gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] == (w[0] * 2).min(60_000)), "doubling: {gaps:?}");
}

/// Milliseconds between the discovery requests node `i` sent, from log
/// entry `since` on.
fn req_gaps(s: &Seg, i: usize, since: usize) -> Vec<u64> {
    let at: Vec<Instant> = s.log[since..]
        .iter()
        .zip(&s.times[since..])
        .filter(|((n, t), _)| {
            *n == i && matches!(Msg::parse(t.msg.clone()), Ok(Msg::Discovery(d)) if d.msg_type == DiscoveryType::Req)
        })
        .map(|(_, at)| *at)
        .collect();
    at.windows(2).map(|w| w[1].since(w[0]).as_millis()).collect()
}

/// Broadcast: refused before the address is confirmed and for impossible
/// lengths; a full backlog refuses with Congested and says Uncongested
/// once it drains; packets are released when every receiver acked them.
#[test]
fn broadcast_errors_backlog_and_release() {
    let now = Instant::ZERO;
    let mut c = cfg(1);
    c.addr_mode = AddrMode::Hashed;
    let mut fresh = LinkLayer::new(c, now);
    assert_eq!(fresh.broadcast(now, bmsg(0)), Err(LinkError::NotReady));
    let mut s = Seg::up(2);
    let now = s.now;
    assert!(matches!(s.nodes[0].broadcast(now, Bytes::from_static(&[0; 8])), Err(LinkError::BadMessage(_))));
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    let mut n = 0;
    while s.nodes[0].broadcast(now, bmsg(1)).is_ok() {
        n += 1;
        assert!(n < 10_000);
    }
    assert_eq!(n, 2050, "a window of 50 and a backlog of 2000");
    assert_eq!(s.nodes[0].broadcast(now, bmsg(1)), Err(LinkError::Congested(NodeAddr(0))));
    s.events(0);
    s.drop = Box::new(|_, _, _| false);
    s.run(MS(5000));
    assert!(s.events(0).iter().any(|e| matches!(e, LinkEvent::Uncongested { node } if *node == NodeAddr(0))));
    let (sent, _, inflight, backlog) = s.nodes[0].bcast_stats();
    assert_eq!((sent, inflight, backlog), (2050, 0, 0));
    assert_eq!(s.nodes[0].bcast_receivers(), 1);
    assert_eq!(delivered(&mut s, 1).iter().filter(|(_, b, _)| *b).count(), 2050);
}

/// Stopping sends each up peer a stopping RESET, and the layer then does
/// nothing more: no timers, frames or timeouts are handled.
#[test]
fn shutdown_says_goodbye_and_goes_quiet() {
    let mut s = Seg::up(2);
    s.flush();
    let now = s.now;
    s.nodes[0].shutdown(now);
    let tx = sent(&mut s.nodes[0]);
    let stops: Vec<bool> = tx
        .iter()
        .filter_map(|t| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) if m.msg_type == LinkProtoType::Reset => Some(m.peer_stopping),
            _ => None,
        })
        .collect();
    assert_eq!(stops, [true]);
    assert_eq!(s.nodes[0].poll_timeout(), None);
    s.nodes[0].handle_timeout(now + MS(10_000));
    s.nodes[0].handle_frame(now, mac(2), umsg(2, 1, 0, 10));
    assert!(sent(&mut s.nodes[0]).is_empty());
    assert_eq!(s.nodes[0].stats().malformed, 0);
}

/// Node 1 broadcasts messages `range` while every broadcast frame is lost
/// on the way; returns the frames, for the test to deliver by hand.
fn withheld_broadcasts(s: &mut Seg, range: std::ops::Range<u8>) -> Vec<Bytes> {
    s.drop = Box::new(|from, _, t| from == 0 && t.dst.is_broadcast());
    let since = s.log.len();
    for i in range {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.flush();
    bcast_frames(s, 0, since)
}

/// `frame` with the header fields `f` sets.
fn edited(frame: &[u8], f: impl FnOnce(&mut UncheckedHeader<bytes::BytesMut>)) -> Bytes {
    let mut h = UncheckedHeader::new(bytes::BytesMut::from(frame));
    f(&mut h);
    h.into_inner().freeze()
}

/// The user and sequence number of a frame, if it has a valid header.
fn user_seq(frame: &Bytes) -> Option<(User, SeqNo)> {
    Header::new_checked(frame.clone()).ok().map(|h| (h.user(), h.seqno()))
}

/// Whether a frame is a data message of low importance (what [`bmsg`] sends).
fn is_low_data(frame: &Bytes) -> bool {
    user_seq(frame).is_some_and(|(u, _)| u == User::LowImportance)
}

/// The broadcast frames node `i` sent since log entry `since`.
fn bcast_frames(s: &Seg, i: usize, since: usize) -> Vec<Bytes> {
    s.log[since..]
        .iter()
        .filter(|(n, t)| *n == i && t.dst.is_broadcast() && is_low_data(&t.msg))
        .map(|(_, t)| t.msg.clone())
        .collect()
}

/// Broadcast packets seen before, from another cluster, further ahead
/// than the window, or from a peer whose broadcast link is not
/// synchronised yet are dropped and counted; packets ahead of a gap wait
/// and are delivered in order once it is filled.
#[test]
fn broadcast_receive_drops_what_it_must_and_orders_the_rest() {
    let mut s = Seg::up(2);
    let f = withheld_broadcasts(&mut s, 0..3);
    assert_eq!(f.len(), 3);
    s.events(1);
    let now = s.now;
    let rx = &mut s.nodes[1];
    let base = rx.stats();
    rx.handle_frame(now, mac(1), f[2].clone());
    rx.handle_frame(now, mac(1), f[1].clone());
    assert!(delivered_of(rx).is_empty(), "1 is missing");
    rx.handle_frame(now, mac(1), f[0].clone());
    assert_eq!(delivered_of(rx), [0, 1, 2]);
    rx.handle_frame(now, mac(1), f[1].clone());
    assert_eq!(rx.stats().bcast_dropped, base.bcast_dropped + 1, "seen before");
    let far = edited(&f[0], |h| h.set_seqno(SeqNo(4 + crate::link::RCV_WINDOW + 1)));
    rx.handle_frame(now, mac(1), far);
    assert_eq!(rx.stats().bcast_dropped, base.bcast_dropped + 2, "past the window");
    rx.handle_frame(now, mac(1), edited(&f[0], |h| h.set_mc_netid(4712)));
    assert_eq!(rx.stats().foreign, base.foreign + 1, "another cluster");
    // not synchronised: dropped, even the packet it expects next
    let next = rx.peers[&addr(1)].bc.rcv_nxt;
    rx.peers.get_mut(&addr(1)).expect("peer").bc.synced = false;
    rx.handle_frame(now, mac(1), edited(&f[0], |h| h.set_seqno(next)));
    assert_eq!(rx.stats().bcast_dropped, base.bcast_dropped + 3);
    assert!(delivered_of(rx).is_empty());
}

fn delivered_of(l: &mut LinkLayer) -> Vec<u8> {
    std::iter::from_fn(|| l.poll_event())
        .filter_map(|e| match e {
            LinkEvent::Deliver { bcast: true, msg, .. } => msg.last().copied(),
            _ => None,
        })
        .collect()
}

/// A receiver acknowledges the broadcast link explicitly after 16
/// packets, and reports a gap when the first packet after it waits (and
/// again every 16 more).
#[test]
fn broadcast_receivers_ack_every_sixteen_and_report_gaps_at_once() {
    let mut s = Seg::up(2);
    let f = withheld_broadcasts(&mut s, 0..40);
    let now = s.now;
    let rx = &mut s.nodes[1];
    sent(rx);
    for m in &f[..15] {
        rx.handle_frame(now, mac(1), m.clone());
    }
    assert!(sent(rx).is_empty(), "no ack for 15");
    rx.handle_frame(now, mac(1), f[15].clone());
    let acks: Vec<(SeqNo, u16)> = sent(rx)
        .iter()
        .filter_map(|t| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) => Some((m.hdr.bcast_ack, m.bcast_gap)),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [(SeqNo(16), 0)]);
    // 17 is lost: 18 waits and a gap report goes at once, the next at 34
    let mut reports = Vec::new();
    for (k, m) in f[17..].iter().enumerate() {
        rx.handle_frame(now, mac(1), m.clone());
        if !sent(rx).is_empty() {
            reports.push(k + 1);
        }
    }
    assert_eq!(reports, [1, 17]);
}

/// A node that joins later is synchronised to the broadcast link at its
/// current point: the BCAST_PROTOCOL init after the first STATE names
/// our last broadcast, so it gets only what is sent from then on.
#[test]
fn a_late_node_joins_the_broadcast_link_where_it_stands() {
    let mut s = Seg::up(2);
    for i in 0..3 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.run(MS(100));
    let since = s.log.len();
    s.nodes.push(LinkLayer::new(cfg(3), s.now));
    s.run(MS(3000));
    assert!(s.nodes[0].is_up(addr(3)));
    // what node 1 sent node 3 first: a STATE, then the init
    let to3: Vec<(User, Option<SeqNo>)> = s.log[since..]
        .iter()
        .filter(|(i, t)| *i == 0 && t.dst == mac(3))
        .filter_map(|(_, t)| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) if m.msg_type == LinkProtoType::State => Some((User::LinkProtocol, None)),
            Ok(Msg::BcastProto(b)) => {
                assert_eq!(b.hdr.orig_node, addr(1));
                assert_eq!(b.word5, BC_ACK_INVALID, "the init's broadcast ack is invalid");
                Some((User::BcastProtocol, Some(b.last_bcast_sent)))
            }
            _ => None,
        })
        .collect();
    let init_at = to3.iter().position(|x| x.0 == User::BcastProtocol).expect("an init");
    assert!(init_at > 0 && to3[init_at - 1].0 == User::LinkProtocol, "STATE first: {to3:?}");
    assert_eq!(to3[init_at].1, Some(SeqNo(3)));
    s.events(2);
    s.events(1);
    s.nodes[0].broadcast(s.now, bmsg(9)).expect("sent");
    s.run(MS(100));
    assert_eq!(delivered_of(&mut s.nodes[2]), [9]);
    assert_eq!(delivered_of(&mut s.nodes[1]), [9]);
    assert_eq!(s.nodes[0].bcast_stats().2, 0, "released: both acked");
}

/// A receiver that missed the last broadcast packets hears of them from
/// the sender's probe 10 ms later (not at the next supervision tick) and
/// gets them retransmitted, at most once per 5 ms.
#[test]
fn a_lost_broadcast_tail_is_recovered_within_milliseconds() {
    let mut s = Seg::up(3);
    s.events(1);
    let mut lost = 0;
    s.drop = Box::new(move |from, to, t| {
        let data = is_low_data(&t.msg);
        if from == 0 && to == 1 && t.dst.is_broadcast() && data && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    // two packets, both lost to node 2 only
    s.nodes[0].broadcast(s.now, bmsg(1)).expect("sent");
    s.nodes[0].broadcast(s.now, bmsg(2)).expect("sent");
    s.run(MS(5));
    assert!(delivered_of(&mut s.nodes[1]).is_empty());
    assert_eq!(delivered_of(&mut s.nodes[2]), [1, 2]);
    assert_eq!(s.nodes[0].bcast_stats().2, 2, "kept for node 2");
    s.run(MS(30));
    assert_eq!(delivered_of(&mut s.nodes[1]), [1, 2], "recovered by the probe");
    let (_, retx, inflight, _) = s.nodes[0].bcast_stats();
    assert_eq!((retx, inflight), (2, 0));
}

/// With packets in flight the next deadline is the fast probe 10 ms
/// after the last progress; the variant without fast probes skips it.
#[test]
fn poll_timeout_with_and_without_fast_probes() {
    let mut s = Seg::up(2);
    s.run(MS(400));
    let now = s.now;
    s.nodes[0].send(now, addr(2), umsg(1, 2, 0, 10)).expect("sent");
    let l = &s.nodes[0];
    let later = l.poll_timeout_except_fast_probe().expect("a deadline");
    assert!(later > now, "{later}: the next tick, link deadline or discovery");
    assert_eq!(l.poll_timeout(), Some(later.min(now + crate::link::FAST_PROBE)));
    // with nothing in flight both agree
    let quiet = LinkLayer::new(cfg(5), now);
    assert_eq!(quiet.poll_timeout(), quiet.poll_timeout_except_fast_probe());
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
    rx.on_link(now, addr(1), |_, _, _| ());
    assert_eq!(rx.peers[&addr(1)].bc.acked_sent, before, "nothing sent");
    rx.send(now, addr(1), umsg(2, 1, 0, 10)).expect("sent");
    assert_eq!(rx.peers[&addr(1)].bc.acked_sent, SeqNo(1), "the data packet carried ack 1");
}

/// Discovery messages are non-sequenced and carry our signature with its
/// top bit given to capability bit 0, as the kernel's (its capabilities
/// field overlaps the signature's bit 15).
#[test]
fn discovery_messages_carry_signature_and_non_seq() {
    for caps_bit0 in [0u16, 1] {
        let mut c = cfg(1);
        c.capabilities = caps::OURS | caps_bit0;
        let mut l = LinkLayer::new(c, Instant::ZERO);
        l.handle_timeout(Instant::ZERO);
        let tx = sent(&mut l);
        let Ok(Msg::Discovery(d)) = Msg::parse(tx[0].msg.clone()) else { panic!("a discovery request") };
        assert!(d.flags.non_seq);
        assert_eq!(d.signature, (l.signature & 0x7fff) | (caps_bit0 << 15));
        assert_eq!(d.capabilities, caps::OURS | caps_bit0);
        assert_ne!(l.signature & 0x7fff, 0, "a signature this test can see");
    }
}

/// Every up peer receives the broadcast link.
#[test]
fn every_up_peer_receives_the_broadcast_link() {
    let s = Seg::up(3);
    assert_eq!(s.nodes[0].bcast_receivers(), 2);
    assert_eq!(Seg::new(1).nodes[0].bcast_receivers(), 0);
}

/// Message lengths at the edges: the smallest header and the largest
/// message are accepted for broadcast and unicast, one byte more is
/// refused; a message of exactly the largest packet goes whole, one byte
/// more in fragments that fit the MTU and name us as origin.
#[test]
fn broadcast_and_unicast_lengths_at_the_edges() {
    let mut s = Seg::up(2);
    let now = s.now;
    let min = edited(&bmsg(0)[..tipc_wire::MIN_H_SIZE], |h| {
        h.set_header_len(tipc_wire::MIN_H_SIZE);
        h.set_size(tipc_wire::MIN_H_SIZE);
    });
    // a 44-byte MCAST header naming a destination node, then filler
    let exact = |len: usize| {
        let mut b = bytes::BytesMut::from(&bmsg(0)[..44]);
        b.resize(len, 7);
        edited(&b, |h| {
            h.set_size(len);
            h.set_dest_node(NodeAddr(0x1234));
        })
    };
    let l = &mut s.nodes[0];
    assert_eq!(l.broadcast(now, min.clone()), Ok(()));
    assert_eq!(l.send(now, addr(2), min), Ok(()));
    let max = tipc_wire::MAX_MSG_SIZE;
    assert_eq!(l.broadcast(now, exact(max)), Ok(()));
    assert_eq!(l.send(now, addr(2), exact(max)), Ok(()));
    let over = Bytes::from(vec![0u8; max + 1]);
    assert!(matches!(l.broadcast(now, over.clone()), Err(LinkError::BadMessage(_))));
    assert!(matches!(l.send(now, addr(2), over), Err(LinkError::BadMessage(_))));
    let since = s.log.len();
    s.flush();
    let pkt = 1500 - INT_H_SIZE;
    s.nodes[0].broadcast(s.now, exact(pkt)).expect("whole");
    s.nodes[0].broadcast(s.now, exact(pkt + 1)).expect("fragments");
    s.flush();
    let frames: Vec<Bytes> = s.log[since..]
        .iter()
        .filter(|(i, t)| *i == 0 && t.dst.is_broadcast() && !matches!(Msg::parse(t.msg.clone()), Ok(Msg::Discovery(_))))
        .map(|(_, t)| t.msg.clone())
        .collect();
    let last3 = &frames[frames.len() - 3..];
    assert_eq!(last3[0].len(), pkt, "exactly the largest packet: whole");
    let whole = Header::new_checked(last3[0].clone()).expect("a header");
    assert_eq!(whole.dest_node(), NodeAddr(0), "destination node cleared on the broadcast link");
    for f in &last3[1..] {
        assert!(f.len() <= pkt);
        let Ok(Msg::Fragment(m)) = Msg::parse(f.clone()) else { panic!("a fragment") };
        assert_eq!(m.hdr.orig_node, addr(1));
    }
    assert!(frames.iter().all(|f| f.len() <= pkt), "nothing larger than the MTU allows");
}

/// At most 50 broadcast packets are in flight; the rest wait. Nothing
/// says Uncongested unless a send was refused first.
#[test]
fn the_broadcast_window_is_fifty_and_uncongested_follows_congestion_only() {
    let mut s = Seg::up(2);
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    for i in 0..60 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    let (_, _, inflight, backlog) = s.nodes[0].bcast_stats();
    assert_eq!((inflight, backlog), (50, 10));
    s.events(0);
    s.drop = Box::new(|_, _, _| false);
    s.run(MS(2000));
    assert_eq!(s.nodes[0].bcast_stats().2, 0);
    assert!(!s.events(0).iter().any(|e| matches!(e, LinkEvent::Uncongested { .. })));
}

/// A broadcast ack beyond what we sent is ignored (nothing released);
/// a NACK retransmits only the packets it names, the others stay put.
#[test]
fn broadcast_acks_beyond_the_sent_are_ignored_and_nacks_retransmit_only_the_gap() {
    let mut s = Seg::up(2);
    // node 2 acknowledges nothing for now
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    for i in 0..3 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.flush();
    assert_eq!(s.nodes[0].bcast_stats().2, 3);
    let now = s.now;
    let l = &mut s.nodes[0];
    l.bc_ack(now, addr(2), SeqNo(100), 0);
    assert_eq!(l.bcast_stats().2, 3, "an ack beyond the sent releases nothing");
    assert_eq!(l.peers[&addr(2)].bc_acked.0, 0);
    sent(l);
    // node 2 acks 1 and reports one missing: only 2 goes again
    l.bc_ack(now, addr(2), SeqNo(1), 1);
    let tx = sent(l);
    assert_eq!(tx.len(), 1);
    assert_eq!(user_seq(&tx[0].msg).map(|(_, s)| s), Some(SeqNo(2)));
    assert_eq!(l.bcast_stats(), (3, 1, 2, 0));
    // the same NACK within 5 ms: nothing; after: again
    l.bc_ack(now + MS(4), addr(2), SeqNo(1), 1);
    assert!(sent(l).is_empty());
    l.bc_ack(now + MS(5), addr(2), SeqNo(1), 1);
    assert_eq!(sent(l).len(), 1);
    // an older ack does not move the acknowledged point back
    l.bc_ack(now, addr(2), SeqNo(0), 0);
    assert_eq!(l.peers[&addr(2)].bc_acked, SeqNo(1));
    // a node that does not receive our broadcasts is not heard
    l.peers.get_mut(&addr(2)).expect("peer").bc_in = false;
    l.bc_ack(now, addr(2), SeqNo(3), 0);
    assert_eq!(l.peers[&addr(2)].bc_acked, SeqNo(1));
}

/// A receiver's tick speaks for the broadcast link when its last ack
/// went out behind what it received, or a gap is open; otherwise a
/// quiet link stays quiet.
#[test]
fn ticks_speak_for_an_unsent_broadcast_ack_or_a_gap() {
    let mut s = Seg::up(2);
    s.nodes[0].broadcast(s.now, bmsg(1)).expect("sent");
    s.flush();
    let rx = &mut s.nodes[1];
    let tick = |rx: &mut LinkLayer| -> usize {
        let t = {
            let p = rx.peers.get_mut(&addr(1)).expect("peer");
            let t = p.next_tick;
            p.link.quiet_for_test(t);
            t
        };
        sent(rx);
        rx.handle_timeout(t);
        sent(rx)
            .iter()
            .filter(|x| x.dst == mac(1) && matches!(Msg::parse(x.msg.clone()), Ok(Msg::LinkProto(_))))
            .count()
    };
    assert_eq!(rx.peers[&addr(1)].bc.acked_sent, SeqNo(0));
    assert_eq!(tick(rx), 1, "ack 1 not sent yet");
    assert_eq!(tick(rx), 0, "now it was");
    // a gap: packet 3 waits for 2
    {
        let p = rx.peers.get_mut(&addr(1)).expect("peer");
        p.bc.deferred = VecDeque::from([None, Some(Bytes::from_static(b"x"))]);
        p.bc.deferred_count = 1;
    }
    assert_eq!(tick(rx), 1, "a gap to report");
    // not synchronised: nothing to say for the broadcast link
    {
        let p = rx.peers.get_mut(&addr(1)).expect("peer");
        p.bc.synced = false;
        p.bc.rcv_nxt = SeqNo(9);
    }
    assert_eq!(tick(rx), 0);
}

/// The sender probes receivers that have not acknowledged its last
/// broadcast packet once 10 ms passed without progress, and only those.
#[test]
fn laggard_probes_go_after_ten_quiet_milliseconds_to_laggards_only() {
    let mut s = Seg::up(3);
    s.drop = Box::new(|from, to, t| from == 0 && to == 1 && t.dst.is_broadcast());
    s.nodes[0].broadcast(s.now, bmsg(1)).expect("sent");
    s.flush();
    // node 3 acks at its tick; take its ack now
    let now = s.now;
    let ack3 = {
        let p = s.nodes[2].peers.get_mut(&addr(1)).expect("peer");
        let bc = p.bc_ctx(SeqNo(0));
        p.link.build_proto(LinkProtoType::State, false, false, 0, false, &bc)
    };
    s.nodes[0].handle_frame(now, mac(3), ack3);
    assert_eq!(s.nodes[0].peers[&addr(3)].bc_acked, SeqNo(1));
    let l = &mut s.nodes[0];
    sent(l);
    let t0 = l.bcs.progress_at;
    l.handle_timeout(t0 + MS(9));
    let early: Vec<Transmit> =
        sent(l).into_iter().filter(|t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.probe)).collect();
    assert!(early.is_empty(), "no probe before 10 ms: {early:?}");
    l.handle_timeout(t0 + MS(10));
    let probes: Vec<MacAddr> = sent(l)
        .into_iter()
        .filter(
            |t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.probe && m.last_bcast_sent == SeqNo(1)),
        )
        .map(|t| t.dst)
        .collect();
    assert_eq!(probes, [mac(2)], "only the laggard");
}

/// A STATE whose broadcast ack is marked invalid, and a NAME_DISTRIBUTOR
/// packet with the invalid-ack bit (word 5 bit 14), acknowledge nothing
/// on our broadcast link; valid ones do.
#[test]
fn invalid_broadcast_acks_are_not_taken() {
    let mut s = Seg::up(2);
    s.drop = Box::new(|from, to, t| from == 0 && to == 1 && t.dst.is_broadcast());
    for i in 0..3 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.flush();
    let now = s.now;
    assert_eq!(s.nodes[0].bcast_stats().2, 3);
    // a STATE from node 2 claiming ack 3, marked invalid
    let st = {
        let p = s.nodes[1].peers.get_mut(&addr(1)).expect("peer");
        let bc = BcCtx { ack: SeqNo(3), synced: false, gap: 0, last_sent: SeqNo(0) };
        p.link.build_proto(LinkProtoType::State, false, false, 0, false, &bc)
    };
    s.nodes[0].handle_frame(now, mac(2), st);
    assert_eq!(s.nodes[0].bcast_stats().2, 3, "an invalid ack releases nothing");
    // a sequenced NAME_DISTRIBUTOR packet from node 2 with ack 3 and the invalid bit
    let mut nd = tipc_wire::NameDistrMsg {
        msg_type: tipc_wire::NameDistrType::Publication,
        hdr: IntHdr { prev_node: addr(2), orig_node: addr(2), dest_node: addr(1), ..IntHdr::default() },
        bulk: true,
        last_bulk: true,
        non_legacy: true,
        name_seqno: 0,
        word5: BC_ACK_INVALID,
        items: Vec::new(),
    };
    s.nodes[1].send(now, addr(1), Msg::NameDistr(nd.clone()).to_bytes().expect("msg")).expect("sent");
    let pkt = {
        let mut v: Vec<Bytes> = std::iter::from_fn(|| s.nodes[1].poll_transmit()).map(|t| t.msg).collect();
        assert_eq!(v.len(), 1);
        edited(&v.remove(0), |h| h.set_bcast_ack(SeqNo(3)))
    };
    s.nodes[0].handle_frame(now, mac(2), pkt);
    assert_eq!(s.nodes[0].bcast_stats().2, 3, "the invalid-ack bit is honoured");
    // the same without the bit acknowledges
    nd.word5 = 0;
    s.nodes[1].send(now, addr(1), Msg::NameDistr(nd).to_bytes().expect("msg")).expect("sent");
    let pkt = {
        let t = s.nodes[1].poll_transmit().expect("a packet");
        edited(&t.msg, |h| h.set_bcast_ack(SeqNo(3)))
    };
    s.nodes[0].handle_frame(now, mac(2), pkt);
    assert_eq!(s.nodes[0].bcast_stats().2, 0, "a valid ack releases");
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

/// A LINK_CONFIG frame that is no discovery message, and a LINK_PROTOCOL
/// message too short for its header, are malformed; each counts once.
#[test]
fn unparsable_config_and_protocol_frames_count_as_malformed() {
    let mut s = Seg::up(2);
    let now = s.now;
    let l = &mut s.nodes[0];
    let base = l.stats().malformed;
    // a bare 24-byte header (version 2) of `user` from node 2: an empty
    // connection message from node 2 with another user
    let short = |user: User| {
        let mut m = tipc_wire::DataMsg::new(tipc_wire::DataType::Conn, Bytes::new());
        m.prev_node = addr(2);
        let m = Msg::Data(m).to_bytes().expect("data");
        assert_eq!(m.len(), 24);
        edited(&m, |h| h.set_user(user))
    };
    // LINK_CONFIG (user 13) with nothing after the header
    l.handle_frame(now, mac(2), short(User::LinkConfig));
    assert_eq!(l.stats().malformed, base + 1);
    // LINK_PROTOCOL (user 7), shorter than its internal header
    l.handle_frame(now, mac(2), short(User::LinkProtocol));
    assert_eq!(l.stats().malformed, base + 2);
    assert!(l.is_up(addr(2)));
}

/// Discovery naming a media address that is not Ethernet is malformed.
#[test]
fn discovery_with_other_media_is_malformed() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    l.handle_frame(now, mac(9), enc(disc_msg(addr(9), NodeId::from_mac(mac(9)), MediaAddr::Other([3; 32]))));
    assert_eq!(l.stats().malformed, 1);
    assert!(l.links().is_empty());
}

/// Broadcast packets that are bundles are opened, fragments reassembled;
/// one at the window's far edge waits rather than being dropped.
#[test]
fn broadcast_bundles_fragments_and_the_window_edge() {
    let mut s = Seg::up(2);
    s.events(1);
    let mut bb = tipc_wire::BundleBuilder::new(IntHdr { prev_node: addr(1), ..IntHdr::default() }, 1460);
    bb.push(&bmsg(1), Importance::Low);
    bb.push(&bmsg(2), Importance::Low);
    let bundle = Msg::Bundle(bb.finish()).to_bytes().expect("bundle");
    s.nodes[0].broadcast(s.now, bundle).expect("sent");
    let mut big = tipc_wire::DataMsg::new(tipc_wire::DataType::Mcast, Bytes::from(vec![3u8; 5000]));
    big.orig_node = addr(1);
    s.nodes[0].broadcast(s.now, Msg::Data(big).to_bytes().expect("msg")).expect("sent");
    s.run(MS(50));
    let got: Vec<(usize, u8)> = delivered(&mut s, 1).iter().map(|(_, _, m)| (m.len(), m[m.len() - 1])).collect();
    assert_eq!(got, [(144, 1), (144, 2), (5044, 3)]);
    // the edge of the window: deferred, then delivered once the gap fills
    let f = withheld_broadcasts(&mut s, 4..5).remove(0);
    let rx = &mut s.nodes[1];
    let next = rx.peers[&addr(1)].bc.rcv_nxt;
    let edge = edited(&f, |h| h.set_seqno(next.add(crate::link::RCV_WINDOW)));
    let dropped = rx.stats().bcast_dropped;
    rx.handle_frame(s.now, mac(1), edge);
    assert_eq!(rx.stats().bcast_dropped, dropped, "kept at the edge");
    assert_eq!(rx.peers[&addr(1)].bc.deferred_count, 1);
}

/// Filling one gap delivers up to the next one and keeps what waits
/// behind it; the count of waiting packets follows, so the next gap is
/// reported at once.
#[test]
fn filling_a_gap_keeps_what_waits_behind_the_next() {
    let mut s = Seg::up(2);
    let f = withheld_broadcasts(&mut s, 0..8);
    let now = s.now;
    let rx = &mut s.nodes[1];
    delivered_of(rx);
    for k in [0, 2, 4] {
        rx.handle_frame(now, mac(1), f[k].clone());
    }
    rx.handle_frame(now, mac(1), f[1].clone());
    assert_eq!(delivered_of(rx), [0, 1, 2]);
    assert_eq!(rx.peers[&addr(1)].bc.deferred_count, 1, "4 still waits for 3");
    rx.handle_frame(now, mac(1), f[3].clone());
    assert_eq!(delivered_of(rx), [3, 4]);
    assert_eq!(rx.peers[&addr(1)].bc.deferred_count, 0);
    sent(rx);
    // 5 lost, 6 arrives: reported at once
    rx.handle_frame(now, mac(1), f[6].clone());
    assert_eq!(sent(rx).len(), 1, "a gap report");
}

/// When a link goes down and no other is up, discovery restarts at
/// 125 ms; while another link is up it keeps its pace.
#[test]
fn discovery_speeds_up_only_when_no_link_is_left() {
    let mut s = Seg::up(3);
    s.run(MS(30_000));
    let far = s.nodes[0].disc_next;
    assert!(far > s.now + MS(1000));
    s.drop = Box::new(|from, to, _| (from == 0 && to == 1) || (from == 1 && to == 0));
    s.run(MS(2500));
    assert!(!s.nodes[0].is_up(addr(2)) && s.nodes[0].is_up(addr(3)));
    assert_eq!(s.nodes[0].disc_next, far, "node 3 is still linked");
    s.drop = Box::new(|from, _, _| from != 0);
    let t = s.now;
    s.nodes[0].peers.retain(|a, _| *a == addr(3));
    let p = s.nodes[0].peers.get_mut(&addr(3)).expect("peer");
    p.link.quiet_for_test(t);
    let oc = Outcome { down: Some("supervision timeout"), ..Outcome::default() };
    s.nodes[0].outcome(t, addr(3), oc);
    assert!(s.nodes[0].disc_next <= t + DISC_MIN, "no link left: discovery at once");
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
        p.link.reset();
        p.link.build_proto(LinkProtoType::Reset, false, false, 0, stopping, &BcCtx::default())
    };
    let r = reset(&mut s, false);
    sent(&mut s.nodes[0]);
    s.nodes[0].handle_frame(now, mac(2), r);
    let tx = sent(&mut s.nodes[0]);
    let stops =
        tx.iter().filter(|t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.peer_stopping)).count();
    assert_eq!(stops, 0, "no stopping RESET after a peer reset");
    assert_eq!(s.nodes[0].peers[&addr(2)].link.state, LinkState::Establishing);
    let r = reset(&mut s, true);
    s.nodes[0].handle_frame(now, mac(2), r);
    let tx = sent(&mut s.nodes[0]);
    let stops =
        tx.iter().filter(|t| matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(m)) if m.peer_stopping)).count();
    assert_eq!(stops, 1, "our link was coming up: it resets and says so");
    assert_eq!(s.nodes[0].peers[&addr(2)].link.state, LinkState::Reset);
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

/// A suggested address is never 0, ours or a known node's.
#[test]
fn suggestions_skip_zero_our_address_and_known_nodes() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    fake_discovery(&mut l, now, 5);
    let peer = NodeAddr(0x0200_0005);
    let proposed = NodeAddr(0x0300_0000);
    for (start, want) in [(0, 1), (l.addr.0, l.addr.0 + 1), (peer.0, peer.0 + 1), (0x0400_0000, 0x0400_0000)] {
        l.net_hash = proposed.0 ^ start;
        assert_eq!(l.suggest(proposed), NodeAddr(want), "starting at {start:#x}");
    }
}

/// A full link backlog shows as congestion for that node only; sends
/// there are refused until acknowledgements drain it. All acknowledged
/// means nothing in flight or waiting on any up link.
#[test]
fn congestion_and_all_acked_per_node() {
    let mut s = Seg::up(3);
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    let now = s.now;
    assert!(s.nodes[0].all_acked());
    let mut n = 0;
    while s.nodes[0].send(now, addr(2), umsg(1, 2, 0, 1100)).is_ok() {
        n += 1;
        assert!(n < 1000);
    }
    assert_eq!(s.nodes[0].send(now, addr(2), umsg(1, 2, 0, 1100)), Err(LinkError::Congested(addr(2))));
    assert!(s.nodes[0].is_congested(addr(2)));
    assert!(!s.nodes[0].is_congested(addr(3)));
    assert!(!s.nodes[0].all_acked());
    s.drop = Box::new(|_, _, _| false);
    s.run(MS(3000));
    assert!(!s.nodes[0].is_congested(addr(2)));
    assert!(s.nodes[0].all_acked());
}
