//! [`RedisCache`]: the [`ResponseCache`] on Redis.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use llm_core::cache::{CacheKey, CachedResponse, ResponseCache};
use llm_core::embed::{vector_from_bytes, vector_to_bytes};
use llm_core::{async_trait, CacheError, ConfigError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult};

use crate::config::RedisCacheBuilder;
use crate::health::{Health, TIMEOUTS_BEFORE_OUTAGE};
use crate::redact::{redact_url, Scrubber};

/// Backend name in errors, logs and metrics.
const NAME: &str = "redis";

/// Largest TTL sent to Redis (about 136 years); longer ones are capped.
const MAX_TTL_SECS: u64 = u32::MAX as u64;

/// Bytes of an entry fetched with its length by a lookup. Entries up to this
/// size (most answers) take one round trip on the main connection; larger
/// ones are fetched on the bulk connection.
pub(crate) const HEAD_BYTES: u64 = 32 * 1024;

/// Throughput assumed when sizing the timeout of a large transfer: each
/// `SLOW_LINK_BYTES_PER_SEC` bytes add one second to the operation timeout.
const SLOW_LINK_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;

/// First byte of a stored embedding vector (then its little-endian `f32`
/// values). Distinct from the version byte of a stored answer
/// ([`CachedResponse::encode`]), so neither is ever read as the other.
pub(crate) const VECTOR_TAG: u8 = 0xF1;

/// Bytes assumed per vector entry when sizing a batched lookup (a
/// 4096-dimension vector): a batch whose reply may exceed [`HEAD_BYTES`] is
/// fetched on the bulk connection, with a timeout for its size.
const VECTOR_ENTRY_ESTIMATE: u64 = 4096 * 4 + 1;

/// Which connection an operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Lookups and small writes: every reply is small, so a timeout there
    /// means Redis is slow or stuck, and counts toward the outage rule.
    Main = 0,
    /// Entries larger than [`HEAD_BYTES`]: a connection of their own, so a
    /// slow transfer never holds up the operations queued behind it. Its
    /// timeouts are not counted as outages; it is dropped after one.
    Bulk = 1,
}

/// A [`ResponseCache`] on Redis.
///
/// One multiplexed connection (the `redis` crate's auto-reconnecting
/// [`ConnectionManager`]) shared by every clone. Each `get`/`set` is bounded by
/// the operation timeout, connection wait included. When Redis is down,
/// operations return [`CacheError`] at once while a background task reconnects
/// every retry interval; the client turns those errors into misses.
///
/// Its `Debug` output, logs and errors show the URL with its password redacted.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// One connection per [`Lane`].
    slots: [Mutex<Slot>; 2],
    key_prefix: String,
    timeout: Duration,
    max_entry_bytes: u64,
    /// Whether the "entry too large" warning was logged.
    warned_oversized: AtomicBool,
    connect_timeout: Duration,
    retry_interval: Duration,
    /// The URL with credentials redacted: the only form that is shown.
    url: String,
    scrubber: Scrubber,
    health: Health,
}

/// The current connection manager; the generation tells a stale one apart.
#[derive(Default)]
struct Slot {
    generation: u64,
    manager: Option<ConnectionManager>,
}

impl RedisCache {
    pub(crate) fn new(b: RedisCacheBuilder) -> Result<Self, ConfigError> {
        let url = redact_url(&b.url);
        let client = crate::client::open(&b.url, b.ca_file.as_deref())?;
        let password = client.get_connection_info().redis_settings().password();
        let scrubber = Scrubber::new(&b.url, password);
        let inner = Arc::new(Inner {
            client,
            slots: [Mutex::new(Slot::default()), Mutex::new(Slot::default())],
            key_prefix: b.key_prefix,
            timeout: b.timeout,
            max_entry_bytes: b.max_entry_bytes,
            warned_oversized: AtomicBool::new(false),
            connect_timeout: b.connect_timeout.max(b.timeout),
            retry_interval: b.retry_interval,
            url,
            scrubber,
            health: Health::default(),
        });
        // Connect in the background now if we can; otherwise the first
        // operation connects.
        if tokio::runtime::Handle::try_current().is_ok() {
            Inner::spawn_probe(&inner);
        }
        Ok(Self { inner })
    }

