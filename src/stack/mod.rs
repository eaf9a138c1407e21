//! The runtime: a [`crate::NodeCore`] driven over an Ethernet bearer, and the
//! socket handles applications use.
//!
//! Threads: the bearer's receive thread (`tipc-eth-rx:<if>`) runs the
//! protocol work for received frames and for every timer; the bearer's
//! transmit thread (`tipc-eth-tx:<if>`) sends what cannot leave at once.
//! An application thread that sends does its own protocol work under the
//! core's lock and hands its frames to the kernel itself. An application
//! thread waiting in a receive call reads the socket itself while the
//! receive thread keeps only the timers (one such thread at a time; the
//! receive thread takes the socket back within a millisecond of it
//! stopping). So neither direction pays a thread hand-off on the hot path
//! (on a 2-CPU VM one costs tens of microseconds). The lock is never held
//! across a blocking system call.
//!
//! Files: `shared` (the state the threads share under one lock, and the
//! flush that sends the core's frames and dispatches its events), `rx`
//! (the receive path: the bearer's receive thread, and the hand-over of
//! the socket reader to application threads waiting in a receive call),
//! `tap` (the pcap recording of every frame), `sockets` and `conn` (the
//! socket handles applications hold), `topology` (subscriptions to the
//! name table) and `builder` (configuration and start).

#[cfg(feature = "tokio")]
mod async_io;
mod bearers;
mod builder;
mod conn;
pub mod control;
mod ready;
mod rx;
mod shared;
mod sockets;
mod tap;
mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use tipc_bearer::Bearer;
use tipc_link::LinkInfo;
use tipc_wire::{Importance, NodeAddr, NodeId, PortId};

use crate::error::Error;
use shared::Shared;

#[cfg(feature = "tokio")]
pub use async_io::{AsyncConnSocket, AsyncGroupSocket, AsyncPortSocket};
pub use bearers::{BearerSpec, Eth, LinkSettings, Udp};
pub use builder::StackBuilder;
pub use conn::{CONNECT_TIMEOUT, ConnKind, ConnSocket};
pub use ready::ReadyFd;
pub use rx::STANDBY_LOOK;
pub use sockets::{GroupDelivery, GroupSocket, PortSocket};
pub use topology::Subscriber;

/// Node-level events an application can watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackEvent {
    /// Our address is confirmed.
    AddressConfirmed(NodeAddr),
    /// A link to a node came up.
    NodeUp(NodeAddr),
    /// The link to a node went down.
    NodeDown(NodeAddr),
    /// An address or identity conflict on the network.
    Conflict(tipc_link::Conflict),
}

/// A running TIPC node on its bearers (Ethernet interfaces, UDP sockets).
///
/// ```no_run
/// use std::time::Duration;
/// let stack = tipc_rs::Stack::builder().iface("eth0").start()?;
/// let addr = stack.wait_ready(Duration::from_secs(3))?;
/// let sock = stack.port_socket()?;
/// println!("I am {addr}, port {}", sock.id().port);
/// stack.shutdown();
/// # Ok::<(), tipc_rs::Error>(())
/// ```
pub struct Stack {
    shared: Arc<Shared>,
    /// The open bearers, by bearer id (`None`: disabled).
    bearers: Arc<parking_lot::Mutex<Vec<Option<Bearer>>>>,
    /// The control socket, when the builder asked for one (taken down by
    /// [`Stack::close`]).
    control: parking_lot::Mutex<Option<control::Server>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("address", &self.address()).finish()
    }
}

impl Stack {
    /// A builder with the kernel's defaults.
    pub fn builder() -> StackBuilder {
        StackBuilder {
            iface: None,
            udp: None,
            udp_peers: Vec::new(),
            udp_name: "udp".into(),
            node_id: None,
            addr: None,
            net_id: 4711,
            tolerance: StdDuration::from_millis(1500),
            window: 50,
            pcap: None,
            seed: None,
            bearers: Vec::new(),
            keys: Vec::new(),
            rekey_interval: None,
            control: None,
        }
    }

