//! Benchmarks of llm-router and the gateway load harness.
//!
//! - `benches/` (`cargo bench -p llm-benches`): criterion benchmarks of the
//!   client path (`LlmClient::generate` against a local upstream versus the
//!   same call made directly with reqwest, a cache hit, routing decisions,
//!   stream decoding throughput, cache keys).
//! - `src/bin/gateway_bench.rs` (`cargo run --release -p llm-benches --bin
//!   gateway_bench`): an open-loop load test of `llm serve` against a fake
//!   upstream, compared with the same load sent to the upstream directly.
//!
//! The library holds what both share: the [`fixtures`] (exact wire bytes),
//! the fake [`upstream`] server, the [`load`] generator, [`stats`] and
//! [`procstat`]. Results and method: `docs/benchmarks.md`.

pub mod fixtures;
pub mod gateway;
pub mod load;
pub mod procstat;
pub mod stats;
pub mod upstream;
