//! Unit tests of one link endpoint: two `Link`s wired back to back, time
//! and loss in the test's hands.

use super::*;
use tipc_wire::{DataMsg, DataType, PortId};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn bc() -> BcCtx {
    BcCtx::default()
}

/// A link from node `own` to node `peer` (MTU 1500, tolerance 1.5 s,
/// window 50, gap-ACK records on both sides).
fn link(own: u32, peer: u32) -> Link {
    Link::new(NodeAddr(own), NodeAddr(peer), caps::OURS, caps::OURS, "eth0", 1500, MS(1500), 50, 100 + own as u16)
}

/// A data message of importance `imp` with `len` payload bytes.
fn data(imp: Importance, len: usize, tag: u8) -> Bytes {
    let mut d = DataMsg::new(DataType::Direct, Bytes::from(vec![tag; len]));
    d.importance = imp;
    d.orig_node = NodeAddr(1);
    d.dest_node = NodeAddr(2);
    d.orig_port = PortId(1);
    d.dest_port = PortId(2);
    Msg::Data(d).to_bytes().expect("data message")
}

/// Messages with the fields the link stamps (broadcast ack, ack, seqno,
/// previous node) cleared, to compare what was sent with what was delivered.
fn unstamped(msgs: &[Bytes]) -> Vec<Vec<u8>> {
    msgs.iter()
        .map(|m| {
            let mut h = UncheckedHeader::new(m.to_vec());
            h.set_bcast_ack(SeqNo(0));
            h.set_ack(SeqNo(0));
            h.set_seqno(SeqNo(0));
            h.set_prev_node(NodeAddr(0));
            h.into_inner()
        })
        .collect()
}

/// The LINK_PROTOCOL message in `b`, if it is one.
fn proto(b: &Bytes) -> Option<LinkProtoMsg> {
    match Msg::parse(b.clone()) {
        Ok(Msg::LinkProto(m)) => Some(m),
        _ => None,
    }
}

/// What one endpoint got from a batch of packets.
#[derive(Default)]
struct Got {
    out: Vec<Bytes>,
    deliver: Vec<Bytes>,
    up: bool,
    down: Option<DownReason>,
    uncongested: bool,
}

/// Hands `pkts` to `l` as its receive path would.
fn feed(l: &mut Link, now: Instant, pkts: Vec<Bytes>) -> Got {
    let mut g = Got::default();
    l.set_now(now);
    for p in pkts {
        let oc = match proto(&p) {
            Some(m) => l.recv_proto(now, &m, &bc(), &mut g.out),
            None => l.recv(now, p, &bc(), &mut g.out, &mut g.deliver),
        };
        g.up |= oc.up;
        g.uncongested |= oc.uncongested;
        g.down = g.down.or(oc.down);
    }
    g
}

/// Two links brought up with the RESET / ACTIVATE / STATE exchange.
fn pair() -> (Link, Link, Instant) {
    let (mut a, mut b) = (link(1, 2), link(2, 1));
    let now = Instant::ZERO + MS(1);
    let mut out = Vec::new();
    a.tick(now, &bc(), false, &mut out);
    let gb = feed(&mut b, now, out);
    assert_eq!(b.state, LinkState::Establishing);
    let ga = feed(&mut a, now, gb.out);
    assert!(ga.up && a.is_up());
    let mut out = Vec::new();
    a.tick(now, &bc(), false, &mut out);
    let gb = feed(&mut b, now, out);
    assert!(gb.up && b.is_up());
    (a, b, now)
}

#[test]
fn two_links_come_up_and_carry_data_in_order() {
    let (mut a, mut b, now) = pair();
    let msgs: Vec<Bytes> = (0..5).map(|i| data(Importance::Low, 100, i)).collect();
    let mut out = Vec::new();
    for m in &msgs {
        a.send(m.clone(), &bc(), &mut out).expect("queued");
    }
    let (_, got) = carry(&mut a, &mut b, now, out);
    assert_eq!(unstamped(&got), unstamped(&msgs));
    assert_eq!((a.stats.sent_pkts, b.stats.recv_pkts), (5, 5));
}

/// `n` small LOW messages sent on `l`: the packets that went out.
fn send_small(l: &mut Link, n: u8) -> Vec<Bytes> {
    let mut out = Vec::new();
    for i in 0..n {
        l.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("sent");
    }
    out
}

/// Carries packets both ways until neither side has anything to send;
/// returns what `a` and `b` delivered.
fn carry(a: &mut Link, b: &mut Link, now: Instant, mut a_out: Vec<Bytes>) -> (Vec<Bytes>, Vec<Bytes>) {
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        if a_out.is_empty() {
            break;
        }
        let gb = feed(b, now, std::mem::take(&mut a_out));
        at_b.extend(gb.deliver);
        let ga = feed(a, now, gb.out);
        at_a.extend(ga.deliver);
        a_out = ga.out;
    }
    (at_a, at_b)
}

/// `msg` with its sequence number replaced.
fn with_seq(msg: &Bytes, seq: u16) -> Bytes {
    let mut h = UncheckedHeader::new(BytesMut::from(&msg[..]));
    h.set_seqno(SeqNo(seq));
    h.into_inner().freeze()
}

/// The LINK_PROTOCOL messages among `pkts`.
fn protos(pkts: &[Bytes]) -> Vec<LinkProtoMsg> {
    pkts.iter().filter_map(proto).collect()
}

/// Data classes 0–3 come from the user field, rejected data (error code
/// set) and protocol traffic are class 4; fragments and bundles carry the
/// class of what they hold in word 9 (net/tipc/link.c, backlog limits).
#[test]
fn importance_classes_follow_user_error_code_and_inner_importance() {
    for (imp, class) in
        [(Importance::Low, 0), (Importance::Medium, 1), (Importance::High, 2), (Importance::Critical, 3)]
    {
        assert_eq!(importance_of(&data(imp, 10, 0)), class);
    }
    let mut rejected = DataMsg::new(DataType::Direct, Bytes::from_static(b"x"));
    rejected.err = tipc_wire::ErrorCode::NoPort;
    assert_eq!(importance_of(&Msg::Data(rejected).to_bytes().expect("msg")), 4);
    let big = data(Importance::High, 3000, 1);
    let frags = fragment(&big, 1460, IntHdr::default(), Importance::High).expect("fragments");
    let f = Msg::Fragment(frags[0].clone()).to_bytes().expect("fragment");
    assert_eq!(importance_of(&f), 2);
    let mut bb = BundleBuilder::new(IntHdr::default(), 1460);
    bb.push(&data(Importance::Medium, 10, 1), Importance::Medium);
    let bundle = Msg::Bundle(bb.finish()).to_bytes().expect("bundle");
    assert_eq!(importance_of(&bundle), 1);
    let mut l = link(1, 2);
    let reset = l.build_proto(LinkProtoType::Reset, false, false, 0, false, &bc());
    assert_eq!(importance_of(&reset), 4);
}

