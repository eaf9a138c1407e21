//! Raw AF_PACKET denominators for the benches: the repository's own probe
//! `benches/rawlimit/rawlimit.c`, run in the same namespaces, the same sitting and the
//! same CPU placement as the stack being measured.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tipc_testkit::netns::{NODE_IF, Netns};

/// Compiles `rawlimit.c` with `gcc -O2` into the target folder.
pub fn build_rawlimit() -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/rawlimit/rawlimit.c");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/rawlimit");
    let st = Command::new("gcc").args(["-O2", "-o"]).arg(&out).arg(&src).status().expect("gcc (apt-get install gcc)");
    assert!(st.success(), "cannot compile {}", src.display());
    out
}

/// Parses `key=value` words of a rawlimit output line.
pub fn field(out: &str, key: &str) -> Option<f64> {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')).and_then(|v| v.parse().ok()))
}

/// A CPU argument meaning "not pinned": the scheduler places the process,
/// as it places a test's threads.
pub const UNPINNED: usize = usize::MAX;

fn in_ns(ns: &Netns, cpu: usize, bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name()]);
    if cpu != UNPINNED {
        c.args(["taskset", "-c", &cpu.to_string()]);
    }
    c.arg(bin).args(args);
    c
}

/// Raw ping-pong median RTT in µs, both sides on `cpu` (the `same` placement).
pub fn raw_rtt(bin: &Path, a: &Netns, b: &Netns, size: usize, n: usize, cpu: usize) -> f64 {
    let mut echo = in_ns(b, cpu, bin, &["echo", "-i", NODE_IF]).stdout(Stdio::null()).spawn().expect("echo");
    std::thread::sleep(Duration::from_millis(200));
    let out = in_ns(a, cpu, bin, &["pingpong", "-i", NODE_IF, "-s", &size.to_string(), "-n", &n.to_string(), "--stop"])
        .output()
        .expect("pingpong");
    let _ = echo.kill();
    let _ = echo.wait();
    let s = String::from_utf8_lossy(&out.stdout);
    field(&s, "median_us").unwrap_or_else(|| panic!("rawlimit pingpong said: {s}"))
}

#[allow(clippy::too_many_arguments)]
/// Raw blast: sendmmsg with QDISC_BYPASS on `tx_cpu`, TPACKET_V3 ring sink on
/// `rx_cpu` (the `mmsgbp-ring.cross` placement). Returns frames/s received.
pub fn raw_blast(
    bin: &Path,
    a: &Netns,
    b: &Netns,
    dst: &str,
    size: usize,
    secs: u32,
    tx_cpu: usize,
    rx_cpu: usize,
) -> f64 {
    RawBlast { bin, size, secs, tx_cpu, rx_cpu, rx: "ring" }.fanout(a, &[b], dst)
}

/// The service the connection benches bind (instances per measurement).
pub const BENCH_SVC: tipc_rs::wire::ServiceType = tipc_rs::wire::ServiceType(5000);

/// Connects a new socket of `kind` on `a` to `BENCH_SVC`:`inst`, retrying
/// while the listener's binding spreads (up to 10 s).
pub fn connect(a: &tipc_rs::Stack, kind: tipc_rs::ConnKind, inst: u32) -> tipc_rs::ConnSocket {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = a.conn_socket(kind).expect("socket");
        match c.connect(BENCH_SVC, tipc_rs::wire::Instance(inst)) {
            Ok(()) => return c,
            Err(_) if std::time::Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("connect: {e}"),
        }
    }
}

