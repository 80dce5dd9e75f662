//! Conformance of a chat-style template with SSE streaming, no reported usage
//! (so token counts are estimated) and no models endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{ConformanceTarget, Fixtures, MockReply};
use llm_core::{ConfigError, FinishReason, Provider, ProviderProfile, ProviderSpec, Usage};

const KEY: &str = "sk-custom-sse-0b7d51aa";

struct ChatSseEstimated;

fn sse(events: &[&str]) -> MockReply {
    let pieces = events
        .iter()
        .map(|e| format!("{e}\n\n").into_bytes())
        .collect();
    MockReply::chunked(200, "text/event-stream", pieces)
}

fn estimated(prompt: &str, completion: &str) -> Usage {
    Usage::new(
        llm_core::tokens::estimate_tokens(prompt),
        llm_core::tokens::estimate_tokens(completion),
    )
}

impl ConformanceTarget for ChatSseEstimated {
    fn fixtures(&self) -> Fixtures {
        Fixtures {
            generate_path: "/api/chat".into(),
            stream_path: "/api/chat/stream".into(),
            // No `models_path` is configured: `models()` lists the profile's models.
            models_path: "/unused".into(),
            healthy: vec![(
                "GET".into(),
                "/healthz".into(),
                MockReply::new(200, "text/plain", "ok"),
            )],
            completion: MockReply::json(200, r#"{"text":"Hello!","error":null}"#),
            completion_text: "Hello!".into(),
            // "Say hello." has 9 characters besides spaces (3 tokens), "Hello!" 6 (2 tokens).
            completion_usage: Usage::new(3, 2),
            completion_finish: FinishReason::Stop,
            stream: sse(&[
                r#"data: {"delta":"Hel"}"#,
                r#"data: {"delta":"lo!"}"#,
                "data: [DONE]",
            ]),
            stream_text: "Hello!".into(),
            stream_usage: Some(estimated("Say hello.", "Hello!")),
            stream_cjk: sse(&[
                r#"data: {"delta":"你好"}"#,
                r#"data: {"delta":"，世界！"}"#,
                "data: [DONE]",
            ]),
            stream_cjk_text: "你好，世界！".into(),
            stream_truncated: sse(&[r#"data: {"delta":"Hel"}"#, r#"data: {"delta":"lo!"}"#]),
            stream_error: Some(sse(&[
                r#"data: {"delta":"Hel"}"#,
                r#"data: {"detail":"worker crashed"}"#,
            ])),
            models: MockReply::json(200, "{}"),
            model_ids: vec!["chat-7b".into(), "chat-70b".into()],
            unauthorized: MockReply::json(401, r#"{"detail":"Not authenticated"}"#),
            model_not_found: MockReply::json(404, r#"{"detail":"unknown model"}"#),
            rate_limited: MockReply::json(429, r#"{"detail":"too many requests"}"#)
                .header("retry-after", "2"),
            rate_limited_wait: Duration::from_secs(2),
            server_error: MockReply::new(500, "text/plain", "Internal Server Error"),
            unavailable: MockReply::json(503, r#"{"detail":"overloaded"}"#),
            overloaded: None,
            request_id: None,
        }
    }

    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError> {
        let profile = ProviderProfile {
            models: vec!["chat-7b".into(), "chat-70b".into()],
            default_model: Some("chat-7b".into()),
            timeout,
            cost_per_1k_tokens: 0.005,
            ..Default::default()
        };
        let template: toml::Table = toml::from_str(
            r#"
            model = "{{model}}"
            messages = "{{messages}}"
            options = { num_predict = "{{max_tokens}}", temperature = "{{temperature}}" }
            "#,
        )
        .unwrap();
        let spec = ProviderSpec::new("chat", llm_custom::KIND, profile)
            .option("base_url", base_url)
            .option("api_key", KEY)
            .option("generate_path", "/api/chat")
            .option("health_path", "/healthz")
            .option("request_template", template)
            .option("error_pointer", "/detail")
            .option("stream", "sse")
            .option("stream_path", "/api/chat/stream")
            .option("stream_flag", "stream");
        llm_core::registry::build_spec(&spec)
    }

    fn secret(&self) -> Option<&str> {
        Some(KEY)
    }
}

llm_core::conformance_tests!(ChatSseEstimated);
