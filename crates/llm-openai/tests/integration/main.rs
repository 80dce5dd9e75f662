//! Integration tests of llm-openai: one test binary, one module per area.

mod config;
mod conformance;
mod embeddings;
mod fidelity;
mod tools;
mod wire_mapping;
