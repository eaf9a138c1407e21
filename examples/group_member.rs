//! One TIPC node on a real interface that runs a scenario in the step
//! language of the kernel-side test client `tipc-client`
//! (tools/kernel-peer) and prints the same lines, flushed as they happen —
//! so a scenario runs the same against kernel nodes and ours.
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
//! `BOUND`, `RECV`, `REJECTED`, `SENT`, `ERROR`, `CONFLICT` lines and a final
//! `DONE status=ok|fail`; the exit status is 0 when every step succeeded.
//! With `-t seqpacket` or `-t stream` the connection steps `listen`,
//! `accept[:MS]`, `connect:TYPE:INST`, `csend:TEXT` and `close` work on a
//! connection socket (`LISTENING`, `ACCEPTED peer=…`, `CONNECTED peer=…`,
//! `PEER-CLOSED [err=…]`, `CLOSED`), and the receive steps read the
//! connection. `-i` sets the importance of what the socket sends. The
//! topology steps `subscribe:TYPE:LO:HI:FILTER[:MS]` and `events:MS` work
//! with any `-t` (`SUBSCRIBED`, `TOPO` lines).
//! Every step is checked before the node starts: a bad step or option
//! exits 2 at once, naming the valid ones.
//! `kill -USR1` prints statistics at once; SIGINT/SIGTERM close the node
//! (peers see its members leave at once), print them and exit 0.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;

mod common;
use tipc_rs::topology::{EventKind, Filter, Subscription};
use tipc_rs::wire::Importance;
use tipc_rs::wire::{ErrorCode, Instance, MemberId, NodeAddr, PortId, Scope, ServiceRange, ServiceType};
use tipc_rs::{
    ConnKind, ConnSocket, Error, GroupEvent, GroupSocket, GroupSpec, Mode, PortMessage, PortSocket, Stack, Subscriber,
};

const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Set by SIGINT/SIGTERM before the node is closed.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The step language, as `--help` shows it.
const STEPS_HELP: &str = "\
STEPS (run in order on one socket; NODE is 8 hex digits, numbers are decimal or 0x hex):
 group:
  join:TYPE:INST              join group TYPE as member INST (prints JOIN and SELF)
  leave                       leave the group (LEAVE)
  wait-members:N[:MS]         wait until N other members are known (needs -e; MEMBERS; MS default 10000)
  bcast:TEXT                  broadcast to every member
  mcast:INST:TEXT             multicast to the members with instance INST
  anycast:INST:TEXT           anycast to one member with instance INST
  unicast:NODE:PORT:TEXT      unicast to the member at NODE:PORT
  unicast-member:INST:TEXT    unicast to the member INST seen in a JOINED event
 plain (RDM):
  bind:TYPE:LOWER[:UPPER]     bind the service range (BOUND)
  send:TYPE:INST:TEXT         send to a service instance
  send-range:TYPE:LO:HI:TEXT  multicast to a service range
  send-port:NODE:PORT:TEXT    send to a socket
 common:
  self                        print this socket's id (SELF node=... port=...)
  recv:MS                     print what arrives during MS milliseconds (RECV, EVENT, REJECTED)
  recv-n:N[:MS]               receive N messages (MS default 10000)
  echo:MS                     like recv, and send every message back to its sender
  sleep:MS                    wait MS milliseconds
  count:N                     send every later message N times (literal TEXT gets #i appended)
 connection (-t seqpacket or -t stream; bind also works there):
  listen                      listen for connections (LISTENING; bind first)
  accept[:MS]                 accept one connection (ACCEPTED peer=NODE:PORT; MS default 10000)
  connect:TYPE:INST           connect to service TYPE:INST (CONNECTED peer=NODE:PORT)
  csend:TEXT                  send on the connection
  sink:BYTES[:MS]             read BYTES from the connection (SINK len=N fnv=64-bit FNV-1a hash)
  close                       close the connection, or else the socket (CLOSED)
 topology service (any -t):
  subscribe:TYPE:LO:HI:FILTER[:MS]  subscribe to TYPE:LO:HI (FILTER 1 ports, 2 service; MS
                              timeout, default none) (SUBSCRIBED sub=N, numbered from 1)
  events:MS                   print the subscriptions' events arriving during MS milliseconds
                              (TOPO sub=N event=published|withdrawn|timeout found=T:LO:HI port=NODE:PORT)
TEXT is literal, or @N for an N-byte pattern (reported as data=@N(pattern ok)).
On a connection, recv, recv-n and echo read it; its end prints PEER-CLOSED [err=N(name)].
OUTPUT: JOIN, SELF, EVENT, MEMBERS, LEAVE, BOUND, RECV, REJECTED, SENT, LISTENING, ACCEPTED,
CONNECTED, PEER-CLOSED, CLOSED, SUBSCRIBED, TOPO, ERROR and CONFLICT lines, then
DONE status=ok|fail; exit status 0 when every step succeeded, 2 for a bad step or option.
SIGNALS: SIGUSR1 prints statistics to stderr; SIGINT/SIGTERM leave, print them and exit 0.";

/// The group scope of `-s`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ScopeArg {
    /// The whole cluster.
    Cluster,
    /// This node only.
    Node,
}