    /// The Redis key of a cache key: the prefix, then the key's hex digest.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        use std::fmt::Write as _;
        let mut k = String::with_capacity(self.inner.key_prefix.len() + 64);
        k.push_str(&self.inner.key_prefix);
        // Writing to a String cannot fail.
        let _ = write!(k, "{key}");
        k
    }

    /// The URL with its credentials redacted.
    pub fn redacted_url(&self) -> &str {
        &self.inner.url
    }

    /// Runs `req` on `lane` within `timeout`, with the outage bookkeeping.
    async fn run<T: FromRedisValue>(
        &self,
        what: &str,
        req: Request<'_>,
        lane: Lane,
        timeout: Duration,
    ) -> Result<T, CacheError> {
        let inner = &self.inner;
        if tokio::runtime::Handle::try_current().is_err() {
            // Timers and the connection task need one; fail instead of panicking.
            return Err(CacheError::new(
                NAME,
                format!("{what}: the Redis cache must be used inside a Tokio runtime"),
            ));
        }
        if inner.health.is_down() {
            // Normally a no-op: the reconnect task is already running.
            Inner::spawn_probe(inner);
            return Err(CacheError::new(
                NAME,
                format!("{what}: Redis unavailable (reconnecting in the background)"),
            ));
        }
        let (generation, mut conn) = inner.manager(lane).map_err(|e| inner.error(what, &e))?;
        let outcome = tokio::time::timeout(timeout, async {
            match req.query::<T>(&mut conn).await {
                // A dropped connection makes the manager reconnect; one more
                // try gets the new connection if Redis is back already.
                Err(e) if is_connection_error(&e) => req.query::<T>(&mut conn).await,
                other => other,
            }
        })
        .await;
        match outcome {
            Ok(Ok(value)) => {
                inner.health.succeeded(&inner.url);
                Ok(value)
            }
            Ok(Err(e)) => {
                let err = inner.error(what, &e);
                if is_outage(&e) {
                    Inner::outage(inner, lane, generation, &err.message);
                } else {
                    // Redis answered, with an error about this command.
                    inner.health.succeeded(&inner.url);
                }
                Err(err)
            }
            Err(_elapsed) => {
                let err = CacheError::new(
                    NAME,
                    format!("{what}: no answer from Redis within {timeout:?}"),
                );
                match lane {
                    Lane::Main => {
                        if inner.health.timed_out() >= TIMEOUTS_BEFORE_OUTAGE {
                            Inner::outage(inner, lane, generation, &err.message);
                        }
                    }
                    Lane::Bulk => {
                        // A slow transfer of a large entry, not an outage; the
                        // next one starts on a fresh connection rather than
                        // behind the rest of this one.
                        tracing::debug!(
                            cache = NAME,
                            url = inner.url.as_str(),
                            error = err.message.as_str(),
                            "redis transfer of a large entry timed out"
                        );
                        inner.discard(lane, generation);
                    }
                }
                Err(err)
            }
        }
    }

    /// Notes an entry of `len` bytes that is over the limit.
    fn oversized(&self, what: &str, rkey: &str, len: u64) {
        let inner = &self.inner;
        let max = inner.max_entry_bytes;
        if !inner.warned_oversized.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                cache = NAME,
                bytes = len,
                max_entry_bytes = max,
                "redis cache: entries larger than max_entry_bytes are not cached \
                 (logged once; raise [caching] max_entry_bytes to cache them)"
            );
        }
        tracing::debug!(
            cache = NAME,
            key = rkey,
            bytes = len,
            max_entry_bytes = max,
            "{what}: redis entry larger than max_entry_bytes skipped"
        );
    }
}

/// A command or a pipeline.
#[derive(Clone, Copy)]
enum Request<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a Pipeline),
}

impl Request<'_> {
    async fn query<T: FromRedisValue>(self, conn: &mut ConnectionManager) -> RedisResult<T> {
        match self {
            Request::Cmd(c) => c.query_async(conn).await,
            Request::Pipe(p) => p.query_async(conn).await,
        }
    }
}

