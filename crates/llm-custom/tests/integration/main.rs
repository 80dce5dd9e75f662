//! Integration tests of llm-custom: one test binary, one module per area.

mod conformance_ndjson;
mod conformance_sse;
mod embed;
mod provider;
