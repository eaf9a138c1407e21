//! The facade's error type.

use thiserror::Error;
use tipc_wire::{NodeAddr, PortId};

/// Errors of the public API.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Our address is not confirmed yet (the 1 s address trial is running).
    #[error("node address not yet confirmed")]
    NotReady,
    /// The destination node has no link up.
    #[error("no link to node {0}")]
    NoLink(NodeAddr),
    /// The link is congested; nothing was sent (from `try_` calls).
    #[error("would block: link to {0} is congested")]
    WouldBlock(NodeAddr),
    /// A blocking call gave up after its timeout; nothing was sent.
    #[error("timed out")]
    Timeout,
    /// The port does not exist (closed).
    #[error("no such port {0}")]
    NoSuchPort(PortId),
    /// The message exceeds 66 000 bytes.
    #[error("message of {0} bytes exceeds TIPC's 66000")]
    TooLarge(usize),
    /// The stack thread has stopped.
    #[error("the stack has stopped")]
    StackStopped,
    /// Encoding failed.
    #[error("wire: {0}")]
    Wire(String),
    /// The bearer failed.
    #[error(transparent)]
    Bearer(#[from] tipc_bearer_eth::BearerError),
    /// A configuration problem.
    #[error("configuration: {0}")]
    Config(String),
    /// Link-layer refusal.
    #[error("link: {0}")]
    Link(String),
}

impl From<tipc_link::LinkError> for Error {
    fn from(e: tipc_link::LinkError) -> Self {
        match e {
            tipc_link::LinkError::NoLink(n) => Error::NoLink(n),
            tipc_link::LinkError::Congested(n) => Error::WouldBlock(n),
            tipc_link::LinkError::NotReady => Error::NotReady,
            other => Error::Link(other.to_string()),
        }
    }
}
