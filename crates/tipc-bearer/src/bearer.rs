//! The bearer: a socket (raw Ethernet on one interface, or UDP), a receive
//! thread, a transmit thread and the handles that connect them to the
//! stack. What differs between the media is in [`Medium`]: the socket, the
//! framing and the addresses; the threads, batching and handles are
//! shared.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use parking_lot::Mutex;
use socket2::Socket;
use tipc_wire::{ETH_HLEN, ETH_P_TIPC, MacAddr, MediaAddr, TxDest};

use crate::BearerError;
use crate::iface::{self, IfInfo};
use crate::stats::{BearerStats, Counters};
use crate::sys::{self, EventFd, RecvMeta};
use crate::udp::{self, UdpConfig, UdpMedium};

/// Which medium a bearer runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Media {
    /// Raw Ethernet (ethertype 0x88CA) on [`BearerConfig::iface`]; needs
    /// `CAP_NET_RAW`.
    Eth,
    /// UDP datagrams; needs no privileges.
    Udp(UdpConfig),
}

/// The medium of an open bearer.
#[derive(Clone, Debug)]
enum Medium {
    /// Ethernet, with our MAC.
    Eth(MacAddr),
    /// UDP, with our address and where broadcast-type packets go.
    Udp(UdpMedium),
}

/// How a bearer is set up.
#[derive(Clone, Debug)]
pub struct BearerConfig {
    /// Interface name, e.g. `eth0` (Ethernet).
    pub iface: String,
    /// The medium.
    pub media: Media,
    /// Frames per `recvmmsg` / `sendmmsg` call.
    pub batch: usize,
    /// Capacity of the transmit queue in frames (full ⇒ `send` blocks, `try_send` fails).
    pub tx_queue: usize,
    /// Capacity of the receive channel in batches (channel mode).
    pub rx_queue: usize,
    /// Socket receive buffer in bytes.
    pub rcvbuf: usize,
    /// Socket send buffer in bytes.
    pub sndbuf: usize,
    /// Skip the qdisc layer on transmit.
    pub qdisc_bypass: bool,
}

impl BearerConfig {
    /// Defaults for an Ethernet bearer on interface `iface`.
    pub fn new(iface: impl Into<String>) -> Self {
        BearerConfig {
            iface: iface.into(),
            media: Media::Eth,
            batch: 64,
            tx_queue: 8192,
            rx_queue: 1024,
            rcvbuf: 8 << 20,
            sndbuf: 4 << 20,
            qdisc_bypass: true,
        }
    }
}

/// One received TIPC frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxFrame {
    /// The sender: its MAC, or the datagram's source address.
    pub src: MediaAddr,
    /// Whether it was sent to the broadcast (or a multicast) address
    /// (Ethernet; UDP frames say false).
    pub broadcast: bool,
    /// The TIPC message, cut to its size field (padding removed).
    pub msg: Bytes,
}

/// One frame to transmit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxFrame {
    /// Where it goes: one neighbour, or every node the bearer reaches
    /// (Ethernet broadcast; on UDP the group or each replicast peer).
    pub dst: TxDest,
    /// The TIPC message.
    pub msg: Bytes,
}

/// Code run on the receive thread for every batch of frames.
///
/// The default, used by [`Bearer::open`], forwards batches to a bounded
/// channel. A stack that wants no thread hand-off on its hot path can run
/// its own protocol work here instead ([`Bearer::open_with_handler`]) and
/// reply through the [`TxHandle`] directly.
pub trait RxHandler: Send + 'static {
    /// A batch of frames arrived (the vector is reused; take what you keep).
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, tx: &TxHandle);
    /// Called after every wake-up (frames, a [`Waker`] signal, or the
    /// timeout). Returns the longest time to sleep before the next call
    /// (`None`: until something happens).
    fn on_wake(&mut self, _tx: &TxHandle) -> Option<Duration> {
        None
    }
    /// Whether the handler needs [`Waker`] signals and timeouts. If not (the
    /// default), the receive thread blocks in `recvmmsg` itself and saves a
    /// `poll` call per batch.
    fn wants_wakeups(&self) -> bool {
        false
    }
    /// Whether the receive thread should read the socket now (asked before
    /// every wait when [`RxHandler::wants_wakeups`]). A handler returns
    /// false while another thread receives through an [`RxPoller`]; the
    /// receive thread then only waits for its [`Waker`] and timeouts. (It
    /// never reads while a poller holds the socket in any case: one reader
    /// at a time.)
    fn poll_socket(&self) -> bool {
        true
    }
}

