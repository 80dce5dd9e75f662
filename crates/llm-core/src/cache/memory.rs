//! The default in-process cache, on moka, bounded by entry bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CacheKey, CachedResponse, ResponseCache};
use crate::error::CacheError;

#[derive(Clone)]
struct Entry {
    value: Stored,
    expires: Instant,
}

/// What an entry holds: a response, or an embedding vector.
#[derive(Clone)]
enum Stored {
    Response(Arc<CachedResponse>),
    Vector(Arc<[f32]>),
}

impl Stored {
    fn weight(&self) -> usize {
        match self {
            Stored::Response(r) => r.weight(),
            Stored::Vector(v) => 16 + v.len() * 4,
        }
    }
}

/// An in-process cache bounded by the bytes of its entries, with per-entry TTL.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use llm_core::cache::{CacheKey, CachedResponse, MemoryCache, ResponseCache};
/// use llm_core::{FinishReason, LlmRequest, Usage};
///
/// let cache = MemoryCache::new(64 * 1024 * 1024);
/// let key = CacheKey::for_request(&LlmRequest::new("hi"));
/// let value = CachedResponse {
///     content: "hello".into(), provider: "ollama".into(), provider_kind: "ollama".into(),
///     model: "llama3:8b".into(), usage: Usage::new(1, 1), finish_reason: FinishReason::Stop,
///     tool_calls: Vec::new(), logprobs: Vec::new(), thinking: Vec::new(), route_model: None,
/// };
/// cache.set(&key, &value, Duration::from_secs(60)).await.unwrap();
/// assert_eq!(cache.get(&key).await.unwrap().unwrap().content, "hello");
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<CacheKey, Entry, KeyHash>,
}

/// The table hash of a [`CacheKey`]: its digest's first 8 bytes (already
/// uniform) mixed with a per-cache random seed, so that which keys share a
/// bucket cannot be chosen by whoever picks the texts. Much cheaper than
/// SipHash over the key, on every lookup.
#[derive(Clone)]
struct KeyHash {
    seed: u64,
}

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// See [`KeyHash`].
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write_u64(&mut self, v: u64) {
        // A multiply-xorshift round (splitmix64's finalizer) of seed ^ value.
        let mut x = self.0 ^ v;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = x ^ (x >> 31);
    }

    // `CacheKey` hashes through `write_u64` only; anything else still
    // hashes correctly, a byte at a time.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.inner.entry_count())
            .field("bytes", &self.inner.weighted_size())
            .finish()
    }
}

struct PerEntryTtl;

impl moka::Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _k: &CacheKey,
        v: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(v.expires.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _k: &CacheKey,
        v: &Entry,
        updated_at: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.expires.saturating_duration_since(updated_at))
    }
}

/// When an entry stored now for `ttl` expires (a TTL beyond a year is a year).
fn expiry(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(crate::config::Secs::MAX_SECS))
}

impl MemoryCache {
    /// A cache holding at most `max_bytes` of entries (approximate).
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &CacheKey, e: &Entry| {
                u32::try_from(e.value.weight() + std::mem::size_of::<CacheKey>())
                    .unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build_with_hasher(KeyHash {
                seed: fastrand::u64(..),
            });
        Self { inner }
    }

    /// Entries currently held (after pending maintenance).
    pub async fn entry_count(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.entry_count()
    }

    /// Bytes currently held (after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

#[async_trait]
impl ResponseCache for MemoryCache {
    fn name(&self) -> &str {
        "memory"
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedResponse>, CacheError> {
        let now = Instant::now();
        Ok(self.inner.get(key).await.and_then(|e| match e.value {
            Stored::Response(r) if e.expires > now => Some(CachedResponse::clone(&r)),
            _ => None,
        }))
    }

    async fn set(
        &self,
        key: &CacheKey,
        value: &CachedResponse,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let entry = Entry {
            value: Stored::Response(Arc::new(value.clone())),
            expires: expiry(ttl),
        };
        self.inner.insert(*key, entry).await;
        Ok(())
    }

    async fn get_vectors(&self, keys: &[CacheKey]) -> Result<Vec<Option<Vec<f32>>>, CacheError> {
        let now = Instant::now();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.inner.get(key).await.and_then(|e| match e.value {
                Stored::Vector(v) if e.expires > now => Some(v.to_vec()),
                _ => None,
            }));
        }
        Ok(out)
    }

    async fn set_vectors(
        &self,
        items: &[(CacheKey, Vec<f32>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let expires = expiry(ttl);
        for (key, v) in items {
            let entry = Entry {
                value: Stored::Vector(Arc::from(v.as_slice())),
                expires,
            };
            self.inner.insert(*key, entry).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, LlmRequest, Usage};

    fn value(text: &str) -> CachedResponse {
        CachedResponse {
            content: text.into(),
            provider: "p".into(),
            provider_kind: "k".into(),
            model: "m".into(),
            usage: Usage::new(1, 1),
            finish_reason: FinishReason::Stop,
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            thinking: Vec::new(),
            route_model: None,
        }
    }

    #[tokio::test]
    async fn round_trip_and_expiry() {
        let c = MemoryCache::new(1 << 20);
        let k = CacheKey::for_request(&LlmRequest::new("a"));
        assert!(c.get(&k).await.unwrap().is_none());
        c.set(&k, &value("x"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(c.get(&k).await.unwrap().unwrap().content, "x");
        c.set(&k, &value("y"), Duration::ZERO).await.unwrap();
        assert!(
            c.get(&k).await.unwrap().is_none(),
            "expired entries are not served"
        );
    }

    #[tokio::test]
    async fn byte_budget_bounds_the_cache() {
        let c = MemoryCache::new(100_000);
        let big = "x".repeat(10_000);
        for i in 0..100 {
            let k = CacheKey::for_request(&LlmRequest::new(format!("q{i}")));
            c.set(&k, &value(&big), Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(c.weighted_size().await <= 100_000);
        assert!(c.entry_count().await < 100);
    }
}
