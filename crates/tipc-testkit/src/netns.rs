//! Private network namespaces joined by veth pairs or a bridge: the rig that
//! the veth tests, the benches and the demo cluster run on.
//!
//! Everything is created with `ip` (iproute2) under unique names, so runs
//! can proceed in parallel, and removed on drop — also while unwinding from
//! a panic. Each node runs on a thread that first enters its namespace
//! ([`Netns::spawn`]); sockets it opens belong to that namespace.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Interface name of each node's end of a link in the rigs built here.
pub const NODE_IF: &str = "tipc0";
/// A node's second interface in a [`Lab::two_bridges`].
pub const NODE_IF2: &str = "tipc1";

/// Why a rig could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The process lacks the capabilities to create namespaces and raw sockets.
    #[error(
        "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW); run as root, e.g. `sudo -E cargo test`"
    )]
    NotPrivileged,
    /// `ip` (iproute2) is not installed.
    #[error("`ip` from iproute2 is not installed (apt-get install iproute2)")]
    NoIp,
    /// An `ip` command failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Any other error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Whether this process holds the capabilities the rig needs
/// (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW in the effective set).
pub fn privileged() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    let Some(line) = status.lines().find(|l| l.starts_with("CapEff:")) else { return false };
    let Ok(caps) = u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16) else { return false };
    let need = (1u64 << 21) | (1 << 12) | (1 << 13);
    caps & need == need
}

