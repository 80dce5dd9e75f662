//! Embeddings of the custom provider against a mock server: the body
//! template, the vectors and usage pointers, capability, errors, configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    Capability, EmbeddingRequest, ErrorClass, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, Usage,
};
use serde_json::json;

fn profile() -> ProviderProfile {
    ProviderProfile {
        models: vec!["private-model".into()],
        embedding_models: vec!["e5-large".into()],
        timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn spec(url: &str) -> ProviderSpec {
    ProviderSpec::new("custom", "custom", profile()).option("base_url", url)
}

fn embedding_spec(url: &str) -> ProviderSpec {
    spec(url)
        .option("embed_path", "/embed")
        .option("embed_tokens_pointer", "/usage/tokens")
}

fn build(spec: &ProviderSpec) -> Arc<dyn Provider> {
    llm_core::registry::build_spec(spec).expect("provider builds")
}

fn table(v: serde_json::Value) -> toml::Value {
    toml::Value::try_from(v).unwrap()
}

fn request() -> EmbeddingRequest {
    EmbeddingRequest::new(["第一章：风起", "Chapter two"]).model("e5-large")
}

const TWO: &str = r#"{"embeddings":[[0.25,-0.5,1],[0.125,0,-1.5]],"usage":{"tokens":12}}"#;

#[tokio::test]
async fn default_body_vectors_in_order_and_reported_usage() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/embed", MockReply::json(200, TWO));
    let p = build(&embedding_spec(&server.url()));
    let r = p.embed(&request()).await.unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/embed");
    assert_eq!(
        sent[0].json(),
        json!({"model": "e5-large", "input": ["第一章：风起", "Chapter two"]})
    );
    assert_eq!(sent[0].header("accept"), Some("application/json"));
    assert_eq!(
        r.vectors,
        vec![vec![0.25, -0.5, 1.0], vec![0.125, 0.0, -1.5]]
    );
    assert_eq!(r.usage, Usage::new(12, 0));
    assert_eq!(
        (
            r.model.as_str(),
            r.provider.as_str(),
            r.provider_kind.as_str()
        ),
        ("e5-large", "custom", "custom")
    );

    // `dimensions` goes in only when set.
    p.embed(&request().dimensions(3)).await.unwrap();
    assert_eq!(server.requests()[1].json()["dimensions"], 3);
}

/// An OpenAI-compatible embeddings endpoint: its own body shape, the vectors
/// in `data[].embedding` (OpenAI's exact answer bytes), usage elsewhere.
#[tokio::test]
async fn a_template_and_pointers_fit_an_openai_shaped_api() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/v1/embeddings",
        MockReply::json(
            200,
            r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": [
        -0.006929283,
        -0.005336422
      ]
    },
    {
      "object": "embedding",
      "index": 1,
      "embedding": [
        0.0123,
        -0.0456
      ]
    }
  ],
  "model": "text-embedding-3-small",
  "usage": {
    "prompt_tokens": 9,
    "total_tokens": 9
  }
}"#,
        ),
    );
    let s = spec(&server.url())
        .option("embed_path", "/v1/embeddings")
        .option("embeddings_pointer", "/data")
        .option("embed_tokens_pointer", "/usage/prompt_tokens")
        .option(
            "embed_template",
            table(json!({
                "model": "{{model}}", "input": "{{inputs}}", "dimensions": "{{dimensions}}",
                "encoding_format": "float"
            })),
        );
    let p = build(&s);
    let r = p.embed(&request().dimensions(2)).await.unwrap();
    assert_eq!(
        server.requests()[0].json(),
        json!({"model": "e5-large", "input": ["第一章：风起", "Chapter two"],
               "dimensions": 2, "encoding_format": "float"})
    );
    assert_eq!(
        r.vectors,
        vec![vec![-0.006929283, -0.005336422], vec![0.0123, -0.0456]]
    );
    assert_eq!(r.usage, Usage::new(9, 0));
}

#[tokio::test]
async fn unreported_usage_is_left_to_the_client() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/embed",
        MockReply::json(200, r#"{"embeddings":[[1],[2]]}"#),
    );
    let p = build(&spec(&server.url()).option("embed_path", "/embed"));
    assert_eq!(p.embed(&request()).await.unwrap().usage, Usage::default());
}

#[tokio::test]
async fn embeddings_need_embed_path_and_a_listed_model() {
    let server = MockServer::start().await.unwrap();
    let without = build(&spec(&server.url()));
    assert!(!without.supports(Capability::Embeddings, "e5-large"));
    let err = without.embed(&request()).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert!(server.requests().is_empty());

    let with = build(&embedding_spec(&server.url()));
    assert!(with.supports(Capability::Embeddings, "e5-large"));
    assert!(!with.supports(Capability::Embeddings, "private-model"));
    assert!(!with.supports(Capability::Tools, "e5-large"));
}

