//! The veth soak's traffic at full speed beside its physical limits, in one
//! sitting (`cargo bench --bench soak`, as root).
//!
//! Seventeen namespaces on one bridge, nothing pinned: the placement of
//! `tests/soak_veth.rs`, whose 17 stacks share one process and whose threads
//! go wherever the scheduler puts them. Each round measures:
//!
//! * raw fan-in: 1 070-byte blasts from each of nodes 1–16 at once to node
//!   0's MAC, counted by one sink reading with `recvmmsg` (woken per frame
//!   while it sleeps, as a stack's socket reader is);
//! * raw fan-out: a 1 070-byte blast from node 0 to the broadcast address,
//!   received by a `recvmmsg` sink on each of nodes 1–16 (the slowest
//!   sink's rate);
//!
//!   both raw limits are the highest rate that arrives without loss,
//!   searched with paced blasts of up to 2 s (`lossless_rate` in
//!   `benches/common`): as fast as possible, 16 blasters or 16 sinks on two
//!   CPUs measure the overload (frames dropped at full socket queues, after
//!   the kernel paid for them), not the path;
//! * ours, 16 → 1: members on nodes 1–16 send 1 KiB unicasts to node 0's
//!   member with blocking sends, back to back, for `--secs`; the rate is the
//!   messages delivered divided by the time until the last one arrived;
//! * ours, 1 → 16: node 0's member broadcasts 1 KiB to the 16 others for
//!   `--secs`; a broadcast counts once every member has it.
//!
//! The senders build each message in a fresh `Vec`, as the soak's do; none
//! may be lost. Each figure is the median of `--runs` rounds (3) with the
//! lowest and highest round. It then prints our rates as shares of the raw
//! limits, and the soak targets of issue 18 (absolute rates, set on another
//! machine: compare the shares, not the rates, across machines).
//!
//! Options: `--runs N` (3), `--secs S` (5: length of each measurement),
//! `--only LIST` (comma separated: raw, in (16 → 1), out (1 → 16)).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::wire::{Instance, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::process_cpu_seconds;

/// The receiver (16 → 1) or sender (1 → 16) and the 16 others.
const NODES: usize = 17;
/// Payload of every message, as in the soak.
const SIZE: usize = 1024;

fn start(ns: &Netns, name: &str) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id")).start())
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack")
}

/// Counts messages on `sock` until `expected` (set once the senders
/// stopped) arrived, or 20 s pass without one; returns the count and when
/// the last one came.
fn count(sock: &GroupSocket, expected: &AtomicU64, done: &AtomicBool) -> (u64, Instant) {
    let (mut got, mut last) = (0u64, Instant::now());
    loop {
        if done.load(Ordering::Acquire) && got >= expected.load(Ordering::Acquire) {
            return (got, last);
        }
        match sock.recv_timeout(Duration::from_millis(50)) {
            Ok(GroupEvent::Message { .. }) => {
                got += 1;
                last = Instant::now();
            }
            Ok(_) | Err(tipc_rs::Error::Timeout) => {
                if last.elapsed() > Duration::from_secs(20) {
                    return (got, last);
                }
            }
            Err(e) => panic!("receive: {e}"),
        }
    }
}

