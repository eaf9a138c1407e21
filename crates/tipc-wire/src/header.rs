//! The checked view over a TIPC message and the fields of word 0.

use bytes::Bytes;

use crate::field::{bit, bits, set_bit, set_bits, set_word, word};
use crate::{Importance, NodeAddr, SeqNo, User, WireError};

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

/// The length of an encrypted TIPC frame (version 7 in the first three
/// bits, net/tipc/crypto.h `struct tipc_ehdr`): all of `payload`, since the
/// encryption header has no size field; `None` for a clear message (its
/// size field tells its length). A bearer cuts what it received with this.
pub fn encrypted_len(payload: &[u8]) -> Option<usize> {
    payload.first().filter(|b| *b >> 5 == 7).map(|_| payload.len())
}
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
    /// Word 5 of a packet on the broadcast link: the sender's network
    /// (cluster) id, which the bearer writes into every broadcast frame
    /// (net/tipc/msg.h `msg_mc_netid`; net/tipc/bearer.c
    /// `tipc_bearer_bc_xmit`).
    pub fn mc_netid(&self) -> u32 {
        self.word(5)
    }
    /// Word 5 bit 14 of LINK_PROTOCOL, BCAST_PROTOCOL and NAME_DISTRIBUTOR
    /// messages: the broadcast ack in word 1 is not valid yet; false for
    /// every other user (net/tipc/msg.h `msg_bc_ack_invalid`).
    pub fn bc_ack_invalid(&self) -> bool {
        match self.user() {
            User::LinkProtocol | User::BcastProtocol | User::NameDistributor => self.bits(5, 14, 1) != 0,
            _ => false,
        }
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

/// The common header fields of a message that was not validated, by name.
///
/// Unlike [`Header`] nothing is checked up front: every read beyond the
/// buffer gives 0 and every write beyond it is ignored (as with the
/// [`crate::field`] helpers), so no input makes an accessor panic. It is
/// for code that reads or stamps a few fields of messages it passes on
/// without parsing them, as the kernel's link layer writes sequence
/// numbers and acks into the header of each packet it sends
/// (net/tipc/link.c); field positions follow net/tipc/msg.h.
#[derive(Clone, Debug)]
pub struct UncheckedHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UncheckedHeader<T> {
    /// A view of `buf`; nothing is checked.
    pub fn new(buf: T) -> Self {
        UncheckedHeader { buf }
    }
    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }
    /// The message user: word 0 bits 25–28 (msg.h `msg_user`).
    pub fn user(&self) -> User {
        User::from(bits(self.buf.as_ref(), 0, 25, 4) as u8)
    }
    /// Header length in bytes: word 0 bits 21–24 in 4-byte units (msg.h
    /// `msg_hdr_sz`).
    pub fn header_len(&self) -> usize {
        (bits(self.buf.as_ref(), 0, 21, 4) as usize) << 2
    }
    /// Message size in bytes, header included: word 0 bits 0–16 (msg.h
    /// `msg_size`).
    pub fn size(&self) -> usize {
        bits(self.buf.as_ref(), 0, 0, 17) as usize
    }
    /// Keepalive flag: word 0 bit 19 (msg.h `msg_is_keepalive`; set on
    /// LINK_PROTOCOL probes and probe replies).
    pub fn keepalive(&self) -> bool {
        bits(self.buf.as_ref(), 0, 19, 1) != 0
    }
    /// Message type: word 1 bits 29–31 (msg.h `msg_type`).
    pub fn msg_type(&self) -> u8 {
        bits(self.buf.as_ref(), 1, 29, 3) as u8
    }
    /// Destination node: word 7 (msg.h `msg_destnode`); meaningful only
    /// with a header of at least 32 bytes.
    pub fn dest_node(&self) -> NodeAddr {
        NodeAddr(bits(self.buf.as_ref(), 7, 0, 32))
    }
    /// The importance class the link's backlog limits apply to (msg.h
    /// `msg_importance`): a data user without an error code (word 1 bits
    /// 25–28) is its own importance; a fragment or a bundle carries the
    /// importance of what it holds in word 9 bits 0–2 (0–7 as read);
    /// everything else, returned data included, is
    /// [`Importance::System`].
    pub fn importance(&self) -> Importance {
        let b = self.buf.as_ref();
        match self.user() {
            u if u.is_data() && bits(b, 1, 25, 4) == 0 => Importance::from(u8::from(u)),
            User::MsgFragmenter | User::MsgBundler => Importance::from(bits(b, 9, 0, 3) as u8),
            _ => Importance::System,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UncheckedHeader<T> {
    /// Sets the message user: word 0 bits 25–28 (msg.h `msg_set_user`).
    pub fn set_user(&mut self, user: User) {
        set_bits(self.buf.as_mut(), 0, 25, 4, u32::from(u8::from(user)));
    }
    /// Sets the header length in bytes (a multiple of 4, at most 60): word
    /// 0 bits 21–24 (msg.h `msg_set_hdr_sz`).
    pub fn set_header_len(&mut self, len: usize) {
        set_bits(self.buf.as_mut(), 0, 21, 4, (len >> 2) as u32);
    }
    /// Sets the message size in bytes, header included: word 0 bits 0–16
    /// (msg.h `msg_set_size`).
    pub fn set_size(&mut self, size: usize) {
        set_bits(self.buf.as_mut(), 0, 0, 17, size as u32);
    }
    /// Marks the packet non-sequenced (discovery and broadcast-link
    /// packets): word 0 bit 20 (msg.h `msg_set_non_seq`).
    pub fn set_non_seq(&mut self, on: bool) {
        set_bit(self.buf.as_mut(), 0, 20, on);
    }
    /// Sets the broadcast acknowledgement: word 1 bits 0–15 (msg.h
    /// `msg_set_bcast_ack`).
    pub fn set_bcast_ack(&mut self, ack: SeqNo) {
        set_bits(self.buf.as_mut(), 1, 0, 16, u32::from(ack.0));
    }
    /// Sets the link acknowledgement: word 2 bits 16–31 (msg.h
    /// `msg_set_ack`).
    pub fn set_ack(&mut self, ack: SeqNo) {
        set_bits(self.buf.as_mut(), 2, 16, 16, u32::from(ack.0));
    }
    /// Sets the link sequence number: word 2 bits 0–15 (msg.h
    /// `msg_set_seqno`).
    pub fn set_seqno(&mut self, seq: SeqNo) {
        set_bits(self.buf.as_mut(), 2, 0, 16, u32::from(seq.0));
    }
    /// Sets the previous node (the neighbour that sends the packet): word 3
    /// (msg.h `msg_set_prevnode`).
    pub fn set_prev_node(&mut self, node: NodeAddr) {
        set_word(self.buf.as_mut(), 3, node.0);
    }
    /// Sets the network id a broadcast-link packet carries: word 5 (msg.h
    /// `msg_set_mc_netid`; net/tipc/bearer.c `tipc_bearer_bc_xmit`).
    pub fn set_mc_netid(&mut self, net_id: u32) {
        set_word(self.buf.as_mut(), 5, net_id);
    }
    /// Sets the destination node: word 7, present in headers of 32 bytes
    /// and more (msg.h `msg_set_destnode`).
    pub fn set_dest_node(&mut self, node: NodeAddr) {
        set_word(self.buf.as_mut(), 7, node.0);
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

    /// Each named setter writes its own field and nothing else; the
    /// checked view reads back what was written.
    #[test]
    fn unchecked_setters_write_their_fields_only() {
        let mut m = vec![0u8; 40];
        write_word0(&mut m, 11, 40, Flags::default(), 40);
        put(&mut m, 1, 29, 3, 5);
        let mut u = UncheckedHeader::new(&mut m[..]);
        u.set_non_seq(true);
        u.set_bcast_ack(SeqNo(0x1234));
        u.set_ack(SeqNo(0xfedc));
        u.set_seqno(SeqNo(0x8001));
        u.set_prev_node(NodeAddr(0x0100_1001));
        u.set_mc_netid(4711);
        u.set_dest_node(NodeAddr(0x0100_1002));
        let h = Header::new_checked(&m[..]).unwrap();
        assert!(h.flags().non_seq && !h.flags().d);
        assert_eq!((h.user(), h.header_len(), h.size(), h.msg_type()), (User::NameDistributor, 40, 40, 5));
        assert_eq!((h.bcast_ack(), h.ack(), h.seqno()), (SeqNo(0x1234), SeqNo(0xfedc), SeqNo(0x8001)));
        assert_eq!((h.prev_node(), h.dest_node(), h.mc_netid()), (NodeAddr(0x0100_1001), NodeAddr(0x0100_1002), 4711));
        let mut u = UncheckedHeader::new(&mut m[..]);
        u.set_user(User::LinkConfig);
        u.set_header_len(24);
        u.set_size(24);
        assert_eq!((u.user(), u.header_len()), (User::LinkConfig, 24));
        let h = Header::new_checked(&m[..24]).unwrap();
        assert_eq!(
            (h.user(), h.header_len(), h.size(), h.prev_node()),
            (User::LinkConfig, 24, 24, NodeAddr(0x0100_1001))
        );
        // writes past a short buffer are ignored, reads give 0
        let mut short = [0u8; 8];
        let mut u = UncheckedHeader::new(&mut short[..]);
        u.set_dest_node(NodeAddr(1));
        u.set_seqno(SeqNo(3));
        assert_eq!(short, [0; 8]);
        assert_eq!(UncheckedHeader::new(&[][..]).importance(), Importance::Low);
    }

    /// The importance class as the kernel's msg_importance: data by its
    /// user unless returned, fragments and bundles by word 9, the rest
    /// system; the broadcast-ack-invalid bit only for the users that
    /// carry it.
    #[test]
    fn importance_and_bc_ack_invalid_follow_the_kernel() {
        let mut m = vec![0u8; 40];
        let imp = |m: &[u8]| UncheckedHeader::new(m).importance();
        write_word0(&mut m, 2, 40, Flags::default(), 40);
        assert_eq!(imp(&m), Importance::High);
        put(&mut m, 1, 25, 4, 1);
        assert_eq!(imp(&m), Importance::System, "a returned message");
        write_word0(&mut m, 12, 40, Flags::default(), 40);
        put(&mut m, 9, 0, 3, 3);
        assert_eq!(imp(&m), Importance::Critical);
        put(&mut m, 9, 0, 3, 6);
        assert_eq!(imp(&m), Importance::Unknown(6));
        write_word0(&mut m, 7, 40, Flags::default(), 40);
        assert_eq!(imp(&m), Importance::System);
        put(&mut m, 5, 14, 1, 1);
        for (user, invalid) in [(7, true), (5, true), (11, true), (0, false), (9, false)] {
            write_word0(&mut m, user, 40, Flags::default(), 40);
            assert_eq!(Header::new_checked(&m[..]).unwrap().bc_ack_invalid(), invalid, "user {user}");
        }
    }
}
