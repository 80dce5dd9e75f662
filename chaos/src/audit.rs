//! A cache wrapper that checks every stored answer as it is written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use llm_core::cache::{CacheKey, CachedResponse, ResponseCache};
use llm_core::{async_trait, CacheError, FinishReason};

use crate::protocol::answer_for;

/// Wraps a cache backend; every `set` is checked against the correct answer
/// for the prompt the stored text names (its second word, see
/// [`answer_for`]). A failed, partial or poisoned answer being stored is a
/// violation.
pub struct AuditCache {
    inner: Arc<dyn ResponseCache>,
    sets: AtomicU64,
    gets: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl std::fmt::Debug for AuditCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditCache")
            .field("backend", &self.inner.name())
            .field("sets", &self.sets.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl AuditCache {
    /// Audits `inner`.
    pub fn new(inner: Arc<dyn ResponseCache>) -> Self {
        Self {
            inner,
            sets: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<dyn ResponseCache> {
        &self.inner
    }

    /// Entries written.
    pub fn sets(&self) -> u64 {
        self.sets.load(Ordering::Relaxed)
    }

    /// Lookups made.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }

    /// Wrong entries seen being written.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Why `value` is not a correct, complete answer (`None`: it is one).
pub fn check_entry(value: &CachedResponse) -> Option<String> {
    let tag = value.content.split_whitespace().nth(1).unwrap_or("");
    let tag = tag.trim_end_matches(':');
    let expected = answer_for(tag);
    if value.content != expected {
        return Some(format!(
            "cached text {:?} is not the answer {:?}",
            value.content, expected
        ));
    }
    if value.finish_reason != FinishReason::Stop {
        return Some(format!(
            "cached finish reason {:?}, expected stop",
            value.finish_reason
        ));
    }
    None
}

#[async_trait]
impl ResponseCache for AuditCache {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<CachedResponse>, CacheError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }

    async fn set(
        &self,
        key: &CacheKey,
        value: &CachedResponse,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.sets.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = check_entry(value) {
            self.violations
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(v);
        }
        self.inner.set(key, value, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::poisoned_for;
    use llm_core::Usage;

    fn entry(content: String) -> CachedResponse {
        CachedResponse {
            content,
            provider: "p".into(),
            provider_kind: "openai".into(),
            model: "m".into(),
            usage: Usage::new(1, 1),
            finish_reason: FinishReason::Stop,
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            thinking: Vec::new(),
            route_model: None,
        }
    }

    #[test]
    fn only_the_full_answer_passes() {
        assert_eq!(check_entry(&entry(answer_for("q000001 poem"))), None);
        assert!(check_entry(&entry(poisoned_for("q000001 poem"))).is_some());
        let full = answer_for("q000001");
        let half: String = full.chars().take(8).collect();
        assert!(check_entry(&entry(half)).is_some());
        assert!(check_entry(&entry(String::new())).is_some());
    }
}
