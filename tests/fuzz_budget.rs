//! Fuzzing with a fixed time budget (cargo-fuzz needs a nightly toolchain,
//! which this project cannot use): a seeded mutation fuzzer in the style of
//! libFuzzer, fed from the kernel captures, run for `TIPC_FUZZ_SECS`
//! (default 20; CI sets more). Half the budget goes to the wire parsers —
//! every input must parse or fail cleanly, and whatever parses must
//! re-encode and parse back to the same message — and half to whole nodes
//! of a running simulated cluster, two ways: mutated frames from real
//! peers' MACs hit the link layer, and mutated upper-layer messages sent
//! *in sequence* over a live link by a linked node (its link stamps the
//! right sequence number and acknowledgement, as a hostile linked node's
//! would) reach name distribution, the group layer and port dispatch. The
//! test asserts how many got that far. Any panic fails it; the seed and
//! the counts are printed.

mod common;

use bytes::Bytes;
use tipc_rs::fault::Rng;
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Instance, Msg, ServiceType};
use tipc_rs::{Dest, GroupSpec, Mode, Scope, SendOpts};

fn budget() -> std::time::Duration {
    let s = std::env::var("TIPC_FUZZ_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20u64);
    std::time::Duration::from_secs(s)
}

fn seed() -> u64 {
    std::env::var("TIPC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

/// One to eight libFuzzer-style mutations of `base` (or of random bytes).
fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v =
        if rng.chance(0.1) { (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect() } else { base.to_vec() };
    for _ in 0..=rng.below(8) {
        let len = v.len() as u64;
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5) as usize];
            }
            2 if len > 0 => {
                // a 16- or 32-bit field set to an extreme
                let i = (rng.below(len) as usize) & !3;
                let x = [0u32, u32::MAX, 0xffff, 0x1_0000, 0x8000_0000][rng.below(5) as usize].to_be_bytes();
                for (k, b) in x.iter().enumerate() {
                    if let Some(s) = v.get_mut(i + k) {
                        *s = *b;
                    }
                }
            }
            3 => {
                let i = rng.below(len + 1) as usize;
                v.insert(i, rng.next_u64() as u8);
            }
            4 if len > 0 => {
                let i = rng.below(len) as usize;
                v.remove(i);
            }
            5 => v.truncate(rng.below(len + 1) as usize),
            6 if !other.is_empty() => {
                // splice: our head, the other's tail
                let cut = rng.below(len + 1) as usize;
                let from = rng.below(other.len() as u64) as usize;
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let extra = rng.below(64);
                v.extend((0..extra).map(|_| rng.next_u64() as u8));
            }
        }
    }
    v
}

fn fuzz_parsers(seeds: &[Bytes], rng: &mut Rng, until: std::time::Instant) -> (u64, u64) {
    let (mut runs, mut parsed) = (0u64, 0u64);
    while std::time::Instant::now() < until {
        for _ in 0..1000 {
            let a = &seeds[rng.below(seeds.len() as u64) as usize];
            let b = &seeds[rng.below(seeds.len() as u64) as usize];
            let input = Bytes::from(mutate(rng, a, b));
            runs += 1;
            let Ok(m) = Msg::parse(input.clone()) else { continue };
            parsed += 1;
            let _ = m.to_string();
            if let Msg::Bundle(bm) = &m {
                for inner in bm.iter().flatten() {
                    let _ = Msg::parse(inner);
                }
            }
            // what parses re-encodes to something that parses back the same
            if let Ok(again) = m.to_bytes() {
                let back = Msg::parse(again)
                    .unwrap_or_else(|e| panic!("re-encoded {m} does not parse: {e}; input {input:02x?}"));
                assert_eq!(back, m, "round trip changed the message; input {input:02x?}");
            }
        }
    }
    (runs, parsed)
}

