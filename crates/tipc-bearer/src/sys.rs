//! The only `unsafe` code of the workspace: the bearer's raw packet socket
//! calls that `socket2` does not wrap (binding to a `sockaddr_ll`, batched
//! send and receive, packet socket options, the MTU ioctl, eventfd).
//!
//! Private to the bearer: the crate exports only [`open_packet_socket`]
//! (through a safe wrapper). Every function here is safe to call; each
//! `unsafe` block states why its use is sound.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// `ETH_P_TIPC` in host order.
pub const ETH_P_TIPC: u16 = 0x88CA;
/// `PACKET_IGNORE_OUTGOING` (Linux ≥ 4.20): do not loop our own frames back.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// Packet type of frames addressed to another host (promiscuous capture).
pub const PACKET_OTHERHOST: u8 = 3;
/// Packet type of our own outgoing frames.
pub const PACKET_OUTGOING: u8 = 4;
/// Packet type not reported by the receive call (judge it from the frame).
pub const PACKET_UNKNOWN: u8 = 0xff;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn ll_addr(ifindex: u32, mac: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_TIPC.to_be();
    sa.sll_ifindex = ifindex as i32;
    if let Some(m) = mac {
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&m);
    }
    sa
}

/// A `socket2` address holding a link-layer address.
fn sock_addr(sa: &libc::sockaddr_ll) -> SockAddr {
    // SAFETY: `sa` is a fully initialised sockaddr_ll and we copy exactly its
    // size into the storage, which is large enough for any socket address.
    unsafe {
        let mut storage: libc::sockaddr_storage = zeroed();
        std::ptr::copy_nonoverlapping(
            (sa as *const libc::sockaddr_ll).cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            size_of::<libc::sockaddr_ll>(),
        );
        SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    }
}

/// Opens an AF_PACKET `SOCK_RAW` socket for ethertype 0x88CA bound to `ifindex`,
/// with our own outgoing frames suppressed.
pub fn open_packet_socket(ifindex: u32) -> io::Result<Socket> {
    let proto = Protocol::from(i32::from(ETH_P_TIPC.to_be()));
    let sock = Socket::new(Domain::PACKET, Type::RAW.cloexec(), Some(proto))?;
    sock.bind(&sock_addr(&ll_addr(ifindex, None)))?;
    // Older kernels lack the option; the receive path also filters by packet type.
    let _ = set_int_opt(sock.as_raw_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
    Ok(sock)
}

/// Sets an integer socket option.
pub fn set_int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: we pass a pointer to a live c_int and its exact size.
    cvt(unsafe {
        libc::setsockopt(fd, level, name, (&v as *const libc::c_int).cast(), size_of::<libc::c_int>() as u32)
    })
    .map(|_| ())
}

/// Raises the socket buffers past the sysctl caps (needs CAP_NET_ADMIN; falls back silently).
pub fn set_buffers(fd: RawFd, rcv: usize, snd: usize) {
    let rcv = rcv.min(i32::MAX as usize) as i32;
    let snd = snd.min(i32::MAX as usize) as i32;
    if set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcv).is_err() {
        let _ = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcv);
    }
    if set_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, snd).is_err() {
        let _ = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, snd);
    }
}

/// Asks the kernel to skip the qdisc layer on transmit (PACKET_QDISC_BYPASS).
pub fn set_qdisc_bypass(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)
}

/// The kernel's receive counters for the socket (reset on read): (packets, drops).
pub fn packet_stats(fd: RawFd) -> io::Result<(u32, u32)> {
    // SAFETY: tpacket_stats is plain old data; zero is valid.
    let mut st: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live and `len` holds the buffer size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    })?;
    Ok((st.tp_packets, st.tp_drops))
}

/// The MTU of an interface, read with `SIOCGIFMTU` through `fd`.
pub fn if_mtu(fd: RawFd, name: &str) -> io::Result<usize> {
    // SAFETY: ifreq is plain old data; zero is valid.
    let mut req: libc::ifreq = unsafe { zeroed() };
    let b = name.as_bytes();
    if b.len() >= req.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the name and writes ifru_mtu of the live `req`.
    cvt(unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) })?;
    // SAFETY: the ioctl succeeded, so the union holds the MTU.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

