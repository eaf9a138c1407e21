//! The edge to the link layer ([`Links`]) and the per-node queues that keep
//! messages in order behind a congested link: a congested link delays what
//! the socket layer sends on its own account (name updates, group protocol,
//! group data already admitted by its window), it never drops it.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tipc_wire::{Instant, NodeAddr};

/// Why a link did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// The link (or the broadcast link) is congested at this message's
    /// importance: nothing was queued; retry after
    /// [`super::NodeInput::Uncongested`].
    Congested,
    /// There is no link to the node (or the message was refused as
    /// malformed); it is dropped.
    Unreachable,
}

/// What the socket layer needs of the links below it. The node wiring
/// implements it on the link layer; tests implement it on an in-memory link.
pub trait Links {
    /// Whether a link to `node` is up.
    fn is_up(&self, node: NodeAddr) -> bool;
    /// The nodes with a link up, ascending.
    fn up_nodes(&self) -> Vec<NodeAddr>;
    /// How many nodes have a link up (what `up_nodes().len()` says,
    /// without building the list).
    fn up_count(&self) -> usize {
        self.up_nodes().len()
    }
    /// Whether the link to `node` refuses messages of low importance now.
    fn is_congested(&self, node: NodeAddr) -> bool;
    /// Whether any link may refuse messages now: false only when none
    /// does, so a sender that checks many nodes can skip them. The
    /// default, true, leaves it to [`Links::is_congested`] per node.
    fn any_congested(&self) -> bool {
        true
    }
    /// The largest packet (bytes, header included) the link to `node`
    /// carries unfragmented.
    fn max_pkt(&self, node: NodeAddr) -> usize;
    /// Hands an encoded message to the link to `node`.
    ///
    /// # Errors
    /// [`LinkRefusal::Congested`] (nothing taken) or
    /// [`LinkRefusal::Unreachable`], with the message handed back (a caller
    /// keeping it for a retry holds no second reference, which would make
    /// the link copy it).
    fn send(&mut self, now: Instant, node: NodeAddr, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)>;
    /// Hands an encoded message to the broadcast link.
    ///
    /// # Errors
    /// [`LinkRefusal::Congested`] (nothing taken) or
    /// [`LinkRefusal::Unreachable`] (no node to reach), with the message
    /// handed back.
    fn broadcast(&mut self, now: Instant, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)>;
    /// The capability bits `node` advertised in discovery (0 when unknown;
    /// net/tipc/node.h `TIPC_BLOCK_FLOWCTL` and the others).
    fn caps(&self, node: NodeAddr) -> u16;
}

/// Messages waiting for a congested link, per node, and for the broadcast link.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    nodes: BTreeMap<NodeAddr, VecDeque<Bytes>>,
    bcast: VecDeque<Bytes>,
}

impl Outbox {
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.bcast.is_empty()
    }
    /// Whether broadcasts wait.
    pub(super) fn bcast_busy(&self) -> bool {
        !self.bcast.is_empty()
    }
    /// Whether messages to `node` wait here or its link is congested.
    pub(super) fn congested(&self, node: NodeAddr, links: &impl Links) -> bool {
        self.waiting(node) || links.is_congested(node)
    }
    /// Whether nothing waits here and no link is congested: no node is
    /// [`Outbox::congested`] (a quick answer before a look at each).
    pub(super) fn all_clear(&self, links: &impl Links) -> bool {
        self.is_empty() && !links.any_congested()
    }
    /// Whether messages wait for the link to `node`.
    pub(super) fn waiting(&self, node: NodeAddr) -> bool {
        self.nodes.get(&node).is_some_and(|q| !q.is_empty())
    }
    /// Drops what waits for `node` (its last link went down).
    pub(super) fn forget(&mut self, node: NodeAddr) {
        self.nodes.remove(&node);
    }

    /// Sends `b` to `node`, behind anything already waiting for that link.
    pub(super) fn send_keep(&mut self, now: Instant, node: NodeAddr, b: Bytes, links: &mut impl Links) {
        let empty = self.nodes.get(&node).is_none_or(VecDeque::is_empty);
        let b = if empty {
            match links.send(now, node, b) {
                Ok(()) | Err((LinkRefusal::Unreachable, _)) => return,
                Err((LinkRefusal::Congested, b)) => b,
            }
        } else {
            b
        };
        self.nodes.entry(node).or_default().push_back(b);
    }

    /// Broadcasts `b`, behind any broadcast already waiting.
    pub(super) fn broadcast_keep(&mut self, now: Instant, b: Bytes, links: &mut impl Links) {
        if !self.bcast.is_empty() {
            self.bcast.push_back(b);
        } else if let Err((LinkRefusal::Congested, b)) = links.broadcast(now, b) {
            self.bcast.push_back(b);
        }
    }

    /// Hands waiting messages to links until each refuses again.
    pub(super) fn flush(&mut self, now: Instant, links: &mut impl Links) {
        let nodes: Vec<NodeAddr> = self.nodes.keys().copied().collect();
        for n in nodes {
            while let Some(b) = self.nodes.get_mut(&n).and_then(VecDeque::pop_front) {
                if let Err((LinkRefusal::Congested, b)) = links.send(now, n, b) {
                    if let Some(q) = self.nodes.get_mut(&n) {
                        q.push_front(b);
                    }
                    break;
                }
            }
            if self.nodes.get(&n).is_some_and(VecDeque::is_empty) {
                self.nodes.remove(&n);
            }
        }
        while let Some(b) = self.bcast.pop_front() {
            if let Err((LinkRefusal::Congested, b)) = links.broadcast(now, b) {
                self.bcast.push_front(b);
                break;
            }
        }
    }
}