impl Inner {
    /// The connection manager of `lane`, created (lazily connecting) if there
    /// is none. Must be called inside a Tokio runtime (creating one spawns a task).
    fn manager(&self, lane: Lane) -> Result<(u64, ConnectionManager), RedisError> {
        let mut slot = lock(&self.slots[lane as usize]);
        if let Some(m) = &slot.manager {
            return Ok((slot.generation, m.clone()));
        }
        let config = ConnectionManagerConfig::new()
            // One connection attempt per reconnect; the pacing is ours.
            .set_number_of_retries(0)
            .set_connection_timeout(Some(self.connect_timeout))
            // Operations are bounded by our own timeout.
            .set_response_timeout(None);
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        slot.generation = slot.generation.wrapping_add(1);
        slot.manager = Some(m.clone());
        Ok((slot.generation, m))
    }

    /// Drops the manager of `lane` if it is still `generation`, so the next
    /// attempt starts from a fresh connection (a stuck or half-open one is
    /// never reused, nor one whose handshake failed).
    fn discard(&self, lane: Lane, generation: u64) {
        let mut slot = lock(&self.slots[lane as usize]);
        if slot.generation == generation {
            slot.manager = None;
        }
    }

    /// Marks Redis down and makes sure a reconnect task runs. The bulk
    /// connection is dropped too: it reconnects when next needed.
    fn outage(this: &Arc<Self>, lane: Lane, generation: u64, error: &str) {
        this.health.failed(&this.url, error);
        this.discard(lane, generation);
        if lane == Lane::Main {
            lock(&this.slots[Lane::Bulk as usize]).manager = None;
        }
        Self::spawn_probe(this);
    }

    /// Time for an operation that moves `bytes`: the operation timeout, plus
    /// one second per [`SLOW_LINK_BYTES_PER_SEC`].
    fn transfer_timeout(&self, bytes: u64) -> Duration {
        let micros = u128::from(bytes) * 1_000_000 / u128::from(SLOW_LINK_BYTES_PER_SEC);
        let extra = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
        self.timeout.saturating_add(extra)
    }

    /// Starts the reconnect task unless one is running (or there is no runtime).
    fn spawn_probe(this: &Arc<Self>) {
        if this.health.start_probing() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(probe(Arc::downgrade(this)))),
                Err(_) => this.health.stop_probing(),
            }
        }
    }

    /// A [`CacheError`] for a failed operation, without secrets.
    fn error(&self, what: &str, e: &RedisError) -> CacheError {
        CacheError::new(
            NAME,
            format!("{what}: {}", self.scrubber.scrub(&e.to_string())),
        )
    }
}

/// Connects (a read on a fresh connection, bounded by the connect timeout)
/// until Redis answers, pausing the retry interval between attempts. Ends when
/// Redis is up or the cache is dropped.
async fn probe(weak: Weak<Inner>) {
    let mut guard = ProbeGuard {
        weak: weak.clone(),
        armed: true,
    };
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let (generation, result) = match inner.manager(Lane::Main) {
            Ok((generation, mut conn)) => {
                // A keyed read rather than PING: Redis answers PING while it
                // is still loading its data set, but not GET/SET.
                let mut probe = redis::cmd("EXISTS");
                probe.arg(format!("{}probe", inner.key_prefix));
                let result = match tokio::time::timeout(
                    inner.connect_timeout,
                    probe.query_async::<i64>(&mut conn),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(inner.error("connect", &e).message),
                    Err(_) => Err(format!(
                        "connect: no answer from Redis within {:?}",
                        inner.connect_timeout
                    )),
                };
                (Some(generation), result)
            }
            Err(e) => (None, Err(inner.error("connect", &e).message)),
        };
        match result {
            Ok(()) => {
                // Release the claim first: an outage seen from here on starts
                // a new task.
                guard.armed = false;
                inner.health.stop_probing();
                inner.health.succeeded(&inner.url);
                return;
            }
            Err(message) => {
                tracing::debug!(
                    cache = NAME,
                    url = inner.url.as_str(),
                    error = message.as_str(),
                    "redis reconnect attempt failed"
                );
                inner.health.failed(&inner.url, &message);
                if let Some(generation) = generation {
                    inner.discard(Lane::Main, generation);
                }
            }
        }
        let pause = inner.retry_interval;
        drop(inner);
        tokio::time::sleep(pause).await;
    }
}

