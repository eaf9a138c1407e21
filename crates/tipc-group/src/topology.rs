//! The topology service: subscriptions to the name table, as the kernel's
//! topology server keeps them for its local users (net/tipc/topsrv.c,
//! net/tipc/subscr.c, and the reporting in net/tipc/name_table.c).
//!
//! A [`Subscription`] names a service range, a [`Filter`] and an optional
//! timeout. [`Topology`] holds the subscriptions of one node and turns the
//! name table's changes into [`TopologyEvent`]s:
//! - at subscription time every existing match is reported as
//!   [`EventKind::Published`], oldest binding first ([`NameTable::report`]);
//! - [`Filter::Ports`] reports every binding and withdrawal overlapping the
//!   range, [`Filter::Service`] only the first binding of an exact range
//!   and the withdrawal of its last one;
//! - the found range is the binding's own range (not clipped), the port
//!   the binding socket's;
//! - after the timeout one [`EventKind::Timeout`] carries the subscribed
//!   range and port 0 on node 0, and the subscription ends.
//!
//! Subscriptions never cross the wire (the kernel's server is bound in
//! node scope); node state (type 0) and link state (type 2) are ordinary
//! bindings and are watched the same way. Sans-IO: time comes in as
//! arguments.

use std::collections::{BTreeMap, BTreeSet};

use tipc_wire::{Duration, Instance, Instant, MemberId, NodeAddr, PortId, ServiceRange, ServiceType};

use crate::{NameTable, Publication};

/// Most subscriptions one node holds (the kernel's `TIPC_MAX_SUBSCR`).
pub const MAX_SUBSCR: usize = 65_535;

/// The service type of node-state bindings: `{0, addr}` for every node
/// that is up, the own one included (`TIPC_NODE_STATE`).
pub const NODE_STATE: ServiceType = ServiceType(0);

/// The service type of link-state bindings: `{2, peer}` on the own node
/// for each working link to `peer` (`TIPC_LINK_STATE`), port = link id.
pub const LINK_STATE: ServiceType = ServiceType(2);

/// What a subscription reports (`TIPC_SUB_PORTS`, `TIPC_SUB_SERVICE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Every binding and withdrawal overlapping the range
    /// (`TIPC_SUB_PORTS`, 0x1).
    Ports,
    /// Only when the first binding of an exact range appears and its last
    /// one goes: service up and down (`TIPC_SUB_SERVICE`, 0x2).
    Service,
}

/// One subscription request (the fields of the kernel's
/// `struct tipc_subscr` but the user handle, which the caller keeps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The range watched; `lower` must not be above `upper`.
    pub range: ServiceRange,
    /// What is reported.
    pub filter: Filter,
    /// Ends the subscription after this long with a
    /// [`EventKind::Timeout`]; `None` waits forever (`TIPC_WAIT_FOREVER`).
    pub timeout: Option<Duration>,
}

impl Subscription {
    /// Every binding overlapping `range`, forever.
    pub fn ports(range: ServiceRange) -> Self {
        Subscription { range, filter: Filter::Ports, timeout: None }
    }

    /// Service up/down of the exact ranges overlapping `range`, forever.
    pub fn service(range: ServiceRange) -> Self {
        Subscription { range, filter: Filter::Service, timeout: None }
    }

    /// Every node that comes up or goes down (the node-state bindings of
    /// all addresses), the own node included.
    pub fn nodes() -> Self {
        Self::ports(ServiceRange { stype: NODE_STATE, lower: Instance(0), upper: Instance(u32::MAX) })
    }

    /// Every link of this node that comes up or goes down (link-state
    /// bindings; one event per link, parallel links differ in port).
    pub fn links() -> Self {
        Self::ports(ServiceRange { stype: LINK_STATE, lower: Instance(0), upper: Instance(u32::MAX) })
    }

    /// The same subscription, ending after `timeout`.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Subscription { timeout: Some(timeout), ..self }
    }
}

/// A subscription's id, unique on its node for the node's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubId(pub u64);

/// The kind of a [`TopologyEvent`] (`TIPC_PUBLISHED` 1, `TIPC_WITHDRAWN` 2,
/// `TIPC_SUBSCR_TIMEOUT` 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A binding appeared (or existed when the subscription was made).
    Published,
    /// A binding went away.
    Withdrawn,
    /// The subscription's timeout passed; it has ended.
    Timeout,
}

