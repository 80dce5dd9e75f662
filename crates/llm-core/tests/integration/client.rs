//! LlmClient routing, fallback, retries, timeouts and circuit breaking,
//! with scripted providers (no HTTP) and paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llm_core::config::{RoutingConfig, Secs, Strategy};
use llm_core::exec::CircuitState;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{
    AttemptOutcome, ErrorClass, LlmClient, LlmError, LlmRequest, ProviderError, StreamEvent,
};

fn openai() -> ScriptedProvider {
    ScriptedProvider::new("openai")
        .kind("openai")
        .models(["gpt-4o"])
}
fn ollama() -> ScriptedProvider {
    ScriptedProvider::new("ollama")
        .kind("ollama")
        .local(true)
        .models(["llama3:8b"])
}
fn custom() -> ScriptedProvider {
    ScriptedProvider::new("custom")
        .kind("custom")
        .models(["private"])
}

struct Fixture {
    client: LlmClient,
    openai: Arc<ScriptedProvider>,
    ollama: Arc<ScriptedProvider>,
    custom: Arc<ScriptedProvider>,
}

fn fixture_with(
    routing: RoutingConfig,
    o: ScriptedProvider,
    l: ScriptedProvider,
    c: ScriptedProvider,
) -> Fixture {
    let (openai, ollama, custom) = (Arc::new(o), Arc::new(l), Arc::new(c));
    let client = LlmClient::builder()
        .provider(openai.clone())
        .provider(ollama.clone())
        .provider(custom.clone())
        .routing(routing)
        .no_cache()
        .seed(1)
        .build()
        .unwrap();
    Fixture {
        client,
        openai,
        ollama,
        custom,
    }
}

fn fixture() -> Fixture {
    fixture_with(RoutingConfig::default(), openai(), ollama(), custom())
}

fn http(p: &str, status: u16) -> ProviderError {
    ProviderError::http(p, status, "scripted")
}

#[tokio::test]
async fn simple_hello_goes_to_the_local_provider() {
    let f = fixture();
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama");
    assert_eq!(r.provider_kind, "ollama");
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(f.openai.calls(), 0);
}

#[tokio::test]
async fn long_chinese_analysis_goes_to_the_performance_provider() {
    let f = fixture();
    let prompt = "写一篇关于人工智能的深度分析文章".repeat(100);
    let req = LlmRequest::new(prompt).max_tokens(4000);
    let plan = f.client.explain(&req);
    assert_eq!(
        plan.to_string(),
        "complex (max_tokens 4000 > 3000) → openai → ollama → custom"
    );
    let r = f.client.generate(req).await.unwrap();
    assert_eq!(r.provider, "openai");
}

#[tokio::test]
async fn explain_reads_as_documented() {
    let f = fixture();
    let plan = f.client.explain(&LlmRequest::new("hi").max_tokens(4000));
    assert_eq!(
        plan.to_string(),
        "complex (max_tokens 4000 > 3000) → openai → ollama → custom"
    );
    let plan = f.client.explain(&LlmRequest::new("Hello").max_tokens(100));
    assert_eq!(plan.names(), ["ollama", "openai", "custom"]);
    let plan = f
        .client
        .explain(&LlmRequest::new("x").provider("custom").max_tokens(100));
    assert_eq!(plan.names(), ["custom", "ollama", "openai"]);
    assert_eq!(plan.sequence[0].reason, "requested");
}

#[tokio::test]
async fn chinese_length_boundary_is_characters() {
    let f = fixture();
    let simple = f
        .client
        .explain(&LlmRequest::new("中".repeat(999)).max_tokens(100));
    assert_eq!(simple.primary(), Some("ollama"));
    assert!(
        simple.to_string().starts_with("simple (999 chars < 1000"),
        "{simple}"
    );
    let not_simple = f
        .client
        .explain(&LlmRequest::new("中".repeat(1001)).max_tokens(100));
    assert!(
        not_simple.to_string().starts_with("standard"),
        "{not_simple}"
    );
    // Standard tasks follow the strategy: cost_optimized puts the free local model first.
    assert_eq!(not_simple.primary(), Some("ollama"));
}

