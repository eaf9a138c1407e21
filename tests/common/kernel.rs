//! A Linux kernel TIPC peer in a qemu VM, run by the project's own tool
//! `tools/kernel-peer/kpeer`, for the interoperability tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tipc_rs::wire::{Instance, NodeAddr, ServiceRange, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Mode, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns};

/// The kernel-peer tool of the repository.
pub fn kpeer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/kernel-peer/kpeer")
}

fn script(sub: &str) -> Command {
    let mut c = Command::new(kpeer());
    c.arg(sub);
    c
}

/// The namespace for a kernel test's bridge, or `None` when the test
/// cannot run here (no root, or the kernel peer image is not built:
/// `kpeer setup`, which `tools/test` runs) — then it is skipped by name,
/// and fails when `CI` is set.
pub fn kernel_rig(what: &str, tag: &str) -> Option<String> {
    let ns = super::rig(what, || Ok(bridge_ns(tag)))?;
    let ready = script("setup").arg("--check").output();
    match ready {
        Ok(o) if o.status.success() => Some(ns),
        Ok(o) => {
            super::skip(&format!(
                "{what}: the kernel peer image is not built ({}; `tools/kernel-peer/kpeer setup` builds it)",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            None
        }
        Err(e) => {
            super::skip(&format!("{what}: cannot run {}: {e}", kpeer().display()));
            None
        }
    }
}

static N: AtomicUsize = AtomicUsize::new(0);

/// One kernel VM on a bridge in its own namespace, plus our side of it.
pub struct KernelPeer {
    /// VM name.
    pub name: String,
    /// The namespace holding the bridge.
    pub bridge_ns: String,
    /// The kernel node's 32-bit address (hex, as `up` printed it).
    pub addr: String,
}

impl KernelPeer {
    /// Boots a VM with identity `node_id` on bridge `br0` of namespace
    /// `bridge_ns` (created if missing).
    pub fn up(tag: &str, bridge_ns: &str, node_id: &str) -> KernelPeer {
        Self::up_with(tag, bridge_ns, node_id, &[])
    }

    /// As [`KernelPeer::up`], with more `kpeer up` arguments (e.g.
    /// `--ipv4 A/P`).
    pub fn up_with(tag: &str, bridge_ns: &str, node_id: &str, extra: &[&str]) -> KernelPeer {
        let name = format!("{tag}{}x{}", std::process::id() % 10_000, N.fetch_add(1, Ordering::Relaxed));
        let out = script("up")
            .args([&name, "--netns", bridge_ns, "--ifname", "br0", "--node-id", node_id])
            .args(extra)
            .output()
            .expect("tipc-peer/up");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tipc-peer/up {name} failed:\n{text}");
        let addr = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("address="))
            .unwrap_or_else(|| panic!("no address in:\n{text}"))
            .to_string();
        KernelPeer { name, bridge_ns: bridge_ns.to_string(), addr }
    }

    /// Runs a command in the VM; returns (stdout, success).
    pub fn exec(&self, args: &[&str]) -> (String, bool) {
        let out =
            script("exec").arg(&self.name).arg("--timeout").arg("120").arg("--").args(args).output().expect("exec");
        (String::from_utf8_lossy(&out.stdout).to_string(), out.status.success())
    }

    /// Starts a command in the VM in the background, output to `file` there.
    pub fn spawn(&self, file: &str, cmd: &str) {
        let (_, ok) = self.exec(&["sh", "-c", &format!("{cmd} > {file} 2>&1 &")]);
        assert!(ok, "spawn {cmd}");
    }

    /// Reads a file in the VM until `pred` holds or `timeout` passes.
    pub fn wait_file(&self, file: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + timeout;
        loop {
            let (s, _) = self.exec(&["cat", file]);
            if pred(&s) || Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until `tipc link list` shows a link to `peer_id` up.
    pub fn wait_link(&self, peer_id: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let (s, _) = self.exec(&["tipc", "link", "list"]);
            if s.lines().any(|l| l.contains(peer_id) && l.trim_end().ends_with("up")) {
                return true;
            }
            if Instant::now() > end {
                eprintln!("tipc link list:\n{s}");
                return false;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for KernelPeer {
    fn drop(&mut self) {
        let _ = script("down").arg(&self.name).output();
    }
}

/// A namespace of ours plugged into the kernel peer's bridge: our end is
/// `tipc0` in `ns`; the bridge port is removed with the namespace.
pub struct Plug {
    /// Our namespace.
    pub ns: Netns,
    bridge_ns: String,
}

impl Plug {
    /// Creates `ns` and a veth whose other end joins `br0` in `bridge_ns`.
    pub fn new(lab_tag: &str, bridge_ns: &str, i: usize) -> Plug {
        let name = format!("tipc-{lab_tag}-{}-u{i}", std::process::id());
        let ns = Netns::create(&name).expect("our namespace");
        let plug = Plug { ns, bridge_ns: bridge_ns.to_string() };
        plug.add(NODE_IF, "br0", &format!("up{}x{i}", std::process::id() % 100_000));
        let _ = Lab::new;
        plug
    }

    /// Adds our interface `ifname`, up, on bridge `bridge` of the bridge
    /// namespace through a veth whose bridge end is `port`.
    pub fn add(&self, ifname: &str, bridge: &str, port: &str) {
        let brns = self.bridge_ns.as_str();
        tipc_testkit::netns::ip(&[
            "link",
            "add",
            ifname,
            "netns",
            self.ns.name(),
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            brns,
        ])
        .expect("veth to the bridge");
        tipc_testkit::netns::ip(&["-n", brns, "link", "set", port, "master", bridge, "up"]).expect("bridge port");
        let _ = tipc_testkit::netns::ip(&[
            "netns",
            "exec",
            brns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{port}.disable_ipv6=1"),
        ]);
        self.ns.ip(&["link", "set", ifname, "up"]).expect("up");
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = &self.bridge_ns;
    }
}

/// Creates the bridge namespace `ns` with `bridges` in it, up, before any
/// kernel node (kpeer makes them when it boots the first).
pub fn make_bridges(ns: &str, bridges: &[&str]) {
    let ip = tipc_testkit::netns::ip;
    ip(&["netns", "add", ns]).expect("bridge namespace");
    for br in bridges {
        ip(&["-n", ns, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"]).expect("bridge");
        let _ = ip(&["netns", "exec", ns, "sysctl", "-qw", &format!("net.ipv6.conf.{br}.disable_ipv6=1")]);
        ip(&["-n", ns, "link", "set", br, "up"]).expect("bridge up");
    }
}

/// Polls `f` every 100 ms until it holds; fails the test after `timeout`,
/// naming `what` it waited for.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A unique namespace name for a kernel peer's bridge.
pub fn bridge_ns(tag: &str) -> String {
    format!("tipc-{tag}-{}-br", std::process::id())
}

/// Deletes the bridge namespace `.0` however the test ends (on drop).
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_ns(&self.0);
    }
}

/// Deletes a namespace if it is left over.
pub fn remove_ns(name: &str) {
    let _ = tipc_testkit::netns::ip(&["netns", "del", name]);
}

fn range(t: u32, i: u32) -> ServiceRange {
    ServiceRange::single(ServiceType(t), Instance(i))
}

/// The same checks with every kernel node: names both ways (our 1000:100
/// in its table, its 1001:7 in ours), RDM both ways, and a group of two
/// (type 4711, the kernel member instance 1, ours 2) in all four modes
/// both ways, with the kernel member's LEFT at the end.
pub fn services_both_ways(stack: &Stack, kernel: &KernelPeer, kaddr: NodeAddr) {
    // names both ways
    let sock = stack.port_socket().expect("socket");
    sock.bind(range(1000, 100), Scope::Cluster).expect("bind");
    kernel.spawn("/tmp/kb.log", "tipc-client bind:1001:7 recv-n:1:30000");
    wait_until("our binding in the kernel's table", Duration::from_secs(15), || {
        kernel.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1000") && l.contains(" 100 "))
    });
    wait_until("the kernel's binding in ours", Duration::from_secs(15), || {
        stack.name_table().iter().any(|p| p.range == range(1001, 7) && p.node == kaddr)
    });
    // RDM both ways
    let (out, ok) = kernel.exec(&["tipc-client", "send:1000:100:kernel-to-us"]);
    assert!(ok, "{out}");
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("the kernel's message");
    assert_eq!(&m.data[..], b"kernel-to-us");
    sock.send_to_name(ServiceType(1001), Instance(7), Bytes::from_static(b"us-to-kernel"), false).expect("send");
    let log = kernel.wait_file("/tmp/kb.log", Duration::from_secs(15), |s| s.contains("DONE"));
    assert!(log.contains("data=\"us-to-kernel\"") && log.contains("DONE status=ok"), "{log}");

    // a group of two, every mode both ways
    kernel.spawn(
        "/tmp/kg.log",
        "tipc-client -e join:4711:1 wait-members:1:30000 sleep:1500 bcast:k-bcast mcast:2:k-mcast anycast:2:k-any unicast-member:2:k-uni recv:6000 leave",
    );
    let g = stack.group_socket().expect("group socket");
    let spec = GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(2),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    g.join(spec).expect("join");
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while g.members().is_empty() {
        assert!(Instant::now() < end, "the kernel member never joined");
        if let Ok(e) = g.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    let k = g.members()[0].0;
    g.broadcast(Bytes::from_static(b"u-bcast")).expect("bcast");
    g.send_multicast(Instance(1), Bytes::from_static(b"u-mcast")).expect("mcast");
    g.send_anycast(Instance(1), Bytes::from_static(b"u-any")).expect("anycast");
    g.send_unicast(k, Bytes::from_static(b"u-uni")).expect("unicast");
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        if let Ok(e) = g.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    let log = kernel.wait_file("/tmp/kg.log", Duration::from_secs(20), |s| s.contains("DONE"));
    eprintln!("kernel member:\n{log}");
    let texts: Vec<(Mode, String)> = got
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Message { mode, data, .. } => Some((*mode, String::from_utf8_lossy(data).to_string())),
            _ => None,
        })
        .collect();
    // (a multicast or anycast that reaches one member arrives as the
    // kernel sends it to one socket; only broadcast and unicast say so)
    assert!(texts.contains(&(Mode::Broadcast, "k-bcast".into())), "{texts:?}");
    assert!(texts.contains(&(Mode::Unicast, "k-uni".into())), "{texts:?}");
    for t in ["k-mcast", "k-any"] {
        assert!(texts.iter().any(|x| x.1 == t), "{t}: {texts:?}");
    }
    assert_eq!(texts.len(), 4, "each once: {texts:?}");
    for t in ["u-bcast", "u-mcast", "u-any", "u-uni"] {
        assert!(log.contains(&format!("data=\"{t}\"")), "the kernel got {t}:\n{log}");
    }
    assert!(log.contains("DONE status=ok"), "{log}");
    assert!(got.iter().any(|e| matches!(e, GroupEvent::MemberDown { .. })), "the kernel member's LEFT");
}
