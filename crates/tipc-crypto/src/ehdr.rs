//! The encryption header (`struct tipc_ehdr` of net/tipc/crypto.h) that
//! opens every encrypted frame, in its two forms.
//!
//! An encrypted frame is `[ehdr][ciphertext of the TIPC message + 0..3 pad
//! bytes][16-byte tag]`; the ehdr is the AEAD's associated data
//! (net/tipc/crypto.h `struct tipc_ehdr`, crypto.c `tipc_aead_encrypt`).
//! Word 0 shares its top three bits with the plain header's version
//! field: 7 here, 2 in a clear TIPC message.

use crate::error::CryptoError;

/// The version field of an encrypted frame (w0 bits 29–31).
pub const EHDR_VERSION: u8 = 7;
/// Length of the short form: words 0–3, the last the sender's address.
pub const EHDR_SIZE: usize = 16;
/// Length of the long form used for every LINK_CONFIG message: words 0–6,
/// the sender's 16-byte identity in words 3–6.
pub const EHDR_CFG_SIZE: usize = 28;
/// Length of the AES-GCM tag at the end of a frame.
pub const TAG_SIZE: usize = 16;
/// Bytes encryption adds to a message at most: the short ehdr, the tag and
/// up to 3 pad bytes are kept free by the link MTU (the kernel keeps 32,
/// `EMSG_OVERHEAD` in net/tipc/crypto.h, and its packets are multiples of 4
/// in practice).
pub const OVERHEAD: usize = EHDR_SIZE + TAG_SIZE;
/// The ehdr `user` value that selects the long form: LINK_CONFIG.
pub const EHDR_USER_CFG: u8 = 13;
/// The ehdr `user` value of a LINK_PROTOCOL STATE message.
pub const EHDR_USER_STATE: u8 = 7;

/// Who sent an encrypted frame, as its ehdr says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// Short form: the sender's 32-bit node address (word 3).
    Addr(u32),
    /// Long form (LINK_CONFIG): the sender's 16-byte node identity.
    Id([u8; 16]),
}

impl Sender {
    /// The four bytes the cluster-mode nonce takes from the ehdr (its bytes
    /// 12–15): the address, or the identity's first four bytes.
    pub fn nonce_word(&self) -> [u8; 4] {
        match self {
            Sender::Addr(a) => a.to_be_bytes(),
            Sender::Id(id) => [id[0], id[1], id[2], id[3]],
        }
    }
}

/// The fields of an encryption header (net/tipc/crypto.h `struct tipc_ehdr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncHeader {
    /// w0 bits 25–28: 13 for LINK_CONFIG (long form), 7 for a STATE, 0
    /// for everything else. Not the inner message's user.
    pub user: u8,
    /// w0 bit 24 (D): encrypted for a known destination node (unicast-link
    /// traffic and link protocol); false for discovery and the broadcast link.
    pub destined: bool,
    /// w0 bits 22–23: the sender's key slot used (0 master, 1–3 others).
    pub tx_key: u8,
    /// w0 bits 20–21: with `destined`, the slot of the sender's active
    /// receive key for the destination node (0 none).
    pub rx_key_active: u8,
    /// w0 bit 19 (K): a copy of the inner STATE's keepalive flag.
    pub keepalive: bool,
    /// w0 bit 18 (M): the sender holds a master key.
    pub master: bool,
    /// w0 bit 17 (N): with `destined`, the sender lacks a key to read the
    /// destination's frames.
    pub rx_nokey: bool,
    /// Words 1–2: the 64-bit nonce counter, never 0.
    pub seqno: u64,
    /// Word 3 (short form) or words 3–6 (long form).
    pub sender: Sender,
}

/// Whether `frame` (a TIPC frame without its Ethernet or UDP header) is an
/// encrypted one: version 7 and long enough to hold an ehdr and a tag (the
/// kernel's test in `tipc_rcv`; a shorter one is treated as plain).
pub fn is_encrypted(frame: &[u8]) -> bool {
    match frame.first() {
        Some(b) if b >> 5 == EHDR_VERSION => frame.len() > ehdr_len(*b) + TAG_SIZE,
        _ => false,
    }
}

/// The ehdr length that the first byte selects.
fn ehdr_len(b0: u8) -> usize {
    if (b0 >> 1) & 0xf == EHDR_USER_CFG { EHDR_CFG_SIZE } else { EHDR_SIZE }
}

impl EncHeader {
    /// Its length on the wire: 28 for the long form, else 16.
    pub fn len(&self) -> usize {
        match self.sender {
            Sender::Addr(_) => EHDR_SIZE,
            Sender::Id(_) => EHDR_CFG_SIZE,
        }
    }

