//! Integration tests of llm-core: one test binary, one module per area.

mod cache;
mod client;
mod correctness;
mod embeddings;
mod http_limits;
mod metrics;
mod thinking;
mod tools;
