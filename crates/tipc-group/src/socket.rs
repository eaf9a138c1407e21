//! The socket layer of one node: ports, bindings, plain and group sends,
//! group sockets and delivery to ports — the kernel's `socket.c` with the
//! glue it keeps between the name table (`name_table.c`, `name_distr.c`)
//! and communication groups (`group.c`), as a sans-IO state machine.
//!
//! [`SocketLayer`] sits on the node (link) layer through two typed edges:
//! it is told what happens below as [`NodeInput`]s (address confirmed, node
//! up or down, a link uncongested, a message delivered), and it sends
//! through the [`Links`] trait, which the wiring implements on the link
//! layer (or, in tests, on a perfect in-memory link). What it has for the
//! application comes out of [`SocketLayer::poll_event`] as [`SocketEvent`]s.
//!
//! Its parts, each in a file named after the concept:
//! - `ports` — the port table, opening and closing sockets;
//! - `bindings` — our publications, binding and unbinding, and the name
//!   distribution they drive;
//! - `send` — the send destinations ([`Dest`]) and plain sends;
//! - `mcast` — how a multicast travels ([`McastMethod`], the kernel's
//!   replicast-or-broadcast rule);
//! - `outbox` — the per-node queues that keep order behind a congested link;
//! - `groups` — group sockets: join, leave, group sends, and moving what the
//!   groups produce onto links and into events;
//! - `conn` — connection sockets (SEQPACKET, STREAM): listen, accept,
//!   connect, connection data with its flow control, probing, teardown;
//! - `delivery` — messages arriving for ports and groups, and NO_PORT
//!   rejection of those nobody takes.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tipc_wire::{Instant, NodeAddr, PortId, ServiceRange};

use crate::topology::{SubId, SubscribeError, Subscription, Topology, TopologyEvent};
use crate::{Group, GroupEvent, GroupOut, NameDistr, NameTable};

mod bindings;
mod conn;
mod delivery;
mod error;
mod groups;
mod mcast;
mod outbox;
mod ports;
mod send;
#[cfg(test)]
mod tests;

pub use conn::{
    Accepted, CONN_ACK_RATE, CONN_MSG_WIN, CONN_PROBE_INTERVAL, CONN_RCV_LIMIT, CONN_WIN_ADV, CONN_WIN_INIT, ConnEnd,
    ConnEvent, ConnectTo, LISTEN_BACKLOG,
};
pub use error::SocketError;
pub use mcast::{METHOD_EXPIRE, McastMethod, REPLICAST_RATIO};
pub use outbox::{LinkRefusal, Links};
pub use send::{Dest, SendOpts};

/// A message delivered to a port (a socket that is not a group member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMessage {
    /// The receiving port.
    pub port: PortId,
    /// Sender's node.
    pub from_node: NodeAddr,
    /// Sender's port.
    pub from_port: PortId,
    /// The service it was sent to (named and multicast messages).
    pub dest: Option<ServiceRange>,
    /// The data.
    pub data: Bytes,
    /// Error code, when the message came back undeliverable.
    pub err: tipc_wire::ErrorCode,
}

/// What happened below the socket layer, as it needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeInput {
    /// Our address is confirmed: the node-state binding `{0, addr}` is made,
    /// as the kernel does when it finalises its address (net/tipc/net.c).
    AddressConfirmed(NodeAddr),
    /// The first link to a node came up: its link-state binding
    /// `{2, node}` is made (node scope), and our cluster bindings go to it
    /// in bulk (net/tipc/name_distr.c, `tipc_named_node_up`).
    NodeUp(NodeAddr),
    /// The last link to a node went down: its link-state binding goes, its
    /// bindings are purged and its members leave every group.
    NodeDown(NodeAddr),
    /// The link to a node accepts messages again: queued ones go out.
    Uncongested(NodeAddr),
    /// A message arrived from `from` (data, NAME_DISTRIBUTOR or
    /// GROUP_PROTOCOL; other users are ignored).
    Delivered {
        /// The neighbour it came from.
        from: NodeAddr,
        /// The whole message, header included.
        msg: Bytes,
    },
}

/// What the socket layer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketEvent {
    /// Data for a port.
    Message(PortMessage),
    /// Something for a group socket.
    Group {
        /// The socket.
        port: PortId,
        /// What happened.
        event: GroupEvent,
    },
    /// A link or group window opened: blocked senders may retry
    /// (`NodeAddr(0)`: a group window or the broadcast link).
    Uncongested(NodeAddr),
    /// An event for a subscription to the name table.
    Topology(TopologyEvent),
    /// Something for a connection socket (listening, connecting or
    /// connected).
    Conn {
        /// The socket.
        port: PortId,
        /// What happened.
        event: ConnEvent,
    },
}

