//! One TIPC node on a real interface that runs a scenario in the step
//! language of the kernel test client `tipcmsg` (../shared/tipc-peer) and
//! prints the same lines, flushed as they happen — so a scenario runs the
//! same against kernel nodes and ours.
//!
//! ```text
//! group_member --iface IF [--node-id ID] [--net-id N] [-s cluster|node] [-l] [-e]
//!              [-i 0..3] [-r] [-x] [-T] [--peers N] [--pcap FILE] STEP...
//! ```
//!
//! Steps available now: `self`, `send-port:NODE:PORT:TEXT`, `recv:MS`,
//! `recv-n:N[:MS]`, `echo:MS`, `sleep:MS`, `count:N`. TEXT is literal, or
//! `@N` for an N-byte pattern; with `count:N` > 1 a literal TEXT gets `#i`
//! appended. Output: `SELF`, `RECV`, `REJECTED`, `SENT`, `ERROR` lines and a
//! final `DONE status=ok|fail`; the exit status is 0 when every step succeeded.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use tipc::wire::{ErrorCode, NodeAddr, NodeId, PortId};
use tipc::{Error, PortMessage, PortSocket, Stack};

const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Parser, Debug)]
#[command(about = "TIPC node speaking tipcmsg's step language", trailing_var_arg = true)]
struct Args {
    /// Ethernet interface to run TIPC on.
    #[arg(long)]
    iface: String,
    /// Node identity (text, up to 16 characters; default: from the MAC).
    #[arg(long)]
    node_id: Option<String>,
    /// Cluster (network) id.
    #[arg(long, default_value_t = 4711)]
    net_id: u32,
    /// Scope for join and bind.
    #[arg(short = 's', default_value = "cluster")]
    scope: String,
    /// Group: receive own broadcasts/multicasts (TIPC_GROUP_LOOPBACK).
    #[arg(short = 'l')]
    loopback: bool,
    /// Group: deliver JOINED/LEFT events (TIPC_GROUP_MEMBER_EVTS).
    #[arg(short = 'e')]
    events: bool,
    /// Message importance 0..3.
    #[arg(short = 'i', default_value_t = 0)]
    importance: u8,
    /// Multicast method (accepted for compatibility).
    #[arg(short = 'm')]
    method: Option<String>,
    /// Ask for undeliverable messages back.
    #[arg(short = 'r')]
    returnable: bool,
    /// Print payloads as hex.
    #[arg(short = 'x')]
    hex: bool,
    /// Prefix lines with seconds since start.
    #[arg(short = 'T')]
    stamps: bool,
    /// Socket type (only rdm).
    #[arg(short = 't', default_value = "rdm")]
    sock_type: String,
    /// Wait for links to this many nodes before the first step (10 s at most).
    #[arg(long, default_value_t = 1)]
    peers: usize,
    /// Record every frame to this pcap file.
    #[arg(long)]
    pcap: Option<String>,
    /// The steps.
    #[arg(required = true)]
    steps: Vec<String>,
}

struct Runner {
    t0: Instant,
    stamps: bool,
    hex: bool,
    returnable: bool,
    count: u64,
    data_seen: u64,
    stack: Stack,
    sock: PortSocket,
}

