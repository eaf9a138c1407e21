//! The peer nodes (net/tipc/node.c): per node, what discovery learnt of
//! it, its links (up to two, on different bearers) with the active slots,
//! failover and synch between them, whether it is up, and our receive state for its broadcast
//! link; bringing a node up and down on what its link reports; and the
//! limits on how many nodes are kept.

use std::collections::BTreeMap;

use bytes::Bytes;
use tipc_wire::{Duration, Instant, LinkProtoType, MediaAddr, NodeAddr, NodeId, SeqNo};

use crate::bcast::BcRcv;
use crate::config::MAX_BEARERS;
use crate::event::{LinkEvent, Outbox};
use crate::link::{BcCtx, Link, LinkState, Outcome};
use crate::stats::{LayerStats, LinkStats};
use crate::timers::TimerKind;
use crate::tunnel::{self, FailoverRx, SynchRx};

/// Most nodes one node keeps state for (a link each). Discovery from a
/// further node evicts the longest-silent node whose link is down; when
/// every link is up, the newcomer is refused and counted. The kernel sets
/// no limit; a cluster of legacy addresses cannot exceed 4 095 nodes.
pub const MAX_PEERS: usize = 4096;

/// A node whose link is down and that has sent nothing for this long is
/// forgotten (a later discovery creates it again), so discovery frames
/// with made-up identities cannot pile up state.
pub const PEER_EXPIRY: Duration = Duration::from_millis(60_000);

/// Why a link went down: the events that take a link back to RESET
/// (net/tipc/link.c, `tipc_link_fsm_evt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DownReason {
    /// The peer reset the link: a RESET of a newer session arrived while the
    /// link was up (the kernel's PEER_RESET event). The peer's new session
    /// must live, so no stopping RESET answers it.
    PeerReset,
    /// The peer said it is stopping: a RESET or ACTIVATE with the
    /// peer-stopping bit (net/tipc/link.c `tipc_link_proto_rcv`).
    PeerStopping,
    /// Nothing was heard from the peer for the tolerance, or too many
    /// supervision ticks passed in silence (net/tipc/link.c
    /// `tipc_link_timeout`).
    SupervisionTimeout,
    /// The oldest unacknowledged packet has been retransmitted for ten
    /// tolerances without being acknowledged (net/tipc/link.c
    /// `link_retransmit_failure`).
    RetransmissionFailure,
    /// The peer's FAILOVER_MSG for this link arrived while we had it up: the
    /// peer lost it.
    PeerFailover,
    /// Its bearer was disabled here.
    Disabled,
    /// A fragment arrived out of place (a FIRST while another message was
    /// being reassembled, a later fragment without a FIRST, or a message
    /// past the largest size): a protocol error, counted as such.
    FragmentOutOfPlace,
}

/// A snapshot of one link for statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LinkInfo {
    /// The link's name as the kernel forms it (net/tipc/link.c
    /// `tipc_link_create`): `OWN_ID:OWN_IF-PEER_ID:PEER_IF`, with the node
    /// identities as `tipc node` prints them and `unknown` for the peer's
    /// interface until its RESET or ACTIVATE names it.
    pub name: String,
    /// Peer address.
    pub peer: NodeAddr,
    /// Peer identity.
    pub peer_id: NodeId,
    /// Our bearer the link runs on (0–2).
    pub bearer: u8,
    /// The peer's media address on that bearer (its MAC, or its UDP
    /// address and port).
    pub peer_media: MediaAddr,
    /// Link state.
    pub state: LinkState,
    /// Whether the link carries traffic (holds one of the node's two
    /// active slots); an up link that does not is a standby.
    pub active: bool,
    /// Link priority (0–31).
    pub priority: u8,
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

/// One link endpoint of a peer node: the link on one of our bearers and
/// the peer's media address there.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The media address the peer announced on this bearer.
    pub media: MediaAddr,
    /// The link.
    pub link: Link,
    /// When the link's next supervision tick is due.
    pub next_tick: Instant,
    /// Whether a peer's FAILOVER_MSG for this link, down already, was
    /// answered with a lone dummy since it was last up (once: two nodes
    /// answering each other's dummies would never stop).
    pub half_answered: bool,
}

