//! Metrics exposition after scripted traffic: every series of the contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::StreamExt;
use llm_core::config::RoutingConfig;
use llm_core::metrics::MetricsRegistry;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{LlmClient, LlmRequest, ProviderError, ProviderProfile};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("series `{series}` missing in:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_series_is_exposed_with_its_labels_and_values() {
    let reg = MetricsRegistry::new().unwrap();
    let openai = Arc::new(
        ScriptedProvider::new("openai")
            .kind("openai")
            .profile(ProviderProfile {
                models: vec!["gpt-4o".into()],
                default_model: Some("gpt-4o".into()),
                cost_per_1k_tokens: 1.0,
                ..Default::default()
            })
            .otherwise(Reply::text("remote answer")),
    );
    let ollama = Arc::new(
        ScriptedProvider::new("ollama")
            .kind("ollama")
            .local(true)
            .models(["llama3:8b"])
            .then(Reply::text("local answer"))
            .then(Reply::Error(ProviderError::http("ollama", 503, "busy")))
            .then(Reply::text("after retry"))
            .then(Reply::Error(ProviderError::http(
                "ollama",
                404,
                "model not found",
            ))),
    );
    let client = LlmClient::builder()
        .provider(openai.clone())
        .provider(ollama.clone())
        .routing(RoutingConfig::default())
        .telemetry(
            reg.telemetry()
                .with_models(["gpt-4o".to_string(), "llama3:8b".to_string()]),
        )
        .build()
        .unwrap();

    // 1. success on ollama; 2. same request again: cache hit.
    let req = LlmRequest::new("Hello").max_tokens(100);
    client.generate(req.clone()).await.unwrap();
    let hit = client.generate(req).await.unwrap();
    assert!(hit.cached);
    // 3. a retry then success on ollama.
    client
        .generate(LlmRequest::new("second").max_tokens(100))
        .await
        .unwrap();
    // 4. ollama fails (404) → fallback to openai.
    let r = client
        .generate(LlmRequest::new("third").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(r.provider, "openai");
    // 5. a stream on openai.
    let s = client
        .stream(
            LlmRequest::new("stream me")
                .provider("openai")
                .max_tokens(4000),
        )
        .await
        .unwrap();
    let _: Vec<_> = s.collect().await;
    // 6. a model openai does not serve is adapted to its default model.
    client
        .generate(
            LlmRequest::new("x")
                .provider("openai")
                .model("mystery")
                .max_tokens(4000),
        )
        .await
        .unwrap();

    let text = reg.encode();
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="llama3:8b",operation="chat",provider="ollama",status="success"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="llama3:8b",operation="chat",provider="ollama",status="cache_hit"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="gpt-4o",operation="chat",provider="openai",status="success"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"llm_response_time_seconds_count{model="llama3:8b",operation="chat",provider="ollama"}"#
        ),
        2.0
    );
    assert!(
        text.contains(
            r#"llm_response_time_seconds_bucket{model="gpt-4o",operation="chat",provider="openai",le="300"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"le="0.05""#),
        "second-scale buckets: {text}"
    );
    assert_eq!(
        value(
            &text,
            r#"llm_time_to_first_token_seconds_count{model="gpt-4o",provider="openai"}"#
        ),
        1.0
    );
    // "remote answer" scripted usage: prompt chars in, answer chars out.
    assert_eq!(
        value(
            &text,
            r#"llm_tokens_used_total{model="gpt-4o",operation="chat",provider="openai",type="output"}"#
        ),
        39.0
    );
    assert!(
        value(
            &text,
            r#"llm_cost_total{model="gpt-4o",operation="chat",provider="openai"}"#
        ) > 0.0
    );
    assert_eq!(
        value(
            &text,
            r#"llm_cost_total{model="llama3:8b",operation="chat",provider="ollama"}"#
        ),
        0.0
    );
    assert_eq!(
        value(&text, r#"llm_cache_requests_total{result="hit"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"llm_cache_requests_total{result="miss"}"#),
        5.0
    );
    assert_eq!(
        value(&text, r#"llm_fallbacks_total{from="ollama",to="openai"}"#),
        1.0
    );
    assert_eq!(value(&text, r#"llm_retries_total{provider="ollama"}"#), 1.0);
    assert_eq!(value(&text, "llm_active_providers"), 2.0);
    assert_eq!(value(&text, r#"llm_circuit_state{provider="ollama"}"#), 0.0);
    assert!(!text.contains("otel_scope"), "no scope labels: {text}");
}

#[tokio::test]
async fn errors_are_counted_per_provider() {
    let reg = MetricsRegistry::new().unwrap();
    let bad = Arc::new(
        ScriptedProvider::new("bad")
            .models(["m"])
            .otherwise(Reply::Error(ProviderError::http("bad", 401, "no"))),
    );
    let client = LlmClient::builder()
        .provider(bad)
        .no_cache()
        .telemetry(reg.telemetry())
        .build()
        .unwrap();
    assert!(client.generate(LlmRequest::new("x")).await.is_err());
    let text = reg.encode();
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="m",operation="chat",provider="bad",status="error"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_endpoint_serves_the_registry_over_http() {
    let reg = Arc::new(MetricsRegistry::new().unwrap());
    reg.telemetry().gateway_overhead("chat", 0.0001);
    let server = llm_core::metrics::serve(reg.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = reqwest::get(format!("http://{}/metrics", server.local_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(r#"llm_gateway_overhead_seconds_count{api="chat"} 1"#),
        "{body}"
    );
    let other = reqwest::get(format!("http://{}/other", server.local_addr()))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn unconfigured_models_fold_into_other() {
    let reg = MetricsRegistry::new().unwrap();
    // No model list: the provider passes any model through.
    let open = Arc::new(ScriptedProvider::new("open"));
    let client = LlmClient::builder()
        .provider(open)
        .no_cache()
        .telemetry(reg.telemetry().with_models(["known".to_string()]))
        .build()
        .unwrap();
    client
        .generate(LlmRequest::new("x").model("random-123"))
        .await
        .unwrap();
    client
        .generate(LlmRequest::new("x").model("known"))
        .await
        .unwrap();
    let text = reg.encode();
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="other",operation="chat",provider="open",status="success"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"llm_requests_total{model="known",operation="chat",provider="open",status="success"}"#
        ),
        1.0
    );
    assert!(!text.contains("random-123"));
}

#[tokio::test]
async fn monitoring_config_starts_the_endpoint_on_a_free_port() {
    use llm_core::config::MonitoringConfig;
    let off = MonitoringConfig {
        enabled: false,
        ..Default::default()
    };
    assert!(llm_core::metrics::serve_monitoring(&off)
        .await
        .unwrap()
        .is_none());
    let on = MonitoringConfig {
        prometheus_port: 0,
        ..Default::default()
    };
    let server = llm_core::metrics::serve_monitoring(&on)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(server.local_addr().port(), 0, "the chosen port is reported");
    let resp = reqwest::get(format!("http://{}/metrics", server.local_addr()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
}