/// Receives from the bearer's socket on the caller's thread: a thread that
/// would otherwise wait for the receive thread to hand it a message can read
/// the frames itself and save the hand-off (see [`RxHandler::poll_socket`]).
/// Filtering and counters are the receive thread's.
///
/// The socket has one reader at a time: the receive thread and pollers
/// take turns, and each runs the frames it read before giving up its turn,
/// so frames are handled in the order they arrived.
pub struct RxPoller {
    rx: Arc<RxShared>,
}

impl std::fmt::Debug for RxPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxPoller").field("medium", &self.rx.medium).finish()
    }
}

impl RxPoller {
    /// Waits until frames arrive or [`POLLER_WAIT`] passes and runs `f` on
    /// what arrived (filtered as the receive thread filters), with the time
    /// they were received when the read measured it (saves a clock read).
    /// Returns how many frames were read from the socket, or
    /// [`BearerError::Busy`] at once if the receive thread is reading: it
    /// hands on what it reads the usual way.
    pub fn recv(&mut self, f: impl FnMut(&mut Vec<RxFrame>, Option<std::time::Instant>)) -> Result<usize, BearerError> {
        let Some(mut r) = self.rx.reader.try_lock() else { return Err(BearerError::Busy) };
        self.rx.drain(&mut r, true, f).map_err(BearerError::io("recv"))
    }
}

/// The socket's reading side, shared by the receive thread and pollers.
struct RxShared {
    sock: Arc<Socket>,
    counters: Arc<Counters>,
    medium: Medium,
    reader: Mutex<Reader>,
    /// The bearer's name, for warnings.
    name: String,
}

/// Whoever holds it reads the socket.
struct Reader {
    rb: sys::RecvBatch,
    /// Where received messages are copied to.
    arena: crate::arena::RxArena,
    frames: Vec<RxFrame>,
    /// Frames dropped as malformed or foreign when the last warning was
    /// given, and when.
    warned: (u64, Option<std::time::Instant>),
}

/// Warnings about dropped frames come at most this often per bearer (the
/// counters keep every one).
const DROP_WARN_EVERY: Duration = Duration::from_secs(1);

impl RxShared {
    /// Reads what is queued (waiting for the first frame when `wait`) and
    /// passes each batch to `f`, until a batch comes back short. Returns
    /// how many frames were read.
    fn drain(
        &self,
        r: &mut Reader,
        mut wait: bool,
        mut f: impl FnMut(&mut Vec<RxFrame>, Option<std::time::Instant>),
    ) -> std::io::Result<usize> {
        let fd = self.sock.as_raw_fd();
        let mut total = 0;
        loop {
            let n = r.rb.recv(fd, wait)?;
            wait = false;
            if n == 0 {
                return Ok(total);
            }
            total += n;
            Counters::add(&self.counters.rx_batches, 1);
            for i in 0..n {
                let (raw, m) = r.rb.frame(i);
                let fr = match &self.medium {
                    Medium::Eth(mac) => classify(&self.counters, *mac, &m, raw, &mut r.arena),
                    Medium::Udp(u) => match r.rb.source(i) {
                        Some(from) => {
                            let f = udp::classify(&self.counters, u.own, from, raw, m.truncated, &mut r.arena);
                            if let Some(fr) = &f
                                && u.learn(&fr.msg).is_some()
                            {
                                Counters::add(&self.counters.peers_learned, 1);
                            }
                            f
                        }
                        None => {
                            Counters::add(&self.counters.drop_malformed, 1);
                            None
                        }
                    },
                };
                if let Some(fr) = fr {
                    r.frames.push(fr);
                }
            }
            if !r.frames.is_empty() {
                f(&mut r.frames, r.rb.received_at());
                r.frames.clear();
            }
            self.warn_drops(r);
            if n < r.rb.capacity() {
                return Ok(total);
            }
        }
    }

    /// A rate-limited warning when malformed or foreign frames were
    /// dropped since the last one.
    fn warn_drops(&self, r: &mut Reader) {
        use std::sync::atomic::Ordering::Relaxed;
        let dropped = self.counters.drop_malformed.load(Relaxed) + self.counters.drop_foreign.load(Relaxed);
        if dropped == r.warned.0 || !tracing::enabled!(tracing::Level::WARN) {
            return;
        }
        let now = std::time::Instant::now();
        if r.warned.1.is_some_and(|t| now.duration_since(t) < DROP_WARN_EVERY) {
            return;
        }
        tracing::warn!(
            bearer = %self.name,
            malformed = self.counters.drop_malformed.load(Relaxed),
            foreign = self.counters.drop_foreign.load(Relaxed),
            since_last = dropped - r.warned.0,
            "frames dropped (counted in the bearer's statistics; at most one warning a second)"
        );
        r.warned = (dropped, Some(now));
    }
}