/// Releases the probing claim if the task ends early (cache dropped, runtime
/// shut down), so a later outage can start a new one.
struct ProbeGuard {
    weak: Weak<Inner>,
    armed: bool,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Some(inner) = self.weak.upgrade() {
                inner.health.stop_probing();
            }
        }
    }
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection failed (refused, reset, closed): worth one more try.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Server errors that refuse every command, not just this one.
const OUTAGE_CODES: &[&str] = &["NOAUTH", "WRONGPASS", "LOADING", "MASTERDOWN"];

/// Redis as a whole is unusable, not just this command.
///
/// Errors about one command or key (`WRONGTYPE`, `READONLY` on a replica,
/// `OOM`, ACL `NOPERM`) are not: they fail that operation only, and treating
/// them as outages would flap between down and up.
fn is_outage(e: &RedisError) -> bool {
    is_connection_error(e)
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.code().is_some_and(|c| OUTAGE_CODES.contains(&c))
        // The errors of a pipeline's commands (a lookup is one).
        || e.clone().into_server_errors().is_some_and(|errors| {
            errors
                .iter()
                .any(|(_, error)| OUTAGE_CODES.contains(&error.code()))
        })
}

/// A vector's stored bytes: [`VECTOR_TAG`], then the values.
pub(crate) fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + v.len() * 4);
    out.push(VECTOR_TAG);
    out.extend_from_slice(&vector_to_bytes(v));
    out
}

/// The vector of [`encode_vector`]'s bytes; `None` for anything else (another
/// tag, a length that is not whole values, no values).
pub(crate) fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    match bytes.split_first() {
        Some((&VECTOR_TAG, values)) if !values.is_empty() => vector_from_bytes(values),
        _ => None,
    }
}

/// Whole seconds for `EX`: rounded up, at least 1, at most [`MAX_TTL_SECS`].
pub(crate) fn ttl_secs(ttl: Duration) -> u64 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    secs.clamp(1, MAX_TTL_SECS)
}

