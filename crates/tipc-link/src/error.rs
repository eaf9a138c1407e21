//! The link layer's error type (API misuse and back-pressure; bad frames are
//! counted, never returned).

use thiserror::Error;
use tipc_wire::{NodeAddr, WireError};

/// Why a send was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// No link is up to that node.
    #[error("no link to node {0}")]
    NoLink(NodeAddr),
    /// The link's backlog for this importance is full; wait for
    /// [`crate::LinkEvent::Uncongested`] and retry. Nothing was queued.
    #[error("link to {0} is congested")]
    Congested(NodeAddr),
    /// The message is shorter than the smallest header
    /// ([`WireError::Truncated`]), longer than the largest message
    /// ([`WireError::Overflow`]), or cannot be fragmented (the fragmenter's
    /// error).
    #[error("bad message: {0}")]
    BadMessage(WireError),
    /// The node has no address yet (address trial running).
    #[error("own address not yet confirmed")]
    NotReady,
}