/// One received frame's metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecvMeta {
    /// Bytes received.
    pub len: usize,
    /// Source MAC (from the link-layer address). The bearer takes the source
    /// from the frame itself; only this module's tests read it (it was
    /// public while `sys` was).
    #[cfg_attr(not(test), allow(dead_code))]
    pub src: [u8; 6],
    /// Packet type (`PACKET_HOST`, `PACKET_BROADCAST`, ...).
    pub pkttype: u8,
    /// Whether the frame was cut to the buffer.
    pub truncated: bool,
}

/// Reusable `recvmmsg` state: one buffer per frame and the headers that
/// point into them, allocated once per receive thread.
pub struct RecvBatch {
    slot: usize,
    buf: Vec<u8>,
    /// Each message's source address: a `sockaddr_ll` on a packet socket,
    /// a `sockaddr_in`/`sockaddr_in6` on UDP.
    addrs: Vec<libc::sockaddr_storage>,
    /// The length of each received source address (0: none).
    names: Vec<libc::socklen_t>,
    /// Whether single reads ask for the source address too (UDP: the
    /// datagram does not carry it; a packet socket's frame does).
    named: bool,
    /// Never read directly: `msgs` point into it, so it must live as long.
    _iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    meta: Vec<RecvMeta>,
    /// Whether waits read whole batches (frames have been queuing up)
    /// rather than one frame, which is cheaper while traffic is sparse.
    backlog: bool,
    /// Whether waits may read single frames at all.
    single: bool,
    /// Waits in a row that point to the other mode: single reads that found
    /// their frame queued, or batch reads that found one frame.
    streak: u32,
    /// When the last single-frame wait returned its frame.
    received_at: Option<std::time::Instant>,
}

