//! One TIPC node on a real interface that runs a scenario in the step
//! language of the kernel test client `tipcmsg` (../shared/tipc-peer) and
//! prints the same lines, flushed as they happen — so a scenario runs the
//! same against kernel nodes and ours.
//!
//! ```text
//! group_member --iface IF [--node-id ID] [--net-id N] [-s cluster|node] [-l] [-e]
//!              [-i 0..3] [-r] [-x] [-T] [--peers N] [--pcap FILE] [--human] [--stats] STEP...
//! ```
//!
//! Steps: group `join:TYPE:INST`, `leave`, `wait-members:N[:MS]`,
//! `bcast:TEXT`, `mcast:INST:TEXT`, `anycast:INST:TEXT`,
//! `unicast:NODE:PORT:TEXT`, `unicast-member:INST:TEXT`; plain
//! `bind:TYPE:LOWER[:UPPER]`, `send:TYPE:INST:TEXT`,
//! `send-range:TYPE:LO:HI:TEXT`, `send-port:NODE:PORT:TEXT`; common `self`,
//! `recv:MS`, `recv-n:N[:MS]`, `echo:MS`, `sleep:MS`, `count:N`. TEXT is
//! literal, or `@N` for an N-byte pattern; with `count:N` > 1 a literal TEXT
//! gets `#i` appended. Output: `JOIN`, `SELF`, `EVENT`, `MEMBERS`, `LEAVE`,
//! `BOUND`, `RECV`, `REJECTED`, `SENT`, `ERROR` lines and a final
//! `DONE status=ok|fail`; the exit status is 0 when every step succeeded.
//! Connection steps (`listen`, `accept`, `connect`, `csend`, `close`) are
//! not supported: this stack offers connectionless and group sockets.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;

mod common;
use tipc_rs::wire::{ErrorCode, Instance, MemberId, NodeAddr, PortId, Scope, ServiceRange, ServiceType};
use tipc_rs::{Error, GroupEvent, GroupSocket, GroupSpec, Mode, PortMessage, PortSocket, Stack};

const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Parser, Debug)]
#[command(about = "TIPC node speaking tipcmsg's step language", trailing_var_arg = true)]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
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
    /// Print plain sentences instead of tipcmsg's line format.
    #[arg(long)]
    human: bool,
    /// Print link, member and name-table statistics to stderr at exit
    /// (`kill -USR1` prints them at any time).
    #[arg(long)]
    stats: bool,
    /// Prefix lines with seconds since start.
    #[arg(short = 'T')]
    stamps: bool,
    /// Socket type (only rdm).
    #[arg(short = 't', default_value = "rdm")]
    sock_type: String,
    /// Wait for links to this many nodes before the first step (10 s at most).
    #[arg(long, default_value_t = 1)]
    peers: usize,
    /// The steps.
    #[arg(required = true)]
    steps: Vec<String>,
}

struct Runner {
    t0: Instant,
    human: bool,
    usr1: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stamps: bool,
    hex: bool,
    returnable: bool,
    count: u64,
    data_seen: u64,
    stack: Stack,
    sock: PortSocket,
    gsock: Option<GroupSocket>,
    joined: Option<GroupSpec>,
    members: Vec<(Instance, MemberId)>,
    scope: Scope,
    loopback: bool,
    events: bool,
}

impl Runner {
    fn out(&self, line: &str) {
        if self.usr1.swap(false, std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{}", self.stack.stats());
        }
        let line = if self.human { humanize(line) } else { line.to_string() };
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
        let dest = m.dest.map(|d| format!(" dest={}:{}:{}", d.stype.0, d.lower.0, d.upper.0)).unwrap_or_default();
        self.out(&format!("RECV from={}:{}{dest} len={} data={data}", m.from_node, m.from_port.0, m.data.len()));
        if echo && let Err(e) = self.sock.send_to(m.from_node, m.from_port, m.data.clone()) {
            self.out(&format!("ERROR echo: {e}"));
        }
    }

