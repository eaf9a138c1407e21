//! The broadcast link (net/tipc/bcast.c and the broadcast parts of
//! net/tipc/link.c).
//!
//! [`BcSend`] is our sending side: one Ethernet broadcast frame per packet,
//! a window of packets every receiver must acknowledge, a backlog that
//! pushes back on senders, retransmission on the receivers' NACKs and a
//! probe when the tail may have been lost. [`BcRcv`] is our receiving side
//! for one peer: in-order delivery, a deferred queue for packets ahead of a
//! gap, and the acknowledgements and gap reports that ride in the unicast
//! link's packets to that peer.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use tipc_wire::{
    BC_ACK_INVALID, BcastProtoMsg, Duration, INT_H_SIZE, Instant, IntHdr, Msg, NodeAddr, Reassembler, Reassembly,
    SeqNo, UncheckedHeader, User,
};

use crate::error::{LinkError, Refused};
use crate::event::{LinkEvent, Outbox, TxDest};
use crate::link::{BcCtx, FAST_PROBE, RCV_WINDOW};
use crate::timers::TimerKind;

/// A broadcast packet is retransmitted at most this often.
const BC_RETX_GAP: Duration = Duration::from_millis(5);

/// The broadcast send window in packets. Linux 6.1 starts its broadcast
/// link at 50 (`BCLINK_WIN_DEFAULT`, net/tipc/bcast.c) and lets an
/// operator raise it up to 8191 (`tipc link set window` on
/// `broadcast-link`); receivers, the kernel's and ours, take packets up
/// to 8191 ahead ([`RCV_WINDOW`]), so the size is the sender's own
/// choice. With 50, a fan-out to several members stalls on the slowest
/// member's acknowledgement (one every 16 packets) several times per
/// window; 256 keeps the pipe full (`cargo bench --bench group`, 50 and
/// 256 in one sitting: broadcast to 4 members 87 k → 114 k msg/s, to 8
/// members 80 k → 95 k).
pub const BC_WINDOW: usize = 256;

/// Our broadcast send link.
#[derive(Debug)]
pub(crate) struct BcSend {
    /// Our bearers the broadcast link's packets go out on: the primary
    /// alone, or each bearer with a link to some node when none has links
    /// to all (net/tipc/bcast.c `tipc_bcbase_select_primary`,
    /// `tipc_bcbase_xmit`); none while no node is up.
    pub bearers: Vec<u8>,
    /// Our network id, written into every broadcast packet.
    net_id: u32,
    /// Sequence number of the next packet.
    pub snd_nxt: SeqNo,
    /// Packets in flight: sequence number, packet, last retransmission.
    pub transmq: VecDeque<(SeqNo, Bytes, Option<Instant>)>,
    /// Packets waiting for room in the window.
    pub backlog: VecDeque<Bytes>,
    /// Most packets in the backlog before senders are refused (2000).
    pub backlog_limit: usize,
    /// When the window last moved (or the laggards were last probed).
    pub progress_at: Instant,
    /// Whether a sender was refused since the backlog was last below its limit.
    pub congested: bool,
    /// Packets sent.
    pub sent: u64,
    /// Packets retransmitted.
    pub retransmitted: u64,
    /// The receivers (nodes whose link is up), each with the last of our
    /// packets it acknowledged.
    pub receivers: BTreeMap<NodeAddr, SeqNo>,
}

impl BcSend {
    /// An empty broadcast link of the network `net_id`.
    pub fn new(net_id: u32) -> BcSend {
        BcSend {
            bearers: Vec::new(),
            net_id,
            snd_nxt: SeqNo(1),
            transmq: VecDeque::new(),
            backlog: VecDeque::new(),
            backlog_limit: 2000,
            progress_at: Instant::ZERO,
            congested: false,
            sent: 0,
            retransmitted: 0,
            receivers: BTreeMap::new(),
        }
    }

    /// Our last sent broadcast sequence number.
    pub fn last_sent(&self) -> SeqNo {
        self.snd_nxt.prev()
    }

