//! Integration tests of llm-anthropic: one test binary, one module per area.

mod common;

mod conformance;
mod provider;
mod tools;
