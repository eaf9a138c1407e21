//! What the link layer hands to its driver.

use std::collections::VecDeque;

use bytes::Bytes;
use tipc_wire::{MacAddr, NodeAddr, NodeId};

/// One frame to put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination MAC, or broadcast.
    pub dst: MacAddr,
    /// The TIPC message.
    pub msg: Bytes,
}

/// Something the upper layers or the application must know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Our address is confirmed (trial over).
    AddressConfirmed(NodeAddr),
    /// The first link to a node came up.
    NodeUp {
        /// Its address.
        addr: NodeAddr,
        /// Its identity.
        id: NodeId,
        /// Its capabilities.
        caps: u16,
    },
    /// The last link to a node went down.
    NodeDown {
        /// Its address.
        addr: NodeAddr,
    },
    /// A complete message for the upper layers (data, names, groups,
    /// connection management), in link order.
    Deliver {
        /// The neighbour it came from.
        from: NodeAddr,
        /// Whether it came over the broadcast link.
        bcast: bool,
        /// The message (header and payload).
        msg: Bytes,
    },
    /// A link's backlog drained below its limits: blocked senders may retry.
    Uncongested {
        /// The node.
        node: NodeAddr,
    },
    /// Another node uses our address or our identity.
    Conflict {
        /// What was seen.
        what: String,
        /// The other node's MAC.
        mac: MacAddr,
    },
}

/// The frames and events the layer's parts produce, kept in order until
/// the driver drains them ([`crate::LinkLayer::poll_transmit`],
/// [`crate::LinkLayer::poll_event`]).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Frames to send, oldest first.
    pub tx: VecDeque<Transmit>,
    /// Events to report, oldest first.
    pub events: VecDeque<LinkEvent>,
}

impl Outbox {
    /// Queues `msg` for the neighbour with MAC `dst` (or broadcast).
    pub fn send(&mut self, dst: MacAddr, msg: Bytes) {
        self.tx.push_back(Transmit { dst, msg });
    }
    /// Queues an event.
    pub fn event(&mut self, e: LinkEvent) {
        self.events.push_back(e);
    }
}
