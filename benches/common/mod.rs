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
    let sink = in_ns(b, rx_cpu, bin, &["sink", "-i", NODE_IF, "--rx", "ring", "--idle-ms", "1500"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sink");
    std::thread::sleep(Duration::from_millis(300));
    let _ = in_ns(
        a,
        tx_cpu,
        bin,
        &["blast", "-i", NODE_IF, "--dst", dst, "-s", &size.to_string(), "-t", &secs.to_string(), "--bypass"],
    )
    .stdout(Stdio::null())
    .status();
    let out = sink.wait_with_output().expect("sink output");
    let s = String::from_utf8_lossy(&out.stdout);
    field(&s, "rx_fps").unwrap_or_else(|| panic!("rawlimit sink said: {s}"))
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
