//! The name table: service ranges bound to sockets, cluster-wide.

use std::collections::{BTreeMap, BTreeSet};

use tipc_wire::{Instance, MemberId, NodeAddr, PortId, PublItem, Scope, ServiceRange, ServiceType};

/// One binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// The publication as name distribution carries it.
    pub fn item(&self) -> PublItem {
        PublItem {
            stype: self.range.stype,
            lower: self.range.lower,
            upper: self.range.upper,
            port: self.port,
            key: self.key,
        }
    }
}

/// Most publications the table holds from one node: the kernel refuses a
/// node's own bindings beyond the same number (`TIPC_MAX_PUBL`), so a
/// well-behaved peer never reaches it, and a hostile one cannot grow the
/// table without bound.
pub const MAX_PUBL_PER_NODE: usize = 65_535;

/// The index key of a binding of `range` added at `age`.
fn range_key(range: &ServiceRange, age: u64) -> RangeKey {
    (range.stype, range.lower, range.upper, age)
}

/// (publishing node, port, key): unique per binding.
type Key = (NodeAddr, PortId, u32);

/// A binding's place in the index by exact range: (type, lower, upper,
/// age), so the bindings of one exact range sit together, oldest first.
type RangeKey = (ServiceType, Instance, Instance, u64);

/// Why [`NameTable::insert`] added nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The same (node, port, key) is already bound.
    Duplicate,
    /// The node already holds [`MAX_PUBL_PER_NODE`] bindings.
    NodeFull,
}

/// The table. Every operation is logarithmic in its size except the
/// lookups, which scan the bindings of one type.
///
/// Each binding has an age: the order it was added in, as the kernel's
/// per-service publication counter (`publ_cnt`, net/tipc/name_table.c),
/// which orders a subscription's first report and a node's purge.
#[derive(Debug, Default, Clone)]
pub struct NameTable {
    by_type: BTreeMap<ServiceType, BTreeMap<Key, Publication>>,
    /// Each binding's type and age.
    types: BTreeMap<Key, (ServiceType, u64)>,
    /// Every binding by exact range, then age.
    by_range: BTreeMap<RangeKey, Key>,
    next_age: u64,
    per_node: BTreeMap<NodeAddr, usize>,
    rr: BTreeMap<(ServiceType, Instance), usize>,
}

