//! The runtime: a [`NodeCore`] driven over an Ethernet bearer, and the
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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use parking_lot::{Condvar, Mutex, MutexGuard};
use tipc_bearer_eth::{BearerConfig, EthBearer, RxFrame, RxHandler, RxPoller, TxFrame, TxHandle, Waker};
use tipc_link::{AddrMode, LinkConfig, LinkInfo};
use tipc_wire::pcap::PcapSink;
use tipc_wire::{Duration, EthFrame, Importance, Instant, MemberId, NodeAddr, NodeId, PortId};

use crate::core::{CoreEvent, NodeCore, PortMessage};
use crate::error::Error;
use tipc_group::{GroupEvent, GroupSpec, Mode};
use tipc_wire::{Instance, Scope, ServiceRange, ServiceType};

/// A change of the name table inside a subscribed range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A binding appeared (or existed when the subscription was made).
    Up(tipc_group::Publication),
    /// A binding went away.
    Down(tipc_group::Publication),
}

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
    Conflict(String),
}

struct Inner {
    core: NodeCore,
    epoch: std::time::Instant,
    sockets: BTreeMap<PortId, Sender<PortMessage>>,
    group_sockets: BTreeMap<PortId, Sender<GroupEvent>>,
    watchers: Vec<Sender<StackEvent>>,
    subscribers: Vec<(ServiceRange, Sender<ServiceEvent>)>,
    pcap: Option<PcapSink<std::io::BufWriter<std::fs::File>>>,
    tx: Option<TxHandle>,
    scratch: Vec<TxFrame>,
    stopped: bool,
    /// The latest time given to the core.
    last_now: Instant,
}

impl Inner {
    fn now(&mut self) -> Instant {
        self.now_at(std::time::Instant::now())
    }
    /// The core's time for the moment `t`, never earlier than a time the
    /// core was already given.
    fn now_at(&mut self, t: std::time::Instant) -> Instant {
        let now = Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64).max(self.last_now);
        self.last_now = now;
        now
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// Signalled when congestion clears, a node goes down or the stack stops.
    cond: Condvar,
    waker: Mutex<Option<Waker>>,
    /// When the receive thread will next look at timers (µs since epoch).
    sleep_until: AtomicU64,
    /// The socket reader an application thread borrows while it waits in a
    /// receive call: whoever holds this lock reads the frames itself.
    poller: Mutex<Option<RxPoller>>,
    /// Whether an application thread is reading the socket (the receive
    /// thread then only keeps the timers).
    leading: AtomicBool,
    /// How many times an application thread has stopped reading the socket.
    leads_ended: AtomicU64,
}

