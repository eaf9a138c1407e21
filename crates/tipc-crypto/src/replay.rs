//! A sliding replay window over a sender's 64-bit ehdr sequence numbers
//! (RFC 4303 §3.4.3 style). The kernel keeps none (net/tipc/crypto.c uses
//! the number only in the nonce); we do, per sender and key, so a recorded
//! frame cannot be played back. A sender numbers all its frames of one key
//! from one counter, so a receiver sees them rising, with gaps and small
//! reorderings.

/// Sequence numbers this far below the highest one seen are still taken
/// if new.
pub const REPLAY_WINDOW: u64 = 1024;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// The highest sequence number accepted and which of the
/// [`REPLAY_WINDOW`] below it were seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    top: u64,
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// Whether `seq` is new: above the highest, or inside the window and
    /// not seen. 0 is never new (senders start at 1).
    pub fn fresh(&self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.top {
            return true;
        }
        let back = self.top - seq;
        back < REPLAY_WINDOW && !self.bit(seq)
    }

    /// A window for a key whose first accepted frame is `seq`: it and
    /// everything below count as seen, so frames of that key recorded
    /// before it was installed (and dropped then) cannot be played later.
    pub fn starting_at(seq: u64) -> ReplayWindow {
        ReplayWindow { top: seq, seen: [u64::MAX; WORDS] }
    }

    /// Records `seq` as seen (call after the frame authenticated).
    pub fn accept(&mut self, seq: u64) {
        if !self.fresh(seq) {
            return;
        }
        if seq > self.top {
            let shift = seq - self.top;
            if shift >= REPLAY_WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.top + 1..seq {
                    self.clear(s);
                }
            }
            self.top = seq;
        }
        let i = (seq % REPLAY_WINDOW) as usize;
        self.seen[i / 64] |= 1 << (i % 64);
    }

    fn bit(&self, seq: u64) -> bool {
        let i = (seq % REPLAY_WINDOW) as usize;
        self.seen[i / 64] & (1 << (i % 64)) != 0
    }

    fn clear(&mut self, seq: u64) {
        let i = (seq % REPLAY_WINDOW) as usize;
        self.seen[i / 64] &= !(1 << (i % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rising_gaps_and_reorder_are_taken_repeats_not() {
        let mut w = ReplayWindow::default();
        for s in [1, 2, 5, 4, 3, 9, 7] {
            assert!(w.fresh(s), "{s}");
            w.accept(s);
        }
        for s in [0, 1, 2, 3, 4, 5, 7, 9] {
            assert!(!w.fresh(s), "{s}");
        }
        assert!(w.fresh(6) && w.fresh(8) && w.fresh(10));
        w.accept(9 + REPLAY_WINDOW);
        assert!(!w.fresh(8), "below the window");
        assert!(w.fresh(9 + REPLAY_WINDOW - 1) && w.fresh(10));
    }

    #[test]
    fn a_started_window_refuses_what_came_before() {
        let mut w = ReplayWindow::starting_at(50);
        assert!(!w.fresh(50) && !w.fresh(49) && !w.fresh(1));
        assert!(w.fresh(51));
        w.accept(53);
        assert!(w.fresh(51) && w.fresh(52) && !w.fresh(53));
    }

    proptest! {
        /// Against a set of every number seen: a number is fresh exactly
        /// when it is new and not below the window.
        #[test]
        fn matches_a_set(seqs in proptest::collection::vec(1u64..3000, 1..400)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::BTreeSet::new();
            let mut top = 0;
            for s in seqs {
                let want = !seen.contains(&s) && (s > top || top - s < REPLAY_WINDOW);
                prop_assert_eq!(w.fresh(s), want, "seq {} top {}", s, top);
                if want {
                    w.accept(s);
                    seen.insert(s);
                    top = top.max(s);
                }
            }
        }
    }
}