/// Longest an [`RxPoller::recv`] waits when nothing arrives (the socket's
/// receive timeout in handler mode).
pub const POLLER_WAIT: Duration = Duration::from_millis(1);

struct ChannelHandler {
    out: Sender<Vec<RxFrame>>,
    stop: Arc<AtomicBool>,
}

impl RxHandler for ChannelHandler {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, _tx: &TxHandle) {
        let batch = std::mem::take(frames);
        // Blocking here pushes back into the socket buffer: nothing is dropped
        // by us; the kernel counts its own drops if the consumer stalls.
        let mut item = batch;
        loop {
            match self.out.send_timeout(item, Duration::from_millis(100)) {
                Ok(()) => return,
                Err(crossbeam_channel::SendTimeoutError::Timeout(b)) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    item = b;
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
            }
        }
    }
}

/// Wakes the receive thread (its handler's `on_wake` runs soon after).
#[derive(Clone, Debug)]
pub struct Waker(Arc<EventFd>);

impl Waker {
    /// Signals the receive thread.
    pub fn wake(&self) {
        self.0.signal();
    }
}

struct TxShared {
    sock: Arc<Socket>,
    info: IfInfo,
    medium: Medium,
    queue: Sender<TxFrame>,
    /// Frames queued or being sent by the tx thread.
    in_flight: AtomicUsize,
    /// Held while frames are handed to the kernel, so that a direct send
    /// never overtakes queued frames; holds the buffer a direct send
    /// assembles its frame in (one contiguous `send` costs less than a
    /// gathered `sendmsg`).
    send_lock: Mutex<Vec<u8>>,
    counters: Arc<Counters>,
    closed: AtomicBool,
}

/// A frame's one datagram, if it is a unicast to a UDP address.
fn unicast(f: &TxFrame) -> Option<(SocketAddr, &[u8])> {
    match f.dst {
        TxDest::Unicast(MediaAddr::Udp(a)) => Some((a, &f.msg[..])),
        _ => None,
    }
}

/// Sends whole frames on UDP with `sendmmsg`, each to all its
/// destinations; returns how many frames went completely (a frame cut off
/// by a full queue is sent again whole: TIPC drops the duplicate copies).
fn udp_send_frames(s: &TxShared, u: &UdpMedium, frames: &[TxFrame]) -> std::io::Result<usize> {
    let fd = s.sock.as_raw_fd();
    // one datagram per frame (the common case): no list of destinations
    if frames.iter().all(|f| unicast(f).is_some()) {
        let mut done = 0;
        while done < frames.len() {
            match sys::udp_send_batch(fd, &frames[done..], unicast) {
                Ok(0) => break,
                Ok(n) => done += n,
                // a refused destination: counted, skipped
                Err(_) => {
                    Counters::add(&s.counters.tx_errors, 1);
                    done += 1;
                }
            }
        }
        return Ok(done);
    }
    let mut items: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(frames.len());
    let mut ends: Vec<usize> = Vec::with_capacity(frames.len());
    let mut to = Vec::new();
    for f in frames {
        to.clear();
        u.destinations(&f.dst, &mut to);
        items.extend(to.iter().map(|a| (*a, &f.msg[..])));
        ends.push(items.len());
    }
    let mut done = 0;
    while done < items.len() {
        match sys::udp_send_batch(fd, &items[done..], |it| Some(*it)) {
            Ok(0) => break,
            Ok(n) => done += n,
            // a refused destination: counted, skipped
            Err(_) => {
                Counters::add(&s.counters.tx_errors, 1);
                done += 1;
            }
        }
    }
    Ok(ends.iter().take_while(|e| **e <= done).count())
}

impl TxShared {
    /// Hands as many of `frames` as the kernel takes at once to it, in
    /// order, with `sendmmsg`: Ethernet frames with their headers, or UDP
    /// datagrams (a frame to each of its destinations). Returns how many
    /// frames went whole; `Ok(0)` when the kernel's queue is full.
    fn put_batch(&self, frames: &[TxFrame]) -> std::io::Result<usize> {
        match &self.medium {
            Medium::Eth(mac) => {
                sys::send_batch(self.sock.as_raw_fd(), frames, |f| (eth_header(f.dst, *mac), &f.msg[..]))
            }
            Medium::Udp(u) => udp_send_frames(self, u, frames),
        }
    }