impl Runner {
    fn out(&self, line: &str) {
        let mut o = std::io::stdout().lock();
        if self.stamps {
            let _ = write!(o, "t={:.3} ", self.t0.elapsed().as_secs_f64());
        }
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn format_data(&self, p: &[u8]) -> String {
        if p.len() >= 64 && p.iter().enumerate().all(|(k, &b)| b == PATTERN[k % PATTERN.len()]) {
            return format!("@{}(pattern ok)", p.len());
        }
        let shown = &p[..p.len().min(200)];
        let mut s = String::new();
        if self.hex {
            for b in shown {
                s.push_str(&format!("{b:02x}"));
            }
        } else {
            s.push('"');
            for &c in shown {
                match c {
                    b'"' | b'\\' => {
                        s.push('\\');
                        s.push(c as char);
                    }
                    32..=126 => s.push(c as char),
                    _ => s.push_str(&format!("\\x{c:02x}")),
                }
            }
            s.push('"');
        }
        if shown.len() < p.len() {
            s.push_str("...");
        }
        s
    }

    fn payload(&self, text: &str, i: u64) -> Bytes {
        if let Some(n) = text.strip_prefix('@') {
            let n: usize = n.parse().unwrap_or(0).min(66_000);
            return Bytes::from((0..n).map(|k| PATTERN[k % PATTERN.len()]).collect::<Vec<u8>>());
        }
        if self.count > 1 { Bytes::from(format!("{text}#{}", i + 1)) } else { Bytes::from(text.to_string()) }
    }

    fn show(&mut self, m: &PortMessage, echo: bool) {
        if m.err != ErrorCode::Ok {
            let code = u8::from(m.err);
            let names = ["ok", "no_name", "no_port", "no_node", "overload", "conn_shutdown"];
            let en = names.get(usize::from(code)).copied().unwrap_or("?");
            let data = self.format_data(&m.data);
            self.out(&format!(
                "REJECTED err={code}({en}) from={}:{} len={} data={data}",
                m.from_node,
                m.from_port.0,
                m.data.len()
            ));
            return;
        }
        self.data_seen += 1;
        let data = self.format_data(&m.data);
        self.out(&format!("RECV from={}:{} len={} data={data}", m.from_node, m.from_port.0, m.data.len()));
        if echo && let Err(e) = self.sock.send_to(m.from_node, m.from_port, m.data.clone()) {
            self.out(&format!("ERROR echo: {e}"));
        }
    }

    /// Receives until `ms` passes or `want` data messages arrived.
    fn recv_loop(&mut self, ms: u64, want: u64, echo: bool) -> bool {
        let end = Instant::now() + Duration::from_millis(ms);
        let start = self.data_seen;
        loop {
            if want > 0 && self.data_seen - start >= want {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return want == 0;
            }
            match self.sock.recv_timeout(left) {
                Ok(m) => self.show(&m, echo),
                Err(Error::Timeout) => {}
                Err(e) => {
                    self.out(&format!("ERROR recv: {e}"));
                    return false;
                }
            }
        }
    }

    fn send_port(&mut self, node: NodeAddr, port: PortId, text: &str, mode: &str) -> bool {
        let mut len = 0;
        for i in 0..self.count {
            let data = self.payload(text, i);
            len = data.len();
            let r = if self.returnable {
                self.sock.send_to_returnable(node, port, data)
            } else {
                self.sock.send_to(node, port, data)
            };
            if let Err(e) = r {
                self.out(&format!("ERROR send {mode} (message {} of {}): {e}", i + 1, self.count));
                return false;
            }
        }
        self.out(&format!("SENT mode={mode} len={len} count={}", self.count));
        true
    }

    fn step(&mut self, step: &str) -> Result<bool, String> {
        let mut parts = step.splitn(2, ':');
        let name = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("");
        let num = |s: Option<&str>, what: &str| -> Result<u64, String> {
            let s = s.filter(|s| !s.is_empty()).ok_or(format!("missing {what}"))?;
            let r = if let Some(h) = s.strip_prefix("0x") { u64::from_str_radix(h, 16) } else { s.parse() };
            r.map_err(|_| format!("bad {what}: {s}"))
        };
        match name {
            "self" => {
                let id = self.sock.id();
                self.out(&format!("SELF node={} port={}", id.node, id.port.0));
                Ok(true)
            }
            "send-port" => {
                let mut f = rest.splitn(3, ':');
                let node: NodeAddr = f.next().unwrap_or("").parse().map_err(|_| format!("bad node address: {rest}"))?;
                let port = num(f.next(), "port")? as u32;
                let text = f.next().unwrap_or("").to_string();
                Ok(self.send_port(node, PortId(port), &text, "send-port"))
            }
            "recv" => {
                let ms = num(Some(rest), "milliseconds")?;
                Ok(self.recv_loop(ms, 0, false))
            }
            "recv-n" => {
                let mut f = rest.split(':');
                let n = num(f.next(), "count")?;
                let ms = match f.next() {
                    Some(s) => num(Some(s), "timeout")?,
                    None => 10_000,
                };
                let before = self.data_seen;
                if self.recv_loop(ms, n, false) {
                    Ok(true)
                } else {
                    self.out(&format!("ERROR recv-n: {} of {n} messages after {ms} ms", self.data_seen - before));
                    Ok(false)
                }
            }
            "echo" => {
                let ms = num(Some(rest), "milliseconds")?;
                Ok(self.recv_loop(ms, 0, true))
            }
            "sleep" => {
                std::thread::sleep(Duration::from_millis(num(Some(rest), "milliseconds")?));
                Ok(true)
            }
            "count" => {
                self.count = num(Some(rest), "count")?.max(1);
                Ok(true)
            }
            other => {
                self.out(&format!("ERROR step {other}: not supported by this node yet"));
                Ok(false)
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    if args.sock_type != "rdm" {
        eprintln!("group_member: only -t rdm is supported");
        std::process::exit(2);
    }
    let _ = (&args.scope, args.loopback, args.events, &args.method, args.importance);
    let mut b = Stack::builder().iface(&args.iface).net_id(args.net_id);
    if let Some(id) = &args.node_id {
        match NodeId::from_text(id) {
            Ok(id) => b = b.node_id(id),
            Err(e) => {
                eprintln!("group_member: --node-id: {e}");
                std::process::exit(2);
            }
        }
    }
    if let Some(p) = &args.pcap {
        b = b.pcap(p);
    }
    let stack = match b.start() {
        Ok(s) => s,
        Err(e) => {
            println!("ERROR start: {e}");
            println!("DONE status=fail");
            std::process::exit(1);
        }
    };
    if let Err(e) = stack.wait_ready(Duration::from_secs(5)) {
        println!("ERROR address: {e}");
        println!("DONE status=fail");
        std::process::exit(1);
    }
    if args.peers > 0 && stack.wait_for_nodes(args.peers, Duration::from_secs(10)).is_err() {
        eprintln!("group_member: only {} of {} peer nodes up after 10 s; going on", stack.up_nodes().len(), args.peers);
    }
    let sock = match stack.port_socket() {
        Ok(s) => s,
        Err(e) => {
            println!("ERROR socket: {e}");
            std::process::exit(1);
        }
    };
    let mut r = Runner {
        t0: Instant::now(),
        stamps: args.stamps,
        hex: args.hex,
        returnable: args.returnable,
        count: 1,
        data_seen: 0,
        stack,
        sock,
    };
    let mut failed = false;
    for s in &args.steps {
        match r.step(s) {
            Ok(true) => {}
            Ok(false) => {
                failed = true;
                break;
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    r.out(&format!("DONE status={}", if failed { "fail" } else { "ok" }));
    let Runner { stack, sock, .. } = r;
    drop(sock);
    stack.shutdown();
    std::process::exit(i32::from(failed));
}
