//! Group performance over veth, beside the raw AF_PACKET limit and ZeroMQ
//! (the peer a user would pick instead), all measured in the same sitting,
//! the same namespaces and the same CPU placement (`cargo bench --bench
//! group`, as root; `tools/bench-setup` installs libzmq for the peer).
//!
//! Nine namespaces on one bridge. Node 0 sends, on CPU 0; nodes 1–8
//! receive, on CPU 1 (the raw `cross` placement). Round trips run between
//! node 0 and node 1 with both application threads on CPU 0 (the raw
//! `same` placement; node 1's echo reads its socket itself). A TIPC
//! broadcast reaches every node of the cluster, so broadcasts to 4 members
//! are also received and acknowledged by the other 4 nodes. ZeroMQ's
//! processes run in the same namespaces on the same CPUs, over TCP.
//!
//! What it prints, each figure the median of `--runs` rounds (5) with the
//! lowest and highest round, as ratios:
//!
//! * raw: ping-pong RTT (64 B), blasts of 1 500-, 1 070- and 64-byte frames
//!   to one sink, and a 1 070-byte blast to the broadcast address received
//!   by 4 and by 8 sinks at once (the slowest sink's rate); the sinks read
//!   a TPACKET_V3 ring, woken once per block; the 1 070-byte blast and the
//!   8-sink fan-out also into sinks reading with `recvmmsg`, woken per
//!   frame while they sleep as a stack's socket reader is (the limit of
//!   the path this stack takes);
//! * ours: group unicast RTT (64 B), group unicast one-way of 1 KiB and of
//!   64 B messages to one member, anycast of 1 KiB to 8 members, broadcast
//!   of 1 KiB to 1, 4 and 8 members; a message counts once every reader
//!   has it, and none may be lost;
//! * ZeroMQ: REQ/REP RTT (64 B), PUSH→PULL of 1 KiB, PUB→4 and →8 SUB of
//!   1 KiB (unbounded high-water marks: it loses nothing either), timed
//!   from the sender's first message to the last receiver's last;
//! * CPU-seconds per million messages for ours (the whole process: every
//!   node) and ZeroMQ's (every process of the measurement);
//! * the targets of issue 18, each with its ratio and whether it is met.
//!
//! Options: `--runs N` (5), `--secs S` (2: length of a stream round),
//! `--n N` (20 032: broadcasts per round, a multiple of 64), `--zmq-msgs N` (400 000 per
//! stream round; fan-out rounds send a quarter), `--only LIST` (comma
//! separated: raw, rtt, unicast, unicast64, anycast, broadcast, zmq),
//! `--no-zmq`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tipc_rs::wire::{Instance, MemberId, NodeId, ServiceType};
use tipc_rs::{Dest, GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns, privileged};
use tipc_testkit::sys::{pin_to_cpu, process_cpu_seconds};

/// Nodes on the bridge: the sender and eight receivers.
const NODES: usize = 9;
/// The first receiving node (also the echo of round trips); receivers
/// run on CPU 1.
const RX0: usize = 1;

fn node_cpu(i: usize) -> usize {
    usize::from(i >= RX0)
}

fn start(ns: &Netns, name: &str, cpu: usize) -> Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        pin_to_cpu(cpu).expect("pin");
        Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(&name).expect("id")).start()
    })
    .expect("spawn")
    .join()
    .expect("thread")
    .expect("stack")
}

fn join(s: &Stack, stype: u32, inst: u32) -> Arc<GroupSocket> {
    let g = s.group_socket().expect("socket");
    g.join(GroupSpec {
        stype: ServiceType(stype),
        instance: Instance(inst),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    })
    .expect("join");
    Arc::new(g)
}

