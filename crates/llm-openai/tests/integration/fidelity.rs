//! Every request field of llm-core's request type on the wire, structured
//! output, images, pass-through fields, log probabilities, prompt-cache
//! usage, and errors that arrive without an HTTP status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llm_core::config::{RoutingConfig, Secs};
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    Capability, ErrorClass, FinishReason, ImageInput, LlmClient, LlmRequest, Message, Provider,
    ProviderProfile, ProviderSpec, ResponseFormat, StreamEvent, TokenLogprob, TopLogprob, Usage,
};
use llm_openai::fixtures::{
    CACHED_COMPLETION, CACHED_STREAM, COMPLETION, LOGPROBS_COMPLETION, LOGPROBS_STREAM, MODELS,
    STREAM,
};
use llm_openai::OpenAiProvider;
use serde_json::json;

const CHAT: &str = "/v1/chat/completions";

fn spec(server: &MockServer) -> ProviderSpec {
    let profile = ProviderProfile {
        models: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
        default_model: Some("gpt-4o-mini".into()),
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    ProviderSpec::new("oai", "openai", profile)
        .option("base_url", format!("{}/v1", server.url()))
        .option("api_key", "sk-proj-fidelity-test-0000")
}

fn provider(server: &MockServer) -> OpenAiProvider {
    OpenAiProvider::from_spec(&spec(server)).unwrap()
}

fn last_post(server: &MockServer) -> RecordedRequest {
    server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .expect("a POST was sent")
}

fn body_text(server: &MockServer) -> String {
    String::from_utf8(last_post(server).body).unwrap()
}

fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        events.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
}

fn hi() -> LlmRequest {
    LlmRequest::plain(vec![Message::user("hi")])
}

// ---------------------------------------------------------------- request ---

#[tokio::test]
async fn a_minimal_request_sends_model_messages_and_stream_only() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let p = provider(&server);
    p.generate(&hi().model("gpt-4o")).await.unwrap();
    assert_eq!(
        body_text(&server),
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#
    );
    // A direct call without a model gets the default model.
    p.generate(&hi()).await.unwrap();
    assert_eq!(
        body_text(&server),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#
    );
}

#[tokio::test]
async fn every_field_is_sent_byte_for_byte() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let mut req = hi().model("gpt-4o-mini").seed(-42).logprobs(Some(2));
    req.frequency_penalty = Some(0.5);
    req.presence_penalty = Some(-0.25);
    req.user = Some("user-1234".into());
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "city".into(),
        schema: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}),
        strict: Some(true),
        description: Some("A city".into()),
    });
    req.extra = serde_json::from_str(
        r#"{"service_tier":"flex","metadata":{"team":"novels"},"logit_bias":{"2435":-100},"store":false,"reasoning_effort":"low","prediction":{"type":"content","content":"Paris"}}"#,
    )
    .unwrap();
    provider(&server).generate(&req).await.unwrap();
    assert_eq!(
        body_text(&server),
        concat!(
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"#,
            r#""seed":-42,"frequency_penalty":0.5,"presence_penalty":-0.25,"logprobs":true,"top_logprobs":2,"#,
            r#""response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"additionalProperties":false,"properties":{"name":{"type":"string"}},"required":["name"],"type":"object"},"strict":true,"description":"A city"}},"#,
            r#""user":"user-1234","#,
            r#""logit_bias":{"2435":-100},"metadata":{"team":"novels"},"prediction":{"content":"Paris","type":"content"},"reasoning_effort":"low","service_tier":"flex","store":false}"#,
        )
    );
}

#[tokio::test]
async fn response_formats_take_openai_shapes() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let p = provider(&server);
    for (format, want) in [
        (ResponseFormat::JsonObject, json!({"type": "json_object"})),
        (ResponseFormat::Text, json!({"type": "text"})),
        (
            ResponseFormat::JsonSchema {
                name: "answer".into(),
                schema: json!({"type": "object"}),
                strict: None,
                description: None,
            },
            json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}),
        ),
    ] {
        p.generate(&hi().response_format(format)).await.unwrap();
        let body = last_post(&server).json();
        assert_eq!(body["response_format"], want);
    }
    // Streaming requests carry it too.
    server.reset();
    server.on("POST", CHAT, sse(STREAM));
    p.stream(&hi().response_format(ResponseFormat::JsonObject))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn top_logprobs_alone_turns_logprobs_on() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let mut req = hi();
    req.top_logprobs = Some(0);
    provider(&server).generate(&req).await.unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["top_logprobs"], 0);
    provider(&server)
        .generate(&hi().logprobs(None))
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["logprobs"], true);
    assert!(body.get("top_logprobs").is_none(), "{body}");
}