/// Past the window, each importance has a backlog of its own: 2, 4, 6
/// and 8 windows for LOW to CRITICAL; a full one refuses the send
/// (nothing queued) and marks the link congested.
#[test]
fn the_backlog_is_capped_per_importance() {
    let (mut a, _b, _now) = pair();
    let mut out = Vec::new();
    let big = |imp| data(imp, 1100, 0);
    for _ in 0..50 {
        a.send(big(Importance::Low), &bc(), &mut out).expect("window");
    }
    assert_eq!(out.len(), 50, "the window goes out at once");
    for (imp, cap) in
        [(Importance::Low, 100), (Importance::Medium, 200), (Importance::High, 300), (Importance::Critical, 400)]
    {
        let mut n = 0;
        while a.send(big(imp), &bc(), &mut out).is_ok() {
            n += 1;
            assert!(n <= 1000, "no cap for {imp:?}");
        }
        assert_eq!(n, cap, "{imp:?}");
    }
    assert!(a.is_congested());
    assert_eq!(a.stats.link_congs, 4);
    assert_eq!(out.len(), 50, "nothing more sent while the window is full");
    assert_eq!(a.queued(), (50, 1000));
}

/// Acknowledgements move the backlog into the window and say when the
/// link is no longer congested.
#[test]
fn acks_drain_the_backlog_and_reopen_a_congested_link() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    for _ in 0..150 {
        a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).expect("room");
    }
    assert!(a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).is_err());
    assert!(a.is_congested());
    let gb = feed(&mut b, now, out);
    assert_eq!(gb.deliver.len(), 50);
    // b acknowledged every 16 packets
    assert_eq!(protos(&gb.out).iter().map(|m| m.hdr.ack.0).collect::<Vec<_>>(), [16, 32, 48]);
    let ga = feed(&mut a, now, gb.out);
    assert!(ga.uncongested, "told once the backlog fell below its limit");
    assert!(!a.is_congested());
    assert_eq!(ga.out.len(), 48, "as many sent as were released");
    assert_eq!(a.queued(), (50, 52));
    assert!(a.send(data(Importance::Low, 1100, 0), &bc(), &mut Vec::new()).is_ok());
}

/// Small messages waiting behind a full window are bundled, up to the
/// largest packet and only with messages of their own importance; the
/// peer opens the bundles and delivers everything in order.
#[test]
fn small_messages_in_the_backlog_are_bundled() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    let mut sent = Vec::new();
    for i in 0..50 {
        let m = data(Importance::Low, 1100, i);
        sent.push(m.clone());
        a.send(m, &bc(), &mut out).expect("window");
    }
    for i in 0..30 {
        let m = data(Importance::Low, 100, i);
        sent.push(m.clone());
        a.send(m, &bc(), &mut out).expect("backlog");
    }
    let high = data(Importance::High, 100, 99);
    sent.push(high.clone());
    a.send(high, &bc(), &mut out).expect("backlog");
    // 132-byte messages: ten fit a 1460-byte packet with its 40-byte header
    assert_eq!(a.backlog.len(), 4, "three bundles of ten and the HIGH one alone");
    assert_eq!(a.queued(), (50, 31));
    let (_, got) = carry(&mut a, &mut b, now, out);
    assert_eq!(unstamped(&got), unstamped(&sent));
    assert_eq!((a.stats.sent_bundles, a.stats.sent_bundled), (3, 30));
    // a bundle names us as origin and the peer as destination
    let mut a2 = link(1, 2);
    let mut o = Vec::new();
    a2.send(data(Importance::Low, 10, 0), &bc(), &mut o).expect("queued");
    a2.send(data(Importance::Low, 10, 1), &bc(), &mut o).expect("queued");
    a2.state = LinkState::Established;
    a2.advance_backlog(&bc(), &mut o);
    let Ok(Msg::Bundle(bm)) = Msg::parse(o[0].clone()) else { panic!("a bundle") };
    assert_eq!((bm.hdr.orig_node, bm.hdr.dest_node), (NodeAddr(1), NodeAddr(2)));
    assert_eq!(b.stats.recv_bundles, 3);
}

/// A message larger than the largest packet goes in fragments that fit
/// it, and arrives whole.
#[test]
fn large_messages_are_fragmented_to_the_largest_packet() {
    let (mut a, mut b, now) = pair();
    let big = data(Importance::Low, 5000, 7);
    let mut out = Vec::new();
    a.send(big.clone(), &bc(), &mut out).expect("sent");
    let per = a.max_pkt() - INT_H_SIZE;
    assert_eq!(out.len(), big.len().div_ceil(per));
    assert!(out.iter().all(|f| f.len() <= a.max_pkt()));
    assert_eq!(a.stats.sent_fragments, out.len() as u64);
    let (_, got) = carry(&mut a, &mut b, now, out);
    assert_eq!(unstamped(&got), unstamped(&[big]));
    assert_eq!(b.stats.recv_fragments, a.stats.sent_fragments);
}

/// The largest packet is the MTU less an internal header, never below
/// 100 bytes; the peer's smaller MTU wins.
#[test]
fn max_pkt_follows_the_smaller_mtu() {
    let mut a = link(1, 2);
    assert_eq!(a.max_pkt(), 1500 - INT_H_SIZE);
    let mut b = Link::new(NodeAddr(2), NodeAddr(1), caps::OURS, caps::OURS, "eth0", 1000, MS(1500), 50, 7);
    let mut out = Vec::new();
    b.tick(Instant::ZERO, &bc(), false, &mut out);
    feed(&mut a, Instant::ZERO, out);
    assert_eq!(a.mtu, 1000);
    assert_eq!(a.max_pkt(), 1000 - INT_H_SIZE);
    let tiny = Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 90, MS(1500), 50, 1);
    assert_eq!(tiny.max_pkt(), INT_H_SIZE + 60);
}

