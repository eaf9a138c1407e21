//! The checked view over a TIPC message and the fields of word 0.

use bytes::Bytes;

use crate::field::{bit, bits, set_bits, word};
use crate::{SeqNo, User, WireError};

/// Connection data header (words 0–5).
pub const SHORT_H_SIZE: usize = 24;
/// Direct (port-addressed) data header.
pub const BASIC_H_SIZE: usize = 32;
/// Named data header.
pub const NAMED_H_SIZE: usize = 40;
/// Multicast and group data header.
pub const MCAST_H_SIZE: usize = 44;
/// Group data header (same as multicast).
pub const GROUP_H_SIZE: usize = 44;
/// Internal (protocol) header.
pub const INT_H_SIZE: usize = 40;
/// Largest header (discovery).
pub const MAX_H_SIZE: usize = 60;
/// Smallest legal header.
pub const MIN_H_SIZE: usize = 24;
/// Largest user payload of one message.
pub const MAX_USER_MSG_SIZE: usize = 66_000;
/// Largest message including its header.
pub const MAX_MSG_SIZE: usize = MAX_USER_MSG_SIZE + MAX_H_SIZE;
/// The TIPC protocol version this crate speaks.
pub const TIPC_VERSION: u8 = 2;
/// Version value marking an encrypted frame.
pub const TIPC_CRYPTO_VERSION: u8 = 7;
/// The Ethernet type of TIPC frames.
pub const ETH_P_TIPC: u16 = 0x88CA;

/// The flag bits of word 0 besides version, user, sizes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Flags {
    /// Bit 20: non-sequenced (discovery and broadcast-link packets).
    pub non_seq: bool,
    /// Bit 19: dest-droppable (data) / keepalive (LINK_PROTOCOL STATE).
    pub d: bool,
    /// Bit 18: src-droppable; reused as is-replicast (multicast), ack-required
    /// (connection data) and nagle-ack (CONN_MANAGER ACK).
    pub s: bool,
    /// Bit 17: SYN (connection set-up; multicast method switch).
    pub syn: bool,
}

impl Flags {
    pub(crate) fn read(buf: &[u8]) -> Flags {
        Flags { non_seq: bit(buf, 0, 20), d: bit(buf, 0, 19), s: bit(buf, 0, 18), syn: bit(buf, 0, 17) }
    }
}

/// Writes word 0: version 2, `user`, header size, flags and message size.
pub(crate) fn write_word0(buf: &mut [u8], user: u8, hsize: usize, flags: Flags, size: usize) {
    let w = (u32::from(TIPC_VERSION) << 29)
        | ((u32::from(user) & 0xf) << 25)
        | (((hsize as u32 >> 2) & 0xf) << 21)
        | (u32::from(flags.non_seq) << 20)
        | (u32::from(flags.d) << 19)
        | (u32::from(flags.s) << 18)
        | (u32::from(flags.syn) << 17)
        | (size as u32 & 0x1_ffff);
    crate::field::set_word(buf, 0, w);
}

/// Checks that an emitter's output buffer is large enough.
pub(crate) fn check_out(buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need { Err(WireError::Truncated { need, have: buf.len() }) } else { Ok(()) }
}

/// Writes bits into word `n` (re-exported for the reprs).
pub(crate) fn put(buf: &mut [u8], n: usize, shift: u32, width: u32, v: u32) {
    set_bits(buf, n, shift, width, v);
}

