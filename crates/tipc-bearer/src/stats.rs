//! Bearer counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, updated by the bearer threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub tx_direct: AtomicU64,
    pub tx_batches: AtomicU64,
    pub tx_retries: AtomicU64,
    pub tx_errors: AtomicU64,
    pub rx_errors: AtomicU64,
    pub rx_batches: AtomicU64,
    pub drop_other_host: AtomicU64,
    pub drop_own: AtomicU64,
    pub peers_learned: AtomicU64,
    pub drop_foreign: AtomicU64,
    pub drop_malformed: AtomicU64,
    pub drop_kernel: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    pub fn snapshot(&self) -> BearerStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        BearerStats {
            rx_frames: g(&self.rx_frames),
            rx_bytes: g(&self.rx_bytes),
            tx_frames: g(&self.tx_frames),
            tx_bytes: g(&self.tx_bytes),
            tx_direct: g(&self.tx_direct),
            tx_batches: g(&self.tx_batches),
            tx_retries: g(&self.tx_retries),
            tx_errors: g(&self.tx_errors),
            rx_errors: g(&self.rx_errors),
            rx_batches: g(&self.rx_batches),
            drop_other_host: g(&self.drop_other_host),
            drop_own: g(&self.drop_own),
            peers_learned: g(&self.peers_learned),
            drop_foreign: g(&self.drop_foreign),
            drop_malformed: g(&self.drop_malformed),
            drop_kernel: g(&self.drop_kernel),
        }
    }
}

/// A snapshot of a bearer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BearerStats {
    /// TIPC frames handed to the stack.
    pub rx_frames: u64,
    /// Bytes of those frames (TIPC messages, Ethernet header excluded).
    pub rx_bytes: u64,
    /// Frames the kernel accepted for transmission.
    pub tx_frames: u64,
    /// Bytes of those frames (TIPC messages).
    pub tx_bytes: u64,
    /// Frames sent directly by the caller's thread (queue was empty).
    pub tx_direct: u64,
    /// `sendmmsg` batches sent by the tx thread.
    pub tx_batches: u64,
    /// Times the kernel's transmit queue was full and the tx thread waited.
    pub tx_retries: u64,
    /// Send errors other than a full queue.
    pub tx_errors: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// `recvmmsg` batches.
    pub rx_batches: u64,
    /// Dropped: addressed to another host (promiscuous mode).
    pub drop_other_host: u64,
    /// Dropped: our own outgoing frames looped back.
    pub drop_own: u64,
    /// Replicast peers a UDP bearer learned from discovery.
    pub peers_learned: u64,
    /// Dropped: not ethertype 0x88CA.
    pub drop_foreign: u64,
    /// Dropped: too short, or shorter than the TIPC size field says.
    pub drop_malformed: u64,
    /// Dropped by the kernel because the socket buffer was full.
    pub drop_kernel: u64,
}

impl BearerStats {
    /// All frames dropped on receive, whatever the reason.
    pub fn rx_dropped(&self) -> u64 {
        self.drop_other_host + self.drop_own + self.drop_foreign + self.drop_malformed + self.drop_kernel
    }
}
