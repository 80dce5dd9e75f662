//! Resilient execution: each provider of the plan in turn, with per-attempt
//! timeouts, retries of transient errors, circuit breaking and an overall deadline.

mod breaker;
mod health;
mod retry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;

pub use breaker::CircuitState;
pub(crate) use breaker::Permit;
pub use health::HealthReport;
pub(crate) use health::ProviderHealth;
use retry::RetryDecision;

use crate::config::RoutingConfig;
use crate::embed::EmbeddingRequest;
use crate::error::{ErrorClass, LlmError, ProviderError};
use crate::metrics::Telemetry;
use crate::provider::Provider;
use crate::router::{adapt_max_tokens, adapt_model, RoutePlan};
use crate::types::{
    Attempt, AttemptOutcome, LlmRequest, ResponseStream, StreamEvent, Thinking, MIN_THINKING_BUDGET,
};

/// One configured provider instance and its health.
#[derive(Clone)]
pub(crate) struct Instance {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) health: Arc<ProviderHealth>,
}

/// A request the executor can send to several instances: it knows its model
/// and how to adapt itself to one instance.
pub(crate) trait Routable: Clone {
    /// Which operation it is, for metrics and spans (`chat`, `embeddings`).
    const OPERATION: &'static str;
    /// The request as `p` is sent it; `None` when that is the request
    /// itself (the common case: no copy is made).
    fn adapt(&self, cfg: &RoutingConfig, p: &dyn Provider) -> Option<Self>;
    /// The model `p` is asked for.
    fn adapted_model(&self, cfg: &RoutingConfig, p: &dyn Provider) -> String;
    /// Its model.
    fn model(&self) -> Option<&str>;
}

impl Routable for LlmRequest {
    const OPERATION: &'static str = "chat";

    fn adapt(&self, cfg: &RoutingConfig, p: &dyn Provider) -> Option<Self> {
        let model = adapt_model(cfg, p, self.model.as_deref());
        let max_tokens = adapt_max_tokens(p, self.max_tokens);
        if self.model.as_deref() == Some(model.as_str()) && self.max_tokens == max_tokens {
            return None;
        }
        let mut r = self.clone();
        r.model = Some(model);
        r.max_tokens = max_tokens;
        // A thinking budget must stay below `max_tokens`: when the
        // instance's cap lowered it, the budget shrinks with it (as long as
        // the provider's minimum still fits) instead of the request being
        // refused for a limit the caller did not set.
        if let (Some(Thinking::Enabled { budget_tokens }), Some(max)) =
            (&mut r.thinking, max_tokens)
        {
            if *budget_tokens >= max && max > MIN_THINKING_BUDGET {
                *budget_tokens = max - 1;
            }
        }
        Some(r)
    }