fn wait_members(socks: &[Arc<GroupSocket>], n: usize) {
    let end = Instant::now() + Duration::from_secs(20);
    while socks.iter().any(|s| s.members().len() < n) {
        assert!(Instant::now() < end, "membership");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Readers on CPU 1 that count messages until `expect` arrived each, or
/// `stop` is set, or 10 s pass without one (a lost message then shows as
/// a short count instead of a bench that never ends); each returns its
/// count.
fn readers(
    socks: &[Arc<GroupSocket>],
    expect: u64,
    got: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    socks
        .iter()
        .map(|s| {
            let (s, got, stop) = (s.clone(), got.clone(), stop.clone());
            let b = std::thread::Builder::new().name("bench-reader".into());
            b.spawn(move || {
                pin_to_cpu(1).expect("pin");
                let mut n = 0;
                let mut heard = Instant::now();
                while n < expect && !stop.load(Ordering::Relaxed) && heard.elapsed() < Duration::from_secs(10) {
                    match s.recv_timeout(Duration::from_millis(100)) {
                        Ok(GroupEvent::Message { .. }) => {
                            n += 1;
                            got.fetch_add(1, Ordering::Relaxed);
                            heard = Instant::now();
                        }
                        Ok(_) | Err(tipc_rs::Error::Timeout) => {}
                        Err(_) => break,
                    }
                }
                n
            })
            .expect("reader thread")
        })
        .collect()
}

/// A one-way stream of `size`-byte messages from `from` (on CPU 0) for
/// `secs` seconds, by `send` (handed 64 messages at a time); the rate is
/// the messages sent divided by the time until the readers (`to`) had
/// them all.
fn stream_round(
    from: &Arc<GroupSocket>,
    to: &[Arc<GroupSocket>],
    size: usize,
    secs: u32,
    send: impl Fn(&GroupSocket, &[Bytes]) + Send + Sync,
) -> Rate {
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rs = readers(to, u64::MAX, &got, &stop);
    let cpu0 = process_cpu_seconds().expect("getrusage");
    let ticks0 = cpu_ticks();
    let t0 = Instant::now();
    let burst = vec![Bytes::from(vec![1u8; size]); 64];
    let sent = std::thread::scope(|s| {
        let b = std::thread::Builder::new().name("bench-sender".into());
        b.spawn_scoped(s, || {
            pin_to_cpu(0).expect("pin");
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(u64::from(secs)) {
                send(from, &burst);
                sent += 64;
            }
            sent
        })
        .expect("sender thread")
        .join()
        .expect("sender")
    });
    let end = Instant::now() + Duration::from_secs(20);
    while got.load(Ordering::Relaxed) < sent {
        assert!(Instant::now() < end, "zero loss: {} of {sent} delivered", got.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_micros(200));
    }
    let secs_taken = t0.elapsed().as_secs_f64();
    let busy = busy_share(&ticks0, &cpu_ticks());
    let cpu = process_cpu_seconds().expect("getrusage") - cpu0;
    stop.store(true, Ordering::Relaxed);
    for r in rs {
        r.join().expect("reader");
    }
    assert_eq!(got.load(Ordering::Relaxed), sent, "no message twice");
    Rate { rate: sent as f64 / secs_taken, cpu_per_m: cpu * 1e6 / sent as f64, busy }
}

/// One broadcast round: a fresh group of node 0 and `members` receivers,
/// `n` broadcasts of 1 KiB (`burst`: in `send_many` bursts of 64, `n` a
/// multiple of 64); the rate counts a broadcast once every member has it.
/// Also returns what the round looked like on the wire.
fn broadcast_round(stacks: &[Stack], stype: u32, members: usize, n: u64, burst: bool) -> (Rate, Shape) {
    let mut g = vec![join(&stacks[0], stype, 1)];
    g.extend(stacks[RX0..RX0 + members].iter().map(|s| join(s, stype, 1)));
    wait_members(&g, members);
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rs = readers(&g[1..], n, &got, &stop);
    let before = stacks[0].bearer_stats().expect("stats").tx_frames;
    let member_stats = || {
        stacks[RX0..RX0 + members]
            .iter()
            .map(|s| s.bearer_stats().expect("stats"))
            .fold((0, 0, 0), |a, b| (a.0 + b.rx_frames, a.1 + b.rx_batches, a.2 + b.tx_frames))
    };
    let m0 = member_stats();
    let cpu0 = process_cpu_seconds().expect("getrusage");
    let ticks0 = cpu_ticks();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to_cpu(0).expect("pin");
            let payload = Bytes::from(vec![2u8; 1024]);
            if burst {
                let b = vec![payload; 64];
                for _ in 0..n / 64 {
                    assert_eq!(g[0].send_many(Dest::GroupBroadcast, &b).expect("broadcast"), 64);
                }
            } else {
                for _ in 0..n {
                    g[0].broadcast(payload.clone()).expect("broadcast");
                }
            }
        });
    });
    let counts: Vec<u64> = rs.into_iter().map(|r| r.join().expect("reader")).collect();
    let secs = t0.elapsed().as_secs_f64();
    let busy = busy_share(&ticks0, &cpu_ticks());
    let cpu = process_cpu_seconds().expect("getrusage") - cpu0;
    assert!(counts.iter().all(|&c| c == n), "zero loss: {counts:?}");
    let frames = stacks[0].bearer_stats().expect("stats").tx_frames - before;
    let m1 = member_stats();
    for s in g {
        let _ = s.leave();
    }
    let shape = Shape {
        frames_per_bcast: frames as f64 / n as f64,
        rx_per_call: (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64,
        member_tx_per_bcast: (m1.2 - m0.2) as f64 / n as f64,
    };
    (Rate { rate: n as f64 / secs, cpu_per_m: cpu * 1e6 / n as f64, busy }, shape)
}

