//! The `openai` provider for llm-router: OpenAI Chat Completions on any base
//! URL, so it also serves OpenAI-compatible servers (vLLM, llama.cpp,
//! LM Studio, Ollama's `/v1`, DeepSeek, Groq, …).
//!
//! Linking this crate registers the kind `openai` in the plugin registry.
//!
//! ```toml
//! [llm_providers.openai]
//! api_key = "${OPENAI_API_KEY}"
//! models = ["gpt-4o-mini", "o4-mini"]
//! default_model = "gpt-4o-mini"
//! timeout = 60
//! # kind-specific keys (all optional):
//! base_url = "https://api.openai.com/v1"      # `/chat/completions`, `/embeddings`, `/models` are appended
//! organization = "org-…"                       # header OpenAI-Organization
//! project = "proj_…"                           # header OpenAI-Project
//! headers = { "X-Team" = "novels" }            # extra headers
//! max_completion_tokens_models = ["o1", "o3", "o4", "gpt-5"]   # the default
//! no_sampling_params_models = ["o1", "o3", "o4", "gpt-5"]      # the default
//! stream_usage = true                          # stream_options.include_usage (default)
//! # allow_no_key = true                        # default: false on api.openai.com, else true
//! embedding_models = ["text-embedding-3-small"] # common key: models `embed` serves
//! embedding_batch_size = 2048                  # inputs per `POST /embeddings` (the default)
//! embedding_encoding = "base64"                # or "float" (the default is base64)
//!
//! [llm_providers.vllm]                         # an OpenAI-compatible local server
//! kind = "openai"
//! base_url = "http://127.0.0.1:8000/v1"
//! local = true
//! models = ["Qwen/Qwen2.5-7B-Instruct"]
//! ```
//!
//! ```
//! use llm_core::{registry, Provider, ProviderProfile, ProviderSpec};
//!
//! let spec = ProviderSpec::new("vllm", "openai", ProviderProfile::default())
//!     .option("base_url", "http://127.0.0.1:8000/v1");
//! let provider = registry::build_spec(&spec).unwrap();
//! assert_eq!(provider.kind(), "openai");
//! # let _ = llm_openai::KIND;
//! ```
//!
//! Every field of [`LlmRequest`](llm_core::LlmRequest) is mapped, and only
//! what a request sets is sent: `response_format` (OpenAI's own shapes),
//! `frequency_penalty`, `presence_penalty`, `logprobs`/`top_logprobs`,
//! `user`, a signed `seed`, user messages with images as `text` and
//! `image_url` content parts, and every [`extra`](llm_core::LlmRequest::extra)
//! entry verbatim at the top level (a typed field of the same name wins).
//! The provider claims every chat [`Capability`](llm_core::Capability);
//! images only for models with vision (`vision_models`), embeddings only for
//! the models in `embedding_models`. Answers and streams report
//! log probabilities and cached prompt tokens
//! ([`Usage::cache_read_tokens`](llm_core::Usage::cache_read_tokens)); an
//! error inside a 200 body or a stream gets the HTTP status OpenAI gives the
//! same error (from its `code`, else its `type`), so it is retried and counts
//! against health like the reply would. The README has the field table.
//!
//! [`embed`](llm_core::Provider::embed) calls `POST /embeddings` for the
//! models in `embedding_models` (the only ones it claims
//! [`Capability::Embeddings`](llm_core::Capability::Embeddings) for), asks
//! for base64 vectors (exact little-endian `f32`s, as OpenAI's SDKs do) and
//! also accepts float arrays, puts vectors in input order by their `index`,
//! and splits batches larger than `embedding_batch_size` (default 2048,
//! OpenAI's limit) into parts sent in turn, reassembled in order with their
//! usage summed; a failing part fails the call.
//! [`check`](llm_core::Provider::check) says why the instance is unavailable
//! (an HTTP 401 with OpenAI's message, a refused connection, no key).
//!
//! Without an API key no `Authorization` header is sent; on `api.openai.com`
//! the instance then reports itself unavailable (without a network probe)
//! unless `allow_no_key = true`. Model lists match names or prefixes (also
//! after a `vendor/` prefix): models in `max_completion_tokens_models` get
//! `max_completion_tokens` instead of `max_tokens`; models in
//! `no_sampling_params_models` get no `temperature` or `top_p` (OpenAI's
//! reasoning models reject any but the default values).

mod config;
mod embed;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod provider;
mod stream;
mod wire;

use std::sync::Arc;

use llm_core::{ConfigError, Provider, ProviderPlugin, ProviderSpec};

pub use config::{
    EmbeddingEncoding, OpenAiConfig, DEFAULT_BASE_URL, DEFAULT_EMBEDDING_BATCH_SIZE,
    DEFAULT_MAX_COMPLETION_TOKENS_MODELS, DEFAULT_NO_SAMPLING_PARAMS_MODELS,
};
pub use provider::OpenAiProvider;

/// The provider kind this crate registers.
pub const KIND: &str = "openai";

/// The factory registered for the kind `openai`.
///
/// Referencing it from another crate also guarantees that this crate, and so
/// its registration, is linked into the program.
pub fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(Arc::new(OpenAiProvider::from_spec(spec)?))
}

llm_core::inventory::submit! {
    ProviderPlugin { kind: KIND, local_by_default: false, build }
}
