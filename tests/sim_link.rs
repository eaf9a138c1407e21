//! Links in the simulator: set-up, exactly-once in-order delivery under
#![allow(clippy::needless_range_loop)]
//! loss, duplication and reordering, and supervision across partitions.

use std::collections::BTreeMap;

use bytes::Bytes;
use tipc_rs::fault::FaultConfig;
use tipc_rs::sim::{NodeIx, SimNet};
use tipc_rs::wire::{Duration, Instant, NodeAddr, PortId};
use tipc_rs::{CoreEvent, Dest, Error, SendOpts};

fn seed() -> u64 {
    std::env::var("TIPC_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0001)
}

/// Builds `n` nodes and runs until all links are up; returns addresses.
fn cluster(net: &mut SimNet, n: usize) -> Vec<NodeAddr> {
    let ix = net.add_nodes(n);
    let ok =
        net.run_while(Duration::from_secs(10), |net| ix.iter().any(|&i| net.core(i).link().up_nodes().len() + 1 < n));
    assert!(ok, "seed {}: links did not come up", net.seed());
    ix.iter().map(|&i| net.core(i).address().expect("address")).collect()
}

/// A message carrying (stream, seq) and `len` bytes in all.
fn payload(stream: u32, seq: u64, len: usize) -> Bytes {
    let mut v = vec![(seq as u8) ^ (stream as u8); len.max(12)];
    v[..4].copy_from_slice(&stream.to_be_bytes());
    v[4..12].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(v)
}

/// Log-uniform size in 1..=66000 from a counter (deterministic).
fn size_of(stream: u32, seq: u64) -> usize {
    let x = (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(stream) << 40) >> 11;
    let u = (x as f64) / ((1u64 << 53) as f64);
    (66_000f64.powf(u)).round().clamp(12.0, 66_000.0) as usize
}

struct Stream {
    from: NodeIx,
    port: PortId,
    to: NodeAddr,
    to_port: PortId,
    id: u32,
    next: u64,
    total: u64,
}

/// Pushes every stream as far as its link accepts, runs, checks deliveries.
fn pump_streams(net: &mut SimNet, streams: &mut [Stream], max: Duration) -> BTreeMap<u32, u64> {
    let mut received: BTreeMap<u32, u64> = BTreeMap::new();
    let end = net.now() + max;
    loop {
        for s in streams.iter_mut() {
            while s.next < s.total {
                let data = payload(s.id, s.next, size_of(s.id, s.next));
                let r = net.with(s.from, |c, now| {
                    c.send(now, s.port, Dest::Socket { node: s.to, port: s.to_port }, data, SendOpts::default())
                });
                match r {
                    Ok(()) => s.next += 1,
                    Err(Error::WouldBlock(_)) => break,
                    Err(e) => panic!("seed {}: send failed: {e}", net.seed()),
                }
            }
        }
        // run a little, then check what arrived
        let t = net.now() + Duration::from_millis(5);
        net.run_until(t);
        for i in 0..net.len() {
            for (_, ev) in net.take_events(i) {
                match ev {
                    CoreEvent::Message(m) => {
                        let id = u32::from_be_bytes(m.data[..4].try_into().expect("4 bytes"));
                        let seq = u64::from_be_bytes(m.data[4..12].try_into().expect("8 bytes"));
                        let exp = received.entry(id).or_insert(0);
                        assert_eq!(seq, *exp, "seed {}: stream {id} out of order or duplicated", net.seed());
                        assert_eq!(m.data.len(), size_of(id, seq), "seed {}: wrong size", net.seed());
                        assert_eq!(
                            &m.data[12..],
                            &payload(id, seq, m.data.len())[12..],
                            "seed {}: corrupted",
                            net.seed()
                        );
                        *exp += 1;
                    }
                    CoreEvent::NodeDown(a) => panic!("seed {}: node {a} went down under faults", net.seed()),
                    _ => {}
                }
            }
        }
        let done = streams.iter().all(|s| received.get(&s.id).copied().unwrap_or(0) == s.total);
        if done {
            return received;
        }
        assert!(net.now() < end, "seed {}: stalled: {:?}", net.seed(), received);
    }
}

#[test]
fn two_nodes_link_up_after_the_address_trial() {
    let mut net = SimNet::new(seed());
    let addrs = cluster(&mut net, 2);
    assert_ne!(addrs[0], addrs[1]);
    // trial (1 s) + discovery + handshake
    assert!(net.now() < Instant::from_micros(2_000_000), "took {:?}", net.now());
}

#[test]
fn three_nodes_lossy_duplicating_reordering_exactly_once_in_order() {
    let per_link: u64 = std::env::var("TIPC_SIM_MSGS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut net = SimNet::new(seed());
    let addrs = cluster(&mut net, 3);
    net.set_faults(FaultConfig {
        drop: 0.10,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_delay: Duration::from_micros(300),
        jitter: Duration::from_micros(50),
        ..FaultConfig::default()
    });
    let ports: Vec<PortId> = (0..3).map(|i| net.with(i, |c, _| c.open_port())).collect();
    // each link carries `per_link` messages, half each way
    let mut streams = Vec::new();
    let mut id = 0;
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                streams.push(Stream {
                    from: a,
                    port: ports[a],
                    to: addrs[b],
                    to_port: ports[b],
                    id,
                    next: 0,
                    total: per_link / 2,
                });
                id += 1;
            }
        }
    }
    let got = pump_streams(&mut net, &mut streams, Duration::from_secs(3600));
    assert_eq!(got.values().sum::<u64>(), 3 * per_link);
    let rt: u64 = (0..3).map(|i| net.core(i).link().links().iter().map(|l| l.stats.retransmitted).sum::<u64>()).sum();
    eprintln!(
        "seed {}: {} messages in {:?} virtual, {} frames, {rt} retransmissions",
        net.seed(),
        3 * per_link,
        net.now(),
        net.frames()
    );
    assert!(rt > 0);
}