// SAFETY: the raw pointers inside `msgs` and `_iovs` point only into this
// struct's own heap buffers, which move with it and are reached only through
// `&mut self`; nothing is shared with another thread.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Room for `batch` frames of up to `slot` bytes each.
    pub fn new(batch: usize, slot: usize) -> RecvBatch {
        let batch = batch.clamp(1, 1024);
        let mut buf = vec![0u8; batch * slot];
        // SAFETY: plain old data; zero is valid for each element.
        let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { zeroed() }; batch];
        let mut iovs: Vec<libc::iovec> =
            buf.chunks_mut(slot).map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        // SAFETY: plain old data; zero is valid.
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; batch];
        for i in 0..batch {
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // The pointers above target the vectors' heap buffers, which never move
        // or reallocate for the life of this struct (no vector is resized).
        RecvBatch {
            slot,
            buf,
            addrs,
            names: vec![0; batch],
            named: false,
            _iovs: iovs,
            msgs,
            meta: vec![RecvMeta::default(); batch],
            single: true,
            backlog: false,
            streak: 0,
            received_at: None,
        }
    }

    /// Makes single-frame reads ask for the source address as well (a UDP
    /// socket, whose datagrams do not carry it): see [`RecvBatch::source`].
    pub fn named(mut self) -> RecvBatch {
        self.named = true;
        self
    }

    /// The source address of message `i` of the last receive, when the
    /// socket reported an IP one (UDP).
    pub fn source(&self, i: usize) -> Option<std::net::SocketAddr> {
        let len = *self.names.get(i)?;
        let storage = *self.addrs.get(i)?;
        if len == 0 || len as usize > size_of::<libc::sockaddr_storage>() {
            return None;
        }
        // SAFETY: the kernel wrote a socket address of `len` bytes (checked
        // to fit) into this storage in the last receive.
        let addr = unsafe { SockAddr::new(storage, len) };
        addr.as_socket()
    }

    /// Makes waits always read whole batches (for a receiver that hands
    /// every batch to another thread, where fewer, larger batches save
    /// more than a single-frame read does).
    pub fn batches_only(mut self) -> RecvBatch {
        self.single = false;
        self
    }

    /// When the last [`RecvBatch::recv`] got its frame, if it read a single
    /// frame (it reads the clock then anyway; callers can save a read).
    pub fn received_at(&self) -> Option<std::time::Instant> {
        self.received_at
    }

    /// Frames the batch can hold.
    pub fn capacity(&self) -> usize {
        self.msgs.len()
    }

    /// Receives up to [`RecvBatch::capacity`] frames. With `wait`, blocks
    /// until at least one arrives (or the socket's receive timeout passes);
    /// otherwise returns at once. Returns how many arrived (0 on timeout or
    /// when none was waiting).
    ///
    /// A wait reads a single frame with `recvfrom` while traffic is sparse:
    /// `recvmmsg` costs more per call and, after the first frame, makes a
    /// second (failing) attempt, which a request/response exchange pays on
    /// every message. After a run of waits that returned without having
    /// slept (frames were queued), waits read whole batches until a run of
    /// batches finds one frame each. See [`RecvBatch::batches_only`].
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        self.received_at = None;
        if wait && self.single && !self.backlog {
            let t = std::time::Instant::now();
            let n = self.recv_one(fd)?;
            let done = std::time::Instant::now();
            if n == 1 {
                self.received_at = Some(done);
            }
            // a wait that did not sleep returns within a syscall's time
            self.streak = if n == 1 && done.duration_since(t) < SLEPT { self.streak + 1 } else { 0 };
            if self.streak >= FAST_STREAK {
                self.backlog = true;
                self.streak = 0;
            }
            return Ok(n);
        }
        let n = self.recv_many(fd, wait)?;
        if wait {
            // leave batch mode after a run of batches that found one frame
            self.streak = if n > 1 { 0 } else { self.streak + 1 };
            if self.streak >= SPARSE_STREAK {
                self.backlog = false;
                self.streak = 0;
            }
        }
        Ok(n)
    }

    /// One blocking receive into the first slot. On a packet socket no
    /// link-layer address is asked for (copying it out costs time on every
    /// frame): the source is in the frame, and the packet type is left
    /// [`PACKET_UNKNOWN`], for the caller to judge from the destination
    /// address. A [`RecvBatch::named`] batch asks for the source address
    /// (UDP).
    fn recv_one(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let (name, name_len) = if self.named {
            ((&mut self.addrs[0] as *mut libc::sockaddr_storage).cast(), &mut len as *mut libc::socklen_t)
        } else {
            (std::ptr::null_mut(), std::ptr::null_mut())
        };
        // SAFETY: the first slot is `slot` bytes of our own buffer, and the
        // address pointers are null or our first address storage with its
        // size in `len`; `&mut self` gives exclusive use of all of them for
        // the call.
        let r = unsafe { libc::recvfrom(fd, self.buf.as_mut_ptr().cast(), self.slot, libc::MSG_TRUNC, name, name_len) };
        // with MSG_TRUNC the result is the frame's real length
        let Some(full) = received(r)? else { return Ok(0) };
        self.names[0] = if self.named { len } else { 0 };
        let mut src = [0u8; 6];
        if let Some(s) = self.buf.get(6..12).filter(|_| full >= 12 && !self.named) {
            src.copy_from_slice(s);
        }
        self.meta[0] = RecvMeta { len: full.min(self.slot), src, pkttype: PACKET_UNKNOWN, truncated: full > self.slot };
        Ok(1)
    }

    /// One `recvmmsg` call for up to a batch.
    fn recv_many(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        let n = self.msgs.len();
        for m in &mut self.msgs {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            m.msg_hdr.msg_flags = 0;
        }
        let flags = if wait { libc::MSG_WAITFORONE } else { libc::MSG_DONTWAIT };
        // SAFETY: every mmsghdr points at a live iovec over this struct's
        // buffer and at a live sockaddr_storage of the stated size (see `new`);
        // `&mut self` gives exclusive use of all of them for the call.
        let r = unsafe { libc::recvmmsg(fd, self.msgs.as_mut_ptr(), n as u32, flags, std::ptr::null_mut()) };
        let Some(got) = received(r as isize)? else { return Ok(0) };
        for i in 0..got {
            self.names[i] = self.msgs[i].msg_hdr.msg_namelen;
            let (mut src, mut pkttype) = ([0u8; 6], PACKET_UNKNOWN);
            if !self.named {
                // SAFETY: on a packet socket the kernel wrote a sockaddr_ll
                // into this storage, which is larger and at least as aligned.
                let ll: libc::sockaddr_ll =
                    unsafe { std::ptr::read((&self.addrs[i] as *const libc::sockaddr_storage).cast()) };
                src.copy_from_slice(&ll.sll_addr[..6]);
                pkttype = ll.sll_pkttype;
            }
            self.meta[i] = RecvMeta {
                len: (self.msgs[i].msg_len as usize).min(self.slot),
                src,
                pkttype,
                truncated: self.msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(got)
    }

    /// Frame `i` of the last receive and its metadata.
    pub fn frame(&self, i: usize) -> (&[u8], RecvMeta) {
        let m = self.meta.get(i).copied().unwrap_or_default();
        let start = i * self.slot;
        (self.buf.get(start..start + m.len).unwrap_or(&[]), m)
    }
}

/// Single-frame waits in a row that must find their frame already queued
/// before waits read batches (request/response traffic finds one now and
/// then, when the sender is scheduled first).
const FAST_STREAK: u32 = 16;
/// Batch waits in a row that must find a single frame before waits read
/// single frames again.
const SPARSE_STREAK: u32 = 8;
/// The result of a receive call: the count, or `None` when nothing was
/// waiting (or a signal interrupted the wait).
fn received(r: isize) -> io::Result<Option<usize>> {
    if r >= 0 {
        return Ok(Some(r as usize));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
        _ => Err(e),
    }
}

/// Whether a send failed only because the kernel's queue is full (retry
/// later) rather than for an error.
fn queue_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// A blocking receive that returns faster than this found its frame queued.
const SLEPT: std::time::Duration = std::time::Duration::from_micros(2);

/// Sets the receive timeout of a socket (`SO_RCVTIMEO`).
pub fn set_recv_timeout(fd: RawFd, d: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval { tv_sec: d.as_secs() as libc::time_t, tv_usec: d.subsec_micros() as libc::suseconds_t };
    // SAFETY: passes a pointer to a live timeval and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as u32,
        )
    })
    .map(|_| ())
}

