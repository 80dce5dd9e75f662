//! The overall deadline and streams.
//!
//! `routing.deadline` bounds a `generate` call and the opening of a stream
//! (until its first event), but not the rest of the stream: an upstream that
//! keeps sending a few bytes within the per-attempt idle timeout holds a
//! client stream open for as long as it likes. (The gateway bounds its
//! streams with `request_timeout`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llm_chaos::fault::{Fault, Role};
use llm_chaos::suite::{config_toml, request_for, Limits};
use llm_chaos::upstream::{ApiKind, ChaosOptions, Ledger, Upstream};
use llm_core::config::Config;
use llm_core::LlmClient;
use tokio::time::Instant;

/// An upstream that drips a correct stream over about 8 s (40 pieces, 0.2 s
/// apart: always within the 1 s idle timeout), and a client with a 2 s deadline.
async fn dripping() -> (Upstream, LlmClient, Limits) {
    let opts = ChaosOptions {
        drip_delay: Duration::from_millis(200),
        drip_pieces: 40,
        fault_probes: false,
        ..ChaosOptions::default()
    };
    let u = Upstream::start(
        "openai-a",
        ApiKind::OpenAi,
        opts,
        Arc::new(Ledger::default()),
    )
    .await
    .unwrap();
    u.set_role(Role::Flaky {
        rate: 1.0,
        faults: vec![Fault::SlowDrip],
    })
    .await
    .unwrap();
    let limits = Limits {
        deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let cfg = Config::from_toml_str(&config_toml(std::slice::from_ref(&u), &limits)).unwrap();
    (u, LlmClient::from_config(&cfg).unwrap(), limits)
}

#[tokio::test]
async fn a_dripping_generate_call_is_bounded_by_the_deadline() {
    let (_u, client, limits) = dripping().await;
    let t = Instant::now();
    let r = client.generate(request_for("q1 drip")).await;
    assert!(r.is_err(), "each attempt times out: {r:?}");
    // Generous slack for a loaded machine; the point is that it is bounded.
    assert!(t.elapsed() <= limits.deadline + Duration::from_secs(3));
}

#[tokio::test]
async fn a_dripping_stream_is_bounded_by_the_deadline() {
    let (_u, client, limits) = dripping().await;
    let t = Instant::now();
    let mut s = client.stream(request_for("q1 drip")).await.unwrap();
    let mut last = None;
    while let Some(item) = s.next().await {
        last = Some(item.is_ok());
    }
    assert_eq!(
        last,
        Some(false),
        "the stream should end with a deadline error"
    );
    assert!(
        t.elapsed() <= limits.deadline + Duration::from_secs(3),
        "the stream lasted {:.1} s with a {:.1} s deadline",
        t.elapsed().as_secs_f64(),
        limits.deadline.as_secs_f64()
    );
}
