//! Request mapping, headers and response decoding against a mock server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    ErrorClass, FinishReason, LlmRequest, Message, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, StreamEvent, Usage,
};
use llm_openai::OpenAiProvider;
use serde_json::json;

const KEY: &str = "sk-proj-wire-test-KEY-9f8e7d6c5b4a";
const CHAT: &str = "/v1/chat/completions";

fn profile() -> ProviderProfile {
    ProviderProfile {
        default_model: Some("gpt-4o-mini".into()),
        timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn spec(server: &MockServer) -> ProviderSpec {
    ProviderSpec::new("oai", "openai", profile())
        .option("base_url", format!("{}/v1/", server.url()))
        .option("api_key", KEY)
}

fn provider(spec: ProviderSpec) -> OpenAiProvider {
    OpenAiProvider::from_spec(&spec).expect("provider builds")
}

/// A compact non-streaming answer with the given `finish_reason` and `content` JSON.
fn completion(content: &str, finish: &str) -> MockReply {
    MockReply::json(
        200,
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1756300000,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":{finish}}}],"usage":{{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}},"service_tier":"default","system_fingerprint":null}}"#
        ),
    )
}

fn ok() -> MockReply {
    completion(r#""Hello!""#, r#""stop""#)
}

fn last_post(server: &MockServer) -> RecordedRequest {
    server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .expect("a POST was sent")
}

fn hello() -> LlmRequest {
    LlmRequest::new("Say hello.")
        .system("You are a terse assistant.")
        .max_tokens(50)
        .temperature(0.2)
}

#[tokio::test]
async fn the_documented_request_is_sent_byte_for_byte() {
    // protocols.md §2.6: a model configured for `max_completion_tokens` that
    // still takes sampling parameters.
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let p = provider(spec(&server).option(
        "max_completion_tokens_models",
        vec!["gpt-4o-mini".to_string()],
    ));
    p.generate(&hello()).await.unwrap();
    let sent = last_post(&server);
    assert_eq!(sent.path, CHAT);
    assert_eq!(
        String::from_utf8(sent.body.clone()).unwrap(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a terse assistant."},{"role":"user","content":"Say hello."}],"max_completion_tokens":50,"temperature":0.2}"#
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn every_request_field_is_mapped() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let p = provider(spec(&server));
    let req = LlmRequest::from_messages(vec![
        Message::user("第一章"),
        Message::assistant("好的。"),
        Message::user("继续"),
    ])
    .system("你是一位小说家。")
    .max_tokens(300)
    .temperature(0.9)
    .top_p(0.5)
    .stop("END")
    .stop("\n\n")
    .seed(42)
    .model("gpt-4o");
    p.generate(&req).await.unwrap();
    assert_eq!(
        last_post(&server).json(),
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "你是一位小说家。"},
                {"role": "user", "content": "第一章"},
                {"role": "assistant", "content": "好的。"},
                {"role": "user", "content": "继续"}
            ],
            "max_tokens": 300,
            "temperature": 0.9,
            "top_p": 0.5,
            "stop": ["END", "\n\n"],
            "seed": 42
        })
    );
}

#[tokio::test]
async fn reasoning_models_get_max_completion_tokens_and_no_sampling_params() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let p = provider(spec(&server));
    for model in ["o3-mini", "gpt-5", "o1"] {
        p.generate(&hello().top_p(0.5).model(model)).await.unwrap();
        let body = last_post(&server).json();
        assert_eq!(body["model"], model);
        assert_eq!(body["max_completion_tokens"], 50, "{model}: {body}");
        for absent in ["max_tokens", "temperature", "top_p"] {
            assert!(body.get(absent).is_none(), "{model}: {absent} in {body}");
        }
    }
    p.generate(&hello().model("gpt-4o")).await.unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["max_tokens"], 50);
    assert!(body.get("max_completion_tokens").is_none());
}

/// The client adapts model and `max_tokens` before calling the provider;
/// the provider sends them as given.
#[tokio::test]
async fn model_and_max_tokens_are_sent_as_given() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let mut s = spec(&server);
    s.profile.max_tokens = Some(100);
    s.profile.models = vec!["gpt-4o-mini".into()];
    provider(s)
        .generate(&LlmRequest::new("x").max_tokens(4096).model("gpt-4.1-nano"))
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["model"], "gpt-4.1-nano");
}

