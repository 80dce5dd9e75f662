//! `POST /embeddings`: exact request bodies, base64 and float answers,
//! order by `index`, batching, error mapping, the capability, and the
//! availability check's reasons.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_core::config::{RoutingConfig, Secs};
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    Capability, EmbeddingRequest, ErrorClass, LlmClient, Provider, ProviderErrorKind,
    ProviderProfile, ProviderSpec, Usage,
};
use llm_openai::fixtures::{EMBEDDINGS, EMBEDDINGS_FLOAT, EMBEDDING_VECTORS, MODELS, UNAUTHORIZED};
use llm_openai::OpenAiProvider;

const EMBED: &str = "/v1/embeddings";
const MODEL: &str = "text-embedding-3-small";
const REQUEST_ID: &str = "req_3f1c9a7e5b2d4c6a8e0f1b3d5c7a9e21";

/// 429 for tokens per minute, as OpenAI sends it (protocols.md §2.5 shape).
const RATE_LIMITED: &str = r#"{
  "error": {
    "message": "Rate limit reached for text-embedding-3-small in organization org-XXXX on tokens per min (TPM): Limit 1000000, Used 999000, Requested 4000. Please try again in 180ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
    "type": "tokens",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#;

/// 500 `server_error` (§2.5).
const SERVER_ERROR: &str = r#"{
  "error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": null,
    "code": null
  }
}"#;

/// 400 for a `dimensions` the model cannot give.
const BAD_DIMENSIONS: &str = r#"{
  "error": {
    "message": "This model does not support specifying dimensions.",
    "type": "invalid_request_error",
    "param": null,
    "code": null
  }
}"#;

fn profile() -> ProviderProfile {
    ProviderProfile {
        models: vec!["gpt-4o-mini".into()],
        embedding_models: vec![MODEL.into(), "text-embedding-3-large".into()],
        timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn spec(name: &str, server: &MockServer) -> ProviderSpec {
    ProviderSpec::new(name, "openai", profile())
        .option("base_url", format!("{}/v1", server.url()))
        .option("api_key", "sk-proj-embeddings-test-0000")
}

fn provider(server: &MockServer) -> OpenAiProvider {
    OpenAiProvider::from_spec(&spec("oai", server)).unwrap()
}

fn batched(server: &MockServer, size: i64) -> OpenAiProvider {
    OpenAiProvider::from_spec(&spec("oai", server).option("embedding_batch_size", size)).unwrap()
}

fn posts(server: &MockServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect()
}

fn body(r: &RecordedRequest) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn fixture_vectors() -> Vec<Vec<f32>> {
    EMBEDDING_VECTORS.iter().map(|v| v.to_vec()).collect()
}

/// The vector a generated answer gives the input at `index`.
fn vector_for(index: usize) -> Vec<f32> {
    vec![index as f32, 0.5, -(index as f32) / 4.0]
}

/// An answer in the API's layout (pretty-printed, base64 vectors) for the
/// inputs at `indexes` of the whole batch, listed in the order given (their
/// `index` fields count from 0 within the request).
fn answer(indexes: &[(usize, usize)], prompt_tokens: u64) -> MockReply {
    let items: Vec<String> = indexes
        .iter()
        .map(|&(index, input)| {
            let bytes = llm_core::embed::vector_to_bytes(&vector_for(input));
            format!(
                "    {{\n      \"object\": \"embedding\",\n      \"index\": {index},\n      \"embedding\": \"{}\"\n    }}",
                encode(&bytes)
            )
        })
        .collect();
    MockReply::json(
        200,
        format!(
            "{{\n  \"object\": \"list\",\n  \"data\": [\n{}\n  ],\n  \"model\": \"{MODEL}\",\n  \"usage\": {{\n    \"prompt_tokens\": {prompt_tokens},\n    \"total_tokens\": {prompt_tokens}\n  }}\n}}",
            items.join(",\n")
        ),
    )
}

fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn request(inputs: &[&str]) -> EmbeddingRequest {
    EmbeddingRequest::new(inputs.iter().copied()).model(MODEL)
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("input {i}")).collect()
}

// ---------------------------------------------------------------- request ---

#[tokio::test]
async fn every_field_is_sent_byte_for_byte_and_base64_is_decoded() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, MockReply::json(200, EMBEDDINGS));
    let p = provider(&server);
    let mut req = request(&["第一章", "Chapter two"]).dimensions(4);
    req.user = Some("user-1234".into());
    let resp = p.embed(&req).await.unwrap();
    let sent = posts(&server);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        body(&sent[0]),
        r#"{"model":"text-embedding-3-small","input":["第一章","Chapter two"],"encoding_format":"base64","dimensions":4,"user":"user-1234"}"#
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer sk-proj-embeddings-test-0000")
    );
    assert_eq!(resp.vectors, fixture_vectors());
    assert_eq!(resp.usage, Usage::new(7, 0));
    assert_eq!(resp.model, MODEL);
    assert_eq!(
        (resp.provider.as_str(), resp.provider_kind.as_str()),
        ("oai", "openai")
    );
}

