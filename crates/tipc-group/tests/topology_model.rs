//! The topology service against a plain model of the kernel's rules
//! (net/tipc/name_table.c, subscr.c): random bindings, withdrawals, node
//! purges, subscriptions, cancels and timeouts on a [`NameTable`] with a
//! [`Topology`], each change reported as the socket layer reports it, must
//! produce exactly the events the model derives from a list of bindings in
//! the order they were made.

use proptest::prelude::*;
use tipc_group::topology::{EventKind, Filter, SubId, Subscription, Topology, TopologyEvent};
use tipc_group::{NameTable, Publication};
use tipc_wire::{Duration, Instance, Instant, MemberId, NodeAddr, PortId, Scope, ServiceRange, ServiceType};

#[derive(Clone, Debug)]
enum Op {
    /// Bind (type 0/1, lower, width) from (node, port).
    Bind { t: u32, lo: u32, w: u32, node: u32, port: u32 },
    /// Withdraw the i-th live binding (modulo).
    Unbind(usize),
    /// Purge every binding of a node.
    Purge(u32),
    /// Subscribe (type, lower, width, filter, timeout in ms).
    Sub { t: u32, lo: u32, w: u32, ports: bool, timeout: Option<u64> },
    /// Cancel the i-th subscription ever made (modulo).
    Cancel(usize),
    /// Let time pass (ms).
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1000u32..1002, 0u32..8, 0u32..3, 1u32..4, 1u32..4)
            .prop_map(|(t, lo, w, node, port)| Op::Bind { t, lo, w, node, port }),
        2 => any::<usize>().prop_map(Op::Unbind),
        1 => (1u32..4).prop_map(Op::Purge),
        2 => (1000u32..1002, 0u32..8, 0u32..4, any::<bool>(), proptest::option::of(1u64..50))
            .prop_map(|(t, lo, w, ports, timeout)| Op::Sub { t, lo, w, ports, timeout }),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (1u64..40).prop_map(Op::Wait),
    ]
}

fn range(t: u32, lo: u32, w: u32) -> ServiceRange {
    ServiceRange { stype: ServiceType(t), lower: Instance(lo), upper: Instance(lo + w) }
}

/// The model: live bindings in the order made, live subscriptions.
#[derive(Default)]
struct Model {
    publs: Vec<Publication>,
    subs: Vec<(SubId, Subscription, Option<Instant>)>,
}

impl Model {
    fn ev(sub: SubId, kind: EventKind, p: &Publication) -> TopologyEvent {
        TopologyEvent { sub, kind, found: p.range, port: p.member() }
    }
    fn changed(&self, kind: EventKind, p: &Publication, edge: bool) -> Vec<TopologyEvent> {
        self.subs
            .iter()
            .filter(|(_, s, _)| s.range.overlaps(&p.range) && (edge || s.filter == Filter::Ports))
            .map(|(id, ..)| Self::ev(*id, kind, p))
            .collect()
    }
    fn add(&mut self, p: Publication) -> Vec<TopologyEvent> {
        let first = !self.publs.iter().any(|q| q.range == p.range);
        self.publs.push(p);
        self.changed(EventKind::Published, &p, first)
    }
    fn remove(&mut self, i: usize) -> Vec<TopologyEvent> {
        let p = self.publs.remove(i);
        let last = !self.publs.iter().any(|q| q.range == p.range);
        self.changed(EventKind::Withdrawn, &p, last)
    }
    fn initial(&self, id: SubId, s: &Subscription) -> Vec<TopologyEvent> {
        let mut seen: Vec<ServiceRange> = Vec::new();
        let mut out = Vec::new();
        for p in self.publs.iter().filter(|p| p.range.overlaps(&s.range)) {
            if s.filter == Filter::Service {
                if seen.contains(&p.range) {
                    continue;
                }
                seen.push(p.range);
            }
            out.push(Self::ev(id, EventKind::Published, p));
        }
        out
    }
}