/// What the node-level fuzzing did.
#[derive(Default, Debug)]
struct NodeFuzz {
    /// Mutated frames handed to node 1 from a real peer's MAC.
    frames: u64,
    /// Mutated messages node 0 sent in sequence over its link to node 1.
    in_sequence: u64,
    /// Of those, how many reached each handler at node 1 (all rounds).
    data_in: u64,
    names_in: u64,
    group_proto_in: u64,
    malformed: u64,
    /// Link resets the fuzzing caused (protocol errors).
    resets: u64,
    rounds: u64,
}

fn fuzz_nodes(seed: u64, rng: &mut Rng, until: std::time::Instant) -> NodeFuzz {
    let mut f = NodeFuzz::default();
    let (mut runs, mut rounds) = (0u64, 0u64);
    while std::time::Instant::now() < until {
        // a fresh three-node cluster with a running group, its own traffic recorded
        let mut net = SimNet::new(seed ^ rounds);
        net.record_pcap(true);
        let ix = net.add_nodes(3);
        assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() < 2)));
        let ports: Vec<_> = (0..3)
            .map(|i| {
                let p = net.with(i, |c, _| c.open_port());
                let spec = GroupSpec {
                    stype: ServiceType(6100),
                    instance: Instance(i as u32),
                    scope: Scope::Cluster,
                    loopback: false,
                    member_events: true,
                };
                net.with(i, |c, _| c.group_join(p, spec)).expect("join");
                p
            })
            .collect();
        for k in 0..200u32 {
            let mode = [Mode::Broadcast, Mode::Anycast, Mode::Multicast][k as usize % 3];
            let _ = net.with(0, |c, now| {
                let dest = Dest::group(mode, None, Instance(1 + k % 2)).expect("not unicast");
                c.send(now, ports[0], dest, Bytes::from(vec![k as u8; 10 + k as usize * 7]), SendOpts::default())
            });
            net.run_for(Duration::from_micros(300));
        }
        // real frames node 1 received, with their senders' MACs
        let frames: Vec<(tipc_rs::wire::MacAddr, Bytes)> =
            net.take_frames(1).expect("recording").into_iter().map(|e| (e.src, e.payload)).collect();
        if frames.is_empty() {
            panic!("no traffic recorded");
        }
        // upper-layer messages (data, bundles, fragments, names, group
        // protocol) that node 1 received from node 0, to mutate and send
        // again in sequence over node 0's link
        let a0 = net.core(0).address().expect("address");
        let a1 = net.core(1).address().expect("address");
        let upper: Vec<Bytes> = frames
            .iter()
            .map(|(_, m)| m.clone())
            .filter(|m| {
                let user = m.first().map_or(0, |b| (b >> 1) & 0xf);
                let prev = m.get(12..16).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
                // users 0-3 data, 6 bundler, 11 name distributor, 12 fragmenter, 9 group protocol
                matches!(user, 0..=3 | 6 | 9 | 11 | 12) && prev == Some(a0.0)
            })
            .collect();
        let before = net.core(1).stats();
        let resets_before: u64 = net.core(1).link().links().iter().map(|l| l.stats.resets).sum();
        if !upper.is_empty() {
            // one bucket per user, picked evenly: name and group protocol
            // messages are few in the traffic but get their share
            let mut buckets: std::collections::BTreeMap<u8, Vec<&Bytes>> = std::collections::BTreeMap::new();
            for m in &upper {
                buckets.entry((m[0] >> 1) & 0xf).or_default().push(m);
            }
            let buckets: Vec<Vec<&Bytes>> = buckets.into_values().collect();
            for k in 0..1000 {
                let bucket = &buckets[rng.below(buckets.len() as u64) as usize];
                let a = bucket[rng.below(bucket.len() as u64) as usize];
                let b = &upper[rng.below(upper.len() as u64) as usize];
                let m = Bytes::from(mutate_upper(rng, a, b));
                // what fails the receiving link's validation would stall the
                // link until its retransmission failure (10 x tolerance), as
                // with the kernel: only messages that pass it are sent, so
                // the mutations land in the handlers
                if Msg::parse(m.clone()).is_err() {
                    continue;
                }
                if net.with(0, |c, now| c.send_raw(now, a1, m)).is_ok() {
                    f.in_sequence += 1;
                }
                if k % 10 == 0 {
                    let t = net.now() + Duration::from_micros(300);
                    net.run_until(t);
                    for i in 0..3 {
                        net.take_events(i);
                    }
                }
                if net.core(0).link().up_nodes().len() < 2 {
                    // a protocol error reset the link: let it come back
                    let _ = net.run_while(Duration::from_secs(5), |n| n.core(0).link().up_nodes().len() < 2);
                }
            }
        }
        net.run_for(Duration::from_millis(50));
        let after = net.core(1).stats();
        f.data_in += after.data_in - before.data_in;
        f.names_in += after.names_in - before.names_in;
        f.group_proto_in += after.group_proto_in - before.group_proto_in;
        f.malformed += after.malformed - before.malformed;
        f.resets += net.core(1).link().links().iter().map(|l| l.stats.resets).sum::<u64>() - resets_before;
        for _ in 0..2000 {
            let (src, a) = &frames[rng.below(frames.len() as u64) as usize];
            let (_, b) = &frames[rng.below(frames.len() as u64) as usize];
            let m = Bytes::from(mutate(rng, a, b));
            let now = net.now();
            net.core(1).handle_frame(now, *src, m);
            runs += 1;
            if runs % 20 == 0 {
                let t = net.now() + Duration::from_micros(200);
                net.run_until(t);
                for i in 0..3 {
                    net.take_events(i);
                }
            }
        }
        net.run_for(Duration::from_secs(2));
        rounds += 1;
    }
    f.frames = runs;
    f.rounds = rounds;
    f
}