#[tokio::test]
async fn a_minimal_request_sends_model_input_and_encoding_only() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, answer(&[(0, 0)], 2));
    provider(&server).embed(&request(&["hi"])).await.unwrap();
    assert_eq!(
        body(&posts(&server)[0]),
        r#"{"model":"text-embedding-3-small","input":["hi"],"encoding_format":"base64"}"#
    );
}

/// `embedding_encoding = "float"` sends no `encoding_format` (the API's
/// default is float), for compatible servers that reject `base64`.
#[tokio::test]
async fn float_encoding_sends_no_encoding_format() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, MockReply::json(200, EMBEDDINGS_FLOAT));
    let p = OpenAiProvider::from_spec(&spec("oai", &server).option("embedding_encoding", "float"))
        .unwrap();
    let resp = p
        .embed(&request(&["第一章", "Chapter two"]).dimensions(4))
        .await
        .unwrap();
    assert_eq!(
        body(&posts(&server)[0]),
        r#"{"model":"text-embedding-3-small","input":["第一章","Chapter two"],"dimensions":4}"#
    );
    assert_eq!(resp.vectors, fixture_vectors());
    assert_eq!(resp.usage, Usage::new(7, 0));
}

/// A compatible server that ignores `encoding_format` and answers floats
/// gives the same vectors as base64.
#[tokio::test]
async fn float_arrays_are_accepted_when_base64_was_asked_for() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, MockReply::json(200, EMBEDDINGS_FLOAT));
    let resp = provider(&server)
        .embed(&request(&["第一章", "Chapter two"]))
        .await
        .unwrap();
    assert_eq!(resp.vectors, fixture_vectors());
}

#[tokio::test]
async fn vectors_follow_their_index_not_their_position() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, answer(&[(2, 2), (0, 0), (1, 1)], 9));
    let resp = provider(&server)
        .embed(&request(&["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(
        resp.vectors,
        vec![vector_for(0), vector_for(1), vector_for(2)]
    );
}

#[tokio::test]
async fn a_server_without_usage_leaves_usage_zero() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        EMBED,
        MockReply::json(
            200,
            r#"{"object":"list","data":[{"object":"embedding","embedding":[0.25,-1.0],"index":0}],"model":"nomic-embed-text"}"#,
        ),
    );
    let resp = provider(&server).embed(&request(&["x"])).await.unwrap();
    assert_eq!(resp.vectors, vec![vec![0.25, -1.0]]);
    assert_eq!(resp.usage, Usage::default());
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let server = MockServer::start().await.unwrap();
    let resp = provider(&server).embed(&request(&[])).await.unwrap();
    assert!(resp.vectors.is_empty());
    assert!(posts(&server).is_empty());
}

// --------------------------------------------------------------- batching ---

