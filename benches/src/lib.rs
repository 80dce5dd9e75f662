//! Benchmarks of llm-router live in `benches/`; the gateway load harness in `src/bin/`.
