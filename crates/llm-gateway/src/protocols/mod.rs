//! The protocol doors: each turns its requests into `LlmRequest`s and the
//! answers (JSON, streams, errors) back into its own bytes. Nothing else in
//! the pipeline knows which door a request came in by.

pub mod anthropic_messages;
pub mod ollama;
pub mod openai_chat;
pub mod openai_completions;
pub mod openai_embeddings;
pub mod openai_responses;
