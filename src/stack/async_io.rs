//! Async sockets for tokio (feature `tokio`): [`AsyncGroupSocket`],
//! [`AsyncPortSocket`] and [`AsyncConnSocket`] (with `AsyncRead` and
//! `AsyncWrite`). Each waits on its socket's readiness descriptor
//! ([`ReadyFd`]) through the runtime's reactor (`AsyncFd`), then makes the
//! socket's non-blocking call: no thread per socket, and no blocking call
//! on a runtime thread.
//!
//! Every future here is cancellation-safe: dropping one before it
//! completes loses nothing. A receive takes a message only in the poll
//! that returns it; a send either hands the whole message to the stack in
//! the poll that returns, or hands nothing over.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn::{CONNECT_TIMEOUT, ConnSocket};
use super::ready::ReadyFd;
use super::sockets::{GroupSocket, PortSocket};
use crate::core::PortMessage;
use crate::error::Error;
use tipc_group::{ConnectTo, Dest, GroupEvent};
use tipc_wire::{Instance, MemberId, NodeAddr, PortId, ServiceType};

/// The descriptor as the reactor holds it.
#[derive(Debug)]
struct Fd(Arc<ReadyFd>);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn register(r: Result<Arc<ReadyFd>, Error>) -> Result<AsyncFd<Fd>, Error> {
    // `AsyncFd::new` is deprecated since tokio 1.54 because a `T` could
    // close its descriptor while still registered; ours cannot: `Fd` owns
    // a reference to the `ReadyFd`, which owns the descriptor, so it lives
    // as long as the registration (the replacement, `register`, is
    // `unsafe` only to have the caller promise this)
    #[allow(deprecated)]
    AsyncFd::new(Fd(r?)).map_err(Error::Readiness)
}

/// Waits until `take` finds something: it runs after each readable wake-up
/// and returns `None` when there is nothing after all (readiness is then
/// cleared and waited for again).
async fn receive<T>(fd: &AsyncFd<Fd>, mut take: impl FnMut() -> Result<Option<T>, Error>) -> Result<T, Error> {
    loop {
        let mut g = fd.readable().await.map_err(Error::Readiness)?;
        if let Some(v) = take()? {
            return Ok(v);
        }
        g.clear_ready();
    }
}

/// A non-blocking call's result for [`receive`]: `WouldBlock` is nothing
/// yet.
fn nothing_yet<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::WouldBlock(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `send` (a `try_` send) until it does not report congestion,
/// waiting for writability in between.
async fn transmit<T>(fd: &AsyncFd<Fd>, mut send: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        let mut g = fd.writable().await.map_err(Error::Readiness)?;
        match send() {
            Err(Error::WouldBlock(_)) => g.clear_ready(),
            other => return other,
        }
    }
}

/// A [`GroupSocket`] for tokio: `recv` and the sends are futures.
#[derive(Debug)]
pub struct AsyncGroupSocket {
    sock: GroupSocket,
    fd: AsyncFd<Fd>,
}

impl AsyncGroupSocket {
    /// Wraps `sock` (join, leave and the rest through
    /// [`AsyncGroupSocket::get_ref`]). Call it within a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Readiness`] when the descriptor cannot be made or
    /// registered (out of file descriptors, or no runtime).
    pub fn new(sock: GroupSocket) -> Result<AsyncGroupSocket, Error> {
        let fd = register(sock.ready_shared().cloned())?;
        Ok(AsyncGroupSocket { sock, fd })
    }
    /// The socket, for its non-async calls.
    pub fn get_ref(&self) -> &GroupSocket {
        &self.sock
    }
    /// Waits for the next message or member event.
    ///
    /// # Errors
    /// [`Error::StackStopped`].
    pub async fn recv(&self) -> Result<GroupEvent, Error> {
        receive(&self.fd, || self.sock.try_next()).await
    }
    async fn send(&self, dest: Dest, data: Bytes) -> Result<(), Error> {
        transmit(&self.fd, || self.sock.send_now(dest, data.clone())).await
    }
    /// Unicast to a member's socket, waiting while its window is exhausted.
    ///
    /// # Errors
    /// As [`GroupSocket::send_unicast`].
    pub async fn send_unicast(&self, to: MemberId, data: Bytes) -> Result<(), Error> {
        self.send(Dest::Member(to), data).await
    }
    /// Anycast to one member holding `inst`.
    ///
    /// # Errors
    /// As [`GroupSocket::send_anycast`].
    pub async fn send_anycast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupAnycast(inst), data).await
    }
    /// Multicast to every member holding `inst`.
    ///
    /// # Errors
    /// As [`GroupSocket::send_multicast`].
    pub async fn send_multicast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupMulticast(inst), data).await
    }
    /// Broadcast to every member.
    ///
    /// # Errors
    /// As [`GroupSocket::broadcast`].
    pub async fn broadcast(&self, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupBroadcast, data).await
    }
}

/// A [`PortSocket`] for tokio.
#[derive(Debug)]
pub struct AsyncPortSocket {
    sock: PortSocket,
    fd: AsyncFd<Fd>,
}