    /// Counts `frames` as handed to the kernel: directly by a sending
    /// thread, or as one batch of the transmit thread.
    fn count_sent(&self, frames: &[TxFrame], direct: bool) {
        let bytes: usize = frames.iter().map(|f| f.msg.len()).sum();
        Counters::add(&self.counters.tx_frames, frames.len() as u64);
        Counters::add(&self.counters.tx_bytes, bytes as u64);
        if direct {
            Counters::add(&self.counters.tx_direct, frames.len() as u64);
        } else {
            Counters::add(&self.counters.tx_batches, 1);
        }
    }
}

/// Sends frames on the bearer. Cheap to clone; usable from any thread.
///
/// When nothing is queued the caller's thread hands the frame to the kernel
/// itself with one non-blocking call (no thread hand-off); otherwise, or if
/// the kernel's queue is full, the frame goes to the transmit thread, which
/// sends in batches. Frames sent from one thread leave in order.
#[derive(Clone)]
pub struct TxHandle {
    s: Arc<TxShared>,
}

impl std::fmt::Debug for TxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxHandle({})", self.s.info.name)
    }
}

/// The Ethernet header of a frame for `dst` (checked reachable on
/// Ethernet before: [`TxHandle::check`]).
fn eth_header(dst: TxDest, src: MacAddr) -> [u8; ETH_HLEN] {
    let dst = dst.mac().unwrap_or(MacAddr::BROADCAST);
    let mut h = [0u8; ETH_HLEN];
    h[0..6].copy_from_slice(&dst.0);
    h[6..12].copy_from_slice(&src.0);
    h[12..14].copy_from_slice(&ETH_P_TIPC.to_be_bytes());
    h
}

impl TxHandle {
    /// Interface facts.
    pub fn info(&self) -> &IfInfo {
        &self.s.info
    }

    fn check(&self, f: &TxFrame) -> Result<(), BearerError> {
        if self.s.closed.load(Ordering::Relaxed) {
            return Err(BearerError::Closed);
        }
        if f.msg.len() > self.s.info.mtu {
            return Err(BearerError::TooLarge { len: f.msg.len(), mtu: self.s.info.mtu });
        }
        let reachable = match (&self.s.medium, &f.dst) {
            (_, TxDest::Broadcast) => true,
            (Medium::Eth(_), TxDest::Unicast(m)) => m.mac().is_some(),
            (Medium::Udp(_), TxDest::Unicast(m)) => m.udp().is_some(),
        };
        if !reachable {
            return Err(BearerError::Unreachable(f.dst));
        }
        Ok(())
    }

    /// Tries the direct path; returns the frame back if it must be queued.
    fn try_direct(&self, f: TxFrame) -> Option<TxFrame> {
        if self.s.in_flight.load(Ordering::Acquire) != 0 {
            return Some(f);
        }
        let mut buf = self.s.send_lock.try_lock()?;
        if self.s.in_flight.load(Ordering::Acquire) != 0 {
            return Some(f);
        }
        let sent = match &self.s.medium {
            Medium::Eth(mac) => {
                buf.clear();
                buf.extend_from_slice(&eth_header(f.dst, *mac));
                buf.extend_from_slice(&f.msg);
                sys::send_frame(self.s.sock.as_raw_fd(), &buf)
            }
            Medium::Udp(u) => udp_send_frames(&self.s, u, std::slice::from_ref(&f)).map(|n| n == 1),
        };
        match sent {
            Ok(true) => {
                self.s.count_sent(std::slice::from_ref(&f), true);
                None
            }
            Ok(false) => Some(f),
            Err(_) => {
                Counters::add(&self.s.counters.tx_errors, 1);
                Some(f)
            }
        }
    }

    /// Sends one frame, waiting while the transmit queue is full.
    pub fn send(&self, dst: impl Into<TxDest>, msg: Bytes) -> Result<(), BearerError> {
        let f = TxFrame { dst: dst.into(), msg };
        self.check(&f)?;
        let Some(f) = self.try_direct(f) else { return Ok(()) };
        self.s.in_flight.fetch_add(1, Ordering::AcqRel);
        self.s.queue.send(f).map_err(|_| {
            self.s.in_flight.fetch_sub(1, Ordering::AcqRel);
            BearerError::Closed
        })
    }

