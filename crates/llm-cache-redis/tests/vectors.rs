//! Embedding vectors in `RedisCache` against a real `redis-server`: stored as
//! tagged `f32` bytes, a batch looked up with one `MGET` and stored with one
//! pipeline, and `LlmClient::embed` sending upstream only the inputs Redis
//! does not hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use llm_cache_redis::RedisCache;
use llm_core::cache::{CacheKey, ResponseCache};
use llm_core::config::{CacheBackend, CachingConfig, Secs};
use llm_core::embed::vector_to_bytes;
use llm_core::testing::ScriptedProvider;
use llm_core::{EmbeddingRequest, LlmClient, ProviderProfile};
use redis::AsyncCommands;

const MODEL: &str = "nomic-embed-text";

fn cache(url: &str, test: &str) -> (RedisCache, String) {
    let prefix = unique_prefix(test);
    let cache = RedisCache::builder(url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    (cache, prefix)
}

fn vkey(text: &str) -> CacheKey {
    CacheKey::for_embedding(MODEL, None, text)
}

fn vector(seed: usize, dims: usize) -> Vec<f32> {
    (0..dims)
        .map(|i| (seed * 1000 + i) as f32 * 0.125)
        .collect()
}

/// How many times Redis ran `command` (from `INFO commandstats`).
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    let needle = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn vectors_round_trip_as_tagged_f32_bytes() {
    let Some(r) = redis("vectors_round_trip").await else {
        return;
    };
    let (cache, prefix) = cache(&r.url, "vectors_round_trip");
    let mut raw = raw(&r.url).await;
    let items = vec![
        (vkey("第一章"), vec![0.0, -1.5, f32::MAX, 1e-30]),
        (vkey("chapter two"), vector(2, 768)),
    ];
    let keys: Vec<CacheKey> = items.iter().map(|(k, _)| *k).collect();

    assert_eq!(cache.get_vectors(&keys).await.unwrap(), vec![None, None]);
    cache
        .set_vectors(&items, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get_vectors(&keys).await.unwrap(),
        vec![Some(items[0].1.clone()), Some(items[1].1.clone())]
    );

    // Compact: one tag byte, then 4 bytes per value, under the prefix.
    let stored: Vec<u8> = raw.get(format!("{prefix}{}", keys[1])).await.unwrap();
    assert_eq!(stored.len(), 1 + 768 * 4);
    assert_eq!(&stored[1..], &vector_to_bytes(&items[1].1)[..]);
    // A vector is never read as an answer.
    assert!(cache.get(&keys[1]).await.is_err());
    assert!(cache.get_vectors(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_is_one_mget_and_one_pipeline_with_hits_in_order() {
    // Counting commands needs a Redis no other test uses.
    let Some(server) = own_server("vectors_one_round_trip") else {
        return;
    };
    let url = server.url();
    let (cache, _) = cache(&url, "vectors_one_round_trip");
    let mut raw = raw(&url).await;

    // Every third of 30 inputs was stored before.
    let texts: Vec<String> = (0..30).map(|i| format!("text {i}")).collect();
    let keys: Vec<CacheKey> = texts.iter().map(|t| vkey(t)).collect();
    let stored: Vec<(CacheKey, Vec<f32>)> = (0..30)
        .step_by(3)
        .map(|i| (keys[i], vector(i, 1024)))
        .collect();
    let sets_before = command_calls(&mut raw, "set").await;
    cache
        .set_vectors(&stored, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(command_calls(&mut raw, "set").await - sets_before, 10);

    let mgets_before = command_calls(&mut raw, "mget").await;
    let gets_before = command_calls(&mut raw, "get").await;
    let found = cache.get_vectors(&keys).await.unwrap();
    assert_eq!(command_calls(&mut raw, "mget").await - mgets_before, 1);
    assert_eq!(command_calls(&mut raw, "get").await, gets_before);

    assert_eq!(found.len(), 30);
    for (i, v) in found.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(v.as_deref(), Some(&vector(i, 1024)[..]), "input {i}");
        } else {
            assert_eq!(v, &None, "input {i}");
        }
    }
    // A small batch (the main connection) keeps the order as well.
    let small = [keys[1], keys[0], keys[3]];
    assert_eq!(
        cache.get_vectors(&small).await.unwrap(),
        vec![None, Some(vector(0, 1024)), Some(vector(3, 1024))]
    );
}

#[tokio::test]
async fn vectors_get_the_ttl_and_expire() {
    let Some(r) = redis("vectors_ttl").await else {
        return;
    };
    let (cache, prefix) = cache(&r.url, "vectors_ttl");
    let mut raw = raw(&r.url).await;
    let long = vkey("long");
    let short = vkey("short");
    cache
        .set_vectors(&[(long, vec![1.0])], Duration::from_millis(90_500))
        .await
        .unwrap();
    let pttl: i64 = raw.pttl(format!("{prefix}{long}")).await.unwrap();
    assert!(90_000 < pttl && pttl <= 91_000, "PTTL {pttl}");

    cache
        .set_vectors(&[(short, vec![2.0])], Duration::ZERO)
        .await
        .unwrap();
    let pttl: i64 = raw.pttl(format!("{prefix}{short}")).await.unwrap();
    assert!(0 < pttl && pttl <= 1_000, "PTTL {pttl}");
    eventually("the 1 s vector to expire", || async {
        cache
            .get_vectors(std::slice::from_ref(&short))
            .await
            .unwrap()
            == vec![None]
    })
    .await;
    assert_eq!(
        cache.get_vectors(&[short, long]).await.unwrap(),
        vec![None, Some(vec![1.0])]
    );
}

#[tokio::test]
async fn a_corrupt_or_foreign_entry_is_a_miss_and_the_rest_still_hit() {
    let Some(r) = redis("vectors_corrupt").await else {
        return;
    };
    let (cache, prefix) = cache(&r.url, "vectors_corrupt");
    let mut raw = raw(&r.url).await;
    let good = vkey("good");
    cache
        .set_vectors(&[(good, vec![0.25, 0.5])], Duration::from_secs(60))
        .await
        .unwrap();
    let mut tag_only = cache_bytes_of(&cache, &good, &mut raw, &prefix).await;
    let truncated = tag_only[..tag_only.len() - 1].to_vec();
    tag_only.truncate(1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", truncated),
        ("no values", tag_only),
        ("empty", Vec::new()),
        ("an answer", entry("x").encode()),
        ("json floats", b"[0.25,0.5]".to_vec()),
    ];
    let mut keys = vec![good];
    for (name, bytes) in &cases {
        let k = vkey(name);
        let _: () = raw
            .set_ex(format!("{prefix}{k}"), bytes.as_slice(), 60)
            .await
            .unwrap();
        keys.push(k);
    }
    // A key of another type is a miss too (MGET answers nil for it).
    let list = vkey("list");
    let _: () = raw.rpush(format!("{prefix}{list}"), "x").await.unwrap();
    let _: () = raw.expire(format!("{prefix}{list}"), 60).await.unwrap();
    keys.push(list);

    let found = cache.get_vectors(&keys).await.unwrap();
    let mut expected = vec![Some(vec![0.25, 0.5])];
    expected.resize(keys.len(), None);
    assert_eq!(found, expected);
    // And a write replaces the garbage.
    cache
        .set_vectors(&[(keys[1], vec![9.0])], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get_vectors(&keys[..2]).await.unwrap(),
        vec![Some(vec![0.25, 0.5]), Some(vec![9.0])]
    );
}

async fn cache_bytes_of(
    cache: &RedisCache,
    key: &CacheKey,
    raw: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Vec<u8> {
    assert_eq!(cache.redis_key(key), format!("{prefix}{key}"));
    raw.get(cache.redis_key(key)).await.unwrap()
}

#[tokio::test]
async fn vectors_over_max_entry_bytes_are_not_stored_and_read_as_misses() {
    let Some(r) = redis("vectors_max_entry").await else {
        return;
    };
    let prefix = unique_prefix("vectors_max_entry");
    let cache = RedisCache::builder(&r.url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .max_entry_bytes(1 + 8 * 4)
        .build()
        .unwrap();
    let mut raw = raw(&r.url).await;
    let (fits, big) = (vkey("fits"), vkey("big"));
    let err = cache
        .set_vectors(
            &[(fits, vector(1, 8)), (big, vector(2, 9))],
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(err.too_large, "{err}");
    assert!(err.message.contains("1 of 2"), "{err}");
    let exists: bool = raw.exists(format!("{prefix}{big}")).await.unwrap();
    assert!(!exists, "the large vector was stored");
    // Already in Redis (written by a cache with a higher limit): a miss.
    let _: () = raw
        .set_ex(
            format!("{prefix}{big}"),
            {
                let mut b = vec![0xF1];
                b.extend(vector_to_bytes(&vector(2, 9)));
                b
            },
            60,
        )
        .await
        .unwrap();
    assert_eq!(
        cache.get_vectors(&[fits, big]).await.unwrap(),
        vec![Some(vector(1, 8)), None]
    );
}

#[tokio::test]
async fn redis_down_makes_vector_lookups_fail_fast_and_writes_fail() {
    let Some(mut server) = own_server("vectors_down") else {
        return;
    };
    let (cache, _) = cache(&server.url(), "vectors_down");
    let k = vkey("k");
    cache
        .set_vectors(&[(k, vec![1.0])], Duration::from_secs(60))
        .await
        .unwrap();
    server.stop();
    let err = no_hang(
        "get_vectors with Redis down",
        cache.get_vectors(std::slice::from_ref(&k)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.backend, "redis");
    assert!(!err.too_large);
    no_hang(
        "set_vectors with Redis down",
        cache.set_vectors(&[(k, vec![2.0])], Duration::from_secs(60)),
    )
    .await
    .unwrap_err();
    server.restart();
    eventually("vector writes work again after the restart", || {
        let cache = cache.clone();
        async move {
            cache
                .set_vectors(&[(k, vec![3.0])], Duration::from_secs(60))
                .await
                .is_ok()
                && cache.get_vectors(&[k]).await.ok() == Some(vec![Some(vec![3.0])])
        }
    })
    .await;
}

fn embedding_client(url: &str, prefix: &str) -> (LlmClient, Arc<ScriptedProvider>) {
    let p = Arc::new(ScriptedProvider::new("ollama").profile(ProviderProfile {
        embedding_models: vec![MODEL.into()],
        ..Default::default()
    }));
    let c = LlmClient::builder()
        .provider(p.clone())
        .caching(CachingConfig {
            backend: CacheBackend::Redis,
            redis_url: url.to_string(),
            key_prefix: prefix.to_string(),
            redis_timeout: Secs(Duration::from_secs(2)),
            ..CachingConfig::default()
        })
        .build()
        .unwrap();
    (c, p)
}

#[tokio::test]
async fn a_batch_of_100_with_90_in_redis_sends_only_the_10_new_inputs() {
    let Some(r) = redis("vectors_client").await else {
        return;
    };
    let prefix = unique_prefix("vectors_client");
    let (client, p) = embedding_client(&r.url, &prefix);
    let texts: Vec<String> = (0..100).map(|i| format!("paragraph {i}")).collect();
    let seen: Vec<String> = texts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 7)
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(seen.len(), 90);
    let first = client
        .embed(EmbeddingRequest::new(seen.clone()).model(MODEL))
        .await
        .unwrap();
    assert_eq!(first.cached_inputs, 0);

    // The client writes to Redis in the background: wait for all 90 entries.
    let cache = RedisCache::builder(&r.url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let seen_keys: Vec<CacheKey> = seen
        .iter()
        .map(|t| CacheKey::for_embedding(MODEL, None, t))
        .collect();
    eventually("the 90 vectors to reach Redis", || {
        let cache = cache.clone();
        let keys = seen_keys.clone();
        async move {
            cache
                .get_vectors(&keys)
                .await
                .is_ok_and(|found| found.iter().all(Option::is_some))
        }
    })
    .await;

    let second = client
        .embed(EmbeddingRequest::new(texts.clone()).model(MODEL))
        .await
        .unwrap();
    assert_eq!(second.cached_inputs, 90);
    let batches = p.embedded();
    assert_eq!(batches.len(), 2);
    let new: Vec<String> = (0..100)
        .filter(|i| i % 10 == 7)
        .map(|i| format!("paragraph {i}"))
        .collect();
    assert_eq!(batches[1], new, "only the 10 new inputs go upstream");
    let expected: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| ScriptedProvider::vector_for(MODEL, t))
        .collect();
    assert_eq!(second.vectors, expected, "reassembled in input order");
}
