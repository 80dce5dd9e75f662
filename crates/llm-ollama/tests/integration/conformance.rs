//! The shared provider conformance suite against Ollama's native API bytes
//! (protocols reference, section 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{ConformanceTarget, Fixtures, MockReply};
use llm_core::{ConfigError, FinishReason, Provider, ProviderProfile, ProviderSpec, Usage};

/// A header value configured through `headers`, checked never to leak.
const SECRET: &str = "Bearer sk-ollama-proxy-secret-123";

const JSON: &str = "application/json; charset=utf-8";
const NDJSON: &str = "application/x-ndjson";

/// Section 3.10, non-streaming response (no trailing newline).
const COMPLETION: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

/// Section 3.10, streamed response, one line each.
const STREAM: [&str; 3] = [
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.141516171Z\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n",
];

/// The same stream shape in Chinese (raw UTF-8, as Go writes non-ASCII text),
/// with the last fragment on the `done: true` line, which the server may do.
const STREAM_CJK: [&str; 3] = [
    "{\"model\":\"qwen:7b\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"你好\"},\"done\":false}\n",
    "{\"model\":\"qwen:7b\",\"created_at\":\"2025-08-27T10:15:02.141516171Z\",\"message\":{\"role\":\"assistant\",\"content\":\"，世界\"},\"done\":false}\n",
    "{\"model\":\"qwen:7b\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"！\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":12,\"prompt_eval_duration\":98765432,\"eval_count\":4,\"eval_duration\":45678901}\n",
];

/// Section 3.9: the mid-stream error line; the stream then ends.
const STREAM_ERROR_LINE: &str =
    "{\"error\":\"an error was encountered while running the model\"}\n";

/// Section 3.5, `GET /api/tags`, as the server writes it (compact, Go key order).
const TAGS: &str = r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-05-04T17:37:44.706015396-07:00","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}"#;

struct Ollama;

fn lines(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|l| l.as_bytes().to_vec()).collect()
}

impl ConformanceTarget for Ollama {
    fn fixtures(&self) -> Fixtures {
        Fixtures {
            generate_path: "/api/chat".into(),
            stream_path: "/api/chat".into(),
            models_path: "/api/tags".into(),
            healthy: vec![(
                "GET".into(),
                "/api/version".into(),
                MockReply::new(200, JSON, r#"{"version":"0.5.1"}"#),
            )],
            completion: MockReply::new(200, JSON, COMPLETION),
            completion_text: "Hello!".into(),
            completion_usage: Usage::new(31, 2),
            completion_finish: FinishReason::Stop,
            stream: MockReply::chunked(200, NDJSON, lines(&STREAM)),
            stream_text: "Hello!".into(),
            stream_usage: Some(Usage::new(31, 2)),
            stream_cjk: MockReply::chunked(200, NDJSON, lines(&STREAM_CJK)),
            stream_cjk_text: "你好，世界！".into(),
            stream_truncated: MockReply::chunked(200, NDJSON, lines(&STREAM[..2])),
            stream_error: Some(MockReply::chunked(
                200,
                NDJSON,
                lines(&[STREAM[0], STREAM_ERROR_LINE]),
            )),
            models: MockReply::new(200, JSON, TAGS),
            model_ids: vec!["llama3.2:latest".into()],
            // A local server has no keys; a hosted or proxied one answers 401.
            unauthorized: MockReply::new(401, JSON, r#"{"error":"unauthorized"}"#),
            model_not_found: MockReply::new(404, JSON, r#"{"error":"model 'llama9' not found"}"#),
            rate_limited: MockReply::new(429, JSON, r#"{"error":"too many requests"}"#)
                .header("retry-after", "2"),
            rate_limited_wait: Duration::from_secs(2),
            server_error: MockReply::new(500, JSON, r#"{"error":"internal server error"}"#),
            unavailable: MockReply::new(
                503,
                JSON,
                r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
            ),
            overloaded: None,
            request_id: None,
        }
    }

    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError> {
        let profile = ProviderProfile {
            local: true,
            models: vec!["llama3.2".into()],
            default_model: Some("llama3.2".into()),
            timeout,
            ..ProviderProfile::default()
        };
        let headers =
            toml::Table::from_iter([("Authorization".to_string(), toml::Value::from(SECRET))]);
        let spec = ProviderSpec::new("ollama", "ollama", profile)
            .option("base_url", base_url)
            .option("headers", headers);
        llm_ollama::build(&spec)
    }

    fn secret(&self) -> Option<&str> {
        Some(SECRET)
    }
}

llm_core::conformance_tests!(Ollama);
