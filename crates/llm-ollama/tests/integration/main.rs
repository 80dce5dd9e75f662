//! Integration tests of llm-ollama: one test binary, one module per area.

mod conformance;
mod embed;
mod fidelity;
mod provider;
mod pull;
mod service;
mod tools;
