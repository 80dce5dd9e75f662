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
//! max_tokens = 8192                          # output limit when a request sets none
//! timeout = 120                              # seconds, per attempt
//! # Optional:
//! base_url = "https://api.anthropic.com"     # without /v1; `user:pass@` → basic auth, never shown
//! version = "2023-06-01"                     # `anthropic-version` header
//! beta = ["prompt-caching-2024-07-31"]       # `anthropic-beta` header, comma-joined
//! headers = { "x-team" = "novels" }          # extra headers
//! ```
//!
//! Request mapping (only what the caller set is sent): the system prompt and
//! every `system`-role message become the top-level `system` string (joined
//! by a blank line); consecutive messages of the same role are merged
//! (joined by a blank line) so that turns alternate, and messages with
//! nothing to send (blank text) are left out, so no empty text goes out;
//! user-message images become `image` blocks after the text (`data:` URLs as
//! `base64` sources, `http(s)` URLs as `url` sources); `temperature` is
//! clamped to Anthropic's 0–1 range; `top_p` is sent only without
//! `temperature` (current Claude models refuse both together: with both set,
//! `temperature` is sent and `top_p` is not); `max_tokens` is the request's,
//! else the instance's `max_tokens`, else [`DEFAULT_MAX_TOKENS`]; the model
//! is the request's as given; `stop` becomes `stop_sequences`; `user` becomes
//! `metadata.user_id`; `seed` is not sent (the API has none). Penalties,
//! logprobs and OpenAI pass-through fields are not supported (the provider
//! does not claim those capabilities, so such requests are not sent here).
//!
//! Structured output is emulated: `response_format` `json_schema` becomes a
//! tool named after the schema, with the schema as its `input_schema`
//! (`json_object`: a tool `json_object` taking any object), which the model
//! is made to call; its input is returned as the response content (streamed
//! as text deltas) with `finish_reason` `Stop`. `strict` is not forwarded.
//!
//! Usage keeps prompt-cache reads and writes apart (`cache_read_tokens`,
//! `cache_write_tokens`, both part of `prompt_tokens`);
//! `model_context_window_exceeded` finishes with `Length`; the
//! `x-should-retry` response header overrides whether an error is retried;
//! usage reported before an in-stream `error` event is yielded before it.
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
