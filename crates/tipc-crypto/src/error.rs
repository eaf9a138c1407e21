//! Errors of the crypto layer.

use thiserror::Error;

/// What went wrong with a frame, a key or a key message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The frame is a clear TIPC message (version 2), not an encrypted one.
    #[error("not an encrypted frame")]
    NotEncrypted,
    /// The frame is too short for what it claims to hold.
    #[error("truncated frame")]
    Truncated,
    /// A header field is impossible.
    #[error("bad encryption header: {0}")]
    BadHeader(&'static str),
    /// A key of a length other than 16, 24 or 32 bytes plus the 4-byte salt.
    #[error("bad key length {0}: want 20, 28 or 36 bytes (AES-128/192/256 key and a 4-byte salt)")]
    KeyLength(usize),
    /// A key text that is not `tipc node set key`'s format.
    #[error("bad key text: {0}")]
    KeyText(&'static str),
    /// An algorithm other than `gcm(aes)`.
    #[error("unsupported algorithm (only gcm(aes))")]
    Algorithm,
    /// A malformed MSG_CRYPTO message.
    #[error("bad key message: {0}")]
    KeyMessage(&'static str),
}

/// Why a received frame was dropped (the per-reason drop counters of
/// [`crate::CryptoStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// An encrypted frame arrived and we hold no key that could open it
    /// (no key set at all, or none in the slot it names).
    NoKey,
    /// The tag did not authenticate: a wrong key, or a forged, truncated or
    /// altered frame.
    BadTag,
    /// An exact copy of a frame already accepted (same key, same sequence
    /// number).
    Replay,
    /// The frame names a key slot we do not know for its sender, or comes
    /// from a sender we cannot name.
    UnknownKey,
    /// A clear (unencrypted) frame while keys are set.
    Clear,
    /// An encrypted frame too short or with an impossible header.
    Malformed,
}
