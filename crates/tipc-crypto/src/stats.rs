//! Counters of the crypto layer.

use crate::error::DropReason;

/// What the crypto layer did, and why it dropped frames. No key material.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CryptoStats {
    /// Frames encrypted and sent (probe copies included).
    pub tx_encrypted: u64,
    /// Messages not sent: no key could carry them.
    pub tx_no_key: u64,
    /// Frames decrypted and authenticated.
    pub rx_decrypted: u64,
    /// Encrypted frames dropped: no key at all, or none for that slot.
    pub rx_no_key: u64,
    /// Dropped: the tag did not authenticate (wrong key, forged or altered).
    pub rx_bad_tag: u64,
    /// Dropped: a sequence number already seen or below the window.
    pub rx_replay: u64,
    /// Dropped: a key slot unknown for the sender.
    pub rx_unknown_key: u64,
    /// Dropped: a clear frame while keys are set.
    pub rx_clear: u64,
    /// Dropped: too short or an impossible header.
    pub rx_malformed: u64,
    /// Session keys we made.
    pub rekeys: u64,
    /// Our pending key became the active one.
    pub tx_switches: u64,
    /// A peer's key became active for receiving.
    pub rx_keys_activated: u64,
    /// KEY_DISTR messages sent.
    pub key_msgs_sent: u64,
    /// KEY_DISTR messages taken.
    pub key_msgs_received: u64,
    /// MSG_CRYPTO messages refused (clear, malformed, for another node).
    pub key_msgs_refused: u64,
    /// Our active transmit slot (0: none).
    pub tx_active: u8,
    /// Our pending transmit slot (0: none).
    pub tx_pending: u8,
    /// Whether a master key is set.
    pub master: bool,
    /// AES key size in bits of the master key (else of a transmit key); 0 when off.
    pub bits: u16,
}

impl CryptoStats {
    /// Adds one to the counter of `reason`.
    pub fn count_drop(&mut self, reason: DropReason) {
        match reason {
            DropReason::NoKey => self.rx_no_key += 1,
            DropReason::BadTag => self.rx_bad_tag += 1,
            DropReason::Replay => self.rx_replay += 1,
            DropReason::UnknownKey => self.rx_unknown_key += 1,
            DropReason::Clear => self.rx_clear += 1,
            DropReason::Malformed => self.rx_malformed += 1,
        }
    }
    /// Every frame dropped, whatever the reason.
    pub fn rx_dropped(&self) -> u64 {
        self.rx_no_key + self.rx_bad_tag + self.rx_replay + self.rx_unknown_key + self.rx_clear + self.rx_malformed
    }
}