/// A checked, zero-copy view of one TIPC message.
///
/// [`Header::new_checked`] applies the kernel's receive validation once
/// (version 2, header size 24..=60, size ≥ header size, payload ≤ 66 000
/// bytes, buffer ≥ size); afterwards no accessor can panic. Bytes after
/// `size` (Ethernet padding) are ignored.
#[derive(Clone, Debug)]
pub struct Header<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Validates `buf` as a TIPC message.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_H_SIZE {
            return Err(WireError::Truncated { need: MIN_H_SIZE, have: b.len() });
        }
        let version = bits(b, 0, 29, 3) as u8;
        if version == TIPC_CRYPTO_VERSION {
            return Err(WireError::Encrypted);
        }
        if version != TIPC_VERSION {
            return Err(WireError::BadVersion(version));
        }
        let hsize = (bits(b, 0, 21, 4) as usize) << 2;
        if hsize < MIN_H_SIZE {
            return Err(WireError::BadHeaderSize { hsize, what: "any message" });
        }
        let size = bits(b, 0, 0, 17) as usize;
        if size < hsize || size - hsize > MAX_USER_MSG_SIZE {
            return Err(WireError::BadSize { size, hsize });
        }
        if b.len() < size {
            return Err(WireError::Truncated { need: size, have: b.len() });
        }
        Ok(Header { buf })
    }

    /// The underlying buffer.
    pub fn inner(&self) -> &T {
        &self.buf
    }
    /// The message bytes (header and payload, without trailing padding).
    pub fn as_bytes(&self) -> &[u8] {
        let b = self.buf.as_ref();
        b.get(..self.size()).unwrap_or(b)
    }
    /// Big-endian word `n` of the header (0 beyond the header).
    pub fn word(&self, n: usize) -> u32 {
        if 4 * n + 4 > self.header_len() { 0 } else { word(self.buf.as_ref(), n) }
    }
    /// `width` bits of word `n` at `shift`.
    pub fn bits(&self, n: usize, shift: u32, width: u32) -> u32 {
        (self.word(n) >> shift) & crate::field::mask(width)
    }
    /// Protocol version (always 2 after the check).
    pub fn version(&self) -> u8 {
        self.bits(0, 29, 3) as u8
    }
    /// Message user.
    pub fn user(&self) -> User {
        User::from(self.bits(0, 25, 4) as u8)
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (bits(self.buf.as_ref(), 0, 21, 4) as usize) << 2
    }
    /// Message size in bytes (header included).
    pub fn size(&self) -> usize {
        bits(self.buf.as_ref(), 0, 0, 17) as usize
    }
    /// Word-0 flag bits.
    pub fn flags(&self) -> Flags {
        Flags::read(self.buf.as_ref())
    }
    /// Message type (word 1 bits 29–31); its meaning depends on the user.
    pub fn msg_type(&self) -> u8 {
        self.bits(1, 29, 3) as u8
    }
    /// Word 1 bits 0–15: broadcast ack on sequenced packets.
    pub fn bcast_ack(&self) -> SeqNo {
        SeqNo(self.bits(1, 0, 16) as u16)
    }
    /// Word 2 bits 16–31: link acknowledgement.
    pub fn ack(&self) -> SeqNo {
        SeqNo(self.bits(2, 16, 16) as u16)
    }
    /// Word 2 bits 0–15: link sequence number.
    pub fn seqno(&self) -> SeqNo {
        SeqNo(self.bits(2, 0, 16) as u16)
    }
    /// Word 3: previous node.
    pub fn prev_node(&self) -> crate::NodeAddr {
        crate::NodeAddr(self.word(3))
    }
    /// Originating node: word 6, or word 3 in a 24-byte header.
    pub fn orig_node(&self) -> crate::NodeAddr {
        if self.header_len() < 28 { self.prev_node() } else { crate::NodeAddr(self.word(6)) }
    }
    /// Destination node (word 7; 0 when the header has no word 7).
    pub fn dest_node(&self) -> crate::NodeAddr {
        crate::NodeAddr(self.word(7))
    }
    /// Header bytes.
    pub fn header_bytes(&self) -> &[u8] {
        let b = self.buf.as_ref();
        b.get(..self.header_len()).unwrap_or(b)
    }
    /// Payload bytes (after the header, up to `size`).
    pub fn payload_slice(&self) -> &[u8] {
        let b = self.buf.as_ref();
        b.get(self.header_len()..self.size()).unwrap_or(&[])
    }
}

impl Header<Bytes> {
    /// The payload as a refcounted slice of the same buffer; no copy.
    pub fn payload(&self) -> Bytes {
        self.buf.slice(self.header_len()..self.size())
    }
    /// The message without trailing padding, as a refcounted slice.
    pub fn message(&self) -> Bytes {
        self.buf.slice(..self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_the_kernel_rules() {
        let mut m = vec![0u8; 40];
        write_word0(&mut m, 7, 40, Flags::default(), 40);
        assert!(Header::new_checked(&m[..]).is_ok());
        assert!(matches!(Header::new_checked(&m[..39]), Err(WireError::Truncated { .. })));
        write_word0(&mut m, 7, 40, Flags::default(), 36);
        assert!(matches!(Header::new_checked(&m[..]), Err(WireError::BadSize { .. })));
        m[0] = 0xe0 | (m[0] & 0x1f);
        assert_eq!(Header::new_checked(&m[..]).err(), Some(WireError::Encrypted));
        // trailing padding is fine
        let mut p = vec![0u8; 60];
        write_word0(&mut p, 7, 40, Flags::default(), 40);
        let h = Header::new_checked(&p[..]).unwrap();
        assert_eq!(h.as_bytes().len(), 40);
    }
}
