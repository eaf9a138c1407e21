//! The fault matrix on real veth links: a group of four nodes, each on its
//! own segment, switched by the seeded fault relay. Under each fault —
//! loss 1 / 5 / 10 %, duplication 2 %, reordering, corruption 0.1 % and
//! delay bursts — every member streams messages in all four modes; every
//! message must arrive exactly once, in per-sender order, with no LEFT
//! event and no link reset.
//!
//! Corruption: TIPC carries no checksum, so a flipped bit in a frame would
//! be taken as data. On a real LAN the Ethernet FCS drops such a frame
//! before TIPC sees it, and the relay does the same (it drops every frame
//! it corrupts); corrupted frames *delivered* are the hostile-input tests'
//! business (the "hostile flood" phase below, and `sim_reliability.rs`).
//!
//! Every phase also checks that its fault really fired (the relay's
//! counters, against the configured rate) and, per message, exactly which
//! members got it: all the others for a broadcast, the instance-1 holders
//! for a multicast, the next member for a unicast, one holder of the other
//! instance for an anycast.
#![allow(clippy::needless_range_loop)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::fault::FaultConfig;
use tipc_rs::wire::{Duration as WireDuration, Instance, MemberId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Mode, Scope, Stack};
use tipc_testkit::netns::Lab;
use tipc_testkit::relay::Relay;

const NODES: usize = 4;
/// Instance of member `k`: two members hold 1, two hold 2.
const INSTANCE: [u32; NODES] = [1, 1, 2, 2];

/// Messages per sender and phase (`TIPC_FAULT_MSGS` overrides).
fn per_sender() -> u64 {
    std::env::var("TIPC_FAULT_MSGS").ok().and_then(|v| v.parse().ok()).unwrap_or(2500)
}

/// What sender `s` sends as its `k`th message: mode, and how many members get it.
fn plan(s: usize, k: u64) -> (Mode, usize) {
    let holders_of = |inst: u32| (0..NODES).filter(|&m| m != s && INSTANCE[m] == inst).count();
    match k % 4 {
        0 => (Mode::Broadcast, NODES - 1),
        1 => (Mode::Multicast, holders_of(1)),
        2 => (Mode::Anycast, 1),
        _ => (Mode::Unicast, 1),
    }
}

/// Payload: sequence number, sender, then filler; every 40th is large enough to fragment.
fn payload(s: usize, k: u64) -> Bytes {
    let size = if k % 40 == 39 { 4000 } else { 16 + (k as usize * 131) % 1385 };
    let mut v = vec![(k % 251) as u8; size];
    v[..8].copy_from_slice(&k.to_be_bytes());
    v[8] = s as u8;
    Bytes::from(v)
}

fn send_stream(s: usize, sock: &GroupSocket, ids: &[MemberId], n: u64) {
    for k in 0..n {
        let data = payload(s, k);
        let anycast_to = if INSTANCE[s] == 1 { 2 } else { 1 };
        let r = match plan(s, k).0 {
            Mode::Broadcast => sock.broadcast(data),
            Mode::Multicast => sock.send_multicast(Instance(1), data),
            Mode::Anycast => sock.send_anycast(Instance(anycast_to), data),
            Mode::Unicast => sock.send_unicast(ids[(s + 1) % NODES], data),
        };
        r.unwrap_or_else(|e| panic!("sender {s}, message {k}: {e}"));
    }
}

/// What one member received in a phase: (sender index, sequence) in arrival order, and LEFT events.
#[derive(Default)]
struct Received {
    msgs: Vec<(usize, u64)>,
    downs: Vec<MemberId>,
}

fn read_until(sock: &GroupSocket, got: &AtomicU64, stop: &AtomicBool, k: usize) -> Received {
    let mut r = Received::default();
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_timeout(Duration::from_millis(20)) {
            Ok(GroupEvent::Message { data, .. }) => {
                let seq = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                assert_eq!(data.len(), payload(data[8] as usize, seq).len(), "member {k}: size of {seq}");
                r.msgs.push((data[8] as usize, seq));
                got.fetch_add(1, Ordering::Relaxed);
            }
            Ok(GroupEvent::MemberDown { member, .. }) => r.downs.push(member),
            _ => {}
        }
    }
    r
}

