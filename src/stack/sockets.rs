//! The socket handles applications hold: [`PortSocket`] (connectionless,
//! addressed by port or service) and [`GroupSocket`] (a communication group
//! member). Each is a port of the core and a queue the flush fills.

use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use tipc_group::{Dest, GroupEvent, GroupSpec, SendOpts};
use tipc_wire::{Importance, Instance, MemberId, NodeAddr, PortId, Scope, ServiceRange, ServiceType};

use super::ready::ReadyFd;
use super::rx::recv_error;
use super::shared::{Deadline, Inner, Shared};
use crate::core::PortMessage;
use crate::error::Error;

/// A connectionless socket addressed by (node, port).
pub struct PortSocket {
    pub(super) shared: Arc<Shared>,
    pub(super) port: PortId,
    pub(super) rx: Receiver<PortMessage>,
    /// The importance of its messages (TIPC_IMPORTANCE; LOW by default).
    pub(super) importance: parking_lot::Mutex<Importance>,
    /// Its readiness descriptor, once asked for.
    pub(super) ready: OnceLock<Arc<ReadyFd>>,
}

impl std::fmt::Debug for PortSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSocket({})", self.port)
    }
}

impl PortSocket {
    /// Our socket address (node is 0 until the address is confirmed).
    pub fn id(&self) -> MemberId {
        self.shared.socket_id(self.port)
    }

    /// Sets the importance of this socket's messages (LOW by default): the
    /// user field on the wire, and the link backlog limit the message meets
    /// (net/tipc/socket.c `TIPC_IMPORTANCE`).
    pub fn set_importance(&self, importance: Importance) {
        *self.importance.lock() = importance;
    }

    fn opts(&self, returnable: bool) -> SendOpts {
        SendOpts { returnable, importance: *self.importance.lock() }
    }

    fn send_inner(
        &self,
        node: NodeAddr,
        port: PortId,
        data: Bytes,
        deadline: Deadline,
        returnable: bool,
    ) -> Result<(), Error> {
        let me = self.port;
        let opts = self.opts(returnable);
        self.shared.send_ready(deadline, self.ready.get(), |core, now| {
            core.send(now, me, Dest::Socket { node, port }, data.clone(), opts)
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
        let opts = self.opts(returnable);
        self.shared.send_with(Deadline::Never, |core, now| {
            core.send(now, me, Dest::Service { stype, inst }, data.clone(), opts)
        })
    }
    /// Multicast to every socket bound in a range, waiting while congested.
    pub fn send_to_range(&self, range: ServiceRange, data: Bytes) -> Result<(), Error> {
        let me = self.port;
        let opts = self.opts(false);
        self.shared.send_with(Deadline::Never, |core, now| core.send(now, me, Dest::Range(range), data.clone(), opts))
    }

    /// Sends to a socket, waiting while the link is congested.
    pub fn send_to(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, Deadline::Never, false)
    }
    /// Like [`PortSocket::send_to`], but asks for the message back (NO_PORT)
    /// if nobody is at the destination.
    pub fn send_to_returnable(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, Deadline::Never, true)
    }
    /// Sends, or fails with [`Error::WouldBlock`] at once if the link is congested.
    pub fn try_send_to(&self, node: NodeAddr, port: PortId, data: Bytes) -> Result<(), Error> {
        self.send_inner(node, port, data, Deadline::Now, false)
    }
    /// Sends, waiting at most `timeout` for congestion to clear.
    pub fn send_to_timeout(
        &self,
        node: NodeAddr,
        port: PortId,
        data: Bytes,
        timeout: StdDuration,
    ) -> Result<(), Error> {
        self.send_inner(node, port, data, Deadline::after(timeout), false)
    }

    /// Waits for the next message.
    pub fn recv(&self) -> Result<PortMessage, Error> {
        let m = self.shared.recv_on(&self.rx, None).map_err(|_| Error::StackStopped)?;
        taken(&self.ready, &self.rx);
        Ok(m)
    }
    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<PortMessage, Error> {
        let m = self.shared.recv_on(&self.rx, Some(timeout)).map_err(recv_error)?;
        taken(&self.ready, &self.rx);
        Ok(m)
    }
    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Option<PortMessage> {
        self.try_next().ok().flatten()
    }

    /// The next message if one is waiting; [`Error::StackStopped`] once the
    /// stack stopped and nothing is left.
    pub(super) fn try_next(&self) -> Result<Option<PortMessage>, Error> {
        let m = self.rx.try_recv();
        taken(&self.ready, &self.rx);
        stopped_or(m)
    }