    /// Queues `msg` (already checked for length) from us, `own`, fragmented
    /// for packets of `mtu` bytes, and sends what the window allows.
    ///
    /// # Errors
    ///
    /// [`LinkError::Congested`] (for node 0) when the backlog is full,
    /// queuing nothing; [`LinkError::BadMessage`] when the message cannot be
    /// fragmented. The message comes back with the error.
    pub fn send(
        &mut self,
        now: Instant,
        own: NodeAddr,
        mtu: usize,
        msg: Bytes,
        out: &mut Outbox,
    ) -> Result<(), Refused> {
        if self.backlog.len() >= self.backlog_limit {
            self.congested = true;
            return Err(Refused { error: LinkError::Congested(NodeAddr(0)), msg });
        }
        let max = mtu - INT_H_SIZE;
        let pkts: Vec<Bytes> = if msg.len() > max {
            let hdr = IntHdr { prev_node: own, orig_node: own, ..IntHdr::default() };
            // the fragments carry the message's importance (msg.h
            // msg_importance), as the kernel's tipc_msg_build does
            let imp = UncheckedHeader::new(&msg[..]).importance();
            let frags = match tipc_wire::fragment(&msg, max, hdr, imp) {
                Ok(f) => f,
                Err(e) => return Err(Refused { error: LinkError::BadMessage(e), msg }),
            };
            frags.into_iter().filter_map(|f| Msg::Fragment(f).to_bytes().ok()).collect()
        } else {
            vec![msg]
        };
        for p in pkts {
            self.backlog.push_back(p);
        }
        self.advance(now, own, out);
        Ok(())
    }

    /// Moves backlog into the window, each packet stamped and broadcast.
    fn advance(&mut self, now: Instant, own: NodeAddr, out: &mut Outbox) {
        while self.transmq.len() < BC_WINDOW {
            let Some(m) = self.backlog.pop_front() else { break };
            let seq = self.snd_nxt;
            self.snd_nxt = seq.next();
            let b = match m.try_into_mut() {
                Ok(b) => b,
                Err(m) => BytesMut::from(&m[..]),
            };
            // as the kernel's broadcast link and bearer stamp it
            // (net/tipc/link.c tipc_link_xmit, bearer.c tipc_bearer_bc_xmit)
            let mut h = UncheckedHeader::new(b);
            h.set_non_seq(true);
            h.set_bcast_ack(SeqNo(0));
            h.set_ack(SeqNo(0));
            h.set_seqno(seq);
            h.set_prev_node(own);
            h.set_mc_netid(self.net_id);
            if h.header_len() >= 32 {
                h.set_dest_node(NodeAddr(0));
            }
            let b = crate::crypto::freeze(h.into_inner());
            if self.transmq.is_empty() {
                self.progress_at = now;
            }
            self.sent += 1;
            for &bearer in &self.bearers {
                out.send(bearer, TxDest::Broadcast, b.clone());
            }
            self.transmq.push_back((seq, b, None));
        }
        self.release(now, own, out);
    }

    /// Releases the packets every receiver has acknowledged; what that frees
    /// of the window goes to the backlog, and a refused sender hears that it
    /// may retry.
    pub fn release(&mut self, now: Instant, own: NodeAddr, out: &mut Outbox) {
        let min =
            self.receivers.values().fold(None::<SeqNo>, |m, &a| Some(m.map_or(a, |m| if a.lt(m) { a } else { m })));
        let mut released = false;
        while let Some((seq, _, _)) = self.transmq.front() {
            if min.is_none_or(|m| seq.le(m)) {
                self.transmq.pop_front();
                released = true;
            } else {
                break;
            }
        }
        if released {
            self.progress_at = now;
            if !self.backlog.is_empty() {
                self.advance(now, own, out);
            }
            if self.congested && self.backlog.len() < self.backlog_limit {
                self.congested = false;
                out.event(LinkEvent::Uncongested { node: NodeAddr(0) });
            }
        }
    }

    /// Receiver `from` acknowledged our packets up to `ack` and misses `gap`
    /// more after it: those are broadcast again (each at most every 5 ms),
    /// and what everyone acknowledged is released. Acks from nodes that are
    /// no receivers, or beyond what we sent, are ignored.
    pub fn ack(&mut self, now: Instant, own: NodeAddr, from: NodeAddr, ack: SeqNo, gap: u16, out: &mut Outbox) {
        let last = self.snd_nxt.prev();
        let Some(acked) = self.receivers.get_mut(&from) else { return };
        if ack.gt(last) {
            return;
        }
        if ack.gt(*acked) {
            *acked = ack;
        }
        let acked = *acked;
        if gap > 0 {
            let (from_s, to_s) = (acked.next(), acked.add(gap));
            for (seq, m, last_retx) in self.transmq.iter_mut() {
                if seq.within(from_s, to_s) && last_retx.is_none_or(|t| now.since(t) >= BC_RETX_GAP) {
                    *last_retx = Some(now);
                    self.retransmitted += 1;
                    for &bearer in &self.bearers {
                        out.send(bearer, TxDest::Broadcast, m.clone());
                    }
                }
            }
        }
        self.release(now, own, out);
    }

