//! Per-key request rate (RPM), token rate (TPM) and concurrency limits, kept
//! in process or in Redis (shared by every replica).
//!
//! # Algorithm and bounds
//!
//! RPM and TPM use the generic cell rate algorithm (GCRA), which is a token
//! bucket stored as one number per key: the *theoretical arrival time* (TAT).
//! A limit of `L` per minute means every unit (a request, or a token) costs
//! `60 s / L` of time; the bucket holds one minute, so a key that has been idle
//! for a minute may spend its whole limit at once and then refills
//! continuously at `L` per minute. Guarantees, for a limit `L`:
//!
//! - at most `L` units are admitted at once (a burst after a full idle minute);
//! - in **any** interval of `t` seconds at most `L + L·t/60` units are admitted,
//!   so any sliding 60-second window sees fewer than `2·L` (a full burst
//!   followed by a minute of steady refill, the worst case), and over longer
//!   spans the average stays at `L` per minute. Fixed per-minute windows would
//!   also allow `2·L` but within milliseconds of a minute boundary; here the
//!   second `L` is spread over the minute;
//! - a refused call is not counted, and its `Retry-After` is exact: the time
//!   until the same call would be admitted (rounded up to whole seconds);
//! - TPM admits a call when its estimate fits in what is left
//!   (`used + estimate ≤ L`), or when the key has nothing in use, so one call
//!   larger than the whole limit is still possible (it then blocks the key for
//!   `estimate / L` minutes). After the call, [`Limiter::add_tokens`] corrects
//!   the estimate by the actual count (a correction can make `used` exceed `L`
//!   until it drains).
//!
//! Time is kept in microseconds and a unit's cost is rounded down to a whole
//! microsecond, so the effective limit exceeds `L` by a fraction below
//! `L / 60,000,000` (under 0.1 % up to 60,000 per minute); limits above
//! 60,000,000 per minute behave as 60,000,000. A limit of `0` refuses every
//! call.
//!
//! Concurrency counts requests in flight per key. In Redis, each in-flight
//! request is a member of a sorted set scored by its lease expiry; the holder
//! renews the lease every third of it while the request runs and removes it
//! when the [`ConcurrencyGuard`] is dropped. A replica that crashes (or loses
//! Redis for longer than the lease) stops renewing, and its slots are freed at
//! most one lease (default 30 s) later, by the next acquire on that key.
//!
//! # Replicas
//!
//! With Redis every check is one atomic Lua script on one key, so every
//! replica shares one counter per key and the bounds above hold for the sum of
//! all replicas. By default the scripts read the Redis server's clock, so
//! replicas with skewed clocks still agree. In process, each replica enforces
//! the limits alone (N replicas admit up to N times the limit).
//!
//! # Redis unavailable: fail open
//!
//! Every Redis operation is bounded by a timeout (default 100 ms). When Redis
//! does not answer in time, refuses the connection or fails the script, the
//! call is **admitted** (a limit outage never fails requests), a warning is
//! logged (at most one every 10 s, with the number of failures it stands for)
//! and the process-wide count of [`backend_errors_total`] grows (exported as
//! `llm_gateway_limit_backend_errors_total`). After a failure Redis is not
//! tried again for a cooldown (default 1 s): calls in that time are admitted
//! at once and counted too, so an outage adds no latency beyond one timeout
//! per cooldown. While Redis is down limits are not enforced.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, IntoConnectionInfo, Script, ScriptInvocation};

/// The rate window: RPM and TPM limits are per minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// [`WINDOW`] in microseconds, the unit of the rate state.
const WINDOW_US: i64 = 60_000_000;

/// Upper bound of one increment of the rate state (about 11.5 days), so a
/// huge token count cannot overflow anything.
const MAX_INCREMENT_US: i64 = 1_000_000_000_000;

/// Retry-After for a concurrency refusal: a slot frees when a request ends,
/// which cannot be predicted.
const CONCURRENCY_RETRY_SECS: u64 = 1;

/// Minimum time between two "Redis unavailable" warnings.
const WARN_EVERY_SECS: i64 = 10;

// ---------------------------------------------------------------------------
// Clock

/// Where limiters read the time: the system clock in production, a
/// [`ManualClock`] in tests (so window tests never sleep).
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        unix_ms()
    }
}

/// Unix time in milliseconds from the system clock.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Arc<Self> {
        Arc::new(Self {
            now_ms: AtomicI64::new(now_ms),
        })
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// Decisions and errors