/// Every sequenced packet carries its sequence number, our last
/// in-sequence receipt as ack, the broadcast ack and our address as
/// previous node.
#[test]
fn sent_packets_are_stamped_with_seqno_acks_and_previous_node() {
    let (mut a, mut b, now) = pair();
    let from_b: Vec<Bytes> = (0..3).map(|i| data(Importance::Low, 10, i)).collect();
    let mut o = Vec::new();
    for m in from_b {
        b.send(m, &bc(), &mut o).expect("sent");
    }
    carry(&mut b, &mut a, now, o);
    let ctx = BcCtx { ack: SeqNo(77), ..bc() };
    let mut out = Vec::new();
    a.send(data(Importance::Low, 10, 0), &ctx, &mut out).expect("sent");
    a.send(data(Importance::Low, 10, 1), &ctx, &mut out).expect("sent");
    let p = Header::new_checked(&out[1][..]).expect("a header");
    assert_eq!(p.seqno(), SeqNo(2), "seqno");
    assert_eq!(p.ack(), SeqNo(3), "ack");
    assert_eq!(p.bcast_ack(), SeqNo(77), "broadcast ack");
    assert_eq!(p.prev_node(), NodeAddr(1), "previous node");
}

/// Packets seen before, and packets further ahead than the receive
/// window, are counted as duplicates and dropped; one at the window's
/// edge waits in the deferred queue.
#[test]
fn duplicates_and_packets_past_the_window_are_dropped() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    a.send(data(Importance::Low, 10, 0), &bc(), &mut out).expect("sent");
    a.send(data(Importance::Low, 10, 1), &bc(), &mut out).expect("sent");
    let g = feed(&mut b, now, vec![out[0].clone(), out[0].clone()]);
    assert_eq!(g.deliver.len(), 1);
    assert_eq!(b.stats.duplicates, 1);
    let far = with_seq(&out[1], 2 + RCV_WINDOW + 1);
    feed(&mut b, now, vec![far]);
    assert_eq!((b.stats.duplicates, b.stats.deferred), (2, 0));
    let edge = with_seq(&out[1], 2 + RCV_WINDOW);
    feed(&mut b, now, vec![edge.clone()]);
    assert_eq!((b.stats.duplicates, b.stats.deferred), (2, 1));
    feed(&mut b, now, vec![edge]);
    assert_eq!(b.stats.duplicates, 3, "the same deferred packet twice");
    let g = feed(&mut b, now, vec![out[1].clone()]);
    assert_eq!(g.deliver.len(), 1);
}

/// A receiver acknowledges explicitly after every 16 packets it took in.
#[test]
fn an_explicit_ack_follows_every_sixteen_packets() {
    let (mut a, mut b, now) = pair();
    let mut out = send_small(&mut a, 16);
    let last = out.pop().expect("16 packets");
    let g = feed(&mut b, now, out);
    assert!(g.out.is_empty(), "no ack for 15");
    let g = feed(&mut b, now, vec![last]);
    let acks = protos(&g.out);
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].msg_type, acks[0].hdr.ack, acks[0].gap), (LinkProtoType::State, SeqNo(16), 0));
}

/// A gap is reported (NACK) when the third, the nineteenth, ... packet
/// waits behind it; the sender retransmits what is missing at most once
/// per millisecond, and the receiver then delivers everything in order.
#[test]
fn gaps_are_nacked_and_retransmitted_at_most_once_a_millisecond() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    let msgs: Vec<Bytes> = (0..20).map(|i| data(Importance::Low, 10, i)).collect();
    for m in &msgs {
        a.send(m.clone(), &bc(), &mut out).expect("sent");
    }
    let lost = out.remove(0);
    let g = feed(&mut b, now, out);
    assert!(g.deliver.is_empty());
    let nacks: Vec<LinkProtoMsg> = protos(&g.out).into_iter().filter(|m| m.gap != 0).collect();
    assert_eq!(nacks.len(), 2, "at 3 and 19 deferred");
    assert!(nacks.iter().all(|m| m.gap == 1 && m.hdr.ack == SeqNo(0)));
    assert_eq!(b.stats.sent_nacks, 2);
    let ga = feed(&mut a, now, g.out.clone());
    assert_eq!(ga.out, std::slice::from_ref(&lost), "the missing packet, once");
    assert_eq!((a.stats.recv_nacks, a.stats.retransmitted), (2, 1));
    assert!(feed(&mut a, now + Duration::from_micros(999), g.out.clone()).out.is_empty());
    assert_eq!(feed(&mut a, now + MS(1), g.out).out.len(), 1);
    let g = feed(&mut b, now, vec![lost]);
    assert_eq!(unstamped(&g.deliver), unstamped(&msgs));
}

/// With gap-ACK records negotiated, one STATE names every missing run
/// and the sender retransmits all of them; without, only the first gap.
#[test]
fn gap_ack_records_retransmit_every_missing_run() {
    for gap_acks in [true, false] {
        let (mut a, mut b, now) = pair();
        if !gap_acks {
            a.peer_caps = 0;
            b.peer_caps = 0;
        }
        let mut out = Vec::new();
        for i in 0..6 {
            a.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("sent");
        }
        let (p2, p4) = (out[1].clone(), out[3].clone());
        let arrived = vec![out[0].clone(), out[2].clone(), out[4].clone(), out[5].clone()];
        let g = feed(&mut b, now, arrived);
        let ga = feed(&mut a, now, g.out);
        let want = if gap_acks { vec![p2, p4] } else { vec![p2] };
        assert_eq!(ga.out, want, "gap-ACK records negotiated: {gap_acks}");
    }
}

/// A RESET from `from` with `session`, `tolerance` (ms) and the stopping flag.
fn reset_msg(from: &mut Link, session: u16, tolerance: u16, stopping: bool) -> LinkProtoMsg {
    from.session = session;
    let b = from.build_proto(LinkProtoType::Reset, false, false, 0, stopping, &bc());
    let mut m = proto(&b).expect("RESET");
    m.tolerance = tolerance;
    m
}

