//! Multi-tenancy: virtual keys, limits, budgets and the spend log.
//!
//! A [`Tenancy`] holds the store of keys and spend, a short-lived cache of
//! looked-up keys, the rate limiter, the budget ledger, the spend-log writer
//! and the master key of the admin API. It is built once from the
//! configuration ([`Tenancy::from_config`]) and shared as `Arc<Tenancy>`, so
//! a gateway rebuilt on a configuration reload keeps the same counters,
//! ledgers and pending spend rows ([`crate::Gateway::tenancy`]).

pub mod admin;
pub mod budgets;
pub mod enforce;
pub mod keys;
pub mod limits;
pub mod spend;
pub mod store;
pub mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llm_router::config::GatewayConfig;
use llm_router::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use self::budgets::Ledger;
use self::limits::Limiter;
use self::spend::{SpendConfig, SpendLog};
use self::store::Store;
use self::types::{KeyRecord, StoreError};

/// Environment variable holding the master key when the configuration has
/// none.
pub const MASTER_KEY_ENV: &str = "LLM_MASTER_KEY";

/// Most keys (known and unknown) the lookup cache holds; beyond, it is
/// emptied (lookups go to the store again).
const KEY_CACHE_MAX: usize = 100_000;

/// Longest wait for the store on a key lookup: past it the store counts as
/// unreachable (a cached key is served stale), instead of every request
/// waiting out the pool's own acquire timeout (5-10 s) during an outage.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why tenancy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared counters could not be reached.
    #[error("cannot set up the shared rate-limit and budget counters: {0}")]
    Counters(String),
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A cached lookup: the record (`None`: no key has this hash) and when it
/// was read.
struct Cached {
    record: Option<Arc<KeyRecord>>,
    fetched: Instant,
}

/// Virtual keys, limits, budgets and the spend log of a gateway.
pub struct Tenancy {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    cache_ttl: Duration,
    limiter: Limiter,
    ledger: Ledger,
    spend: SpendLog,
    /// SHA-256 of the master key.
    master: Option<[u8; 32]>,
    /// The master key itself, only to scrub it from error text.
    master_secret: Option<SecretString>,
    default_output_tokens: u32,
    /// Whether the counters are shared (Redis) rather than per process.
    shared_counters: bool,
}

impl std::fmt::Debug for Tenancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenancy")
            .field("master_key", &self.master.map(|_| "[redacted]"))
            .field("cache_ttl", &self.cache_ttl)
            .field("default_output_tokens", &self.default_output_tokens)
            .field("shared_counters", &self.shared_counters)
            .finish_non_exhaustive()
    }
}

/// Whether `config` (with `LLM_MASTER_KEY` from the environment) turns
/// virtual keys on.
pub fn enabled(config: &GatewayConfig) -> bool {
    config.tenancy_enabled() || master_key_from_env().is_some()
}

