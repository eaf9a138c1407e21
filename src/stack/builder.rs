//! Configuration and start of a [`Stack`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration as StdDuration;

use parking_lot::{Condvar, Mutex};
use tipc_bearer::{BearerConfig, EthBearer};
use tipc_link::{AddrMode, LinkConfig};
use tipc_wire::{Duration, Instant, NodeAddr, NodeId};

use super::Stack;
use super::rx::Driver;
use super::shared::{Inner, Shared};
use super::tap::Tap;
use crate::core::NodeCore;
use crate::error::Error;

/// Builds and starts a [`Stack`].
#[derive(Clone, Debug)]
pub struct StackBuilder {
    pub(super) iface: Option<String>,
    pub(super) node_id: Option<NodeId>,
    pub(super) addr: Option<NodeAddr>,
    pub(super) net_id: u32,
    pub(super) tolerance: StdDuration,
    pub(super) window: u16,
    pub(super) pcap: Option<PathBuf>,
    pub(super) seed: Option<u64>,
}

impl StackBuilder {
    /// The Ethernet interface to use (required).
    pub fn iface(mut self, name: impl Into<String>) -> Self {
        self.iface = Some(name.into());
        self
    }
    /// The node identity (default: the interface MAC followed by zeros, as the kernel does).
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

    /// Opens the bearer and starts the node. Must run in the interface's
    /// network namespace.
    pub fn start(self) -> Result<Stack, Error> {
        let iface = self.iface.ok_or(Error::NoInterface)?;
        let (_, mac) = tipc_bearer::lookup_interface(&iface)?;
        let node_id = match (self.node_id, self.addr) {
            (Some(id), _) => id,
            (None, Some(a)) => NodeId::from_legacy_addr(a),
            (None, None) => NodeId::from_mac(mac),
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
        // the bearer needs the handler, the handler needs the shared state:
        // open the bearer with a handler that holds the shared state, whose
        // core is created from the bearer's facts just before.
        let mut cfg = LinkConfig::new(node_id, mac, 1500);
        cfg.net_id = self.net_id;
        cfg.tolerance = Duration::from(self.tolerance);
        cfg.window = self.window;
        cfg.if_name = iface.clone();
        cfg.seed = seed;
        if let Some(a) = self.addr {
            cfg.addr_mode = AddrMode::Fixed(a);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                core: NodeCore::new(cfg.clone(), Instant::ZERO),
                epoch,
                sockets: BTreeMap::new(),
                group_sockets: BTreeMap::new(),
                conn_sockets: BTreeMap::new(),
                watchers: Vec::new(),
                subscribers: BTreeMap::new(),
                link_names: BTreeMap::new(),
                tap,
                tx: None,
                scratch: Vec::new(),
                stopped: false,
                last_now: Instant::ZERO,
            }),
            cond: Condvar::new(),
            waker: Mutex::new(None),
            sleep_until: AtomicU64::new(0),
            poller: Mutex::new(None),
            leading: AtomicBool::new(false),
            leads_ended: AtomicU64::new(0),
        });
        let bearer = EthBearer::open_with_handler(
            BearerConfig::new(&iface),
            Driver { shared: shared.clone(), watch: true, leads_seen: 0 },
        )?;
        {
            let mut g = shared.inner.lock();
            if bearer.info().mtu != 1500 {
                cfg.mtu = bearer.info().mtu;
                let now = g.now();
                g.core = NodeCore::new(cfg, now);
            }
            g.tx = Some(bearer.tx());
        }
        *shared.waker.lock() = Some(bearer.waker());
        *shared.poller.lock() = Some(bearer.rx_poller());
        bearer.waker().wake();
        Ok(Stack { shared, bearer: Some(bearer) })
    }
}
