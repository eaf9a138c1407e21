//! The peer nodes (net/tipc/node.c): per node, what discovery learnt of
//! it, its link, whether it is up, and our receive state for its broadcast
//! link; bringing a node up and down on what its link reports; and the
//! limits on how many nodes are kept.

use std::collections::BTreeMap;

use bytes::Bytes;
use tipc_wire::{Duration, Instant, LinkProtoType, MediaAddr, NodeAddr, NodeId, SeqNo};

use crate::bcast::BcRcv;
use crate::event::{LinkEvent, Outbox, TxDest};
use crate::link::{BcCtx, Link, LinkState, Outcome};
use crate::stats::{LayerStats, LinkStats};
use crate::timers::TimerKind;

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
    /// A fragment arrived out of place (a FIRST while another message was
    /// being reassembled, a later fragment without a FIRST, or a message
    /// past the largest size): a protocol error, counted as such.
    FragmentOutOfPlace,
}

/// A snapshot of one link for statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The peer's media address (its MAC, or its UDP address and port).
    pub peer_media: MediaAddr,
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

/// One peer node (the kernel's `struct tipc_node`).
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its identity.
    pub id: NodeId,
    /// The media address it announced in discovery.
    pub media: MediaAddr,
    /// Its capabilities.
    pub caps: u16,
    /// The signature of its current incarnation (from discovery).
    pub signature: u16,
    /// When it was last heard from (discovery or a frame from its media address).
    pub heard: Instant,
    /// Its link.
    pub link: Link,
    /// When the link's next supervision tick is due.
    pub next_tick: Instant,
    /// Whether the node is up (reported with [`LinkEvent::NodeUp`]).
    pub node_up: bool,
    /// Our receive state for its broadcast link.
    pub bc: BcRcv,
}

impl Peer {
    /// A node just discovered at `now`, with its link in RESET.
    pub fn new(id: NodeId, media: MediaAddr, caps: u16, signature: u16, link: Link, now: Instant) -> Peer {
        Peer { id, media, caps, signature, heard: now, link, next_tick: now, node_up: false, bc: BcRcv::default() }
    }

    /// Whether the node may be forgotten: its link is down and it is not up.
    pub fn is_down(&self) -> bool {
        !self.link.is_up() && !self.node_up
    }

    /// The broadcast facts a packet to the node carries, with `own_bc_last`
    /// our last sent broadcast sequence number.
    pub fn bc_ctx(&self, own_bc_last: SeqNo) -> BcCtx {
        self.bc.ctx(own_bc_last)
    }

    /// The link came up: a STATE, then `init` (the broadcast link's
    /// synchronisation) as the link's first packet, and the node is up.
    fn come_up(&mut self, addr: NodeAddr, init: Option<Bytes>, bc_last: SeqNo, out: &mut Outbox) {
        let bc = self.bc_ctx(bc_last);
        let mut frames = Vec::new();
        frames.push(self.link.build_proto(LinkProtoType::State, false, false, 0, false, &bc));
        if let Some(b) = init {
            let _ = self.link.send(b, &bc, &mut frames);
        }
        self.node_up = true;
        out.send_all(TxDest::Unicast(self.media), frames);
        out.event(LinkEvent::NodeUp { addr, id: self.id, caps: self.caps });
    }

    /// The link went down for `reason`: the node is down and its broadcast
    /// receive state starts over.
    ///
    /// Our link resets and says so with a stopping RESET, except when the
    /// peer reset a link of ours that was not up (its new session must
    /// live), or when our link is already in RESET and the peer is not
    /// stopping.
    fn go_down(&mut self, addr: NodeAddr, reason: DownReason, out: &mut Outbox) {
        let mut frames = Vec::new();
        if self.link.state == LinkState::Established || reason != DownReason::PeerReset {
            let bc = BcCtx::default();
            if self.link.state != LinkState::Reset || reason == DownReason::PeerStopping {
                self.link.fail(&bc, &mut frames);
            }
        }
        let was_up = std::mem::replace(&mut self.node_up, false);
        self.bc = BcRcv::default();
        out.send_all(TxDest::Unicast(self.media), frames);
        if was_up {
            out.event(LinkEvent::NodeDown { addr });
        }
    }

    /// The link's state; `own` is our identity (for the name).
    pub fn info(&self, own: &NodeId) -> LinkInfo {
        let peer_if = self.link.peer_if.as_deref().unwrap_or("unknown");
        LinkInfo {
            name: format!("{own}:{}-{}:{peer_if}", self.link.if_name, self.id),
            peer: self.link.peer_addr,
            peer_id: self.id,
            peer_media: self.media,
            state: self.link.state,
            mtu: self.link.mtu,
            window: self.link.window,
            tolerance: self.link.tolerance,
            queued: self.link.queued(),
            congested: self.link.is_congested(),
            stats: self.link.stats,
        }
    }
}