/// What one broadcast round looked like on the wire.
#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    /// Frames node 0 sent per broadcast.
    frames_per_bcast: f64,
    /// Frames a member's socket read per receive call.
    rx_per_call: f64,
    /// Frames all members sent per broadcast (acknowledgements, windows).
    member_tx_per_bcast: f64,
}

/// The ZeroMQ side, in the same namespaces (IPv4 10.78.0.(i+1) on each
/// node's interface).
struct Zmq<'a> {
    bin: std::path::PathBuf,
    lab: &'a Lab,
    port: std::cell::Cell<u16>,
}

impl Zmq<'_> {
    fn addr(i: usize) -> String {
        format!("10.78.0.{}", i + 1)
    }
    fn next_port(&self) -> u16 {
        let p = self.port.get();
        self.port.set(p + 1);
        p
    }
    /// REQ on node 0 and REP on node 1, both on CPU 0: median RTT in µs.
    fn rtt(&self, n: usize) -> f64 {
        let port = self.next_port();
        let rep = zmq_spawn(&self.bin, self.lab.node(1), 0, &["rep", "-e", &format!("tcp://{}:{port}", Self::addr(1))]);
        std::thread::sleep(Duration::from_millis(200));
        let req = zmq_spawn(
            &self.bin,
            self.lab.node(0),
            0,
            &["req", "-e", &format!("tcp://{}:{port}", Self::addr(1)), "-s", "64", "-n", &n.to_string()],
        );
        let out = zmq_wait(req);
        zmq_wait(rep);
        field(&out, "median_us").expect("median_us")
    }
    /// PUSH on node 0 (CPU 0) to PULL on node 1 (CPU 1), `msgs` of 1 KiB.
    fn push(&self, msgs: u64) -> Rate {
        let port = self.next_port();
        let ep = format!("tcp://{}:{port}", Self::addr(RX0));
        let pull = zmq_spawn(&self.bin, self.lab.node(RX0), 1, &["pull", "-e", &ep, "-n", &msgs.to_string()]);
        std::thread::sleep(Duration::from_millis(200));
        let ticks0 = cpu_ticks();
        let push =
            zmq_spawn(&self.bin, self.lab.node(0), 0, &["push", "-e", &ep, "-s", "1024", "-n", &msgs.to_string()]);
        let (tx, rx) = (zmq_wait(push), zmq_wait(pull));
        let busy = busy_share(&ticks0, &cpu_ticks());
        assert_eq!(field(&rx, "got"), Some(msgs as f64), "ZeroMQ lost messages: {rx}");
        let secs = (field(&rx, "t_last_ns").expect("t_last") - field(&tx, "t_first_ns").expect("t_first")) / 1e9;
        let cpu = field(&tx, "cpu_s").expect("cpu") + field(&rx, "cpu_s").expect("cpu");
        Rate { rate: msgs as f64 / secs, cpu_per_m: cpu * 1e6 / msgs as f64, busy }
    }
    /// XPUB on node 0 (CPU 0) to `k` SUBs on nodes 1..=k (CPU 1), `msgs`
    /// of 1 KiB; timed until the slowest subscriber has them all.
    fn fanout(&self, k: usize, msgs: u64) -> Rate {
        let port = self.next_port();
        let bind = format!("tcp://{}:{port}", Self::addr(0));
        let publ = zmq_spawn(
            &self.bin,
            self.lab.node(0),
            0,
            &["pub", "-e", &bind, "-s", "1024", "-n", &msgs.to_string(), "-k", &k.to_string()],
        );
        std::thread::sleep(Duration::from_millis(200));
        let ticks0 = cpu_ticks();
        let subs: Vec<_> = (RX0..RX0 + k)
            .map(|i| zmq_spawn(&self.bin, self.lab.node(i), 1, &["sub", "-e", &bind, "-n", &msgs.to_string()]))
            .collect();
        let tx = zmq_wait(publ);
        let rxs: Vec<String> = subs.into_iter().map(zmq_wait).collect();
        let busy = busy_share(&ticks0, &cpu_ticks());
        let mut last: f64 = 0.0;
        let mut cpu = field(&tx, "cpu_s").expect("cpu");
        for r in &rxs {
            assert_eq!(field(r, "got"), Some(msgs as f64), "ZeroMQ lost messages: {r}");
            last = last.max(field(r, "t_last_ns").expect("t_last"));
            cpu += field(r, "cpu_s").expect("cpu");
        }
        let secs = (last - field(&tx, "t_first_ns").expect("t_first")) / 1e9;
        Rate { rate: msgs as f64 / secs, cpu_per_m: cpu * 1e6 / msgs as f64, busy }
    }
}