/// STATE messages carry what the kernel puts there: a sequence number
/// 32 767 ahead of the next data packet, our ack and next_sent, the
/// probe and keepalive flags, the broadcast gap (at most 1 023) and the
/// redundant-link flag for a synchronised broadcast receiver; ACTIVATE
/// carries the peer's session and our MTU (net/tipc/link.c,
/// tipc_link_build_proto_msg).
#[test]
fn protocol_messages_carry_the_kernels_fields() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    for i in 0..3 {
        b.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("sent");
    }
    feed(&mut a, now, out);
    let ctx = BcCtx { ack: SeqNo(5), synced: true, gap: 5000, last_sent: SeqNo(9) };
    let m = proto(&a.build_proto(LinkProtoType::State, true, false, 0, false, &ctx)).expect("STATE");
    assert_eq!(m.hdr.seqno, a.snd_nxt.add(32767));
    assert_eq!((m.hdr.ack, m.next_sent, m.session), (SeqNo(3), a.snd_nxt, a.session));
    assert_eq!((m.hdr.prev_node, m.hdr.orig_node, m.hdr.dest_node), (NodeAddr(1), NodeAddr(1), NodeAddr(2)));
    assert!(m.probe && m.keepalive());
    assert_eq!((m.bcast_gap, m.last_bcast_sent, m.hdr.bcast_ack), (1023, SeqNo(9), SeqNo(5)));
    assert!(m.redundant_link && !m.bc_ack_invalid);
    let r = proto(&a.build_proto(LinkProtoType::State, false, true, 0, false, &bc())).expect("STATE");
    assert!(!r.probe && r.keepalive(), "a probe reply is keepalive");
    assert!(!r.redundant_link && r.bc_ack_invalid);
    let plain = proto(&a.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
    assert!(!plain.keepalive());
    // pair() sent one probing STATE already
    assert_eq!((a.stats.sent_states, a.stats.sent_probes), (4, 2));
    let act = proto(&a.build_proto(LinkProtoType::Activate, false, false, 0, false, &bc())).expect("ACTIVATE");
    assert!(act.dest_session_valid());
    assert_eq!((act.dest_session(), act.max_pkt()), (b.session, 1500));
    assert_eq!(act.if_name(), Some("eth0"));
    let rst = proto(&a.build_proto(LinkProtoType::Reset, false, false, 0, true, &bc())).expect("RESET");
    assert!(rst.peer_stopping);
    assert_eq!(rst.max_pkt(), 1500);
}

