//! Core of llm-router: request and response types, the [`Provider`] trait, the
//! plugin [`registry`], [`config`]uration, validation, cost accounting, the
//! cache trait and typed errors.
//!
//! Applications normally depend on the `llm-router` facade crate, which
//! re-exports this crate and links the provider crates chosen by its cargo
//! features. Provider crates depend on this crate alone.

pub mod cache;
pub mod client;
pub mod config;
pub mod cost;
pub mod embed;
pub mod error;
pub mod exec;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
mod model_filter;
pub mod pools;
pub mod provider;
pub mod provider_kit;
pub mod registry;
pub mod router;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
mod types;
mod validate;

pub use async_trait::async_trait;
pub use client::{LlmClient, LlmClientBuilder};
pub use embed::{EmbeddingRequest, EmbeddingResponse};
pub use error::{
    CacheError, ConfigError, ErrorClass, LlmError, ProviderError, ProviderErrorKind,
    ValidationError,
};
pub use inventory;
pub use model_filter::{glob_match, ModelFilter};
pub use provider::{Provider, ProviderProfile};
pub use registry::{ProviderPlugin, ProviderSpec};
pub use secrecy::{ExposeSecret, SecretString};
pub use types::{
    Attempt, AttemptOutcome, CacheDirective, Capability, EventStream, FinishReason, ImageData,
    ImageInput, LlmRequest, LlmResponse, Message, ResponseFormat, ResponseStream, Role,
    StreamEvent, Thinking, ThinkingAssembler, ThinkingBlock, TokenLogprob, Tool, ToolCall,
    ToolCallAssembler, ToolChoice, TopLogprob, Usage, DEFAULT_TEMPERATURE, MIN_THINKING_BUDGET,
};
pub use validate::{validate, MAX_TOOLS};
