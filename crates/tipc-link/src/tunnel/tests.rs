//! Unit tests of the tunnel protocol: message layout against the kernel's
//! FAILOVER_MSG and SYNCH_MSG in capture 16 (tests/data/captures), and the
//! receive side of a failover fed by hand.

use tipc_wire::{DataMsg, DataType, ErrorCode, PortId, UncheckedHeader};

use super::*;

const OWN: NodeAddr = NodeAddr(0x0a5b_0001);
const PEER: NodeAddr = NodeAddr(0x0a5b_0002);

/// A data message `tag` to port 7 of PEER, stamped with link seqno `seq`.
fn pkt(seq: u16, tag: u8) -> Bytes {
    let mut d = DataMsg::new(DataType::Direct, Bytes::from(vec![tag; 10]));
    d.orig_node = OWN;
    d.dest_node = PEER;
    d.orig_port = PortId(5);
    d.dest_port = PortId(7);
    let m = Msg::Data(d).to_bytes().expect("data");
    let mut h = UncheckedHeader::new(m.to_vec());
    h.set_seqno(SeqNo(seq));
    Bytes::from(h.into_inner())
}

/// The tunnel message `t` as the receiver parses it.
fn parsed(t: &Bytes) -> TunnelMsg {
    match Msg::parse(t.clone()) {
        Ok(Msg::Tunnel(t)) => t,
        other => panic!("not a tunnel message: {other:?}"),
    }
}

/// Feeds FAILOVER_MSGs `msgs` to `rx` as tunnel packets from seqno `first`
/// on; returns what it delivered (the payload tag of each message).
fn feed(rx: &mut FailoverRx, first: u16, msgs: &[Bytes], stats: &mut LinkStats) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        rx.receive(SeqNo(first + i as u16), parsed(m), stats, &mut out).expect("in place");
    }
    out.iter().map(|m| m[m.len() - 1]).collect()
}

/// The dummy is a 32-byte DIRECT message from OWN to port 0 of PEER with
/// error NO_PORT (capture 16, frame 673's inner packet).
#[test]
fn the_dummy_is_the_kernels() {
    let d = dummy(OWN, PEER);
    let Ok(Msg::Data(m)) = Msg::parse(d.clone()) else { panic!("not data") };
    assert_eq!(
        (d.len(), m.msg_type, m.err, m.dest_port, m.orig_node, m.dest_node),
        (32, DataType::Direct, ErrorCode::NoPort, PortId(0), OWN, PEER)
    );
    assert!(is_dummy(&d));
}

/// Only a data message to port 0 with an error code is a dummy.
#[test]
fn only_the_dummy_is_dropped() {
    assert!(!is_dummy(&pkt(1, 1)), "a message to a port");
    let mut to_zero = DataMsg::new(DataType::Direct, Bytes::new());
    to_zero.dest_node = PEER;
    let plain = Msg::Data(to_zero.clone()).to_bytes().expect("data");
    assert!(!is_dummy(&plain), "port 0 without an error");
    to_zero.err = ErrorCode::NoPort;
    to_zero.dest_port = PortId(9);
    let returned = Msg::Data(to_zero).to_bytes().expect("data");
    assert!(!is_dummy(&returned), "an error to a port");
    assert!(!is_dummy(&synch_msg(OWN, PEER, 1, SeqNo(2))), "not data");
}

/// SYNCH_MSG: 40 bytes, type SYNCH, the old link's peer bearer id in word
/// 5 bits 9–11, the sync point in word 9's upper half (capture 16, frames
/// 32 and 34: bearer id 0, sync point 2).
#[test]
fn synch_msg_layout() {
    let m = synch_msg(OWN, PEER, 3, SeqNo(801));
    assert_eq!(m.len(), 40);
    let t = parsed(&m);
    assert_eq!(t.msg_type, TunnelType::Synch);
    assert_eq!((bearer_of(&t), t.word9 >> 16, t.word5 & !(7 << 9)), (3, 801, 0));
    assert_eq!((t.hdr.orig_node, t.hdr.dest_node, t.hdr.prev_node), (OWN, PEER, OWN));
}

/// FAILOVER_MSG: one per packet, each with the whole batch's count in word
/// 9 and the failed link's peer bearer id; a packet too long for the
/// tunnel is split into numbered fragments when the peer has enhanced
/// tunnelling, and kept whole otherwise.
#[test]
fn failover_msgs_layout_and_fragments() {
    let big = {
        let mut d = DataMsg::new(DataType::Direct, Bytes::from(vec![9u8; 3000]));
        d.dest_node = PEER;
        Msg::Data(d).to_bytes().expect("data")
    };
    let msgs = failover_msgs(OWN, PEER, 1, vec![pkt(5, 1), big.clone(), dummy(OWN, PEER)], 1500, true);
    // 3 000 + 32 bytes in 1 460-byte pieces: 3 fragments
    assert_eq!(msgs.len(), 5);
    let ts: Vec<TunnelMsg> = msgs.iter().map(parsed).collect();
    for t in &ts {
        assert_eq!((t.msg_type, bearer_of(t), t.word9 >> 16), (TunnelType::Failover, 1, 5));
        assert_eq!((t.hdr.orig_node, t.hdr.dest_node, t.hdr.prev_node), (OWN, PEER, OWN));
        assert!(t.buffer_len() <= 1500);
    }
    let frag: Vec<(u32, u32)> = ts.iter().map(|t| (t.word4 >> 16, t.word4 & 0xffff)).collect();
    assert_eq!(frag, [(0, 0), (1, 3), (2, 3), (3, 3), (0, 0)]);
    let joined: Vec<u8> = ts[1..4].iter().flat_map(|t| t.payload.to_vec()).collect();
    assert_eq!(joined, big.to_vec());
    let legacy = failover_msgs(OWN, PEER, 1, vec![big.clone()], 1500, false);
    assert_eq!(legacy.len(), 1, "no fragments without TUNNEL_ENHANCED");
}

