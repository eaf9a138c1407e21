//! The link layer's error type (API misuse and back-pressure; bad frames are
//! counted, never returned).

use bytes::Bytes;
use thiserror::Error;
use tipc_wire::{NodeAddr, WireError};

/// A message a link did not take, handed back with the reason: a sender
/// that keeps refused messages for later ([`crate::LinkLayer::offer`])
/// need not hold a second reference to each one it offers, which would
/// make the link copy every message it stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why it was not taken (nothing of it was queued).
    pub error: LinkError,
    /// The message, as offered.
    pub msg: Bytes,
}

/// Why a send was not accepted.
/// (Not `non_exhaustive`: the facade maps every variant, and a new one must
/// make that map fail to compile.)
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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
    /// [`crate::MAX_BEARERS`] bearers are enabled already.
    #[error("{} bearers are enabled already", crate::MAX_BEARERS)]
    TooManyBearers,
    /// No bearer with this id is enabled.
    #[error("no bearer {0} is enabled")]
    NoSuchBearer(u8),
}

/// Checks that a message handed to the layer has a possible length: at
/// least the smallest header, at most the largest message.
///
/// # Errors
///
/// [`LinkError::BadMessage`] with [`WireError::Truncated`] for a message
/// shorter than [`tipc_wire::MIN_H_SIZE`], with [`WireError::Overflow`] for
/// one longer than [`tipc_wire::MAX_MSG_SIZE`].
pub(crate) fn check_length(len: usize) -> Result<(), LinkError> {
    if len < tipc_wire::MIN_H_SIZE {
        return Err(LinkError::BadMessage(WireError::Truncated { need: tipc_wire::MIN_H_SIZE, have: len }));
    }
    if len > tipc_wire::MAX_MSG_SIZE {
        return Err(LinkError::BadMessage(WireError::Overflow { field: "message size", value: len as u64 }));
    }
    Ok(())
}