/// One peer node (the kernel's `struct tipc_node`).
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its address.
    pub addr: NodeAddr,
    /// Its identity.
    pub id: NodeId,
    /// Its capabilities.
    pub caps: u16,
    /// The signature of its current incarnation (from discovery).
    pub signature: u16,
    /// When it was last heard from (discovery or a frame from its media address).
    pub heard: Instant,
    /// Its links, by our bearer id; at most [`MAX_LINKS_PER_NODE`].
    pub ends: [Option<Endpoint>; MAX_BEARERS],
    /// The two active slots (net/tipc/node.c `active_links`): the bearer
    /// of the link each carries; a message goes on the slot of its
    /// selector's lowest bit.
    pub active: [Option<u8>; 2],
    /// Whether the node is up (reported with [`LinkEvent::NodeUp`]).
    pub node_up: bool,
    /// Our receive state for its broadcast link.
    pub bc: BcRcv,
    /// The failover in progress, if one of two links failed.
    pub failover: Option<FailoverRx>,
    /// The synch in progress, if a second link came up.
    pub synch: Option<SynchRx>,
}

/// Most links to one node (net/tipc/node.c: a third bearer that finds the
/// node makes no link).
pub const MAX_LINKS_PER_NODE: usize = 2;

impl Peer {
    /// A node just discovered at `now` on `bearer`, with its link there in RESET.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        addr: NodeAddr,
        id: NodeId,
        bearer: u8,
        media: MediaAddr,
        caps: u16,
        signature: u16,
        link: Link,
        now: Instant,
    ) -> Peer {
        let mut p = Peer {
            addr,
            id,
            caps,
            signature,
            heard: now,
            ends: [None, None, None],
            active: [None, None],
            node_up: false,
            bc: BcRcv::default(),
            failover: None,
            synch: None,
        };
        p.add_end(bearer, media, link, now);
        p
    }

    /// Adds a link on `bearer`.
    pub fn add_end(&mut self, bearer: u8, media: MediaAddr, link: Link, now: Instant) {
        if let Some(slot) = self.ends.get_mut(usize::from(bearer)) {
            *slot = Some(Endpoint { media, link, next_tick: now, half_answered: false });
        }
    }

    /// The link on `bearer`.
    pub fn end(&self, bearer: u8) -> Option<&Endpoint> {
        self.ends.get(usize::from(bearer)).and_then(Option::as_ref)
    }
    /// The link on `bearer`, to change.
    pub fn end_mut(&mut self, bearer: u8) -> Option<&mut Endpoint> {
        self.ends.get_mut(usize::from(bearer)).and_then(Option::as_mut)
    }
    /// The node's links with their bearers.
    pub fn endpoints(&self) -> impl Iterator<Item = (u8, &Endpoint)> {
        self.ends.iter().enumerate().filter_map(|(b, e)| e.as_ref().map(|e| (b as u8, e)))
    }
    /// How many links the node has (up or not).
    pub fn link_count(&self) -> usize {
        self.ends.iter().flatten().count()
    }
    /// Whether any link to the node is up.
    pub fn any_link_up(&self) -> bool {
        self.ends.iter().flatten().any(|e| e.link.is_up())
    }

    /// Whether the node may be forgotten: no link is up and it is not up.
    pub fn is_down(&self) -> bool {
        !self.any_link_up() && !self.node_up
    }

    /// The bearer of the link a message with `selector` goes on.
    pub fn select(&self, selector: u32) -> Option<u8> {
        self.active[(selector & 1) as usize]
    }

    /// The active slots after a link failed (net/tipc/node.c
    /// `tipc_node_link_down`): a node has at most two links, so at most one
    /// is left up, and it takes both slots.
    pub fn recompute_slots(&mut self) {
        let left = self.endpoints().find(|(_, e)| e.link.is_up()).map(|(b, _)| b);
        self.active = [left, left];
    }

    /// A second link on `bearer` came up beside the active one (net/tipc/
    /// node.c `tipc_node_link_up`): a higher priority takes both slots, an
    /// equal one takes slot 1 (load sharing), a lower one stands by.
    fn second_link_up(&mut self, bearer: u8) {
        let Some(cur) = self.active[0] else {
            self.active = [Some(bearer), Some(bearer)];
            return;
        };
        let prio = |p: &Peer, b: u8| p.end(b).map_or(0, |e| e.link.priority);
        let (new, old) = (prio(self, bearer), prio(self, cur));
        if new > old {
            self.active = [Some(bearer), Some(bearer)];
        } else if new == old {
            self.active[1] = Some(bearer);
        }
    }

    /// The broadcast facts a packet to the node carries, with `own_bc_last`
    /// our last sent broadcast sequence number.
    pub fn bc_ctx(&self, own_bc_last: SeqNo) -> BcCtx {
        self.bc.ctx(own_bc_last)
    }

    /// The link on `bearer` came up. The first link brings the node up: a
    /// STATE, then `init` (the broadcast link's synchronisation) as the
    /// link's first packet. A second link synchs with the one up (a STATE,
    /// then a SYNCH_MSG naming the old link and its sync point, net/tipc/
    /// node.c `__tipc_node_link_up`) and takes its slots.
    fn come_up(&mut self, bearer: u8, init: Option<Bytes>, bc_last: SeqNo, out: &mut Outbox) {
        let bc = self.bc_ctx(bc_last);
        let first = !self.node_up;
        let old = if first { None } else { self.active[0].filter(|&b| b != bearer) };
        let synch = old.and_then(|o| {
            let e = self.end(o)?;
            Some((e.link.peer_bearer.unwrap_or(0), e.link.synch_point()))
        });
        let addr = self.addr;
        let Some(e) = self.end_mut(bearer) else { return };
        e.half_answered = false;
        let mut frames = Vec::new();
        frames.push(e.link.build_proto(LinkProtoType::State, false, false, 0, false, &bc));
        if first {
            if let Some(b) = init {
                let _ = e.link.send(b, &bc, &mut frames);
            }
        } else if let Some((old_peer_bearer, point)) = synch {
            let m = tunnel::synch_msg(e.link.own_addr, addr, old_peer_bearer, point);
            e.link.send_tunnel([m], &bc, &mut frames);
            e.link.stats.synchs += 1;
        }
        out.send_all(bearer, e.link.peer_addr, e.media, frames);
        if first {
            self.node_up = true;
            self.active = [Some(bearer), Some(bearer)];
            out.event(LinkEvent::NodeUp { addr, id: self.id, caps: self.caps });
        } else {
            self.second_link_up(bearer);
        }
    }

    /// The link on `bearer` went down for `reason`. With another link up
    /// the node stays up and the link fails over to it; otherwise the node
    /// is down and its broadcast receive state starts over.
    ///
    /// The last link resets and says so with a stopping RESET, except when
    /// the peer reset a link of ours that was not up (its new session must
    /// live), or when our link is already in RESET and the peer is not
    /// stopping.
    fn go_down(&mut self, bearer: u8, reason: DownReason, bc_last: SeqNo, out: &mut Outbox) {
        let other_up = self.endpoints().any(|(b, e)| b != bearer && e.link.is_up());
        if other_up && self.node_up {
            self.fail_over(bearer, bc_last, out);
            return;
        }
        let Some(e) = self.end_mut(bearer) else { return };
        let mut frames = Vec::new();
        if e.link.state == LinkState::Established || reason != DownReason::PeerReset {
            let bc = BcCtx::default();
            if e.link.state != LinkState::Reset || reason == DownReason::PeerStopping {
                e.link.fail(&bc, &mut frames);
            }
        }
        out.send_all(bearer, e.link.peer_addr, e.media, frames);
        self.lose_node(out);
    }

    /// The node lost its last link: it is down, every failover and synch
    /// ends, links failing over may come back, and the broadcast receive
    /// state starts over.
    fn lose_node(&mut self, out: &mut Outbox) {
        let was_up = std::mem::replace(&mut self.node_up, false);
        self.bc = BcRcv::default();
        self.failover = None;
        self.synch = None;
        self.active = [None, None];
        for e in self.ends.iter_mut().flatten() {
            e.link.end_failover();
        }
        if was_up {
            out.event(LinkEvent::NodeDown { addr: self.addr });
        }
    }

    /// The link on `failed` failed while another is up (net/tipc/node.c
    /// `__tipc_node_link_down`): the slots move to the links left, the failed
    /// link's packets (and a dummy) go to the peer as FAILOVER_MSGs on the
    /// tunnel link, and its receive state waits there for the peer's.
    fn fail_over(&mut self, failed: u8, bc_last: SeqNo, out: &mut Outbox) {
        let bc = self.bc_ctx(bc_last);
        let Some(e) = self.end_mut(failed) else { return };
        let peer_bearer = e.link.peer_bearer.unwrap_or(failed);
        let own = e.link.own_addr;
        let handover = e.link.fail_over(&bc);
        self.recompute_slots();
        let Some(tunnel) = self.active[0] else { return };
        let addr = self.addr;
        let enhanced = self.caps & crate::config::caps::TUNNEL_ENHANCED != 0;
        let Some(t) = self.end_mut(tunnel) else { return };
        let whole = handover.packets.len();
        let msgs = tunnel::failover_msgs(own, addr, peer_bearer, handover.packets, t.link.sealed_mtu(), enhanced);
        // a packet split in k travels as k messages: k - 1 more
        t.link.stats.tunnel_fragments += (msgs.len().saturating_sub(whole)) as u64;
        let mut frames = Vec::new();
        t.link.send_tunnel(msgs, &bc, &mut frames);
        out.send_all(tunnel, t.link.peer_addr, t.media, frames);
        self.failover = Some(FailoverRx::new(failed, tunnel, handover.drop_point, handover.deferred, handover.reasm));
    }

    /// The link's state; `own` is our identity (for the name).
    pub fn info(&self, own: &NodeId) -> Vec<LinkInfo> {
        self.endpoints()
            .map(|(b, e)| {
                let l = &e.link;
                let peer_if = l.peer_if.as_deref().unwrap_or("unknown");
                LinkInfo {
                    name: format!("{own}:{}-{}:{peer_if}", l.if_name, self.id),
                    peer: self.addr,
                    peer_id: self.id,
                    bearer: b,
                    peer_media: e.media,
                    state: l.state,
                    active: l.is_up() && self.active.contains(&Some(b)),
                    priority: l.priority,
                    mtu: l.mtu,
                    window: l.window,
                    tolerance: l.tolerance,
                    queued: l.queued(),
                    congested: l.is_congested(),
                    stats: l.stats,
                }
            })
            .collect()
    }
}