impl Shared {
    /// Runs a send on the core, waiting (per `deadline`: `None` = fail at
    /// once, `Some(None)` = forever, `Some(Some(t))` = until `t`) while it
    /// reports congestion.
    fn send_with(
        &self,
        deadline: Option<Option<std::time::Instant>>,
        mut f: impl FnMut(&mut NodeCore, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut g = self.inner.lock();
        loop {
            if g.stopped {
                return Err(Error::StackStopped);
            }
            let now = g.now();
            let r = f(&mut g.core, now);
            self.flush(&mut g);
            self.rearm(&g);
            match r {
                Err(Error::WouldBlock(n)) => match deadline {
                    None => return Err(Error::WouldBlock(n)),
                    Some(None) => {
                        let _ = self.cond.wait_for(&mut g, StdDuration::from_millis(50));
                    }
                    Some(Some(d)) => {
                        if std::time::Instant::now() >= d {
                            return Err(Error::Timeout);
                        }
                        let _ = self
                            .cond
                            .wait_until(&mut g, d.min(std::time::Instant::now() + StdDuration::from_millis(50)));
                    }
                },
                other => return other,
            }
        }
    }

    /// Runs received frames through the core and dispatches the results;
    /// `at` is when they were received, if known (saves a clock read).
    fn handle_frames(&self, frames: &mut Vec<RxFrame>, at: Option<std::time::Instant>) {
        let mut g = self.inner.lock();
        if g.stopped {
            frames.clear();
            return;
        }
        let now = match at {
            Some(t) => g.now_at(t),
            None => g.now(),
        };
        let own_mac = g.core.mac();
        for f in frames.drain(..) {
            if let Some(p) = g.pcap.as_mut() {
                let dst = if f.broadcast { tipc_wire::MacAddr::BROADCAST } else { own_mac };
                let fr = EthFrame::build(dst, f.src, &f.msg);
                let _ = p.write_frame(Duration::from_micros(now.as_micros()), &fr);
            }
            g.core.handle_frame(now, f.src, f.msg);
        }
        self.flush(&mut g);
    }

    /// Waits for the next item of a socket's queue for at most `timeout`
    /// (`None`: forever). If no other thread is doing so, the waiting thread reads
    /// the bearer's socket itself and runs the frames through the core, so
    /// a reply to a request reaches it without a hand-off from the receive
    /// thread (which meanwhile keeps only the timers). Frames that arrive
    /// while no thread waits in a receive call wait for the next reader or
    /// the receive thread: at most two [`STANDBY_LOOK`]s.
    fn recv_on<T>(&self, rx: &Receiver<T>, timeout: Option<StdDuration>) -> Result<T, RecvTimeoutError> {
        // an item already waiting costs no clock read
        if let Some(r) = ready(rx, None) {
            return r;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(mut guard) = self.poller.try_lock()
                && let Some(poller) = guard.as_mut()
            {
                self.leading.store(true, Ordering::Release);
                let r = self.lead(poller, rx, deadline);
                self.leading.store(false, Ordering::Release);
                if let Some(r) = r {
                    self.leads_ended.fetch_add(1, Ordering::Release);
                    return r;
                }
            }
            // another thread reads the socket (or reading failed): wait for
            // the item to be handed over, in slices, to take over if it stops
            let slice = tipc_bearer_eth::POLLER_WAIT;
            let wait = deadline.map_or(slice, |d| d.saturating_duration_since(std::time::Instant::now()).min(slice));
            match rx.recv_timeout(wait) {
                Ok(v) => return Ok(v),
                Err(RecvTimeoutError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(r) = ready(rx, deadline) {
                return r;
            }
        }
    }

    /// Reads the socket until `rx` has an item, is closed (the stack
    /// stopped: its senders are dropped) or `deadline` passes; `None` if the
    /// receive thread is reading (it hands the item over) or the socket
    /// failed (left to the receive thread).
    fn lead<T>(
        &self,
        poller: &mut RxPoller,
        rx: &Receiver<T>,
        deadline: Option<std::time::Instant>,
    ) -> Option<Result<T, RecvTimeoutError>> {
        // the caller has just computed the deadline: no clock read the first time
        let mut check = None;
        loop {
            if let Some(r) = ready(rx, check) {
                return Some(r);
            }
            check = deadline;
            poller.recv(|frames, at| self.handle_frames(frames, at)).ok()?;
        }
    }

    /// Sends what the core queued and dispatches its events. Called with the lock held.
    fn flush(&self, g: &mut MutexGuard<'_, Inner>) {
        let inner = &mut **g;
        while let Some(t) = inner.core.poll_transmit() {
            if let Some(p) = inner.pcap.as_mut() {
                let f = EthFrame::build(t.dst, inner.core.mac(), &t.msg);
                let _ = p.write_frame(Duration::from_micros(inner.epoch.elapsed().as_micros() as u64), &f);
            }
            inner.scratch.push(TxFrame { dst: t.dst, msg: t.msg });
        }
        if !inner.scratch.is_empty() {
            if let Some(tx) = inner.tx.as_ref() {
                if inner.scratch.len() == 1 {
                    // one frame: a single sendmsg, no batch bookkeeping
                    if let Some(f) = inner.scratch.pop() {
                        let _ = tx.send(f.dst, f.msg);
                    }
                } else {
                    let _ = tx.send_burst(&mut inner.scratch);
                }
            }
            inner.scratch.clear();
        }
        let mut notify = false;
        while let Some(ev) = inner.core.poll_event() {
            let sev = match ev {
                CoreEvent::Message(m) => {
                    if let Some(s) = inner.sockets.get(&m.port) {
                        let _ = s.send(m);
                    }
                    None
                }
                CoreEvent::Group { port, event } => {
                    if let Some(s) = inner.group_sockets.get(&port) {
                        let _ = s.send(event);
                    }
                    None
                }
                CoreEvent::AddressConfirmed(a) => Some(StackEvent::AddressConfirmed(a)),
                CoreEvent::NodeUp(a) => Some(StackEvent::NodeUp(a)),
                CoreEvent::NodeDown(a) => {
                    notify = true;
                    Some(StackEvent::NodeDown(a))
                }
                CoreEvent::Uncongested(_) => {
                    notify = true;
                    None
                }
                CoreEvent::Conflict(s) => Some(StackEvent::Conflict(s)),
                CoreEvent::Name(up, p) => {
                    inner.subscribers.retain(|(r, tx)| {
                        !r.overlaps(&p.range)
                            || tx.send(if up { ServiceEvent::Up(p) } else { ServiceEvent::Down(p) }).is_ok()
                    });
                    None
                }
            };
            if let Some(e) = sev {
                inner.watchers.retain(|w| w.send(e.clone()).is_ok());
                notify = true;
            }
        }
        if notify {
            self.cond.notify_all();
        }
    }

    /// After work done outside the receive thread: wake it if a timer moved
    /// earlier — except the fast probe of freshly sent data, which waits for
    /// the receive thread's next turn (at most one supervision tick), so a
    /// send costs no wake-up of another thread.
    fn rearm(&self, g: &MutexGuard<'_, Inner>) {
        if let Some((_, t)) = g.core.next_timer(|k| !k.is_fast_probe())
            && t.as_micros() < self.sleep_until.load(Ordering::Acquire)
            && let Some(w) = self.waker.lock().as_ref()
        {
            w.wake();
        }
    }
}

/// How often the receive thread looks whether application threads still
/// read the socket; it takes over after a quiet turn of this length.
/// Frames that arrive while no thread waits in a receive call wait at most
/// two of these.
pub const STANDBY_LOOK: StdDuration = StdDuration::from_millis(4);

/// Runs on the bearer's receive thread.
struct Driver {
    shared: Arc<Shared>,
    /// Whether the receive thread reads the socket in its next wait.
    watch: bool,
    /// `leads_ended` when it last looked.
    leads_seen: u64,
}

impl RxHandler for Driver {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, _tx: &TxHandle) {
        self.shared.handle_frames(frames, None);
    }

    fn on_wake(&mut self, _tx: &TxHandle) -> Option<StdDuration> {
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return None;
        }
        let now = g.now();
        if g.core.poll_timeout().is_some_and(|t| t <= now) {
            g.core.handle_timeout(now);
            self.shared.flush(&mut g);
        }
        let next = g.core.poll_timeout();
        self.shared.sleep_until.store(next.map_or(u64::MAX, |t| t.as_micros()), Ordering::Release);
        // while packets are unacknowledged, look again soon (fast probes)
        let next = match next {
            Some(t) if !g.core.all_acked() => Some(t.min(now + tipc_link::FAST_PROBE)),
            other => other,
        };
        let wait = next.map(|t| StdDuration::from_micros(t.as_micros().saturating_sub(now.as_micros())));
        // Application threads read the socket themselves while they wait in
        // a receive call. The receive thread reads it only once none has
        // for a whole turn (none is reading now and none stopped since its
        // last look); otherwise it looks again after STANDBY_LOOK in case
        // they stop. Taking turns with threads that come back to their
        // receive calls all the time would steal their frames and cost
        // hand-offs, and looking more often costs them latency (measured:
        // 1 ms looks made the median round trip 1.6 µs slower than 4 ms).
        let ended = self.shared.leads_ended.load(Ordering::Acquire);
        self.watch = !self.shared.leading.load(Ordering::Acquire) && ended == self.leads_seen;
        self.leads_seen = ended;
        if self.watch { wait } else { Some(wait.map_or(STANDBY_LOOK, |w| w.min(STANDBY_LOOK))) }
    }

    fn wants_wakeups(&self) -> bool {
        true
    }

    fn poll_socket(&self) -> bool {
        self.watch
    }
}

/// An item of `rx` if one is waiting, or the end of waiting (the queue is
/// closed or `deadline` passed); `None` to go on waiting.
fn ready<T>(rx: &Receiver<T>, deadline: Option<std::time::Instant>) -> Option<Result<T, RecvTimeoutError>> {
    match rx.try_recv() {
        Ok(v) => Some(Ok(v)),
        Err(crossbeam_channel::TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        Err(crossbeam_channel::TryRecvError::Empty) => {
            deadline.is_some_and(|d| std::time::Instant::now() >= d).then_some(Err(RecvTimeoutError::Timeout))
        }
    }
}

fn recv_error(e: RecvTimeoutError) -> Error {
    match e {
        RecvTimeoutError::Timeout => Error::Timeout,
        RecvTimeoutError::Disconnected => Error::StackStopped,
    }
}

/// Builds and starts a [`Stack`].
#[derive(Clone, Debug)]
pub struct StackBuilder {
    iface: Option<String>,
    node_id: Option<NodeId>,
    addr: Option<NodeAddr>,
    net_id: u32,
    tolerance: StdDuration,
    window: u16,
    pcap: Option<PathBuf>,
    seed: Option<u64>,
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
        let iface = self.iface.ok_or(Error::Config("an interface is required (StackBuilder::iface)".into()))?;
        let (_, mac) = tipc_bearer_eth::lookup_interface(&iface)?;
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
        let pcap = match &self.pcap {
            Some(p) => Some(PcapSink::create(p).map_err(|e| Error::Config(format!("pcap {}: {e}", p.display())))?),
            None => None,
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
                watchers: Vec::new(),
                subscribers: Vec::new(),
                pcap,
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

/// A running TIPC node on one Ethernet interface.
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
    bearer: Option<EthBearer>,
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
            node_id: None,
            addr: None,
            net_id: 4711,
            tolerance: StdDuration::from_millis(1500),
            window: 50,
            pcap: None,
            seed: None,
        }
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
    /// Bearer counters.
    pub fn bearer_stats(&self) -> Option<tipc_bearer_eth::BearerStats> {
        self.bearer.as_ref().map(EthBearer::stats)
    }

    /// A snapshot of links, group members, names and counters; its
    /// `Display` prints it as tables.
    pub fn stats(&self) -> crate::stats::StackStats {
        let bearer = self.bearer_stats();
        let g = self.shared.inner.lock();
        let core = &g.core;
        let members = g
            .group_sockets
            .keys()
            .filter_map(|p| core.group(*p).map(|gr| (*p, gr)))
            .flat_map(|(p, gr)| {
                gr.members().map(move |(id, m)| crate::stats::MemberStats {
                    socket: p,
                    member: *id,
                    instance: m.instance.0,
                    state: m.state,
                    window: m.window,
                    advertised: m.advertised,
                    queued: m.unread,
                })
            })
            .collect();
        crate::stats::StackStats {
            node_id: core.link().config().node_id,
            address: core.address(),
            links: core.link().links(),
            bcast: core.link().bcast_stats(),
            members,
            names: core.names().iter().copied().collect(),
            bearer,
            layer: core.link().stats(),
            core: core.stats(),
        }
    }

    /// A channel of node-level events from now on.
    pub fn events(&self) -> Receiver<StackEvent> {
        let (s, r) = unbounded();
        let mut g = self.shared.inner.lock();
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
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return Err(Error::StackStopped);
        }
        let port = g.core.open_port();
        let (s, r) = unbounded();
        g.sockets.insert(port, s);
        Ok(PortSocket { shared: self.shared.clone(), port, rx: r })
    }

    /// Opens a socket for a communication group (join it with [`GroupSocket::join`]).
    pub fn group_socket(&self) -> Result<GroupSocket, Error> {
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return Err(Error::StackStopped);
        }
        let port = g.core.open_port();
        let (s, r) = unbounded();
        g.group_sockets.insert(port, s);
        Ok(GroupSocket { shared: self.shared.clone(), port, rx: r })
    }