/// Which protocol messages a link accepts (net/tipc/link.c,
/// tipc_link_validate_msg): a RESET only from a newer session, an
/// ACTIVATE from the same or a newer one, a STATE only from the
/// current session, and before the link is up only one that acks nothing.
#[test]
fn protocol_messages_are_accepted_by_session() {
    let (mut a, mut b, now) = pair();
    let s = b.session;
    let mut out = Vec::new();
    let old = reset_msg(&mut b, s, 0, false);
    assert_eq!(a.recv_proto(now, &old, &bc(), &mut out), Outcome::default());
    assert!(a.is_up() && out.is_empty(), "a RESET of the current session is ignored");
    let mut st = proto(&b.build_proto(LinkProtoType::State, true, false, 0, false, &bc())).expect("STATE");
    st.session = s.wrapping_add(1);
    a.recv_proto(now, &st, &bc(), &mut out);
    assert_eq!(a.stats.recv_states, 0, "a STATE of another session is ignored");
    st.session = s;
    a.recv_proto(now, &st, &bc(), &mut out);
    assert_eq!(a.stats.recv_states, 1);
    let newer = reset_msg(&mut b, s.wrapping_add(1), 0, false);
    let oc = a.recv_proto(now, &newer, &bc(), &mut out);
    assert_eq!(oc.down, Some(DownReason::PeerReset));
    assert_eq!(a.state, LinkState::Establishing);
    // a fresh link takes no STATE before a RESET or ACTIVATE
    let mut c = link(3, 2);
    let st = proto(&b.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
    c.recv_proto(now, &st, &bc(), &mut out);
    assert_eq!((c.state, c.stats.recv_states), (LinkState::Reset, 0));
    // an Establishing link comes up on a STATE that acks nothing, not on one that does
    let (mut d, mut e) = (link(4, 5), link(5, 4));
    let mut o = Vec::new();
    e.tick(now, &bc(), false, &mut o);
    feed(&mut d, now, std::mem::take(&mut o));
    assert_eq!(d.state, LinkState::Establishing);
    e.peer_session = Some(d.session);
    e.state = LinkState::Established;
    e.rcv_nxt = SeqNo(5);
    let acking = proto(&e.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
    assert!(!d.recv_proto(now, &acking, &bc(), &mut o).up);
    e.rcv_nxt = SeqNo(1);
    let fresh = proto(&e.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
    assert!(d.recv_proto(now, &fresh, &bc(), &mut o).up);
}

/// A tolerance in RESET, ACTIVATE or STATE is taken when it lies in
/// 50 ms – 30 s, ignored otherwise.
#[test]
fn the_peers_tolerance_is_taken_within_range() {
    let now = Instant::ZERO;
    let mut peer = link(2, 1);
    for (tol, want) in [(49, 1500), (50, 50), (30_000, 30_000), (30_001, 1500)] {
        let mut a = link(1, 2);
        let m = reset_msg(&mut peer, 10, tol, false);
        a.recv_proto(now, &m, &bc(), &mut Vec::new());
        assert_eq!(a.tolerance, MS(want), "RESET tolerance {tol}");
    }
    let (mut a, mut b, now) = pair();
    let mut st = proto(&b.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
    st.tolerance = 400;
    a.recv_proto(now, &st, &bc(), &mut Vec::new());
    assert_eq!(a.tolerance, MS(400));
    st.tolerance = 40;
    a.recv_proto(now, &st, &bc(), &mut Vec::new());
    assert_eq!(a.tolerance, MS(400));
}

/// RESET and ACTIVATE without a full interface name field or with a
/// maximum packet below 100 bytes are ignored.
#[test]
fn short_or_tiny_resets_are_ignored() {
    let mut a = link(1, 2);
    let mut peer = link(2, 1);
    let mut m = reset_msg(&mut peer, 10, 0, false);
    m.payload = Bytes::from_static(&[0; 15]);
    a.recv_proto(Instant::ZERO, &m, &bc(), &mut Vec::new());
    assert_eq!(a.state, LinkState::Reset);
    let mut m = reset_msg(&mut peer, 10, 0, false);
    m.max_pkt_div4 = 24;
    a.recv_proto(Instant::ZERO, &m, &bc(), &mut Vec::new());
    assert_eq!(a.state, LinkState::Reset);
    m.max_pkt_div4 = 25;
    let mut out = Vec::new();
    a.recv_proto(Instant::ZERO, &m, &bc(), &mut out);
    assert_eq!(a.state, LinkState::Establishing);
    assert_eq!(a.mtu, 100);
    assert_eq!(protos(&out).iter().map(|p| p.msg_type).collect::<Vec<_>>(), [LinkProtoType::Activate]);
}

/// A peer that says it is stopping takes an up link down, and leaves a
/// link that is down as it is.
#[test]
fn a_stopping_peer_takes_the_link_down() {
    let (mut a, mut b, now) = pair();
    let s = b.session.wrapping_add(1);
    let m = reset_msg(&mut b, s, 0, true);
    assert_eq!(a.recv_proto(now, &m, &bc(), &mut Vec::new()).down, Some(DownReason::PeerStopping));
    let mut c = link(3, 2);
    let m = reset_msg(&mut b, s.wrapping_add(1), 0, true);
    let mut out = Vec::new();
    assert_eq!(c.recv_proto(now, &m, &bc(), &mut out), Outcome::default());
    assert!(out.is_empty());
    assert_eq!(c.state, LinkState::Reset);
}

/// An ACTIVATE naming another session of ours is ignored; if it names a
/// later one, our next session starts after it.
#[test]
fn an_activate_for_another_session_moves_ours_past_it() {
    let (mut a, mut b) = (link(1, 2), link(2, 1));
    let now = Instant::ZERO;
    b.peer_session = Some(a.session.wrapping_add(50));
    let act = proto(&b.build_proto(LinkProtoType::Activate, false, false, 0, false, &bc())).expect("ACTIVATE");
    let before = a.session;
    assert_eq!(a.recv_proto(now, &act, &bc(), &mut Vec::new()), Outcome::default());
    assert_eq!(a.state, LinkState::Reset);
    assert_eq!(a.session, before.wrapping_add(51));
    b.peer_session = Some(a.session.wrapping_sub(10));
    let act = proto(&b.build_proto(LinkProtoType::Activate, false, false, 0, false, &bc())).expect("ACTIVATE");
    a.recv_proto(now, &act, &bc(), &mut Vec::new());
    assert_eq!(a.session, before.wrapping_add(51), "an older one leaves ours alone");
    b.peer_session = Some(a.session);
    let act = proto(&b.build_proto(LinkProtoType::Activate, false, false, 0, false, &bc())).expect("ACTIVATE");
    assert!(a.recv_proto(now, &act, &bc(), &mut Vec::new()).up);
}

/// A link that is down sends RESET on its first five ticks, then on every
/// sixteenth; hearing from the peer brings the fast cadence back.
#[test]
fn reset_cadence_is_fast_then_slow_and_hastened_by_discovery() {
    let mut a = link(1, 2);
    let resets_on = |a: &mut Link, ticks: std::ops::Range<u32>| -> Vec<u32> {
        ticks
            .filter(|_| {
                let mut out = Vec::new();
                a.tick(Instant::ZERO, &bc(), false, &mut out);
                !out.is_empty()
            })
            .collect()
    };
    assert_eq!(resets_on(&mut a, 0..40), [0, 1, 2, 3, 4, 16, 32]);
    a.hasten_reset();
    assert_eq!(resets_on(&mut a, 0..6).len(), 5);
    let mut b = link(2, 1);
    resets_on(&mut b, 0..3);
    b.hasten_reset();
    assert_eq!(b.reset_ticks, 3, "within the fast ticks nothing changes");
}

/// Supervision: the interval is a quarter of the tolerance, at most
/// 500 ms; the link probes once the peer is silent for a tick and goes
/// down a tolerance after it was last heard, or after more silent ticks
/// than the tolerance holds.
#[test]
fn a_silent_peer_is_probed_then_declared_dead() {
    let (mut a, _b, now) = pair();
    assert_eq!(a.tick_interval(), MS(375));
    assert_eq!(a.abort_limit(), 4);
    let mut out = Vec::new();
    let mut probes = Vec::new();
    let mut down_at = None;
    // ticks slower than the interval: the deadline trips first
    for k in 0..10u64 {
        out.clear();
        let t = now + MS(700 * k);
        let oc = a.tick(t, &bc(), false, &mut out);
        if let Some(r) = oc.down {
            down_at = Some((k, r));
            break;
        }
        probes.push(protos(&out).iter().filter(|m| m.probe).count());
    }
    assert_eq!(
        down_at,
        Some((3, DownReason::SupervisionTimeout)),
        "down at the first tick a tolerance after last heard"
    );
    assert_eq!(probes, [1, 1, 1], "a probe on every silent tick");
    // ticks faster than the interval: the silent-tick count trips first
    let (mut c, _d, now) = pair();
    let mut k = 0;
    while c.tick(now + MS(k), &bc(), false, &mut Vec::new()).down.is_none() {
        k += 1;
        assert!(k < 100);
    }
    // pair() ticked once: silent ticks 1 to 5, the fifth is past the limit of 4
    assert_eq!(k, 4, "down on the fifth silent tick");
    let slow = Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 1500, MS(4000), 50, 1);
    assert_eq!((slow.tick_interval(), slow.abort_limit()), (MS(500), 8));
    assert_eq!(a.dead_at(), Some(now + MS(1500)), "one tolerance after last heard");
    assert_eq!(link(1, 2).dead_at(), None, "a link that is not up has no deadline");
}

/// On a tick, an established link sends a STATE when it owes an ack,
/// has packets in flight or a broadcast ack is pending, and stays quiet
/// when the peer was heard, nothing is owed and data moved since the
/// last tick.
#[test]
fn ticks_send_state_only_when_there_is_something_to_say() {
    let (mut a, mut b, now) = pair();
    let mut o = Vec::new();
    b.send(data(Importance::Low, 10, 0), &bc(), &mut o).expect("sent");
    feed(&mut a, now, o);
    let mut out = Vec::new();
    a.tick(now + MS(375), &bc(), false, &mut out);
    let st = protos(&out);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].hdr.ack, SeqNo(1), "the ack owed");
    // quiet: heard from, nothing owed, the checkpoint moved
    let quiet = |a: &mut Link| {
        a.silent = 0;
        a.rcv_unacked = 0;
        a.checkpoint = a.snd_nxt.prev();
    };
    quiet(&mut a);
    out.clear();
    a.tick(now + MS(750), &bc(), false, &mut out);
    assert!(out.is_empty(), "nothing to say");
    quiet(&mut a);
    a.tick(now + MS(750), &bc(), true, &mut out);
    assert_eq!(protos(&out).len(), 1, "a pending broadcast ack");
    quiet(&mut a);
    out.clear();
    let mut o = Vec::new();
    b.send(data(Importance::Low, 10, 1), &bc(), &mut o).expect("sent");
    feed(&mut a, now, o);
    a.checkpoint = a.snd_nxt.prev();
    a.tick(now + MS(750), &bc(), false, &mut out);
    assert_eq!(protos(&out).len(), 1, "an ack owed");
    quiet(&mut a);
    out.clear();
    let mut o = Vec::new();
    a.send(data(Importance::Low, 10, 0), &bc(), &mut o).expect("sent");
    a.checkpoint = SeqNo(0);
    a.tick(now + MS(750), &bc(), false, &mut out);
    assert_eq!(protos(&out).len(), 1, "a packet in flight");
}

/// A packet retransmitted for more than ten tolerances without being
/// acknowledged takes the link down.
#[test]
fn retransmission_without_progress_fails_the_link() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    a.send(data(Importance::Low, 10, 0), &bc(), &mut out).expect("sent");
    a.send(data(Importance::Low, 10, 1), &bc(), &mut out).expect("sent");
    // b saw only the second: its NACK asks for the first
    let nack = proto(&b.build_proto(LinkProtoType::State, false, false, 1, false, &bc())).expect("NACK");
    a.recv_proto(now, &nack, &bc(), &mut Vec::new());
    assert_eq!(a.stats.retransmitted, 1);
    let keepalive = |b: &mut Link, a: &mut Link, t: Instant| {
        let st = proto(&b.build_proto(LinkProtoType::State, false, false, 0, false, &bc())).expect("STATE");
        a.recv_proto(t, &st, &bc(), &mut Vec::new());
    };
    let limit = now + MS(1500).mul(10);
    keepalive(&mut b, &mut a, limit);
    assert_eq!(a.tick(limit, &bc(), false, &mut Vec::new()).down, None);
    let after = limit + MS(1);
    keepalive(&mut b, &mut a, after);
    assert_eq!(a.tick(after, &bc(), false, &mut Vec::new()).down, Some(DownReason::RetransmissionFailure));
}

