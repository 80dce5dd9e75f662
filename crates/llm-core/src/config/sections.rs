//! Typed `[routing]`, `[caching]`, `[monitoring]` and `[gateway]` sections.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ConfigError;

/// Longest duration a configuration accepts (one year, [`Secs::MAX_SECS`]):
/// a larger one would overflow the clock arithmetic of deadlines and TTLs.
const MAX_CONFIG_SECS: f64 = 31_536_000.0;

/// A non-negative number of seconds (integer or fraction) in the
/// configuration, at most one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Secs(pub Duration);

impl Secs {
    /// Largest value accepted from a configuration file: one year, in seconds.
    pub const MAX_SECS: u64 = 31_536_000;

    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Secs(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Secs(Duration::from_millis(ms))
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v > MAX_CONFIG_SECS {
            return Err(serde::de::Error::custom(format!(
                "expected at most {MAX_CONFIG_SECS} seconds (one year), got {v}"
            )));
        }
        Duration::try_from_secs_f64(v).map(Secs).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a non-negative number of seconds, got {v}"
            ))
        })
    }
}

/// How providers are ordered when no rule picks one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Cheapest first (by cost weight, ascending). The default.
    #[default]
    CostOptimized,
    /// Strongest first (by performance weight, descending).
    PerformanceFirst,
    /// Local providers first, then by cost.
    LocalFirst,
    /// Fastest first, by a moving average of observed latency.
    Latency,
    /// Weighted random order, spreading load over several instances.
    Weighted,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::CostOptimized => "cost_optimized",
            Strategy::PerformanceFirst => "performance_first",
            Strategy::LocalFirst => "local_first",
            Strategy::Latency => "latency",
            Strategy::Weighted => "weighted",
        })
    }
}

/// Fallback sequences per primary instance (or kind).
pub type FallbackMap = BTreeMap<String, Vec<String>>;

/// `[routing.rules]`: task classification thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// A prompt shorter than this many characters may be simple (default 1000).
    pub simple_max_chars: usize,
    /// …and `max_tokens` below this (default 2000).
    pub simple_max_tokens: u32,
    /// A prompt longer than this many characters is complex (default 5000).
    pub complex_min_chars: usize,
    /// `max_tokens` above this is complex (default 3000).
    pub complex_min_tokens: u32,
    /// Words that make a prompt complex (default 创意, 创作).
    pub complex_keywords: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            simple_max_chars: 1000,
            simple_max_tokens: 2000,
            complex_min_chars: 5000,
            complex_min_tokens: 3000,
            complex_keywords: vec!["创意".into(), "创作".into()],
        }
    }
}

/// `[routing.retry]`: retries of transient failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries per provider after the first call (default 2).
    pub max_retries: u32,
    /// First backoff (default 0.25 s); doubles each retry, with full jitter.
    pub backoff_base: Secs,
    /// Largest backoff (default 8 s).
    pub backoff_max: Secs,
    /// A `Retry-After` longer than this moves on to the next provider instead of
    /// waiting (default 10 s).
    pub max_retry_after: Secs,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            backoff_base: Secs::from_millis(250),
            backoff_max: Secs::from_secs(8),
            max_retry_after: Secs::from_secs(10),
        }
    }
}

/// `[routing.health]`: availability probes and the circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// How long an `is_available()` result is trusted (default 30 s).
    pub check_interval: Secs,
    /// Consecutive failures that open the circuit (default 3).
    pub failure_threshold: u32,
    /// Error ratio over the window that opens the circuit (default 0.5).
    pub error_ratio: f64,
    /// Outcomes remembered for the error ratio (default 20).
    pub window: u32,
    /// Outcomes needed in the window before the ratio counts (default 10).
    pub min_requests: u32,
    /// First open period (default 5 s); doubles on each repeated trip.
    pub cooldown: Secs,
    /// Longest open period (default 300 s).
    pub max_cooldown: Secs,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check_interval: Secs::from_secs(30),
            failure_threshold: 3,
            error_ratio: 0.5,
            window: 20,
            min_requests: 10,
            cooldown: Secs::from_secs(5),
            max_cooldown: Secs::from_secs(300),
        }
    }
}

