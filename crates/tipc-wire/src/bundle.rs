//! Bundles: iterating over and building MSG_BUNDLER payloads.

use bytes::{Bytes, BytesMut};

use crate::{BundleMsg, Header, INT_H_SIZE, Importance, IntHdr, WireError};

/// Rounds up to the next multiple of 4.
pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Iterator over the inner messages of a bundle, as zero-copy slices.
///
/// Each item is a complete inner message (header and payload) that passed
/// [`Header::new_checked`]. A malformed inner message yields one error and
/// ends the iteration.
#[derive(Clone, Debug)]
pub struct BundleIter {
    payload: Bytes,
    off: usize,
    failed: bool,
}

impl BundleIter {
    /// Iterates over `payload` (a bundle's payload).
    pub fn new(payload: Bytes) -> Self {
        BundleIter { payload, off: 0, failed: false }
    }
}

impl Iterator for BundleIter {
    type Item = Result<Bytes, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.off >= self.payload.len() {
            return None;
        }
        let rest = self.payload.slice(self.off..);
        match Header::new_checked(rest) {
            Ok(h) => {
                let size = h.size();
                let m = h.message();
                self.off += align4(size);
                Some(Ok(m))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Builds a bundle from small encoded messages, up to a maximum packet size.
#[derive(Debug)]
pub struct BundleBuilder {
    hdr: IntHdr,
    max_pkt: usize,
    buf: BytesMut,
    count: u16,
    importance: Importance,
}

impl BundleBuilder {
    /// A builder for bundles of at most `max_pkt` bytes (outer header included).
    pub fn new(hdr: IntHdr, max_pkt: usize) -> Self {
        BundleBuilder { hdr, max_pkt, buf: BytesMut::new(), count: 0, importance: Importance::Low }
    }
    /// Whether `msg` (a complete encoded message) still fits.
    pub fn fits(&self, msg_len: usize) -> bool {
        INT_H_SIZE + align4(self.buf.len()) + msg_len <= self.max_pkt && self.count < u16::MAX
    }
    /// Appends `msg` if it fits; returns whether it was added. The first
    /// message sets the bundle's importance.
    pub fn push(&mut self, msg: &[u8], importance: Importance) -> bool {
        if !self.fits(msg.len()) {
            return false;
        }
        if self.count == 0 {
            self.importance = importance;
        }
        let pad = align4(self.buf.len()) - self.buf.len();
        self.buf.resize(self.buf.len() + pad, 0);
        self.buf.extend_from_slice(msg);
        self.count += 1;
        true
    }
    /// Number of messages added.
    pub fn count(&self) -> u16 {
        self.count
    }
    /// The bundle.
    pub fn finish(self) -> BundleMsg {
        BundleMsg {
            hdr: self.hdr,
            word5: 0,
            msg_count: self.count,
            importance: self.importance,
            payload: self.buf.freeze(),
        }
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;

    #[test]
    fn fits_up_to_the_packet_size_exactly() {
        // room for 100 bytes of inner messages
        let mut b = BundleBuilder::new(IntHdr::default(), INT_H_SIZE + 100);
        assert!(b.fits(100) && !b.fits(101));
        assert!(b.push(&[1; 58], Importance::High));
        // 58 is padded to 60: 40 bytes left
        assert!(b.fits(40), "exactly the rest fits");
        assert!(!b.fits(41));
        assert!(!b.push(&[2; 41], Importance::Low), "too long: refused");
        assert_eq!(b.count(), 1, "a refused message is not counted");
        assert!(b.push(&[3; 40], Importance::Low));
        assert_eq!(b.count(), 2);
        let m = b.finish();
        assert_eq!(m.msg_count, 2);
        assert_eq!(m.importance, Importance::High, "the first message sets the importance");
        assert_eq!(m.payload.len(), 100);
        assert_eq!(&m.payload[58..60], &[0, 0], "padding to a 4-byte boundary");
        assert_eq!(&m.payload[60..], &[3; 40][..]);
    }

    #[test]
    fn counts_every_message_and_stops_at_the_field_limit() {
        let mut b = BundleBuilder::new(IntHdr::default(), usize::MAX / 2);
        for k in 1..=u32::from(u16::MAX) {
            assert!(b.push(&[], Importance::Low), "message {k}");
            assert_eq!(u32::from(b.count()), k);
        }
        assert!(!b.fits(0), "the 16-bit count is full");
        assert!(!b.push(&[], Importance::Low));
        assert_eq!(b.count(), u16::MAX);
    }
}
