//! The receive path: the bearer's receive thread runs received frames and
//! timers through the core; an application thread waiting in a receive
//! call borrows the socket reader and does the same itself, so a reply
//! reaches it without a thread hand-off.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tipc_bearer::{RxFrame, RxHandler, RxPoller, TxHandle};

use super::shared::Shared;
use crate::error::Error;

impl Shared {
    /// Runs received frames through the core and dispatches the results;
    /// `at` is when they were received, if known (saves a clock read).
    pub(super) fn handle_frames(&self, bearer: u8, frames: &mut Vec<RxFrame>, at: Option<std::time::Instant>) {
        let _node = self.span.enter();
        let mut g = self.inner.lock();
        if g.stopped {
            frames.clear();
            return;
        }
        let now = match at {
            Some(t) => g.now_at(t),
            None => g.now(),
        };
        let own = g.medias.get(usize::from(bearer)).copied().unwrap_or_else(|| g.core.media());
        for f in frames.drain(..) {
            if g.tap.is_on() {
                let dst = if f.broadcast { tipc_wire::TxDest::Broadcast } else { tipc_wire::TxDest::Unicast(own) };
                g.tap.record(now.as_micros(), dst, f.src, &f.msg);
            }
            g.core.handle_frame_on(now, bearer, f.src, f.msg);
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
    pub(super) fn recv_on<T>(&self, rx: &Receiver<T>, timeout: Option<StdDuration>) -> Result<T, RecvTimeoutError> {
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
            let slice = tipc_bearer::POLLER_WAIT;
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
            poller.recv(|frames, at| self.handle_frames(0, frames, at)).ok()?;
        }
    }
}

/// How often the receive thread looks whether application threads still
/// read the socket; it takes over after a quiet turn of this length.
/// Frames that arrive while no thread waits in a receive call wait at most
/// two of these.
pub const STANDBY_LOOK: StdDuration = StdDuration::from_millis(4);

/// Runs on bearer 0's receive thread: its frames, and every timer.
pub(super) struct Driver {
    pub(super) shared: Arc<Shared>,
    /// The bearer id (0).
    pub(super) bearer: u8,
    /// Whether the receive thread reads the socket in its next wait.
    pub(super) watch: bool,
    /// `leads_ended` when it last looked.
    pub(super) leads_seen: u64,
    /// Frames refused by decryption when the last warning was given, and
    /// when.
    pub(super) auth_warned: (u64, Option<std::time::Instant>),
}

/// Warnings about frames that failed authentication come at most this
/// often (the crypto counters keep every one).
const AUTH_WARN_EVERY: StdDuration = StdDuration::from_secs(1);

/// After a turn of timers: a rate-limited warning when frames failed
/// authentication or decryption since the last one (`warned`: the count
/// and time of the last warning).
fn warn_auth(warned: &mut (u64, Option<std::time::Instant>), g: &super::shared::Inner) {
    if !tracing::enabled!(tracing::Level::WARN) {
        return;
    }
    let c = g.core.link().crypto_stats();
    let dropped = c.rx_dropped();
    let now = std::time::Instant::now();
    if dropped == warned.0 || warned.1.is_some_and(|t| now.duration_since(t) < AUTH_WARN_EVERY) {
        return;
    }
    tracing::warn!(
        no_key = c.rx_no_key,
        bad_tag = c.rx_bad_tag,
        replay = c.rx_replay,
        unknown_key = c.rx_unknown_key,
        clear = c.rx_clear,
        malformed = c.rx_malformed,
        since_last = dropped - warned.0,
        "frames failed authentication or decryption (counted in the crypto statistics; at most one warning a second)"
    );
    *warned = (dropped, Some(now));
}

impl RxHandler for Driver {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, _tx: &TxHandle) {
        self.shared.handle_frames(self.bearer, frames, None);
    }

    fn on_wake(&mut self, _tx: &TxHandle) -> Option<StdDuration> {
        let _node = self.shared.span.enter();
        let mut g = self.shared.inner.lock();
        if g.stopped {
            return None;
        }
        let now = g.now();
        if g.core.poll_timeout().is_some_and(|t| t <= now) {
            g.core.handle_timeout(now);
            self.shared.flush(&mut g);
            warn_auth(&mut self.auth_warned, &g);
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

/// Runs on the receive thread of a further bearer: it only reads its
/// socket and runs the frames through the core (bearer 0's thread keeps
/// the timers, application threads borrow bearer 0's socket only).
pub(super) struct PlainDriver {
    pub(super) shared: Arc<Shared>,
    /// The bearer id.
    pub(super) bearer: u8,
}

impl RxHandler for PlainDriver {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, _tx: &TxHandle) {
        self.shared.handle_frames(self.bearer, frames, None);
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

pub(super) fn recv_error(e: RecvTimeoutError) -> Error {
    match e {
        RecvTimeoutError::Timeout => Error::Timeout,
        RecvTimeoutError::Disconnected => Error::StackStopped,
    }
}