#[tokio::test]
async fn negative_seeds_stay_signed() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let p = provider(&server);
    for seed in [-1, i64::MIN, i64::MAX] {
        p.generate(&hi().seed(seed)).await.unwrap();
        assert!(
            body_text(&server).ends_with(&format!(r#""seed":{seed}}}"#)),
            "{}",
            body_text(&server)
        );
    }
}

/// protocols.md §2.1.1: user content as parts, `text` first, then `image_url`s.
#[tokio::test]
async fn images_become_content_parts() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let req = LlmRequest::plain(vec![
        Message::user("Two pictures follow."),
        Message::assistant("Send them."),
        Message::user("What is in these images?")
            .image(ImageInput {
                url: "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg".into(),
                detail: Some("high".into()),
            })
            .image(ImageInput::url("data:image/png;base64,iVBORw0KGgo=")),
        Message::user("").image(ImageInput {
            url: "https://example.com/cat.webp".into(),
            detail: Some("low".into()),
        }),
    ])
    .model("gpt-4o");
    provider(&server).generate(&req).await.unwrap();
    assert_eq!(
        body_text(&server),
        concat!(
            r#"{"model":"gpt-4o","messages":["#,
            r#"{"role":"user","content":"Two pictures follow."},"#,
            r#"{"role":"assistant","content":"Send them."},"#,
            r#"{"role":"user","content":[{"type":"text","text":"What is in these images?"},"#,
            r#"{"type":"image_url","image_url":{"url":"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg","detail":"high"}},"#,
            r#"{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},"#,
            r#"{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.webp","detail":"low"}}]}]}"#,
        )
    );
}

/// Typed fields always win over `extra` entries of the same name; an entry
/// naming a field the typed request left unset goes through.
#[tokio::test]
async fn extra_entries_never_override_typed_fields() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, sse(STREAM));
    let mut req = hi().model("gpt-4o-mini").temperature(0.3);
    req.extra = serde_json::from_str(
        r#"{"model":"gpt-5","messages":[],"stream_options":null,"temperature":1.5,"top_p":0.1,"service_tier":"priority"}"#,
    )
    .unwrap();
    provider(&server)
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let text = body_text(&server);
    for key in [
        "\"model\":",
        "\"messages\":",
        "\"stream\":",
        "\"stream_options\":",
        "\"temperature\":",
    ] {
        assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
    }
    let body = last_post(&server).json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["content"], "hi");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["top_p"], 0.1);
    assert_eq!(body["service_tier"], "priority");
}

#[tokio::test]
async fn capabilities_are_all_claimed_and_images_follow_vision_models() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    for c in [
        Capability::Tools,
        Capability::ForcedToolChoice,
        Capability::SerialToolCalls,
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Images,
        Capability::Logprobs,
        Capability::Penalties,
        Capability::Passthrough,
    ] {
        assert!(p.supports(c, "gpt-4o-mini"), "{c:?}");
    }
    assert!(p.supports_tools());

    let mut s = spec(&server);
    s.profile.vision_models = Some(vec!["gpt-4o".into()]);
    let p = OpenAiProvider::from_spec(&s).unwrap();
    assert!(p.supports(Capability::Images, "gpt-4o"));
    assert!(!p.supports(Capability::Images, "gpt-3.5-turbo"));
    assert!(p.supports(Capability::JsonSchema, "gpt-3.5-turbo"));
}

// --------------------------------------------------------------- response ---

fn token(token: &str, logprob: f64, tops: &[(&str, f64)]) -> TokenLogprob {
    TokenLogprob {
        token: token.into(),
        logprob,
        bytes: Some(token.as_bytes().to_vec()),
        top_logprobs: tops
            .iter()
            .map(|(t, l)| TopLogprob {
                token: (*t).into(),
                logprob: *l,
                bytes: Some(t.as_bytes().to_vec()),
            })
            .collect(),
    }
}

fn hello_logprobs() -> Vec<TokenLogprob> {
    vec![
        token(
            "Hello",
            -0.0017029834,
            &[("Hello", -0.0017029834), ("Hi", -6.376703)],
        ),
        token(
            "!",
            -0.00012143587,
            &[("!", -0.00012143587), (".", -9.500121)],
        ),
    ]
}

#[tokio::test]
async fn logprobs_come_back_with_a_json_answer() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, LOGPROBS_COMPLETION));
    let r = provider(&server)
        .generate(&hi().logprobs(Some(2)))
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.logprobs, hello_logprobs());
    assert_eq!(r.usage, Usage::new(20, 2));
    // Answers without logprobs (`"logprobs": null`) have none.
    server.reset();
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let r = provider(&server).generate(&hi()).await.unwrap();
    assert!(r.logprobs.is_empty());
}

#[tokio::test]
async fn logprobs_are_streamed_after_the_delta_they_describe() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, sse(LOGPROBS_STREAM));
    let stream = provider(&server)
        .stream(&hi().logprobs(Some(2)))
        .await
        .unwrap();
    let events: Vec<StreamEvent> = stream.map(Result::unwrap).collect().await;
    let lp = hello_logprobs();
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Hello"),
            StreamEvent::Logprobs {
                logprobs: vec![lp[0].clone()]
            },
            StreamEvent::delta("!"),
            StreamEvent::Logprobs {
                logprobs: vec![lp[1].clone()]
            },
            StreamEvent::Usage {
                usage: Usage::new(20, 2)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::Stop
            },
        ]
    );
    // Collected, the stream gives the same answer as the JSON one.
    let r = provider(&server)
        .stream(&hi().logprobs(Some(2)))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.logprobs, lp);
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_keeps_its_logprobs() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, LOGPROBS_COMPLETION));
    let r = provider(&server)
        .stream(&hi().logprobs(Some(2)))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.logprobs, hello_logprobs());
}