/// `[routing]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Ordering strategy (default `cost_optimized`).
    pub strategy: Strategy,
    /// Cost weight per instance or kind (lower is cheaper).
    pub cost_weights: BTreeMap<String, f64>,
    /// Performance weight per instance or kind (higher is stronger).
    pub performance_weights: BTreeMap<String, f64>,
    /// Load-balancing weight per instance for the `weighted` strategy (default 1).
    pub weights: BTreeMap<String, f64>,
    /// Fallback sequence per primary instance or kind.
    pub fallback: FallbackMap,
    /// Classification rules.
    pub rules: RulesConfig,
    /// Model name → per-instance replacement, used when falling back.
    pub model_aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// Bound on a whole call, fallbacks included (default 600 s).
    pub deadline: Secs,
    /// Retries.
    pub retry: RetryConfig,
    /// Health checks and circuit breaking.
    pub health: HealthConfig,
    /// Embedding model of requests that name none.
    pub default_embedding_model: Option<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let map = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        };
        let seq = |names: &[&str]| names.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        Self {
            strategy: Strategy::CostOptimized,
            cost_weights: map(&[("openai", 1.0), ("ollama", 0.0), ("custom", 0.5)]),
            performance_weights: map(&[("openai", 1.0), ("ollama", 0.7), ("custom", 0.8)]),
            weights: BTreeMap::new(),
            fallback: [
                ("openai".to_string(), seq(&["ollama", "custom"])),
                ("ollama".to_string(), seq(&["openai", "custom"])),
                ("custom".to_string(), seq(&["ollama", "openai"])),
            ]
            .into_iter()
            .collect(),
            rules: RulesConfig::default(),
            model_aliases: BTreeMap::new(),
            deadline: Secs::from_secs(600),
            retry: RetryConfig::default(),
            health: HealthConfig::default(),
            default_embedding_model: None,
        }
    }
}

impl RoutingConfig {
    /// Checks values serde cannot: returns the offending key and why.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.deadline.0.is_zero() {
            return Err(("deadline", "must be more than 0 s".into()));
        }
        if self.retry.backoff_base > self.retry.backoff_max {
            return Err((
                "backoff_base",
                "must not be larger than `backoff_max`".into(),
            ));
        }
        if self.health.failure_threshold == 0 {
            return Err(("failure_threshold", "must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.health.error_ratio) {
            return Err(("error_ratio", "must be between 0 and 1".into()));
        }
        if self.health.cooldown > self.health.max_cooldown {
            return Err(("cooldown", "must not be larger than `max_cooldown`".into()));
        }
        for (name, w) in self
            .cost_weights
            .iter()
            .chain(&self.performance_weights)
            .chain(&self.weights)
        {
            if !w.is_finite() || *w < 0.0 {
                return Err((
                    "weights",
                    format!("weight of `{name}` must be a non-negative number"),
                ));
            }
        }
        Ok(())
    }
}

/// Cache storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In-process moka cache (default).
    #[default]
    Memory,
    /// Redis, through the `llm-cache-redis` crate.
    Redis,
}

/// Whether the cache is read, written or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Read and write (default).
    #[default]
    ReadWrite,
    /// Only answer from the cache; never store.
    ReadOnly,
    /// Only store; never answer from the cache.
    WriteOnly,
}

/// `[caching]`. Its `Debug` hides the password of `redis_url`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CachingConfig {
    /// Whether responses are cached (default true).
    pub enabled: bool,
    /// Storage (default `memory`).
    pub backend: CacheBackend,
    /// Redis URL for the `redis` backend.
    pub redis_url: String,
    /// Entry lifetime (default 3600 s).
    pub ttl: Secs,
    /// Memory budget of the `memory` backend in bytes (default 256 MiB).
    pub max_bytes: u64,
    /// Key prefix of the `redis` backend (default `llm:`).
    pub key_prefix: String,
    /// Requests with a higher temperature are not cached.
    pub max_temperature: Option<f32>,
    /// Read/write mode (default `read_write`).
    pub mode: CacheMode,
    /// Per-operation timeout of the `redis` backend (default 0.05 s).
    pub redis_timeout: Secs,
    /// PEM file of the CA(s) that sign the `rediss://` server's certificate,
    /// trusted instead of the public roots (default none: public roots).
    pub redis_ca_file: Option<PathBuf>,
    /// Largest entry the `redis` backend stores or reads, in encoded bytes
    /// (default 1 MiB); larger answers are not cached.
    pub max_entry_bytes: u64,
}

