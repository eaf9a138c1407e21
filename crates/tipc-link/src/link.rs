//! One link endpoint towards one peer node: the FSM with sessions, the send
//! window and backlog, acks, NACKs and retransmission, the deferred queue,
//! fragmentation, bundling and supervision.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tipc_wire::{
    BundleBuilder, Duration, GapAckRecord, Header, INT_H_SIZE, Importance, Instant, IntHdr, LinkProtoMsg,
    LinkProtoType, Msg, NodeAddr, Reassembler, Reassembly, SeqNo, UncheckedHeader, User, fragment,
};

use crate::config::caps;
use crate::node::DownReason;
use crate::stats::LinkStats;

/// Link states (net/tipc/link.c; a synching link is `Established`, its
/// node keeps the synch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LinkState {
    /// Down; sending RESET.
    Reset,
    /// Peer reset seen; sending ACTIVATE.
    Establishing,
    /// Up.
    Established,
    /// Failed while a parallel link to the same node stayed up: its packets
    /// went to the peer through that link (FAILOVER_MSG), and it stays
    /// silent, ignoring the peer's link protocol, until the peer's failover
    /// has arrived too (net/tipc/link.c `tipc_link_is_blocked`; node.c
    /// `tipc_node_check_state` ends it).
    FailingOver,
}

/// The receive window: packets further ahead than this are dropped.
pub const RCV_WINDOW: u16 = 8191;
/// Explicit ack after this many packets received without sending.
pub const ACK_EVERY: u16 = 16;
/// Probe after this long without acknowledgement progress while packets are
/// unacknowledged (tail-loss recovery faster than the supervision tick).
pub const FAST_PROBE: Duration = Duration::from_millis(10);

/// What the layer must know after a call into the link.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The link came up.
    pub up: bool,
    /// The link went down, and why.
    pub down: Option<DownReason>,
    /// Backlog went below its limits after being full.
    pub uncongested: bool,
}

/// Broadcast-link facts the link stamps into its packets.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BcCtx {
    /// Last in-sequence broadcast packet received from the peer.
    pub ack: SeqNo,
    /// Our broadcast receive state for the peer is synchronised.
    pub synced: bool,
    /// Missing broadcast packets after `ack` (for STATE word 8).
    pub gap: u16,
    /// Our own last sent broadcast seqno.
    pub last_sent: SeqNo,
}

#[derive(Debug)]
struct TxPkt {
    seq: SeqNo,
    msg: Bytes,
    first_retx: Option<Instant>,
    last_retx: Option<Instant>,
}

#[derive(Debug)]
enum Pending {
    One { msg: Bytes, imp: usize },
    Bundle { parts: Vec<Bytes>, size: usize, imp: usize },
}

impl Pending {
    fn imp(&self) -> usize {
        match self {
            Pending::One { imp, .. } | Pending::Bundle { imp, .. } => *imp,
        }
    }
    fn count(&self) -> usize {
        match self {
            Pending::One { .. } => 1,
            Pending::Bundle { parts, .. } => parts.len(),
        }
    }
}

/// Importance classes for backlog accounting: data 0–3, system 4
/// (net/tipc/msg.h msg_importance; a fragment's or bundle's 5–7 count as 4).
fn importance_of(msg: &[u8]) -> usize {
    usize::from(u8::from(UncheckedHeader::new(msg).importance())).min(4)
}

/// One link endpoint.
#[derive(Debug)]
pub(crate) struct Link {
    pub own_addr: NodeAddr,
    pub peer_addr: NodeAddr,
    pub peer_caps: u16,
    own_caps: u16,
    pub if_name: String,
    /// The peer's interface name, from its RESET/ACTIVATE.
    pub peer_if: Option<String>,
    /// Our bearer's id (0–2): RESET/ACTIVATE carry it as bearer id and
    /// network plane.
    pub bearer_id: u8,
    /// The peer's bearer id of this link, from its RESET/ACTIVATE (what
    /// tunnel messages name the link by).
    pub peer_bearer: Option<u8>,
    /// Link priority (0–31).
    pub priority: u8,
    pub state: LinkState,
    pub session: u16,
    peer_session: Option<u16>,
    own_mtu: usize,
    pub mtu: usize,
    /// Bytes of every packet kept free for encryption (0, or
    /// [`tipc_crypto::OVERHEAD`] while keys are set, as the kernel keeps
    /// them: net/tipc/link.c `tipc_link_mss`).
    pub room: usize,
    pub tolerance: Duration,
    base_tolerance: Duration,
    /// A tolerance set here, for the next STATE to tell the peer (ms).
    announce_tolerance: Option<u16>,
    silent: u32,
    reset_ticks: u32,
    checkpoint: SeqNo,
    /// When the send queue last made progress (or a fast probe went out).
    progress_at: Instant,
    last_now: Instant,
    /// When the peer was last heard from (any packet of this session).
    last_rx: Instant,
    // send side
    pub snd_nxt: SeqNo,
    pub window: u16,
    transmq: VecDeque<TxPkt>,
    backlog: VecDeque<Pending>,
    backlog_len: [usize; 5],
    limits: [usize; 5],
    congested: bool,
    // receive side
    pub rcv_nxt: SeqNo,
    deferred: VecDeque<Option<Bytes>>,
    deferred_count: usize,
    rcv_unacked: u16,
    reasm: Reassembler,
    pub stats: LinkStats,
}

