//! The shared provider conformance suite against Anthropic's real bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{ConformanceTarget, Fixtures};
use llm_core::{ConfigError, FinishReason, Provider, ProviderProfile, ProviderSpec, Usage};

use common::*;

struct Anthropic;

impl ConformanceTarget for Anthropic {
    fn fixtures(&self) -> Fixtures {
        Fixtures {
            generate_path: "/v1/messages".into(),
            stream_path: "/v1/messages".into(),
            models_path: "/v1/models".into(),
            healthy: vec![(
                "GET".into(),
                "/v1/models".into(),
                llm_core::testing::MockReply::json(200, MODELS),
            )],
            completion: completion(),
            completion_text: "Hello!".into(),
            completion_usage: Usage::new(16, 5),
            completion_finish: FinishReason::Stop,
            stream: stream(),
            stream_text: "Hello!".into(),
            stream_usage: Some(Usage::new(16, 5)),
            stream_cjk: sse(STREAM_CJK_EVENTS),
            stream_cjk_text: STREAM_CJK_TEXT.into(),
            stream_truncated: stream_truncated(),
            stream_error: Some(stream_error()),
            models: llm_core::testing::MockReply::json(200, MODELS),
            model_ids: vec![MODEL.into()],
            unauthorized: unauthorized(),
            model_not_found: model_not_found(),
            rate_limited: rate_limited(),
            rate_limited_wait: Duration::from_secs(RETRY_AFTER_SECS),
            server_error: server_error(),
            unavailable: unavailable(),
            overloaded: Some(overloaded()),
            // The captured error replies carry different ids (or none); request
            // ids are checked per reply in provider.rs.
            request_id: None,
        }
    }

    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError> {
        let profile = ProviderProfile {
            default_model: Some(MODEL.into()),
            timeout,
            ..ProviderProfile::default()
        };
        // The key is also the password of credentials in the URL (sent as
        // basic authentication), so every secrecy check of the suite covers
        // both.
        let base_url = base_url.replacen("://", &format!("://proxy:{SECRET}@"), 1);
        let spec = ProviderSpec::new("claude", "anthropic", profile)
            .option("api_key", SECRET)
            .option("base_url", base_url);
        Ok(Arc::new(llm_anthropic::AnthropicProvider::from_spec(
            &spec,
        )?))
    }

    fn secret(&self) -> Option<&str> {
        Some(SECRET)
    }
}

llm_core::conformance_tests!(Anthropic);