    fn adapted_model(&self, cfg: &RoutingConfig, p: &dyn Provider) -> String {
        adapt_model(cfg, p, self.model.as_deref())
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

impl Routable for EmbeddingRequest {
    const OPERATION: &'static str = "embeddings";

    /// The same model everywhere: vectors of different models do not mix.
    fn adapt(&self, _cfg: &RoutingConfig, _p: &dyn Provider) -> Option<Self> {
        None
    }

    fn adapted_model(&self, _cfg: &RoutingConfig, _p: &dyn Provider) -> String {
        self.model.clone().unwrap_or_default()
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

/// What a successful run produced.
pub(crate) struct Outcome<T, R = LlmRequest> {
    pub(crate) value: T,
    pub(crate) instance: Instance,
    /// The request as the instance that answered was sent it.
    pub(crate) request: Arc<R>,
    pub(crate) attempts: Vec<Attempt>,
}

/// A stream whose first event has arrived.
pub(crate) struct OpenedStream {
    pub(crate) first: StreamEvent,
    pub(crate) rest: ResponseStream,
    pub(crate) first_event_after: Duration,
}

/// The resilient executor: what one run over a route plan needs, borrowed
/// from the client.
pub(crate) struct Executor<'a> {
    /// Retry, health and deadline settings.
    pub(crate) cfg: &'a RoutingConfig,
    /// Whether to call [`Provider::prepare`] before an instance's first attempt.
    pub(crate) prepare: bool,
    /// Every configured instance.
    pub(crate) instances: &'a [Instance],
    /// Where attempt outcomes, retries, fallbacks and circuit changes go.
    pub(crate) telemetry: &'a Telemetry,
    /// Jitter source.
    pub(crate) rng: &'a std::sync::Mutex<fastrand::Rng>,
}

impl Executor<'_> {
    /// Runs `call` against each provider of `plan` until one succeeds: per
    /// attempt a timeout, retries of transient errors with backoff (each
    /// asking the breaker), the next provider at once on a fallback-class
    /// error, all within the overall deadline. Every attempt's outcome is
    /// recorded here, once: health, breaker, metrics (`error` per failed
    /// attempt), spans. `call` gets the request as adapted to the instance
    /// (shared, not copied, when unchanged).
    pub(crate) async fn run<T, R, F, Fut>(
        &self,
        plan: &RoutePlan,
        req: &Arc<R>,
        call: F,
    ) -> Result<Outcome<T, R>, LlmError>
    where
        R: Routable,
        F: Fn(Arc<dyn Provider>, Arc<R>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        run(self, plan, req, call).await
    }
}

async fn run<T, R, F, Fut>(
    ex: &Executor<'_>,
    plan: &RoutePlan,
    req: &Arc<R>,
    call: F,
) -> Result<Outcome<T, R>, LlmError>
where
    R: Routable,
    F: Fn(Arc<dyn Provider>, Arc<R>) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let Executor {
        cfg,
        prepare,
        instances,
        telemetry,
        rng,
    } = *ex;
    let start = Instant::now();
    // Configuration bounds the deadline; a programmatic one that would
    // overflow the clock is as good as none.
    let deadline = start
        .checked_add(cfg.deadline.0)
        .unwrap_or_else(|| start + Duration::from_secs(crate::config::Secs::MAX_SECS));
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut previous: Option<String> = None;

    for planned in &plan.sequence {
        let Some(inst) = instances
            .iter()
            .find(|i| i.provider.name() == planned.provider)
        else {
            continue;
        };
        let provider = inst.provider.clone();
        let name = provider.name().to_string();
        let adapted = req
            .adapt(cfg, provider.as_ref())
            .map_or_else(|| req.clone(), Arc::new);
        let model = adapted.model().unwrap_or_default().to_string();
        let began = Instant::now();

        let permit = if planned.last_resort {
            Permit::Allowed
        } else {
            inst.health.acquire(began)
        };
        if permit == Permit::Trial {
            telemetry.circuit(&name, CircuitState::HalfOpen);
        }
        // A trial abandoned with its caller (cancelled) frees the circuit for
        // the next call instead of blocking it until the trial TTL.
        let mut trial = TrialGuard {
            health: (permit == Permit::Trial).then_some(&inst.health),
        };
        if let Permit::Refused(until) = permit {
            attempts.push(Attempt {
                provider: name,
                model,
                outcome: AttemptOutcome::Skipped {
                    reason: format!(
                        "circuit open ({:.1} s left)",
                        until.saturating_duration_since(began).as_secs_f64()
                    ),
                },
                elapsed: Duration::ZERO,
                calls: 0,
            });
            continue;
        }
        if let Some(from) = previous.take() {
            telemetry.fallback(&from, &name);
        }

        if prepare {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let ready =
                match tokio::time::timeout(remaining, inst.health.prepare(provider.as_ref())).await
                {
                    Ok(r) => r,
                    Err(_) => {
                        attempts.push(failed(&name, &model, began, 0, None));
                        return Err(deadline_error(cfg, attempts));
                    }
                };
            if let Err(e) = ready {
                tracing::debug!(provider = %name, error = %e, "provider could not be prepared");
                // A provider that cannot be made ready is unhealthy: it counts
                // against the instance like a failed call, so the breaker opens
                // instead of every request trying to start it again.
                if inst.health.on_failure(&e, Instant::now()) {
                    telemetry.circuit(&name, CircuitState::Open);
                    telemetry.active_providers(active_count(instances));
                }
                telemetry.request(R::OPERATION, &name, &model, "error");
                trial.disarm();
                attempts.push(failed(&name, &model, began, 1, Some(&e)));
                previous = Some(name);
                continue;
            }
        }

        let mut calls = 0u32;
        let mut retries = 0u32;
        let last_err = loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                if calls > 0 {
                    telemetry.request(R::OPERATION, &name, &model, "error");
                }
                attempts.push(failed(&name, &model, began, calls, None));
                return Err(deadline_error(cfg, attempts));
            }
            calls += 1;
            let timeout = provider.profile().timeout.min(remaining);
            let span = tracing::info_span!(
                "llm.attempt",
                gen_ai.operation.name = R::OPERATION,
                gen_ai.system = provider.kind(),
                gen_ai.request.model = model.as_str(),
                llm.provider = name.as_str(),
                llm.attempt = calls,
                error.type = tracing::field::Empty,
            );
            let result = tokio::time::timeout(timeout, call(provider.clone(), adapted.clone()))
                .instrument(span.clone())
                .await;
            let err = match result {
                Ok(Ok(value)) => {
                    trial.disarm();
                    if inst.health.on_success(began.elapsed()) {
                        telemetry.circuit(&name, CircuitState::Closed);
                        telemetry.active_providers(active_count(instances));
                    }
                    attempts.push(Attempt {
                        provider: name,
                        model,
                        outcome: AttemptOutcome::Success,
                        elapsed: began.elapsed(),
                        calls,
                    });
                    return Ok(Outcome {
                        value,
                        instance: inst.clone(),
                        request: adapted,
                        attempts,
                    });
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    let overall = timeout < provider.profile().timeout;
                    ProviderError::timeout(
                        &name,
                        if overall {
                            "overall deadline reached".to_string()
                        } else {
                            format!("no answer within {:.1} s", timeout.as_secs_f64())
                        },
                    )
                }
            };
            span.record("error.type", err.class().as_str());
            // Upstream error text can quote keys (OpenAI's 401 masks part of one):
            // the log gets what it was, not what the upstream wrote.
            tracing::debug!(
                provider = %name,
                class = err.class().as_str(),
                status = err.status,
                code = err.code.as_deref(),
                "attempt failed"
            );
            trial.disarm();
            if inst.health.on_failure(&err, Instant::now()) {
                telemetry.circuit(&name, CircuitState::Open);
                telemetry.active_providers(active_count(instances));
            }
            match err.class() {
                ErrorClass::Fatal => {
                    telemetry.request(R::OPERATION, &name, &model, "error");
                    attempts.push(failed(&name, &model, began, calls, Some(&err)));
                    return Err(LlmError::AllProvidersFailed { attempts });
                }
                ErrorClass::Fallback => break err,
                ErrorClass::Retryable => {
                    let jitter = rng.lock().map(|mut r| r.f64()).unwrap_or(0.5);
                    match retry::decide(&cfg.retry, retries, err.retry_after, jitter) {
                        RetryDecision::MoveOn => break err,
                        RetryDecision::Wait(wait) => {
                            if Instant::now() + wait >= deadline {
                                break err;
                            }
                            retries += 1;
                            telemetry.retry(&name);
                            tokio::time::sleep(wait).await;
                            // Each retry asks the breaker again: a circuit that
                            // opened on this failure (or a failed half-open
                            // trial) stops the retries.
                            if !planned.last_resort {
                                match inst.health.acquire(Instant::now()) {
                                    Permit::Refused(_) => break err,
                                    Permit::Trial => {
                                        telemetry.circuit(&name, CircuitState::HalfOpen);
                                        trial = TrialGuard {
                                            health: Some(&inst.health),
                                        };
                                    }
                                    Permit::Allowed => {}
                                }
                            }
                        }
                    }
                }
            }
        };
        // Every attempt's outcome is counted once, per provider: a failed
        // primary is an error even when a fallback answers.
        telemetry.request(R::OPERATION, &name, &model, "error");
        attempts.push(failed(&name, &model, began, calls, Some(&last_err)));
        previous = Some(name);
        if Instant::now() >= deadline {
            return Err(deadline_error(cfg, attempts));
        }
    }

    for s in &plan.skipped {
        let model = instances
            .iter()
            .find(|i| i.provider.name() == s.provider)
            .map(|i| req.adapted_model(cfg, i.provider.as_ref()))
            .unwrap_or_default();
        attempts.push(Attempt {
            provider: s.provider.clone(),
            model,
            outcome: AttemptOutcome::Skipped {
                reason: s.reason.clone(),
            },
            elapsed: Duration::ZERO,
            calls: 0,
        });
    }
    if attempts.iter().all(|a| a.calls == 0) {
        return Err(LlmError::NoProviderAvailable { attempts });
    }
    Err(LlmError::AllProvidersFailed { attempts })
}