/// Unacknowledged packets with no progress for 10 ms get a probe, whose
/// reply reports any gap at once.
#[test]
fn a_fast_probe_follows_ten_quiet_milliseconds() {
    let (mut a, _b, now) = pair();
    assert_eq!(a.fast_probe_at(), None, "nothing in flight");
    let t = now + MS(100);
    a.set_now(t);
    let mut out = Vec::new();
    a.send(data(Importance::Low, 10, 0), &bc(), &mut out).expect("sent");
    assert_eq!(a.fast_probe_at(), Some(t + FAST_PROBE));
    let mut probe = Vec::new();
    a.fast_probe(t + MS(9), &bc(), &mut probe);
    assert!(probe.is_empty());
    a.fast_probe(t + MS(10), &bc(), &mut probe);
    let p = protos(&probe);
    assert_eq!(p.len(), 1);
    assert!(p[0].probe);
    assert_eq!(a.fast_probe_at(), Some(t + MS(20)), "the next one 10 ms later");
}

/// A local failure resets the link and tells the peer once, with a
/// stopping RESET; the usual RESETs follow on the next ticks.
#[test]
fn a_local_failure_sends_one_stopping_reset() {
    let (mut a, _b, now) = pair();
    let session = a.session;
    let mut out = Vec::new();
    a.fail(&bc(), &mut out);
    let p = protos(&out);
    assert_eq!(p.len(), 1);
    assert!(p[0].msg_type == LinkProtoType::Reset && p[0].peer_stopping);
    assert_eq!((a.state, a.session, a.stats.resets), (LinkState::Reset, session.wrapping_add(1), 1));
    let mut next = Vec::new();
    a.tick(now, &bc(), false, &mut next);
    assert!(protos(&next).iter().all(|m| m.msg_type == LinkProtoType::Reset && !m.peer_stopping));
    assert_eq!(next.len(), 1);
    assert_eq!(a.queued(), (0, 0));
}

/// A fragment out of place (a middle one with no first before it) is a
/// protocol error that resets the link.
#[test]
fn a_fragment_out_of_place_resets_the_link() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    a.send(data(Importance::Low, 5000, 1), &bc(), &mut out).expect("sent");
    assert!(out.len() >= 3);
    let middle = with_seq(&out[1], 1);
    let g = feed(&mut b, now, vec![middle]);
    assert_eq!(g.down, Some(DownReason::FragmentOutOfPlace));
    assert!(g.deliver.is_empty());
}

/// Fragments, and messages over 1 KiB, are never bundled: each waits in
/// the backlog as a packet of its own.
#[test]
fn fragments_and_large_messages_are_not_bundled() {
    let (mut a, _b, _now) = pair();
    let mut out = Vec::new();
    for i in 0..50 {
        a.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("window");
    }
    // a message just over the largest packet: a full fragment and a small one
    a.send(data(Importance::Low, a.max_pkt(), 1), &bc(), &mut out).expect("fragments");
    a.send(data(Importance::Low, 10, 2), &bc(), &mut out).expect("small");
    a.send(data(Importance::Low, 1000, 3), &bc(), &mut out).expect("1 KiB + header");
    a.send(data(Importance::Low, 10, 4), &bc(), &mut out).expect("small");
    assert_eq!(a.backlog.len(), 5, "two fragments, the small one, the large one, the last small one");
    assert!(!bundleable(&data(Importance::Low, 1000, 0)));
    assert!(bundleable(&data(Importance::Low, 1024 - 32, 0)));
}

/// The window is kept within 16 – 8 191 packets; the system-importance
/// backlog holds max(100, 65 535 / (MTU / 20)) packets.
#[test]
fn window_and_system_backlog_limits() {
    let w = |win| Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 1500, MS(1500), win, 1);
    assert_eq!((w(10).window, w(50).window, w(9000).window), (16, 50, RCV_WINDOW));
    assert_eq!(w(50).limits, [100, 200, 300, 400, 873]);
    let jumbo = Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 9000, MS(1500), 50, 1);
    assert_eq!(jumbo.limits[4], 145);
    let tiny = Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 19, MS(1500), 50, 1);
    assert_eq!(tiny.limits[4], 65535);
}

/// A window set at run time moves the four user backlogs with it (2, 4, 6
/// and 8 windows) and clamps as the constructor does; the system backlog
/// follows the MTU only.
#[test]
fn a_window_set_later_moves_the_backlog_limits() {
    let mut l = Link::new(NodeAddr(1), NodeAddr(2), 0, 0, "e", 1500, MS(1500), 50, 1);
    l.set_window(300);
    assert_eq!((l.window, l.limits), (300, [600, 1200, 1800, 2400, 873]));
    l.set_window(3);
    assert_eq!((l.window, l.limits), (16, [32, 64, 96, 128, 873]));
    l.set_window(u16::MAX);
    assert_eq!(l.window, RCV_WINDOW);
}

