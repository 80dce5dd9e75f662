//! Typed errors, split by where they arise.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::Attempt;

/// How the client reacts to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: retry the same provider with backoff, then move on.
    Retryable,
    /// Specific to this provider (its key, its models, its limits): try the next
    /// provider at once, without retrying.
    Fallback,
    /// The request itself is invalid: return at once.
    Fatal,
}

impl ErrorClass {
    /// `retryable`, `fallback` or `fatal`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Fallback => "fallback",
            ErrorClass::Fatal => "fatal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure a [`ProviderError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// No answer within the time allowed.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// The connection failed while the request or response was under way (reset, broken body).
    Transport,
    /// The provider answered with an HTTP error status.
    Http,
    /// The provider's answer could not be decoded (not JSON, wrong shape).
    Decode,
    /// A stream ended before its terminator; the answer is incomplete.
    Incomplete,
    /// The provider does not support what was asked.
    Unsupported,
}

/// A failure of one provider, with what a caller needs to act on it.
///
/// It never contains an API key: messages are built from status codes and the
/// provider's own error text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ProviderError {
    /// Provider instance name.
    pub provider: String,
    /// What kind of failure.
    pub kind: ProviderErrorKind,
    /// HTTP status, when the provider answered with one.
    pub status: Option<u16>,
    /// The provider's error code or type (`rate_limit_exceeded`, `overloaded_error`, …).
    pub code: Option<String>,
    /// Human-readable description.
    pub message: String,
    /// The provider's request id, for support tickets.
    pub request_id: Option<String>,
    /// How long the provider asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The server's own word on retrying (e.g. Anthropic's `x-should-retry`):
    /// `Some(true)` makes the error retryable, `Some(false)` moves on to the
    /// next provider at once; `None` leaves it to the status.
    pub retry: Option<bool>,
}

impl ProviderError {
    /// An error of the given kind.
    pub fn new(
        provider: impl Into<String>,
        kind: ProviderErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            kind,
            status: None,
            code: None,
            message: message.into(),
            request_id: None,
            retry_after: None,
            retry: None,
        }
    }

    /// Records the server's own word on retrying ([`retry`](Self::retry)).
    pub fn with_retry(mut self, retry: Option<bool>) -> Self {
        self.retry = retry;
        self
    }

    /// An HTTP error status with the provider's message.
    pub fn http(provider: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        let mut e = Self::new(provider, ProviderErrorKind::Http, message);
        e.status = Some(status);
        e
    }

    /// A timeout.
    pub fn timeout(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Timeout, message)
    }

    /// A connection that could not be made.
    pub fn connect(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Connect, message)
    }

    /// A connection that broke mid-way.
    pub fn transport(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Transport, message)
    }

    /// An answer that could not be decoded.
    pub fn decode(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Decode, message)
    }

    /// A stream that ended early.
    pub fn incomplete(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Incomplete, message)
    }

    /// A feature the provider does not have.
    pub fn unsupported(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(provider, ProviderErrorKind::Unsupported, message)
    }

    /// Sets the provider's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the provider's request id.
    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    /// Sets the wait the provider asked for.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// How the client reacts to this error.
    ///
    /// Timeouts, connection failures, broken streams and HTTP 408, 429, 500, 502,
    /// 503, 504 and 529 are retryable, except a 429 or 402 that says the account
    /// is out of credit. Every other HTTP error (401, 403, 404, context length,
    /// other 4xx) and undecodable answers fall back to the next provider at once.
    /// The server's own word ([`retry`](Self::retry)) wins over all of that.
    pub fn class(&self) -> ErrorClass {
        match self.retry {
            Some(true) => return ErrorClass::Retryable,
            Some(false) => return ErrorClass::Fallback,
            None => {}
        }
        match self.kind {
            ProviderErrorKind::Timeout
            | ProviderErrorKind::Connect
            | ProviderErrorKind::Transport
            | ProviderErrorKind::Incomplete => ErrorClass::Retryable,
            ProviderErrorKind::Decode | ProviderErrorKind::Unsupported => ErrorClass::Fallback,
            ProviderErrorKind::Http => {
                let out_of_credit = matches!(
                    self.code.as_deref(),
                    Some("insufficient_quota" | "billing_error" | "billing_hard_limit_reached")
                );
                match self.status {
                    Some(408 | 429 | 500 | 502 | 503 | 504 | 529) if !out_of_credit => {
                        ErrorClass::Retryable
                    }
                    _ => ErrorClass::Fallback,
                }
            }
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider `{}`: ", self.provider)?;
        match self.status {
            Some(s) => write!(f, "HTTP {s}")?,
            None => write!(f, "{}", kind_name(self.kind))?,
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " [retry after {:.3} s]", wait.as_secs_f64())?;
        }
        Ok(())
    }
}

