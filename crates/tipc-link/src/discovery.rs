//! The address trial and neighbour discovery on our bearer
//! (net/tipc/discover.c): our address and whether it is confirmed, the
//! trial and request timers with their back-off, the discovery messages,
//! and what a received one means for the nodes we know.

use bytes::Bytes;
use tipc_wire::{DiscoveryMsg, DiscoveryType, Duration, Flags, Instant, MediaAddr, Msg, NodeAddr, NodeId};

use crate::config::{AddrMode, BearerSettings, LinkConfig, MAX_BEARERS};
use crate::event::{Conflict, LinkEvent, Outbox, TxDest};
use crate::link::{Link, LinkState};
use crate::node::{MAX_LINKS_PER_NODE, MAX_PEERS, Peer, Peers};
use crate::stats::LayerStats;
use crate::timers::TimerKind;

/// DSC_TRIAL messages go out this often during the address trial.
pub(crate) const TRIAL_INTERVAL: Duration = Duration::from_millis(125);
/// The first interval between discovery requests, and the interval after
/// the last link went down.
pub(crate) const DISC_MIN: Duration = Duration::from_millis(125);
/// The longest interval between requests while no link is up.
pub(crate) const DISC_MAX_NO_LINK: Duration = Duration::from_millis(1000);
/// The longest interval between requests while a link is up.
pub(crate) const DISC_MAX_LINKED: Duration = Duration::from_millis(60_000);

/// A small seeded generator (SplitMix64) for signatures and sessions.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One enabled bearer: its settings and its discovery schedule (the
/// kernel's per-bearer `tipc_discoverer`).
#[derive(Debug)]
pub(crate) struct DiscBearer {
    /// The bearer's settings.
    pub settings: BearerSettings,
    /// When the next discovery request goes out on it, once confirmed.
    pub next: Instant,
    /// The interval after the next request.
    pub interval: Duration,
}

/// The address trial and discovery state of one node on its bearers.
#[derive(Debug)]
pub(crate) struct Discovery {
    /// The enabled bearers, by id.
    pub bearers: [Option<DiscBearer>; MAX_BEARERS],
    /// Draws the signature, the network hash and each new link's session.
    pub rng: Rng,
    /// Our node signature (a random number per incarnation).
    pub signature: u16,
    /// Our network hash, the start of address suggestions.
    pub net_hash: u32,
    /// Bytes new links keep free for encryption ([`Link::room`]).
    pub crypto_room: usize,
    /// Our address: proposed during the trial, then confirmed.
    pub addr: NodeAddr,
    /// When the trial ends, while it runs; `None` once the address is
    /// confirmed.
    pub trial_end: Option<Instant>,
    /// When the next DSC_TRIAL goes out, while the trial runs.
    pub next_trial: Instant,
    /// Media addresses of other clusters' nodes already reported (at most [`MAX_PEERS`]).
    pub reported_foreign: std::collections::BTreeSet<MediaAddr>,
    /// Whether a reflected frame of ours was reported.
    pub reported_reflection: bool,
}

/// Reports a conflict: an event, and the counter.
fn report(out: &mut Outbox, stats: &mut LayerStats, c: Conflict) {
    stats.conflicts += 1;
    out.event(LinkEvent::Conflict(c));
}

/// What a discovery message from a node we know at its address means,
/// by whether its signature and media address are the ones we know and whether its
/// link is up (net/tipc/node.c `tipc_node_check_dest`).
#[derive(Debug, PartialEq, Eq)]
enum Rediscovery {
    /// Same signature and media address, link up: nothing new.
    Unchanged,
    /// Same media address, new signature, link up: the node restarted and will reset
    /// the link itself; its new signature is noted.
    Restarted,
    /// Another media address while the link is up: a second node claims the address.
    SecondAddress,
    /// Same media address, link down: the node is there, so our RESETs hurry again;
    /// after a restart (new signature) its signature and capabilities are
    /// taken.
    Relink {
        /// Whether the signature is new.
        restarted: bool,
    },
    /// Another media address while the link is down: the node moved (or was
    /// replaced); its media address, signature and capabilities are taken and the
    /// link starts afresh.
    Moved,
}