#[test]
fn long_partition_takes_nodes_down_and_healing_brings_the_link_back() {
    let mut net = SimNet::new(seed());
    let addrs = cluster(&mut net, 2);
    for i in 0..2 {
        net.take_events(i);
    }
    let t0 = net.now();
    net.partition(&[0], &[1], t0, t0 + Duration::from_secs(4));
    net.run_until(t0 + Duration::from_secs(3));
    for i in 0..2 {
        let downs: Vec<Instant> = net
            .take_events(i)
            .into_iter()
            .filter_map(|(t, e)| matches!(e, CoreEvent::NodeDown(a) if a == addrs[1 - i]).then_some(t))
            .collect();
        assert_eq!(downs.len(), 1, "seed {}: node {i} sees the other go down once", net.seed());
        // tolerance 1.5 s plus at most one probe interval
        assert!(downs[0] - t0 <= Duration::from_millis(1500 + 375 + 375), "down after {:?}", downs[0] - t0);
    }
    net.run_until(t0 + Duration::from_secs(8));
    for i in 0..2 {
        let ups = net.take_events(i).into_iter().filter(|(_, e)| matches!(e, CoreEvent::NodeUp(_))).count();
        assert_eq!(ups, 1, "seed {}: node {i}: link back after healing", net.seed());
        assert!(net.core(i).link().is_up(addrs[1 - i]));
    }
}

#[test]
fn short_partition_loses_nothing() {
    let mut net = SimNet::new(seed());
    let addrs = cluster(&mut net, 2);
    let ports: Vec<PortId> = (0..2).map(|i| net.with(i, |c, _| c.open_port())).collect();
    let t0 = net.now();
    net.partition(&[0], &[1], t0 + Duration::from_millis(50), t0 + Duration::from_millis(900));
    let mut streams = vec![
        Stream { from: 0, port: ports[0], to: addrs[1], to_port: ports[1], id: 0, next: 0, total: 3000 },
        Stream { from: 1, port: ports[1], to: addrs[0], to_port: ports[0], id: 1, next: 0, total: 3000 },
    ];
    let got = pump_streams(&mut net, &mut streams, Duration::from_secs(60));
    assert_eq!(got.values().sum::<u64>(), 6000);
    assert!(net.now() > t0 + Duration::from_millis(900), "the partition was exercised");
}

