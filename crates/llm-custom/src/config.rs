//! The typed `[llm_providers.<name>]` section of a `custom` instance.

use std::collections::BTreeMap;
use std::fmt;

use llm_core::http::BaseUrl;
use llm_core::{ConfigError, ProviderSpec, SecretString};
use serde::Deserialize;

/// How the API streams an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamMode {
    /// No streaming: `stream()` makes one `generate` call and replays its answer.
    #[default]
    None,
    /// Newline-delimited JSON objects, one per line.
    Ndjson,
    /// Server-sent events whose `data:` payloads are JSON objects; a
    /// `data: [DONE]` payload ends the stream.
    Sse,
}

/// Kind-specific keys of a `custom` instance (the common keys such as `models`,
/// `timeout` and `cost_per_1k_tokens` are in the profile).
///
/// Every key but `base_url` has a default; unknown keys are errors. Pointers
/// are JSON pointers (RFC 6901): `""` is the whole document, `/a/0/b` is
/// field `b` of the first element of array `a`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomConfig {
    /// Root URL of the API, e.g. `http://localhost:8080`. Credentials in it
    /// (`https://user:pass@host`) are sent as HTTP basic authentication and
    /// never shown (see [`CustomConfig::display_url`]).
    pub base_url: String,
    /// Path of the generation endpoint (`POST`), default `/generate`.
    #[serde(default = "default_generate_path")]
    pub generate_path: String,
    /// Path probed by `is_available` (`GET`, any 2xx), default `/health`.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Path of a models list (`GET`); without it `models()` returns the configured `models`.
    #[serde(default)]
    pub models_path: Option<String>,
    /// Pointer to the array of models in the models list: strings, or objects
    /// with `id` or `name`. Default: the body itself when it is an array, else
    /// `/models`, else `/data`.
    #[serde(default)]
    pub models_pointer: Option<String>,
    /// Bearer token sent as `Authorization: Bearer …`; empty means none.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Template of the request body (a table); see the crate docs for placeholders.
    #[serde(default)]
    pub request_template: Option<serde_json::Value>,
    /// Pointers to the answer text, tried in order; default `["/content", "/text"]`.
    #[serde(default = "default_content_pointers")]
    pub content_pointers: Vec<String>,
    /// Pointer to the input token count.
    #[serde(default)]
    pub prompt_tokens_pointer: Option<String>,
    /// Pointer to the output token count.
    #[serde(default)]
    pub completion_tokens_pointer: Option<String>,
    /// Pointer to the total token count.
    #[serde(default)]
    pub total_tokens_pointer: Option<String>,
    /// Pointer to the finish reason (`stop`, `length`, …).
    #[serde(default)]
    pub finish_reason_pointer: Option<String>,
    /// Pointer to the model that answered.
    #[serde(default)]
    pub model_pointer: Option<String>,
    /// Streaming protocol: `none` (default), `ndjson` or `sse`.
    #[serde(default)]
    pub stream: StreamMode,
    /// Path of the streaming endpoint (`POST`); default `generate_path`.
    #[serde(default)]
    pub stream_path: Option<String>,
    /// Top-level body key set to `true` when streaming and `false` otherwise, e.g. `stream`.
    #[serde(default)]
    pub stream_flag: Option<String>,
    /// Pointer to the text of a stream chunk; default `/delta`, then the `content_pointers`.
    #[serde(default)]
    pub delta_pointer: Option<String>,
    /// Pointer to the end-of-stream marker (`true` or a non-empty string);
    /// default `/done` for `ndjson`, none for `sse` (where `[DONE]` ends the stream).
    #[serde(default)]
    pub stream_done_pointer: Option<String>,
    /// Pointer to the error message of error bodies and in-stream errors; default `/error`.
    #[serde(default = "default_error_pointer")]
    pub error_pointer: String,
    /// Path of the embeddings endpoint (`POST`); without it the instance has
    /// no embeddings.
    #[serde(default)]
    pub embed_path: Option<String>,
    /// Template of the embeddings request body (a table with `{{inputs}}`,
    /// and optionally `{{model}}` and `{{dimensions}}`); default
    /// `{"model": "{{model}}", "input": "{{inputs}}", "dimensions": "{{dimensions}}"}`.
    #[serde(default)]
    pub embed_template: Option<serde_json::Value>,
    /// Pointer to the array of vectors in the embeddings answer (arrays of
    /// numbers, or objects with an `embedding` array); default `/embeddings`.
    #[serde(default = "default_embeddings_pointer")]
    pub embeddings_pointer: String,
    /// Pointer to the input token count of the embeddings answer.
    #[serde(default)]
    pub embed_tokens_pointer: Option<String>,
}