/// An establishing link sends ACTIVATE on every tick; a data packet
/// brings it up (and is dropped, to come again); a link that is down
/// ignores data.
#[test]
fn establishing_links_activate_and_come_up_on_data() {
    let (mut a, mut b) = (link(1, 2), link(2, 1));
    let now = Instant::ZERO;
    let mut out = Vec::new();
    a.tick(now, &bc(), false, &mut out);
    let g = feed(&mut b, now, out);
    assert_eq!(b.state, LinkState::Establishing);
    for _ in 0..3 {
        let mut o = Vec::new();
        b.tick(now, &bc(), false, &mut o);
        assert_eq!(protos(&o).iter().map(|m| m.msg_type).collect::<Vec<_>>(), [LinkProtoType::Activate]);
    }
    feed(&mut a, now, g.out);
    assert!(a.is_up());
    // data from a before any STATE: b comes up, the packet is not delivered
    let mut o = Vec::new();
    a.send(data(Importance::Low, 10, 0), &bc(), &mut o).expect("sent");
    let g = feed(&mut b, now, o.clone());
    assert!(g.up && b.is_up());
    assert!(g.deliver.is_empty());
    assert_eq!(b.rcv_nxt, SeqNo(1));
    // a link that is down takes nothing
    let mut c = link(3, 1);
    let g = feed(&mut c, now, o);
    assert!(!g.up && g.deliver.is_empty());
    assert_eq!(c.stats.recv_pkts, 0);
}

/// A STATE announcing packets we never saw gets a NACK for all of them;
/// a probe gets a reply; the sender's STATE acknowledgement releases
/// what it covers.
#[test]
fn state_messages_reveal_tail_loss_and_release_acked_packets() {
    let (mut a, mut b, now) = pair();
    send_small(&mut a, 4);
    // all four lost; a probes
    let probe = a.build_proto(LinkProtoType::State, true, false, 0, false, &bc());
    let g = feed(&mut b, now, vec![probe]);
    let r = protos(&g.out);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].gap, r[0].hdr.ack), (4, SeqNo(0)), "NACK for all four");
    assert!(r[0].keepalive() && !r[0].probe, "a probe reply");
    assert_eq!(b.stats.sent_nacks, 1);
    let ga = feed(&mut a, now, g.out);
    assert_eq!(ga.out.len(), 4, "retransmitted");
    let gb = feed(&mut b, now, ga.out);
    assert_eq!(gb.deliver.len(), 4);
    // b's ack releases them
    let st = b.build_proto(LinkProtoType::State, false, false, 0, false, &bc());
    assert_eq!(a.queued(), (4, 0));
    feed(&mut a, now, vec![st]);
    assert_eq!(a.queued(), (0, 0));
    // a plain STATE with nothing missing gets no answer
    let plain = a.build_proto(LinkProtoType::State, false, false, 0, false, &bc());
    assert!(feed(&mut b, now, vec![plain]).out.is_empty());
    assert!(!a.advance_backlog(&bc(), &mut Vec::new()));
    let mut down = link(1, 2);
    assert!(!down.advance_backlog(&bc(), &mut Vec::new()), "a link that is down sends nothing");
}

/// A message of exactly the largest packet goes whole; fragments name
/// us as origin and the peer as destination.
#[test]
fn a_message_of_exactly_max_pkt_is_not_fragmented() {
    let (mut a, _b, _now) = pair();
    let mut out = Vec::new();
    let exact = data(Importance::Low, a.max_pkt() - 32, 1);
    assert_eq!(exact.len(), a.max_pkt());
    a.send(exact, &bc(), &mut out).expect("sent");
    assert_eq!((out.len(), a.stats.sent_fragments), (1, 0));
    out.clear();
    a.send(data(Importance::Low, a.max_pkt() - 31, 1), &bc(), &mut out).expect("sent");
    assert_eq!(out.len(), 2);
    for f in &out {
        let Ok(Msg::Fragment(m)) = Msg::parse(f.clone()) else { panic!("a fragment") };
        assert_eq!((m.hdr.orig_node, m.hdr.dest_node), (NodeAddr(1), NodeAddr(2)));
    }
}

/// On a link that is not up yet, messages wait in the backlog and small
/// ones are bundled there already; a large message never joins a bundle.
#[test]
fn the_backlog_of_a_link_not_up_bundles_too() {
    let mut a = link(1, 2);
    let mut out = Vec::new();
    for i in 0..5 {
        a.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("queued");
    }
    assert!(out.is_empty());
    assert_eq!((a.backlog.len(), a.queued()), (1, (0, 5)), "one bundle of five");
    a.send(data(Importance::Low, 1100, 9), &bc(), &mut out).expect("queued");
    a.send(data(Importance::Low, 10, 10), &bc(), &mut out).expect("queued");
    assert_eq!(a.backlog.len(), 3, "the large one alone, the next small one after it");
}

/// Only a link that was congested reports being uncongested, and only
/// once every importance is below its limit.
#[test]
fn uncongested_only_after_congestion_and_below_every_limit() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    for _ in 0..60 {
        a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).expect("room");
    }
    let gb = feed(&mut b, now, std::mem::take(&mut out));
    assert!(!feed(&mut a, now, gb.out).uncongested, "never congested");
    // LOW and MEDIUM both full
    while a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).is_ok() {}
    while a.send(data(Importance::Medium, 1100, 0), &bc(), &mut out).is_ok() {}
    let gb = feed(&mut b, now, std::mem::take(&mut out));
    let ga = feed(&mut a, now, gb.out);
    assert!(!ga.uncongested, "MEDIUM still at its limit");
    assert!(a.is_congested());
}

/// An acknowledgement riding on a data packet releases what it covers,
/// moves the backlog and reports the end of congestion; a packet that
/// releases nothing is no progress (the fast probe stays due).
#[test]
fn acks_on_data_packets_release_and_count_as_progress_only_when_they_do() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    a.set_now(now);
    for _ in 0..150 {
        a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).expect("room");
    }
    assert!(a.send(data(Importance::Low, 1100, 0), &bc(), &mut out).is_err());
    let due = a.fast_probe_at().expect("in flight");
    // b sends data before it received anything: no ack, no progress
    let mut bo = Vec::new();
    b.send(data(Importance::Low, 10, 0), &bc(), &mut bo).expect("sent");
    feed(&mut a, now + MS(5), bo);
    assert_eq!(a.fast_probe_at(), Some(due));
    // b receives 10 and answers with data: its ack rides along
    let first10: Vec<Bytes> = out.drain(..10).collect();
    feed(&mut b, now, first10);
    let mut bo = Vec::new();
    b.send(data(Importance::Low, 10, 1), &bc(), &mut bo).expect("sent");
    let ga = feed(&mut a, now + MS(6), bo);
    assert_eq!(ga.out.len(), 10, "the window moved by ten");
    assert!(ga.uncongested);
    assert_eq!(a.fast_probe_at(), Some(now + MS(6) + FAST_PROBE), "progress");
}