    fn show_group(&mut self, ev: GroupEvent, echo: bool) {
        let gtype = self.joined.map_or(0, |s| s.stype.0);
        match ev {
            GroupEvent::MemberUp { member, instance } | GroupEvent::MemberDown { member, instance } => {
                let left = matches!(ev, GroupEvent::MemberDown { .. });
                if left {
                    self.members.retain(|(i, m)| !(*i == instance && *m == member));
                } else if !self.members.iter().any(|(i, m)| *i == instance && *m == member) {
                    self.members.push((instance, member));
                }
                self.out(&format!(
                    "EVENT {} member={gtype}:{} from={}:{} members={}",
                    if left { "LEFT" } else { "JOINED" },
                    instance.0,
                    member.node,
                    member.port.0,
                    self.members.len()
                ));
            }
            GroupEvent::Message { from, instance, data, .. } => {
                self.data_seen += 1;
                let d = self.format_data(&data);
                self.out(&format!(
                    "RECV from={}:{} member={gtype}:{} len={} data={d}",
                    from.node,
                    from.port.0,
                    instance.0,
                    data.len()
                ));
                if echo
                    && let Some(g) = &self.gsock
                    && let Err(e) = g.send_unicast(from, data)
                {
                    self.out(&format!("ERROR echo: {e}"));
                }
            }
            GroupEvent::Unblocked => {}
        }
    }

    /// Receives until `ms` passes, `want` data messages arrived, or
    /// `want_members` members are known.
    fn recv_loop(&mut self, ms: u64, want: u64, echo: bool) -> bool {
        self.recv_loop_m(ms, want, 0, echo)
    }

    fn recv_loop_m(&mut self, ms: u64, want: u64, want_members: usize, echo: bool) -> bool {
        let end = Instant::now() + Duration::from_millis(ms);
        let start = self.data_seen;
        loop {
            if want > 0 && self.data_seen - start >= want {
                return true;
            }
            if want_members > 0 && self.members.len() >= want_members {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return want == 0 && want_members == 0;
            }
            let slice = left.min(Duration::from_millis(20));
            if let Some(g) = &self.gsock {
                match g.recv_timeout(slice) {
                    Ok(ev) => self.show_group(ev, echo),
                    Err(Error::Timeout) => {}
                    Err(e) => {
                        self.out(&format!("ERROR recv: {e}"));
                        return false;
                    }
                }
            }
            let r = if self.gsock.is_some() {
                self.sock.try_recv().ok_or(Error::Timeout)
            } else {
                self.sock.recv_timeout(slice)
            };
            match r {
                Ok(m) => self.show(&m, echo),
                Err(Error::Timeout) => {}
                Err(e) => {
                    self.out(&format!("ERROR recv: {e}"));
                    return false;
                }
            }
        }
    }

    fn group_send(&mut self, mode: Mode, to: Option<MemberId>, inst: u32, text: &str, name: &str) -> bool {
        let Some(g) = &self.gsock else {
            self.out(&format!("ERROR send {name}: not a group member"));
            return false;
        };
        let mut len = 0;
        for i in 0..self.count {
            let data = self.payload(text, i);
            len = data.len();
            let r = match mode {
                Mode::Unicast => g.send_unicast(to.unwrap_or(MemberId { node: NodeAddr(0), port: PortId(0) }), data),
                Mode::Anycast => g.send_anycast(Instance(inst), data),
                Mode::Multicast => g.send_multicast(Instance(inst), data),
                Mode::Broadcast => g.broadcast(data),
            };
            if let Err(e) = r {
                self.out(&format!("ERROR send {name} (message {} of {}): {e}", i + 1, self.count));
                return false;
            }
        }
        self.out(&format!("SENT mode={name} len={len} count={}", self.count));
        true
    }

