//! Connection sockets: [`ConnSocket`], SEQPACKET or STREAM, as Linux's
//! AF_TIPC gives them (net/tipc/socket.c). A server binds a service name,
//! listens and accepts; a client connects by name or socket address; both
//! send and receive with the kernel's connection flow control, and see the
//! end of the connection as end of stream or a typed error.

use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use bytes::{Buf, Bytes};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use tipc_group::{ConnEnd, ConnEvent, ConnectTo};
use tipc_wire::{ErrorCode, Importance, Instance, MemberId, PortId, Scope, ServiceRange, ServiceType};

use super::ready::ReadyFd;
use super::shared::{Deadline, Shared};
use crate::error::Error;

/// How long a connect waits for the peer's answer unless told otherwise:
/// the kernel's `CONN_TIMEOUT_DEFAULT`, 8 s.
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(8);

/// The two kinds of connection socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// Message boundaries kept; a message holds at most 66 000 bytes.
    Seqpacket,
    /// A byte stream: sends of any length are cut into messages of at most
    /// 66 000 bytes, receives do not keep boundaries.
    Stream,
}

/// What a receive returned that was not data.
#[derive(Debug, Default)]
struct RecvState {
    /// The unread rest of a message a stream reader took in part.
    partial: Bytes,
    /// The whole length of that message, reported once it is read.
    partial_len: usize,
    /// How the connection ended, once the end was read.
    ended: Option<ConnEnd>,
}

/// A SEQPACKET or STREAM socket ([`crate::Stack::conn_socket`]).
///
/// ```no_run
/// use tipc_rs::{ConnKind, Scope, Stack};
/// use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
/// let stack = Stack::builder().iface("eth0").start()?;
/// // server
/// let srv = stack.conn_socket(ConnKind::Seqpacket)?;
/// srv.bind(ServiceRange::single(ServiceType(1000), Instance(1)), Scope::Cluster)?;
/// srv.listen()?;
/// let (conn, peer) = srv.accept()?;
/// while let Some(msg) = conn.recv()? {
///     conn.send(msg)?; // echo until the client ends the connection
/// }
/// # let _ = peer;
/// # Ok::<(), tipc_rs::Error>(())
/// ```
pub struct ConnSocket {
    pub(super) shared: Arc<Shared>,
    pub(super) port: PortId,
    pub(super) kind: ConnKind,
    pub(super) rx: Receiver<ConnEvent>,
    state: Mutex<RecvState>,
    importance: Mutex<Importance>,
    /// Its readiness descriptor, once asked for.
    ready: OnceLock<Arc<ReadyFd>>,
}

impl std::fmt::Debug for ConnSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnSocket({:?} {})", self.kind, self.port)
    }
}

impl ConnSocket {
    pub(super) fn new(shared: Arc<Shared>, port: PortId, kind: ConnKind, rx: Receiver<ConnEvent>) -> ConnSocket {
        ConnSocket {
            shared,
            port,
            kind,
            rx,
            state: Mutex::new(RecvState::default()),
            importance: Mutex::new(Importance::Low),
            ready: OnceLock::new(),
        }
    }

    /// The socket's readiness descriptor, made on first use (see
    /// [`ReadyFd`]). On a connection it is readable while
    /// [`ConnSocket::try_recv`] returns something (data, the orderly end or
    /// the error of an aborted connection: once the end has been read, for
    /// good), and writable unless [`ConnSocket::try_send`] met a full window
    /// that has not opened since. On a listener it is readable while
    /// [`ConnSocket::try_accept`] has a request to take. Wait on it with
    /// epoll, mio or tokio's `AsyncFd`.
    ///
    /// # Errors
    /// [`Error::Readiness`] when the descriptor cannot be made (out of
    /// file descriptors).
    pub fn ready_fd(&self) -> Result<&ReadyFd, Error> {
        self.ready_shared().map(|r| &**r)
    }

    /// The readiness descriptor as shared with the stack (made on first
    /// use, as [`Self::ready_fd`]).
    pub(super) fn ready_shared(&self) -> Result<&Arc<ReadyFd>, Error> {
        super::sockets::ready_cell(&self.shared, self.port, &self.ready, |g| {
            self.has_input() || g.core.pending_requests(self.port) > 0
        })
    }

