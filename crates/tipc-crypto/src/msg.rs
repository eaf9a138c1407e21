//! MSG_CRYPTO (user 14) KEY_DISTR_MSG: one node's transmit key sent to
//! others (net/tipc/crypto.c `tipc_crypto_key_distr`,
//! `tipc_crypto_key_rcv`).
//!
//! Layout: the 40-byte internal header (w4 bits 16–31 the key generation,
//! bits 0–3 the key mode; w7 the destination, 0 for all), then the
//! algorithm name in 32 NUL-padded bytes, the key length (u32, big-endian)
//! and the key bytes with their salt.

use bytes::Bytes;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::key::{ALG_NAME, AeadKey, MAX_KEY_LEN};

/// The MSG_CRYPTO user number.
pub const MSG_CRYPTO: u8 = 14;
/// The KEY_DISTR_MSG type (w1 bits 29–31).
pub const KEY_DISTR_MSG: u8 = 0;
/// Header length of a MSG_CRYPTO message.
const HDR: usize = 40;
/// Bytes before the key: the algorithm name and the key length.
const KEY_PREFIX: usize = 36;

/// How a key builds its nonce (w4 bits 0–3 of KEY_DISTR; net/tipc/crypto.c
/// `CLUSTER_KEY` / `PER_NODE_KEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// Shared by all nodes: the nonce takes the sender's address.
    Cluster = 1,
    /// One node's own key: the nonce takes the destination's address.
    PerNode = 2,
}

/// A parsed KEY_DISTR message.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyDistr {
    /// The sender's key generation counter.
    pub generation: u16,
    /// The key's mode.
    pub mode: KeyMode,
    /// The key and salt.
    pub key: AeadKey,
    /// The destination node, 0 when sent to all.
    pub dest: u32,
}

impl KeyDistr {
    /// Builds the message from `own` (our address) to `dest` (0: to all,
    /// on the broadcast link, which sets the non-sequenced bit, the network
    /// id and the sequence numbers). The buffer is zeroed when the last
    /// reference to it is dropped.
    pub fn build(&self, own: u32) -> Bytes {
        let klen = self.key.len();
        let size = HDR + KEY_PREFIX + klen;
        let mut b = Zeroizing::new(vec![0u8; size]);
        let w0: u32 = 2 << 29 | u32::from(MSG_CRYPTO) << 25 | ((HDR / 4) as u32) << 21 | size as u32;
        let words = [
            (0, w0),
            (1, u32::from(KEY_DISTR_MSG) << 29),
            (3, own),
            (4, u32::from(self.generation) << 16 | self.mode as u32),
            (6, own),
            (7, self.dest),
        ];
        for (i, w) in words {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        b[HDR..HDR + ALG_NAME.len()].copy_from_slice(ALG_NAME.as_bytes());
        b[HDR + 32..HDR + 36].copy_from_slice(&(klen as u32).to_be_bytes());
        b[HDR + KEY_PREFIX..].copy_from_slice(self.key.as_bytes());
        Bytes::from_owner(b)
    }

    /// Reads a MSG_CRYPTO message (header and data, as delivered by a link).
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyMessage`] for another type, a header other than
    /// 40 bytes, an unknown mode or algorithm, or a data length other than
    /// 36 + the key length (the kernel's checks, including those of the
    /// CVE-2021-43267 fix); [`CryptoError::KeyLength`] for a key length
    /// other than 20, 28 or 36.
    pub fn parse(msg: &[u8]) -> Result<KeyDistr, CryptoError> {
        let word = |i: usize| -> Result<u32, CryptoError> {
            msg.get(i * 4..i * 4 + 4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .ok_or(CryptoError::KeyMessage("truncated header"))
        };
        let w0 = word(0)?;
        if (w0 >> 25) & 0xf != u32::from(MSG_CRYPTO) || ((w0 >> 21) & 0xf) as usize * 4 != HDR {
            return Err(CryptoError::KeyMessage("not a MSG_CRYPTO message with a 40-byte header"));
        }
        if (word(1)? >> 29) as u8 != KEY_DISTR_MSG {
            return Err(CryptoError::KeyMessage("not KEY_DISTR_MSG"));
        }
        let size = ((w0 & 0x1_ffff) as usize).min(msg.len());
        let data = msg.get(HDR..size).ok_or(CryptoError::KeyMessage("truncated"))?;
        if data.len() < KEY_PREFIX + 20 || data.len() > KEY_PREFIX + MAX_KEY_LEN {
            return Err(CryptoError::KeyMessage("bad data length"));
        }
        let name_end = data[..32].iter().position(|&b| b == 0).unwrap_or(32);
        if &data[..name_end] != ALG_NAME.as_bytes() {
            return Err(CryptoError::Algorithm);
        }
        let klen = u32::from_be_bytes([data[32], data[33], data[34], data[35]]) as usize;
        if KEY_PREFIX + klen != data.len() {
            return Err(CryptoError::KeyMessage("key length disagrees with the message size"));
        }
        let w4 = word(4)?;
        let mode = match w4 & 0xf {
            1 => KeyMode::Cluster,
            2 => KeyMode::PerNode,
            _ => return Err(CryptoError::KeyMessage("unknown key mode")),
        };
        Ok(KeyDistr { generation: (w4 >> 16) as u16, mode, key: AeadKey::new(&data[KEY_PREFIX..])?, dest: word(7)? })
    }
}
