//! Group sockets on this node: joining and leaving, group sends, and moving
//! what each [`Group`] produces onto links (or straight to a local member)
//! and its events out (net/tipc/socket.c `tipc_sk_join`, `tipc_sk_leave`,
//! `tipc_send_group_*`).

use bytes::Bytes;
use tipc_wire::{Importance, MemberId, Msg, NodeAddr, PortId, Scope, ServiceRange};

use super::{Links, SocketError, SocketEvent, SocketLayer};
use crate::{DataMsgOrProto, Group, GroupError, GroupEvent, GroupOut, GroupSpec};

impl SocketLayer {
    /// Joins a group with local port `port`: binds `{type, instance}` in the
    /// group's scope and learns the members already bound.
    ///
    /// # Errors
    /// [`SocketError::NotReady`], [`SocketError::NoSuchPort`],
    /// [`SocketError::AlreadyJoined`], [`SocketError::ReservedType`], and
    /// the errors of [`SocketLayer::bind`].
    pub fn group_join(&mut self, port: PortId, spec: GroupSpec, links: &mut impl Links) -> Result<(), SocketError> {
        let own = self.own.ok_or(SocketError::NotReady)?;
        if !self.ports.contains(port) {
            return Err(SocketError::NoSuchPort(port));
        }
        if self.ports.is_conn(port) {
            return Err(SocketError::WrongSocketType);
        }
        if self.groups.contains_key(&port) {
            return Err(SocketError::AlreadyJoined);
        }
        if spec.stype.is_reserved() {
            return Err(SocketError::ReservedType(spec.stype));
        }
        let mut g = Group::new(spec, MemberId { node: own, port });
        for (member, instance) in self.existing_members(&spec, port) {
            g.member_published(member, instance);
        }
        self.groups.insert(port, g);
        let scope = if spec.scope == Scope::Node { Scope::Node } else { Scope::Cluster };
        self.publish(port, ServiceRange::single(spec.stype, spec.instance), scope, links)?;
        self.pump_groups(links);
        Ok(())
    }

    /// Sets the importance of the data messages group socket `port` sends
    /// (the socket's `TIPC_IMPORTANCE`, which the kernel copies into every
    /// message the group builds; LOW by default).
    ///
    /// # Errors
    /// [`SocketError::NotJoined`].
    pub fn group_set_importance(&mut self, port: PortId, importance: Importance) -> Result<(), SocketError> {
        self.groups.get_mut(&port).ok_or(SocketError::NotJoined)?.set_importance(importance);
        Ok(())
    }

    /// Leaves the group of `port`: LEAVE to every member, then withdraws the binding.
    ///
    /// # Errors
    /// [`SocketError::NotJoined`].
    pub fn group_leave(&mut self, port: PortId, links: &mut impl Links) -> Result<(), SocketError> {
        let mut g = self.groups.remove(&port).ok_or(SocketError::NotJoined)?;
        g.leave();
        while let Some(o) = g.poll_out() {
            self.group_out(port, o, links);
        }
        let spec = *g.spec();
        self.unbind(port, ServiceRange::single(spec.stype, spec.instance), links);
        Ok(())
    }

    /// The application of `port` read a group message of `len` bytes from
    /// `from`: its window may reopen.
    pub fn group_consumed(&mut self, port: PortId, from: MemberId, len: usize, links: &mut impl Links) {
        if let Some(g) = self.groups.get_mut(&port) {
            g.consumed(from, len);
        }
        self.pump_groups(links);
    }

    fn group_targets_congested(&self, port: PortId, links: &impl Links) -> bool {
        let Some(g) = self.groups.get(&port) else { return false };
        if self.outbox.all_clear(links) {
            return false;
        }
        let own = self.own();
        g.members().any(|(m, _)| m.node != own && self.outbox.congested(m.node, links)) || self.outbox.bcast_busy()
    }

    /// A send in the group of `port` (see [`SocketLayer::send`]): `op`
    /// hands the data to the group.
    pub(super) fn group_send(
        &mut self,
        port: PortId,
        data: Bytes,
        links: &mut impl Links,
        op: impl FnOnce(&mut Group, Bytes) -> Result<(), GroupError>,
    ) -> Result<(), SocketError> {
        Self::check_size(&data)?;
        if self.group_targets_congested(port, links) {
            self.outbox.flush(self.now, links);
            if self.group_targets_congested(port, links) {
                return Err(SocketError::WouldBlock(NodeAddr(0)));
            }
        }
        let g = self.groups.get_mut(&port).ok_or(SocketError::NotJoined)?;
        let len = data.len();
        let r = op(g, data);
        self.pump_groups(links);
        r.map_err(|e| match e {
            GroupError::WouldBlock => {
                tracing::debug!(port = port.0, "group send waits: a member's window or the broadcast acknowledgements");
                SocketError::WouldBlock(NodeAddr(0))
            }
            GroupError::NoSuchMember(m) => SocketError::NoSuchMember(m),
            GroupError::NoInstance(i) => SocketError::NoInstance(tipc_wire::Instance(i)),
            GroupError::NoMembers => SocketError::NoMembers,
            GroupError::TooLarge => SocketError::TooLarge(len),
        })
    }

    /// Carries out one output of a group; true when it was delivered here,
    /// to a local member, whose group may have output of its own now.
    fn group_out(&mut self, port: PortId, o: GroupOut, links: &mut impl Links) -> bool {
        let own = self.own();
        match o {
            GroupOut::To { member, msg } if member.node == own => {
                match msg {
                    DataMsgOrProto::Data(d) => self.deliver_data(d, links),
                    DataMsgOrProto::Proto(p) => {
                        self.deliver_group_proto(own, p);
                        self.pump_groups(links);
                    }
                }
                true
            }
            GroupOut::To { member, msg } => {
                let b = match msg {
                    DataMsgOrProto::Data(d) => Msg::Data(d).to_bytes(),
                    DataMsgOrProto::Proto(p) => Msg::GroupProto(p).to_bytes(),
                };
                if let Ok(b) = b {
                    self.outbox.send_keep(self.now, member.node, b, links);
                }
                false
            }
            GroupOut::Multi { nodes, local, replicast, msg } => {
                if local {
                    let mut l = msg.clone();
                    l.dest_node = own;
                    self.deliver_group_multi(l, Some(port));
                }
                self.multicast_out(msg, &nodes, replicast, links);
                local
            }
        }
    }

    /// Moves group output onto links and group events out, until the groups
    /// have nothing more: one more round only after a delivery to a local
    /// member (which may make more); output sent to other nodes and events
    /// make none.
    pub(super) fn pump_groups(&mut self, links: &mut impl Links) {
        let mut work = std::mem::take(&mut self.group_work);
        loop {
            for (p, g) in self.groups.iter_mut() {
                while let Some(o) = g.poll_out() {
                    work.push((*p, o));
                }
                // events go out in the order the groups raised them
                while let Some(e) = g.poll_event() {
                    self.events.push_back(match e {
                        GroupEvent::Unblocked => SocketEvent::Uncongested(NodeAddr(0)),
                        event => SocketEvent::Group { port: *p, event },
                    });
                }
            }
            let mut again = false;
            for (p, o) in work.drain(..) {
                again |= self.group_out(p, o, links);
            }
            if !again {
                break;
            }
        }
        self.group_work = work;
    }
}
