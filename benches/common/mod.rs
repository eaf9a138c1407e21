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

fn in_ns(ns: &Netns, cpu: usize, bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name(), "taskset", "-c", &cpu.to_string()]).arg(bin).args(args);
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
    raw_fanout(bin, a, &[b], dst, size, secs, tx_cpu, rx_cpu, "ring")
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

#[allow(clippy::too_many_arguments)]
/// Raw fan-out: one blast to `dst` (sendmmsg with QDISC_BYPASS on
/// `tx_cpu`; the broadcast address reaches every sink) received at once
/// by a sink in each of `sinks` (all on `rx_cpu`), each reading with
/// `rx`: `ring` (a TPACKET_V3 ring, woken once per block) or `mmsg`
/// (`recvmmsg`, woken per frame while it sleeps, as a stack reading its
/// socket is). With the broadcast address, the physical limit of a
/// broadcast on this segment. Returns the slowest sink's frames/s.
pub fn raw_fanout(
    bin: &Path,
    a: &Netns,
    sinks: &[&Netns],
    dst: &str,
    size: usize,
    secs: u32,
    tx_cpu: usize,
    rx_cpu: usize,
    rx: &str,
) -> f64 {
    let procs: Vec<_> = sinks
        .iter()
        .map(|b| {
            in_ns(b, rx_cpu, bin, &["sink", "-i", NODE_IF, "--rx", rx, "--idle-ms", "1500"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("sink")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let _ = in_ns(
        a,
        tx_cpu,
        bin,
        &["blast", "-i", NODE_IF, "--dst", dst, "-s", &size.to_string(), "-t", &secs.to_string(), "--bypass"],
    )
    .stdout(Stdio::null())
    .status();
    procs
        .into_iter()
        .map(|p| {
            let out = p.wait_with_output().expect("sink output");
            let s = String::from_utf8_lossy(&out.stdout);
            field(&s, "rx_fps").unwrap_or_else(|| panic!("rawlimit sink said: {s}"))
        })
        .fold(f64::INFINITY, f64::min)
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
