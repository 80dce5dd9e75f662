//! `RedisCache` against a real `redis-server` (see README: running the tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use llm_cache_redis::{RedisCache, DEFAULT_MAX_ENTRY_BYTES};
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
    let bare: bool = raw.exists(k.to_hex()).await.unwrap();
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
    let dbg = format!("{default_cache:?}");
    assert!(dbg.contains("50ms"), "{dbg}");
    assert_eq!(defaults.max_entry_bytes, DEFAULT_MAX_ENTRY_BYTES);
    assert!(dbg.contains("max_entry_bytes: 1048576"), "{dbg}");

    let prefix = unique_prefix("from_config");
    let config = CachingConfig {
        redis_url: r.url.clone(),
        key_prefix: prefix.clone(),
        redis_timeout: llm_core::config::Secs::from_secs(2),
        max_entry_bytes: 4096,
        ..defaults
    };
    let cache = RedisCache::from_config(&config).unwrap();
    assert!(format!("{cache:?}").contains("max_entry_bytes: 4096"));
    let err = RedisCache::from_config(&CachingConfig {
        max_entry_bytes: 0,
        ..config.clone()
    })
    .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("caching.max_entry_bytes"));
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

/// An answer whose stored form is about `bytes` long.
fn entry_of(bytes: usize) -> llm_core::cache::CachedResponse {
    entry(&"x".repeat(bytes))
}

#[tokio::test]
async fn entries_over_max_entry_bytes_are_skipped_and_read_as_misses() {
    let Some(r) = redis("max_entry_bytes").await else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let prefix = unique_prefix("max_entry_bytes");
    let limit = 64 * 1024;
    let cache = RedisCache::builder(&r.url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .max_entry_bytes(limit)
        .build()
        .unwrap();
    let mut raw = raw(&r.url).await;

    // Too large to store: not written, an error saying why (the client counts
    // it), one warning however often it happens.
    let big = key("big");
    for _ in 0..3 {
        let err = cache
            .set(&big, &entry_of(100_000), Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(err.message.contains("max_entry_bytes (65536)"), "{err}");
        assert!(err.message.contains("not stored"), "{err}");
    }
    let exists: bool = raw.exists(format!("{prefix}{big}")).await.unwrap();
    assert!(!exists, "an oversized entry was written");
    let text = logs.text();
    assert_eq!(
        logs.count("WARN", "larger than max_entry_bytes are not cached"),
        1,
        "{text}"
    );

    // Written by a cache with a higher limit: a miss here, a hit there.
    let roomy = RedisCache::builder(&r.url)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    roomy
        .set(&big, &entry_of(100_000), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&big).await.unwrap(), None);
    assert_eq!(roomy.get(&big).await.unwrap(), Some(entry_of(100_000)));

    // Anything else over the limit is a miss too, without being transferred:
    // not a decoding error, not a timeout.
    let huge = key("huge");
    let junk = vec![b'z'; 8 * 1024 * 1024];
    let _: () = raw
        .set_ex(format!("{prefix}{huge}"), junk, 60)
        .await
        .unwrap();
    for c in [&cache, &roomy] {
        assert_eq!(
            no_hang("read of an 8 MiB value", c.get(&huge))
                .await
                .unwrap(),
            None
        );
    }

    // Between the head a lookup reads first and the limit: both ways, whole.
    for (name, size) in [
        ("mid", 40_000),
        ("edge", 32 * 1024 - 200),
        ("limit", 65_000),
    ] {
        let k = key(name);
        let value = entry_of(size);
        assert!(value.encode().len() as u64 <= limit, "{name}");
        cache
            .set(&k, &value, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get(&k).await.unwrap(), Some(value), "{name}");
    }
    // And a small one, as always.
    let small = key("small");
    cache
        .set(&small, &entry("small"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&small).await.unwrap(), Some(entry("small")));
    assert!(format!("{cache:?}").contains("state: \"up\""));
    assert_eq!(
        logs.count("WARN", "redis cache unavailable"),
        0,
        "{}",
        logs.text()
    );
}

/// A stand-in for Redis that answers the cache's commands with the bytes
/// Redis sends (RESP2), except that the transfer of `slow_key` never gets
/// past its first 32 KiB: every read of it beyond that is left unanswered,
/// as on a link too slow for the entry.
struct SlowLink {
    addr: std::net::SocketAddr,
    stalled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowLink {
    async fn start(slow_key: String, slow: Vec<u8>, fast_key: String, fast: Vec<u8>) -> Self {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicUsize::new(0));
        let data = Arc::new([(slow_key, slow), (fast_key, fast)]);
        let count = stalled.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_slow_link(stream, data.clone(), count.clone()));
            }
        });
        Self { addr, stalled }
    }

    fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    fn stalled(&self) -> usize {
        self.stalled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn serve_slow_link(
    stream: tokio::net::TcpStream,
    data: std::sync::Arc<[(String, Vec<u8>); 2]>,
    stalled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::AsyncWriteExt;
    const HEAD: usize = 32 * 1024;
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    while let Some(args) = read_command(&mut read).await {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let arg = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
        let num = |i: usize| arg(i).and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
        let value = arg(1).and_then(|k| data.iter().position(|(key, _)| *key == k));
        let bulk = |bytes: &[u8]| {
            let mut out = format!("${}\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
            out
        };
        let reply = match (name.as_str(), value) {
            ("PING", _) => Some(b"+PONG\r\n".to_vec()),
            ("CLIENT" | "SELECT", _) => Some(b"+OK\r\n".to_vec()),
            ("EXISTS", v) => Some(format!(":{}\r\n", u8::from(v.is_some())).into_bytes()),
            ("STRLEN", v) => {
                Some(format!(":{}\r\n", v.map_or(0, |i| data[i].1.len())).into_bytes())
            }
            ("GET", None) => Some(b"$-1\r\n".to_vec()),
            ("GETRANGE", None) => Some(b"$0\r\n\r\n".to_vec()),
            // The slow entry: only its head ever arrives.
            ("GET", Some(0)) => None,
            ("GETRANGE", Some(0)) if num(3) >= HEAD => None,
            ("GET", Some(i)) => Some(bulk(&data[i].1)),
            ("GETRANGE", Some(i)) => {
                let v = &data[i].1;
                let end = num(3).min(v.len().saturating_sub(1));
                Some(bulk(v.get(num(2)..=end).unwrap_or_default()))
            }
            _ => Some(
                format!("-ERR unknown command '{name}', with args beginning with: \r\n")
                    .into_bytes(),
            ),
        };
        match reply {
            Some(bytes) => {
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            None => {
                // Nothing more arrives on this connection, whatever is asked.
                stalled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                while read_command(&mut read).await.is_some() {}
                return;
            }
        }
    }
}

/// One RESP command (an array of bulk strings); `None` at the end of the stream.
async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<Vec<u8>>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).await.ok()?;
        buf.truncate(len);
        args.push(buf);
    }
    Some(args)
}

