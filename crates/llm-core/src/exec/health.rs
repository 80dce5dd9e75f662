//! Health of one provider instance: cached availability probes, passive
//! outcomes, latency average and the circuit breaker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::breaker::{Breaker, CircuitState, Permit};
use crate::config::HealthConfig;
use crate::error::{ProviderError, ProviderErrorKind};
use crate::provider::{ProbeMode, Provider};

/// Weight of a new latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.2;

/// A snapshot of one instance's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Instance name.
    pub provider: String,
    /// Kind.
    pub kind: String,
    /// Whether it runs locally.
    pub local: bool,
    /// Last availability probe result (`None`: not probed yet).
    pub available: Option<bool>,
    /// Circuit state.
    pub circuit: CircuitState,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Moving average of successful call latency, in seconds.
    pub latency_ewma_secs: Option<f64>,
    /// Why the last probe failed (`HTTP 401: …`, connection refused, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
}

/// First re-probe delay after a failed probe; it doubles per failure up to
/// the check interval, so an upstream that comes up a moment after the
/// gateway is seen within about a second.
const PROBE_RETRY_MIN: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Inner {
    breaker: Breaker,
    probe: Option<(bool, Instant)>,
    /// Failed probes in a row, and the last one's reason.
    probe_failures: u32,
    probe_error: Option<String>,
    latency_ewma: Option<f64>,
}

/// Health state shared by every request to one instance.
#[derive(Debug)]
pub(crate) struct ProviderHealth {
    inner: Mutex<Inner>,
    probing: AtomicBool,
    prepared: AtomicBool,
    prepare_lock: tokio::sync::Mutex<()>,
    check_interval: Duration,
}

/// Whether an error says something about the provider's health (as opposed
/// to this one request: an unknown model, a too-long prompt).
pub(crate) fn counts_against_health(e: &ProviderError) -> bool {
    match e.kind {
        ProviderErrorKind::Http => {
            matches!(e.status, Some(401 | 402 | 403 | 408 | 429 | 500..=599))
        }
        ProviderErrorKind::Unsupported => false,
        _ => true,
    }
}