/// Sends one whole frame (Ethernet header included) with `send`,
/// non-blocking. Returns `Ok(false)` when the kernel's queue is full.
pub fn send_frame(fd: RawFd, frame: &[u8]) -> io::Result<bool> {
    // SAFETY: passes a live buffer and its length; the kernel only reads it.
    let r = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if queue_full(&e) { Ok(false) } else { Err(e) };
    }
    Ok(true)
}

/// Frames one `sendmmsg` call takes at most. The call's headers live on
/// the stack, so sending a batch allocates nothing; a longer burst takes
/// several calls (the callers loop on the count returned).
pub const SEND_CHUNK: usize = 64;

/// Sends up to [`SEND_CHUNK`] of `items` as Ethernet frames with one
/// `sendmmsg` call (non-blocking), each gathered without copying from the
/// 14-byte header and the message `frame` gives for it. Returns how many
/// the kernel took; `Ok(0)` when its queue is full.
pub fn send_batch<'a, T>(
    fd: RawFd,
    items: &'a [T],
    frame: impl Fn(&'a T) -> ([u8; 14], &'a [u8]),
) -> io::Result<usize> {
    let n = items.len().min(SEND_CHUNK);
    if n == 0 {
        return Ok(0);
    }
    // only the first `n` entries are written and used: nothing to zero
    let mut heads = [const { MaybeUninit::<[u8; 14]>::uninit() }; SEND_CHUNK];
    let mut iovs = [const { MaybeUninit::<[libc::iovec; 2]>::uninit() }; SEND_CHUNK];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_CHUNK];
    for (i, it) in items[..n].iter().enumerate() {
        let (head, msg) = frame(it);
        let head = heads[i].write(head);
        let iov = iovs[i].write([
            libc::iovec { iov_base: head.as_mut_ptr().cast(), iov_len: 14 },
            libc::iovec { iov_base: msg.as_ptr() as *mut libc::c_void, iov_len: msg.len() },
        ]);
        msgs[i].write(mmsg(std::ptr::null_mut(), 0, iov.as_mut_ptr(), 2));
    }
    // SAFETY: the first `n` headers are written, and each points at two
    // live iovecs (of `iovs`) over our own `heads` and buffers borrowed for
    // the call; no address is given (the socket is bound to its interface).
    unsafe { send_mmsg(fd, written(&mut msgs, n)) }
}