    /// The socket's readiness descriptor, made on first use: readable
    /// while [`PortSocket::try_recv`] returns a message, writable unless
    /// [`PortSocket::try_send_to`] met congestion that has not cleared
    /// (see [`ReadyFd`]). Wait on it with epoll, mio or tokio's `AsyncFd`.
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
        ready_cell(&self.shared, self.port, &self.ready, |_| !self.rx.is_empty())
    }
}

/// The readiness descriptor of the socket at `port` held in `cell`, made
/// and registered on first use (`readable`: whether the socket has input
/// then), under the stack's lock so that nothing is queued between that
/// look and the registration.
pub(super) fn ready_cell<'a>(
    shared: &Shared,
    port: PortId,
    cell: &'a OnceLock<Arc<ReadyFd>>,
    readable: impl FnOnce(&Inner) -> bool,
) -> Result<&'a Arc<ReadyFd>, Error> {
    if let Some(r) = cell.get() {
        return Ok(r);
    }
    let mut g = shared.inner.lock();
    if let Some(r) = cell.get() {
        return Ok(r);
    }
    let r = Arc::new(ReadyFd::new(readable(&g)).map_err(Error::Readiness)?);
    g.ready.insert(port, r.clone());
    Ok(cell.get_or_init(|| r))
}

/// What a non-blocking take from a queue means to a caller: the item,
/// nothing yet, or the end of the stack.
fn stopped_or<T>(r: Result<T, crossbeam_channel::TryRecvError>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(crossbeam_channel::TryRecvError::Empty) => Ok(None),
        Err(crossbeam_channel::TryRecvError::Disconnected) => Err(Error::StackStopped),
    }
}

/// An item was taken from `rx` (or none was there): the readiness
/// descriptor stops being readable if the queue is empty. (A producer queues, then marks
/// readable; here the mark is cleared, then the queue looked at again, so
/// an item queued meanwhile is never left unannounced.)
fn taken<T>(cell: &OnceLock<Arc<ReadyFd>>, rx: &Receiver<T>) {
    if let Some(r) = cell.get()
        && rx.is_empty()
    {
        r.set_readable(false);
        if !rx.is_empty() {
            r.set_readable(true);
        }
    }
}

impl Drop for PortSocket {
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.sockets.remove(&self.port);
        g.ready.remove(&self.port);
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
    pub(super) shared: Arc<Shared>,
    pub(super) port: PortId,
    pub(super) rx: Receiver<GroupEvent>,
    /// The importance of its data messages (LOW by default), kept across
    /// joins.
    pub(super) importance: parking_lot::Mutex<Importance>,
    /// Its readiness descriptor, once asked for.
    pub(super) ready: OnceLock<Arc<ReadyFd>>,
}

impl std::fmt::Debug for GroupSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupSocket({})", self.port)
    }
}

impl GroupSocket {
    /// Our socket address.
    pub fn id(&self) -> MemberId {
        self.shared.socket_id(self.port)
    }
    /// Chooses how this socket's broadcasts and multicasts travel (a
    /// mandatory replicast after a unicast is kept regardless).
    pub fn set_mcast_method(&self, m: crate::core::McastMethod) {
        self.shared.inner.lock().core.set_mcast_method(self.port, m);
    }
    /// Sets the importance of this socket's data messages, now and in any
    /// group it joins later (TIPC_IMPORTANCE; LOW by default): on the wire
    /// and in the links' per-importance backlog limits.
    pub fn set_importance(&self, importance: Importance) {
        let mut g = self.shared.inner.lock();
        *self.importance.lock() = importance;
        // not joined: applied at the join
        let _ = g.core.group_set_importance(self.port, importance);
    }
    /// Joins a group (one group per socket).
    pub fn join(&self, spec: GroupSpec) -> Result<(), Error> {
        let mut g = self.shared.inner.lock();
        g.core.group_join(self.port, spec)?;
        g.core.group_set_importance(self.port, *self.importance.lock())?;
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
        g.core.group(self.port).map(|gr| gr.joined_members().collect()).unwrap_or_default()
    }

