//! Per-provider circuit breaker.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::HealthConfig;

/// Circuit state of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cooldown ends.
    Open,
    /// One trial request decides.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Go ahead.
    Allowed,
    /// Go ahead as the half-open trial.
    Trial,
    /// Refused until the given instant.
    Refused(Instant),
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { trial_since: Option<Instant> },
}

/// The breaker: opens after `failure_threshold` consecutive failures or an
/// error ratio over a window; half-opens after a cooldown that doubles on each
/// repeated trip (up to `max_cooldown`); one successful trial closes it.
#[derive(Debug)]
pub(crate) struct Breaker {
    cfg: HealthConfig,
    state: State,
    consecutive: u32,
    window: VecDeque<bool>,
    trips: u32,
    /// How long a half-open trial may be in flight before another is allowed
    /// (covers a trial whose caller was cancelled).
    trial_ttl: Duration,
}

impl Breaker {
    pub(crate) fn new(cfg: HealthConfig, trial_ttl: Duration) -> Self {
        Self {
            cfg,
            state: State::Closed,
            consecutive: 0,
            window: VecDeque::new(),
            trips: 0,
            trial_ttl,
        }
    }

    pub(crate) fn state(&self, now: Instant) -> CircuitState {
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { until } if now < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// When the circuit will allow a trial, if it is open.
    pub(crate) fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// Whether a call would be allowed now, without taking the trial.
    pub(crate) fn would_allow(&self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { trial_since } => {
                trial_since.is_none_or(|t| now.duration_since(t) >= self.trial_ttl)
            }
        }
    }

    pub(crate) fn acquire(&mut self, now: Instant) -> Permit {
        match self.state {
            State::Closed => Permit::Allowed,
            State::Open { until } if now < until => Permit::Refused(until),
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    trial_since: Some(now),
                };
                Permit::Trial
            }
            State::HalfOpen { trial_since } => match trial_since {
                Some(t) if now.duration_since(t) < self.trial_ttl => {
                    Permit::Refused(t + self.trial_ttl)
                }
                _ => {
                    self.state = State::HalfOpen {
                        trial_since: Some(now),
                    };
                    Permit::Trial
                }
            },
        }
    }

    /// Ends a half-open trial without a verdict (the call ended with an
    /// outcome that says nothing about health, e.g. a 400 for this request,
    /// or was cancelled): the next call may be the trial at once.
    pub(crate) fn release_trial(&mut self) {
        if let State::HalfOpen { trial_since } = &mut self.state {
            *trial_since = None;
        }
    }

    /// Records a success; returns true when it closed the circuit.
    pub(crate) fn on_success(&mut self) -> bool {
        self.consecutive = 0;
        self.push(true);
        if matches!(self.state, State::Closed) {
            return false;
        }
        self.state = State::Closed;
        self.trips = 0;
        self.window.clear();
        true
    }

    /// Records a failure; returns true when it opened the circuit.
    pub(crate) fn on_failure(&mut self, now: Instant) -> bool {
        self.consecutive = self.consecutive.saturating_add(1);
        self.push(false);
        let trip = match self.state {
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
            State::Closed => {
                self.consecutive >= self.cfg.failure_threshold || self.ratio_exceeded()
            }
        };
        if trip {
            self.trips = self.trips.saturating_add(1);
            let factor = 2u32.saturating_pow(self.trips.saturating_sub(1).min(30));
            let cooldown = self
                .cfg
                .cooldown
                .0
                .saturating_mul(factor)
                .min(self.cfg.max_cooldown.0);
            self.state = State::Open {
                until: now + cooldown,
            };
            self.window.clear();
        }
        trip
    }

    fn push(&mut self, ok: bool) {
        let cap = self.cfg.window.max(1) as usize;
        if self.window.len() == cap {
            self.window.pop_front();
        }
        self.window.push_back(ok);
    }

    fn ratio_exceeded(&self) -> bool {
        let n = self.window.len();
        if n == 0 || (n as u32) < self.cfg.min_requests.max(1) {
            return false;
        }
        let failures = self.window.iter().filter(|ok| !**ok).count();
        failures as f64 / n as f64 >= self.cfg.error_ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secs;

    fn breaker() -> Breaker {
        Breaker::new(HealthConfig::default(), Duration::from_secs(60))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_three_failures_then_half_opens_and_closes() {
        let mut b = breaker();
        let now = Instant::now();
        assert!(!b.on_failure(now));
        assert!(!b.on_failure(now));
        assert!(b.on_failure(now));
        assert_eq!(b.state(now), CircuitState::Open);
        assert_eq!(
            b.acquire(now),
            Permit::Refused(now + Duration::from_secs(5))
        );
        let later = now + Duration::from_secs(5);
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert_eq!(b.acquire(later), Permit::Trial);
        // Only one trial at a time.
        assert!(matches!(b.acquire(later), Permit::Refused(_)));
        assert!(b.on_success());
        assert_eq!(b.state(later), CircuitState::Closed);
        assert_eq!(b.acquire(later), Permit::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_trips_double_the_cooldown_up_to_the_cap() {
        let mut b = Breaker::new(
            HealthConfig {
                max_cooldown: Secs::from_secs(12),
                ..HealthConfig::default()
            },
            Duration::from_secs(60),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        assert_eq!(b.open_until(), Some(t0 + Duration::from_secs(5)));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(b.acquire(t1), Permit::Trial);
        assert!(b.on_failure(t1));
        // Second trip: 10 s from the failed trial, not the first deadline.
        assert_eq!(b.open_until(), Some(t1 + Duration::from_secs(10)));
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.acquire(t2), Permit::Trial);
        assert!(b.on_failure(t2));
        assert_eq!(b.open_until(), Some(t2 + Duration::from_secs(12)), "capped");
    }

    #[tokio::test(start_paused = true)]
    async fn error_ratio_opens_without_consecutive_failures() {
        let mut b = breaker();
        let now = Instant::now();
        // Alternate: never 3 in a row, but 50 % failures over 10 outcomes.
        let mut opened = false;
        for i in 0..10 {
            if i % 2 == 0 {
                b.on_success();
            } else {
                opened |= b.on_failure(now);
            }
        }
        assert!(opened);
        assert_eq!(b.state(now), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_trial_expires() {
        let mut b = Breaker::new(HealthConfig::default(), Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..3 {
            b.on_failure(now);
        }
        let t = now + Duration::from_secs(5);
        assert_eq!(b.acquire(t), Permit::Trial);
        assert!(!b.would_allow(t));
        assert!(b.would_allow(t + Duration::from_secs(1)));
        assert_eq!(b.acquire(t + Duration::from_secs(1)), Permit::Trial);
    }
}
