//! The error type of the wire codec.

use thiserror::Error;

/// Why a buffer could not be read or written as a TIPC message.
///
/// A receiver counts and drops frames that produce one of these; it is never
/// a reason to panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer is shorter than the structure being read needs.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Word 0 carries a protocol version other than 2.
    #[error("unsupported TIPC version {0} (only 2 is spoken)")]
    BadVersion(u8),
    /// Word 0 carries version 7: an encrypted TIPC frame, which we cannot read.
    #[error("encrypted TIPC frame (crypto header); no key configured")]
    Encrypted,
    /// The header-size field is outside 24..=60 or not legal for this user.
    #[error("header size {hsize} not valid for {what}")]
    BadHeaderSize {
        /// Header size in bytes, as read.
        hsize: usize,
        /// What the header was being read as.
        what: &'static str,
    },
    /// The message-size field is smaller than the header or larger than the
    /// TIPC maximum (66 060 bytes).
    #[error("message size {size} invalid for header size {hsize}")]
    BadSize {
        /// Message size field.
        size: usize,
        /// Header size field.
        hsize: usize,
    },
    /// A payload whose length does not fit the message kind (for example a
    /// name-distribution payload that is not a multiple of 20 bytes).
    #[error("bad payload for {what}: {len} bytes")]
    BadPayload {
        /// The message kind.
        what: &'static str,
        /// Payload length.
        len: usize,
    },
    /// A field holds a value that the message kind forbids.
    #[error("bad field {field}: {value:#x}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// The parser expected a different user than the header carries.
    #[error("wrong user {found} for {expected}")]
    WrongUser {
        /// User value found.
        found: u8,
        /// What was expected.
        expected: &'static str,
    },
    /// An Ethernet frame whose ethertype is not TIPC's 0x88CA.
    #[error("not a TIPC frame: ethertype {0:#06x}")]
    NotTipc(u16),
    /// A value passed to an emitter does not fit its field.
    #[error("value {value} does not fit field {field}")]
    Overflow {
        /// Field name.
        field: &'static str,
        /// The value that was too large.
        value: u64,
    },
    /// A pcap file could not be read or written.
    #[error("pcap: {0}")]
    Pcap(String),
}