/// Median round trip (µs) of `n` 64-byte SEQPACKET messages from `a` to an
/// echo on `b` bound to `BENCH_SVC`:`inst`, both sides on CPU 0.
pub fn seqpacket_rtt(a: &tipc_rs::Stack, b: &tipc_rs::Stack, inst: u32, n: usize) -> f64 {
    use tipc_testkit::sys::pin_to_cpu;
    let l = b.conn_socket(tipc_rs::ConnKind::Seqpacket).expect("socket");
    let svc = tipc_rs::wire::ServiceRange::single(BENCH_SVC, tipc_rs::wire::Instance(inst));
    l.bind(svc, tipc_rs::Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let echo = std::thread::spawn(move || {
        pin_to_cpu(0).expect("pin");
        let (c, _) = l.accept_timeout(Duration::from_secs(10)).expect("accept");
        while let Ok(Some(m)) = c.recv() {
            if c.send(m).is_err() {
                break;
            }
        }
    });
    let c = connect(a, tipc_rs::ConnKind::Seqpacket, inst);
    let rtt = std::thread::scope(|s| {
        s.spawn(|| {
            pin_to_cpu(0).expect("pin");
            let msg = bytes::Bytes::from_static(&[7u8; 64]);
            median_rtt_us(n, || {
                c.send(msg.clone()).expect("send");
                c.recv().expect("echo").expect("not the end");
            })
        })
        .join()
        .expect("client")
    });
    drop(c);
    let _ = echo.join();
    rtt
}

/// The median round trip in µs of `n` calls of `once` (one request and its
/// answer), after `n / 10` untimed warm-up calls.
pub fn median_rtt_us(n: usize, mut once: impl FnMut()) -> f64 {
    let mut v = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = std::time::Instant::now();
        once();
        if i >= n / 10 {
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    median(&mut v)
}

/// The median group unicast round trip in µs: `a` sends 64 bytes to `b`,
/// whose echo thread sends them back, `n` times after `warm` untimed
/// ones; the sender runs on CPU `cpus.0`, the echo on `cpus.1`.
pub fn group_rtt(
    a: &std::sync::Arc<tipc_rs::GroupSocket>,
    b: &std::sync::Arc<tipc_rs::GroupSocket>,
    n: usize,
    warm: usize,
    cpus: (usize, usize),
) -> f64 {
    use tipc_rs::GroupEvent;
    use tipc_testkit::sys::pin_to_cpu;
    let (a, b) = (a.clone(), b.clone());
    let bid = b.id();
    let echo = std::thread::Builder::new()
        .name("rtt-echo".into())
        .spawn(move || {
            pin_to_cpu(cpus.1).expect("pin");
            for _ in 0..n + warm {
                match b.recv_timeout(Duration::from_secs(2)) {
                    Ok(GroupEvent::Message { from, data, .. }) => {
                        let _ = b.send_unicast(from, data);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
        .expect("echo thread");
    let mut v = std::thread::Builder::new()
        .name("rtt-client".into())
        .spawn(move || {
            pin_to_cpu(cpus.0).expect("pin");
            let mut v = Vec::with_capacity(n);
            for i in 0..n + warm {
                let t = std::time::Instant::now();
                a.send_unicast(bid, bytes::Bytes::from_static(&[7u8; 64])).expect("send");
                while !matches!(a.recv_timeout(Duration::from_secs(2)), Ok(GroupEvent::Message { .. })) {}
                if i >= warm {
                    v.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
            v
        })
        .expect("client thread")
        .join()
        .expect("client");
    let _ = echo.join();
    median(&mut v)
}

/// Median of a sample.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// `--name value` from the command line.
pub fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1).cloned())
}

/// How a raw measurement blasts and counts: the probe `bin`, the frame
/// `size` (bytes, with the Ethernet header), the blast's length `secs`,
/// the CPU of the blasters and of the sinks (or [`UNPINNED`]), and how
/// each sink reads, `rx`: `ring` (a TPACKET_V3 ring, woken once per block)
/// or `mmsg` (`recvmmsg`, woken per frame while it sleeps, as a stack
/// reading its socket is).
#[derive(Clone, Copy)]
pub struct RawBlast<'a> {
    pub bin: &'a Path,
    pub size: usize,
    pub secs: u32,
    pub tx_cpu: usize,
    pub rx_cpu: usize,
    pub rx: &'a str,
}

impl RawBlast<'_> {
    /// Raw fan-out: one blast from `a` to `dst` (sendmmsg with
    /// QDISC_BYPASS; the broadcast address reaches every sink) received at
    /// once by a sink in each of `sinks`. With the broadcast address, the
    /// physical limit of a broadcast on this segment. Returns the slowest
    /// sink's frames/s.
    pub fn fanout(&self, a: &Netns, sinks: &[&Netns], dst: &str) -> f64 {
        self.sink_results(&[(a, dst, None)], sinks).iter().map(|r| r.0).fold(f64::INFINITY, f64::min)
    }

    /// [`lossless_rate`] of a fan-out: blasts from `a` to the broadcast
    /// address, a sink on each of `sinks`.
    pub fn lossless_fanout(&self, a: &Netns, sinks: &[&Netns]) -> f64 {
        lossless_rate(|rate| self.sink_results(&[(a, "ff:ff:ff:ff:ff:ff", rate)], sinks))
    }

    /// [`lossless_rate`] of a fan-in: a blast from each of `senders` at
    /// once (each at its share of the rate) to `dst`, the MAC of `sink`,
    /// counted there together.
    pub fn lossless_fanin(&self, senders: &[&Netns], sink: &Netns, dst: &str) -> f64 {
        lossless_rate(|rate| {
            let share = rate.map(|r| r / senders.len() as f64);
            let blasts: Vec<_> = senders.iter().map(|a| (*a, dst, share)).collect();
            self.sink_results(&blasts, &[sink])
        })
    }

    /// Runs a blast from each `(node, destination MAC, frames/s or None
    /// for as fast as possible)` of `blasts` at once, counted by a sink in
    /// each of `sinks` that counts every blast; returns each sink's
    /// (frames/s, loss in per cent, -1 when its count is unknown).
    fn sink_results(&self, blasts: &[(&Netns, &str, Option<f64>)], sinks: &[&Netns]) -> Vec<(f64, f64)> {
        let runs = blasts.len().to_string();
        let procs: Vec<_> = sinks
            .iter()
            .map(|b| {
                let args = ["sink", "-i", NODE_IF, "--rx", self.rx, "--idle-ms", "1500", "--runs", &runs];
                in_ns(b, self.rx_cpu, self.bin, &args).stdout(Stdio::piped()).spawn().expect("sink")
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let (size, secs) = (self.size.to_string(), self.secs.to_string());
        let senders: Vec<_> = blasts
            .iter()
            .map(|(a, dst, rate)| {
                let mut args = vec!["blast", "-i", NODE_IF, "--dst", dst, "-s", &size, "-t", &secs, "--bypass"];
                let rate = rate.map(|r| format!("{r:.0}"));
                if let Some(r) = &rate {
                    // small batches keep a paced blast smooth
                    args.extend(["--rate", r, "--batch", "8"]);
                }
                in_ns(a, self.tx_cpu, self.bin, &args).stdout(Stdio::null()).spawn().expect("blast")
            })
            .collect();
        for mut b in senders {
            let _ = b.wait();
        }
        procs
            .into_iter()
            .map(|p| {
                let out = p.wait_with_output().expect("sink output");
                let s = String::from_utf8_lossy(&out.stdout);
                let fps = field(&s, "rx_fps").unwrap_or_else(|| panic!("rawlimit sink said: {s}"));
                (fps, field(&s, "loss_pct").unwrap_or(-1.0))
            })
            .collect()
    }
}

/// The highest rate a raw path carries without loss, searched with paced
/// blasts: `probe(rate)` runs one blast (or several at once) at `rate`
/// frames/s in all, or as fast as possible for `None`, and returns every
/// sink's (frames/s, loss in per cent). A paced blast is clean when no sink
/// lost more than 0.1 % and the slowest kept up (received at least 90 % of
/// the pace). Starting from the unpaced rate of the slowest sink, the pace
/// climbs by 25 % while blasts are clean (an unclean one is tried once more
/// at the same pace before the climb stops), or falls by 15 % until one is
/// clean (at most twelve paced blasts). Returns the highest slowest-sink rate of the
/// blasts that lost nothing (0.0 if every one did).
///
/// An unpaced blast into sinks that share their CPUs with the senders
/// measures the senders' overload rather than the path: frames dropped at
/// a full socket queue have cost the kernel a transmit and a delivery.
pub fn lossless_rate(mut probe: impl FnMut(Option<f64>) -> Vec<(f64, f64)>) -> f64 {
    let slowest = |r: &[(f64, f64)]| r.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
    let lossless = |r: &[(f64, f64)]| r.iter().all(|x| (0.0..=0.1).contains(&x.1));
    let mut rate = slowest(&probe(None)).max(1000.0);
    let mut best = 0.0f64;
    let mut climbing = None;
    let mut retried = false;
    for _ in 0..12 {
        let r = probe(Some(rate));
        let worst = r.iter().map(|x| x.1).fold(0.0, f64::max);
        let behind = if slowest(&r) < 0.9 * rate { " (behind the pace)" } else { "" };
        eprintln!("  paced at {rate:.0} frames/s: slowest sink {:.0}{behind}, worst loss {worst:.3} %", slowest(&r));
        if lossless(&r) {
            best = best.max(slowest(&r));
        }
        let clean = lossless(&r) && slowest(&r) >= 0.9 * rate;
        match (climbing, clean) {
            (None, c) => climbing = Some(c),
            // one unclean blast while climbing may be the machine's noise:
            // the same pace once more before giving up
            (Some(true), false) if !retried => {
                retried = true;
                continue;
            }
            (Some(true), false) | (Some(false), true) => break,
            _ => {}
        }
        retried = false;
        rate *= if clean { 1.25 } else { 0.85 };
    }
    best
}

/// Compiles the ZeroMQ probe `benches/peers/zmqprobe.c` against libzmq
/// into the target folder; `None` (with the reason on stderr) if libzmq's
/// headers are missing — `tools/bench-setup` installs them.
pub fn build_zmqprobe() -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/zmqprobe.c");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/zmqprobe");
    let r = Command::new("gcc").args(["-O2", "-Wall", "-o"]).arg(&out).arg(&src).arg("-lzmq").output();
    match r {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!(
                "zmqprobe does not build (libzmq missing? run tools/bench-setup): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("zmqprobe: gcc: {e}");
            None
        }
    }
}

/// Starts the ZeroMQ probe in namespace `ns` on `cpu`, its output piped.
pub fn zmq_spawn(bin: &Path, ns: &Netns, cpu: usize, args: &[&str]) -> std::process::Child {
    in_ns(ns, cpu, bin, args).stdout(Stdio::piped()).spawn().expect("zmqprobe")
}

/// Waits for a probe and returns its output line.
pub fn zmq_wait(c: std::process::Child) -> String {
    let out = c.wait_with_output().expect("zmqprobe output");
    assert!(out.status.success(), "zmqprobe failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Busy and total clock ticks of each CPU since boot, from `/proc/stat`
/// (busy: user, nice, system, irq and softirq; total adds idle, iowait and
/// steal); empty where the file cannot be read.
pub fn cpu_ticks() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
            let at = |i: usize| f.get(i).copied().unwrap_or(0);
            let busy = at(0) + at(1) + at(2) + at(5) + at(6);
            (busy, busy + at(3) + at(4) + at(7))
        })
        .collect()
}

/// The share of each of the first two CPUs that was busy between two
/// [`cpu_ticks`] readings (0.0–1.0; NaN where unknown).
pub fn busy_share(before: &[(u64, u64)], after: &[(u64, u64)]) -> [f64; 2] {
    let share = |i: usize| match (before.get(i), after.get(i)) {
        (Some(b), Some(a)) if a.1 > b.1 => (a.0 - b.0) as f64 / (a.1 - b.1) as f64,
        _ => f64::NAN,
    };
    [share(0), share(1)]
}

/// A rate and the CPU it cost: messages/s, CPU-seconds per million
/// messages, and the share of CPU 0 and CPU 1 that was busy meanwhile (the
/// one near 100 % is the bottleneck of that path).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    pub rate: f64,
    pub cpu_per_m: f64,
    pub busy: [f64; 2],
}

/// Figures of one measurement over the rounds.
#[derive(Default)]
pub struct Series {
    v: Vec<f64>,
    cpu: Vec<f64>,
    busy: Vec<[f64; 2]>,
}

impl Series {
    pub fn push(&mut self, r: Rate) {
        self.v.push(r.rate);
        self.cpu.push(r.cpu_per_m);
        self.busy.push(r.busy);
    }
    /// A figure with no CPU cost measured (a round trip).
    pub fn value(&mut self, v: f64) {
        self.push(Rate { rate: v, cpu_per_m: 0.0, busy: [f64::NAN; 2] });
    }
    /// A raw limit measured by `f`, with how busy each CPU was meanwhile.
    pub fn measure(&mut self, f: impl FnOnce() -> f64) {
        let t = cpu_ticks();
        let v = f();
        self.push(Rate { rate: v, cpu_per_m: 0.0, busy: busy_share(&t, &cpu_ticks()) });
    }
    /// The median busy share of each CPU (NaN when not measured).
    pub fn busy(&self) -> [f64; 2] {
        let of = |i: usize| {
            let mut v: Vec<f64> = self.busy.iter().map(|b| b[i]).filter(|b| !b.is_nan()).collect();
            if v.is_empty() { f64::NAN } else { median(&mut v) }
        };
        [of(0), of(1)]
    }
    pub fn med(&self) -> f64 {
        median(&mut self.v.clone())
    }
    pub fn lo(&self) -> f64 {
        self.v.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub fn hi(&self) -> f64 {
        self.v.iter().copied().fold(0.0, f64::max)
    }
    pub fn cpu(&self) -> f64 {
        median(&mut self.cpu.clone())
    }
    pub fn some(&self) -> bool {
        !self.v.is_empty()
    }
}

/// Prints one measurement: `name`, the median with the lowest and highest
/// round in `unit`, the CPU-seconds per million messages when `cpu`, and
/// how busy each CPU was.
pub fn print_line(name: &str, s: &Series, unit: &str, cpu: bool) {
    if s.some() {
        let c = if cpu { format!("   cpu {:>6.2} s/M", s.cpu()) } else { String::new() };
        let [b0, b1] = s.busy();
        let b = if b0.is_nan() {
            String::new()
        } else {
            format!("   busy cpu0 {:>3.0}% cpu1 {:>3.0}%", b0 * 100.0, b1 * 100.0)
        };
        let p = if s.med() >= 1000.0 { 0 } else { 2 };
        println!("{name:<34}{:>11.p$} {unit:<9}[{:.p$}-{:.p$}]{c}{b}", s.med(), s.lo(), s.hi());
    }
}