/// The state of one limit after a check, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// The limit (`x-ratelimit-limit-*`).
    pub limit: u32,
    /// What is left now (`x-ratelimit-remaining-*`).
    pub remaining: u32,
    /// Milliseconds from now until the limit is fully replenished
    /// (`x-ratelimit-reset-*`); `0` when nothing is in use. For concurrency
    /// always `0`.
    pub reset_ms: i64,
    /// On a refusal, whole seconds (at least 1) until the same call would be
    /// admitted (`Retry-After`); `None` when admitted.
    pub retry_after_secs: Option<u64>,
}

impl RateDecision {
    /// The decision reported when a limit could not be checked (backend
    /// unavailable): admitted, nothing known to be in use.
    fn unknown(limit: u32) -> Self {
        Self {
            limit,
            remaining: limit,
            reset_ms: 0,
            retry_after_secs: None,
        }
    }
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
    /// Requests in flight.
    Concurrency,
}

impl LimitKind {
    /// `requests`, `tokens` or `concurrency` (header suffixes, log fields).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Concurrency => "concurrency",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call refused by a limit: answer 429 with `Retry-After` and the
/// `x-ratelimit-*` headers of `decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The limit that refused.
    pub kind: LimitKind,
    /// Its state; `retry_after_secs` is always set.
    pub decision: RateDecision,
}

impl fmt::Display for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        match self.kind {
            LimitKind::Requests => {
                write!(f, "rate limit of {} requests per minute reached", d.limit)?
            }
            LimitKind::Tokens => write!(f, "rate limit of {} tokens per minute reached", d.limit)?,
            LimitKind::Concurrency => {
                write!(f, "limit of {} concurrent requests reached", d.limit)?;
            }
        }
        if let Some(s) = d.retry_after_secs {
            write!(f, "; retry after {s} s")?;
        }
        Ok(())
    }
}

impl std::error::Error for Limited {}

/// Setting up a limiter or ledger failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// The Redis URL does not parse (shown with its credentials redacted).
    InvalidUrl {
        /// The URL, credentials replaced by `***`.
        url: String,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url } => write!(f, "invalid Redis URL `{url}`"),
            Self::InvalidOption { name, reason } => write!(f, "`{name}`: {reason}"),
        }
    }
}

impl std::error::Error for LimitError {}

// ---------------------------------------------------------------------------
// Backend errors: log and count

static BACKEND_ERRORS: AtomicU64 = AtomicU64::new(0);
static LAST_WARN_S: AtomicI64 = AtomicI64::new(i64::MIN);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// How many limit and budget operations could not use their backend (Redis)
/// and were admitted without it, since the process started
/// (`llm_gateway_limit_backend_errors_total`).
pub fn backend_errors_total() -> u64 {
    BACKEND_ERRORS.load(Ordering::Relaxed)
}

/// [`backend_errors_total`] in the Prometheus text format, for a `/metrics`
/// endpoint that serves more than the core registry.
pub fn prometheus_text() -> String {
    format!(
        "# HELP llm_gateway_limit_backend_errors_total Limit and budget operations \
         admitted without their backend (Redis unavailable)\n\
         # TYPE llm_gateway_limit_backend_errors_total counter\n\
         llm_gateway_limit_backend_errors_total {}\n",
        backend_errors_total()
    )
}

/// Counts a failed backend operation and warns (at most every
/// [`WARN_EVERY_SECS`]).
fn backend_error(op: &'static str, host: &str, error: &str) {
    BACKEND_ERRORS.fetch_add(1, Ordering::Relaxed);
    let now_s = unix_ms() / 1000;
    let last = LAST_WARN_S.load(Ordering::Relaxed);
    if now_s.saturating_sub(last) >= WARN_EVERY_SECS
        && LAST_WARN_S
            .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
        tracing::warn!(
            op,
            redis = host,
            error,
            failures_since_last_warning = suppressed,
            "limits/budgets: Redis unavailable, admitting without it (fail open)"
        );
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Sharded maps (the in-process state)

/// Locks `m`, taking the data of a poisoned lock (every critical section
/// here leaves the data consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A string-keyed map split into independently locked shards.
pub(crate) struct Shards<V> {
    hasher: RandomState,
    shards: Box<[Mutex<Shard<V>>]>,
}

/// One shard: its map and the length at which it is next swept.
pub(crate) struct Shard<V> {
    pub(crate) map: HashMap<String, V>,
    sweep_at: usize,
}

/// Smallest length at which a shard is swept.
const SWEEP_MIN: usize = 64;

impl<V> Shard<V> {
    /// Drops entries `keep` refuses when the shard has grown enough since
    /// the last sweep (amortised O(1); memory stays within twice the live
    /// entries plus [`SWEEP_MIN`]).
    pub(crate) fn maybe_sweep(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(keep);
            self.sweep_at = (self.map.len() * 2).max(SWEEP_MIN);
        }
    }
}

