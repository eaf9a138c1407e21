//! AES-GCM keys: the `tipc node set key` text format, the key bytes in
//! memory that is zeroed on drop, and the cipher built from them.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, KeyInit};
use tipc_wire::NodeId;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;

/// Length of the salt that follows the AES key (`TIPC_AES_GCM_SALT_SIZE`,
/// net/tipc/crypto.h).
pub const SALT_LEN: usize = 4;
/// The only algorithm name TIPC accepts.
pub const ALG_NAME: &str = "gcm(aes)";
/// The largest key with its salt: AES-256.
pub const MAX_KEY_LEN: usize = 32 + SALT_LEN;

/// An AES-GCM key and its 4-byte salt, as `tipc node set key` takes them:
/// 20, 28 or 36 bytes (AES-128/192/256). The bytes are zeroed when the key
/// is dropped, and `Debug` shows only the key size.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AeadKey {
    bytes: [u8; MAX_KEY_LEN],
    len: u8,
}

impl AeadKey {
    /// A key from its bytes: the AES key followed by the salt.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyLength`] unless `bytes` is 20, 28 or 36 long.
    pub fn new(bytes: &[u8]) -> Result<AeadKey, CryptoError> {
        if !matches!(bytes.len(), 20 | 28 | 36) {
            return Err(CryptoError::KeyLength(bytes.len()));
        }
        let mut k = AeadKey { bytes: [0; MAX_KEY_LEN], len: bytes.len() as u8 };
        k.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(k)
    }
    /// The key and salt bytes (what a KEY_DISTR message carries).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Length of the key with its salt: 20, 28 or 36.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// Never empty; here for the `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The AES key size in bits: 128, 192 or 256.
    pub fn bits(&self) -> usize {
        (self.len() - SALT_LEN) * 8
    }
    /// The salt: the last 4 bytes.
    pub fn salt(&self) -> [u8; 4] {
        let n = self.len();
        [self.bytes[n - 4], self.bytes[n - 3], self.bytes[n - 2], self.bytes[n - 1]]
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey(AES-{}, ...)", self.bits())
    }
}

impl PartialEq for AeadKey {
    fn eq(&self, o: &AeadKey) -> bool {
        self.as_bytes() == o.as_bytes()
    }
}
impl Eq for AeadKey {}

/// What a configured key is for (`tipc node set key KEY [master | nodeid
/// ID]`; net/tipc/node.c `__tipc_nl_node_set_key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// `master`: the cluster master key (TX slot 0). Discovery, link
    /// resets and key distribution use it, and everything until a session
    /// key is active; session keys are then made and sent automatically.
    Master,
    /// Neither `master` nor `nodeid`: a key every node shares, used as our
    /// ordinary transmit key (cluster mode).
    Cluster,
    /// `nodeid ID`: our own transmit key if ID is our identity, else the
    /// key we read node ID's frames with (per-node mode).
    Node(NodeId),
}

/// A key with its role: what `tipc node set key` takes.
///
/// Text format (the arguments of `tipc node set key`, iproute2 6.1):
/// `KEY [algname gcm(aes)] [master | nodeid ID]`, where KEY is `0x`
/// followed by hex digits or else taken as text, and is the AES key
/// followed by the 4-byte salt (20, 28 or 36 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The key and salt.
    pub key: AeadKey,
    /// What it is for.
    pub role: KeyRole,
}

impl FromStr for KeySpec {
    type Err = CryptoError;

    /// # Errors
    ///
    /// [`CryptoError::KeyText`] for a bad word or hex digit,
    /// [`CryptoError::Algorithm`] for an algorithm other than `gcm(aes)`,
    /// [`CryptoError::KeyLength`] for a wrong key length.
    fn from_str(text: &str) -> Result<KeySpec, CryptoError> {
        let mut words = text.split_whitespace();
        let key_word = words.next().ok_or(CryptoError::KeyText("no key"))?;
        let mut role = KeyRole::Cluster;
        while let Some(w) = words.next() {
            match w {
                "algname" => {
                    if words.next() != Some(ALG_NAME) {
                        return Err(CryptoError::Algorithm);
                    }
                }
                "master" if role == KeyRole::Cluster => role = KeyRole::Master,
                "nodeid" if role == KeyRole::Cluster => {
                    let id = words.next().ok_or(CryptoError::KeyText("nodeid wants an identity"))?;
                    role = KeyRole::Node(parse_node_id(id)?);
                }
                _ => return Err(CryptoError::KeyText("expected algname, master or nodeid")),
            }
        }
        let mut bytes = match key_word.strip_prefix("0x").or_else(|| key_word.strip_prefix("0X")) {
            Some(h) => decode_hex(h)?,
            None => key_word.as_bytes().to_vec(),
        };
        let key = AeadKey::new(&bytes);
        bytes.zeroize();
        Ok(KeySpec { key: key?, role })
    }
}

/// A node identity as `nodeid` takes it: 32 hex digits, or text of at most
/// 16 bytes.
fn parse_node_id(s: &str) -> Result<NodeId, CryptoError> {
    if s.len() == 32
        && let Ok(b) = decode_hex(s)
    {
        let mut id = [0u8; 16];
        id.copy_from_slice(&b);
        return Ok(NodeId(id));
    }
    NodeId::from_text(s).map_err(|_| CryptoError::KeyText("bad node identity"))
}

