//! Prints every Ethernet frame of a pcap file as one JSON object per line.
//!
//! ```text
//! cargo run --release -q --example tipc_dump -- FILE.pcap [--text]
//! cargo run --release -q --example tipc_dump -- --help
//! ```
//!
//! Keys (a contract other tools and tests rely on): `frame` (1-based),
//! `user`, `user_name`, `type`, `type_name`, `hsize`, `size`, `non_seq`,
//! `seqno`, `ack`, `bcast_ack`, `orig_node`, `dest_node` (8 lower-case hex
//! digits, when the header has them), `orig_port`, `dest_port`, `name_type`,
//! `name_inst` (when present), plus per-user fields. A bundle adds `inner`,
//! an array of objects with the same keys. A frame that cannot be parsed
//! gives `{"frame": N, "error": "..."}` and the dump goes on. `--text` prints
//! the one-line `Display` form instead.
//!
//! An encrypted frame (TIPC encryption, version 7) is shown as it is on the
//! wire: `{"frame": N, "encrypted": {tx_key, rx_key_active, destined,
//! master, seqno, sender, len}}`. With `--key-file` (a master key in the
//! `tipc node set key` format; or TIPC_KEY) a frame that opens with it, or
//! with a session key taken from a KEY_DISTR frame opened before, also gets
//! `"decrypted_for_debugging": {...}` with the keys above — a copy made by
//! this tool, never what was on the wire.

use std::io::Write;

use serde_json::{Map, Value, json};

mod common;
use tipc_wire::{EthFrame, Msg, pcap};

fn hex(n: u32) -> Value {
    Value::String(format!("{n:08x}"))
}

