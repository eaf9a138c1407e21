//! The bearer's error type.

use thiserror::Error;

/// What can go wrong opening or using a bearer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No interface of that name in this network namespace.
    #[error("interface {0:?} not found (in this network namespace)")]
    NoSuchInterface(String),
    /// The interface exists but is administratively down.
    #[error("interface {0:?} is down (ip link set {0} up)")]
    InterfaceDown(String),
    /// The interface MTU is below what TIPC needs.
    #[error("interface {name:?} has MTU {mtu}; TIPC needs at least {min}")]
    MtuTooSmall {
        /// Interface name.
        name: String,
        /// Its MTU.
        mtu: usize,
        /// The minimum (100 bytes: the largest header plus an internal header).
        min: usize,
    },
    /// Opening a raw packet socket was refused.
    #[error("no permission to open a raw packet socket: run as root or `setcap cap_net_raw+ep` on the binary")]
    PermissionDenied,
    /// The transmit queue is full (from `try_send`); nothing was dropped.
    #[error("transmit queue full")]
    WouldBlock,
    /// Another thread is reading the socket at the moment (from
    /// [`crate::RxPoller::recv`]); it hands on what it reads.
    #[error("another thread is reading the socket")]
    Busy,
    /// The bearer was shut down.
    #[error("bearer is shut down")]
    Closed,
    /// A frame larger than the interface MTU.
    #[error("frame of {len} bytes exceeds the MTU {mtu}")]
    TooLarge {
        /// TIPC message length.
        len: usize,
        /// Interface MTU.
        mtu: usize,
    },
    /// A UDP bearer configuration the kernel would refuse too.
    #[error("bad UDP bearer configuration: {0}")]
    BadUdpConfig(String),
    /// A frame for a neighbour this bearer's medium cannot address (an
    /// Ethernet address on UDP, or the reverse).
    #[error("{0:?} is not reachable on this bearer's medium")]
    Unreachable(tipc_wire::TxDest),
    /// Any other system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl BearerError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> BearerError {
        move |source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(libc::EPERM) {
                BearerError::PermissionDenied
            } else {
                BearerError::Io { context, source }
            }
        }
    }
}
