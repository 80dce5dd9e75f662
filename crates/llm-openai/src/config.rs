//! The kind-specific keys of an `openai` provider section.

use std::collections::BTreeMap;

use llm_core::{ConfigError, ExposeSecret, ProviderSpec, SecretString};
use serde::Deserialize;

/// Base URL of the OpenAI API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Model names or prefixes (reasoning models) that get `max_completion_tokens`
/// unless `max_completion_tokens_models` is configured.
pub const DEFAULT_MAX_COMPLETION_TOKENS_MODELS: &[&str] = &["o1", "o3", "o4", "gpt-5"];

/// Model names or prefixes (reasoning models) that are sent no `temperature`
/// or `top_p` unless `no_sampling_params_models` is configured.
pub const DEFAULT_NO_SAMPLING_PARAMS_MODELS: &[&str] = &["o1", "o3", "o4", "gpt-5"];

/// Most inputs OpenAI accepts in one `POST /embeddings` request.
pub const DEFAULT_EMBEDDING_BATCH_SIZE: usize = 2048;

/// How embedding vectors are asked for (`embedding_encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingEncoding {
    /// `"encoding_format": "base64"`: little-endian `f32` bytes in base64,
    /// about a quarter of the JSON text and exactly the model's `f32` values
    /// (what OpenAI's official SDKs ask for).
    #[default]
    Base64,
    /// No `encoding_format` (the server default, JSON float arrays), for
    /// compatible servers that reject `base64`.
    Float,
}

/// Kind-specific configuration of an `openai` instance.
///
/// The common keys (`models`, `default_model`, `max_tokens`, `timeout`, prices,
/// `local`) are read by llm-core; unknown keys are errors naming file, line and key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// API key sent as `Authorization: Bearer …`; missing or empty sends no header.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Base URL; `/chat/completions` and `/models` are appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Sent as `OpenAI-Organization`.
    #[serde(default)]
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project`.
    #[serde(default)]
    pub project: Option<String>,
    /// Extra headers sent with every request (they override the built-in ones).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Model names or prefixes that get `max_completion_tokens` instead of `max_tokens`.
    #[serde(default = "default_mct_models")]
    pub max_completion_tokens_models: Vec<String>,
    /// Model names or prefixes that accept only the default sampling parameters;
    /// they are sent no `temperature` and no `top_p`.
    #[serde(default = "default_no_sampling_models")]
    pub no_sampling_params_models: Vec<String>,
    /// Ask for the final usage chunk when streaming (`stream_options.include_usage`).
    #[serde(default = "default_true")]
    pub stream_usage: bool,
    /// Whether the instance may be used without an API key. Default: `false` for
    /// `api.openai.com`, `true` for any other base URL (local compatible servers).
    #[serde(default)]
    pub allow_no_key: Option<bool>,
    /// Most inputs sent in one `POST /embeddings` request; larger batches
    /// are split and reassembled in order.
    #[serde(default = "default_embedding_batch_size")]
    pub embedding_batch_size: usize,
    /// How vectors are asked for: `base64` (default) or `float`.
    #[serde(default)]
    pub embedding_encoding: EmbeddingEncoding,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: default_base_url(),
            organization: None,
            project: None,
            headers: BTreeMap::new(),
            max_completion_tokens_models: default_mct_models(),
            no_sampling_params_models: default_no_sampling_models(),
            stream_usage: true,
            allow_no_key: None,
            embedding_batch_size: DEFAULT_EMBEDDING_BATCH_SIZE,
            embedding_encoding: EmbeddingEncoding::Base64,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("api_key", &self.api_key().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field(
                "max_completion_tokens_models",
                &self.max_completion_tokens_models,
            )
            .field("no_sampling_params_models", &self.no_sampling_params_models)
            .field("stream_usage", &self.stream_usage)
            .field("allow_no_key", &self.allow_no_key)
            .field("embedding_batch_size", &self.embedding_batch_size)
            .field("embedding_encoding", &self.embedding_encoding)
            .finish()
    }
}

impl OpenAiConfig {
    /// Reads the kind-specific keys of `spec`; an error names the offending key
    /// (and, for a configuration file, its file and line).
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let cfg: Self = spec.options()?;
        if cfg.embedding_batch_size == 0 {
            return Err(spec.error_at(Some("embedding_batch_size"), "must be at least 1"));
        }
        Ok(cfg)
    }

    /// The key, when one is configured and not empty.
    pub fn api_key(&self) -> Option<&SecretString> {
        self.api_key
            .as_ref()
            .filter(|k| !k.expose_secret().trim().is_empty())
    }

    /// Whether requests may go out without a key (see [`allow_no_key`](Self::allow_no_key)).
    pub fn keyless_allowed(&self) -> bool {
        self.allow_no_key
            .unwrap_or_else(|| !is_openai_host(&self.base_url))
    }
}

/// Whether `model` (or its part after the last `/`, as in `openai/gpt-5`)
/// equals or starts with one of `prefixes`.
pub(crate) fn matches_prefix(prefixes: &[String], model: &str) -> bool {
    let short = model.rsplit('/').next().unwrap_or(model);
    prefixes
        .iter()
        .filter(|p| !p.is_empty())
        .any(|p| model.starts_with(p.as_str()) || short.starts_with(p.as_str()))
}

fn is_openai_host(base_url: &str) -> bool {
    llm_core::http::reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h == "api.openai.com")
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

fn default_mct_models() -> Vec<String> {
    to_strings(DEFAULT_MAX_COMPLETION_TOKENS_MODELS)
}

fn default_no_sampling_models() -> Vec<String> {
    to_strings(DEFAULT_NO_SAMPLING_PARAMS_MODELS)
}

fn to_strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn default_embedding_batch_size() -> usize {
    DEFAULT_EMBEDDING_BATCH_SIZE
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_names_and_routed_names() {
        let p = default_mct_models();
        for m in [
            "o1",
            "o1-mini",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "openai/gpt-5",
        ] {
            assert!(matches_prefix(&p, m), "{m}");
        }
        for m in ["gpt-4o", "gpt-4o-mini", "llama3:8b", ""] {
            assert!(!matches_prefix(&p, m), "{m}");
        }
        assert!(!matches_prefix(&[String::new()], "gpt-4o"));
    }

    #[test]
    fn keyless_default_depends_on_the_host() {
        let mut c = OpenAiConfig::default();
        assert!(!c.keyless_allowed());
        c.base_url = "http://127.0.0.1:8000/v1".into();
        assert!(c.keyless_allowed());
        c.allow_no_key = Some(false);
        assert!(!c.keyless_allowed());
        c.api_key = Some(SecretString::from("  "));
        assert!(c.api_key().is_none(), "a blank key counts as none");
    }

    #[test]
    fn debug_hides_the_key() {
        let c = OpenAiConfig {
            api_key: Some(SecretString::from("sk-very-secret")),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("sk-very-secret"), "{d}");
        assert!(d.contains("REDACTED"), "{d}");
    }
}