impl Rediscovery {
    fn of(same_signature: bool, same_media: bool, link_up: bool) -> Rediscovery {
        match (link_up, same_media, same_signature) {
            (true, true, true) => Rediscovery::Unchanged,
            (true, true, false) => Rediscovery::Restarted,
            (true, false, _) => Rediscovery::SecondAddress,
            (false, true, same) => Rediscovery::Relink { restarted: !same },
            (false, false, _) => Rediscovery::Moved,
        }
    }
}

impl Discovery {
    /// The state of a node starting at `now`: with a hashed address the
    /// trial starts at once, a fixed address is confirmed from the start.
    pub fn new(cfg: &LinkConfig, now: Instant) -> Discovery {
        let mut rng = Rng(cfg.seed ^ u64::from(cfg.node_id.hash_addr().0));
        let signature = rng.next() as u16;
        let net_hash = rng.next() as u32;
        let (addr, trial_end) = match cfg.addr_mode {
            AddrMode::Hashed => (cfg.node_id.hash_addr(), Some(now + cfg.trial_period)),
            AddrMode::Fixed(a) => (a, None),
        };
        let first = DiscBearer { settings: cfg.first_bearer(), next: now, interval: DISC_MIN };
        Discovery {
            bearers: [Some(first), None, None],
            crypto_room: 0,
            rng,
            signature,
            net_hash,
            addr,
            trial_end,
            next_trial: now,
            reported_foreign: std::collections::BTreeSet::new(),
            reported_reflection: false,
        }
    }

