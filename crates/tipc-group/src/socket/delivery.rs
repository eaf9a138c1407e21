//! Messages arriving at this node's sockets: data to ports and groups, name
//! updates to name distribution, group protocol to groups; and NO_PORT /
//! NO_NAME rejection of returnable data nobody takes (net/tipc/socket.c
//! `tipc_sk_rcv`, `tipc_sk_mcast_rcv`; net/tipc/msg.c `tipc_msg_reverse`).

use std::collections::BTreeSet;

use bytes::Bytes;
use tipc_wire::{DataMsg, DataType, ErrorCode, GroupProtoMsg, MemberId, Msg, NodeAddr, PortId, Scope, ServiceRange};

use super::{Links, PortMessage, SocketEvent, SocketLayer};

/// How much of a rejected message's data goes back with it (bytes).
const REJECT_KEEP: usize = 1024;

impl SocketLayer {
    /// A message the link layer delivered from neighbour `from`.
    pub(super) fn deliver(&mut self, from: NodeAddr, msg: Bytes, links: &mut impl Links) {
        match Msg::parse(msg) {
            Ok(Msg::Data(m)) => {
                self.stats.data_in += 1;
                self.deliver_data(m, links);
            }
            Ok(Msg::NameDistr(n)) => self.receive_names(n, links),
            Ok(Msg::GroupProto(p)) => {
                self.stats.group_proto_in += 1;
                self.deliver_group_proto(from, p);
                self.pump_groups(links);
            }
            Ok(Msg::ConnMgr(c)) => self.deliver_conn_mgr(c, links),
            Ok(_) => {}
            Err(_) => self.stats.malformed += 1,
        }
    }

    pub(super) fn deliver_group_proto(&mut self, from: NodeAddr, p: GroupProtoMsg) {
        // members send these straight over the link to each other: one
        // claiming another origin than the neighbour that sent it is forged
        if p.hdr.orig_node != from {
            self.stats.not_member += 1;
            return;
        }
        let sender = MemberId { node: p.hdr.orig_node, port: p.orig_port };
        match self.groups.get_mut(&p.dest_port) {
            Some(g) => g.handle_proto(sender, &p),
            None => self.stats.not_member += 1,
        }
    }

    /// A group broadcast or multicast arriving at this node: every local
    /// member socket of that group but `skip` (the sender) gets it.
    pub(super) fn deliver_group_multi(&mut self, m: DataMsg, skip: Option<PortId>) {
        let sender = MemberId { node: m.origin(), port: m.orig_port };
        let scope_node = m.scope == Scope::Node;
        let ports: Vec<PortId> = self
            .groups
            .iter()
            .filter(|(p, g)| {
                Some(**p) != skip && g.spec().stype == m.name_type && (g.spec().scope == Scope::Node) == scope_node
            })
            .map(|(p, _)| *p)
            .collect();
        if ports.is_empty() {
            self.stats.not_member += 1;
        }
        for p in ports {
            if let Some(g) = self.groups.get_mut(&p) {
                g.handle_data(sender, m.clone());
            }
        }
    }

    /// Data for this node, from a neighbour or from ourselves (local sends).
    pub(super) fn deliver_data(&mut self, m: DataMsg, links: &mut impl Links) {
        match m.msg_type {
            DataType::GrpBcast | DataType::GrpMcast => self.deliver_group_multi(m, None),
            DataType::GrpUcast => {
                let sender = MemberId { node: m.origin(), port: m.orig_port };
                match self.groups.get_mut(&m.dest_port) {
                    Some(g) if g.spec().stype == m.name_type => g.handle_data(sender, m),
                    _ => self.stats.not_member += 1,
                }
            }
            DataType::Mcast => self.deliver_mcast(m),
            _ => self.deliver_to_port(m, links),
        }
    }

    /// A multicast: every local plain socket bound in its range gets a copy
    /// (node-scope bindings only our own node's multicasts).
    fn deliver_mcast(&mut self, m: DataMsg) {
        let own = self.own();
        let range = ServiceRange { stype: m.name_type, lower: m.name_inst, upper: m.name_upper() };
        let local_origin = m.origin() == own;
        let ports: BTreeSet<PortId> = self
            .names
            .of_type(range.stype)
            .filter(|p| p.node == own && p.range.overlaps(&range) && (local_origin || p.scope != Scope::Node))
            .map(|p| p.port)
            .collect();
        for port in ports {
            if self.groups.contains_key(&port) {
                continue;
            }
            self.events.push_back(SocketEvent::Message(PortMessage {
                port,
                from_node: m.origin(),
                from_port: m.orig_port,
                dest: Some(range),
                data: m.payload.clone(),
                err: m.err,
            }));
        }
    }

    /// Direct or named data (or a returned message) for one port.
    fn deliver_to_port(&mut self, mut m: DataMsg, links: &mut impl Links) {
        let dest = (m.msg_type == DataType::Named).then(|| ServiceRange::single(m.name_type, m.name_inst));
        let mut port = m.dest_port;
        if !self.ports.contains(port) && m.msg_type == DataType::Named && m.err == ErrorCode::Ok {
            // secondary lookup: the socket went away, the name may live on
            let own = self.own();
            if let Some(alt) = self.names.anycast(m.name_type, m.name_inst, own).filter(|a| a.node == own) {
                port = alt.port;
            }
        }
        if port != m.dest_port && self.ports.contains(port) {
            m.dest_port = port;
        }
        // connection sockets and connection messages have their own rules
        let Some(m) = self.deliver_conn(m, links) else { return };
        if self.ports.contains(port) && !self.groups.contains_key(&port) {
            self.events.push_back(SocketEvent::Message(PortMessage {
                port,
                from_node: m.origin(),
                from_port: m.orig_port,
                dest,
                data: m.payload,
                err: m.err,
            }));
        } else {
            self.stats.no_port += 1;
            let err = if m.msg_type == DataType::Named { ErrorCode::NoName } else { ErrorCode::NoPort };
            self.reject_with(m, err, links);
        }
    }

    /// Returns an undeliverable message to its sender with `err`, keeping
    /// the first [`REJECT_KEEP`] bytes of data; one marked droppable or
    /// already carrying an error is dropped instead (net/tipc/msg.c
    /// `tipc_msg_reverse`).
    pub(super) fn reject_with(&mut self, m: DataMsg, err: ErrorCode, links: &mut impl Links) {
        if m.flags.d || m.err != ErrorCode::Ok {
            return;
        }
        let Some(own) = self.own else { return };
        let back_to = m.origin();
        let mut r = m;
        r.err = err;
        std::mem::swap(&mut r.orig_port, &mut r.dest_port);
        r.dest_node = back_to;
        r.orig_node = own;
        r.prev_node = own;
        if r.hsize < tipc_wire::BASIC_H_SIZE {
            r.hsize = tipc_wire::BASIC_H_SIZE;
        }
        r.payload = r.payload.slice(..r.payload.len().min(REJECT_KEEP));
        if back_to == own {
            self.deliver_data(r, links);
        } else if let Ok(b) = Msg::Data(r).to_bytes() {
            self.outbox.send_keep(self.now, back_to, b, links);
        }
    }
}
