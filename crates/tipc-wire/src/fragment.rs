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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataMsg, DataType, Msg, PortId};

    fn piece(msg_type: FragmentType, frag_no: u16, len: usize) -> FragmentMsg {
        FragmentMsg {
            msg_type,
            hdr: IntHdr::default(),
            frag_no,
            frag_count: 0,
            word5: 0,
            importance: Importance::Low,
            payload: Bytes::from(vec![0x5a; len]),
        }
    }

    /// The largest message a user may send, as its encoded bytes.
    fn largest() -> Bytes {
        let mut m = DataMsg::new(DataType::Direct, Bytes::from(vec![7u8; crate::MAX_USER_MSG_SIZE]));
        m.dest_port = PortId(1);
        Msg::Data(m).to_bytes().expect("encode")
    }

    #[test]
    fn the_largest_message_reassembles_from_full_size_fragments() {
        let whole = largest();
        let frags = fragment(&whole, 1500, IntHdr::default(), Importance::Low).expect("fragments");
        assert!(frags.len() > 40);
        for (k, f) in frags.iter().enumerate() {
            assert_eq!(usize::from(f.frag_no), k + 1, "fragments are numbered from 1");
            assert!(f.payload.len() <= 1500 - INT_H_SIZE);
        }
        let mut r = Reassembler::new();
        for (i, f) in frags.iter().enumerate() {
            let got = r.push(f).expect("in place");
            assert!(r.held() <= MAX_MSG_SIZE);
            if i + 1 < frags.len() {
                assert_eq!(got, Reassembly::Pending);
            } else {
                assert_eq!(got, Reassembly::Complete(whole.clone()));
            }
        }
        assert!(!r.in_progress());
    }

    /// A train that grows past 66 060 bytes is refused at the fragment
    /// that would cross the cap; the buffer never holds more than the cap,
    /// the partial message is dropped, and what follows without a FIRST is
    /// refused too (on a link: a protocol error, which resets it).
    #[test]
    fn a_train_past_the_cap_is_refused_at_the_crossing_fragment() {
        let mut r = Reassembler::new();
        assert_eq!(r.push(&piece(FragmentType::First, 1, 1460)), Ok(Reassembly::Pending));
        let mut no = 2u16;
        while r.held() + 1460 <= MAX_MSG_SIZE {
            assert_eq!(r.push(&piece(FragmentType::Middle, no, 1460)), Ok(Reassembly::Pending));
            assert!(r.held() <= MAX_MSG_SIZE);
            no += 1;
        }
        assert!(r.in_progress());
        // exactly up to the cap is still fine
        let rest = MAX_MSG_SIZE - r.held();
        assert_eq!(r.push(&piece(FragmentType::Middle, no, rest)), Ok(Reassembly::Pending));
        assert_eq!(r.held(), MAX_MSG_SIZE);
        no += 1;
        // one byte more crosses it
        let crossing = r.push(&piece(FragmentType::Middle, no, 1));
        assert_eq!(crossing, Err(WireError::Overflow { field: "reassembled size", value: MAX_MSG_SIZE as u64 + 1 }));
        assert_eq!(r.held(), 0, "the partial message is dropped");
        assert!(!r.in_progress());
        let orphan = r.push(&piece(FragmentType::Last, no + 1, 100));
        assert!(matches!(orphan, Err(WireError::BadField { .. })), "{orphan:?}");
    }

    /// The fragment number is 16 bits: 65 535 fragments are fine, one more
    /// is refused.
    #[test]
    fn at_most_65535_fragments() {
        let msg = Bytes::from(vec![0u8; usize::from(u16::MAX)]);
        let frags = fragment(&msg, INT_H_SIZE + 1, IntHdr::default(), Importance::Low).expect("65 535 fragments");
        assert_eq!(frags.len(), usize::from(u16::MAX));
        assert_eq!(frags.last().map(|f| f.frag_no), Some(u16::MAX));
        let msg = Bytes::from(vec![0u8; usize::from(u16::MAX) + 1]);
        assert!(fragment(&msg, INT_H_SIZE + 1, IntHdr::default(), Importance::Low).is_err());
    }

    /// One byte past the cap, as a LAST fragment, is refused as well: the
    /// largest message plus one byte does not complete.
    #[test]
    fn one_byte_past_the_cap_is_refused() {
        let whole = largest();
        let mut frags = fragment(&whole, 1500, IntHdr::default(), Importance::Low).expect("fragments");
        let pad = MAX_MSG_SIZE - whole.len() + 1;
        let last = frags.len() - 1;
        let mut grown = frags[last].payload.to_vec();
        grown.extend(std::iter::repeat_n(0u8, pad));
        frags[last].payload = Bytes::from(grown);
        let mut r = Reassembler::new();
        let mut result = Ok(Reassembly::Pending);
        for f in &frags {
            result = r.push(f);
            assert!(r.held() <= MAX_MSG_SIZE);
        }
        assert!(matches!(result, Err(WireError::Overflow { .. })), "{result:?}");
    }
}