    fn plain_send(&mut self, name: &str, text: &str, f: impl Fn(&PortSocket, Bytes) -> Result<(), Error>) -> bool {
        let mut len = 0;
        for i in 0..self.count {
            let data = self.payload(text, i);
            len = data.len();
            if let Err(e) = f(&self.sock, data) {
                self.out(&format!("ERROR send {name} (message {} of {}): {e}", i + 1, self.count));
                return false;
            }
        }
        self.out(&format!("SENT mode={name} len={len} count={}", self.count));
        true
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
            "join" => {
                let mut f = rest.split(':');
                let t = num(f.next(), "group type")? as u32;
                let inst = num(f.next(), "member instance")? as u32;
                let spec = GroupSpec {
                    stype: ServiceType(t),
                    instance: Instance(inst),
                    scope: self.scope,
                    loopback: self.loopback,
                    member_events: self.events,
                };
                let g = match self.gsock.take() {
                    Some(g) => g,
                    None => match self.stack.group_socket() {
                        Ok(g) => g,
                        Err(e) => {
                            self.out(&format!("ERROR join {t}:{inst}: {e}"));
                            return Ok(false);
                        }
                    },
                };
                if let Err(e) = g.join(spec) {
                    self.out(&format!("ERROR join {t}:{inst}: {e}"));
                    self.gsock = Some(g);
                    return Ok(false);
                }
                self.gsock = Some(g);
                self.joined = Some(spec);
                self.out(&format!(
                    "JOIN group={t} member={inst} scope={} flags={}{}",
                    if self.scope == Scope::Node { "node" } else { "cluster" },
                    if self.loopback { "loopback," } else { "" },
                    if self.events { "member_evts" } else { "" }
                ));
                self.step("self")
            }
            "leave" => {
                let Some(g) = &self.gsock else {
                    self.out("ERROR leave: not joined");
                    return Ok(false);
                };
                if let Err(e) = g.leave() {
                    self.out(&format!("ERROR leave: {e}"));
                    return Ok(false);
                }
                let t = self.joined.take().map_or(0, |s| s.stype.0);
                self.out(&format!("LEAVE group={t}"));
                Ok(true)
            }
            "wait-members" => {
                let mut f = rest.split(':');
                let n = num(f.next(), "member count")? as usize;
                let ms = match f.next() {
                    Some(s) => num(Some(s), "timeout")?,
                    None => 10_000,
                };
                if self.recv_loop_m(ms, 0, n, false) {
                    self.out(&format!("MEMBERS {}", self.members.len()));
                    Ok(true)
                } else {
                    self.out(&format!("ERROR wait-members: {} of {n} members after {ms} ms", self.members.len()));
                    Ok(false)
                }
            }
            "bcast" => Ok(self.group_send(Mode::Broadcast, None, 0, rest, "bcast")),
            "mcast" | "anycast" => {
                let mut f = rest.splitn(2, ':');
                let inst = num(f.next(), "instance")? as u32;
                let text = f.next().unwrap_or("").to_string();
                let mode = if name == "mcast" { Mode::Multicast } else { Mode::Anycast };
                Ok(self.group_send(mode, None, inst, &text, name))
            }
            "unicast" | "send-port" if self.gsock.is_some() => {
                let mut f = rest.splitn(3, ':');
                let node: NodeAddr = f.next().unwrap_or("").parse().map_err(|_| format!("bad node address: {rest}"))?;
                let port = num(f.next(), "port")? as u32;
                let text = f.next().unwrap_or("").to_string();
                Ok(self.group_send(Mode::Unicast, Some(MemberId { node, port: PortId(port) }), 0, &text, name))
            }
            "unicast-member" => {
                let mut f = rest.splitn(2, ':');
                let inst = num(f.next(), "instance")? as u32;
                let text = f.next().unwrap_or("").to_string();
                let Some(&(_, m)) = self.members.iter().find(|(i, _)| i.0 == inst) else {
                    self.out(&format!("ERROR unicast-member: member {inst} not known (no JOINED event)"));
                    return Ok(false);
                };
                Ok(self.group_send(Mode::Unicast, Some(m), 0, &text, "unicast"))
            }
            "bind" => {
                let mut f = rest.split(':');
                let t = num(f.next(), "type")? as u32;
                let lo = num(f.next(), "lower")? as u32;
                let hi = match f.next() {
                    Some(s) => num(Some(s), "upper")? as u32,
                    None => lo,
                };
                let r = ServiceRange { stype: ServiceType(t), lower: Instance(lo), upper: Instance(hi) };
                if let Err(e) = self.sock.bind(r, self.scope) {
                    self.out(&format!("ERROR bind {t}:{lo}:{hi}: {e}"));
                    return Ok(false);
                }
                self.out(&format!(
                    "BOUND service={t}:{lo}:{hi} scope={}",
                    if self.scope == Scope::Node { "node" } else { "cluster" }
                ));
                Ok(true)
            }
            "send" => {
                let mut f = rest.splitn(3, ':');
                let t = num(f.next(), "type")? as u32;
                let inst = num(f.next(), "instance")? as u32;
                let text = f.next().unwrap_or("").to_string();
                let ret = self.returnable;
                Ok(self.plain_send("service", &text, |s, d| s.send_to_name(ServiceType(t), Instance(inst), d, ret)))
            }
            "send-range" => {
                let mut f = rest.splitn(4, ':');
                let t = num(f.next(), "type")? as u32;
                let lo = num(f.next(), "lower")? as u32;
                let hi = num(f.next(), "upper")? as u32;
                let text = f.next().unwrap_or("").to_string();
                let r = ServiceRange { stype: ServiceType(t), lower: Instance(lo), upper: Instance(hi) };
                Ok(self.plain_send("range", &text, |s, d| s.send_to_range(r, d)))
            }
            "self" => {
                let id = self.gsock.as_ref().map_or_else(|| self.sock.id(), |g| g.id());
                self.out(&format!("SELF node={} port={}", id.node, id.port.0));
                Ok(true)
            }
            "send-port" | "unicast" => {
                let mut f = rest.splitn(3, ':');
                let node: NodeAddr = f.next().unwrap_or("").parse().map_err(|_| format!("bad node address: {rest}"))?;
                let port = num(f.next(), "port")? as u32;
                let text = f.next().unwrap_or("").to_string();
                Ok(self.send_port(node, PortId(port), &text, name))
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

/// tipcmsg's `KEY=value` words of a line.
fn kv<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('='))).unwrap_or("?")
}

