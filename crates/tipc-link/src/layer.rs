//! The link layer of one node: the driving contract (`handle_*` /
//! `poll_*`) over its parts, each owning its state: discovery
//! ([`crate::discovery`]), the peer nodes and their links
//! ([`crate::node`]), the broadcast link ([`crate::bcast`]) and the timer
//! table over all of them ([`crate::timers`]).

use std::collections::VecDeque;

use bytes::Bytes;
use tipc_crypto::Crypto;
use tipc_wire::{
    Header, INT_H_SIZE, Instant, LinkProtoType, MediaAddr, Msg, NodeAddr, SeqNo, TunnelType, UncheckedHeader, User,
};

use crate::bcast::{BcSend, Received};
use crate::config::{BearerSettings, LinkConfig, MAX_BEARERS};
use crate::discovery::{DISC_MIN, DiscBearer, Discovery};
use crate::error::{LinkError, Refused, check_length};
use crate::event::{LinkEvent, Outbox, Transmit};
use crate::link::{BcCtx, Link, LinkState, Outcome};
use crate::node::{DownReason, LinkInfo, Peers};
use crate::stats::LayerStats;
use crate::timers::{self, TimerKind};
use crate::tunnel::{self, FailoverRx, SynchRx};

/// The link layer of one node on its bearers (sans-IO): up to
/// [`MAX_BEARERS`], any mix of media, with up to two parallel links per
/// peer node, failover and synch between them.
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
    /// Keys, key slots and the key exchange ([`crate::crypto`]).
    pub(crate) crypto: Crypto,
    /// Encrypted frames waiting for [`LinkLayer::poll_transmit`].
    pub(crate) crypt_out: VecDeque<Transmit>,
    /// Reused for the frames one message encrypts to.
    pub(crate) crypt_scratch: Vec<Bytes>,
    /// The frame being handled arrived encrypted and authenticated.
    pub(crate) rx_decrypted: bool,
    /// Peers owed an explicit broadcast acknowledgement, with the time it
    /// fell due; sent, one per peer, when the driver next asks for a frame
    /// ([`LinkLayer::poll_transmit`]).
    bc_acks_due: Vec<(NodeAddr, Instant)>,
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
            crypto: Crypto::new(cfg.node_id, [0; 32], now),
            crypt_out: VecDeque::new(),
            crypt_scratch: Vec::new(),
            rx_decrypted: false,
            bcs: BcSend::new(cfg.net_id),
            cfg,
            disc,
            peers: Peers::default(),
            out,
            stats: LayerStats::default(),
            deliver_scratch: Vec::new(),
            stopped: false,
            bc_acks_due: Vec::new(),
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
    /// One entry per link, by peer then bearer.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.peers.values().flat_map(|p| p.info(&self.cfg.node_id)).collect()
    }
    /// Nodes with an up link.
    pub fn up_nodes(&self) -> Vec<NodeAddr> {
        self.peers.values().filter(|p| p.node_up).map(|p| p.addr).collect()
    }

    /// How many nodes are up (the length of [`LinkLayer::up_nodes`]).
    pub fn up_count(&self) -> usize {
        self.peers.values().filter(|p| p.node_up).count()
    }

    /// The enabled bearers with their ids and settings.
    pub fn bearers(&self) -> Vec<(u8, BearerSettings)> {
        (0..MAX_BEARERS as u8).filter_map(|id| self.disc.bearer(id).map(|b| (id, b.settings.clone()))).collect()
    }

    /// Enables a further bearer: it gets the lowest free id (0–2), its
    /// discovery starts at once (after the address trial), and nodes found
    /// on it get a link there, a second one for nodes reached already.
    ///
    /// # Errors
    ///
    /// [`LinkError::TooManyBearers`] when [`MAX_BEARERS`] are enabled.
    pub fn enable_bearer(&mut self, now: Instant, settings: BearerSettings) -> Result<u8, LinkError> {
        let id = self.disc.bearers.iter().position(Option::is_none).ok_or(LinkError::TooManyBearers)?;
        self.disc.bearers[id] = Some(DiscBearer { settings, next: now, interval: DISC_MIN });
        self.update_primary();
        Ok(id as u8)
    }

    /// Changes bearer `id`'s settings, as `tipc bearer set` does
    /// (net/tipc/bearer.c `__tipc_nl_bearer_set`): a new tolerance or
    /// window applies to its links at once (the tolerance is told to each
    /// peer in a STATE); a new priority, MTU or name applies to links made
    /// later. The media address cannot change.
    ///
    /// # Errors
    ///
    /// [`LinkError::NoSuchBearer`] when `id` is not enabled.
    pub fn update_bearer(&mut self, now: Instant, id: u8, settings: BearerSettings) -> Result<(), LinkError> {
        let Some(b) = self.disc.bearers.get_mut(usize::from(id)).and_then(Option::as_mut) else {
            return Err(LinkError::NoSuchBearer(id));
        };
        let media = b.settings.media;
        let old = std::mem::replace(&mut b.settings, BearerSettings { media, ..settings });
        let new = b.settings.clone();
        let peers: Vec<NodeAddr> = self.peers.values().filter(|p| p.end(id).is_some()).map(|p| p.addr).collect();
        for a in peers {
            if new.tolerance() != old.tolerance() {
                let t = new.tolerance();
                self.on_link(now, a, id, |l, bc, out| l.set_tolerance(t, bc, out));
            }
            if new.window != old.window {
                self.on_link(now, a, id, |l, _, _| l.set_window(new.window));
            }
        }
        Ok(())
    }

    /// Disables bearer `id`: its links go down (each failing over to a
    /// parallel link where there is one, so nothing is lost; a node whose
    /// only link it was goes down), nothing more is sent on it, and its
    /// links are forgotten.
    ///
    /// # Errors
    ///
    /// [`LinkError::NoSuchBearer`] when `id` is not enabled.
    pub fn disable_bearer(&mut self, now: Instant, id: u8) -> Result<(), LinkError> {
        if self.disc.bearer(id).is_none() {
            return Err(LinkError::NoSuchBearer(id));
        }
        let on_it: Vec<NodeAddr> = self.peers.values().filter(|p| p.end(id).is_some()).map(|p| p.addr).collect();
        for a in on_it {
            let up = self.peers.get(&a).and_then(|p| p.end(id)).is_some_and(|e| e.link.is_up());
            if up {
                self.outcome(now, a, id, Outcome { down: Some(DownReason::Disabled), ..Outcome::default() });
            }
            if let Some(p) = self.peers.get_mut(&a) {
                p.ends[usize::from(id)] = None;
            }
        }
        self.disc.bearers[usize::from(id)] = None;
        self.update_primary();
        Ok(())
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
    ///
    /// Explicit broadcast acknowledgements that fell due since the last
    /// call are built first, one per peer, acknowledging everything
    /// received by then: a driver that hands in a batch of frames before
    /// it asks for frames to send sends one where the kernel's pace (one
    /// every 16 packets, net/tipc/link.c `tipc_link_build_state_msg`)
    /// would send one per 16 packets of the batch.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.bc_acks_due.is_empty() {
            self.send_due_bc_acks();
        }
        self.next_frame()
    }

    /// Whether an explicit broadcast acknowledgement waits to be built by
    /// the next [`LinkLayer::poll_transmit`] (which then touches a link).
    #[must_use]
    pub fn bc_ack_due(&self) -> bool {
        !self.bc_acks_due.is_empty()
    }

    /// Sends the broadcast acknowledgements that fell due, to each peer
    /// still up that has not had its acknowledgement some other way (any
    /// packet of the unicast link carries it).
    fn send_due_bc_acks(&mut self) {
        let mut due = std::mem::take(&mut self.bc_acks_due);
        for (peer, at) in due.drain(..) {
            let news = self.peers.get(&peer).is_some_and(|p| p.node_up && p.bc.has_news());
            if news && let Some(b) = self.any_up_bearer(peer) {
                self.send_state(at, peer, b);
            }
        }
        self.bc_acks_due = due;
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
        timers::earliest(&self.disc, &self.peers, &self.bcs, &self.crypto, include)
    }

    /// Every armed timer with its deadline: discovery's, the broadcast
    /// probe, then per node (in address order) its fast probe, dead-link
    /// deadline and tick. Empty once stopped.
    pub fn timers(&self) -> Vec<(TimerKind, Instant)> {
        let mut rows = Vec::new();
        if !self.stopped {
            timers::visit(&self.disc, &self.peers, &self.bcs, &self.crypto, |kind, at| rows.push((kind, at)));
        }
        rows
    }

    /// Runs `f` on the link to `peer` on `bearer` with the peer's broadcast
    /// facts, sends what it produced to the peer's media address there and
    /// notes the broadcast ack that went out.
    pub(crate) fn on_link<R>(
        &mut self,
        now: Instant,
        peer: NodeAddr,
        bearer: u8,
        f: impl FnOnce(&mut Link, &BcCtx, &mut Vec<Bytes>) -> R,
    ) -> Option<R> {
        let bc_last = self.bcs.last_sent();
        self.peers.on_link(now, peer, bearer, bc_last, &mut self.out, f)
    }

    /// Sends a plain STATE to `peer` on `bearer` (carrying our acks and gap
    /// reports).
    fn send_state(&mut self, now: Instant, peer: NodeAddr, bearer: u8) {
        self.on_link(now, peer, bearer, |l, bc, out| {
            out.push(l.build_proto(LinkProtoType::State, false, false, 0, false, bc))
        });
    }

    /// The bearer of an up link to `peer` (its first active slot).
    fn any_up_bearer(&self, peer: NodeAddr) -> Option<u8> {
        self.peers.get(&peer).and_then(|p| p.active[0])
    }

    /// Picks the bearers of the broadcast link: the primary bearer
    /// ([`primary_of`]) alone, or, when no bearer has links to every node,
    /// each bearer with a link to any, a copy of every packet on each
    /// (net/tipc/bcast.c `tipc_bcbase_xmit`). The nodes up are the
    /// broadcast link's destinations (link.c `tipc_link_bc_peers`).
    fn update_primary(&mut self) {
        let reach: Vec<(u8, usize)> = (0..MAX_BEARERS as u8)
            .filter(|&id| self.disc.bearer(id).is_some())
            .map(|id| (id, self.peers.reached_by(id)))
            .collect();
        self.bcs.bearers = match primary_of(self.disc.addr, &reach, self.up_count()) {
            Some(b) => vec![b],
            None => reach.iter().filter(|&&(_, n)| n > 0).map(|&(id, _)| id).collect(),
        };
    }

    /// The smallest MTU of the enabled bearers (the broadcast link's),
    /// less the room encryption needs while keys are set.
    fn bcast_mtu(&self) -> usize {
        let mtu = self.disc.bearers.iter().flatten().map(|b| b.settings.mtu).min().unwrap_or(self.cfg.mtu);
        mtu - self.disc.crypto_room
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
        self.offer_broadcast(now, msg).map_err(|r| r.error)
    }

    /// [`LinkLayer::broadcast`] that hands a refused message back (see
    /// [`LinkLayer::offer`]).
    ///
    /// # Errors
    ///
    /// As [`LinkLayer::broadcast`], with the message.
    pub fn offer_broadcast(&mut self, now: Instant, msg: Bytes) -> Result<(), Refused> {
        if !self.disc.confirmed() {
            return Err(Refused { error: LinkError::NotReady, msg });
        }
        if let Err(error) = check_length(msg.len()) {
            return Err(Refused { error, msg });
        }
        let mtu = self.bcast_mtu();
        self.bcs.send(now, self.disc.addr, mtu, msg, &mut self.out)
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
                let Some(b) = self.any_up_bearer(a) else { continue };
                self.on_link(now, a, b, |l, bc, out| {
                    out.push(l.build_proto(LinkProtoType::State, true, false, 0, false, bc))
                });
            }
        }
        self.peers.expire(now, &mut self.stats);
        for (a, b) in self.peers.dead(now) {
            self.outcome(now, a, b, Outcome { down: Some(DownReason::SupervisionTimeout), ..Outcome::default() });
        }
        for (a, b) in self.peers.due(now) {
            let Some(p) = self.peers.get(&a) else { continue };
            let bc_pending = p.bc.has_news();
            let Some(oc) = self.on_link(now, a, b, |l, bc, out| l.tick(now, bc, bc_pending, out)) else { continue };
            if let Some(e) = self.peers.get_mut(&a).and_then(|p| p.end_mut(b)) {
                e.next_tick = now + e.link.tick_interval();
            }
            self.outcome(now, a, b, oc);
        }
        self.crypto_timeout(now);
    }

    /// Handles one received TIPC message (Ethernet or UDP header already
    /// removed) from the neighbour at media address `src` (the frame's
    /// source MAC, or the datagram's source address) on bearer 0; see
    /// [`LinkLayer::handle_frame_on`].
    pub fn handle_frame(&mut self, now: Instant, src: impl Into<MediaAddr>, msg: Bytes) {
        self.handle_frame_on(now, 0, src, msg);
    }

    /// Handles one received TIPC message (Ethernet or UDP header already
    /// removed) that arrived on our bearer `bearer` from the neighbour at
    /// media address `src`. Malformed or foreign frames are counted and
    /// dropped.
    pub fn handle_frame_on(&mut self, now: Instant, bearer: u8, src: impl Into<MediaAddr>, msg: Bytes) {
        let src = src.into();
        if self.stopped {
            return;
        }
        if self.disc.bearer(bearer).is_none() {
            // a frame the driver read before the bearer was disabled (a
            // disabled bearer has no receive handler in the kernel)
            self.stats.foreign += 1;
            return;
        }
        let Some(msg) = self.open_frame(now, msg) else { return };
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
                    self.disc.receive(now, &self.cfg, bearer, &mut self.peers, d, &mut self.out, &mut self.stats);
                }
                _ => self.stats.malformed += 1,
            }
            return;
        }
        let from = h.prev_node();
        // a neighbour's frames come from the media address it announced in
        // discovery on that bearer; anything else claiming its address is
        // forged or misrouted. Its broadcast-link packets may come on a
        // bearer where we have no link to it (its primary bearer,
        // net/tipc/bcast.c `tipc_bcbase_select_primary`).
        let non_seq = h.flags().non_seq;
        match self.peers.get_mut(&from) {
            Some(p) if p.end(bearer).is_some_and(|e| sent_by(&e.media, &src)) => p.heard = now,
            Some(p) if non_seq && p.end(bearer).is_none() => p.heard = now,
            _ => {
                self.stats.foreign += 1;
                return;
            }
        }
        if non_seq {
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
            let Some(oc) = self.on_link(now, from, bearer, |l, bc, out| l.recv_proto(now, &lp, bc, out)) else {
                return;
            };
            self.outcome(now, from, bearer, oc);
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
        let Some(oc) = self.on_link(now, from, bearer, |l, bc, out| l.recv(now, msg, bc, out, &mut deliver)) else {
            self.deliver_scratch = deliver;
            return;
        };
        let up_now = oc.up;
        if up_now {
            self.outcome(now, from, bearer, Outcome { up: true, ..Outcome::default() });
        }
        // whether a synch holds this link's messages: looked up once per
        // frame, and again only after a tunnel message (which may start one)
        let mut hold = self.holds(from, bearer);
        for m in deliver.drain(..) {
            if self.deliver_unicast(now, from, bearer, m, hold) {
                hold = self.holds(from, bearer);
            }
        }
        self.deliver_scratch = deliver;
        self.check_parallel(from);
        if bc_ack_valid && self.is_up(from) {
            self.bc_ack(now, from, peer_bc_ack, 0);
        }
        // (every field named: the link came up above already)
        self.outcome(now, from, bearer, Outcome { up: false, down: oc.down, uncongested: oc.uncongested });
    }

    /// Whether a message names a destination node that is not us (short
    /// headers name none).
    fn for_another_node(&self, h: &Header<Bytes>) -> bool {
        h.header_len() >= 32 && h.dest_node() != self.disc.addr
    }

    /// A message the link on `bearer` delivered in sequence; `hold`: a synch
    /// holds that link's messages ([`LinkLayer::holds`]). Every one has a
    /// checked header: the frame's own, or one checked by the bundle
    /// iterator or the reassembler. True if it was a tunnel message.
    fn deliver_unicast(&mut self, now: Instant, from: NodeAddr, bearer: u8, m: Bytes, hold: bool) -> bool {
        let Ok(h) = Header::new_checked(m.clone()) else {
            self.stats.malformed += 1;
            return false;
        };
        // A packet for another node still takes its place in the link's
        // sequence (the link acknowledges it, as the kernel's does; dropping
        // it before would leave a gap the peer fills with the same packet
        // until the link fails); only then is it dropped.
        if self.for_another_node(&h) {
            self.stats.foreign += 1;
            return false;
        }
        let user = h.user();
        if user == User::BcastProtocol {
            // the peer's broadcast link synchronisation
            if let Ok(Msg::BcastProto(b)) = Msg::parse(m)
                && let Some(p) = self.peers.get_mut(&from)
            {
                p.bc.sync(b.last_bcast_sent);
            }
            return false;
        }
        if user == User::MsgCrypto {
            self.key_msg(now, from, &m);
            return false;
        }
        if user == User::TunnelProtocol {
            if let Ok(Msg::Tunnel(t)) = Msg::parse_view(&h) {
                self.tunnel_rcv(now, from, bearer, h.seqno(), t);
            } else {
                self.stats.malformed += 1;
            }
            return true;
        }
        if hold {
            self.hold(from, bearer, m);
        } else {
            self.out.event(LinkEvent::Deliver { from, bcast: false, msg: m });
        }
        false
    }

    /// Whether a synch with `from` holds the messages of its link on `path`
    /// (those that arrive on it, or are tunnelled from it).
    fn holds(&self, from: NodeAddr, path: u8) -> bool {
        self.peers.get(&from).and_then(|p| p.synch.as_ref()).is_some_and(|s| s.new == path)
    }

    /// Keeps a message of the link on `path` back until the synch ends.
    fn hold(&mut self, from: NodeAddr, path: u8, msg: Bytes) {
        let Some(p) = self.peers.get_mut(&from) else { return };
        let Some(s) = p.synch.as_mut() else { return };
        s.held.push(msg);
        if let Some(e) = p.ends.get_mut(usize::from(path)).and_then(Option::as_mut) {
            e.link.stats.synch_held += 1;
        }
    }

    /// A TUNNEL_PROTOCOL message the link to `from` on `bearer` delivered
    /// in order as its packet `seq` (net/tipc/node.c `tipc_node_check_state`,
    /// link.c `tipc_link_tnl_rcv`).
    fn tunnel_rcv(&mut self, now: Instant, from: NodeAddr, bearer: u8, seq: SeqNo, t: tipc_wire::TunnelMsg) {
        let named = tunnel::bearer_of(&t);
        match t.msg_type {
            TunnelType::Failover => {
                let Some(p) = self.peers.get(&from) else { return };
                if named == bearer || !p.node_up {
                    return;
                }
                if p.failover.as_ref().is_none_or(|f| f.failed != named) {
                    let failed_up = p.end(named).is_some_and(|e| e.link.is_up());
                    if failed_up {
                        // the peer lost the link we still had: ours fails
                        // over too, sending our part
                        self.outcome(
                            now,
                            from,
                            named,
                            Outcome { down: Some(DownReason::PeerFailover), ..Outcome::default() },
                        );
                    } else {
                        self.half_failover(now, from, bearer, named);
                    }
                }
                let mut msgs = Vec::new();
                let Some(p) = self.peers.get_mut(&from) else { return };
                let Some(f) = p.failover.as_mut().filter(|f| f.failed == named) else { return };
                let Some(e) = p.ends.get_mut(usize::from(bearer)).and_then(Option::as_mut) else { return };
                let r = f.receive(seq, t, &mut e.link.stats, &mut msgs);
                let hold = self.holds(from, named);
                for m in msgs {
                    if hold {
                        self.hold(from, named, m);
                    } else {
                        self.out.event(LinkEvent::Deliver { from, bcast: false, msg: m });
                    }
                }
                if r.is_err() {
                    self.stats.proto_errors += 1;
                }
            }
            TunnelType::Synch => {
                let Some(p) = self.peers.get_mut(&from) else { return };
                let old_up = p.end(named).is_some_and(|e| e.link.is_up());
                if named == bearer || !p.node_up || p.synch.is_some() || !old_up {
                    return;
                }
                let point = SeqNo((t.word9 >> 16) as u16);
                p.synch = Some(SynchRx { new: bearer, old: named, point, held: Vec::new() });
            }
            TunnelType::Unknown(_) => self.stats.malformed += 1,
        }
    }

    /// A FAILOVER_MSG for a link of ours to `from` that is not up (`failed`,
    /// its bearer): we have nothing of it to hand over but must answer, so
    /// the peer's failover can end; a lone dummy goes back on `tunnel`
    /// (half failover: net/tipc/node.c `tipc_node_check_state`, link.c
    /// `tipc_link_failover_prepare`).
    fn half_failover(&mut self, now: Instant, from: NodeAddr, tunnel: u8, failed: u8) {
        let own = self.disc.addr;
        let Some(p) = self.peers.get_mut(&from) else { return };
        let Some(e) = p.end_mut(failed) else { return };
        let peer_bearer = e.link.peer_bearer.unwrap_or(failed);
        let answered = std::mem::replace(&mut e.half_answered, true);
        if e.link.state != LinkState::FailingOver {
            e.link.reset();
            e.link.state = LinkState::FailingOver;
        }
        if !answered {
            // one failover, one packet (the dummy) handed over
            e.link.stats.failovers += 1;
            e.link.stats.tunnelled += 1;
        }
        p.failover = Some(FailoverRx::new(failed, tunnel, SeqNo(1), Vec::new(), tipc_wire::Reassembler::new()));
        if answered {
            return;
        }
        let mtu = p.end(tunnel).map_or(self.cfg.mtu, |e| e.link.sealed_mtu());
        // (a 32-byte dummy fits any tunnel: never split)
        let msgs = tunnel::failover_msgs(own, from, peer_bearer, vec![tunnel::dummy(own, from)], mtu, false);
        self.on_link(now, from, tunnel, |l, bc, out| l.send_tunnel(msgs, bc, out));
    }

    /// Ends what is over between the links to `from`: a failover whose
    /// batch has all arrived (the failed link may come back), a synch whose
    /// old link has delivered up to the sync point or failed over (the held
    /// messages go up, in order).
    fn check_parallel(&mut self, from: NodeAddr) {
        let Some(p) = self.peers.get_mut(&from) else { return };
        if let Some(f) = &p.failover {
            let done = p.end(f.tunnel).is_some_and(|e| f.done(e.link.rcv_nxt));
            if done {
                let failed = f.failed;
                p.failover = None;
                if let Some(e) = p.end_mut(failed) {
                    e.link.end_failover();
                }
            }
        }
        let Some(s) = &p.synch else { return };
        let old_done = match p.end(s.old) {
            Some(e) if e.link.is_up() => s.point.lt(e.link.rcv_nxt),
            // the old link failed: once its failover is over, all it
            // carried has arrived
            _ => p.failover.as_ref().is_none_or(|f| f.failed != s.old),
        };
        if old_done && let Some(s) = p.synch.take() {
            for msg in s.held {
                self.out.event(LinkEvent::Deliver { from, bcast: false, msg });
            }
        }
    }

    /// A broadcast-link packet from `from`.
    fn handle_bcast(&mut self, now: Instant, from: NodeAddr, h: &Header<Bytes>, msg: Bytes) {
        if h.mc_netid() != self.cfg.net_id {
            self.stats.foreign += 1;
            return;
        }
        let Some(p) = self.peers.get_mut(&from) else { return };
        if !p.bc.synced || !p.node_up {
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
                if report_gap && let Some(b) = self.any_up_bearer(from) {
                    self.send_state(now, from, b);
                }
            }
            Received::InOrder { ack_now } => {
                if ack_now && !self.bc_acks_due.iter().any(|&(n, _)| n == from) {
                    self.bc_acks_due.push((from, now));
                }
                for m in delivered.drain(..) {
                    if UncheckedHeader::new(&m[..]).user() == User::MsgCrypto {
                        self.key_msg(now, from, &m);
                        continue;
                    }
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
    pub(crate) fn outcome(&mut self, now: Instant, peer: NodeAddr, bearer: u8, oc: Outcome) {
        let own = self.disc.addr;
        let bc_last = self.bcs.last_sent();
        let was_up = self.peers.is_up(peer);
        let init = if oc.up && !was_up { self.bcs.sync_msg(own, peer) } else { None };
        if !self.peers.apply(peer, bearer, &oc, init, bc_last, &mut self.out, &mut self.stats) {
            return;
        }
        let is_up = self.peers.is_up(peer);
        if oc.up {
            tracing::info!(peer = %peer, bearer, "link up");
        }
        if let Some(reason) = &oc.down {
            tracing::warn!(peer = %peer, bearer, ?reason, "link down");
        }
        if is_up != was_up {
            tracing::info!(peer = %peer, up = is_up, "node {}", if is_up { "up" } else { "down" });
        }
        if is_up && !was_up {
            self.bcs.add_receiver(peer);
            self.crypto_node(now, peer, true);
        }
        if was_up && !is_up {
            self.crypto_node(now, peer, false);
        }
        if oc.down.is_some() {
            if !is_up {
                self.bcs.remove_receiver(peer);
                self.bcs.release(now, own, &mut self.out);
            }
            if !self.peers.any_link_up(Some(bearer)) {
                self.disc.speed_up(now, bearer);
            }
            self.check_parallel(peer);
        }
        if oc.up || oc.down.is_some() {
            self.update_primary();
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
        self.offer(now, dest, msg).map_err(|r| r.error)
    }

    /// [`LinkLayer::send`] that hands a refused message back instead of
    /// dropping it, so a sender keeping it for a retry holds no second
    /// reference (which would make the link copy every message it stamps).
    ///
    /// # Errors
    ///
    /// As [`LinkLayer::send`], with the message.
    pub fn offer(&mut self, now: Instant, dest: NodeAddr, msg: Bytes) -> Result<(), Refused> {
        if let Err(error) = check_length(msg.len()) {
            return Err(Refused { error, msg });
        }
        let bearer = self.peers.get(&dest).filter(|p| p.node_up).and_then(|p| p.select(selector(&msg)));
        let Some(bearer) = bearer else { return Err(Refused { error: LinkError::NoLink(dest), msg }) };
        // on_link finds the link `select` just named
        let mut msg = Some(msg);
        let r = self.on_link(now, dest, bearer, |l, bc, out| msg.take().map(|m| l.send(m, bc, out)));
        match (r.flatten(), msg) {
            (Some(Ok(())), _) => Ok(()),
            (Some(Err(msg)), _) => Err(Refused { error: LinkError::Congested(dest), msg }),
            (None, Some(msg)) => Err(Refused { error: LinkError::NoLink(dest), msg }),
            (None, None) => Err(Refused { error: LinkError::NoLink(dest), msg: Bytes::new() }),
        }
    }

    /// Whether a send to `dest` would be refused for congestion now (on
    /// either active link).
    pub fn is_congested(&self, dest: NodeAddr) -> bool {
        self.peers
            .get(&dest)
            .is_some_and(|p| p.active.iter().flatten().any(|&b| p.end(b).is_some_and(|e| e.link.is_congested())))
    }

    /// Whether a send to some node may be refused for congestion now:
    /// false only when no link is congested (one look while none has been;
    /// [`LinkLayer::is_congested`] names the node).
    pub fn any_congested(&self) -> bool {
        self.peers.any_congested()
    }

    /// Largest message that goes out unfragmented to `dest` (on either
    /// active link).
    pub fn max_pkt(&self, dest: NodeAddr) -> usize {
        self.peers
            .get(&dest)
            .and_then(|p| p.active.iter().flatten().filter_map(|&b| p.end(b)).map(|e| e.link.max_pkt()).min())
            .unwrap_or(self.cfg.mtu - INT_H_SIZE)
    }

    /// Whether every up link has all its packets acknowledged and nothing in
    /// its backlog (a clean moment to stop).
    pub fn all_acked(&self) -> bool {
        self.peers
            .values()
            .flat_map(|p| p.ends.iter().flatten())
            .filter(|e| e.link.is_up())
            .all(|e| e.link.queued() == (0, 0))
    }

    /// Stops: every up link gets a peer-stopping RESET with a newer session,
    /// so kernel peers drop the link at once rather than after the tolerance.
    pub fn shutdown(&mut self, _now: Instant) {
        self.bc_acks_due.clear();
        self.peers.fail_all(None, &mut self.out);
        self.stopped = true;
    }
}

/// The primary bearer of the broadcast link among `reach` (bearer id in
/// ascending order, nodes it reaches with an up link) for a node at `own`
/// with `all` nodes up (net/tipc/bcast.c `tipc_bcbase_select_primary`):
/// of the bearers reaching all `all` nodes, the first whose id differs in
/// parity from the address (so not every node picks the same), else the
/// last. `None` when no bearer reaches them all, or no node is up.
fn primary_of(own: NodeAddr, reach: &[(u8, usize)], all: usize) -> Option<u8> {
    if all == 0 {
        return None;
    }
    let mut primary = None;
    for &(id, _) in reach.iter().filter(|&&(_, n)| n >= all) {
        primary = Some(id);
        if (u32::from(id) ^ own.0) & 1 == 1 {
            break;
        }
    }
    primary
}

/// The selector of a message (net/tipc/node.c `tipc_node_xmit_skb`
/// callers): the originating port for data, group protocol and connection
/// messages, so one socket's messages keep to one link; 0 for the rest.
fn selector(msg: &[u8]) -> u32 {
    let h = tipc_wire::UncheckedHeader::new(msg);
    match h.user() {
        u if u.is_data() => word(msg, 4),
        User::GroupProtocol | User::ConnManager => word(msg, 4),
        _ => 0,
    }
}

/// Word `n` of a message (0 past its end).
fn word(msg: &[u8], n: usize) -> u32 {
    msg.get(n * 4..n * 4 + 4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether a frame from `src` can be from the neighbour that announced
/// `announced`. On Ethernet the source MAC must be the announced one. On
/// UDP the kernel looks at neither the source address nor the port (a
/// socket bound to the wildcard address sends from whichever address the
/// route picks; net/tipc/udp_media.c `tipc_udp_recv`), so neither do we.
fn sent_by(announced: &MediaAddr, src: &MediaAddr) -> bool {
    match announced {
        MediaAddr::Udp(_) => matches!(src, MediaAddr::Udp(_)),
        _ => announced == src,
    }
}

#[cfg(test)]
mod tests;
