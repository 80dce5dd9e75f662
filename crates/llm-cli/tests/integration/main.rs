//! Integration tests of llm-cli and its gateway: one test binary, one module per area.

mod common;

mod cli;
mod fidelity;
mod gateway;
mod lifecycle;
mod openai_sdk;
mod tools;
