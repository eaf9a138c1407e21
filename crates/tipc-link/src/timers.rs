//! Every timer of the link layer in one table, keyed by kind.
//!
//! The parts keep their own deadlines: discovery its trial and request
//! times, each link its supervision and probes, the broadcast link its
//! probe. This module names them ([`TimerKind`]) and goes through them
//! together ([`visit`]): that is the table, of which
//! [`crate::LinkLayer::poll_timeout`] is the earliest row and
//! [`crate::LinkLayer::next_timer`] the earliest row of the kinds a caller
//! asks for. [`crate::LinkLayer::handle_timeout`] serves expired timers
//! kind by kind, in the order of [`TimerKind`]'s variants.
//!
//! The table is not stored: each row is read from the part that owns the
//! deadline when asked, so it cannot fall out of step with the parts. A
//! driver asks after every call (the simulator for every node at every
//! step), so the walk is one plain pass.

use tipc_wire::{Instant, NodeAddr};

use tipc_crypto::Crypto;

use crate::bcast::BcSend;
use crate::discovery::Discovery;
use crate::node::Peers;

/// What a deadline of the link layer is for.
///
/// The variants are listed in the order in which
/// [`crate::LinkLayer::handle_timeout`] serves them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// The address trial: the next DSC_TRIAL broadcast (every 125 ms) or
    /// the end of the trial, whichever comes first (net/tipc/discover.c).
    AddressTrial,
    /// The next discovery request: after 125 ms, doubling up to 1 s while
    /// no link is up and up to 60 s once one is (net/tipc/discover.c,
    /// `tipc_disc_timeout`).
    Discovery,
    /// A probe on the link to this node: packets are unacknowledged and
    /// nothing moved for [`crate::FAST_PROBE`], so a lost tail is found
    /// before the next supervision tick.
    FastProbe(NodeAddr),
    /// A probe to each receiver of the broadcast link that has not
    /// acknowledged its last packet, after [`crate::FAST_PROBE`] without
    /// progress.
    BroadcastProbe,
    /// The link to this node is declared down: one tolerance after the node
    /// was last heard (net/tipc/link.c, `tipc_link_timeout`).
    LinkDead(NodeAddr),
    /// The supervision tick of the link to this node, every
    /// min(tolerance / 4, 500 ms): RESET or ACTIVATE while the link comes
    /// up, STATE messages and probes once it is up (net/tipc/node.c
    /// `tipc_node_timeout`, net/tipc/link.c `tipc_link_timeout`).
    LinkTick(NodeAddr),
    /// Key-state work while keys are set: switching to a new transmit
    /// key, freeing old receive keys, key messages due, rekeying
    /// (net/tipc/crypto.c `tipc_crypto_timeout`; [`tipc_crypto::crypto::TICK`]).
    Crypto,
}

impl TimerKind {
    /// Whether this is a fast probe ([`TimerKind::FastProbe`] or
    /// [`TimerKind::BroadcastProbe`]): a deadline that every packet sent
    /// moves, which a driver may serve on its next turn rather than wake
    /// for.
    pub fn is_fast_probe(self) -> bool {
        matches!(self, TimerKind::FastProbe(_) | TimerKind::BroadcastProbe)
    }
}

/// The table: calls `f` with every armed timer of the parts and its
/// deadline, in this order: discovery's ([`TimerKind::AddressTrial`] or
/// [`TimerKind::Discovery`]), [`TimerKind::BroadcastProbe`], then for each
/// node in address order its [`TimerKind::FastProbe`],
/// [`TimerKind::LinkDead`] and [`TimerKind::LinkTick`].
pub(crate) fn visit(
    disc: &Discovery,
    peers: &Peers,
    bcs: &BcSend,
    crypto: &Crypto,
    mut f: impl FnMut(TimerKind, Instant),
) {
    let (kind, at) = disc.timer();
    f(kind, at);
    if let Some((kind, at)) = bcs.probe_timer() {
        f(kind, at);
    }
    peers.visit_timers(&mut f);
    if let Some(at) = crypto.poll_timeout() {
        f(TimerKind::Crypto, at);
    }
}

/// The earliest row of the table whose kind `include` accepts; of several
/// equally early, the first.
pub(crate) fn earliest(
    disc: &Discovery,
    peers: &Peers,
    bcs: &BcSend,
    crypto: &Crypto,
    mut include: impl FnMut(TimerKind) -> bool,
) -> Option<(TimerKind, Instant)> {
    let mut best: Option<(TimerKind, Instant)> = None;
    visit(disc, peers, bcs, crypto, |kind, at| {
        if best.is_none_or(|(_, b)| at < b) && include(kind) {
            best = Some((kind, at));
        }
    });
    best
}

#[cfg(test)]
mod tests;
