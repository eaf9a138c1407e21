//! Configuration and start of a [`Stack`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration as StdDuration;

use parking_lot::{Condvar, Mutex};
use tipc_bearer::Bearer;
use tipc_link::{AddrMode, LinkConfig};
use tipc_wire::{Instant, MediaAddr, NodeAddr, NodeId};

use super::Stack;
use super::bearers::{BearerSpec, Eth, Udp};
use super::rx::Driver;
use super::shared::{Inner, Shared};
use super::tap::Tap;
use crate::core::NodeCore;
use crate::error::Error;

/// Builds and starts a [`Stack`].
#[derive(Clone, Debug)]
pub struct StackBuilder {
    pub(super) iface: Option<String>,
    /// The UDP bearer's local address.
    pub(super) udp: Option<std::net::SocketAddr>,
    /// Its replicast peers (none: multicast).
    pub(super) udp_peers: Vec<std::net::SocketAddr>,
    /// Its name.
    pub(super) udp_name: String,
    pub(super) node_id: Option<NodeId>,
    pub(super) addr: Option<NodeAddr>,
    pub(super) net_id: u32,
    pub(super) tolerance: StdDuration,
    pub(super) window: u16,
    pub(super) pcap: Option<PathBuf>,
    pub(super) seed: Option<u64>,
    /// Further bearers, after the interface and the UDP bearer.
    pub(super) bearers: Vec<BearerSpec>,
    /// Keys set before the first frame.
    pub(super) keys: Vec<tipc_crypto::KeySpec>,
    /// Automatic rekeying.
    pub(super) rekey_interval: Option<StdDuration>,
    /// Where to serve the control socket (off: `None`).
    pub(super) control: Option<PathBuf>,
}

