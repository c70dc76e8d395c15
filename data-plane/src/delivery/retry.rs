//! Retries: a failed transmission is retried up to three times (four
//! attempts) with the platform's jittered exponential backoff, never sooner
//! than the partner's Retry-After. A failure that cannot succeed on repeat
//! is not retried; neither is one whose Retry-After is longer than a
//! real-time pipeline waits.

use std::time::Duration;

use partners::adapter::Retry;
use server_kit::backoff::Backoff;

/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How failed transmissions are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delays between attempts: full jitter under a ceiling that doubles
    /// per failed attempt.
    pub backoff: Backoff,
    /// Longest Retry-After honoured; a longer one fails the events now.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff: Backoff::new(Duration::from_millis(250), MAX_BACKOFF),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before the next attempt, after `attempts` attempts
    /// failed as `retry` says; `None`: stop, the events are FAILED.
    pub fn next_delay(&self, attempts: u32, retry: Retry) -> Option<Duration> {
        let Retry::Later(retry_after) = retry else {
            return None;
        };
        if attempts > self.max_retries {
            return None;
        }
        let backoff = self.backoff.delay(attempts);
        match retry_after {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait.max(backoff)),
            None => Some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_attempts_at_most_with_growing_jittered_backoff() {
        let policy = RetryPolicy::default();
        for attempts in 1..=3 {
            let delay = policy
                .next_delay(attempts, Retry::Later(None))
                .expect("retried");
            assert!(
                delay <= Duration::from_millis(250) * (1 << (attempts - 1)),
                "{attempts}: {delay:?}"
            );
        }
        assert_eq!(
            policy.next_delay(4, Retry::Later(None)),
            None,
            "the 4th failure is final"
        );
        assert_eq!(policy.next_delay(1, Retry::Never), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_bound() {
        let policy = RetryPolicy::default();
        let wait = Duration::from_secs(2);
        assert!(
            policy
                .next_delay(1, Retry::Later(Some(wait)))
                .expect("retried")
                >= wait
        );
        assert_eq!(
            policy.next_delay(1, Retry::Later(Some(Duration::from_secs(3600)))),
            None
        );
    }
}
