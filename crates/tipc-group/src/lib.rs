//! # tipc-group — ports, names and communication groups (sans-IO)
//!
//! The kernel's `socket.c`, `name_table.c`, `name_distr.c` and `group.c` as
//! plain data structures and state machines that fill output queues instead
//! of sending: [`SocketLayer`] (one node's ports, bindings, sends, group
//! sockets and delivery, on top of any [`Links`]), [`NameTable`] (bindings,
//! anycast round robin, multicast sets), [`NameDistr`] (bulk and sequenced
//! single updates with the kernel's receive ordering) and [`Group`] (one
//! joined group socket: member state machine, JOINED/LEFT events, windows in
//! 1 KiB blocks with ADV / ACK / RECLAIM / REMIT, and broadcast ordering)
//! and [`topology::Topology`] (subscriptions to the name table: the
//! kernel's topology service).
#![forbid(unsafe_code)]

mod group;
mod name_distr;
mod name_table;
pub mod socket;
pub mod topology;

pub use group::*;
pub use name_distr::{DistrStats, MAX_WAITING, NameDistr, NameUpdate};
pub use name_table::{MAX_PUBL_PER_NODE, NameTable, Publication, Refused};
pub use socket::{
    Accepted, CONN_ACK_RATE, CONN_MSG_WIN, CONN_PROBE_INTERVAL, CONN_RCV_LIMIT, CONN_WIN_ADV, CONN_WIN_INIT, ConnEnd,
    ConnEvent, ConnectTo, Dest, LISTEN_BACKLOG, LinkRefusal, Links, McastMethod, MemberStats, NodeInput, PortMessage,
    SendOpts, SocketError, SocketEvent, SocketInfo, SocketLayer, SocketStats,
};
