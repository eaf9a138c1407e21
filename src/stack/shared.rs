//! The state the runtime's threads share under one lock, and the flush
//! that hands the core's frames to the bearer and its events to sockets,
//! subscribers and watchers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, MutexGuard};
use tipc_bearer::{RxPoller, TxFrame, TxHandle, Waker};
use tipc_group::topology::{EventKind, SubId, TopologyEvent};
use tipc_group::{ConnEvent, GroupEvent};
use tipc_wire::{Instant, NodeAddr, PortId};

use super::StackEvent;
use super::ready::ReadyFd;
use super::tap::Tap;
use crate::core::{CoreEvent, NodeCore, PortMessage};
use crate::error::Error;

/// How many past conflicts [`super::Stack::events`] replays.
pub(super) const MAX_KEPT_CONFLICTS: usize = 64;

/// How long a send waits while its destination is congested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    /// Not at all: congestion is [`Error::WouldBlock`].
    Now,
    /// As long as it takes.
    Never,
    /// Until this moment, then [`Error::Timeout`].
    At(std::time::Instant),
}

impl Deadline {
    /// A deadline `t` from now.
    pub(super) fn after(t: StdDuration) -> Deadline {
        Deadline::At(std::time::Instant::now() + t)
    }
}

pub(super) struct Inner {
    pub(super) core: NodeCore,
    pub(super) epoch: std::time::Instant,
    pub(super) sockets: BTreeMap<PortId, Sender<PortMessage>>,
    pub(super) group_sockets: BTreeMap<PortId, Sender<GroupEvent>>,
    pub(super) conn_sockets: BTreeMap<PortId, Sender<ConnEvent>>,
    pub(super) watchers: Vec<Sender<StackEvent>>,
    /// The latest conflicts reported, oldest first (at most
    /// [`MAX_KEPT_CONFLICTS`]), for watchers that subscribe later.
    pub(super) conflicts: std::collections::VecDeque<tipc_link::Conflict>,
    pub(super) subscribers: BTreeMap<SubId, Sender<TopologyEvent>>,
    /// The names of the links this stack has had, by (peer, link id): the
    /// link id is the port of the link-state binding (bearer 0 at both
    /// ends: 0).
    pub(super) link_names: BTreeMap<(NodeAddr, PortId), String>,
    pub(super) tap: Tap,
    /// The bearers' transmit handles, by bearer id (`None`: disabled).
    pub(super) tx: Vec<Option<TxHandle>>,
    /// The bearers' own media addresses, by bearer id (for the tap).
    pub(super) medias: Vec<tipc_wire::MediaAddr>,
    /// Frames to send, per bearer id.
    pub(super) scratch: Vec<Vec<TxFrame>>,
    pub(super) stopped: bool,
    /// The latest time given to the core.
    pub(super) last_now: Instant,
    /// The readiness descriptors of sockets that asked for one, by port.
    pub(super) ready: BTreeMap<PortId, Arc<ReadyFd>>,
    /// Descriptors made unwritable by a refused `try_` send: writable
    /// again at the next event that may have cleared congestion.
    pub(super) blocked: Vec<Arc<ReadyFd>>,
}

impl Inner {
    /// Something was queued for socket `port`: its readiness descriptor,
    /// if it has one, becomes readable.
    pub(super) fn mark_readable(&self, port: PortId) {
        if !self.ready.is_empty()
            && let Some(r) = self.ready.get(&port)
        {
            r.set_readable(true);
        }
    }

    /// The stack stopped: every readiness descriptor becomes readable and
    /// writable, so event loops wake and their calls report
    /// [`Error::StackStopped`].
    pub(super) fn wake_all_ready(&mut self) {
        for r in self.ready.values() {
            r.set_readable(true);
            r.set_writable(true);
        }
        self.blocked.clear();
    }

    pub(super) fn now(&mut self) -> Instant {
        self.now_at(std::time::Instant::now())
    }
    /// The core's time for the moment `t`, never earlier than a time the
    /// core was already given.
    pub(super) fn now_at(&mut self, t: std::time::Instant) -> Instant {
        let now = Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64).max(self.last_now);
        self.last_now = now;
        now
    }
}

pub(super) struct Shared {
    pub(super) inner: Mutex<Inner>,
    /// Signalled when congestion clears, a node goes down or the stack stops.
    pub(super) cond: Condvar,
    pub(super) waker: Mutex<Option<Waker>>,
    /// When the receive thread will next look at timers (µs since epoch).
    pub(super) sleep_until: AtomicU64,
    /// The socket reader an application thread borrows while it waits in a
    /// receive call: whoever holds this lock reads the frames itself.
    pub(super) poller: Mutex<Option<RxPoller>>,
    /// Whether an application thread is reading the socket (the receive
    /// thread then only keeps the timers).
    pub(super) leading: AtomicBool,
    /// How many times an application thread has stopped reading the socket.
    pub(super) leads_ended: AtomicU64,
    /// The node's span (`tipc_node`, with its identity): entered around
    /// the core's work, so the link and group events carry the node.
    pub(super) span: tracing::Span,
}

