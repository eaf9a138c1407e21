//! Shared helpers of the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use tipc_rs::wire::{DataMsg, DataType, Msg, PortId};
use tipc_testkit::netns::{LabError, privileged};

pub mod kernel;

/// The kernel captures kept as test data (`tests/data/captures`).
pub fn captures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")
}

/// The TIPC messages (Ethernet header removed) of every kernel capture in [`captures_dir`].
pub fn kernel_messages() -> Vec<Bytes> {
    let dir = captures_dir();
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    for f in files {
        for c in tipc_rs::wire::pcap::read_pcap_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())) {
            if let Ok(e) = tipc_rs::wire::EthFrame::parse_tipc(c.data) {
                out.push(e.payload);
            }
        }
    }
    out
}

/// Where skipped tests leave their record for the run's closing report
/// (`tests/zz_skip_report.rs`): one file per `cargo test` run, named after
/// the cargo process every test binary of the run is a child of.
pub fn skip_file(cargo_pid: u32) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("skipped-{cargo_pid}.txt"))
}

/// Gives up on the current test because its environment is missing:
/// prints `SKIPPED binary::test: reason` on the real stderr (not the
/// captured one, so it shows beside the test's `ok`), and records it for
/// the run's closing list. With `CI` set a skip is a failure: it panics.
pub fn skip(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("main").to_string();
    let name = format!("{}::{test}", env!("CARGO_CRATE_NAME"));
    if std::env::var_os("CI").is_some() {
        panic!("{name} cannot run: {reason} (CI is set, so this is a failure, not a skip)");
    }
    let line = format!("SKIPPED {name}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let path = skip_file(std::os::unix::process::parent_id());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Builds a rig, or explains why not: without root the test is skipped
/// ([`skip`]) — except when `CI` is set, where it fails.
pub fn rig<T>(what: &str, make: impl FnOnce() -> Result<T, LabError>) -> Option<T> {
    if !privileged() {
        skip(&format!("{what}: {}", LabError::NotPrivileged));
        return None;
    }
    Some(make().unwrap_or_else(|e| panic!("{what}: cannot build the veth rig: {e}")))
}

/// Whether `tool` runs (`tool --version`); if not, the test is skipped
/// with the package that brings it ([`skip`]).
pub fn have_tool(tool: &str, package: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !ok {
        skip(&format!("`{tool}` is not installed (apt-get install {package}, or run tools/test)"));
    }
    ok
}

/// The path of a built example (`cargo test` builds them beside the tests).
pub fn example(name: &str) -> std::path::PathBuf {
    // tests run from target/<profile>/deps; examples are in target/<profile>/examples
    let exe = std::env::current_exe().expect("test binary path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("examples").join(name);
    assert!(p.exists(), "{} not built (cargo test builds the examples)", p.display());
    p
}

/// A valid TIPC direct message of exactly `size` bytes (≥ 40) whose payload
/// starts with `seq`.
pub fn numbered_msg(size: usize, seq: u64) -> Bytes {
    let mut payload = vec![(seq % 251) as u8; size.max(40) - 32];
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    let mut m = DataMsg::new(DataType::Direct, Bytes::from(payload));
    m.dest_port = PortId(1);
    Msg::Data(m).to_bytes().expect("encode test message")
}

/// The sequence number [`numbered_msg`] put in a message.
pub fn seq_of(msg: &[u8]) -> Option<u64> {
    let b = msg.get(32..40)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Deterministic mixed sizes between 40 and `max`.
pub fn mixed_size(i: u64, max: usize) -> usize {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    40 + (x as usize) % (max - 40 + 1)
}

/// Starts a node with identity `name` on `tipc0` inside `ns`.
pub fn start_node(ns: &tipc_testkit::netns::Netns, name: &str) -> tipc_rs::Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        let id = tipc_rs::wire::NodeId::from_text(&name).expect("node identity");
        tipc_rs::Stack::builder().iface(tipc_testkit::netns::NODE_IF).node_id(id).start()
    })
    .expect("spawn")
    .join()
    .expect("start thread")
    .expect("stack starts")
}

/// One group socket per stack, joined to group 4711 as instances 1, 2, …
/// (cluster scope, member events on), once every member sees all the
/// others (at most 15 s).
pub fn join_group(stacks: &[tipc_rs::Stack]) -> Vec<tipc_rs::GroupSocket> {
    use tipc_rs::wire::{Instance, ServiceType};
    let g: Vec<tipc_rs::GroupSocket> = stacks.iter().map(|s| s.group_socket().expect("group socket")).collect();
    for (i, s) in g.iter().enumerate() {
        let spec = tipc_rs::GroupSpec {
            stype: ServiceType(4711),
            instance: Instance(i as u32 + 1),
            scope: tipc_rs::Scope::Cluster,
            loopback: false,
            member_events: true,
        };
        s.join(spec).expect("join");
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while g.iter().any(|s| s.members().len() < stacks.len() - 1) {
        assert!(std::time::Instant::now() < end, "the members never all met");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    g
}

/// Resident set size of this process, in KiB (0 if /proc cannot say).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory is flat: at the end of a run RSS is at most 10 % + 2 MiB above
/// its highest point in the first half. The allocator keeps what a burst
/// of queued frames once took (one sample at 30 % of a run sat ~5 MiB
/// below a later burst and made the check flaky on a fresh clone), so the
/// first half's peak is the baseline; memory that keeps growing through
/// the second half still fails. `samples` are (seconds, KiB).
pub fn assert_rss_flat(what: &str, samples: &[(f64, u64)]) {
    let base = samples[..samples.len().div_ceil(2)].iter().map(|s| s.1).max().unwrap_or(0);
    let last = samples.last().map_or(0, |s| s.1);
    assert!(
        last <= base + base / 10 + 2 * 1024,
        "{what}: RSS grew from a first-half peak of {base} KiB to {last} KiB: {samples:?}"
    );
}

/// One hostile TIPC message: with probability `p_random` random bytes of
/// `min_len + below(span)` bytes, otherwise one of `seeds` with one to five
/// bytes flipped.
pub fn hostile_message(
    rng: &mut tipc_rs::fault::Rng,
    seeds: &[Bytes],
    p_random: f64,
    min_len: usize,
    span: u64,
) -> Vec<u8> {
    if rng.chance(p_random) {
        let len = min_len + rng.below(span) as usize;
        (0..len).map(|_| rng.next_u64() as u8).collect()
    } else {
        let mut v = seeds[rng.below(seeds.len() as u64) as usize].to_vec();
        for _ in 0..=rng.below(4) {
            let i = rng.below(v.len() as u64) as usize;
            v[i] ^= (rng.below(255) + 1) as u8;
        }
        v
    }
}
