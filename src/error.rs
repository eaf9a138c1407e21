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
    /// A message could not be encoded or was refused as malformed.
    #[error("wire: {0}")]
    Wire(#[from] tipc_wire::WireError),
    /// The bearer failed.
    #[error(transparent)]
    Bearer(#[from] tipc_bearer::BearerError),
    /// The control socket could not be opened at this path (taken by a
    /// live socket or another file, or not bindable).
    #[error("control socket {}: {source}", path.display())]
    ControlSocket {
        /// Where it was to be.
        path: std::path::PathBuf,
        /// Why it could not be.
        source: std::io::Error,
    },
    /// A socket's readiness descriptor could not be made (the process is
    /// out of file descriptors, for instance).
    #[error("readiness descriptor: {0}")]
    Readiness(std::io::Error),
    /// Three bearers (the most one node runs) are enabled already.
    #[error("{} bearers are enabled already", tipc_link::MAX_BEARERS)]
    TooManyBearers,
    /// The operating system's random generator failed (session keys are
    /// drawn from it).
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
    /// No bearer with this id (or name) is enabled.
    #[error("no bearer {0} is enabled")]
    NoSuchBearer(u8),
    /// No socket is bound to that service.
    #[error("no socket bound to service {0}:{1}")]
    NoService(u32, u32),
    /// The socket has not joined a group (closed groups: only members send).
    #[error("the socket is not a group member")]
    NotJoined,
    /// The socket already joined a group (one group per socket).
    #[error("the socket already joined a group")]
    AlreadyJoined,
    /// A group member socket cannot bind: its only binding is its
    /// membership (the kernel: EACCES).
    #[error("a group member socket cannot bind: its only binding is its membership")]
    InGroup,
    /// No such group member.
    #[error("no such member {0}")]
    NoSuchMember(tipc_wire::MemberId),
    /// This node already holds the most bindings a node may have
    /// ([`tipc_group::MAX_PUBL_PER_NODE`], as the kernel's `TIPC_MAX_PUBL`).
    #[error("publication limit of {0} bindings reached")]
    TooManyBindings(usize),
    /// The node holds the most subscriptions a node may have
    /// ([`tipc_group::topology::MAX_SUBSCR`], as the kernel's
    /// `TIPC_MAX_SUBSCR`; its topology server refuses more by closing the
    /// subscriber's connection).
    #[error("subscription limit of {0} reached")]
    TooManySubscriptions(usize),
    /// The subscription ended: its timeout passed and its last event, the
    /// timeout event, has been read.
    #[error("the subscription has ended")]
    SubscriptionEnded,
    /// A bind or group join named a reserved service type: types 0–63
    /// belong to TIPC itself (node state, topology service, …); the kernel
    /// refuses them with EACCES (net/tipc/socket.c, `TIPC_RESERVED_TYPES`).
    #[error("service type {0} is reserved: service types 0–63 are reserved for TIPC itself")]
    ReservedType(u32),
    /// A service range whose lower bound is above its upper one.
    #[error("bad service range {0}: lower bound above upper")]
    BadRange(tipc_wire::ServiceRange),
    /// A group broadcast with no other member to reach.
    #[error("no other group member to reach")]
    NoMembers,
    /// No member of the socket's group holds the instance.
    #[error("no group member holds instance {0}")]
    NoInstance(tipc_wire::Instance),
    /// A call that does not fit the socket's type (connectionless or
    /// connection).
    #[error("the call does not fit the socket's type (connectionless or connection)")]
    WrongSocketType,
    /// A connect, listen or accept on a socket that is connecting or
    /// connected.
    #[error("the socket is connecting or connected")]
    IsConnected,
    /// A connect on a listening socket.
    #[error("the socket is listening")]
    IsListening,
    /// A connect on a socket with bindings.
    #[error("a socket with bindings cannot connect")]
    IsBound,
    /// An accept on a socket that is not listening.
    #[error("the socket is not listening")]
    NotListening,
    /// A connection call on a socket that is not connected.
    #[error("the socket is not connected")]
    NotConnected,
    /// A send on a connection that ended.
    #[error("the connection has ended")]
    ConnClosed,
    /// The connect was refused: nobody listens at the destination, or the
    /// listener went away (the SYN came back with this error code).
    #[error("connection refused ({0})")]
    ConnRefused(tipc_wire::ErrorCode),
    /// The connection was reset: the peer socket closed or went away while
    /// data was still expected, its node was lost (`NO_NODE`), or a probe
    /// went unanswered (`OK`: no code on the wire).
    #[error("connection reset ({0})")]
    ConnReset(tipc_wire::ErrorCode),
    /// [`crate::StackBuilder::start`] without a bearer: an Ethernet
    /// interface ([`crate::StackBuilder::iface`]) or a UDP address
    /// ([`crate::StackBuilder::udp`]) is required.
    #[error("a bearer is required (StackBuilder::iface or StackBuilder::udp)")]
    NoInterface,
    /// The pcap file of [`crate::StackBuilder::pcap`] could not be created.
    #[error("pcap {}: {source}", path.display())]
    Pcap {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: tipc_wire::WireError,
    },
}

impl Error {
    /// The name of the errno Linux's AF_TIPC sockets give for the same
    /// refusal (net/tipc/socket.c), where there is one: `"EACCES"` for a
    /// reserved service type, `"EHOSTUNREACH"` for a service nobody binds,
    /// and so on. `None` for what only this stack can report (the address
    /// trial still running, the stack stopped, bearer and configuration
    /// errors). The examples print it after the message, as the kernel-side
    /// test client does, and the conformance table
    /// (tests/kernel_conformance.rs) checks each against a kernel node.
    pub fn errno(&self) -> Option<&'static str> {
        Some(match self {
            Error::NoLink(_)
            | Error::NoService(..)
            | Error::NoSuchMember(_)
            | Error::NoInstance(_)
            | Error::NoMembers => "EHOSTUNREACH",
            Error::WouldBlock(_) | Error::Timeout => "EAGAIN",
            Error::NoSuchPort(_) => "EBADF",
            Error::TooLarge(_) => "EMSGSIZE",
            Error::ReservedType(_) | Error::AlreadyJoined | Error::InGroup => "EACCES",
            Error::BadRange(_) | Error::NotJoined | Error::Wire(_) | Error::NotListening | Error::NoSuchBearer(_) => {
                "EINVAL"
            }
            Error::TooManyBearers => "ENOSPC",
            Error::IsConnected => "EISCONN",
            Error::IsListening | Error::ConnClosed => "EPIPE",
            Error::IsBound | Error::WrongSocketType => "EOPNOTSUPP",
            Error::NotConnected => "ENOTCONN",
            Error::ConnRefused(_) => "ECONNREFUSED",
            Error::ConnReset(_) => "ECONNRESET",
            Error::NotReady
            | Error::StackStopped
            | Error::Bearer(_)
            | Error::TooManyBindings(_)
            | Error::TooManySubscriptions(_)
            | Error::SubscriptionEnded
            | Error::NoInterface
            | Error::Entropy(_)
            | Error::Readiness(_)
            | Error::ControlSocket { .. }
            | Error::Pcap { .. } => return None,
        })
    }

    /// The message followed by the errno name in parentheses when there is
    /// one: `"service type 1 is reserved: … (EACCES)"`.
    pub fn with_errno(&self) -> String {
        match self.errno() {
            Some(n) => format!("{self} ({n})"),
            None => self.to_string(),
        }
    }
}