    /// Sends one frame, or returns [`BearerError::WouldBlock`] (dropping
    /// nothing) if the transmit queue is full.
    pub fn try_send(&self, dst: impl Into<TxDest>, msg: Bytes) -> Result<(), BearerError> {
        let f = TxFrame { dst: dst.into(), msg };
        self.check(&f)?;
        let Some(f) = self.try_direct(f) else { return Ok(()) };
        self.s.in_flight.fetch_add(1, Ordering::AcqRel);
        self.s.queue.try_send(f).map_err(|e| {
            self.s.in_flight.fetch_sub(1, Ordering::AcqRel);
            match e {
                TrySendError::Full(_) => BearerError::WouldBlock,
                TrySendError::Disconnected(_) => BearerError::Closed,
            }
        })
    }

    /// Sends a burst: when nothing is queued the caller's thread hands the
    /// frames to the kernel itself, in `sendmmsg` batches (no hand-off);
    /// whatever the kernel does not take at once goes to the transmit
    /// thread. Waits while the queue is full; order is kept.
    pub fn send_burst(&self, frames: &mut Vec<TxFrame>) -> Result<(), BearerError> {
        for f in frames.iter() {
            self.check(f)?;
        }
        let mut done = 0;
        if self.s.in_flight.load(Ordering::Acquire) == 0
            && let Some(_g) = self.s.send_lock.try_lock()
            && self.s.in_flight.load(Ordering::Acquire) == 0
        {
            while done < frames.len() {
                match self.s.put_batch(&frames[done..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.s.count_sent(&frames[done..done + n], true);
                        done += n;
                    }
                }
            }
        }
        let rest: Vec<TxFrame> = frames.drain(..).skip(done).collect();
        self.send_many(rest)
    }

    /// Queues frames for the transmit thread, which sends them in batches
    /// (best for bursts). Waits while the queue is full.
    pub fn send_many(&self, frames: impl IntoIterator<Item = TxFrame>) -> Result<(), BearerError> {
        for f in frames {
            self.check(&f)?;
            self.s.in_flight.fetch_add(1, Ordering::AcqRel);
            if self.s.queue.send(f).is_err() {
                self.s.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(BearerError::Closed);
            }
        }
        Ok(())
    }

    /// Frames waiting in the transmit queue.
    pub fn queued(&self) -> usize {
        self.s.in_flight.load(Ordering::Relaxed)
    }
}

/// A bearer: one Ethernet interface (ethertype 0x88CA) or one UDP socket,
/// with its receive and transmit threads (`tipc-eth-rx:<if>`,
/// `tipc-eth-tx:<if>`; `tipc-udp-…:<name>` on UDP).
///
/// Dropping it (or [`Bearer::shutdown`]) stops and joins both threads.
pub struct Bearer {
    info: IfInfo,
    tx: TxHandle,
    rx: Option<Receiver<Vec<RxFrame>>>,
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    sock: Arc<Socket>,
    rx_shared: Arc<RxShared>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Bearer {
    /// Opens the bearer in channel mode: received frames arrive in batches on
    /// [`Bearer::rx`]. Must be called from a thread in the interface's
    /// network namespace.
    pub fn open(cfg: BearerConfig) -> Result<Bearer, BearerError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (out, rx) = bounded(cfg.rx_queue.max(1));
        let h = ChannelHandler { out, stop: stop.clone() };
        let mut b = Self::start(cfg, Box::new(h), stop, true)?;
        b.rx = Some(rx);
        Ok(b)
    }

    /// Opens the bearer with `handler` running on the receive thread.
    pub fn open_with_handler(cfg: BearerConfig, handler: impl RxHandler) -> Result<Bearer, BearerError> {
        Self::start(cfg, Box::new(handler), Arc::new(AtomicBool::new(false)), false)
    }