impl EventKind {
    /// The kernel's event number.
    pub fn code(self) -> u32 {
        match self {
            EventKind::Published => 1,
            EventKind::Withdrawn => 2,
            EventKind::Timeout => 3,
        }
    }
}

/// One event for one subscription (the kernel's `struct tipc_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopologyEvent {
    /// The subscription it is for.
    pub sub: SubId,
    /// What happened.
    pub kind: EventKind,
    /// The binding's own range (for a timeout: the subscribed range).
    pub found: ServiceRange,
    /// The binding socket (for a timeout: port 0 on node 0; for node
    /// state: port 0 on that node; for link state: the link id on the
    /// own node).
    pub port: MemberId,
}

/// Why a subscription was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscribeError {
    /// Its range has `lower` above `upper` (the kernel closes the
    /// subscriber's connection: "illegal request").
    BadRange(ServiceRange),
    /// The node already holds [`MAX_SUBSCR`] subscriptions.
    TooMany(usize),
}

impl core::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SubscribeError::BadRange(r) => write!(f, "subscription range {r:?} has lower above upper"),
            SubscribeError::TooMany(n) => write!(f, "the node already holds {n} subscriptions"),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// The subscriptions of one node.
#[derive(Debug, Default)]
pub struct Topology {
    /// Each subscription and its deadline.
    subs: BTreeMap<SubId, (Subscription, Option<Instant>)>,
    /// Subscriptions by the service type they watch.
    by_type: BTreeMap<ServiceType, BTreeSet<SubId>>,
    /// Timeouts: (deadline, subscription).
    deadlines: BTreeSet<(Instant, SubId)>,
    next_id: u64,
}

impl Topology {
    /// No subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many subscriptions are active.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Adds a subscription at `now` and reports what `names` already holds
    /// that it matches, through `emit`.
    ///
    /// # Errors
    /// [`SubscribeError::BadRange`], [`SubscribeError::TooMany`].
    pub fn subscribe(
        &mut self,
        now: Instant,
        s: Subscription,
        names: &NameTable,
        mut emit: impl FnMut(TopologyEvent),
    ) -> Result<SubId, SubscribeError> {
        if s.range.lower > s.range.upper {
            return Err(SubscribeError::BadRange(s.range));
        }
        if self.subs.len() >= MAX_SUBSCR {
            return Err(SubscribeError::TooMany(MAX_SUBSCR));
        }
        let id = SubId(self.next_id);
        self.next_id += 1;
        let deadline = s.timeout.map(|t| now + t);
        self.subs.insert(id, (s, deadline));
        self.by_type.entry(s.range.stype).or_default().insert(id);
        if let Some(t) = deadline {
            self.deadlines.insert((t, id));
        }
        for p in names.report(&s.range, s.filter == Filter::Service) {
            emit(event(id, EventKind::Published, &p));
        }
        Ok(id)
    }

    /// Ends subscription `id` without an event; false if it was not active.
    pub fn cancel(&mut self, id: SubId) -> bool {
        let Some((s, deadline)) = self.subs.remove(&id) else { return false };
        if let Some(set) = self.by_type.get_mut(&s.range.stype) {
            set.remove(&id);
            if set.is_empty() {
                self.by_type.remove(&s.range.stype);
            }
        }
        if let Some(t) = deadline {
            self.deadlines.remove(&(t, id));
        }
        true
    }

    /// Binding `p` was added; `first` when no other binding has its exact
    /// range ([`NameTable::only_one_of`]).
    pub fn published(&self, p: &Publication, first: bool, emit: impl FnMut(TopologyEvent)) {
        self.report(EventKind::Published, p, first, emit);
    }

    /// Binding `p` went away; `last` when no binding of its exact range is
    /// left (not [`NameTable::has_range`]).
    pub fn withdrawn(&self, p: &Publication, last: bool, emit: impl FnMut(TopologyEvent)) {
        self.report(EventKind::Withdrawn, p, last, emit);
    }

