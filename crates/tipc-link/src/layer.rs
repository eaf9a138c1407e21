//! The link layer of one node: address trial and discovery on its bearer,
//! one link per peer node, broadcast receive state, and the driving
//! contract (`handle_*` / `poll_*`).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tipc_wire::{
    BC_ACK_INVALID, BcastProtoMsg, DiscoveryMsg, DiscoveryType, Duration, Flags, Header, INT_H_SIZE, Importance,
    Instant, IntHdr, LinkProtoType, MacAddr, MediaAddr, Msg, NodeAddr, NodeId, Reassembler, Reassembly, SeqNo,
    UncheckedHeader, User, WireError,
};

use crate::config::{AddrMode, LinkConfig};
use crate::error::LinkError;
use crate::event::{LinkEvent, Transmit};
use crate::link::{BcCtx, Link, LinkState, Outcome};
use crate::stats::{LayerStats, LinkStats};

const TRIAL_INTERVAL: Duration = Duration::from_millis(125);
const DISC_MIN: Duration = Duration::from_millis(125);
const DISC_MAX_NO_LINK: Duration = Duration::from_millis(1000);
const DISC_MAX_LINKED: Duration = Duration::from_millis(60_000);

/// Most nodes one node keeps state for (a link each). Discovery from a
/// further node evicts the longest-silent node whose link is down; when
/// every link is up, the newcomer is refused and counted. The kernel sets
/// no limit; a cluster of legacy addresses cannot exceed 4 095 nodes.
pub const MAX_PEERS: usize = 4096;

/// A node whose link is down and that has sent nothing for this long is
/// forgotten (a later discovery creates it again), so discovery frames
/// with made-up identities cannot pile up state.
pub const PEER_EXPIRY: Duration = Duration::from_millis(60_000);

/// A small seeded generator (SplitMix64) for signatures and sessions.
#[derive(Clone, Debug)]
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Broadcast receive state for one peer.
#[derive(Debug)]
struct BcRcv {
    synced: bool,
    rcv_nxt: SeqNo,
    /// Peer's last sent broadcast seqno, from its STATE messages.
    peer_last: SeqNo,
    deferred: VecDeque<Option<Bytes>>,
    deferred_count: usize,
    reasm: Reassembler,
    /// Broadcast ack last carried in a packet to the peer.
    acked_sent: SeqNo,
    unacked: u16,
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

impl BcRcv {
    fn gap(&self) -> u16 {
        if !self.synced {
            return 0;
        }
        if let Some(p) = self.deferred.iter().position(Option::is_some) {
            return p as u16;
        }
        if self.peer_last.ge(self.rcv_nxt) { self.rcv_nxt.distance_to(self.peer_last.next()) } else { 0 }
    }
}

#[derive(Debug)]
struct Peer {
    id: NodeId,
    mac: MacAddr,
    caps: u16,
    signature: u16,
    link: Link,
    next_tick: Instant,
    node_up: bool,
    bc: BcRcv,
    /// The peer's acknowledgement of our broadcast packets.
    bc_acked: SeqNo,
    /// Whether the peer counts as a receiver of our broadcast link.
    bc_in: bool,
    /// When the peer was last heard from (discovery or a frame from its MAC).
    heard: Instant,
}

/// Our broadcast send link.
#[derive(Debug)]
struct BcSend {
    snd_nxt: SeqNo,
    window: usize,
    transmq: VecDeque<(SeqNo, Bytes, Option<Instant>)>,
    backlog: VecDeque<Bytes>,
    backlog_limit: usize,
    progress_at: Instant,
    congested: bool,
    sent: u64,
    retransmitted: u64,
}

impl Peer {
    /// Whether the node may be forgotten: its link is down and it is not up.
    fn is_down(&self) -> bool {
        !self.link.is_up() && !self.node_up
    }

    fn bc_ctx(&self, own_bc_last: SeqNo) -> BcCtx {
        BcCtx { ack: self.bc.rcv_nxt.prev(), synced: self.bc.synced, gap: self.bc.gap(), last_sent: own_bc_last }
    }
}

/// A snapshot of one link for statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Peer address.
    pub peer: NodeAddr,
    /// Peer identity.
    pub peer_id: NodeId,
    /// Peer MAC.
    pub peer_mac: MacAddr,
    /// Link state.
    pub state: LinkState,
    /// Negotiated MTU.
    pub mtu: usize,
    /// Send window.
    pub window: u16,
    /// Tolerance in use.
    pub tolerance: Duration,
    /// Packets in the window, and waiting in the backlog.
    pub queued: (usize, usize),
    /// Whether senders are being refused.
    pub congested: bool,
    /// Counters.
    pub stats: LinkStats,
}