/// One group member as a local group socket sees it (for statistics).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MemberStats {
    /// The local socket.
    pub socket: PortId,
    /// The group (its service type).
    pub group: tipc_wire::ServiceType,
    /// The member.
    pub member: tipc_wire::MemberId,
    /// Its instance.
    pub instance: u32,
    /// Its state.
    pub state: crate::MemberState,
    /// Blocks we may still send it.
    pub window: u32,
    /// Blocks we granted it.
    pub advertised: u16,
    /// Its messages delivered to us and not yet read.
    pub queued: usize,
}

/// One socket of this node (for statistics: `tipc socket list`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SocketInfo {
    /// Its port.
    pub port: PortId,
    /// A connection socket (SEQPACKET or STREAM), else connectionless
    /// (RDM, or a group member).
    pub connection: bool,
    /// A listening connection socket.
    pub listening: bool,
    /// The peer of a connected socket.
    pub connected_to: Option<tipc_wire::MemberId>,
    /// The group it is a member of (its service type), if any.
    pub group_type: Option<tipc_wire::ServiceType>,
    /// Its member id (instance) in that group.
    pub group_instance: Option<tipc_wire::Instance>,
    /// Its bindings (a member's is its membership).
    pub bindings: Vec<crate::Publication>,
}

/// Counters of the socket layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SocketStats {
    /// Messages for ports that do not exist (dropped or returned).
    pub no_port: u64,
    /// Delivered messages that could not be parsed.
    pub malformed: u64,
    /// Name updates for nodes without a link, duplicate publications, or
    /// withdrawals of unknown bindings.
    pub bad_names: u64,
    /// Publications refused because their node already holds
    /// [`crate::MAX_PUBL_PER_NODE`] bindings.
    pub names_refused: u64,
    /// Group messages for sockets that are not members.
    pub not_member: u64,
    /// Multicasts sent on the broadcast link.
    pub bcast_sends: u64,
    /// Multicast copies sent by replicast.
    pub replicast_copies: u64,
    /// Data messages that reached port or group dispatch.
    pub data_in: u64,
    /// NAME_DISTRIBUTOR messages that reached name distribution.
    pub names_in: u64,
    /// GROUP_PROTOCOL messages that reached the group layer.
    pub group_proto_in: u64,
}

/// The socket layer of one node (see the module docs).
#[derive(Debug)]
pub struct SocketLayer {
    own: Option<NodeAddr>,
    now: Instant,
    ports: ports::Ports,
    names: NameTable,
    distr: NameDistr,
    bindings: bindings::Bindings,
    groups: BTreeMap<PortId, Group>,
    conns: conn::Conns,
    topology: Topology,
    outbox: outbox::Outbox,
    mcast: mcast::Methods,
    events: VecDeque<SocketEvent>,
    stats: SocketStats,
    /// Reused by `pump_groups` (no allocation per send).
    group_work: Vec<(PortId, GroupOut)>,
}

