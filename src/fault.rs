//! Seeded fault model shared by the simulator and the real-link relay:
//! loss, duplication, reordering, delay and corruption decided by one
//! deterministic generator, so a seed reproduces a run.

use tipc_wire::Duration;

/// A small, fast, seedable generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// What can happen to frames on a link. Probabilities are per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability a frame is lost.
    pub drop: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by `reorder_delay` (later frames overtake it).
    pub reorder: f64,
    /// How long a reordered frame is held.
    pub reorder_delay: Duration,
    /// Fixed one-way delay added to every frame.
    pub delay: Duration,
    /// Random extra delay, uniform in `0..jitter` (keeps order unless `reorder` says otherwise).
    pub jitter: Duration,
    /// Probability a frame has one byte flipped.
    pub corrupt: f64,
    /// Whether corrupted frames are delivered (true) or dropped as an
    /// Ethernet FCS check would (false, the real-life default: TIPC has no
    /// checksum of its own).
    pub deliver_corrupted: bool,
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        FaultConfig::default()
    }
    /// Only loss.
    pub fn loss(p: f64) -> Self {
        FaultConfig { drop: p, ..Self::default() }
    }
}

/// What becomes of one frame: zero, one or two copies, each with its own
/// extra delay and maybe a corrupted byte.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The copies to deliver.
    pub copies: Vec<Copy>,
    /// Whether the frame was lost (dropped, or corrupted and dropped).
    pub lost: bool,
}

/// One delivered copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Copy {
    /// Delay before delivery.
    pub delay: Duration,
    /// Flip `xor` into byte `index % len` of the frame.
    pub corrupt: Option<(usize, u8)>,
}

/// Counters of a [`FaultInjector`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames seen.
    pub seen: u64,
    /// Frames lost.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames held back for reordering.
    pub reordered: u64,
    /// Frames corrupted (delivered or dropped per the config).
    pub corrupted: u64,
    /// Frames held back by the fixed `delay` (not counting jitter alone).
    pub delayed: u64,
}

/// Decides the fate of each frame from a seeded generator.
#[derive(Clone, Debug)]
pub struct FaultInjector {
    cfg: FaultConfig,
    rng: Rng,
    stats: FaultStats,
}

impl FaultInjector {
    /// An injector for `cfg`, seeded.
    pub fn new(cfg: FaultConfig, seed: u64) -> Self {
        FaultInjector { cfg, rng: Rng::new(seed), stats: FaultStats::default() }
    }
    /// Current configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }
    /// Replaces the configuration (the generator continues).
    pub fn set_config(&mut self, cfg: FaultConfig) {
        self.cfg = cfg;
    }
    /// Counters so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// Decides what happens to the next frame.
    pub fn decide(&mut self) -> Verdict {
        self.stats.seen += 1;
        let c = self.cfg;
        // Draw every random number every time, so one decision does not shift
        // the others: the same seed gives the same drops whatever else is set.
        let lose = self.rng.chance(c.drop);
        let dup = self.rng.chance(c.duplicate);
        let reorder = self.rng.chance(c.reorder);
        let corrupt = self.rng.chance(c.corrupt);
        let jitter = self.rng.below(c.jitter.as_micros());
        let jitter2 = self.rng.below(c.jitter.as_micros());
        let (idx, xor) = (self.rng.next_u64() as usize, (self.rng.below(255) + 1) as u8);
        if lose {
            self.stats.dropped += 1;
            return Verdict { copies: Vec::new(), lost: true };
        }
        if corrupt {
            self.stats.corrupted += 1;
            if !c.deliver_corrupted {
                self.stats.dropped += 1;
                return Verdict { copies: Vec::new(), lost: true };
            }
        }
        let mut d = c.delay + Duration::from_micros(jitter);
        if c.delay.as_micros() > 0 {
            self.stats.delayed += 1;
        }
        if reorder {
            self.stats.reordered += 1;
            d = d + c.reorder_delay;
        }
        let mut copies = vec![Copy { delay: d, corrupt: corrupt.then_some((idx, xor)) }];
        if dup {
            self.stats.duplicated += 1;
            copies.push(Copy { delay: c.delay + Duration::from_micros(jitter2), corrupt: None });
        }
        Verdict { copies, lost: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rate_and_determinism() {
        let cfg = FaultConfig { drop: 0.1, duplicate: 0.02, ..FaultConfig::default() };
        let mut a = FaultInjector::new(cfg, 7);
        let mut b = FaultInjector::new(cfg, 7);
        let mut lost = 0;
        for _ in 0..100_000 {
            let va = a.decide();
            assert_eq!(va, b.decide());
            lost += u32::from(va.lost);
        }
        assert!((9_000..11_000).contains(&lost), "{lost}");
        let mut c = FaultInjector::new(cfg, 8);
        let differs = (0..1000).any(|_| c.decide() != a.decide());
        assert!(differs);
    }
}
