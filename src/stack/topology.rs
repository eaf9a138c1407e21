//! The topology service as applications hold it: a [`Subscriber`] per
//! subscription to the name table (the core's
//! [`tipc_group::topology::Topology`] does the matching).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use tipc_group::topology::{SubId, TopologyEvent};

use super::shared::Shared;
use crate::error::Error;

/// One subscription to the name table: its events, in order, and its end.
/// Dropping it (or [`Subscriber::cancel`]) ends the subscription.
///
/// ```no_run
/// use std::time::Duration;
/// use tipc_rs::topology::{EventKind, Subscription};
/// let stack = tipc_rs::Stack::builder().iface("eth0").start()?;
/// stack.wait_ready(Duration::from_secs(3))?;
/// // every node that comes or goes, the own one first
/// let nodes = stack.subscribe(Subscription::nodes())?;
/// while let Ok(ev) = nodes.recv() {
///     let up = ev.kind == EventKind::Published;
///     println!("node {} {}", ev.port.node, if up { "up" } else { "down" });
/// }
/// # Ok::<(), tipc_rs::Error>(())
/// ```
pub struct Subscriber {
    shared: Arc<Shared>,
    id: SubId,
    rx: Receiver<TopologyEvent>,
}

impl Subscriber {
    pub(super) fn new(shared: Arc<Shared>, id: SubId, rx: Receiver<TopologyEvent>) -> Self {
        Subscriber { shared, id, rx }
    }

    /// The subscription's id (the `sub` of its events).
    pub fn id(&self) -> SubId {
        self.id
    }

    /// Waits for the next event.
    ///
    /// # Errors
    /// [`Error::SubscriptionEnded`] once its timeout event has been
    /// read; [`Error::StackStopped`].
    pub fn recv(&self) -> Result<TopologyEvent, Error> {
        self.shared.recv_on(&self.rx, None).map_err(|e| self.error(e))
    }

    /// Waits at most `timeout` for the next event.
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came; else as [`Subscriber::recv`].
    pub fn recv_timeout(&self, timeout: StdDuration) -> Result<TopologyEvent, Error> {
        self.shared.recv_on(&self.rx, Some(timeout)).map_err(|e| self.error(e))
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// As [`Subscriber::recv`].
    pub fn try_recv(&self) -> Result<Option<TopologyEvent>, Error> {
        match self.rx.try_recv() {
            Ok(e) => Ok(Some(e)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.error(RecvTimeoutError::Disconnected)),
        }
    }

    /// Ends the subscription at once; events not yet read are dropped with
    /// it (the kernel's `TIPC_SUB_CANCEL`).
    pub fn cancel(self) {}

    /// A closed channel means the stack stopped, or else the subscription
    /// ended by its timeout.
    fn error(&self, e: RecvTimeoutError) -> Error {
        match e {
            RecvTimeoutError::Timeout => Error::Timeout,
            RecvTimeoutError::Disconnected if self.shared.inner.lock().stopped => Error::StackStopped,
            RecvTimeoutError::Disconnected => Error::SubscriptionEnded,
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let mut g = self.shared.inner.lock();
        g.subscribers.remove(&self.id);
        g.core.unsubscribe(self.id);
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("id", &self.id).field("queued", &self.rx.len()).finish()
    }
}