/// The known nodes, by address.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    map: BTreeMap<NodeAddr, Peer>,
    /// Reused for the packets one call into a link produces.
    scratch: Vec<Bytes>,
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
    /// Whether any node's link is up.
    pub fn any_link_up(&self) -> bool {
        self.map.values().any(|p| p.link.is_up())
    }
    /// Whether the node at `addr` is up.
    pub fn is_up(&self, addr: NodeAddr) -> bool {
        self.map.get(&addr).is_some_and(|p| p.node_up)
    }

    /// Forgets the longest-silent node whose link is down; false if every
    /// link is up.
    pub fn evict_one(&mut self, stats: &mut LayerStats) -> bool {
        let victim = self.map.values().filter(|p| p.is_down()).min_by_key(|p| p.heard).map(|p| p.link.peer_addr);
        let Some(a) = victim else { return false };
        self.map.remove(&a);
        stats.peers_forgotten += 1;
        true
    }

    /// Forgets the nodes that are down and were silent for [`PEER_EXPIRY`].
    pub fn expire(&mut self, now: Instant, stats: &mut LayerStats) {
        let stale: Vec<NodeAddr> = self
            .map
            .values()
            .filter(|p| p.is_down() && now.since(p.heard) >= PEER_EXPIRY)
            .map(|p| p.link.peer_addr)
            .collect();
        for a in stale {
            self.map.remove(&a);
            stats.peers_forgotten += 1;
        }
    }

    /// Runs `f` on the link to `peer` with the node's broadcast facts
    /// (`bc_last`: our last sent broadcast), sends what it produced to the
    /// node's media address and notes the broadcast ack that went out. None if the
    /// node is unknown.
    pub fn on_link<R>(
        &mut self,
        now: Instant,
        peer: NodeAddr,
        bc_last: SeqNo,
        out: &mut Outbox,
        f: impl FnOnce(&mut Link, &BcCtx, &mut Vec<Bytes>) -> R,
    ) -> Option<R> {
        let p = self.map.get_mut(&peer)?;
        let bc = p.bc_ctx(bc_last);
        let mut frames = std::mem::take(&mut self.scratch);
        p.link.set_now(now);
        let r = f(&mut p.link, &bc, &mut frames);
        if !frames.is_empty() {
            p.bc.acked_sent = bc.ack;
        }
        out.send_all(TxDest::Unicast(p.media), frames.drain(..));
        self.scratch = frames;
        Some(r)
    }

    /// Applies what a call into the link to `peer` reported: the node comes
    /// up (with `init`, the broadcast synchronisation, as its first packet;
    /// `bc_last` our last sent broadcast), goes down, or hears that its
    /// backlog drained. False if the node is unknown (nothing else must
    /// follow).
    pub fn apply(
        &mut self,
        peer: NodeAddr,
        oc: &Outcome,
        init: Option<Bytes>,
        bc_last: SeqNo,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) -> bool {
        if oc.up {
            let Some(p) = self.map.get_mut(&peer) else { return false };
            p.come_up(peer, init, bc_last, out);
        }
        if let Some(reason) = oc.down {
            if reason == DownReason::FragmentOutOfPlace {
                stats.proto_errors += 1;
            }
            let Some(p) = self.map.get_mut(&peer) else { return false };
            p.go_down(peer, reason, out);
        }
        if oc.uncongested {
            out.event(LinkEvent::Uncongested { node: peer });
        }
        true
    }

    /// Serves the due [`TimerKind::FastProbe`] timers: each probe carries
    /// the node's broadcast facts (`bc_last`: our last sent broadcast).
    pub fn fast_probes(&mut self, now: Instant, bc_last: SeqNo, out: &mut Outbox) {
        let due: Vec<NodeAddr> = self
            .map
            .iter()
            .filter(|(_, p)| p.link.fast_probe_at().is_some_and(|t| now >= t))
            .map(|(a, _)| *a)
            .collect();
        for a in due {
            self.on_link(now, a, bc_last, out, |l, bc, frames| l.fast_probe(now, bc, frames));
        }
    }

    /// The nodes whose [`TimerKind::LinkDead`] timer expired at `now`.
    pub fn dead(&self, now: Instant) -> Vec<NodeAddr> {
        self.map.values().filter(|p| p.link.dead_at().is_some_and(|d| now >= d)).map(|p| p.link.peer_addr).collect()
    }

    /// The nodes whose [`TimerKind::LinkTick`] timer expired at `now`.
    pub fn due(&self, now: Instant) -> Vec<NodeAddr> {
        self.map.values().filter(|p| p.next_tick <= now).map(|p| p.link.peer_addr).collect()
    }

    /// Calls `f` with each node's armed timers, in address order: its
    /// [`TimerKind::FastProbe`] (packets unacknowledged),
    /// [`TimerKind::LinkDead`] (link up) and [`TimerKind::LinkTick`].
    pub fn visit_timers(&self, mut f: impl FnMut(TimerKind, Instant)) {
        for (&a, p) in &self.map {
            if let Some(t) = p.link.fast_probe_at() {
                f(TimerKind::FastProbe(a), t);
            }
            if let Some(t) = p.link.dead_at() {
                f(TimerKind::LinkDead(a), t);
            }
            f(TimerKind::LinkTick(a), p.next_tick);
        }
    }

    /// Takes every link that is not in RESET down with a stopping RESET.
    pub fn fail_all(&mut self, out: &mut Outbox) {
        for p in self.map.values_mut() {
            if p.link.state != LinkState::Reset {
                let mut frames = Vec::new();
                p.link.fail(&BcCtx::default(), &mut frames);
                out.send_all(TxDest::Unicast(p.media), frames);
            }
        }
    }
}

#[cfg(test)]
impl Peers {
    /// Every node, in address order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.map.values_mut()
    }
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
