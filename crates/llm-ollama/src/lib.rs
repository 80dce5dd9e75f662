//! The `ollama` provider for llm-router: a local [Ollama](https://ollama.com)
//! server through its native API, plus a service manager that starts the
//! server and pulls the models the configuration requires.
//!
//! Linking this crate registers the kind `ollama` (local by default) with the
//! llm-core plugin registry.
//!
//! # Configuration
//!
//! ```toml
//! [llm_providers.ollama]
//! base_url = "http://localhost:11434"   # default
//! models = ["llama3:8b", "qwen:7b"]
//! default_model = "llama3:8b"
//! timeout = 300                         # seconds per attempt
//! api = "chat"                          # "chat" (POST /api/chat, default) or "generate" (old servers)
//! num_ctx = 8192                        # options.num_ctx; unset = the server decides
//! keep_alive = "10m"                    # or seconds; unset = the server default (5m)
//! required_models = ["llama3:8b"]       # what the service manager makes sure exists
//! auto_download = true                  # pull missing required models (default false)
//! binary = "ollama"                     # executable the service manager starts (default: on PATH)
//! start_timeout = 30                    # seconds to wait for a started server
//! headers = { "X-Proxy-Token" = "${PROXY_TOKEN}" }  # extra headers on every request
//! ```
//!
//! # Generation
//!
//! Requests go to `POST /api/chat` (the system prompt, when set, as a first
//! `system` message). Only what the caller set is sent: `options` carries
//! `temperature`, `top_p`, `stop`, `seed`, `frequency_penalty`,
//! `presence_penalty`, `num_predict` (from `max_tokens`) and `num_ctx` (from
//! the configuration) when set, and is left out when none is, so the model's
//! Modelfile parameters apply; `keep_alive` comes from the configuration.
//! `response_format` becomes `format` (`"json"`, or the JSON Schema itself).
//! Images become base64 `images` on their message: `data:` URLs give their
//! base64 part, `http(s)` URLs are fetched (at most [`MAX_IMAGE_BYTES`], within
//! the provider's timeout, without the configured headers; see [`ImageError`]).
//! [`Provider::generate`] sends `"stream": false`;
//! [`Provider::stream`] reads the NDJSON stream,
//! including text on the final `"done": true` line, whose
//! `prompt_eval_count` / `eval_count` become the usage (absent = 0). A stream
//! that ends without that line, or carries an `{"error":…}` line, yields an
//! error item (after a usage event when counts were seen). A `404` for a
//! missing model is a fallback-class error whose message says to run
//! `llm pull <model>` / `ollama pull <model>`.
//!
//! [`Provider::supports`]: tools (with `api = "chat"`), JSON mode, JSON
//! Schema, penalties, images for the profile's vision models, and embeddings
//! for its `embedding_models`. Forcing a
//! tool call, `parallel_tool_calls: false`, logprobs and OpenAI-specific
//! fields are not supported: the client never plans such requests here, and a
//! direct call with one fails before anything is sent, naming the field.
//!
//! # Embeddings
//!
//! [`Provider::embed`] sends the batch to `POST /api/embed` (`dimensions` and
//! `keep_alive` only when set) and reads `embeddings`, one vector per input in
//! order, with `prompt_eval_count` as the usage; [`Provider::supports`]
//! claims [`Capability::Embeddings`](llm_core::Capability::Embeddings) for the
//! profile's `embedding_models`. A server without `/api/embed` (an
//! unknown-route 404) gets one `POST /api/embeddings` per input instead.
//!
//! # Tool calling
//!
//! With `api = "chat"` the provider maps tools: `tools` as
//! `{"type":"function","function":{…}}`, assistant tool
//! calls with their arguments as a JSON object, tool results with
//! `tool_name` and `tool_call_id`, and `message.tool_calls` of answers (one
//! [`StreamEvent::ToolCall`](llm_core::StreamEvent::ToolCall) per call when
//! streaming; `done_reason` `stop` → `ToolCalls`). Ollama has no
//! `tool_choice`: `none` sends no tools, `auto` sends them all.
//! Calls without an id get a
//! random unique one, `call_` and 24 ASCII alphanumerics (OpenAI's format).
//! `api = "generate"` cannot carry tools.
//!
//! # Service manager and pulls
//!
//! [`OllamaService`] starts `ollama serve` when the server is down and pulls
//! missing required models; [`OllamaService::pull`] and
//! [`OllamaProvider::pull`] download one model with progress callbacks
//! ([`PullProgress`]). A started server keeps running after this program exits;
//! see the [`service`] module.
//!
//! ```no_run
//! # async fn demo(spec: &llm_core::ProviderSpec) -> Result<(), Box<dyn std::error::Error>> {
//! use llm_ollama::OllamaService;
//!
//! let service = OllamaService::from_spec(spec)?;
//! service.ensure_running().await?;
//! let pulled = service
//!     .ensure_models(|model, p| eprintln!("{model}: {} {:?}", p.status, p.fraction()))
//!     .await?;
//! # let _ = pulled;
//! # Ok(()) }
//! ```

mod api;
mod config;
mod error;
mod provider;
mod pull;
pub mod service;
mod stream;
mod tools;
mod wire;

use std::sync::Arc;

use llm_core::{ConfigError, Provider, ProviderPlugin, ProviderSpec};

pub use api::MAX_IMAGE_BYTES;
pub use config::{
    ApiMode, KeepAlive, OllamaConfig, DEFAULT_BASE_URL, DEFAULT_BINARY, DEFAULT_START_TIMEOUT,
};
pub use error::{
    ImageError, CONTEXT_LENGTH_EXCEEDED, IMAGE_FETCH_FAILED, IMAGE_TOO_LARGE, MODEL_NOT_FOUND,
    NOT_AN_IMAGE, TOOLS_NOT_SUPPORTED,
};
pub use provider::OllamaProvider;
pub use pull::PullProgress;
pub use service::{
    OllamaService, ServiceError, ServiceStatus, DEFAULT_BACKOFF_FIRST, DEFAULT_BACKOFF_MAX,
    INSTALL_HINT,
};

/// The provider kind this crate registers.
pub const KIND: &str = "ollama";

/// The factory registered for the kind `ollama`.
///
/// Referencing it from another crate also guarantees that this crate, and so
/// its registration, is linked into the program.
pub fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(Arc::new(OllamaProvider::from_spec(spec)?))
}

llm_core::inventory::submit! {
    ProviderPlugin { kind: KIND, local_by_default: true, build }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kind_is_registered_as_local() {
        let plugin = llm_core::registry::plugin("ollama").expect("registered");
        assert!(plugin.local_by_default);
    }
}
