//! The response cache through the client: hits, directives, modes, coalescing,
//! streams, and a cache that fails without failing requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llm_core::cache::{CacheKey, CachedResponse, MemoryCache, ResponseCache};
use llm_core::config::{CacheMode, CachingConfig};
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{
    async_trait, CacheDirective, CacheError, LlmClient, LlmRequest, ProviderError, StreamEvent,
};

fn provider() -> Arc<ScriptedProvider> {
    Arc::new(
        ScriptedProvider::new("ollama")
            .kind("ollama")
            .local(true)
            .models(["llama3:8b"]),
    )
}

fn client(p: Arc<ScriptedProvider>, caching: CachingConfig) -> LlmClient {
    LlmClient::builder()
        .provider(p)
        .caching(caching)
        .build()
        .unwrap()
}

#[tokio::test]
async fn second_identical_request_is_a_free_hit() {
    let p = provider();
    p.push(Reply::text("first"));
    let c = client(p.clone(), CachingConfig::default());
    let a = c.generate(LlmRequest::new("q")).await.unwrap();
    let b = c.generate(LlmRequest::new("q")).await.unwrap();
    assert!(!a.cached);
    assert!(b.cached);
    assert_eq!(b.content, "first");
    assert_eq!(
        b.provider, "ollama",
        "a hit names the provider that produced it"
    );
    assert_eq!(b.cost, 0.0);
    assert!(b.attempts.is_empty());
    assert_eq!(p.calls(), 1);
    // Any answer-changing difference misses.
    c.generate(LlmRequest::new("q").temperature(0.1))
        .await
        .unwrap();
    assert_eq!(p.calls(), 2);
}

#[tokio::test]
async fn directives_bypass_and_refresh() {
    let p = provider();
    let c = client(p.clone(), CachingConfig::default());
    c.generate(LlmRequest::new("q")).await.unwrap();
    let r = c
        .generate(LlmRequest::new("q").cache(CacheDirective::Bypass))
        .await
        .unwrap();
    assert!(!r.cached);
    assert_eq!(p.calls(), 2);
    p.push(Reply::text("fresh"));
    let r = c
        .generate(LlmRequest::new("q").cache(CacheDirective::Refresh))
        .await
        .unwrap();
    assert_eq!(r.content, "fresh");
    let r = c.generate(LlmRequest::new("q")).await.unwrap();
    assert!(r.cached);
    assert_eq!(r.content, "fresh", "refresh stored the new answer");
}

#[tokio::test]
async fn modes_and_temperature_limit() {
    let p = provider();
    let ro = client(
        p.clone(),
        CachingConfig {
            mode: CacheMode::ReadOnly,
            ..Default::default()
        },
    );
    ro.generate(LlmRequest::new("q")).await.unwrap();
    ro.generate(LlmRequest::new("q")).await.unwrap();
    assert_eq!(p.calls(), 2, "read-only never stores");

    let p = provider();
    let wo = client(
        p.clone(),
        CachingConfig {
            mode: CacheMode::WriteOnly,
            ..Default::default()
        },
    );
    wo.generate(LlmRequest::new("q")).await.unwrap();
    assert!(
        !wo.generate(LlmRequest::new("q")).await.unwrap().cached,
        "write-only never reads"
    );

    let p = provider();
    let hot = client(
        p.clone(),
        CachingConfig {
            max_temperature: Some(0.5),
            ..Default::default()
        },
    );
    hot.generate(LlmRequest::new("q").temperature(0.9))
        .await
        .unwrap();
    hot.generate(LlmRequest::new("q").temperature(0.9))
        .await
        .unwrap();
    assert_eq!(p.calls(), 2, "too hot to cache");
    hot.generate(LlmRequest::new("q").temperature(0.2))
        .await
        .unwrap();
    assert!(
        hot.generate(LlmRequest::new("q").temperature(0.2))
            .await
            .unwrap()
            .cached
    );
}

#[tokio::test]
async fn errors_are_never_cached() {
    let p = provider();
    p.push(Reply::Error(ProviderError::http("ollama", 404, "no model")));
    let c = client(p.clone(), CachingConfig::default());
    assert!(c.generate(LlmRequest::new("q")).await.is_err());
    let r = c.generate(LlmRequest::new("q")).await.unwrap();
    assert!(!r.cached);
    assert_eq!(r.content, "ok");
}