/// The known nodes, by address.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    map: BTreeMap<NodeAddr, Peer>,
    /// Reused for the packets one call into a link produces.
    scratch: Vec<Bytes>,
    /// False only while no link is congested. A link becomes congested
    /// only in `Link::send`, which runs through [`Peers::on_link`] (that
    /// sets this) or as a new link's first message in `Peer::come_up`,
    /// into an empty backlog (whose limits are at least twice the window)
    /// that it cannot fill. Cleared by a look at every link that finds
    /// none ([`Peers::any_congested`]).
    maybe_congested: std::cell::Cell<bool>,
}

impl Peers {
    /// The node at `addr`.
    pub fn get(&self, addr: &NodeAddr) -> Option<&Peer> {
        self.map.get(addr)
    }
    /// The node at `addr`, to change.
    pub fn get_mut(&mut self, addr: &NodeAddr) -> Option<&mut Peer> {
        self.map.get_mut(addr)
    }

    /// Whether any link (active or standby) is congested: false at once
    /// while none has been since the last look that found none, else a
    /// look at every link.
    pub fn any_congested(&self) -> bool {
        if !self.maybe_congested.get() {
            return false;
        }
        let any = self.map.values().any(|p| p.ends.iter().flatten().any(|e| e.link.is_congested()));
        if !any {
            self.maybe_congested.set(false);
        }
        any
    }
    /// Whether a node is known at `addr`.
    pub fn contains_key(&self, addr: &NodeAddr) -> bool {
        self.map.contains_key(addr)
    }
    /// Every node, in address order.
    pub fn values(&self) -> impl Iterator<Item = &Peer> {
        self.map.values()
    }
    /// How many nodes are known.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Adds (or replaces) the node at `addr`.
    pub fn insert(&mut self, addr: NodeAddr, p: Peer) {
        self.map.insert(addr, p);
    }

