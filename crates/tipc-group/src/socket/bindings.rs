//! Our bindings (publications) and the name distribution they drive:
//! binding and unbinding, the bulk of our bindings to a node that comes up,
//! name updates from other nodes, and the group glue that turns bindings of
//! a group's service type into members (net/tipc/socket.c `tipc_sk_publish`,
//! net/tipc/name_distr.c).

use std::collections::BTreeMap;

use tipc_wire::{
    Instance, MemberId, Msg, NameDistrMsg, NameDistrType, NodeAddr, PortId, PublItem, Scope, ServiceRange, ServiceType,
};

use super::{Links, SocketError, SocketEvent, SocketLayer};
use crate::{GroupSpec, NameTable, Publication, Refused};

/// Our own publications by key, and the next key to try.
#[derive(Debug)]
pub(super) struct Bindings {
    own: BTreeMap<u32, Publication>,
    next_key: u32,
}

impl Default for Bindings {
    fn default() -> Self {
        Bindings { own: BTreeMap::new(), next_key: 1 }
    }
}

impl Bindings {
    /// The node-state binding `{0, addr}` the kernel makes when it
    /// finalises its address.
    pub(super) fn add_node_state(&mut self, a: NodeAddr, names: &mut NameTable) -> Publication {
        let p = Publication {
            range: ServiceRange::single(ServiceType(0), Instance(a.0)),
            scope: Scope::Cluster,
            node: a,
            port: PortId(0),
            key: a.0,
        };
        self.own.insert(a.0, p);
        names.insert(p);
        p
    }

    /// Keys of `port`'s bindings (of `range` only, when given).
    pub(super) fn keys_of(&self, port: PortId, range: Option<ServiceRange>) -> Vec<u32> {
        self.own.iter().filter(|(_, q)| q.port == port && range.is_none_or(|r| q.range == r)).map(|(k, _)| *k).collect()
    }

    /// A key unique among our bindings (the node-state one included).
    fn new_key(&mut self, port: PortId) -> u32 {
        loop {
            let k = port.0.wrapping_add(self.next_key);
            self.next_key = self.next_key.wrapping_add(1);
            if !self.own.contains_key(&k) {
                return k;
            }
        }
    }
}

/// Whether publication `p` is visible to a group of scope `group_scope`:
/// node-scope groups see node-scope bindings, cluster groups the others.
/// (Node-scope bindings are only ever our own: name distribution carries
/// cluster scope alone.)
fn scope_matches(group_scope: Scope, p: &Publication) -> bool {
    if group_scope == Scope::Node { p.scope == Scope::Node } else { p.scope != Scope::Node }
}

/// Whether publication `p` makes a member of the group `spec` joined by
/// port `own_port`: its type, its scope, another socket.
fn makes_member(spec: &GroupSpec, own_port: PortId, p: &Publication) -> bool {
    spec.stype == p.range.stype && p.port != own_port && scope_matches(spec.scope, p)
}

impl SocketLayer {
    /// Binds `range` to local port `port` with `scope` (node; anything else
    /// is cluster). Cluster bindings go to every node with a link.
    ///
    /// # Errors
    /// [`SocketError::NoSuchPort`], [`SocketError::InGroup`] (a group
    /// member's only binding is its membership: the kernel's EACCES),
    /// [`SocketError::ReservedType`] (types 0–63, as the kernel's EACCES),
    /// [`SocketError::BadRange`] (lower above upper), [`SocketError::NotReady`]
    /// (no address yet), [`SocketError::TooManyBindings`] (the node holds
    /// [`crate::MAX_PUBL_PER_NODE`]).
    pub fn bind(
        &mut self,
        port: PortId,
        range: ServiceRange,
        scope: Scope,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        if self.groups.contains_key(&port) {
            return Err(SocketError::InGroup);
        }
        self.publish(port, range, scope, links)
    }

    /// Binds without the group-member check: a join's own binding.
    pub(super) fn publish(
        &mut self,
        port: PortId,
        range: ServiceRange,
        scope: Scope,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        if !self.ports.contains(port) {
            return Err(SocketError::NoSuchPort(port));
        }
        if range.stype.is_reserved() {
            return Err(SocketError::ReservedType(range.stype));
        }
        if range.lower > range.upper {
            return Err(SocketError::BadRange(range));
        }
        let own = self.own.ok_or(SocketError::NotReady)?;
        if self.names.count_of(own) >= crate::MAX_PUBL_PER_NODE {
            return Err(SocketError::TooManyBindings(crate::MAX_PUBL_PER_NODE));
        }
        let key = self.bindings.new_key(port);
        let scope = if scope == Scope::Node { Scope::Node } else { Scope::Cluster };
        let p = Publication { range, scope, node: own, port, key };
        self.bindings.own.insert(key, p);
        self.names.insert(p);
        if scope == Scope::Cluster {
            let m = self.distr.update(own, NameDistrType::Publication, p.item());
            self.distribute(m, links);
        }
        self.publication_added(&p, links);
        Ok(())
    }

