//! The one backoff schedule of the platform: exponential, with jitter, so
//! a fleet that failed together (nodes losing a control plane, deliveries
//! hitting one slow partner) does not retry in lockstep. Delivery retries,
//! reconnections to the control plane and the stats service, and the
//! statistics eraser all draw their delays from it.

use std::time::Duration;

use rand::Rng;

/// Delays drawn uniformly from `[floor, ceiling]`, the ceiling starting at
/// `first` and doubling per failed attempt up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    floor: Duration,
}

impl Backoff {
    /// Full jitter: any delay from zero up to the ceiling.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            floor: Duration::ZERO,
        }
    }

    /// The same schedule, never waiting less than `floor`.
    pub const fn with_floor(self, floor: Duration) -> Self {
        Self { floor, ..self }
    }

    /// The longest delay after `failures` failed attempts (1 is the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        self.first
            .saturating_mul(1 << failures.saturating_sub(1).min(20))
            .min(self.max)
            .max(self.floor)
    }

    /// The delay after `failures` failed attempts (1 is the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        if ceiling <= self.floor {
            return ceiling;
        }
        rand::rng().random_range(self.floor..=ceiling)
    }
}

/// A retry loop's place in its [`Backoff`] schedule: each failure waits
/// longer (up to the maximum), a success starts over.
#[derive(Debug, Clone)]
pub struct Attempts {
    backoff: Backoff,
    failures: u32,
}

impl Attempts {
    /// A loop that has not failed yet.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            failures: 0,
        }
    }

    /// Counts a failure and gives the delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let backoff = Backoff::new(100 * MS, 5000 * MS);
        let ceilings: Vec<_> = (1..=8).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(|ms| ms * MS)
        );
        assert_eq!(backoff.ceiling(u32::MAX), 5000 * MS, "no overflow");
    }

    #[test]
    fn delays_stay_between_the_floor_and_the_ceiling() {
        let full = Backoff::new(100 * MS, 5000 * MS);
        let floored = full.with_floor(100 * MS);
        for failures in 1..12 {
            for _ in 0..50 {
                let delay = full.delay(failures);
                assert!(delay <= full.ceiling(failures), "{failures}: {delay:?}");
                let delay = floored.delay(failures);
                assert!(
                    (100 * MS..=floored.ceiling(failures)).contains(&delay),
                    "{failures}: {delay:?}"
                );
            }
        }
        assert_eq!(floored.delay(1), 100 * MS, "floor = ceiling: no jitter");
    }

    #[test]
    fn attempts_grow_and_start_over_after_a_success() {
        let mut attempts = Attempts::new(Backoff::new(100 * MS, 400 * MS).with_floor(100 * MS));
        assert_eq!(attempts.next_delay(), 100 * MS);
        assert!(attempts.next_delay() <= 200 * MS);
        for _ in 0..10 {
            assert!(attempts.next_delay() <= 400 * MS);
        }
        attempts.reset();
        assert_eq!(attempts.next_delay(), 100 * MS);
    }

    #[test]
    fn delays_are_spread() {
        let backoff = Backoff::new(1000 * MS, 1000 * MS);
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(1)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}
