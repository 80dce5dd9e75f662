//! The gateway's protocol doors through real HTTP, against mock upstreams of
//! every provider kind answering with the bytes each API sends: one test
//! binary, one module per door.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic_messages;
mod anthropic_thinking;
mod common;
mod completions;
mod embeddings;
mod health_drain;
mod ollama;
mod responses;
mod tenancy_enforce;
mod tenancy_limits;
mod tenancy_store;
