//! The system calls of the rigs, the veth tests and the benches: entering a
//! network namespace, pinning a thread to a CPU, giving up capabilities,
//! and raw frame IO (the relay's batches, the hostile-input tests' single
//! frames).
//!
//! Made through well-kept libraries — `nix` (`setns`, `sched_setaffinity`,
//! `recvmmsg`/`sendmmsg`, `poll`, eventfd, socket options), `socket2`
//! (socket filters and buffers) and `caps` (`capget`/`capset`) — so this
//! crate has no `unsafe` code. The raw socket is the bearer's own,
//! [`tipc_bearer::open_packet_socket`]; the rest of the bearer's socket
//! layer is private to it.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, CpuSet, sched_setaffinity, setns};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    ControlMessage, LinkAddr, MsgFlags, MultiHeaders, recvmmsg, send, sendmmsg, setsockopt, sockopt,
};
use nix::unistd::Pid;
use tipc_bearer::Socket;

/// Moves the calling thread into the network namespace at `path`
/// (e.g. `/var/run/netns/NAME`). Sockets opened afterwards by this thread
/// belong to that namespace.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let ns = std::fs::File::open(path)?;
    setns(&ns, CloneFlags::CLONE_NEWNET)?;
    Ok(())
}

/// Pins the calling thread to one CPU (`cpu` modulo the size of a CPU set).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu % CpuSet::count())?;
    // pid 0: the calling thread
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

/// The CPU time this process has used so far, user and system, in all its
/// threads (`getrusage(RUSAGE_SELF)`), in seconds: the benches' CPU cost
/// per message.
pub fn process_cpu_seconds() -> io::Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(secs(u.user_time()) + secs(u.system_time()))
}

/// Clears the effective capability set of the calling thread (capabilities
/// are per thread on Linux; other threads keep theirs). Useful to give up
/// `CAP_NET_RAW` once a socket is open, or to see how a call fails without it.
pub fn drop_effective_caps_on_this_thread() -> io::Result<()> {
    // tid None: the calling thread
    caps::clear(None, caps::CapSet::Effective).map_err(|e| io::Error::other(e.to_string()))
}

/// Opens a raw socket that only sends, on interface `ifindex` of the calling
/// thread's namespace: the bearer's socket
/// ([`tipc_bearer::open_packet_socket`]) with a socket filter that
/// accepts no frame, so nothing queues up unread on it. Frames go out with
/// [`send_frame`] as they are, Ethernet header included.
pub fn open_send_socket(ifindex: u32) -> io::Result<Socket> {
    let sock = tipc_bearer::open_packet_socket(ifindex)?;
    // classic BPF, one instruction: `ret #0` (keep 0 bytes of every frame)
    let keep_none = libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: 0 };
    sock.attach_filter(&[keep_none])?;
    Ok(sock)
}

/// Whether a send failed only because the kernel's queue is full for now.
fn queue_full(e: Errno) -> bool {
    matches!(e, Errno::EAGAIN | Errno::ENOBUFS)
}

/// Sends one whole frame (Ethernet header included) on the raw socket `fd`
/// without waiting. Returns `Ok(false)` when the kernel's queue is full.
pub fn send_frame(fd: RawFd, frame: &[u8]) -> io::Result<bool> {
    match send(fd, frame, MsgFlags::MSG_DONTWAIT) {
        Ok(_) => Ok(true),
        Err(e) if queue_full(e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Raises both socket buffers of `sock` to `bytes`, past the sysctl caps
/// where the process may (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN), else as
/// far as the caps allow; never fails.
pub(crate) fn set_buffers(sock: &Socket, bytes: usize) {
    if setsockopt(sock, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = sock.set_recv_buffer_size(bytes);
    }
    if setsockopt(sock, sockopt::SndBufForce, &bytes).is_err() {
        let _ = sock.set_send_buffer_size(bytes);
    }
}

/// One frame of a [`Batches::recv`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Received {
    /// Bytes received (at most the buffer's size).
    pub(crate) len: usize,
    /// Whether it is one of this host's outgoing frames (packet type
    /// `PACKET_OUTGOING`) rather than one that arrived.
    pub(crate) outgoing: bool,
}

/// Reusable `recvmmsg`/`sendmmsg` headers of one thread.
pub(crate) struct Batches {
    recv: MultiHeaders<LinkAddr>,
    send: MultiHeaders<LinkAddr>,
    /// Frames one `sendmmsg` call takes at most.
    send_max: usize,
}

impl Batches {
    /// Headers for receives of up to `recv_max` frames and sends of up to
    /// `send_max` frames per call.
    pub(crate) fn new(recv_max: usize, send_max: usize) -> Batches {
        let send_max = send_max.max(1);
        Batches {
            recv: MultiHeaders::preallocate(recv_max.max(1), None),
            send: MultiHeaders::preallocate(send_max, None),
            send_max,
        }
    }

    /// Receives up to one frame per buffer of `bufs` from `sock` without
    /// waiting (`recvmmsg`), describing each in `got` (cleared first).
    /// Returns how many arrived: 0 when none was waiting.
    pub(crate) fn recv(&mut self, sock: &Socket, bufs: &mut [&mut [u8]], got: &mut Vec<Received>) -> io::Result<usize> {
        got.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let frames = match recvmmsg(sock.as_raw_fd(), &mut self.recv, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None) {
            Ok(frames) => frames,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        got.extend(frames.map(|m| Received {
            len: m.bytes,
            outgoing: m.address.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING),
        }));
        Ok(got.len())
    }

    /// Sends whole frames (Ethernet headers included) on `sock` with one
    /// `sendmmsg` call, without waiting. Returns how many the kernel took
    /// (the first ones, at most the batch size); `Ok(0)` when its queue is full.
    pub(crate) fn send(&mut self, sock: &Socket, frames: &[impl AsRef<[u8]>]) -> io::Result<usize> {
        let n = frames.len().min(self.send_max);
        if n == 0 {
            return Ok(0);
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = frames[..n].iter().map(|f| [IoSlice::new(f.as_ref())]).collect();
        // bound sockets: no destination address
        let to: Vec<Option<LinkAddr>> = vec![None; n];
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        match sendmmsg(sock.as_raw_fd(), &mut self.send, &iovs, &to, no_cmsgs, MsgFlags::MSG_DONTWAIT) {
            Ok(sent) => Ok(sent.count()),
            Err(e) if queue_full(e) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// Wakes a thread waiting in [`Wake::wait`] (an eventfd).
#[derive(Debug)]
pub(crate) struct Wake(EventFd);

impl Wake {
    /// A non-blocking eventfd.
    pub(crate) fn new() -> io::Result<Wake> {
        Ok(Wake(EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?))
    }

    /// Signals it: waits return at once until [`Wake::clear`].
    pub(crate) fn signal(&self) {
        let _ = self.0.write(1);
    }

    /// Clears the signal.
    pub(crate) fn clear(&self) {
        let _ = self.0.read();
    }

    /// Waits until `sock` is readable, this is signalled or `timeout_ms`
    /// passes (-1: no limit). Returns (readable, signalled); an interrupted
    /// wait returns neither.
    pub(crate) fn wait(&self, sock: &Socket, timeout_ms: i32) -> io::Result<(bool, bool)> {
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok((false, false)),
            Err(e) => return Err(e.into()),
        }
        let ready = |p: &PollFd<'_>| p.revents().is_some_and(|r| !r.is_empty());
        Ok((ready(&fds[0]), ready(&fds[1])))
    }
}
