//! Retry delays: exponential backoff with full jitter, capped.

use std::time::Duration;

/// How a sender retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay scale of the first retry.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// After this many failed attempts a message becomes a dead letter.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(200), max: Duration::from_secs(60), max_attempts: 12 }
    }
}

impl Backoff {
    /// The delay before attempt `attempts + 1`, given `attempts` failures so far, with
    /// `jitter` in `[0, 1)`: half the exponential delay plus a random share of the other half,
    /// so retries of many messages spread out but never come back at once.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempts.min(20)).min(self.max);
        let half = exp / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// Whether a message that has failed `attempts` times is dead.
    pub fn is_dead(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// A number in `[0, 1)` from the system's random source (for jitter).
pub fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_stay_within_jitter_bounds() {
        let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(5), max_attempts: 4 };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        let near_full = b.delay(0, 0.999_999);
        assert!(near_full > Duration::from_micros(99_990) && near_full < Duration::from_millis(100));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(400));
        assert_eq!(b.delay(30, 0.0), Duration::from_millis(2500));
        assert!(b.delay(30, 0.99) < Duration::from_secs(5));
        assert!(!b.is_dead(3));
        assert!(b.is_dead(4));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