    /// Watches the name table for bindings overlapping `range`: existing
    /// ones arrive first as [`ServiceEvent::Up`], then every change.
    pub fn subscribe(&self, range: ServiceRange) -> Receiver<ServiceEvent> {
        let (s, r) = unbounded();
        let mut g = self.shared.inner.lock();
        for p in g.core.names().iter().filter(|p| p.range.overlaps(&range)) {
            let _ = s.send(ServiceEvent::Up(*p));
        }
        g.subscribers.push((range, s));
        r
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
    pub fn kill(mut self) {
        {
            let mut g = self.shared.inner.lock();
            g.stopped = true;
            g.sockets.clear();
            g.group_sockets.clear();
            g.watchers.clear();
            g.tx = None;
            self.shared.cond.notify_all();
        }
        if let Some(b) = self.bearer.take() {
            b.shutdown();
        }
    }

    /// Leaves the network now, from any thread, without consuming the
    /// stack: waits (up to 3 s) until everything sent has been
    /// acknowledged, sends peer-stopping RESETs (peers drop the link at
    /// once, so group members on this node are LEFT for them at once),
    /// flushes the pcap file, and wakes every blocked call, which then
    /// returns [`Error::StackStopped`]. Statistics stay readable. The
    /// threads are joined when the stack is dropped. Meant for a signal
    /// handler's thread; calling it again does nothing.
    pub fn close(&self) {
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
            }
            self.shared.cond.notify_all();
            first
        };
        if !first {
            return;
        }
        // let the transmit thread send the goodbyes
        std::thread::sleep(StdDuration::from_millis(20));
        let mut g = self.shared.inner.lock();
        if let Some(p) = g.pcap.take() {
            let _ = std::io::Write::flush(&mut p.into_inner());
        }
    }

    fn stop(&mut self) {
        self.close();
        if let Some(b) = self.bearer.take() {
            b.shutdown();
        }
        self.shared.inner.lock().tx = None;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A connectionless socket addressed by (node, port).
pub struct PortSocket {
    shared: Arc<Shared>,
    port: PortId,
    rx: Receiver<PortMessage>,
}

impl std::fmt::Debug for PortSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSocket({})", self.port)
    }
}