#[tokio::test]
async fn large_batches_are_split_sent_in_order_and_reassembled() {
    let server = MockServer::start().await.unwrap();
    // Each part answers its items out of order; indexes count within the part.
    server.on_times("POST", EMBED, answer(&[(1, 1), (0, 0)], 4), 1);
    server.on_times("POST", EMBED, answer(&[(1, 3), (0, 2)], 5), 1);
    server.on_times("POST", EMBED, answer(&[(0, 4)], 3), 1);
    let p = batched(&server, 2);
    assert_eq!(p.embedding_batch_size(), 2);
    let inputs = texts(5);
    let resp = p
        .embed(
            &EmbeddingRequest::new(inputs.clone())
                .model(MODEL)
                .dimensions(3),
        )
        .await
        .unwrap();
    let sent: Vec<String> = posts(&server).iter().map(body).collect();
    assert_eq!(
        sent,
        [
            r#"{"model":"text-embedding-3-small","input":["input 0","input 1"],"encoding_format":"base64","dimensions":3}"#,
            r#"{"model":"text-embedding-3-small","input":["input 2","input 3"],"encoding_format":"base64","dimensions":3}"#,
            r#"{"model":"text-embedding-3-small","input":["input 4"],"encoding_format":"base64","dimensions":3}"#,
        ]
    );
    assert_eq!(resp.vectors, (0..5).map(vector_for).collect::<Vec<_>>());
    assert_eq!(resp.usage, Usage::new(12, 0), "usage of the parts summed");
}

#[tokio::test]
async fn the_default_batch_is_openais_limit_of_2048_inputs() {
    let server = MockServer::start().await.unwrap();
    let first: Vec<(usize, usize)> = (0..2048).map(|i| (i, i)).collect();
    server.on_times("POST", EMBED, answer(&first, 2048), 1);
    server.on_times("POST", EMBED, answer(&[(0, 2048)], 1), 1);
    let p = provider(&server);
    assert_eq!(
        p.embedding_batch_size(),
        llm_openai::DEFAULT_EMBEDDING_BATCH_SIZE
    );
    let resp = p
        .embed(&EmbeddingRequest::new(texts(2049)).model(MODEL))
        .await
        .unwrap();
    let sent = posts(&server);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].json()["input"].as_array().unwrap().len(), 2048);
    assert_eq!(sent[1].json()["input"], serde_json::json!(["input 2048"]));
    assert_eq!(resp.vectors.len(), 2049);
    assert_eq!(resp.vectors[2048], vector_for(2048));
    assert_eq!(resp.usage, Usage::new(2049, 0));
}

/// A failing part fails the whole call, and no later part is sent.
#[tokio::test]
async fn a_failing_part_fails_the_call() {
    let server = MockServer::start().await.unwrap();
    server.on_times("POST", EMBED, answer(&[(0, 0), (1, 1)], 4), 1);
    server.on_times(
        "POST",
        EMBED,
        MockReply::json(500, SERVER_ERROR).header("x-request-id", REQUEST_ID),
        1,
    );
    server.on("POST", EMBED, answer(&[(0, 4)], 3));
    let err = batched(&server, 2)
        .embed(&EmbeddingRequest::new(texts(5)).model(MODEL))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(500));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(err.request_id.as_deref(), Some(REQUEST_ID));
    assert_eq!(posts(&server).len(), 2, "the third part is not sent");
}

/// A part that answers with the wrong count of vectors is a decode error.
#[tokio::test]
async fn a_part_with_the_wrong_count_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    server.on_times("POST", EMBED, answer(&[(0, 0), (1, 1)], 4), 1);
    server.on("POST", EMBED, answer(&[(0, 2)], 3));
    let err = batched(&server, 2)
        .embed(&EmbeddingRequest::new(texts(4)).model(MODEL))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");
    assert!(err.message.contains("1 vectors for 2 inputs"), "{err}");
}

#[tokio::test]
async fn batch_size_zero_is_a_config_error() {
    let server = MockServer::start().await.unwrap();
    let err = OpenAiProvider::from_spec(&spec("oai", &server).option("embedding_batch_size", 0))
        .unwrap_err();
    assert!(err.to_string().contains("embedding_batch_size"), "{err}");
    let err =
        OpenAiProvider::from_spec(&spec("oai", &server).option("embedding_encoding", "binary"))
            .unwrap_err();
    assert!(err.to_string().contains("embedding_encoding"), "{err}");
}

// ----------------------------------------------------------------- errors ---

