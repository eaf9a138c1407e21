//! Send destinations and plain (non-group) sends: to a socket, anycast to a
//! service instance, multicast to a service range (net/tipc/socket.c
//! `__tipc_sendmsg`, `tipc_sendmcast`).

use std::collections::BTreeSet;

use bytes::Bytes;
use tipc_wire::{
    DataMsg, DataType, Flags, Importance, Instance, Instant, MemberId, Msg, NodeAddr, PortId, Scope, ServiceRange,
    ServiceType,
};

use super::{LinkRefusal, Links, SocketError, SocketLayer};
use crate::{Group, Mode};

/// Where a message goes. The first three are for plain sockets, the other
/// four for a socket that joined a group (the kernel's address types
/// `TIPC_SOCKET_ADDR`, `TIPC_SERVICE_ADDR`, `TIPC_SERVICE_RANGE`, and the
/// group send modes of net/tipc/socket.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One socket; node 0 means ours.
    Socket {
        /// Its node.
        node: NodeAddr,
        /// Its port.
        port: PortId,
    },
    /// One socket bound to `inst` of `stype`, chosen round robin (anycast).
    Service {
        /// The service type.
        stype: ServiceType,
        /// The instance.
        inst: Instance,
    },
    /// Every socket bound in the range (multicast).
    Range(ServiceRange),
    /// Group unicast: one member.
    Member(MemberId),
    /// Group anycast: one member holding the instance, round robin.
    GroupAnycast(Instance),
    /// Group multicast: every member holding the instance.
    GroupMulticast(Instance),
    /// Group broadcast: every member.
    GroupBroadcast,
}

impl Dest {
    /// The group destination of a send in `mode`: member `to` for unicast
    /// (`None` without one), instance `inst` for anycast and multicast,
    /// neither for broadcast.
    pub fn group(mode: Mode, to: Option<MemberId>, inst: Instance) -> Option<Dest> {
        Some(match mode {
            Mode::Unicast => Dest::Member(to?),
            Mode::Anycast => Dest::GroupAnycast(inst),
            Mode::Multicast => Dest::GroupMulticast(inst),
            Mode::Broadcast => Dest::GroupBroadcast,
        })
    }
}

/// Per-message options of plain sends (group sends ignore them). The
/// default: LOW importance, not returnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOpts {
    /// The message's importance (the link's backlog limit it meets).
    pub importance: Importance,
    /// Whether an undeliverable message comes back with an error code
    /// (clears the header's dest-droppable bit). Multicasts never come back.
    pub returnable: bool,
}

impl Default for SendOpts {
    fn default() -> Self {
        SendOpts { importance: Importance::Low, returnable: false }
    }
}

impl SocketLayer {
    /// Sends `data` from local port `from` to `dest`.
    ///
    /// From a group member, the plain destinations are group sends, as in
    /// the kernel: a socket is that member (unicast), a service instance an
    /// anycast to the members holding it, a range a multicast to the members
    /// holding its lower bound.
    ///
    /// # Errors
    /// Plain destinations: [`SocketError::NotReady`],
    /// [`SocketError::NoSuchPort`], [`SocketError::TooLarge`],
    /// [`SocketError::BadRange`] (a range whose lower bound is above its
    /// upper), [`SocketError::NoService`] (nothing bound),
    /// [`SocketError::NoLink`], [`SocketError::WouldBlock`].
    /// Group destinations: [`SocketError::TooLarge`],
    /// [`SocketError::WouldBlock`], [`SocketError::NotJoined`],
    /// [`SocketError::NoSuchMember`], [`SocketError::NoInstance`].
    pub fn send(
        &mut self,
        now: Instant,
        from: PortId,
        dest: Dest,
        data: Bytes,
        opts: SendOpts,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        self.now = now;
        if self.ports.is_conn(from) {
            return Err(SocketError::WrongSocketType);
        }
        if let Dest::Range(r) = dest
            && r.lower > r.upper
        {
            return Err(SocketError::BadRange(r));
        }
        let node_or_own = |node: NodeAddr| if node.0 == 0 { self.own() } else { node };
        // a group member's plain destinations are group sends, as the
        // kernel's __tipc_sendmsg treats them (net/tipc/socket.c)
        let dest = match dest {
            _ if !self.groups.contains_key(&from) => dest,
            Dest::Socket { node, port } => Dest::Member(MemberId { node: node_or_own(node), port }),
            Dest::Service { inst, .. } => Dest::GroupAnycast(inst),
            Dest::Range(r) => Dest::GroupMulticast(r.lower),
            group => group,
        };
        match dest {
            Dest::Socket { node, port } => {
                self.begin_send(from, &data)?;
                let mut m = self.data_header(DataType::Direct, from, opts);
                m.payload = data;
                m.dest_node = node_or_own(node);
                m.dest_port = port;
                self.route_unicast(m, links)
            }
            Dest::Service { stype, inst } => {
                let own = self.begin_send(from, &data)?;
                let to = self.names.anycast(stype, inst, own).ok_or(SocketError::NoService { stype, inst })?;
                let mut m = self.data_header(DataType::Named, from, opts);
                m.scope = Scope::Cluster;
                m.payload = data;
                m.dest_node = to.node;
                m.dest_port = to.port;
                m.name_type = stype;
                m.name_inst = inst;
                self.route_unicast(m, links)
            }
            Dest::Range(range) => self.send_range(from, range, data, opts, links),
            Dest::Member(to) => self.group_send(from, data, links, |g, d| g.send_unicast(to, d)),
            Dest::GroupAnycast(inst) => self.group_send(from, data, links, |g, d| g.send_anycast(inst, d).map(|_| ())),
            Dest::GroupMulticast(inst) => self.group_send(from, data, links, |g, d| g.send_multicast(inst, d)),
            Dest::GroupBroadcast => self.group_send(from, data, links, Group::broadcast),
        }
    }