fn main() {
    if !privileged() {
        eprintln!("group bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let secs: u32 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: u64 = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_032) / 64 * 64;
    let runs: u32 = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let zmq_msgs: u64 = arg("--zmq-msgs").and_then(|v| v.parse().ok()).unwrap_or(400_000);
    let only: Option<Vec<String>> = arg("--only").map(|v| v.split(',').map(str::to_string).collect());
    let want = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    let no_zmq = std::env::args().any(|a| a == "--no-zmq");

    let raw = build_rawlimit();
    let zmq_wanted = !no_zmq && want("zmq");
    let zmq_bin = if zmq_wanted { build_zmqprobe() } else { None };
    let zmq_missing = zmq_wanted && zmq_bin.is_none();
    let lab = Lab::bridge("gbench", NODES).expect("bridge");
    let mac = |i: usize| lab.node(i).mac(NODE_IF).expect("mac").to_string();
    let zmq = zmq_bin.map(|bin| {
        for i in 0..NODES {
            lab.node(i).ip(&["addr", "add", &format!("{}/24", Zmq::addr(i)), "dev", NODE_IF]).expect("address");
        }
        Zmq { bin, lab: &lab, port: std::cell::Cell::new(5600) }
    });

    let stacks: Vec<Stack> = (0..NODES).map(|i| start(lab.node(i), &format!("gb-{i}"), node_cpu(i))).collect();
    for s in &stacks {
        s.wait_for_nodes(NODES - 1, Duration::from_secs(20)).expect("links");
    }
    // the main group: node 0 sends (instance 0), the receivers hold
    // instance 1
    let socks: Vec<Arc<GroupSocket>> =
        stacks.iter().enumerate().map(|(i, s)| join(s, 4800, u32::from(i > 0))).collect();
    wait_members(&socks, NODES - 1);
    let rx1: MemberId = socks[RX0].id();

    let mut s_raw_rtt = Series::default();
    let (mut s_raw1070m, mut s_fan8m) = (Series::default(), Series::default());
    let (mut s_raw1500, mut s_raw1070, mut s_raw64, mut s_fan4, mut s_fan8) =
        (Series::default(), Series::default(), Series::default(), Series::default(), Series::default());
    let (mut s_rtt, mut s_uni, mut s_uni64, mut s_any) =
        (Series::default(), Series::default(), Series::default(), Series::default());
    let (mut s_uni_b, mut s_uni64_b, mut s_any_b) = (Series::default(), Series::default(), Series::default());
    let mut s_bc8_b = Series::default();
    let mut s_bc: Vec<(usize, Series, Shape)> =
        [1usize, 4, 8].into_iter().map(|m| (m, Series::default(), Shape::default())).collect();
    let (mut z_rtt, mut z_push, mut z_pub4, mut z_pub8) =
        (Series::default(), Series::default(), Series::default(), Series::default());

    for run in 0..runs {
        eprintln!("round {} of {runs}", run + 1);
        if want("raw") {
            let (a, b) = (lab.node(0), lab.node(RX0));
            s_raw_rtt.value(raw_rtt(&raw, a, lab.node(1), 64, 20_000, 0));
            for (series, size) in [(&mut s_raw1500, 1500), (&mut s_raw1070, 1070), (&mut s_raw64, 64)] {
                series.measure(|| raw_blast(&raw, a, b, &mac(RX0), size, secs, 0, 1));
            }
            let ring = RawBlast { bin: &raw, size: 1070, secs, tx_cpu: 0, rx_cpu: 1, rx: "ring" };
            let mmsg = RawBlast { rx: "mmsg", ..ring };
            s_raw1070m.measure(|| mmsg.fanout(a, &[b], &mac(RX0)));
            let sinks: Vec<&Netns> = (RX0..NODES).map(|i| lab.node(i)).collect();
            let all = "ff:ff:ff:ff:ff:ff";
            s_fan4.measure(|| ring.fanout(a, &sinks[..4], all));
            s_fan8.measure(|| ring.fanout(a, &sinks, all));
            s_fan8m.measure(|| mmsg.fanout(a, &sinks, all));
        }
        if want("rtt") {
            s_rtt.value(group_rtt(&socks[0], &socks[1], 10_000, 1000, (0, 0)));
        }
        // one call per message, and bursts of 64 per call (send_many)
        let one_by_one = |dest: Dest| {
            move |g: &GroupSocket, b: &[Bytes]| {
                for m in b {
                    match dest {
                        Dest::Member(to) => g.send_unicast(to, m.clone()),
                        Dest::GroupAnycast(i) => g.send_anycast(i, m.clone()),
                        _ => unreachable!("a stream is unicast or anycast"),
                    }
                    .expect("send");
                }
            }
        };
        let burst =
            |dest: Dest| move |g: &GroupSocket, b: &[Bytes]| assert_eq!(g.send_many(dest, b).expect("send"), b.len());
        let to_rx = &socks[RX0..=RX0];
        if want("unicast") {
            s_uni.push(stream_round(&socks[0], to_rx, 1024, secs, one_by_one(Dest::Member(rx1))));
            s_uni_b.push(stream_round(&socks[0], to_rx, 1024, secs, burst(Dest::Member(rx1))));
        }
        if want("unicast64") {
            s_uni64.push(stream_round(&socks[0], to_rx, 64, secs, one_by_one(Dest::Member(rx1))));
            s_uni64_b.push(stream_round(&socks[0], to_rx, 64, secs, burst(Dest::Member(rx1))));
        }
        if want("anycast") {
            s_any.push(stream_round(&socks[0], &socks[RX0..], 1024, secs, one_by_one(Dest::GroupAnycast(Instance(1)))));
            s_any_b.push(stream_round(&socks[0], &socks[RX0..], 1024, secs, burst(Dest::GroupAnycast(Instance(1)))));
        }
        if want("broadcast") {
            for (k, (m, series, fpm)) in s_bc.iter_mut().enumerate() {
                let (r, f) = broadcast_round(&stacks, 4900 + 6 * run + k as u32, *m, n, false);
                series.push(r);
                *fpm = f;
            }
            let (r, _) = broadcast_round(&stacks, 4903 + 6 * run, 8, n, true);
            s_bc8_b.push(r);
        }
        if let Some(z) = &zmq {
            z_rtt.value(z.rtt(20_000));
            z_push.push(z.push(zmq_msgs));
            z_pub4.push(z.fanout(4, zmq_msgs / 4));
            z_pub8.push(z.fanout(8, zmq_msgs / 4));
        }
    }
    drop(socks);
    for s in stacks {
        s.shutdown();
    }

    println!("\ngroup bench: ours, ZeroMQ and raw AF_PACKET in one sitting, the same namespaces and CPUs");
    println!("(median of {runs} rounds [lowest-highest]; cpu: CPU-seconds per million messages, all processes)\n");
    if zmq_missing {
        println!("ZeroMQ NOT MEASURED: its probe does not build (libzmq missing; run tools/bench-setup)\n");
    }
    print_line("raw.rtt.64.same", &s_raw_rtt, "us", false);
    print_line("raw.blast.1500.cross", &s_raw1500, "frames/s", false);
    print_line("raw.blast.1070.cross", &s_raw1070, "frames/s", false);
    print_line("raw.blast.64.cross", &s_raw64, "frames/s", false);
    print_line("raw.fanout.1070.to4 (slowest)", &s_fan4, "frames/s", false);
    print_line("raw.fanout.1070.to8 (slowest)", &s_fan8, "frames/s", false);
    if s_raw1070m.some() {
        println!("(sinks reading with recvmmsg, woken per frame while they sleep, like a stack's socket reader:)");
    }
    print_line("raw.blast.1070.cross.mmsg-sink", &s_raw1070m, "frames/s", false);
    print_line("raw.fanout.1070.to8.mmsg-sinks", &s_fan8m, "frames/s", false);
    print_line("group unicast RTT 64 B", &s_rtt, "us", false);
    print_line("group unicast 1 KiB one-way", &s_uni, "msg/s", true);
    print_line("  in bursts of 64 (send_many)", &s_uni_b, "msg/s", true);
    print_line("group unicast 64 B one-way", &s_uni64, "msg/s", true);
    print_line("  in bursts of 64 (send_many)", &s_uni64_b, "msg/s", true);
    print_line("group anycast 1 KiB to 8", &s_any, "msg/s", true);
    print_line("  in bursts of 64 (send_many)", &s_any_b, "msg/s", true);
    for (m, s, shape) in &s_bc {
        print_line(&format!("group broadcast 1 KiB to {m}"), s, "msg/s", true);
        if s.some() {
            println!(
                "{:<34}(last round: {:.2} frames per broadcast, members read {:.1} frames per call and sent {:.2} per broadcast)",
                "", shape.frames_per_bcast, shape.rx_per_call, shape.member_tx_per_bcast
            );
        }
    }
    print_line("  to 8 in bursts of 64 (send_many)", &s_bc8_b, "msg/s", true);
    print_line("zmq REQ/REP RTT 64 B", &z_rtt, "us", false);
    print_line("zmq PUSH->PULL 1 KiB", &z_push, "msg/s", true);
    print_line("zmq PUB->4 SUB 1 KiB", &z_pub4, "msg/s", true);
    print_line("zmq PUB->8 SUB 1 KiB", &z_pub8, "msg/s", true);

    println!("\nside by side (ratios of medians)");
    let ratio = |name: &str, a: &Series, b: &Series| {
        if a.some() && b.some() {
            println!("{name:<44}{:>7.2}x", a.med() / b.med());
        }
    };
    ratio("group unicast 1 KiB / zmq PUSH->PULL", &s_uni, &z_push);
    ratio("group broadcast to 4 / zmq PUB->4", &s_bc[1].1, &z_pub4);
    ratio("group broadcast to 8 / zmq PUB->8", &s_bc[2].1, &z_pub8);
    ratio("group RTT / zmq RTT", &s_rtt, &z_rtt);
    ratio("zmq PUSH->PULL / raw 1500 blast", &z_push, &s_raw1500);
    ratio("zmq PUB->8 / raw 8-sink fan-out", &z_pub8, &s_fan8);
    ratio("group unicast 1 KiB / raw 1070 into mmsg sink", &s_uni, &s_raw1070m);
    ratio("group broadcast to 8 / raw fan-out to 8 mmsg sinks", &s_bc[2].1, &s_fan8m);
    if s_uni.some() && z_push.some() {
        println!("{:<44}{:>7.2}x", "cpu per message: group unicast / zmq PUSH", s_uni.cpu() / z_push.cpu());
    }
    if s_bc[2].1.some() && z_pub8.some() {
        println!("{:<44}{:>7.2}x", "cpu per message: group bcast 8 / zmq PUB 8", s_bc[2].1.cpu() / z_pub8.cpu());
    }

    println!("\ntargets of issue 18 (medians of this sitting)");
    let target = |name: &str, have: Option<f64>, goal: f64, at_least: bool| {
        if let Some(h) = have {
            let met = if at_least { h >= goal } else { h <= goal };
            let cmp = if at_least { ">=" } else { "<=" };
            println!("{name:<52}{h:>8.2} (goal {cmp} {goal:.2}) {}", if met { "met" } else { "MISSED" });
        }
    };
    let of = |a: &Series, b: &Series| (a.some() && b.some()).then(|| a.med() / b.med());
    target("group unicast 1 KiB one-way / raw 1500 blast", of(&s_uni, &s_raw1500), 0.75, true);
    target("  in bursts of 64 (send_many)", of(&s_uni_b, &s_raw1500), 0.75, true);
    target("group anycast 1 KiB one-way / raw 1500 blast", of(&s_any, &s_raw1500), 0.75, true);
    target("  in bursts of 64 (send_many)", of(&s_any_b, &s_raw1500), 0.75, true);
    target("group unicast 64 B one-way / raw 1500 blast frames", of(&s_uni64, &s_raw1500), 1.0, true);
    target("  in bursts of 64 (send_many)", of(&s_uni64_b, &s_raw1500), 1.0, true);
    target("  (one by one / raw 64-byte blast frames)", of(&s_uni64, &s_raw64), 1.0, true);
    target("group broadcast 1 KiB to 8 / zmq PUB->8", of(&s_bc[2].1, &z_pub8), 1.0, true);
    target("  in bursts of 64 (send_many)", of(&s_bc8_b, &z_pub8), 1.0, true);
    target("group broadcast 1 KiB to 8 / raw 8-sink fan-out", of(&s_bc[2].1, &s_fan8), 0.60, true);
    target("  in bursts of 64 (send_many)", of(&s_bc8_b, &s_fan8), 0.60, true);
    target("group unicast RTT 64 B / raw RTT", of(&s_rtt, &s_raw_rtt), 1.2, false);
    target("group unicast RTT 64 B / zmq RTT", of(&s_rtt, &z_rtt), 0.5, false);
    if let Some(r) = of(&s_uni, &s_raw1070) {
        println!("(same-size denominators: unicast 1 KiB / raw 1070 blast = {r:.2})");
    }
}
