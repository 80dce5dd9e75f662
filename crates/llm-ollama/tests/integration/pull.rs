//! Streamed model pulls (`POST /api/pull`) against a mock server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{ErrorClass, ProviderErrorKind, ProviderProfile, ProviderSpec};
use llm_ollama::{OllamaProvider, OllamaService, PullProgress};
use serde_json::json;

use crate::provider::chunked;

/// Section 3.10, pull stream.
const PULL: [&str; 7] = [
    r#"{"status":"pulling manifest"}"#,
    r#"{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376}"#,
    r#"{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":241970}"#,
    r#"{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":2019377376}"#,
    r#"{"status":"verifying sha256 digest"}"#,
    r#"{"status":"writing manifest"}"#,
    r#"{"status":"success"}"#,
];

fn spec(server: &MockServer) -> ProviderSpec {
    let profile = ProviderProfile {
        timeout: Duration::from_secs(10),
        ..ProviderProfile::default()
    };
    ProviderSpec::new("ollama", "ollama", profile).option("base_url", server.url())
}

#[tokio::test]
async fn pull_reports_every_progress_line() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/pull", chunked(&PULL));
    let p = OllamaProvider::from_spec(&spec(&server)).unwrap();
    let mut seen: Vec<PullProgress> = Vec::new();
    p.pull("llama3.2", |pr| seen.push(pr.clone()))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].json(),
        json!({"model": "llama3.2", "stream": true})
    );
    let statuses: Vec<&str> = seen.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "pulling manifest",
            "pulling dde5aa3fc5ff",
            "pulling dde5aa3fc5ff",
            "pulling dde5aa3fc5ff",
            "verifying sha256 digest",
            "writing manifest",
            "success"
        ]
    );
    assert_eq!(seen[1].total, Some(2_019_377_376));
    assert_eq!(seen[1].completed, None);
    assert_eq!(seen[2].completed, Some(241_970));
    assert_eq!(
        seen[3].digest.as_deref(),
        Some("sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff")
    );
    assert_eq!(seen[3].fraction(), Some(1.0));
    assert!(seen[6].is_success());
}

#[tokio::test]
async fn error_line_inside_the_pull_stream_fails() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/pull",
        chunked(&[
            r#"{"status":"pulling manifest"}"#,
            r#"{"error":"pull model manifest: file does not exist"}"#,
        ]),
    );
    let service = OllamaService::from_spec(&spec(&server)).unwrap();
    let mut calls = 0;
    let err = service.pull("llama9", |_| calls += 1).await.unwrap_err();
    assert_eq!(calls, 1);
    assert!(
        err.message
            .contains("pull model manifest: file does not exist"),
        "{err}"
    );
    assert!(err.message.contains("llama9"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fallback);
}

#[tokio::test]
async fn pull_stream_ending_before_success_is_incomplete() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/pull", chunked(&PULL[..5]));
    let p = OllamaProvider::from_spec(&spec(&server)).unwrap();
    let err = p.pull("llama3.2", |_| {}).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Incomplete, "{err}");
}

#[tokio::test]
async fn rejected_pull_is_an_http_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/pull",
        MockReply::json(400, r#"{"error":"invalid model name"}"#),
    );
    let p = OllamaProvider::from_spec(&spec(&server)).unwrap();
    let err = p.pull("Bad Name!", |_| {}).await.unwrap_err();
    assert_eq!(err.status, Some(400));
    assert_eq!(err.message, "invalid model name");
}
