//! Redis response cache for llm-router.
//!
//! [`RedisCache`] implements [`llm_core::cache::ResponseCache`] on Redis, so
//! several processes (gateway replicas, CLI runs) share cached answers. Entries
//! are `SET prefix+key value EX ttl`, the value being
//! [`CachedResponse::encode`](llm_core::cache::CachedResponse::encode)'s
//! versioned bytes.
//!
//! Embedding vectors are cached per input the same way, under the same prefix
//! and TTL: one byte of their own (so an answer is never read as a vector, nor
//! a vector as an answer), then the values as little-endian `f32`
//! ([`vector_to_bytes`](llm_core::embed::vector_to_bytes)). A batch is looked
//! up with one `MGET` and stored with one pipeline of `SET … EX`; an entry
//! that is not a vector is a miss.
//!
//! ```toml
//! [caching]
//! backend = "redis"
//! redis_url = "redis://:password@127.0.0.1:6379/0"
//! key_prefix = "llm:"     # default
//! ttl = 3600              # seconds, default
//! redis_timeout = 0.05    # per-operation timeout in seconds, default
//! max_entry_bytes = 1048576   # largest entry stored, default (1 MiB)
//! ```
//!
//! TLS: a `rediss://` URL connects over TLS (rustls). The server certificate
//! is checked against the public roots (Mozilla's, from `webpki-roots`), or,
//! for a private CA, against the CAs of `redis_ca_file` (PEM) instead:
//!
//! ```toml
//! [caching]
//! backend = "redis"
//! redis_url = "rediss://:password@redis.internal:6380/0"
//! redis_ca_file = "/etc/llm-router/redis-ca.pem"   # optional
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use llm_cache_redis::RedisCache;
//! use llm_core::config::CachingConfig;
//!
//! let cache = RedisCache::from_config(&CachingConfig::default())?;
//! # let _ = cache;
//! # Ok(()) }
//! ```
//!
//! Behaviour when Redis misbehaves:
//! - Construction never connects, so it succeeds with Redis down; inside a
//!   Tokio runtime it starts connecting in the background at once. It fails
//!   only on an invalid configuration ([`ConfigError`](llm_core::ConfigError)):
//!   a bad URL, a zero timeout, a CA file that cannot be read or holds no
//!   certificate, a CA file with a plain `redis://` URL.
//! - A TLS failure (untrusted or expired certificate, wrong host name) is an
//!   outage like a refused connection: lookups are misses, one warning names
//!   the certificate problem.
//! - Every `get`/`set` is bounded by the operation timeout (connection wait
//!   included). Redis down, slow or holding garbage under a key gives a
//!   [`CacheError`], which the client turns into a miss.
//! - On an outage (connection refused or lost, three timeouts in a row, failed
//!   authentication), operations fail fast while one background task
//!   reconnects every retry interval (1 s); one warning is logged when the
//!   outage starts and one info line when Redis is back.
//! - Entry size: an answer larger than `max_entry_bytes` is not stored (the
//!   `set` fails, which the client counts as a cache error; one warning per
//!   cache). A lookup first reads the entry's length and at most its first
//!   32 KiB; a larger entry already in Redis is a miss and never transferred.
//!   Entries between 32 KiB and `max_entry_bytes` travel on a second
//!   connection with a timeout that grows with their size, so a slow transfer
//!   neither holds up other operations nor counts toward the outage rule
//!   (only timeouts of the small operations do). Vectors follow the same
//!   limit: one larger than `max_entry_bytes` is not stored, and one found
//!   larger is a miss (`MGET` has brought it back by then); a batched lookup whose reply may exceed 32 KiB (more
//!   than two vectors of 4096 dimensions) goes on the second connection.
//! - The URL's password never appears in `Debug` output, logs or errors.

mod cache;
mod client;
mod config;
mod health;
mod redact;

pub use cache::RedisCache;

use std::sync::Arc;

use llm_core::cache::ResponseCache;
use llm_core::config::CachingConfig;
use llm_core::CacheError;

/// Builds the `redis` backend for `[caching] backend = "redis"`.
pub fn build(cfg: &CachingConfig) -> Result<Arc<dyn ResponseCache>, CacheError> {
    let cache =
        RedisCache::from_config(cfg).map_err(|e| CacheError::new("redis", e.to_string()))?;
    Ok(Arc::new(cache))
}

llm_core::inventory::submit! {
    llm_core::registry::CachePlugin { backend: "redis", build }
}
pub use config::{
    RedisCacheBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_RETRY_INTERVAL, DEFAULT_TIMEOUT,
};