/// Sends up to [`SEND_CHUNK`] of `items` as datagrams, each to the address
/// `datagram` gives with it, with one `sendmmsg` call (non-blocking); the
/// batch ends before the first item `datagram` gives none for. Returns how
/// many the kernel took; `Ok(0)` when its queue is full (or the first item
/// has no datagram). An error is about the first datagram (for instance an
/// ICMP "port unreachable" an earlier datagram to that peer drew).
pub fn udp_send_batch<'a, T>(
    fd: RawFd,
    items: &'a [T],
    datagram: impl Fn(&'a T) -> Option<(std::net::SocketAddr, &'a [u8])>,
) -> io::Result<usize> {
    // only the first `n` entries are written and used: nothing to zero
    let mut names = [const { MaybeUninit::<SockAddr>::uninit() }; SEND_CHUNK];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; SEND_CHUNK];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_CHUNK];
    let mut n = 0;
    for (i, it) in items.iter().take(SEND_CHUNK).enumerate() {
        let Some((to, msg)) = datagram(it) else { break };
        n = i + 1;
        let to = names[i].write(SockAddr::from(to));
        let iov = iovs[i].write(libc::iovec { iov_base: msg.as_ptr() as *mut libc::c_void, iov_len: msg.len() });
        msgs[i].write(mmsg(to.as_ptr() as *mut libc::c_void, to.len(), iov, 1));
    }
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: the first `n` headers are written, and each points at a live
    // address (of `names`) and a live iovec (of `iovs`) over a buffer
    // borrowed for the call. (`SockAddr` owns no heap memory: leaving
    // `names` undropped leaks nothing.)
    unsafe { send_mmsg(fd, written(&mut msgs, n)) }
}

/// An `mmsghdr` with the given address and iovecs, no control data.
fn mmsg(name: *mut libc::c_void, namelen: libc::socklen_t, iov: *mut libc::iovec, iovlen: usize) -> libc::mmsghdr {
    // SAFETY: plain old data; zero is valid (some C libraries have
    // private padding fields, so no struct literal).
    let mut m: libc::mmsghdr = unsafe { zeroed() };
    m.msg_hdr.msg_name = name;
    m.msg_hdr.msg_namelen = namelen;
    m.msg_hdr.msg_iov = iov;
    m.msg_hdr.msg_iovlen = iovlen as _;
    m
}

/// The first `n` of `msgs` as a slice of written headers.
///
/// # Safety
/// The first `n` entries of `msgs` must have been written.
unsafe fn written(msgs: &mut [MaybeUninit<libc::mmsghdr>], n: usize) -> &mut [libc::mmsghdr] {
    // SAFETY: `n` is within `msgs`, whose first `n` entries the caller
    // wrote; `MaybeUninit<T>` has the layout of `T`.
    unsafe { std::slice::from_raw_parts_mut(msgs.as_mut_ptr().cast::<libc::mmsghdr>(), n.min(msgs.len())) }
}