#[tokio::test]
async fn keyword_makes_a_task_complex() {
    let f = fixture();
    let plan = f
        .client
        .explain(&LlmRequest::new("请发挥创意写一首诗").max_tokens(2500));
    assert_eq!(plan.primary(), Some("openai"));
    assert!(
        plan.to_string().starts_with("complex (keyword `创意`)"),
        "{plan}"
    );
}

#[tokio::test]
async fn strategies_order_standard_tasks() {
    let req = LlmRequest::new("x".repeat(2000)).max_tokens(2500);
    let names = |s: Strategy| {
        let f = fixture_with(
            RoutingConfig {
                strategy: s,
                ..RoutingConfig::default()
            },
            openai(),
            ollama(),
            custom(),
        );
        let plan = f.client.explain(&req);
        plan.names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Strategy::CostOptimized),
        ["ollama", "openai", "custom"]
    );
    assert_eq!(
        names(Strategy::PerformanceFirst),
        ["openai", "ollama", "custom"]
    );
    assert_eq!(names(Strategy::LocalFirst), ["ollama", "openai", "custom"]);
    // Unmeasured providers keep configuration order under `latency`.
    assert_eq!(names(Strategy::Latency), ["openai", "ollama", "custom"]);
}

#[tokio::test]
async fn fallback_when_primary_fails_and_attempts_show_both() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().otherwise(Reply::Error(http("ollama", 404))),
        custom(),
    );
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "openai");
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[0].provider, "ollama");
    assert!(matches!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed {
            class: ErrorClass::Fallback,
            status: Some(404),
            ..
        }
    ));
    assert!(r.attempts[1].succeeded());
}

#[tokio::test(start_paused = true)]
async fn rate_limit_is_retried_then_succeeds() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama()
            .then(Reply::Error(http("ollama", 429)))
            .then(Reply::text("second time")),
        custom(),
    );
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.content, "second time");
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].calls, 2);
    assert_eq!(f.ollama.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn long_retry_after_moves_to_the_next_provider_at_once() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().then(Reply::Error(
            http("ollama", 429).with_retry_after(Some(Duration::from_secs(30))),
        )),
        custom(),
    );
    let start = tokio::time::Instant::now();
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "openai");
    assert_eq!(f.ollama.calls(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting");
}

#[tokio::test(start_paused = true)]
async fn short_retry_after_is_a_floor_for_the_wait() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().then(Reply::Error(
            http("ollama", 429).with_retry_after(Some(Duration::from_secs(3))),
        )),
        custom(),
    );
    let start = tokio::time::Instant::now();
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama");
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn unauthorized_falls_back_without_retry() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai().otherwise(Reply::Error(http("openai", 401))),
        ollama(),
        custom(),
    );
    let r = f
        .client
        .generate(LlmRequest::new("hi").max_tokens(4000))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama");
    assert_eq!(f.openai.calls(), 1);
}