impl ProviderHealth {
    pub(crate) fn new(cfg: &HealthConfig, trial_ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                breaker: Breaker::new(cfg.clone(), trial_ttl),
                probe: None,
                probe_failures: 0,
                probe_error: None,
                latency_ewma: None,
            }),
            probing: AtomicBool::new(false),
            prepared: AtomicBool::new(false),
            prepare_lock: tokio::sync::Mutex::new(()),
            check_interval: cfg.check_interval.0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the instance should be skipped now, if it should.
    pub(crate) fn skip_reason(&self, now: Instant) -> Option<String> {
        let g = self.lock();
        if !g.breaker.would_allow(now) {
            let wait = g
                .breaker
                .open_until()
                .map(|u| u.saturating_duration_since(now).as_secs_f64())
                .unwrap_or(0.0);
            return Some(format!("circuit open ({wait:.1} s left)"));
        }
        if let Some((false, _)) = g.probe {
            return Some(match &g.probe_error {
                Some(why) => format!("unavailable (last probe failed: {why})"),
                None => "unavailable (last probe failed)".into(),
            });
        }
        None
    }

    pub(crate) fn acquire(&self, now: Instant) -> Permit {
        self.lock().breaker.acquire(now)
    }

    /// Records a success; true when it closed the circuit.
    pub(crate) fn on_success(&self, latency: Duration) -> bool {
        let mut g = self.lock();
        let s = latency.as_secs_f64();
        g.latency_ewma = Some(match g.latency_ewma {
            None => s,
            Some(avg) => avg + EWMA_ALPHA * (s - avg),
        });
        // A real success proves availability.
        if let Some((false, _)) = g.probe {
            g.probe = Some((true, Instant::now()));
            g.probe_failures = 0;
            g.probe_error = None;
        }
        g.breaker.on_success()
    }

    /// Records a failure; true when it opened the circuit. A failure that
    /// says nothing about health still ends a half-open trial.
    pub(crate) fn on_failure(&self, err: &ProviderError, now: Instant) -> bool {
        let mut g = self.lock();
        if !counts_against_health(err) {
            g.breaker.release_trial();
            return false;
        }
        g.breaker.on_failure(now)
    }

    /// Ends a half-open trial whose call was abandoned (cancelled, or its
    /// stream dropped before an outcome).
    pub(crate) fn release_trial(&self) {
        self.lock().breaker.release_trial();
    }

    pub(crate) fn latency(&self) -> Option<f64> {
        self.lock().latency_ewma
    }

    pub(crate) fn report(&self, p: &dyn Provider, now: Instant) -> HealthReport {
        let g = self.lock();
        HealthReport {
            provider: p.name().to_string(),
            kind: p.kind().to_string(),
            local: p.profile().local,
            available: g.probe.map(|(ok, _)| ok),
            circuit: g.breaker.state(now),
            consecutive_failures: g.breaker.consecutive_failures(),
            latency_ewma_secs: g.latency_ewma,
            probe_error: g.probe_error.clone(),
        }
    }

    /// Whether the cached probe is missing or due: older than the check
    /// interval, or, after failed probes, than a backoff that starts at one
    /// second and doubles up to the check interval.
    pub(crate) fn probe_stale(&self, now: Instant) -> bool {
        let g = self.lock();
        match g.probe {
            None => true,
            Some((true, at)) => now.duration_since(at) >= self.check_interval,
            Some((false, at)) => {
                let exp = g.probe_failures.saturating_sub(1).min(20);
                let backoff = PROBE_RETRY_MIN
                    .saturating_mul(1u32 << exp)
                    .min(self.check_interval);
                now.duration_since(at) >= backoff
            }
        }
    }

    /// Probes the provider now, as its profile's `probe` mode says, and
    /// caches the result.
    pub(crate) async fn probe(&self, p: &dyn Provider) -> bool {
        // A probe that hangs is a failed probe, after the provider's timeout.
        let timeout = p.profile().timeout;
        let probe = async {
            match p.profile().probe {
                ProbeMode::None => Ok(()),
                ProbeMode::Models => p.check().await,
                ProbeMode::Generate => {
                    let mut req =
                        crate::types::LlmRequest::plain(vec![crate::types::Message::user("ping")])
                            .max_tokens(1);
                    req.model = p.profile().resolve_model(None);
                    p.generate(&req).await.map(|_| ())
                }
            }
        };
        let result = match tokio::time::timeout(timeout, probe).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::timeout(
                p.name(),
                format!("probe: no answer within {:.1} s", timeout.as_secs_f64()),
            )),
        };
        let mut g = self.lock();
        let ok = result.is_ok();
        g.probe = Some((ok, Instant::now()));
        match result {
            Ok(()) => {
                g.probe_failures = 0;
                g.probe_error = None;
            }
            Err(e) => {
                g.probe_failures = g.probe_failures.saturating_add(1);
                g.probe_error = Some(match e.status {
                    Some(s) => format!("HTTP {s}: {}", e.message),
                    None => e.message,
                });
            }
        }
        ok
    }

    /// Runs the provider's `prepare` once (concurrent first callers wait for
    /// the one run); a failure is returned and tried again on the next call.
    pub(crate) async fn prepare(&self, p: &dyn Provider) -> Result<(), ProviderError> {
        if self.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.prepare_lock.lock().await;
        if self.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        p.prepare().await?;
        self.prepared.store(true, Ordering::Release);
        Ok(())
    }

    /// Starts a background probe when the cached one is stale and none is
    /// running; `done` runs after it (to update gauges).
    pub(crate) fn refresh_in_background(
        self: &Arc<Self>,
        p: Arc<dyn Provider>,
        done: impl FnOnce() + Send + 'static,
    ) {
        if !self.probe_stale(Instant::now()) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        handle.spawn(async move {
            // The flag is cleared however the probe ends (even by a panic
            // in a provider), so the instance is probed again later.
            struct Clear<'a>(&'a AtomicBool);
            impl Drop for Clear<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Release);
                }
            }
            let clear = Clear(&this.probing);
            this.probe(p.as_ref()).await;
            drop(clear);
            done();
        });
    }
}
