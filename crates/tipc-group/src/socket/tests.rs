//! Tests of the socket layer over a perfect in-memory link: every message a
//! layer hands to [`Links`] reaches the destination layer whole and in
//! order, unless a test marks a link congested or down.

use std::collections::BTreeSet;

use bytes::Bytes;
use tipc_wire::{
    DataMsg, DataType, ErrorCode, Instance, Instant, MemberId, Msg, NodeAddr, PortId, Scope, ServiceRange, ServiceType,
};

use super::*;
use crate::topology::{EventKind, SubId, Subscription};
use crate::{GroupSpec, Mode, Publication};

mod conn;

/// One node's view of the perfect link.
#[derive(Default)]
struct Wire {
    up: BTreeSet<NodeAddr>,
    congested: BTreeSet<NodeAddr>,
    /// The broadcast link refuses messages as congested.
    bcast_congested: bool,
    /// Nodes that advertise no block-based connection flow control.
    legacy: BTreeSet<NodeAddr>,
    /// Handed to links: destination (`None`: the broadcast link) and message.
    out: Vec<(Option<NodeAddr>, Bytes)>,
    unicasts: usize,
    broadcasts: usize,
}

impl Links for Wire {
    fn is_up(&self, node: NodeAddr) -> bool {
        self.up.contains(&node)
    }
    fn up_nodes(&self) -> Vec<NodeAddr> {
        self.up.iter().copied().collect()
    }
    fn is_congested(&self, node: NodeAddr) -> bool {
        self.congested.contains(&node)
    }
    fn max_pkt(&self, _node: NodeAddr) -> usize {
        1460
    }
    fn send(&mut self, _now: Instant, node: NodeAddr, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)> {
        if !self.up.contains(&node) {
            return Err((LinkRefusal::Unreachable, msg));
        }
        if self.congested.contains(&node) {
            return Err((LinkRefusal::Congested, msg));
        }
        self.unicasts += 1;
        self.out.push((Some(node), msg));
        Ok(())
    }
    fn broadcast(&mut self, _now: Instant, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)> {
        if self.up.is_empty() {
            return Err((LinkRefusal::Unreachable, msg));
        }
        if self.bcast_congested {
            return Err((LinkRefusal::Congested, msg));
        }
        self.broadcasts += 1;
        self.out.push((None, msg));
        Ok(())
    }
    fn caps(&self, node: NodeAddr) -> u16 {
        // SYN_BIT, and BLOCK_FLOWCTL unless the test says otherwise
        if self.legacy.contains(&node) { 0x001 } else { 0x009 }
    }
}

struct Node {
    addr: NodeAddr,
    layer: SocketLayer,
    wire: Wire,
    events: Vec<SocketEvent>,
}

/// Nodes with addresses 1..=n, all linked to each other.
struct Net {
    nodes: Vec<Node>,
    now: Instant,
}

fn addr(i: usize) -> NodeAddr {
    NodeAddr(0x1000 + i as u32)
}

impl Net {
    fn new(n: usize) -> Net {
        let now = Instant::from_micros(1_000);
        let mut net = Net {
            nodes: (0..n)
                .map(|i| Node {
                    addr: addr(i),
                    layer: SocketLayer::new(i as u64 * 7919 + 1, now),
                    wire: Wire::default(),
                    events: Vec::new(),
                })
                .collect(),
            now,
        };
        for i in 0..n {
            net.input(i, NodeInput::AddressConfirmed(addr(i)));
        }
        for i in 0..n {
            for j in (0..n).filter(|j| *j != i) {
                net.nodes[i].wire.up.insert(addr(j));
                net.input(i, NodeInput::NodeUp(addr(j)));
            }
        }
        net.run();
        net
    }

    fn input(&mut self, i: usize, input: NodeInput) {
        let now = self.now;
        let n = &mut self.nodes[i];
        n.layer.handle(now, input, &mut n.wire);
        n.layer.flush(now, &mut n.wire);
        while let Some(e) = n.layer.poll_event() {
            n.events.push(e);
        }
    }