#[tokio::test]
async fn validation_errors_never_reach_a_provider() {
    let f = fixture();
    let err = f
        .client
        .generate(LlmRequest::new("hi").temperature(5.0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Validation(ref v) if v.field == "temperature"),
        "{err}"
    );
    let err = f
        .client
        .generate(LlmRequest::new("hi").max_tokens(0))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Validation(_)));
    let err = f
        .client
        .generate(LlmRequest::new("hi").provider("nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::UnknownProvider { .. }), "{err}");
    assert_eq!(f.openai.calls() + f.ollama.calls() + f.custom.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_grow_within_full_jitter_bounds() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().otherwise(Reply::Error(http("ollama", 503))),
        custom(),
    );
    let start = tokio::time::Instant::now();
    let err = f
        .client
        .generate(LlmRequest::new("hi").provider("ollama").max_tokens(100))
        .await;
    // Ollama: 1 call + 2 retries; waits ≤ 250 ms + 500 ms; then openai answers.
    let r = err.unwrap();
    assert_eq!(r.provider, "openai");
    assert_eq!(f.ollama.calls(), 3);
    assert!(
        start.elapsed() <= Duration::from_millis(750),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.attempts[0].calls, 3);
}

#[tokio::test(start_paused = true)]
async fn circuit_opens_skips_half_opens_and_closes_with_doubling_cooldown() {
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 0;
    let f = fixture_with(
        routing,
        openai(),
        ollama().otherwise(Reply::Error(http("ollama", 500))),
        custom(),
    );
    let req = || LlmRequest::new("Hello").max_tokens(100);
    for _ in 0..3 {
        assert_eq!(f.client.generate(req()).await.unwrap().provider, "openai");
    }
    let state = |c: &LlmClient| {
        c.health()
            .into_iter()
            .find(|h| h.provider == "ollama")
            .unwrap()
            .circuit
    };
    assert_eq!(state(&f.client), CircuitState::Open);
    // Open: skipped without a call.
    let calls = f.ollama.calls();
    let r = f.client.generate(req()).await.unwrap();
    assert_eq!(f.ollama.calls(), calls);
    assert!(f
        .client
        .explain(&req())
        .skipped
        .iter()
        .any(|s| s.provider == "ollama"));
    // No local provider left: the cost strategy's cheapest remote one.
    assert_eq!(r.provider, "custom");
    // After 5 s: half-open; the trial fails → open again for 10 s.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(state(&f.client), CircuitState::HalfOpen);
    f.client.generate(req()).await.unwrap();
    assert_eq!(f.ollama.calls(), calls + 1);
    assert_eq!(state(&f.client), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        state(&f.client),
        CircuitState::Open,
        "second trip doubled the cooldown"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(state(&f.client), CircuitState::HalfOpen);
    // The trial succeeds → closed.
    f.ollama.push(Reply::text("back"));
    let r = f.client.generate(req()).await.unwrap();
    assert_eq!(r.provider, "ollama");
    assert_eq!(state(&f.client), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn overall_deadline_bounds_the_call() {
    let routing = RoutingConfig {
        deadline: Secs::from_secs(3),
        ..RoutingConfig::default()
    };
    let f = fixture_with(
        routing,
        openai().otherwise(Reply::Hang),
        ollama().otherwise(Reply::Hang),
        custom().otherwise(Reply::Hang),
    );
    let start = tokio::time::Instant::now();
    let err = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::DeadlineExceeded { .. }), "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn per_attempt_timeout_moves_on() {
    let mut p = llm_core::ProviderProfile {
        local: true,
        ..Default::default()
    };
    p.timeout = Duration::from_secs(2);
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 0;
    let f = fixture_with(
        routing,
        openai(),
        ollama().profile(p).otherwise(Reply::Hang),
        custom(),
    );
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "openai");
    assert!(matches!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed {
            class: ErrorClass::Retryable,
            ..
        }
    ));
}

#[tokio::test]
async fn all_failed_lists_every_attempt() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai().otherwise(Reply::Error(http("openai", 401))),
        ollama().otherwise(Reply::Error(http("ollama", 404))),
        custom().otherwise(Reply::Error(http("custom", 400))),
    );
    let err = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap_err();
    let LlmError::AllProvidersFailed { attempts } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.provider.as_str())
            .collect::<Vec<_>>(),
        ["ollama", "openai", "custom"]
    );
    let text = err.to_string();
    for needle in [
        "all providers failed",
        "ollama",
        "HTTP 404",
        "openai",
        "HTTP 401",
        "custom",
        "HTTP 400",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
}

#[tokio::test]
async fn model_is_adapted_and_max_tokens_clamped_on_fallback() {
    let mut routing = RoutingConfig::default();
    routing.model_aliases.insert(
        "gpt-4o".into(),
        [("ollama".to_string(), "qwen:7b".to_string())].into(),
    );
    let local = llm_core::ProviderProfile {
        local: true,
        models: vec!["llama3:8b".into(), "qwen:7b".into()],
        default_model: Some("llama3:8b".into()),
        max_tokens: Some(2048),
        ..Default::default()
    };
    let f = fixture_with(
        routing,
        openai().otherwise(Reply::Error(http("openai", 500))),
        ollama().profile(local),
        custom(),
    );
    let r = f
        .client
        .generate(LlmRequest::new("hi").model("gpt-4o").max_tokens(4000))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama");
    let sent = f.ollama.requests().pop().unwrap();
    assert_eq!(sent.model.as_deref(), Some("qwen:7b"));
    assert_eq!(sent.max_tokens, Some(2048));
    let r = f
        .client
        .generate(
            LlmRequest::new("hi")
                .model("unknown-model")
                .provider("ollama"),
        )
        .await
        .unwrap();
    assert_eq!(r.model, "llama3:8b");
}