impl PortSocket {
    /// Our socket address (node is 0 until the address is confirmed).
    pub fn id(&self) -> MemberId {
        let node = self.shared.inner.lock().core.address().unwrap_or_default();
        MemberId { node, port: self.port }
    }

    fn send_inner(
        &self,
        node: NodeAddr,
        port: PortId,
        data: Bytes,
        deadline: Option<Option<std::time::Instant>>,
        returnable: bool,
    ) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_with(deadline, |core, now| {
            core.send_direct(now, me, node, port, data.clone(), Importance::Low, returnable)
        })
    }

    /// Binds a service range to this socket (scope node or cluster).
    pub fn bind(&self, range: ServiceRange, scope: Scope) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        g.core.bind(self.port, range, scope)?;
        self.shared.flush(&mut g);
        Ok(())
    }
    /// Chooses how this socket's multicasts travel.
    pub fn set_mcast_method(&self, m: crate::core::McastMethod) {
        self.shared.inner.lock().core.set_mcast_method(self.port, m);
    }
    /// Withdraws a binding.
    pub fn unbind(&self, range: ServiceRange) {
        let mut g = self.shared.inner.lock();
        g.core.unbind(self.port, range);
        self.shared.flush(&mut g);
    }
    /// Anycast to a service (one socket bound to `inst`, round robin),
    /// waiting while congested. `returnable` asks for it back if undeliverable.
    pub fn send_to_name(&self, stype: ServiceType, inst: Instance, data: Bytes, returnable: bool) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_with(Some(None), |core, now| {
            core.send_named(now, me, stype, inst, data.clone(), Importance::Low, returnable)
        })
    }
    /// Multicast to every socket bound in a range, waiting while congested.
    pub fn send_to_range(&self, range: ServiceRange, data: Bytes) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_with(Some(None), |core, now| core.send_range(now, me, range, data.clone(), Importance::Low))
    }

    /// Sends to a socket, waiting while the link is congested.
    pub fn send_to(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, Some(None), false)
    }
    /// Like [`PortSocket::send_to`], but asks for the message back (NO_PORT)
    /// if nobody is at the destination.
    pub fn send_to_returnable(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, Some(None), true)
    }
    /// Sends, or fails with [`Error::WouldBlock`] at once if the link is congested.
    pub fn try_send_to(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, None, false)
    }
    /// Sends, waiting at most `timeout` for congestion to clear.
    pub fn send_to_timeout(
        &self,
        node: NodeAddr,
        port: PortId,
        data: Bytes,
        timeout: StdDuration,
    ) -> Result<(), Error> {
        self.send_inner(node, port, data, Some(Some(std::time::Instant::now() + timeout)), false)
    }

    /// Waits for the next message.
    pub fn recv(&self) -> Result<PortMessage, Error> {
        self.shared.recv_on(&self.rx, None).map_err(|_| Error::StackStopped)
    }
    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<PortMessage, Error> {
        self.shared.recv_on(&self.rx, Some(timeout)).map_err(recv_error)
    }
    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Option<PortMessage> {
        self.rx.try_recv().ok()
    }
}

