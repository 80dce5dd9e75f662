//! Integration tests of llm-anthropic: one test binary, one module per area.

mod common;

mod conformance;
mod fidelity;
mod provider;
mod thinking;
mod tools;
