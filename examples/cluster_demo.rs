//! The main job: a private 4-node TIPC cluster over veth in network
//! namespaces of its own, one communication group across it, every mode,
//! a member leaving and a node killed — told in plain words, with a summary
//! table at the end.
//!
//! ```text
//! cargo run --release --example cluster_demo                 # real veth, as root
//! cargo run --release --example cluster_demo -- --udp        # UDP on loopback, no privileges
//! cargo run --release --example cluster_demo -- --sim        # the same on the simulator
//! ```
//!
//! `kill -USR1` prints every node's statistics; SIGINT/SIGTERM close the
//! nodes, print their statistics, remove the namespaces and exit 0.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Instance, MemberId, NodeAddr, NodeId, PortId, ServiceType};
use tipc_rs::{CoreEvent, Dest, Error, GroupEvent, GroupSocket, GroupSpec, Mode, Scope, SendOpts, Stack};
use tipc_testkit::netns::{Lab, NODE_IF};

mod common;

#[derive(Parser, Debug)]
#[command(about = "A 4-node TIPC cluster demo over veth (or --sim)")]
struct Args {
    /// Run on the in-memory simulator (no privileges needed).
    #[arg(long, conflicts_with = "udp")]
    sim: bool,
    /// Run the nodes on UDP bearers on loopback addresses of this host
    /// (127.81.0.1-4, replicast): no namespaces, no privileges needed.
    #[arg(long)]
    udp: bool,
    /// Messages per mode.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Seed (simulator).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Serve each real node's control socket in this directory
    /// (node0.sock … node3.sock) for the `tipc-rs` inspector.
    #[arg(long, value_name = "DIR", conflicts_with = "sim")]
    control_socket: Option<std::path::PathBuf>,
    /// After the demo, keep the remaining nodes running until SIGINT or
    /// SIGTERM (to look at them with `tipc-rs`); with --control-socket each
    /// node's statistics are also written to DIR/nodeN.json then.
    #[arg(long, conflicts_with = "sim")]
    hold: bool,
}

const NODES: usize = 4;
/// Member instances: two members hold instance 2, so multicast and anycast have a choice.
const INST: [u32; NODES] = [1, 2, 2, 3];
const GROUP: ServiceType = ServiceType(4711);

/// A received event with the time it was seen (µs since the demo epoch).
type Seen = (usize, GroupEvent, u64);

/// What both back ends offer.
trait Cluster {
    fn ids(&self) -> Vec<MemberId>;
    fn send(&mut self, from: usize, mode: Mode, to: Option<MemberId>, inst: u32, data: Bytes) -> Result<(), Error>;
    fn now_us(&self) -> u64;
    /// Runs for about `d`, returning events seen (messages already read).
    fn pump(&mut self, d: Duration) -> Vec<Seen>;
    fn leave(&mut self, member: usize);
    fn kill(&mut self, node: usize);
    fn frames_sent(&mut self, node: usize) -> u64;
    fn retransmissions(&mut self) -> u64;
}

fn payload(t_us: u64, seq: u64) -> Bytes {
    let mut v = vec![0u8; 64];
    v[..8].copy_from_slice(&t_us.to_be_bytes());
    v[8..16].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(v)
}

// ------------------------------------------------------------ simulator

struct Sim {
    net: SimNet,
    ports: Vec<PortId>,
    ids: Vec<MemberId>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut net = SimNet::new(seed);
        let ix = net.add_nodes(NODES);
        net.run_while(Duration::from_secs(20).into(), |n| {
            ix.iter().any(|&i| n.core(i).link().up_nodes().len() + 1 < NODES)
        });
        let mut ports = Vec::new();
        let mut ids = Vec::new();
        for (i, inst) in INST.iter().enumerate() {
            let p = net.with(i, |c, _| c.open_port());
            let spec = GroupSpec {
                stype: GROUP,
                instance: Instance(*inst),
                scope: Scope::Cluster,
                loopback: false,
                member_events: true,
            };
            net.with(i, |c, _| c.group_join(p, spec)).expect("join");
            ports.push(p);
            ids.push(MemberId { node: net.core(i).address().expect("addr"), port: p });
        }
        Sim { net, ports, ids }
    }
}