/// The link layer of one node on one Ethernet bearer (sans-IO).
///
/// Drive it with [`LinkLayer::handle_frame`], [`LinkLayer::handle_timeout`]
/// (at [`LinkLayer::poll_timeout`]) and the `poll_*` methods, passing the
/// current time in; it never reads a clock, sleeps or does IO.
#[derive(Debug)]
pub struct LinkLayer {
    cfg: LinkConfig,
    rng: Rng,
    signature: u16,
    net_hash: u32,
    addr: NodeAddr,
    confirmed: bool,
    trial_end: Option<Instant>,
    next_trial: Instant,
    disc_next: Instant,
    disc_interval: Duration,
    peers: BTreeMap<NodeAddr, Peer>,
    tx: VecDeque<Transmit>,
    events: VecDeque<LinkEvent>,
    stats: LayerStats,
    scratch: Vec<Bytes>,
    /// Reused for the messages one received packet releases.
    deliver_scratch: Vec<Bytes>,
    stopped: bool,
    bcs: BcSend,
}

/// Why a message of `len` bytes cannot be sent: shorter than the smallest
/// header, or longer than the largest message.
fn bad_length(len: usize) -> LinkError {
    LinkError::BadMessage(if len < tipc_wire::MIN_H_SIZE {
        WireError::Truncated { need: tipc_wire::MIN_H_SIZE, have: len }
    } else {
        WireError::Overflow { field: "message size", value: len as u64 }
    })
}

/// Broadcast packets are retransmitted at most this often.
const BC_RETX_GAP: Duration = Duration::from_millis(5);

