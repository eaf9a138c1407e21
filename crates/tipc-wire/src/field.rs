//! Big-endian 32-bit word and bit-field helpers over byte slices.
//!
//! Every function here is total: reads beyond the buffer return 0 and writes
//! beyond it are ignored, so callers check lengths once, up front (the
//! message views do), and no input can make these panic.

/// Reads big-endian word `n` (bytes `4n..4n+4`), or 0 if the buffer is too short.
#[inline]
pub fn word(buf: &[u8], n: usize) -> u32 {
    match buf.get(4 * n..4 * n + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// Writes big-endian word `n`; ignored if the buffer is too short.
#[inline]
pub fn set_word(buf: &mut [u8], n: usize, v: u32) {
    if let Some(b) = buf.get_mut(4 * n..4 * n + 4) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Mask of `width` low bits.
#[inline]
pub const fn mask(width: u32) -> u32 {
    if width >= 32 { u32::MAX } else { (1u32 << width) - 1 }
}

/// Reads `width` bits of word `n` starting at bit `shift` (bit 0 = least significant).
#[inline]
pub fn bits(buf: &[u8], n: usize, shift: u32, width: u32) -> u32 {
    (word(buf, n) >> shift) & mask(width)
}

/// Replaces `width` bits of word `n` at `shift` with the low bits of `v`.
#[inline]
pub fn set_bits(buf: &mut [u8], n: usize, shift: u32, width: u32, v: u32) {
    let m = mask(width) << shift;
    let w = (word(buf, n) & !m) | ((v << shift) & m);
    set_word(buf, n, w);
}

/// Reads one bit of word `n`.
#[inline]
pub fn bit(buf: &[u8], n: usize, shift: u32) -> bool {
    bits(buf, n, shift, 1) != 0
}

/// Sets or clears one bit of word `n`.
#[inline]
pub fn set_bit(buf: &mut [u8], n: usize, shift: u32, v: bool) {
    set_bits(buf, n, shift, 1, u32::from(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_round_trip_and_stay_in_place() {
        let mut b = [0u8; 8];
        set_bits(&mut b, 1, 16, 16, 0xabcd);
        set_bits(&mut b, 1, 0, 16, 0x1234);
        assert_eq!(word(&b, 1), 0xabcd_1234);
        set_bits(&mut b, 0, 29, 3, 2);
        assert_eq!(b[0], 0x40);
        assert_eq!(bits(&b, 0, 29, 3), 2);
        // out of range is harmless
        set_word(&mut b, 5, 1);
        assert_eq!(word(&b, 5), 0);
    }
}
