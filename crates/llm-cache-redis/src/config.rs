//! Building a [`RedisCache`]: from the `[caching]` section or by hand.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use llm_core::config::CachingConfig;
use llm_core::ConfigError;

use crate::cache::RedisCache;
use crate::redact::redact_url;

/// Default key prefix (same as `[caching] key_prefix`).
pub const DEFAULT_KEY_PREFIX: &str = "llm:";
/// Default per-operation timeout (same as `[caching] redis_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// Default bound on one connection attempt (TCP connect, handshake, first read).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default pause between reconnection attempts while Redis is down.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Default largest entry stored or read, in encoded bytes (same as
/// `[caching] max_entry_bytes`): 1 MiB.
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 1024 * 1024;

impl RedisCache {
    /// A cache configured by the `[caching]` section (`redis_url`, `key_prefix`,
    /// `redis_timeout`, `redis_ca_file`, `max_entry_bytes`). The entry TTL
    /// (`ttl`) is passed by the client on each `set`.
    ///
    /// Does not connect: it fails only on an invalid configuration, never
    /// because Redis is down. Called inside a Tokio runtime it starts
    /// connecting in the background at once; otherwise on first use.
    pub fn from_config(config: &CachingConfig) -> Result<Self, ConfigError> {
        let mut builder = Self::builder(&config.redis_url)
            .key_prefix(&config.key_prefix)
            .timeout(config.redis_timeout.0)
            .max_entry_bytes(config.max_entry_bytes);
        if let Some(path) = &config.redis_ca_file {
            builder = builder.ca_file(path);
        }
        builder.build()
    }

    /// A builder for a cache on `url`: `redis://[[user]:password@]host[:port][/db]`,
    /// or `rediss://…` for TLS.
    pub fn builder(url: impl Into<String>) -> RedisCacheBuilder {
        RedisCacheBuilder {
            url: url.into(),
            ca_file: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
        }
    }
}

/// Options of a [`RedisCache`]; [`build`](Self::build) makes it.
///
/// ```
/// use std::time::Duration;
/// use llm_cache_redis::RedisCache;
///
/// let cache = RedisCache::builder("redis://:s3cret@127.0.0.1:6379/0")
///     .key_prefix("myapp:llm:")
///     .timeout(Duration::from_millis(20))
///     .build()
///     .unwrap();
/// assert!(!format!("{cache:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct RedisCacheBuilder {
    pub(crate) url: String,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) key_prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) max_entry_bytes: u64,
}

impl RedisCacheBuilder {
    /// Prefix of every key written (default `llm:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Bound on one `get` or `set`, connection wait included (default 50 ms).
    /// Must be greater than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on one background connection attempt (default 1 s; never less
    /// than the operation timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// PEM file of the certificate authority (or authorities) that signed the
    /// server certificate of a `rediss://` URL, for a private CA. These CAs are
    /// then trusted instead of the public roots (webpki-roots). Read by
    /// [`build`](Self::build); only valid with a `rediss://` URL.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Largest entry stored or read, in encoded bytes (default 1 MiB). Must be
    /// greater than zero.
    ///
    /// A larger answer is not stored (`set` returns an error saying so, and
    /// one warning is logged); a larger entry already in Redis (written with
    /// a higher limit) is a miss, and is not transferred.
    pub fn max_entry_bytes(mut self, bytes: u64) -> Self {
        self.max_entry_bytes = bytes;
        self
    }

    /// Pause between reconnection attempts while Redis is down (default 1 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// The cache. Fails only on an invalid configuration (a URL that does not
    /// parse, a zero timeout or entry size, a CA file that cannot be read or holds no valid
    /// certificate, a CA file with a non-TLS URL); never connects, so it
    /// succeeds with Redis down.
    ///
    /// For a `rediss://` URL it installs rustls' `ring` crypto provider as the
    /// process default when none is installed yet: an application that wants
    /// another provider installs it before building the cache.
    pub fn build(self) -> Result<RedisCache, ConfigError> {
        if self.timeout.is_zero() {
            return Err(
                ConfigError::new("must be greater than zero").with_key("caching.redis_timeout")
            );
        }
        if self.max_entry_bytes == 0 {
            return Err(
                ConfigError::new("must be greater than zero").with_key("caching.max_entry_bytes")
            );
        }
        RedisCache::new(self)
    }
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheBuilder")
            .field("url", &redact_url(&self.url))
            .field("ca_file", &self.ca_file)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish()
    }
}