fn kind_name(kind: ProviderErrorKind) -> &'static str {
    match kind {
        ProviderErrorKind::Timeout => "timeout",
        ProviderErrorKind::Connect => "connection failed",
        ProviderErrorKind::Transport => "connection broken",
        ProviderErrorKind::Http => "HTTP error",
        ProviderErrorKind::Decode => "undecodable answer",
        ProviderErrorKind::Incomplete => "incomplete answer",
        ProviderErrorKind::Unsupported => "unsupported",
    }
}

/// A request that is invalid before any provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: `{field}` {message}")]
pub struct ValidationError {
    /// The offending field of [`LlmRequest`](crate::LlmRequest).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A configuration problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, when the configuration came from one.
    pub file: Option<PathBuf>,
    /// 1-based line in that file.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `llm_providers.openai.api_key`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error with a message and nothing located yet.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            key: None,
            message: message.into(),
        }
    }

    /// Sets the key path.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the line.
    pub fn with_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    /// Sets the file.
    pub fn with_file(mut self, file: Option<PathBuf>) -> Self {
        self.file = file;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ",)?,
            (None, None) => {}
        }
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A cache backend failure. The client turns these into misses; they never fail a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache `{backend}`: {message}")]
pub struct CacheError {
    /// Backend name (`memory`, `redis`).
    pub backend: String,
    /// What went wrong.
    pub message: String,
    /// The entry was refused for its size (not a backend failure): counted
    /// as `too_large`, not `error`.
    pub too_large: bool,
}

impl CacheError {
    /// A failure of the named backend.
    pub fn new(backend: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            message: message.into(),
            too_large: false,
        }
    }

    /// An entry the backend does not store because of its size.
    pub fn too_large(backend: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            too_large: true,
            ..Self::new(backend, message)
        }
    }
}