/// Applies one op to the real table and topology, and to the model;
/// returns (real events, model events).
fn step(
    op: &Op,
    names: &mut NameTable,
    topo: &mut Topology,
    model: &mut Model,
    now: &mut Instant,
    made: &mut Vec<SubId>,
    key: &mut u32,
) -> (Vec<TopologyEvent>, Vec<TopologyEvent>) {
    let mut got = Vec::new();
    let mut want = Vec::new();
    match *op {
        Op::Bind { t, lo, w, node, port } => {
            *key += 1;
            let p = Publication {
                range: range(t, lo, w),
                scope: Scope::Cluster,
                node: NodeAddr(node),
                port: PortId(port),
                key: *key,
            };
            assert!(names.insert(p));
            topo.published(&p, names.only_one_of(&p.range), |e| got.push(e));
            want = model.add(p);
        }
        Op::Unbind(i) if !model.publs.is_empty() => {
            let i = i % model.publs.len();
            let p = model.publs[i];
            assert!(names.remove(p.range, p.node, p.port, p.key).is_some());
            topo.withdrawn(&p, !names.has_range(&p.range), |e| got.push(e));
            want = model.remove(i);
        }
        Op::Unbind(_) => {}
        Op::Purge(node) => {
            // one at a time, oldest first, as the socket layer does
            for p in names.of_node(NodeAddr(node)) {
                assert!(names.remove(p.range, p.node, p.port, p.key).is_some());
                topo.withdrawn(&p, !names.has_range(&p.range), |e| got.push(e));
            }
            while let Some(i) = model.publs.iter().position(|p| p.node == NodeAddr(node)) {
                want.extend(model.remove(i));
            }
        }
        Op::Sub { t, lo, w, ports, timeout } => {
            let filter = if ports { Filter::Ports } else { Filter::Service };
            let s = Subscription { range: range(t, lo, w), filter, timeout: timeout.map(Duration::from_millis) };
            let id = topo.subscribe(*now, s, names, |e| got.push(e)).expect("subscribe");
            want = model.initial(id, &s);
            model.subs.push((id, s, s.timeout.map(|d| *now + d)));
            made.push(id);
        }
        Op::Cancel(i) if !made.is_empty() => {
            let id = made[i % made.len()];
            let live = model.subs.iter().position(|(s, ..)| *s == id);
            assert_eq!(topo.cancel(id), live.is_some());
            if let Some(i) = live {
                model.subs.remove(i);
            }
        }
        Op::Cancel(_) => {}
        Op::Wait(ms) => {
            *now += Duration::from_millis(ms);
            topo.handle_timeout(*now, |e| got.push(e));
            // expired ones, earliest deadline first (ties: oldest first)
            let mut due: Vec<(Instant, SubId, ServiceRange)> = model
                .subs
                .iter()
                .filter_map(|(id, s, d)| d.filter(|d| *d <= *now).map(|d| (d, *id, s.range)))
                .collect();
            due.sort();
            for (_, id, r) in due {
                model.subs.retain(|(s, ..)| *s != id);
                want.push(TopologyEvent {
                    sub: id,
                    kind: EventKind::Timeout,
                    found: r,
                    port: MemberId { node: NodeAddr(0), port: PortId(0) },
                });
            }
        }
    }
    (got, want)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn events_follow_the_kernel_rules(ops in proptest::collection::vec(op(), 1..80)) {
        let mut names = NameTable::new();
        let mut topo = Topology::new();
        let mut model = Model::default();
        let mut now = Instant::ZERO;
        let mut made = Vec::new();
        let mut key = 0;
        for (n, op) in ops.iter().enumerate() {
            let (got, want) = step(op, &mut names, &mut topo, &mut model, &mut now, &mut made, &mut key);
            // events of one change may come in any order across
            // subscriptions, but in order within each
            for id in made.iter() {
                let g: Vec<_> = got.iter().filter(|e| e.sub == *id).collect();
                let w: Vec<_> = want.iter().filter(|e| e.sub == *id).collect();
                prop_assert_eq!(g, w, "step {}: {:?}", n, op);
            }
            prop_assert_eq!(got.len(), want.len(), "step {}: {:?}", n, op);
            prop_assert_eq!(topo.len(), model.subs.len());
        }
    }
}
