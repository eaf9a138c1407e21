//! Splitting long messages into MSG_FRAGMENTER packets and putting them back together.

use bytes::{Bytes, BytesMut};

use crate::{FragmentMsg, FragmentType, Header, INT_H_SIZE, Importance, IntHdr, MAX_MSG_SIZE, WireError};

/// Splits an encoded message into fragments of at most `max_pkt` bytes each
/// (40-byte fragment header included). All but the last are full-size.
///
/// A message that fits in one packet is not fragmented: that is an error.
pub fn fragment(
    msg: &Bytes,
    max_pkt: usize,
    hdr: IntHdr,
    importance: Importance,
) -> Result<Vec<FragmentMsg>, WireError> {
    if max_pkt <= INT_H_SIZE {
        return Err(WireError::Overflow { field: "max packet for fragments", value: max_pkt as u64 });
    }
    let chunk = max_pkt - INT_H_SIZE;
    let n = msg.len().div_ceil(chunk);
    if n < 2 {
        return Err(WireError::BadField { field: "message fits one packet; no fragments", value: msg.len() as u32 });
    }
    if n > usize::from(u16::MAX) {
        return Err(WireError::Overflow { field: "fragment count", value: n as u64 });
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = i * chunk;
        let e = (s + chunk).min(msg.len());
        let msg_type = if i == 0 {
            FragmentType::First
        } else if i + 1 == n {
            FragmentType::Last
        } else {
            FragmentType::Middle
        };
        out.push(FragmentMsg {
            msg_type,
            hdr,
            frag_no: (i + 1) as u16,
            frag_count: 0,
            word5: 0,
            importance,
            payload: msg.slice(s..e),
        });
    }
    Ok(out)
}

/// What a reassembler does with a fragment it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembly {
    /// More fragments are needed.
    Pending,
    /// The message is complete and valid.
    Complete(Bytes),
}

/// Reassembles one link's fragments (fragments of different messages never
/// interleave on a link). Memory is bounded by [`MAX_MSG_SIZE`].
#[derive(Debug, Default)]
pub struct Reassembler {
    buf: Option<BytesMut>,
    next_no: u16,
}

impl Reassembler {
    /// A fresh reassembler.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether a message is partly assembled.
    pub fn in_progress(&self) -> bool {
        self.buf.is_some()
    }
    /// Bytes held.
    pub fn held(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }
    /// Discards any partial message.
    pub fn reset(&mut self) {
        self.buf = None;
        self.next_no = 0;
    }
    /// Adds a fragment. An out-of-place fragment (no FIRST, a second FIRST,
    /// a message growing past the maximum, an invalid result) is an error and
    /// discards the partial message; on a unicast link it is a protocol
    /// error that resets the link.
    pub fn push(&mut self, f: &FragmentMsg) -> Result<Reassembly, WireError> {
        match f.msg_type {
            FragmentType::First => {
                if self.buf.is_some() {
                    self.reset();
                    return Err(WireError::BadField { field: "second FIRST_FRAGMENT", value: u32::from(f.frag_no) });
                }
                let mut b = BytesMut::with_capacity(f.payload.len() * 4);
                b.extend_from_slice(&f.payload);
                self.buf = Some(b);
                self.next_no = f.frag_no.wrapping_add(1);
            }
            FragmentType::Middle | FragmentType::Last => {
                let Some(b) = self.buf.as_mut() else {
                    return Err(WireError::BadField { field: "fragment without FIRST", value: u32::from(f.frag_no) });
                };
                if b.len() + f.payload.len() > MAX_MSG_SIZE {
                    self.reset();
                    return Err(WireError::Overflow { field: "reassembled size", value: MAX_MSG_SIZE as u64 + 1 });
                }
                b.extend_from_slice(&f.payload);
                self.next_no = f.frag_no.wrapping_add(1);
            }
            FragmentType::Unknown(t) => {
                self.reset();
                return Err(WireError::BadField { field: "fragment type", value: u32::from(t) });
            }
        }
        if f.msg_type != FragmentType::Last {
            return Ok(Reassembly::Pending);
        }
        let whole = self.buf.take().map(BytesMut::freeze).unwrap_or_default();
        self.next_no = 0;
        let h = Header::new_checked(whole.clone())?;
        if h.size() != whole.len() {
            return Err(WireError::BadSize { size: h.size(), hsize: whole.len() });
        }
        Ok(Reassembly::Complete(whole))
    }
}