/// The members that must get sender `s`'s `k`th message, or (anycast)
/// the members one of which must get it.
fn receivers(s: usize, k: u64) -> Vec<usize> {
    let others = (0..NODES).filter(move |&m| m != s);
    match plan(s, k).0 {
        Mode::Broadcast => others.collect(),
        Mode::Multicast => others.filter(|&m| INSTANCE[m] == 1).collect(),
        Mode::Anycast => {
            let to = if INSTANCE[s] == 1 { 2 } else { 1 };
            others.filter(|&m| INSTANCE[m] == to).collect()
        }
        Mode::Unicast => vec![(s + 1) % NODES],
    }
}

/// Checks exactly-once at exactly the intended receivers, and per-sender
/// order; returns the number of deliveries.
fn check(phase: &str, got: &[Received], n: u64) -> u64 {
    // who got each message, per sender and sequence number
    let mut at: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); n as usize]; NODES];
    for (m, r) in got.iter().enumerate() {
        assert!(r.downs.is_empty(), "{phase}: member {m} saw spurious LEFT events {:?}", r.downs);
        let mut last = [None::<u64>; NODES];
        for &(s, k) in &r.msgs {
            assert!(s < NODES && s != m && k < n, "{phase}: member {m} got a stray message {s}/{k}");
            assert!(last[s].is_none_or(|l| l < k), "{phase}: member {m}: from {s}, {k} after {:?}", last[s]);
            last[s] = Some(k);
            at[s][k as usize].push(m);
        }
    }
    for s in 0..NODES {
        for k in 0..n {
            let (mode, want) = plan(s, k);
            let mut who = at[s][k as usize].clone();
            who.sort_unstable();
            let may = receivers(s, k);
            assert_eq!(who.len(), want, "{phase}: sender {s} message {k} ({mode:?}) reached {who:?}");
            assert!(
                who.iter().all(|m| may.contains(m)),
                "{phase}: sender {s} message {k} ({mode:?}): {who:?}, not within {may:?}"
            );
        }
    }
    at.iter().flatten().map(|v| v.len() as u64).sum()
}

struct Rig {
    stacks: Vec<Stack>,
    socks: Vec<GroupSocket>,
    ids: Vec<MemberId>,
}

fn retransmitted_and_resets(stacks: &[Stack]) -> (u64, u64) {
    stacks.iter().flat_map(Stack::links).fold((0, 0), |(r, x), l| (r + l.stats.retransmitted, x + l.stats.resets))
}

