//! The `anthropic` provider for llm-router: the Anthropic Messages API
//! (`POST /v1/messages`, streamed and not, and `GET /v1/models`).
//!
//! Linking this crate registers the kind `anthropic`; an instance is then
//! configured in `llm_providers.toml`:
//!
//! ```toml
//! [llm_providers.anthropic]
//! api_key = "${ANTHROPIC_API_KEY}"          # sent as `x-api-key`; missing/empty → unavailable
//! models = ["claude-sonnet-4-5-20250929"]
//! default_model = "claude-sonnet-4-5-20250929"
//! max_tokens = 8192                          # requests are clamped to it
//! timeout = 120                              # seconds, per attempt
//! # Optional:
//! base_url = "https://api.anthropic.com"     # without /v1
//! version = "2023-06-01"                     # `anthropic-version` header
//! beta = ["prompt-caching-2024-07-31"]       # `anthropic-beta` header, comma-joined
//! headers = { "x-team" = "novels" }          # extra headers
//! ```
//!
//! Request mapping: the system prompt and every `system`-role message become the
//! top-level `system` string (joined by a blank line); consecutive messages of
//! the same role are merged (joined by a blank line) so that turns alternate;
//! `temperature` is clamped to Anthropic's 0–1 range; `max_tokens` is clamped
//! to the profile's `max_tokens`; `stop` becomes `stop_sequences`; `seed` is
//! not sent (the API has none).
//!
//! Tool calling: `tools` become `{name, description, input_schema}`,
//! `tool_choice` `Auto`/`Required`/`Function(n)`/`None` becomes
//! `{"type":"auto"}`/`{"type":"any"}`/`{"type":"tool","name":n}`/`{"type":"none"}`;
//! an assistant message's tool calls become `tool_use` blocks (their JSON
//! arguments parsed into `input`; arguments that are not a JSON object fail
//! the request locally) and tool results become `tool_result` blocks in a
//! user turn. A request without `tools` whose history calls tools declares
//! those tool names (schema `{"type":"object"}`) with `tool_choice`
//! `{"type":"none"}`, as Anthropic refuses tool blocks without tools.
//! Answers' `tool_use` blocks become `tool_calls`, streamed as fragments
//! numbered among tool calls only; an answer cut by `max_tokens` keeps its
//! partial call and finishes with `Length`.
//!
//! Building an instance in code (normally the configuration does this):
//!
//! ```
//! use llm_core::{Provider, ProviderProfile, ProviderSpec};
//!
//! let spec = ProviderSpec::new("claude", "anthropic", ProviderProfile::default())
//!     .option("api_key", "sk-ant-example");
//! let p = llm_anthropic::build(&spec).unwrap();
//! assert_eq!(p.kind(), "anthropic");
//! // Referencing `build` links this crate, so the kind is registered:
//! assert!(llm_core::registry::kinds().contains(&"anthropic"));
//! ```

mod config;
mod error;
mod provider;
mod request;
mod stream;
mod wire;

use std::sync::Arc;

use llm_core::{ConfigError, Provider, ProviderSpec};

pub use config::{AnthropicConfig, DEFAULT_BASE_URL, DEFAULT_VERSION};
pub use provider::{AnthropicProvider, DEFAULT_MAX_TOKENS};

/// The provider kind this crate registers.
pub const KIND: &str = "anthropic";

/// The factory registered for the kind `anthropic`.
///
/// Referencing it from another crate also guarantees that this crate, and so
/// its registration, is linked into the program.
pub fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(Arc::new(AnthropicProvider::from_spec(spec)?))
}

llm_core::inventory::submit! {
    llm_core::ProviderPlugin { kind: KIND, local_by_default: false, build }
}