fn decode_hex(h: &str) -> Result<Vec<u8>, CryptoError> {
    if h.len() % 2 != 0 {
        return Err(CryptoError::KeyText("odd number of hex digits"));
    }
    h.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16).ok_or(CryptoError::KeyText("bad hex digit"));
            Ok((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Which AES-GCM implementation this build seals and opens with.
#[cfg(not(feature = "ring"))]
pub const AEAD_IMPL: &str = "aes-gcm (RustCrypto; key schedule zeroed on drop)";
/// Which AES-GCM implementation this build seals and opens with.
#[cfg(feature = "ring")]
pub const AEAD_IMPL: &str = "ring for AES-128/256 (key schedule NOT zeroed on drop), aes-gcm for AES-192";

/// An AES-GCM cipher for one key (12-byte nonce, 16-byte tag). With
/// RustCrypto's `aes-gcm` (the default) its key schedule is zeroed on drop
/// (the `zeroize` features of `aes`, `ghash` and `polyval`); with the
/// `ring` feature, 128- and 256-bit keys use ring, whose key schedule is not.
pub(crate) enum Cipher {
    #[cfg(feature = "ring")]
    Ring(Box<ring::aead::LessSafeKey>),
    A128(Box<Aes128Gcm>),
    A192(Box<AesGcm<Aes192, aes_gcm::aead::consts::U12>>),
    A256(Box<Aes256Gcm>),
}

impl Cipher {
    pub(crate) fn new(key: &AeadKey) -> Cipher {
        let k = &key.as_bytes()[..key.len() - SALT_LEN];
        #[cfg(feature = "ring")]
        {
            let alg = match key.bits() {
                128 => Some(&ring::aead::AES_128_GCM),
                256 => Some(&ring::aead::AES_256_GCM),
                _ => None,
            };
            if let Some(u) = alg.and_then(|a| ring::aead::UnboundKey::new(a, k).ok()) {
                return Cipher::Ring(Box::new(ring::aead::LessSafeKey::new(u)));
            }
        }
        match key.bits() {
            128 => Cipher::A128(Box::new(Aes128Gcm::new(GenericArray::from_slice(k)))),
            192 => Cipher::A192(Box::new(AesGcm::new(GenericArray::from_slice(k)))),
            _ => Cipher::A256(Box::new(Aes256Gcm::new(GenericArray::from_slice(k)))),
        }
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let n = GenericArray::from_slice(nonce);
        let tag = match self {
            #[cfg(feature = "ring")]
            Cipher::Ring(c) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
                return c.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), buf).map_or([0; 16], |t| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(t.as_ref());
                    o
                });
            }
            Cipher::A128(c) => c.encrypt_in_place_detached(n, aad, buf),
            Cipher::A192(c) => c.encrypt_in_place_detached(n, aad, buf),
            Cipher::A256(c) => c.encrypt_in_place_detached(n, aad, buf),
        };
        // only fails for a buffer over 2^36 bytes
        tag.map(Into::into).unwrap_or([0; 16])
    }

    /// Decrypts `buf` in place if `tag` authenticates it with `aad`; if
    /// not, `buf` is left as it was (so another key may be tried).
    pub(crate) fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let n = GenericArray::from_slice(nonce);
        let t = GenericArray::from_slice(tag);
        match self {
            // ring zeroes the buffer when the tag fails: keep a copy
            #[cfg(feature = "ring")]
            Cipher::Ring(c) => {
                let Ok(tag) = ring::aead::Tag::try_from(tag) else { return false };
                let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
                let backup = buf.to_vec();
                let ok = c.open_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), tag, buf, 0..).is_ok();
                if !ok {
                    buf.copy_from_slice(&backup);
                }
                ok
            }
            Cipher::A128(c) => c.decrypt_in_place_detached(n, aad, buf, t).is_ok(),
            Cipher::A192(c) => c.decrypt_in_place_detached(n, aad, buf, t).is_ok(),
            Cipher::A256(c) => c.decrypt_in_place_detached(n, aad, buf, t).is_ok(),
        }
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_forms() {
        let s: KeySpec = "0x000102030405060708090a0b0c0d0e0f10111213 algname gcm(aes) master".parse().expect("K1");
        assert_eq!(s.role, KeyRole::Master);
        assert_eq!(s.key.bits(), 128);
        assert_eq!(s.key.salt(), [0x10, 0x11, 0x12, 0x13]);
        let s: KeySpec = "abcdefghijklmnopqrstuvwxyz0123456789".parse().expect("text key");
        assert_eq!((s.key.bits(), s.role), (256, KeyRole::Cluster));
        let s: KeySpec = "0x000102030405060708090a0b0c0d0e0f10111213 nodeid crypto-a".parse().expect("nodeid");
        assert_eq!(s.role, KeyRole::Node(NodeId::from_text("crypto-a").expect("id")));
        assert_eq!("0x0001".parse::<KeySpec>(), Err(CryptoError::KeyLength(2)));
        assert_eq!("0x00010".parse::<KeySpec>().map(|_| ()), Err(CryptoError::KeyText("odd number of hex digits")));
        assert_eq!(
            "0x000102030405060708090a0b0c0d0e0f10111213 algname cbc(aes)".parse::<KeySpec>().map(|_| ()),
            Err(CryptoError::Algorithm)
        );
        assert!("0x000102030405060708090a0b0c0d0e0f10111213 master master".parse::<KeySpec>().is_err());
        assert!("".parse::<KeySpec>().is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = AeadKey::new(&[0xab; 20]).expect("key");
        let d = format!("{k:?} {:?}", KeySpec { key: k.clone(), role: KeyRole::Master });
        assert!(!d.contains("ab") && !d.contains("171"), "{d}");
    }
}