/// The socket type of `-t`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SockType {
    /// Reliable datagrams (and group sockets).
    Rdm,
    /// Connections that keep message boundaries.
    Seqpacket,
    /// Connections that carry a byte stream.
    Stream,
}

/// The multicast method of `-m`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Method {
    /// The broadcast link.
    Broadcast,
    /// One copy per destination node.
    Replicast,
}

#[derive(Parser, Debug)]
#[command(
    about = "TIPC node speaking the step language of tools/kernel-peer's tipc-client",
    trailing_var_arg = true,
    after_help = STEPS_HELP
)]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Cluster (network) id.
    #[arg(long, default_value_t = 4711)]
    net_id: u32,
    /// Scope for join and bind.
    #[arg(short = 's', value_enum, default_value_t = ScopeArg::Cluster)]
    scope: ScopeArg,
    /// Group: receive own broadcasts/multicasts (TIPC_GROUP_LOOPBACK).
    #[arg(short = 'l')]
    loopback: bool,
    /// Group: deliver JOINED/LEFT events (TIPC_GROUP_MEMBER_EVTS).
    #[arg(short = 'e')]
    events: bool,
    /// Message importance 0..3 of plain and connection sends.
    #[arg(short = 'i', default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    importance: u8,
    /// Multicast method (accepted for compatibility).
    #[arg(short = 'm', value_enum)]
    method: Option<Method>,
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
    /// Socket type.
    #[arg(short = 't', value_enum, default_value_t = SockType::Rdm)]
    sock_type: SockType,
    /// Wait for links to this many nodes before the first step (10 s at most).
    #[arg(long, default_value_t = 1)]
    peers: usize,
    /// The steps (see STEPS below).
    #[arg(required = true, value_name = "STEP")]
    steps: Vec<String>,
}

struct Runner {
    t0: Instant,
    human: bool,
    stamps: bool,
    hex: bool,
    returnable: bool,
    count: u64,
    data_seen: u64,
    stack: std::sync::Arc<Stack>,
    sock: PortSocket,
    gsock: Option<GroupSocket>,
    joined: Option<GroupSpec>,
    members: Vec<(Instance, MemberId)>,
    scope: Scope,
    loopback: bool,
    events: bool,
    importance: Importance,
    /// `-t seqpacket|stream`: the kind of connection socket.
    kind: Option<ConnKind>,
    /// The connection socket the steps act on: listening or connecting.
    csock: Option<ConnSocket>,
    /// The connection accepted from it, which later steps use.
    accepted: Option<ConnSocket>,
    /// Whether `csock` itself is connected (a client).
    connected: bool,
    /// The connection's peer, for RECV lines.
    peer: Option<MemberId>,
    /// The connection ended (PEER-CLOSED printed).
    conn_over: bool,
    /// The subscriptions made by `subscribe`, numbered from 1.
    subs: Vec<Subscriber>,
}

/// The error code's name as the kernel-side client prints it.
fn err_name(code: u8) -> &'static str {
    ["ok", "no_name", "no_port", "no_node", "overload", "conn_shutdown"].get(usize::from(code)).copied().unwrap_or("?")
}

