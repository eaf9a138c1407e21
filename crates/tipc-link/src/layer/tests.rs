//! Unit tests of the layer as a whole: linking up, unicast, malformed input, shutdown, through link layers on a
//! simulated segment ([`crate::testkit`]).

use super::*;
use crate::testkit::*;

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
        p.e0_mut().link.build_proto(LinkProtoType::State, false, false, 0, false, &BcCtx::default())
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

/// Frames from a neighbour must come from its announced MAC on Ethernet;
/// on UDP any source address is taken, as the kernel takes it (a socket
/// bound to the wildcard address sends from what the route picks).
#[test]
fn the_source_is_checked_on_ethernet_only() {
    use super::sent_by;
    let (a, b) = (MediaAddr::Eth(mac(1)), MediaAddr::Eth(mac(2)));
    assert!(sent_by(&a, &a));
    assert!(!sent_by(&a, &b));
    let (u, v) = (MediaAddr::Udp(udp(1)), MediaAddr::Udp(udp(2)));
    assert!(sent_by(&u, &u) && sent_by(&u, &v));
    assert!(!sent_by(&u, &a), "not from another medium");
    assert!(!sent_by(&a, &u));
}

/// A link is named as the kernel names it: our identity and interface,
/// then the peer's identity and the interface name its RESET/ACTIVATE
/// carried (net/tipc/link.c `tipc_link_create`).
#[test]
fn links_are_named_with_both_interfaces() {
    let mut c1 = cfg(1);
    c1.if_name = "left".into();
    let mut c2 = cfg(2);
    c2.if_name = "right".into();
    let (id1, id2) = (c1.node_id, c2.node_id);
    let mut s = Seg::with(vec![c1, c2]);
    s.run(MS(3000));
    assert_eq!(s.nodes[0].links()[0].name, format!("{id1}:left-{id2}:right"));
    assert_eq!(s.nodes[1].links()[0].name, format!("{id2}:right-{id1}:left"));
}

/// `tipc bearer set`: a new tolerance applies to the bearer's links at once
/// and the peer adopts it from the STATE that tells it; a new window is
/// local. Unknown bearers are refused; a fourth bearer is refused.
#[test]
fn bearer_settings_change_at_run_time() {
    let mut s = Seg::up(2);
    let (id, b) = s.nodes[0].bearers().remove(0);
    assert_eq!(id, 0);
    let now = s.now;
    let changed = BearerSettings { tolerance: MS(3000), window: 200, ..b.clone() };
    s.nodes[0].update_bearer(now, 0, changed).expect("bearer 0");
    s.run(MS(50));
    let ours = &s.nodes[0].links()[0];
    assert_eq!((ours.tolerance, ours.window), (MS(3000), 200));
    let theirs = &s.nodes[1].links()[0];
    assert_eq!((theirs.tolerance, theirs.window), (MS(3000), 50), "the peer adopted the tolerance, not the window");
    let moved = BearerSettings { media: tipc_wire::MacAddr([2, 0, 0, 0, 9, 9]).into(), ..b.clone() };
    s.nodes[0].update_bearer(now, 0, moved).expect("bearer 0");
    assert_eq!(s.nodes[0].bearers()[0].1.media, b.media, "the media address stays");
    assert_eq!(s.nodes[0].update_bearer(now, 2, b.clone()), Err(LinkError::NoSuchBearer(2)));
    assert_eq!(s.nodes[0].disable_bearer(now, 1), Err(LinkError::NoSuchBearer(1)));
    for k in 1..3u8 {
        let other = BearerSettings::new(tipc_wire::MacAddr([2, 0, 0, 0, 9, k]), "x", 1500);
        assert_eq!(s.nodes[0].enable_bearer(now, other), Ok(k));
    }
    let fourth = BearerSettings::new(tipc_wire::MacAddr([2, 0, 0, 0, 9, 9]), "y", 1500);
    assert_eq!(s.nodes[0].enable_bearer(now, fourth), Err(LinkError::TooManyBearers));
}

/// A message's link selector is its sender's port for data, group and
/// connection messages (one socket keeps to one link) and 0 for the rest.
#[test]
fn selectors_follow_the_sending_port() {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Direct, Bytes::from_static(b"x"));
    d.orig_port = tipc_wire::PortId(12_345);
    assert_eq!(selector(&Msg::Data(d).to_bytes().expect("data")), 12_345);
    let mut g = umsg(1, 2, 0, 4).to_vec();
    // a GROUP_PROTOCOL (user 9) header with 77 in word 4
    g[0] = (g[0] & !(0xf << 1)) | (9 << 1);
    g[16..20].copy_from_slice(&77u32.to_be_bytes());
    assert_eq!(selector(&g), 77);
    g[0] = (g[0] & !(0xf << 1)) | (8 << 1);
    assert_eq!(selector(&g), 77, "CONN_MANAGER");
    g[0] = (g[0] & !(0xf << 1)) | (11 << 1);
    assert_eq!(selector(&g), 0, "NAME_DISTRIBUTOR: word 4 is no port");
}