impl Link {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        own_addr: NodeAddr,
        peer_addr: NodeAddr,
        peer_caps: u16,
        own_caps: u16,
        if_name: &str,
        mtu: usize,
        tolerance: Duration,
        window: u16,
        session: u16,
    ) -> Link {
        let sys_limit = (65535 / (mtu / 20).max(1)).max(100);
        let mut link = Link {
            own_addr,
            peer_addr,
            peer_caps,
            own_caps,
            if_name: if_name.to_string(),
            peer_if: None,
            bearer_id: 0,
            peer_bearer: None,
            priority: crate::config::DEFAULT_PRIORITY,
            state: LinkState::Reset,
            session,
            peer_session: None,
            own_mtu: mtu,
            mtu,
            room: 0,
            tolerance,
            base_tolerance: tolerance,
            announce_tolerance: None,
            silent: 0,
            reset_ticks: 0,
            checkpoint: SeqNo(1),
            progress_at: Instant::ZERO,
            last_now: Instant::ZERO,
            last_rx: Instant::ZERO,
            snd_nxt: SeqNo(1),
            // both set by set_window below, the only place that derives them
            window: 0,
            transmq: VecDeque::new(),
            backlog: VecDeque::new(),
            backlog_len: [0; 5],
            limits: [0, 0, 0, 0, sys_limit],
            congested: false,
            rcv_nxt: SeqNo(1),
            deferred: VecDeque::new(),
            deferred_count: 0,
            rcv_unacked: 0,
            reasm: Reassembler::new(),
            stats: LinkStats::default(),
        };
        link.set_window(window);
        link
    }

    pub fn is_up(&self) -> bool {
        self.state == LinkState::Established
    }

    fn gap_ack_negotiated(&self) -> bool {
        self.own_caps & self.peer_caps & caps::GAP_ACK_BLOCK != 0
    }

    /// Largest packet we send on this link: the link MTU less room for a
    /// tunnel header and, with keys set, for encryption.
    pub fn max_pkt(&self) -> usize {
        self.sealed_mtu().saturating_sub(INT_H_SIZE).max(INT_H_SIZE + 60)
    }

    /// The largest message this link's frames may hold before encryption:
    /// the link MTU less [`Link::room`] (what a tunnel packet on this link
    /// may fill).
    pub fn sealed_mtu(&self) -> usize {
        self.mtu.saturating_sub(self.room)
    }

    /// Supervision interval for the current tolerance.
    pub fn tick_interval(&self) -> Duration {
        let t = self.tolerance.div(4);
        if t > Duration::from_millis(500) { Duration::from_millis(500) } else { t }
    }

    fn abort_limit(&self) -> u32 {
        let i = self.tick_interval().as_micros().max(1);
        (self.tolerance.as_micros() / i) as u32
    }

    /// Packets queued (in flight + backlog).
    pub fn queued(&self) -> (usize, usize) {
        (self.transmq.len(), self.backlog.iter().map(Pending::count).sum())
    }

    /// Takes the link down to RESET: new session, empty queues.
    pub fn reset(&mut self) {
        self.session = self.session.wrapping_add(1);
        self.peer_session = None;
        self.state = LinkState::Reset;
        self.mtu = self.own_mtu;
        self.tolerance = self.base_tolerance;
        self.silent = 0;
        self.reset_ticks = 0;
        self.snd_nxt = SeqNo(1);
        self.checkpoint = SeqNo(1);
        self.rcv_nxt = SeqNo(1);
        self.transmq.clear();
        self.backlog.clear();
        self.backlog_len = [0; 5];
        self.congested = false;
        self.deferred.clear();
        self.deferred_count = 0;
        self.rcv_unacked = 0;
        self.reasm.reset();
        self.stats.resets += 1;
    }

    // ---------------------------------------------------------------- send

    /// Queues a message for the peer. `Err` gives the message back when the
    /// backlog of its importance is full, or when it cannot be fragmented
    /// (nothing queued).
    pub fn send(&mut self, msg: Bytes, bc: &BcCtx, out: &mut Vec<Bytes>) -> Result<(), Bytes> {
        let imp = importance_of(&msg);
        if self.backlog_len[imp] >= self.limits[imp] {
            if !self.congested {
                tracing::debug!(peer = %self.peer_addr, importance = imp, "link congested: backlog full, senders wait");
            }
            self.congested = true;
            self.stats.link_congs += 1;
            return Err(msg);
        }
        if msg.len() > self.max_pkt() {
            let hdr = IntHdr {
                prev_node: self.own_addr,
                orig_node: self.own_addr,
                dest_node: self.peer_addr,
                ..IntHdr::default()
            };
            let Ok(frags) = fragment(&msg, self.max_pkt(), hdr, Importance::from(imp as u8)) else {
                return Err(msg);
            };
            let Ok(pkts) = frags.into_iter().map(|f| Msg::Fragment(f).to_bytes()).collect::<Result<Vec<_>, _>>() else {
                return Err(msg);
            };
            for b in pkts {
                self.stats.sent_fragments += 1;
                self.enqueue(Pending::One { msg: b, imp }, bc, out);
            }
            return Ok(());
        }
        // bundle into the backlog's tail when the window is full
        if !self.backlog.is_empty() || self.transmq.len() >= usize::from(self.window) {
            let max = self.max_pkt();
            if let Some(tail) = self.backlog.back_mut() {
                let fits = |size: usize| INT_H_SIZE + tipc_wire::align4(size) + msg.len() <= max;
                match tail {
                    Pending::Bundle { parts, size, imp: bimp } if *bimp == imp && fits(*size) && bundleable(&msg) => {
                        *size = tipc_wire::align4(*size) + msg.len();
                        parts.push(msg);
                        self.backlog_len[imp] += 1;
                        return Ok(());
                    }
                    Pending::One { msg: first, imp: fimp }
                        if *fimp == imp && bundleable(first) && bundleable(&msg) && fits(first.len()) =>
                    {
                        let first = std::mem::take(first);
                        let size = tipc_wire::align4(first.len()) + msg.len();
                        *tail = Pending::Bundle { parts: vec![first, msg], size, imp };
                        self.backlog_len[imp] += 1;
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        self.enqueue(Pending::One { msg, imp }, bc, out);
        Ok(())
    }

    fn enqueue(&mut self, p: Pending, bc: &BcCtx, out: &mut Vec<Bytes>) {
        if self.backlog.is_empty() && self.transmq.len() < usize::from(self.window) && self.is_up() {
            self.transmit_pending(p, bc, out);
        } else {
            self.backlog_len[p.imp()] += p.count();
            self.backlog.push_back(p);
        }
    }

    fn transmit_pending(&mut self, p: Pending, bc: &BcCtx, out: &mut Vec<Bytes>) {
        let Some(msg) = self.build_pending(p) else { return };
        let seq = self.snd_nxt;
        self.snd_nxt = seq.next();
        if self.transmq.is_empty() {
            self.progress_at = self.last_now;
        }
        let stamped = self.stamp(msg, seq, bc);
        self.rcv_unacked = 0;
        self.stats.sent_pkts += 1;
        out.push(stamped.clone());
        self.transmq.push_back(TxPkt { seq, msg: stamped, first_retx: None, last_retx: None });
    }

    /// The packet a backlog entry becomes (a bundle is built here); `None`
    /// if a bundle cannot be encoded (never with parts the send path
    /// accepted).
    fn build_pending(&mut self, p: Pending) -> Option<Bytes> {
        match p {
            Pending::One { msg, .. } => Some(msg),
            Pending::Bundle { parts, imp, .. } => {
                let hdr = IntHdr {
                    prev_node: self.own_addr,
                    orig_node: self.own_addr,
                    dest_node: self.peer_addr,
                    ..IntHdr::default()
                };
                let mut b = BundleBuilder::new(hdr, usize::MAX);
                let n = parts.len();
                for part in &parts {
                    b.push(part, Importance::from(imp as u8));
                }
                self.stats.sent_bundles += 1;
                self.stats.sent_bundled += n as u64;
                Msg::Bundle(b.finish()).to_bytes().ok()
            }
        }
    }

    /// Writes seqno, ack, broadcast ack and previous node into a packet.
    fn stamp(&self, msg: Bytes, seq: SeqNo, bc: &BcCtx) -> Bytes {
        let b = match msg.try_into_mut() {
            Ok(m) => m,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        let mut h = UncheckedHeader::new(b);
        h.set_bcast_ack(bc.ack);
        h.set_ack(self.rcv_nxt.prev());
        h.set_seqno(seq);
        h.set_prev_node(self.own_addr);
        crate::crypto::freeze(h.into_inner())
    }

    /// Moves backlog into the window.
    pub fn advance_backlog(&mut self, bc: &BcCtx, out: &mut Vec<Bytes>) -> bool {
        if !self.is_up() {
            return false;
        }
        while self.transmq.len() < usize::from(self.window) {
            let Some(p) = self.backlog.pop_front() else { break };
            self.backlog_len[p.imp()] -= p.count();
            self.transmit_pending(p, bc, out);
        }
        if self.congested && (0..5).all(|i| self.backlog_len[i] < self.limits[i]) {
            self.congested = false;
            return true;
        }
        false
    }

    /// Releases packets acknowledged up to `ack`.
    fn release(&mut self, ack: SeqNo) -> usize {
        let mut n = 0;
        while let Some(p) = self.transmq.front() {
            if p.seq.le(ack) && p.seq.lt(self.snd_nxt) {
                self.transmq.pop_front();
                n += 1;
            } else {
                break;
            }
        }
        n
    }

    /// Retransmits `from ..= to` (rate-limited to once per ms per packet).
    fn retransmit(&mut self, now: Instant, from: SeqNo, to: SeqNo, bc: &BcCtx, out: &mut Vec<Bytes>) {
        let ack = self.rcv_nxt.prev();
        for i in 0..self.transmq.len() {
            let (seq, due) = {
                let p = &self.transmq[i];
                (p.seq, p.last_retx.is_none_or(|t| now.since(t) >= Duration::from_millis(1)))
            };
            if seq.lt(from) {
                continue;
            }
            if seq.gt(to) {
                break;
            }
            if !due {
                continue;
            }
            let p = &mut self.transmq[i];
            let mut h = UncheckedHeader::new(BytesMut::from(&p.msg[..]));
            h.set_bcast_ack(bc.ack);
            h.set_ack(ack);
            p.msg = h.into_inner().freeze();
            p.first_retx.get_or_insert(now);
            p.last_retx = Some(now);
            out.push(p.msg.clone());
            self.stats.retransmitted += 1;
        }
        self.rcv_unacked = 0;
    }

    // ------------------------------------------------------------- receive

    /// Records the time of the current call (used when stamping progress).
    pub fn set_now(&mut self, now: Instant) {
        self.last_now = now;
    }

    /// When an established link is declared dead if nothing more arrives:
    /// one tolerance after the peer was last heard from.
    pub fn dead_at(&self) -> Option<Instant> {
        self.is_up().then(|| self.last_rx + self.tolerance)
    }

    /// Handles a sequenced (non-protocol) packet. Returns messages to
    /// deliver, in order; fragments reassembled and bundles opened.
    pub fn recv(
        &mut self,
        now: Instant,
        msg: Bytes,
        bc: &BcCtx,
        out: &mut Vec<Bytes>,
        deliver: &mut Vec<Bytes>,
    ) -> Outcome {
        let mut oc = Outcome::default();
        let Ok(h) = Header::new_checked(&msg[..]) else { return oc };
        let (seq, ack) = (h.seqno(), h.ack());
        match self.state {
            LinkState::Reset | LinkState::FailingOver => return oc,
            LinkState::Establishing => {
                // comes up, but the packet is dropped (it will be retransmitted)
                self.state = LinkState::Established;
                self.last_rx = now;
                oc.up = true;
                return oc;
            }
            LinkState::Established => {}
        }
        self.silent = 0;
        self.last_rx = now;
        if self.release(ack) > 0 {
            self.progress_at = now;
            oc.uncongested |= self.advance_backlog(bc, out);
        }
        if seq != self.rcv_nxt {
            if seq.lt(self.rcv_nxt) {
                self.stats.duplicates += 1;
                return oc;
            }
            let d = usize::from(self.rcv_nxt.distance_to(seq));
            if d > usize::from(RCV_WINDOW) {
                self.stats.duplicates += 1;
                return oc;
            }
            if self.deferred.len() <= d {
                self.deferred.resize(d + 1, None);
            }
            if self.deferred[d].is_some() {
                self.stats.duplicates += 1;
                return oc;
            }
            self.deferred[d] = Some(msg);
            self.deferred_count += 1;
            self.stats.deferred += 1;
            if self.deferred_count % 16 == 3 {
                let gap = self.first_gap();
                self.send_state(false, false, gap, bc, out);
                self.stats.sent_nacks += 1;
            }
            return oc;
        }
        // in order: deliver it and whatever it unblocks
        let mut next = Some(msg);
        while let Some(m) = next.take() {
            self.rcv_nxt = self.rcv_nxt.next();
            self.rcv_unacked += 1;
            self.stats.recv_pkts += 1;
            // slot 0 was the packet just taken; the new slot 0 is the new rcv_nxt
            self.deferred.pop_front();
            if let Err(reason) = self.unpack(m, deliver) {
                oc.down = Some(reason);
                return oc;
            }
            if let Some(x) = self.deferred.front_mut().and_then(Option::take) {
                self.deferred_count -= 1;
                next = Some(x);
            }
        }
        if self.deferred_count == 0 {
            self.deferred.clear();
        }
        if self.rcv_unacked >= ACK_EVERY {
            self.send_state(false, false, 0, bc, out);
        }
        oc
    }

    /// First run of missing packets after rcv_nxt (for a NACK).
    fn first_gap(&self) -> u16 {
        self.deferred.iter().position(Option::is_some).map(|p| p as u16).unwrap_or(0)
    }

    fn unpack(&mut self, m: Bytes, deliver: &mut Vec<Bytes>) -> Result<(), DownReason> {
        unpack(m, &mut self.reasm, &mut self.stats, deliver)
    }

    // ------------------------------------------------------------ protocol

    /// Builds a LINK_PROTOCOL message of `t`.
    pub fn build_proto(
        &mut self,
        t: LinkProtoType,
        probe: bool,
        reply: bool,
        gap: u16,
        stopping: bool,
        bc: &BcCtx,
    ) -> Bytes {
        // a STATE always reports the first gap of the deferred queue
        let gap = if t == LinkProtoType::State && gap == 0 && self.deferred_count > 0 { self.first_gap() } else { gap };
        let payload = match t {
            LinkProtoType::State => {
                if self.gap_ack_negotiated() {
                    let mut rec = GapAckRecord::default();
                    if gap != 0 && self.deferred_count > 0 {
                        let seqs: Vec<SeqNo> = self
                            .deferred
                            .iter()
                            .enumerate()
                            .filter(|(_, m)| m.is_some())
                            .map(|(i, _)| self.rcv_nxt.add(i as u16))
                            .collect();
                        rec.ucast = GapAckRecord::blocks_from_deferred(&seqs);
                    }
                    rec.to_bytes().unwrap_or_default()
                } else {
                    Bytes::new()
                }
            }
            _ => LinkProtoMsg::if_name_payload(&self.if_name),
        };
        let redundant = bc.synced;
        let mut m = LinkProtoMsg {
            msg_type: t,
            hdr: IntHdr {
                bcast_ack: bc.ack,
                ack: self.rcv_nxt.prev(),
                seqno: self.snd_nxt.add(32767),
                prev_node: self.own_addr,
                orig_node: self.own_addr,
                dest_node: self.peer_addr,
                ..IntHdr::default()
            },
            gap,
            last_bcast_sent: bc.last_sent,
            next_sent: self.snd_nxt,
            session: self.session,
            bc_ack_invalid: !redundant,
            peer_stopping: stopping,
            redundant_link: redundant,
            bearer_id: self.bearer_id,
            priority: 0,
            net_plane: self.bearer_id,
            probe,
            bcast_gap: 0,
            max_pkt_div4: 0,
            tolerance: 0,
            payload,
        };
        match t {
            LinkProtoType::State => {
                m.hdr.flags.d = probe || reply;
                if let Some(t) = self.announce_tolerance.take() {
                    m.tolerance = t;
                }
                m.bcast_gap = bc.gap.min(1023);
                self.stats.sent_states += 1;
                if probe {
                    self.stats.sent_probes += 1;
                }
            }
            LinkProtoType::Activate => {
                m.gap = 1;
                m.hdr.bcast_ack = SeqNo(self.peer_session.unwrap_or(0));
                m.max_pkt_div4 = (self.own_mtu / 4) as u16;
            }
            _ => {
                m.max_pkt_div4 = (self.own_mtu / 4) as u16;
            }
        }
        Msg::LinkProto(m).to_bytes().unwrap_or_default()
    }

    fn send_state(&mut self, probe: bool, reply: bool, gap: u16, bc: &BcCtx, out: &mut Vec<Bytes>) {
        let m = self.build_proto(LinkProtoType::State, probe, reply, gap, false, bc);
        self.rcv_unacked = 0;
        out.push(m);
    }

    /// Handles a LINK_PROTOCOL message from the peer.
    pub fn recv_proto(&mut self, now: Instant, m: &LinkProtoMsg, bc: &BcCtx, out: &mut Vec<Bytes>) -> Outcome {
        let mut oc = Outcome::default();
        if self.state == LinkState::FailingOver {
            return oc;
        }
        // acceptance (kernel tipc_link_validate_msg)
        let accept = match (m.msg_type, self.peer_session) {
            (LinkProtoType::Reset, None) | (LinkProtoType::Activate, None) => true,
            (LinkProtoType::Reset, Some(ps)) => SeqNo(m.session).gt(SeqNo(ps)),
            (LinkProtoType::Activate, Some(ps)) => SeqNo(m.session).ge(SeqNo(ps)),
            (LinkProtoType::State, Some(ps)) => m.session == ps && (self.is_up() || m.hdr.ack == SeqNo(0)),
            _ => false,
        };
        if !accept {
            return oc;
        }
        self.last_rx = now;
        let tol = u64::from(m.tolerance);
        match m.msg_type {
            LinkProtoType::Reset | LinkProtoType::Activate => {
                if m.payload.len() < 16 || m.max_pkt() < 100 {
                    return oc;
                }
                if let Some(n) = m.if_name() {
                    self.peer_if = Some(n.to_string());
                }
                self.peer_bearer = Some(m.bearer_id);
                // a higher priority in RESET/ACTIVATE is adopted
                // (net/tipc/link.c tipc_link_proto_rcv)
                if m.priority > self.priority && m.priority <= crate::config::MAX_PRIORITY {
                    self.priority = m.priority;
                }
                if (50..=30_000).contains(&tol) {
                    self.tolerance = Duration::from_millis(tol);
                }
                if m.peer_stopping {
                    if self.state != LinkState::Reset {
                        oc.down = Some(DownReason::PeerStopping);
                    }
                    return oc;
                }
                if m.msg_type == LinkProtoType::Activate && m.dest_session_valid() && m.dest_session() != self.session {
                    if SeqNo(self.session).lt(SeqNo(m.dest_session())) {
                        self.session = m.dest_session().wrapping_add(1);
                    }
                    return oc;
                }
                let was_up = self.is_up();
                if m.msg_type == LinkProtoType::Reset || !was_up {
                    // PEER_RESET event
                    match self.state {
                        LinkState::Established => {
                            oc.down = Some(DownReason::PeerReset);
                            self.reset();
                            self.state = LinkState::Establishing;
                        }
                        LinkState::Reset => self.state = LinkState::Establishing,
                        LinkState::Establishing | LinkState::FailingOver => {}
                    }
                }
                let mut came_up = false;
                if m.msg_type == LinkProtoType::Activate && self.state == LinkState::Establishing {
                    self.state = LinkState::Established;
                    came_up = true;
                }
                self.peer_session = Some(m.session);
                self.mtu = self.mtu.min(m.max_pkt());
                if came_up {
                    oc.up = true;
                } else if m.msg_type == LinkProtoType::Reset && self.state == LinkState::Establishing {
                    let a = self.build_proto(LinkProtoType::Activate, false, false, 0, false, bc);
                    out.push(a);
                }
            }
            LinkProtoType::State => {
                if (50..=30_000).contains(&tol) {
                    self.tolerance = Duration::from_millis(tol);
                }
                self.silent = 0;
                self.stats.recv_states += 1;
                if m.probe {
                    self.stats.recv_probes += 1;
                }
                if !self.is_up() {
                    if self.state == LinkState::Establishing {
                        self.state = LinkState::Established;
                        oc.up = true;
                    }
                    return oc;
                }
                let mut blocks = Vec::new();
                if self.gap_ack_negotiated()
                    && let Ok((rec, _)) = GapAckRecord::parse(&m.payload)
                {
                    blocks = rec.ucast;
                }
                let mut rcvgap = 0;
                if m.next_sent.gt(self.rcv_nxt) && self.deferred_count == 0 {
                    rcvgap = self.rcv_nxt.distance_to(m.next_sent);
                }
                if rcvgap != 0 || m.probe {
                    self.send_state(false, m.probe, rcvgap, bc, out);
                    if rcvgap != 0 {
                        self.stats.sent_nacks += 1;
                    }
                }
                let released = self.release(m.hdr.ack);
                if released > 0 {
                    self.progress_at = now;
                }
                let before = self.stats.retransmitted;
                if m.gap != 0 {
                    self.stats.recv_nacks += 1;
                    let from = m.hdr.ack.next();
                    self.retransmit(now, from, m.hdr.ack.add(m.gap), bc, out);
                }
                for b in &blocks {
                    if b.gap != 0 {
                        self.retransmit(now, b.ack.next(), b.ack.add(b.gap), bc, out);
                    }
                }
                let again = self.stats.retransmitted - before;
                if again > 0 {
                    tracing::debug!(peer = %self.peer_addr, packets = again, ack = m.hdr.ack.0, "retransmitted on the peer's NACK");
                }
                if released > 0 || m.gap != 0 {
                    oc.uncongested |= self.advance_backlog(bc, out);
                }
            }
            LinkProtoType::Unknown(_) => {}
        }
        oc
    }

    /// Periodic supervision; call every [`Link::tick_interval`].
    pub fn tick(&mut self, now: Instant, bc: &BcCtx, bc_pending: bool, out: &mut Vec<Bytes>) -> Outcome {
        let mut oc = Outcome::default();
        match self.state {
            LinkState::Reset => {
                if self.reset_ticks < 5 || self.reset_ticks % 16 == 0 {
                    let m = self.build_proto(LinkProtoType::Reset, false, false, 0, false, bc);
                    out.push(m);
                }
                self.reset_ticks += 1;
            }
            LinkState::Establishing => {
                let m = self.build_proto(LinkProtoType::Activate, false, false, 0, false, bc);
                out.push(m);
            }
            LinkState::FailingOver => {}
            LinkState::Established => {
                if self.silent > self.abort_limit() || self.dead_at().is_some_and(|t| now >= t) {
                    oc.down = Some(DownReason::SupervisionTimeout);
                    return oc;
                }
                if let Some(t) = self.transmq.front().and_then(|p| p.first_retx)
                    && now.since(t) > self.tolerance.mul(10)
                {
                    oc.down = Some(DownReason::RetransmissionFailure);
                    return oc;
                }
                let state = bc_pending || self.rcv_unacked > 0 || !self.transmq.is_empty();
                let mut probe = self.silent > 0;
                self.silent += 1;
                probe |= self.deferred_count > 0;
                if self.snd_nxt == self.checkpoint {
                    probe = true;
                }
                self.checkpoint = self.snd_nxt;
                if probe || state {
                    self.send_state(probe, false, 0, bc, out);
                }
            }
        }
        oc
    }

    /// After a local failure: reset and say so once with a peer-stopping RESET.
    pub fn fail(&mut self, bc: &BcCtx, out: &mut Vec<Bytes>) {
        self.reset();
        let m = self.build_proto(LinkProtoType::Reset, false, false, 0, true, bc);
        out.push(m);
        self.reset_ticks = 1;
    }

    /// Deadline of a fast probe: unacknowledged packets with no progress for
    /// [`FAST_PROBE`] get a probe, whose reply reports any gap at once
    /// (instead of waiting for the supervision tick).
    pub fn fast_probe_at(&self) -> Option<Instant> {
        (self.is_up() && !self.transmq.is_empty()).then(|| self.progress_at + FAST_PROBE)
    }

    /// Sends the fast probe if due.
    pub fn fast_probe(&mut self, now: Instant, bc: &BcCtx, out: &mut Vec<Bytes>) {
        if self.fast_probe_at().is_some_and(|t| now >= t) {
            self.progress_at = now;
            self.send_state(true, false, 0, bc, out);
        }
    }

    /// The peer was heard from (discovery) while this link is down: send
    /// RESET on the next ticks again instead of waiting for the slow cadence.
    pub fn hasten_reset(&mut self) {
        if self.state == LinkState::Reset && self.reset_ticks >= 5 {
            self.reset_ticks = 0;
        }
    }

    /// Whether a send of importance `imp` would be refused now.
    pub fn is_congested(&self) -> bool {
        self.congested
    }
}

/// Opens one in-sequence packet into the messages it carries: a bundle's
/// parts, a message completed by a fragment (reassembled in `reasm`), or
/// the packet itself. A fragment out of place is a protocol error.
pub(crate) fn unpack(
    m: Bytes,
    reasm: &mut Reassembler,
    stats: &mut LinkStats,
    deliver: &mut Vec<Bytes>,
) -> Result<(), DownReason> {
    match UncheckedHeader::new(&m[..]).user() {
        User::MsgBundler => {
            let Ok(Msg::Bundle(b)) = Msg::parse(m) else { return Ok(()) };
            stats.recv_bundles += 1;
            for inner in b.iter() {
                match inner {
                    Ok(i) => deliver.push(i),
                    Err(_) => break,
                }
            }
        }
        User::MsgFragmenter => {
            let Ok(Msg::Fragment(f)) = Msg::parse(m) else { return Ok(()) };
            stats.recv_fragments += 1;
            match reasm.push(&f) {
                Ok(Reassembly::Complete(whole)) => deliver.push(whole),
                Ok(Reassembly::Pending) => {}
                Err(_) => return Err(DownReason::FragmentOutOfPlace),
            }
        }
        _ => deliver.push(m),
    }
    Ok(())
}

/// What a failed link hands to the failover (net/tipc/link.c
/// `tipc_link_failover_prepare`, `tipc_link_tnl_prepare`): its packets for
/// the peer, and its receive state for the peer's tunnelled packets.
#[derive(Debug)]
pub(crate) struct Handover {
    /// Every packet the peer may lack, each as it went (or would have
    /// gone) on the failed link, in its order: the unacknowledged ones,
    /// the backlog numbered on, and last the dummy (a 32-byte DIRECT
    /// message with error NO_PORT to port 0), so there is always one.
    pub packets: Vec<Bytes>,
    /// The next seqno the failed link expected: tunnelled packets below it
    /// were delivered already (the drop point).
    pub drop_point: SeqNo,
    /// Packets the failed link received out of order, with their seqnos.
    pub deferred: Vec<(SeqNo, Bytes)>,
    /// A message the failed link was reassembling.
    pub reasm: Reassembler,
}

impl Link {
    /// Fails the link over: hands over its packets and receive state, resets
    /// (new session) and turns [`LinkState::FailingOver`].
    pub fn fail_over(&mut self, bc: &BcCtx) -> Handover {
        let mut packets: Vec<Bytes> = self.transmq.drain(..).map(|p| p.msg).collect();
        let backlog = std::mem::take(&mut self.backlog);
        for p in backlog {
            if let Some(m) = self.build_pending(p) {
                let seq = self.snd_nxt;
                self.snd_nxt = seq.next();
                packets.push(self.stamp(m, seq, bc));
            }
        }
        let seq = self.snd_nxt;
        self.snd_nxt = seq.next();
        packets.push(self.stamp(crate::tunnel::dummy(self.own_addr, self.peer_addr), seq, bc));
        let deferred = self
            .deferred
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.clone().map(|m| (self.rcv_nxt.add(i as u16), m)))
            .collect();
        let reasm = std::mem::replace(&mut self.reasm, Reassembler::new());
        let drop_point = self.rcv_nxt;
        self.stats.failovers += 1;
        self.stats.tunnelled += packets.len() as u64;
        self.reset();
        self.state = LinkState::FailingOver;
        Handover { packets, drop_point, deferred, reasm }
    }

    /// The failover of this link ended (the peer's part arrived): it may
    /// come back, sending RESET from the next tick.
    pub fn end_failover(&mut self) {
        if self.state == LinkState::FailingOver {
            self.state = LinkState::Reset;
            self.reset_ticks = 0;
        }
    }

    /// Queues TUNNEL_PROTOCOL packets (failover or synch) past the backlog
    /// limits: they carry what other links already accepted.
    pub fn send_tunnel(&mut self, msgs: impl IntoIterator<Item = Bytes>, bc: &BcCtx, out: &mut Vec<Bytes>) {
        for msg in msgs {
            self.enqueue(Pending::One { msg, imp: 4 }, bc, out);
        }
    }

    /// The last seqno this link has sent or will send for what is queued
    /// now: the sync point a SYNCH_MSG announces (net/tipc/link.c
    /// `tipc_link_tnl_prepare`).
    pub fn synch_point(&self) -> SeqNo {
        SeqNo(self.snd_nxt.0.wrapping_add(self.backlog.len() as u16).wrapping_sub(1))
    }

    /// Sets the link's tolerance (as `tipc link set tolerance` and `tipc
    /// bearer set tolerance` do, net/tipc/link.c `tipc_link_set_tolerance`):
    /// it applies at once and a STATE tells the peer, which adopts it.
    pub fn set_tolerance(&mut self, t: Duration, bc: &BcCtx, out: &mut Vec<Bytes>) {
        let t = Duration::from_micros(t.as_micros().clamp(50_000, 30_000_000));
        self.tolerance = t;
        self.base_tolerance = t;
        if self.is_up() {
            self.announce_tolerance = Some((t.as_micros() / 1000) as u16);
            self.send_state(false, false, 0, bc, out);
        }
    }

    /// Sets the send window (16–8191) and the backlog limits that follow
    /// from it; local only, the peer is not told (net/tipc/link.c
    /// `tipc_link_set_queue_limits`).
    pub fn set_window(&mut self, window: u16) {
        self.window = window.clamp(16, RCV_WINDOW);
        let w = usize::from(self.window);
        self.limits[..4].copy_from_slice(&[w * 2, w * 4, w * 6, w * 8]);
    }

    /// Sets the bearer the link runs on and its priority.
    pub fn set_bearer(&mut self, bearer_id: u8, priority: u8) {
        self.bearer_id = bearer_id;
        self.priority = priority;
    }
}

/// Whether a message may go into a bundle (fragments, tunnel and broadcast
/// protocol messages never do).
fn bundleable(m: &[u8]) -> bool {
    !matches!(
        UncheckedHeader::new(m).user(),
        User::MsgFragmenter | User::TunnelProtocol | User::BcastProtocol | User::MsgBundler | User::MsgCrypto
    ) && m.len() <= 1024
}

#[cfg(test)]
impl Link {
    /// Leaves the link with nothing to say on its next tick: the peer was
    /// just heard, every packet is acknowledged both ways and data moved
    /// since the last tick (for tests of what else makes a tick speak).
    pub(crate) fn quiet_for_test(&mut self, now: Instant) {
        self.last_rx = now;
        self.silent = 0;
        self.rcv_unacked = 0;
        self.transmq.clear();
        self.checkpoint = self.snd_nxt.prev();
    }
}

#[cfg(test)]
mod tests;
