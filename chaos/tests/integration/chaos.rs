//! The short chaos run: 2,000 requests over three faulty upstreams (one always
//! healthy), Redis killed and restarted mid-run; every reliability invariant
//! is checked by `llm_chaos::suite`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use llm_chaos::suite::{run, CacheChoice, Settings, Via};

/// Redis of our own (killed and restarted mid-run) when `redis-server` is
/// installed, else CI's `LLM_TEST_REDIS_URL` (not restarted), else memory.
fn cache_choice(test: &str) -> CacheChoice {
    if llm_chaos::redis::available() {
        return CacheChoice::OwnRedis;
    }
    if let Some(url) = llm_chaos::redis::external_url() {
        let _ = writeln!(
            std::io::stderr(),
            "NOTE {test}: no redis-server: using {} without killing it mid-run",
            llm_chaos::redis::ENV
        );
        return CacheChoice::Redis(url);
    }
    let _ = writeln!(
        std::io::stderr(),
        "NOTE {test}: no redis-server and {} unset: running with the memory cache only",
        llm_chaos::redis::ENV
    );
    CacheChoice::Memory(64 * 1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_2000_requests_through_the_client() {
    let report = run(Settings {
        requests: 2000,
        cache: cache_choice("chaos_2000_requests_through_the_client"),
        ..Settings::default()
    })
    .await
    .unwrap();
    let _ = writeln!(std::io::stderr(), "{}", report.table());
    assert!(report.is_clean(), "{}", report.table());
    assert_eq!(report.answers, 2000);
    assert!(report.complete >= 800, "{}", report.table());
    assert!(report.retries > 0.0 && report.fallbacks > 0.0);
    assert!(report.cache_hits > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_1000_requests_through_the_gateway() {
    let report = run(Settings {
        requests: 1000,
        phases: 9,
        via: Via::Gateway,
        seed: 4242,
        cache: CacheChoice::Memory(16 * 1024 * 1024),
        ..Settings::default()
    })
    .await
    .unwrap();
    let _ = writeln!(std::io::stderr(), "{}", report.table());
    assert!(report.is_clean(), "{}", report.table());
    assert_eq!(report.answers, 1000);
    assert!(report.complete >= 400, "{}", report.table());
}

/// The breaker exactly as configured: open after `failure_threshold`
/// consecutive failures, half-open after the cooldown, closed by one good trial;
/// `llm_circuit_state` follows.
#[tokio::test]
async fn breaker_opens_at_the_threshold_and_a_trial_closes_it() {
    use std::sync::Arc;
    use std::time::Duration;

    use llm_chaos::fault::{Fault, Role};
    use llm_chaos::suite::{config_toml, request_for, Limits};
    use llm_chaos::upstream::{ApiKind, ChaosOptions, Ledger, Upstream};
    use llm_core::config::Config;
    use llm_core::exec::CircuitState;
    use llm_core::metrics::MetricsRegistry;
    use llm_core::LlmClient;

    let opts = ChaosOptions {
        fault_probes: false,
        ..ChaosOptions::default()
    };
    let ledger = Arc::new(Ledger::default());
    let u = Upstream::start("openai-a", ApiKind::OpenAi, opts, ledger.clone())
        .await
        .unwrap();
    u.set_role(Role::Flaky {
        rate: 1.0,
        faults: vec![Fault::Status(500)],
    })
    .await
    .unwrap();
    let limits = Limits {
        max_retries: 0,
        failure_threshold: 3,
        cooldown: Duration::from_millis(300),
        ..Limits::default()
    };
    let cfg = Config::from_toml_str(&config_toml(std::slice::from_ref(&u), &limits)).unwrap();
    let registry = MetricsRegistry::new().unwrap();
    let client = LlmClient::builder()
        .providers(cfg.build_providers().unwrap())
        .routing(cfg.routing.clone())
        .no_cache()
        .telemetry(registry.telemetry())
        .build()
        .unwrap();
    let circuit = || client.health()[0].circuit;
    let gauge = || {
        llm_chaos::monitor::metric_sum(&registry.encode(), "llm_circuit_state", Some("openai-a"))
    };
    for i in 1..=3 {
        assert_eq!(circuit(), CircuitState::Closed, "before failure {i}");
        assert!(client
            .generate(request_for(&format!("b{i} x")))
            .await
            .is_err());
    }
    assert_eq!(circuit(), CircuitState::Open, "open after 3 failures");
    assert_eq!(gauge(), 2.0);
    // While open and with no other provider, a request makes one last-resort
    // call (no retries), which fails and leaves the circuit open.
    assert!(client.generate(request_for("b4 x")).await.is_err());
    assert_eq!(ledger.calls("b4 x"), 1);
    assert_eq!(circuit(), CircuitState::Open);

    u.set_role(Role::Healthy).await.unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while circuit() != CircuitState::HalfOpen {
        assert!(tokio::time::Instant::now() < until, "never half-open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resp = client.generate(request_for("b5 x")).await.unwrap();
    assert_eq!(resp.content, llm_chaos::protocol::answer_for("b5"));
    assert_eq!(circuit(), CircuitState::Closed, "one good trial closes it");
    assert_eq!(gauge(), 0.0);
}
