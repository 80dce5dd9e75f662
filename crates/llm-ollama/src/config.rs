//! The typed `[llm_providers.<name>]` section of an `ollama` instance.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use llm_core::config::Secs;
use llm_core::http::reqwest::Url;
use llm_core::http::BaseUrl;
use llm_core::{ConfigError, ProviderSpec};
use serde::{Deserialize, Serialize};

/// Default address of a local Ollama server.
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";
/// Default executable started by the service manager.
pub const DEFAULT_BINARY: &str = "ollama";
/// Default wait for a started server to answer.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which generation endpoint is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ApiMode {
    /// `POST /api/chat` (default): messages with roles.
    #[default]
    Chat,
    /// `POST /api/generate`, for old servers: one prompt plus a `system` field.
    Generate,
}

impl ApiMode {
    /// `chat` or `generate`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMode::Chat => "chat",
            ApiMode::Generate => "generate",
        }
    }

    /// The endpoint path, `/api/chat` or `/api/generate`.
    pub fn path(self) -> &'static str {
        match self {
            ApiMode::Chat => "/api/chat",
            ApiMode::Generate => "/api/generate",
        }
    }
}

/// How long the server keeps a model loaded after a request (`keep_alive`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum KeepAlive {
    /// A Go duration string such as `"5m"`, `"1h"` or `"0"`.
    Duration(String),
    /// Seconds; negative keeps the model loaded indefinitely, `0` unloads it at once.
    Seconds(i64),
}

/// Kind-specific settings of an `ollama` instance.
///
/// Every field has a default; [`OllamaConfig::default`] talks to
/// `http://localhost:11434` through `/api/chat`.
#[derive(Clone, PartialEq)]
pub struct OllamaConfig {
    /// Server address (`base_url`, default `http://localhost:11434`).
    pub base_url: String,
    /// Generation endpoint (`api = "chat" | "generate"`, default chat).
    pub api: ApiMode,
    /// Context window sent as `options.num_ctx` (`num_ctx`); unset lets the server decide.
    pub num_ctx: Option<u32>,
    /// `keep_alive` sent with every generation; unset uses the server default (5 min).
    pub keep_alive: Option<KeepAlive>,
    /// Models the service manager makes sure are present (`required_models`).
    pub required_models: Vec<String>,
    /// Pull missing `required_models` (`auto_download`, default false).
    pub auto_download: bool,
    /// Executable started by the service manager (`binary`, default `ollama` on `PATH`).
    pub binary: PathBuf,
    /// How long the service manager waits for a started server (`start_timeout`, default 30 s).
    pub start_timeout: Duration,
    /// Extra headers sent with every request (`headers`), e.g. an `Authorization`
    /// header for a hosted or proxied server. Values are treated as secrets.
    pub headers: BTreeMap<String, String>,
    /// Fetch `http(s)` image URLs and send their bytes (`fetch_image_urls`,
    /// default false). Off, a request with a remote image URL is refused
    /// before anything is sent: fetching makes this process request URLs its
    /// callers choose, which a gateway reachable by untrusted callers must
    /// not do. `data:` URLs work either way.
    pub fetch_image_urls: bool,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api: ApiMode::Chat,
            num_ctx: None,
            keep_alive: None,
            required_models: Vec::new(),
            auto_download: false,
            binary: PathBuf::from(DEFAULT_BINARY),
            start_timeout: DEFAULT_START_TIMEOUT,
            headers: BTreeMap::new(),
            fetch_image_urls: false,
        }
    }
}

impl fmt::Debug for OllamaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may carry credentials: only their names are shown.
        f.debug_struct("OllamaConfig")
            .field("base_url", &self.display_url())
            .field("api", &self.api)
            .field("num_ctx", &self.num_ctx)
            .field("keep_alive", &self.keep_alive)
            .field("required_models", &self.required_models)
            .field("auto_download", &self.auto_download)
            .field("binary", &self.binary)
            .field("start_timeout", &self.start_timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("fetch_image_urls", &self.fetch_image_urls)
            .finish()
    }
}

/// The section as written; checked and converted by [`OllamaConfig::from_spec`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    num_ctx: Option<u32>,
    #[serde(default)]
    keep_alive: Option<toml::Value>,
    #[serde(default)]
    required_models: Vec<String>,
    #[serde(default)]
    auto_download: Option<bool>,
    #[serde(default)]
    binary: Option<PathBuf>,
    #[serde(default)]
    start_timeout: Option<Secs>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    fetch_image_urls: Option<bool>,
}