#[tokio::test]
async fn dimensions_without_a_placeholder_are_refused_before_sending() {
    let server = MockServer::start().await.unwrap();
    let s = embedding_spec(&server.url()).option(
        "embed_template",
        table(json!({"texts": "{{inputs}}", "model": "{{model}}"})),
    );
    let err = build(&s)
        .embed(&request().dimensions(256))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert!(err.message.starts_with("dimensions:"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_missing_model_and_server_errors_are_classified() {
    let server = MockServer::start().await.unwrap();
    server.on_times(
        "POST",
        "/embed",
        MockReply::json(
            404,
            r#"{"error":{"message":"model 'e5-large' not found","code":"model_not_found"}}"#,
        ),
        1,
    );
    server.on(
        "POST",
        "/embed",
        MockReply::json(500, r#"{"error":"CUDA out of memory"}"#).header("x-request-id", "req-7"),
    );
    let p = build(&embedding_spec(&server.url()));
    let err = p.embed(&request()).await.unwrap_err();
    assert_eq!(err.status, Some(404));
    assert_eq!(err.code.as_deref(), Some("model_not_found"));
    assert_eq!(err.message, "model 'e5-large' not found");
    assert_eq!(err.class(), ErrorClass::Fallback);
    let err = p.embed(&request()).await.unwrap_err();
    assert_eq!(err.status, Some(500));
    assert_eq!(err.message, "CUDA out of memory");
    assert_eq!(err.request_id.as_deref(), Some("req-7"));
    assert_eq!(err.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn a_wrong_answer_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    let p = build(&embedding_spec(&server.url()));
    for (body, says) in [
        (r#"{"embeddings":[[0.1,0.2]]}"#, "1 vectors for 2 inputs"),
        (
            r#"{"embeddings":[[0.1],[0.2],[0.3]]}"#,
            "3 vectors for 2 inputs",
        ),
        (
            r#"{"vectors":[[0.1],[0.2]]}"#,
            "no array of vectors at `/embeddings`",
        ),
        (r#"{"embeddings":[[0.1],["x"]]}"#, "vector 1"),
    ] {
        server.reset();
        server.on("POST", "/embed", MockReply::json(200, body));
        let err = p.embed(&request()).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Decode, "{body}: {err}");
        assert!(err.message.contains(says), "{body}: {err}");
    }
    // An error in a 2xx body is the API's error.
    server.reset();
    server.on(
        "POST",
        "/embed",
        MockReply::json(200, r#"{"error":"input too long"}"#),
    );
    let err = p.embed(&request()).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Http);
    assert_eq!(err.message, "input too long");
}

#[test]
fn embedding_keys_are_checked() {
    let url = "http://127.0.0.1:9";
    let key = |s: &ProviderSpec| {
        llm_custom::CustomProvider::from_spec(s)
            .unwrap_err()
            .key
            .unwrap()
    };
    let s = spec(url).option("embed_template", table(json!({"input": "{{inputs}}"})));
    assert_eq!(key(&s), "llm_providers.custom.embed_template");
    let s = spec(url).option("embed_tokens_pointer", "/usage");
    assert_eq!(key(&s), "llm_providers.custom.embed_tokens_pointer");
    let s = embedding_spec(url).option("embed_template", table(json!({"model": "{{model}}"})));
    assert_eq!(key(&s), "llm_providers.custom.embed_template");
    let s = embedding_spec(url).option("embed_template", table(json!({"q": "{{prompt}}"})));
    assert_eq!(key(&s), "llm_providers.custom.embed_template");
    let s = embedding_spec(url).option("embeddings_pointer", "data");
    assert_eq!(key(&s), "llm_providers.custom.embeddings_pointer");
    let s = spec(url).option("embed_path", "embed");
    assert_eq!(key(&s), "llm_providers.custom.embed_path");
}

#[tokio::test]
async fn check_says_why_the_health_probe_failed() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/health",
        MockReply::json(503, r#"{"error":"model loading"}"#),
    );
    let p = build(&spec(&server.url()));
    let err = p.check().await.unwrap_err();
    assert_eq!(err.status, Some(503));
    assert_eq!(err.message, "model loading");
    assert!(!p.is_available().await);

    let p = build(&spec(&MockServer::refused_url().await.unwrap()));
    let err = p.check().await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Connect, "{err}");
}