impl<V> Shards<V> {
    /// 32 shards: plenty for a 2-to-16-core gateway.
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..32)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        sweep_at: SWEEP_MIN,
                    })
                })
                .collect(),
        }
    }

    /// Runs `f` on the shard of `key`, locked.
    pub(crate) fn with<R>(&self, key: &str, f: impl FnOnce(&mut Shard<V>) -> R) -> R {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        f(&mut lock(&self.shards[i]))
    }

    /// Entries across all shards.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }
}

// ---------------------------------------------------------------------------
// GCRA

/// Time cost of `units` at `limit` per minute, in microseconds (at least 1
/// per non-zero cost), capped at [`MAX_INCREMENT_US`].
fn increment_us(units: u64, limit: u32) -> i64 {
    if units == 0 {
        return 0;
    }
    let inc = i128::from(units) * i128::from(WINDOW_US) / i128::from(limit.max(1));
    i64::try_from(inc.clamp(1, i128::from(MAX_INCREMENT_US))).unwrap_or(MAX_INCREMENT_US)
}

/// The outcome of one GCRA check: admitted with `backlog_us` in use
/// afterwards, or refused with `retry_us` to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gcra {
    admitted: bool,
    backlog_us: i64,
    retry_us: i64,
}

/// Checks (and on admission, returns the new state of) a GCRA cell: `tat` is
/// the stored theoretical arrival time (µs), `inc` the cost of this call.
fn gcra(tat: i64, now_us: i64, inc: i64) -> (Gcra, i64) {
    let base = tat.max(now_us);
    let backlog = base - now_us;
    if backlog > 0 && backlog + inc > WINDOW_US {
        let retry = (backlog + inc - WINDOW_US).min(backlog);
        let g = Gcra {
            admitted: false,
            backlog_us: backlog,
            retry_us: retry,
        };
        return (g, tat);
    }
    let new = base + inc;
    let g = Gcra {
        admitted: true,
        backlog_us: new - now_us,
        retry_us: 0,
    };
    (g, new)
}

/// The headers' view of a GCRA outcome at `limit`.
fn decision(limit: u32, g: Gcra) -> RateDecision {
    let free = i128::from((WINDOW_US - g.backlog_us).max(0));
    let remaining = (free * i128::from(limit) / i128::from(WINDOW_US)).clamp(0, i128::from(limit));
    RateDecision {
        limit,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_ms: ceil_div(g.backlog_us.max(0), 1_000),
        retry_after_secs: (!g.admitted).then(|| {
            u64::try_from(ceil_div(g.retry_us.max(0), 1_000_000))
                .unwrap_or(u64::MAX)
                .max(1)
        }),
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The decision for a limit of `0`: always refused.
fn zero_limit(kind: LimitKind) -> Limited {
    Limited {
        kind,
        decision: RateDecision {
            limit: 0,
            remaining: 0,
            reset_ms: 0,
            retry_after_secs: Some(WINDOW.as_secs()),
        },
    }
}

// ---------------------------------------------------------------------------
// Redis plumbing (shared with the budget ledger)

/// Settings of the Redis backends of [`Limiter`] and
/// [`Ledger`](super::budgets::Ledger).
#[derive(Clone)]
pub struct RedisOptions {
    /// Bound on each Redis operation, connecting included (default 100 ms).
    pub timeout: Duration,
    /// After a failure, Redis is not tried for this long; calls are admitted
    /// at once (default 1 s).
    pub cooldown: Duration,
    /// Lease of a concurrency slot: a holder that stops renewing (a crashed
    /// replica) loses its slot at most this long after its last renewal
    /// (default 30 s; renewed every third of it; at least 3 s).
    pub lease: Duration,
    /// The clock of the rate and concurrency scripts; `None` (the default)
    /// uses the Redis server's clock, shared by every replica.
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(100),
            cooldown: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            clock: None,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("timeout", &self.timeout)
            .field("cooldown", &self.cooldown)
            .field("lease", &self.lease)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .finish()
    }
}

/// `url` with the userinfo (credentials) replaced by `***`, and query
/// parameters dropped (they may carry a password).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***{}", &authority[at..]),
        None => authority.to_owned(),
    };
    let path = tail.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