#[tokio::test]
async fn streaming_requests_ask_for_usage_unless_disabled() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        CHAT,
        MockReply::chunked(200, "text/event-stream", vec![b"data: [DONE]\n\n".to_vec()]),
    );
    let p = provider(spec(&server));
    p.stream(&hello())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));

    let p = provider(spec(&server).option("stream_usage", false));
    p.stream(&hello())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["stream"], true);
    assert!(body.get("stream_options").is_none(), "{body}");
}

#[tokio::test]
async fn auth_organization_project_and_extra_headers_are_sent() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    server.on(
        "GET",
        "/v1/models",
        MockReply::json(200, r#"{"object":"list","data":[]}"#),
    );
    let mut headers = toml::Table::new();
    headers.insert("X-Team".into(), "novels".into());
    let p = provider(
        spec(&server)
            .option("organization", "org-abc")
            .option("project", "proj_xyz")
            .option("headers", headers),
    );
    p.generate(&hello()).await.unwrap();
    assert!(p.models().await.unwrap().is_empty());
    assert!(p.is_available().await);
    for r in server.requests() {
        let bearer = format!("Bearer {KEY}");
        assert_eq!(
            r.header("authorization"),
            Some(bearer.as_str()),
            "{}",
            r.path
        );
        assert_eq!(r.header("openai-organization"), Some("org-abc"));
        assert_eq!(r.header("openai-project"), Some("proj_xyz"));
        assert_eq!(r.header("x-team"), Some("novels"));
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn no_key_sends_no_authorization_header() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    server.on(
        "GET",
        "/v1/models",
        MockReply::json(200, r#"{"data":[{"id":"qwen"}]}"#),
    );
    let s = ProviderSpec::new("local", "openai", profile())
        .option("base_url", format!("{}/v1", server.url()))
        .option("api_key", "");
    let p = provider(s);
    p.generate(&hello()).await.unwrap();
    // A compatible server (not api.openai.com) may be used without a key.
    assert!(p.is_available().await);
    assert_eq!(p.models().await.unwrap(), vec!["qwen".to_string()]);
    for r in server.requests() {
        assert_eq!(r.header("authorization"), None);
        assert!(r.header("openai-organization").is_none());
    }
}

#[tokio::test]
async fn no_key_and_no_keyless_use_is_unavailable_without_a_probe() {
    let server = MockServer::start().await.unwrap();
    server.on("GET", "/v1/models", MockReply::json(200, r#"{"data":[]}"#));
    let s = ProviderSpec::new("strict", "openai", profile())
        .option("base_url", format!("{}/v1", server.url()))
        .option("allow_no_key", false);
    assert!(!provider(s).is_available().await);
    assert!(server.requests().is_empty(), "no probe is sent");
    // The OpenAI API without a key: unavailable, no network call.
    let s = ProviderSpec::new("openai", "openai", profile());
    assert!(!provider(s).is_available().await);
}

#[tokio::test]
async fn availability_needs_a_2xx_models_answer() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/v1/models",
        MockReply::json(401, r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#),
    );
    assert!(!provider(spec(&server)).is_available().await);
}

#[tokio::test]
async fn unknown_finish_reason_null_content_and_extra_fields_are_tolerated() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, completion("null", r#""brand_new_reason""#));
    let r = provider(spec(&server)).generate(&hello()).await.unwrap();
    assert_eq!(r.content, "");
    assert_eq!(
        r.finish_reason,
        FinishReason::Other("brand_new_reason".into())
    );

    for (wire, want) in [
        ("length", FinishReason::Length),
        ("tool_calls", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
    ] {
        server.reset();
        server.on("POST", CHAT, completion(r#""x""#, &format!("\"{wire}\"")));
        let r = provider(spec(&server)).generate(&hello()).await.unwrap();
        assert_eq!(r.finish_reason, want, "{wire}");
    }
}

/// Cost is left to the client (it prices `usage` with the instance's prices).
#[tokio::test]
async fn response_fields_model_and_usage() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let mut s = spec(&server);
    s.profile.pricing.insert(
        "gpt-4o-mini".into(),
        llm_core::cost::ModelPrice {
            input_per_1m: 0.15,
            output_per_1m: 0.60,
            cached_input_per_1m: None,
            cache_write_per_1m: None,
        },
    );
    let r = provider(s).generate(&hello()).await.unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(
        r.model, "gpt-4o-mini-2024-07-18",
        "the model the API reports"
    );
    assert_eq!(r.provider, "oai");
    assert_eq!(r.provider_kind, "openai");
    assert_eq!(r.usage, Usage::new(20, 2));
    assert_eq!(r.cost, 0.0, "priced by the client, not the provider");
    assert!(!r.cached);
    assert!(r.attempts.is_empty());
}

/// A usage-only final chunk (`"choices":[]`) must not be dropped.
#[tokio::test]
async fn the_usage_chunk_is_reported_before_done() {
    let server = MockServer::start().await.unwrap();
    let events = [
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"ab\"}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":null,\"obfuscation\":\"c\"}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,\"total_tokens\":8},\"obfuscation\":\"xyz\"}\n\n",
        "data: [DONE]\n\n",
    ];
    server.on(
        "POST",
        CHAT,
        MockReply::chunked(
            200,
            "text/event-stream; charset=utf-8",
            events.iter().map(|e| e.as_bytes().to_vec()).collect(),
        ),
    );
    let stream = provider(spec(&server)).stream(&hello()).await.unwrap();
    assert_eq!(stream.provider, "oai");
    assert_eq!(stream.model, "gpt-4o-mini");
    let items: Vec<_> = stream.collect().await;
    assert_eq!(
        items,
        vec![
            Ok(StreamEvent::delta("Hi")),
            Ok(StreamEvent::Usage {
                usage: Usage::new(7, 1)
            }),
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Length
            }),
        ]
    );
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_is_replayed() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, ok());
    let r = provider(spec(&server))
        .stream(&hello())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.usage, Usage::new(20, 2));
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn error_codes_fall_back_to_the_type_and_quota_is_not_retried() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        CHAT,
        MockReply::json(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
        .header("x-request-id", "req_q"),
    );
    let e = provider(spec(&server))
        .generate(&hello())
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(429));
    assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
    assert_eq!(e.request_id.as_deref(), Some("req_q"));
    assert_eq!(e.class(), ErrorClass::Fallback);
    assert!(e.message.starts_with("You exceeded your current quota"));

    server.reset();
    server.on(
        "POST",
        CHAT,
        MockReply::json(
            401,
            r#"{"error":{"message":"Missing bearer or basic authentication in header","type":"invalid_request_error","param":null,"code":null}}"#,
        ),
    );
    let e = provider(spec(&server))
        .generate(&hello())
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
    assert_eq!(
        e.message,
        "Missing bearer or basic authentication in header"
    );

    server.reset();
    server.on(
        "POST",
        CHAT,
        MockReply::json(
            400,
            "{\n  \"error\": {\n    \"message\": \"This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.\",\n    \"type\": \"invalid_request_error\",\n    \"param\": \"messages\",\n    \"code\": \"context_length_exceeded\"\n  }\n}",
        )
        .header("x-request-id", "req_0c9e5a8d1b7f4e3a9d2c6b1e8f4a7d30"),
    );
    let e = provider(spec(&server))
        .generate(&hello())
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(400));
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
    assert_eq!(e.class(), ErrorClass::Fallback);
}

#[tokio::test]
async fn an_error_body_with_status_200_is_an_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        CHAT,
        MockReply::json(
            200,
            r#"{"error":{"message":"overloaded","type":"server_error","code":503}}"#,
        ),
    );
    let e = provider(spec(&server))
        .generate(&hello())
        .await
        .unwrap_err();
    assert_eq!(e.message, "overloaded");
    assert_eq!(e.status, Some(503));
    assert_eq!(e.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn a_request_without_any_model_fails_before_sending() {
    let server = MockServer::start().await.unwrap();
    let s = ProviderSpec::new("bare", "openai", ProviderProfile::default())
        .option("base_url", format!("{}/v1", server.url()));
    let e = provider(s)
        .generate(&LlmRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Unsupported);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn debug_and_errors_never_show_the_key() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(500, "upstream exploded"));
    let p = provider(spec(&server).option("organization", "org-abc"));
    let debug = format!("{p:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    let e = p.generate(&hello()).await.unwrap_err();
    assert_eq!(e.message, "upstream exploded");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(KEY), "{shown}");

    let cfg: llm_openai::OpenAiConfig = spec(&server).options().unwrap();
    assert!(!format!("{cfg:?}").contains(KEY));
}