impl NameTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a binding; true if added, false if the same (node, port, key)
    /// is already there or its node is full ([`NameTable::try_insert`] says which).
    pub fn insert(&mut self, p: Publication) -> bool {
        self.try_insert(p).is_ok()
    }

    /// Adds a binding, or says why not.
    pub fn try_insert(&mut self, p: Publication) -> Result<(), Refused> {
        let key = (p.node, p.port, p.key);
        if self.types.contains_key(&key) {
            return Err(Refused::Duplicate);
        }
        let n = self.per_node.entry(p.node).or_default();
        if *n >= MAX_PUBL_PER_NODE {
            return Err(Refused::NodeFull);
        }
        *n += 1;
        let age = self.next_age;
        self.next_age += 1;
        self.types.insert(key, (p.range.stype, age));
        self.by_range.insert(range_key(&p.range, age), key);
        self.by_type.entry(p.range.stype).or_default().insert(key, p);
        tracing::debug!(name = %p.range, scope = p.scope.name(), node = %p.node, port = p.port.0, "name published");
        Ok(())
    }

    /// How many bindings `node` holds.
    pub fn count_of(&self, node: NodeAddr) -> usize {
        self.per_node.get(&node).copied().unwrap_or(0)
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Removes the binding of (node, port, key) for `range`; returns it.
    pub fn remove(&mut self, range: ServiceRange, node: NodeAddr, port: PortId, key: u32) -> Option<Publication> {
        let k = (node, port, key);
        let v = self.by_type.get_mut(&range.stype)?;
        if v.get(&k)?.range != range {
            return None;
        }
        let p = v.remove(&k)?;
        if v.is_empty() {
            self.by_type.remove(&range.stype);
        }
        self.forget(k, &p.range);
        tracing::debug!(name = %p.range, node = %p.node, port = p.port.0, "name withdrawn");
        Some(p)
    }

    /// Drops the indexes of binding `k` of `range`.
    fn forget(&mut self, k: Key, range: &ServiceRange) {
        if let Some((_, age)) = self.types.remove(&k) {
            self.by_range.remove(&range_key(range, age));
        }
        if let Some(n) = self.per_node.get_mut(&k.0) {
            *n -= 1;
            if *n == 0 {
                self.per_node.remove(&k.0);
            }
        }
    }

    /// Everything published by `node`, oldest first: the order the kernel
    /// withdraws a lost node's bindings in (net/tipc/node.c
    /// `tipc_publ_notify` walks the node's list, which grows at its tail).
    pub fn of_node(&self, node: NodeAddr) -> Vec<Publication> {
        let mut v: Vec<(u64, Publication)> = self
            .types
            .range((node, PortId(0), 0)..=(node, PortId(u32::MAX), u32::MAX))
            .filter_map(|(k, (t, age))| Some((*age, *self.by_type.get(t)?.get(k)?)))
            .collect();
        v.sort_unstable_by_key(|(age, _)| *age);
        v.into_iter().map(|(_, p)| p).collect()
    }

    /// Removes everything published by `node`; returns it, oldest first.
    pub fn purge_node(&mut self, node: NodeAddr) -> Vec<Publication> {
        let gone = self.of_node(node);
        for p in &gone {
            self.remove(p.range, p.node, p.port, p.key);
        }
        gone
    }

    /// Removes everything bound by a local socket; returns it, oldest first.
    pub fn purge_port(&mut self, node: NodeAddr, port: PortId) -> Vec<Publication> {
        let mut gone: Vec<Publication> = self.of_node(node);
        gone.retain(|p| p.port == port);
        for p in &gone {
            self.remove(p.range, p.node, p.port, p.key);
        }
        gone
    }

    /// Whether some binding has exactly `range`.
    pub fn has_range(&self, range: &ServiceRange) -> bool {
        self.of_range(range).next().is_some()
    }

    /// Whether exactly one binding has exactly `range`: right after a
    /// binding is added, whether it is the first of its range (what a
    /// service-level subscription reports, net/tipc/name_table.c
    /// `tipc_service_insert_publ`).
    pub fn only_one_of(&self, range: &ServiceRange) -> bool {
        let mut it = self.of_range(range);
        it.next().is_some() && it.next().is_none()
    }

    /// The keys of the bindings of exactly `range`, oldest first.
    fn of_range(&self, range: &ServiceRange) -> impl Iterator<Item = &Key> {
        self.by_range.range(range_key(range, 0)..=range_key(range, u64::MAX)).map(|(_, k)| k)
    }

    /// What a new subscription to `range` is told exists (net/tipc/name_table.c
    /// `tipc_service_subscribe`): every binding overlapping it
    /// (`service_level` false), or only the oldest binding of each exact
    /// range overlapping it (true); oldest first either way.
    pub fn report(&self, range: &ServiceRange, service_level: bool) -> Vec<Publication> {
        let t = range.stype;
        let from = (t, Instance(0), Instance(0), 0);
        let to = (t, range.upper, Instance(u32::MAX), u64::MAX);
        let mut found: Vec<(u64, Publication)> = Vec::new();
        let mut last: Option<(Instance, Instance)> = None;
        for ((_, lo, hi, age), k) in self.by_range.range(from..=to) {
            if *hi < range.lower {
                continue;
            }
            if service_level && last == Some((*lo, *hi)) {
                continue;
            }
            last = Some((*lo, *hi));
            if let Some(p) = self.by_type.get(&t).and_then(|v| v.get(k)) {
                found.push((*age, *p));
            }
        }
        found.sort_unstable_by_key(|(age, _)| *age);
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Every binding, ordered by type.
    pub fn iter(&self) -> impl Iterator<Item = &Publication> {
        self.by_type.values().flat_map(BTreeMap::values)
    }

    /// Bindings of one type.
    pub fn of_type(&self, t: ServiceType) -> impl Iterator<Item = &Publication> {
        self.by_type.get(&t).into_iter().flat_map(BTreeMap::values)
    }

    fn visible(p: &Publication, own: NodeAddr) -> bool {
        p.scope != Scope::Node || p.node == own
    }

    /// Anycast lookup: one socket bound to `inst`, chosen round robin over
    /// all matching bindings (node-scope ones only on their own node).
    pub fn anycast(&mut self, t: ServiceType, inst: Instance, own: NodeAddr) -> Option<MemberId> {
        let cands: Vec<MemberId> = self
            .of_type(t)
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
            .filter(|p| p.range.overlaps(&range) && Self::visible(p, own))
            .map(Publication::member)
            .collect()
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

    /// A node-scope binding is seen only on its own node (kernel: such
    /// bindings are never distributed; a table holding one of another node
    /// must not offer it either).
    #[test]
    fn node_scope_bindings_are_visible_on_their_own_node_only() {
        let mut t = NameTable::new();
        assert!(t.insert(Publication { scope: Scope::Node, ..publ(7, 70, 1, 1, 1) }));
        let r = ServiceRange { stype: ServiceType(1000), lower: Instance(1), upper: Instance(1) };
        assert_eq!(t.anycast(ServiceType(1000), Instance(1), NodeAddr(7)).map(|m| m.port), Some(PortId(70)));
        assert_eq!(t.mcast(r, NodeAddr(7)).len(), 1);
        assert_eq!(t.anycast(ServiceType(1000), Instance(1), NodeAddr(8)), None);
        assert!(t.mcast(r, NodeAddr(8)).is_empty());
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

    #[test]
    fn a_node_is_capped_and_removal_is_exact() {
        let mut t = NameTable::new();
        assert!(t.is_empty());
        for k in 0..MAX_PUBL_PER_NODE as u32 {
            assert!(t.insert(publ(7, 1, k, k, k)));
        }
        assert_eq!(t.len(), MAX_PUBL_PER_NODE);
        assert!(!t.is_empty());
        assert_eq!(t.try_insert(publ(7, 1, 0, 0, u32::MAX)), Err(Refused::NodeFull));
        assert_eq!(t.try_insert(publ(7, 1, 0, 0, 0)), Err(Refused::Duplicate));
        assert!(t.insert(publ(8, 1, 0, 0, 0)), "other nodes are not affected");
        // a withdrawal must name the same range
        let wrong = ServiceRange { stype: ServiceType(1000), lower: Instance(9), upper: Instance(9) };
        assert!(t.remove(wrong, NodeAddr(7), PortId(1), 3).is_none());
        assert!(t.remove(publ(7, 1, 3, 3, 3).range, NodeAddr(7), PortId(1), 3).is_some());
        assert_eq!(t.count_of(NodeAddr(7)), MAX_PUBL_PER_NODE - 1);
        assert!(t.insert(publ(7, 1, 0, 0, u32::MAX)), "room again after a withdrawal");
        assert_eq!(t.purge_node(NodeAddr(7)).len(), MAX_PUBL_PER_NODE);
        assert_eq!((t.len(), t.count_of(NodeAddr(7))), (1, 0));
        assert_eq!(t.purge_port(NodeAddr(8), PortId(1)).len(), 1);
        assert!(t.is_empty());
    }
}