    /// Whether the address is confirmed (the trial is over, or there was
    /// none).
    pub fn confirmed(&self) -> bool {
        self.trial_end.is_none()
    }

    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.confirmed().then_some(self.addr)
    }

    /// The table row of discovery: the [`TimerKind::AddressTrial`] timer
    /// (the next DSC_TRIAL or the end of the trial) while the trial runs,
    /// then the [`TimerKind::Discovery`] timer.
    pub fn timer(&self) -> (TimerKind, Instant) {
        match self.trial_end {
            None => {
                let next =
                    self.bearers.iter().flatten().map(|b| b.next).min().unwrap_or(self.next_trial + DISC_MAX_LINKED);
                (TimerKind::Discovery, next)
            }
            Some(end) => (TimerKind::AddressTrial, self.next_trial.min(end)),
        }
    }

    /// Serves the [`TimerKind::AddressTrial`] and [`TimerKind::Discovery`]
    /// timers if due: ends the trial or broadcasts the next DSC_TRIAL
    /// (every 125 ms); once confirmed, broadcasts a request and doubles the
    /// interval up to 1 s while no link is up, 60 s once one is.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        peers: &Peers,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) {
        if let Some(end) = self.trial_end {
            if now >= end {
                self.trial_end = None;
                for b in self.bearers.iter_mut().flatten() {
                    b.next = now;
                }
                out.event(LinkEvent::AddressConfirmed(self.addr));
            } else if now >= self.next_trial {
                for id in 0..MAX_BEARERS as u8 {
                    let Some(b) = self.bearer(id) else { continue };
                    let m = self.message(cfg, &b.settings.media, DiscoveryType::Trial, NodeAddr(0), NodeAddr(0));
                    stats.disc_tx += 1;
                    out.send(id, TxDest::Broadcast, m);
                }
                self.next_trial = now + TRIAL_INTERVAL;
            }
        }
        if !self.confirmed() {
            return;
        }
        for id in 0..MAX_BEARERS as u8 {
            let Some(b) = self.bearer(id) else { continue };
            if now < b.next {
                continue;
            }
            let m = self.message(cfg, &b.settings.media, DiscoveryType::Req, NodeAddr(0), NodeAddr(0));
            stats.disc_tx += 1;
            out.send(id, TxDest::Broadcast, m);
            let cap = if peers.any_link_up(Some(id)) { DISC_MAX_LINKED } else { DISC_MAX_NO_LINK };
            if let Some(b) = self.bearers[usize::from(id)].as_mut() {
                b.next = now + b.interval; // then doubling, as net/tipc/discover.c
                b.interval = (b.interval.mul(2)).min(cap);
            }
        }
    }

    /// The enabled bearer `id`.
    pub fn bearer(&self, id: u8) -> Option<&DiscBearer> {
        self.bearers.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// The last link on `bearer` went down (or the bearer is new):
    /// requests go out there again at the shortest interval, the next one
    /// within [`DISC_MIN`].
    pub fn speed_up(&mut self, now: Instant, bearer: u8) {
        if let Some(b) = self.bearers.get_mut(usize::from(bearer)).and_then(Option::as_mut) {
            b.interval = DISC_MIN;
            b.next = b.next.min(now + DISC_MIN);
        }
    }

    /// A discovery message of type `t` from us, for `dest`, suggesting
    /// `suggested` (DSC_TRIAL_FAIL only).
    fn message(
        &self,
        cfg: &LinkConfig,
        media: &MediaAddr,
        t: DiscoveryType,
        dest: NodeAddr,
        suggested: NodeAddr,
    ) -> Bytes {
        let m = DiscoveryMsg {
            msg_type: t,
            flags: Flags { non_seq: true, ..Flags::default() },
            capabilities: cfg.capabilities,
            signature: (self.signature & 0x7fff) | ((cfg.capabilities & 1) << 15),
            dest_domain: dest,
            prev_node: self.addr,
            net_id: cfg.net_id,
            media: *media,
            peer_net_hash: self.net_hash,
            suggested,
            node_id: Some(cfg.node_id),
        };
        Msg::Discovery(m).to_bytes().unwrap_or_default()
    }

    /// Handles a received discovery message (net/tipc/discover.c
    /// `tipc_disc_rcv`). Messages from another cluster, from our own media
    /// address or naming a broadcast or multicast one are foreign; a media
    /// address of another medium than our bearer's, or of an unknown type,
    /// is malformed.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        bearer: u8,
        peers: &mut Peers,
        d: DiscoveryMsg,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) {
        stats.disc_rx += 1;
        let media = d.media;
        let Some(own_media) = self.bearer(bearer).map(|b| b.settings.media) else {
            stats.foreign += 1;
            return;
        };
        if !same_medium(&media, &own_media) {
            stats.malformed += 1;
            return;
        }
        if is_group_address(&media) {
            stats.foreign += 1;
            return;
        }
        if media == own_media {
            stats.foreign += 1;
            if !self.reported_reflection {
                self.reported_reflection = true;
                report(out, stats, Conflict::OwnFrameReflected { media });
            }
            return;
        }
        if d.net_id != cfg.net_id {
            stats.foreign += 1;
            if self.reported_foreign.len() < MAX_PEERS && self.reported_foreign.insert(media) {
                report(out, stats, Conflict::OtherCluster { net_id: d.net_id, id: d.node_id, media });
            }
            return;
        }
        let heard = Heard {
            id: d.node_id.unwrap_or_else(|| NodeId::from_legacy_addr(d.prev_node)),
            bearer,
            own_media,
            media,
            d,
        };
        match heard.d.msg_type {
            DiscoveryType::Trial => self.answer_trial(cfg, peers, &heard, out, stats),
            DiscoveryType::TrialFail => self.take_trial_fail(now, cfg, &heard, out, stats),
            DiscoveryType::Req | DiscoveryType::Resp => self.neighbour(now, cfg, peers, &heard, out, stats),
            DiscoveryType::Unknown(_) => stats.malformed += 1,
        }
    }

    /// Another node's trial proposes an address: if we hold it (or try it)
    /// — whatever the node's identity, ours included — or know another
    /// identity there, it gets DSC_TRIAL_FAIL with an address to try: the
    /// one we know the identity at, or a free one (net/tipc/node.c
    /// `tipc_node_try_addr`: "even this node may be in conflict").
    fn answer_trial(&self, cfg: &LinkConfig, peers: &Peers, h: &Heard, out: &mut Outbox, stats: &mut LayerStats) {
        let proposed = h.d.prev_node;
        let clash_self = proposed == self.addr;
        let clash_peer = peers.get(&proposed).is_some_and(|p| p.id != h.id);
        if clash_self || clash_peer {
            let suggestion = peers.find_id(h.id).unwrap_or_else(|| self.suggest(proposed, peers));
            let m = self.message(cfg, &h.own_media, DiscoveryType::TrialFail, proposed, suggestion);
            stats.disc_tx += 1;
            out.send(h.bearer, TxDest::Unicast(h.media), m);
            let same_identity = h.id == cfg.node_id;
            report(
                out,
                stats,
                Conflict::TrialRefused { proposed, suggested: suggestion, id: h.id, media: h.media, same_identity },
            );
        }
    }

    /// DSC_TRIAL_FAIL for the address we are trying: the trial starts over
    /// with the suggested address. Ignored once confirmed, for another
    /// address, or without a suggestion.
    fn take_trial_fail(&mut self, now: Instant, cfg: &LinkConfig, h: &Heard, out: &mut Outbox, stats: &mut LayerStats) {
        let d = &h.d;
        if !self.confirmed() && d.dest_domain == self.addr && d.suggested.0 != 0 {
            self.addr = d.suggested;
            self.trial_end = Some(now + cfg.trial_period);
            self.next_trial = now;
            report(out, stats, Conflict::AddressTaken { addr: d.dest_domain, suggested: d.suggested, media: h.media });
        }
    }

    /// A request or response from a neighbour: a new node is taken (a link
    /// in RESET), a known one checked against what we know; a request that
    /// created or changed something is answered.
    fn neighbour(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        peers: &mut Peers,
        h: &Heard,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) {
        if !self.confirmed() {
            return;
        }
        let (addr, media) = (h.d.prev_node, h.media);
        if addr == self.addr || addr.0 == 0 {
            report(out, stats, Conflict::DuplicateAddress { addr, id: h.id, media });
            return;
        }
        if h.d.dest_domain.0 != 0 && h.d.dest_domain != self.addr {
            stats.foreign += 1;
            return;
        }
        let respond = match peers.get_mut(&addr) {
            Some(p) => self.rediscovered(now, cfg, p, h, out, stats),
            None => self.admit(now, cfg, peers, h, out, stats),
        };
        if respond && h.d.msg_type == DiscoveryType::Req {
            let m = self.message(cfg, &h.own_media, DiscoveryType::Resp, addr, NodeAddr(0));
            stats.disc_tx += 1;
            out.send(h.bearer, TxDest::Unicast(media), m);
        }
    }

    /// A node we do not know: refused if its identity is known at another
    /// address, or if the table is full of linked nodes; otherwise it gets
    /// a link in RESET with a fresh session. True if it was taken.
    fn admit(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        peers: &mut Peers,
        h: &Heard,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) -> bool {
        let (addr, media, d) = (h.d.prev_node, h.media, &h.d);
        if let Some(known) = peers.find_id(h.id) {
            report(out, stats, Conflict::IdentityElsewhere { id: h.id, known, addr, media });
            return false;
        }
        if peers.len() >= MAX_PEERS && !peers.evict_one(stats) {
            stats.peers_refused += 1;
            return false;
        }
        let Some(link) = self.new_link(cfg, h) else { return false };
        peers.insert(addr, Peer::new(addr, h.id, h.bearer, media, d.capabilities, d.signature, link, now));
        true
    }

    /// A link in RESET with a fresh session to the node `h` heard from, on
    /// the bearer it was heard on, with that bearer's settings.
    fn new_link(&mut self, cfg: &LinkConfig, h: &Heard) -> Option<Link> {
        let b = self.bearer(h.bearer)?.settings.clone();
        let session = self.rng.next() as u16;
        let mut link = Link::new(
            self.addr,
            h.d.prev_node,
            h.d.capabilities,
            cfg.capabilities,
            &b.name,
            b.mtu,
            b.tolerance(),
            b.window,
            session,
        );
        link.set_bearer(h.bearer, b.priority);
        link.room = self.crypto_room;
        Some(link)
    }

    /// A node we know at its address: a conflict if the identity differs;
    /// otherwise it was heard, and what else follows depends on
    /// [`Rediscovery`]. True if the message deserves a response.
    fn rediscovered(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        p: &mut Peer,
        h: &Heard,
        out: &mut Outbox,
        stats: &mut LayerStats,
    ) -> bool {
        let (addr, media, d) = (h.d.prev_node, h.media, &h.d);
        if p.id != h.id {
            report(out, stats, Conflict::AddressClaimed { addr, known: p.id, id: h.id, media });
            return false;
        }
        p.heard = now;
        if p.end(h.bearer).is_none() {
            // the node on another bearer of ours: a parallel link, at most
            // two per node (net/tipc/node.c tipc_node_check_dest)
            if p.link_count() >= MAX_LINKS_PER_NODE {
                stats.links_refused += 1;
                return false;
            }
            let Some(link) = self.new_link(cfg, h) else { return false };
            p.add_end(h.bearer, media, link, now);
            return true;
        }
        let (same_sig, any_up) = (p.signature == d.signature, p.any_link_up());
        let Some(e) = p.end(h.bearer) else { return false };
        let seen = Rediscovery::of(same_sig, e.media == media, e.link.is_up());
        match seen {
            Rediscovery::Unchanged => false,
            Rediscovery::Restarted => {
                p.signature = d.signature;
                false
            }
            Rediscovery::SecondAddress => {
                report(out, stats, Conflict::SecondAddress { addr, media });
                false
            }
            Rediscovery::Relink { restarted } => {
                let Some(e) = p.end_mut(h.bearer) else { return false };
                e.link.hasten_reset();
                if restarted && !any_up {
                    e.link.peer_caps = d.capabilities;
                    p.signature = d.signature;
                    p.caps = d.capabilities;
                }
                true
            }
            Rediscovery::Moved => {
                let Some(e) = p.end_mut(h.bearer) else { return false };
                e.media = media;
                e.link.peer_caps = d.capabilities;
                if e.link.state != LinkState::Reset && e.link.state != LinkState::FailingOver {
                    e.link.reset();
                }
                e.next_tick = now;
                if !any_up {
                    p.signature = d.signature;
                    p.caps = d.capabilities;
                }
                true
            }
        }
    }

    /// An address to suggest instead of `proposed`: from our network hash
    /// mixed with it, the first that is not 0, ours or a known node's.
    pub fn suggest(&self, proposed: NodeAddr, peers: &Peers) -> NodeAddr {
        let mut s = proposed.0 ^ self.net_hash;
        loop {
            if s != 0 && s != self.addr.0 && !peers.contains_key(&NodeAddr(s)) {
                return NodeAddr(s);
            }
            s = s.wrapping_add(1);
        }
    }
}

/// A received discovery message with the sender's identity (its own, or
/// the one its legacy address implies) and its media address.
struct Heard {
    id: NodeId,
    /// Our bearer it was heard on, and our media address there.
    bearer: u8,
    own_media: MediaAddr,
    media: MediaAddr,
    d: DiscoveryMsg,
}

/// Whether two media addresses are of the same medium (Ethernet, UDP over
/// IPv4, UDP over IPv6).
fn same_medium(a: &MediaAddr, b: &MediaAddr) -> bool {
    match (a, b) {
        (MediaAddr::Eth(_), MediaAddr::Eth(_)) => true,
        (MediaAddr::Udp(x), MediaAddr::Udp(y)) => x.is_ipv4() == y.is_ipv4(),
        _ => false,
    }
}

/// Whether a media address names a group rather than one node: the
/// Ethernet broadcast address, or a multicast IP address.
fn is_group_address(a: &MediaAddr) -> bool {
    match a {
        MediaAddr::Eth(m) => m.is_broadcast(),
        MediaAddr::Udp(x) => x.ip().is_multicast() || x.ip().is_unspecified(),
        MediaAddr::Other(_) => false,
    }
}

#[cfg(test)]
mod tests;