fn default_generate_path() -> String {
    "/generate".into()
}

fn default_health_path() -> String {
    "/health".into()
}

fn default_content_pointers() -> Vec<String> {
    vec!["/content".into(), "/text".into()]
}

fn default_error_pointer() -> String {
    "/error".into()
}

fn default_embeddings_pointer() -> String {
    "/embeddings".into()
}

impl CustomConfig {
    /// Deserializes and checks the kind-specific keys of `spec`; errors name the key.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let config: Self = spec.options()?;
        config.validate(spec)?;
        Ok(config)
    }

    /// The path of the streaming endpoint.
    pub fn stream_path(&self) -> &str {
        self.stream_path.as_deref().unwrap_or(&self.generate_path)
    }

    /// The end-of-stream marker pointer in effect.
    pub fn done_pointer(&self) -> Option<&str> {
        match (&self.stream_done_pointer, self.stream) {
            (Some(p), _) => Some(p),
            (None, StreamMode::Ndjson) => Some("/done"),
            (None, _) => None,
        }
    }

    /// `base_url` without credentials (user name and password), for `Debug`
    /// output, messages and logs.
    pub fn display_url(&self) -> String {
        BaseUrl::shown(&self.base_url)
    }

    /// The API key, unless it is empty.
    pub fn key(&self) -> Option<&SecretString> {
        use llm_core::ExposeSecret;
        self.api_key
            .as_ref()
            .filter(|k| !k.expose_secret().is_empty())
    }

    fn validate(&self, spec: &ProviderSpec) -> Result<(), ConfigError> {
        BaseUrl::parse(spec, "base_url", &self.base_url)?;
        let paths = [
            ("generate_path", Some(&self.generate_path)),
            ("health_path", Some(&self.health_path)),
            ("models_path", self.models_path.as_ref()),
            ("stream_path", self.stream_path.as_ref()),
            ("embed_path", self.embed_path.as_ref()),
        ];
        for (key, path) in paths {
            if let Some(p) = path.filter(|p| !p.starts_with('/')) {
                return Err(spec.error_at(Some(key), format!("`{p}` must start with `/`")));
            }
        }
        let pointers = [
            ("models_pointer", self.models_pointer.as_ref()),
            ("prompt_tokens_pointer", self.prompt_tokens_pointer.as_ref()),
            (
                "completion_tokens_pointer",
                self.completion_tokens_pointer.as_ref(),
            ),
            ("total_tokens_pointer", self.total_tokens_pointer.as_ref()),
            ("finish_reason_pointer", self.finish_reason_pointer.as_ref()),
            ("model_pointer", self.model_pointer.as_ref()),
            ("delta_pointer", self.delta_pointer.as_ref()),
            ("stream_done_pointer", self.stream_done_pointer.as_ref()),
            ("error_pointer", Some(&self.error_pointer)),
            ("embeddings_pointer", Some(&self.embeddings_pointer)),
            ("embed_tokens_pointer", self.embed_tokens_pointer.as_ref()),
        ];
        let content = self
            .content_pointers
            .iter()
            .map(|p| ("content_pointers", Some(p)));
        for (key, pointer) in pointers.into_iter().chain(content) {
            if let Some(p) = pointer.filter(|p| !is_pointer(p)) {
                return Err(spec.error_at(
                    Some(key),
                    format!("`{p}` is not a JSON pointer (it must be empty or start with `/`)"),
                ));
            }
        }
        if self.content_pointers.is_empty() {
            return Err(spec.error_at(Some("content_pointers"), "needs at least one pointer"));
        }
        if self.embed_path.is_none() {
            let set = [
                ("embed_template", self.embed_template.is_some()),
                ("embed_tokens_pointer", self.embed_tokens_pointer.is_some()),
            ];
            if let Some((key, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err(spec.error_at(
                    Some(key),
                    "has no effect without `embed_path` (the embeddings endpoint)",
                ));
            }
        }
        if self.stream_flag.as_deref() == Some("") {
            return Err(spec.error_at(Some("stream_flag"), "must not be empty"));
        }
        Ok(())
    }
}

impl fmt::Debug for CustomConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomConfig")
            .field("base_url", &self.display_url())
            .field("generate_path", &self.generate_path)
            .field("health_path", &self.health_path)
            .field("models_path", &self.models_path)
            .field("embed_path", &self.embed_path)
            .field("api_key", &self.key().map(|_| "<redacted>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Whether `p` is a JSON pointer.
pub(crate) fn is_pointer(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}
