//! The link layer of one node: the driving contract (`handle_*` /
//! `poll_*`) over its parts, each owning its state: discovery
//! ([`crate::discovery`]), the peer nodes and their links
//! ([`crate::node`]), the broadcast link ([`crate::bcast`]) and the timer
//! table over all of them ([`crate::timers`]).

use bytes::Bytes;
use tipc_wire::{Header, INT_H_SIZE, Instant, LinkProtoType, MediaAddr, Msg, NodeAddr, SeqNo, User};

use crate::bcast::{BcSend, Received};
use crate::config::LinkConfig;
use crate::discovery::Discovery;
use crate::error::{LinkError, check_length};
use crate::event::{LinkEvent, Outbox, Transmit};
use crate::link::{BcCtx, Link, Outcome};
use crate::node::{DownReason, LinkInfo, Peers};
use crate::stats::LayerStats;
use crate::timers::{self, TimerKind};

/// The link layer of one node on one Ethernet bearer (sans-IO).
///
/// Drive it with [`LinkLayer::handle_frame`], [`LinkLayer::handle_timeout`]
/// (at [`LinkLayer::poll_timeout`]) and the `poll_*` methods, passing the
/// current time in; it never reads a clock, sleeps or does IO.
#[derive(Debug)]
pub struct LinkLayer {
    pub(crate) cfg: LinkConfig,
    /// Address trial and neighbour discovery.
    pub(crate) disc: Discovery,
    /// The known nodes and their links.
    pub(crate) peers: Peers,
    /// Our broadcast link.
    pub(crate) bcs: BcSend,
    /// Frames and events for the driver.
    pub(crate) out: Outbox,
    pub(crate) stats: LayerStats,
    /// Reused for the messages one received packet releases.
    deliver_scratch: Vec<Bytes>,
    pub(crate) stopped: bool,
}