    /// Withdraws every binding of `port` for `range` (none: nothing happens).
    pub fn unbind(&mut self, port: PortId, range: ServiceRange, links: &mut impl Links) {
        for k in self.bindings.keys_of(port, Some(range)) {
            self.withdraw_key(k, links);
        }
    }

    pub(super) fn withdraw_key(&mut self, key: u32, links: &mut impl Links) {
        let Some(p) = self.bindings.own.remove(&key) else { return };
        self.names.remove(p.range, p.node, p.port, p.key);
        if p.scope == Scope::Cluster {
            let m = self.distr.update(p.node, NameDistrType::Withdrawal, p.item());
            self.distribute(m, links);
        }
        self.publication_removed(&p, false, links);
    }

    fn distribute(&mut self, m: NameDistrMsg, links: &mut impl Links) {
        for n in links.up_nodes() {
            let mut c = m.clone();
            c.hdr.dest_node = n;
            if let Ok(b) = Msg::NameDistr(c).to_bytes() {
                self.outbox.send_keep(self.now, n, b, links);
            }
        }
    }

    /// The link-state binding of our link to `peer`: `{2, peer, peer}` in
    /// node scope, never distributed, with the link's id as its port (0:
    /// bearer 0 at both ends) and our address as its node — what the
    /// kernel publishes when a link comes up (net/tipc/node.c
    /// `tipc_node_link_up`, `TIPC_LINK_STATE`), so link subscriptions see
    /// it.
    pub(super) fn link_state(&self, peer: NodeAddr) -> Publication {
        Publication {
            range: ServiceRange::single(ServiceType(2), Instance(peer.0)),
            scope: Scope::Node,
            node: self.own(),
            port: PortId(0),
            key: peer.0,
        }
    }

    /// A node came up: its link-state binding is made, and our cluster
    /// bindings go to it in bulk.
    pub(super) fn node_up(&mut self, addr: NodeAddr, links: &mut impl Links) {
        let ls = self.link_state(addr);
        if self.names.insert(ls) {
            self.publication_added(&ls, links);
        }
        let own = self.own();
        let items: Vec<PublItem> =
            self.bindings.own.values().filter(|p| p.scope == Scope::Cluster).map(Publication::item).collect();
        let mtu = links.max_pkt(addr) + tipc_wire::INT_H_SIZE;
        for m in self.distr.bulk(own, addr, &items, mtu) {
            if let Ok(b) = Msg::NameDistr(m).to_bytes() {
                self.outbox.send_keep(self.now, addr, b, links);
            }
        }
    }

    /// Name updates from `origin` (in the kernel's receive order).
    pub(super) fn receive_names(&mut self, n: NameDistrMsg, links: &mut impl Links) {
        self.stats.names_in += 1;
        let origin = n.hdr.orig_node;
        if !links.is_up(origin) {
            self.stats.bad_names += 1;
            return;
        }
        for u in self.distr.receive(origin, n) {
            let p = Publication {
                range: u.item.range(),
                scope: Scope::Cluster,
                node: origin,
                port: u.item.port,
                key: u.item.key,
            };
            match u.kind {
                NameDistrType::Publication => match self.names.try_insert(p) {
                    Ok(()) => self.publication_added(&p, links),
                    Err(Refused::NodeFull) => self.stats.names_refused += 1,
                    Err(Refused::Duplicate) => self.stats.bad_names += 1,
                },
                _ => match self.names.remove(p.range, p.node, p.port, p.key) {
                    Some(q) => self.publication_removed(&q, false, links),
                    None => self.stats.bad_names += 1,
                },
            }
        }
    }

    /// Binding `p` is in the table: subscriptions and groups hear of it.
    pub(super) fn publication_added(&mut self, p: &Publication, links: &mut impl Links) {
        let first = self.names.only_one_of(&p.range);
        let events = &mut self.events;
        self.topology.published(p, first, |e| events.push_back(SocketEvent::Topology(e)));
        for g in self.groups.values_mut() {
            if makes_member(g.spec(), g.own().port, p) {
                g.member_published(p.member(), p.range.lower);
            }
        }
        self.pump_groups(links);
    }

    /// Binding `p` left the table: subscriptions and groups hear of it.
    pub(super) fn publication_removed(&mut self, p: &Publication, node_down: bool, links: &mut impl Links) {
        let last = !self.names.has_range(&p.range);
        let events = &mut self.events;
        self.topology.withdrawn(p, last, |e| events.push_back(SocketEvent::Topology(e)));
        for g in self.groups.values_mut() {
            if g.spec().stype == p.range.stype && scope_matches(g.spec().scope, p) {
                g.member_withdrawn(p.member(), node_down);
            }
        }
        self.pump_groups(links);
    }

    /// The members a group `spec` joined by `port` finds already bound:
    /// (member, instance).
    pub(super) fn existing_members(&self, spec: &GroupSpec, port: PortId) -> Vec<(MemberId, Instance)> {
        self.names
            .of_type(spec.stype)
            .filter(|p| makes_member(spec, port, p))
            .map(|p| (p.member(), p.range.lower))
            .collect()
    }
}