    /// Never empty; here for the `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads the header at the start of `frame`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::NotEncrypted`] if the version is not 7;
    /// [`CryptoError::Truncated`] if the frame cannot hold the header, a
    /// tag and at least one byte of ciphertext. Reserved bits and the
    /// sequence number are not checked here (the kernel does not either);
    /// the tag authenticates them.
    pub fn parse(frame: &[u8]) -> Result<EncHeader, CryptoError> {
        let Some(&b0) = frame.first() else { return Err(CryptoError::Truncated) };
        if b0 >> 5 != EHDR_VERSION {
            return Err(CryptoError::NotEncrypted);
        }
        let n = ehdr_len(b0);
        if frame.len() <= n + TAG_SIZE {
            return Err(CryptoError::Truncated);
        }
        let w0 = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&frame[4..12]);
        let seqno = u64::from_be_bytes(seq);
        let user = ((w0 >> 25) & 0xf) as u8;
        let sender = if n == EHDR_CFG_SIZE {
            let mut id = [0u8; 16];
            id.copy_from_slice(&frame[12..28]);
            Sender::Id(id)
        } else {
            Sender::Addr(u32::from_be_bytes([frame[12], frame[13], frame[14], frame[15]]))
        };
        Ok(EncHeader {
            user,
            destined: w0 & (1 << 24) != 0,
            tx_key: ((w0 >> 22) & 3) as u8,
            rx_key_active: ((w0 >> 20) & 3) as u8,
            keepalive: w0 & (1 << 19) != 0,
            master: w0 & (1 << 18) != 0,
            rx_nokey: w0 & (1 << 17) != 0,
            seqno,
            sender,
        })
    }

    /// Writes the header into the first [`EncHeader::len`] bytes of `out`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Truncated`] if `out` is shorter than the header;
    /// [`CryptoError::BadHeader`] if a field does not fit its bits, the
    /// sequence number is 0, or the form does not match `user` (the long
    /// form goes with user 13 and only with it).
    pub fn write(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        let n = self.len();
        if out.len() < n {
            return Err(CryptoError::Truncated);
        }
        if self.user > 0xf || self.tx_key > 3 || self.rx_key_active > 3 || self.seqno == 0 {
            return Err(CryptoError::BadHeader("field out of range"));
        }
        if (self.user == EHDR_USER_CFG) != (n == EHDR_CFG_SIZE) {
            return Err(CryptoError::BadHeader("form and user disagree"));
        }
        let w0 = u32::from(EHDR_VERSION) << 29
            | u32::from(self.user) << 25
            | u32::from(self.destined) << 24
            | u32::from(self.tx_key) << 22
            | u32::from(self.rx_key_active) << 20
            | u32::from(self.keepalive) << 19
            | u32::from(self.master) << 18
            | u32::from(self.rx_nokey) << 17;
        out[0..4].copy_from_slice(&w0.to_be_bytes());
        out[4..12].copy_from_slice(&self.seqno.to_be_bytes());
        match self.sender {
            Sender::Addr(a) => out[12..16].copy_from_slice(&a.to_be_bytes()),
            Sender::Id(id) => out[12..28].copy_from_slice(&id),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    /// The headers of frames 224, 27 and 17 of capture 17.
    #[test]
    fn capture_17_headers() {
        let mut f = hex("e1 54 00 00 00 00 00 00 00 00 00 49 17 1d 54 11");
        f.extend([0u8; 40]);
        let h = EncHeader::parse(&f).expect("frame 224");
        assert_eq!(
            h,
            EncHeader {
                user: 0,
                destined: true,
                tx_key: 1,
                rx_key_active: 1,
                keepalive: false,
                master: true,
                rx_nokey: false,
                seqno: 0x49,
                sender: Sender::Addr(0x171d_5411),
            }
        );
        let mut back = [0u8; 16];
        h.write(&mut back).expect("write");
        assert_eq!(&back[..], &f[..16]);

        let mut f = hex("ef 04 00 00 00 00 00 00 00 00 00 0e 17 1d 54 12");
        f.extend([0u8; 40]);
        let h = EncHeader::parse(&f).expect("frame 27");
        assert_eq!((h.user, h.destined, h.tx_key, h.master, h.seqno), (EHDR_USER_STATE, true, 0, true, 14));

        let mut f = hex("fa 04 00 00 00 00 00 00 00 00 00 09");
        f.extend(b"crypto-b\0\0\0\0\0\0\0\0");
        f.extend([0u8; 40]);
        let h = EncHeader::parse(&f).expect("frame 17");
        assert_eq!(h.len(), EHDR_CFG_SIZE);
        assert_eq!((h.user, h.destined, h.master, h.seqno), (EHDR_USER_CFG, false, true, 9));
        assert_eq!(h.sender.nonce_word(), *b"cryp");
        let mut back = [0u8; 28];
        h.write(&mut back).expect("write");
        assert_eq!(&back[..], &f[..28]);
    }

    #[test]
    fn plain_and_short_frames_are_not_encrypted() {
        assert!(!is_encrypted(&[]));
        assert!(!is_encrypted(&[0x41; 80]));
        assert!(!is_encrypted(&[0xe0; 32]));
        assert!(is_encrypted(&[0xe0; 33]));
        assert_eq!(EncHeader::parse(&[0xe0; 32]), Err(CryptoError::Truncated));
        assert_eq!(EncHeader::parse(&[0x41; 80]), Err(CryptoError::NotEncrypted));
    }
}