    /// Opens a further bearer and enables it in the core; returns it. Its
    /// receive thread runs the frames it reads through the core.
    pub(in crate::stack) fn open_bearer(shared: &Arc<Shared>, r: bearers::Resolved) -> Result<(u8, Bearer), Error> {
        let id = {
            let g = shared.inner.lock();
            let used: Vec<u8> = g.core.link().bearers().into_iter().map(|(id, _)| id).collect();
            (0..tipc_link::MAX_BEARERS as u8).find(|i| !used.contains(i)).ok_or(Error::TooManyBearers)?
        };
        let bearer = Bearer::open_with_handler(r.config, rx::PlainDriver { shared: shared.clone(), bearer: id })?;
        let info = bearer.info().clone();
        let mut settings = r.settings;
        settings.media = info.media;
        settings.mtu = r.mtu_cap.map_or(info.mtu, |m| m.min(info.mtu));
        let mut g = shared.inner.lock();
        let now = g.now();
        let got = g.core.enable_bearer(now, settings);
        match got {
            Ok(got) if got == id => {
                let ix = usize::from(id);
                if g.tx.len() <= ix {
                    g.tx.resize_with(ix + 1, || None);
                    g.medias.resize(ix + 1, info.media);
                }
                g.tx[ix] = Some(bearer.tx());
                g.medias[ix] = info.media;
                shared.flush(&mut g);
                shared.rearm(&g);
                Ok((id, bearer))
            }
            other => {
                drop(g);
                bearer.shutdown();
                Err(other.err().unwrap_or(Error::TooManyBearers))
            }
        }
    }

    /// Enables a further bearer at run time (up to three in all); returns
    /// its id. Peers found on it get a link there, a second one beside
    /// their first, and traffic moves to it by priority. An Ethernet
    /// bearer's interface is looked up and its socket opened in the
    /// calling thread's network namespace.
    ///
    /// # Errors
    /// [`Error::TooManyBearers`]; [`Error::Bearer`] when it cannot open.
    pub fn enable_bearer(&self, spec: impl Into<BearerSpec>) -> Result<u8, Error> {
        let spec = spec.into();
        let (net_id, tol, win) = {
            let g = self.shared.inner.lock();
            let c = g.core.link().config();
            (c.net_id, StdDuration::from_micros(c.tolerance.as_micros()), c.window)
        };
        let r = spec.resolve(net_id, tol, win)?;
        let mut list = self.bearers.lock();
        let (id, b) = Self::open_bearer(&self.shared, r)?;
        let ix = usize::from(id);
        if list.len() <= ix {
            list.resize_with(ix + 1, || None);
        }
        list[ix] = Some(b);
        Ok(id)
    }

    /// Disables bearer `id` at run time: its links go down, each failing
    /// over to the node's other link where there is one (nothing is lost),
    /// nothing more is sent on it, and its socket closes.
    ///
    /// # Errors
    /// [`Error::NoSuchBearer`] when `id` is not enabled.
    pub fn disable_bearer(&self, id: u8) -> Result<(), Error> {
        let mut list = self.bearers.lock();
        {
            let mut g = self.shared.inner.lock();
            let now = g.now();
            g.core.disable_bearer(now, id)?;
            self.shared.flush(&mut g);
            if let Some(t) = g.tx.get_mut(usize::from(id)) {
                *t = None;
            }
        }
        if let Some(b) = list.get_mut(usize::from(id)).and_then(Option::take) {
            b.shutdown();
        }
        Ok(())
    }

