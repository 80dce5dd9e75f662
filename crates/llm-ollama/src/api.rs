//! The HTTP client shared by the provider and the service manager: endpoint
//! URLs, configured headers, and the non-generation endpoints.

use std::fmt;
use std::time::Duration;

use llm_core::http::{self, reqwest};
use llm_core::{ConfigError, ProviderError};

use crate::config::OllamaConfig;
use crate::error::parse_error;
use crate::wire;

/// Longest wait of an availability probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured connection to one Ollama server.
#[derive(Clone)]
pub(crate) struct Api {
    /// Provider instance name (for errors).
    pub name: String,
    /// `base_url` without a trailing slash.
    pub base: String,
    /// `base_url` without credentials, for messages.
    pub display: String,
    /// Per-request timeout.
    pub timeout: Duration,
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("base", &self.display)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client for `config.base_url`.
    pub fn new(name: &str, config: &OllamaConfig, timeout: Duration) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(Self {
            name: name.to_string(),
            base: config.base(),
            display: config.display_url(),
            timeout,
            client: http::client(CONNECT_TIMEOUT.min(timeout))?,
            headers: http::header_map(&config.headers)?,
        })
    }

    /// `POST path` with a JSON body and the configured headers.
    pub fn post<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .headers(self.headers.clone())
            .json(body)
    }

    /// `GET path` with the configured headers.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .headers(self.headers.clone())
    }

    /// `GET /api/version` within `timeout`: the server's version (`None` when it
    /// answers 2xx without one).
    pub async fn version(&self, timeout: Duration) -> Result<Option<String>, ProviderError> {
        let resp = http::send(&self.name, self.get("/api/version"), timeout, parse_error).await?;
        let v: wire::Version = http::read_json(&self.name, resp, timeout)
            .await
            .unwrap_or_default();
        Ok(v.version)
    }

    /// Whether the server answers `GET /api/version` within [`PROBE_TIMEOUT`].
    pub async fn probe(&self) -> bool {
        self.version(PROBE_TIMEOUT.min(self.timeout)).await.is_ok()
    }

    /// `GET /api/tags`: the names of the models on the server.
    pub async fn tags(&self) -> Result<Vec<String>, ProviderError> {
        let started = tokio::time::Instant::now();
        let resp = http::send(&self.name, self.get("/api/tags"), self.timeout, parse_error).await?;
        let left = self.timeout.saturating_sub(started.elapsed());
        let tags: wire::Tags = http::read_json(&self.name, resp, left).await?;
        Ok(tags
            .models
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.name.or(m.model))
            .collect())
    }
}

/// `name` with the implicit `:latest` tag made explicit, for comparing model names.
pub(crate) fn canonical_model(name: &str) -> String {
    let name = name.trim();
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_have_a_tag() {
        assert_eq!(canonical_model("llama3.2"), "llama3.2:latest");
        assert_eq!(canonical_model("llama3:8b"), "llama3:8b");
        assert_eq!(canonical_model("ns/model"), "ns/model:latest");
        assert_eq!(
            canonical_model("registry.local:5000/ns/model"),
            "registry.local:5000/ns/model:latest"
        );
    }
}