impl Drop for PortSocket {
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.sockets.remove(&self.port);
        g.core.close_port(self.port);
    }
}

/// A message or member event received on a group socket.
pub type GroupDelivery = GroupEvent;

/// A socket in a TIPC communication group.
///
/// ```no_run
/// use std::time::Duration;
/// use tipc_rs::{GroupEvent, GroupSpec, Scope, Stack};
/// use tipc_rs::wire::{Instance, ServiceType};
/// let stack = Stack::builder().iface("eth0").start()?;
/// stack.wait_ready(Duration::from_secs(3))?;
/// let sock = stack.group_socket()?;
/// sock.join(GroupSpec { stype: ServiceType(4242), instance: Instance(7), scope: Scope::Cluster,
///                       loopback: false, member_events: true })?;
/// sock.broadcast(bytes::Bytes::from_static(b"hello"))?;
/// match sock.recv()? {
///     GroupEvent::MemberUp { member, instance } => println!("{member} joined as {instance}"),
///     GroupEvent::Message { from, data, .. } => println!("{} bytes from {from}", data.len()),
///     other => println!("{other:?}"),
/// }
/// # Ok::<(), tipc_rs::Error>(())
/// ```
pub struct GroupSocket {
    shared: Arc<Shared>,
    port: PortId,
    rx: Receiver<GroupEvent>,
}