impl Default for CachingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: CacheBackend::Memory,
            redis_url: "redis://localhost:6379".into(),
            ttl: Secs::from_secs(3600),
            max_bytes: 256 * 1024 * 1024,
            key_prefix: "llm:".into(),
            max_temperature: None,
            mode: CacheMode::ReadWrite,
            redis_timeout: Secs::from_millis(50),
            redis_ca_file: None,
            max_entry_bytes: 1024 * 1024,
        }
    }
}

impl fmt::Debug for CachingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingConfig")
            .field("enabled", &self.enabled)
            .field("backend", &self.backend)
            .field("redis_url", &redact_url(&self.redis_url))
            .field("ttl", &self.ttl)
            .field("max_bytes", &self.max_bytes)
            .field("key_prefix", &self.key_prefix)
            .field("max_temperature", &self.max_temperature)
            .field("mode", &self.mode)
            .field("redis_timeout", &self.redis_timeout)
            .field("redis_ca_file", &self.redis_ca_file)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish()
    }
}

/// `scheme://user:password@host…` → `scheme://***@host…`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// `[monitoring]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Whether metrics are recorded and served (default true).
    pub enabled: bool,
    /// Port of the `/metrics` endpoint (default 8000; 0 picks a free port).
    pub prometheus_port: u16,
    /// Address the `/metrics` endpoint binds to (default 127.0.0.1).
    pub prometheus_host: String,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prometheus_port: 8000,
            prometheus_host: "127.0.0.1".into(),
        }
    }
}

/// `[gateway]`: the OpenAI-compatible server of `llm serve`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Listen address (default `127.0.0.1:8000`).
    pub addr: String,
    /// Bearer keys clients must present; none means open (loopback only advised).
    #[serde(deserialize_with = "secret_list")]
    pub api_keys: Vec<SecretString>,
    /// Largest request body in bytes (default 4 MiB).
    pub max_body_bytes: usize,
    /// Requests handled at once; more get 429 (default 512).
    pub max_concurrency: usize,
    /// Threads serving connections, each with a single-threaded runtime (on
    /// Linux each with its own listening socket on `addr`, the kernel
    /// spreading connections over them; elsewhere they share one); 0 (the
    /// default): one per available core.
    pub workers: usize,
    /// Bound on one request (default 600 s).
    pub request_timeout: Secs,
    /// Time in-flight requests get to finish at shutdown (default 30 s).
    pub shutdown_grace: Secs,
    /// After SIGTERM, how long the listener keeps accepting while readiness
    /// already says "draining", so load balancers stop sending first
    /// (default 5 s).
    pub drain_delay: Secs,
    /// Reload the configuration when its file changes (polled every few
    /// seconds), as on SIGHUP (default false).
    pub watch_config: bool,
    /// Browser origins allowed to call the gateway (exact origins such as
    /// `https://app.example.com`, or `"*"`); empty (the default): no CORS.
    pub cors_origins: Vec<String>,
    /// Key of the admin API (`/admin/*`); also read from `LLM_MASTER_KEY` by
    /// `llm serve`. Unset: no admin API.
    #[serde(deserialize_with = "optional_secret")]
    pub master_key: Option<SecretString>,
    /// `[gateway.store]`: virtual keys, budgets and the spend log.
    pub store: StoreConfig,
}

