//! Embeddings through `POST /api/embed` (and `/api/embeddings` on old servers),
//! against a mock server answering with the bytes Ollama sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    Capability, EmbeddingRequest, ErrorClass, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, Usage,
};
use llm_ollama::{OllamaProvider, KIND};
use serde_json::json;

const JSON: &str = "application/json; charset=utf-8";

/// The "Multiple input" answer of `POST /api/embed` in Ollama's API reference
/// (ollama/ollama `docs/api.md`, "Generate Embeddings"), with the timing and
/// `prompt_eval_count` fields a server adds, as in the reference's
/// single-input example.
const TWO_VECTORS: &str = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704,0.105441414,-0.025878139,0.12958129,0.031952348],[-0.0098027075,0.06042469,0.025257962,-0.006364387,0.07272725,0.017194884,0.09032035,-0.051705178,0.09951512,0.09072481]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;

fn spec(server_url: String) -> ProviderSpec {
    let profile = ProviderProfile {
        local: true,
        models: vec!["llama3.2".into()],
        embedding_models: vec!["all-minilm".into()],
        timeout: Duration::from_secs(10),
        ..ProviderProfile::default()
    };
    ProviderSpec::new("local", KIND, profile).option("base_url", server_url)
}

fn provider(server: &MockServer) -> OllamaProvider {
    OllamaProvider::from_spec(&spec(server.url())).unwrap()
}

fn request() -> EmbeddingRequest {
    EmbeddingRequest::new(["Why is the sky blue?", "Why is the grass green?"]).model("all-minilm")
}

#[tokio::test]
async fn a_batch_is_one_request_with_vectors_in_order_and_usage() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/embed", MockReply::new(200, JSON, TWO_VECTORS));
    let p = provider(&server);
    let r = p.embed(&request()).await.unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/api/embed");
    assert_eq!(
        String::from_utf8(sent[0].body.clone()).unwrap(),
        r#"{"model":"all-minilm","input":["Why is the sky blue?","Why is the grass green?"]}"#
    );
    assert_eq!(r.vectors.len(), 2);
    assert_eq!(r.vectors[0].len(), 10);
    assert_eq!(r.vectors[0][0], 0.010071029_f32);
    assert_eq!(r.vectors[1][0], -0.0098027075_f32);
    assert_eq!(r.vectors[1][9], 0.09072481_f32);
    assert_eq!(r.usage, Usage::new(8, 0));
    assert_eq!(
        (r.model.as_str(), r.provider.as_str()),
        ("all-minilm", "local")
    );
    assert_eq!(r.provider_kind, KIND);
}

#[tokio::test]
async fn dimensions_and_keep_alive_are_sent_only_when_set() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/embed", MockReply::new(200, JSON, TWO_VECTORS));
    let p = OllamaProvider::from_spec(&spec(server.url()).option("keep_alive", "10m")).unwrap();
    p.embed(&request().dimensions(256)).await.unwrap();
    assert_eq!(
        server.requests()[0].json(),
        json!({
            "model": "all-minilm",
            "input": ["Why is the sky blue?", "Why is the grass green?"],
            "keep_alive": "10m",
            "dimensions": 256
        })
    );
}

#[tokio::test]
async fn the_capability_follows_embedding_models() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    assert!(p.supports(Capability::Embeddings, "all-minilm"));
    assert!(!p.supports(Capability::Embeddings, "llama3.2"));
    assert!(!p.supports(Capability::Embeddings, "nomic-embed-text"));
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    let r = p
        .embed(&EmbeddingRequest::new(Vec::<String>::new()).model("all-minilm"))
        .await
        .unwrap();
    assert!(r.vectors.is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_missing_model_is_the_usual_model_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(
            404,
            JSON,
            r#"{"error":"model \"all-minilm\" not found, try pulling it first"}"#,
        ),
    );
    let p = provider(&server);
    let err = p.embed(&request()).await.unwrap_err();
    assert_eq!(err.status, Some(404));
    assert_eq!(err.code.as_deref(), Some("model_not_found"));
    assert_eq!(err.class(), ErrorClass::Fallback);
    assert!(err.message.contains("`ollama pull all-minilm`"), "{err}");
    // Not mistaken for an old server: nothing else was tried.
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/api/embed"]);
}

#[tokio::test]
async fn a_server_error_is_retryable() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(
            500,
            JSON,
            r#"{"error":"llama runner process has terminated"}"#,
        ),
    );
    let err = provider(&server).embed(&request()).await.unwrap_err();
    assert_eq!(err.status, Some(500));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(err.message, "llama runner process has terminated");
}