impl SocketLayer {
    /// A socket layer starting at `now`; `seed` scatters the port numbers it
    /// hands out (as the kernel starts from a random port).
    pub fn new(seed: u64, now: Instant) -> SocketLayer {
        SocketLayer {
            own: None,
            now,
            ports: ports::Ports::new(seed),
            names: NameTable::new(),
            distr: NameDistr::new(),
            bindings: bindings::Bindings::default(),
            groups: BTreeMap::new(),
            conns: conn::Conns::default(),
            topology: Topology::new(),
            outbox: outbox::Outbox::default(),
            mcast: mcast::Methods::default(),
            events: VecDeque::new(),
            stats: SocketStats::default(),
            group_work: Vec::new(),
        }
    }

    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.own
    }
    fn own(&self) -> NodeAddr {
        self.own.unwrap_or_default()
    }
    /// The name table.
    pub fn names(&self) -> &NameTable {
        &self.names
    }
    /// The group of a group socket.
    pub fn group(&self, port: PortId) -> Option<&Group> {
        self.groups.get(&port)
    }
    /// Every member of every local group socket, by socket then member.
    pub fn member_stats(&self) -> Vec<MemberStats> {
        self.groups
            .iter()
            .flat_map(|(p, g)| {
                let group = g.spec().stype;
                g.members().map(move |(id, m)| MemberStats {
                    socket: *p,
                    group,
                    member: *id,
                    instance: m.instance.0,
                    state: m.state,
                    window: m.window,
                    advertised: m.advertised,
                    queued: m.unread,
                })
            })
            .collect()
    }
    /// Every open socket of this node, by port (what `tipc socket list`
    /// shows): its kind, bindings, group and connection.
    pub fn socket_list(&self) -> Vec<SocketInfo> {
        let own = self.own.unwrap_or_default();
        self.ports
            .iter()
            .map(|(port, conn)| {
                let group = self.groups.get(&port).map(|g| (g.spec().stype, g.spec().instance));
                SocketInfo {
                    port,
                    connection: conn,
                    listening: self.conns.is_listening(port),
                    connected_to: self.conn_peer(port),
                    group_type: group.map(|g| g.0),
                    group_instance: group.map(|g| g.1),
                    bindings: self.names.iter().filter(|p| p.port == port && p.node == own).copied().collect(),
                }
            })
            .collect()
    }
    /// Counters.
    pub fn stats(&self) -> SocketStats {
        self.stats
    }
    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        self.events.pop_front()
    }
    /// Whether nothing waits in the per-node queues (everything handed to links).
    pub fn outbox_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Takes one input from the node layer. The groups' output is moved
    /// onto links by [`SocketLayer::flush`], which the caller runs after a
    /// batch of inputs (the order of events follows from it).
    pub fn handle(&mut self, now: Instant, input: NodeInput, links: &mut impl Links) {
        self.now = now;
        match input {
            NodeInput::AddressConfirmed(a) => {
                self.own = Some(a);
                let p = self.bindings.add_node_state(a, &mut self.names);
                self.publication_added(&p, links);
            }
            NodeInput::NodeUp(n) => self.node_up(n, links),
            NodeInput::NodeDown(n) => self.node_down(n, links),
            NodeInput::Uncongested(_) => self.outbox.flush(now, links),
            NodeInput::Delivered { from, msg } => self.deliver(from, msg, links),
        }
    }

    /// When [`SocketLayer::handle_timeout`] is next due: the earliest
    /// connection probe or subscription timeout.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conns.next_probe(), self.topology.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Serves the connection probes and subscription timeouts due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, links: &mut impl Links) {
        self.now = now;
        self.conn_timeout(now, links);
        let events = &mut self.events;
        self.topology.handle_timeout(now, |e| events.push_back(SocketEvent::Topology(e)));
    }

    /// Subscribes to the name table (the topology service): what exists now
    /// is reported at once, then every change the filter asks for, as
    /// [`SocketEvent::Topology`] events carrying the returned id.
    ///
    /// # Errors
    /// [`SocketError::BadRange`] (lower above upper),
    /// [`SocketError::TooManySubscriptions`] (the node holds
    /// [`crate::topology::MAX_SUBSCR`]).
    pub fn subscribe(&mut self, now: Instant, s: Subscription) -> Result<SubId, SocketError> {
        let events = &mut self.events;
        self.topology.subscribe(now, s, &self.names, |e| events.push_back(SocketEvent::Topology(e))).map_err(
            |e| match e {
                SubscribeError::BadRange(r) => SocketError::BadRange(r),
                SubscribeError::TooMany(n) => SocketError::TooManySubscriptions(n),
            },
        )
    }

    /// Ends subscription `id` without an event; false if it was not active
    /// (cancelled, or ended by its timeout).
    pub fn unsubscribe(&mut self, id: SubId) -> bool {
        self.topology.cancel(id)
    }

    /// Whether `port` is a listening socket.
    pub fn is_listening(&self, port: PortId) -> bool {
        self.conns.is_listening(port)
    }

    /// Sends what waits in the per-node queues as far as links take it, and
    /// moves group output onto links and group events out.
    pub fn flush(&mut self, now: Instant, links: &mut impl Links) {
        self.now = now;
        if !self.outbox.is_empty() {
            self.outbox.flush(now, links);
        }
        self.pump_groups(links);
    }

    fn node_down(&mut self, addr: NodeAddr, links: &mut impl Links) {
        self.outbox.forget(addr);
        self.distr.node_down(addr);
        // the link's binding goes first, then the node's, as the kernel
        // reports them
        let ls = self.link_state(addr);
        if let Some(p) = self.names.remove(ls.range, ls.node, ls.port, ls.key) {
            self.publication_removed(&p, true, links);
        }
        // one at a time, so each withdrawal is reported against the table
        // as it is then
        for p in self.names.of_node(addr) {
            self.names.remove(p.range, p.node, p.port, p.key);
            self.publication_removed(&p, true, links);
        }
        for g in self.groups.values_mut() {
            g.node_down(addr);
        }
        self.conns_node_down(addr);
    }
}