#[tokio::test]
async fn error_statuses_map_as_for_chat() {
    let cases = [
        (
            MockReply::json(401, UNAUTHORIZED),
            401,
            ErrorClass::Fallback,
            Some("invalid_api_key"),
        ),
        (
            MockReply::json(429, RATE_LIMITED).header("retry-after-ms", "180"),
            429,
            ErrorClass::Retryable,
            Some("rate_limit_exceeded"),
        ),
        (
            MockReply::json(500, SERVER_ERROR),
            500,
            ErrorClass::Retryable,
            Some("server_error"),
        ),
        (
            MockReply::new(
                503,
                "text/html",
                "<html><body>upstream overloaded</body></html>",
            ),
            503,
            ErrorClass::Retryable,
            None,
        ),
        (
            MockReply::json(400, BAD_DIMENSIONS),
            400,
            ErrorClass::Fallback,
            Some("invalid_request_error"),
        ),
    ];
    for (reply, status, class, code) in cases {
        let server = MockServer::start().await.unwrap();
        server.on("POST", EMBED, reply.header("x-request-id", REQUEST_ID));
        let err = provider(&server)
            .embed(&request(&["x"]).dimensions(8))
            .await
            .unwrap_err();
        assert_eq!(err.status, Some(status), "{err}");
        assert_eq!(err.class(), class, "{err}");
        assert_eq!(err.code.as_deref(), code, "{err}");
        assert_eq!(err.request_id.as_deref(), Some(REQUEST_ID), "{err}");
        assert!(!err.message.is_empty());
        assert!(
            !format!("{err} {err:?}").contains("sk-proj-embeddings"),
            "{err:?}"
        );
        if status == 429 {
            assert_eq!(err.retry_after, Some(Duration::from_millis(180)));
        }
    }
}