impl AsyncPortSocket {
    /// Wraps `sock`. Call it within a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Readiness`] when the descriptor cannot be made or registered.
    pub fn new(sock: PortSocket) -> Result<AsyncPortSocket, Error> {
        let fd = register(sock.ready_shared().cloned())?;
        Ok(AsyncPortSocket { sock, fd })
    }
    /// The socket, for its non-async calls (bind and the rest).
    pub fn get_ref(&self) -> &PortSocket {
        &self.sock
    }
    /// Waits for the next message.
    ///
    /// # Errors
    /// [`Error::StackStopped`].
    pub async fn recv(&self) -> Result<PortMessage, Error> {
        receive(&self.fd, || self.sock.try_next()).await
    }
    /// Sends to a socket, waiting while the link is congested.
    ///
    /// # Errors
    /// As [`PortSocket::send_to`].
    pub async fn send_to(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        transmit(&self.fd, || self.sock.try_send_to(node, port, data.clone())).await
    }
}

/// A [`ConnSocket`] for tokio: connect, accept, receive and send are
/// futures, and a STREAM connection is `AsyncRead` and `AsyncWrite`.
#[derive(Debug)]
pub struct AsyncConnSocket {
    sock: ConnSocket,
    fd: AsyncFd<Fd>,
}

impl AsyncConnSocket {
    /// Wraps `sock` (bind and listen through [`AsyncConnSocket::get_ref`]).
    /// Call it within a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Readiness`] when the descriptor cannot be made or registered.
    pub fn new(sock: ConnSocket) -> Result<AsyncConnSocket, Error> {
        let fd = register(sock.ready_shared().cloned())?;
        Ok(AsyncConnSocket { sock, fd })
    }
    /// The socket, for its non-async calls.
    pub fn get_ref(&self) -> &ConnSocket {
        &self.sock
    }
    /// Connects to one socket bound to `inst` of `stype`, waiting at most
    /// [`CONNECT_TIMEOUT`]. Dropping the future before it completes leaves
    /// the attempt running; drop the socket to end it.
    ///
    /// # Errors
    /// As [`ConnSocket::connect`].
    pub async fn connect(&self, stype: ServiceType, inst: Instance) -> Result<(), Error> {
        self.connect_to(ConnectTo::Service { stype, inst }, Bytes::new(), CONNECT_TIMEOUT).await
    }
    /// Connects to `to` (the first message `data` riding in the request
    /// when not empty), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ConnSocket::connect_with`].
    pub async fn connect_to(&self, to: ConnectTo, data: Bytes, timeout: StdDuration) -> Result<(), Error> {
        self.sock.start_connect(to, data)?;
        let outcome = receive(&self.fd, || Ok(self.sock.connect_outcome()));
        match tokio::time::timeout(timeout, outcome).await {
            Ok(r) => r?,
            Err(_) => {
                self.sock.abandon_connect();
                Err(Error::Timeout)
            }
        }
    }
    /// Waits for a connection request and accepts it.
    ///
    /// # Errors
    /// As [`ConnSocket::accept`].
    pub async fn accept(&self) -> Result<(AsyncConnSocket, MemberId), Error> {
        let (c, peer) = receive(&self.fd, || nothing_yet(self.sock.try_accept())).await?;
        Ok((AsyncConnSocket::new(c)?, peer))
    }
    /// Receives the next message (SEQPACKET) or bytes (STREAM); `None`
    /// once the peer shut the connection down in order.
    ///
    /// # Errors
    /// As [`ConnSocket::recv`].
    pub async fn recv(&self) -> Result<Option<Bytes>, Error> {
        receive(&self.fd, || nothing_yet(self.sock.try_recv())).await
    }
    /// Sends all of `data`, waiting while the peer's window or the link is
    /// full. On STREAM a long buffer goes in pieces: if the future is
    /// dropped between pieces, the pieces already sent stay sent; use
    /// `AsyncWrite` to know how much went.
    ///
    /// # Errors
    /// As [`ConnSocket::send`].
    pub async fn send(&self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = transmit(&self.fd, || self.sock.try_send(data.clone())).await?;
            bytes::Buf::advance(&mut data, n);
        }
        Ok(())
    }
    /// Ends the connection in order (see [`ConnSocket::shutdown`]).
    ///
    /// # Errors
    /// As [`ConnSocket::shutdown`].
    pub fn shutdown(&self) -> Result<(), Error> {
        self.sock.shutdown()
    }
}

/// An error of this crate as an `io::Error` (its kind from the errno the
/// kernel would give).
fn io_error(e: Error) -> io::Error {
    let kind = match &e {
        Error::ConnReset(_) => io::ErrorKind::ConnectionReset,
        Error::ConnRefused(_) => io::ErrorKind::ConnectionRefused,
        Error::NotConnected => io::ErrorKind::NotConnected,
        Error::ConnClosed => io::ErrorKind::BrokenPipe,
        Error::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl AsyncRead for AsyncConnSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut g = ready!(self.fd.poll_read_ready(cx))?;
            match self.sock.read_timeout(buf.initialize_unfilled(), StdDuration::ZERO) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(Error::WouldBlock(_)) => g.clear_ready(),
                Err(e) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl AsyncWrite for AsyncConnSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut g = ready!(self.fd.poll_write_ready(cx))?;
            match self.sock.try_send(Bytes::copy_from_slice(buf)) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Error::WouldBlock(_)) => g.clear_ready(),
                Err(e) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // sent data is the stack's once try_send took it
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.sock.shutdown().map_err(io_error))
    }
}