    /// Changes bearer `id`'s link settings, as `tipc bearer set` does: the
    /// fields given replace the bearer's; a new tolerance or window applies
    /// to its links at once (each peer is told the tolerance), a new
    /// priority or MTU to links made later.
    ///
    /// # Errors
    /// [`Error::NoSuchBearer`] when `id` is not enabled.
    pub fn set_bearer(&self, id: u8, changes: LinkSettings) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        let mut s = g
            .core
            .link()
            .bearers()
            .into_iter()
            .find_map(|(b, s)| (b == id).then_some(s))
            .ok_or(Error::NoSuchBearer(id))?;
        if let Some(p) = changes.priority {
            s.priority = p.min(tipc_link::MAX_PRIORITY);
        }
        if let Some(t) = changes.tolerance {
            s.tolerance = tipc_wire::Duration::from(t);
        }
        if let Some(w) = changes.window {
            s.window = w;
        }
        if let Some(m) = changes.mtu {
            s.mtu = m.min(s.mtu);
        }
        let now = g.now();
        g.core.update_bearer(now, id, s)?;
        self.shared.flush(&mut g);
        Ok(())
    }

    /// The enabled bearers: id, settings (name, own media address, MTU,
    /// priority, tolerance, window) and counters.
    pub fn bearers(&self) -> Vec<crate::stats::BearerRow> {
        bearer_rows(&self.shared, &self.bearers)
    }

    /// Our address, once the address trial is over.
    pub fn address(&self) -> Option<NodeAddr> {
        self.shared.inner.lock().core.address()
    }
    /// Our identity.
    pub fn node_id(&self) -> NodeId {
        self.shared.inner.lock().core.link().config().node_id
    }

    /// Waits until our address is confirmed.
    pub fn wait_ready(&self, timeout: StdDuration) -> Result<NodeAddr, Error> {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.inner.lock();
        loop {
            if let Some(a) = g.core.address() {
                return Ok(a);
            }
            if self.shared.cond.wait_until(&mut g, deadline).timed_out() {
                return g.core.address().ok_or(Error::Timeout);
            }
        }
    }

    /// Waits until at least `n` nodes have links up; returns them.
    pub fn wait_for_nodes(&self, n: usize, timeout: StdDuration) -> Result<Vec<NodeAddr>, Error> {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.inner.lock();
        loop {
            let up = g.core.link().up_nodes();
            if up.len() >= n {
                return Ok(up);
            }
            if self.shared.cond.wait_until(&mut g, deadline).timed_out() {
                return Err(Error::Timeout);
            }
        }
    }

    /// Nodes with links up.
    pub fn up_nodes(&self) -> Vec<NodeAddr> {
        self.shared.inner.lock().core.link().up_nodes()
    }
    /// Link details, for statistics.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.shared.inner.lock().core.link().links()
    }
    /// Bearer 0's counters.
    pub fn bearer_stats(&self) -> Option<tipc_bearer::BearerStats> {
        self.bearers.lock().first().and_then(Option::as_ref).map(Bearer::stats)
    }

    /// A snapshot of links, group members, names and counters; its
    /// `Display` prints it as tables.
    pub fn stats(&self) -> crate::stats::StackStats {
        snapshot(&self.shared, &self.bearers)
    }

    /// Sets a key as `tipc node set key` does ([`tipc_crypto::KeySpec`]:
    /// its text form is that command's arguments). From now on every frame
    /// this node sends is encrypted (AES-GCM, as Linux 6.1 does it) and
    /// every frame received without valid authentication is dropped and
    /// counted ([`Stack::crypto_stats`]). With a master key a session key
    /// is made at once and handed to every node.
    ///
    /// # Errors
    /// [`Error::Entropy`] if the operating system's random generator fails
    /// (session keys are drawn from it).
    pub fn set_key(&self, spec: tipc_crypto::KeySpec) -> Result<(), Error> {
        let seed = os_seed()?;
        let mut g = self.shared.inner.lock();
        let now = g.now();
        g.core.set_key(now, spec, seed);
        self.shared.flush(&mut g);
        Ok(())
    }

    /// Makes and hands out a new session key now (`tipc node set key
    /// rekeying now`); every node switches to it without loss. False if
    /// skipped (no key set, or the last new key is still pending).
    pub fn rekey(&self) -> bool {
        let mut g = self.shared.inner.lock();
        let now = g.now();
        let made = g.core.rekey(now);
        self.shared.flush(&mut g);
        made
    }

    /// Rekeys every `every` (`tipc node set key rekeying MINUTES`); `None`
    /// stops it.
    pub fn set_rekey_interval(&self, every: Option<std::time::Duration>) {
        let mut g = self.shared.inner.lock();
        let now = g.now();
        g.core.set_rekey_interval(now, every.map(tipc_wire::Duration::from));
    }

    /// Removes every key (`tipc node flush key`): frames go out clear again.
    pub fn flush_keys(&self) {
        self.shared.inner.lock().core.flush_keys();
    }

    /// (the slot of our key `node` reads with, the slot of its key we
    /// read with); 0 for none: how the key exchange with `node` stands.
    pub fn key_slots(&self, node: NodeAddr) -> (u8, u8) {
        self.shared.inner.lock().core.link().key_slots(node)
    }

    /// The encryption counters.
    pub fn crypto_stats(&self) -> tipc_crypto::CryptoStats {
        self.shared.inner.lock().core.link().crypto_stats()
    }

    /// A channel of node-level events: first what already holds — the
    /// latest conflicts reported (up to 64, oldest first; those of the
    /// address trial come before anyone can subscribe), our address once
    /// confirmed, the nodes up — then every event from now on.
    pub fn events(&self) -> Receiver<StackEvent> {
        let (s, r) = unbounded();
        let mut g = self.shared.inner.lock();
        for c in &g.conflicts {
            let _ = s.send(StackEvent::Conflict(c.clone()));
        }
        if let Some(a) = g.core.address() {
            let _ = s.send(StackEvent::AddressConfirmed(a));
        }
        for n in g.core.link().up_nodes() {
            let _ = s.send(StackEvent::NodeUp(n));
        }
        g.watchers.push(s);
        r
    }

    /// Opens a socket addressed by port id (RDM-like, connectionless).
    pub fn port_socket(&self) -> Result<PortSocket, Error> {
        let (port, rx) = self.open(|g| &mut g.sockets, false)?;
        Ok(PortSocket {
            shared: self.shared.clone(),
            port,
            rx,
            importance: parking_lot::Mutex::new(Importance::Low),
            ready: std::sync::OnceLock::new(),
        })
    }

    /// Opens a socket for a communication group (join it with [`GroupSocket::join`]).
    pub fn group_socket(&self) -> Result<GroupSocket, Error> {
        let (port, rx) = self.open(|g| &mut g.group_sockets, false)?;
        Ok(GroupSocket {
            shared: self.shared.clone(),
            port,
            rx,
            importance: parking_lot::Mutex::new(Importance::Low),
            ready: std::sync::OnceLock::new(),
        })
    }

    /// Opens a connection socket, SEQPACKET or STREAM: a server binds it,
    /// listens and accepts; a client connects it.
    ///
    /// # Errors
    /// [`Error::StackStopped`].
    pub fn conn_socket(&self, kind: ConnKind) -> Result<ConnSocket, Error> {
        let (port, rx) = self.open(|g| &mut g.conn_sockets, true)?;
        Ok(ConnSocket::new(self.shared.clone(), port, kind, rx))
    }

    /// Opens a port (a connection socket's when `conn`) and registers its
    /// delivery queue in `table`.
    fn open<T>(
        &self,
        table: impl FnOnce(&mut shared::Inner) -> &mut BTreeMap<PortId, Sender<T>>,
        conn: bool,
    ) -> Result<(PortId, Receiver<T>), Error> {
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return Err(Error::StackStopped);
        }
        let port = if conn { g.core.open_conn_port() } else { g.core.open_port() };
        let (s, r) = unbounded();
        table(&mut g).insert(port, s);
        Ok((port, r))
    }

    /// Subscribes to the name table — the kernel's topology service, with
    /// its filters, timeout and events (net/tipc/topsrv.c, subscr.c): what
    /// exists is reported at once as [`EventKind::Published`] (oldest
    /// binding first), then every change the filter asks for; a timeout
    /// ends it with one [`EventKind::Timeout`]. Node state
    /// ([`Subscription::nodes`]) and link state ([`Subscription::links`];
    /// [`Stack::link_name`] names a link) are subscriptions like any other.
    ///
    /// # Errors
    /// [`Error::BadRange`] (lower above upper),
    /// [`Error::TooManySubscriptions`], [`Error::StackStopped`].
    ///
    /// [`EventKind::Published`]: tipc_group::topology::EventKind::Published
    /// [`EventKind::Timeout`]: tipc_group::topology::EventKind::Timeout
    /// [`Subscription::nodes`]: tipc_group::topology::Subscription::nodes
    /// [`Subscription::links`]: tipc_group::topology::Subscription::links
    pub fn subscribe(&self, s: tipc_group::topology::Subscription) -> Result<Subscriber, Error> {
        let (tx, rx) = unbounded();
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return Err(Error::StackStopped);
        }
        let now = g.now();
        let id = g.core.subscribe(now, s)?;
        g.subscribers.insert(id, tx);
        // the initial report goes out now; a timeout may wake the timers
        self.shared.flush(&mut g);
        self.shared.rearm(&g);
        Ok(Subscriber::new(self.shared.clone(), id, rx))
    }

    /// The name of the link a link-state event names — `peer` is its found
    /// instance, `link_id` its port — in the kernel's form
    /// (`OWN_ID:OWN_IF-PEER_ID:PEER_IF`, [`LinkInfo::name`]); still known
    /// after the link went down. `None` for a link this stack never had.
    pub fn link_name(&self, peer: NodeAddr, link_id: PortId) -> Option<String> {
        self.shared.inner.lock().link_names.get(&(peer, link_id)).cloned()
    }

    /// The name table as (range, scope, node, port) rows, for inspection.
    pub fn name_table(&self) -> Vec<tipc_group::Publication> {
        self.shared.inner.lock().core.names().iter().copied().collect()
    }

    /// Leaves the network cleanly and joins the threads: first waits (up to
    /// 3 s) until everything sent has been acknowledged, then sends
    /// peer-stopping RESETs so kernel peers drop the link at once.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Stops dead, sending nothing — what peers see when the process is
    /// killed (they notice through link supervision, within the tolerance).
    pub fn kill(self) {
        drop(self.control.lock().take());
        {
            let mut g = self.shared.inner.lock();
            g.stopped = true;
            g.sockets.clear();
            g.group_sockets.clear();
            g.conn_sockets.clear();
            g.watchers.clear();
            g.tx.clear();
            g.wake_all_ready();
            self.shared.cond.notify_all();
        }
        for b in std::mem::take(&mut *self.bearers.lock()).into_iter().flatten() {
            b.shutdown();
        }
    }

    /// Leaves the network now, from any thread, without consuming the
    /// stack: waits (up to 3 s) until everything sent has been
    /// acknowledged, sends peer-stopping RESETs (peers drop the link at
    /// once, so group members on this node are LEFT for them at once),
    /// flushes the pcap file, and wakes every blocked call, which then
    /// returns [`Error::StackStopped`]. Statistics stay readable in the
    /// process; the control socket, if any, is taken down first (its file
    /// removed). The threads are joined when the stack is dropped. Meant
    /// for a signal handler's thread; calling it again does nothing.
    pub fn close(&self) {
        // the inspector goes first, and its socket file with it
        drop(self.control.lock().take());
        let first = {
            let deadline = std::time::Instant::now() + StdDuration::from_secs(3);
            let mut g = self.shared.inner.lock();
            while !g.stopped && !g.core.all_acked() && std::time::Instant::now() < deadline {
                let _ = self.shared.cond.wait_for(&mut g, StdDuration::from_millis(5));
            }
            let first = !g.stopped;
            if first {
                let now = g.now();
                g.core.shutdown(now);
                self.shared.flush(&mut g);
                g.stopped = true;
                g.sockets.clear();
                g.group_sockets.clear();
                g.watchers.clear();
                g.wake_all_ready();
            }
            self.shared.cond.notify_all();
            first
        };
        if !first {
            return;
        }
        // let the transmit thread send the goodbyes
        std::thread::sleep(StdDuration::from_millis(20));
        self.shared.inner.lock().tap.close();
    }

    fn stop(&mut self) {
        self.close();
        for b in std::mem::take(&mut *self.bearers.lock()).into_iter().flatten() {
            b.shutdown();
        }
        self.shared.inner.lock().tx.clear();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

type Bearers = parking_lot::Mutex<Vec<Option<Bearer>>>;

/// The enabled bearers with settings and counters ([`Stack::bearers`]).
fn bearer_rows(shared: &Shared, bearers: &Bearers) -> Vec<crate::stats::BearerRow> {
    let settings = shared.inner.lock().core.link().bearers();
    let list = bearers.lock();
    settings
        .into_iter()
        .map(|(id, s)| {
            let b = list.get(usize::from(id)).and_then(Option::as_ref);
            crate::stats::BearerRow {
                id,
                stats: b.map(Bearer::stats),
                replicast: b.map(Bearer::replicast_peers).unwrap_or_default(),
                settings: s,
            }
        })
        .collect()
}

/// The node's statistics ([`Stack::stats`]; the control socket's answer).
fn snapshot(shared: &Shared, bearers: &Bearers) -> crate::stats::StackStats {
    let (bearer, bearer_info) = {
        let list = bearers.lock();
        let first = list.first().and_then(Option::as_ref);
        (first.map(Bearer::stats), first.map(|b| b.info().clone()))
    };
    let rows = bearer_rows(shared, bearers);
    let g = shared.inner.lock();
    let core = &g.core;
    crate::stats::StackStats {
        node_id: core.link().config().node_id,
        address: core.address(),
        links: core.link().links(),
        bcast: core.link().bcast_stats(),
        members: core.sockets().member_stats(),
        sockets: core.sockets().socket_list(),
        names: core.names().iter().copied().collect(),
        bearer,
        bearer_info,
        bearers: rows,
        layer: core.link().stats(),
        core: core.stats(),
        crypto: core.link().crypto_stats(),
    }
}

/// 32 bytes from the operating system's random generator.
pub(crate) fn os_seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Entropy(e.to_string()))?;
    Ok(seed)
}