/// Like [`mutate`], but keeps the first 24 bytes of `base` (word 0's user
/// and size are refitted to the result) so the message still travels over
/// a link and is dispatched to its user's handler, where the mutated
/// fields land.
fn mutate_upper(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let keep = base.len().min(24);
    let mut v = base[..keep].to_vec();
    let tail = mutate(rng, &base[keep..], other);
    v.extend_from_slice(&tail);
    if v.len() >= 4 && rng.chance(0.9) {
        // word 0: size = the real length, header size as it was
        let w = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        let w = (w & !0x1ffff) | (v.len() as u32 & 0x1ffff);
        v[..4].copy_from_slice(&w.to_be_bytes());
    }
    v
}

#[test]
fn mutation_fuzzing_for_a_fixed_budget_finds_no_panic() {
    let seeds = common::kernel_messages();
    assert!(seeds.len() > 500, "kernel captures as the corpus");
    let seed = seed();
    let mut rng = Rng::new(seed);
    let half = budget() / 2;
    let t0 = std::time::Instant::now();
    let (runs, parsed) = fuzz_parsers(&seeds, &mut rng, t0 + half);
    eprintln!(
        "FUZZ seed {seed}: parsers {runs} inputs in {:.1} s ({:.0}/s), {parsed} parsed and round-tripped",
        t0.elapsed().as_secs_f64(),
        runs as f64 / t0.elapsed().as_secs_f64()
    );
    let t1 = std::time::Instant::now();
    let f = fuzz_nodes(seed, &mut rng, t1 + half);
    eprintln!(
        "FUZZ seed {seed}: nodes, {} running clusters in {:.1} s: {} mutated frames from real peers' MACs; {} mutated \
         messages in sequence over a live link, of which {} reached port/group dispatch, {} name distribution, {} \
         the group protocol handler, {} counted malformed; {} link resets (protocol errors)",
        f.rounds,
        t1.elapsed().as_secs_f64(),
        f.frames,
        f.in_sequence,
        f.data_in,
        f.names_in,
        f.group_proto_in,
        f.malformed,
        f.resets
    );
    assert!(f.frames > 0 && f.in_sequence > 0);
    // the in-sequence messages really reach the upper layers (each handler
    // gets at least 5 % of them)
    for (what, n) in
        [("port/group dispatch", f.data_in), ("name distribution", f.names_in), ("group protocol", f.group_proto_in)]
    {
        assert!(n * 20 >= f.in_sequence, "only {n} of {} in-sequence messages reached {what}", f.in_sequence);
    }
}