    /// Refuses data over [`tipc_wire::MAX_USER_MSG_SIZE`].
    pub(super) fn check_size(data: &Bytes) -> Result<(), SocketError> {
        if data.len() > tipc_wire::MAX_USER_MSG_SIZE {
            return Err(SocketError::TooLarge(data.len()));
        }
        Ok(())
    }

    /// Common checks of a plain send; returns our address.
    fn begin_send(&self, from: PortId, data: &Bytes) -> Result<NodeAddr, SocketError> {
        let own = self.own.ok_or(SocketError::NotReady)?;
        if !self.ports.contains(from) {
            return Err(SocketError::NoSuchPort(from));
        }
        Self::check_size(data)?;
        Ok(own)
    }

    /// A data message of type `t` from our port `from`: importance and
    /// dest-droppable bit from `opts`, our node as previous and originating
    /// node; the caller fills in the destination and data.
    pub(super) fn data_header(&self, t: DataType, from: PortId, opts: SendOpts) -> DataMsg {
        let own = self.own();
        let mut m = DataMsg::new(t, Bytes::new());
        m.importance = opts.importance;
        m.flags = Flags { d: !opts.returnable, ..Flags::default() };
        m.prev_node = own;
        m.orig_node = own;
        m.orig_port = from;
        m
    }

    /// Sends a unicast data message: delivered here when it is for our
    /// node, else handed to the link, or refused with
    /// [`SocketError::WouldBlock`] when it would have to wait.
    pub(super) fn route_unicast(&mut self, m: DataMsg, links: &mut impl Links) -> Result<(), SocketError> {
        self.unicast(m, false, links)
    }

    /// As [`SocketLayer::route_unicast`], but a message that would have
    /// to wait waits in the per-node queue behind earlier ones instead of
    /// being refused (a connection's ACK and close must not be lost).
    pub(super) fn route_unicast_keep(&mut self, m: DataMsg, links: &mut impl Links) -> Result<(), SocketError> {
        self.unicast(m, true, links)
    }

    fn unicast(&mut self, m: DataMsg, keep: bool, links: &mut impl Links) -> Result<(), SocketError> {
        let n = m.dest_node;
        if n == self.own() {
            self.deliver_data(m, links);
            return Ok(());
        }
        if !links.is_up(n) {
            return Err(SocketError::NoLink(n));
        }
        // behind messages already waiting for the link; otherwise the link
        // takes it unless the backlog of its own importance is full (a
        // CRITICAL message passes a LOW flood, as in the kernel's
        // tipc_link_xmit)
        if !keep && self.outbox.waiting(n) {
            return Err(SocketError::WouldBlock(n));
        }
        let b = Msg::Data(m).to_bytes().map_err(SocketError::Encode)?;
        if keep {
            self.outbox.send_keep(self.now, n, b, links);
            return Ok(());
        }
        match links.send(self.now, n, b) {
            Ok(()) => Ok(()),
            Err((LinkRefusal::Congested, _)) => Err(SocketError::WouldBlock(n)),
            Err((LinkRefusal::Unreachable, _)) => Err(SocketError::NoLink(n)),
        }
    }

    fn send_range(
        &mut self,
        from: PortId,
        range: ServiceRange,
        data: Bytes,
        opts: SendOpts,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        let own = self.begin_send(from, &data)?;
        let targets = self.names.mcast(range, own);
        if targets.is_empty() {
            return Err(SocketError::NoService { stype: range.stype, inst: range.lower });
        }
        let nodes: BTreeSet<NodeAddr> = targets.iter().map(|m| m.node).filter(|n| *n != own).collect();
        if !self.outbox.all_clear(links)
            && (nodes.iter().any(|n| self.outbox.congested(*n, links)) || self.outbox.bcast_busy())
        {
            return Err(SocketError::WouldBlock(NodeAddr(0)));
        }
        let mut m = self.data_header(DataType::Mcast, from, SendOpts { returnable: false, ..opts });
        m.scope = Scope::Cluster;
        m.payload = data;
        m.name_type = range.stype;
        m.name_inst = range.lower;
        m.set_name_upper(range.upper);
        if targets.iter().any(|t| t.node == own) {
            let mut l = m.clone();
            l.dest_node = own;
            self.deliver_data(l, links);
        }
        self.multicast_out(m, &nodes, false, links);
        Ok(())
    }
}