impl std::fmt::Debug for GroupSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupSocket({})", self.port)
    }
}

impl GroupSocket {
    /// Our socket address.
    pub fn id(&self) -> MemberId {
        let node = self.shared.inner.lock().core.address().unwrap_or_default();
        MemberId { node, port: self.port }
    }
    /// Chooses how this socket's broadcasts and multicasts travel (a
    /// mandatory replicast after a unicast is kept regardless).
    pub fn set_mcast_method(&self, m: crate::core::McastMethod) {
        self.shared.inner.lock().core.set_mcast_method(self.port, m);
    }
    /// Joins a group (one group per socket).
    pub fn join(&self, spec: GroupSpec) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        g.core.group_join(self.port, spec)?;
        self.shared.flush(&mut g);
        Ok(())
    }
    /// Leaves the group.
    pub fn leave(&self) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        g.core.group_leave(self.port)?;
        self.shared.flush(&mut g);
        Ok(())
    }
    /// Members currently joined (other than us).
    pub fn members(&self) -> Vec<(MemberId, Instance)> {
        let g = self.shared.inner.lock();
        g.core
            .group(self.port)
            .map(|gr| {
                gr.members()
                    .filter(|(_, m)| {
                        !matches!(
                            m.state,
                            tipc_group::MemberState::Joining
                                | tipc_group::MemberState::Published
                                | tipc_group::MemberState::Leaving
                        )
                    })
                    .map(|(id, m)| (*id, m.instance))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn send(
        &self,
        mode: Mode,
        to: Option<MemberId>,
        inst: Instance,
        data: Bytes,
        deadline: Option<Option<std::time::Instant>>,
    ) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_with(deadline, |core, now| core.group_send(now, me, mode, to, inst, data.clone()))
    }

    /// Unicast to a member's socket; waits while its window is exhausted.
    pub fn send_unicast(&self, to: MemberId, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Unicast, Some(to), Instance(0), data, Some(None))
    }
    /// Anycast to one member holding `inst`.
    pub fn send_anycast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Anycast, None, inst, data, Some(None))
    }
    /// Multicast to every member holding `inst`.
    pub fn send_multicast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Multicast, None, inst, data, Some(None))
    }
    /// Broadcast to every member.
    pub fn broadcast(&self, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Broadcast, None, Instance(0), data, Some(None))
    }
    /// [`GroupSocket::send_unicast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_unicast(&self, to: MemberId, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Unicast, Some(to), Instance(0), data, None)
    }
    /// [`GroupSocket::send_anycast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_anycast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Anycast, None, inst, data, None)
    }
    /// [`GroupSocket::send_multicast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_multicast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Multicast, None, inst, data, None)
    }
    /// [`GroupSocket::broadcast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_broadcast(&self, data: Bytes) -> Result<(), Error> {
        self.send(Mode::Broadcast, None, Instance(0), data, None)
    }
    /// [`GroupSocket::send_unicast`] waiting at most `t`.
    pub fn send_unicast_timeout(&self, to: MemberId, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Mode::Unicast, Some(to), Instance(0), data, Some(Some(std::time::Instant::now() + t)))
    }
    /// [`GroupSocket::send_anycast`] waiting at most `t`.
    pub fn send_anycast_timeout(&self, inst: Instance, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Mode::Anycast, None, inst, data, Some(Some(std::time::Instant::now() + t)))
    }
    /// [`GroupSocket::send_multicast`] waiting at most `t`.
    pub fn send_multicast_timeout(&self, inst: Instance, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Mode::Multicast, None, inst, data, Some(Some(std::time::Instant::now() + t)))
    }
    /// [`GroupSocket::broadcast`] waiting at most `t`.
    pub fn broadcast_timeout(&self, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Mode::Broadcast, None, Instance(0), data, Some(Some(std::time::Instant::now() + t)))
    }

    /// Reading a message opens its sender's window again.
    fn consumed(&self, ev: &GroupEvent) {
        if let GroupEvent::Message { from, data, .. } = ev
            && *from != self.id()
        {
            let mut g = self.shared.inner.lock();
            g.core.group_consumed(self.port, *from, data.len());
            self.shared.flush(&mut g);
        }
    }

    /// Waits for the next message or member event.
    pub fn recv(&self) -> Result<GroupEvent, Error> {
        let ev = self.shared.recv_on(&self.rx, None).map_err(|_| Error::StackStopped)?;
        self.consumed(&ev);
        Ok(ev)
    }
    /// Waits at most `timeout`.
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<GroupEvent, Error> {
        let ev = self.shared.recv_on(&self.rx, Some(timeout)).map_err(recv_error)?;
        self.consumed(&ev);
        Ok(ev)
    }
    /// The next message or event if one is waiting.
    pub fn try_recv(&self) -> Option<GroupEvent> {
        let ev = self.rx.try_recv().ok()?;
        self.consumed(&ev);
        Some(ev)
    }
}

impl Drop for GroupSocket {
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.group_sockets.remove(&self.port);
        g.core.close_port(self.port);
        self.shared.flush(&mut g);
    }
}
