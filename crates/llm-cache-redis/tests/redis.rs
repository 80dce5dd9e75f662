//! `RedisCache` against a real `redis-server` (see README: running the tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use llm_cache_redis::RedisCache;
use llm_core::cache::ResponseCache;
use llm_core::config::CachingConfig;
use redis::AsyncCommands;

/// A cache on `url` with a prefix of this test's own.
fn cache(url: &str, test: &str) -> (RedisCache, String) {
    let prefix = unique_prefix(test);
    let cache = RedisCache::builder(url)
        .key_prefix(&prefix)
        // Generous: CI machines are slow; outages are tested with their own bounds.
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    (cache, prefix)
}

#[tokio::test]
async fn round_trip() {
    let Some(r) = redis("round_trip").await else {
        return;
    };
    let (cache, _) = cache(&r.url, "round_trip");
    let k = key("round trip");

    assert_eq!(cache.get(&k).await.unwrap(), None);
    cache
        .set(&k, &entry("你好，世界"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("你好，世界")));

    cache
        .set(&k, &entry("second"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("second")));
    assert_eq!(cache.get(&key("other")).await.unwrap(), None);
}

#[tokio::test]
async fn entries_get_the_ttl_and_expire() {
    let Some(r) = redis("ttl").await else { return };
    let (cache, prefix) = cache(&r.url, "ttl");
    let mut raw = raw(&r.url).await;

    // Whole seconds, rounded up.
    let long = key("long");
    cache
        .set(&long, &entry("x"), Duration::from_millis(90_500))
        .await
        .unwrap();
    let pttl: i64 = raw.pttl(format!("{prefix}{long}")).await.unwrap();
    assert!(90_000 < pttl && pttl <= 91_000, "PTTL {pttl}");

    // A sub-second or zero TTL becomes 1 s, never "no expiry".
    for (text, ttl) in [
        ("tiny", Duration::from_millis(10)),
        ("zero", Duration::ZERO),
    ] {
        let k = key(text);
        cache.set(&k, &entry("x"), ttl).await.unwrap();
        let pttl: i64 = raw.pttl(format!("{prefix}{k}")).await.unwrap();
        assert!(0 < pttl && pttl <= 1_000, "{text}: PTTL {pttl}");
    }

    // And Redis really drops it.
    let short = key("short");
    cache
        .set(&short, &entry("x"), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(cache.get(&short).await.unwrap().is_some());
    eventually("the 1 s entry to expire", || async {
        cache.get(&short).await.unwrap().is_none()
    })
    .await;
    // The long one is untouched.
    assert!(cache.get(&long).await.unwrap().is_some());
}

#[tokio::test]
async fn key_prefix_is_applied() {
    let Some(r) = redis("prefix").await else {
        return;
    };
    let (cache, prefix) = cache(&r.url, "prefix");
    let mut raw = raw(&r.url).await;
    let k = key("prefixed");
    cache
        .set(&k, &entry("x"), Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(cache.redis_key(&k), format!("{prefix}{k}"));
    let stored: Vec<u8> = raw.get(format!("{prefix}{k}")).await.unwrap();
    assert_eq!(stored, entry("x").encode());
    let bare: bool = raw.exists(k.as_str()).await.unwrap();
    assert!(!bare, "the key was also written without its prefix");
}

#[tokio::test]
async fn from_config_uses_url_prefix_and_timeout() {
    let Some(r) = redis("from_config").await else {
        return;
    };
    let defaults = CachingConfig::default();
    assert_eq!(defaults.key_prefix, "llm:");
    let default_cache = RedisCache::from_config(&CachingConfig {
        redis_url: r.url.clone(),
        ..defaults.clone()
    })
    .unwrap();
    assert!(default_cache.redis_key(&key("d")).starts_with("llm:"));
    assert!(format!("{default_cache:?}").contains("50ms"));

    let prefix = unique_prefix("from_config");
    let config = CachingConfig {
        redis_url: r.url.clone(),
        key_prefix: prefix.clone(),
        redis_timeout: llm_core::config::Secs::from_secs(2),
        ..defaults
    };
    let cache = RedisCache::from_config(&config).unwrap();
    let k = key("configured");
    cache
        .set(&k, &entry("cfg"), Duration::from_secs(60))
        .await
        .unwrap();
    let mut raw = raw(&r.url).await;
    let exists: bool = raw.exists(format!("{prefix}{k}")).await.unwrap();
    assert!(exists);
}

#[tokio::test]
async fn garbage_under_a_key_is_an_error_and_nothing_else() {
    let Some(r) = redis("garbage").await else {
        return;
    };
    let (cache, prefix) = cache(&r.url, "garbage");
    let mut raw = raw(&r.url).await;

    let cases: [(&str, &[u8]); 4] = [
        ("not json", b"\x01{not json"),
        ("other version", b"\x02{}"),
        ("empty", b""),
        ("plain text", b"hello"),
    ];
    for (name, bytes) in cases {
        let k = key(name);
        let rkey = format!("{prefix}{k}");
        let _: () = raw.set_ex(&rkey, bytes, 60).await.unwrap();
        let err = cache.get(&k).await.unwrap_err();
        assert_eq!(err.backend, "redis", "{name}");
        assert!(err.message.contains(&rkey), "{name}: {err}");
    }
    let version = key("other version");
    let err = cache.get(&version).await.unwrap_err();
    assert!(err.message.contains("version 2"), "{err}");

    // A key of another type: Redis' WRONGTYPE error, no panic.
    let list = key("list");
    let _: () = raw.rpush(format!("{prefix}{list}"), "x").await.unwrap();
    let _: () = raw.expire(format!("{prefix}{list}"), 60).await.unwrap();
    let err = cache.get(&list).await.unwrap_err();
    assert!(err.message.contains("GET"), "{err}");

    // Bad entries are not an outage: the next operation goes to Redis as usual.
    let good = key("good");
    cache
        .set(&good, &entry("fine"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&good).await.unwrap(), Some(entry("fine")));
    // And a write replaces the garbage.
    let garbage = key("not json");
    cache
        .set(&garbage, &entry("fixed"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&garbage).await.unwrap(), Some(entry("fixed")));
}

#[tokio::test]
async fn two_instances_share_entries() {
    let Some(r) = redis("shared").await else {
        return;
    };
    let (a, prefix) = cache(&r.url, "shared");
    let b = RedisCache::builder(&r.url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (other_prefix, _) = cache(&r.url, "shared-other");

    let k = key("shared");
    a.set(&k, &entry("from a"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get(&k).await.unwrap(), Some(entry("from a")));
    b.set(&k, &entry("from b"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(a.get(&k).await.unwrap(), Some(entry("from b")));
    // Another prefix is another namespace.
    assert_eq!(other_prefix.get(&k).await.unwrap(), None);
}

#[tokio::test]
async fn redis_down_gives_errors_without_hanging_and_hides_the_password() {
    let (logs, _guard) = Logs::capture();
    let port = refused_port();
    let url = format!("redis://app:hunter2-secret@127.0.0.1:{port}/0");
    let cache = RedisCache::builder(&url)
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let k = key("down");

    for round in 0..5 {
        let err = no_hang("get with Redis down", cache.get(&k))
            .await
            .unwrap_err();
        assert_eq!(err.backend, "redis");
        assert!(!err.to_string().contains("hunter2"), "round {round}: {err}");
        let err = no_hang(
            "set with Redis down",
            cache.set(&k, &entry("x"), Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "round {round}: {err}");
    }

    let debug = format!("{cache:?}");
    assert!(
        debug.contains(&format!("redis://***@127.0.0.1:{port}/0")),
        "{debug}"
    );
    assert!(
        !debug.contains("hunter2") && !debug.contains("app:"),
        "{debug}"
    );
    assert_eq!(
        cache.redacted_url(),
        format!("redis://***@127.0.0.1:{port}/0")
    );

    // One warning for the whole outage, with the redacted URL only.
    let text = logs.text();
    assert_eq!(logs.count("WARN", "redis cache unavailable"), 1, "{text}");
    assert!(text.contains("***@127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn construction_never_waits_for_redis() {
    // Nothing listens: building still succeeds, inside and outside a runtime.
    let url = format!("redis://127.0.0.1:{}/0", refused_port());
    let cache = RedisCache::builder(&url).build().unwrap();
    assert!(cache.get(&key("x")).await.is_err());
    let cfg = CachingConfig {
        redis_url: url,
        ..CachingConfig::default()
    };
    let built = std::thread::spawn(move || RedisCache::from_config(&cfg).is_ok())
        .join()
        .unwrap();
    assert!(built);
}

#[tokio::test]
async fn redis_starting_after_the_cache_is_picked_up() {
    let Some(mut server) = own_server("late_start") else {
        return;
    };
    let url = server.url();
    server.stop();
    let (logs, _guard) = Logs::capture();
    let cache = RedisCache::builder(&url)
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let k = key("late");
    assert!(no_hang("get before start", cache.get(&k)).await.is_err());

    eventually("three failed reconnect attempts", || async {
        logs.count("DEBUG", "redis reconnect attempt failed") >= 3
    })
    .await;

    server.restart();
    eventually("the cache to use Redis once it is up", || async {
        cache
            .set(&k, &entry("late"), Duration::from_secs(60))
            .await
            .is_ok()
    })
    .await;
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("late")));
    assert_eq!(
        logs.count("WARN", "redis cache unavailable"),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        logs.count("INFO", "redis cache recovered"),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn redis_restarted_mid_test_works_again_with_the_same_cache() {
    let Some(mut server) = own_server("restart") else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let cache = RedisCache::builder(server.url())
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let k = key("restart");
    cache
        .set(&k, &entry("before"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("before")));

    server.stop();
    for _ in 0..5 {
        assert!(no_hang("get while stopped", cache.get(&k)).await.is_err());
        assert!(no_hang(
            "set while stopped",
            cache.set(&k, &entry("x"), Duration::from_secs(60))
        )
        .await
        .is_err());
    }

    // Let the reconnect task fail a few times: still no new warning.
    eventually("three failed reconnect attempts", || async {
        logs.count("DEBUG", "redis reconnect attempt failed") >= 3
    })
    .await;

    server.restart();
    eventually("the same cache to work again", || async {
        cache
            .set(&k, &entry("after"), Duration::from_secs(60))
            .await
            .is_ok()
    })
    .await;
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("after")));

    // One warning for the outage, one info for the recovery, nothing per operation.
    let text = logs.text();
    assert_eq!(logs.count("WARN", "redis cache unavailable"), 1, "{text}");
    assert_eq!(logs.count("INFO", "redis cache recovered"), 1, "{text}");
}

#[tokio::test]
async fn a_frozen_redis_times_out_then_recovers() {
    let Some(server) = own_server("frozen") else {
        return;
    };
    let cache = RedisCache::builder(server.url())
        .timeout(Duration::from_millis(50))
        .connect_timeout(Duration::from_millis(200))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let k = key("frozen");
    eventually("the cache to connect", || async {
        cache
            .set(&k, &entry("x"), Duration::from_secs(60))
            .await
            .is_ok()
    })
    .await;

    server.pause();
    for _ in 0..6 {
        let err = no_hang("get from a frozen Redis", cache.get(&k))
            .await
            .unwrap_err();
        assert_eq!(err.backend, "redis");
    }
    server.resume();
    eventually("the cache to work after the freeze", || async {
        matches!(cache.get(&k).await, Ok(Some(_)))
    })
    .await;
}

#[tokio::test]
async fn password_protected_redis_works_and_the_password_stays_hidden() {
    let Some(server) = own_server_with("password", &["--requirepass", "pa55-w0rd-xyz"]) else {
        return;
    };
    let good = format!("redis://:pa55-w0rd-xyz@127.0.0.1:{}/0", server.port);
    let cache = RedisCache::builder(&good)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let k = key("auth");
    cache
        .set(&k, &entry("secret ok"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("secret ok")));
    assert!(!format!("{cache:?}").contains("pa55"));
    drop(cache);

    let (logs, _guard) = Logs::capture();
    let bad = format!("redis://:wrong-pa55-abc@127.0.0.1:{}/0", server.port);
    let cache = RedisCache::builder(&bad)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..3 {
        let err = no_hang("get with a wrong password", cache.get(&k))
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("wrong-pa55"), "{err}");
    }
    assert!(!format!("{cache:?}").contains("wrong-pa55"));
    let text = logs.text();
    assert!(!text.contains("wrong-pa55"), "{text}");
    drop((cache, _guard));

    // No password at all: every command gets NOAUTH. That is an outage (one
    // warning, fail fast, keep retrying), not a string of per-key errors.
    let (logs, _guard) = Logs::capture();
    let url = server.url();
    let url_field = format!("url=\"{url}\"");
    let cache = RedisCache::builder(&url)
        .timeout(Duration::from_secs(2))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = no_hang("get without a password", cache.get(&k))
        .await
        .unwrap_err();
    assert!(err.message.contains("NOAUTH"), "{err}");
    eventually("three failed reconnect attempts", || async {
        logs.count_all("DEBUG", &["redis reconnect attempt failed", &url_field]) >= 3
    })
    .await;
    assert!(cache
        .get(&k)
        .await
        .unwrap_err()
        .message
        .contains("unavailable"));
    let text = logs.text();
    let warnings = logs.count_all("WARN", &["redis cache unavailable", &url_field]);
    assert_eq!(warnings, 1, "{text}");
    assert_eq!(logs.count("INFO", "redis cache recovered"), 0, "{text}");
}
