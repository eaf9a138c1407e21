//! Unit tests of the broadcast link: sending, acknowledgement, retransmission and receiving, through link layers on a
//! simulated segment ([`crate::testkit`]).

use super::*;
use crate::testkit::*;
use tipc_wire::Importance;

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

/// Node `i` broadcasts messages `range` while every broadcast frame it
/// sends is lost on the way; returns the frames, for the test to deliver
/// by hand.
fn withheld_broadcasts(s: &mut Seg, i: usize, range: std::ops::Range<u8>) -> Vec<Bytes> {
    s.drop = Box::new(move |from, _, t| from == i && t.dst.is_broadcast());
    let since = s.log.len();
    for m in range {
        s.nodes[i].broadcast(s.now, bmsg(m)).expect("sent");
    }
    s.flush();
    bcast_frames(s, i, since)
}

/// The broadcast frames node `i` sent since log entry `since`.
fn bcast_frames(s: &Seg, i: usize, since: usize) -> Vec<Bytes> {
    s.log[since..]
        .iter()
        .filter(|(n, t)| *n == i && t.dst.is_broadcast() && is_low_data(&t.msg))
        .map(|(_, t)| t.msg.clone())
        .collect()
}

fn delivered_of(l: &mut LinkLayer) -> Vec<u8> {
    std::iter::from_fn(|| l.poll_event())
        .filter_map(|e| match e {
            LinkEvent::Deliver { bcast: true, msg, .. } => msg.last().copied(),
            _ => None,
        })
        .collect()
}

/// The user and sequence number of a frame, if it has a valid header.
fn user_seq(frame: &Bytes) -> Option<(User, SeqNo)> {
    Header::new_checked(frame.clone()).ok().map(|h| (h.user(), h.seqno()))
}

/// Whether a frame is a data message of low importance (what [`bmsg`] sends).
fn is_low_data(frame: &Bytes) -> bool {
    user_seq(frame).is_some_and(|(u, _)| u == User::LowImportance)
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
    let all = BC_WINDOW + 2000;
    assert_eq!(n, all, "a window of BC_WINDOW and a backlog of 2000");
    assert_eq!(s.nodes[0].broadcast(now, bmsg(1)), Err(LinkError::Congested(NodeAddr(0))));
    s.events(0);
    s.drop = Box::new(|_, _, _| false);
    s.run(MS(5000));
    assert!(s.events(0).iter().any(|e| matches!(e, LinkEvent::Uncongested { node } if *node == NodeAddr(0))));
    let (sent, _, inflight, backlog) = s.nodes[0].bcast_stats();
    assert_eq!((sent, inflight, backlog), (all as u64, 0, 0));
    assert_eq!(s.nodes[0].bcast_receivers(), 1);
    assert_eq!(delivered(&mut s, 1).iter().filter(|(_, b, _)| *b).count(), all);
}

/// Broadcast packets seen before, from another cluster, further ahead
/// than the window, or from a peer whose broadcast link is not
/// synchronised yet are dropped and counted; packets ahead of a gap wait
/// and are delivered in order once it is filled.
#[test]
fn broadcast_receive_drops_what_it_must_and_orders_the_rest() {
    let mut s = Seg::up(2);
    let f = withheld_broadcasts(&mut s, 0, 0..3);
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

/// A receiver acknowledges the broadcast link explicitly after 16
/// packets, and reports a gap when the first packet after it waits (and
/// again every 16 more).
#[test]
fn broadcast_receivers_ack_every_sixteen_and_report_gaps_at_once() {
    let mut s = Seg::up(2);
    let f = withheld_broadcasts(&mut s, 0, 0..40);
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
        .filter(|(i, t)| *i == 0 && t.dst.mac() == Some(mac(3)))
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

/// Every up peer receives the broadcast link.
#[test]
fn every_up_peer_receives_the_broadcast_link() {
    let s = Seg::up(3);
    assert_eq!(s.nodes[0].bcast_receivers(), 2);
    assert_eq!(Seg::new(1).nodes[0].bcast_receivers(), 0);
}

/// At most BC_WINDOW broadcast packets are in flight; the rest wait.
/// Nothing says Uncongested unless a send was refused first.
#[test]
fn the_broadcast_window_holds_and_uncongested_follows_congestion_only() {
    let mut s = Seg::up(2);
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    for i in 0..BC_WINDOW + 10 {
        s.nodes[0].broadcast(s.now, bmsg((i % 256) as u8)).expect("sent");
    }
    let (_, _, inflight, backlog) = s.nodes[0].bcast_stats();
    assert_eq!((inflight, backlog), (BC_WINDOW, 10));
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
    assert_eq!(l.bcs.receivers[&addr(2)].0, 0);
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
    assert_eq!(l.bcs.receivers[&addr(2)], SeqNo(1));
    // a node that does not receive our broadcasts is not heard: its ack
    // of everything would release what is in flight
    l.bcs.remove_receiver(addr(2));
    l.bc_ack(now, addr(2), SeqNo(3), 0);
    assert_eq!(l.bcs.receivers.get(&addr(2)), None);
    assert_eq!(l.bcast_stats().2, 2, "nothing released");
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
            let t = p.e0().next_tick;
            p.e0_mut().link.quiet_for_test(t);
            t
        };
        sent(rx);
        rx.handle_timeout(t);
        sent(rx)
            .iter()
            .filter(|x| x.dst.mac() == Some(mac(1)) && matches!(Msg::parse(x.msg.clone()), Ok(Msg::LinkProto(_))))
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
        p.e0_mut().link.build_proto(LinkProtoType::State, false, false, 0, false, &bc)
    };
    s.nodes[0].handle_frame(now, mac(3), ack3);
    assert_eq!(s.nodes[0].bcs.receivers[&addr(3)], SeqNo(1));
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
        .filter_map(|t| t.dst.mac())
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
        p.e0_mut().link.build_proto(LinkProtoType::State, false, false, 0, false, &bc)
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
    let f = withheld_broadcasts(&mut s, 0, 4..5).remove(0);
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
    let f = withheld_broadcasts(&mut s, 0, 0..8);
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

/// The explicit broadcast acknowledgements (STATE messages) among
/// `frames`: the broadcast sequence number each acknowledges.
fn bc_acks<'a>(frames: impl IntoIterator<Item = &'a crate::event::Transmit>) -> Vec<SeqNo> {
    frames
        .into_iter()
        .filter_map(|t| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) if m.msg_type == LinkProtoType::State => Some(m.hdr.bcast_ack),
            _ => None,
        })
        .collect()
}