fn describe(m: &Msg) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("user".into(), json!(u8::from(m.user())));
    o.insert("user_name".into(), json!(m.user().name()));
    o.insert("type".into(), json!(m.type_code()));
    o.insert("type_name".into(), json!(m.type_name()));
    o.insert("hsize".into(), json!(m.header_len()));
    o.insert("size".into(), json!(m.buffer_len()));
    o.insert("non_seq".into(), json!(m.non_seq()));
    if let (Some(s), Some(a), Some(b)) = (m.seqno(), m.ack(), m.bcast_ack()) {
        o.insert("seqno".into(), json!(s.0));
        o.insert("ack".into(), json!(a.0));
        o.insert("bcast_ack".into(), json!(b.0));
    }
    o.insert("prev_node".into(), hex(m.prev_node().0));
    if let Some((orig, dest)) = m.nodes() {
        o.insert("orig_node".into(), hex(orig.0));
        o.insert("dest_node".into(), hex(dest.0));
    }
    match m {
        Msg::Data(d) => {
            if d.hsize < 28 {
                o.insert("orig_node".into(), hex(d.origin().0));
            }
            o.insert("orig_port".into(), json!(d.orig_port.0));
            o.insert("dest_port".into(), json!(d.dest_port.0));
            if d.hsize >= 40 {
                o.insert("name_type".into(), json!(d.name_type.0));
                o.insert("name_inst".into(), json!(d.name_inst.0));
            }
            if d.msg_type.is_group() {
                o.insert("grp_bc_seqno".into(), json!(d.grp_bc_seqno()));
                o.insert("grp_ack_req".into(), json!(d.grp_ack_req()));
            } else if d.hsize >= 44 {
                o.insert("name_upper".into(), json!(d.name_upper().0));
            }
            o.insert("err".into(), json!(u8::from(d.err)));
            o.insert("scope".into(), json!(u8::from(d.scope)));
            o.insert("syn".into(), json!(d.flags.syn));
            o.insert("data_len".into(), json!(d.payload.len()));
        }
        Msg::LinkProto(l) => {
            o.insert("session".into(), json!(l.session));
            o.insert("next_sent".into(), json!(l.next_sent.0));
            o.insert("last_bcast_sent".into(), json!(l.last_bcast_sent.0));
            o.insert("gap".into(), json!(l.gap));
            o.insert("bcast_gap".into(), json!(l.bcast_gap));
            o.insert("probe".into(), json!(l.probe));
            o.insert("keepalive".into(), json!(l.keepalive()));
            o.insert("redundant_link".into(), json!(l.redundant_link));
            o.insert("bc_ack_invalid".into(), json!(l.bc_ack_invalid));
            o.insert("peer_stopping".into(), json!(l.peer_stopping));
            o.insert("max_pkt".into(), json!(l.max_pkt()));
            o.insert("tolerance".into(), json!(l.tolerance));
            o.insert("bearer_id".into(), json!(l.bearer_id));
            if l.msg_type != tipc_wire::LinkProtoType::State {
                o.insert("if_name".into(), json!(l.if_name()));
            }
        }
        Msg::Discovery(d) => {
            o.insert("net_id".into(), json!(d.net_id));
            o.insert("capabilities".into(), json!(d.capabilities));
            o.insert("signature".into(), json!(d.signature));
            o.insert("dest_domain".into(), hex(d.dest_domain.0));
            o.insert("media_mac".into(), json!(d.media.mac().map(|m| m.to_string())));
            o.insert("node_id".into(), json!(d.node_id.map(|i| i.to_string())));
            o.insert("suggested".into(), hex(d.suggested.0));
        }
        Msg::BcastProto(b) => {
            o.insert("last_bcast_sent".into(), json!(b.last_bcast_sent.0));
            o.insert("word5".into(), json!(b.word5));
        }
        Msg::Fragment(f) => {
            o.insert("frag_no".into(), json!(f.frag_no));
            o.insert("importance".into(), json!(u8::from(f.importance)));
        }
        Msg::NameDistr(n) => {
            o.insert("bulk".into(), json!(n.bulk));
            o.insert("last_bulk".into(), json!(n.last_bulk));
            o.insert("non_legacy".into(), json!(n.non_legacy));
            o.insert("name_seqno".into(), json!(n.name_seqno));
            let items: Vec<Value> = n
                .items
                .iter()
                .map(|i| json!({"type": i.stype.0, "lower": i.lower.0, "upper": i.upper.0, "port": i.port.0, "key": i.key}))
                .collect();
            o.insert("items".into(), Value::Array(items));
        }
        Msg::GroupProto(g) => {
            o.insert("orig_port".into(), json!(g.orig_port.0));
            o.insert("dest_port".into(), json!(g.dest_port.0));
            o.insert("grp_bc".into(), json!(g.bc));
            o.insert("adv_win".into(), json!(g.adv_win));
        }
        Msg::ConnMgr(c) => {
            o.insert("orig_port".into(), json!(c.orig_port.0));
            o.insert("dest_port".into(), json!(c.dest_port.0));
            o.insert("acked".into(), json!(c.acked));
            o.insert("adv_win".into(), json!(c.adv_win));
        }
        Msg::Bundle(b) => {
            o.insert("msg_count".into(), json!(b.msg_count));
            let mut inner = Vec::new();
            for r in b.iter() {
                match r.and_then(Msg::parse) {
                    Ok(im) => inner.push(Value::Object(describe(&im))),
                    Err(e) => inner.push(json!({"error": e.to_string()})),
                }
            }
            o.insert("inner".into(), Value::Array(inner));
        }
        Msg::Tunnel(_) | Msg::Raw(_) => {}
    }
    o
}

/// Prints every frame of a pcap file as JSON (or text), one per line.
#[derive(clap::Parser, Debug)]
#[command(
    about = "Prints every frame of a pcap file as one JSON object per line",
    after_help = "SIGUSR1 prints how many frames were printed so far; SIGINT/SIGTERM stop after the current \
                  frame, flush and exit 0."
)]
struct Args {
    /// The pcap file (Ethernet link type).
    file: std::path::PathBuf,
    /// One readable line per frame instead of JSON.
    #[arg(long)]
    text: bool,
    /// Also show encrypted frames decrypted (for debugging), with the
    /// master key in this file (`tipc node set key` format); without this
    /// option TIPC_KEY is read, if set.
    #[arg(long, value_name = "PATH")]
    key_file: Option<std::path::PathBuf>,
}

/// What the dump knows to open encrypted frames with: the master key, the
/// session keys it has seen distributed, and the node addresses seen.
#[derive(Default)]
struct Keys {
    master: Option<tipc_rs::crypto::AeadKey>,
    sessions: Vec<tipc_rs::crypto::AeadKey>,
    nodes: Vec<u32>,
}

