//! The link layer's error type (API misuse and back-pressure; bad frames are
//! counted, never returned).

use thiserror::Error;
use tipc_wire::NodeAddr;

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
    /// The message is malformed or larger than 66 000 bytes of data.
    #[error("bad message: {0}")]
    BadMessage(String),
    /// The node has no address yet (address trial running).
    #[error("own address not yet confirmed")]
    NotReady,
}
