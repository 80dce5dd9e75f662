//! Backoff with full jitter, honouring `Retry-After`.

use std::time::Duration;

use crate::config::RetryConfig;

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Wait this long, then call the same provider again.
    Wait(Duration),
    /// Give up on this provider and move on.
    MoveOn,
}

/// Decides the next step after the `retry`-th retryable failure (0-based) of
/// one provider. `retry_after` is a floor for the wait; one longer than
/// `max_retry_after` moves on at once, as does running out of retries.
pub(crate) fn decide(
    cfg: &RetryConfig,
    retry: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> RetryDecision {
    if retry >= cfg.max_retries {
        return RetryDecision::MoveOn;
    }
    if let Some(ra) = retry_after {
        if ra > cfg.max_retry_after.0 {
            return RetryDecision::MoveOn;
        }
    }
    let backoff = backoff(cfg, retry, jitter);
    RetryDecision::Wait(retry_after.map_or(backoff, |ra| ra.max(backoff)))
}

/// Full jitter: a uniform draw in `[0, min(max, base × 2^retry)]`; `jitter` is in `[0, 1)`.
pub(crate) fn backoff(cfg: &RetryConfig, retry: u32, jitter: f64) -> Duration {
    let ceiling = cfg
        .backoff_base
        .0
        .saturating_mul(2u32.saturating_pow(retry.min(30)))
        .min(cfg.backoff_max.0);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let cfg = RetryConfig::default();
        let top = |r| backoff(&cfg, r, 1.0);
        assert_eq!(top(0), Duration::from_millis(250));
        assert_eq!(top(1), Duration::from_millis(500));
        assert_eq!(top(2), Duration::from_secs(1));
        assert_eq!(top(10), Duration::from_secs(8));
        assert_eq!(backoff(&cfg, 3, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(&cfg, 3, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_a_floor_and_a_long_one_moves_on() {
        let cfg = RetryConfig::default();
        assert_eq!(
            decide(&cfg, 0, Some(Duration::from_secs(2)), 1.0),
            RetryDecision::Wait(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&cfg, 0, Some(Duration::from_millis(1)), 1.0),
            RetryDecision::Wait(Duration::from_millis(250))
        );
        assert_eq!(
            decide(&cfg, 0, Some(Duration::from_secs(30)), 1.0),
            RetryDecision::MoveOn
        );
        assert_eq!(decide(&cfg, 2, None, 1.0), RetryDecision::MoveOn);
    }
}