/// Runs one phase; `during` runs beside the traffic (delay bursts).
/// `check_delays`: the phase delays frames through `during` (bursts), and
/// must show delayed frames.
fn phase(
    rig: &Rig,
    relay: &Relay,
    name: &str,
    cfg: FaultConfig,
    check_delays: bool,
    during: impl Fn(&AtomicBool) + Sync,
) {
    let n = per_sender();
    relay.set_config(cfg);
    let before = relay.stats();
    let (rtx0, resets0) = retransmitted_and_resets(&rig.stacks);
    let want: u64 = (0..NODES).map(|s| (0..n).map(|k| plan(s, k).1 as u64).sum::<u64>()).sum();
    let got = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let recvd: Vec<Received> = std::thread::scope(|sc| {
        let readers: Vec<_> = rig
            .socks
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let (got, stop) = (&got, &stop);
                sc.spawn(move || read_until(s, got, stop, k))
            })
            .collect();
        let senders: Vec<_> =
            rig.socks.iter().enumerate().map(|(s, sock)| sc.spawn(move || send_stream(s, sock, &rig.ids, n))).collect();
        let side = sc.spawn(|| during(&stop));
        let deadline = t0 + Duration::from_secs(120);
        while got.load(Ordering::Relaxed) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // a short quiet period catches duplicates arriving after the last expected message
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().expect("sender");
        }
        side.join().expect("side thread");
        readers.into_iter().map(|r| r.join().expect("reader")).collect()
    });
    let took = t0.elapsed();
    let delivered = check(name, &recvd, n);
    relay.set_config(FaultConfig::none());
    let after = relay.stats();
    let sum = |f: fn(&tipc_testkit::relay::RelayDirStats) -> u64| -> u64 {
        after.iter().zip(&before).map(|(a, b)| f(a) - f(b)).sum()
    };
    let (rtx1, resets1) = retransmitted_and_resets(&rig.stacks);
    eprintln!(
        "FAULTS {name:<22} {} msgs, {delivered} deliveries in {:.2} s; relay: {} copies, {} dropped, {} duplicated, \
         {} reordered, {} corrupted, {} delayed; {} retransmitted; link resets {}",
        n * NODES as u64,
        took.as_secs_f64(),
        sum(|s| s.faults.seen),
        sum(|s| s.faults.dropped),
        sum(|s| s.faults.duplicated),
        sum(|s| s.faults.reordered),
        sum(|s| s.faults.corrupted),
        sum(|s| s.faults.delayed),
        rtx1 - rtx0,
        resets1 - resets0,
    );
    assert_eq!(resets1, resets0, "{name}: a link was reset");
    for s in &rig.stacks {
        assert_eq!(s.up_nodes().len(), NODES - 1, "{name}: a link went down");
    }
    // the fault fired, at about its configured rate (a quarter of it at least)
    let seen = sum(|s| s.faults.seen);
    let fired = |what: &str, count: u64, rate: f64| {
        let floor = ((seen as f64 * rate) / 4.0) as u64;
        assert!(count > 0 && count >= floor, "{name}: {what} fired {count} times in {seen} frames (rate {rate})");
    };
    if cfg.drop > 0.0 {
        fired("loss", sum(|s| s.faults.dropped), cfg.drop);
    }
    if cfg.duplicate > 0.0 {
        fired("duplication", sum(|s| s.faults.duplicated), cfg.duplicate);
    }
    if cfg.reorder > 0.0 {
        fired("reordering", sum(|s| s.faults.reordered), cfg.reorder);
    }
    if cfg.corrupt > 0.0 {
        fired("corruption", sum(|s| s.faults.corrupted), cfg.corrupt);
    }
    if check_delays {
        fired("delay bursts", sum(|s| s.faults.delayed), 0.01);
    }
}

/// Floods every port of the relay with random frames and mutated kernel
/// frames until `stop`; returns how many it sent.
fn flood(ns: &tipc_testkit::netns::Netns, ports: &[&str], stop: &AtomicBool) -> u64 {
    let seeds = common::kernel_messages();
    assert!(seeds.len() > 100, "kernel captures to mutate");
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let h = ns
        .spawn("flood", move || {
            use std::os::fd::AsRawFd;
            let socks: Vec<_> = ports
                .iter()
                .map(|p| {
                    let (idx, _) = tipc_rs::bearer::lookup_interface(p).expect("relay port");
                    tipc_testkit::sys::open_send_socket(idx).expect("raw socket")
                })
                .collect();
            let mut rng = tipc_rs::fault::Rng::new(0xf100d);
            let (mut sent, mut rounds) = (0u64, 0u64);
            let src = [0x02, 0xba, 0xd0, 0x00, 0x00, 0x01];
            while !done2.load(Ordering::Relaxed) {
                for sock in &socks {
                    let msg = common::hostile_message(&mut rng, &seeds, 0.4, 1, 1500);
                    let mut frame = Vec::with_capacity(14 + msg.len());
                    frame.extend_from_slice(&[0xff; 6]);
                    frame.extend_from_slice(&src);
                    frame.extend_from_slice(&0x88cau16.to_be_bytes());
                    frame.extend_from_slice(&msg);
                    if let Ok(true) = tipc_testkit::sys::send_frame(sock.as_raw_fd(), &frame) {
                        sent += 1;
                    }
                }
                rounds += 1;
                if rounds % 8 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            sent
        })
        .expect("flood thread");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Relaxed);
    h.join().expect("flood")
}

