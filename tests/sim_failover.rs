//! Parallel links on the simulator: every node has two bearers on two
//! segments (planes), so every pair of nodes has two links. Under frame
//! loss and reordering, one plane at a time is cut, for less or much more
//! than the link tolerance, at random moments of a stream of group unicasts
//! and broadcasts from several sockets. The promise (the kernel's, net/tipc/
//! node.c `tipc_node_check_state`, link.c `tipc_link_tnl_prepare`): a link
//! that fails hands its packets to the other (failover), a link that returns
//! takes its traffic back (synch), and the application sees every message
//! exactly once and in order, with no node or member ever reported down.

use bytes::Bytes;
use tipc_rs::fault::{FaultConfig, Rng};
use tipc_rs::link::{LinkState, LinkStats};
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{
    DataMsg, DataType, Duration, Instance, Instant, IntHdr, MemberId, Msg, PortId, ServiceType, TunnelMsg, TunnelType,
};
use tipc_rs::{CoreEvent, Dest, Error, GroupEvent, GroupSpec, Mode, Scope, SendOpts};

/// Senders on node 0 (several sockets, so both active slots carry traffic
/// when the links share it).
const SENDERS: usize = 4;

/// Joins `port` on `node` to the test group as `instance`.
fn join(net: &mut SimNet, node: usize, instance: u32) -> (PortId, MemberId) {
    let p = net.with(node, |c, _| c.open_port());
    let spec = GroupSpec {
        stype: ServiceType(7100),
        instance: Instance(instance),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    net.with(node, |c, _| c.group_join(p, spec)).expect("join");
    (p, MemberId { node: net.core(node).address().expect("address"), port: p })
}

/// Whether every node has both links up to every other node.
fn all_links_up(net: &mut SimNet) -> bool {
    let n = net.len();
    (0..n).all(|i| {
        let links = net.core(i).link().links();
        links.iter().filter(|l| l.state == LinkState::Established).count() == 2 * (n - 1)
    })
}

/// Sum of a link counter over every link of every node.
fn total(net: &mut SimNet, f: impl Fn(&LinkStats) -> u64) -> u64 {
    (0..net.len()).map(|i| net.core(i).link().links().iter().map(|l| f(&l.stats)).sum::<u64>()).sum()
}

/// What one seed did.
struct Run {
    cuts: u64,
    failovers: u64,
    synchs: u64,
    tunnel_delivered: u64,
    held: u64,
    tunnel_fragments: u64,
}

/// One run: three nodes, two planes (plane 1 at priority `prio1`, plane 0
/// at the default 10), faults, `n` messages per sender.
fn run(seed: u64, prio1: u8, mtu1: usize, n: u64) -> Run {
    let mut net = SimNet::new(seed);
    net.add_plane(|b| {
        b.priority = prio1;
        b.mtu = mtu1;
    });
    let ix = net.add_nodes(3);
    assert!(net.run_while(Duration::from_secs(30), |s| !all_links_up(s)), "seed {seed}: the six links did not come up");
    let senders: Vec<(PortId, MemberId)> = (0..SENDERS).map(|k| join(&mut net, ix[0], k as u32)).collect();
    let receivers: Vec<(PortId, MemberId)> = vec![join(&mut net, ix[1], 100), join(&mut net, ix[2], 101)];
    net.run_for(Duration::from_secs(1));
    for i in 0..net.len() {
        net.take_events(i);
    }
    net.set_faults(FaultConfig {
        drop: 0.03,
        reorder: 0.05,
        reorder_delay: Duration::from_micros(300),
        ..FaultConfig::default()
    });
    let mut rng = Rng::new(seed ^ 0xfa11);
    let target = receivers[0].1;
    // per (sender, receiver): the next sequence number due
    let mut next = vec![[0u64, 1u64]; SENDERS];
    let mut sent = vec![0u64; SENDERS];
    // each sender sends one message per 5 ms at most, so the stream
    // spans many cuts
    let mut next_send = [Instant::ZERO; SENDERS];
    let mut cut_over = Instant::ZERO;
    let mut next_cut = net.now() + Duration::from_millis(200);
    let mut cuts = 0u64;
    // after a long cut, until its links are back: the other plane in short
    // pulses (well within the tolerance), so the returning link often
    // comes up while the old one still has packets to resend, and its
    // synch must hold the new link's messages back
    let mut returning: Option<u8> = None;
    let mut next_pulse = Instant::ZERO;
    let end = net.now() + Duration::from_secs(600);
    let want_odd = |n: u64| n / 2;
    loop {
        let now = net.now();
        for (k, (port, _)) in senders.iter().enumerate() {
            if sent[k] >= n || now < next_send[k] {
                continue;
            }
            let seq = sent[k];
            let mode = if seq % 2 == 0 { Mode::Unicast } else { Mode::Broadcast };
            // every fifth message long: on a plane of a larger MTU its
            // packet must be split to fail over to the other
            let mut v = seq.to_be_bytes().to_vec();
            if seq % 5 == 0 {
                v.resize(8 + (seq as usize * 7919) % 3400, 0x5a);
            }
            let data = Bytes::from(v);
            let p = *port;
            match net.with(ix[0], |c, now| {
                c.send(now, p, Dest::group(mode, Some(target), Instance(0)).expect("dest"), data, SendOpts::default())
            }) {
                Ok(()) => {
                    sent[k] += 1;
                    next_send[k] = now + Duration::from_millis(if seq % 8 == 7 { 20 } else { 0 });
                }
                Err(Error::WouldBlock(_)) => {}
                Err(e) => panic!("seed {seed}: send: {e}"),
            }
        }
        // a plane goes down now and then, once both are up again
        if now >= cut_over && now >= next_cut && all_links_up(&mut net) {
            let plane = rng.below(2) as u8;
            // from a few ms (retransmission covers it) to well past the 1.5 s tolerance
            let ms = if rng.below(3) == 0 { 20 + rng.below(500) } else { 1600 + rng.below(2500) };
            cut_over = now + Duration::from_millis(ms);
            returning = (ms > 1500).then_some(plane);
            net.cut_plane(plane, now, cut_over);
            next_cut = cut_over + Duration::from_millis(rng.below(800));
            cuts += 1;
        }
        if let Some(plane) = returning
            && now >= cut_over
            && now >= next_pulse
        {
            if all_links_up(&mut net) {
                returning = None;
                // now and then the old plane fails just as the returning
                // link synchs: its failover must end the synch
                if rng.below(3) == 0 {
                    let until = now + Duration::from_millis(1600 + rng.below(1000));
                    net.cut_plane(1 - plane, now, until);
                    cut_over = until;
                    next_cut = until + Duration::from_millis(rng.below(800));
                    cuts += 1;
                }
            } else {
                net.cut_plane(1 - plane, now, now + Duration::from_millis(15));
                next_pulse = now + Duration::from_millis(45);
            }
        }
        let t = net.now() + Duration::from_micros(500);
        net.run_until(t);
        for node in 0..net.len() {
            for (_, ev) in net.take_events(node) {
                match ev {
                    CoreEvent::NodeDown(a) => panic!("seed {seed}: node {node} lost node {a} (cut #{cuts})"),
                    CoreEvent::Group { event: GroupEvent::MemberDown { member, .. }, .. } => {
                        panic!("seed {seed}: node {node} saw member {member:?} leave (cut #{cuts})")
                    }
                    CoreEvent::Group { port, event: GroupEvent::Message { from, data, .. } } => {
                        let l = data.len();
                        net.with(node, |c, _| c.group_consumed(port, from, l));
                        let Some(r) = receivers
                            .iter()
                            .position(|(p, m)| *p == port && m.node == net.core(node).address().unwrap_or_default())
                        else {
                            continue;
                        };
                        let Some(k) = senders.iter().position(|(_, m)| *m == from) else { continue };
                        let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                        let due = next[k][r];
                        assert_eq!(
                            seq, due,
                            "seed {seed}: receiver {r} from sender {k}: lost, duplicated or reordered (cut #{cuts})"
                        );
                        next[k][r] += if r == 0 { 1 } else { 2 };
                    }
                    _ => {}
                }
            }
        }
        let done = (0..SENDERS).all(|k| sent[k] >= n && next[k][0] >= n && next[k][1] > 2 * want_odd(n));
        if done && net.now() >= cut_over {
            break;
        }
        assert!(net.now() < end, "seed {seed}: stuck: sent {sent:?}, next {next:?}");
    }
    assert_eq!(net.oversized(), 0, "seed {seed}: a frame longer than its plane's MTU");
    Run {
        cuts,
        failovers: total(&mut net, |s| s.failovers),
        synchs: total(&mut net, |s| s.synchs),
        tunnel_delivered: total(&mut net, |s| s.tunnel_delivered),
        held: total(&mut net, |s| s.synch_held),
        tunnel_fragments: total(&mut net, |s| s.tunnel_fragments),
    }
}

#[test]
fn parallel_links_lose_duplicate_and_reorder_nothing_across_failures() {
    let seeds: u64 = std::env::var("TIPC_FAILOVER_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let (mut failovers, mut synchs, mut tunnelled, mut cuts, mut held, mut fragments) = (0, 0, 0, 0, 0, 0);
    for s in 0..seeds {
        // equal priorities share the traffic; a higher plane 1 carries it
        // alone; half the seeds give plane 1 a larger MTU (4000 bytes)
        let prio1 = if s % 2 == 0 { 10 } else { 20 };
        let mtu1 = if s % 4 >= 2 { 4000 } else { 1500 };
        let r = run(0xfa1_0000 + s, prio1, mtu1, 6000);
        eprintln!(
            "seed {s}: prio {prio1}, MTU {mtu1}: {} cuts, {} failovers, {} synchs, {} messages delivered from tunnels, {} held by synchs, {} tunnel fragments",
            r.cuts, r.failovers, r.synchs, r.tunnel_delivered, r.held, r.tunnel_fragments
        );
        fragments += r.tunnel_fragments;
        held += r.held;
        failovers += r.failovers;
        synchs += r.synchs;
        tunnelled += r.tunnel_delivered;
        cuts += r.cuts;
    }
    // the runs must have exercised what they claim to test
    assert!(cuts >= seeds, "{cuts} cuts");
    assert!(failovers > seeds, "{failovers} failovers");
    assert!(synchs > seeds, "{synchs} synchs");
    assert!(tunnelled > 0, "no message ever arrived through a failover");
    assert!(held > 0, "no synch ever held a message back");
    assert!(seeds < 4 || fragments > 0, "no failover ever split a packet");
}

/// With equal priorities both links of a pair carry traffic (load
/// sharing by the sending socket's port parity); with a higher priority
/// only that link does (net/tipc/node.c `__tipc_node_link_up`).
#[test]
fn equal_priorities_share_the_traffic_and_a_higher_one_takes_it_all() {
    for (prio1, shared) in [(10u8, true), (20u8, false)] {
        let mut net = SimNet::new(0x5a7e);
        net.add_plane(|b| b.priority = prio1);
        let ix = net.add_nodes(2);
        assert!(net.run_while(Duration::from_secs(30), |s| !all_links_up(s)));
        let to = join(&mut net, ix[1], 1).1;
        let ports: Vec<PortId> = (0..8).map(|k| join(&mut net, ix[0], 10 + k).0).collect();
        net.run_for(Duration::from_secs(1));
        let before: Vec<u64> = net.core(ix[0]).link().links().iter().map(|l| l.stats.sent_pkts).collect();
        for round in 0..20u64 {
            for &p in &ports {
                let data = Bytes::from(round.to_be_bytes().to_vec());
                let d = Dest::group(Mode::Unicast, Some(to), Instance(0)).expect("dest");
                net.with(ix[0], |c, now| c.send(now, p, d, data, SendOpts::default())).expect("send");
            }
            net.run_for(Duration::from_millis(5));
        }
        let links = net.core(ix[0]).link().links();
        let carried: Vec<u64> = links.iter().zip(&before).map(|(l, b)| l.stats.sent_pkts - b).collect();
        eprintln!(
            "priority {prio1}: packets per link {carried:?}, active {:?}",
            links.iter().map(|l| l.active).collect::<Vec<_>>()
        );
        assert_eq!(links.len(), 2);
        if shared {
            assert!(carried.iter().all(|&c| c > 20), "both links carry data: {carried:?}");
            assert!(links.iter().all(|l| l.active));
        } else {
            assert!(carried[0] < 10 && carried[1] > 100, "only plane 1 carries data: {carried:?}");
            assert_eq!(links.iter().map(|l| l.active).collect::<Vec<_>>(), [false, true]);
        }
    }
}

/// Two nodes with two links each (plane 1 configured by `plane1`, node 1
/// by `tweak1`), both links up.
fn pair(
    seed: u64,
    plane1: impl FnOnce(&mut tipc_rs::link::BearerSettings),
    tweak1: impl FnOnce(&mut tipc_rs::link::LinkConfig),
) -> SimNet {
    let mut net = SimNet::new(seed);
    net.add_plane(plane1);
    net.add_node("pair-0", |_| {});
    net.add_node("pair-1", tweak1);
    assert!(net.run_while(Duration::from_secs(30), |s| !all_links_up(s)), "the links did not come up");
    net
}

/// `n` numbered group unicasts from each of `senders` (on node 0) to `to`,
/// with `between` run after each round; checks they arrive once and in
/// order and that nobody is reported down.
fn stream_between(
    net: &mut SimNet,
    senders: &[PortId],
    to: MemberId,
    n: u64,
    mut between: impl FnMut(&mut SimNet, u64),
) {
    let mut next = vec![0u64; senders.len()];
    let mut sent = vec![0u64; senders.len()];
    let end = net.now() + Duration::from_secs(120);
    while next.iter().any(|&x| x < n) {
        for (k, &p) in senders.iter().enumerate() {
            if sent[k] < n {
                let data = Bytes::from(sent[k].to_be_bytes().to_vec());
                let d = Dest::group(Mode::Unicast, Some(to), Instance(0)).expect("dest");
                if net.with(0, |c, now| c.send(now, p, d, data, SendOpts::default())).is_ok() {
                    sent[k] += 1;
                }
            }
        }
        let least = sent.iter().copied().min().unwrap_or(0);
        between(net, least);
        net.run_for(Duration::from_micros(500));
        for node in 0..net.len() {
            for (_, ev) in net.take_events(node) {
                match ev {
                    CoreEvent::NodeDown(a) => panic!("node {node} lost {a}"),
                    CoreEvent::Group { port, event: GroupEvent::Message { from, data, .. } } => {
                        let l = data.len();
                        net.with(node, |c, _| c.group_consumed(port, from, l));
                        let k = senders.iter().position(|p| *p == from.port).expect("a sender");
                        let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                        assert_eq!(seq, next[k], "sender {k}: lost, duplicated or reordered");
                        next[k] += 1;
                    }
                    CoreEvent::Group { event: GroupEvent::MemberDown { member, .. }, .. } => panic!("{member:?} left"),
                    _ => {}
                }
            }
        }
        assert!(net.now() < end, "stuck at {next:?}");
    }
}

/// A bearer disabled mid-stream fails its links over (nothing lost, the
/// peer's link on that plane goes down too); enabled again, the links come
/// back. The only bearer disabled takes the node down.
#[test]
fn a_bearer_disabled_mid_stream_fails_over_and_returns() {
    let mut net = pair(0xd15a, |_| {}, |_| {});
    let to = join(&mut net, 1, 1).1;
    let senders: Vec<PortId> = (0..4).map(|k| join(&mut net, 0, 10 + k).0).collect();
    net.run_for(Duration::from_secs(1));
    for i in 0..2 {
        net.take_events(i);
    }
    let settings = net.core(0).link().bearers()[1].1.clone();
    stream_between(&mut net, &senders, to, 3000, |net, k| {
        if k == 1000 {
            net.with(0, |c, now| c.disable_bearer(now, 1)).expect("disable");
            assert!(matches!(net.with(0, |c, now| c.disable_bearer(now, 1)), Err(Error::NoSuchBearer(1))));
        }
    });
    // (node 0 forgot the disabled bearer's link; node 1 failed its end
    // over on node 0's FAILOVER_MSG)
    let failed: u64 = net.core(1).link().links().iter().filter(|l| l.bearer == 1).map(|l| l.stats.failovers).sum();
    assert!(failed >= 1, "the disabled bearer's link failed over");
    assert_eq!(net.core(0).link().links().len(), 1, "node 0 has no link on the disabled bearer");
    assert!(
        net.run_while(Duration::from_secs(5), |s| s
            .core(1)
            .link()
            .links()
            .iter()
            .any(|l| l.bearer == 1 && l.state == LinkState::Established)),
        "the peer's link on plane 1 went down"
    );
    let now = net.now();
    assert_eq!(net.with(0, |c, _| c.enable_bearer(now, settings)).expect("enable"), 1);
    assert!(net.run_while(Duration::from_secs(20), |s| !all_links_up(s)), "the links came back");
    // the last bearer of a node: the node goes down at the peer
    let now = net.now();
    net.with(0, |c, _| c.disable_bearer(now, 1)).expect("disable 1");
    net.with(0, |c, _| c.disable_bearer(now, 0)).expect("disable 0");
    let a = net.core(0).address().expect("address");
    assert!(net.run_while(Duration::from_secs(5), |s| s.core(1).link().is_up(a)), "node 0 went down at node 1");
}

/// To a peer without enhanced tunnelling (TUNNEL_ENHANCED), a failover
/// never splits a packet into tunnel fragments it could not put together;
/// to one with it, it does.
#[test]
fn tunnel_fragments_only_to_peers_that_take_them() {
    for enhanced in [true, false] {
        let mut net = pair(
            0xe4a,
            |b| {
                b.priority = 20;
                b.mtu = 4000;
            },
            |c| {
                if !enhanced {
                    c.capabilities &= !tipc_rs::link::caps::TUNNEL_ENHANCED;
                }
            },
        );
        let to = join(&mut net, 1, 1).1;
        let p = join(&mut net, 0, 10).0;
        net.run_for(Duration::from_secs(1));
        // long messages queued, then plane 1 fails under them
        for k in 0..40u8 {
            let d = Dest::group(Mode::Unicast, Some(to), Instance(0)).expect("dest");
            let _ = net.with(0, |c, now| c.send(now, p, d, Bytes::from(vec![k; 3000]), SendOpts::default()));
        }
        let now = net.now();
        net.cut_plane(1, now, now + Duration::from_secs(3));
        net.run_for(Duration::from_secs(4));
        let split: u64 = net.core(0).link().links().iter().map(|l| l.stats.tunnel_fragments).sum();
        let failovers: u64 = net.core(0).link().links().iter().map(|l| l.stats.failovers).sum();
        eprintln!("enhanced {enhanced}: {failovers} failovers, {split} tunnel fragments");
        assert!(failovers >= 1);
        assert_eq!(split > 0, enhanced, "fragments only to an enhanced peer");
    }
}

/// A FAILOVER_MSG for a link that is down already is answered with one
/// lone dummy (the peer's failover can end), and only once: two nodes
/// answering each other's dummies would never stop.
#[test]
fn an_unasked_failover_is_answered_once() {
    let (mut net, a, b) = pair_with_plane1_down(0x4a1f);
    let failovers = |net: &mut SimNet, i: usize| -> u64 {
        net.core(i).link().links().iter().filter(|l| l.bearer == 1).map(|l| l.stats.failovers).sum()
    };
    let before = (failovers(&mut net, 0), failovers(&mut net, 1));
    let handed = |net: &mut SimNet| -> u64 {
        net.core(1).link().links().iter().filter(|l| l.bearer == 1).map(|l| l.stats.tunnelled).sum()
    };
    let handed_before = handed(&mut net);
    // node 0 says (as if its plane-1 link had just failed) that it fails over
    let t = tunnel_msg(TunnelType::Failover, (a, b), 1, 1, dummy_msg(a, b));
    net.with(0, |c, now| c.send_raw(now, b, t)).expect("sent");
    net.run_for(Duration::from_secs(2));
    let after = (failovers(&mut net, 0), failovers(&mut net, 1));
    eprintln!("plane-1 failovers before {before:?}, after {after:?}");
    assert_eq!(after.1, before.1 + 1, "node 1 answered once");
    assert_eq!(handed(&mut net), handed_before + 1, "with its dummy alone");
    assert!(after.0 <= before.0 + 1, "node 0 answered node 1's dummy at most once: no ping-pong");
    assert!(net.core(0).link().is_up(b) && net.core(1).link().is_up(a), "the node stays up over plane 0");
}

/// While a peer's failover batch is still coming, the failed link waits
/// (FAILINGOVER) and a fragment out of place in it is counted as a
/// protocol error; the batch's end (here, node 0's answer to node 1's
/// dummy, which lowers the sync point) ends it.
#[test]
fn a_failover_batch_in_progress_holds_the_failed_link() {
    let (mut net, a, b) = pair_with_plane1_down(0xba7c);
    // a batch of two for node 1's plane-1 link: first a middle fragment
    // with nothing before it (out of place), inner seqno 1
    let inner = {
        let f = tipc_rs::wire::FragmentMsg {
            msg_type: tipc_rs::wire::FragmentType::Middle,
            hdr: IntHdr { orig_node: a, dest_node: b, ..IntHdr::default() },
            frag_no: 2,
            frag_count: 0,
            word5: 0,
            importance: tipc_rs::wire::Importance::Low,
            payload: Bytes::from_static(&[0; 16]),
        };
        let mut m = Msg::Fragment(f).to_bytes().expect("fragment").to_vec();
        m[8..12].copy_from_slice(&1u32.to_be_bytes());
        Bytes::from(m)
    };
    let failover = |payload: Bytes| tunnel_msg(TunnelType::Failover, (a, b), 1, 2, payload);
    let errors = net.core(1).link().stats().proto_errors;
    net.with(0, |c, now| c.send_raw(now, b, failover(inner))).expect("sent");
    // (20 µs one way: node 1 has it; node 0 has not yet had node 1's
    // answer, whose own answer would end the batch)
    net.run_for(Duration::from_micros(30));
    let state = |net: &mut SimNet| net.core(1).link().links().iter().find(|l| l.bearer == 1).map(|l| l.state);
    assert_eq!(state(&mut net), Some(LinkState::FailingOver), "the batch is not over");
    assert_eq!(net.core(1).link().stats().proto_errors, errors + 1, "the fragment out of place");
    net.with(0, |c, now| c.send_raw(now, b, failover(dummy_msg(a, b)))).expect("sent");
    net.run_for(Duration::from_millis(100));
    assert_eq!(state(&mut net), Some(LinkState::Reset), "the batch is over: the link may come back");
}

/// Binds `stype` on every node of `ix` but the first and opens a port on
/// the first that multicasts over the broadcast link; returns that port
/// and the range.
fn multicast_setup(net: &mut SimNet, ix: &[usize], stype: u32) -> (PortId, tipc_rs::wire::ServiceRange) {
    let range = tipc_rs::wire::ServiceRange::single(ServiceType(stype), Instance(1));
    for &i in &ix[1..] {
        let p = net.with(i, |c, _| c.open_port());
        net.with(i, |c, _| c.bind(p, range, Scope::Cluster)).expect("bind");
    }
    let tx = net.with(ix[0], |c, _| c.open_port());
    net.with(ix[0], |c, _| c.set_mcast_method(tx, tipc_rs::McastMethod::Broadcast));
    net.run_for(Duration::from_secs(1));
    (tx, range)
}

/// The broadcast link's counters: packets sent, retransmitted, in flight,
/// in the backlog ([`tipc_rs::link::LinkLayer::bcast_stats`]).
type BcastStats = (u64, u64, usize, usize);

/// Node `ix[0]` multicasts 20 messages from `tx` to `range`, then 500 ms
/// pass; asserts they went on the broadcast link and that every other node
/// of `ix` got all 20. Returns the broadcast link's counters before and
/// after.
fn multicast_20(
    net: &mut SimNet,
    ix: &[usize],
    tx: PortId,
    range: tipc_rs::wire::ServiceRange,
) -> (BcastStats, BcastStats) {
    let before = net.core(ix[0]).link().bcast_stats();
    for k in 0..20u8 {
        net.with(ix[0], |c, now| c.send(now, tx, Dest::Range(range), Bytes::from(vec![k; 8]), SendOpts::default()))
            .expect("multicast");
    }
    net.run_for(Duration::from_millis(500));
    let after = net.core(ix[0]).link().bcast_stats();
    assert!(after.0 > before.0, "the multicasts went on the broadcast link");
    for &i in &ix[1..] {
        let got = net.take_events(i).into_iter().filter(|(_, e)| matches!(e, CoreEvent::Message(_))).count();
        assert_eq!(got, 20, "node {i} got every multicast");
    }
    (before, after)
}

/// Sets up multicast to service type `stype` ([`multicast_setup`]), then
/// records node `ix[0]`'s frames while it sends 20 multicasts
/// ([`multicast_20`]); returns the broadcast link's counters before and
/// after, and how many broadcast-link frames (broadcast address, not
/// discovery) left on each of node `ix[0]`'s bearers, by bearer id.
fn recorded_multicast_20(
    net: &mut SimNet,
    ix: &[usize],
    stype: u32,
) -> (BcastStats, BcastStats, [usize; tipc_rs::link::MAX_BEARERS]) {
    let (tx, range) = multicast_setup(net, ix, stype);
    for &i in ix {
        net.take_events(i);
    }
    net.record_pcap(true);
    let (before, after) = multicast_20(net, ix, tx, range);
    let bearers = net.core(ix[0]).link().bearers();
    let mut per_bearer = [0; tipc_rs::link::MAX_BEARERS];
    for f in net.take_frames(ix[0]).expect("recording") {
        let user = tipc_rs::wire::UncheckedHeader::new(&f.payload[..]).user();
        if f.dst == tipc_rs::wire::MacAddr::BROADCAST && user != tipc_rs::wire::User::LinkConfig {
            let from = tipc_rs::wire::MediaAddr::from(f.src);
            let (id, _) = bearers.iter().find(|(_, b)| b.media == from).expect("a frame from one of node 0's bearers");
            per_bearer[usize::from(*id)] += 1;
        }
    }
    (before, after, per_bearer)
}

/// The broadcast link moves to the other bearer when its bearer's links
/// fail: multicasts sent over it while plane 0 is down still arrive (over
/// plane 1).
#[test]
fn the_broadcast_link_follows_the_links() {
    let mut net = SimNet::new(0xbca5);
    net.add_plane(|_| {});
    let ix = net.add_nodes(3);
    assert!(net.run_while(Duration::from_secs(30), |s| !all_links_up(s)));
    let (tx, range) = multicast_setup(&mut net, &ix, 7300);
    let now = net.now();
    net.cut_plane(0, now, now + Duration::from_secs(30));
    net.run_for(Duration::from_secs(3));
    for i in 0..3 {
        net.take_events(i);
    }
    multicast_20(&mut net, &ix, tx, range);
}

/// A node whose peers sit on different bearers, no bearer reaching them
/// all, sends each broadcast-link packet on every bearer with a link (as
/// net/tipc/bcast.c `tipc_bcbase_xmit` does when there is no primary
/// bearer), and on none without: node 1 is only on plane 0, node 2 only on
/// plane 1, node 0 alone on plane 2; nodes 1 and 2 get every multicast node
/// 0 sends over the broadcast link the first time, and plane 2 carries none.
#[test]
fn broadcasts_reach_peers_on_separate_bearers() {
    let mut net = SimNet::new(0xbca6);
    net.add_plane(|_| {});
    let lonely = net.add_plane(|_| {});
    let ix = net.add_nodes(3);
    let now = net.now();
    for (node, bearer) in [(1, 1), (1, lonely), (2, 0), (2, lonely)] {
        net.core(ix[node]).disable_bearer(now, bearer).expect("disable");
    }
    let up = |s: &mut SimNet, i: usize| {
        s.core(i).link().links().iter().filter(|l| l.state == LinkState::Established).count()
    };
    assert!(
        net.run_while(Duration::from_secs(30), |s| up(s, ix[0]) < 2 || up(s, ix[1]) < 1 || up(s, ix[2]) < 1),
        "node 0 links to node 1 on plane 0 and to node 2 on plane 1"
    );
    let (before, after, per_bearer) = recorded_multicast_20(&mut net, &ix, 7400);
    // a node the packets never reached would get them only when it asks
    // for them again
    assert_eq!(after.1, before.1, "every packet arrived the first time");
    assert_eq!((after.2, after.3), (0, 0), "both nodes acknowledged them all");
    assert!(per_bearer[0] >= 20 && per_bearer[1] >= 20, "a copy on each bearer with a link: {per_bearer:?}");
    assert_eq!(per_bearer[usize::from(lonely)], 0, "no broadcast copy on a bearer without links");
}

/// When every bearer reaches every node, the broadcast link sends on one
/// bearer only, the primary the kernel picks (net/tipc/bcast.c
/// `tipc_bcbase_select_primary`): the first whose id differs in parity
/// from our address, else the last. Three nodes on two planes: node 0's
/// broadcast packets all go on that plane, none on the other, and arrive
/// the first time.
#[test]
fn with_every_bearer_reaching_all_broadcasts_take_the_primary_alone() {
    let mut net = SimNet::new(0xbca7);
    net.add_plane(|_| {});
    let ix = net.add_nodes(3);
    assert!(net.run_while(Duration::from_secs(30), |s| !all_links_up(s)), "two links per pair");
    let (before, after, per_plane) = recorded_multicast_20(&mut net, &ix, 7500);
    assert_eq!(after.1, before.1, "every packet arrived the first time");
    let own = net.core(ix[0]).address().expect("node 0's address").0;
    let primary = usize::from(own & 1 == 0);
    assert!(per_plane[primary] >= 20, "the primary (plane {primary}) carries them: {per_plane:?}");
    assert_eq!(per_plane[1 - primary], 0, "no copy on the other plane: {per_plane:?}");
}

/// The old link fails while a returning link synchs: the messages held on
/// the new link wait until the old link's failover has brought everything
/// it had (its batch comes after them on the new link), so a socket that
/// moved to the new link is never overtaken by its own older messages.
#[test]
fn the_old_link_failing_during_a_synch_reorders_nothing() {
    let mut net = pair(0x01df, |b| b.priority = 20, |_| {});
    let to = join(&mut net, 1, 1).1;
    let senders: Vec<PortId> = (0..4).map(|k| join(&mut net, 0, 10 + k).0).collect();
    net.run_for(Duration::from_secs(1));
    for i in 0..2 {
        net.take_events(i);
    }
    let mut phase = 0;
    let mut t_end = Instant::ZERO;
    stream_between(&mut net, &senders, to, 6000, |net, k| {
        let now = net.now();
        match phase {
            // plane 1 (the preferred) fails: traffic fails over to plane 0
            0 if k == 500 => {
                t_end = now + Duration::from_secs(2);
                net.cut_plane(1, now, t_end);
                phase = 1;
            }
            // as plane 1 returns, plane 0 fails under the traffic it
            // still carries: the returning link's synch waits for it
            1 if now >= t_end => {
                net.cut_plane(0, now, now + Duration::from_secs(3));
                phase = 2;
            }
            _ => {}
        }
    });
    let held: u64 = net.core(1).link().links().iter().map(|l| l.stats.synch_held).sum();
    let failovers: u64 = net.core(1).link().links().iter().filter(|l| l.bearer == 0).map(|l| l.stats.failovers).sum();
    eprintln!("held by the synch: {held}; plane-0 failovers: {failovers}");
    assert!(phase == 2 && held > 0 && failovers > 0, "the scenario happened: held {held}, failovers {failovers}");
}

/// A second SYNCH_MSG while a synch holds messages does not start another
/// synch: what the first holds is released when the old link reaches its
/// sync point, nothing is lost.
#[test]
fn a_second_synch_does_not_drop_what_the_first_holds() {
    let mut net = pair(0x5c2, |_| {}, |_| {});
    let to = join(&mut net, 1, 1).1;
    let ports: Vec<PortId> = (0..4).map(|k| join(&mut net, 0, 10 + k).0).collect();
    let even = *ports.iter().find(|p| p.0 % 2 == 0).expect("an even port: slot 0, plane 0");
    let odd = *ports.iter().find(|p| p.0 % 2 == 1).expect("an odd port: slot 1, plane 1");
    net.run_for(Duration::from_secs(1));
    for i in 0..2 {
        net.take_events(i);
    }
    let (a, b) = (net.core(0).address().expect("address"), net.core(1).address().expect("address"));
    // node 1's link on plane 1 has received this many packets: its next seqno is one more
    let got1 = net.core(1).link().links().iter().find(|l| l.bearer == 1).map(|l| l.stats.recv_pkts).expect("link");
    let synch = |point: u64| tunnel_msg(TunnelType::Synch, (a, b), 1, point as u16, Bytes::new());
    let send = |net: &mut SimNet, p: PortId, k: u64| {
        let d = Dest::group(Mode::Unicast, Some(to), Instance(0)).expect("dest");
        net.with(0, |c, now| c.send(now, p, d, Bytes::from(k.to_be_bytes().to_vec()), SendOpts::default()))
            .expect("send");
        net.run_for(Duration::from_millis(1));
    };
    // a synch of plane 0 against plane 1, whose sync point is 30 packets ahead
    net.with(0, |c, now| c.send_raw(now, b, synch(got1 + 30))).expect("sent");
    net.run_for(Duration::from_millis(1));
    for k in 0..10 {
        send(&mut net, even, k);
    }
    net.with(0, |c, now| c.send_raw(now, b, synch(got1 + 20_000))).expect("sent");
    net.run_for(Duration::from_millis(5));
    let count = |net: &mut SimNet, p: PortId| {
        net.take_events(1)
            .into_iter()
            .filter(|(_, e)| matches!(e, CoreEvent::Group { event: GroupEvent::Message { from, .. }, .. } if from.port == p))
            .count()
    };
    assert_eq!(count(&mut net, even), 0, "held by the synch");
    // plane 1 passes the first sync point
    for k in 0..60 {
        send(&mut net, odd, k);
    }
    let mut released = 0;
    for (_, e) in net.take_events(1) {
        if let CoreEvent::Group { port, event: GroupEvent::Message { from, data, .. } } = e {
            let l = data.len();
            net.with(1, |c, _| c.group_consumed(port, from, l));
            released += usize::from(from.port == even);
        }
    }
    assert_eq!(released, 10, "what the first synch held arrived once the old link passed its point");
}

/// A TUNNEL_PROTOCOL message of type `t` from `ends.0` to `ends.1` about
/// the receiver's link on `bearer`, with `count` in word 9's upper half
/// (a FAILOVER's batch size, a SYNCH's sync point) and `payload`.
fn tunnel_msg(
    t: TunnelType,
    ends: (tipc_rs::wire::NodeAddr, tipc_rs::wire::NodeAddr),
    bearer: u8,
    count: u16,
    payload: Bytes,
) -> Bytes {
    let m = TunnelMsg {
        msg_type: t,
        hdr: IntHdr { orig_node: ends.0, dest_node: ends.1, ..IntHdr::default() },
        word4: 0,
        word5: u32::from(bearer) << 9,
        word9: u32::from(count) << 16,
        payload,
    };
    Msg::Tunnel(m).to_bytes().expect("tunnel message")
}

/// A failover batch's dummy from `a` to `b`: DIRECT, error NO_PORT, port 0.
fn dummy_msg(a: tipc_rs::wire::NodeAddr, b: tipc_rs::wire::NodeAddr) -> Bytes {
    let mut d = DataMsg::new(DataType::Direct, Bytes::new());
    d.err = tipc_rs::wire::ErrorCode::NoPort;
    d.orig_node = a;
    d.dest_node = b;
    Msg::Data(d).to_bytes().expect("dummy")
}

/// A [`pair`] whose plane 1 has failed for good (both ends failed over and
/// stay down), with the two nodes' addresses.
fn pair_with_plane1_down(seed: u64) -> (SimNet, tipc_rs::wire::NodeAddr, tipc_rs::wire::NodeAddr) {
    let mut net = pair(seed, |_| {}, |_| {});
    let now = net.now();
    net.cut_plane(1, now, now + Duration::from_secs(600));
    net.run_for(Duration::from_secs(4));
    let a = net.core(0).address().expect("address");
    let b = net.core(1).address().expect("address");
    (net, a, b)
}