impl From<tipc_link::LinkError> for Error {
    fn from(e: tipc_link::LinkError) -> Self {
        match e {
            tipc_link::LinkError::NoLink(n) => Error::NoLink(n),
            tipc_link::LinkError::Congested(n) => Error::WouldBlock(n),
            tipc_link::LinkError::NotReady => Error::NotReady,
            tipc_link::LinkError::BadMessage(w) => Error::Wire(w),
            tipc_link::LinkError::TooManyBearers => Error::TooManyBearers,
            tipc_link::LinkError::NoSuchBearer(b) => Error::NoSuchBearer(b),
        }
    }
}

impl From<tipc_group::SocketError> for Error {
    fn from(e: tipc_group::SocketError) -> Self {
        use tipc_group::SocketError as S;
        match e {
            S::NotReady => Error::NotReady,
            S::NoSuchPort(p) => Error::NoSuchPort(p),
            S::ReservedType(t) => Error::ReservedType(t.0),
            S::BadRange(r) => Error::BadRange(r),
            S::TooManyBindings(n) => Error::TooManyBindings(n),
            S::TooManySubscriptions(n) => Error::TooManySubscriptions(n),
            S::NoLink(n) => Error::NoLink(n),
            S::WouldBlock(n) => Error::WouldBlock(n),
            S::TooLarge(n) => Error::TooLarge(n),
            S::NoService { stype, inst } => Error::NoService(stype.0, inst.0),
            S::InGroup => Error::InGroup,
            S::NotJoined => Error::NotJoined,
            S::AlreadyJoined => Error::AlreadyJoined,
            S::NoSuchMember(m) => Error::NoSuchMember(m),
            S::NoInstance(i) => Error::NoInstance(i),
            S::NoMembers => Error::NoMembers,
            S::Encode(w) => Error::Wire(w),
            S::WrongSocketType => Error::WrongSocketType,
            S::IsConnected => Error::IsConnected,
            S::IsListening => Error::IsListening,
            S::IsBound => Error::IsBound,
            S::NotListening => Error::NotListening,
            S::NotConnected => Error::NotConnected,
            S::ConnClosed => Error::ConnClosed,
        }
    }
}
