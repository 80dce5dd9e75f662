//! # llm-router
//!
//! One fast, reliable client for many LLM providers: routing by task, fallback
//! chains, retries with backoff, circuit breaking, response caching, token and
//! cost accounting, and Prometheus metrics.
//!
//! This facade re-exports [`llm_core`] and links the provider crates chosen by
//! its cargo features (`openai`, `ollama`, `custom` by default; `anthropic`
//! and `redis` on request), so that each one registers its kind in
//! [`registry`].
//!
//! ```
//! // Which provider kinds this build can configure:
//! let kinds = llm_router::registry::kinds();
//! # let _ = kinds;
//! ```

pub use llm_core::*;

/// The OpenAI provider crate.
#[cfg(feature = "openai")]
pub use llm_openai as openai;

/// The Anthropic provider crate.
#[cfg(feature = "anthropic")]
pub use llm_anthropic as anthropic;

/// The Ollama provider crate.
#[cfg(feature = "ollama")]
pub use llm_ollama as ollama;

/// The custom HTTP provider crate.
#[cfg(feature = "custom")]
pub use llm_custom as custom;

/// The Redis cache crate.
#[cfg(feature = "redis")]
pub use llm_cache_redis as cache_redis;