    /// The address of the node with identity `id`, if known.
    pub fn find_id(&self, id: NodeId) -> Option<NodeAddr> {
        self.map.iter().find(|(_, p)| p.id == id).map(|(a, _)| *a)
    }
    /// Whether any node's link on `bearer` (any bearer: `None`) is up.
    pub fn any_link_up(&self, bearer: Option<u8>) -> bool {
        self.map.values().any(|p| p.endpoints().any(|(b, e)| bearer.is_none_or(|x| x == b) && e.link.is_up()))
    }
    /// How many nodes have an up link on `bearer`.
    pub fn reached_by(&self, bearer: u8) -> usize {
        self.map.values().filter(|p| p.end(bearer).is_some_and(|e| e.link.is_up())).count()
    }
    /// Whether the node at `addr` is up.
    pub fn is_up(&self, addr: NodeAddr) -> bool {
        self.map.get(&addr).is_some_and(|p| p.node_up)
    }

    /// Forgets the longest-silent node whose link is down; false if every
    /// link is up.
    pub fn evict_one(&mut self, stats: &mut LayerStats) -> bool {
        let victim = self.map.values().filter(|p| p.is_down()).min_by_key(|p| p.heard).map(|p| p.addr);
        let Some(a) = victim else { return false };
        self.map.remove(&a);
        stats.peers_forgotten += 1;
        true
    }

