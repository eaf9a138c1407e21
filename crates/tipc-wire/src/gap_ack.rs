//! The Gap-ACK record carried first in STATE payloads when TIPC_GAP_ACK_BLOCK
//! was negotiated.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{SeqNo, WireError};

/// One block: everything up to `ack` is here, then `gap` packets are missing
/// (the last block has gap 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapAckBlock {
    /// Last packet of a received run.
    pub ack: SeqNo,
    /// Number of packets missing after it.
    pub gap: u16,
}

/// The record: broadcast blocks first, then unicast blocks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GapAckRecord {
    /// Blocks for the broadcast link.
    pub bcast: Vec<GapAckBlock>,
    /// Blocks for the unicast link.
    pub ucast: Vec<GapAckBlock>,
}

impl GapAckRecord {
    /// Maximum blocks of each kind.
    pub const MAX_BLOCKS: usize = 64;

    /// Encoded length: 4 + 4 × blocks.
    pub fn len(&self) -> usize {
        4 + 4 * (self.bcast.len() + self.ucast.len())
    }
    /// Whether the record has no blocks.
    pub fn is_empty(&self) -> bool {
        self.bcast.is_empty() && self.ucast.is_empty()
    }

    /// Reads a record from the start of a STATE payload; returns it and the
    /// number of bytes it occupies.
    pub fn parse(p: &[u8]) -> Result<(GapAckRecord, usize), WireError> {
        let hdr = p.get(..4).ok_or(WireError::Truncated { need: 4, have: p.len() })?;
        let len = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]));
        let ucnt = usize::from(hdr[2]);
        let bcnt = usize::from(hdr[3]);
        if ucnt > Self::MAX_BLOCKS || bcnt > Self::MAX_BLOCKS {
            return Err(WireError::BadField { field: "gap-ack block count", value: (ucnt.max(bcnt)) as u32 });
        }
        if len != 4 + 4 * (ucnt + bcnt) {
            return Err(WireError::BadField { field: "gap-ack length", value: len as u32 });
        }
        let body = p.get(4..len).ok_or(WireError::Truncated { need: len, have: p.len() })?;
        let blocks: Vec<GapAckBlock> = body
            .chunks_exact(4)
            .map(|c| GapAckBlock {
                ack: SeqNo(u16::from_be_bytes([c[0], c[1]])),
                gap: u16::from_be_bytes([c[2], c[3]]),
            })
            .collect();
        let (b, u) = blocks.split_at(bcnt);
        Ok((GapAckRecord { bcast: b.to_vec(), ucast: u.to_vec() }, len))
    }

    /// Encodes the record.
    pub fn to_bytes(&self) -> Result<Bytes, WireError> {
        if self.bcast.len() > Self::MAX_BLOCKS || self.ucast.len() > Self::MAX_BLOCKS {
            return Err(WireError::Overflow {
                field: "gap-ack blocks",
                value: self.bcast.len().max(self.ucast.len()) as u64,
            });
        }
        let mut b = BytesMut::with_capacity(self.len());
        b.put_u16(self.len() as u16);
        b.put_u8(self.ucast.len() as u8);
        b.put_u8(self.bcast.len() as u8);
        for blk in self.bcast.iter().chain(self.ucast.iter()) {
            b.put_u16(blk.ack.0);
            b.put_u16(blk.gap);
        }
        Ok(b.freeze())
    }

    /// Builds blocks from a sorted list of out-of-order sequence numbers held
    /// by a receiver (the deferred queue), as the kernel does.
    pub fn blocks_from_deferred(deferred: &[SeqNo]) -> Vec<GapAckBlock> {
        let mut out: Vec<GapAckBlock> = Vec::new();
        let mut i = 0;
        while i < deferred.len() && out.len() < Self::MAX_BLOCKS {
            let mut end = deferred[i];
            while i + 1 < deferred.len() && deferred[i + 1] == end.next() {
                i += 1;
                end = deferred[i];
            }
            let gap = deferred.get(i + 1).map(|n| end.distance_to(*n).saturating_sub(1)).unwrap_or(0);
            out.push(GapAckBlock { ack: end, gap });
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example() {
        let d: Vec<SeqNo> = [1u16, 2, 3, 4, 10, 11, 13, 14, 15, 20].iter().map(|&v| SeqNo(v)).collect();
        let b = GapAckRecord::blocks_from_deferred(&d);
        let pairs: Vec<(u16, u16)> = b.iter().map(|x| (x.ack.0, x.gap)).collect();
        assert_eq!(pairs, vec![(4, 5), (11, 1), (15, 4), (20, 0)]);
        let r = GapAckRecord { bcast: vec![], ucast: b };
        let bytes = r.to_bytes().unwrap();
        assert_eq!(GapAckRecord::parse(&bytes).unwrap(), (r, 20));
    }

    #[test]
    fn empty_record_is_the_kernels_four_bytes() {
        let r = GapAckRecord::default();
        assert_eq!(&r.to_bytes().unwrap()[..], &[0, 4, 0, 0]);
    }
}
