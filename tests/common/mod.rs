//! Shared helpers of the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use tipc::netns::{LabError, privileged};
use tipc::wire::{DataMsg, DataType, Msg, PortId};

pub mod kernel;

/// The shared material beside the repository (`../shared`, or `TIPC_SHARED_DIR`).
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("TIPC_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// The TIPC messages (Ethernet header removed) of every kernel capture in `shared/captures`.
pub fn kernel_messages() -> Vec<Bytes> {
    let dir = shared_dir().join("captures");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    for f in files {
        for c in tipc::wire::pcap::read_pcap_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())) {
            if let Ok(e) = tipc::wire::EthFrame::parse_tipc(c.data) {
                out.push(e.payload);
            }
        }
    }
    out
}

/// Builds a rig, or explains why not: without root the test is skipped with
/// a message — except when `CI` is set, where it fails.
pub fn rig<T>(what: &str, make: impl FnOnce() -> Result<T, LabError>) -> Option<T> {
    if !privileged() {
        if std::env::var_os("CI").is_some() {
            panic!("{what}: {} (CI is set, so this is a failure, not a skip)", LabError::NotPrivileged);
        }
        eprintln!("SKIPPED {what}: {}", LabError::NotPrivileged);
        return None;
    }
    Some(make().unwrap_or_else(|e| panic!("{what}: cannot build the veth rig: {e}")))
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
pub fn start_node(ns: &tipc::netns::Netns, name: &str) -> tipc::Stack {
    let name = name.to_string();
    ns.spawn("start", move || {
        let id = tipc::wire::NodeId::from_text(&name).expect("node identity");
        tipc::Stack::builder().iface(tipc::netns::NODE_IF).node_id(id).start()
    })
    .expect("spawn")
    .join()
    .expect("start thread")
    .expect("stack starts")
}

/// Resident set size of this process, in KiB (0 if /proc cannot say).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory is flat: from the sample at 30 % of a run to its end, RSS grows
/// by less than 10 % + 8 MiB. `samples` are (seconds, KiB).
pub fn assert_rss_flat(what: &str, samples: &[(f64, u64)]) {
    let base = samples[samples.len() * 3 / 10].1;
    let last = samples.last().map_or(0, |s| s.1);
    assert!(last <= base + base / 10 + 8 * 1024, "{what}: RSS grew from {base} KiB to {last} KiB: {samples:?}");
}

/// One hostile TIPC message: with probability `p_random` random bytes of
/// `min_len + below(span)` bytes, otherwise one of `seeds` with one to five
/// bytes flipped.
pub fn hostile_message(
    rng: &mut tipc::fault::Rng,
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