fn master_key_from_env() -> Option<SecretString> {
    std::env::var(MASTER_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(SecretString::from)
}

impl Tenancy {
    /// Opens the store of `config` (`[gateway.store] url`, the SQLite
    /// default when unset; migrations run), connects the counters (Redis
    /// when `redis_url` is set, else in process) and starts the spend-log
    /// writer. The master key is `[gateway] master_key`, else
    /// `LLM_MASTER_KEY`.
    pub async fn from_config(config: &GatewayConfig) -> Result<Arc<Self>, TenancyError> {
        let s = &config.store;
        let store = store::open(&s.effective_url()).await?;
        let (limiter, ledger) = match &s.redis_url {
            Some(url) => {
                let options = || limits::RedisOptions {
                    timeout: s.redis_timeout.0,
                    ..limits::RedisOptions::default()
                };
                (
                    Limiter::redis_with(url, &s.redis_prefix, options())
                        .await
                        .map_err(|e| TenancyError::Counters(e.to_string()))?,
                    Ledger::redis_with(url, &s.redis_prefix, options())
                        .await
                        .map_err(|e| TenancyError::Counters(e.to_string()))?,
                )
            }
            None => (Limiter::memory(), Ledger::memory()),
        };
        let spend = SpendLog::spawn(
            store.clone(),
            SpendConfig {
                batch_rows: s.spend_batch_rows,
                flush_interval: s.spend_flush_interval.0,
                buffer_rows: s.spend_buffer_rows,
                retention: (s.retention_days > 0)
                    .then(|| Duration::from_secs(u64::from(s.retention_days) * 86_400)),
                ..SpendConfig::default()
            },
        );
        let master = config.master_key.clone().or_else(master_key_from_env);
        Ok(Arc::new(Self {
            store,
            cache: Mutex::new(HashMap::new()),
            cache_ttl: s.key_cache_ttl.0,
            limiter,
            ledger,
            spend,
            master: master.as_ref().map(|k| keys::hash(k.expose_secret())),
            master_secret: master,
            default_output_tokens: s.default_output_tokens,
            shared_counters: s.redis_url.is_some(),
        }))
    }

    /// The store of keys and spend.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The spend-log writer.
    pub fn spend_log(&self) -> &SpendLog {
        &self.spend
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// The budget ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether an admin API is served (a master key is set).
    pub fn has_master_key(&self) -> bool {
        self.master.is_some()
    }

    /// The master key (to scrub it from text that could quote it).
    pub fn master_key(&self) -> Option<&SecretString> {
        self.master_secret.as_ref()
    }

    /// Whether `presented` is the master key (constant time).
    pub fn is_master_key(&self, presented: &str) -> bool {
        match &self.master {
            Some(m) => bool::from(m.ct_eq(&keys::hash(presented))),
            None => false,
        }
    }

    /// Output tokens assumed for a reservation when a request sets none.
    pub fn default_output_tokens(&self) -> u32 {
        self.default_output_tokens
    }

    /// Writes the pending spend rows (tests, shutdown).
    pub async fn flush(&self) {
        self.spend.flush().await;
    }

    /// [`flush`](Self::flush), waiting at most `limit` (the store may be
    /// unreachable). Returns the rows still unwritten when it gave up.
    pub async fn flush_within(&self, limit: std::time::Duration) -> usize {
        match tokio::time::timeout(limit, self.spend.flush()).await {
            Ok(()) => 0,
            Err(_) => self.spend.pending(),
        }
    }

    /// The key whose secret is `presented`: from the cache when it was
    /// read less than `key_cache_ttl` ago, else from the store. When the
    /// store cannot be read, an expired cache entry is used (stale on
    /// error); without one the error is returned.
    pub async fn lookup(&self, presented: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let hash = keys::hash(presented);
        let stale = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.get(&hash) {
                Some(c) if c.fetched.elapsed() < self.cache_ttl => return Ok(c.record.clone()),
                Some(c) => Some(c.record.clone()),
                None => None,
            }
        };
        let looked_up = tokio::time::timeout(LOOKUP_TIMEOUT, self.store.key_by_hash(&hash)).await;
        let result = match looked_up {
            Ok(r) => r,
            Err(_) => Err(StoreError::Query {
                op: "key_by_hash",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {LOOKUP_TIMEOUT:?}"),
                )),
            }),
        };
        let unavailable = result
            .as_ref()
            .err()
            .is_some_and(StoreError::is_unavailable);
        match result {
            Ok(found) => {
                // The store found it by hash; compare again in constant time.
                let record = found
                    .filter(|k| keys::same_hash(&k.hash, &hash))
                    .map(Arc::new);
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= KEY_CACHE_MAX {
                    // Unknown keys go first: a flood of made-up keys must not
                    // evict the real ones (their stale copies carry a store
                    // outage).
                    cache.retain(|_, c| c.record.is_some());
                    if cache.len() >= KEY_CACHE_MAX {
                        cache.clear();
                    }
                }
                cache.insert(
                    hash,
                    Cached {
                        record: record.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(record)
            }
            Err(e) => match stale {
                // Only while the store is unreachable; the entry is stamped
                // again so the next lookups within `key_cache_ttl` do not
                // each wait for the store's timeout.
                Some(record) if unavailable => {
                    tracing::warn!(error = %e, "key store unreachable: using the cached key");
                    let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(c) = cache.get_mut(&hash) {
                        c.fetched = Instant::now();
                    }
                    Ok(record)
                }
                _ => Err(e),
            },
        }
    }

    /// Forgets the cached lookups of key `id` (after an update, rotation or
    /// revocation on this replica).
    pub fn invalidate(&self, id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, c| c.record.as_ref().is_none_or(|r| r.id != id));
    }
}
