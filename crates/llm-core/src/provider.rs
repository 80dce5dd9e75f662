//! The [`Provider`] trait every backend implements, and its static profile.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cost::ModelPrice;
use crate::embed::{EmbeddingRequest, EmbeddingResponse};
use crate::error::ProviderError;
use crate::types::{Capability, LlmRequest, LlmResponse, ResponseStream};

/// How an instance's availability is probed (config key `probe`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeMode {
    /// The provider's own cheap check ([`Provider::check`]; usually its model list).
    #[default]
    Models,
    /// No probe: the instance counts as available; real outcomes and the
    /// circuit breaker decide (for restricted keys, proxies without `/models`).
    None,
    /// A one-token generation with the default model.
    Generate,
}

/// What the router and the cost accounting know about a provider instance.
///
/// Built from the common keys of the instance's configuration section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderProfile {
    /// Runs on this machine or network (free, private); preferred for simple tasks.
    pub local: bool,
    /// Models this instance serves.
    pub models: Vec<String>,
    /// Model used when a request names none, or one this instance does not serve.
    pub default_model: Option<String>,
    /// Largest `max_tokens` this instance accepts; requests are clamped to it.
    /// Providers that require a limit (Anthropic) send it when a request sets none.
    pub max_tokens: Option<u32>,
    /// Models that accept images; `None`: every model of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_models: Option<Vec<String>>,
    /// How availability is probed.
    #[serde(default)]
    pub probe: ProbeMode,
    /// Embedding models this instance serves (an embedding request for a
    /// model goes only to instances listing it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embedding_models: Vec<String>,
    /// Largest whole response body read from this instance, in bytes (a
    /// larger one is an error, never an unbounded allocation).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Per-attempt timeout.
    #[serde(with = "crate::types::duration_ms")]
    pub timeout: Duration,
    /// Fallback price in USD per 1,000 tokens (input and output alike).
    pub cost_per_1k_tokens: f64,
    /// Per-model prices; they win over `cost_per_1k_tokens`.
    pub pricing: BTreeMap<String, ModelPrice>,
}

impl Default for ProviderProfile {
    fn default() -> Self {
        Self {
            local: false,
            models: Vec::new(),
            default_model: None,
            max_tokens: None,
            vision_models: None,
            probe: ProbeMode::Models,
            embedding_models: Vec::new(),
            max_response_bytes: default_max_response_bytes(),
            timeout: Duration::from_secs(60),
            cost_per_1k_tokens: 0.0,
            pricing: BTreeMap::new(),
        }
    }
}

fn default_max_response_bytes() -> u64 {
    32 * 1024 * 1024
}

impl ProviderProfile {
    /// Whether `model` accepts images here (see [`vision_models`](Self::vision_models)).
    pub fn has_vision(&self, model: &str) -> bool {
        self.vision_models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == model))
    }

    /// Whether this instance serves `model` (an empty model list serves anything).
    pub fn serves(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }

    /// Whether `model` is what a request naming no model gets here (its
    /// [`resolve_model`](Self::resolve_model) of nothing): the model an
    /// instance's bare name stands for.
    pub fn is_default_model(&self, model: &str) -> bool {
        self.resolve_model(None).as_deref() == Some(model)
    }

    /// The model a request gets here: its own when served, else the default model,
    /// else the first listed model, else the request's model as it is.
    pub fn resolve_model(&self, requested: Option<&str>) -> Option<String> {
        match requested {
            Some(m) if self.serves(m) => Some(m.to_string()),
            _ => self
                .default_model
                .clone()
                .or_else(|| self.models.first().cloned())
                .or_else(|| requested.map(str::to_string)),
        }
    }
}

/// A backend that generates text: OpenAI, Ollama, Anthropic, a custom HTTP API, …
///
/// Implementations are cheap to share (`Arc<dyn Provider>`) and must be
/// cancellation-safe: dropping a returned future abandons the request.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Instance name from the configuration, e.g. `ollama` or `gpu-box`.
    fn name(&self) -> &str;

    /// Provider kind, e.g. `ollama`.
    fn kind(&self) -> &'static str;

    /// Static facts: locality, models, limits, prices.
    fn profile(&self) -> &ProviderProfile;

    /// Generates a complete answer.
    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError>;

    /// Whether the provider can serve requests that need `capability` with
    /// `model` (the model the request resolved to on this instance). The
    /// router never sends a request to a provider that lacks a capability it
    /// needs ([`LlmRequest::needs`]), not even as a last resort. The default
    /// has none.
    ///
    /// A provider with vision should answer [`Capability::Images`] with
    /// `self.profile().has_vision(model)`, so configuration can restrict it.
    fn supports(&self, capability: Capability, model: &str) -> bool {
        let _ = (capability, model);
        false
    }

    /// Embeds a batch: one vector per input, in order. `req.model` is the
    /// embedding model (always set by the client). The default says
    /// embeddings are not supported; a provider that implements this also
    /// answers [`Capability::Embeddings`] in [`supports`](Self::supports).
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        let _ = req;
        Err(ProviderError::unsupported(
            self.name(),
            format!("`{}` providers have no embeddings API", self.kind()),
        ))
    }

    /// Whether the provider maps tools, tool calls and tool results
    /// ([`LlmRequest::tools`], [`Message::tool_calls`](crate::Message::tool_calls))
    /// for some model: derived from [`supports`](Self::supports), which is
    /// what the router asks. Implement `supports`; overriding only this one
    /// does not route tool requests to the provider.
    fn supports_tools(&self) -> bool {
        self.supports(Capability::Tools, "")
    }

    /// Streams an answer. The default runs [`generate`](Self::generate) and
    /// replays its result as one delta, one fragment per tool call, usage and
    /// `Done`.
    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        Ok(ResponseStream::replay(self.generate(req).await?))
    }

    /// Gets the provider ready to serve: for example starts a local server or
    /// downloads its models. The client calls it once per instance, before the
    /// first attempt, when built with
    /// [`prepare_providers(true)`](crate::LlmClientBuilder::prepare_providers)
    /// (the `llm` command does); a failure counts as that attempt's failure.
    /// The default does nothing.
    async fn prepare(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether the provider can take requests now (a cheap probe).
    async fn is_available(&self) -> bool;

    /// The availability probe with its reason: `Err` says why the provider
    /// cannot take requests (an HTTP 401 is reported as such, not as "down").
    /// The default wraps [`is_available`](Self::is_available); providers that
    /// can tell why should override it.
    async fn check(&self) -> Result<(), ProviderError> {
        if self.is_available().await {
            Ok(())
        } else {
            Err(ProviderError::new(
                self.name(),
                crate::error::ProviderErrorKind::Connect,
                "unavailable (probe failed)",
            ))
        }
    }

    /// Models the provider offers.
    async fn models(&self) -> Result<Vec<String>, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_model_prefers_served_then_default() {
        let p = ProviderProfile {
            models: vec!["a".into(), "b".into()],
            default_model: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(p.resolve_model(Some("a")).as_deref(), Some("a"));
        assert_eq!(p.resolve_model(Some("zzz")).as_deref(), Some("b"));
        assert_eq!(p.resolve_model(None).as_deref(), Some("b"));
        let open = ProviderProfile::default();
        assert_eq!(open.resolve_model(Some("x")).as_deref(), Some("x"));
        assert_eq!(open.resolve_model(None), None);
    }
}