#[test]
fn every_node_writes_a_pcap_of_valid_tipc_frames() {
    let mut net = SimNet::new(seed());
    net.record_pcap(true);
    let addrs = cluster(&mut net, 3);
    let p0 = net.with(0, |c, _| c.open_port());
    let p1 = net.with(1, |c, _| c.open_port());
    net.with(0, |c, now| {
        c.send(now, p0, Dest::Socket { node: addrs[1], port: p1 }, Bytes::from(vec![1u8; 5000]), SendOpts::default())
    })
    .expect("send");
    net.run_for(Duration::from_secs(1));
    let dir = std::env::temp_dir().join(format!("tipc-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for i in 0..3 {
        let path = dir.join(format!("node{i}.pcap"));
        net.write_pcap(i, &path).expect("write pcap");
        let frames = tipc_rs::wire::pcap::read_pcap_file(&path).expect("read back");
        assert!(frames.len() > 10, "node {i}: {} frames", frames.len());
        for f in frames {
            let eth = tipc_rs::wire::EthFrame::parse_tipc(f.data).expect("TIPC frame");
            tipc_rs::wire::Msg::parse(eth.payload).expect("valid message");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every node sends `size`-byte messages to every other node's port, one
/// to each per 200 µs of virtual time, until `end`, refused sends (link
/// down, congested) included; `check` runs after every send and every
/// step of the network. Returns the sends made and the steps taken.
fn traffic_checked(
    net: &mut SimNet,
    addrs: &[NodeAddr],
    ports: &[PortId],
    size: usize,
    end: Instant,
    mut check: impl FnMut(&mut SimNet, &str),
) -> (u64, u64) {
    let (mut sent, mut steps) = (0u64, 0u64);
    while net.now() < end {
        for i in 0..addrs.len() {
            for to in (0..addrs.len()).filter(|&t| t != i) {
                let data = payload(i as u32, sent, size);
                let dest = Dest::Socket { node: addrs[to], port: ports[to] };
                let _ = net.with(i, |c, now| c.send(now, ports[i], dest, data, SendOpts::default()));
                sent += 1;
                check(net, "after a send");
            }
        }
        // the network's work of the next 200 µs, a step at a time
        let slice = net.now() + Duration::from_micros(200);
        while net.step(slice) {
            steps += 1;
            check(net, "after a step");
        }
        net.run_until(slice);
    }
    (sent, steps)
}

/// `NodeCore::next_slow_timer` (what the runtime asks after every send,
/// to know whether to wake its receive thread) remembers the earliest
/// timer other than fast probes between received frames and timer turns.
/// Through link set-up, a stream of sends with 5 % loss, a partition that
/// takes the links down and the links' return, it equals the timer
/// table's own answer after every step and every send, on every node.
#[test]
fn remembered_supervision_deadline_follows_the_timer_table() {
    fn check(net: &mut SimNet, when: &str) {
        for i in 0..net.len() {
            let c = net.core(i);
            let table = c.next_timer(|k| !k.is_fast_probe()).map(|(_, t)| t);
            assert_eq!(c.next_slow_timer(), table, "node {i} {when}");
        }
    }
    let mut net = SimNet::new(seed());
    net.add_nodes(3);
    let end = net.now() + Duration::from_secs(10);
    while net.core(0).link().up_nodes().len() < 2 || net.core(1).link().up_nodes().len() < 2 {
        check(&mut net, "during set-up");
        assert!(net.step(end), "seed {}: links did not come up", net.seed());
    }
    let addrs: Vec<NodeAddr> = (0..3).map(|i| net.core(i).address().expect("address")).collect();
    let ports: Vec<PortId> = (0..3).map(|i| net.with(i, |c, _| c.open_port())).collect();
    net.set_faults(FaultConfig { drop: 0.05, ..FaultConfig::default() });
    let t0 = net.now();
    net.partition(&[0], &[1, 2], t0 + Duration::from_millis(300), t0 + Duration::from_secs(4));
    let (sent, steps) = traffic_checked(&mut net, &addrs, &ports, 200, t0 + Duration::from_secs(8), check);
    let back = net.core(0).link().up_nodes().len();
    assert_eq!(back, 2, "seed {}: links back after the partition", net.seed());
    assert!(steps > 1000 && sent > 1000, "{steps} steps, {sent} sends");
}

/// `LinkLayer::any_congested` (the quick answer a group send asks before
/// it looks at each member's link) says false only while no link is
/// congested. Three nodes stream to each other faster than a 2 % lossy
/// network drains, through a partition and recovery; after every send and
/// every step it equals a look at every link, and was both true and false
/// along the way.
#[test]
fn quick_congestion_answer_follows_every_link() {
    let mut net = SimNet::new(seed());
    let addrs = cluster(&mut net, 3);
    let ports: Vec<PortId> = (0..3).map(|i| net.with(i, |c, _| c.open_port())).collect();
    net.set_faults(FaultConfig { drop: 0.02, ..FaultConfig::default() });
    let t0 = net.now();
    net.partition(&[2], &[0, 1], t0 + Duration::from_millis(300), t0 + Duration::from_millis(900));
    let mut seen = [0u64; 2];
    traffic_checked(&mut net, &addrs, &ports, 1000, t0 + Duration::from_millis(1500), |net, when| {
        for i in 0..net.len() {
            let l = net.core(i).link();
            let any = l.links().iter().any(|k| k.congested);
            assert_eq!(l.any_congested(), any, "node {i} {when}");
            seen[usize::from(any)] += 1;
        }
    });
    assert!(seen[0] > 100 && seen[1] > 100, "seed {}: congested {} and clear {} times", net.seed(), seen[1], seen[0]);
}