#[tokio::test(start_paused = true)]
async fn identical_requests_in_flight_are_coalesced() {
    let p = provider();
    p.push(Reply::text("shared").after(Duration::from_secs(1)));
    let c = client(p.clone(), CachingConfig::default());
    let calls = (0..50).map(|_| {
        let c = c.clone();
        async move { c.generate(LlmRequest::new("same")).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().content == "shared"));
    assert_eq!(p.calls(), 1, "one upstream call for 50 identical requests");
}

#[tokio::test(start_paused = true)]
async fn coalesced_callers_share_an_error_and_nothing_is_cached() {
    let p = provider();
    p.push(Reply::Error(ProviderError::http("ollama", 400, "bad")).after(Duration::from_secs(1)));
    let c = client(p.clone(), CachingConfig::default());
    let calls = (0..10).map(|_| {
        let c = c.clone();
        async move { c.generate(LlmRequest::new("same")).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(p.calls(), 1);
    assert_eq!(
        c.generate(LlmRequest::new("same")).await.unwrap().content,
        "ok"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_does_not_strand_followers() {
    let p = provider();
    p.push(Reply::text("slow").after(Duration::from_secs(5)));
    let c = client(p.clone(), CachingConfig::default());
    let leader = tokio::spawn({
        let c = c.clone();
        async move { c.generate(LlmRequest::new("same")).await }
    });
    tokio::task::yield_now().await;
    let follower = tokio::spawn({
        let c = c.clone();
        async move { c.generate(LlmRequest::new("same")).await }
    });
    tokio::task::yield_now().await;
    leader.abort();
    let r = follower.await.unwrap().unwrap();
    assert_eq!(r.content, "slow");
}

#[tokio::test]
async fn completed_streams_are_stored_and_hits_replay_as_streams() {
    let p = provider();
    p.push(Reply::text("a streamed answer"));
    let c = client(p.clone(), CachingConfig::default());
    let s = c.stream(LlmRequest::new("s")).await.unwrap();
    let first: Vec<_> = s.collect().await;
    assert!(matches!(first.last(), Some(Ok(StreamEvent::Done { .. }))));
    let s = c.stream(LlmRequest::new("s")).await.unwrap();
    assert!(s.cached);
    let text: String = s
        .filter_map(|e| async move {
            match e {
                Ok(StreamEvent::Delta { text }) => Some(text),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(text, "a streamed answer");
    assert!(
        c.generate(LlmRequest::new("s")).await.unwrap().cached,
        "generate hits a streamed entry"
    );
    assert_eq!(p.calls(), 1);
}

#[tokio::test]
async fn incomplete_or_failed_streams_are_never_stored() {
    let p = provider();
    p.push(Reply::Stream(vec![
        Ok(StreamEvent::delta("part")),
        Err(ProviderError::transport("ollama", "reset")),
    ]));
    p.push(Reply::Stream(vec![Ok(StreamEvent::delta("part"))]));
    let c = client(p.clone(), CachingConfig::default());
    for _ in 0..2 {
        let s = c.stream(LlmRequest::new("s")).await.unwrap();
        let events: Vec<_> = s.collect().await;
        assert!(events.last().unwrap().is_err());
    }
    let r = c.generate(LlmRequest::new("s")).await.unwrap();
    assert!(!r.cached);
    assert_eq!(p.calls(), 3);
}

/// A backend that always fails, counting its calls.
struct Broken(AtomicU32);

#[async_trait]
impl ResponseCache for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    async fn get(&self, _: &CacheKey) -> Result<Option<CachedResponse>, CacheError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CacheError::new("broken", "down"))
    }
    async fn set(&self, _: &CacheKey, _: &CachedResponse, _: Duration) -> Result<(), CacheError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CacheError::new("broken", "down"))
    }
}

#[tokio::test]
async fn a_failing_cache_is_a_miss_never_a_failed_request() {
    let p = provider();
    let broken = Arc::new(Broken(AtomicU32::new(0)));
    let c = LlmClient::builder()
        .provider(p.clone())
        .cache(broken.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = c.generate(LlmRequest::new("q")).await.unwrap();
        assert!(!r.cached);
    }
    // Writes to a non-local backend happen in the background.
    for _ in 0..1000 {
        if broken.0.load(Ordering::SeqCst) == 6 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(broken.0.load(Ordering::SeqCst), 6);
    assert_eq!(p.calls(), 3);
}

#[tokio::test]
async fn two_clients_sharing_a_backend_see_each_others_entries() {
    let shared: Arc<dyn ResponseCache> = Arc::new(MemoryCache::new(1 << 20));
    let (p1, p2) = (provider(), provider());
    let c1 = LlmClient::builder()
        .provider(p1.clone())
        .cache(shared.clone())
        .build()
        .unwrap();
    let c2 = LlmClient::builder()
        .provider(p2.clone())
        .cache(shared)
        .build()
        .unwrap();
    c1.generate(LlmRequest::new("q")).await.unwrap();
    assert!(c2.generate(LlmRequest::new("q")).await.unwrap().cached);
    assert_eq!(p2.calls(), 0);
}

#[tokio::test]
async fn redis_backend_without_the_feature_is_a_clear_error() {
    let caching = CachingConfig {
        backend: llm_core::config::CacheBackend::Redis,
        ..Default::default()
    };
    if llm_core::registry::cache_plugin("redis").is_none() {
        let err = LlmClient::builder()
            .provider(provider())
            .caching(caching)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("`redis` cargo feature"), "{err}");
    }
}