#[async_trait]
impl ResponseCache for RedisCache {
    fn name(&self) -> &str {
        NAME
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedResponse>, CacheError> {
        let inner = &self.inner;
        let rkey = self.redis_key(key);
        let max = inner.max_entry_bytes;
        // The length and the first bytes in one round trip: a reply bounded
        // by HEAD_BYTES whatever is stored under the key.
        let head_end = HEAD_BYTES.min(max.saturating_add(1)) - 1;
        let mut head = redis::pipe();
        head.cmd("EXISTS")
            .arg(&rkey)
            .cmd("STRLEN")
            .arg(&rkey)
            .cmd("GETRANGE")
            .arg(&rkey)
            .arg(0)
            .arg(head_end);
        let (exists, len, mut bytes) = self
            .run::<(bool, u64, Vec<u8>)>("GET", Request::Pipe(&head), Lane::Main, inner.timeout)
            .await?;
        if !exists {
            return Ok(None);
        }
        if len > max {
            self.oversized("GET", &rkey, len);
            return Ok(None);
        }
        if bytes.len() as u64 != len {
            // Larger than the head (or rewritten since): the whole entry, on
            // the bulk connection, never more than the limit plus one byte.
            let mut rest = redis::cmd("GETRANGE");
            // Redis takes a signed 64-bit index.
            rest.arg(&rkey).arg(0).arg(max.min(i64::MAX as u64));
            bytes = self
                .run::<Vec<u8>>(
                    "GET",
                    Request::Cmd(&rest),
                    Lane::Bulk,
                    inner.transfer_timeout(len),
                )
                .await?;
            if bytes.is_empty() {
                // Expired or deleted in between.
                return Ok(None);
            }
            if bytes.len() as u64 > max {
                self.oversized("GET", &rkey, bytes.len() as u64);
                return Ok(None);
            }
        }
        CachedResponse::decode(&bytes)
            .map(Some)
            .map_err(|e| CacheError::new(NAME, format!("GET {rkey}: {}", e.message)))
    }

    async fn set(
        &self,
        key: &CacheKey,
        value: &CachedResponse,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let inner = &self.inner;
        let rkey = self.redis_key(key);
        let bytes = value.encode();
        let len = bytes.len() as u64;
        if len > inner.max_entry_bytes {
            self.oversized("SET", &rkey, len);
            return Err(CacheError::too_large(
                NAME,
                format!(
                    "SET {rkey}: entry of {len} bytes is larger than max_entry_bytes ({}); \
                     not stored",
                    inner.max_entry_bytes
                ),
            ));
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(&rkey).arg(bytes).arg("EX").arg(ttl_secs(ttl));
        if len > HEAD_BYTES {
            self.run::<()>(
                "SET",
                Request::Cmd(&cmd),
                Lane::Bulk,
                inner.transfer_timeout(len),
            )
            .await
        } else {
            self.run::<()>("SET", Request::Cmd(&cmd), Lane::Main, inner.timeout)
                .await
        }
    }

    /// One `MGET` for the whole batch. An entry that is not a vector (garbage,
    /// a stored answer, a wrong length) or is larger than `max_entry_bytes`
    /// is a miss.
    async fn get_vectors(&self, keys: &[CacheKey]) -> Result<Vec<Option<Vec<f32>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let rkeys: Vec<String> = keys.iter().map(|k| self.redis_key(k)).collect();
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&rkeys);
        // A large batch can bring back a large reply: it takes the bulk
        // connection, with time for its size, like a large entry.
        let expected = VECTOR_ENTRY_ESTIMATE.saturating_mul(keys.len() as u64);
        let values: Vec<Option<Vec<u8>>> = if expected > HEAD_BYTES {
            self.run(
                "MGET",
                Request::Cmd(&cmd),
                Lane::Bulk,
                inner.transfer_timeout(expected),
            )
            .await?
        } else {
            self.run("MGET", Request::Cmd(&cmd), Lane::Main, inner.timeout)
                .await?
        };
        if values.len() != keys.len() {
            return Err(CacheError::new(
                NAME,
                format!("MGET: {} values for {} keys", values.len(), keys.len()),
            ));
        }
        Ok(values
            .into_iter()
            .zip(&rkeys)
            .map(|(value, rkey)| {
                let bytes = value?;
                let len = bytes.len() as u64;
                if len > inner.max_entry_bytes {
                    self.oversized("MGET", rkey, len);
                    return None;
                }
                let vector = decode_vector(&bytes);
                if vector.is_none() {
                    tracing::debug!(
                        cache = NAME,
                        key = rkey.as_str(),
                        bytes = len,
                        "MGET: redis entry is not a stored vector; a miss"
                    );
                }
                vector
            })
            .collect())
    }