#[tokio::test]
async fn an_error_inside_a_200_body_gets_its_status() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        EMBED,
        MockReply::json(
            200,
            r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#,
        ),
    );
    let err = provider(&server).embed(&request(&["x"])).await.unwrap_err();
    assert_eq!(err.status, Some(500));
    assert_eq!(err.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn bad_base64_and_wrong_counts_are_decode_errors() {
    let cases = [
        (
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"ZicXO4DRGLxwaYE8OAU9uw=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#,
            "1 vectors for 2 inputs",
        ),
        (
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"ZicXO4DRGLxw*YE8OAU9uw=="},{"object":"embedding","index":1,"embedding":"DKNFvBazxDx1I4Y7v3z/PA=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#,
            "not base64",
        ),
        (
            // Six bytes: not whole f32 values.
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"ZicXO4DR"},{"object":"embedding","index":1,"embedding":"DKNFvBazxDx1I4Y7v3z/PA=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#,
            "not base64",
        ),
        (
            r#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[1.0]},{"object":"embedding","index":1,"embedding":[2.0]}],"model":"m"}"#,
            "appears twice",
        ),
        (r#"{"object":"list","data":"#, "invalid JSON"),
    ];
    for (json, says) in cases {
        let server = MockServer::start().await.unwrap();
        server.on("POST", EMBED, MockReply::json(200, json));
        let err = provider(&server)
            .embed(&request(&["第一章", "Chapter two"]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Decode, "{json}: {err}");
        assert!(err.message.contains(says), "{json}: {err}");
    }
}

/// `max_response_bytes` bounds the answer read.
#[tokio::test]
async fn an_answer_over_max_response_bytes_is_refused() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", EMBED, MockReply::json(200, EMBEDDINGS));
    let mut spec = spec("oai", &server);
    spec.profile.max_response_bytes = 64;
    let err = OpenAiProvider::from_spec(&spec)
        .unwrap()
        .embed(&request(&["第一章", "Chapter two"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");
    assert!(err.message.contains("larger than 64 bytes"), "{err}");
}

#[tokio::test]
async fn no_key_on_openai_sends_nothing() {
    let p = OpenAiProvider::from_spec(&ProviderSpec::new("oai", "openai", profile())).unwrap();
    let err = p.embed(&request(&["x"])).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
    assert!(err.message.contains("api_key"), "{err}");
}

// ------------------------------------------------------------- capability ---

#[tokio::test]
async fn embeddings_are_claimed_only_for_embedding_models() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    assert!(p.supports(Capability::Embeddings, MODEL));
    assert!(p.supports(Capability::Embeddings, "text-embedding-3-large"));
    assert!(!p.supports(Capability::Embeddings, "gpt-4o-mini"));
    assert!(!p.supports(Capability::Embeddings, "text-embedding"));
    assert!(!p.supports(Capability::Embeddings, ""));
    let mut spec = spec("oai", &server);
    spec.profile.embedding_models.clear();
    let p = OpenAiProvider::from_spec(&spec).unwrap();
    assert!(!p.supports(Capability::Embeddings, MODEL));
}

// ------------------------------------------------------------ the client ---

fn routing() -> RoutingConfig {
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 1;
    routing.retry.backoff_base = Secs::from_millis(1);
    routing.retry.backoff_max = Secs::from_millis(1);
    routing
}

/// Through the client: the first instance fails its second part with 401,
/// so the whole batch goes to the next instance serving the same model.
#[tokio::test]
async fn the_client_falls_back_when_a_part_fails() {
    let a = MockServer::start().await.unwrap();
    a.on_times("POST", EMBED, answer(&[(0, 0), (1, 1)], 4), 1);
    a.on("POST", EMBED, MockReply::json(401, UNAUTHORIZED));
    a.on("GET", "/v1/models", MockReply::json(200, MODELS));
    let b = MockServer::start().await.unwrap();
    b.on("POST", EMBED, answer(&[(0, 0), (1, 1), (2, 2)], 6));
    b.on("GET", "/v1/models", MockReply::json(200, MODELS));
    let first =
        OpenAiProvider::from_spec(&spec("first", &a).option("embedding_batch_size", 2)).unwrap();
    let second = OpenAiProvider::from_spec(&spec("second", &b)).unwrap();
    let client = LlmClient::builder()
        .providers([
            Arc::new(first) as Arc<dyn Provider>,
            Arc::new(second) as Arc<dyn Provider>,
        ])
        .routing(routing())
        .no_cache()
        .build()
        .unwrap();
    let resp = client
        .embed(
            EmbeddingRequest::new(["a", "b", "c"])
                .model(MODEL)
                .provider("first"),
        )
        .await
        .unwrap();
    assert_eq!(resp.provider, "second");
    assert_eq!(resp.vectors, (0..3).map(vector_for).collect::<Vec<_>>());
    assert_eq!(resp.usage.prompt_tokens, 6);
    assert_eq!(posts(&a).len(), 2);
    assert_eq!(
        body(&posts(&b)[0]),
        r#"{"model":"text-embedding-3-small","input":["a","b","c"],"encoding_format":"base64"}"#
    );
}

// ------------------------------------------------------------------ check ---

#[tokio::test]
async fn check_says_why_the_probe_failed() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/v1/models",
        MockReply::json(401, UNAUTHORIZED).header("x-request-id", REQUEST_ID),
    );
    let p = provider(&server);
    let err = p.check().await.unwrap_err();
    assert_eq!(err.status, Some(401), "{err}");
    assert_eq!(err.code.as_deref(), Some("invalid_api_key"));
    assert!(
        err.message.starts_with("Incorrect API key provided"),
        "{err}"
    );
    assert_eq!(err.request_id.as_deref(), Some(REQUEST_ID));
    assert!(!p.is_available().await);

    server.reset();
    server.on("GET", "/v1/models", MockReply::json(503, SERVER_ERROR));
    let err = p.check().await.unwrap_err();
    assert_eq!(err.status, Some(503), "{err}");
    assert!(!p.is_available().await);

    server.reset();
    server.on("GET", "/v1/models", MockReply::json(200, MODELS));
    p.check().await.unwrap();
    assert!(p.is_available().await);
}

#[tokio::test]
async fn check_reports_a_refused_connection_and_a_missing_key() {
    let refused = MockServer::refused_url().await.unwrap();
    let p = OpenAiProvider::from_spec(
        &ProviderSpec::new("oai", "openai", profile())
            .option("base_url", format!("{refused}/v1"))
            .option("api_key", "sk-proj-embeddings-test-0000"),
    )
    .unwrap();
    let err = p.check().await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Connect, "{err}");

    // On api.openai.com without a key nothing is sent, and the error says why.
    let p = OpenAiProvider::from_spec(&ProviderSpec::new("oai", "openai", profile())).unwrap();
    let err = p.check().await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
    assert!(err.message.contains("no API key"), "{err}");
    assert!(!p.is_available().await);
}