    /// Whether a receive returns at once: queued events, the rest of a
    /// message, or the end.
    fn has_input(&self) -> bool {
        let st = self.state.lock();
        !self.rx.is_empty() || !st.partial.is_empty() || st.ended.is_some()
    }

    /// After a receive: the descriptor stops being readable once nothing
    /// is left (cleared, then looked at again, as for the other sockets).
    fn refresh_readable(&self) {
        if let Some(r) = self.ready.get()
            && !self.has_input()
        {
            r.set_readable(false);
            if self.has_input() {
                r.set_readable(true);
            }
        }
    }

    /// Our socket address (node 0 until the address is confirmed).
    pub fn id(&self) -> MemberId {
        self.shared.socket_id(self.port)
    }
    /// SEQPACKET or STREAM.
    pub fn kind(&self) -> ConnKind {
        self.kind
    }
    /// The peer socket, once connected.
    pub fn peer(&self) -> Option<MemberId> {
        self.shared.inner.lock().core.conn_peer(self.port)
    }

    /// Sets the importance of the connection's messages (LOW by default),
    /// before it connects: the accepting side takes the connecting side's
    /// importance, as in the kernel (net/tipc/socket.c `tipc_accept`).
    pub fn set_importance(&self, importance: Importance) {
        *self.importance.lock() = importance;
    }