#[tokio::test]
async fn a_slow_transfer_of_a_large_entry_is_not_an_outage() {
    let (logs, _guard) = Logs::capture();
    let prefix = "slow:";
    let (big, small) = (key("big"), key("small"));
    let link = SlowLink::start(
        format!("{prefix}{big}"),
        entry_of(200_000).encode(),
        format!("{prefix}{small}"),
        entry("small").encode(),
    )
    .await;
    let cache = RedisCache::builder(link.url())
        .key_prefix(prefix)
        .timeout(Duration::from_millis(50))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();

    // More slow reads in a row than the timeouts that make an outage.
    for round in 0..6 {
        let err = no_hang("a read that does not finish", cache.get(&big))
            .await
            .unwrap_err();
        assert!(
            err.message.contains("no answer from Redis"),
            "round {round}: {err}"
        );
    }
    assert_eq!(link.stalled(), 6, "every read reached Redis");
    // Redis itself is fine, and the cache still uses it.
    assert_eq!(cache.get(&small).await.unwrap(), Some(entry("small")));
    let dbg = format!("{cache:?}");
    assert!(dbg.contains("state: \"up\""), "{dbg}");
    let text = logs.text();
    assert_eq!(logs.count("WARN", "redis cache unavailable"), 0, "{text}");
}

#[test]
fn a_missing_redis_fails_in_ci_and_is_a_printed_skip_elsewhere() {
    // This test binary, run for one Redis test, with no Redis to be found.
    let empty = tempfile::tempdir().unwrap();
    let run = |ci: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "round_trip", "--nocapture", "--test-threads=1"])
            .env("PATH", empty.path())
            .env_remove(common::ENV)
            .env_remove("CI");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    let (ok, text) = run(Some("true"));
    assert!(!ok, "CI=true: a missing Redis must fail the test:\n{text}");
    assert!(text.contains("must run, not skip"), "{text}");

    let (ok, text) = run(None);
    assert!(ok, "locally a missing Redis is a skip:\n{text}");
    assert!(text.contains("SKIPPED round_trip"), "{text}");
    let (ok, text) = run(Some("false"));
    assert!(ok && text.contains("SKIPPED round_trip"), "{text}");
}
