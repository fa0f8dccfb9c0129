//! Exponential backoff with jitter for coordinator retries.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::{Error, Result};

/// Pauses that double from `initial` up to `max`, each randomised by ±20% so members that
/// failed together do not retry together.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The pause after one more failure.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let base = self.base();
        self.failures = self.failures.saturating_add(1);
        let jitter = rand::thread_rng().gen_range(0.8..=1.2);
        base.mul_f64(jitter).min(self.max)
    }

    /// Forgets the failures: the next pause is `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The pause before jitter: `initial` doubled once per failure so far, capped at `max`.
    fn base(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Retries retriable failures with a backoff until a deadline.
#[derive(Debug)]
pub(crate) struct Retry {
    deadline: Instant,
    backoff: Backoff,
}

impl Retry {
    /// Retries for up to `budget` from now, pausing as `backoff` says.
    pub(crate) fn new(budget: Duration, backoff: Backoff) -> Self {
        Self {
            deadline: Instant::now() + budget,
            backoff,
        }
    }

    /// Returns `error` when it is final or the budget would run out during the pause;
    /// otherwise waits the pause and returns `Ok` for another try.
    pub(crate) async fn after(&mut self, error: Error) -> Result<()> {
        let pause = self.backoff.next_pause();
        if !error.is_retriable() || Instant::now() + pause >= self.deadline {
            return Err(error);
        }
        tracing::debug!(%error, ?pause, "coordinator request failed; retrying");
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let expected = [100, 200, 400, 800, 1000, 1000];
        for base in expected {
            let base = Duration::from_millis(base);
            let pause = backoff.next_pause();
            assert!(pause >= base.mul_f64(0.8), "{pause:?} below {base:?}");
            assert!(pause <= base.mul_f64(1.2).min(Duration::from_secs(1)));
        }
        for _ in 0..100 {
            assert!(backoff.next_pause() <= Duration::from_secs(1));
        }
    }

    #[test]
    fn reset_starts_over_and_many_failures_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        backoff.failures = u32::MAX;
        assert_eq!(backoff.base(), Duration::from_secs(1));
        backoff.next_pause();
        backoff.reset();
        assert!(backoff.next_pause() <= Duration::from_millis(120));
        let capped = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(capped.base(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn retries_stop_at_final_errors_and_at_the_deadline() {
        // Pauses of 80 to 100 ms in a budget of 150 ms: one retry fits, a second does not.
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(100));
        let mut retry = Retry::new(Duration::from_millis(150), backoff);
        let retriable = || Error::coordinator(crate::ErrorCode::NotCoordinator, "moved");
        assert!(retry.after(retriable()).await.is_ok());
        assert!(retry.after(retriable()).await.is_err());
        let mut fresh = Retry::new(
            Duration::from_secs(10),
            Backoff::new(Duration::from_millis(1), Duration::from_millis(1)),
        );
        let fenced = Error::coordinator(crate::ErrorCode::FencedMemberEpoch, "fenced");
        assert!(fresh.after(fenced).await.unwrap_err().is_fenced());
    }
}
