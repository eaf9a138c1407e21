//! Reliability promises on the simulator: hostile input never breaks a
//! running group, failures are detected within the tolerance, and
//! duplicated / reordered group ACKs cannot freeze broadcasts
//! (the kernel's duplicate-GRP_ACK bug, CVE-2026-31662).
#![allow(clippy::needless_range_loop)]

use bytes::Bytes;
use tipc::fault::{FaultConfig, Rng};
use tipc::sim::SimNet;
use tipc::wire::{Duration, Instance, MacAddr, MemberId, PortId, ServiceType};
use tipc::{CoreEvent, Error, GroupEvent, GroupSpec, Mode, Scope};

fn group(net: &mut SimNet, n: usize) -> Vec<(PortId, MemberId)> {
    let ix = net.add_nodes(n);
    assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() + 1 < n)));
    let mut v = Vec::new();
    for i in 0..n {
        let p = net.with(i, |c, _| c.open_port());
        let spec = GroupSpec {
            stype: ServiceType(6000),
            instance: Instance(i as u32),
            scope: Scope::Cluster,
            loopback: false,
            member_events: true,
        };
        net.with(i, |c, _| c.group_join(p, spec)).expect("join");
        v.push((p, MemberId { node: net.core(i).address().expect("addr"), port: p }));
    }
    net.run_for(Duration::from_secs(1));
    v
}

/// Reads every group message at every node (opening windows); returns (node, from, seq) triples.
fn read_all(net: &mut SimNet, ids: &[(PortId, MemberId)]) -> Vec<(usize, MemberId, u64)> {
    let mut out = Vec::new();
    for node in 0..net.len() {
        for (_, ev) in net.take_events(node) {
            if let CoreEvent::Group { port, event: GroupEvent::Message { from, data, .. } } = ev {
                let (f, l) = (from, data.len());
                net.with(node, |c, _| c.group_consumed(port, f, l));
                if data.len() >= 8 {
                    out.push((node, from, u64::from_be_bytes(data[..8].try_into().expect("8"))));
                }
            }
        }
    }
    let _ = ids;
    out
}

/// Node 0 sends `n` messages alternating unicast (to member 1) and broadcast,
/// so every broadcast asks for acknowledgements; checks exactly-once order.
fn stream(net: &mut SimNet, ids: &[(PortId, MemberId)], n: u64, mut between: impl FnMut(&mut SimNet)) {
    let mut next = vec![0u64; net.len()];
    let mut k = 0u64;
    let end = net.now() + Duration::from_secs(300);
    while k < n || next[1] < n {
        if k < n {
            let mode = if k % 2 == 0 { Mode::Unicast } else { Mode::Broadcast };
            let data = Bytes::from(k.to_be_bytes().to_vec());
            let (p0, to) = (ids[0].0, ids[1].1);
            match net.with(0, |c, now| c.group_send(now, p0, mode, Some(to), Instance(0), data)) {
                Ok(()) => k += 1,
                Err(Error::WouldBlock(_)) => {}
                Err(e) => panic!("seed {}: {e}", net.seed()),
            }
        }
        between(net);
        let t = net.now() + Duration::from_micros(500);
        net.run_until(t);
        for (node, from, seq) in read_all(net, ids) {
            if from == ids[0].1 && node == 1 {
                assert_eq!(seq, next[1], "seed {}: member 1 lost or reordered", net.seed());
                next[1] += 1;
            }
        }
        assert!(net.now() < end, "seed {}: broadcasts froze at {k} sent, {} received", net.seed(), next[1]);
    }
}

#[test]
fn duplicated_and_reordered_group_acks_never_freeze_broadcasts() {
    let mut net = SimNet::new(0x0c7e_3166);
    let ids = group(&mut net, 3);
    // every third frame duplicated, many reordered: GRP_ACKs arrive twice and late
    net.set_faults(FaultConfig {
        duplicate: 0.33,
        reorder: 0.2,
        reorder_delay: Duration::from_micros(800),
        ..FaultConfig::default()
    });
    stream(&mut net, &ids, 4000, |_| {});
}

#[test]
fn a_flood_of_random_and_mutated_frames_breaks_nothing() {
    let mut net = SimNet::new(0xf100_d001);
    net.record_pcap(true);
    let ids = group(&mut net, 3);
    // real frames to mutate: what node 1 received so far
    let seeds: Vec<Bytes> = net
        .take_pcap(1)
        .map(|p| tipc::wire::pcap::read_pcap(&p[..]).expect("pcap"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| tipc::wire::EthFrame::parse_tipc(f.data).ok().map(|e| e.payload))
        .collect();
    assert!(seeds.len() > 10);
    let mut rng = Rng::new(7);
    // the flood comes from an attacker's own MAC, as from a raw socket elsewhere on the segment
    let macs = [MacAddr([0x02, 0xba, 0xd0, 0, 0, 1]), MacAddr([0x02, 0xba, 0xd0, 0, 0, 2]), MacAddr::BROADCAST];
    let mut injected = 0u64;
    stream(&mut net, &ids, 2000, |net| {
        for _ in 0..10 {
            let frame = if rng.chance(0.5) {
                let len = rng.below(1600) as usize;
                Bytes::from((0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>())
            } else {
                let mut v = seeds[rng.below(seeds.len() as u64) as usize].to_vec();
                for _ in 0..=rng.below(4) {
                    let i = rng.below(v.len() as u64) as usize;
                    v[i] ^= (rng.below(255) + 1) as u8;
                }
                Bytes::from(v)
            };
            let src = macs[rng.below(3) as usize];
            let now = net.now();
            net.core(1).handle_frame(now, src, frame);
            injected += 1;
        }
    });
    let st = net.core(1).link().stats();
    eprintln!(
        "{injected} hostile frames injected; link layer counted {} malformed, {} foreign",
        st.malformed, st.foreign
    );
    assert!(st.malformed + st.foreign > injected / 10, "malformed-frame counters rise");
}

#[test]
fn failures_are_detected_within_tolerance_plus_one_probe_interval() {
    for tol_ms in [100u64, 1500, 5000] {
        let mut net = SimNet::new(tol_ms);
        let ix: Vec<usize> = (0..2)
            .map(|i| net.add_node(&format!("tol-{i}"), |c| c.tolerance = Duration::from_millis(tol_ms)))
            .collect();
        assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().is_empty())));
        for i in 0..2 {
            net.take_events(i);
        }
        let t0 = net.now();
        net.partition(&[0], &[1], t0, t0 + Duration::from_secs(60));
        net.run_for(Duration::from_millis(tol_ms * 3));
        let interval = (tol_ms / 4).min(500);
        for i in 0..2 {
            let down = net
                .take_events(i)
                .into_iter()
                .find_map(|(t, e)| matches!(e, CoreEvent::NodeDown(_)).then_some(t))
                .unwrap_or_else(|| panic!("tolerance {tol_ms} ms: node {i} never saw the other go down"));
            let after = down - t0;
            eprintln!("tolerance {tol_ms} ms: node {i} down after {after:?}");
            assert!(after <= Duration::from_millis(tol_ms + interval), "tolerance {tol_ms} ms: down after {after:?}");
        }
    }
}