impl Runner {
    fn out(&self, line: &str) {
        if STOPPING.load(std::sync::atomic::Ordering::Acquire) {
            // SIGINT/SIGTERM closed the node: the signal thread prints the
            // statistics and exits 0; nothing more from this thread
            loop {
                std::thread::park();
            }
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
            let n: usize = n.parse().unwrap_or(0).min(tipc_rs::wire::MAX_USER_MSG_SIZE + 1);
            return Bytes::from((0..n).map(|k| PATTERN[k % PATTERN.len()]).collect::<Vec<u8>>());
        }
        if self.count > 1 { Bytes::from(format!("{text}#{}", i + 1)) } else { Bytes::from(text.to_string()) }
    }

    fn show(&mut self, m: &PortMessage, echo: bool) {
        if m.err != ErrorCode::Ok {
            let code = u8::from(m.err);
            let en = err_name(code);
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
            self.out(&format!("ERROR echo: {}", e.with_errno()));
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
                    self.out(&format!("ERROR echo: {}", e.with_errno()));
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

    /// The connection the receive and send steps use, if there is one.
    fn conn(&self) -> Option<&ConnSocket> {
        self.accepted.as_ref().or(if self.connected { self.csock.as_ref() } else { None })
    }

    /// Receives on the connection until `ms` passes, `want` data messages
    /// arrived, or the connection ends.
    fn conn_recv_loop(&mut self, ms: u64, want: u64, echo: bool) -> bool {
        let end = Instant::now() + Duration::from_millis(ms);
        let start = self.data_seen;
        loop {
            if want > 0 && self.data_seen - start >= want {
                return true;
            }
            if self.conn_over {
                return want == 0;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return want == 0;
            }
            let Some(c) = self.conn() else { return false };
            let r = c.recv_timeout(left.min(Duration::from_millis(100)));
            let peer = self.peer.map_or_else(String::new, |p| format!("{}:{}", p.node, p.port.0));
            match r {
                Ok(Some(d)) => {
                    self.data_seen += 1;
                    let text = self.format_data(&d);
                    self.out(&format!("RECV from={peer} len={} data={text}", d.len()));
                    if echo
                        && let Some(c) = self.conn()
                        && let Err(e) = c.send(d)
                    {
                        self.out(&format!("ERROR echo: {}", e.with_errno()));
                    }
                }
                Ok(None) => {
                    self.conn_over = true;
                    self.out("PEER-CLOSED");
                }
                Err(Error::ConnReset(code)) => {
                    self.conn_over = true;
                    let code = u8::from(code);
                    self.out(&format!("PEER-CLOSED err={code}({})", err_name(code)));
                }
                Err(Error::Timeout) => {}
                Err(e) => {
                    self.out(&format!("ERROR recv: {}", e.with_errno()));
                    return false;
                }
            }
        }
    }

    fn recv_loop_m(&mut self, ms: u64, want: u64, want_members: usize, echo: bool) -> bool {
        if self.conn().is_some() {
            return self.conn_recv_loop(ms, want, echo);
        }
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
                        self.out(&format!("ERROR recv: {}", e.with_errno()));
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
                    self.out(&format!("ERROR recv: {}", e.with_errno()));
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
                self.out(&format!("ERROR send {name} (message {} of {}): {}", i + 1, self.count, e.with_errno()));
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
                self.out(&format!("ERROR send {name} (message {} of {}): {}", i + 1, self.count, e.with_errno()));
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
                self.out(&format!("ERROR send {mode} (message {} of {}): {}", i + 1, self.count, e.with_errno()));
                return false;
            }
        }
        self.out(&format!("SENT mode={mode} len={len} count={}", self.count));
        true
    }