#[tokio::test]
async fn cached_prompt_tokens_are_reported() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, CACHED_COMPLETION));
    let p = provider(&server);
    let want = Usage::new(1850, 2).with_cache(1792, 0);
    assert_eq!(want.cache_read_tokens, 1792);
    assert_eq!(p.generate(&hi()).await.unwrap().usage, want);

    server.reset();
    server.on("POST", CHAT, sse(CACHED_STREAM));
    let events: Vec<StreamEvent> = p
        .stream(&hi())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Hello!"),
            StreamEvent::Usage { usage: want },
            StreamEvent::Done {
                finish_reason: FinishReason::Stop
            },
        ]
    );
}

// ----------------------------------------------------------------- errors ---

/// The 500 body of protocols.md §2.5 (exact message undocumented).
const SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
/// §2.6's 429 body.
const RATE_LIMITED: &str = r#"{"error":{"message":"Request too large for gpt-4o in organization org-XXXX on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
/// §2.6's out-of-credit body.
const NO_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
/// §2.5's context-length body.
const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130205 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
/// §2.5's model-not-found body.
const NO_MODEL: &str = r#"{"error":{"message":"The model `gpt-4o` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;

/// Error bodies with their status and class when they arrive without an
/// HTTP status (in a `200` body or as a stream event).
fn named_errors() -> [(&'static str, u16, ErrorClass); 5] {
    [
        (SERVER_ERROR, 500, ErrorClass::Retryable),
        (RATE_LIMITED, 429, ErrorClass::Retryable),
        (NO_QUOTA, 429, ErrorClass::Fallback),
        (TOO_LONG, 400, ErrorClass::Fallback),
        (NO_MODEL, 404, ErrorClass::Fallback),
    ]
}

#[tokio::test]
async fn errors_in_a_200_body_are_classified_by_type_and_code() {
    for (body, status, class) in named_errors() {
        let server = MockServer::start().await.unwrap();
        server.on("POST", CHAT, MockReply::json(200, body));
        let e = provider(&server).generate(&hi()).await.unwrap_err();
        assert_eq!(e.status, Some(status), "{body}");
        assert_eq!(e.class(), class, "{body}");
        let wire: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(e.message, wire["error"]["message"].as_str().unwrap());
    }
}

#[tokio::test]
async fn errors_in_a_stream_are_classified_by_type_and_code() {
    for (body, status, class) in named_errors() {
        let server = MockServer::start().await.unwrap();
        let event = format!("data: {body}\n\n");
        server.on("POST", CHAT, sse(&[STREAM[0], STREAM[1], &event]));
        let items: Vec<_> = provider(&server)
            .stream(&hi())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items.len(), 2, "{body}: {items:?}");
        assert_eq!(items[0], Ok(StreamEvent::delta("Hello")));
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.status, Some(status), "{body}");
        assert_eq!(e.class(), class, "{body}");
    }
}

fn client(server: &MockServer) -> LlmClient {
    server.on("GET", "/v1/models", MockReply::json(200, MODELS));
    let mut routing = RoutingConfig::default();
    routing.retry.max_retries = 2;
    routing.retry.backoff_base = Secs::from_millis(1);
    routing.retry.backoff_max = Secs::from_millis(1);
    LlmClient::builder()
        .provider(Arc::new(provider(server)))
        .routing(routing)
        .no_cache()
        .build()
        .unwrap()
}

/// An in-body `server_error` is retried like an HTTP 500, and the retry
/// answers.
#[tokio::test]
async fn the_client_retries_an_in_body_server_error() {
    let server = MockServer::start().await.unwrap();
    server.on_times("POST", CHAT, MockReply::json(200, SERVER_ERROR), 1);
    server.on("POST", CHAT, MockReply::json(200, COMPLETION));
    let r = client(&server)
        .generate(LlmRequest::new("hi"))
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "one failed call, one retry");
    assert_eq!(r.attempts.last().map(|a| a.calls), Some(2));
}

/// In-stream `server_error`s are retried and count against the provider's health.
#[tokio::test]
async fn in_stream_server_errors_count_against_health() {
    let server = MockServer::start().await.unwrap();
    let event = format!("data: {SERVER_ERROR}\n\n");
    server.on("POST", CHAT, sse(&[&event]));
    let c = client(&server);
    assert!(c.stream(LlmRequest::new("hi")).await.is_err());
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 3, "the first call and two retries");
    let health = c.health();
    assert_eq!(health.len(), 1);
    assert!(
        health[0].consecutive_failures >= 1,
        "counted against health: {health:?}"
    );
}
