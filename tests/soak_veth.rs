//! Load and soak on real veth links: 17 nodes on one bridge, 16 senders →
//! 1 receiver, then 1 sender → 16 receivers, at full speed (blocking sends
//! back to back) for `TIPC_SOAK_SECS` per direction (10 s by default; the
//! figures in RELIABILITY.md come from 120). Zero loss, order kept, no link
//! reset, and the process's resident memory — all 17 stacks live in it —
//! sampled ten times along the way must stay flat.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::wire::{Instance, MemberId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::Lab;

const FANS: usize = 16;
const SIZE: usize = 1024;

fn soak_secs() -> u64 {
    std::env::var("TIPC_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

fn resets(stacks: &[Stack]) -> u64 {
    stacks.iter().flat_map(Stack::links).map(|l| l.stats.resets).sum()
}

/// Reads until `expected` (filled in by the senders when they stop) messages
/// arrived, checking per-sender order; returns the count.
fn reader(sock: &GroupSocket, expected: &AtomicU64, done_sending: &AtomicBool, who: usize, stacks: &[Stack]) -> u64 {
    let mut want = [0u64; FANS + 1];
    let mut got = 0u64;
    let mut idle_since = Instant::now();
    loop {
        if done_sending.load(Ordering::Acquire) && got >= expected.load(Ordering::Acquire) {
            return got;
        }
        match sock.recv_timeout(Duration::from_millis(50)) {
            Ok(GroupEvent::Message { data, .. }) => {
                let s = data[8] as usize;
                let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                assert_eq!(seq, want[s], "receiver {who} from sender {s}: lost or reordered");
                want[s] += 1;
                got += 1;
                idle_since = Instant::now();
            }
            Ok(GroupEvent::MemberDown { member, .. }) => panic!("receiver {who}: LEFT of {member} during the soak"),
            _ => {
                if idle_since.elapsed() > Duration::from_secs(20) {
                    for (i, st) in stacks.iter().enumerate().take(3) {
                        eprintln!("node {i}:\n{}", st.stats());
                    }
                    panic!("receiver {who}: stalled at {got}");
                }
            }
        }
    }
}

fn sender(sock: &GroupSocket, me: usize, to: Option<MemberId>, stop: &AtomicBool) -> u64 {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut v = vec![me as u8; SIZE];
        v[..8].copy_from_slice(&seq.to_be_bytes());
        v[8] = me as u8;
        let r = match to {
            Some(m) => sock.send_unicast_timeout(m, Bytes::from(v), Duration::from_secs(30)),
            None => sock.broadcast_timeout(Bytes::from(v), Duration::from_secs(30)),
        };
        // a send blocked this long means flow control never reopened
        r.unwrap_or_else(|e| panic!("sender {me} at {seq}: {e}"));
        seq += 1;
    }
    seq
}

/// One direction: `senders` send (unicast to member 0, or broadcast) for
/// `secs`; `receivers` read. Returns (deliveries, RSS samples (s, KiB)).
fn run(
    stacks: &[Stack],
    socks: &[GroupSocket],
    senders: &[usize],
    receivers: &[usize],
    unicast: bool,
    secs: u64,
) -> (u64, Vec<(f64, u64)>) {
    let to = unicast.then(|| socks[0].id());
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let expected = AtomicU64::new(0);
    let mut samples = Vec::new();
    let t0 = Instant::now();
    let delivered = std::thread::scope(|sc| {
        let rs: Vec<_> = receivers
            .iter()
            .map(|&r| {
                let (s, e, d) = (&socks[r], &expected, &done);
                sc.spawn(move || reader(s, e, d, r, stacks))
            })
            .collect();
        let ss: Vec<_> = senders
            .iter()
            .map(|&k| {
                let (s, st) = (&socks[k], &stop);
                sc.spawn(move || sender(s, k, to, st))
            })
            .collect();
        for _ in 0..10 {
            samples.push((t0.elapsed().as_secs_f64(), common::rss_kib()));
            std::thread::sleep(Duration::from_millis(secs * 1000 / 10));
        }
        stop.store(true, Ordering::Relaxed);
        let sent: u64 = ss.into_iter().map(|h| h.join().expect("sender")).sum();
        // unicast: one receiver gets all; broadcast: each receiver gets all
        expected.store(sent, Ordering::Release);
        done.store(true, Ordering::Release);
        let got: Vec<u64> = rs.into_iter().map(|h| h.join().expect("receiver")).collect();
        for (k, g) in got.iter().enumerate() {
            assert_eq!(*g, sent, "receiver {}: {g} of {sent}", receivers[k]);
        }
        got.iter().sum::<u64>()
    });
    samples.push((t0.elapsed().as_secs_f64(), common::rss_kib()));
    (delivered, samples)
}

#[test]
fn sixteen_to_one_then_one_to_sixteen_on_veth_lose_nothing_and_memory_stays_flat() {
    let Some(lab) = rig("veth soak", || Lab::bridge("vsoak", FANS + 1)) else { return };
    let secs = soak_secs();
    let stacks: Vec<Stack> = (0..=FANS).map(|i| common::start_node(lab.node(i), &format!("soak-{i}"))).collect();
    for s in &stacks {
        s.wait_for_nodes(FANS, Duration::from_secs(30)).expect("links");
    }
    let socks: Vec<GroupSocket> = stacks
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let s = st.group_socket().expect("socket");
            let spec = GroupSpec {
                stype: ServiceType(7300),
                instance: Instance(i as u32),
                scope: Scope::Cluster,
                loopback: false,
                member_events: true,
            };
            s.join(spec).expect("join");
            s
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(20);
    while socks.iter().any(|s| s.members().len() < FANS) {
        assert!(Instant::now() < end, "membership incomplete");
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in &socks {
        while s.try_recv().is_some() {}
    }
    let resets0 = resets(&stacks);
    let fans: Vec<usize> = (1..=FANS).collect();
    let (d1, s1) = run(&stacks, &socks, &fans, &[0], true, secs);
    eprintln!(
        "SOAK veth 16 -> 1: {secs} s, {d1} x 1 KiB delivered in order ({:.0} msg/s); RSS over time (s, KiB): {s1:?}",
        d1 as f64 / secs as f64
    );
    let (d2, s2) = run(&stacks, &socks, &[0], &fans, false, secs);
    eprintln!(
        "SOAK veth 1 -> 16: {secs} s, {d2} x 1 KiB deliveries in order ({:.0} broadcasts/s); RSS over time (s, KiB): {s2:?}",
        d2 as f64 / FANS as f64 / secs as f64
    );
    assert_eq!(resets(&stacks), resets0, "no link reset");
    common::assert_rss_flat("16 -> 1", &s1);
    common::assert_rss_flat("1 -> 16", &s2);
    drop(socks);
    for s in stacks {
        s.shutdown();
    }
}