/// A lazily connecting, auto-reconnecting Redis connection with a key prefix,
/// a per-operation timeout and fail-open bookkeeping.
pub(crate) struct RedisConn {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    cooldown: Duration,
    down_until: Mutex<Option<Instant>>,
    /// The redacted URL, for logs.
    shown: String,
}

impl RedisConn {
    /// Parses `url` and prepares the connection (never connects here). Must
    /// be called inside a Tokio runtime.
    pub(crate) fn open(url: &str, prefix: &str, o: &RedisOptions) -> Result<Self, LimitError> {
        if o.timeout.is_zero() {
            return Err(LimitError::InvalidOption {
                name: "timeout",
                reason: "must be above zero",
            });
        }
        if o.lease < Duration::from_secs(3) {
            return Err(LimitError::InvalidOption {
                name: "lease",
                reason: "must be at least 3 s",
            });
        }
        let shown = redact_url(url);
        let invalid = |_| LimitError::InvalidUrl { url: shown.clone() };
        let info = url.into_connection_info().map_err(invalid)?;
        let client = redis::Client::open(info).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(o.timeout))
            .set_response_timeout(None);
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(Self {
            manager,
            prefix: prefix.to_owned(),
            timeout: o.timeout,
            cooldown: o.cooldown,
            down_until: Mutex::new(None),
            shown,
        })
    }

    /// The Redis key `prefix + kind + ":" + id`.
    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// Runs a script within the timeout. `None` when Redis is unavailable
    /// (counted and logged; the caller fails open).
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        inv: &ScriptInvocation<'_>,
    ) -> Option<T> {
        self.run(op, |mut conn| async move {
            inv.invoke_async::<T>(&mut conn).await
        })
        .await
    }

    /// Runs a plain command within the timeout (see [`eval`](Self::eval)).
    pub(crate) async fn cmd<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Option<T> {
        self.run(op, |mut conn| async move {
            cmd.query_async::<T>(&mut conn).await
        })
        .await
    }

    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if let Some(until) = *lock(&self.down_until) {
            if Instant::now() < until {
                backend_error(
                    op,
                    &self.shown,
                    "unavailable (cooling down after a failure)",
                );
                return None;
            }
        }
        let outcome = tokio::time::timeout(self.timeout, f(self.manager.clone())).await;
        let error = match outcome {
            Ok(Ok(v)) => {
                *lock(&self.down_until) = None;
                return Some(v);
            }
            // The kind only: the message may quote the server or the URL.
            Ok(Err(e)) => format!("{:?}", e.kind()),
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        *lock(&self.down_until) = Some(Instant::now() + self.cooldown);
        backend_error(op, &self.shown, &error);
        None
    }
}

/// `now` for a script: the injected clock in the script's unit, or `-1`
/// (the script reads the Redis server's clock).
fn script_now(clock: Option<&Arc<dyn Clock>>, micros: bool) -> i64 {
    match clock {
        Some(c) if micros => c.now_ms().saturating_mul(1_000),
        Some(c) => c.now_ms(),
        None => -1,
    }
}

/// GCRA check (`ARGV[4] == "1"`) or adjustment (`"0"`) on one key.
/// Returns `{admitted, backlog_us, retry_us}`.
const RATE_LUA: &str = r"
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local inc = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local base = math.max(tat, now)
local backlog = base - now
if ARGV[4] == '1' and backlog > 0 and backlog + inc > window then
  return {0, backlog, math.min(backlog + inc - window, backlog)}
end
local new = base + inc
if new <= now then
  redis.call('DEL', KEYS[1])
  return {1, 0, 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', string.format('%.0f', math.ceil((new - now) / 1000)))
return {1, new - now, 0}
";

/// Takes a concurrency slot: drops expired leases, then adds `ARGV[4]` if
/// fewer than `ARGV[3]` remain. Returns `{admitted, in_flight}`.
const ACQUIRE_LUA: &str = r"
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local n = redis.call('ZCARD', KEYS[1])
if n < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + lease), ARGV[4])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', lease))
  return {1, n + 1}
end
return {0, n}
";

/// Extends the lease of slot `ARGV[3]` if it is still held.
const RENEW_LUA: &str = r"
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lease = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + lease), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', lease))
  return 1
end
return 0
";

struct RedisLimits {
    conn: RedisConn,
    clock: Option<Arc<dyn Clock>>,
    lease: Duration,
    rate: Script,
    acquire: Script,
    renew: Script,
}