/// The broadcast link's primary bearer is the kernel's choice: among the
/// bearers with links to every node that is up, the first whose id differs
/// in parity from our address, else the last; none when no bearer reaches
/// them all (then every bearer with a link carries a copy).
#[test]
fn the_broadcast_bearer_is_the_kernels_choice() {
    let (odd, even) = (NodeAddr(0x1001), NodeAddr(0x1002));
    assert_eq!(primary_of(odd, &[(0, 2), (1, 3)], 3), Some(1), "the one reaching all");
    assert_eq!(primary_of(odd, &[(0, 3), (1, 3)], 3), Some(0), "odd address: even id");
    assert_eq!(primary_of(even, &[(0, 3), (1, 3)], 3), Some(1), "even address: odd id");
    assert_eq!(primary_of(even, &[(0, 3), (1, 3), (2, 3)], 3), Some(1));
    assert_eq!(primary_of(odd, &[(0, 3), (1, 3), (2, 3)], 3), Some(0), "the first of the other parity");
    assert_eq!(primary_of(odd, &[(1, 3), (2, 3)], 3), Some(2), "odd address, no bearer 0: the even id");
    assert_eq!(primary_of(odd, &[(1, 3), (3, 3)], 3), Some(3), "no id of the other parity: the last");
    assert_eq!(primary_of(odd, &[(0, 2), (1, 1)], 3), None, "none reaches all");
    assert_eq!(primary_of(odd, &[(0, 0)], 0), None, "no node up");
    assert_eq!(primary_of(odd, &[], 0), None);
}

/// A tunnel message (built with `f`) sent in sequence from node 1 to 2.
fn tunnel_to_2(s: &mut Seg, m: Bytes) {
    let now = s.now;
    s.nodes[0].send(now, addr(2), m).expect("sent");
    s.run(MS(50));
}

/// Tunnel messages that make no sense on a single link are dropped: a
/// FAILOVER_MSG or SYNCH_MSG naming the very link it came on changes
/// nothing (the link stays up, later messages are not held), one of an
/// unknown type is counted malformed.
#[test]
fn tunnel_messages_about_their_own_link_change_nothing() {
    let mut s = Seg::up(2);
    s.events(1);
    let failover =
        crate::tunnel::failover_msgs(addr(1), addr(2), 0, vec![crate::tunnel::dummy(addr(1), addr(2))], 1500, true);
    for m in failover {
        tunnel_to_2(&mut s, m);
    }
    assert!(s.nodes[1].is_up(addr(1)), "the link did not fail over onto itself");
    assert!(!s.events(1).iter().any(|e| matches!(e, LinkEvent::NodeDown { .. })));
    // a sync point the link has not reached: a synch would hold what follows
    tunnel_to_2(&mut s, crate::tunnel::synch_msg(addr(1), addr(2), 0, SeqNo(1_000)));
    let now = s.now;
    s.nodes[0].send(now, addr(2), umsg(1, 2, 7, 10)).expect("sent");
    s.run(MS(50));
    assert_eq!(delivered(&mut s, 1).len(), 1, "not held by a synch of the link with itself");
    let before = s.nodes[1].stats().malformed;
    let unknown = tipc_wire::TunnelMsg {
        msg_type: tipc_wire::TunnelType::from(5),
        hdr: tipc_wire::IntHdr { orig_node: addr(1), dest_node: addr(2), ..tipc_wire::IntHdr::default() },
        word4: 0,
        word5: 0,
        word9: 0,
        payload: Bytes::new(),
    };
    tunnel_to_2(&mut s, Msg::Tunnel(unknown).to_bytes().expect("tunnel"));
    assert_eq!(s.nodes[1].stats().malformed, before + 1);
}

/// A peer's broadcast-link packets are taken from its media address on a
/// bearer we share a link on, and from anywhere on a bearer we do not (it
/// sends them on its primary bearer, net/tipc/bcast.c
/// `tipc_bcbase_select_primary`); from another address on a shared bearer,
/// or on a bearer not enabled, they are foreign.
#[test]
fn broadcast_packets_come_from_the_peer_or_another_bearer() {
    let mut s = Seg::up(2);
    s.events(1);
    let now = s.now;
    s.nodes[0].broadcast(now, umsg(1, 0, 3, 20)).expect("broadcast");
    let pkt = std::iter::from_fn(|| s.nodes[0].poll_transmit())
        .find(|t| t.dst.is_broadcast() && UncheckedHeader::new(&t.msg[..]).user().is_data())
        .expect("a broadcast-link packet")
        .msg;
    let foreign = s.nodes[1].stats().foreign;
    s.nodes[1].handle_frame_on(now, 0, mac(9), pkt.clone());
    assert_eq!(s.nodes[1].stats().foreign, foreign + 1, "another address on the shared bearer");
    assert!(delivered(&mut s, 1).is_empty());
    s.nodes[1].handle_frame_on(now, 1, mac(9), pkt.clone());
    assert_eq!(s.nodes[1].stats().foreign, foreign + 2, "a bearer not enabled");
    assert!(delivered(&mut s, 1).is_empty());
    let other = BearerSettings::new(tipc_wire::MacAddr([2, 0, 0, 0, 7, 7]), "eth1", 1500);
    assert_eq!(s.nodes[1].enable_bearer(now, other), Ok(1));
    s.nodes[1].handle_frame_on(now, 1, mac(9), pkt);
    assert_eq!(s.nodes[1].stats().foreign, foreign + 2, "taken on a bearer without a link");
    let got = delivered(&mut s, 1);
    assert_eq!(got.iter().map(|(f, b, _)| (*f, *b)).collect::<Vec<_>>(), [(addr(1), true)]);
}