impl Cluster for Sim {
    fn ids(&self) -> Vec<MemberId> {
        self.ids.clone()
    }
    fn send(&mut self, from: usize, mode: Mode, to: Option<MemberId>, inst: u32, data: Bytes) -> Result<(), Error> {
        let p = self.ports[from];
        let dest = Dest::group(mode, to, Instance(inst))
            .ok_or(Error::NoSuchMember(MemberId { node: NodeAddr(0), port: PortId(0) }))?;
        self.net.with(from, |c, now| c.send(now, p, dest, data, SendOpts::default()))
    }
    fn now_us(&self) -> u64 {
        self.net.now().as_micros()
    }
    fn pump(&mut self, d: Duration) -> Vec<Seen> {
        let mut out = Vec::new();
        let end = self.net.now() + d.into();
        loop {
            let t = (self.net.now() + Duration::from_micros(200).into()).min(end);
            self.net.run_until(t);
            for node in 0..NODES {
                for (at, ev) in self.net.take_events(node) {
                    if let CoreEvent::Group { port, event } = ev {
                        if let GroupEvent::Message { from, data, .. } = &event {
                            let (f, l) = (*from, data.len());
                            self.net.with(node, |c, _| c.group_consumed(port, f, l));
                        }
                        out.push((node, event, at.as_micros()));
                    }
                }
            }
            if self.net.now() >= end {
                return out;
            }
        }
    }
    fn leave(&mut self, member: usize) {
        let p = self.ports[member];
        let _ = self.net.with(member, |c, _| c.group_leave(p));
    }
    fn kill(&mut self, node: usize) {
        self.net.crash(node);
    }
    fn frames_sent(&mut self, node: usize) -> u64 {
        self.net.core(node).link().links().iter().map(|l| l.stats.sent_pkts + l.stats.sent_states).sum::<u64>()
            + self.net.core(node).link().bcast_stats().0
    }
    fn retransmissions(&mut self) -> u64 {
        (0..NODES).map(|i| self.net.core(i).link().links().iter().map(|l| l.stats.retransmitted).sum::<u64>()).sum()
    }
}

// ------------------------------------------------------------- real veth

struct Real {
    /// The namespaces (none on UDP).
    _lab: Option<Lab>,
    /// Shared with the signal thread (statistics, a clean stop).
    stacks: Arc<Mutex<Vec<Option<Stack>>>>,
    socks: Vec<Option<Arc<GroupSocket>>>,
    ids: Vec<MemberId>,
    epoch: Instant,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Real {
    /// The nodes in `lab`'s namespaces on Ethernet, or without `lab` on
    /// UDP loopback addresses, each listing the others.
    fn new(lab: Option<Lab>, control: Option<&std::path::Path>) -> Result<Real, String> {
        let mut stacks = Vec::new();
        for i in 0..NODES {
            let id = NodeId::from_text(&format!("demo-{i}")).map_err(|e| e.to_string())?;
            let ctl = control.map(|d| d.join(format!("node{i}.sock")));
            let with_ctl = move |b: tipc_rs::StackBuilder| match ctl {
                Some(p) => b.control_socket(p),
                None => b,
            };
            let s = match &lab {
                Some(lab) => lab
                    .node(i)
                    .spawn("start", move || with_ctl(Stack::builder().iface(NODE_IF).node_id(id)).start())
                    .map_err(|e| e.to_string())?
                    .join()
                    .map_err(|_| "start thread".to_string())?
                    .map_err(|e| e.to_string())?,
                None => {
                    let at = |k: usize| std::net::SocketAddr::from(([127, 81, 0, k as u8 + 1], 6118));
                    let mut b = Stack::builder().udp(at(i)).node_id(id);
                    for k in (0..NODES).filter(|k| *k != i) {
                        b = b.udp_peer(at(k));
                    }
                    with_ctl(b).start().map_err(|e| e.to_string())?
                }
            };
            stacks.push(s);
        }
        for s in &stacks {
            s.wait_for_nodes(NODES - 1, Duration::from_secs(10)).map_err(|e| format!("links: {e}"))?;
        }
        let epoch = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut socks = Vec::new();
        let mut ids = Vec::new();
        let mut readers = Vec::new();
        for (i, s) in stacks.iter().enumerate() {
            let g = Arc::new(s.group_socket().map_err(|e| e.to_string())?);
            g.join(GroupSpec {
                stype: GROUP,
                instance: Instance(INST[i]),
                scope: Scope::Cluster,
                loopback: false,
                member_events: true,
            })
            .map_err(|e| e.to_string())?;
            ids.push(g.id());
            let (g2, seen2, stop2) = (g.clone(), seen.clone(), stop.clone());
            readers.push(std::thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match g2.recv_timeout(Duration::from_millis(50)) {
                        Ok(GroupEvent::Unblocked) | Err(Error::Timeout) => {}
                        Ok(ev) => {
                            let t = epoch.elapsed().as_micros() as u64;
                            if let Ok(mut v) = seen2.lock() {
                                v.push((i, ev, t));
                            }
                        }
                        Err(_) => return,
                    }
                }
            }));
            socks.push(Some(g));
        }
        let stacks = Arc::new(Mutex::new(stacks.into_iter().map(Some).collect()));
        Ok(Real { _lab: lab, stacks, socks, ids, epoch, seen, stop, readers })
    }
}

