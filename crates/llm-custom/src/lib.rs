//! The `custom` provider for llm-router: any HTTP JSON model API, described in
//! configuration instead of code.
//!
//! It sends a JSON body built from a template to `base_url + generate_path`
//! and reads the answer through JSON pointers. The defaults are the original
//! design's private-model API:
//!
//! ```text
//! POST /generate  {"model": "...", "prompt": "...", "max_tokens": 300,
//!                  "temperature": 0.7, "system_prompt": "..."}
//! 200             {"content": "..."}          (or {"text": "..."})
//! GET  /health    any 2xx = available
//! ```
//!
//! `max_tokens`, `temperature` and `system_prompt` are sent only when the
//! request sets them. `prompt` is a lone user message as it is; a longer
//! conversation is labelled turn by turn (`User: …`, `Assistant: …`, blank-line
//! separated). Templates that want the turns as data use `{{messages}}`.
//!
//! # Configuration
//!
//! ```toml
//! [llm_providers.custom]
//! base_url = "${CUSTOM_LLM_URL:-http://localhost:8080}"   # required
//! api_key = "${CUSTOM_LLM_API_KEY:-}"                     # optional bearer token
//! models = ["private-model"]
//! default_model = "private-model"
//! cost_per_1k_tokens = 0.005
//! timeout = 120
//! # Everything below is optional; the values shown are the defaults.
//! generate_path = "/generate"
//! health_path = "/health"
//! content_pointers = ["/content", "/text"]   # first that holds a string wins
//! error_pointer = "/error"
//! stream = "none"                            # none | ndjson | sse
//! ```
//!
//! A different API, e.g. a chat endpoint that streams NDJSON:
//!
//! ```toml
//! [llm_providers.gpu-box]
//! kind = "custom"
//! base_url = "http://10.0.0.5:9000"
//! generate_path = "/v1/chat"
//! models_path = "/v1/models"                 # {"models": [{"id": "..."}]}
//! models_pointer = "/models"
//! headers = { "X-Tenant" = "novels" }
//! content_pointers = ["/output/text"]
//! prompt_tokens_pointer = "/usage/input"
//! completion_tokens_pointer = "/usage/output"
//! finish_reason_pointer = "/output/finish"
//! stream = "ndjson"
//! stream_flag = "stream"                     # "stream": true when streaming, false otherwise
//! delta_pointer = "/output/delta"
//! stream_done_pointer = "/done"
//!
//! [llm_providers.gpu-box.request_template]
//! model = "{{model}}"
//! messages = "{{messages}}"
//! parameters = { max_new_tokens = "{{max_tokens}}", temperature = "{{temperature}}", top_p = "{{top_p}}", stop = "{{stop}}" }
//! ```
//!
//! Credentials in `base_url` (`https://user:pass@host`) are sent as HTTP basic
//! authentication and never appear in `Debug` output or errors.
//!
//! # Template placeholders
//!
//! A string value that is exactly one placeholder is replaced by the request's
//! value with its JSON type; any other value is sent as written. A placeholder
//! with no value removes its key (or array element).
//!
//! | placeholder             | value                                                        |
//! |-------------------------|--------------------------------------------------------------|
//! | `{{prompt}}`            | the conversation without system messages: a lone user message as it is, else one `User:` / `Assistant:` / `Tool:` paragraph per turn |
//! | `{{system_prompt}}`     | the system prompt and any system messages, blank-line separated; absent if none |
//! | `{{messages}}`          | `[{"role", "content"}]`, the system prompt first as a `system` message |
//! | `{{model}}`             | the request's model (the instance's default for a direct call without one; absent if none is known) |
//! | `{{max_tokens}}`        | number; absent if unset                                      |
//! | `{{temperature}}`       | number; absent if unset                                      |
//! | `{{top_p}}`             | number; absent if unset                                      |
//! | `{{stop}}`              | array of strings; absent if empty                            |
//! | `{{seed}}`              | number; absent if unset                                      |
//! | `{{frequency_penalty}}` | number; absent if unset                                      |
//! | `{{presence_penalty}}`  | number; absent if unset                                      |
//! | `{{user}}`              | string; absent if unset                                      |
//! | `{{response_format}}`   | OpenAI's object: `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {"name", "description"?, "schema", "strict"?}}`; absent if unset |
//! | `{{json_schema}}`       | the schema of a `json_schema` response format; absent otherwise |
//!
//! # Capabilities
//!
//! The router sends an instance only the requests it can honour
//! ([`llm_core::Provider::supports`]). A `custom` instance has
//! `response_format` `json_object` when its template uses
//! `{{response_format}}`; `json_schema` when it uses `{{response_format}}` or
//! `{{json_schema}}`; penalties when it uses both `{{frequency_penalty}}` and
//! `{{presence_penalty}}`; embeddings with `embed_path` set, for the models
//! in `embedding_models`. It has no tools, images, logprobs or pass-through
//! fields.
//!
//! # Embeddings
//!
//! With `embed_path` set, [`llm_core::Provider::embed`] posts a body built
//! from `embed_template` (placeholders `{{inputs}}`, the batch as an array of
//! strings; `{{model}}`; `{{dimensions}}`, absent if unset; default
//! `{"model": "{{model}}", "input": "{{inputs}}", "dimensions": "{{dimensions}}"}`)
//! and reads one vector per input, in order, at `embeddings_pointer` (default
//! `/embeddings`; items are arrays of numbers or objects with an `embedding`
//! array), and the input tokens at `embed_tokens_pointer`. Another number of
//! vectors is a decode error. The instance claims embeddings only with
//! `embed_path` set, for the models in `embedding_models`; a request with
//! `dimensions` to a template without `{{dimensions}}` is refused.
//!
//! # Usage and cost
//!
//! Token counts come from the usage pointers (counts beyond `u64::MAX`
//! saturate). A count the API does not report is derived from the reported
//! total when possible, else estimated with the workspace estimator,
//! [`llm_core::tokens::estimate_usage`]. The client prices the usage; the
//! provider reports a cost of 0.
//!
//! # Errors
//!
//! A non-2xx answer is an HTTP error with its status, request id and
//! `Retry-After`. Its body is parsed first and read at `error_pointer`
//! (message and `code`/`type`); only the message kept is shortened to 1,000
//! bytes, so long JSON bodies keep both. A body that holds no error there is
//! kept as text, shortened the same way. [`llm_core::Provider::check`] probes
//! `health_path` and says why it failed.
//!
//! # Streaming
//!
//! With `stream = "ndjson"` each line, and with `stream = "sse"` each `data:`
//! payload, is a JSON object: its delta becomes a text event, usage and finish
//! reason are collected, an error at `error_pointer` ends the stream with an
//! error, and the end marker (`stream_done_pointer`, `true` or a non-empty
//! string; for SSE also `data: [DONE]`) ends it with usage and `Done`. A stream
//! that stops before its end marker yields an incomplete-answer error.

mod config;
mod error;
mod provider;
mod stream;
mod template;
mod wire;

use std::sync::Arc;

use llm_core::{ConfigError, Provider, ProviderSpec};

pub use config::{CustomConfig, StreamMode};
pub use provider::CustomProvider;

/// The provider kind this crate registers.
pub const KIND: &str = "custom";

/// The factory registered for the kind `custom`.
///
/// Referencing it from another crate also guarantees that this crate, and so
/// its registration, is linked into the program.
pub fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(Arc::new(CustomProvider::from_spec(spec)?))
}

llm_core::inventory::submit! {
    llm_core::ProviderPlugin { kind: KIND, local_by_default: false, build }
}
