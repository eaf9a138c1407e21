//! What the link layer hands to its driver.

use std::collections::VecDeque;

use bytes::Bytes;
pub use tipc_wire::TxDest;
use tipc_wire::{MediaAddr, NodeAddr, NodeId};

/// One frame to put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Our bearer it goes out on (0–2, in the order bearers were enabled).
    pub bearer: u8,
    /// Where it goes.
    pub dst: TxDest,
    /// The TIPC message (with keys set, the encrypted frame: ehdr,
    /// ciphertext, tag).
    pub msg: Bytes,
    /// The peer node when the frame goes on a link to it (encrypted as
    /// "destined", D = 1); `None` for discovery and the broadcast link.
    pub node: Option<NodeAddr>,
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
    /// A conflict of addresses, identities or clusters seen on the segment.
    Conflict(Conflict),
}

/// A conflict seen on the segment, with the media address (and identity, where the
/// frame carries one) of the node behind it. The link layer resolves what
/// the kernel resolves (net/tipc/discover.c `tipc_disc_rcv`, net/tipc/node.c
/// `tipc_node_try_addr` and `tipc_node_check_dest`) and reports every case,
/// each also counted in [`crate::LayerStats::conflicts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// The node at `media` holds the address our trial proposed: the trial
    /// starts over at `suggested` (DSC_TRIAL_FAIL received).
    AddressTaken {
        /// The address we proposed.
        addr: NodeAddr,
        /// The address we try now.
        suggested: NodeAddr,
        /// The node that refused it.
        media: MediaAddr,
    },
    /// A node's trial proposed an address that we or a peer hold: it was
    /// told to try `suggested` (DSC_TRIAL_FAIL sent). `same_identity`: the
    /// node has our own identity (two nodes configured alike; they link
    /// once the newcomer has moved, as in the kernel).
    TrialRefused {
        /// The address it proposed.
        proposed: NodeAddr,
        /// The address it was told to try.
        suggested: NodeAddr,
        /// Its identity.
        id: NodeId,
        /// Its media address.
        media: MediaAddr,
        /// Whether `id` is our own identity.
        same_identity: bool,
    },
    /// A node past its trial uses our address (two fixed addresses, or one
    /// that never heard our refusal): no link to it (the kernel's
    /// "Duplicate … seen" alert).
    DuplicateAddress {
        /// Our address.
        addr: NodeAddr,
        /// Its identity.
        id: NodeId,
        /// Its media address.
        media: MediaAddr,
    },
    /// An identity we know at one address appears at another: not taken.
    IdentityElsewhere {
        /// The identity.
        id: NodeId,
        /// Where we know it.
        known: NodeAddr,
        /// Where it appears now.
        addr: NodeAddr,
        /// The media address it appears from.
        media: MediaAddr,
    },
    /// An address we know for one identity is claimed by another: ignored.
    AddressClaimed {
        /// The address.
        addr: NodeAddr,
        /// The identity we know there.
        known: NodeId,
        /// The identity claiming it.
        id: NodeId,
        /// The claimant's media address.
        media: MediaAddr,
    },
    /// A node whose link is up is heard from a second media address: ignored.
    SecondAddress {
        /// The node.
        addr: NodeAddr,
        /// The second media address.
        media: MediaAddr,
    },
    /// Discovery from a node of another cluster (reported once per media address):
    /// ignored, as by the kernel.
    OtherCluster {
        /// Its cluster (network) id.
        net_id: u32,
        /// Its identity, when the frame carries one.
        id: Option<NodeId>,
        /// Its media address.
        media: MediaAddr,
    },
    /// Our own discovery came back to us (a reflecting switch or a loop;
    /// reported once): ignored, as by the kernel.
    OwnFrameReflected {
        /// Our media address.
        media: MediaAddr,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::AddressTaken { addr, suggested, media } => {
                write!(f, "address {addr} is taken (the node at {media} holds it); trying {suggested}")
            }
            Conflict::TrialRefused { proposed, suggested, id, media, same_identity: true } => write!(
                f,
                "a node at {media} with our identity {id} tried address {proposed}; \
                 one address per node: told to try {suggested}"
            ),
            Conflict::TrialRefused { proposed, suggested, id, media, .. } => {
                write!(f, "node {id} at {media} tried address {proposed}, which is in use; told to try {suggested}")
            }
            Conflict::DuplicateAddress { addr, id, media } => {
                write!(f, "node {id} at {media} uses our address {addr}: no link (one address per node)")
            }
            Conflict::IdentityElsewhere { id, known, addr, media } => {
                write!(f, "identity {id}, known at {known}, appears at a second address {addr} from {media}: ignored")
            }
            Conflict::AddressClaimed { addr, known, id, media } => {
                write!(f, "address {addr} of node {known} is claimed by node {id} at {media}: ignored")
            }
            Conflict::SecondAddress { addr, media } => {
                write!(f, "node {addr} is heard at a second media address {media}: ignored")
            }
            Conflict::OtherCluster { net_id, id, media } => match id {
                Some(id) => write!(f, "node {id} at {media} is in cluster {net_id}, not ours: ignored"),
                None => write!(f, "the node at {media} is in cluster {net_id}, not ours: ignored"),
            },
            Conflict::OwnFrameReflected { media } => {
                write!(f, "our own discovery came back to us ({media}): a loop or reflecting switch; ignored")
            }
        }
    }
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
    /// Queues `msg` for `dst` on `bearer`.
    pub fn send(&mut self, bearer: u8, dst: TxDest, msg: Bytes) {
        self.tx.push_back(Transmit { bearer, dst, msg, node: None });
    }
    /// Queues each of `frames`, in order, on the link to `node` at `media`
    /// on `bearer`.
    pub fn send_all(&mut self, bearer: u8, node: NodeAddr, media: MediaAddr, frames: impl IntoIterator<Item = Bytes>) {
        for msg in frames {
            self.tx.push_back(Transmit { bearer, dst: TxDest::Unicast(media), msg, node: Some(node) });
        }
    }
    /// Queues an event.
    pub fn event(&mut self, e: LinkEvent) {
        self.events.push_back(e);
    }
}
