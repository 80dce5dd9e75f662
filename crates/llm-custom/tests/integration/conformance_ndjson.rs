//! Conformance of the default API shape with reported usage and NDJSON streaming.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{ConformanceTarget, Fixtures, MockReply};
use llm_core::{ConfigError, FinishReason, Provider, ProviderProfile, ProviderSpec, Usage};

const KEY: &str = "sk-custom-ndjson-4f9c2e71";
const REQUEST_ID: &str = "req-custom-0001";

/// The original design's API: `POST /generate` answering `{"content": …}`,
/// usage reported under `usage`, and NDJSON streaming ended by `"done": true`.
struct DefaultShapeNdjson;

fn ndjson(lines: &[&str]) -> MockReply {
    let pieces = lines
        .iter()
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    MockReply::chunked(200, "application/x-ndjson", pieces)
}

fn error(status: u16, body: &str) -> MockReply {
    MockReply::json(status, body).header("x-request-id", REQUEST_ID)
}

impl ConformanceTarget for DefaultShapeNdjson {
    fn fixtures(&self) -> Fixtures {
        Fixtures {
            generate_path: "/generate".into(),
            stream_path: "/generate".into(),
            models_path: "/models".into(),
            healthy: vec![(
                "GET".into(),
                "/health".into(),
                MockReply::json(200, r#"{"status":"ok"}"#),
            )],
            completion: MockReply::json(
                200,
                r#"{"content":"Hello!","model":"private-model","finish_reason":"stop","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
            ),
            completion_text: "Hello!".into(),
            completion_usage: Usage::new(5, 2),
            completion_finish: FinishReason::Stop,
            stream: ndjson(&[
                r#"{"delta":"Hel"}"#,
                r#"{"delta":"lo!"}"#,
                r#"{"delta":"","done":true,"finish_reason":"stop","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
            ]),
            stream_text: "Hello!".into(),
            stream_usage: Some(Usage::new(5, 2)),
            stream_cjk: ndjson(&[
                r#"{"delta":"你好"}"#,
                r#"{"delta":"，世界！"}"#,
                r#"{"done":true,"finish_reason":"stop","usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#,
            ]),
            stream_cjk_text: "你好，世界！".into(),
            stream_truncated: ndjson(&[r#"{"delta":"Hel"}"#, r#"{"delta":"lo!"}"#]),
            stream_error: Some(ndjson(&[
                r#"{"delta":"Hel"}"#,
                r#"{"error":"model crashed: CUDA out of memory"}"#,
            ])),
            models: MockReply::json(200, r#"{"models":["private-model","private-model-large"]}"#),
            model_ids: vec!["private-model".into(), "private-model-large".into()],
            unauthorized: error(401, r#"{"error":"invalid api key"}"#),
            model_not_found: error(404, r#"{"error":"model 'nope' not found"}"#),
            rate_limited: error(
                429,
                r#"{"error":{"message":"rate limit exceeded","code":"rate_limited"}}"#,
            )
            .header("retry-after", "7"),
            rate_limited_wait: Duration::from_secs(7),
            server_error: error(500, r#"{"error":"internal error"}"#),
            unavailable: error(503, r#"{"error":"model is loading"}"#),
            overloaded: None,
            request_id: Some(REQUEST_ID.into()),
        }
    }

    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError> {
        let profile = ProviderProfile {
            models: vec!["private-model".into(), "private-model-large".into()],
            default_model: Some("private-model".into()),
            timeout,
            cost_per_1k_tokens: 0.005,
            ..Default::default()
        };
        let spec = ProviderSpec::new("custom", llm_custom::KIND, profile)
            .option("base_url", base_url)
            .option("api_key", KEY)
            .option("models_path", "/models")
            .option("models_pointer", "/models")
            .option("prompt_tokens_pointer", "/usage/prompt_tokens")
            .option("completion_tokens_pointer", "/usage/completion_tokens")
            .option("total_tokens_pointer", "/usage/total_tokens")
            .option("finish_reason_pointer", "/finish_reason")
            .option("model_pointer", "/model")
            .option("stream", "ndjson")
            .option("stream_flag", "stream");
        llm_core::registry::build_spec(&spec)
    }

    fn secret(&self) -> Option<&str> {
        Some(KEY)
    }
}

llm_core::conformance_tests!(DefaultShapeNdjson);