    /// Reports a change to the subscriptions it concerns: those of its type
    /// overlapping its range — all of them when the change is the first
    /// or last of its exact range (`edge`), else those with
    /// [`Filter::Ports`] (net/tipc/subscr.c `tipc_sub_report_overlap`).
    fn report(&self, kind: EventKind, p: &Publication, edge: bool, mut emit: impl FnMut(TopologyEvent)) {
        let Some(ids) = self.by_type.get(&p.range.stype) else { return };
        for id in ids {
            let Some((s, _)) = self.subs.get(id) else { continue };
            if s.range.overlaps(&p.range) && (edge || s.filter == Filter::Ports) {
                emit(event(*id, kind, p));
            }
        }
    }

    /// When [`Topology::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Ends the subscriptions whose timeout passed by `now`, each with one
    /// [`EventKind::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant, mut emit: impl FnMut(TopologyEvent)) {
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((s, _)) = self.subs.get(&id).copied() {
                self.cancel(id);
                emit(TopologyEvent {
                    sub: id,
                    kind: EventKind::Timeout,
                    found: s.range,
                    port: MemberId { node: NodeAddr(0), port: PortId(0) },
                });
            }
        }
    }
}

fn event(sub: SubId, kind: EventKind, p: &Publication) -> TopologyEvent {
    TopologyEvent { sub, kind, found: p.range, port: p.member() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tipc_wire::Scope;

    const SVC: ServiceType = ServiceType(1000);

    fn range(lo: u32, hi: u32) -> ServiceRange {
        ServiceRange { stype: SVC, lower: Instance(lo), upper: Instance(hi) }
    }

    fn publ(port: u32, lo: u32, hi: u32, key: u32) -> Publication {
        Publication { range: range(lo, hi), scope: Scope::Cluster, node: NodeAddr(7), port: PortId(port), key }
    }

    /// A name table with subscriptions, applying changes as the socket
    /// layer does: change the table, then report with its first/last flag.
    #[derive(Default)]
    struct World {
        names: NameTable,
        topo: Topology,
        out: Vec<TopologyEvent>,
    }

    impl World {
        fn sub(&mut self, s: Subscription) -> SubId {
            let out = &mut self.out;
            self.topo.subscribe(Instant::ZERO, s, &self.names, |e| out.push(e)).unwrap()
        }
        fn bind(&mut self, p: Publication) {
            assert!(self.names.insert(p));
            let first = self.names.only_one_of(&p.range);
            let out = &mut self.out;
            self.topo.published(&p, first, |e| out.push(e));
        }
        fn unbind(&mut self, p: Publication) {
            assert!(self.names.remove(p.range, p.node, p.port, p.key).is_some());
            let last = !self.names.has_range(&p.range);
            let out = &mut self.out;
            self.topo.withdrawn(&p, last, |e| out.push(e));
        }
        /// (kind, lower, upper, port) of what was reported, cleared.
        fn take(&mut self) -> Vec<(EventKind, u32, u32, u32)> {
            self.out.drain(..).map(|e| (e.kind, e.found.lower.0, e.found.upper.0, e.port.port.0)).collect()
        }
    }

    use EventKind::{Published as P, Withdrawn as W};

    /// The kernel's live tests T1/T2: a PORTS subscription sees every
    /// binding with its own (unclipped) range; SERVICE sees only the first
    /// and the last of an exact range, naming the socket that went last.
    #[test]
    fn ports_report_every_binding_service_only_first_and_last() {
        for filter in [Filter::Ports, Filter::Service] {
            let mut w = World::default();
            w.sub(Subscription { range: range(0, 100), filter, timeout: None });
            w.bind(publ(1, 30, 30, 1));
            w.bind(publ(1, 31, 35, 2));
            w.bind(publ(2, 40, 40, 3));
            w.bind(publ(3, 40, 40, 4));
            w.bind(publ(4, 200, 300, 5)); // outside
            w.unbind(publ(2, 40, 40, 3));
            w.unbind(publ(1, 31, 35, 2));
            w.unbind(publ(3, 40, 40, 4));
            let got = w.take();
            let want = match filter {
                Filter::Ports => vec![
                    (P, 30, 30, 1),
                    (P, 31, 35, 1),
                    (P, 40, 40, 2),
                    (P, 40, 40, 3),
                    (W, 40, 40, 2),
                    (W, 31, 35, 1),
                    (W, 40, 40, 3),
                ],
                Filter::Service => vec![(P, 30, 30, 1), (P, 31, 35, 1), (P, 40, 40, 2), (W, 31, 35, 1), (W, 40, 40, 3)],
            };
            assert_eq!(got, want, "{filter:?}");
        }
    }

    /// What exists is reported at once, oldest first: every binding for
    /// PORTS, the oldest of each exact range for SERVICE (T1, T2, T4).
    #[test]
    fn existing_bindings_are_reported_oldest_first() {
        let mut w = World::default();
        w.bind(publ(5, 50, 50, 1));
        w.bind(publ(1, 10, 20, 2));
        w.bind(publ(6, 50, 50, 3));
        w.bind(publ(2, 90, 99, 4)); // overlaps only the upper end
        w.bind(publ(3, 101, 200, 5)); // outside
        w.take();
        w.sub(Subscription::ports(range(15, 90)));
        assert_eq!(w.take(), vec![(P, 50, 50, 5), (P, 10, 20, 1), (P, 50, 50, 6), (P, 90, 99, 2)]);
        w.sub(Subscription::service(range(15, 90)));
        assert_eq!(w.take(), vec![(P, 50, 50, 5), (P, 10, 20, 1), (P, 90, 99, 2)]);
        w.sub(Subscription::ports(ServiceRange { stype: ServiceType(1001), ..range(0, u32::MAX) }));
        assert_eq!(w.take(), vec![]);
    }

    /// A timeout ends the subscription with one event naming the subscribed
    /// range and port 0 on node 0 (T3); cancel ends it silently (T8); a
    /// bad range or one too many is refused.
    #[test]
    fn timeout_cancel_and_refusals() {
        let mut w = World::default();
        let t0 = Instant::ZERO;
        let out = &mut w.out;
        let a = w
            .topo
            .subscribe(
                t0,
                Subscription::service(range(500, 600)).with_timeout(Duration::from_millis(1500)),
                &w.names,
                |e| out.push(e),
            )
            .unwrap();
        let b = w.sub(Subscription::ports(range(0, 10)));
        assert!(!w.topo.is_empty());
        assert_eq!(w.topo.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        let out = &mut w.out;
        w.topo.handle_timeout(t0 + Duration::from_millis(1499), |e| out.push(e));
        assert!(w.out.is_empty());
        let out = &mut w.out;
        w.topo.handle_timeout(t0 + Duration::from_millis(1500), |e| out.push(e));
        let want = TopologyEvent {
            sub: a,
            kind: EventKind::Timeout,
            found: range(500, 600),
            port: MemberId { node: NodeAddr(0), port: PortId(0) },
        };
        assert_eq!(w.out, vec![want]);
        w.out.clear();
        assert_eq!((w.topo.len(), w.topo.poll_timeout()), (1, None));
        w.bind(publ(1, 550, 550, 1));
        w.bind(publ(1, 5, 5, 2));
        assert_eq!(w.take(), vec![(P, 5, 5, 1)], "only the live subscription reports");
        assert!(w.topo.cancel(b));
        assert!(!w.topo.cancel(b));
        w.bind(publ(1, 6, 6, 3));
        assert!(w.take().is_empty() && w.topo.is_empty());
        let bad = Subscription::ports(range(100, 0));
        let refused = w.topo.subscribe(t0, bad, &w.names, |_| {});
        assert_eq!(refused, Err(SubscribeError::BadRange(range(100, 0))));
        assert!(refused.unwrap_err().to_string().contains("lower above upper"));
        for _ in 0..MAX_SUBSCR {
            w.topo.subscribe(t0, Subscription::ports(range(0, 0)), &w.names, |_| {}).unwrap();
        }
        let one_more = w.topo.subscribe(t0, Subscription::ports(range(0, 0)), &w.names, |_| {});
        assert_eq!(one_more, Err(SubscribeError::TooMany(MAX_SUBSCR)));
        assert_eq!(one_more.unwrap_err().to_string(), "the node already holds 65535 subscriptions");
    }

    /// The kernel's event numbers.
    #[test]
    fn event_codes() {
        assert_eq!([P.code(), W.code(), EventKind::Timeout.code()], [1, 2, 3]);
    }
}