    /// One pipeline of `SET key bytes EX ttl`. Empty vectors are not stored;
    /// vectors larger than `max_entry_bytes` are not either (the others are,
    /// then the error says how many were left out).
    async fn set_vectors(
        &self,
        items: &[(CacheKey, Vec<f32>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let inner = &self.inner;
        let ex = ttl_secs(ttl);
        let mut pipe = redis::pipe();
        let mut total: u64 = 0;
        let mut stored = 0usize;
        let mut skipped = 0usize;
        for (key, vector) in items {
            if vector.is_empty() {
                continue;
            }
            let bytes = encode_vector(vector);
            let len = bytes.len() as u64;
            if len > inner.max_entry_bytes {
                self.oversized("SET", &self.redis_key(key), len);
                skipped += 1;
                continue;
            }
            total = total.saturating_add(len);
            stored += 1;
            pipe.cmd("SET")
                .arg(self.redis_key(key))
                .arg(bytes)
                .arg("EX")
                .arg(ex)
                .ignore();
        }
        if stored > 0 {
            if total > HEAD_BYTES {
                self.run::<()>(
                    "SET",
                    Request::Pipe(&pipe),
                    Lane::Bulk,
                    inner.transfer_timeout(total),
                )
                .await?;
            } else {
                self.run::<()>("SET", Request::Pipe(&pipe), Lane::Main, inner.timeout)
                    .await?;
            }
        }
        if skipped > 0 {
            return Err(CacheError::too_large(
                NAME,
                format!(
                    "SET: {skipped} of {} vectors larger than max_entry_bytes ({}); \
                     not stored",
                    items.len(),
                    inner.max_entry_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .field("max_entry_bytes", &self.inner.max_entry_bytes)
            .field("state", &self.inner.health.describe())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(3600)), 3600);
        assert_eq!(ttl_secs(Duration::MAX), MAX_TTL_SECS);
    }

    #[test]
    fn building_never_connects_and_rejects_bad_settings() {
        // No runtime, nothing listening: still builds.
        let cache = RedisCache::builder("redis://:pw-123@127.0.0.1:1/0")
            .build()
            .unwrap();
        let dbg = format!("{cache:?}");
        assert!(dbg.contains("redis://***@127.0.0.1:1/0"), "{dbg}");
        assert!(!dbg.contains("pw-123"), "{dbg}");
        assert_eq!(cache.name(), "redis");

        let err = RedisCache::builder("http://:pw-123@host/")
            .build()
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("caching.redis_url"));
        assert!(!err.to_string().contains("pw-123"), "{err}");

        let err = RedisCache::builder("redis://h")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("caching.redis_timeout"));
    }

    #[test]
    fn used_outside_a_tokio_runtime_it_errs_instead_of_panicking() {
        let cache = RedisCache::builder("redis://127.0.0.1:1/0")
            .build()
            .unwrap();
        let key = CacheKey::for_request(&llm_core::LlmRequest::new("x"));
        let err = block_on_without_tokio(cache.get(&key)).unwrap_err();
        assert!(err.message.contains("Tokio runtime"), "{err}");
    }

    /// A minimal executor that is not Tokio.
    fn block_on_without_tokio<F: std::future::Future>(fut: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn large_transfers_get_time_in_proportion_to_their_size() {
        let cache = RedisCache::builder("redis://h")
            .timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let inner = &cache.inner;
        assert_eq!(inner.transfer_timeout(0), Duration::from_millis(50));
        assert_eq!(
            inner.transfer_timeout(SLOW_LINK_BYTES_PER_SEC),
            Duration::from_millis(1050)
        );
        assert_eq!(
            inner.transfer_timeout(1024 * 1024),
            Duration::from_millis(175)
        );
        assert!(inner.transfer_timeout(u64::MAX) > Duration::from_secs(1 << 40));

        let err = RedisCache::builder("redis://h")
            .max_entry_bytes(0)
            .build()
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("caching.max_entry_bytes"));
    }

    #[test]
    fn vectors_are_tagged_and_anything_else_decodes_to_none() {
        let v = vec![0.5, -1.0, 3.25];
        let bytes = encode_vector(&v);
        assert_eq!(bytes.len(), 13);
        assert_eq!(bytes[0], VECTOR_TAG);
        assert_eq!(decode_vector(&bytes), Some(v));
        // A stored answer starts with its own version byte.
        let answer = CachedResponse::decode(b"\x01{\"content\":\"x\",\"provider\":\"p\",\"provider_kind\":\"k\",\"model\":\"m\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3},\"finish_reason\":\"stop\"}")
            .unwrap();
        assert_eq!(decode_vector(&answer.encode()), None);
        assert!(CachedResponse::decode(&encode_vector(&[1.0])).is_err());
        assert_eq!(decode_vector(&bytes[..12]), None);
        assert_eq!(decode_vector(&[VECTOR_TAG]), None);
        assert_eq!(decode_vector(b""), None);
    }

    #[test]
    fn keys_carry_the_prefix() {
        let cache = RedisCache::builder("redis://h")
            .key_prefix("p:")
            .build()
            .unwrap();
        let key = CacheKey::for_request(&llm_core::LlmRequest::new("x"));
        assert_eq!(cache.redis_key(&key), format!("p:{key}"));
    }
}