/// One direction for `secs`: `senders` send 1 KiB messages (unicast to
/// node 0's member when `unicast`, else broadcasts) back to back;
/// `receivers` count. The rate is messages sent (each broadcast once) per
/// second until the last receiver had its last.
fn direction(socks: &[GroupSocket], senders: &[usize], receivers: &[usize], unicast: bool, secs: u32) -> Rate {
    let to = unicast.then(|| socks[0].id());
    let (stop, done, expected) = (AtomicBool::new(false), AtomicBool::new(false), AtomicU64::new(0));
    let cpu0 = process_cpu_seconds().expect("getrusage");
    let ticks0 = cpu_ticks();
    let t0 = Instant::now();
    let (sent, last) = std::thread::scope(|sc| {
        let rs: Vec<_> = receivers
            .iter()
            .map(|&r| {
                let (s, e, d) = (&socks[r], &expected, &done);
                sc.spawn(move || count(s, e, d))
            })
            .collect();
        let ss: Vec<_> = senders
            .iter()
            .map(|&k| {
                let (s, stop) = (&socks[k], &stop);
                sc.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let m = Bytes::from(vec![k as u8; SIZE]);
                        let r = match to {
                            Some(m0) => s.send_unicast_timeout(m0, m, Duration::from_secs(30)),
                            None => s.broadcast_timeout(m, Duration::from_secs(30)),
                        };
                        r.unwrap_or_else(|e| panic!("sender {k}: {e}"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(u64::from(secs)));
        stop.store(true, Ordering::Relaxed);
        let sent: u64 = ss.into_iter().map(|h| h.join().expect("sender")).sum();
        expected.store(sent, Ordering::Release);
        done.store(true, Ordering::Release);
        let got: Vec<(u64, Instant)> = rs.into_iter().map(|h| h.join().expect("receiver")).collect();
        let counts: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert!(counts.iter().all(|&c| c == sent), "zero loss: {counts:?} of {sent}");
        (sent, got.iter().map(|g| g.1).max().expect("receivers"))
    });
    let busy = busy_share(&ticks0, &cpu_ticks());
    let cpu = process_cpu_seconds().expect("getrusage") - cpu0;
    let secs_taken = (last - t0).as_secs_f64();
    Rate { rate: sent as f64 / secs_taken, cpu_per_m: cpu * 1e6 / sent as f64, busy }
}

fn main() {
    if !privileged() {
        eprintln!("soak bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let secs: u32 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let runs: u32 = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let only: Option<Vec<String>> = arg("--only").map(|v| v.split(',').map(str::to_string).collect());
    // each raw limit is a search over several paced blasts
    let probe_secs = secs.min(2);
    let want = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));

    let raw = build_rawlimit();
    let lab = Lab::bridge("sbench", NODES).expect("bridge");
    let others: Vec<&Netns> = (1..NODES).map(|i| lab.node(i)).collect();
    let mac0 = lab.node(0).mac(NODE_IF).expect("mac").to_string();

    let stacks: Vec<Stack> = (0..NODES).map(|i| start(lab.node(i), &format!("sb-{i}"))).collect();
    for s in &stacks {
        s.wait_for_nodes(NODES - 1, Duration::from_secs(30)).expect("links");
    }
    let socks: Vec<GroupSocket> = stacks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let g = s.group_socket().expect("socket");
            g.join(GroupSpec {
                stype: ServiceType(4900),
                instance: Instance(i as u32),
                scope: Scope::Cluster,
                loopback: false,
                member_events: false,
            })
            .expect("join");
            g
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(30);
    while socks.iter().any(|s| s.members().len() < NODES - 1) {
        assert!(Instant::now() < end, "membership");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (mut s_fanin, mut s_fanout) = (Series::default(), Series::default());
    let (mut s_in, mut s_out) = (Series::default(), Series::default());
    let all: Vec<usize> = (1..NODES).collect();
    for run in 0..runs {
        eprintln!("round {} of {runs}", run + 1);
        if want("raw") {
            let (u, node0) = (UNPINNED, lab.node(0));
            let mmsg = RawBlast { bin: &raw, size: 1070, secs: probe_secs, tx_cpu: u, rx_cpu: u, rx: "mmsg" };
            s_fanin.measure(|| mmsg.lossless_fanin(&others, node0, &mac0));
            s_fanout.measure(|| mmsg.lossless_fanout(node0, &others));
        }
        if want("in") {
            s_in.push(direction(&socks, &all, &[0], true, secs));
        }
        if want("out") {
            s_out.push(direction(&socks, &[0], &all, false, secs));
        }
    }
    let resets: u64 = stacks.iter().flat_map(Stack::links).map(|l| l.stats.resets).sum();

    println!("\nsoak bench: the veth soak's two directions beside their raw limits, one sitting, nothing pinned");
    println!("(median of {runs} rounds [lowest-highest]; cpu: CPU-seconds per million messages, whole process)\n");
    print_line("raw.fanin.1070.16to1 lossless", &s_fanin, "frames/s", false);
    print_line("raw.fanout.1070.to16 lossless", &s_fanout, "frames/s", false);
    print_line("group 16 -> 1 unicast 1 KiB", &s_in, "msg/s", true);
    print_line("group 1 -> 16 broadcast 1 KiB", &s_out, "msg/s", true);
    println!("(link resets over the sitting: {resets})");

    println!("\nshares of the physical limit (ratios of medians)");
    let of = |a: &Series, b: &Series| (a.some() && b.some()).then(|| a.med() / b.med());
    if let Some(r) = of(&s_in, &s_fanin) {
        println!("{:<52}{r:>8.2}", "group 16 -> 1 / raw 16-sender fan-in");
    }
    if let Some(r) = of(&s_out, &s_fanout) {
        println!("{:<52}{r:>8.2}", "group 1 -> 16 / raw fan-out to 16 sinks");
    }

    println!("\nsoak targets of issue 18 (absolute, set on another machine)");
    for (name, s, goal) in [("16 -> 1 msg/s", &s_in, 287_000.0), ("1 -> 16 broadcasts/s", &s_out, 19_800.0)] {
        if s.some() {
            let met = if s.med() >= goal { "met" } else { "MISSED" };
            println!("{name:<52}{:>8.0} (goal >= {goal:.0}) {met}", s.med());
        }
    }
}
