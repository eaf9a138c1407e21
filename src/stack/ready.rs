//! Readiness descriptors: a file descriptor per socket that an event loop
//! (epoll, `poll`, mio, tokio's `AsyncFd`) can wait on, readable while the
//! socket's `try_recv` would return something and writable unless its last
//! `try_` send met congestion that has not cleared since.
//!
//! The descriptor is one end of a Unix stream pair the stack owns; the
//! other end stays inside. The stack writes one byte into the exposed end
//! while the socket's queue holds something, and reads it back once the
//! queue is empty: the exposed end is then readable exactly while there is
//! something to receive. For writability it fills the exposed end's small
//! send buffer while the socket is blocked, and drains it once congestion
//! clears (a Unix stream socket is writable while what it has sent and
//! the peer has not read stays under a quarter of its send buffer). The
//! two directions are independent, so the descriptor can be readable,
//! writable, both or neither, as a network socket can.
//!
//! Applications only wait on it; they must not read from it or write to it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;

use parking_lot::Mutex;

/// Bytes written to fill the exposed end's send buffer (far past a
/// quarter of the smallest buffer the kernel allows, about 4.6 KiB).
const FILL: [u8; 8192] = [0; 8192];

/// A socket's readiness descriptor: see the module documentation.
///
/// Wait on it with epoll, `poll`, mio or tokio's `AsyncFd`: readable means
/// the socket's `try_recv` returns something now; writable means its
/// `try_` sends are not known to block (after one returned
/// [`crate::Error::WouldBlock`], the descriptor stops being writable until
/// the congestion that refused it clears: a link's backlog or a member's
/// window, as the kernel's `tipc_poll` reports `EPOLLOUT`). Readiness is
/// level-triggered: it stays while the condition holds. Do not read from
/// or write to the descriptor.
#[derive(Debug)]
pub struct ReadyFd {
    /// The end applications wait on.
    outer: UnixStream,
    /// The stack's end.
    inner: UnixStream,
    /// (readable, writable) as the descriptor shows them now; transitions
    /// happen under this lock, so the flags always match the descriptor.
    state: Mutex<(bool, bool)>,
}

impl ReadyFd {
    /// A descriptor that is writable and, if `readable`, readable.
    pub(super) fn new(readable: bool) -> std::io::Result<ReadyFd> {
        let (outer, inner) = UnixStream::pair()?;
        outer.set_nonblocking(true)?;
        inner.set_nonblocking(true)?;
        // the smallest send buffer the kernel allows: a few KiB fill it
        socket2::SockRef::from(&outer).set_send_buffer_size(1)?;
        let r = ReadyFd { outer, inner, state: Mutex::new((false, true)) };
        r.set_readable(readable);
        Ok(r)
    }

    /// Makes the descriptor readable or not (nothing happens if it already
    /// is as asked).
    pub(super) fn set_readable(&self, on: bool) {
        let mut s = self.state.lock();
        if s.0 == on {
            return;
        }
        s.0 = on;
        if on {
            let _ = (&self.inner).write(&[1]);
        } else {
            let mut buf = [0u8; 64];
            while matches!((&self.outer).read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Makes the descriptor writable or not (nothing happens if it already
    /// is as asked).
    pub(super) fn set_writable(&self, on: bool) {
        let mut s = self.state.lock();
        if s.1 == on {
            return;
        }
        s.1 = on;
        if on {
            let mut buf = [0u8; 4096];
            while matches!((&self.inner).read(&mut buf), Ok(n) if n > 0) {}
        } else {
            // until the kernel refuses more: not writable any longer
            while matches!((&self.outer).write(&FILL), Ok(n) if n > 0) {}
        }
    }
}

impl AsFd for ReadyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.outer.as_fd()
    }
}

impl AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.outer.as_raw_fd()
    }
}