impl Shared {
    /// Runs a send on the core, waiting until `deadline` while it reports
    /// congestion.
    pub(super) fn send_with(
        &self,
        deadline: Deadline,
        f: impl FnMut(&mut NodeCore, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.send_ready(deadline, None, f)
    }

    /// [`Shared::send_with`] for a socket with a readiness descriptor
    /// (`ready`): a refused `try_` send makes it unwritable, under the same
    /// lock as the refusal, so the event that clears the congestion cannot
    /// slip in between.
    pub(super) fn send_ready(
        &self,
        deadline: Deadline,
        ready: Option<&Arc<ReadyFd>>,
        mut f: impl FnMut(&mut NodeCore, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _node = self.span.enter();
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
                    Deadline::Now => {
                        if let Some(r) = ready {
                            r.set_writable(false);
                            g.blocked.push(r.clone());
                        }
                        return Err(Error::WouldBlock(n));
                    }
                    Deadline::Never => {
                        let _ = self.cond.wait_for(&mut g, StdDuration::from_millis(50));
                    }
                    Deadline::At(d) => {
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

    /// Sends what the core queued and dispatches its events. Called with the lock held.
    pub(super) fn flush(&self, g: &mut MutexGuard<'_, Inner>) {
        let inner = &mut **g;
        while let Some(t) = inner.core.poll_transmit() {
            let b = usize::from(t.bearer);
            if inner.tap.is_on() {
                let at = inner.epoch.elapsed().as_micros() as u64;
                let own = inner.medias.get(b).copied().unwrap_or_else(|| inner.core.media());
                inner.tap.record(at, t.dst, own, &t.msg);
            }
            if inner.scratch.len() <= b {
                inner.scratch.resize_with(b + 1, Vec::new);
            }
            inner.scratch[b].push(TxFrame { dst: t.dst, msg: t.msg });
        }
        for (b, frames) in inner.scratch.iter_mut().enumerate() {
            if frames.is_empty() {
                continue;
            }
            if let Some(Some(tx)) = inner.tx.get(b) {
                if frames.len() == 1 {
                    // one frame: a single sendmsg, no batch bookkeeping
                    if let Some(f) = frames.pop() {
                        let _ = tx.send(f.dst, f.msg);
                    }
                } else {
                    let _ = tx.send_burst(frames);
                }
            }
            frames.clear();
        }
        let mut notify = false;
        while let Some(ev) = inner.core.poll_event() {
            let sev = match ev {
                CoreEvent::Message(m) => {
                    let port = m.port;
                    if let Some(s) = inner.sockets.get(&port) {
                        let _ = s.send(m);
                        inner.mark_readable(port);
                    }
                    None
                }
                CoreEvent::Group { port, event } => {
                    if let Some(s) = inner.group_sockets.get(&port) {
                        let _ = s.send(event);
                        inner.mark_readable(port);
                    }
                    None
                }
                CoreEvent::Conn { port, event } => {
                    // a window that opened or a connection that ended
                    // wakes blocked senders
                    match event {
                        ConnEvent::Writable => notify = true,
                        ev => {
                            notify |= matches!(ev, ConnEvent::Closed(_));
                            if let Some(s) = inner.conn_sockets.get(&port) {
                                let _ = s.send(ev);
                                inner.mark_readable(port);
                            }
                        }
                    }
                    None
                }
                CoreEvent::AddressConfirmed(a) => Some(StackEvent::AddressConfirmed(a)),
                CoreEvent::NodeUp(a) => {
                    for l in inner.core.link().links().into_iter().filter(|l| l.peer == a) {
                        inner.link_names.insert((a, PortId(0)), l.name);
                    }
                    Some(StackEvent::NodeUp(a))
                }
                CoreEvent::NodeDown(a) => {
                    notify = true;
                    Some(StackEvent::NodeDown(a))
                }
                CoreEvent::Uncongested(_) => {
                    notify = true;
                    None
                }
                CoreEvent::Conflict(s) => {
                    // kept for watchers that subscribe later (a conflict
                    // of the address trial comes before anyone can)
                    if inner.conflicts.len() == MAX_KEPT_CONFLICTS {
                        inner.conflicts.pop_front();
                    }
                    inner.conflicts.push_back(s.clone());
                    Some(StackEvent::Conflict(s))
                }
                CoreEvent::Topology(e) => {
                    // a timeout ends the subscription: its channel closes
                    // once the event is read
                    let ended = e.kind == EventKind::Timeout;
                    if let Some(tx) = inner.subscribers.get(&e.sub) {
                        let _ = tx.send(e);
                    }
                    if ended {
                        inner.subscribers.remove(&e.sub);
                    }
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
            for r in inner.blocked.drain(..) {
                r.set_writable(true);
            }
        }
    }

    /// The address of local socket `port` (node 0 until ours is confirmed).
    pub(super) fn socket_id(&self, port: PortId) -> tipc_wire::MemberId {
        tipc_wire::MemberId { node: self.inner.lock().core.address().unwrap_or_default(), port }
    }

    /// After work done outside the receive thread: wake it if a timer moved
    /// earlier — except the fast probe of freshly sent data, which waits for
    /// the receive thread's next turn (at most one supervision tick), so a
    /// send costs no wake-up of another thread.
    pub(super) fn rearm(&self, g: &MutexGuard<'_, Inner>) {
        let link = g.core.next_slow_timer();
        let sockets = g.core.sockets().poll_timeout();
        if let Some(t) = link.into_iter().chain(sockets).min()
            && t.as_micros() < self.sleep_until.load(Ordering::Acquire)
            && let Some(w) = self.waker.lock().as_ref()
        {
            w.wake();
        }
    }
}