/// `[gateway.store]`: where virtual keys and the spend log live, and where
/// the rate-limit and budget counters are shared.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Database of keys and spend: `sqlite://path` (created on first start;
    /// a relative path is relative to the configuration file's directory)
    /// or `postgres://…`. Unset: virtual keys are off unless a master key is
    /// set, in which case [`StoreConfig::DEFAULT_URL`] is used.
    pub url: Option<String>,
    /// Redis holding the RPM/TPM/concurrency counters and budget ledgers
    /// shared by every replica; unset: counters live in this process.
    pub redis_url: Option<String>,
    /// Prefix of the counters' Redis keys (default `llm-router:tenancy:`).
    pub redis_prefix: String,
    /// Bound on each call to that Redis (default 0.1 s); a call that takes
    /// longer is admitted (fail open) and counted.
    pub redis_timeout: Secs,
    /// Spend rows written to the database per batch (default 500).
    pub spend_batch_rows: usize,
    /// Longest time a spend row waits before its batch is written (default 1 s).
    pub spend_flush_interval: Secs,
    /// Spend rows held while the database is slow or down; more are dropped
    /// and counted (default 100000).
    pub spend_buffer_rows: usize,
    /// Days raw spend rows are kept (daily aggregates are kept); 0 keeps
    /// them forever (default 90).
    pub retention_days: u32,
    /// How long a looked-up virtual key is trusted before it is read again
    /// (default 5 s): a revocation takes effect within this time.
    pub key_cache_ttl: Secs,
    /// Output tokens assumed for a budget reservation when a request sets no
    /// output limit (default 1024).
    pub default_output_tokens: u32,
    /// The configuration file's directory, where the default database and
    /// relative `sqlite:` paths live (set when loaded from a file).
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

impl StoreConfig {
    /// The database used when virtual keys are on and `url` is unset.
    pub const DEFAULT_URL: &'static str = "sqlite://llm-router.db";

    /// The database URL in force: `url`, else [`Self::DEFAULT_URL`] (in the
    /// configuration file's directory when there is one).
    pub fn effective_url(&self) -> String {
        match (&self.url, &self.base_dir) {
            (Some(url), _) => url.clone(),
            (None, Some(dir)) => format!("sqlite://{}", dir.join("llm-router.db").display()),
            (None, None) => Self::DEFAULT_URL.to_string(),
        }
    }

    /// Makes a relative `sqlite:` path in `url` relative to `dir` (the
    /// configuration file's directory), so `llm serve` and `llm keys`
    /// started from different directories open the same database.
    pub fn anchor_sqlite(&mut self, dir: &std::path::Path) {
        self.base_dir = Some(dir.to_path_buf());
        let Some(url) = &self.url else { return };
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return;
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() || path.starts_with(':') || std::path::Path::new(path).is_absolute() {
            return;
        }
        let joined = dir.join(path);
        self.url = Some(match query {
            Some(q) => format!("sqlite://{}?{q}", joined.display()),
            None => format!("sqlite://{}", joined.display()),
        });
    }

    /// Checks the values a gateway cannot start with; `(key, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err((
                    "url",
                    format!(
                        "expected sqlite://path or postgres://…, got `{}`",
                        redact_url(url)
                    ),
                ));
            }
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err((
                    "redis_url",
                    format!(
                        "expected redis://… or rediss://…, got `{}`",
                        redact_url(url)
                    ),
                ));
            }
        }
        if self.spend_batch_rows == 0 {
            return Err(("spend_batch_rows", "must be at least 1".into()));
        }
        if self.spend_buffer_rows < self.spend_batch_rows {
            return Err((
                "spend_buffer_rows",
                "must be at least spend_batch_rows".into(),
            ));
        }
        if self.redis_timeout.0.is_zero() {
            return Err(("redis_timeout", "must be more than 0".into()));
        }
        if self.spend_flush_interval.0.is_zero() {
            return Err(("spend_flush_interval", "must be more than 0".into()));
        }
        Ok(())
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            redis_url: None,
            redis_prefix: "llm-router:tenancy:".into(),
            redis_timeout: Secs::from_millis(100),
            spend_batch_rows: 500,
            spend_flush_interval: Secs::from_secs(1),
            spend_buffer_rows: 100_000,
            retention_days: 90,
            key_cache_ttl: Secs::from_secs(5),
            default_output_tokens: 1024,
            base_dir: None,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("spend_batch_rows", &self.spend_batch_rows)
            .field("spend_flush_interval", &self.spend_flush_interval)
            .field("spend_buffer_rows", &self.spend_buffer_rows)
            .field("retention_days", &self.retention_days)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("default_output_tokens", &self.default_output_tokens)
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8000".into(),
            api_keys: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            max_concurrency: 512,
            workers: 0,
            request_timeout: Secs::from_secs(600),
            shutdown_grace: Secs::from_secs(30),
            drain_delay: Secs::from_secs(5),
            watch_config: false,
            cors_origins: Vec::new(),
            master_key: None,
            store: StoreConfig::default(),
        }
    }
}