/// One non-blocking `sendmmsg` of `msgs`. Returns how many went; `Ok(0)`
/// when the kernel's queue is full.
///
/// # Safety
/// Every pointer in `msgs` (addresses, iovecs and the buffers they name)
/// must be valid for reads of its stated length for the call.
unsafe fn send_mmsg(fd: RawFd, msgs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    // SAFETY: `msgs` is a live slice of its stated length, and what its
    // headers point at is valid, as the caller guarantees.
    let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, libc::MSG_DONTWAIT) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if queue_full(&e) { Ok(0) } else { Err(e) };
    }
    Ok(r as usize)
}

/// Waits until `fd` is readable or `timeout_ms` passes (-1 = forever), also
/// returning early when `wake` (an eventfd) is signalled. Returns (sock readable, woken).
pub fn poll2(fd: RawFd, wake: RawFd, timeout_ms: i32) -> io::Result<(bool, bool)> {
    let mut p = [
        libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
    ];
    // SAFETY: `p` is a live array of two pollfd and we pass its length.
    let r = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok((false, false)) } else { Err(e) };
    }
    Ok((p[0].revents != 0, p[1].revents != 0))
}

/// A non-blocking eventfd used to wake a thread waiting in [`poll2`].
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// Creates the eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd has no memory arguments; a valid fd is checked below.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor we own exclusively.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    /// Signals it.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
    /// Clears it.
    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64, as eventfd requires.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn waits_read_single_frames_until_frames_queue_up_then_batches() {
        let (tx, rx) = UnixDatagram::pair().expect("socketpair");
        let fd = rx.as_raw_fd();
        let mut rb = RecvBatch::new(64, 2048);
        // (few enough to fit the socket buffer: nobody reads while they are sent)
        let total = 150usize;
        for i in 0..total {
            tx.send(&(i as u32).to_be_bytes()).expect("send");
        }
        // every frame once and in order; single reads first (the switch
        // needs a run of reads that found their frame queued, which a
        // preempted test thread may break, so only "eventually" is checked)
        let (mut next, mut calls, mut biggest) = (0u32, 0usize, 0usize);
        while (next as usize) < total {
            let n = rb.recv(fd, true).expect("recv");
            calls += 1;
            if calls < FAST_STREAK as usize {
                assert_eq!(n, 1, "call {calls} reads a single frame");
                assert!(rb.received_at().is_some(), "single reads are timed");
            }
            biggest = biggest.max(n);
            for i in 0..n {
                assert_eq!(rb.frame(i).0, &next.to_be_bytes()[..]);
                next += 1;
            }
        }
        assert!(biggest > 1, "queued frames switched waits to batches");
        // one frame per wait: batch reads until a run of them found one
        // frame each, then single reads again
        let mut single_again = false;
        for _ in 0..=SPARSE_STREAK {
            tx.send(&[1; 4]).expect("send");
            assert_eq!(rb.recv(fd, true).expect("recv"), 1);
            single_again = rb.received_at().is_some();
        }
        assert!(single_again, "back to single reads");
    }

    #[test]
    fn batches_only_never_reads_single_frames() {
        let (tx, rx) = UnixDatagram::pair().expect("socketpair");
        let mut rb = RecvBatch::new(8, 2048).batches_only();
        for _ in 0..3 {
            tx.send(&[7; 60]).expect("send");
        }
        assert_eq!(rb.recv(rx.as_raw_fd(), true).expect("recv"), 3);
        assert!(rb.received_at().is_none());
    }

    #[test]
    fn a_single_read_reports_truncation_and_the_source_from_the_frame() {
        let (tx, rx) = UnixDatagram::pair().expect("socketpair");
        let mut rb = RecvBatch::new(4, 2048);
        let mut big = vec![0u8; 3000];
        big[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        tx.send(&big).expect("send");
        assert_eq!(rb.recv(rx.as_raw_fd(), true).expect("recv"), 1);
        let (data, m) = rb.frame(0);
        assert!(m.truncated);
        assert_eq!((data.len(), m.len, m.src, m.pkttype), (2048, 2048, [2, 0, 0, 0, 0, 9], PACKET_UNKNOWN));
    }
}
