//! 16-bit link sequence numbers with wrap-around comparison.

use core::fmt;

/// A 16-bit TIPC sequence number.
///
/// Compared modulo 2^16: `a` precedes `b` when `(b - a) mod 2^16` is in
/// `1..32768`. There is deliberately no `Ord`: numbers far apart on the circle
/// have no meaningful order, and `<` would silently be wrong at the wrap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The raw value.
    #[inline]
    pub const fn get(self) -> u16 {
        self.0
    }
    /// `self + n` modulo 2^16.
    #[inline]
    #[must_use]
    pub const fn add(self, n: u16) -> SeqNo {
        SeqNo(self.0.wrapping_add(n))
    }
    /// `self - n` modulo 2^16.
    #[inline]
    #[must_use]
    pub const fn sub(self, n: u16) -> SeqNo {
        SeqNo(self.0.wrapping_sub(n))
    }
    /// The next number.
    #[inline]
    #[must_use]
    pub const fn next(self) -> SeqNo {
        self.add(1)
    }
    /// The previous number.
    #[inline]
    #[must_use]
    pub const fn prev(self) -> SeqNo {
        self.sub(1)
    }
    /// How far `later` is ahead of `self`, modulo 2^16.
    #[inline]
    pub const fn distance_to(self, later: SeqNo) -> u16 {
        later.0.wrapping_sub(self.0)
    }
    /// `self ≤ other` in serial arithmetic.
    #[inline]
    pub const fn le(self, other: SeqNo) -> bool {
        other.0.wrapping_sub(self.0) < 0x8000
    }
    /// `self < other` in serial arithmetic.
    #[inline]
    pub const fn lt(self, other: SeqNo) -> bool {
        self.le(other) && self.0 != other.0
    }
    /// `self > other` in serial arithmetic.
    #[inline]
    pub const fn gt(self, other: SeqNo) -> bool {
        !self.le(other)
    }
    /// `self ≥ other` in serial arithmetic.
    #[inline]
    pub const fn ge(self, other: SeqNo) -> bool {
        other.le(self)
    }
    /// The later of two numbers in serial arithmetic.
    #[inline]
    #[must_use]
    pub const fn max(self, other: SeqNo) -> SeqNo {
        if self.lt(other) { other } else { self }
    }
    /// Whether `self` lies in the closed interval `[lo, hi]` (serial arithmetic).
    #[inline]
    pub const fn within(self, lo: SeqNo, hi: SeqNo) -> bool {
        lo.le(self) && self.le(hi)
    }
}

impl fmt::Debug for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl From<u16> for SeqNo {
    fn from(v: u16) -> Self {
        SeqNo(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps() {
        let a = SeqNo(65535);
        let b = a.next();
        assert_eq!(b, SeqNo(0));
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert!(SeqNo(1).lt(SeqNo(0x8000)));
        assert!(!SeqNo(1).lt(SeqNo(0x8001)));
        assert_eq!(SeqNo(65530).distance_to(SeqNo(4)), 10);
        assert!(SeqNo(0).within(SeqNo(65530), SeqNo(3)));
    }

    proptest! {
        #[test]
        fn serial_order_is_antisymmetric(a: u16, d in 1u16..0x8000) {
            let x = SeqNo(a);
            let y = x.add(d);
            prop_assert!(x.lt(y));
            prop_assert!(!y.lt(x));
            prop_assert!(y.gt(x));
            prop_assert_eq!(x.distance_to(y), d);
        }
    }
}