impl GatewayConfig {
    pub(crate) fn expand_keys(
        &mut self,
        expand: impl Fn(&str) -> Result<String, ConfigError>,
    ) -> Result<(), ConfigError> {
        let mut out = Vec::with_capacity(self.api_keys.len());
        for k in &self.api_keys {
            let v = expand(k.expose_secret())?;
            if !v.is_empty() {
                out.push(SecretString::from(v));
            }
        }
        self.api_keys = out;
        if let Some(k) = &self.master_key {
            let v = expand(k.expose_secret())?;
            self.master_key = (!v.is_empty()).then(|| SecretString::from(v));
        }
        for url in [&mut self.store.url, &mut self.store.redis_url] {
            if let Some(u) = url.as_deref() {
                let v = expand(u)?;
                *url = (!v.is_empty()).then_some(v);
            }
        }
        self.store.validate().map_err(|(key, message)| {
            ConfigError::new(message).with_key(format!("gateway.store.{key}"))
        })
    }

    /// Whether virtual keys are on: a master key or a store URL is set.
    pub fn tenancy_enabled(&self) -> bool {
        self.master_key.is_some() || self.store.url.is_some()
    }
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("addr", &self.addr)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrency", &self.max_concurrency)
            .field("workers", &self.workers)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("drain_delay", &self.drain_delay)
            .field("watch_config", &self.watch_config)
            .field("cors_origins", &self.cors_origins)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .field("store", &self.store)
            .finish()
    }
}

/// An optional key. Errors never quote a value: it may be a key.
fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    match Option::<String>::deserialize(d) {
        Ok(v) => Ok(v.map(SecretString::from)),
        Err(_) => Err(serde::de::Error::custom("expected a key (a string)")),
    }
}

/// One key or a list of keys. Errors never quote a value: it may be a key.
fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(k)) => Ok(vec![SecretString::from(k)]),
        Ok(OneOrMany::Many(v)) => Ok(v.into_iter().map(SecretString::from).collect()),
        Err(_) => Err(serde::de::Error::custom(
            "expected a key or a list of keys (strings)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(redact_url("redis://u:p@h"), "redis://***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://h/x@y"), "redis://h/x@y");
        let c = CachingConfig {
            redis_url: "redis://:s3cret@127.0.0.1:6379".into(),
            ..CachingConfig::default()
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn store_settings_have_defaults_and_hide_secrets() {
        assert!(!GatewayConfig::default().tenancy_enabled());
        let g: GatewayConfig = toml::from_str(
            "master_key = \"mk-s3cret\"\n[store]\nurl = \"postgres://u:pw1@db/llm\"\n\
             redis_url = \"redis://:pw2@r:6379\"\n",
        )
        .unwrap();
        assert!(g.tenancy_enabled());
        assert_eq!(g.store.effective_url(), "postgres://u:pw1@db/llm");
        assert_eq!(g.store.key_cache_ttl, Secs::from_secs(5));
        assert!(g.store.validate().is_ok());
        let dbg = format!("{g:?}");
        for secret in ["mk-s3cret", "pw1", "pw2"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        let bad = StoreConfig {
            url: Some("mysql://x".into()),
            ..StoreConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("url"));
        assert_eq!(
            StoreConfig::default().effective_url(),
            "sqlite://llm-router.db"
        );
    }

    #[test]
    fn redis_ca_file_is_optional() {
        let c: CachingConfig = toml::from_str("").unwrap();
        assert_eq!(c.redis_ca_file, None);
        let c: CachingConfig = toml::from_str(
            "redis_url = \"rediss://:s3cret@h:6380/0\"\nredis_ca_file = \"certs/ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.redis_ca_file, Some(PathBuf::from("certs/ca.pem")));
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("certs/ca.pem") && !dbg.contains("s3cret"),
            "{dbg}"
        );
    }
}