#[tokio::test(start_paused = true)]
async fn stream_falls_back_before_the_first_event() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().then(Reply::Stream(vec![Err(http("ollama", 404))])),
        custom(),
    );
    let s = f
        .client
        .stream(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(s.provider, "openai");
    assert_eq!(s.attempts.len(), 2);
    let events: Vec<_> = s.collect().await;
    assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
}

#[tokio::test]
async fn stream_failure_after_first_event_is_an_error_item() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().then(Reply::Stream(vec![
            Ok(StreamEvent::delta("partial")),
            Err(ProviderError::transport("ollama", "reset")),
        ])),
        custom(),
    );
    let s = f
        .client
        .stream(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(s.provider, "ollama");
    let events: Vec<_> = s.collect().await;
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], Ok(StreamEvent::Delta { text }) if text == "partial"));
    assert!(events[1].is_err());
    assert_eq!(f.openai.calls(), 0, "no fallback after the first event");
}

#[tokio::test]
async fn stream_that_ends_without_done_is_an_error_item() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().then(Reply::Stream(vec![Ok(StreamEvent::delta("cut"))])),
        custom(),
    );
    let s = f
        .client
        .stream(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    let events: Vec<_> = s.collect().await;
    assert!(
        matches!(events.last(), Some(Err(e)) if e.kind == llm_core::ProviderErrorKind::Incomplete)
    );
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_requests_with_failures_all_succeed_once() {
    let f = fixture_with(
        RoutingConfig::default(),
        openai(),
        ollama().failure_rate(0.3, http("ollama", 503), 7),
        custom(),
    );
    let reqs = (0..1000).map(|i| {
        let c = f.client.clone();
        async move {
            c.generate(LlmRequest::new(format!("q{i}")).max_tokens(100))
                .await
        }
    });
    let results = futures::future::join_all(reqs).await;
    assert_eq!(results.len(), 1000);
    let mut successes = 0;
    for r in &results {
        let r = r.as_ref().unwrap();
        assert_eq!(
            r.attempts.iter().filter(|a| a.succeeded()).count(),
            1,
            "answered once"
        );
        successes += 1;
    }
    assert_eq!(successes, 1000);
    // Every successful upstream call answered exactly one request.
    let by = |name: &str| {
        results
            .iter()
            .filter(|r| r.as_ref().unwrap().provider == name)
            .count()
    };
    assert_eq!(by("ollama") + by("openai") + by("custom"), 1000);
    // The healthy providers were called exactly once per request they answered.
    assert_eq!(f.openai.calls() as usize, by("openai"));
    assert_eq!(f.custom.calls() as usize, by("custom"));
    assert!(by("ollama") > 0);
}

#[tokio::test]
async fn availability_probes_are_cached_not_per_request() {
    let f = fixture();
    f.client.refresh_health().await;
    assert_eq!(f.ollama.availability_checks(), 1);
    for _ in 0..20 {
        f.client
            .generate(LlmRequest::new("Hello").max_tokens(100))
            .await
            .unwrap();
    }
    assert_eq!(f.ollama.availability_checks(), 1, "no probe per request");
    f.ollama.set_available(false);
    f.client.refresh_health().await;
    let r = f
        .client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap();
    // Without a local provider, the cost strategy picks the next cheapest.
    assert_eq!(
        r.provider, "custom",
        "an unavailable local provider is skipped"
    );
    assert!(f
        .client
        .explain(&LlmRequest::new("x"))
        .to_string()
        .contains("ollama: unavailable"));
}

#[tokio::test]
async fn providers_are_prepared_once_before_their_first_attempt_when_asked() {
    let ollama =
        Arc::new(ollama().fail_prepare(ProviderError::unsupported("ollama", "not installed")));
    let openai = Arc::new(openai());
    let client = LlmClient::builder()
        .provider(openai.clone())
        .provider(ollama.clone())
        .no_cache()
        .prepare_providers(true)
        .build()
        .unwrap();
    let req = || LlmRequest::new("Hello").max_tokens(100);
    // Preparing ollama fails: the call falls back without calling it.
    let r = client.generate(req()).await.unwrap();
    assert_eq!(r.provider, "openai");
    assert_eq!((ollama.prepares(), ollama.calls()), (1, 0));
    assert!(matches!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed {
            class: ErrorClass::Fallback,
            ..
        }
    ));
    // Once it can be prepared, it is, once, and then used.
    ollama.clear_prepare_error();
    for _ in 0..3 {
        assert_eq!(client.generate(req()).await.unwrap().provider, "ollama");
    }
    assert_eq!(ollama.prepares(), 2);
    assert_eq!(openai.prepares(), 1);
    // Without the option nothing is prepared.
    let fresh = Arc::new(ScriptedProvider::new("x").local(true));
    let plain = LlmClient::builder()
        .provider(fresh.clone())
        .no_cache()
        .build()
        .unwrap();
    plain.generate(req()).await.unwrap();
    assert_eq!(fresh.prepares(), 0);
}