    /// Node `node`'s link came up: it receives from our next packet on, as
    /// if it had acknowledged everything before (net/tipc/link.c
    /// `tipc_link_add_bc_peer`).
    pub fn add_receiver(&mut self, node: NodeAddr) {
        let last = self.last_sent();
        self.receivers.insert(node, last);
    }

    /// Node `node`'s link went down: it no longer holds packets back.
    pub fn remove_receiver(&mut self, node: NodeAddr) {
        self.receivers.remove(&node);
    }

    /// The synchronisation message a peer gets when its link comes up
    /// (BCAST_PROTOCOL, sent as the link's first data packet): our last
    /// broadcast sequence number, the point from which it receives
    /// (net/tipc/link.c `tipc_link_build_bc_init_msg`).
    pub fn sync_msg(&self, own: NodeAddr, peer: NodeAddr) -> Option<Bytes> {
        let init = BcastProtoMsg {
            msg_type: 0,
            hdr: IntHdr { prev_node: own, orig_node: own, dest_node: peer, ..IntHdr::default() },
            last_bcast_sent: self.last_sent(),
            word5: BC_ACK_INVALID,
            payload: Bytes::new(),
        };
        Msg::BcastProto(init).to_bytes().ok()
    }

    /// The [`TimerKind::BroadcastProbe`] deadline: [`FAST_PROBE`] after the
    /// last progress while packets are in flight.
    pub fn probe_timer(&self) -> Option<(TimerKind, Instant)> {
        (!self.transmq.is_empty()).then(|| (TimerKind::BroadcastProbe, self.progress_at + FAST_PROBE))
    }

    /// If the probe is due at `now`: restarts its wait and returns our last
    /// sequence number, which the laggards ([`BcSend::laggards`]) are told.
    pub fn probe_due(&mut self, now: Instant) -> Option<SeqNo> {
        if !self.transmq.is_empty() && now.since(self.progress_at) >= FAST_PROBE {
            self.progress_at = now;
            Some(self.last_sent())
        } else {
            None
        }
    }

    /// The receivers that have not acknowledged `last`.
    pub fn laggards(&self, last: SeqNo) -> impl Iterator<Item = NodeAddr> + '_ {
        self.receivers.iter().filter(move |(_, a)| a.lt(last)).map(|(n, _)| *n)
    }

    /// Broadcast-link counters: (packets sent, retransmitted, in flight, backlog).
    pub fn stats(&self) -> (u64, u64, usize, usize) {
        (self.sent, self.retransmitted, self.transmq.len(), self.backlog.len())
    }
}

/// Our receive state for one peer's broadcast link.
#[derive(Debug)]
pub(crate) struct BcRcv {
    /// Whether the peer's synchronisation message arrived (packets before
    /// it are dropped).
    pub synced: bool,
    /// The next sequence number to deliver.
    pub rcv_nxt: SeqNo,
    /// Peer's last sent broadcast seqno, from its STATE messages.
    pub peer_last: SeqNo,
    /// Packets ahead of `rcv_nxt`; slot i holds `rcv_nxt + i`.
    pub deferred: VecDeque<Option<Bytes>>,
    /// Filled slots of `deferred`.
    pub deferred_count: usize,
    /// Fragments of a long message.
    pub reasm: Reassembler,
    /// Broadcast ack last carried in a packet to the peer.
    pub acked_sent: SeqNo,
    /// Packets delivered since the last explicit acknowledgement.
    pub unacked: u16,
}

impl Default for BcRcv {
    fn default() -> Self {
        BcRcv {
            synced: false,
            rcv_nxt: SeqNo(1),
            peer_last: SeqNo(0),
            deferred: VecDeque::new(),
            deferred_count: 0,
            reasm: Reassembler::new(),
            acked_sent: SeqNo(0),
            unacked: 0,
        }
    }
}