    fn run(&mut self, step: &Step) -> bool {
        match step {
            &Step::Join { stype: t, inst } => {
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
                        Ok(g) => {
                            g.set_importance(self.importance);
                            g
                        }
                        Err(e) => {
                            self.out(&format!("ERROR join {t}:{inst}: {}", e.with_errno()));
                            return false;
                        }
                    },
                };
                if let Err(e) = g.join(spec) {
                    self.out(&format!("ERROR join {t}:{inst}: {}", e.with_errno()));
                    self.gsock = Some(g);
                    return false;
                }
                self.gsock = Some(g);
                self.joined = Some(spec);
                self.out(&format!(
                    "JOIN group={t} member={inst} scope={} flags={}{}",
                    if self.scope == Scope::Node { "node" } else { "cluster" },
                    if self.loopback { "loopback," } else { "" },
                    if self.events { "member_evts" } else { "" }
                ));
                self.run(&Step::SelfId)
            }
            Step::Leave => {
                let Some(g) = &self.gsock else {
                    self.out("ERROR leave: not joined");
                    return false;
                };
                if let Err(e) = g.leave() {
                    self.out(&format!("ERROR leave: {}", e.with_errno()));
                    return false;
                }
                let t = self.joined.take().map_or(0, |s| s.stype.0);
                self.out(&format!("LEAVE group={t}"));
                true
            }
            &Step::WaitMembers { n, ms } => {
                if self.recv_loop_m(ms, 0, n, false) {
                    self.out(&format!("MEMBERS {}", self.members.len()));
                    true
                } else {
                    self.out(&format!("ERROR wait-members: {} of {n} members after {ms} ms", self.members.len()));
                    false
                }
            }
            Step::Bcast(text) => self.group_send(Mode::Broadcast, None, 0, text, "bcast"),
            Step::Mcast { inst, text } => self.group_send(Mode::Multicast, None, *inst, text, "mcast"),
            Step::Anycast { inst, text } => self.group_send(Mode::Anycast, None, *inst, text, "anycast"),
            Step::ToPort { name, node, port, text } => {
                let (node, port) = (*node, PortId(*port));
                if self.gsock.is_some() {
                    self.group_send(Mode::Unicast, Some(MemberId { node, port }), 0, text, name)
                } else {
                    self.send_port(node, port, text, name)
                }
            }
            Step::UnicastMember { inst, text } => {
                let Some(&(_, m)) = self.members.iter().find(|(i, _)| i.0 == *inst) else {
                    self.out(&format!("ERROR unicast-member: member {inst} not known (no JOINED event)"));
                    return false;
                };
                self.group_send(Mode::Unicast, Some(m), 0, text, "unicast")
            }
            &Step::Bind { stype: t, lo, hi } => {
                let r = ServiceRange { stype: ServiceType(t), lower: Instance(lo), upper: Instance(hi) };
                let scope = self.scope;
                let bound = match self.kind {
                    Some(_) => self.main_conn().and_then(|c| c.bind(r, scope)),
                    None => self.sock.bind(r, scope),
                };
                if let Err(e) = bound {
                    self.out(&format!("ERROR bind {t}:{lo}:{hi}: {}", e.with_errno()));
                    return false;
                }
                self.out(&format!(
                    "BOUND service={t}:{lo}:{hi} scope={}",
                    if self.scope == Scope::Node { "node" } else { "cluster" }
                ));
                true
            }
            Step::Send { stype: t, inst, text } => {
                let (ret, t, inst) = (self.returnable, *t, *inst);
                self.plain_send("service", text, |s, d| s.send_to_name(ServiceType(t), Instance(inst), d, ret))
            }
            Step::SendRange { stype: t, lo, hi, text } => {
                let r = ServiceRange { stype: ServiceType(*t), lower: Instance(*lo), upper: Instance(*hi) };
                self.plain_send("range", text, |s, d| s.send_to_range(r, d))
            }
            Step::Listen => match self.main_conn().and_then(ConnSocket::listen) {
                Ok(()) => {
                    self.out("LISTENING");
                    true
                }
                Err(e) => {
                    self.out(&format!("ERROR listen: {}", e.with_errno()));
                    false
                }
            },
            &Step::Accept(ms) => {
                let Some(l) = self.csock.as_ref() else {
                    self.out("ERROR accept: not listening");
                    return false;
                };
                match l.accept_timeout(Duration::from_millis(ms)) {
                    Ok((c, peer)) => {
                        self.accepted = Some(c);
                        self.peer = Some(peer);
                        self.conn_over = false;
                        self.out(&format!("ACCEPTED peer={}:{}", peer.node, peer.port.0));
                        true
                    }
                    Err(Error::Timeout) => {
                        self.out(&format!("ERROR accept: no connection after {ms} ms"));
                        false
                    }
                    Err(e) => {
                        self.out(&format!("ERROR accept: {}", e.with_errno()));
                        false
                    }
                }
            }
            &Step::Connect { stype: t, inst } => {
                let r = self.main_conn().and_then(|c| c.connect(ServiceType(t), Instance(inst)).map(|()| c.peer()));
                match r {
                    Ok(Some(peer)) => {
                        self.connected = true;
                        self.peer = Some(peer);
                        self.conn_over = false;
                        self.out(&format!("CONNECTED peer={}:{}", peer.node, peer.port.0));
                        true
                    }
                    Ok(None) => {
                        self.out(&format!("ERROR connect {t}:{inst}: no peer"));
                        false
                    }
                    Err(e) => {
                        self.out(&format!("ERROR connect {t}:{inst}: {}", e.with_errno()));
                        false
                    }
                }
            }
            Step::Csend(text) => {
                let mut len = 0;
                for i in 0..self.count {
                    let data = self.payload(text, i);
                    len = data.len();
                    let r = match self.conn() {
                        Some(c) => c.send(data),
                        None => Err(Error::NotConnected),
                    };
                    if let Err(e) = r {
                        self.out(&format!("ERROR send conn (message {} of {}): {}", i + 1, self.count, e.with_errno()));
                        return false;
                    }
                }
                self.out(&format!("SENT mode=conn len={len} count={}", self.count));
                true
            }
            &Step::Sink { bytes, ms } => {
                let Some(c) = self.conn() else {
                    self.out("ERROR sink: not connected");
                    return false;
                };
                let end = Instant::now() + Duration::from_millis(ms);
                let (mut h, mut got) = (common::FNV0, 0u64);
                let mut buf = vec![0u8; 65_536];
                while got < bytes {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match c.read_timeout(&mut buf, left) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            h = common::fnv1a(h, &buf[..n]);
                            got += n as u64;
                        }
                    }
                }
                self.out(&format!("SINK len={got} fnv={h:016x}"));
                got == bytes
            }
            Step::Close => {
                if self.accepted.take().is_none() {
                    self.csock = None;
                    self.connected = false;
                }
                self.peer = None;
                self.conn_over = false;
                self.out("CLOSED");
                true
            }
            Step::SelfId => {
                let id = match (&self.csock, self.kind) {
                    (Some(c), Some(_)) => c.id(),
                    _ => self.gsock.as_ref().map_or_else(|| self.sock.id(), |g| g.id()),
                };
                self.out(&format!("SELF node={} port={}", id.node, id.port.0));
                true
            }
            &Step::Recv(ms) => self.recv_loop(ms, 0, false),
            &Step::RecvN { n, ms } => {
                let before = self.data_seen;
                if self.recv_loop(ms, n, false) {
                    true
                } else {
                    self.out(&format!("ERROR recv-n: {} of {n} messages after {ms} ms", self.data_seen - before));
                    false
                }
            }
            &Step::Echo(ms) => self.recv_loop(ms, 0, true),
            &Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                true
            }
            &Step::Count(n) => {
                self.count = n.max(1);
                true
            }
            &Step::Subscribe { stype, lo, hi, ports, ms } => {
                let range = ServiceRange { stype: ServiceType(stype), lower: Instance(lo), upper: Instance(hi) };
                let filter = if ports { Filter::Ports } else { Filter::Service };
                let timeout = ms.map(tipc_rs::wire::Duration::from_millis);
                match self.stack.subscribe(Subscription { range, filter, timeout }) {
                    Ok(sub) => {
                        self.subs.push(sub);
                        let f = if ports { 1 } else { 2 };
                        self.out(&format!("SUBSCRIBED sub={} service={stype}:{lo}:{hi} filter={f}", self.subs.len()));
                        true
                    }
                    Err(e) => {
                        self.out(&format!("ERROR subscribe: {}", e.with_errno()));
                        false
                    }
                }
            }
            &Step::Events(ms) => self.topology_events(ms),
        }
    }

    /// Prints the subscriptions' events arriving during `ms` (a
    /// subscription whose timeout event was printed has ended).
    fn topology_events(&mut self, ms: u64) -> bool {
        if self.subs.is_empty() {
            self.out("ERROR events: no subscription");
            return false;
        }
        let end = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < end {
            let mut quiet = true;
            for i in 0..self.subs.len() {
                match self.subs[i].try_recv() {
                    Ok(Some(e)) => {
                        quiet = false;
                        let kind = match e.kind {
                            EventKind::Published => "published",
                            EventKind::Withdrawn => "withdrawn",
                            EventKind::Timeout => "timeout",
                        };
                        self.out(&format!(
                            "TOPO sub={} event={kind} found={}:{}:{} port={}:{}",
                            i + 1,
                            e.found.stype.0,
                            e.found.lower.0,
                            e.found.upper.0,
                            e.port.node,
                            e.port.port.0
                        ));
                    }
                    Ok(None) | Err(Error::SubscriptionEnded) => {}
                    Err(e) => {
                        self.out(&format!("ERROR events: {}", e.with_errno()));
                        return false;
                    }
                }
            }
            if quiet {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        true
    }
}

impl Runner {
    /// The connection socket, made when a step first needs it (after a
    /// `close` a new one is made).
    fn main_conn(&mut self) -> Result<&ConnSocket, Error> {
        if self.csock.is_none() {
            let c = self.stack.conn_socket(self.kind.unwrap_or(ConnKind::Seqpacket))?;
            c.set_importance(self.importance);
            self.csock = Some(c);
        }
        self.csock.as_ref().ok_or(Error::NotConnected)
    }
}

/// One step of the scenario, checked before the node starts.
#[derive(Debug)]
enum Step {
    Listen,
    Accept(u64),
    Connect {
        stype: u32,
        inst: u32,
    },
    Csend(String),
    Sink {
        bytes: u64,
        ms: u64,
    },
    Close,
    Join {
        stype: u32,
        inst: u32,
    },
    Leave,
    WaitMembers {
        n: usize,
        ms: u64,
    },
    Bcast(String),
    Mcast {
        inst: u32,
        text: String,
    },
    Anycast {
        inst: u32,
        text: String,
    },
    /// `unicast` (in a group) or `send-port`: to a socket.
    ToPort {
        name: &'static str,
        node: NodeAddr,
        port: u32,
        text: String,
    },
    UnicastMember {
        inst: u32,
        text: String,
    },
    Bind {
        stype: u32,
        lo: u32,
        hi: u32,
    },
    Send {
        stype: u32,
        inst: u32,
        text: String,
    },
    SendRange {
        stype: u32,
        lo: u32,
        hi: u32,
        text: String,
    },
    SelfId,
    Recv(u64),
    RecvN {
        n: u64,
        ms: u64,
    },
    Echo(u64),
    Sleep(u64),
    Count(u64),
    Subscribe {
        stype: u32,
        lo: u32,
        hi: u32,
        /// The PORTS filter (else SERVICE).
        ports: bool,
        ms: Option<u64>,
    },
    Events(u64),
}

/// The step names, for error messages.
const STEP_NAMES: &str = "join, leave, wait-members, bcast, mcast, anycast, unicast, unicast-member, bind, send, \
                          send-range, send-port, self, recv, recv-n, echo, sleep, count, listen, accept, connect, \
                          csend, sink, close, subscribe, events";

/// Parses one step; the error names what is wrong and what is valid.
fn parse_step(step: &str) -> Result<Step, String> {
    let (name, rest) = step.split_once(':').unwrap_or((step, ""));
    let num = |s: Option<&str>, what: &str| -> Result<u64, String> {
        let s = s.filter(|s| !s.is_empty()).ok_or(format!("step {step}: missing {what}"))?;
        let r = if let Some(h) = s.strip_prefix("0x") { u64::from_str_radix(h, 16) } else { s.parse() };
        r.map_err(|_| format!("step {step}: bad {what} `{s}` (a number)"))
    };
    let num32 = |s: Option<&str>, what: &str| -> Result<u32, String> {
        u32::try_from(num(s, what)?).map_err(|_| format!("step {step}: {what} does not fit 32 bits"))
    };
    let text = |s: Option<&str>| -> Result<String, String> {
        let t = s.unwrap_or("");
        if let Some(n) = t.strip_prefix('@') {
            match n.parse::<usize>() {
                // 66001: one byte too many, to try the refusal
                Ok(n) if n <= tipc_rs::wire::MAX_USER_MSG_SIZE + 1 => {}
                _ => return Err(format!("step {step}: @N takes a size of 0 to 66001 bytes")),
            }
        }
        Ok(t.to_string())
    };
    let no_args = |s: Step| if rest.is_empty() { Ok(s) } else { Err(format!("step {name} takes no arguments")) };
    let mut f = rest.split(':');
    let step = match name {
        "join" => Step::Join { stype: num32(f.next(), "group type")?, inst: num32(f.next(), "member instance")? },
        "leave" => no_args(Step::Leave)?,
        "wait-members" => Step::WaitMembers {
            n: num(f.next(), "member count")? as usize,
            ms: f.next().map_or(Ok(10_000), |s| num(Some(s), "timeout"))?,
        },
        "bcast" => Step::Bcast(text(Some(rest))?),
        "mcast" | "anycast" | "unicast-member" => {
            let mut f = rest.splitn(2, ':');
            let inst = num32(f.next(), "instance")?;
            let text = text(f.next())?;
            match name {
                "mcast" => Step::Mcast { inst, text },
                "anycast" => Step::Anycast { inst, text },
                _ => Step::UnicastMember { inst, text },
            }
        }
        "unicast" | "send-port" => {
            let mut f = rest.splitn(3, ':');
            let n = f.next().unwrap_or("");
            let node: NodeAddr =
                n.parse().map_err(|_| format!("step {step}: bad node address `{n}` (8 hex digits)"))?;
            let port = num32(f.next(), "port")?;
            let name = if name == "unicast" { "unicast" } else { "send-port" };
            Step::ToPort { name, node, port, text: text(f.next())? }
        }
        "bind" => {
            let stype = num32(f.next(), "type")?;
            let lo = num32(f.next(), "lower")?;
            let hi = f.next().map_or(Ok(lo), |s| num32(Some(s), "upper"))?;
            Step::Bind { stype, lo, hi }
        }
        "send" => {
            let mut f = rest.splitn(3, ':');
            Step::Send { stype: num32(f.next(), "type")?, inst: num32(f.next(), "instance")?, text: text(f.next())? }
        }
        "send-range" => {
            let mut f = rest.splitn(4, ':');
            Step::SendRange {
                stype: num32(f.next(), "type")?,
                lo: num32(f.next(), "lower")?,
                hi: num32(f.next(), "upper")?,
                text: text(f.next())?,
            }
        }
        "self" => no_args(Step::SelfId)?,
        "recv" => Step::Recv(num(Some(rest), "milliseconds")?),
        "recv-n" => {
            Step::RecvN { n: num(f.next(), "count")?, ms: f.next().map_or(Ok(10_000), |s| num(Some(s), "timeout"))? }
        }
        "echo" => Step::Echo(num(Some(rest), "milliseconds")?),
        "sleep" => Step::Sleep(num(Some(rest), "milliseconds")?),
        "count" => Step::Count(num(Some(rest), "count")?),
        "listen" => no_args(Step::Listen)?,
        "accept" => Step::Accept(if rest.is_empty() { 10_000 } else { num(Some(rest), "milliseconds")? }),
        "connect" => Step::Connect { stype: num32(f.next(), "type")?, inst: num32(f.next(), "instance")? },
        "csend" => Step::Csend(text(Some(rest))?),
        "sink" => Step::Sink {
            bytes: num(f.next(), "byte count")?,
            ms: f.next().map_or(Ok(60_000), |s| num(Some(s), "timeout"))?,
        },
        "close" => no_args(Step::Close)?,
        "subscribe" => {
            let (stype, lo, hi) = (num32(f.next(), "type")?, num32(f.next(), "lower")?, num32(f.next(), "upper")?);
            let ports = match num(f.next(), "filter")? {
                1 => true,
                2 => false,
                _ => return Err(format!("step {step}: FILTER is 1 (ports) or 2 (service)")),
            };
            let ms = f.next().map(|s| num(Some(s), "timeout")).transpose()?;
            Step::Subscribe { stype, lo, hi, ports, ms }
        }
        "events" => Step::Events(num(Some(rest), "milliseconds")?),
        other => return Err(format!("unknown step `{other}`; valid steps: {STEP_NAMES} (see --help)")),
    };
    Ok(step)
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
    let steps: Vec<Step> = args.steps.iter().map(|s| parse_step(s)).collect::<Result<_, _>>().unwrap_or_else(|e| {
        eprintln!("group_member: {e}");
        std::process::exit(2)
    });
    let kind = match args.sock_type {
        SockType::Rdm => None,
        SockType::Seqpacket => Some(ConnKind::Seqpacket),
        SockType::Stream => Some(ConnKind::Stream),
    };
    // as the kernel-side client: connection steps need a connection socket,
    // group and datagram steps a datagram one
    for (s, text) in steps.iter().zip(&args.steps) {
        let conn_step = matches!(
            s,
            Step::Listen | Step::Accept(_) | Step::Connect { .. } | Step::Csend(_) | Step::Sink { .. } | Step::Close
        );
        let rdm_step = matches!(
            s,
            Step::Join { .. }
                | Step::Leave
                | Step::WaitMembers { .. }
                | Step::Bcast(_)
                | Step::Mcast { .. }
                | Step::Anycast { .. }
                | Step::ToPort { .. }
                | Step::UnicastMember { .. }
                | Step::Send { .. }
                | Step::SendRange { .. }
        );
        if conn_step && kind.is_none() {
            eprintln!("group_member: step '{text}' needs -t seqpacket or -t stream");
            std::process::exit(2);
        }
        if rdm_step && kind.is_some() {
            eprintln!("group_member: step '{text}' needs -t rdm");
            std::process::exit(2);
        }
    }
    let _ = args.method;
    let importance = Importance::from(args.importance);
    let b = match args.node.builder() {
        Ok(b) => b.net_id(args.net_id),
        Err(e) => {
            eprintln!("group_member: {e}");
            std::process::exit(2);
        }
    };
    let stack = match b.start() {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            println!("ERROR start: {e}");
            println!("DONE status=fail");
            std::process::exit(1);
        }
    };
    common::node_signals(&stack, || STOPPING.store(true, std::sync::atomic::Ordering::Release));
    // conflicts on the segment (a second node with our identity or address,
    // another cluster): a CONFLICT line each, never silence
    let events = stack.events();
    std::thread::spawn(move || {
        for e in events {
            if let tipc_rs::StackEvent::Conflict(c) = e {
                println!("CONFLICT {c}");
            }
        }
    });
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
    sock.set_importance(importance);
    let mut r = Runner {
        t0: Instant::now(),
        human: args.human,
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
        scope: match args.scope {
            ScopeArg::Node => Scope::Node,
            ScopeArg::Cluster => Scope::Cluster,
        },
        loopback: args.loopback,
        events: args.events,
        importance,
        kind,
        csock: None,
        accepted: None,
        connected: false,
        peer: None,
        conn_over: false,
        subs: Vec::new(),
    };
    let failed = !steps.iter().all(|s| r.run(s));
    r.out(&format!("DONE status={}", if failed { "fail" } else { "ok" }));
    if STOPPING.load(std::sync::atomic::Ordering::Acquire) {
        r.out(""); // parks: the signal thread exits
    }
    let Runner { stack, sock, gsock, csock, accepted, subs, .. } = r;
    drop(subs);
    drop(accepted);
    drop(csock);
    drop(gsock);
    drop(sock);
    stack.close();
    if args.stats {
        eprintln!("{}", stack.stats());
    }
    std::process::exit(i32::from(failed));
}
