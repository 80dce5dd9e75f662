//! The kind-specific keys of an `anthropic` provider section.

use std::collections::BTreeMap;
use std::fmt;

use llm_core::http::BaseUrl;
use llm_core::{ConfigError, ProviderSpec, SecretString};
use serde::Deserialize;

/// Default API root.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Default `anthropic-version` header value.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The `anthropic`-specific keys of a `[llm_providers.<name>]` section.
///
/// The common keys (`models`, `default_model`, `max_tokens`, `timeout`,
/// `cost_per_1k_tokens`, `pricing`, `local`) are read by llm-core; any other key
/// is an error.
///
/// Its `Debug` shows neither the key nor credentials in `base_url`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The API key, sent as `x-api-key`. Missing or empty: the instance builds,
    /// but `is_available()` is false and requests fail without being sent.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// API root without `/v1` (default `https://api.anthropic.com`). A
    /// `user:password@` part is sent as basic authentication (for a proxy in
    /// front of the API) and never shown in `Debug`, logs or errors.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Value of the `anthropic-version` header (default `2023-06-01`).
    #[serde(default = "default_version")]
    pub version: String,
    /// Beta features, sent comma-separated in the `anthropic-beta` header.
    #[serde(default)]
    pub beta: Vec<String>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "[set]"
                } else {
                    "[missing]"
                },
            )
            .field("base_url", &BaseUrl::shown(&self.base_url))
            .field("version", &self.version)
            .field("beta", &self.beta)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: default_base_url(),
            version: default_version(),
            beta: Vec::new(),
            headers: BTreeMap::new(),
        }
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

fn default_version() -> String {
    DEFAULT_VERSION.to_string()
}

impl AnthropicConfig {
    /// Reads the kind-specific keys of `spec`; errors name the file, line and
    /// offending key.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        spec.options()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden() {
        let config = AnthropicConfig {
            api_key: Some(SecretString::from("sk-ant-secret".to_string())),
            base_url: "https://u:pa55@proxy.example".into(),
            headers: BTreeMap::from([("x-token".to_string(), "hidden".to_string())]),
            ..AnthropicConfig::default()
        };
        let debug = format!("{config:?}");
        for secret in ["sk-ant-secret", "pa55", "hidden"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