    fn start(
        cfg: BearerConfig,
        handler: Box<dyn RxHandler>,
        stop: Arc<AtomicBool>,
        batches_only: bool,
    ) -> Result<Bearer, BearerError> {
        let (sock, medium, info) = match &cfg.media {
            Media::Eth => {
                let (index, mac) = iface::lookup(&cfg.iface)?;
                let sock = sys::open_packet_socket(index).map_err(BearerError::io("open AF_PACKET socket"))?;
                let mtu = iface::mtu(&sock, &cfg.iface)?;
                if cfg.qdisc_bypass {
                    let _ = sys::set_qdisc_bypass(sock.as_raw_fd());
                }
                let info = IfInfo { name: cfg.iface.clone(), index, media: MediaAddr::Eth(mac), mtu };
                (sock, Medium::Eth(mac), info)
            }
            Media::Udp(u) => {
                if u.mtu < iface::MIN_MTU {
                    return Err(BearerError::MtuTooSmall { name: u.name.clone(), mtu: u.mtu, min: iface::MIN_MTU });
                }
                let (sock, m) = udp::open(u)?;
                let info = IfInfo { name: u.name.clone(), index: 0, media: MediaAddr::Udp(m.own), mtu: u.mtu };
                (sock, Medium::Udp(m), info)
            }
        };
        let mtu = info.mtu;
        let kind = if matches!(medium, Medium::Eth(_)) { "eth" } else { "udp" };
        sys::set_buffers(sock.as_raw_fd(), cfg.rcvbuf, cfg.sndbuf);
        let sock = Arc::new(sock);
        let counters = Arc::new(Counters::default());
        let wake = Arc::new(EventFd::new().map_err(BearerError::io("eventfd"))?);
        let (qtx, qrx) = bounded::<TxFrame>(cfg.tx_queue.max(1));
        let tx = TxHandle {
            s: Arc::new(TxShared {
                sock: sock.clone(),
                info: info.clone(),
                medium: medium.clone(),
                queue: qtx,
                in_flight: AtomicUsize::new(0),
                send_lock: Mutex::new(Vec::with_capacity(mtu + ETH_HLEN)),
                counters: counters.clone(),
                closed: AtomicBool::new(false),
            }),
        };
        let batch = cfg.batch.clamp(1, 1024);
        let mut threads = Vec::new();
        {
            let tx2 = tx.clone();
            let stop2 = stop.clone();
            let name = format!("tipc-{kind}-tx:{}", info.name);
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || tx_loop(tx2, qrx, batch, stop2))
                    .map_err(BearerError::io("spawn tx thread"))?,
            );
        }
        let slot = (mtu + ETH_HLEN + 64).next_power_of_two().max(2048);
        let rb = sys::RecvBatch::new(batch, slot);
        // a UDP datagram does not carry its source: ask for it
        let rb = if matches!(medium, Medium::Udp(_)) { rb.named() } else { rb };
        // a channel hands every batch to another thread: read in batches
        let rb = if batches_only { rb.batches_only() } else { rb };
        let rx_shared = Arc::new(RxShared {
            sock: sock.clone(),
            counters: counters.clone(),
            medium,
            reader: Mutex::new(Reader {
                rb,
                arena: Default::default(),
                frames: Vec::with_capacity(batch),
                warned: (0, None),
            }),
            name: info.name.clone(),
        });
        {
            let tx2 = tx.clone();
            let stop2 = stop.clone();
            let wake2 = wake.clone();
            let rx2 = rx_shared.clone();
            let name = format!("tipc-{kind}-rx:{}", info.name);
            let spawned =
                std::thread::Builder::new().name(name).spawn(move || rx_loop(&rx2, &wake2, &stop2, handler, &tx2));
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    tx.s.closed.store(true, Ordering::SeqCst);
                    return Err(BearerError::io("spawn rx thread")(e));
                }
            }
        }
        Ok(Bearer { info, tx, rx: None, wake, stop, threads, counters, sock, rx_shared })
    }

    /// Interface facts.
    pub fn info(&self) -> &IfInfo {
        &self.info
    }
    /// A handle for sending.
    pub fn tx(&self) -> TxHandle {
        self.tx.clone()
    }
    /// Received batches (channel mode only).
    pub fn rx(&self) -> Option<&Receiver<Vec<RxFrame>>> {
        self.rx.as_ref()
    }
    /// A receiver for another thread (see [`RxPoller`]); meant for handler
    /// mode with [`RxHandler::poll_socket`].
    pub fn rx_poller(&self) -> RxPoller {
        RxPoller { rx: self.rx_shared.clone() }
    }
    /// A handle that wakes the receive thread's handler.
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }
    /// A UDP bearer's replicast peers, given and learned from discovery
    /// (empty in multicast mode and on Ethernet).
    pub fn replicast_peers(&self) -> Vec<std::net::SocketAddr> {
        match &self.rx_shared.medium {
            Medium::Udp(u) => u.peers(),
            Medium::Eth(_) => Vec::new(),
        }
    }

    /// A snapshot of the counters (kernel drops included).
    pub fn stats(&self) -> BearerStats {
        // the kernel's drop counter exists for packet sockets only
        if matches!(self.rx_shared.medium, Medium::Eth(_))
            && let Ok((_, drops)) = sys::packet_stats(self.sock.as_raw_fd())
        {
            Counters::add(&self.counters.drop_kernel, u64::from(drops));
        }
        self.counters.snapshot()
    }
    /// Stops both threads (the transmit queue is flushed first) and joins them.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx.s.closed.store(true, Ordering::SeqCst);
        self.wake.signal();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Bearer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn tx_loop(tx: TxHandle, q: Receiver<TxFrame>, batch: usize, stop: Arc<AtomicBool>) {
    let s = &tx.s;
    let mut frames: Vec<TxFrame> = Vec::with_capacity(batch);
    loop {
        match q.recv_timeout(Duration::from_millis(50)) {
            Ok(f) => frames.push(f),
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) && q.is_empty() {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let _g = s.send_lock.lock();
        while frames.len() < batch {
            match q.try_recv() {
                Ok(f) => frames.push(f),
                Err(_) => break,
            }
        }
        let mut done = 0;
        let mut waits = 0u32;
        while done < frames.len() {
            match s.put_batch(&frames[done..]) {
                Ok(0) => {
                    // kernel queue full: wait a little, never drop
                    Counters::add(&s.counters.tx_retries, 1);
                    waits += 1;
                    std::thread::sleep(Duration::from_micros(u64::from(waits.min(100)) * 10));
                    if stop.load(Ordering::Relaxed) && waits > 10_000 {
                        break;
                    }
                }
                Ok(n) => {
                    s.count_sent(&frames[done..done + n], false);
                    done += n;
                    waits = 0;
                }
                Err(_) => {
                    // a frame the kernel refuses (e.g. interface gone): count it and skip it
                    Counters::add(&s.counters.tx_errors, 1);
                    done += 1;
                }
            }
        }
        s.in_flight.fetch_sub(frames.len(), Ordering::AcqRel);
        frames.clear();
    }
}

fn rx_loop(rx: &RxShared, wake: &EventFd, stop: &AtomicBool, mut handler: Box<dyn RxHandler>, tx: &TxHandle) {
    let fd = rx.sock.as_raw_fd();
    let wants_wake = handler.wants_wakeups();
    // Without wake-ups the thread blocks in the receive call itself and
    // wakes every 100 ms to notice shutdown; with them it waits in `poll`
    // and never blocks in a receive, which an RxPoller does, for at most
    // POLLER_WAIT.
    let _ = sys::set_recv_timeout(fd, if wants_wake { POLLER_WAIT } else { Duration::from_millis(100) });
    let mut timeout = handler.on_wake(tx);
    while !stop.load(Ordering::Relaxed) {
        if wants_wake {
            let ms = match timeout {
                None => -1,
                Some(d) => i32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
            };
            // a negative descriptor is ignored by poll: wait for the waker only
            let watch = if handler.poll_socket() { fd } else { -1 };
            match sys::poll2(watch, wake.fd(), ms) {
                Ok((readable, woken)) => {
                    if woken {
                        wake.clear();
                    }
                    if !readable {
                        timeout = handler.on_wake(tx);
                        continue;
                    }
                }
                Err(_) => {
                    Counters::add(&rx.counters.rx_errors, 1);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        // a poller holding the reader reads the socket itself: leave it
        let reader = if wants_wake { rx.reader.try_lock() } else { Some(rx.reader.lock()) };
        if let Some(mut r) = reader
            && rx.drain(&mut r, !wants_wake, |frames, _| handler.on_frames(frames, tx)).is_err()
        {
            Counters::add(&rx.counters.rx_errors, 1);
        }
        timeout = handler.on_wake(tx);
    }
}

/// Filters one received buffer and cuts it to the TIPC message.
fn classify(
    c: &Counters,
    own: MacAddr,
    m: &RecvMeta,
    frame: &[u8],
    arena: &mut crate::arena::RxArena,
) -> Option<RxFrame> {
    let drop = |ctr: &std::sync::atomic::AtomicU64| {
        Counters::add(ctr, 1);
        None
    };
    if m.pkttype == sys::PACKET_OUTGOING {
        return drop(&c.drop_own);
    }
    if m.pkttype == sys::PACKET_OTHERHOST {
        return drop(&c.drop_other_host);
    }
    if m.truncated || m.len < ETH_HLEN + tipc_wire::MIN_H_SIZE {
        return drop(&c.drop_malformed);
    }
    if frame.len() < m.len {
        return drop(&c.drop_malformed);
    }
    // unicast to another station (what the packet type says, when the
    // receive call did not report it)
    if frame[0] & 1 == 0 && frame[0..6] != own.0 {
        return drop(&c.drop_other_host);
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETH_P_TIPC {
        return drop(&c.drop_foreign);
    }
    let mut src = [0u8; 6];
    src.copy_from_slice(&frame[6..12]);
    let src = MacAddr(src);
    if src == own {
        return drop(&c.drop_own);
    }
    let size = match tipc_wire::encrypted_len(&frame[ETH_HLEN..m.len]) {
        // an encrypted frame (version 7) has no size field: it is all of
        // the payload (never padded: it is at least 70 bytes long)
        Some(n) => n,
        None => (u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]) & 0x1_ffff) as usize,
    };
    if size < tipc_wire::MIN_H_SIZE || ETH_HLEN + size > m.len {
        return drop(&c.drop_malformed);
    }
    Counters::add(&c.rx_frames, 1);
    Counters::add(&c.rx_bytes, size as u64);
    let broadcast = frame[0] & 1 == 1;
    Some(RxFrame { src: MediaAddr::Eth(src), broadcast, msg: arena.copy(&frame[ETH_HLEN..ETH_HLEN + size]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classifier with an arena of its own.
    fn classify(c: &Counters, own: MacAddr, m: &RecvMeta, frame: &[u8]) -> Option<RxFrame> {
        super::classify(c, own, m, frame, &mut crate::arena::RxArena::default())
    }

    fn meta(len: usize, pkttype: u8) -> RecvMeta {
        RecvMeta { len, src: [0; 6], pkttype, truncated: false }
    }

    fn frame(src: [u8; 6], ethertype: u16, tipc_size: u32, total: usize) -> Vec<u8> {
        let mut v = vec![0u8; total];
        v[0..6].copy_from_slice(&[0xff; 6]);
        v[6..12].copy_from_slice(&src);
        v[12..14].copy_from_slice(&ethertype.to_be_bytes());
        if total >= 18 {
            let w0 = (2u32 << 29) | (7 << 25) | (10 << 21) | tipc_size;
            v[14..18].copy_from_slice(&w0.to_be_bytes());
        }
        v
    }

    #[test]
    fn classify_filters_and_trims() {
        let c = Counters::default();
        let own = MacAddr([2, 0, 0, 0, 0, 1]);
        let peer = [2, 0, 0, 0, 0, 2];
        // padded frame: cut to the size field
        let f = classify(&c, own, &meta(74, 0), &frame(peer, ETH_P_TIPC, 40, 74)).unwrap();
        assert_eq!(f.msg.len(), 40);
        assert!(f.broadcast);
        assert!(classify(&c, own, &meta(54, sys::PACKET_OUTGOING), &frame(peer, ETH_P_TIPC, 40, 54)).is_none());
        assert!(classify(&c, own, &meta(54, sys::PACKET_OTHERHOST), &frame(peer, ETH_P_TIPC, 40, 54)).is_none());
        assert!(classify(&c, own, &meta(54, 0), &frame(own.0, ETH_P_TIPC, 40, 54)).is_none());
        assert!(classify(&c, own, &meta(54, 0), &frame(peer, 0x0800, 40, 54)).is_none());
        assert!(classify(&c, own, &meta(54, 0), &frame(peer, ETH_P_TIPC, 60, 54)).is_none());
        assert!(classify(&c, own, &meta(20, 0), &frame(peer, ETH_P_TIPC, 40, 20)).is_none());
        // unicast: to us, or (packet type not reported) to another station
        let mut to_us = frame(peer, ETH_P_TIPC, 40, 54);
        to_us[0..6].copy_from_slice(&own.0);
        assert!(!classify(&c, own, &meta(54, sys::PACKET_UNKNOWN), &to_us).unwrap().broadcast);
        let mut to_other = to_us.clone();
        to_other[5] = 0x77;
        assert!(classify(&c, own, &meta(54, sys::PACKET_UNKNOWN), &to_other).is_none());
        let s = c.snapshot();
        assert_eq!((s.drop_own, s.drop_other_host, s.drop_foreign, s.drop_malformed, s.rx_frames), (2, 2, 1, 2, 2));
    }
}
