//! Reliability and security proof of llm-router: fault-injecting upstreams,
//! the chaos suite, the soak, fuzzing entry points and secret hygiene.
//!
//! - [`upstream::Upstream`]: an HTTP server on 127.0.0.1 that speaks the
//!   OpenAI Chat Completions wire format (JSON and SSE) or Ollama's native
//!   `/api/chat` (JSON and NDJSON) with the exact bytes of the real services,
//!   and injects [`fault::Fault`]s as its [`fault::Role`] says: 429 with
//!   `Retry-After`, 500/502/503/529, accept-then-hang, resets, a refused port,
//!   bodies and streams cut mid-way, missing terminators, in-band errors, slow
//!   drips, stalls, garbage and huge bodies.
//! - [`suite::run`]: thousands of concurrent requests through the client or the
//!   gateway while the trouble rotates over three upstreams (one always
//!   healthy), then the checks: exactly one answer per request, every answer
//!   complete and correct or a typed error, upstream calls within the retry
//!   budget, nothing wrong ever cached, breakers trip and recover.
//! - [`cluster`]: three `llm serve` processes, one Redis and a load
//!   generator balancing on readiness: a replica killed, drained, every
//!   replica reloaded, Redis restarted, all under load.
//! - [`decode`]: the decoding entry points the fuzz targets and the corpus
//!   replay test drive (configuration, SSE and NDJSON framing, provider
//!   response and stream decoders).
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use llm_chaos::suite::{run, Settings};
//!
//! let report = run(Settings { requests: 500, ..Settings::default() }).await?;
//! println!("{}", report.table());
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```

pub mod audit;
pub mod cluster;
pub mod decode;
pub mod fault;
pub mod http1;
pub mod monitor;
pub mod protocol;
pub mod redis;
pub mod soak;
pub mod suite;
pub mod upstream;
