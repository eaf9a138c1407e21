//! Ethernet II framing of TIPC messages.

use bytes::Bytes;

use crate::{ETH_P_TIPC, MacAddr, WireError};

/// Length of an Ethernet II header.
pub const ETH_HLEN: usize = 14;

/// An Ethernet II frame carrying (or claiming to carry) TIPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthFrame {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// EtherType.
    pub ethertype: u16,
    /// Everything after the 14-byte header (a TIPC message, maybe padded).
    pub payload: Bytes,
}

impl EthFrame {
    /// Splits a frame into header fields and payload (zero-copy).
    pub fn parse(frame: Bytes) -> Result<EthFrame, WireError> {
        let h = frame.get(..ETH_HLEN).ok_or(WireError::Truncated { need: ETH_HLEN, have: frame.len() })?;
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&h[0..6]);
        src.copy_from_slice(&h[6..12]);
        let ethertype = u16::from_be_bytes([h[12], h[13]]);
        Ok(EthFrame { dst: MacAddr(dst), src: MacAddr(src), ethertype, payload: frame.slice(ETH_HLEN..) })
    }

    /// Like [`EthFrame::parse`], but fails unless the EtherType is 0x88CA.
    pub fn parse_tipc(frame: Bytes) -> Result<EthFrame, WireError> {
        let f = Self::parse(frame)?;
        if f.ethertype != ETH_P_TIPC {
            return Err(WireError::NotTipc(f.ethertype));
        }
        Ok(f)
    }

    /// Writes the 14-byte header into `buf`.
    pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> Result<(), WireError> {
        let h = buf.get_mut(..ETH_HLEN).ok_or(WireError::Truncated { need: ETH_HLEN, have: 0 })?;
        h[0..6].copy_from_slice(&dst.0);
        h[6..12].copy_from_slice(&src.0);
        h[12..14].copy_from_slice(&ethertype.to_be_bytes());
        Ok(())
    }

    /// Encodes a complete frame (header + `msg`), without padding.
    pub fn build(dst: MacAddr, src: MacAddr, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; ETH_HLEN + msg.len()];
        // the buffer is at least ETH_HLEN long, so this cannot fail
        let _ = Self::write_header(&mut v, dst, src, ETH_P_TIPC);
        v[ETH_HLEN..].copy_from_slice(msg);
        v
    }
}