/// The same information as a sentence.
fn humanize(line: &str) -> String {
    let word = line.split_whitespace().next().unwrap_or("");
    match word {
        "EVENT" if line.contains("JOINED") || line.contains("LEFT") => format!(
            "member {} (socket {}) {} the group; {} other member(s) now",
            kv(line, "member"),
            kv(line, "from"),
            if line.contains("JOINED") { "joined" } else { "left" },
            kv(line, "members")
        ),
        "RECV" => {
            let data = line.split_once(" data=").map_or("", |x| x.1);
            let via =
                if line.contains(" member=") { format!(" (member {})", kv(line, "member")) } else { String::new() };
            format!("received {} bytes from {}{via}: {data}", kv(line, "len"), kv(line, "from"))
        }
        "SENT" => format!("sent {} message(s) of {} bytes by {}", kv(line, "count"), kv(line, "len"), kv(line, "mode")),
        "SELF" => format!("this socket is {}:{}", kv(line, "node"), kv(line, "port")),
        "JOIN" => format!("joined group {} as member {}", kv(line, "group"), kv(line, "member")),
        "LEAVE" => format!("left group {}", kv(line, "group")),
        "MEMBERS" => format!("{} other member(s) known", line.split_whitespace().nth(1).unwrap_or("?")),
        "BOUND" => format!("bound service {} ({} scope)", kv(line, "service"), kv(line, "scope")),
        "DONE" => format!("finished: {}", if line.ends_with("ok") { "every step succeeded" } else { "a step failed" }),
        _ => line.to_string(),
    }
}

fn main() {
    let args = Args::parse();
    if args.sock_type != "rdm" {
        eprintln!("group_member: only -t rdm is supported");
        std::process::exit(2);
    }
    let _ = (&args.method, args.importance);
    let b = match args.node.builder() {
        Ok(b) => b.net_id(args.net_id),
        Err(e) => {
            eprintln!("group_member: {e}");
            std::process::exit(2);
        }
    };
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
    let usr1 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone());
    let mut r = Runner {
        t0: Instant::now(),
        human: args.human,
        usr1,
        stamps: args.stamps,
        hex: args.hex,
        returnable: args.returnable,
        count: 1,
        data_seen: 0,
        stack,
        sock,
        gsock: None,
        joined: None,
        members: Vec::new(),
        scope: if args.scope == "node" { Scope::Node } else { Scope::Cluster },
        loopback: args.loopback,
        events: args.events,
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
    if args.stats {
        eprintln!("{}", r.stack.stats());
    }
    let Runner { stack, sock, gsock, .. } = r;
    drop(gsock);
    drop(sock);
    stack.shutdown();
    std::process::exit(i32::from(failed));
}