/// What a broadcast packet did to the receive state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Seen before or beyond the receive window: dropped.
    Dropped,
    /// Ahead of a gap: kept. `report_gap` asks for a STATE now (the first
    /// packet after a gap, and every 16th after it).
    Deferred {
        /// Whether to report the gap now.
        report_gap: bool,
    },
    /// In order: it and whatever waited behind it were delivered.
    /// `ack_now`: an explicit acknowledgement is due (every 16 packets),
    /// so the sender's window moves; the layer sends it, once per peer,
    /// when its driver next asks for frames.
    InOrder {
        /// Whether to acknowledge now.
        ack_now: bool,
    },
}

impl BcRcv {
    /// Missing packets after the last delivered one: up to the first
    /// deferred packet, or up to the peer's last sent; 0 before sync.
    pub fn gap(&self) -> u16 {
        if !self.synced {
            return 0;
        }
        if let Some(p) = self.deferred.iter().position(Option::is_some) {
            return p as u16;
        }
        if self.peer_last.ge(self.rcv_nxt) { self.rcv_nxt.distance_to(self.peer_last.next()) } else { 0 }
    }

    /// The broadcast facts a unicast packet to the peer carries, with
    /// `own_last` our last sent broadcast sequence number.
    pub fn ctx(&self, own_last: SeqNo) -> BcCtx {
        BcCtx { ack: self.rcv_nxt.prev(), synced: self.synced, gap: self.gap(), last_sent: own_last }
    }

    /// Whether a STATE has broadcast news for the peer: an acknowledgement
    /// it has not had yet, or a gap.
    pub fn has_news(&self) -> bool {
        self.synced && (self.acked_sent != self.rcv_nxt.prev() || self.gap() != 0)
    }

    /// The peer's synchronisation message says its last sent broadcast is
    /// `last`: we receive from the next one (only the first such message
    /// counts).
    pub fn sync(&mut self, last: SeqNo) {
        if !self.synced {
            self.synced = true;
            self.rcv_nxt = last.next();
            self.peer_last = last;
            self.acked_sent = last;
        }
    }

    /// Takes packet `seq` of the peer's broadcast link (the state is
    /// synchronised); messages it completes go to `deliver`, in order,
    /// bundles opened and fragments reassembled.
    pub fn receive(&mut self, seq: SeqNo, msg: Bytes, deliver: &mut Vec<Bytes>) -> Received {
        if seq != self.rcv_nxt {
            if seq.lt(self.rcv_nxt) {
                return Received::Dropped;
            }
            let d = usize::from(self.rcv_nxt.distance_to(seq));
            if d > usize::from(RCV_WINDOW) {
                return Received::Dropped;
            }
            if self.deferred.len() <= d {
                self.deferred.resize(d + 1, None);
            }
            if self.deferred[d].is_none() {
                self.deferred[d] = Some(msg);
                self.deferred_count += 1;
            }
            if self.peer_last.lt(seq) {
                self.peer_last = seq;
            }
            return Received::Deferred { report_gap: self.deferred_count % 16 == 1 };
        }
        let mut next = Some(msg);
        while let Some(m) = next.take() {
            self.rcv_nxt = self.rcv_nxt.next();
            self.unacked += 1;
            self.deferred.pop_front();
            match UncheckedHeader::new(&m[..]).user() {
                User::MsgBundler => {
                    if let Ok(Msg::Bundle(b)) = Msg::parse(m) {
                        deliver.extend(b.iter().map_while(Result::ok));
                    }
                }
                User::MsgFragmenter => {
                    if let Ok(Msg::Fragment(f)) = Msg::parse(m) {
                        match self.reasm.push(&f) {
                            Ok(Reassembly::Complete(w)) => deliver.push(w),
                            Ok(Reassembly::Pending) => {}
                            Err(_) => self.reasm.reset(),
                        }
                    }
                }
                _ => deliver.push(m),
            }
            if let Some(x) = self.deferred.front_mut().and_then(Option::take) {
                self.deferred_count -= 1;
                next = Some(x);
            }
        }
        if self.deferred_count == 0 {
            self.deferred.clear();
        }
        if self.peer_last.lt(self.rcv_nxt.prev()) {
            self.peer_last = self.rcv_nxt.prev();
        }
        // explicit broadcast ack now and then, so the sender's window moves
        let ack_now = self.unacked >= 16;
        if ack_now {
            self.unacked = 0;
        }
        Received::InOrder { ack_now }
    }
}

#[cfg(test)]
mod tests;
