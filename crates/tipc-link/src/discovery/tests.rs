//! Unit tests of the address trial and discovery, through link layers on a
//! simulated segment ([`crate::testkit`]).

use super::*;
use crate::testkit::*;

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

fn disc_types(tx: &[Transmit]) -> Vec<DiscoveryType> {
    tx.iter()
        .filter_map(|t| match Msg::parse(t.msg.clone()) {
            Ok(Msg::Discovery(d)) => Some(d.msg_type),
            _ => None,
        })
        .collect()
}

fn sig2_of(l: &LinkLayer) -> u16 {
    l.peers[&addr(2)].signature
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

/// The generator is SplitMix64: its reference outputs for seed 0.
#[test]
fn the_generator_is_splitmix64() {
    let mut r = Rng(0);
    assert_eq!([r.next(), r.next(), r.next()], [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
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
    assert_eq!(tx[0].dst.mac(), Some(m), "the response goes to the requester");
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

/// Our capabilities without bit 0, which shares its place with the
/// signature's bit 15 on the wire: the forged discoveries of a test that
/// compares signatures it chose use it.
const OURS_NO_BIT0: u16 = caps::OURS & !caps::SYN_BIT;

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
        assert_eq!(l.peers[&addr(2)].e0().media, mac(2).into());
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
            l.peers.get_mut(&addr(2)).expect("peer").e0_mut().link.tick(now, &BcCtx::default(), false, &mut Vec::new());
        }
        let sig = if same_sig { 5 } else { 6 };
        let m = if same_mac { mac(2) } else { mac(7) };
        let t1 = now + MS(10);
        l.handle_frame(t1, m, disc(DiscoveryType::Req, addr(2), id2, m, sig, OURS_NO_BIT0, NodeAddr(0), NodeAddr(0)));
        let tx = sent(&mut l);
        assert_eq!(disc_types(&tx), [DiscoveryType::Resp], "({same_sig}, {same_mac})");
        assert_eq!(tx[0].dst.mac(), Some(m));
        let p = &l.peers[&addr(2)];
        assert_eq!(
            (p.e0().media, p.signature, p.caps, p.heard),
            (m.into(), sig, if same_sig && same_mac { 0 } else { OURS_NO_BIT0 }, t1)
        );
        assert_eq!(p.e0().link.peer_caps, p.caps);
        assert_eq!(p.e0().link.stats.resets, 0, "a link already down is not reset again");
        let mut resets = Vec::new();
        l.peers.get_mut(&addr(2)).expect("peer").e0_mut().link.tick(t1, &BcCtx::default(), false, &mut resets);
        assert_eq!(resets.len(), usize::from(same_mac), "RESETs hastened for the same MAC");
        assert_eq!(conflicts(&mut l), 0);
        // a response is not answered
        l.handle_frame(t1, m, disc(DiscoveryType::Resp, addr(2), id2, m, sig, OURS_NO_BIT0, NodeAddr(0), NodeAddr(0)));
        assert!(disc_types(&sent(&mut l)).is_empty());
    }
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

/// Discovery messages are non-sequenced and carry our signature with its
/// top bit given to capability bit 0, as the kernel's (its capabilities
/// field overlaps the signature's bit 15).
#[test]
fn discovery_messages_carry_signature_and_non_seq() {
    for caps_bit0 in [0u16, 1] {
        let mut c = cfg(1);
        c.capabilities = (caps::OURS & !caps::SYN_BIT) | caps_bit0;
        let mut l = LinkLayer::new(c, Instant::ZERO);
        l.handle_timeout(Instant::ZERO);
        let tx = sent(&mut l);
        let Ok(Msg::Discovery(d)) = Msg::parse(tx[0].msg.clone()) else { panic!("a discovery request") };
        assert!(d.flags.non_seq);
        assert_eq!(d.signature, (l.disc.signature & 0x7fff) | (caps_bit0 << 15));
        assert_eq!(d.capabilities, (caps::OURS & !caps::SYN_BIT) | caps_bit0);
        assert_ne!(l.disc.signature & 0x7fff, 0, "a signature this test can see");
    }
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

/// When a link goes down and no other is up, discovery restarts at
/// 125 ms; while another link is up it keeps its pace.
#[test]
fn discovery_speeds_up_only_when_no_link_is_left() {
    let mut s = Seg::up(3);
    s.run(MS(30_000));
    let far = s.nodes[0].disc.bearers[0].as_ref().expect("bearer 0").next;
    assert!(far > s.now + MS(1000));
    s.drop = Box::new(|from, to, _| (from == 0 && to == 1) || (from == 1 && to == 0));
    s.run(MS(2500));
    assert!(!s.nodes[0].is_up(addr(2)) && s.nodes[0].is_up(addr(3)));
    assert_eq!(s.nodes[0].disc.bearers[0].as_ref().expect("bearer 0").next, far, "node 3 is still linked");
    s.drop = Box::new(|from, _, _| from != 0);
    let t = s.now;
    s.nodes[0].peers.retain(|a, _| *a == addr(3));
    let p = s.nodes[0].peers.get_mut(&addr(3)).expect("peer");
    p.e0_mut().link.quiet_for_test(t);
    let oc = Outcome { down: Some(DownReason::SupervisionTimeout), ..Outcome::default() };
    s.nodes[0].outcome(t, addr(3), 0, oc);
    assert!(
        s.nodes[0].disc.bearers[0].as_ref().expect("bearer 0").next <= t + DISC_MIN,
        "no link left: discovery at once"
    );
}

/// A suggested address is never 0, ours or a known node's.
#[test]
fn suggestions_skip_zero_our_address_and_known_nodes() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    fake_discovery(&mut l, now, 5);
    let peer = NodeAddr(0x0200_0005);
    let proposed = NodeAddr(0x0300_0000);
    for (start, want) in [(0, 1), (l.disc.addr.0, l.disc.addr.0 + 1), (peer.0, peer.0 + 1), (0x0400_0000, 0x0400_0000)]
    {
        l.disc.net_hash = proposed.0 ^ start;
        assert_eq!(l.disc.suggest(proposed, &l.peers), NodeAddr(want), "starting at {start:#x}");
    }
}

/// A trial for the address we hold is refused whatever the identity —
/// our own included (two nodes configured alike: net/tipc/node.c
/// `tipc_node_try_addr`, "even this node may be in conflict") — and the
/// refusal is reported and counted.
#[test]
fn a_trial_for_our_address_is_refused_even_with_our_identity() {
    let now = Instant::ZERO;
    let c = cfg(1);
    let (own_id, own_addr) = (c.node_id, addr(1));
    let mut l = LinkLayer::new(c, now);
    sent(&mut l);
    let twin = mac(7);
    l.handle_frame(now, twin, disc(DiscoveryType::Trial, own_addr, own_id, twin, 1, 0, NodeAddr(0), NodeAddr(0)));
    let tx = sent(&mut l);
    match tx.first().map(|t| Msg::parse(t.msg.clone())) {
        Some(Ok(Msg::Discovery(d))) => {
            assert_eq!((d.msg_type, d.dest_domain), (DiscoveryType::TrialFail, own_addr));
            assert!(d.suggested != own_addr && d.suggested.0 != 0);
        }
        other => panic!("expected TRIAL_FAIL, got {other:?}"),
    }
    let evs: Vec<LinkEvent> =
        std::iter::from_fn(|| l.poll_event()).filter(|e| matches!(e, LinkEvent::Conflict(_))).collect();
    assert!(
        matches!(evs.as_slice(), [LinkEvent::Conflict(Conflict::TrialRefused { same_identity: true, media, .. })] if *media == twin.into()),
        "{evs:?}"
    );
    assert_eq!(l.stats().conflicts, 1);
}

/// Another cluster's discovery and our own reflected frames are ignored as
/// the kernel ignores them, but reported: once per MAC, however often they
/// come; the frames are still counted as foreign.
#[test]
fn other_clusters_and_reflections_are_reported_once() {
    let now = Instant::ZERO;
    let c = cfg(1);
    let own_mac = c.media.mac().expect("an Ethernet node");
    let mut l = LinkLayer::new(c, now);
    let other =
        |m: MacAddr| enc(DiscoveryMsg { net_id: 4712, ..disc_msg(addr(9), NodeId::from_mac(m), MediaAddr::Eth(m)) });
    let echo = disc(DiscoveryType::Req, addr(1), NodeId::from_mac(own_mac), own_mac, 1, 0, NodeAddr(0), NodeAddr(0));
    for _ in 0..3 {
        l.handle_frame(now, mac(9), other(mac(9)));
        l.handle_frame(now, mac(8), other(mac(8)));
        l.handle_frame(now, own_mac, echo.clone());
    }
    let evs: Vec<Conflict> = std::iter::from_fn(|| l.poll_event())
        .filter_map(|e| match e {
            LinkEvent::Conflict(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert!(
        evs.iter().any(|c| matches!(c, Conflict::OtherCluster { net_id: 4712, media: m, .. } if *m == mac(9).into()))
    );
    assert!(evs.iter().any(|c| matches!(c, Conflict::OtherCluster { media: m, .. } if *m == mac(8).into())));
    assert!(evs.iter().any(|c| matches!(c, Conflict::OwnFrameReflected { .. })));
    assert_eq!((l.stats().conflicts, l.stats().foreign), (3, 9));
    assert!(l.links().is_empty());
}

/// Reports of other clusters stop at [`MAX_PEERS`] MACs (the set that
/// remembers them is bounded); their frames are still counted.
#[test]
fn other_cluster_reports_are_bounded() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    let extra = 5;
    for n in 0..(MAX_PEERS + extra) as u32 {
        let m = mac_of(n + 100);
        l.handle_frame(
            now,
            m,
            enc(DiscoveryMsg { net_id: 4712, ..disc_msg(addr(9), NodeId::from_mac(m), MediaAddr::Eth(m)) }),
        );
    }
    let reports = std::iter::from_fn(|| l.poll_event()).filter(|e| matches!(e, LinkEvent::Conflict(_))).count();
    assert_eq!(reports, MAX_PEERS);
    assert_eq!((l.stats().conflicts, l.stats().foreign), (MAX_PEERS as u64, (MAX_PEERS + extra) as u64));
}

/// Nodes on UDP bearers find each other and link by the UDP addresses
/// their discovery messages carry: unicast frames go to those addresses,
/// broadcast-type ones to the bearer's group (net/tipc/udp_media.c).
#[test]
fn nodes_on_udp_link_by_their_udp_addresses() {
    let mut s = Seg::with(vec![udp_cfg(1), udp_cfg(2), udp_cfg(3)]);
    s.run(MS(3000));
    for l in &s.nodes {
        assert_eq!(l.up_nodes().len(), 2, "links up");
    }
    let unicast: std::collections::BTreeSet<MediaAddr> = s
        .log
        .iter()
        .filter_map(|(_, t)| match t.dst {
            TxDest::Unicast(m) => Some(m),
            TxDest::Broadcast => None,
        })
        .collect();
    let want: std::collections::BTreeSet<MediaAddr> = (1..=3).map(|i| MediaAddr::Udp(udp(i))).collect();
    assert_eq!(unicast, want);
    assert!(s.log.iter().any(|(_, t)| t.dst.is_broadcast()), "discovery goes to the group");
    let info = s.nodes[0].links();
    assert!(info.iter().all(|i| matches!(i.peer_media, MediaAddr::Udp(_))), "{info:?}");
}

/// A UDP bearer takes discovery only from UDP addresses of its own IP
/// version that name one node: an Ethernet or IPv6 address is malformed,
/// a multicast or unspecified one foreign; the good one is answered at
/// its address.
#[test]
fn udp_discovery_of_another_medium_or_a_group_address_is_refused() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(udp_cfg(1), now);
    let id = NodeId::from_mac(mac(9));
    let from = |m: MediaAddr| enc(disc_msg(addr(9), id, m));
    let v6: std::net::SocketAddr = "[fd00::9]:6118".parse().expect("v6");
    l.handle_frame(now, udp(9), from(MediaAddr::Eth(mac(9))));
    l.handle_frame(now, udp(9), from(MediaAddr::Udp(v6)));
    assert_eq!(l.stats().malformed, 2);
    let group: std::net::SocketAddr = "228.0.18.103:6118".parse().expect("group");
    let any: std::net::SocketAddr = "0.0.0.0:6118".parse().expect("any");
    l.handle_frame(now, udp(9), from(MediaAddr::Udp(group)));
    l.handle_frame(now, udp(9), from(MediaAddr::Udp(any)));
    assert_eq!(l.stats().foreign, 2);
    assert!(l.links().is_empty(), "no node taken");
    let _ = sent(&mut l);
    l.handle_frame(now, udp(9), from(MediaAddr::Udp(udp(9))));
    assert_eq!(l.links().len(), 1);
    let tx = sent(&mut l);
    assert_eq!(disc_types(&tx), [DiscoveryType::Resp]);
    assert_eq!(tx[0].dst, TxDest::Unicast(MediaAddr::Udp(udp(9))), "answered at its UDP address");
}

/// An Ethernet bearer takes no UDP discovery.
#[test]
fn ethernet_discovery_of_a_udp_address_is_malformed() {
    let now = Instant::ZERO;
    let mut l = LinkLayer::new(cfg(1), now);
    l.handle_frame(now, mac(9), enc(disc_msg(addr(9), NodeId::from_mac(mac(9)), MediaAddr::Udp(udp(9)))));
    assert_eq!((l.stats().malformed, l.links().len()), (1, 0));
}