#[test]
fn four_node_group_under_the_fault_matrix_delivers_exactly_once_in_order() {
    let Some(lab) = rig("veth fault matrix", || Lab::relayed_star("vfault", NODES)) else { return };
    let ports = Lab::star_ports(NODES);
    let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
    let relay_ns = lab.relay_ns().expect("relay namespace");
    let relay = Relay::start_ports(relay_ns, &ports, FaultConfig::none(), 2026).expect("relay");
    let stacks: Vec<Stack> = (0..NODES).map(|i| common::start_node(lab.node(i), &format!("fault-{i}"))).collect();
    for s in &stacks {
        s.wait_for_nodes(NODES - 1, Duration::from_secs(15)).expect("links through the relay");
    }
    let socks: Vec<GroupSocket> = stacks
        .iter()
        .enumerate()
        .map(|(k, st)| {
            let s = st.group_socket().expect("socket");
            let spec = GroupSpec {
                stype: ServiceType(7100),
                instance: Instance(INSTANCE[k]),
                scope: Scope::Cluster,
                loopback: false,
                member_events: true,
            };
            s.join(spec).expect("join");
            s
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(10);
    while socks.iter().any(|s| s.members().len() < NODES - 1) {
        assert!(Instant::now() < end, "membership incomplete");
        std::thread::sleep(Duration::from_millis(20));
    }
    // the JOINED events of the set-up
    for s in &socks {
        while s.try_recv().is_some() {}
    }
    let ids = socks.iter().map(GroupSocket::id).collect();
    let rig = Rig { stacks, socks, ids };
    let nothing = |_: &AtomicBool| {};
    let ms = |m: u64| WireDuration::from_micros(m * 1000);
    phase(&rig, &relay, "loss 1 %", FaultConfig::loss(0.01), false, nothing);
    phase(&rig, &relay, "loss 5 %", FaultConfig::loss(0.05), false, nothing);
    phase(&rig, &relay, "loss 10 %", FaultConfig::loss(0.10), false, nothing);
    phase(&rig, &relay, "duplication 2 %", FaultConfig { duplicate: 0.02, ..FaultConfig::none() }, false, nothing);
    let reorder = FaultConfig { reorder: 0.05, reorder_delay: ms(2), jitter: ms(1), ..FaultConfig::none() };
    phase(&rig, &relay, "reordering 5 % by 2 ms", reorder, false, nothing);
    let corrupt = FaultConfig { corrupt: 0.001, deliver_corrupted: false, ..FaultConfig::none() };
    phase(&rig, &relay, "corruption 0.1 %", corrupt, false, nothing);
    // delay bursts: every 600 ms, 200 ms during which frames take 150 ms
    // (well under the 1.5 s tolerance); frames sent after a burst overtake it
    let relay_ref = &relay;
    let bursts = |stop: &AtomicBool| {
        let burst = FaultConfig { delay: ms(150), ..FaultConfig::none() };
        while !stop.load(Ordering::Relaxed) {
            relay_ref.set_config(burst);
            std::thread::sleep(Duration::from_millis(200));
            relay_ref.set_config(FaultConfig::none());
            std::thread::sleep(Duration::from_millis(400));
        }
    };
    phase(&rig, &relay, "delay bursts 150 ms", FaultConfig::none(), true, bursts);
    // everything at once
    let all = FaultConfig { drop: 0.05, duplicate: 0.02, reorder: 0.05, reorder_delay: ms(2), ..corrupt };
    phase(&rig, &relay, "all combined", all, false, nothing);
    // hostile input: a raw socket in the relay's namespace floods every
    // segment with random and mutated 0x88CA frames from its own MAC
    let counted = |rig: &Rig| -> u64 {
        rig.stacks
            .iter()
            .map(|s| {
                let st = s.stats();
                st.layer.malformed + st.layer.foreign + st.core.malformed + st.bearer.map_or(0, |b| b.drop_malformed)
            })
            .sum()
    };
    let before = counted(&rig);
    let sent = std::sync::atomic::AtomicU64::new(0);
    let flood = |stop: &AtomicBool| sent.store(flood(relay_ns, &ports, stop), Ordering::Relaxed);
    phase(&rig, &relay, "hostile flood", FaultConfig::none(), false, flood);
    let (sent, caught) = (sent.load(Ordering::Relaxed), counted(&rig) - before);
    eprintln!("FAULTS hostile flood: {sent} frames injected, {caught} counted as malformed or foreign by the nodes");
    assert!(sent > 10_000, "the flood ran");
    assert!(caught > sent / 2, "malformed-frame counters rise: {caught} of {sent}");
    drop(rig.socks);
    for s in rig.stacks {
        s.shutdown();
    }
}