/// A NACK names the whole first run of missing packets.
#[test]
fn a_nack_names_the_whole_first_gap() {
    let (mut a, mut b, now) = pair();
    let out = send_small(&mut a, 5);
    let arrived: Vec<Bytes> = out[2..].to_vec();
    let g = feed(&mut b, now, arrived);
    let nacks: Vec<u16> = protos(&g.out).iter().map(|m| m.gap).collect();
    assert_eq!(nacks, [2]);
    let ga = feed(&mut a, now, g.out);
    assert_eq!(ga.out, out[..2].to_vec());
}

/// An ACTIVATE repeated after the link came up changes nothing.
#[test]
fn a_repeated_activate_leaves_an_up_link_alone() {
    let (mut a, mut b, now) = pair();
    b.peer_session = Some(a.session);
    let act = proto(&b.build_proto(LinkProtoType::Activate, false, false, 0, false, &bc())).expect("ACTIVATE");
    let mut out = Vec::new();
    assert_eq!(a.recv_proto(now, &act, &bc(), &mut out), Outcome::default());
    assert!(a.is_up() && out.is_empty());
    assert_eq!(a.stats.resets, 0);
}

/// A probe answered while packets wait behind a gap names that gap only
/// (not everything up to the prober's next packet), and counts as a
/// probe received.
#[test]
fn a_probe_reply_with_deferred_packets_names_the_first_gap() {
    let (mut a, mut b, now) = pair();
    let out = send_small(&mut a, 3);
    feed(&mut b, now, out[1..].to_vec());
    let (nacks, probes) = (b.stats.sent_nacks, b.stats.recv_probes);
    let probe = a.build_proto(LinkProtoType::State, true, false, 0, false, &bc());
    let g = feed(&mut b, now, vec![probe]);
    let r = protos(&g.out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].gap, 1, "packet 1 only");
    assert_eq!(b.stats.sent_nacks, nacks, "a probe reply, not a NACK");
    assert_eq!(b.stats.recv_probes, probes + 1);
    // a probe with nothing missing: a reply, no NACK
    let (mut c, mut d, now) = pair();
    let probe = c.build_proto(LinkProtoType::State, true, false, 0, false, &bc());
    let g = feed(&mut d, now, vec![probe]);
    assert_eq!(protos(&g.out).iter().map(|m| m.gap).collect::<Vec<_>>(), [0]);
    assert_eq!(d.stats.sent_nacks, 0);
}

/// A STATE acknowledgement that releases packets is progress (the fast
/// probe moves); one that releases nothing is not.
#[test]
fn only_a_releasing_state_is_progress() {
    let (mut a, mut b, now) = pair();
    let mut out = Vec::new();
    a.set_now(now);
    a.send(data(Importance::Low, 10, 0), &bc(), &mut out).expect("sent");
    a.send(data(Importance::Low, 10, 1), &bc(), &mut out).expect("sent");
    let due = a.fast_probe_at().expect("in flight");
    let nothing = b.build_proto(LinkProtoType::State, false, false, 0, false, &bc());
    feed(&mut a, now + MS(5), vec![nothing]);
    assert_eq!(a.fast_probe_at(), Some(due));
    feed(&mut b, now, out[..1].to_vec());
    let one = b.build_proto(LinkProtoType::State, false, false, 0, false, &bc());
    feed(&mut a, now + MS(6), vec![one]);
    assert_eq!(a.fast_probe_at(), Some(now + MS(6) + FAST_PROBE));
}

/// A tick probes (rather than sending a plain STATE) when the peer was
/// silent since the last tick, even if data moved, and when packets wait
/// behind a gap, so that the reply tells the peer at once what is missing.
#[test]
fn ticks_probe_a_silent_peer_and_an_open_gap() {
    let (mut a, mut b, now) = pair();
    let out = send_small(&mut a, 3);
    // b heard from a (not silent) and sent data, but 1 is missing
    feed(&mut b, now, out[1..].to_vec());
    send_small(&mut b, 1);
    for (l, why) in [(&mut a, "a silent peer"), (&mut b, "an open gap")] {
        let mut t = Vec::new();
        l.tick(now + MS(375), &bc(), false, &mut t);
        let st = protos(&t);
        assert_eq!(st.len(), 1, "{why}");
        assert!(st[0].probe, "{why}: a probe");
    }
}

/// Text written by a `tracing_subscriber::fmt` subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Operators see a link's congestion and its retransmissions on a NACK as
/// debug events: one "link congested" when the backlog first refuses a
/// send (not one per refusal), and one "retransmitted" line per NACK that
/// moved packets, with their count (none for a NACK inside the 1 ms
/// hold-off, which moves nothing).
#[test]
fn congestion_and_nack_retransmissions_are_traced_once_each() {
    let text = Captured::default();
    let w = text.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(move || w.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let (mut a, mut b, now) = pair();
        let mut out = Vec::new();
        for i in 0..20 {
            a.send(data(Importance::Low, 10, i), &bc(), &mut out).expect("sent");
        }
        out.remove(0);
        let nacks = feed(&mut b, now, out).out;
        assert_eq!(feed(&mut a, now, nacks.clone()).out.len(), 1, "one retransmission");
        assert!(feed(&mut a, now + Duration::from_micros(999), nacks).out.is_empty(), "held off");
        let mut refused = 0;
        for i in 0..200 {
            if a.send(data(Importance::Low, 1100, i), &bc(), &mut Vec::new()).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 2 && a.is_congested(), "{refused} refused");
    });
    let text = String::from_utf8(text.0.lock().expect("capture").clone()).expect("utf-8");
    let retransmitted: Vec<&str> = text.lines().filter(|l| l.contains("retransmitted on the peer's NACK")).collect();
    assert_eq!(retransmitted.len(), 1, "{text}");
    assert!(retransmitted[0].contains("packets=1") && retransmitted[0].contains("DEBUG"), "{text}");
    assert_eq!(text.matches("link congested").count(), 1, "{text}");
}