impl Cluster for Real {
    fn ids(&self) -> Vec<MemberId> {
        self.ids.clone()
    }
    fn send(&mut self, from: usize, mode: Mode, to: Option<MemberId>, inst: u32, data: Bytes) -> Result<(), Error> {
        let g = self.socks[from].as_ref().ok_or(Error::NotJoined)?;
        match mode {
            Mode::Unicast => g.send_unicast(to.ok_or(Error::NotJoined)?, data),
            Mode::Anycast => g.send_anycast(Instance(inst), data),
            Mode::Multicast => g.send_multicast(Instance(inst), data),
            Mode::Broadcast => g.broadcast(data),
        }
    }
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn pump(&mut self, d: Duration) -> Vec<Seen> {
        std::thread::sleep(d);
        self.seen.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
    fn leave(&mut self, member: usize) {
        if let Some(g) = &self.socks[member] {
            let _ = g.leave();
        }
    }
    fn kill(&mut self, node: usize) {
        self.socks[node] = None;
        let victim = self.stacks.lock().ok().and_then(|mut v| v[node].take());
        if let Some(s) = victim {
            s.kill();
        }
    }
    fn frames_sent(&mut self, node: usize) -> u64 {
        let stacks = self.stacks.lock().expect("stacks");
        stacks[node].as_ref().and_then(Stack::bearer_stats).map_or(0, |s| s.tx_frames)
    }
    fn retransmissions(&mut self) -> u64 {
        let stacks = self.stacks.lock().expect("stacks");
        stacks.iter().flatten().map(|s| s.links().iter().map(|l| l.stats.retransmitted).sum::<u64>()).sum()
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.socks.clear();
        let stacks: Vec<Stack> =
            self.stacks.lock().map(|mut v| v.iter_mut().filter_map(Option::take).collect()).unwrap_or_default();
        for s in stacks {
            s.shutdown();
        }
    }
}

// ------------------------------------------------------------------ demo

#[derive(Default)]
struct Row {
    sent: u64,
    expected: u64,
    delivered: u64,
    lat: Vec<u64>,
    frames: Option<f64>,
}

/// The last line said, for SIGUSR1 on the simulator (whose nodes have no
/// runtime statistics to print).
static LAST_SAID: Mutex<String> = Mutex::new(String::new());

fn say(s: &str) {
    if let Ok(mut l) = LAST_SAID.lock() {
        s.clone_into(&mut l);
    }
    println!("{s}");
    let _ = std::io::stdout().flush();
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64
}

#[allow(clippy::too_many_arguments)]
fn run_mode(
    c: &mut dyn Cluster,
    row: &mut Row,
    name: &str,
    from: usize,
    mode: Mode,
    to: Option<MemberId>,
    inst: u32,
    receivers: u64,
    n: u64,
) {
    let frames_before = c.frames_sent(from);
    // progress overwrites itself on a terminal; a log gets only the result
    let tty = std::io::stdout().is_terminal();
    let mut seen: Vec<Seen> = Vec::new();
    for k in 0..n {
        loop {
            let data = payload(c.now_us(), k);
            match c.send(from, mode, to, inst, data) {
                Ok(()) => break,
                Err(Error::WouldBlock(_)) => seen.extend(c.pump(Duration::from_millis(1))),
                Err(e) => {
                    say(&format!("  send failed: {e}"));
                    return;
                }
            }
        }
        row.sent += 1;
        if k % 200 == 0 {
            seen.extend(c.pump(Duration::from_micros(100)));
            if tty {
                print!("\r  {name}: sent {}/{n}", k + 1);
                let _ = std::io::stdout().flush();
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while Instant::now() < deadline {
        seen.extend(c.pump(Duration::from_millis(20)));
        got = seen.iter().filter(|s| matches!(s.1, GroupEvent::Message { .. })).count() as u64;
        if got >= receivers * n {
            break;
        }
    }
    let frames = c.frames_sent(from) - frames_before;
    let cr = if tty { "\r" } else { "" };
    println!("{cr}  {name}: sent {n}, delivered {got} of {} expected", receivers * n);
    row.expected += receivers * n;
    row.delivered += got;
    for (_, ev, at) in &seen {
        if let GroupEvent::Message { data, .. } = ev
            && let Some(b) = data.get(..8)
        {
            let t = u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            row.lat.push(at.saturating_sub(t));
        }
    }
    row.frames = Some(frames as f64 / n as f64);
}

fn demo(c: &mut dyn Cluster, n: u64, sim: bool) -> bool {
    let ids = c.ids();
    let joins = c.pump(Duration::from_secs(1));
    let ups = joins.iter().filter(|s| matches!(s.1, GroupEvent::MemberUp { .. })).count();
    say(&format!(
        "Group {} joined by {NODES} members (instances {INST:?}); {ups} JOINED events seen (expected {}).",
        GROUP.0,
        NODES * (NODES - 1)
    ));
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    say("Broadcast: member 0 sends to every member.");
    run_mode(c, rows.entry("broadcast").or_default(), "broadcast", 0, Mode::Broadcast, None, 0, 3, n);
    say("Multicast: member 0 sends to instance 2 (held by members 1 and 2).");
    run_mode(c, rows.entry("multicast").or_default(), "multicast", 0, Mode::Multicast, None, 2, 2, n);
    say("Anycast: member 3 sends to instance 2; each message goes to one holder, round robin.");
    run_mode(c, rows.entry("anycast").or_default(), "anycast", 3, Mode::Anycast, None, 2, 1, n);
    say("Unicast: member 1 sends to member 3's socket.");
    run_mode(c, rows.entry("unicast").or_default(), "unicast", 1, Mode::Unicast, Some(ids[3]), 0, 1, n);

    say("Member 2 leaves the group.");
    c.leave(2);
    let ev = c.pump(Duration::from_millis(500));
    let lefts =
        ev.iter().filter(|s| matches!(&s.1, GroupEvent::MemberDown { member, .. } if *member == ids[2])).count();
    say(&format!("  {lefts} members saw it leave (expected 3)."));
    say("Node 3 is killed without a goodbye.");
    let t0 = c.now_us();
    c.kill(3);
    let mut seen_left: Vec<u64> = Vec::new();
    for _ in 0..40 {
        for (_, e, at) in c.pump(Duration::from_millis(100)) {
            if matches!(&e, GroupEvent::MemberDown { member, .. } if *member == ids[3]) {
                seen_left.push(at - t0);
            }
        }
        if seen_left.len() >= 2 {
            break;
        }
    }
    let worst = seen_left.iter().max().copied().unwrap_or(0);
    say(&format!(
        "  {} remaining members saw member 3 leave, {:.0} ms after the kill (link tolerance 1500 ms).",
        seen_left.len(),
        worst as f64 / 1000.0
    ));

    let rt = c.retransmissions();
    println!();
    say(&format!(
        "Summary ({}):",
        if sim { "simulator, virtual time" } else { KIND.get().copied().unwrap_or("real links") }
    ));
    say(&format!(
        "{:<10} {:>8} {:>10} {:>6} {:>10} {:>10} {:>14}",
        "mode", "sent", "delivered", "lost", "p50 us", "p99 us", "frames/msg"
    ));
    let mut ok = true;
    for (name, r) in rows.iter_mut() {
        let lost = r.expected.saturating_sub(r.delivered);
        ok &= lost == 0;
        let fr = r.frames.map_or("-".into(), |f| format!("{f:.2}"));
        say(&format!(
            "{name:<10} {:>8} {:>10} {:>6} {:>10.0} {:>10.0} {:>14}",
            r.sent,
            r.delivered,
            lost,
            pct(&mut r.lat, 0.5),
            pct(&mut r.lat, 0.99),
            fr
        ));
    }
    say(&format!("retransmissions on all links: {rt}"));
    ok &= ups == NODES * (NODES - 1) && lefts == 3 && seen_left.len() == 2;
    say(if ok { "Result: nothing lost, every event seen." } else { "Result: PROBLEMS (see above)." });
    ok
}

fn main() {
    let args = Args::parse();
    common::init_tracing();
    if args.sim {
        let progress =
            || eprintln!("cluster_demo --sim: at \"{}\"", LAST_SAID.lock().map(|l| l.clone()).unwrap_or_default());
        common::on_signals(progress, progress);
        say(&format!("Simulated 4-node cluster (seed {}).", args.seed));
        let mut c = Sim::new(args.seed);
        let ok = demo(&mut c, args.messages, true);
        std::process::exit(i32::from(!ok));
    }
    if args.udp {
        let _ = KIND.set("UDP bearers on loopback");
        say("Starting a 4-node cluster on UDP bearers at 127.81.0.1-4 (replicast, no privileges).");
        let t0 = Instant::now();
        let c = match Real::new(None, args.control_socket.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot start the nodes: {e}");
                std::process::exit(1);
            }
        };
        run_real(c, t0, Vec::new(), &args);
    }
    if !tipc_testkit::netns::privileged() {
        eprintln!(
            "cluster_demo builds network namespaces and veth links and opens raw sockets: run it as root\n\
             (e.g. sudo cargo run --release --example cluster_demo), or try --sim, which needs no privileges."
        );
        std::process::exit(1);
    }
    say("Building a private 4-node cluster: 4 network namespaces on one bridge (veth).");
    let lab = match Lab::bridge("demo", NODES) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot build the cluster: {e}");
            std::process::exit(1);
        }
    };
    let _ = KIND.set("real veth links");
    let names: Vec<String> = lab.nodes().iter().chain(lab.infra()).map(|n| n.name().to_string()).collect();
    let t0 = Instant::now();
    let c = match Real::new(Some(lab), args.control_socket.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the nodes: {e}");
            std::process::exit(1);
        }
    };
    run_real(c, t0, names, &args);
}

