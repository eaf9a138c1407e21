//! The pcap tap: every frame the node sends or receives, written as an
//! Ethernet frame with its time since the stack started
//! ([`super::StackBuilder::pcap`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use tipc_wire::pcap::PcapSink;
use tipc_wire::{Duration, EthFrame, MacAddr, WireError};

/// A pcap file being written, or nothing.
#[derive(Default)]
pub(super) struct Tap(Option<PcapSink<BufWriter<File>>>);

impl Tap {
    /// A tap writing to a new file at `path`.
    ///
    /// # Errors
    /// The file could not be created or its header written.
    pub(super) fn create(path: &Path) -> Result<Tap, WireError> {
        PcapSink::create(path).map(|s| Tap(Some(s)))
    }

    /// Whether frames are recorded.
    pub(super) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Records a frame `src` → `dst` carrying the TIPC message `msg`, at
    /// `at_us` microseconds since the stack started. A failed write is not
    /// an error of the node: the recording just misses the frame.
    pub(super) fn record(&mut self, at_us: u64, dst: MacAddr, src: MacAddr, msg: &[u8]) {
        if let Some(p) = self.0.as_mut() {
            let _ = p.write_frame(Duration::from_micros(at_us), &EthFrame::build(dst, src, msg));
        }
    }

    /// Flushes and closes the file; later frames are not recorded.
    pub(super) fn close(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::io::Write::flush(&mut p.into_inner());
        }
    }
}
