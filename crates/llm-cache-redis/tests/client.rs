//! `LlmClient` with `[caching] backend = "redis"` against a real Redis: shared
//! entries between clients (gateway replicas), and a Redis outage that never
//! fails a request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use llm_core::config::{CacheBackend, CachingConfig, Secs};
use llm_core::testing::ScriptedProvider;
use llm_core::{LlmClient, LlmRequest};

// Referencing the crate links its cache registration.
use llm_cache_redis as _;

fn caching(url: &str, prefix: &str) -> CachingConfig {
    CachingConfig {
        backend: CacheBackend::Redis,
        redis_url: url.to_string(),
        key_prefix: prefix.to_string(),
        redis_timeout: Secs(Duration::from_millis(200)),
        ..CachingConfig::default()
    }
}

fn client(url: &str, prefix: &str) -> (LlmClient, Arc<ScriptedProvider>) {
    let p = Arc::new(ScriptedProvider::new("ollama").local(true).models(["m"]));
    let c = LlmClient::builder()
        .provider(p.clone())
        .caching(caching(url, prefix))
        .build()
        .unwrap();
    (c, p)
}

#[tokio::test]
async fn two_clients_share_entries_through_redis() {
    let Some(redis) = common::redis("two_clients_share_entries_through_redis").await else {
        return;
    };
    let prefix = common::unique_prefix("clients");
    let (a, pa) = client(&redis.url, &prefix);
    let (b, pb) = client(&redis.url, &prefix);
    let first = a
        .generate(LlmRequest::new("shared question"))
        .await
        .unwrap();
    assert!(!first.cached);
    // The client writes to Redis in the background: wait for the entry.
    let raw = common::raw(&redis.url).await;
    common::eventually("a's answer to reach Redis", || {
        let mut raw = raw.clone();
        let pattern = format!("{prefix}*");
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut raw)
                .await
                .unwrap();
            !keys.is_empty()
        }
    })
    .await;
    let second = b
        .generate(LlmRequest::new("shared question"))
        .await
        .unwrap();
    assert!(second.cached, "the other client's entry is served");
    assert_eq!(second.content, first.content);
    assert_eq!((pa.calls(), pb.calls()), (1, 0));
}

#[tokio::test]
async fn redis_stopped_mid_run_then_restarted() {
    let Some(mut server) = common::own_server("redis_stopped_mid_run_then_restarted") else {
        return;
    };
    let prefix = common::unique_prefix("outage");
    let (c, p) = client(&server.url(), &prefix);
    c.generate(LlmRequest::new("q1")).await.unwrap();
    common::eventually("a hit while Redis is up", || {
        let c = c.clone();
        async move { c.generate(LlmRequest::new("q1")).await.unwrap().cached }
    })
    .await;

    server.stop();
    for i in 0..5 {
        let r = c
            .generate(LlmRequest::new(format!("down {i}")))
            .await
            .unwrap();
        assert!(!r.cached, "requests succeed while Redis is down");
    }
    let before = p.calls();
    assert!(!c.generate(LlmRequest::new("q1")).await.unwrap().cached);
    assert_eq!(p.calls(), before + 1, "a failed lookup is a miss");

    server.restart();
    // Once the background reconnect succeeds, entries are stored and served again.
    common::eventually("the cache works again after the restart", || {
        let c = c.clone();
        async move {
            c.generate(LlmRequest::new("after restart")).await.unwrap();
            c.generate(LlmRequest::new("after restart"))
                .await
                .unwrap()
                .cached
        }
    })
    .await;
}