#[tokio::test(start_paused = true)]
async fn with_every_circuit_open_one_last_resort_call_is_made() {
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 0;
    let only = Arc::new(ollama().otherwise(Reply::Error(http("ollama", 503))));
    let client = LlmClient::builder()
        .provider(only.clone())
        .routing(routing)
        .no_cache()
        .build()
        .unwrap();
    let req = || LlmRequest::new("Hello").max_tokens(100);
    for _ in 0..3 {
        assert!(client.generate(req()).await.is_err());
    }
    assert_eq!(client.health()[0].circuit, CircuitState::Open);
    let plan = client.explain(&req());
    assert_eq!(
        plan.to_string(),
        "simple (5 chars < 1000, max_tokens 100 < 2000) → ollama (last resort)"
    );
    assert!(plan.skipped.is_empty());
    // The provider has recovered before its cooldown ended: the last resort finds out.
    only.push(Reply::text("back early"));
    let r = client.generate(req()).await.unwrap();
    assert_eq!(r.content, "back early");
    assert_eq!(
        client.health()[0].circuit,
        CircuitState::Closed,
        "a success closes the circuit"
    );
    assert_eq!(only.calls(), 4);
}

#[tokio::test]
async fn with_every_provider_unavailable_the_error_lists_the_last_resort_and_the_rest() {
    let a = Arc::new(openai().otherwise(Reply::Error(http("openai", 503))));
    let b = Arc::new(ollama().otherwise(Reply::Error(http("ollama", 503))));
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 0;
    let client = LlmClient::builder()
        .provider(a.clone())
        .provider(b.clone())
        .routing(routing)
        .no_cache()
        .build()
        .unwrap();
    a.set_available(false);
    b.set_available(false);
    client.refresh_health().await;
    let err = client
        .generate(LlmRequest::new("Hello").max_tokens(100))
        .await
        .unwrap_err();
    let LlmError::AllProvidersFailed { attempts } = &err else {
        panic!("{err}")
    };
    // One call (the cheapest, ollama), the other listed as skipped.
    assert_eq!(a.calls() + b.calls(), 1);
    assert_eq!(b.calls(), 1);
    assert_eq!(attempts.len(), 2);
    assert!(matches!(
        attempts[1].outcome,
        AttemptOutcome::Skipped { .. }
    ));
}

