//! Defects of the request path under real traffic: cancelled waiters,
//! per-attempt metrics, metric labels of cache hits, half-open trials,
//! retries after a trip, probe backoff, gauges and background cache writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llm_core::cache::{CacheKey, CachedResponse, MemoryCache, ResponseCache};
use llm_core::config::{HealthConfig, RoutingConfig, Secs};
use llm_core::exec::CircuitState;
use llm_core::metrics::MetricsRegistry;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{CacheError, LlmClient, LlmRequest, ProviderError};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map_or(0.0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiters_leave_no_coalescing_entry() {
    let p = Arc::new(ScriptedProvider::new("slow").otherwise(Reply::Hang));
    let client = LlmClient::builder()
        .provider(p.clone())
        .cache(Arc::new(MemoryCache::new(1 << 20)))
        .build()
        .unwrap();
    for i in 0..10_000 {
        let c = client.clone();
        let r = tokio::time::timeout(
            Duration::from_millis(1),
            c.generate(LlmRequest::new(format!("unique {i}"))),
        )
        .await;
        assert!(r.is_err(), "request {i} should have been cancelled");
    }
    assert_eq!(client.inflight_requests(), 0);

    // A shared call survives one cancelled waiter while another still waits.
    let a = tokio::spawn({
        let c = client.clone();
        async move { c.generate(LlmRequest::new("shared")).await }
    });
    let b = tokio::spawn({
        let c = client.clone();
        async move { c.generate(LlmRequest::new("shared")).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(client.inflight_requests(), 1);
    a.abort();
    let _ = a.await;
    assert_eq!(client.inflight_requests(), 1, "b still waits");
    b.abort();
    let _ = b.await;
    assert_eq!(client.inflight_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_primary_counts_as_an_error_even_when_the_fallback_answers() {
    let reg = MetricsRegistry::new().unwrap();
    let primary = Arc::new(
        ScriptedProvider::new("openai")
            .kind("openai")
            .models(["gpt-4o"])
            .otherwise(Reply::Error(ProviderError::http("openai", 401, "bad key"))),
    );
    let fallback = Arc::new(
        ScriptedProvider::new("ollama")
            .kind("ollama")
            .local(true)
            .models(["llama3:8b"])
            .otherwise(Reply::text("ok")),
    );
    let client = LlmClient::builder()
        .provider(primary)
        .provider(fallback)
        .no_cache()
        .telemetry(
            reg.telemetry()
                .with_models(["gpt-4o".to_string(), "llama3:8b".to_string()]),
        )
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = client
            .generate(LlmRequest::new("hi").provider("openai"))
            .await
            .unwrap();
        assert_eq!(r.provider, "ollama");
    }
    let text = reg.encode();
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="gpt-4o",operation="chat",provider="openai",status="error"}"#
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="llama3:8b",operation="chat",provider="ollama",status="success"}"#
        ),
        3.0,
        "{text}"
    );
    // The documented error-rate query: errors / all outcomes, per provider.
    let errors = value(
        &text,
        r#"llm_requests_total{model="gpt-4o",operation="chat",provider="openai",status="error"}"#,
    );
    let successes = value(
        &text,
        r#"llm_requests_total{model="gpt-4o",operation="chat",provider="openai",status="success"}"#,
    );
    assert_eq!(errors / (errors + successes), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_is_labelled_like_the_call_that_stored_it() {
    let reg = MetricsRegistry::new().unwrap();
    let p = Arc::new(
        ScriptedProvider::new("openai")
            .kind("openai")
            .models(["gpt-4o"])
            .reports_model("gpt-4o-2024-08-06")
            .otherwise(Reply::text("hello")),
    );
    let client = LlmClient::builder()
        .provider(p)
        .cache(Arc::new(MemoryCache::new(1 << 20)))
        .telemetry(reg.telemetry().with_models(["gpt-4o".to_string()]))
        .build()
        .unwrap();
    let first = client.generate(LlmRequest::new("hi")).await.unwrap();
    assert_eq!(first.model, "gpt-4o-2024-08-06");
    let hit = client.generate(LlmRequest::new("hi")).await.unwrap();
    assert!(hit.cached);
    assert_eq!(hit.model, "gpt-4o-2024-08-06");
    let text = reg.encode();
    for status in ["success", "cache_hit"] {
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"llm_requests_total{{model="gpt-4o",operation="chat",provider="openai",status="{status}"}}"#
                )
            ),
            1.0,
            "{status}:\n{text}"
        );
    }
    assert!(!text.contains(r#"model="other""#), "{text}");
}

fn one_strike_routing() -> RoutingConfig {
    RoutingConfig {
        health: HealthConfig {
            failure_threshold: 1,
            cooldown: Secs(Duration::from_secs(10)),
            ..HealthConfig::default()
        },
        ..RoutingConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_half_open_trial_ending_in_a_client_error_does_not_stick() {
    let p = Arc::new(
        ScriptedProvider::new("openai")
            .then(Reply::Error(ProviderError::http("openai", 500, "down")))
            .then(Reply::Error(ProviderError::http(
                "openai",
                400,
                "bad prompt",
            )))
            .otherwise(Reply::text("ok")),
    );
    // A long provider timeout: the trial TTL would block for 300 s.
    let client = LlmClient::builder()
        .provider(p.clone())
        .routing(RoutingConfig {
            retry: llm_core::config::RetryConfig {
                max_retries: 0,
                ..Default::default()
            },
            ..one_strike_routing()
        })
        .no_cache()
        .build()
        .unwrap();
    assert!(client.generate(LlmRequest::new("a")).await.is_err());
    assert_eq!(client.health()[0].circuit, CircuitState::Open);
    tokio::time::advance(Duration::from_secs(11)).await;
    // The trial: a 400, which says nothing about health.
    assert!(client.generate(LlmRequest::new("b")).await.is_err());
    // The next request is tried at once (not refused until the trial TTL).
    let r = client.generate(LlmRequest::new("c")).await.unwrap();
    assert_eq!(r.content, "ok");
    assert_eq!(client.health()[0].circuit, CircuitState::Closed);
    assert_eq!(p.calls(), 3);
}

/// With a healthy second instance no last resort hides a stuck trial: the
/// router itself must see the circuit free again.
#[tokio::test(start_paused = true)]
async fn a_released_trial_is_routable_again_at_once() {
    let p = Arc::new(
        ScriptedProvider::new("openai")
            .then(Reply::Error(ProviderError::http("openai", 500, "down")))
            .then(Reply::Error(ProviderError::http(
                "openai",
                400,
                "bad prompt",
            )))
            .then(Reply::Hang)
            .otherwise(Reply::text("ok")),
    );
    let other = Arc::new(ScriptedProvider::new("other").otherwise(Reply::text("other")));
    let client = LlmClient::builder()
        .provider(p.clone())
        .provider(other)
        .routing(RoutingConfig {
            retry: llm_core::config::RetryConfig {
                max_retries: 0,
                ..Default::default()
            },
            ..one_strike_routing()
        })
        .no_cache()
        .build()
        .unwrap();
    let named = |q: &str| LlmRequest::new(q).provider("openai");
    assert_eq!(client.generate(named("a")).await.unwrap().provider, "other");
    tokio::time::advance(Duration::from_secs(11)).await;
    // The trial ends in a 400: openai is plannable again at once.
    let _ = client.generate(named("b")).await;
    let plan = client.explain(&named("c"));
    assert_eq!(plan.primary(), Some("openai"), "{plan}");
    // A trial whose caller goes away is released too.
    let trial = tokio::spawn({
        let c = client.clone();
        async move { c.generate(LlmRequest::new("d").provider("openai")).await }
    });
    for _ in 0..100 {
        if p.calls() == 3 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(p.calls(), 3, "the hanging trial is in flight");
    trial.abort();
    let _ = trial.await;
    let plan = client.explain(&named("e"));
    assert_eq!(plan.primary(), Some("openai"), "{plan}");
}

#[tokio::test]
async fn needs_no_single_instance_covers_are_refused_naming_a_field() {
    use llm_core::{Capability, LlmError, ResponseFormat, Tool};
    let tools_only = Arc::new(ScriptedProvider::new("a").tools(true));
    let json_only = Arc::new(ScriptedProvider::new("b").capability(Capability::JsonObject));
    let client = LlmClient::builder()
        .provider(tools_only)
        .provider(json_only)
        .no_cache()
        .build()
        .unwrap();
    let req = LlmRequest::new("q")
        .tool(Tool::function(
            "f",
            "d",
            serde_json::json!({"type": "object"}),
        ))
        .response_format(ResponseFormat::JsonObject);
    let err = client.generate(req).await.unwrap_err();
    let LlmError::Unsupported { field, .. } = &err else {
        panic!("expected Unsupported, got {err:?}");
    };
    assert!(field == "tools" || field == "response_format", "{field}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_failing_midway_updates_the_circuit_gauges() {
    use futures::StreamExt;
    use llm_core::StreamEvent;
    let reg = MetricsRegistry::new().unwrap();
    let p = Arc::new(ScriptedProvider::new("openai").then(Reply::Stream(vec![
        Ok(StreamEvent::delta("partial")),
        Err(ProviderError::http("openai", 503, "overloaded")),
    ])));
    let client = LlmClient::builder()
        .provider(p)
        .routing(one_strike_routing())
        .no_cache()
        .telemetry(reg.telemetry())
        .build()
        .unwrap();
    let mut s = client.stream(LlmRequest::new("q")).await.unwrap();
    while let Some(item) = s.next().await {
        if item.is_err() {
            break;
        }
    }
    assert_eq!(client.health()[0].circuit, CircuitState::Open);
    let text = reg.encode();
    assert_eq!(
        value(&text, r#"llm_circuit_state{provider="openai"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(value(&text, "llm_active_providers"), 0.0, "{text}");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_circuit_opens() {
    let p = Arc::new(
        ScriptedProvider::new("openai")
            .otherwise(Reply::Error(ProviderError::http("openai", 503, "busy"))),
    );
    let client = LlmClient::builder()
        .provider(p.clone())
        .routing(RoutingConfig {
            retry: llm_core::config::RetryConfig {
                max_retries: 5,
                ..Default::default()
            },
            ..one_strike_routing()
        })
        .no_cache()
        .build()
        .unwrap();
    assert!(client.generate(LlmRequest::new("a")).await.is_err());
    // The first failure opened the circuit: no retry asked it in vain.
    assert_eq!(p.calls(), 1);
    // After the cooldown, a failed half-open trial is not retried either.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(client.generate(LlmRequest::new("b")).await.is_err());
    assert_eq!(p.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn failed_probes_back_off_from_one_second() {
    let p = Arc::new(ScriptedProvider::new("openai").otherwise(Reply::text("ok")));
    p.set_available(false);
    let client = LlmClient::builder()
        .provider(p.clone())
        .no_cache()
        .build()
        .unwrap();
    client.refresh_health().await;
    assert_eq!(client.health()[0].available, Some(false));
    assert!(client.health()[0].probe_error.is_some());
    p.set_available(true);
    // Within a second the failed probe still stands: only a last resort.
    let plan = client.explain(&LlmRequest::new("x"));
    assert!(plan.sequence[0].last_resort, "{plan}");
    // A second later a request's planning re-probes it in the background
    // (not after the 30 s check interval).
    tokio::time::advance(Duration::from_millis(1_100)).await;
    let checks = p.availability_checks();
    let _ = client.generate(LlmRequest::new("x")).await;
    for _ in 0..100 {
        if p.availability_checks() > checks {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(p.availability_checks() > checks);
    for _ in 0..100 {
        if client.health()[0].available == Some(true) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(client.health()[0].available, Some(true));
}

#[tokio::test(start_paused = true)]
async fn gauges_show_half_open_and_background_probes() {
    let reg = MetricsRegistry::new().unwrap();
    let p = Arc::new(
        ScriptedProvider::new("openai")
            .then(Reply::Error(ProviderError::http("openai", 500, "down")))
            .then(Reply::Hang),
    );
    let client = LlmClient::builder()
        .provider(p.clone())
        .routing(RoutingConfig {
            retry: llm_core::config::RetryConfig {
                max_retries: 0,
                ..Default::default()
            },
            ..one_strike_routing()
        })
        .no_cache()
        .telemetry(reg.telemetry())
        .build()
        .unwrap();
    assert!(client.generate(LlmRequest::new("a")).await.is_err());
    let text = reg.encode();
    assert_eq!(
        value(&text, r#"llm_circuit_state{provider="openai"}"#),
        2.0,
        "{text}"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    // The trial hangs: while it is in flight the gauge says half-open.
    let trial = tokio::spawn({
        let c = client.clone();
        async move { c.generate(LlmRequest::new("b")).await }
    });
    for _ in 0..100 {
        if p.calls() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let text = reg.encode();
    assert_eq!(
        value(&text, r#"llm_circuit_state{provider="openai"}"#),
        1.0,
        "{text}"
    );
    trial.abort();
    let _ = trial.await;

    // A background probe that finds the provider down updates the gauge.
    let reg2 = MetricsRegistry::new().unwrap();
    let q = Arc::new(ScriptedProvider::new("q").otherwise(Reply::text("ok")));
    let client = LlmClient::builder()
        .provider(q.clone())
        .no_cache()
        .telemetry(reg2.telemetry())
        .build()
        .unwrap();
    assert_eq!(value(&reg2.encode(), "llm_active_providers"), 1.0);
    q.set_available(false);
    let _ = client.explain(&LlmRequest::new("x"));
    let _ = client.generate(LlmRequest::new("x")).await;
    for _ in 0..100 {
        if value(&reg2.encode(), "llm_active_providers") == 0.0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(value(&reg2.encode(), "llm_active_providers"), 0.0);
}

/// A remote-like cache whose writes take an hour.
struct SlowCache {
    writes: AtomicU32,
}

#[async_trait]
impl ResponseCache for SlowCache {
    fn name(&self) -> &str {
        "slow"
    }

    async fn get(&self, _key: &CacheKey) -> Result<Option<CachedResponse>, CacheError> {
        Ok(None)
    }

    async fn set(
        &self,
        _key: &CacheKey,
        _value: &CachedResponse,
        _ttl: Duration,
    ) -> Result<(), CacheError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_cache_write_does_not_delay_the_answer() {
    let cache = Arc::new(SlowCache {
        writes: AtomicU32::new(0),
    });
    let client = LlmClient::builder()
        .provider(Arc::new(
            ScriptedProvider::new("p").otherwise(Reply::text("fast")),
        ))
        .cache(cache.clone())
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let r = client.generate(LlmRequest::new("q")).await.unwrap();
    assert_eq!(r.content, "fast");
    // Paused time: the answer came without waiting for the hour-long write.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(cache.writes.load(Ordering::SeqCst), 0);
    // The write still completes in the background.
    tokio::time::sleep(Duration::from_secs(3601)).await;
    assert_eq!(cache.writes.load(Ordering::SeqCst), 1);
}