impl LinkLayer {
    /// A layer starting at `now`: the address trial (or, with a fixed
    /// address, discovery) begins at once.
    pub fn new(cfg: LinkConfig, now: Instant) -> LinkLayer {
        let disc = Discovery::new(&cfg, now);
        let mut out = Outbox::default();
        if let Some(a) = disc.address() {
            out.event(LinkEvent::AddressConfirmed(a));
        }
        LinkLayer {
            bcs: BcSend::new(cfg.net_id),
            cfg,
            disc,
            peers: Peers::default(),
            out,
            stats: LayerStats::default(),
            deliver_scratch: Vec::new(),
            stopped: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }
    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.disc.address()
    }
    /// Layer counters.
    pub fn stats(&self) -> LayerStats {
        self.stats
    }
    /// One entry per known peer.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.peers.values().map(|p| p.info(&self.cfg.node_id)).collect()
    }
    /// Nodes with an up link.
    pub fn up_nodes(&self) -> Vec<NodeAddr> {
        self.peers.values().filter(|p| p.node_up).map(|p| p.link.peer_addr).collect()
    }
    /// Whether a link to `node` is up.
    pub fn is_up(&self, node: NodeAddr) -> bool {
        self.peers.is_up(node)
    }
    /// A peer's capabilities.
    pub fn peer_caps(&self, node: NodeAddr) -> Option<u16> {
        self.peers.get(&node).map(|p| p.caps)
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.tx.pop_front()
    }
    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.out.events.pop_front()
    }
    /// When [`LinkLayer::handle_timeout`] must be called next: the earliest
    /// of [`LinkLayer::timers`]; `None` once stopped.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer(|_| true).map(|(_, t)| t)
    }

    /// The earliest armed timer whose kind `include` accepts, with its
    /// deadline; `None` if there is none (always once stopped). For
    /// example, a driver that leaves fast probes to its next turn asks for
    /// `next_timer(|k| !k.is_fast_probe())`.
    #[must_use]
    pub fn next_timer(&self, include: impl FnMut(TimerKind) -> bool) -> Option<(TimerKind, Instant)> {
        if self.stopped {
            return None;
        }
        timers::earliest(&self.disc, &self.peers, &self.bcs, include)
    }

    /// Every armed timer with its deadline: discovery's, the broadcast
    /// probe, then per node (in address order) its fast probe, dead-link
    /// deadline and tick. Empty once stopped.
    pub fn timers(&self) -> Vec<(TimerKind, Instant)> {
        let mut rows = Vec::new();
        if !self.stopped {
            timers::visit(&self.disc, &self.peers, &self.bcs, |kind, at| rows.push((kind, at)));
        }
        rows
    }

    /// Runs `f` on the link to `peer` with the peer's broadcast facts, sends
    /// what it produced to the peer's media address and notes the broadcast ack that
    /// went out.
    pub(crate) fn on_link<R>(
        &mut self,
        now: Instant,
        peer: NodeAddr,
        f: impl FnOnce(&mut Link, &BcCtx, &mut Vec<Bytes>) -> R,
    ) -> Option<R> {
        let bc_last = self.bcs.last_sent();
        self.peers.on_link(now, peer, bc_last, &mut self.out, f)
    }

    /// Sends a plain STATE to `peer` (carrying our acks and gap reports).
    fn send_state(&mut self, now: Instant, peer: NodeAddr) {
        self.on_link(now, peer, |l, bc, out| out.push(l.build_proto(LinkProtoType::State, false, false, 0, false, bc)));
    }

    /// Broadcast-link counters: (packets sent, retransmitted, in flight, backlog).
    pub fn bcast_stats(&self) -> (u64, u64, usize, usize) {
        self.bcs.stats()
    }

    /// Nodes that receive our broadcast link.
    pub fn bcast_receivers(&self) -> usize {
        self.bcs.receivers.len()
    }

    /// Sends a message on the broadcast link: one Ethernet broadcast frame
    /// per packet, acknowledged by every up peer, retransmitted on their
    /// NACKs.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] before our address is confirmed;
    /// [`LinkError::BadMessage`] for an impossible length;
    /// [`LinkError::Congested`] (for node 0) when the backlog is full,
    /// queuing nothing: retry after [`LinkEvent::Uncongested`].
    pub fn broadcast(&mut self, now: Instant, msg: Bytes) -> Result<(), LinkError> {
        if !self.disc.confirmed() {
            return Err(LinkError::NotReady);
        }
        check_length(msg.len())?;
        self.bcs.send(now, self.disc.addr, self.cfg.mtu, msg, &mut self.out)
    }

    /// A peer acknowledged our broadcast packets up to `ack`; `gap` more are missing.
    pub(crate) fn bc_ack(&mut self, now: Instant, from: NodeAddr, ack: SeqNo, gap: u16) {
        self.bcs.ack(now, self.disc.addr, from, ack, gap, &mut self.out);
    }

    /// Periodic work: serves every expired timer, kind by kind in the order
    /// of [`TimerKind`] (trial and discovery, fast probes, the broadcast
    /// probe, dead links, supervision ticks), and forgets nodes silent for
    /// [`crate::PEER_EXPIRY`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.disc.on_timeout(now, &self.cfg, &self.peers, &mut self.out, &mut self.stats);
        self.peers.fast_probes(now, self.bcs.last_sent(), &mut self.out);
        if let Some(last) = self.bcs.probe_due(now) {
            // receivers may have missed the tail: tell the laggards our last seqno
            let laggards: Vec<NodeAddr> = self.bcs.laggards(last).collect();
            for a in laggards {
                self.on_link(now, a, |l, bc, out| {
                    out.push(l.build_proto(LinkProtoType::State, true, false, 0, false, bc))
                });
            }
        }
        self.peers.expire(now, &mut self.stats);
        for a in self.peers.dead(now) {
            self.outcome(now, a, Outcome { down: Some(DownReason::SupervisionTimeout), ..Outcome::default() });
        }
        for a in self.peers.due(now) {
            let Some(p) = self.peers.get(&a) else { continue };
            let bc_pending = p.bc.has_news();
            let Some(oc) = self.on_link(now, a, |l, bc, out| l.tick(now, bc, bc_pending, out)) else { continue };
            if let Some(p) = self.peers.get_mut(&a) {
                p.next_tick = now + p.link.tick_interval();
            }
            self.outcome(now, a, oc);
        }
    }

    /// Handles one received TIPC message (Ethernet or UDP header already
    /// removed) from the neighbour at media address `src` (the frame's
    /// source MAC, or the datagram's source address). Malformed or foreign
    /// frames are counted and dropped.
    pub fn handle_frame(&mut self, now: Instant, src: impl Into<MediaAddr>, msg: Bytes) {
        let src = src.into();
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
                Ok(Msg::Discovery(d)) => {
                    self.disc.receive(now, &self.cfg, &mut self.peers, d, &mut self.out, &mut self.stats);
                }
                _ => self.stats.malformed += 1,
            }
            return;
        }
        let from = h.prev_node();
        // a neighbour's frames come from the media address it announced in
        // discovery; anything else claiming its address is forged or
        // misrouted
        match self.peers.get_mut(&from) {
            Some(p) if sent_by(&p.media, &src) => p.heard = now,
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
        h.header_len() >= 32 && h.dest_node() != self.disc.addr
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
            // the peer's broadcast link synchronisation
            if let Ok(Msg::BcastProto(b)) = Msg::parse(m)
                && let Some(p) = self.peers.get_mut(&from)
            {
                p.bc.sync(b.last_bcast_sent);
            }
            return;
        }
        if user == User::TunnelProtocol {
            return;
        }
        self.out.event(LinkEvent::Deliver { from, bcast: false, msg: m });
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
        let mut delivered = std::mem::take(&mut self.deliver_scratch);
        match p.bc.receive(h.seqno(), msg, &mut delivered) {
            Received::Dropped => self.stats.bcast_dropped += 1,
            Received::Deferred { report_gap } => {
                if report_gap {
                    self.send_state(now, from);
                }
            }
            Received::InOrder { ack_now } => {
                if ack_now {
                    self.send_state(now, from);
                }
                for m in delivered.drain(..) {
                    self.out.event(LinkEvent::Deliver { from, bcast: true, msg: m });
                }
            }
        }
        delivered.clear();
        self.deliver_scratch = delivered;
    }

    /// What a call into the link to `peer` reported, applied to the node
    /// ([`Peers::apply`]) and to the parts it touches: a node that comes up
    /// receives our broadcast link; one that goes down no longer holds it
    /// back, and with no link left discovery speeds up again.
    pub(crate) fn outcome(&mut self, now: Instant, peer: NodeAddr, oc: Outcome) {
        let own = self.disc.addr;
        let bc_last = self.bcs.last_sent();
        let init = if oc.up { self.bcs.sync_msg(own, peer) } else { None };
        if !self.peers.apply(peer, &oc, init, bc_last, &mut self.out, &mut self.stats) {
            return;
        }
        if oc.up {
            self.bcs.add_receiver(peer);
        }
        if oc.down.is_some() {
            self.bcs.remove_receiver(peer);
            if !self.peers.any_link_up() {
                self.disc.speed_up(now);
            }
            self.bcs.release(now, own, &mut self.out);
        }
    }

    /// Sends a complete TIPC message (header filled in; link fields are
    /// stamped here) to `dest` over its link.
    ///
    /// Messages longer than the link's packet size are fragmented.
    ///
    /// # Errors
    ///
    /// [`LinkError::BadMessage`] for an impossible length;
    /// [`LinkError::NoLink`] when `dest` is not up; [`LinkError::Congested`]
    /// (queuing nothing) when the link's backlog for the message's
    /// importance is full: retry after [`LinkEvent::Uncongested`].
    pub fn send(&mut self, now: Instant, dest: NodeAddr, msg: Bytes) -> Result<(), LinkError> {
        check_length(msg.len())?;
        if !self.peers.is_up(dest) {
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
        self.peers.fail_all(&mut self.out);
        self.stopped = true;
    }
}

/// Whether a frame from `src` can be from the neighbour that announced
/// `announced`. On Ethernet the source MAC must be the announced one. On
/// UDP the kernel looks at neither the source address nor the port (a
/// socket bound to the wildcard address sends from whichever address the
/// route picks; tipc-wire-udp-failover.md §1.3, §1.8), so neither do we.
fn sent_by(announced: &MediaAddr, src: &MediaAddr) -> bool {
    match announced {
        MediaAddr::Udp(_) => matches!(src, MediaAddr::Udp(_)),
        _ => announced == src,
    }
}

#[cfg(test)]
mod tests;
