//! Load and soak on the simulator: 16 senders → 1 receiver, then 1 sender →
//! 16 receivers, each at full speed (every sender sends until flow control
//! says wait) over 100 Mbit/s switch ports with 1 % loss, for `TIPC_SOAK_SIM_SECS` of simulated time per
//! direction (30 s by default; the figures in RELIABILITY.md come from 600).
//! Zero loss, order kept, no link reset, and the process's resident memory
//! sampled ten times along the way must stay flat.

mod common;

use bytes::Bytes;
use tipc_rs::fault::FaultConfig;
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Instance, MemberId, PortId, ServiceType};
use tipc_rs::{CoreEvent, Dest, Error, GroupEvent, GroupSpec, Mode, Scope, SendOpts};

const G: ServiceType = ServiceType(5100);
const FANS: usize = 16;
const SIZE: usize = 1024;

fn soak_secs() -> u64 {
    std::env::var("TIPC_SOAK_SIM_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30)
}

struct Net {
    net: SimNet,
    /// (node, port) of each member; member 0 is the hub.
    members: Vec<(usize, PortId)>,
    ids: Vec<MemberId>,
}

fn setup(seed: u64) -> Net {
    let mut net = SimNet::new(seed);
    let n = FANS + 1;
    let ix = net.add_nodes(n);
    assert!(net.run_while(Duration::from_secs(30), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() + 1 < n)));
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let p = net.with(i, |c, _| c.open_port());
        let spec = GroupSpec {
            stype: G,
            instance: Instance(i as u32),
            scope: Scope::Cluster,
            loopback: false,
            member_events: false,
        };
        net.with(i, |c, _| c.group_join(p, spec)).expect("join");
        members.push((i, p));
        ids.push(MemberId { node: net.core(i).address().expect("address"), port: p });
    }
    net.run_for(Duration::from_secs(2));
    net.set_faults(FaultConfig::loss(0.01));
    net.set_bandwidth(Some(100_000_000));
    Net { net, members, ids }
}

fn resets(net: &mut SimNet, n: usize) -> u64 {
    (0..n).map(|i| net.core(i).link().links().iter().map(|l| l.stats.resets).sum::<u64>()).sum()
}

/// Every receiver reads all its messages (opening windows at once),
/// checking per-sender order; returns how many.
fn read(w: &mut Net, receivers: &[usize], want: &mut [Vec<u64>]) -> u64 {
    let mut delivered = 0;
    for &r in receivers {
        let (node, port) = w.members[r];
        for (_, ev) in w.net.take_events(node) {
            if let CoreEvent::Group { event: GroupEvent::Message { from, data, .. }, .. } = ev {
                let s = data[8] as usize;
                let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                assert_eq!(seq, want[r][s], "receiver {r} from sender {s}: lost or reordered");
                want[r][s] += 1;
                delivered += 1;
                w.net.with(node, |c, _| c.group_consumed(port, from, data.len()));
            }
        }
    }
    delivered
}

/// Runs `senders` → `receivers` for `secs` simulated seconds. Every sender
/// sends `mode` messages (to the hub for unicast) as fast as it is allowed;
/// every receiver reads everything at once. Returns (messages delivered, RSS samples).
fn run(w: &mut Net, senders: &[usize], receivers: &[usize], mode: Mode, secs: u64) -> (u64, Vec<(f64, u64)>) {
    let n = w.members.len();
    let resets0 = resets(&mut w.net, n);
    let start = w.net.now();
    let end = start + Duration::from_secs(secs);
    let mut next = vec![0u64; n];
    // expected next sequence per (receiver, sender)
    let mut want = vec![vec![0u64; n]; n];
    let mut delivered = 0u64;
    let mut samples = Vec::new();
    let mut next_sample = start;
    let step = Duration::from_millis(1);
    while w.net.now() < end {
        for &s in senders {
            let (node, port) = w.members[s];
            loop {
                let mut v = vec![s as u8; SIZE];
                v[..8].copy_from_slice(&next[s].to_be_bytes());
                v[8] = s as u8;
                let to = Some(w.ids[0]);
                match w.net.with(node, |c, now| {
                    c.send(
                        now,
                        port,
                        Dest::group(mode, to, Instance(0)).expect("member"),
                        Bytes::from(v),
                        SendOpts::default(),
                    )
                }) {
                    Ok(()) => next[s] += 1,
                    Err(Error::WouldBlock(_)) => break,
                    Err(e) => panic!("sender {s}: {e}"),
                }
            }
        }
        let t = w.net.now() + step;
        w.net.run_until(t);
        delivered += read(w, receivers, &mut want);
        for i in 0..n {
            if !receivers.contains(&i) {
                w.net.take_events(w.members[i].0);
            }
        }
        if w.net.now() >= next_sample {
            samples.push(((w.net.now() - start).as_micros() as f64 / 1e6, common::rss_kib()));
            next_sample = start + Duration::from_micros(secs * 100_000 * samples.len() as u64);
        }
    }
    // drain: stop sending, let everything in flight arrive
    let drain_end = w.net.now() + Duration::from_secs(10);
    while w.net.now() < drain_end {
        let t = w.net.now() + step;
        w.net.run_until(t);
        delivered += read(w, receivers, &mut want);
    }
    for &r in receivers {
        for &s in senders {
            assert_eq!(want[r][s], next[s], "receiver {r}: everything sender {s} sent arrived");
        }
    }
    assert_eq!(resets(&mut w.net, n), resets0, "no link reset");
    samples.push(((w.net.now() - start).as_micros() as f64 / 1e6, common::rss_kib()));
    (delivered, samples)
}

#[test]
fn sixteen_to_one_then_one_to_sixteen_at_full_speed_lose_nothing_and_memory_stays_flat() {
    let secs = soak_secs();
    let mut w = setup(0x50a4_0001);
    let all: Vec<usize> = (1..=FANS).collect();
    let wall = std::time::Instant::now();
    let (d1, s1) = run(&mut w, &all, &[0], Mode::Unicast, secs);
    let t1 = wall.elapsed();
    let frames1 = w.net.frames();
    eprintln!(
        "SOAK sim 16 -> 1: {secs} s simulated ({:.1} s wall), {d1} x 1 KiB delivered in order ({:.1} Mbit/s of payload \
         into one 100 Mbit/s port), {frames1} frames; RSS over time (s, KiB): {s1:?}",
        t1.as_secs_f64(),
        d1 as f64 * 8192.0 / secs as f64 / 1e6
    );
    common::assert_rss_flat("16 -> 1", &s1);
    let wall = std::time::Instant::now();
    let (d2, s2) = run(&mut w, &[0], &all, Mode::Broadcast, secs);
    eprintln!(
        "SOAK sim 1 -> 16: {secs} s simulated ({:.1} s wall), {d2} x 1 KiB deliveries in order ({:.1} Mbit/s of \
         payload out of one 100 Mbit/s port), {} frames; RSS over time (s, KiB): {s2:?}",
        wall.elapsed().as_secs_f64(),
        d2 as f64 / FANS as f64 * 8192.0 / secs as f64 / 1e6,
        w.net.frames() - frames1
    );
    common::assert_rss_flat("1 -> 16", &s2);
}