    /// Forgets the nodes that are down and were silent for [`PEER_EXPIRY`].
    pub fn expire(&mut self, now: Instant, stats: &mut LayerStats) {
        let stale: Vec<NodeAddr> =
            self.map.values().filter(|p| p.is_down() && now.since(p.heard) >= PEER_EXPIRY).map(|p| p.addr).collect();
        for a in stale {
            self.map.remove(&a);
            stats.peers_forgotten += 1;
        }
    }

    /// Runs `f` on the link to `peer` on `bearer` with the node's broadcast
    /// facts (`bc_last`: our last sent broadcast), sends what it produced to
    /// the node's media address there and notes the broadcast ack that went
    /// out. None if there is no such link.
    pub fn on_link<R>(
        &mut self,
        now: Instant,
        peer: NodeAddr,
        bearer: u8,
        bc_last: SeqNo,
        out: &mut Outbox,
        f: impl FnOnce(&mut Link, &BcCtx, &mut Vec<Bytes>) -> R,
    ) -> Option<R> {
        let p = self.map.get_mut(&peer)?;
        let bc = p.bc_ctx(bc_last);
        let e = p.ends.get_mut(usize::from(bearer))?.as_mut()?;
        let mut frames = std::mem::take(&mut self.scratch);
        e.link.set_now(now);
        let r = f(&mut e.link, &bc, &mut frames);
        if e.link.is_congested() {
            self.maybe_congested.set(true);
        }
        if !frames.is_empty() {
            p.bc.acked_sent = bc.ack;
        }
        out.send_all(bearer, e.link.peer_addr, e.media, frames.drain(..));
        self.scratch = frames;
        Some(r)
    }