fn run(cmd: &mut Command) -> Result<Output, LabError> {
    let out =
        cmd.output().map_err(|e| if e.kind() == io::ErrorKind::NotFound { LabError::NoIp } else { LabError::Io(e) })?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: format!("{cmd:?}"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// Runs `ip ARGS...`.
pub fn ip(args: &[&str]) -> Result<Output, LabError> {
    run(Command::new("ip").args(args))
}

/// One network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with loopback up and IPv6 off (no chatter on the links).
    pub fn create(name: &str) -> Result<Netns, LabError> {
        if !privileged() {
            return Err(LabError::NotPrivileged);
        }
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_string() };
        ns.ip(&["link", "set", "lo", "up"])?;
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
        Ok(ns)
    }
    /// The namespace name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The namespace file, for `setns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }
    /// Runs `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }
    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut v = vec!["netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }
    /// The MAC address of an interface in the namespace.
    pub fn mac(&self, ifname: &str) -> Result<tipc_wire::MacAddr, LabError> {
        let out = self.ip(&["-o", "link", "show", ifname])?;
        let s = String::from_utf8_lossy(&out.stdout);
        let mac =
            s.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).and_then(|m| m.parse().ok()).ok_or_else(
                || LabError::Command { cmd: format!("ip -n {} link show {ifname}", self.name), stderr: s.to_string() },
            )?;
        Ok(mac)
    }
    /// Runs `f` on a new thread that has entered this namespace.
    pub fn spawn<T, F>(&self, thread_name: &str, f: F) -> io::Result<JoinHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = self.path();
        std::thread::Builder::new().name(thread_name.to_string()).spawn(move || {
            if let Err(e) = crate::sys::enter_netns(&path) {
                panic!("cannot enter network namespace {}: {e}", path.display());
            }
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A set of namespaces with unique names, removed together on drop.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    nodes: Vec<Netns>,
    extra: Vec<Netns>,
}

impl Lab {
    /// An empty rig; `tag` appears in the namespace names.
    pub fn new(tag: &str) -> Result<Lab, LabError> {
        if !privileged() {
            return Err(LabError::NotPrivileged);
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        Ok(Lab { prefix: format!("tipc-{tag}-{}-{n}", std::process::id()), nodes: Vec::new(), extra: Vec::new() })
    }

    /// The node namespaces, in creation order.
    pub fn nodes(&self) -> &[Netns] {
        &self.nodes
    }
    /// Node namespace `i`.
    pub fn node(&self, i: usize) -> &Netns {
        &self.nodes[i]
    }
    /// Infrastructure namespaces (bridge hub, relay).
    pub fn infra(&self) -> &[Netns] {
        &self.extra
    }

    fn new_ns(&self, role: &str) -> Result<Netns, LabError> {
        Netns::create(&format!("{}-{role}", self.prefix))
    }

    /// Joins `a:a_if` and `b:b_if` with a veth pair, both ends up.
    pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), LabError> {
        ip(&["link", "add", a_if, "netns", a.name(), "type", "veth", "peer", "name", b_if, "netns", b.name()])?;
        a.ip(&["link", "set", a_if, "up"])?;
        b.ip(&["link", "set", b_if, "up"])?;
        Ok(())
    }

    /// Two node namespaces joined by one veth pair (`tipc0` in each).
    pub fn pair(tag: &str) -> Result<Lab, LabError> {
        let mut lab = Lab::new(tag)?;
        let a = lab.new_ns("a")?;
        let b = lab.new_ns("b")?;
        Lab::veth(&a, NODE_IF, &b, NODE_IF)?;
        lab.nodes = vec![a, b];
        Ok(lab)
    }

    /// `n` node namespaces on one bridge in a hub namespace (`tipc0` in each node).
    pub fn bridge(tag: &str, n: usize) -> Result<Lab, LabError> {
        let mut lab = Lab::new(tag)?;
        let hub = lab.new_ns("hub")?;
        hub.ip(&["link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        hub.ip(&["link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = lab.new_ns(&format!("n{i}"))?;
            let port = format!("p{i}");
            Lab::veth(&ns, NODE_IF, &hub, &port)?;
            hub.ip(&["link", "set", &port, "master", "br0"])?;
            lab.nodes.push(ns);
        }
        lab.extra.push(hub);
        Ok(lab)
    }

    /// `n` node namespaces on two bridges (`br0`, `br1`) in a hub
    /// namespace: each node has [`NODE_IF`] on `br0` and [`NODE_IF2`] on
    /// `br1` — two independent segments, for parallel links. Taking a
    /// bridge down ([`Lab::set_bridge`]) is a switch failing.
    pub fn two_bridges(tag: &str, n: usize) -> Result<Lab, LabError> {
        let mut lab = Lab::new(tag)?;
        let hub = lab.new_ns("hub")?;
        for br in ["br0", "br1"] {
            hub.ip(&["link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
            hub.ip(&["link", "set", br, "up"])?;
        }
        for i in 0..n {
            let ns = lab.new_ns(&format!("n{i}"))?;
            for (k, (ifname, br)) in [(NODE_IF, "br0"), (NODE_IF2, "br1")].into_iter().enumerate() {
                let port = format!("p{k}-{i}");
                Lab::veth(&ns, ifname, &hub, &port)?;
                hub.ip(&["link", "set", &port, "master", br])?;
            }
            lab.nodes.push(ns);
        }
        lab.extra.push(hub);
        Ok(lab)
    }

    /// Takes bridge `br` of a [`Lab::two_bridges`] (or [`Lab::bridge`])
    /// down (`false`: every frame on it is lost) or up again.
    pub fn set_bridge(&self, br: &str, up: bool) -> Result<(), LabError> {
        let hub = self.extra.iter().find(|n| n.name().ends_with("-hub")).ok_or_else(|| LabError::Command {
            cmd: format!("ip link set {br}"),
            stderr: "this lab has no hub namespace".into(),
        })?;
        hub.ip(&["link", "set", br, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// Two node namespaces whose link passes through a relay namespace:
    /// `a:tipc0 — relay:ra`, `relay:rb — b:tipc0`. Nothing crosses until a
    /// relay forwards between `ra` and `rb` ([`crate::relay::Relay`]).
    pub fn relayed_pair(tag: &str) -> Result<Lab, LabError> {
        Lab::relayed(tag, &["a", "b"], &["ra".to_string(), "rb".to_string()])
    }

    /// `n` node namespaces, each joined to the relay namespace by its own
    /// veth pair (`n{i}:tipc0 — relay:r{i}`): a star whose hub is a
    /// [`crate::relay::Relay`] started with [`crate::relay::Relay::start_ports`]
    /// on `r0 … r{n-1}` ([`Lab::star_ports`]).
    pub fn relayed_star(tag: &str, n: usize) -> Result<Lab, LabError> {
        let roles: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        Lab::relayed(tag, &roles, &Lab::star_ports(n))
    }

    /// The relay-side interface names of a [`Lab::relayed_star`] of `n` nodes.
    pub fn star_ports(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}")).collect()
    }

    /// Node namespace `roles[i]` joined to the relay namespace's `ports[i]`.
    fn relayed(tag: &str, roles: &[&str], ports: &[String]) -> Result<Lab, LabError> {
        let mut lab = Lab::new(tag)?;
        let r = lab.new_ns("relay")?;
        for (role, p) in roles.iter().zip(ports) {
            let ns = lab.new_ns(role)?;
            Lab::veth(&ns, NODE_IF, &r, p)?;
            r.ip(&["link", "set", p, "promisc", "on"])?;
            lab.nodes.push(ns);
        }
        lab.extra.push(r);
        Ok(lab)
    }

    /// The relay namespace of a [`Lab::relayed_pair`].
    pub fn relay_ns(&self) -> Option<&Netns> {
        self.extra.iter().find(|n| n.name().ends_with("-relay"))
    }

    /// Drops frames of ethertype 0x88CA arriving on `ifname` in `ns` with
    /// probability `percent` / 100, using an nftables `numgen random` rule
    /// in the netdev ingress hook (simple loss without a relay).
    pub fn nft_drop(ns: &Netns, ifname: &str, percent: u32) -> Result<(), LabError> {
        let table = "tipcloss";
        let _ = ns.exec(&["nft", "delete", "table", "netdev", table]);
        ns.exec(&["nft", "add", "table", "netdev", table])?;
        let chain = format!("{{ type filter hook ingress device {ifname} priority 0 ; }}");
        ns.exec(&["nft", "add", "chain", "netdev", table, "in", &chain])?;
        let pct = percent.min(100).to_string();
        ns.exec(&[
            "nft", "add", "rule", "netdev", table, "in", "ether", "type", "0x88ca", "numgen", "random", "mod", "100",
            "<", &pct, "counter", "drop",
        ])?;
        Ok(())
    }
}
