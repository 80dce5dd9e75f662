//! The multi-replica scenarios, short: three `llm serve` processes (the
//! crate's `chaos-llm` binary), one `redis-server`, a replica killed, one
//! drained, all reloaded, Redis restarted, one key's rate limit shared,
//! each under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use llm_chaos::cluster::{scenario, ClusterSettings, Scenario};

fn settings() -> Option<ClusterSettings> {
    if !llm_chaos::redis::available() {
        // CI installs redis-server: there a missing one is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed (CI=true): the multi-replica scenarios need it"
        );
        eprintln!("redis-server is not installed: multi-replica scenarios skipped");
        return None;
    }
    let mut s = ClusterSettings::new(PathBuf::from(env!("CARGO_BIN_EXE_chaos-llm")));
    s.requests = 300;
    s.concurrency = 12;
    // Longer than the load generator's readiness polling needs on a busy machine.
    s.drain_delay = 1.0;
    s.rpm = 60;
    // With PostgreSQL (CI starts one), the replicas share their keys there,
    // as a real deployment would; otherwise one SQLite file.
    s.store_url = std::env::var("LLM_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(llm_router::SecretString::from);
    Some(s)
}

/// One scenario at a time: each runs three gateways, Redis and two
/// upstreams, and five at once on two cores starve Redis past the limiter's
/// 100 ms timeout (its calls then fail open and the shared limit cannot show).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn check(sc: Scenario) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(s) = settings() else { return };
    let report = scenario(&s, sc).await.unwrap();
    eprintln!("{}", report.text());
    assert!(report.passed(), "{}", report.text());
    assert_eq!(report.failed, 0);
    assert_eq!(report.answered, s.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_loses_no_answer() {
    check(Scenario::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_replica_fails_no_request() {
    check(Scenario::Drain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_fails_nothing_and_reroutes() {
    check(Scenario::Reload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_fails_nothing() {
    check(Scenario::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rate_limit_holds_across_the_replicas() {
    check(Scenario::SharedLimit).await;
}
