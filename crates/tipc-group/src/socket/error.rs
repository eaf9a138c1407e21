//! Why the socket layer refused a call.

use thiserror::Error;
use tipc_wire::{Instance, MemberId, NodeAddr, PortId, ServiceRange, ServiceType};

/// Why a socket-layer call was refused. Nothing was sent or changed.
/// (Not `non_exhaustive`: the facade maps every variant, and a new one must
/// make that map fail to compile.)
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SocketError {
    /// Our address is not confirmed yet (the address trial is running).
    #[error("node address not yet confirmed")]
    NotReady,
    /// The port is not open.
    #[error("no such port {0}")]
    NoSuchPort(PortId),
    /// Service types 0–63 belong to TIPC itself; the kernel refuses binds and
    /// joins with them with EACCES (net/tipc/socket.c, `TIPC_RESERVED_TYPES`).
    #[error("service type {} is reserved: service types 0–63 are reserved for TIPC itself", .0.0)]
    ReservedType(ServiceType),
    /// A range whose lower bound is above its upper one (the kernel: EINVAL).
    #[error("bad service range {0}: lower bound above upper")]
    BadRange(ServiceRange),
    /// This node holds the most bindings a node may have (the kernel's
    /// `TIPC_MAX_PUBL`).
    #[error("publication limit of {0} bindings reached")]
    TooManyBindings(usize),
    /// This node holds the most subscriptions a node may have (the
    /// kernel's `TIPC_MAX_SUBSCR`).
    #[error("subscription limit of {0} reached")]
    TooManySubscriptions(usize),
    /// No link is up to the destination node.
    #[error("no link to node {0}")]
    NoLink(NodeAddr),
    /// The link to the node (`NodeAddr(0)`: one of the group's links, the
    /// broadcast link or a member's window) is congested; retry after an
    /// uncongested event.
    #[error("would block: link to {0} is congested")]
    WouldBlock(NodeAddr),
    /// The data exceeds [`tipc_wire::MAX_USER_MSG_SIZE`] (66 000 bytes).
    #[error("message of {0} bytes exceeds TIPC's 66000")]
    TooLarge(usize),
    /// No socket is bound to the service (anycast: that instance; multicast:
    /// anything in the range).
    #[error("no socket bound to service {stype}:{inst}")]
    NoService {
        /// The service type.
        stype: ServiceType,
        /// The instance (multicast: the range's lower bound).
        inst: Instance,
    },
    /// A group member's only binding is its membership (the kernel: EACCES).
    #[error("a group member socket cannot bind: its only binding is its membership")]
    InGroup,
    /// The socket has not joined a group.
    #[error("the socket is not a group member")]
    NotJoined,
    /// The socket already joined a group (one group per socket).
    #[error("the socket already joined a group")]
    AlreadyJoined,
    /// No such member in the socket's group.
    #[error("no such member {0}")]
    NoSuchMember(MemberId),
    /// No member of the socket's group holds the instance.
    #[error("no member holds instance {0}")]
    NoInstance(Instance),
    /// A group broadcast with no other member to reach (the kernel's
    /// `tipc_send_group_bcast`: EHOSTUNREACH).
    #[error("no other group member to reach")]
    NoMembers,
    /// A call that does not fit the socket's type: a connection call on a
    /// connectionless socket, or a datagram send or group join on a
    /// connection socket (the kernel: EOPNOTSUPP or EINVAL).
    #[error("the call does not fit the socket's type (connectionless or connection)")]
    WrongSocketType,
    /// A connect, listen or accept on a socket that is connecting or
    /// connected (the kernel: EISCONN).
    #[error("the socket is connecting or connected")]
    IsConnected,
    /// A connect on a listening socket (the kernel: EPIPE).
    #[error("the socket is listening")]
    IsListening,
    /// A connect on a socket with bindings (the kernel: EOPNOTSUPP).
    #[error("a socket with bindings cannot connect")]
    IsBound,
    /// An accept on a socket that is not listening (the kernel: EINVAL).
    #[error("the socket is not listening")]
    NotListening,
    /// A connection send on a socket that is not connected (the kernel:
    /// ENOTCONN).
    #[error("the socket is not connected")]
    NotConnected,
    /// A send on a connection that ended (the kernel: EPIPE).
    #[error("the connection has ended")]
    ConnClosed,
    /// The message could not be encoded (a header field out of range).
    #[error("encoding: {0}")]
    Encode(tipc_wire::WireError),
}