    /// Runs `f` on node `i`'s layer with its links, keeping its events.
    fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut SocketLayer, &mut Wire, Instant) -> R) -> R {
        let now = self.now;
        let n = &mut self.nodes[i];
        let r = f(&mut n.layer, &mut n.wire, now);
        while let Some(e) = n.layer.poll_event() {
            n.events.push(e);
        }
        r
    }

    /// Carries every message handed to links until none is left.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let from = self.nodes[i].addr;
                for (dest, msg) in std::mem::take(&mut self.nodes[i].wire.out) {
                    moved = true;
                    let targets: Vec<usize> = match dest {
                        Some(d) => self.nodes.iter().position(|n| n.addr == d).into_iter().collect(),
                        None => (0..self.nodes.len()).filter(|j| *j != i).collect(),
                    };
                    for j in targets {
                        self.input(j, NodeInput::Delivered { from, msg: msg.clone() });
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Opens a port on node `i`.
    fn open(&mut self, i: usize) -> PortId {
        self.with(i, |l, _, _| l.open_port())
    }

    /// Opens a connection socket's port on node `i`.
    fn open_conn(&mut self, i: usize) -> PortId {
        self.with(i, |l, _, _| l.open_conn_port())
    }

    /// Port `p` of node `i` joins the group `spec`.
    fn join(&mut self, i: usize, p: PortId, spec: GroupSpec) {
        self.with(i, |l, w, _| l.group_join(p, spec, w)).expect("join");
    }

    /// Port `p` of node `i` binds `range` in cluster scope.
    fn bind(&mut self, i: usize, p: PortId, range: ServiceRange) {
        self.with(i, |l, w, _| l.bind(p, range, Scope::Cluster, w)).expect("bind");
    }

    fn take(&mut self, i: usize) -> Vec<SocketEvent> {
        std::mem::take(&mut self.nodes[i].events)
    }

    /// Node `i` subscribes to every binding of type `t` (PORTS).
    fn watch(&mut self, i: usize, t: ServiceType) -> SubId {
        let all = ServiceRange { stype: t, lower: Instance(0), upper: Instance(u32::MAX) };
        self.with(i, |l, _, now| l.subscribe(now, Subscription::ports(all))).expect("subscribe")
    }
}

/// The topology events among `evs`: (kind, found range, binding socket).
fn topo(evs: &[SocketEvent]) -> Vec<(EventKind, ServiceRange, MemberId)> {
    evs.iter()
        .filter_map(|e| match e {
            SocketEvent::Topology(t) => Some((t.kind, t.found, t.port)),
            _ => None,
        })
        .collect()
}

fn port_messages(evs: &[SocketEvent]) -> Vec<&PortMessage> {
    evs.iter()
        .filter_map(|e| match e {
            SocketEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn group_events(evs: &[SocketEvent]) -> Vec<&GroupEvent> {
    evs.iter()
        .filter_map(|e| match e {
            SocketEvent::Group { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

const SVC: ServiceType = ServiceType(1000);

fn spec(inst: u32) -> GroupSpec {
    GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(inst),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    }
}

fn send(net: &mut Net, i: usize, from: PortId, dest: Dest, data: &'static [u8]) -> Result<(), SocketError> {
    net.with(i, |l, w, now| l.send(now, from, dest, Bytes::from_static(data), SendOpts::default(), w))
}

#[test]
fn a_binding_reaches_the_other_node_and_anycast_finds_it() {
    let mut net = Net::new(2);
    net.watch(1, SVC);
    let pa = net.open(0);
    net.bind(0, pa, ServiceRange::single(SVC, Instance(5)));
    net.run();
    let evs = net.take(1);
    let bound = MemberId { node: addr(0), port: pa };
    assert!(topo(&evs).iter().any(|(k, _, m)| *k == EventKind::Published && *m == bound), "{evs:?}");

    let pb = net.open(1);
    send(&mut net, 1, pb, Dest::Service { stype: SVC, inst: Instance(5) }, b"hello").expect("anycast");
    net.run();
    let evs = net.take(0);
    let got = port_messages(&evs);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].port, got[0].from_node, got[0].from_port), (pa, addr(1), pb));
    assert_eq!(got[0].dest, Some(ServiceRange::single(SVC, Instance(5))));
    assert_eq!(&got[0].data[..], b"hello");
}

#[test]
fn a_returnable_message_to_a_missing_port_comes_back_with_no_port() {
    let mut net = Net::new(2);
    let pb = net.open(1);
    let gone = PortId(0x7000_0001);
    let opts = SendOpts { returnable: true, ..SendOpts::default() };
    net.with(1, |l, w, now| {
        l.send(now, pb, Dest::Socket { node: addr(0), port: gone }, Bytes::from_static(b"x"), opts, w)
    })
    .expect("send");
    net.run();
    assert_eq!(net.nodes[0].layer.stats().no_port, 1);
    let evs = net.take(1);
    let back = port_messages(&evs);
    assert_eq!(back.len(), 1, "{evs:?}");
    assert_eq!((back[0].port, back[0].from_port, back[0].err), (pb, gone, ErrorCode::NoPort));

    // not returnable: counted and dropped, nothing comes back
    send(&mut net, 1, pb, Dest::Socket { node: addr(0), port: gone }, b"y").expect("send");
    net.run();
    assert_eq!(net.nodes[0].layer.stats().no_port, 2);
    assert!(port_messages(&net.take(1)).is_empty());
}

#[test]
fn group_broadcast_reaches_the_other_member_after_its_join() {
    let mut net = Net::new(3);
    let ports: Vec<PortId> = (0..3).map(|i| net.open(i)).collect();
    for (i, p) in ports.iter().enumerate() {
        net.join(i, *p, spec(i as u32));
        net.run();
    }
    for i in 0..3 {
        net.take(i);
    }
    send(&mut net, 0, ports[0], Dest::GroupBroadcast, b"all").expect("broadcast");
    net.run();
    for i in 1..3 {
        let evs = net.take(i);
        let g = group_events(&evs);
        assert!(
            matches!(g.as_slice(), [GroupEvent::Message { from, mode: Mode::Broadcast, data, .. }]
                if *from == MemberId { node: addr(0), port: ports[0] } && &data[..] == b"all"),
            "node {i}: {g:?}"
        );
    }
    // no loopback: the sender does not get its own broadcast
    assert!(group_events(&net.take(0)).is_empty());
}

#[test]
fn member_events_come_with_joins_and_node_loss() {
    let mut net = Net::new(2);
    net.watch(0, ServiceType(4711));
    let pa = net.open(0);
    let pb = net.open(1);
    net.join(0, pa, spec(1));
    net.join(1, pb, spec(2));
    net.run();
    let evs = net.take(0);
    assert!(
        group_events(&evs).iter().any(|e| matches!(e, GroupEvent::MemberUp { instance: Instance(2), .. })),
        "{evs:?}"
    );
    net.nodes[0].wire.up.clear();
    net.input(0, NodeInput::NodeDown(addr(1)));
    let evs = net.take(0);
    assert!(topo(&evs).iter().any(|(k, _, m)| *k == EventKind::Withdrawn && m.node == addr(1)), "{evs:?}");
    assert!(
        group_events(&evs).iter().any(|e| matches!(e, GroupEvent::MemberDown { instance: Instance(2), .. })),
        "{evs:?}"
    );
    assert!(net.nodes[0].layer.names().of_type(ServiceType(4711)).all(|p| p.node != addr(1)));
}

#[test]
fn a_congested_link_refuses_plain_sends_and_delays_name_updates_in_order() {
    let mut net = Net::new(2);
    net.watch(1, SVC);
    let pa = net.open(0);
    let pb = net.open(1);
    net.nodes[0].wire.congested.insert(addr(1));
    assert_eq!(
        send(&mut net, 0, pa, Dest::Socket { node: addr(1), port: pb }, b"x"),
        Err(SocketError::WouldBlock(addr(1)))
    );
    // bindings made meanwhile wait in the outbox, in order
    for inst in 1..=3 {
        net.bind(0, pa, ServiceRange::single(SVC, Instance(inst)));
    }
    assert!(!net.nodes[0].layer.outbox_empty());
    net.run();
    assert!(net.nodes[1].layer.names().of_type(SVC).next().is_none());
    // while they wait, the link counts as congested even if it is not
    net.nodes[0].wire.congested.clear();
    assert_eq!(
        send(&mut net, 0, pa, Dest::Socket { node: addr(1), port: pb }, b"x"),
        Err(SocketError::WouldBlock(addr(1)))
    );
    net.input(0, NodeInput::Uncongested(addr(1)));
    assert!(net.nodes[0].layer.outbox_empty());
    net.run();
    let evs = net.take(1);
    let insts: Vec<u32> =
        topo(&evs).iter().filter(|(k, ..)| *k == EventKind::Published).map(|(_, r, _)| r.lower.0).collect();
    assert_eq!(insts, vec![1, 2, 3]);
    send(&mut net, 0, pa, Dest::Socket { node: addr(1), port: pb }, b"x").expect("uncongested");
}

/// Multicasts `data` to `range` from node 0's `sender`; returns how many
/// unicast and broadcast-link messages it handed to links.
fn link_sends(net: &mut Net, sender: PortId, range: ServiceRange, data: &'static [u8]) -> (usize, usize) {
    let before = (net.nodes[0].wire.unicasts, net.nodes[0].wire.broadcasts);
    send(net, 0, sender, Dest::Range(range), data).expect("mcast");
    (net.nodes[0].wire.unicasts - before.0, net.nodes[0].wire.broadcasts - before.1)
}

#[test]
fn multicast_goes_by_replicast_to_few_nodes_and_broadcast_to_many() {
    // 12 nodes: the rule's threshold is 1 + 11 × 10 / 100 = 2 destination nodes
    let mut net = Net::new(12);
    let sender = net.open(0);
    let range = ServiceRange { stype: SVC, lower: Instance(0), upper: Instance(100) };
    let bind = |net: &mut Net, i: usize| {
        let p = net.open(i);
        net.bind(i, p, ServiceRange::single(SVC, Instance(i as u32)));
        net.run();
    };
    bind(&mut net, 1);
    bind(&mut net, 2);
    assert_eq!(link_sends(&mut net, sender, range, b"few"), (2, 0), "two nodes: replicast");
    net.run();

    for i in 3..6 {
        bind(&mut net, i);
    }
    // a forced method applies at once; the automatic one sticks for METHOD_EXPIRE
    net.with(0, |l, _, _| l.set_mcast_method(sender, McastMethod::Broadcast));
    assert_eq!(link_sends(&mut net, sender, range, b"many"), (0, 1), "five nodes: one broadcast");
    net.run();
    for i in 1..6 {
        let evs = net.take(i);
        let data: Vec<&[u8]> = port_messages(&evs).iter().map(|m| &m.data[..]).collect();
        assert_eq!(data, vec![&b"few"[..], &b"many"[..]][if i <= 2 { 0.. } else { 1.. }], "node {i}");
    }
    assert_eq!(net.nodes[0].layer.stats().bcast_sends, 1);
    assert_eq!(net.nodes[0].layer.stats().replicast_copies, 2);
}

#[test]
fn the_automatic_method_sticks_until_it_expires() {
    let mut net = Net::new(12);
    let sender = net.open(0);
    let range = ServiceRange { stype: SVC, lower: Instance(0), upper: Instance(100) };
    for i in 1..6 {
        let p = net.open(i);
        net.bind(i, p, ServiceRange::single(SVC, Instance(i as u32)));
        net.run();
    }
    let narrow = ServiceRange { stype: SVC, lower: Instance(1), upper: Instance(1) };
    send(&mut net, 0, sender, Dest::Range(range), b"wide").expect("mcast");
    assert_eq!(net.nodes[0].wire.broadcasts, 1, "five nodes: broadcast");
    // one destination would be replicast, but the choice sticks for 5 s
    send(&mut net, 0, sender, Dest::Range(narrow), b"narrow").expect("mcast");
    assert_eq!(net.nodes[0].wire.broadcasts, 2);
    net.now += METHOD_EXPIRE;
    let unicasts = net.nodes[0].wire.unicasts;
    send(&mut net, 0, sender, Dest::Range(narrow), b"narrow").expect("mcast");
    assert_eq!((net.nodes[0].wire.broadcasts, net.nodes[0].wire.unicasts), (2, unicasts + 1));
}

#[test]
fn calls_out_of_place_are_typed_errors() {
    let mut net = Net::new(2);
    let p = net.open(0);
    let bind = |net: &mut Net, r: ServiceRange| net.with(0, |l, w, _| l.bind(p, r, Scope::Cluster, w));
    assert_eq!(
        bind(&mut net, ServiceRange::single(ServiceType(63), Instance(1))),
        Err(SocketError::ReservedType(ServiceType(63)))
    );
    let bad = ServiceRange { stype: SVC, lower: Instance(9), upper: Instance(3) };
    assert_eq!(bind(&mut net, bad), Err(SocketError::BadRange(bad)));
    assert_eq!(
        net.with(0, |l, w, _| l.bind(PortId(2), ServiceRange::single(SVC, Instance(1)), Scope::Cluster, w)),
        Err(SocketError::NoSuchPort(PortId(2)))
    );
    assert_eq!(send(&mut net, 0, p, Dest::GroupBroadcast, b"x"), Err(SocketError::NotJoined));
    let alone = net.open(1);
    let lonely = GroupSpec { stype: ServiceType(4712), ..spec(9) };
    net.join(1, alone, lonely);
    assert_eq!(send(&mut net, 1, alone, Dest::GroupBroadcast, b"x"), Err(SocketError::NoMembers));
    assert_eq!(
        send(&mut net, 0, p, Dest::Service { stype: SVC, inst: Instance(1) }, b"x"),
        Err(SocketError::NoService { stype: SVC, inst: Instance(1) })
    );
    let big = Bytes::from(vec![0u8; tipc_wire::MAX_USER_MSG_SIZE + 1]);
    assert_eq!(
        net.with(0, |l, w, now| l.send(now, p, Dest::Socket { node: addr(1), port: p }, big, SendOpts::default(), w)),
        Err(SocketError::TooLarge(tipc_wire::MAX_USER_MSG_SIZE + 1))
    );
    net.join(0, p, spec(1));
    assert_eq!(net.with(0, |l, w, _| l.group_join(p, spec(1), w)), Err(SocketError::AlreadyJoined));
    assert_eq!(
        net.with(0, |l, w, _| l.bind(p, ServiceRange::single(SVC, Instance(1)), Scope::Cluster, w)),
        Err(SocketError::InGroup)
    );
    // a member's plain destinations are group sends, as in the kernel
    let other = MemberId { node: addr(1), port: p };
    assert_eq!(
        send(&mut net, 0, p, Dest::Socket { node: addr(1), port: p }, b"x"),
        Err(SocketError::NoSuchMember(other))
    );
    assert_eq!(
        send(&mut net, 0, p, Dest::Service { stype: SVC, inst: Instance(7) }, b"x"),
        Err(SocketError::NoInstance(Instance(7)))
    );
    let range = ServiceRange { stype: SVC, lower: Instance(8), upper: Instance(9) };
    assert_eq!(send(&mut net, 0, p, Dest::Range(range), b"x"), Err(SocketError::NoInstance(Instance(8))));
    let bad = ServiceRange { stype: SVC, lower: Instance(9), upper: Instance(8) };
    assert_eq!(send(&mut net, 0, p, Dest::Range(bad), b"x"), Err(SocketError::BadRange(bad)));
    assert_eq!(send(&mut net, 0, p, Dest::GroupAnycast(Instance(7)), b"x"), Err(SocketError::NoInstance(Instance(7))));
    let stranger = MemberId { node: addr(1), port: PortId(3) };
    assert_eq!(send(&mut net, 0, p, Dest::Member(stranger), b"x"), Err(SocketError::NoSuchMember(stranger)));

    // before the address is confirmed
    let mut fresh = SocketLayer::new(1, Instant::from_micros(0));
    let q = fresh.open_port();
    let mut w = Wire::default();
    assert_eq!(
        fresh.bind(q, ServiceRange::single(SVC, Instance(1)), Scope::Cluster, &mut w),
        Err(SocketError::NotReady)
    );
}

#[test]
fn malformed_and_forged_input_is_counted_not_delivered() {
    let mut net = Net::new(2);
    net.input(0, NodeInput::Delivered { from: addr(1), msg: Bytes::from_static(&[0x45, 0, 0]) });
    assert_eq!(net.nodes[0].layer.stats().malformed, 1);
    // a group message for a socket that is no member
    let mut m = DataMsg::new(DataType::GrpUcast, Bytes::from_static(b"x"));
    m.orig_node = addr(1);
    m.dest_node = addr(0);
    m.dest_port = PortId(99);
    let b = Msg::Data(m).to_bytes().expect("encode");
    net.input(0, NodeInput::Delivered { from: addr(1), msg: b });
    assert_eq!(net.nodes[0].layer.stats().not_member, 1);
    assert!(net.take(0).iter().all(|e| !matches!(e, SocketEvent::Message(_) | SocketEvent::Group { .. })));
}

#[test]
fn closing_a_port_withdraws_its_bindings_everywhere() {
    let mut net = Net::new(2);
    let p = net.open(0);
    net.bind(0, p, ServiceRange::single(SVC, Instance(1)));
    net.run();
    assert_eq!(net.nodes[1].layer.names().of_type(SVC).count(), 1);
    net.with(0, |l, w, _| l.close_port(p, w));
    net.run();
    assert_eq!(net.nodes[1].layer.names().of_type(SVC).count(), 0);
    assert!(!net.nodes[0].layer.is_open(p));
    let q = net.open(0);
    assert!(net.nodes[0].layer.is_open(q));
}

/// The largest message goes, one byte more does not, plain and in a group;
/// a member's congested link holds group sends back; the node's address
/// and member statistics are what the layer reports.
#[test]
fn size_limit_congestion_and_reports() {
    let mut net = Net::new(2);
    assert_eq!(net.nodes[0].layer.address(), Some(addr(0)));
    let pa = net.open(0);
    let pb = net.open(1);
    let max = Bytes::from(vec![7u8; tipc_wire::MAX_USER_MSG_SIZE]);
    let to_b = Dest::Socket { node: addr(1), port: pb };
    net.with(0, |l, w, now| l.send(now, pa, to_b, max.clone(), SendOpts::default(), w)).expect("66000 bytes");
    let ga = net.open(0);
    let gb = net.open(1);
    net.join(0, ga, spec(1));
    net.join(1, gb, spec(2));
    net.run();
    let member = MemberId { node: addr(1), port: gb };
    net.with(0, |l, w, now| l.send(now, ga, Dest::Member(member), max.clone(), SendOpts::default(), w))
        .expect("66000 bytes in a group");
    let over = Bytes::from(vec![7u8; tipc_wire::MAX_USER_MSG_SIZE + 1]);
    assert_eq!(
        net.with(0, |l, w, now| l.send(now, ga, Dest::Member(member), over, SendOpts::default(), w)),
        Err(SocketError::TooLarge(tipc_wire::MAX_USER_MSG_SIZE + 1))
    );
    let stats = net.nodes[0].layer.member_stats();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].socket, stats[0].member, stats[0].instance), (ga, member, 2));
    // the member's link congested: group sends wait, plain sends to it too
    net.nodes[0].wire.congested.insert(addr(1));
    assert_eq!(send(&mut net, 0, ga, Dest::GroupBroadcast, b"x"), Err(SocketError::WouldBlock(NodeAddr(0))));
    assert_eq!(send(&mut net, 0, ga, Dest::Member(member), b"x"), Err(SocketError::WouldBlock(NodeAddr(0))));
    assert_eq!(send(&mut net, 0, pa, to_b, b"x"), Err(SocketError::WouldBlock(addr(1))));
    net.nodes[0].wire.congested.clear();
    send(&mut net, 0, pa, to_b, b"x").expect("uncongested");
}

/// A returned message gets a header of at least 32 bytes: a 24-byte one
/// comes back with 32.
#[test]
fn a_short_header_comes_back_with_a_full_one() {
    let mut net = Net::new(2);
    let from = net.open(1);
    let mut m = DataMsg::new(DataType::Direct, Bytes::from_static(b"short"));
    m.hsize = tipc_wire::SHORT_H_SIZE;
    m.flags.d = false;
    m.prev_node = addr(1);
    m.orig_port = from;
    m.dest_port = PortId(0x7000_0005);
    net.input(0, NodeInput::Delivered { from: addr(1), msg: Msg::Data(m).to_bytes().expect("encode") });
    let back = std::mem::take(&mut net.nodes[0].wire.out);
    match back.first().map(|(_, b)| Msg::parse(b.clone())) {
        Some(Ok(Msg::Data(r))) => {
            assert_eq!(
                (r.hsize, r.err, r.dest_node, r.dest_port),
                (tipc_wire::BASIC_H_SIZE, ErrorCode::NoPort, addr(1), from)
            );
        }
        other => panic!("expected a returned message, got {other:?}"),
    }
}

/// Name updates are counted as they arrive; one from a node without a link
/// is refused and counted as bad.
#[test]
fn name_updates_are_counted_by_what_became_of_them() {
    let mut net = Net::new(2);
    let p = net.open(1);
    net.bind(1, p, ServiceRange::single(SVC, Instance(3)));
    let publ: Vec<Bytes> = std::mem::take(&mut net.nodes[1].wire.out).into_iter().map(|(_, b)| b).collect();
    net.with(1, |l, w, _| l.unbind(p, ServiceRange::single(SVC, Instance(3)), w));
    let withdraw: Vec<Bytes> = std::mem::take(&mut net.nodes[1].wire.out).into_iter().map(|(_, b)| b).collect();
    assert_eq!((publ.len(), withdraw.len()), (1, 1));
    let before = net.nodes[0].layer.stats();
    net.input(0, NodeInput::Delivered { from: addr(1), msg: publ[0].clone() });
    let s = net.nodes[0].layer.stats();
    assert_eq!(s.names_in - before.names_in, 1);
    assert_eq!(net.nodes[0].layer.names().of_type(SVC).count(), 1, "the publication applies");
    // from a node whose link is down: refused
    net.nodes[0].wire.up.remove(&addr(1));
    net.input(0, NodeInput::Delivered { from: addr(1), msg: withdraw[0].clone() });
    let after = net.nodes[0].layer.stats();
    assert_eq!(after.names_in - s.names_in, 1);
    assert_eq!(after.bad_names - s.bad_names, 1);
    assert_eq!(net.nodes[0].layer.names().of_type(SVC).count(), 1, "nothing withdrawn");
}

/// Data, group protocol and forged group protocol are counted where they
/// arrive: `data_in`, `group_proto_in`, `not_member`.
#[test]
fn arriving_messages_are_counted_by_kind() {
    let mut net = Net::new(2);
    let pa = net.open(0);
    let pb = net.open(1);
    net.join(0, pa, spec(1));
    net.join(1, pb, spec(2));
    let before = net.nodes[1].layer.stats();
    net.run();
    let s = net.nodes[1].layer.stats();
    assert!(s.group_proto_in > before.group_proto_in, "the JOIN was counted");
    send(&mut net, 0, pa, Dest::Member(MemberId { node: addr(1), port: pb }), b"x").expect("unicast");
    net.run();
    let t = net.nodes[1].layer.stats();
    assert_eq!(t.data_in - s.data_in, 1);
    // a GROUP_PROTOCOL message claiming another origin than its neighbour
    let forged: Vec<Bytes> = {
        net.with(0, |l, w, _| l.group_leave(pa, w)).expect("leave");
        std::mem::take(&mut net.nodes[0].wire.out)
            .into_iter()
            .filter(|(_, b)| matches!(Msg::parse(b.clone()), Ok(Msg::GroupProto(_))))
            .map(|(_, b)| b)
            .collect()
    };
    assert!(!forged.is_empty());
    net.input(1, NodeInput::Delivered { from: addr(7), msg: forged[0].clone() });
    let u = net.nodes[1].layer.stats();
    assert_eq!((u.group_proto_in - t.group_proto_in, u.not_member - t.not_member), (1, 1));
    assert!(net.nodes[1].layer.group(pb).is_some_and(|g| g.members().count() == 1), "the forged LEAVE changed nothing");
}

/// A named message for a socket that went away finds another local socket
/// bound to the name; one for a port that never bound it comes back with
/// NO_NAME and a header of at least 32 bytes.
#[test]
fn named_messages_take_a_secondary_lookup_or_come_back_with_no_name() {
    let mut net = Net::new(2);
    let gone = net.open(0);
    let heir = net.open(0);
    for p in [gone, heir] {
        net.bind(0, p, ServiceRange::single(SVC, Instance(4)));
    }
    net.run();
    let from = net.open(1);
    let mut m = DataMsg::new(DataType::Named, Bytes::from_static(b"late"));
    m.flags.d = false;
    m.prev_node = addr(1);
    m.orig_node = addr(1);
    m.orig_port = from;
    m.dest_node = addr(0);
    m.dest_port = PortId(0x7000_0003);
    m.name_type = SVC;
    m.name_inst = Instance(4);
    net.input(0, NodeInput::Delivered { from: addr(1), msg: Msg::Data(m.clone()).to_bytes().expect("encode") });
    let got = net.take(0);
    let msgs = port_messages(&got);
    assert_eq!(msgs.len(), 1, "{got:?}");
    assert!(msgs[0].port == gone || msgs[0].port == heir);
    // nobody bound to instance 5: back to the sender with NO_NAME
    m.name_inst = Instance(5);
    net.input(0, NodeInput::Delivered { from: addr(1), msg: Msg::Data(m).to_bytes().expect("encode") });
    let back = std::mem::take(&mut net.nodes[0].wire.out);
    assert_eq!(back.len(), 1);
    match Msg::parse(back[0].1.clone()) {
        Ok(Msg::Data(r)) => {
            assert_eq!(
                (r.err, r.dest_port, r.orig_port, r.dest_node),
                (ErrorCode::NoName, from, PortId(0x7000_0003), addr(1))
            );
            assert!(r.hsize >= tipc_wire::BASIC_H_SIZE);
        }
        other => panic!("expected a returned message, got {other:?}"),
    }
}

/// A node-scope group sees only node-scope bindings of its own node, a
/// cluster group only cluster bindings.
#[test]
fn groups_see_members_of_their_own_scope() {
    let mut net = Net::new(2);
    let node_spec = |i| GroupSpec { scope: Scope::Node, ..spec(i) };
    let a = net.open(0);
    let b = net.open(0);
    let c = net.open(1);
    let d = net.open(0);
    net.join(0, a, node_spec(1));
    net.join(0, b, node_spec(2));
    net.join(1, c, node_spec(3));
    net.join(0, d, spec(4));
    net.run();
    let members = |net: &Net, p: PortId| -> Vec<MemberId> {
        net.nodes[0].layer.group(p).map(|g| g.members().map(|(m, _)| *m).collect()).unwrap_or_default()
    };
    assert_eq!(members(&net, a), vec![MemberId { node: addr(0), port: b }], "node scope: b only");
    assert!(members(&net, d).is_empty(), "the cluster group sees no node-scope binding");
    // a later joiner finds the existing node-scope member
    let e = net.open(0);
    net.join(0, e, node_spec(5));
    let mut got = members(&net, e);
    got.sort();
    let mut want = vec![MemberId { node: addr(0), port: a }, MemberId { node: addr(0), port: b }];
    want.sort();
    assert_eq!(got, want);
}

/// What waits for a congested link holds later sends back: a member's link
/// for group sends, the broadcast link for multicasts; the queued
/// broadcast goes out once the broadcast link takes it.
#[test]
fn queued_traffic_holds_later_sends_back() {
    let mut net = Net::new(12);
    let ga = net.open(0);
    let gb = net.open(1);
    net.join(0, ga, spec(1));
    net.join(1, gb, spec(2));
    net.run();
    net.nodes[0].wire.congested.insert(addr(1));
    let member = MemberId { node: addr(1), port: gb };
    assert_eq!(send(&mut net, 0, ga, Dest::Member(member), b"x"), Err(SocketError::WouldBlock(NodeAddr(0))));
    net.nodes[0].wire.congested.clear();
    send(&mut net, 0, ga, Dest::Member(member), b"x").expect("free again");

    let sender = net.open(0);
    net.with(0, |l, _, _| l.set_mcast_method(sender, McastMethod::Broadcast));
    for i in 2..5 {
        let p = net.open(i);
        net.bind(i, p, ServiceRange::single(SVC, Instance(1)));
    }
    net.run();
    let range = ServiceRange::single(SVC, Instance(1));
    net.nodes[0].wire.bcast_congested = true;
    send(&mut net, 0, sender, Dest::Range(range), b"first").expect("queued");
    assert!(!net.nodes[0].layer.outbox_empty());
    assert_eq!(send(&mut net, 0, sender, Dest::Range(range), b"second"), Err(SocketError::WouldBlock(NodeAddr(0))));
    net.nodes[0].wire.bcast_congested = false;
    net.input(0, NodeInput::Uncongested(NodeAddr(0)));
    assert!(net.nodes[0].layer.outbox_empty());
    assert_eq!(net.nodes[0].wire.broadcasts, 1);
}

/// Members of one group on one node reach each other without a link; our
/// node-state binding {0, address} is in our table from the start.
#[test]
fn local_members_talk_without_links_and_the_node_state_binding_exists() {
    let mut net = Net::new(1);
    assert!(
        net.nodes[0].layer.names().of_type(ServiceType(0)).any(|p| p.range.lower.0 == addr(0).0 && p.node == addr(0))
    );
    let a = net.open(0);
    let b = net.open(0);
    net.join(0, a, spec(1));
    net.join(0, b, spec(2));
    net.take(0);
    send(&mut net, 0, a, Dest::Member(MemberId { node: addr(0), port: b }), b"next door").expect("unicast");
    let evs = net.take(0);
    assert!(
        evs.iter().any(|e| matches!(e, SocketEvent::Group { port, event: GroupEvent::Message { data, .. } } if *port == b && &data[..] == b"next door")),
        "{evs:?}"
    );
    assert!(net.nodes[0].wire.out.is_empty(), "nothing went to a link");
}

/// Group unicast data naming another group's type is not delivered.
#[test]
fn group_data_for_another_group_type_is_dropped() {
    let mut net = Net::new(2);
    let gb = net.open(1);
    net.join(1, gb, spec(2));
    net.take(1);
    let mut m = DataMsg::new(DataType::GrpUcast, Bytes::from_static(b"x"));
    m.prev_node = addr(0);
    m.orig_node = addr(0);
    m.orig_port = PortId(5);
    m.dest_node = addr(1);
    m.dest_port = gb;
    m.name_type = ServiceType(9999);
    let before = net.nodes[1].layer.stats().not_member;
    net.input(1, NodeInput::Delivered { from: addr(0), msg: Msg::Data(m).to_bytes().expect("encode") });
    assert_eq!(net.nodes[1].layer.stats().not_member - before, 1);
    assert!(group_events(&net.take(1)).is_empty());
}

/// A link that comes up is published as `{2, peer}` in node scope on our
/// own node, port 0, and goes away before the peer's bindings when the
/// link goes down (net/tipc/node.c `TIPC_LINK_STATE`; the kernel reports
/// link WITHDRAWN before node WITHDRAWN).
#[test]
fn links_are_published_as_link_state_bindings_on_their_own_node() {
    let mut net = Net::new(2);
    let link_state = |net: &Net, i: usize| -> Vec<Publication> {
        net.nodes[i].layer.names().iter().filter(|p| p.range.stype == ServiceType(2)).copied().collect()
    };
    let on0 = link_state(&net, 0);
    assert_eq!(on0.len(), 1, "only node 0's own link, never a peer's: {on0:?}");
    assert_eq!(on0[0].range, ServiceRange::single(ServiceType(2), Instance(addr(1).0)));
    assert_eq!((on0[0].node, on0[0].port, on0[0].scope), (addr(0), PortId(0), Scope::Node));
    assert_eq!(link_state(&net, 1)[0].range.lower, Instance(addr(0).0));
    net.watch(0, ServiceType(2));
    net.watch(0, ServiceType(0));
    net.take(0);
    net.nodes[0].wire.up.remove(&addr(1));
    net.input(0, NodeInput::NodeDown(addr(1)));
    let gone: Vec<u32> =
        topo(&net.take(0)).iter().filter(|(k, ..)| *k == EventKind::Withdrawn).map(|(_, r, _)| r.stype.0).collect();
    // the link first, then the peer's node-state binding
    assert_eq!(gone.first(), Some(&2), "{gone:?}");
    assert!(gone.contains(&0), "{gone:?}");
    assert!(link_state(&net, 0).is_empty());
    // and back with the link
    net.nodes[0].wire.up.insert(addr(1));
    net.input(0, NodeInput::NodeUp(addr(1)));
    let back = topo(&net.take(0));
    assert!(back.iter().any(|(k, r, _)| *k == EventKind::Published && r.stype == ServiceType(2)), "{back:?}");
}
