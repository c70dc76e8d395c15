//! Reconnection delays: exponential with full jitter, so a fleet of nodes
//! that lost the control plane together does not return in lockstep.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff whose ceiling starts at `min` and doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: uniform in `[min, ceiling]`, the ceiling doubling per
    /// attempt up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        if ceiling <= self.min {
            return self.min;
        }
        rand::rng().random_range(self.min..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let mut backoff = Backoff::new(min, max);
        let mut ceilings = Vec::new();
        for attempt in 0..12u32 {
            let delay = backoff.next_delay();
            let ceiling = min.saturating_mul(1 << attempt).min(max);
            assert!(
                delay >= min && delay <= ceiling,
                "attempt {attempt}: {delay:?}"
            );
            ceilings.push(ceiling);
        }
        assert_eq!(*ceilings.last().expect("some"), max);
        backoff.reset();
        assert_eq!(backoff.next_delay(), min);
    }
}