impl RedisLimits {
    async fn rate(&self, kind: &'static str, key: &str, inc: i64, check: bool) -> Option<Gcra> {
        let mut inv = self.rate.prepare_invoke();
        inv.key(self.conn.key(kind, key))
            .arg(script_now(self.clock.as_ref(), true))
            .arg(inc)
            .arg(WINDOW_US)
            .arg(if check { "1" } else { "0" });
        let op = if check { "rate_check" } else { "rate_adjust" };
        let (admitted, backlog_us, retry_us): (i64, i64, i64) = self.conn.eval(op, &inv).await?;
        Some(Gcra {
            admitted: admitted == 1,
            backlog_us,
            retry_us,
        })
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

// ---------------------------------------------------------------------------
// In-process state

struct MemoryLimits {
    clock: Arc<dyn Clock>,
    requests: Shards<i64>,
    tokens: Shards<i64>,
    running: Shards<u32>,
}

impl MemoryLimits {
    /// Runs a GCRA check (or adjustment, `check == false`) on `key` of
    /// `cells`; cells whose state is in the past are dropped by sweeps.
    fn rate(&self, cells: &Shards<i64>, key: &str, inc: i64, check: bool) -> Gcra {
        let now = self.clock.now_ms().saturating_mul(1_000);
        cells.with(key, |shard| {
            let tat = shard.map.get(key).copied().unwrap_or(0);
            let (g, new) = if check {
                gcra(tat, now, inc)
            } else {
                let new = tat.max(now) + inc;
                let g = Gcra {
                    admitted: true,
                    backlog_us: (new - now).max(0),
                    retry_us: 0,
                };
                (g, new)
            };
            if new <= now {
                shard.map.remove(key);
            } else if new != tat {
                match shard.map.get_mut(key) {
                    Some(v) => *v = new,
                    None => {
                        shard.maybe_sweep(|_, t| *t > now);
                        shard.map.insert(key.to_owned(), new);
                    }
                }
            }
            g
        })
    }

    fn release(&self, key: &str) {
        self.running.with(key, |shard| {
            if let Some(n) = shard.map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    shard.map.remove(key);
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Limiter

enum Backend {
    Memory(MemoryLimits),
    Redis(RedisLimits),
}

/// RPM, TPM and concurrency limits per key. Cheap to clone (clones share the
/// counters). See the [module documentation](self) for the algorithm, the
/// bounds and the behaviour when Redis is unavailable.
#[derive(Clone)]
pub struct Limiter {
    backend: Arc<Backend>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.backend {
            Backend::Memory(_) => f.write_str("Limiter(memory)"),
            Backend::Redis(r) => write!(f, "Limiter(redis {})", r.conn.shown),
        }
    }
}

impl Limiter {
    /// In-process limits on the system clock (one replica).
    pub fn memory() -> Self {
        Self::memory_with_clock(Arc::new(SystemClock))
    }

    /// In-process limits on `clock`.
    pub fn memory_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            backend: Arc::new(Backend::Memory(MemoryLimits {
                clock,
                requests: Shards::new(),
                tokens: Shards::new(),
                running: Shards::new(),
            })),
        }
    }

    /// Limits in Redis at `url` (`redis://` or `rediss://`), under keys
    /// starting with `prefix`, with default [`RedisOptions`]. Never connects
    /// here (Redis may come up later); must be called inside a Tokio runtime.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, LimitError> {
        Self::redis_with(url, prefix, RedisOptions::default()).await
    }

    /// [`redis`](Self::redis) with explicit options.
    pub async fn redis_with(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> Result<Self, LimitError> {
        let conn = RedisConn::open(url, prefix, &options)?;
        Ok(Self {
            backend: Arc::new(Backend::Redis(RedisLimits {
                conn,
                clock: options.clock,
                lease: options.lease,
                rate: Script::new(RATE_LUA),
                acquire: Script::new(ACQUIRE_LUA),
                renew: Script::new(RENEW_LUA),
            })),
        })
    }

    /// `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        match &*self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Counts one request of `key` against `rpm` requests per minute; a
    /// refused request is not counted.
    pub async fn check_request(&self, key: &str, rpm: u32) -> Result<RateDecision, Limited> {
        self.check(LimitKind::Requests, key, rpm, 1).await
    }

    /// Counts `estimate` tokens of `key` against `tpm` tokens per minute:
    /// admitted if they fit in what is left, or if nothing is in use.
    pub async fn check_tokens(
        &self,
        key: &str,
        tpm: u32,
        estimate: u64,
    ) -> Result<RateDecision, Limited> {
        self.check(LimitKind::Tokens, key, tpm, estimate).await
    }

    /// Corrects the tokens counted for `key` after a call by the difference
    /// between the actual count and the estimate given to
    /// [`check_tokens`](Self::check_tokens) (negative gives tokens back).
    /// `tpm` is the key's limit (it sets what a token weighs).
    pub async fn add_tokens(&self, key: &str, tpm: u32, actual_minus_estimate: i64) {
        if actual_minus_estimate == 0 || tpm == 0 {
            return;
        }
        let inc = increment_us(actual_minus_estimate.unsigned_abs(), tpm);
        let inc = if actual_minus_estimate < 0 { -inc } else { inc };
        match &*self.backend {
            Backend::Memory(m) => {
                m.rate(&m.tokens, key, inc, false);
            }
            Backend::Redis(r) => {
                r.rate("tpm", key, inc, false).await;
            }
        }
    }

    async fn check(
        &self,
        kind: LimitKind,
        key: &str,
        limit: u32,
        units: u64,
    ) -> Result<RateDecision, Limited> {
        if limit == 0 {
            return Err(zero_limit(kind));
        }
        let inc = increment_us(units, limit);
        let g = match &*self.backend {
            Backend::Memory(m) => {
                let cells = match kind {
                    LimitKind::Tokens => &m.tokens,
                    _ => &m.requests,
                };
                m.rate(cells, key, inc, true)
            }
            Backend::Redis(r) => {
                let name = match kind {
                    LimitKind::Tokens => "tpm",
                    _ => "rpm",
                };
                match r.rate(name, key, inc, true).await {
                    Some(g) => g,
                    None => return Ok(RateDecision::unknown(limit)),
                }
            }
        };
        let decision = decision(limit, g);
        if g.admitted {
            Ok(decision)
        } else {
            Err(Limited { kind, decision })
        }
    }

    /// Takes one of `max` concurrency slots of `key`, held until the guard
    /// is dropped.
    pub async fn acquire(&self, key: &str, max: u32) -> Result<ConcurrencyGuard, Limited> {
        if max == 0 {
            return Err(zero_limit(LimitKind::Concurrency));
        }
        let refused = |in_flight: u32| Limited {
            kind: LimitKind::Concurrency,
            decision: RateDecision {
                limit: max,
                remaining: max.saturating_sub(in_flight),
                reset_ms: 0,
                retry_after_secs: Some(CONCURRENCY_RETRY_SECS),
            },
        };
        let admitted = |in_flight: u32| RateDecision {
            limit: max,
            remaining: max.saturating_sub(in_flight),
            reset_ms: 0,
            retry_after_secs: None,
        };
        match &*self.backend {
            Backend::Memory(m) => {
                let n = m.running.with(key, |shard| {
                    let n = shard.map.get(key).copied().unwrap_or(0);
                    if n >= max {
                        return Err(n);
                    }
                    match shard.map.get_mut(key) {
                        Some(v) => *v += 1,
                        None => {
                            shard.map.insert(key.to_owned(), 1);
                        }
                    }
                    Ok(n + 1)
                });
                match n {
                    Ok(n) => Ok(ConcurrencyGuard {
                        decision: admitted(n),
                        release: Release::Memory {
                            limiter: self.backend.clone(),
                            key: key.to_owned(),
                        },
                    }),
                    Err(n) => Err(refused(n)),
                }
            }
            Backend::Redis(_) => {
                // In a task: if the caller is cancelled after Redis granted
                // the slot, the guard is still made, then dropped (released).
                let task = tokio::spawn(acquire_redis(self.backend.clone(), key.to_owned(), max));
                task.await.unwrap_or(Ok(ConcurrencyGuard::unlimited()))
            }
        }
    }

    /// Keys with in-process state (rate cells and slots); `0` for Redis.
    /// Shows that idle keys are forgotten.
    pub fn tracked_keys(&self) -> usize {
        match &*self.backend {
            Backend::Memory(m) => m.requests.len() + m.tokens.len() + m.running.len(),
            Backend::Redis(_) => 0,
        }
    }
}

/// Takes a Redis concurrency slot of `key` (see [`Limiter::acquire`]).
async fn acquire_redis(
    backend: Arc<Backend>,
    key: String,
    max: u32,
) -> Result<ConcurrencyGuard, Limited> {
    let Backend::Redis(r) = &*backend else {
        return Ok(ConcurrencyGuard::unlimited());
    };
    let rkey = r.conn.key("conc", &key);
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut inv = r.acquire.prepare_invoke();
    inv.key(&rkey)
        .arg(script_now(r.clock.as_ref(), false))
        .arg(r.lease_ms())
        .arg(max)
        .arg(&id);
    let Some((ok, n)) = r.conn.eval::<(i64, i64)>("acquire", &inv).await else {
        return Ok(ConcurrencyGuard {
            decision: RateDecision::unknown(max),
            release: Release::None,
        });
    };
    let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    let mut decision = RateDecision {
        limit: max,
        remaining: max.saturating_sub(n),
        reset_ms: 0,
        retry_after_secs: None,
    };
    if ok != 1 {
        decision.retry_after_secs = Some(CONCURRENCY_RETRY_SECS);
        return Err(Limited {
            kind: LimitKind::Concurrency,
            decision,
        });
    }
    let renew = tokio::spawn(renew_slot(
        Arc::downgrade(&backend),
        rkey.clone(),
        id.clone(),
        r.lease,
    ));
    Ok(ConcurrencyGuard {
        decision,
        release: Release::Redis {
            limiter: backend.clone(),
            key: rkey,
            id,
            renew: renew.abort_handle(),
        },
    })
}

/// Renews a Redis slot every third of its lease until aborted (the guard is
/// dropped) or the limiter is gone.
async fn renew_slot(limiter: std::sync::Weak<Backend>, key: String, id: String, lease: Duration) {
    let mut every = tokio::time::interval(lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(backend) = limiter.upgrade() else {
            return;
        };
        let Backend::Redis(r) = &*backend else {
            return;
        };
        let mut inv = r.renew.prepare_invoke();
        inv.key(&key)
            .arg(script_now(r.clock.as_ref(), false))
            .arg(r.lease_ms())
            .arg(&id);
        let _: Option<i64> = r.conn.eval("renew", &inv).await;
    }
}

enum Release {
    /// Nothing to give back (the backend was unavailable).
    None,
    Memory {
        limiter: Arc<Backend>,
        key: String,
    },
    Redis {
        limiter: Arc<Backend>,
        key: String,
        id: String,
        renew: tokio::task::AbortHandle,
    },
}

/// A concurrency slot, given back when dropped: at once in process; in Redis
/// by a spawned removal (and, should that fail, by the lease expiring).
#[must_use = "the slot is released when the guard is dropped"]
pub struct ConcurrencyGuard {
    decision: RateDecision,
    release: Release,
}

impl fmt::Debug for ConcurrencyGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyGuard")
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyGuard {
    /// A guard holding nothing (a key without a concurrency limit).
    pub fn unlimited() -> Self {
        Self {
            decision: RateDecision::unknown(u32::MAX),
            release: Release::None,
        }
    }

    /// The limit's state when the slot was taken.
    pub fn decision(&self) -> &RateDecision {
        &self.decision
    }
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.release, Release::None) {
            Release::None => {}
            Release::Memory { limiter, key } => {
                if let Backend::Memory(m) = &*limiter {
                    m.release(&key);
                }
            }
            Release::Redis {
                limiter,
                key,
                id,
                renew,
            } => {
                renew.abort();
                // Without a runtime the lease expires the slot.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        if let Backend::Redis(r) = &*limiter {
                            let mut cmd = redis::cmd("ZREM");
                            cmd.arg(&key).arg(&id);
                            let _: Option<i64> = r.conn.cmd("release", &cmd).await;
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn limiter() -> (Limiter, Arc<ManualClock>) {
        let clock = ManualClock::new(T0);
        (Limiter::memory_with_clock(clock.clone()), clock)
    }

    #[tokio::test]
    async fn rpm_admits_the_limit_then_refuses_with_the_exact_wait() {
        let (l, clock) = limiter();
        for i in 0..6u32 {
            let d = l.check_request("k", 6).await.unwrap();
            assert_eq!(d.limit, 6);
            assert_eq!(d.remaining, 5 - i);
            assert_eq!(d.reset_ms, i64::from(i + 1) * 10_000);
            assert_eq!(d.retry_after_secs, None);
        }
        let refused = l.check_request("k", 6).await.unwrap_err();
        assert_eq!(refused.kind, LimitKind::Requests);
        assert_eq!(refused.decision.remaining, 0);
        assert_eq!(refused.decision.retry_after_secs, Some(10));
        // Another key is independent.
        assert!(l.check_request("other", 6).await.is_ok());

        // One request's worth refills after 10 s, not before.
        clock.advance(Duration::from_millis(9_999));
        let refused = l.check_request("k", 6).await.unwrap_err();
        assert_eq!(refused.decision.retry_after_secs, Some(1));
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.check_request("k", 6).await.unwrap().remaining, 0);
        assert!(l.check_request("k", 6).await.is_err());

        // A full idle minute: the whole limit again.
        clock.advance(WINDOW);
        assert_eq!(l.check_request("k", 6).await.unwrap().remaining, 5);
    }

    #[tokio::test]
    async fn any_minute_admits_fewer_than_twice_the_limit() {
        // A request every 100 ms for 5 minutes against 30 RPM.
        let (l, clock) = limiter();
        let mut admitted_at = Vec::new();
        for step in 0..3_000i64 {
            if l.check_request("k", 30).await.is_ok() {
                admitted_at.push(step * 100);
            }
            clock.advance(Duration::from_millis(100));
        }
        for (i, &t) in admitted_at.iter().enumerate() {
            let in_minute = admitted_at[i..]
                .iter()
                .take_while(|&&u| u < t + 60_000)
                .count();
            assert!(
                in_minute < 60,
                "{in_minute} admitted in the minute from {t} ms"
            );
        }
        // Sustained: 30 per minute after the first burst.
        let n = admitted_at.len();
        assert!((150..=180).contains(&n), "{n} admitted in 5 minutes");
    }

    #[tokio::test]
    async fn tpm_admits_what_fits_and_one_oversized_call_when_idle() {
        let (l, clock) = limiter();
        let d = l.check_tokens("k", 1_000, 600).await.unwrap();
        assert_eq!(d.remaining, 400);
        let refused = l.check_tokens("k", 1_000, 500).await.unwrap_err();
        assert_eq!(refused.kind, LimitKind::Tokens);
        assert_eq!(refused.decision.remaining, 400);
        // 100 tokens must drain: 6 s.
        assert_eq!(refused.decision.retry_after_secs, Some(6));
        // The call used 200 fewer than estimated: they come back.
        l.add_tokens("k", 1_000, -200).await;
        assert_eq!(
            l.check_tokens("k", 1_000, 500).await.unwrap().remaining,
            100
        );
        // And 300 more than estimated: over the limit until it drains.
        l.add_tokens("k", 1_000, 300).await;
        let refused = l.check_tokens("k", 1_000, 1).await.unwrap_err();
        assert_eq!(refused.decision.remaining, 0);

        // A call larger than the limit passes only when nothing is in use.
        clock.advance(WINDOW * 2);
        let d = l.check_tokens("k", 1_000, 5_000).await.unwrap();
        assert_eq!((d.remaining, d.reset_ms), (0, 300_000));
        let refused = l.check_tokens("k", 1_000, 5_000).await.unwrap_err();
        assert_eq!(refused.decision.retry_after_secs, Some(300));
    }

    #[tokio::test]
    async fn concurrency_is_released_on_drop() {
        let (l, _) = limiter();
        let a = l.acquire("k", 2).await.unwrap();
        assert_eq!(a.decision().remaining, 1);
        let b = l.acquire("k", 2).await.unwrap();
        let refused = l.acquire("k", 2).await.unwrap_err();
        assert_eq!(refused.kind, LimitKind::Concurrency);
        assert_eq!(refused.decision.retry_after_secs, Some(1));
        drop(a);
        let c = l.acquire("k", 2).await.unwrap();
        drop((b, c));
        assert_eq!(l.tracked_keys(), 0);
    }

    #[tokio::test]
    async fn zero_limits_refuse() {
        let (l, _) = limiter();
        assert!(l.check_request("k", 0).await.is_err());
        assert!(l.check_tokens("k", 0, 1).await.is_err());
        assert!(l.acquire("k", 0).await.is_err());
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten() {
        let (l, clock) = limiter();
        for i in 0..10_000 {
            l.check_request(&format!("key-{i}"), 60).await.unwrap();
        }
        assert!(l.tracked_keys() >= 9_000);
        // A minute later every cell is back to full: sweeps drop them as
        // new keys arrive.
        clock.advance(WINDOW);
        for i in 0..10_000 {
            l.check_request(&format!("new-{i}"), 60).await.unwrap();
        }
        assert!(
            l.tracked_keys() <= 10_000 + 32 * SWEEP_MIN,
            "{}",
            l.tracked_keys()
        );
    }

    #[test]
    fn increments_and_redaction() {
        assert_eq!(increment_us(1, 60), 1_000_000);
        assert_eq!(increment_us(0, 60), 0);
        assert_eq!(increment_us(1, u32::MAX), 1);
        assert_eq!(increment_us(u64::MAX, 1), MAX_INCREMENT_US);
        assert_eq!(
            redact_url("redis://u:secret@host:6379/0?password=x"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact_url("garbage secret"), "***");
    }
}