    /// Binds a service range to this socket, for a server that will listen.
    ///
    /// # Errors
    /// As [`crate::PortSocket::bind`].
    pub fn bind(&self, range: ServiceRange, scope: Scope) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        g.core.bind(self.port, range, scope)?;
        self.shared.flush(&mut g);
        Ok(())
    }

    /// Makes this a listening socket.
    ///
    /// # Errors
    /// [`Error::IsConnected`].
    pub fn listen(&self) -> Result<(), Error> {
        self.shared.inner.lock().core.listen(self.port)
    }

    /// Waits for a connection request and accepts it: returns the new
    /// connection and the connecting socket.
    ///
    /// # Errors
    /// [`Error::NotListening`], [`Error::StackStopped`].
    pub fn accept(&self) -> Result<(ConnSocket, MemberId), Error> {
        self.accept_inner(None)
    }
    /// As [`ConnSocket::accept`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ConnSocket::accept`], and [`Error::Timeout`].
    pub fn accept_timeout(&self, timeout: StdDuration) -> Result<(ConnSocket, MemberId), Error> {
        self.accept_inner(Some(timeout))
    }
    /// Accepts a request if one waits.
    ///
    /// # Errors
    /// As [`ConnSocket::accept`], and [`Error::WouldBlock`] when none waits.
    pub fn try_accept(&self) -> Result<(ConnSocket, MemberId), Error> {
        self.accept_inner(Some(StdDuration::ZERO))
    }

    fn accept_inner(&self, timeout: Option<StdDuration>) -> Result<(ConnSocket, MemberId), Error> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            {
                let mut g = self.shared.inner.lock();
                if g.stopped {
                    return Err(Error::StackStopped);
                }
                let now = g.now();
                let r = g.core.accept(now, self.port);
                // no request left: the wake-ups queued for the taken ones
                // go, and with them the readiness (under the lock the next
                // request's wake-up is queued under)
                if let Some(ready) = self.ready.get()
                    && g.core.pending_requests(self.port) == 0
                {
                    while self.rx.try_recv().is_ok() {}
                    ready.set_readable(false);
                }
                match r {
                    Ok(a) => {
                        let (s, r) = crossbeam_channel::unbounded();
                        if let Some(d) = a.data {
                            let _ = s.send(ConnEvent::Data(d));
                        }
                        g.conn_sockets.insert(a.port, s);
                        self.shared.flush(&mut g);
                        self.shared.rearm(&g);
                        let c = ConnSocket::new(self.shared.clone(), a.port, self.kind, r);
                        return Ok((c, a.peer));
                    }
                    Err(Error::WouldBlock(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            // wait for the next request (the listener's queue only carries
            // Incoming)
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                    Some(l) if !l.is_zero() => Some(l),
                    _ => {
                        return Err(if timeout == Some(StdDuration::ZERO) {
                            Error::WouldBlock(tipc_wire::NodeAddr(0))
                        } else {
                            Error::Timeout
                        });
                    }
                },
            };
            match self.shared.recv_on(&self.rx, left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Error::StackStopped),
            }
        }
    }

    /// Connects to one socket bound to `inst` of `stype`, waiting at most
    /// [`CONNECT_TIMEOUT`] for the answer.
    ///
    /// # Errors
    /// [`Error::NoService`] at once when nobody binds the name;
    /// [`Error::ConnRefused`] when the destination does not listen;
    /// [`Error::Timeout`]; [`Error::ConnReset`] (`NO_NODE`) when its node
    /// is lost meanwhile; [`Error::IsConnected`], [`Error::IsListening`],
    /// [`Error::IsBound`], [`Error::NoLink`], [`Error::NotReady`].
    pub fn connect(&self, stype: ServiceType, inst: Instance) -> Result<(), Error> {
        self.connect_inner(ConnectTo::Service { stype, inst }, Bytes::new(), CONNECT_TIMEOUT)
    }
    /// Connects to the socket `to` (node 0: ours), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ConnSocket::connect`].
    pub fn connect_socket(&self, to: MemberId, timeout: StdDuration) -> Result<(), Error> {
        self.connect_inner(ConnectTo::Socket(to), Bytes::new(), timeout)
    }
    /// Connects to `to`, the first message (`data`) riding in the SYN: the
    /// kernel's implied connect (a `sendto` on an unconnected socket).
    ///
    /// # Errors
    /// As [`ConnSocket::connect`], and [`Error::TooLarge`].
    pub fn connect_with(&self, to: ConnectTo, data: Bytes, timeout: StdDuration) -> Result<(), Error> {
        self.connect_inner(to, data, timeout)
    }

    /// Sends the connection request (with `data` in it when not empty);
    /// the outcome arrives later ([`ConnSocket::connect_outcome`]).
    pub(super) fn start_connect(&self, to: ConnectTo, data: Bytes) -> Result<(), Error> {
        let imp = *self.importance.lock();
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return Err(Error::StackStopped);
        }
        let now = g.now();
        let r = g.core.connect(now, self.port, to, data, imp);
        self.shared.flush(&mut g);
        self.shared.rearm(&g);
        r
    }

    /// The outcome of a connect started with [`ConnSocket::start_connect`]
    /// if it has arrived (without waiting).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(super) fn connect_outcome(&self) -> Option<Result<(), Error>> {
        let r = loop {
            match self.rx.try_recv() {
                Ok(ConnEvent::Connected { .. }) => break Some(Ok(())),
                Ok(ConnEvent::Closed(end)) => {
                    self.state.lock().ended = Some(end);
                    break Some(Err(end_error(end)));
                }
                Ok(_) => {}
                Err(crossbeam_channel::TryRecvError::Empty) => break None,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break Some(Err(Error::StackStopped)),
            }
        };
        self.refresh_readable();
        r
    }

    /// Gives up a connect that did not complete in time: nothing goes on
    /// the wire.
    pub(super) fn abandon_connect(&self) {
        let mut g = self.shared.inner.lock();
        let _ = g.core.conn_shutdown(self.port);
        self.shared.flush(&mut g);
    }

    fn connect_inner(&self, to: ConnectTo, data: Bytes, timeout: StdDuration) -> Result<(), Error> {
        self.start_connect(to, data)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.shared.recv_on(&self.rx, Some(left)) {
                Ok(ConnEvent::Connected { .. }) => return Ok(()),
                Ok(ConnEvent::Closed(end)) => {
                    self.state.lock().ended = Some(end);
                    return Err(end_error(end));
                }
                // data of an ACK carrying some: the connection is up and
                // the data waits behind the Connected event
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    // the attempt ends here; nothing goes on the wire
                    self.abandon_connect();
                    return Err(Error::Timeout);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(Error::StackStopped),
            }
        }
    }

    /// Sends `data`: one message on SEQPACKET (at most 66 000 bytes), any
    /// length on STREAM (in pieces of at most 66 000 bytes). Waits while
    /// the peer's window or the link is full.
    ///
    /// # Errors
    /// [`Error::NotConnected`], [`Error::ConnClosed`] (the connection
    /// ended), [`Error::TooLarge`] (SEQPACKET), [`Error::StackStopped`].
    pub fn send(&self, data: Bytes) -> Result<(), Error> {
        self.send_inner(data, Deadline::Never).map(|_| ())
    }
    /// As [`ConnSocket::send`] without waiting: returns how many bytes went
    /// (on STREAM, the pieces the window took, possibly not all; on
    /// SEQPACKET, the whole message).
    ///
    /// # Errors
    /// As [`ConnSocket::send`], and [`Error::WouldBlock`] when nothing
    /// could go.
    pub fn try_send(&self, data: Bytes) -> Result<usize, Error> {
        self.send_inner(data, Deadline::Now)
    }
    /// As [`ConnSocket::send`], waiting at most `timeout`: returns how many
    /// bytes went (on STREAM, fewer than given when the time ran out after
    /// some pieces).
    ///
    /// # Errors
    /// As [`ConnSocket::send`], and [`Error::Timeout`] when nothing went.
    pub fn send_timeout(&self, data: Bytes, timeout: StdDuration) -> Result<usize, Error> {
        self.send_inner(data, Deadline::after(timeout))
    }

    /// Sends in pieces of at most 66 000 bytes (one on SEQPACKET); returns
    /// the bytes sent. A piece that cannot go before `deadline` ends the
    /// send: with its error when nothing went, else with what went.
    fn send_inner(&self, mut data: Bytes, deadline: Deadline) -> Result<usize, Error> {
        if self.kind == ConnKind::Seqpacket || data.len() <= tipc_wire::MAX_USER_MSG_SIZE {
            let n = data.len();
            return self.send_one(data, deadline).map(|()| n);
        }
        let mut sent = 0;
        while !data.is_empty() {
            let piece = data.split_to(data.len().min(tipc_wire::MAX_USER_MSG_SIZE));
            let n = piece.len();
            match self.send_one(piece, deadline) {
                Ok(()) => sent += n,
                Err(Error::WouldBlock(_) | Error::Timeout) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn send_one(&self, data: Bytes, deadline: Deadline) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_ready(deadline, self.ready.get(), |core, now| core.conn_send(now, me, data.clone()))
    }

    /// Receives the next message (SEQPACKET) or the next bytes (STREAM:
    /// what one message brought, or its unread rest); `None` once the peer
    /// shut the connection down in order.
    ///
    /// # Errors
    /// [`Error::ConnReset`] when the connection was aborted (the peer
    /// closed or was killed: `NO_PORT`; its node was lost: `NO_NODE`; a
    /// probe went unanswered: `OK`); [`Error::NotConnected`] before a
    /// connection; [`Error::StackStopped`].
    pub fn recv(&self) -> Result<Option<Bytes>, Error> {
        let r = self.recv_inner(None, true);
        self.refresh_readable();
        r
    }
    /// As [`ConnSocket::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ConnSocket::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<Option<Bytes>, Error> {
        let r = self.recv_inner(Some(timeout), true);
        self.refresh_readable();
        r
    }
    /// As [`ConnSocket::recv`] without waiting.
    ///
    /// # Errors
    /// As [`ConnSocket::recv`], and [`Error::WouldBlock`] when nothing waits.
    pub fn try_recv(&self) -> Result<Option<Bytes>, Error> {
        let r = self.recv_inner(Some(StdDuration::ZERO), true);
        self.refresh_readable();
        r
    }

    /// Reads up to `buf.len()` bytes of a STREAM connection (on SEQPACKET,
    /// the rest of a message that does not fit is dropped, as a kernel
    /// SEQPACKET `recv` truncates); 0 at the orderly end.
    ///
    /// # Errors
    /// As [`ConnSocket::recv`].
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let r = self.read_inner(buf, None);
        self.refresh_readable();
        r
    }
    /// As [`ConnSocket::read`], waiting at most `timeout` for data.
    ///
    /// # Errors
    /// As [`ConnSocket::read`], and [`Error::Timeout`].
    pub fn read_timeout(&self, buf: &mut [u8], timeout: StdDuration) -> Result<usize, Error> {
        let r = self.read_inner(buf, Some(timeout));
        self.refresh_readable();
        r
    }

    fn read_inner(&self, buf: &mut [u8], timeout: Option<StdDuration>) -> Result<usize, Error> {
        let mut st = self.state.lock();
        if st.partial.is_empty() {
            drop(st);
            let Some(b) = self.recv_inner(timeout, false)? else { return Ok(0) };
            st = self.state.lock();
            st.partial_len = b.len();
            st.partial = b;
        }
        let n = st.partial.len().min(buf.len());
        buf[..n].copy_from_slice(&st.partial[..n]);
        st.partial.advance(n);
        if st.partial.is_empty() || self.kind == ConnKind::Seqpacket {
            st.partial = Bytes::new();
            let len = std::mem::take(&mut st.partial_len);
            drop(st);
            self.consumed(len);
        }
        Ok(n)
    }

    /// The next data or the end; a message counts as read (towards the
    /// peer's window) when `consume`, else the caller reports it once read.
    fn recv_inner(&self, timeout: Option<StdDuration>, consume: bool) -> Result<Option<Bytes>, Error> {
        {
            let mut st = self.state.lock();
            if !st.partial.is_empty() {
                // a read() left part of a message: it comes first
                let b = std::mem::take(&mut st.partial);
                let len = std::mem::take(&mut st.partial_len);
                drop(st);
                self.consumed(len);
                return Ok(Some(b));
            }
            if let Some(end) = st.ended {
                return end_result(end);
            }
        }
        loop {
            let ev = match timeout {
                Some(t) if t.is_zero() => match self.rx.try_recv() {
                    Ok(ev) => ev,
                    Err(crossbeam_channel::TryRecvError::Empty) => {
                        return Err(self.idle_error(Error::WouldBlock(tipc_wire::NodeAddr(0))));
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return Err(Error::StackStopped),
                },
                _ => match self.shared.recv_on(&self.rx, timeout) {
                    Ok(ev) => ev,
                    Err(RecvTimeoutError::Timeout) => return Err(self.idle_error(Error::Timeout)),
                    Err(RecvTimeoutError::Disconnected) => return Err(Error::StackStopped),
                },
            };
            match ev {
                ConnEvent::Data(d) => {
                    if consume {
                        self.consumed(d.len());
                    }
                    return Ok(Some(d));
                }
                ConnEvent::Closed(end) => {
                    self.state.lock().ended = Some(end);
                    return end_result(end);
                }
                ConnEvent::Connected { .. } | ConnEvent::Incoming | ConnEvent::Writable => {}
            }
        }
    }

    /// What an empty wait means: nothing yet on a connection, or no
    /// connection at all.
    fn idle_error(&self, e: Error) -> Error {
        if self.shared.inner.lock().core.conn_peer(self.port).is_none() { Error::NotConnected } else { e }
    }

    /// The application has read a whole message of `len` bytes: the peer's
    /// window may reopen.
    fn consumed(&self, len: usize) {
        let mut g = self.shared.inner.lock();
        g.core.conn_consumed(self.port, len);
        self.shared.flush(&mut g);
    }

    /// Ends the connection in order: the peer reads end of stream (the
    /// kernel's `shutdown(SHUT_RDWR)`, `TIPC_CONN_SHUTDOWN` on the wire).
    /// Later sends fail with [`Error::ConnClosed`].
    ///
    /// # Errors
    /// [`Error::NotConnected`].
    pub fn shutdown(&self) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        let r = g.core.conn_shutdown(self.port);
        self.shared.flush(&mut g);
        r
    }
}

/// What a receive returns once the connection ended.
fn end_result(end: ConnEnd) -> Result<Option<Bytes>, Error> {
    match end {
        ConnEnd::Shutdown => Ok(None),
        other => Err(end_error(other)),
    }
}

/// The error of an ended connection.
fn end_error(end: ConnEnd) -> Error {
    match end {
        ConnEnd::Shutdown => Error::ConnClosed,
        ConnEnd::Reset(e) => Error::ConnReset(e),
        ConnEnd::NodeLost => Error::ConnReset(ErrorCode::NoNode),
        ConnEnd::ProbeTimeout => Error::ConnReset(ErrorCode::Ok),
        ConnEnd::Refused(e) => Error::ConnRefused(e),
    }
}

impl Drop for ConnSocket {
    /// Closing ends the connection (the peer sees `NO_PORT`: ECONNRESET on
    /// its next receive), or returns a listener's waiting requests.
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.conn_sockets.remove(&self.port);
        g.ready.remove(&self.port);
        g.core.close_port(self.port);
        self.shared.flush(&mut g);
    }
}
