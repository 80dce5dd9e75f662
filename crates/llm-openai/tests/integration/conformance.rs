//! The shared provider conformance suite, run against the bytes the OpenAI
//! Chat Completions API sends (protocols.md §2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Links the crate, so its `inventory` registration is in this test binary.
#[allow(unused_extern_crates)]
extern crate llm_openai;

use std::sync::Arc;
use std::time::Duration;

use llm_core::registry;
use llm_core::testing::{ConformanceTarget, Fixtures, MockReply};
use llm_core::{ConfigError, FinishReason, Provider, ProviderProfile, ProviderSpec, Usage};

use llm_openai::fixtures::{COMPLETION, MODELS, STREAM, UNAUTHORIZED};

const SECRET: &str = "sk-proj-conformance-S3CRET-0123456789abcdef";
const REQUEST_ID: &str = "req_0c9e5a8d1b7f4e3a9d2c6b1e8f4a7d30";

/// The same stream shape (§2.3 chunk layout) with Chinese text.
const STREAM_CJK: &[&str] = &[
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"kQ2\"}\n\n",
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"T7xWq\"}\n\n",
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"，世界！\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"m\"}\n\n",
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"创作愉快。\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Hb81\"}\n\n",
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"x0\"}\n\n",
    "data: {\"id\":\"chatcmpl-D1aB2cD3eF4gH5iJ6kL7mN8oP9qR0s\",\"object\":\"chat.completion.chunk\",\"created\":1756300002,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[],\"usage\":{\"prompt_tokens\":18,\"completion_tokens\":9,\"total_tokens\":27,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"Zq\"}\n\n",
    "data: [DONE]\n\n",
];

/// §2.3: an error payload after the stream started (exact server bytes unconfirmed).
const STREAM_ERROR_EVENT: &str = "data: {\"error\":{\"message\":\"The server had an error while processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

const MODEL_NOT_FOUND: &str = r#"{
  "error": {
    "message": "The model `gpt-4o` does not exist or you do not have access to it.",
    "type": "invalid_request_error",
    "param": null,
    "code": "model_not_found"
  }
}"#;

const RATE_LIMITED: &str = r#"{
  "error": {
    "message": "Request too large for gpt-4o in organization org-XXXX on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
    "type": "tokens",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#;

/// 500 `server_error` (§2.5; the exact message is not documented).
const SERVER_ERROR: &str = r#"{
  "error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": null,
    "code": null
  }
}"#;

/// 503 (§2.5: body unconfirmed; the standard error shape is assumed).
const UNAVAILABLE: &str = r#"{
  "error": {
    "message": "The engine is currently overloaded, please try again later.",
    "type": "server_error",
    "param": null,
    "code": null
  }
}"#;

fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        events.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
    .header("x-request-id", "req_5e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b")
}

fn error_reply(status: u16, body: &str) -> MockReply {
    MockReply::json(status, body).header("x-request-id", REQUEST_ID)
}

/// The OpenAI provider under the conformance suite.
pub struct OpenAi;

impl ConformanceTarget for OpenAi {
    fn fixtures(&self) -> Fixtures {
        let models = MockReply::json(200, MODELS);
        let completion = MockReply::json(200, COMPLETION)
            .header("openai-organization", "org-REDACTED")
            .header("openai-processing-ms", "312")
            .header("openai-version", "2020-10-01")
            .header("x-ratelimit-limit-requests", "10000")
            .header("x-ratelimit-limit-tokens", "10000000")
            .header("x-ratelimit-remaining-requests", "9999")
            .header("x-ratelimit-remaining-tokens", "9999975")
            .header("x-ratelimit-reset-requests", "6ms")
            .header("x-ratelimit-reset-tokens", "0s")
            .header("x-request-id", "req_7b4c1e2f9a0d4e6b8c3f5a1d2e9b0c47");
        Fixtures {
            generate_path: "/v1/chat/completions".into(),
            stream_path: "/v1/chat/completions".into(),
            models_path: "/v1/models".into(),
            healthy: vec![("GET".into(), "/v1/models".into(), models.clone())],
            completion,
            completion_text: "Hello!".into(),
            completion_usage: Usage::new(20, 2),
            completion_finish: FinishReason::Stop,
            stream: sse(STREAM),
            stream_text: "Hello!".into(),
            stream_usage: Some(Usage::new(20, 2)),
            stream_cjk: sse(STREAM_CJK),
            stream_cjk_text: "你好，世界！创作愉快。".into(),
            stream_truncated: sse(&STREAM[..STREAM.len() - 1]),
            stream_error: Some(sse(&[STREAM[0], STREAM[1], STREAM_ERROR_EVENT])),
            models,
            model_ids: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
            unauthorized: error_reply(401, UNAUTHORIZED),
            model_not_found: error_reply(404, MODEL_NOT_FOUND),
            rate_limited: error_reply(429, RATE_LIMITED)
                .header("retry-after", "20")
                .header("x-ratelimit-limit-tokens", "30000")
                .header("x-ratelimit-remaining-tokens", "0")
                .header("x-ratelimit-reset-tokens", "6m0s"),
            rate_limited_wait: Duration::from_secs(20),
            server_error: error_reply(500, SERVER_ERROR),
            unavailable: error_reply(503, UNAVAILABLE),
            overloaded: None,
            request_id: Some(REQUEST_ID.into()),
        }
    }

    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError> {
        let profile = ProviderProfile {
            models: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
            default_model: Some("gpt-4o-mini".into()),
            timeout,
            ..Default::default()
        };
        let spec = ProviderSpec::new("openai-main", "openai", profile)
            .option("base_url", format!("{base_url}/v1"))
            .option("api_key", SECRET);
        registry::build_spec(&spec)
    }

    fn secret(&self) -> Option<&str> {
        Some(SECRET)
    }
}

llm_core::conformance_tests!(OpenAi);

#[test]
fn the_kind_is_registered() {
    assert!(registry::kinds().contains(&"openai"));
}
