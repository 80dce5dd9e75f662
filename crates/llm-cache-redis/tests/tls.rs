//! `RedisCache` over TLS (`rediss://`) against a real `redis-server` with a
//! TLS port, its certificate signed by a throwaway CA made here with the
//! `openssl` CLI. Without `openssl` or `redis-server` the server tests print
//! `SKIPPED …` and pass, except under CI (`LLM_TEST_REDIS_URL` set), where a
//! missing tool fails them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use llm_cache_redis::RedisCache;
use llm_core::cache::ResponseCache;
use llm_core::config::{CacheBackend, CachingConfig, Secs};
use llm_core::testing::ScriptedProvider;
use llm_core::{LlmClient, LlmRequest};
use redis::AsyncCommands;

/// A throwaway CA and a server certificate for `127.0.0.1` (SAN IP), in a
/// temporary directory removed on drop.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(test: &str) -> Option<Self> {
        if !tool(test, "openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let ext = p("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName = IP:127.0.0.1\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        let s = |path: &Path| path.to_str().unwrap().to_owned();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            &[
                &["req", "-x509", "-nodes", "-days", "2"][..],
                &ec,
                &["-subj", "/CN=llm-router test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                &["-keyout", &s(&p("ca.key")), "-out", &s(&p("ca.pem"))],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-new", "-nodes"][..],
                &ec,
                &["-subj", "/CN=127.0.0.1"],
                &[
                    "-keyout",
                    &s(&p("server.key")),
                    "-out",
                    &s(&p("server.csr")),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-set_serial",
            "2",
            "-in",
            &s(&p("server.csr")),
            "-CA",
            &s(&p("ca.pem")),
            "-CAkey",
            &s(&p("ca.key")),
            "-extfile",
            &s(&ext),
            "-out",
            &s(&p("server.pem")),
        ]);
        Some(Self {
            ca: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
            _dir: dir,
        })
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `redis-server` of this test's own with a TLS port (no client
/// certificates required) besides its plain one.
struct TlsRedis {
    pki: Pki,
    server: RedisServer,
    tls_port: u16,
}

impl TlsRedis {
    fn start(test: &str, extra: &[&str]) -> Option<Self> {
        let pki = Pki::new(test)?;
        let tls_port = free_port();
        let port = tls_port.to_string();
        let mut args = vec![
            "--tls-port",
            &port,
            "--tls-cert-file",
            pki.cert.to_str().unwrap(),
            "--tls-key-file",
            pki.key.to_str().unwrap(),
            "--tls-ca-cert-file",
            pki.ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ];
        args.extend_from_slice(extra);
        let server = own_server_with(test, &args)?;
        Some(Self {
            pki,
            server,
            tls_port,
        })
    }

    /// `rediss://[userinfo@]127.0.0.1:TLS_PORT/0`.
    fn url(&self, userinfo: &str) -> String {
        format!("rediss://{userinfo}127.0.0.1:{}/0", self.tls_port)
    }
}

#[tokio::test]
async fn round_trip_over_tls_with_the_ca_file() {
    let Some(r) = TlsRedis::start("round_trip_over_tls_with_the_ca_file", &[]) else {
        return;
    };
    let prefix = unique_prefix("tls");
    let cache = RedisCache::builder(r.url(""))
        .ca_file(&r.pki.ca)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let k = key("over tls");
    assert_eq!(cache.get(&k).await.unwrap(), None);
    cache
        .set(&k, &entry("chiffré ✓"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), Some(entry("chiffré ✓")));

    // The entry is really in that server (seen through its plain port).
    let mut raw = raw(&r.server.url()).await;
    let ttl: i64 = raw.ttl(cache.redis_key(&k)).await.unwrap();
    assert!((1..=60).contains(&ttl), "ttl {ttl}");

    // The same through `[caching]`, as the client builds it.
    let config = CachingConfig {
        backend: CacheBackend::Redis,
        redis_url: r.url(""),
        redis_ca_file: Some(r.pki.ca.clone()),
        key_prefix: prefix,
        redis_timeout: Secs(Duration::from_secs(2)),
        ..CachingConfig::default()
    };
    let from_config = llm_cache_redis::build(&config).unwrap();
    assert_eq!(from_config.get(&k).await.unwrap(), Some(entry("chiffré ✓")));
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_miss_never_a_panic() {
    let Some(r) = TlsRedis::start("an_untrusted_certificate_is_a_miss_never_a_panic", &[]) else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    // No CA file: the public roots do not include the throwaway CA.
    let cache = RedisCache::builder(r.url(""))
        .key_prefix(unique_prefix("untrusted"))
        .timeout(Duration::from_secs(2))
        .retry_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let k = key("untrusted");
    // The first operation shares the first connection attempt: its error
    // says why.
    let err = no_hang("get with an untrusted certificate", cache.get(&k))
        .await
        .unwrap_err();
    assert_eq!(err.backend, "redis");
    assert!(err.message.contains("certificate"), "{err}");
    for _ in 0..3 {
        let err = no_hang(
            "set with an untrusted certificate",
            cache.set(&k, &entry("x"), Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.backend, "redis");
    }
    // One warning for the outage, naming the certificate problem.
    let text = logs.text();
    assert_eq!(
        logs.count_all("WARN", &["redis cache unavailable", "certificate"]),
        1,
        "{text}"
    );

    // Through the client: lookups are misses, requests succeed.
    let provider = Arc::new(ScriptedProvider::new("ollama").local(true).models(["m"]));
    let client = LlmClient::builder()
        .provider(provider.clone())
        .caching(CachingConfig {
            backend: CacheBackend::Redis,
            redis_url: r.url(""),
            redis_timeout: Secs(Duration::from_millis(500)),
            ..CachingConfig::default()
        })
        .build()
        .unwrap();
    for _ in 0..2 {
        let answer = no_hang("a request with the cache failing", async {
            client.generate(LlmRequest::new("same question")).await
        })
        .await
        .unwrap();
        assert!(!answer.cached);
    }
    assert_eq!(provider.calls(), 2, "every lookup was a miss");
}

#[tokio::test]
async fn the_password_of_a_rediss_url_stays_hidden() {
    let test = "the_password_of_a_rediss_url_stays_hidden";
    let Some(r) = TlsRedis::start(test, &["--requirepass", "tls-pa55-xyz"]) else {
        return;
    };
    let k = key("tls auth");

    // Right password, trusted CA: works; Debug hides the password.
    let good = RedisCache::builder(r.url(":tls-pa55-xyz@"))
        .ca_file(&r.pki.ca)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    good.set(&k, &entry("ok"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(good.get(&k).await.unwrap(), Some(entry("ok")));
    let debug = format!("{good:?}");
    assert!(debug.contains(&r.url("***@")), "{debug}");
    assert!(!debug.contains("tls-pa55"), "{debug}");
    drop(good);

    // Wrong password, and untrusted certificate: errors and logs hide it.
    let (logs, _guard) = Logs::capture();
    let wrong = RedisCache::builder(r.url("app:wrong-pa55-tls@"))
        .ca_file(&r.pki.ca)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let untrusted = RedisCache::builder(r.url("app:wrong-pa55-tls@"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for cache in [&wrong, &untrusted] {
        for _ in 0..2 {
            let err = no_hang("get that fails", cache.get(&k)).await.unwrap_err();
            assert!(!err.to_string().contains("wrong-pa55"), "{err}");
        }
        let debug = format!("{cache:?}");
        assert!(!debug.contains("wrong-pa55"), "{debug}");
    }
    let builder = RedisCache::builder(r.url("app:wrong-pa55-tls@")).ca_file(&r.pki.ca);
    assert!(!format!("{builder:?}").contains("wrong-pa55"));
    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(!text.contains("wrong-pa55"), "{text}");
}

#[test]
fn ca_file_problems_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = Some("caching.redis_ca_file");

    // Missing.
    let missing = dir.path().join("no-such-ca.pem");
    let err = RedisCache::builder("rediss://:pw-secret-1@127.0.0.1:6380/0")
        .ca_file(&missing)
        .build()
        .unwrap_err();
    assert_eq!(err.key.as_deref(), key);
    assert!(err.message.contains("no-such-ca.pem"), "{err}");
    assert!(!err.to_string().contains("pw-secret-1"), "{err}");

    // Not PEM at all, or PEM without a usable certificate.
    for (name, text) in [
        ("garbage.pem", "this is not a certificate\n"),
        (
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = RedisCache::builder("rediss://:pw-secret-1@127.0.0.1:6380/0")
            .ca_file(&path)
            .build()
            .unwrap_err();
        assert_eq!(err.key.as_deref(), key, "{err}");
        assert!(err.message.contains(name), "{err}");
        assert!(!err.to_string().contains("pw-secret-1"), "{err}");
    }

    // A CA file needs a TLS URL.
    let err = RedisCache::from_config(&CachingConfig {
        redis_url: "redis://:pw-secret-1@127.0.0.1:6379/0".into(),
        redis_ca_file: Some(missing.clone()),
        ..CachingConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.key.as_deref(), key);
    assert!(err.message.contains("rediss://"), "{err}");
    assert!(err.message.contains("no-such-ca.pem"), "{err}");
    assert!(!err.to_string().contains("pw-secret-1"), "{err}");

    // `rediss://` itself is accepted (public roots), and never connects here.
    let cache = RedisCache::from_config(&CachingConfig {
        redis_url: "rediss://:pw-secret-1@redis.example.com:6380/0".into(),
        ..CachingConfig::default()
    })
    .unwrap();
    let debug = format!("{cache:?}");
    assert!(
        debug.contains("rediss://***@redis.example.com:6380/0"),
        "{debug}"
    );
}