#[tokio::test]
async fn a_wrong_number_of_vectors_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(
            200,
            JSON,
            r#"{"model":"all-minilm","embeddings":[[0.1,0.2]],"total_duration":1,"load_duration":1,"prompt_eval_count":8}"#,
        ),
    );
    let err = provider(&server).embed(&request()).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode);
    assert!(err.message.contains("1 vectors for 2 inputs"), "{err}");
    server.reset();
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(
            200,
            JSON,
            r#"{"model":"all-minilm","embeddings":[[0.1,"x"],[0.2,0.3]]}"#,
        ),
    );
    let err = provider(&server).embed(&request()).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode);
}

/// An old server: Gin's plain-text 404 for the unknown `/api/embed` route,
/// and `{"embedding":[…]}` from `/api/embeddings` (the superseded endpoint
/// in `docs/api.md`, "Generate Embedding").
fn old_server(server: &MockServer) {
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(404, "text/plain", "404 page not found"),
    );
    server.on_times(
        "POST",
        "/api/embeddings",
        MockReply::new(
            200,
            JSON,
            r#"{"embedding":[0.5670403838157654,0.009260174818336964]}"#,
        ),
        1,
    );
    server.on(
        "POST",
        "/api/embeddings",
        MockReply::new(
            200,
            JSON,
            r#"{"embedding":[-0.2916173040866852,-0.8924556970596313]}"#,
        ),
    );
}

#[tokio::test]
async fn old_servers_get_one_legacy_request_per_input_in_order() {
    let server = MockServer::start().await.unwrap();
    old_server(&server);
    let p = provider(&server);
    let r = p.embed(&request()).await.unwrap();
    assert_eq!(
        r.vectors,
        vec![
            vec![0.567_040_4_f32, 0.009_260_175],
            vec![-0.291_617_3_f32, -0.892_455_7]
        ]
    );
    // No token counts from the old endpoint: the client estimates.
    assert_eq!(r.usage, Usage::default());
    let sent = server.requests();
    let paths: Vec<_> = sent.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/embed", "/api/embeddings", "/api/embeddings"]);
    assert_eq!(
        String::from_utf8(sent[1].body.clone()).unwrap(),
        r#"{"model":"all-minilm","prompt":"Why is the sky blue?"}"#
    );
    assert_eq!(sent[2].json()["prompt"], "Why is the grass green?");

    // The next batch goes straight to the old endpoint.
    p.embed(&EmbeddingRequest::new(["x"]).model("all-minilm"))
        .await
        .unwrap();
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 4);
    assert_eq!(paths[3], "/api/embeddings");
}

#[tokio::test]
async fn old_servers_cannot_shorten_vectors() {
    let server = MockServer::start().await.unwrap();
    old_server(&server);
    let err = provider(&server)
        .embed(&request().dimensions(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert!(err.message.starts_with("dimensions:"), "{err}");
    assert_eq!(server.requests().len(), 1, "no legacy request was sent");
}

#[tokio::test]
async fn a_missing_model_on_an_old_server_is_the_usual_model_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/embed",
        MockReply::new(404, "text/plain", "404 page not found"),
    );
    server.on(
        "POST",
        "/api/embeddings",
        MockReply::new(
            404,
            JSON,
            r#"{"error":"model \"all-minilm\" not found, try pulling it first"}"#,
        ),
    );
    let err = provider(&server).embed(&request()).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("model_not_found"));
    assert_eq!(err.class(), ErrorClass::Fallback);
    assert_eq!(server.requests().len(), 2, "stops at the first failure");
}

#[tokio::test]
async fn check_says_why_the_probe_failed() {
    let p = OllamaProvider::from_spec(&spec(MockServer::refused_url().await.unwrap())).unwrap();
    let err = p.check().await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Connect, "{err}");
    assert!(!p.is_available().await);

    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/api/version",
        MockReply::new(401, JSON, r#"{"error":"unauthorized"}"#),
    );
    let p = provider(&server);
    let err = p.check().await.unwrap_err();
    assert_eq!(err.status, Some(401));
    assert_eq!(err.message, "unauthorized");
    server.reset();
    server.on(
        "GET",
        "/api/version",
        MockReply::new(200, JSON, r#"{"version":"0.12.3"}"#),
    );
    p.check().await.unwrap();
}