impl StackBuilder {
    /// Serves a control socket at `path` (a Unix stream socket, owner
    /// only; off by default) for the `tipc-rs` inspector
    /// (crates/tipc-inspect): `tipc-rs --socket PATH link list` and the
    /// rest read the node's statistics through it without slowing it down
    /// (see [`super::control`]). The file is removed when the stack stops;
    /// a stale one left by a dead process is replaced.
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control = Some(path.into());
        self
    }
    /// The Ethernet interface to use (this, or [`StackBuilder::udp`]).
    /// Needs `CAP_NET_RAW`.
    pub fn iface(mut self, name: impl Into<String>) -> Self {
        self.iface = Some(name.into());
        self
    }
    /// Runs on a UDP bearer at `local` (IPv4 or IPv6; port 0 takes a free
    /// one) instead of Ethernet: no privileges needed. Discovery and the
    /// broadcast link go to the cluster's multicast group (228.0.18.103
    /// for 4711, as the kernel's `tipc` tool sets it up) unless
    /// [`StackBuilder::udp_peer`] names peers (net/tipc/udp_media.c).
    pub fn udp(mut self, local: std::net::SocketAddr) -> Self {
        self.udp = Some(local);
        self
    }
    /// Adds a replicast peer to the UDP bearer (repeatable): broadcast-type
    /// packets are copied to each peer instead of a multicast group — where
    /// multicast does not pass. Peers whose discovery messages reach us are
    /// learned and added (up to 64), so among our nodes it is enough that
    /// every node is listed by one other; a kernel node learns no peers
    /// (net/tipc/udp_media.c `tipc_udp_recv`) and must list every other node,
    /// ours included. Needs [`StackBuilder::udp`] for the local address.
    pub fn udp_peer(mut self, peer: std::net::SocketAddr) -> Self {
        self.udp_peers.push(peer);
        self
    }
    /// The UDP bearer's name (default `udp`): the kernel's `udp:NAME`, sent
    /// in RESET/ACTIVATE and part of link names.
    pub fn udp_name(mut self, name: impl Into<String>) -> Self {
        self.udp_name = name.into();
        self
    }
    /// Adds a bearer (repeatable; up to three in all, with
    /// [`StackBuilder::iface`] and [`StackBuilder::udp`], which come first):
    /// an Ethernet interface or a UDP socket with its own link settings.
    /// A peer reached on two bearers gets two links; the traffic moves to
    /// the other without loss when one fails (failover, as net/tipc/node.c
    /// `__tipc_node_link_down` and link.c `tipc_link_tnl_prepare` do).
    ///
    /// ```no_run
    /// use tipc_rs::{Eth, Stack, Udp};
    /// let stack = Stack::builder()
    ///     .bearer(Eth::new("eth0").priority(20))
    ///     .bearer(Udp::new("10.0.0.1:6118".parse().unwrap()))
    ///     .start()?;
    /// # Ok::<(), tipc_rs::Error>(())
    /// ```
    pub fn bearer(mut self, b: impl Into<BearerSpec>) -> Self {
        self.bearers.push(b.into());
        self
    }
    /// The node identity (default: the interface MAC followed by zeros, or
    /// on UDP the local IP address followed by zeros, as the kernel does).
    pub fn node_id(mut self, id: NodeId) -> Self {
        self.node_id = Some(id);
        self
    }
    /// A fixed legacy address instead of the hashed one (no address trial).
    pub fn node_addr(mut self, a: NodeAddr) -> Self {
        self.addr = Some(a);
        self
    }
    /// The cluster id (default 4711).
    pub fn net_id(mut self, id: u32) -> Self {
        self.net_id = id;
        self
    }
    /// Link tolerance (50 ms – 30 s; default 1.5 s).
    pub fn tolerance(mut self, d: StdDuration) -> Self {
        self.tolerance = d;
        self
    }
    /// Link send window in packets (default 50).
    pub fn window(mut self, w: u16) -> Self {
        self.window = w;
        self
    }
    /// Records every frame sent and received to a pcap file.
    pub fn pcap(mut self, path: impl Into<PathBuf>) -> Self {
        self.pcap = Some(path.into());
        self
    }
    /// Seed for random choices (default: from the clock and process id).
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = Some(s);
        self
    }

    /// Sets a key before the first frame goes out, so that the node is
    /// encrypted from its first discovery on (see [`Stack::set_key`]).
    /// May be given more than once (a master key and a `nodeid` key).
    pub fn key(mut self, spec: tipc_crypto::KeySpec) -> Self {
        self.keys.push(spec);
        self
    }

    /// Rekeys every `every` (the kernel's default is 24 h; without this,
    /// the node makes one session key when its master key is set).
    pub fn rekey_interval(mut self, every: std::time::Duration) -> Self {
        self.rekey_interval = Some(every);
        self
    }

    /// Every bearer to open, in bearer-id order: the interface, the UDP
    /// bearer, then those added with [`StackBuilder::bearer`].
    fn bearer_specs(&self) -> Vec<BearerSpec> {
        let mut v = Vec::new();
        if let Some(i) = &self.iface {
            v.push(BearerSpec::Eth(Eth::new(i.clone())));
        }
        if let Some(local) = self.udp {
            let mut u = Udp::new(local).name(self.udp_name.clone());
            u.peers = self.udp_peers.clone();
            v.push(BearerSpec::Udp(u));
        }
        v.extend(self.bearers.iter().cloned());
        v
    }

    /// Opens the bearers and starts the node. An Ethernet stack must start
    /// in the interfaces' network namespace.
    ///
    /// # Errors
    /// [`Error::NoInterface`] without any bearer ([`StackBuilder::iface`],
    /// [`StackBuilder::udp`], [`StackBuilder::bearer`]; UDP peers alone
    /// are no bearer); [`Error::TooManyBearers`] for more than three;
    /// [`Error::Bearer`] when a bearer cannot open (no such interface, no
    /// permission, a bad UDP configuration, the address in use);
    /// [`Error::Pcap`].
    pub fn start(self) -> Result<Stack, Error> {
        let specs = self.bearer_specs();
        if specs.len() > tipc_link::MAX_BEARERS {
            return Err(Error::TooManyBearers);
        }
        let mut resolved = Vec::new();
        for s in &specs {
            resolved.push(s.resolve(self.net_id, self.tolerance, self.window)?);
        }
        let mut resolved = resolved.into_iter();
        let first = resolved.next().ok_or(Error::NoInterface)?;
        let media = first.settings.media;
        let node_id = match (self.node_id, self.addr, media) {
            (Some(id), _, _) => id,
            (None, Some(a), _) => NodeId::from_legacy_addr(a),
            (None, None, MediaAddr::Eth(mac)) => NodeId::from_mac(mac),
            (None, None, MediaAddr::Udp(a)) => NodeId::from_ip(a.ip()),
            (None, None, MediaAddr::Other(_)) => return Err(Error::NoInterface),
        };
        let seed = self.seed.unwrap_or_else(|| {
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            t ^ (u64::from(std::process::id()) << 32)
        });
        let tap = match &self.pcap {
            Some(p) => Tap::create(p).map_err(|source| Error::Pcap { path: p.clone(), source })?,
            None => Tap::default(),
        };
        let epoch = std::time::Instant::now();
        let key_seed = if self.keys.is_empty() { [0; 32] } else { super::os_seed()? };
        let keys = self.keys.clone();
        let rekey = self.rekey_interval.map(tipc_wire::Duration::from);
        // keys go in before any frame can leave
        let keyed = |mut core: NodeCore, now: Instant| {
            for k in &keys {
                core.set_key(now, k.clone(), key_seed);
            }
            if rekey.is_some() {
                core.set_rekey_interval(now, rekey);
            }
            core
        };
        // the bearer needs the handler, the handler needs the shared state:
        // open the bearer with a handler that holds the shared state, whose
        // core is created from the bearer's facts just before.
        let mut cfg = LinkConfig::new(node_id, media, 1500);
        cfg.net_id = self.net_id;
        cfg.tolerance = first.settings.tolerance;
        cfg.window = first.settings.window;
        cfg.priority = first.settings.priority;
        cfg.if_name = first.settings.name.clone();
        cfg.seed = seed;
        if let Some(a) = self.addr {
            cfg.addr_mode = AddrMode::Fixed(a);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                core: keyed(NodeCore::new(cfg.clone(), Instant::ZERO), Instant::ZERO),
                epoch,
                sockets: BTreeMap::new(),
                group_sockets: BTreeMap::new(),
                conn_sockets: BTreeMap::new(),
                watchers: Vec::new(),
                conflicts: std::collections::VecDeque::new(),
                subscribers: BTreeMap::new(),
                link_names: BTreeMap::new(),
                tap,
                tx: Vec::new(),
                medias: Vec::new(),
                scratch: Vec::new(),
                stopped: false,
                last_now: Instant::ZERO,
                ready: BTreeMap::new(),
                blocked: Vec::new(),
            }),
            cond: Condvar::new(),
            waker: Mutex::new(None),
            sleep_until: AtomicU64::new(0),
            poller: Mutex::new(None),
            leading: AtomicBool::new(false),
            leads_ended: AtomicU64::new(0),
            span: tracing::info_span!("tipc_node", node = %cfg.node_id),
        });
        let driver = Driver { shared: shared.clone(), bearer: 0, watch: true, leads_seen: 0, auth_warned: (0, None) };
        let bearer = Bearer::open_with_handler(first.config, driver)?;
        {
            let mut g = shared.inner.lock();
            // the bearer's facts: its MTU, and on UDP the port it got
            let info = bearer.info();
            let mtu = first.mtu_cap.map_or(info.mtu, |m| m.min(info.mtu));
            if mtu != cfg.mtu || info.media != cfg.media {
                cfg.mtu = mtu;
                cfg.media = info.media;
                let now = g.now();
                g.core = keyed(NodeCore::new(cfg, now), now);
            }
            g.tx.push(Some(bearer.tx()));
            g.medias.push(info.media);
        }
        *shared.waker.lock() = Some(bearer.waker());
        *shared.poller.lock() = Some(bearer.rx_poller());
        let mut bearers = vec![Some(bearer)];
        for r in resolved {
            match Stack::open_bearer(&shared, r) {
                Ok((id, b)) => {
                    bearers.resize_with(usize::from(id), || None);
                    bearers.push(Some(b));
                }
                Err(e) => {
                    for b in bearers.into_iter().flatten() {
                        b.shutdown();
                    }
                    return Err(e);
                }
            }
        }
        if let Some(Some(b)) = bearers.first() {
            b.waker().wake();
        }
        let bearers = Arc::new(Mutex::new(bearers));
        let control = match &self.control {
            None => None,
            Some(path) => {
                let (s, b) = (shared.clone(), bearers.clone());
                let json = move || {
                    serde_json::to_string(&super::snapshot(&s, &b))
                        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
                };
                Some(super::control::Server::start(path, json)?)
            }
        };
        Ok(Stack { shared, bearers, control: Mutex::new(control) })
    }
}