    /// A `try_` send to `dest`.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(super) fn send_now(&self, dest: Dest, data: Bytes) -> Result<(), Error> {
        self.send(dest, data, Deadline::Now)
    }

    fn send(&self, dest: Dest, data: Bytes, deadline: Deadline) -> Result<(), Error> {
        let me = self.port;
        self.shared.send_ready(deadline, self.ready.get(), |core, now| {
            core.send(now, me, dest, data.clone(), SendOpts::default())
        })
    }

    /// Sends the messages of `msgs` in order to `dest` (a member, a group
    /// anycast or multicast instance, or the whole group), as many as
    /// flow control lets through under one lock of the stack: their
    /// frames leave in `sendmmsg` calls of up to 64 frames instead of one
    /// system call each. Waits while the destination's window is exhausted, like
    /// [`GroupSocket::send_unicast`], then goes on with the rest. Order,
    /// flow control and every delivery guarantee are those of the same
    /// messages sent one by one.
    ///
    /// Returns how many were sent: all of them, or the number sent before
    /// an error stopped the burst (send the rest again to see the error).
    ///
    /// # Errors
    /// Those of the single sends, when the first message fails.
    pub fn send_many(&self, dest: Dest, msgs: &[Bytes]) -> Result<usize, Error> {
        let me = self.port;
        let mut sent = 0;
        let r = self.shared.send_with(Deadline::Never, |core, now| {
            while let Some(m) = msgs.get(sent) {
                core.send(now, me, dest, m.clone(), SendOpts::default())?;
                sent += 1;
            }
            Ok(())
        });
        match r {
            Err(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }

    /// Unicast to a member's socket; waits while its window is exhausted.
    pub fn send_unicast(&self, to: MemberId, data: Bytes) -> Result<(), Error> {
        self.send(Dest::Member(to), data, Deadline::Never)
    }
    /// Anycast to one member holding `inst`.
    pub fn send_anycast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupAnycast(inst), data, Deadline::Never)
    }
    /// Multicast to every member holding `inst`.
    pub fn send_multicast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupMulticast(inst), data, Deadline::Never)
    }
    /// Broadcast to every member.
    pub fn broadcast(&self, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupBroadcast, data, Deadline::Never)
    }
    /// [`GroupSocket::send_unicast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_unicast(&self, to: MemberId, data: Bytes) -> Result<(), Error> {
        self.send(Dest::Member(to), data, Deadline::Now)
    }
    /// [`GroupSocket::send_anycast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_anycast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupAnycast(inst), data, Deadline::Now)
    }
    /// [`GroupSocket::send_multicast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_send_multicast(&self, inst: Instance, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupMulticast(inst), data, Deadline::Now)
    }
    /// [`GroupSocket::broadcast`] that fails with [`Error::WouldBlock`] instead of waiting.
    pub fn try_broadcast(&self, data: Bytes) -> Result<(), Error> {
        self.send(Dest::GroupBroadcast, data, Deadline::Now)
    }
    /// [`GroupSocket::send_unicast`] waiting at most `t`.
    pub fn send_unicast_timeout(&self, to: MemberId, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Dest::Member(to), data, Deadline::after(t))
    }
    /// [`GroupSocket::send_anycast`] waiting at most `t`.
    pub fn send_anycast_timeout(&self, inst: Instance, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Dest::GroupAnycast(inst), data, Deadline::after(t))
    }
    /// [`GroupSocket::send_multicast`] waiting at most `t`.
    pub fn send_multicast_timeout(&self, inst: Instance, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Dest::GroupMulticast(inst), data, Deadline::after(t))
    }
    /// [`GroupSocket::broadcast`] waiting at most `t`.
    pub fn broadcast_timeout(&self, data: Bytes, t: StdDuration) -> Result<(), Error> {
        self.send(Dest::GroupBroadcast, data, Deadline::after(t))
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
        taken(&self.ready, &self.rx);
        self.consumed(&ev);
        Ok(ev)
    }
    /// Waits at most `timeout`.
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<GroupEvent, Error> {
        let ev = self.shared.recv_on(&self.rx, Some(timeout)).map_err(recv_error)?;
        taken(&self.ready, &self.rx);
        self.consumed(&ev);
        Ok(ev)
    }
    /// The next message or event if one is waiting.
    pub fn try_recv(&self) -> Option<GroupEvent> {
        self.try_next().ok().flatten()
    }

    /// The next message or event if one is waiting; [`Error::StackStopped`]
    /// once the stack stopped and nothing is left.
    pub(super) fn try_next(&self) -> Result<Option<GroupEvent>, Error> {
        let ev = self.rx.try_recv();
        // also after finding nothing: a mark a producer made after the
        // last item was already taken goes
        taken(&self.ready, &self.rx);
        let ev = stopped_or(ev)?;
        if let Some(e) = &ev {
            self.consumed(e);
        }
        Ok(ev)
    }

    /// The socket's readiness descriptor, made on first use: readable
    /// while [`GroupSocket::try_recv`] returns a message or member event,
    /// writable unless a `try_` send met congestion (a link's backlog or a
    /// member's window) that has not cleared since (see [`ReadyFd`]). Wait
    /// on it with epoll, mio or tokio's `AsyncFd`.
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
        ready_cell(&self.shared, self.port, &self.ready, |_| !self.rx.is_empty())
    }
}

impl Drop for GroupSocket {
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.group_sockets.remove(&self.port);
        g.ready.remove(&self.port);
        g.core.close_port(self.port);
        self.shared.flush(&mut g);
    }
}