/// Runs the demo on real nodes started at `t0`; `names` are namespaces to
/// remove on SIGINT/SIGTERM. Exits.
fn run_real(mut c: Real, t0: Instant, names: Vec<String>, args: &Args) -> ! {
    // SIGUSR1: every node's statistics; SIGINT/SIGTERM: close the nodes
    // (the others see them leave), print their statistics, remove our
    // namespaces (and with them every interface) and exit 0
    let (st1, st2) = (c.stacks.clone(), c.stacks.clone());
    common::on_signals(
        move || {
            for s in st1.lock().map(|v| v.iter().flatten().map(Stack::stats).collect::<Vec<_>>()).unwrap_or_default() {
                eprintln!("{s}");
            }
        },
        move || {
            eprintln!("\ninterrupted: closing the nodes");
            if let Ok(v) = st2.lock() {
                for s in v.iter().flatten() {
                    s.close();
                    eprintln!("{}", s.stats());
                }
            }
            for n in &names {
                let _ = tipc_testkit::netns::ip(&["netns", "del", n]);
            }
            eprintln!("namespaces removed");
        },
    );
    say(&format!(
        "All {} links up after {:.2} s (1 s of that is TIPC's address trial).",
        NODES * (NODES - 1) / 2,
        t0.elapsed().as_secs_f64()
    ));
    let ok = demo(&mut c, args.messages, false);
    if args.hold {
        hold(&c, args.control_socket.as_deref());
    }
    drop(c);
    say("Cluster removed.");
    std::process::exit(i32::from(!ok));
}

/// Keeps the nodes still running up until a signal ends the process; with
/// a control directory, writes each node's statistics beside its socket
/// first (what an inspector's views should agree with).
fn hold(c: &Real, control: Option<&std::path::Path>) -> ! {
    if let (Some(dir), Ok(v)) = (control, c.stacks.lock()) {
        for (i, s) in v.iter().enumerate() {
            if let Some(s) = s
                && let Ok(j) = serde_json::to_string(&s.stats())
            {
                let _ = std::fs::write(dir.join(format!("node{i}.json")), j);
            }
        }
    }
    match control {
        Some(d) => say(&format!(
            "Holding the cluster: try `tipc-rs -s {}/node0.sock link list` (Ctrl-C ends it).",
            d.display()
        )),
        None => say("Holding the cluster (Ctrl-C ends it)."),
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// What the real nodes run on, for the summary.
static KIND: std::sync::OnceLock<&str> = std::sync::OnceLock::new();
