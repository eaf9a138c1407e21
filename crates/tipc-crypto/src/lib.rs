//! TIPC encryption, wire-compatible with Linux 6.1 (`CONFIG_TIPC_CRYPTO`,
//! net/tipc/crypto.c), as a sans-IO state machine.
//!
//! - [`ehdr`]: the encryption header of every encrypted frame, short (16
//!   bytes) and long (28, for LINK_CONFIG).
//! - [`key`]: AES-GCM keys (128, 192 or 256 bits plus a 4-byte salt) in the
//!   `tipc node set key` text format, zeroed on drop.
//! - [`msg`]: the MSG_CRYPTO KEY_DISTR message that hands a node's key to
//!   the others.
//! - [`Crypto`]: one node's keys and key slots, the key choice per frame,
//!   the replay windows, rollover and the automatic key exchange.
//!
//! The facts come from the kernel sources and from captures of Linux 6.1
//! nodes (17–19 in tests/data/captures). The AEAD itself is
//! RustCrypto's `aes-gcm`; nothing cryptographic is our own beyond the
//! framing.

pub mod crypto;
pub mod ehdr;
pub mod error;
pub mod key;
pub mod msg;
pub mod replay;
pub mod stats;

pub use crypto::{Crypto, open_with};
pub use ehdr::{EncHeader, OVERHEAD, Sender, is_encrypted};
pub use error::{CryptoError, DropReason};
pub use key::{AEAD_IMPL, AeadKey, KeyRole, KeySpec};
pub use msg::{KeyDistr, KeyMode};
pub use stats::CryptoStats;

#[cfg(test)]
mod tests;
