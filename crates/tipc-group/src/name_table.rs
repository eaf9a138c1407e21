//! The name table: service ranges bound to sockets, cluster-wide.

use std::collections::{BTreeMap, BTreeSet};

use tipc_wire::{Instance, MemberId, NodeAddr, PortId, Scope, ServiceRange, ServiceType};

/// One binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Publication {
    /// The bound range.
    pub range: ServiceRange,
    /// Node or cluster (remote publications are always cluster).
    pub scope: Scope,
    /// Publishing node.
    pub node: NodeAddr,
    /// Publishing socket.
    pub port: PortId,
    /// Key, unique per publication on its node.
    pub key: u32,
}

impl Publication {
    /// The socket that published.
    pub fn member(&self) -> MemberId {
        MemberId { node: self.node, port: self.port }
    }
}

/// The table.
#[derive(Debug, Default, Clone)]
pub struct NameTable {
    by_type: BTreeMap<ServiceType, Vec<Publication>>,
    rr: BTreeMap<(ServiceType, Instance), usize>,
}

impl NameTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a binding; false if the same (node, port, key) is already there.
    pub fn insert(&mut self, p: Publication) -> bool {
        let v = self.by_type.entry(p.range.stype).or_default();
        if v.iter().any(|q| q.node == p.node && q.port == p.port && q.key == p.key) {
            return false;
        }
        v.push(p);
        true
    }

    /// Removes the binding of (node, port, key) for `range`; returns it.
    pub fn remove(&mut self, range: ServiceRange, node: NodeAddr, port: PortId, key: u32) -> Option<Publication> {
        let v = self.by_type.get_mut(&range.stype)?;
        let i = v.iter().position(|q| q.node == node && q.port == port && q.key == key && q.range == range)?;
        let p = v.remove(i);
        if v.is_empty() {
            self.by_type.remove(&range.stype);
        }
        Some(p)
    }

    /// Removes everything published by `node`.
    pub fn purge_node(&mut self, node: NodeAddr) -> Vec<Publication> {
        self.purge(|p| p.node == node)
    }

    /// Removes everything bound by a local socket; returns it.
    pub fn purge_port(&mut self, node: NodeAddr, port: PortId) -> Vec<Publication> {
        self.purge(|p| p.node == node && p.port == port)
    }

    fn purge(&mut self, gone_if: impl Fn(&Publication) -> bool) -> Vec<Publication> {
        let mut gone = Vec::new();
        for v in self.by_type.values_mut() {
            v.retain(|p| {
                let g = gone_if(p);
                if g {
                    gone.push(*p);
                }
                !g
            });
        }
        self.by_type.retain(|_, v| !v.is_empty());
        gone
    }

    /// Every binding, ordered by type.
    pub fn iter(&self) -> impl Iterator<Item = &Publication> {
        self.by_type.values().flatten()
    }

    /// Bindings of one type.
    pub fn of_type(&self, t: ServiceType) -> &[Publication] {
        self.by_type.get(&t).map_or(&[], |v| v.as_slice())
    }

    fn visible(p: &Publication, own: NodeAddr) -> bool {
        p.scope != Scope::Node || p.node == own
    }

    /// Anycast lookup: one socket bound to `inst`, chosen round robin over
    /// all matching bindings (node-scope ones only on their own node).
    pub fn anycast(&mut self, t: ServiceType, inst: Instance, own: NodeAddr) -> Option<MemberId> {
        let cands: Vec<MemberId> = self
            .of_type(t)
            .iter()
            .filter(|p| p.range.contains(inst) && Self::visible(p, own))
            .map(Publication::member)
            .collect();
        if cands.is_empty() {
            return None;
        }
        let c = self.rr.entry((t, inst)).or_insert(0);
        let m = cands[*c % cands.len()];
        *c = c.wrapping_add(1);
        Some(m)
    }

    /// Multicast lookup: every socket with a binding overlapping `range`.
    pub fn mcast(&self, range: ServiceRange, own: NodeAddr) -> BTreeSet<MemberId> {
        self.of_type(range.stype)
            .iter()
            .filter(|p| p.range.overlaps(&range) && Self::visible(p, own))
            .map(Publication::member)
            .collect()
    }

    /// Nodes holding a binding overlapping `range`.
    pub fn mcast_nodes(&self, range: ServiceRange, own: NodeAddr) -> BTreeSet<NodeAddr> {
        self.mcast(range, own).into_iter().map(|m| m.node).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publ(node: u32, port: u32, lo: u32, hi: u32, key: u32) -> Publication {
        Publication {
            range: ServiceRange { stype: ServiceType(1000), lower: Instance(lo), upper: Instance(hi) },
            scope: Scope::Cluster,
            node: NodeAddr(node),
            port: PortId(port),
            key,
        }
    }

    #[test]
    fn anycast_round_robin_and_multicast() {
        let mut t = NameTable::new();
        assert!(t.insert(publ(1, 10, 1, 10, 1)));
        assert!(!t.insert(publ(1, 10, 1, 10, 1)));
        assert!(t.insert(publ(2, 20, 5, 5, 2)));
        let picks: Vec<MemberId> =
            (0..4).map(|_| t.anycast(ServiceType(1000), Instance(5), NodeAddr(1)).unwrap()).collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
        assert_eq!(t.anycast(ServiceType(1000), Instance(3), NodeAddr(1)).unwrap().port, PortId(10));
        let r = ServiceRange { stype: ServiceType(1000), lower: Instance(4), upper: Instance(6) };
        assert_eq!(t.mcast(r, NodeAddr(1)).len(), 2);
        assert_eq!(t.purge_node(NodeAddr(2)).len(), 1);
        assert_eq!(t.mcast(r, NodeAddr(1)).len(), 1);
    }
}