impl LinkLayer {
    /// A layer starting at `now`: the address trial (or, with a fixed
    /// address, discovery) begins at once.
    pub fn new(cfg: LinkConfig, now: Instant) -> LinkLayer {
        let mut rng = Rng(cfg.seed ^ u64::from(cfg.node_id.hash_addr().0));
        let signature = rng.next() as u16;
        let net_hash = rng.next() as u32;
        let (addr, confirmed, trial_end) = match cfg.addr_mode {
            AddrMode::Hashed => (cfg.node_id.hash_addr(), false, Some(now + cfg.trial_period)),
            AddrMode::Fixed(a) => (a, true, None),
        };
        let mut l = LinkLayer {
            cfg,
            rng,
            signature,
            net_hash,
            addr,
            confirmed,
            trial_end,
            next_trial: now,
            disc_next: now,
            disc_interval: DISC_MIN,
            peers: BTreeMap::new(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
            stats: LayerStats::default(),
            scratch: Vec::new(),
            deliver_scratch: Vec::new(),
            stopped: false,
            bcs: BcSend {
                snd_nxt: SeqNo(1),
                window: 50,
                transmq: VecDeque::new(),
                backlog: VecDeque::new(),
                backlog_limit: 2000,
                progress_at: Instant::ZERO,
                congested: false,
                sent: 0,
                retransmitted: 0,
            },
        };
        if confirmed {
            l.events.push_back(LinkEvent::AddressConfirmed(addr));
        }
        l
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }
    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.confirmed.then_some(self.addr)
    }
    /// Layer counters.
    pub fn stats(&self) -> LayerStats {
        self.stats
    }
    /// One entry per known peer.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.peers
            .values()
            .map(|p| LinkInfo {
                peer: p.link.peer_addr,
                peer_id: p.id,
                peer_mac: p.mac,
                state: p.link.state,
                mtu: p.link.mtu,
                window: p.link.window,
                tolerance: p.link.tolerance,
                queued: p.link.queued(),
                congested: p.link.is_congested(),
                stats: p.link.stats,
            })
            .collect()
    }
    /// Nodes with an up link.
    pub fn up_nodes(&self) -> Vec<NodeAddr> {
        self.peers.values().filter(|p| p.node_up).map(|p| p.link.peer_addr).collect()
    }
    /// Whether a link to `node` is up.
    pub fn is_up(&self, node: NodeAddr) -> bool {
        self.peers.get(&node).is_some_and(|p| p.node_up)
    }
    /// A peer's capabilities.
    pub fn peer_caps(&self, node: NodeAddr) -> Option<u16> {
        self.peers.get(&node).map(|p| p.caps)
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.pop_front()
    }
    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }
    /// When [`LinkLayer::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline(true)
    }

    /// Like [`LinkLayer::poll_timeout`], leaving out fast-probe deadlines.
    #[must_use]
    pub fn poll_timeout_except_fast_probe(&self) -> Option<Instant> {
        self.next_deadline(false)
    }

    fn next_deadline(&self, fast_probes: bool) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let mut t = if self.confirmed { self.disc_next } else { self.next_trial };
        if let Some(e) = self.trial_end {
            t = t.min(e);
        }
        for p in self.peers.values() {
            t = t.min(p.next_tick);
            if let Some(d) = p.link.dead_at() {
                t = t.min(d);
            }
            if fast_probes && let Some(f) = p.link.fast_probe_at() {
                t = t.min(f);
            }
        }
        if fast_probes && !self.bcs.transmq.is_empty() {
            t = t.min(self.bcs.progress_at + crate::link::FAST_PROBE);
        }
        Some(t)
    }

    /// Runs `f` on the link to `peer` with the peer's broadcast facts, sends
    /// what it produced to the peer's MAC and notes the broadcast ack that went out.
    fn on_link<R>(
        &mut self,
        now: Instant,
        peer: NodeAddr,
        f: impl FnOnce(&mut Link, &BcCtx, &mut Vec<Bytes>) -> R,
    ) -> Option<R> {
        let bc_last = self.own_bc_last();
        let p = self.peers.get_mut(&peer)?;
        let bc = p.bc_ctx(bc_last);
        let mut out = std::mem::take(&mut self.scratch);
        p.link.set_now(now);
        let r = f(&mut p.link, &bc, &mut out);
        if !out.is_empty() {
            p.bc.acked_sent = bc.ack;
        }
        let mac = p.mac;
        for m in out.drain(..) {
            self.tx.push_back(Transmit { dst: mac, msg: m });
        }
        self.scratch = out;
        Some(r)
    }

    /// Sends a plain STATE to `peer` (carrying our acks and gap reports).
    fn send_state(&mut self, now: Instant, peer: NodeAddr) {
        self.on_link(now, peer, |l, bc, out| out.push(l.build_proto(LinkProtoType::State, false, false, 0, false, bc)));
    }

    fn own_bc_last(&self) -> SeqNo {
        self.bcs.snd_nxt.prev()
    }

    /// Broadcast-link counters: (packets sent, retransmitted, in flight, backlog).
    pub fn bcast_stats(&self) -> (u64, u64, usize, usize) {
        (self.bcs.sent, self.bcs.retransmitted, self.bcs.transmq.len(), self.bcs.backlog.len())
    }

    /// Nodes that receive our broadcast link.
    pub fn bcast_receivers(&self) -> usize {
        self.peers.values().filter(|p| p.bc_in).count()
    }

    /// Sends a message on the broadcast link: one Ethernet broadcast frame
    /// per packet, acknowledged by every up peer, retransmitted on their
    /// NACKs. `Err(Congested)` when the backlog is full (nothing queued).
    pub fn broadcast(&mut self, now: Instant, msg: Bytes) -> Result<(), LinkError> {
        if !self.confirmed {
            return Err(LinkError::NotReady);
        }
        if msg.len() < tipc_wire::MIN_H_SIZE || msg.len() > tipc_wire::MAX_MSG_SIZE {
            return Err(bad_length(msg.len()));
        }
        if self.bcs.backlog.len() >= self.bcs.backlog_limit {
            self.bcs.congested = true;
            return Err(LinkError::Congested(NodeAddr(0)));
        }
        let max = self.cfg.mtu - INT_H_SIZE;
        let pkts: Vec<Bytes> = if msg.len() > max {
            let hdr = IntHdr { prev_node: self.addr, orig_node: self.addr, ..IntHdr::default() };
            let imp = Importance::from(u8::from(UncheckedHeader::new(&msg[..]).user()).min(4));
            tipc_wire::fragment(&msg, max, hdr, imp)
                .map_err(LinkError::BadMessage)?
                .into_iter()
                .filter_map(|f| Msg::Fragment(f).to_bytes().ok())
                .collect()
        } else {
            vec![msg]
        };
        for p in pkts {
            self.bcs.backlog.push_back(p);
        }
        self.bc_advance(now);
        Ok(())
    }

    /// Moves broadcast backlog into the window.
    fn bc_advance(&mut self, now: Instant) {
        while self.bcs.transmq.len() < self.bcs.window {
            let Some(m) = self.bcs.backlog.pop_front() else { break };
            let seq = self.bcs.snd_nxt;
            self.bcs.snd_nxt = seq.next();
            let b = match m.try_into_mut() {
                Ok(b) => b,
                Err(m) => bytes::BytesMut::from(&m[..]),
            };
            // as the kernel's broadcast link and bearer stamp it
            // (net/tipc/link.c tipc_link_xmit, bearer.c tipc_bearer_bc_xmit)
            let mut h = UncheckedHeader::new(b);
            h.set_non_seq(true);
            h.set_bcast_ack(SeqNo(0));
            h.set_ack(SeqNo(0));
            h.set_seqno(seq);
            h.set_prev_node(self.addr);
            h.set_mc_netid(self.cfg.net_id);
            if h.header_len() >= 32 {
                h.set_dest_node(NodeAddr(0));
            }
            let b = h.into_inner().freeze();
            if self.bcs.transmq.is_empty() {
                self.bcs.progress_at = now;
            }
            self.bcs.sent += 1;
            self.tx.push_back(Transmit { dst: MacAddr::BROADCAST, msg: b.clone() });
            self.bcs.transmq.push_back((seq, b, None));
        }
        self.bc_release(now);
    }

    /// Releases broadcast packets every receiver has acknowledged.
    fn bc_release(&mut self, now: Instant) {
        let min = self
            .peers
            .values()
            .filter(|p| p.bc_in)
            .map(|p| p.bc_acked)
            .fold(None::<SeqNo>, |m, a| Some(m.map_or(a, |m| if a.lt(m) { a } else { m })));
        let mut released = false;
        while let Some((seq, _, _)) = self.bcs.transmq.front() {
            if min.is_none_or(|m| seq.le(m)) {
                self.bcs.transmq.pop_front();
                released = true;
            } else {
                break;
            }
        }
        if released {
            self.bcs.progress_at = now;
            if !self.bcs.backlog.is_empty() {
                self.bc_advance(now);
            }
            if self.bcs.congested && self.bcs.backlog.len() < self.bcs.backlog_limit {
                self.bcs.congested = false;
                self.events.push_back(LinkEvent::Uncongested { node: NodeAddr(0) });
            }
        }
    }

    /// A peer acknowledged our broadcast packets up to `ack`; `gap` more are missing.
    fn bc_ack(&mut self, now: Instant, from: NodeAddr, ack: SeqNo, gap: u16) {
        let last = self.bcs.snd_nxt.prev();
        let Some(p) = self.peers.get_mut(&from) else { return };
        if !p.bc_in || ack.gt(last) {
            return;
        }
        if ack.gt(p.bc_acked) {
            p.bc_acked = ack;
        }
        let acked = p.bc_acked;
        if gap > 0 {
            let (from_s, to_s) = (acked.next(), acked.add(gap));
            for (seq, m, last_retx) in self.bcs.transmq.iter_mut() {
                if seq.within(from_s, to_s) && last_retx.is_none_or(|t| now.since(t) >= BC_RETX_GAP) {
                    *last_retx = Some(now);
                    self.bcs.retransmitted += 1;
                    self.tx.push_back(Transmit { dst: MacAddr::BROADCAST, msg: m.clone() });
                }
            }
        }
        self.bc_release(now);
    }

    fn discovery_msg(&self, t: DiscoveryType, dest: NodeAddr, suggested: NodeAddr) -> Bytes {
        let m = DiscoveryMsg {
            msg_type: t,
            flags: Flags { non_seq: true, ..Flags::default() },
            capabilities: self.cfg.capabilities,
            signature: (self.signature & 0x7fff) | ((self.cfg.capabilities & 1) << 15),
            dest_domain: dest,
            prev_node: self.addr,
            net_id: self.cfg.net_id,
            media: MediaAddr::Eth(self.cfg.mac),
            peer_net_hash: self.net_hash,
            suggested,
            node_id: Some(self.cfg.node_id),
        };
        Msg::Discovery(m).to_bytes().unwrap_or_default()
    }

    fn push_tx(&mut self, dst: MacAddr, msg: Bytes) {
        self.tx.push_back(Transmit { dst, msg });
    }

    /// Periodic work: trial, discovery, link supervision.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if !self.confirmed {
            if let Some(end) = self.trial_end
                && now >= end
            {
                self.confirmed = true;
                self.trial_end = None;
                self.disc_next = now;
                self.events.push_back(LinkEvent::AddressConfirmed(self.addr));
            } else if now >= self.next_trial {
                let m = self.discovery_msg(DiscoveryType::Trial, NodeAddr(0), NodeAddr(0));
                self.stats.disc_tx += 1;
                self.push_tx(MacAddr::BROADCAST, m);
                self.next_trial = now + TRIAL_INTERVAL;
            }
        }
        if self.confirmed && now >= self.disc_next {
            let m = self.discovery_msg(DiscoveryType::Req, NodeAddr(0), NodeAddr(0));
            self.stats.disc_tx += 1;
            self.push_tx(MacAddr::BROADCAST, m);
            self.disc_next = now + self.disc_interval; // then doubling, as net/tipc/discover.c
            let cap = if self.peers.values().any(|p| p.link.is_up()) { DISC_MAX_LINKED } else { DISC_MAX_NO_LINK };
            self.disc_interval = (self.disc_interval.mul(2)).min(cap);
        }
        let bc_last = self.own_bc_last();
        for p in self.peers.values_mut() {
            if p.link.fast_probe_at().is_some_and(|t| now >= t) {
                let bc = p.bc_ctx(bc_last);
                let mut out = Vec::new();
                p.link.fast_probe(now, &bc, &mut out);
                p.bc.acked_sent = bc.ack;
                for m in out {
                    self.tx.push_back(Transmit { dst: p.mac, msg: m });
                }
            }
        }
        if !self.bcs.transmq.is_empty() && now.since(self.bcs.progress_at) >= crate::link::FAST_PROBE {
            // receivers may have missed the tail: tell the laggards our last seqno
            self.bcs.progress_at = now;
            let last = self.bcs.snd_nxt.prev();
            for p in self.peers.values_mut().filter(|p| p.bc_in && p.bc_acked.lt(last)) {
                let bc = p.bc_ctx(last);
                let m = p.link.build_proto(LinkProtoType::State, true, false, 0, false, &bc);
                self.tx.push_back(Transmit { dst: p.mac, msg: m });
            }
        }
        let stale: Vec<NodeAddr> = self
            .peers
            .values()
            .filter(|p| p.is_down() && now.since(p.heard) >= PEER_EXPIRY)
            .map(|p| p.link.peer_addr)
            .collect();
        for a in stale {
            self.peers.remove(&a);
            self.stats.peers_forgotten += 1;
        }
        let dead: Vec<NodeAddr> = self
            .peers
            .values()
            .filter(|p| p.link.dead_at().is_some_and(|d| now >= d))
            .map(|p| p.link.peer_addr)
            .collect();
        for a in dead {
            self.outcome(now, a, Outcome { down: Some("supervision timeout"), ..Outcome::default() });
        }
        let due: Vec<NodeAddr> = self.peers.values().filter(|p| p.next_tick <= now).map(|p| p.link.peer_addr).collect();
        for a in due {
            let Some(p) = self.peers.get(&a) else { continue };
            let bc = p.bc_ctx(bc_last);
            let bc_pending = p.bc.synced && (p.bc.acked_sent != bc.ack || bc.gap != 0);
            let Some(oc) = self.on_link(now, a, |l, bc, out| l.tick(now, bc, bc_pending, out)) else { continue };
            if let Some(p) = self.peers.get_mut(&a) {
                p.next_tick = now + p.link.tick_interval();
            }
            self.outcome(now, a, oc);
        }
    }

    /// Handles one received TIPC message (Ethernet header already removed)
    /// from the neighbour with MAC `src`. Malformed or foreign frames are
    /// counted and dropped.
    pub fn handle_frame(&mut self, now: Instant, src: MacAddr, msg: Bytes) {
        if self.stopped {
            return;
        }
        let h = match Header::new_checked(msg.clone()) {
            Ok(h) => h,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let msg = h.message();
        let user = h.user();
        if user == User::LinkConfig {
            match Msg::parse_view(&h) {
                Ok(Msg::Discovery(d)) => self.handle_discovery(now, src, d),
                _ => self.stats.malformed += 1,
            }
            return;
        }
        let from = h.prev_node();
        // a neighbour's frames come from the MAC it announced in discovery;
        // anything else claiming its address is forged or misrouted
        match self.peers.get_mut(&from) {
            Some(p) if p.mac == src => p.heard = now,
            _ => {
                self.stats.foreign += 1;
                return;
            }
        }
        if h.flags().non_seq {
            self.handle_bcast(now, from, &h, msg);
            return;
        }
        if user == User::LinkProtocol {
            if self.for_another_node(&h) {
                self.stats.foreign += 1;
                return;
            }
            let Ok(Msg::LinkProto(lp)) = Msg::parse_view(&h) else {
                self.stats.malformed += 1;
                return;
            };
            let Some(p) = self.peers.get_mut(&from) else { return };
            if lp.msg_type == LinkProtoType::State && p.bc.synced {
                p.bc.peer_last = lp.last_bcast_sent;
            }
            let Some(oc) = self.on_link(now, from, |l, bc, out| l.recv_proto(now, &lp, bc, out)) else { return };
            self.outcome(now, from, oc);
            if lp.msg_type == LinkProtoType::State && !lp.bc_ack_invalid && self.is_up(from) {
                self.bc_ack(now, from, lp.hdr.bcast_ack, lp.bcast_gap);
            }
            return;
        }
        // the peer's ack of our broadcast packets rides in every sequenced
        // packet, unless the packet marks it invalid
        let bc_ack_valid = !h.bc_ack_invalid();
        let peer_bc_ack = h.bcast_ack();
        // sequenced unicast packet
        let mut deliver = std::mem::take(&mut self.deliver_scratch);
        let Some(oc) = self.on_link(now, from, |l, bc, out| l.recv(now, msg, bc, out, &mut deliver)) else {
            self.deliver_scratch = deliver;
            return;
        };
        let up_now = oc.up;
        if up_now {
            self.outcome(now, from, Outcome { up: true, ..Outcome::default() });
        }
        for m in deliver.drain(..) {
            self.deliver_unicast(from, m);
        }
        self.deliver_scratch = deliver;
        if bc_ack_valid && self.is_up(from) {
            self.bc_ack(now, from, peer_bc_ack, 0);
        }
        self.outcome(now, from, Outcome { up: false, ..oc });
    }

    /// Whether a message names a destination node that is not us (short
    /// headers name none).
    fn for_another_node(&self, h: &Header<Bytes>) -> bool {
        h.header_len() >= 32 && h.dest_node() != self.addr
    }

    /// A message the link delivered in sequence. Every one has a checked
    /// header: the frame's own, or one checked by the bundle iterator or the
    /// reassembler.
    fn deliver_unicast(&mut self, from: NodeAddr, m: Bytes) {
        let Ok(h) = Header::new_checked(m.clone()) else {
            self.stats.malformed += 1;
            return;
        };
        // A packet for another node still takes its place in the link's
        // sequence (the link acknowledges it, as the kernel's does; dropping
        // it before would leave a gap the peer fills with the same packet
        // until the link fails); only then is it dropped.
        if self.for_another_node(&h) {
            self.stats.foreign += 1;
            return;
        }
        let user = h.user();
        if user == User::BcastProtocol {
            if let Ok(Msg::BcastProto(b)) = Msg::parse(m)
                && let Some(p) = self.peers.get_mut(&from)
                && !p.bc.synced
            {
                p.bc.synced = true;
                p.bc.rcv_nxt = b.last_bcast_sent.next();
                p.bc.peer_last = b.last_bcast_sent;
                p.bc.acked_sent = b.last_bcast_sent;
            }
            return;
        }
        if user == User::TunnelProtocol {
            return;
        }
        self.events.push_back(LinkEvent::Deliver { from, bcast: false, msg: m });
    }

    /// A broadcast-link packet from `from`.
    fn handle_bcast(&mut self, now: Instant, from: NodeAddr, h: &Header<Bytes>, msg: Bytes) {
        if h.mc_netid() != self.cfg.net_id {
            self.stats.foreign += 1;
            return;
        }
        let Some(p) = self.peers.get_mut(&from) else { return };
        if !p.bc.synced || !p.link.is_up() {
            self.stats.bcast_dropped += 1;
            return;
        }
        if h.user() == User::BcastProtocol {
            // legacy NACK from a peer: we send no broadcasts yet, nothing to do
            return;
        }
        let seq = h.seqno();
        if seq != p.bc.rcv_nxt {
            if seq.lt(p.bc.rcv_nxt) {
                self.stats.bcast_dropped += 1;
                return;
            }
            let d = usize::from(p.bc.rcv_nxt.distance_to(seq));
            if d > usize::from(crate::link::RCV_WINDOW) {
                self.stats.bcast_dropped += 1;
                return;
            }
            if p.bc.deferred.len() <= d {
                p.bc.deferred.resize(d + 1, None);
            }
            if p.bc.deferred[d].is_none() {
                p.bc.deferred[d] = Some(msg);
                p.bc.deferred_count += 1;
            }
            if p.bc.peer_last.lt(seq) {
                p.bc.peer_last = seq;
            }
            if p.bc.deferred_count % 16 == 1 {
                self.send_state(now, from);
            }
            return;
        }
        let mut next = Some(msg);
        let mut out = Vec::new();
        while let Some(m) = next.take() {
            p.bc.rcv_nxt = p.bc.rcv_nxt.next();
            p.bc.unacked += 1;
            p.bc.deferred.pop_front();
            match UncheckedHeader::new(&m[..]).user() {
                User::MsgBundler => {
                    if let Ok(Msg::Bundle(b)) = Msg::parse(m) {
                        out.extend(b.iter().map_while(Result::ok));
                    }
                }
                User::MsgFragmenter => {
                    if let Ok(Msg::Fragment(f)) = Msg::parse(m) {
                        match p.bc.reasm.push(&f) {
                            Ok(Reassembly::Complete(w)) => out.push(w),
                            Ok(Reassembly::Pending) => {}
                            Err(_) => p.bc.reasm.reset(),
                        }
                    }
                }
                _ => out.push(m),
            }
            if let Some(x) = p.bc.deferred.front_mut().and_then(Option::take) {
                p.bc.deferred_count -= 1;
                next = Some(x);
            }
        }
        if p.bc.deferred_count == 0 {
            p.bc.deferred.clear();
        }
        if p.bc.peer_last.lt(p.bc.rcv_nxt.prev()) {
            p.bc.peer_last = p.bc.rcv_nxt.prev();
        }
        // explicit broadcast ack now and then, so the sender's window moves
        if p.bc.unacked >= 16 {
            p.bc.unacked = 0;
            self.send_state(now, from);
        }
        for m in out {
            self.events.push_back(LinkEvent::Deliver { from, bcast: true, msg: m });
        }
    }

    fn outcome(&mut self, now: Instant, peer: NodeAddr, oc: Outcome) {
        let bc_last = self.own_bc_last();
        if oc.up {
            let Some(p) = self.peers.get_mut(&peer) else { return };
            let bc = p.bc_ctx(bc_last);
            let mut out = Vec::new();
            // STATE first, then the broadcast init as seqno 1
            out.push(p.link.build_proto(LinkProtoType::State, false, false, 0, false, &bc));
            let init = BcastProtoMsg {
                msg_type: 0,
                hdr: IntHdr { prev_node: self.addr, orig_node: self.addr, dest_node: peer, ..IntHdr::default() },
                last_bcast_sent: bc_last,
                word5: BC_ACK_INVALID,
                payload: Bytes::new(),
            };
            if let Ok(b) = Msg::BcastProto(init).to_bytes() {
                let _ = p.link.send(b, &bc, &mut out);
            }
            p.node_up = true;
            p.bc_acked = bc_last;
            p.bc_in = true;
            let (id, caps, mac) = (p.id, p.caps, p.mac);
            for m in out {
                self.push_tx(mac, m);
            }
            self.events.push_back(LinkEvent::NodeUp { addr: peer, id, caps });
            let _ = now;
        }
        if let Some(reason) = oc.down {
            if reason == crate::link::FRAGMENT_OUT_OF_PLACE {
                self.stats.proto_errors += 1;
            }
            let Some(p) = self.peers.get_mut(&peer) else { return };
            let mut out = Vec::new();
            if p.link.state == LinkState::Established || reason != "peer reset" {
                let bc = BcCtx::default();
                if p.link.state != LinkState::Reset || reason == "peer stopping" {
                    p.link.fail(&bc, &mut out);
                }
            }
            let was_up = std::mem::replace(&mut p.node_up, false);
            p.bc = BcRcv::default();
            p.bc_in = false;
            let mac = p.mac;
            for m in out {
                self.push_tx(mac, m);
            }
            if was_up {
                self.events.push_back(LinkEvent::NodeDown { addr: peer });
            }
            if !self.peers.values().any(|p| p.link.is_up()) {
                self.disc_interval = DISC_MIN;
                self.disc_next = self.disc_next.min(now + DISC_MIN);
            }
        }
        if oc.uncongested {
            self.events.push_back(LinkEvent::Uncongested { node: peer });
        }
        if oc.down.is_some() {
            self.bc_release(now);
        }
    }

    /// Forgets the longest-silent node whose link is down; false if every link is up.
    fn evict_one(&mut self) -> bool {
        let victim = self.peers.values().filter(|p| p.is_down()).min_by_key(|p| p.heard).map(|p| p.link.peer_addr);
        let Some(a) = victim else { return false };
        self.peers.remove(&a);
        self.stats.peers_forgotten += 1;
        true
    }

    fn handle_discovery(&mut self, now: Instant, src: MacAddr, d: DiscoveryMsg) {
        self.stats.disc_rx += 1;
        let Some(mac) = d.media.mac() else {
            self.stats.malformed += 1;
            return;
        };
        if mac.is_broadcast() || mac == self.cfg.mac || d.net_id != self.cfg.net_id {
            self.stats.foreign += 1;
            return;
        }
        let _ = src;
        let their_id = d.node_id.unwrap_or_else(|| NodeId::from_legacy_addr(d.prev_node));
        match d.msg_type {
            DiscoveryType::Trial => {
                let proposed = d.prev_node;
                let clash_self = proposed == self.addr && their_id != self.cfg.node_id;
                let clash_peer = self.peers.get(&proposed).is_some_and(|p| p.id != their_id);
                if clash_self || clash_peer {
                    let known = self.peers.values().find(|p| p.id == their_id).map(|p| p.link.peer_addr);
                    let suggestion = known.unwrap_or_else(|| self.suggest(proposed));
                    let m = self.discovery_msg(DiscoveryType::TrialFail, proposed, suggestion);
                    self.stats.disc_tx += 1;
                    self.push_tx(mac, m);
                }
                return;
            }
            DiscoveryType::TrialFail => {
                if !self.confirmed && d.dest_domain == self.addr && d.suggested.0 != 0 {
                    self.addr = d.suggested;
                    self.trial_end = Some(now + self.cfg.trial_period);
                    self.next_trial = now;
                    self.events.push_back(LinkEvent::Conflict {
                        what: format!("address {} is taken; trying {}", d.dest_domain, d.suggested),
                        mac,
                    });
                }
                return;
            }
            DiscoveryType::Req | DiscoveryType::Resp => {}
            DiscoveryType::Unknown(_) => {
                self.stats.malformed += 1;
                return;
            }
        }
        if !self.confirmed {
            return;
        }
        let addr = d.prev_node;
        if addr == self.addr || addr.0 == 0 {
            self.events.push_back(LinkEvent::Conflict { what: format!("node at {mac} uses our address {addr}"), mac });
            return;
        }
        if d.dest_domain.0 != 0 && d.dest_domain != self.addr {
            self.stats.foreign += 1;
            return;
        }
        let mut respond = false;
        match self.peers.get_mut(&addr) {
            None => {
                if self.peers.values().any(|p| p.id == their_id) {
                    self.events.push_back(LinkEvent::Conflict {
                        what: format!("identity {their_id} appears at a second address {addr}"),
                        mac,
                    });
                    return;
                }
                if self.peers.len() >= MAX_PEERS && !self.evict_one() {
                    self.stats.peers_refused += 1;
                    return;
                }
                let session = self.rng.next() as u16;
                let link = Link::new(
                    self.addr,
                    addr,
                    d.capabilities,
                    self.cfg.capabilities,
                    &self.cfg.if_name,
                    self.cfg.mtu,
                    self.cfg.tolerance(),
                    self.cfg.window,
                    session,
                );
                self.peers.insert(
                    addr,
                    Peer {
                        id: their_id,
                        mac,
                        caps: d.capabilities,
                        signature: d.signature,
                        link,
                        next_tick: now,
                        node_up: false,
                        bc: BcRcv::default(),
                        bc_acked: SeqNo(0),
                        bc_in: false,
                        heard: now,
                    },
                );
                respond = true;
            }
            Some(p) => {
                if p.id != their_id {
                    self.events.push_back(LinkEvent::Conflict {
                        what: format!("address {addr} claimed by identity {their_id}, known as {}", p.id),
                        mac,
                    });
                    return;
                }
                p.heard = now;
                let sign_match = p.signature == d.signature;
                let addr_match = p.mac == mac;
                let up = p.link.is_up();
                match (sign_match, addr_match, up) {
                    (true, true, true) => {}
                    (true, true, false) => {
                        respond = true;
                        p.link.hasten_reset();
                    }
                    (true, false, true) | (false, false, true) => {
                        self.events.push_back(LinkEvent::Conflict {
                            what: format!("node {addr} seen at a second MAC {mac}"),
                            mac,
                        });
                        return;
                    }
                    (true, false, false) | (false, false, false) => {
                        p.mac = mac;
                        p.signature = d.signature;
                        p.caps = d.capabilities;
                        p.link.peer_caps = d.capabilities;
                        respond = true;
                        if p.link.state != LinkState::Reset {
                            p.link.reset();
                        }
                        p.next_tick = now;
                    }
                    (false, true, true) => p.signature = d.signature,
                    (false, true, false) => {
                        p.link.hasten_reset();
                        p.signature = d.signature;
                        p.caps = d.capabilities;
                        p.link.peer_caps = d.capabilities;
                        respond = true;
                    }
                }
            }
        }
        if respond && d.msg_type == DiscoveryType::Req {
            let m = self.discovery_msg(DiscoveryType::Resp, addr, NodeAddr(0));
            self.stats.disc_tx += 1;
            self.push_tx(mac, m);
        }
    }

    fn suggest(&self, proposed: NodeAddr) -> NodeAddr {
        let mut s = proposed.0 ^ self.net_hash;
        loop {
            if s != 0 && s != self.addr.0 && !self.peers.contains_key(&NodeAddr(s)) {
                return NodeAddr(s);
            }
            s = s.wrapping_add(1);
        }
    }

    /// Sends a complete TIPC message (header filled in; link fields are
    /// stamped here) to `dest` over its link.
    ///
    /// Messages longer than the link's packet size are fragmented. Returns
    /// [`LinkError::Congested`] (queuing nothing) when the link's backlog for
    /// the message's importance is full: retry after
    /// [`LinkEvent::Uncongested`].
    pub fn send(&mut self, now: Instant, dest: NodeAddr, msg: Bytes) -> Result<(), LinkError> {
        if msg.len() < tipc_wire::MIN_H_SIZE || msg.len() > tipc_wire::MAX_MSG_SIZE {
            return Err(bad_length(msg.len()));
        }
        if !self.peers.get(&dest).is_some_and(|p| p.node_up) {
            return Err(LinkError::NoLink(dest));
        }
        let r = self.on_link(now, dest, |l, bc, out| l.send(msg, bc, out)).ok_or(LinkError::NoLink(dest))?;
        r.map_err(|()| LinkError::Congested(dest))
    }

    /// Whether a send to `dest` would be refused for congestion now.
    pub fn is_congested(&self, dest: NodeAddr) -> bool {
        self.peers.get(&dest).is_some_and(|p| p.link.is_congested())
    }

    /// Largest message that goes out unfragmented to `dest`.
    pub fn max_pkt(&self, dest: NodeAddr) -> usize {
        self.peers.get(&dest).map_or(self.cfg.mtu - INT_H_SIZE, |p| p.link.max_pkt())
    }

    /// Whether every up link has all its packets acknowledged and nothing in
    /// its backlog (a clean moment to stop).
    pub fn all_acked(&self) -> bool {
        self.peers.values().filter(|p| p.link.is_up()).all(|p| p.link.queued() == (0, 0))
    }

    /// Stops: every up link gets a peer-stopping RESET with a newer session,
    /// so kernel peers drop the link at once rather than after the tolerance.
    pub fn shutdown(&mut self, _now: Instant) {
        let mut frames = Vec::new();
        for p in self.peers.values_mut() {
            if p.link.state != LinkState::Reset {
                let mut out = Vec::new();
                p.link.fail(&BcCtx::default(), &mut out);
                frames.extend(out.into_iter().map(|m| (p.mac, m)));
            }
        }
        for (mac, m) in frames {
            self.push_tx(mac, m);
        }
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests;