/// Every error the client returns.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request is invalid.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The request named a provider instance that is not configured.
    #[error(
        "unknown provider `{name}`; configured providers: {}",
        join_or_none(known)
    )]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The configured instance names.
        known: Vec<String>,
    },
    /// The request needs something no configured provider (or model) can do,
    /// e.g. images with no vision model configured: the field is named.
    #[error("`{field}` is not supported by any configured provider: none supports {}", capability.describe())]
    Unsupported {
        /// The request field that cannot be honoured.
        field: String,
        /// The capability it needs.
        capability: crate::types::Capability,
    },
    /// No configured instance serves the embedding model (or none was given
    /// and `routing.default_embedding_model` is unset).
    #[error(
        "{} (embedding models: {})",
        unknown_embedding(model),
        join_or_none(known)
    )]
    UnknownEmbeddingModel {
        /// The model asked for (empty when none was given).
        model: String,
        /// Every embedding model some instance serves.
        known: Vec<String>,
    },
    /// The request's [allowed models](crate::LlmRequest::allowed_models)
    /// leave no configured instance that may serve it.
    #[error(
        "no configured instance serves a model the request is allowed ({})",
        globs.join(", ")
    )]
    NotAllowed {
        /// The request's allowed-model globs.
        globs: Vec<String>,
    },
    /// No provider could be tried (none configured, all disabled, all circuits open).
    #[error("no provider available{}", list_attempts(attempts))]
    NoProviderAvailable {
        /// Providers passed over and why.
        attempts: Vec<Attempt>,
    },
    /// Every provider in the fallback sequence failed.
    #[error("all providers failed{}", list_attempts(attempts))]
    AllProvidersFailed {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// The overall deadline passed before any provider answered.
    #[error("deadline of {:.1} s exceeded{}", deadline.as_secs_f64(), list_attempts(attempts))]
    DeadlineExceeded {
        /// The deadline that applied.
        deadline: Duration,
        /// Attempts made before it passed.
        attempts: Vec<Attempt>,
    },
    /// A provider failed where no fallback applies (e.g. a direct provider call).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A cache backend could not be set up.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl LlmError {
    /// The attempts recorded with this error, if any.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            LlmError::NoProviderAvailable { attempts }
            | LlmError::AllProvidersFailed { attempts }
            | LlmError::DeadlineExceeded { attempts, .. } => attempts,
            _ => &[],
        }
    }
}

fn unknown_embedding(model: &str) -> String {
    if model.is_empty() {
        "no embedding model given and no `routing.default_embedding_model` configured".into()
    } else {
        format!("no configured provider serves embedding model `{model}`")
    }
}

fn join_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn list_attempts(attempts: &[Attempt]) -> String {
    let mut s = String::new();
    for a in attempts {
        s.push_str("\n  - ");
        s.push_str(&a.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_s_retry_word_wins_over_the_status() {
        let busy = ProviderError::http("p", 529, "overloaded");
        assert_eq!(busy.class(), ErrorClass::Retryable);
        assert_eq!(busy.with_retry(Some(false)).class(), ErrorClass::Fallback);
        let conflict = ProviderError::http("p", 409, "conflict");
        assert_eq!(conflict.class(), ErrorClass::Fallback);
        assert_eq!(
            conflict.with_retry(Some(true)).class(),
            ErrorClass::Retryable
        );
    }

    fn http(status: u16) -> ProviderError {
        ProviderError::http("p", status, "x")
    }

    #[test]
    fn classes_follow_the_design() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(http(s).class(), ErrorClass::Retryable, "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 422] {
            assert_eq!(http(s).class(), ErrorClass::Fallback, "{s}");
        }
        assert_eq!(
            http(429).with_code("insufficient_quota").class(),
            ErrorClass::Fallback
        );
        assert_eq!(
            ProviderError::timeout("p", "t").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            ProviderError::connect("p", "t").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            ProviderError::transport("p", "t").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            ProviderError::incomplete("p", "t").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            ProviderError::decode("p", "t").class(),
            ErrorClass::Fallback
        );
    }

    #[test]
    fn provider_error_display_carries_what_a_caller_needs() {
        let e = http(429)
            .with_code("rate_limit_exceeded")
            .with_request_id(Some("req_1".into()))
            .with_retry_after(Some(Duration::from_secs(2)));
        let s = e.to_string();
        assert!(s.contains("provider `p`"), "{s}");
        assert!(s.contains("HTTP 429"), "{s}");
        assert!(s.contains("rate_limit_exceeded"), "{s}");
        assert!(s.contains("req_1"), "{s}");
        assert!(s.contains("retry after 2.000 s"), "{s}");
    }

    #[test]
    fn config_error_display_names_file_line_and_key() {
        let e = ConfigError::new("unknown field")
            .with_key("llm_providers.openai.foo")
            .with_line(Some(3))
            .with_file(Some("c.toml".into()));
        assert_eq!(
            e.to_string(),
            "c.toml:3: `llm_providers.openai.foo`: unknown field"
        );
    }
}