impl OllamaConfig {
    /// Reads and checks the kind-specific keys of `spec`; errors name the file, line and key.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let raw: RawConfig = spec.options()?;
        let defaults = Self::default();
        let api = match raw.api.as_deref() {
            None | Some("chat") => ApiMode::Chat,
            Some("generate") => ApiMode::Generate,
            Some(other) => {
                return Err(spec.error_at(
                    Some("api"),
                    format!("unknown API `{other}`, expected `chat` or `generate`"),
                ))
            }
        };
        let keep_alive = match raw.keep_alive {
            None => None,
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(KeepAlive::Duration(s)),
            Some(toml::Value::Integer(i)) => Some(KeepAlive::Seconds(i)),
            Some(other) => {
                return Err(spec.error_at(
                    Some("keep_alive"),
                    format!(
                        "expected a duration such as \"5m\" or a number of seconds, got `{other}`"
                    ),
                ))
            }
        };
        let config = Self {
            base_url: raw.base_url.unwrap_or(defaults.base_url),
            api,
            num_ctx: raw.num_ctx,
            keep_alive,
            required_models: raw.required_models,
            auto_download: raw.auto_download.unwrap_or(defaults.auto_download),
            binary: raw.binary.unwrap_or(defaults.binary),
            start_timeout: raw.start_timeout.map_or(defaults.start_timeout, |s| s.0),
            headers: raw.headers,
            fetch_image_urls: raw.fetch_image_urls.unwrap_or(defaults.fetch_image_urls),
        };
        config
            .validate()
            .map_err(|(key, message)| spec.error_at(Some(key), message))?;
        Ok(config)
    }

    /// Checks the values; on failure returns the offending key and what is wrong.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        self.url().map_err(|m| ("base_url", m))?;
        if self.num_ctx == Some(0) {
            return Err(("num_ctx", "must be more than 0".into()));
        }
        if self.start_timeout.is_zero() {
            return Err(("start_timeout", "must be more than 0 s".into()));
        }
        if self.binary.as_os_str().is_empty() {
            return Err(("binary", "must not be empty".into()));
        }
        if let Some(m) = self.required_models.iter().find(|m| m.trim().is_empty()) {
            return Err(("required_models", format!("invalid model name `{m}`")));
        }
        Ok(())
    }

    /// Checks the values, as a located-less [`ConfigError`].
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.validate()
            .map_err(|(key, message)| ConfigError::new(message).with_key(key))
    }

    /// `base_url` checked: `http` or `https` with a host ([`BaseUrl`]).
    pub(crate) fn checked_url(&self) -> Result<BaseUrl, String> {
        BaseUrl::new(&self.base_url)
    }

    /// `base_url` parsed; only `http` and `https` with a host are accepted.
    pub(crate) fn url(&self) -> Result<Url, String> {
        self.checked_url().map(|u| u.url().clone())
    }

    /// `base_url` without credentials or a trailing slash, for messages and logs.
    pub(crate) fn display_url(&self) -> String {
        BaseUrl::shown(&self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ProviderProfile;

    fn spec() -> ProviderSpec {
        ProviderSpec::new("ollama", "ollama", ProviderProfile::default())
    }

    #[test]
    fn defaults() {
        let c = OllamaConfig::from_spec(&spec()).unwrap();
        assert_eq!(c, OllamaConfig::default());
        assert_eq!(c.base_url, "http://localhost:11434");
        assert_eq!(c.api, ApiMode::Chat);
        assert!(!c.auto_download);
        assert_eq!(c.binary, PathBuf::from("ollama"));
        assert_eq!(c.start_timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_key_is_read() {
        let s = spec()
            .option("base_url", "http://127.0.0.1:9999/")
            .option("api", "generate")
            .option("num_ctx", 8192)
            .option("keep_alive", "10m")
            .option("required_models", vec!["llama3:8b"])
            .option("auto_download", true)
            .option("binary", "/opt/ollama/bin/ollama")
            .option("start_timeout", 2.5)
            .option(
                "headers",
                toml::Table::from_iter([("X-Test".to_string(), toml::Value::from("1"))]),
            );
        let c = OllamaConfig::from_spec(&s).unwrap();
        assert_eq!(c.api, ApiMode::Generate);
        assert_eq!(c.num_ctx, Some(8192));
        assert_eq!(c.keep_alive, Some(KeepAlive::Duration("10m".into())));
        assert_eq!(c.required_models, vec!["llama3:8b"]);
        assert!(c.auto_download);
        assert_eq!(c.binary, PathBuf::from("/opt/ollama/bin/ollama"));
        assert_eq!(c.start_timeout, Duration::from_millis(2500));
        assert_eq!(c.checked_url().unwrap().as_str(), "http://127.0.0.1:9999");
        let c = OllamaConfig::from_spec(&spec().option("keep_alive", -1)).unwrap();
        assert_eq!(c.keep_alive, Some(KeepAlive::Seconds(-1)));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            spec().option("bogus", 1),
            spec().option("api", "completions"),
            spec().option("base_url", "localhost:11434"),
            spec().option("num_ctx", 0),
            spec().option("start_timeout", 0),
            spec().option("keep_alive", true),
        ];
        let keys = [
            "bogus",
            "api",
            "base_url",
            "num_ctx",
            "start_timeout",
            "keep_alive",
        ];
        for (s, key) in cases.iter().zip(keys) {
            let e = OllamaConfig::from_spec(s).unwrap_err();
            assert_eq!(
                e.key.as_deref(),
                Some(format!("llm_providers.ollama.{key}").as_str()),
                "{e}"
            );
        }
    }

    #[test]
    fn display_url_hides_credentials() {
        let c = OllamaConfig {
            base_url: "http://user:pw-secret@localhost:11434/".into(),
            ..OllamaConfig::default()
        };
        assert_eq!(c.display_url(), "http://localhost:11434");
        assert!(!format!("{c:?}").contains("pw-secret"));
    }

    #[test]
    fn debug_hides_header_values() {
        let mut c = OllamaConfig::default();
        c.headers
            .insert("Authorization".into(), "Bearer sk-secret".into());
        let d = format!("{c:?}");
        assert!(d.contains("Authorization"), "{d}");
        assert!(!d.contains("sk-secret"), "{d}");
    }
}