/// A member acknowledges broadcasts every 16 packets (the kernel's pace)
/// when its driver asks for frames after each one, and once for a whole
/// batch, acknowledging all of it, when the driver hands in the batch
/// first: fewer frames from every member of a fan-out, none later than the
/// end of the batch. An acknowledgement another packet carried is not sent
/// again.
#[test]
fn broadcast_acknowledgements_are_one_per_batch() {
    for batch in [false, true] {
        let mut s = Seg::up(2);
        let f = withheld_broadcasts(&mut s, 0, 0..64);
        let now = s.now;
        let rx = &mut s.nodes[1];
        sent(rx);
        let mut acks = Vec::new();
        for m in &f[..48] {
            rx.handle_frame(now, mac(1), m.clone());
            if !batch {
                acks.extend(bc_acks(&sent(rx)));
            }
        }
        if batch {
            assert!(rx.bc_ack_due());
            acks = bc_acks(&sent(rx));
            assert!(!rx.bc_ack_due());
            assert_eq!(acks, [SeqNo(48)], "one for the batch");
        } else {
            assert_eq!(acks, [SeqNo(16), SeqNo(32), SeqNo(48)], "one per 16");
        }
        assert_eq!(delivered_of(rx), (0..48).collect::<Vec<u8>>(), "every broadcast delivered");

        // 16 more, then a unicast packet before the driver asks for frames
        for m in &f[48..] {
            rx.handle_frame(now, mac(1), m.clone());
        }
        rx.send(now, addr(1), umsg(2, 1, 0, 20)).expect("unicast");
        let out = sent(rx);
        let carried = out.iter().find(|t| UncheckedHeader::new(&t.msg[..]).user().is_data()).expect("unicast packet");
        assert_eq!(Header::new_checked(&carried.msg[..]).expect("header").bcast_ack(), SeqNo(64));
        assert!(bc_acks(&out).is_empty(), "the unicast packet carried it");
    }
}

/// Within one batch, broadcasts from two peers each earn their own
/// acknowledgement, sent to that peer.
#[test]
fn a_batch_acknowledges_every_broadcasting_peer() {
    let mut s = Seg::up(3);
    let from0 = withheld_broadcasts(&mut s, 0, 0..16);
    let from2 = withheld_broadcasts(&mut s, 2, 0..16);
    let now = s.now;
    let rx = &mut s.nodes[1];
    sent(rx);
    for (src, m) in from0.into_iter().map(|m| (mac(1), m)).chain(from2.into_iter().map(|m| (mac(3), m))) {
        rx.handle_frame(now, src, m);
    }
    let out = sent(rx);
    for peer in [1, 3] {
        let to = TxDest::Unicast(mac(peer).into());
        assert_eq!(bc_acks(out.iter().filter(|t| t.dst == to)), [SeqNo(16)], "to the node at mac({peer})");
    }
}