/// A request's allowed models bound its whole route: the primary, every
/// fallback (chat and stream) and the last resort; the instances left out
/// are never named; nothing allowed is [`LlmError::NotAllowed`].
#[tokio::test(start_paused = true)]
async fn allowed_models_bound_fallbacks_and_the_last_resort() {
    use llm_core::ModelFilter;
    let f = fixture_with(
        RoutingConfig::default(),
        openai().otherwise(Reply::Error(http("openai", 500))),
        ollama(),
        custom().otherwise(Reply::Error(http("custom", 500))),
    );
    let req = || LlmRequest::new("Hello").model("gpt-4o").provider("openai");
    // Unrestricted, the failing primary falls back to another model.
    let r = f.client.generate(req()).await.unwrap();
    assert_ne!(r.provider, "openai");
    // Restricted to gpt-4o (served by openai only): no fallback elsewhere.
    let only = || req().allowed_models(ModelFilter::new(["gpt-4o"]));
    let plan = f.client.explain(&only());
    assert_eq!(plan.primary(), Some("openai"));
    assert_eq!(plan.sequence.len(), 1, "{plan}");
    // The others are left out, not listed: nothing names them.
    assert!(plan.skipped.is_empty(), "{plan}");
    let (ollama_calls, custom_calls) = (f.ollama.calls(), f.custom.calls());
    let err = f.client.generate(only()).await.unwrap_err();
    assert!(matches!(err, LlmError::AllProvidersFailed { .. }), "{err}");
    assert!(
        err.attempts().iter().all(|a| a.provider == "openai"),
        "{err}"
    );
    assert!(!err.to_string().contains("llama"), "{err}");
    assert!(f.client.stream(only()).await.is_err());
    assert_eq!(
        (f.ollama.calls(), f.custom.calls()),
        (ollama_calls, custom_calls),
        "nothing outside the filter was called"
    );
    // With its circuit open, the allowed instance is the last resort, not
    // the healthy ones outside the filter.
    for _ in 0..3 {
        assert!(f.client.generate(only()).await.is_err());
    }
    assert_eq!(f.client.health()[0].circuit, CircuitState::Open);
    let plan = f.client.explain(&only());
    assert_eq!(plan.primary(), Some("openai"), "{plan}");
    assert!(plan.sequence[0].last_resort, "{plan}");
    assert_eq!(plan.sequence.len(), 1, "{plan}");
    // A glob over instance/model lets the fallback through, only there.
    let wider = req().allowed_models(ModelFilter::new(["gpt-4o", "ollama/*"]));
    let r = f.client.generate(wider.clone()).await.unwrap();
    assert_eq!(r.provider, "ollama");
    let mut s = f.client.stream(wider).await.unwrap();
    while let Some(event) = s.next().await {
        event.unwrap();
    }
    assert_eq!(f.custom.calls(), custom_calls);
    // An instance's name covers its default model; nothing allowed at all
    // is refused before routing, naming only the globs.
    let by_name = LlmRequest::new("Hello").allowed_models(ModelFilter::new(["ollama"]));
    assert_eq!(f.client.explain(&by_name).primary(), Some("ollama"));
    let none = LlmRequest::new("Hello").allowed_models(ModelFilter::new(["mistral-*"]));
    let err = f.client.generate(none.clone()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::NotAllowed { globs } if globs == &["mistral-*"]),
        "{err}"
    );
    match f.client.stream(none).await {
        Err(LlmError::NotAllowed { .. }) => {}
        Err(e) => panic!("not NotAllowed: {e}"),
        Ok(_) => panic!("a stream opened with nothing allowed"),
    }
}

/// A capability only an instance outside the allowed models has is
/// unsupported for the request, and that instance is not named.
#[tokio::test]
async fn capabilities_are_checked_among_the_allowed_instances_only() {
    use llm_core::{ModelFilter, Tool};
    let client = LlmClient::builder()
        .provider(Arc::new(openai()))
        .provider(Arc::new(custom().tools(true)))
        .no_cache()
        .build()
        .unwrap();
    let tool = Tool::function("f", "d", serde_json::json!({"type": "object"}));
    let req = LlmRequest::new("Hello").model("gpt-4o").tool(tool);
    assert_eq!(client.explain(&req).primary(), Some("custom"));
    let err = client
        .generate(req.allowed_models(ModelFilter::new(["gpt-4o"])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Unsupported { field, .. } if field == "tools"),
        "{err}"
    );
    assert!(!err.to_string().contains("custom"), "{err}");
    assert!(!err.to_string().contains("private"), "{err}");
}