impl Keys {
    /// The encrypted frame `tipc` described, and opened if a key fits.
    fn describe(&mut self, tipc: &[u8]) -> Option<Map<String, Value>> {
        use tipc_rs::crypto::{EncHeader, KeyDistr, KeyMode, Sender, open_with};
        let eh = EncHeader::parse(tipc).ok()?;
        let sender = match eh.sender {
            Sender::Addr(a) => {
                if !self.nodes.contains(&a) {
                    self.nodes.push(a);
                }
                format!("{a:08x}")
            }
            Sender::Id(id) => tipc_wire::NodeId(id).to_string(),
        };
        let mut o = Map::new();
        o.insert(
            "encrypted".into(),
            json!({"tx_key": eh.tx_key, "rx_key_active": eh.rx_key_active, "destined": eh.destined,
                   "master": eh.master, "rx_nokey": eh.rx_nokey, "seqno": eh.seqno, "sender": sender,
                   "len": tipc.len()}),
        );
        let plain = if eh.tx_key == 0 {
            self.master.as_ref().and_then(|k| open_with(k, KeyMode::Cluster, tipc, 0))
        } else {
            // a per-node key: the nonce takes the destination, one of the nodes seen
            let dests: Vec<u32> = if eh.destined { self.nodes.clone() } else { vec![0] };
            self.sessions.iter().find_map(|k| dests.iter().find_map(|d| open_with(k, KeyMode::PerNode, tipc, *d)))
        };
        if let Some(p) = plain
            && let Ok(m) = Msg::parse(bytes::Bytes::from(p.clone()))
        {
            if (p[0] >> 1) & 0xf == 14
                && let Ok(kd) = KeyDistr::parse(&p)
            {
                self.sessions.push(kd.key);
            }
            o.insert("decrypted_for_debugging".into(), Value::Object(describe(&m)));
        }
        Some(o)
    }
}

fn main() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let args = <Args as clap::Parser>::parse();
    let path = args.file.display().to_string();
    let frames = match pcap::read_pcap_file(&args.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tipc_dump: {path}: {e}");
            std::process::exit(1);
        }
    };
    let total = frames.len();
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (flushed_tx, flushed_rx) = std::sync::mpsc::channel::<()>();
    {
        let (done, stop) = (done.clone(), stop.clone());
        let d2 = done.clone();
        common::on_signals(
            move || eprintln!("tipc_dump: {} of {total} frames printed", d2.load(Ordering::Relaxed)),
            move || {
                // the main thread stops after its frame, flushes and says so
                stop.store(true, Ordering::Relaxed);
                let _ = flushed_rx.recv_timeout(std::time::Duration::from_secs(2));
                eprintln!("tipc_dump: stopped after {} of {total} frames", done.load(Ordering::Relaxed));
            },
        );
    }
    let mut keys = Keys::default();
    match common::load_key(args.key_file.as_deref()) {
        Ok(k) => keys.master = k.map(|k| k.key),
        Err(e) => {
            eprintln!("tipc_dump: {e}");
            std::process::exit(1);
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, f) in frames.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = i + 1;
        if f.data.len() > 14
            && tipc_rs::crypto::is_encrypted(&f.data[14..])
            && let Some(mut o) = keys.describe(&f.data[14..])
        {
            o.insert("frame".into(), json!(n));
            let line =
                if args.text { format!("{n:4} encrypted {}", Value::Object(o)) } else { Value::Object(o).to_string() };
            if writeln!(out, "{line}").is_err() {
                return;
            }
            done.store(n, Ordering::Relaxed);
            continue;
        }
        let parsed = EthFrame::parse_tipc(f.data.clone()).and_then(|e| Msg::parse(e.payload));
        let line = match (parsed, args.text) {
            (Ok(m), true) => format!("{n:4} {m}"),
            (Ok(m), false) => {
                let mut o = Map::new();
                o.insert("frame".into(), json!(n));
                o.extend(describe(&m));
                Value::Object(o).to_string()
            }
            (Err(e), true) => format!("{n:4} error: {e}"),
            (Err(e), false) => json!({"frame": n, "error": e.to_string()}).to_string(),
        };
        // A closed pipe (e.g. `| head`) ends the dump quietly.
        if writeln!(out, "{line}").is_err() {
            return;
        }
        done.store(n, Ordering::Relaxed);
    }
    let _ = out.flush();
    let _ = flushed_tx.send(());
    if stop.load(Ordering::Relaxed) {
        // the signal thread prints the figures and exits 0
        std::thread::park();
    }
}
