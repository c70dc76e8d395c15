//! A circuit breaker per connector: when, over a sliding window with enough
//! requests, the error rate passes a threshold, the breaker opens and
//! nothing is sent for a cool-down (events then fail as CIRCUIT_BREAKER);
//! then a single probe is let through (half-open): its success closes the
//! breaker, its failure opens it again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Length of the sliding window.
    pub window: Duration,
    /// Fewest requests in the window before the rate counts.
    pub min_requests: u32,
    /// Error rate (0-1) that opens the breaker.
    pub error_rate: f64,
    /// How long an open breaker stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            min_requests: 20,
            error_rate: 0.5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sending.
    Closed,
    /// Not sending until the instant.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe is out; nothing else is sent until it answers.
    HalfOpen,
}

/// One connector's breaker. Time is passed in, so it is exact in tests.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
    /// Per-second buckets: (start, successes, failures).
    window: VecDeque<(Instant, u32, u32)>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: State::Closed,
            window: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The state as a gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self) -> f64 {
        match self.state {
            State::Closed => 0.0,
            State::HalfOpen => 1.0,
            State::Open { .. } => 2.0,
        }
    }

    /// Whether a request may be sent now. An open breaker whose cool-down
    /// is over lets this one request through as the probe.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Records the outcome of a request that was allowed.
    pub fn record(&mut self, now: Instant, success: bool) {
        match self.state {
            State::HalfOpen if success => {
                self.state = State::Closed;
                self.window.clear();
            }
            State::HalfOpen => self.open(now),
            State::Open { .. } => {}
            State::Closed => {
                self.count(now, success);
                let (ok, failed) = self
                    .window
                    .iter()
                    .fold((0, 0), |(o, f), (_, ok, failed)| (o + ok, f + failed));
                let total = ok + failed;
                if total >= self.settings.min_requests
                    && f64::from(failed) / f64::from(total) >= self.settings.error_rate
                {
                    self.open(now);
                }
            }
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.settings.open_for,
        };
        self.window.clear();
    }

    fn count(&mut self, now: Instant, success: bool) {
        while self
            .window
            .front()
            .is_some_and(|(start, _, _)| now.duration_since(*start) >= self.settings.window)
        {
            self.window.pop_front();
        }
        let bucket = match self.window.back_mut() {
            Some(bucket) if now.duration_since(bucket.0) < Duration::from_secs(1) => bucket,
            _ => {
                self.window.push_back((now, 0, 0));
                self.window.back_mut().expect("just pushed")
            }
        };
        if success {
            bucket.1 += 1;
        } else {
            bucket.2 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window: Duration::from_secs(10),
            min_requests: 10,
            error_rate: 0.5,
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn opens_on_the_error_rate_only_with_enough_volume() {
        let start = Instant::now();
        let mut breaker = Breaker::new(settings());
        for _ in 0..9 {
            breaker.record(start, false);
        }
        assert_eq!(
            breaker.state(),
            State::Closed,
            "9 requests are below the minimum volume"
        );
        breaker.record(start, false);
        assert!(matches!(breaker.state(), State::Open { .. }));
        assert!(!breaker.allow(start + Duration::from_secs(29)));
    }

    #[test]
    fn the_rate_counts_only_failures_inside_the_window() {
        let start = Instant::now();
        let mut breaker = Breaker::new(settings());
        for i in 0..20 {
            breaker.record(start, i % 3 == 0);
        }
        assert!(
            matches!(breaker.state(), State::Open { .. }),
            "2 in 3 failing opens it"
        );
        let mut breaker = Breaker::new(settings());
        for _ in 0..8 {
            breaker.record(start, false);
        }
        let later = start + Duration::from_secs(11);
        for _ in 0..10 {
            breaker.record(later, true);
        }
        assert_eq!(
            breaker.state(),
            State::Closed,
            "failures older than the window do not count"
        );
    }

    #[test]
    fn half_open_probe_closes_or_reopens() {
        let start = Instant::now();
        let mut breaker = Breaker::new(settings());
        for _ in 0..10 {
            breaker.record(start, false);
        }
        let after = start + Duration::from_secs(30);
        assert!(breaker.allow(after), "the cool-down is over: one probe");
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(!breaker.allow(after), "only one probe at a time");
        breaker.record(after, false);
        assert!(
            matches!(breaker.state(), State::Open { until } if until == after + Duration::from_secs(30))
        );
        let later = after + Duration::from_secs(30);
        assert!(breaker.allow(later));
        breaker.record(later, true);
        assert_eq!(breaker.state(), State::Closed);
        assert!(breaker.allow(later));
    }
}