/// Releases a half-open trial if the attempt holding it ends without an
/// outcome (its future dropped mid-call).
struct TrialGuard<'a> {
    health: Option<&'a Arc<ProviderHealth>>,
}

impl TrialGuard<'_> {
    /// The attempt reached an outcome, recorded by the caller.
    fn disarm(&mut self) {
        self.health = None;
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.health.take() {
            h.release_trial();
        }
    }
}

/// Instances that can take requests now.
pub(crate) fn active_count(instances: &[Instance]) -> usize {
    let now = Instant::now();
    instances
        .iter()
        .filter(|i| i.health.skip_reason(now).is_none())
        .count()
}

fn failed(
    name: &str,
    model: &str,
    began: Instant,
    calls: u32,
    err: Option<&ProviderError>,
) -> Attempt {
    let outcome = match err {
        Some(e) => AttemptOutcome::Failed {
            class: e.class(),
            status: e.status,
            message: e.to_string(),
            refused: e.kind == crate::error::ProviderErrorKind::Unsupported,
        },
        None => AttemptOutcome::Failed {
            class: ErrorClass::Retryable,
            status: None,
            message: "overall deadline reached".into(),
            refused: false,
        },
    };
    Attempt {
        provider: name.to_string(),
        model: model.to_string(),
        outcome,
        elapsed: began.elapsed(),
        calls,
    }
}

fn deadline_error(cfg: &RoutingConfig, attempts: Vec<Attempt>) -> LlmError {
    LlmError::DeadlineExceeded {
        deadline: cfg.deadline.0,
        attempts,
    }
}

/// Opens a stream and waits for its first event; a stream that fails or ends
/// before its first event counts as a failed attempt (so it can fall back).
pub(crate) async fn open_stream(
    provider: Arc<dyn Provider>,
    req: Arc<LlmRequest>,
) -> Result<OpenedStream, ProviderError> {
    let started = Instant::now();
    let mut stream = provider.stream(&req).await?;
    match stream.next().await {
        Some(Ok(first)) => Ok(OpenedStream {
            first,
            rest: stream,
            first_event_after: started.elapsed(),
        }),
        Some(Err(e)) => Err(e),
        None => Err(ProviderError::incomplete(
            provider.name(),
            "stream ended before its first event",
        )),
    }
}