/// The receive side delivers from the drop point on, in the failed link's
/// order: below it discarded (counted), ahead of it held until the gap is
/// filled, the dummy dropped, tunnel fragments put together.
#[test]
fn failover_rx_delivers_from_the_drop_point_in_order() {
    let mut stats = LinkStats::default();
    // the failed link had delivered up to 4 and received 7 out of order
    let mut rx = FailoverRx::new(1, 0, SeqNo(5), vec![(SeqNo(7), pkt(7, 7))], Reassembler::new());
    // (the dummy takes the next seqno, 8, as on the failed link)
    let mut d = UncheckedHeader::new(dummy(OWN, PEER).to_vec());
    d.set_seqno(SeqNo(8));
    let d = Bytes::from(d.into_inner());
    let batch = failover_msgs(OWN, PEER, 1, vec![pkt(3, 3), pkt(4, 4), pkt(6, 6), pkt(5, 5), d], 1500, true);
    let got = feed(&mut rx, 10, &batch, &mut stats);
    assert_eq!(got, [5, 6, 7], "3 and 4 were delivered before; 6 waits for 5, 7 was deferred; the dummy dropped");
    assert_eq!(rx.drop_point, SeqNo(9), "the dummy took its place");
    assert_eq!(stats.duplicates, 2);
    assert_eq!(stats.tunnel_delivered, 3);
    assert!(!rx.done(SeqNo(14)) && rx.done(SeqNo(15)), "the batch ends at tunnel seqno 14");
}

/// Packets too far ahead of the drop point are not kept.
#[test]
fn failover_rx_keeps_a_window_ahead() {
    let mut stats = LinkStats::default();
    let far = SeqNo(1).add(crate::RCV_WINDOW);
    let beyond = far.next();
    let mut rx = FailoverRx::new(1, 0, SeqNo(1), vec![], Reassembler::new());
    let batch = failover_msgs(OWN, PEER, 1, vec![pkt(beyond.0, 9), pkt(far.0, 8)], 1500, true);
    assert!(feed(&mut rx, 1, &batch, &mut stats).is_empty());
    assert_eq!(rx.deferred.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [far]);
}

/// The sync point is the lowest batch end seen: a later message with a
/// smaller count lowers it.
#[test]
fn the_sync_point_is_the_lowest_batch_end() {
    let mut stats = LinkStats::default();
    let mut rx = FailoverRx::new(1, 0, SeqNo(1), vec![], Reassembler::new());
    let nine = failover_msgs(OWN, PEER, 1, (1..=9).map(|i| pkt(i, i as u8)).collect(), 1500, true);
    feed(&mut rx, 3, &nine[..1], &mut stats);
    assert_eq!(rx.sync_point, Some(SeqNo(11)));
    let one = failover_msgs(OWN, PEER, 1, vec![pkt(2, 2)], 1500, true);
    feed(&mut rx, 4, &one, &mut stats);
    assert_eq!(rx.sync_point, Some(SeqNo(4)));
}

/// Tunnel fragments are put together only in order; a fragment out of
/// place drops the packet being put together.
#[test]
fn tunnel_fragments_are_put_together_in_order_only() {
    let big = {
        let mut d = DataMsg::new(DataType::Direct, Bytes::from(vec![42u8; 3000]));
        d.dest_node = PEER;
        d.dest_port = PortId(7);
        let m = Msg::Data(d).to_bytes().expect("data");
        let mut h = UncheckedHeader::new(m.to_vec());
        h.set_seqno(SeqNo(1));
        Bytes::from(h.into_inner())
    };
    let frags = failover_msgs(OWN, PEER, 1, vec![big], 1500, true);
    assert_eq!(frags.len(), 3);
    let mut stats = LinkStats::default();
    let mut rx = FailoverRx::new(1, 0, SeqNo(1), vec![], Reassembler::new());
    let skipped = [frags[0].clone(), frags[2].clone()];
    assert!(feed(&mut rx, 1, &skipped, &mut stats).is_empty(), "fragment 2 missing");
    assert_eq!(stats.tunnel_reassembled, 0);
    assert_eq!(feed(&mut rx, 3, &frags, &mut stats), [42]);
    assert_eq!(stats.tunnel_reassembled, 1);
}