    /// Applies what a call into the link to `peer` on `bearer` reported:
    /// the link comes up (the node with it, `init` its broadcast
    /// synchronisation as first packet; `bc_last` our last sent
    /// broadcast), goes down (failing over, or taking the node down), or
    /// hears that its backlog drained. False if the node is unknown
    /// (nothing else must follow).
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        peer: NodeAddr,
        bearer: u8,
        oc: &Outcome,
        init: Option<Bytes>,
        bc_last: SeqNo,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) -> bool {
        if oc.up {
            let Some(p) = self.map.get_mut(&peer) else { return false };
            p.come_up(bearer, init, bc_last, out);
        }
        if let Some(reason) = oc.down {
            if reason == DownReason::FragmentOutOfPlace {
                stats.proto_errors += 1;
            }
            let Some(p) = self.map.get_mut(&peer) else { return false };
            p.go_down(bearer, reason, bc_last, out);
        }
        if oc.uncongested {
            out.event(LinkEvent::Uncongested { node: peer });
        }
        true
    }

    /// Serves the due [`TimerKind::FastProbe`] timers: each probe carries
    /// the node's broadcast facts (`bc_last`: our last sent broadcast).
    pub fn fast_probes(&mut self, now: Instant, bc_last: SeqNo, out: &mut Outbox) {
        for (a, b) in self.links_where(|e| e.link.fast_probe_at().is_some_and(|t| now >= t)) {
            self.on_link(now, a, b, bc_last, out, |l, bc, frames| l.fast_probe(now, bc, frames));
        }
    }

    /// The links whose [`TimerKind::LinkDead`] timer expired at `now`.
    pub fn dead(&self, now: Instant) -> Vec<(NodeAddr, u8)> {
        self.links_where(|e| e.link.dead_at().is_some_and(|d| now >= d))
    }

    /// The links whose [`TimerKind::LinkTick`] timer expired at `now`.
    pub fn due(&self, now: Instant) -> Vec<(NodeAddr, u8)> {
        self.links_where(|e| e.next_tick <= now)
    }

    fn links_where(&self, f: impl Fn(&Endpoint) -> bool) -> Vec<(NodeAddr, u8)> {
        self.map.iter().flat_map(|(a, p)| p.endpoints().filter(|(_, e)| f(e)).map(|(b, _)| (*a, b))).collect()
    }

    /// Calls `f` with each node's armed timers, in address order, each the
    /// earliest over the node's links: its [`TimerKind::FastProbe`]
    /// (packets unacknowledged), [`TimerKind::LinkDead`] (link up) and
    /// [`TimerKind::LinkTick`].
    pub fn visit_timers(&self, mut f: impl FnMut(TimerKind, Instant)) {
        for (&a, p) in &self.map {
            let min = |g: &dyn Fn(&Endpoint) -> Option<Instant>| p.ends.iter().flatten().filter_map(g).min();
            if let Some(t) = min(&|e| e.link.fast_probe_at()) {
                f(TimerKind::FastProbe(a), t);
            }
            if let Some(t) = min(&|e| e.link.dead_at()) {
                f(TimerKind::LinkDead(a), t);
            }
            if let Some(t) = min(&|e| Some(e.next_tick)) {
                f(TimerKind::LinkTick(a), t);
            }
        }
    }

    /// Takes every link on `bearer` (every link: `None`) that is not in
    /// RESET down with a stopping RESET.
    pub fn fail_all(&mut self, bearer: Option<u8>, out: &mut Outbox) {
        for p in self.map.values_mut() {
            for (b, slot) in p.ends.iter_mut().enumerate() {
                let Some(e) = slot.as_mut() else { continue };
                if bearer.is_none_or(|x| usize::from(x) == b) && e.link.state != LinkState::Reset {
                    let mut frames = Vec::new();
                    e.link.fail(&BcCtx::default(), &mut frames);
                    out.send_all(b as u8, e.link.peer_addr, e.media, frames);
                }
            }
        }
    }
}

#[cfg(test)]
impl Peer {
    /// The link on bearer 0.
    pub fn e0(&self) -> &Endpoint {
        self.end(0).expect("a link on bearer 0")
    }
    /// The link on bearer 0, to change.
    pub fn e0_mut(&mut self) -> &mut Endpoint {
        self.end_mut(0).expect("a link on bearer 0")
    }
}

impl Peers {
    /// Every node, in address order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.map.values_mut()
    }
}

#[cfg(test)]
impl Peers {
    /// Keeps only the nodes `f` accepts.
    pub fn retain(&mut self, f: impl FnMut(&NodeAddr, &mut Peer) -> bool) {
        self.map.retain(f);
    }
}

#[cfg(test)]
impl std::ops::Index<&NodeAddr> for Peers {
    type Output = Peer;
    fn index(&self, a: &NodeAddr) -> &Peer {
        &self.map[a]
    }
}

#[cfg(test)]
mod tests;
