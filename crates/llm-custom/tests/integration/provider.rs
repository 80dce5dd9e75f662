//! Behaviour of the custom provider against a mock HTTP server: request bodies,
//! templates, answer pointers, estimation, streaming modes, errors, configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llm_core::config::Config;
use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    Capability, FinishReason, LlmRequest, Message, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, ResponseFormat, StreamEvent, Usage,
};
use llm_custom::CustomProvider;
use serde_json::json;

const KEY: &str = "sk-custom-provider-test-91d0";

fn profile() -> ProviderProfile {
    ProviderProfile {
        models: vec!["private-model".into()],
        default_model: Some("private-model".into()),
        timeout: Duration::from_secs(10),
        cost_per_1k_tokens: 0.005,
        ..Default::default()
    }
}

fn spec(url: &str) -> ProviderSpec {
    ProviderSpec::new("custom", "custom", profile()).option("base_url", url)
}

fn build(spec: &ProviderSpec) -> Arc<dyn Provider> {
    llm_core::registry::build_spec(spec).expect("provider builds")
}

fn ndjson(lines: &[&str]) -> MockReply {
    let pieces = lines
        .iter()
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    MockReply::chunked(200, "application/x-ndjson", pieces)
}

fn sse(events: &[&str]) -> MockReply {
    let pieces = events
        .iter()
        .map(|e| format!("{e}\n\n").into_bytes())
        .collect();
    MockReply::chunked(200, "text/event-stream", pieces)
}

async fn events(p: &Arc<dyn Provider>, req: &LlmRequest) -> Vec<Result<StreamEvent, String>> {
    let stream = p.stream(req).await.expect("stream opens");
    stream.map(|e| e.map_err(|e| e.message)).collect().await
}

#[test]
fn the_kind_is_registered() {
    assert!(llm_core::registry::kinds().contains(&llm_custom::KIND));
}

#[tokio::test]
async fn default_body_is_the_original_shape_with_key_and_headers() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(200, r#"{"content":"好的"}"#),
    );
    let p = build(&spec(&server.url()).option("api_key", KEY).option(
        "headers",
        toml::Table::from_iter([("X-Tenant".to_string(), toml::Value::from("novels"))]),
    ));
    let req = LlmRequest::from_messages(vec![
        Message::user("写一首诗"),
        Message::assistant("好"),
        Message::user("再来"),
    ])
    .system("你是诗人")
    .max_tokens(300)
    .temperature(0.8);
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.content, "好的");
    assert_eq!(r.model, "private-model");
    assert_eq!(r.provider, "custom");
    assert_eq!(r.provider_kind, "custom");
    assert!(!r.cached && r.attempts.is_empty());

    let sent = &server.requests()[0];
    assert_eq!(
        sent.json(),
        json!({"model": "private-model", "prompt": "User: 写一首诗\n\nAssistant: 好\n\nUser: 再来",
               "max_tokens": 300, "temperature": 0.8, "system_prompt": "你是诗人"})
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("x-tenant"), Some("novels"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn no_system_prompt_and_empty_key_send_nothing_for_them() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(200, r#"{"content":"x"}"#),
    );
    let p = build(&spec(&server.url()).option("api_key", ""));
    p.generate(&LlmRequest::new("hi")).await.unwrap();
    let sent = &server.requests()[0];
    assert_eq!(
        sent.json(),
        json!({"model": "private-model", "prompt": "hi", "temperature": 0.7})
    );
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn custom_template_sends_typed_values_and_the_stream_flag() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/v1/infer",
        MockReply::json(
            200,
            r#"{"result":{"outputs":[{"text":"OK"}]},"usage":{"total":10}}"#,
        ),
    );
    let template: toml::Table = toml::from_str(
        r#"
        model = "{{model}}"
        input = { messages = "{{messages}}", lang = "zh" }
        parameters = { max_new_tokens = "{{max_tokens}}", temperature = "{{temperature}}", top_p = "{{top_p}}", stop = "{{stop}}", seed = "{{seed}}", beams = 1 }
        "#,
    )
    .unwrap();
    let p = build(
        &spec(&server.url())
            .option("generate_path", "/v1/infer")
            .option("request_template", template)
            .option("content_pointers", vec!["/result/outputs/0/text"])
            .option("total_tokens_pointer", "/usage/total")
            .option("stream_flag", "stream"),
    );
    let req = LlmRequest::new("Hello")
        .system("Be kind")
        .max_tokens(64)
        .temperature(0.3)
        .top_p(0.95)
        .stop("###");
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.content, "OK");
    // Only the total is reported: completion is estimated within it, prompt is the rest.
    assert_eq!(r.usage, Usage::new(9, 1));
    assert_eq!(
        server.requests()[0].json(),
        json!({
            "model": "private-model",
            "input": {"messages": [{"role": "system", "content": "Be kind"},
                                   {"role": "user", "content": "Hello"}], "lang": "zh"},
            "parameters": {"max_new_tokens": 64, "temperature": 0.3, "top_p": 0.95,
                           "stop": ["###"], "beams": 1},
            "stream": false
        })
    );
}

#[tokio::test]
async fn an_answer_without_usage_is_estimated_by_the_workspace_estimator() {
    let chapter: String = "从前有一座山，山里有一座庙。"
        .chars()
        .cycle()
        .take(1000)
        .collect();
    let server = MockServer::start().await.unwrap();
    let body = json!({"content": chapter}).to_string();
    server.on("POST", "/generate", MockReply::json(200, body));
    let p = build(&spec(&server.url()));
    let req = LlmRequest::new("请写一个故事的开头").system("你是小说家");
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.usage, llm_core::tokens::estimate_usage(&req, &chapter));
    // 0.8 token per CJK character: 1,000 characters, 800 tokens (not one "word").
    assert_eq!(r.usage.completion_tokens, 800);
    assert_eq!(r.usage.prompt_tokens, 8 + 4);
    // The client prices the usage; the provider does not.
    assert_eq!(r.cost, 0.0);
}

#[tokio::test]
async fn the_requested_model_is_sent_as_given() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(200, r#"{"content":"x"}"#),
    );
    let p = build(&spec(&server.url()));
    // The client has already resolved the model for this instance.
    let r = p
        .generate(&LlmRequest::new("q").model("private-model-2025"))
        .await
        .unwrap();
    assert_eq!(r.model, "private-model-2025");
    assert_eq!(
        server.requests()[0].json()["model"],
        json!("private-model-2025")
    );
    // A direct call without a model gets the instance's default.
    let mut req = LlmRequest::plain(vec![Message::user("q")]);
    req.model = None;
    p.generate(&req).await.unwrap();
    assert_eq!(
        server.requests()[1].json(),
        json!({"model": "private-model", "prompt": "q"})
    );
}

#[tokio::test]
async fn huge_usage_counts_saturate() {
    let max = u64::MAX;
    let u32max = u64::from(u32::MAX);
    let server = MockServer::start().await.unwrap();
    server.on_times(
        "POST",
        "/generate",
        MockReply::json(
            200,
            format!(r#"{{"content":"x","usage":{{"in":{max},"out":{max}}}}}"#),
        ),
        1,
    );
    server.on_times(
        "POST",
        "/generate",
        MockReply::json(
            200,
            format!(
                r#"{{"content":"x","usage":{{"in":{u32max},"out":{u32max},"total":{u32max}}}}}"#
            ),
        ),
        1,
    );
    server.on(
        "POST",
        "/stream",
        ndjson(&[
            r#"{"delta":"a","usage":{"in":18446744073709551615}}"#,
            r#"{"delta":"b","done":true,"usage":{"out":1e300}}"#,
        ]),
    );
    let p = build(
        &spec(&server.url())
            .option("prompt_tokens_pointer", "/usage/in")
            .option("completion_tokens_pointer", "/usage/out")
            .option("total_tokens_pointer", "/usage/total")
            .option("stream", "ndjson")
            .option("stream_path", "/stream"),
    );
    let r = p.generate(&LlmRequest::new("q")).await.unwrap();
    assert_eq!(
        (
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
            r.usage.total_tokens
        ),
        (max, max, max)
    );
    let r = p.generate(&LlmRequest::new("q")).await.unwrap();
    assert_eq!(
        (
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
            r.usage.total_tokens
        ),
        (u32max, u32max, u32max)
    );
    let got = events(&p, &LlmRequest::new("q")).await;
    assert_eq!(
        got[2],
        Ok(StreamEvent::Usage {
            usage: Usage::new(max, max)
        })
    );
}

#[tokio::test]
async fn answer_pointers_model_and_finish_reason() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(
            200,
            r#"{"output":"abc","meta":{"model":"pm-2024","stop":"max_tokens","in":4,"out":9}}"#,
        ),
    );
    let p = build(
        &spec(&server.url())
            .option("content_pointers", vec!["/missing", "/output"])
            .option("model_pointer", "/meta/model")
            .option("finish_reason_pointer", "/meta/stop")
            .option("prompt_tokens_pointer", "/meta/in")
            .option("completion_tokens_pointer", "/meta/out"),
    );
    let r = p.generate(&LlmRequest::new("q")).await.unwrap();
    assert_eq!(r.content, "abc");
    assert_eq!(r.model, "pm-2024");
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage, Usage::new(4, 9));
}

#[tokio::test]
async fn a_missing_answer_or_an_error_body_fails() {
    let server = MockServer::start().await.unwrap();
    server.on_times(
        "POST",
        "/generate",
        MockReply::json(200, r#"{"answer":"x"}"#),
        1,
    );
    server.on(
        "POST",
        "/generate",
        MockReply::json(
            200,
            r#"{"error":{"message":"prompt rejected","code":"policy"}}"#,
        ),
    );
    let p = build(&spec(&server.url()));
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Decode);
    assert!(e.message.contains("/content, /text"), "{e}");
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.message, "prompt rejected");
    assert_eq!(e.code.as_deref(), Some("policy"));
}

#[tokio::test]
async fn http_errors_take_their_message_from_the_error_pointer() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(
            400,
            r#"{"detail":{"message":"prompt too long","type":"context_length"}}"#,
        ),
    );
    let p = build(
        &spec(&server.url())
            .option("api_key", KEY)
            .option("error_pointer", "/detail"),
    );
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.status, Some(400));
    assert_eq!(e.message, "prompt too long");
    assert_eq!(e.code.as_deref(), Some("context_length"));
    assert!(!format!("{e} {e:?}").contains(KEY));
}

#[tokio::test]
async fn long_json_error_bodies_keep_their_message_and_code() {
    let server = MockServer::start().await.unwrap();
    // A FastAPI-style validation error that echoes a long input back.
    let echoed = "从前有一座山。".repeat(400);
    let body = json!({"error": {"message": "prompt is too long: 9000 tokens > 8192",
                                "code": "context_length_exceeded",
                                "input": echoed}})
    .to_string();
    assert!(body.len() > 1000);
    server.on_times(
        "POST",
        "/generate",
        MockReply::json(400, body).header("x-request-id", "req-77"),
        1,
    );
    // A long message is kept, shortened to 1,000 bytes.
    let long = "x".repeat(5000);
    server.on(
        "POST",
        "/generate",
        MockReply::json(
            500,
            json!({"error": {"message": long, "type": "server_error"}}).to_string(),
        ),
    );
    let p = build(&spec(&server.url()));
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.status, Some(400));
    assert_eq!(e.message, "prompt is too long: 9000 tokens > 8192");
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
    assert_eq!(e.request_id.as_deref(), Some("req-77"));
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.status, Some(500));
    assert_eq!(e.code.as_deref(), Some("server_error"));
    assert_eq!(e.message, format!("{}…", "x".repeat(1000)));
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_but_never_shown() {
    const USER: &str = "svc-novels";
    const PASSWORD: &str = "pw-url-secret-7c31";
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(401, r#"{"error":"bad credentials"}"#),
    );
    let url = server
        .url()
        .replacen("://", &format!("://{USER}:{PASSWORD}@"), 1);
    let s = spec(&url);
    let p = build(&s);
    let direct = CustomProvider::from_spec(&s).unwrap();
    let debug = format!("{direct:?} {:?}", direct.config());
    assert!(
        !debug.contains(PASSWORD) && !debug.contains(USER),
        "{debug}"
    );
    assert!(debug.contains(&server.url()), "{debug}");
    assert_eq!(direct.config().display_url(), server.url());

    // Sent as HTTP basic authentication.
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    assert_eq!(e.status, Some(401));
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    let basic = "Basic c3ZjLW5vdmVsczpwdy11cmwtc2VjcmV0LTdjMzE=";
    assert_eq!(server.requests()[0].header("authorization"), Some(basic));

    // Transport errors do not show the URL's credentials either.
    let dead = spec(&format!("http://{USER}:{PASSWORD}@127.0.0.1:1")).option("stream", "sse");
    let p = build(&dead);
    let e = p.generate(&LlmRequest::new("q")).await.unwrap_err();
    let shown = format!("{e} {e:?} {:?}", CustomProvider::from_spec(&dead).unwrap());
    assert!(!shown.contains(PASSWORD), "{shown}");
    let e = p.stream(&LlmRequest::new("q")).await.err().unwrap();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn structured_output_penalties_and_user_go_through_the_template() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/v1/chat",
        MockReply::json(200, r#"{"content":"{\"a\":1}"}"#),
    );
    let template: toml::Table = toml::from_str(
        r#"
        model = "{{model}}"
        messages = "{{messages}}"
        response_format = "{{response_format}}"
        max_tokens = "{{max_tokens}}"
        temperature = "{{temperature}}"
        frequency_penalty = "{{frequency_penalty}}"
        presence_penalty = "{{presence_penalty}}"
        user = "{{user}}"
        "#,
    )
    .unwrap();
    let p = build(
        &spec(&server.url())
            .option("generate_path", "/v1/chat")
            .option("request_template", template),
    );
    for c in [
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Penalties,
    ] {
        assert!(p.supports(c, "private-model"), "{c:?}");
    }
    for c in [
        Capability::Tools,
        Capability::ForcedToolChoice,
        Capability::SerialToolCalls,
        Capability::Images,
        Capability::Logprobs,
        Capability::Passthrough,
    ] {
        assert!(!p.supports(c, "private-model"), "{c:?}");
    }
    assert!(!p.supports_tools());

    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}},
                        "required": ["a"], "additionalProperties": false});
    let mut req = LlmRequest::plain(vec![Message::user("Give me a")])
        .model("private-model")
        .response_format(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: schema.clone(),
            strict: Some(true),
            description: None,
        });
    req.frequency_penalty = Some(0.5);
    req.presence_penalty = Some(0.25);
    req.user = Some("user-1234".into());
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.content, r#"{"a":1}"#);
    assert_eq!(
        server.requests()[0].json(),
        json!({
            "model": "private-model",
            "messages": [{"role": "user", "content": "Give me a"}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "schema": schema, "strict": true}},
            "frequency_penalty": 0.5,
            "presence_penalty": 0.25,
            "user": "user-1234"
        })
    );
    // Nothing set, nothing sent.
    p.generate(&LlmRequest::plain(vec![Message::user("hi")]).model("m"))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[1].json(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn capabilities_need_their_placeholders() {
    let template = |t: &str| toml::from_str::<toml::Table>(t).unwrap();
    let with = |t: &str| build(&spec("http://127.0.0.1:9").option("request_template", template(t)));

    // The default body carries none of them.
    let p = build(&spec("http://127.0.0.1:9"));
    for c in [
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Penalties,
    ] {
        assert!(!p.supports(c, "private-model"), "{c:?}");
    }
    // Only the schema: json_schema, not json_object (nothing would carry it).
    let p = with(
        r#"prompt = "{{prompt}}"
format = "{{json_schema}}""#,
    );
    assert!(p.supports(Capability::JsonSchema, "private-model"));
    assert!(!p.supports(Capability::JsonObject, "private-model"));
    // One penalty without the other is not enough.
    let p = with(
        r#"prompt = "{{prompt}}"
options = { frequency_penalty = "{{frequency_penalty}}" }"#,
    );
    assert!(!p.supports(Capability::Penalties, "private-model"));
    let p = with(
        r#"prompt = "{{prompt}}"
options = { frequency_penalty = "{{frequency_penalty}}", presence_penalty = "{{presence_penalty}}" }"#,
    );
    assert!(p.supports(Capability::Penalties, "private-model"));
    assert!(!p.supports(Capability::JsonObject, "private-model"));
}

#[tokio::test]
async fn sse_mode_ends_on_done_and_reports_in_stream_errors() {
    let server = MockServer::start().await.unwrap();
    server.on_times(
        "POST",
        "/stream",
        sse(&[
            ": keep-alive",
            r#"data: {"choices":[{"delta":{"content":"你"}}]}"#,
            r#"data: {"choices":[{"delta":{"content":"好"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            "data: [DONE]",
            r#"data: {"choices":[{"delta":{"content":"after"}}]}"#,
        ]),
        1,
    );
    server.on_times(
        "POST",
        "/stream",
        sse(&[
            r#"data: {"choices":[{"delta":{"content":"a"}}]}"#,
            "event: error\ndata: {\"error\":\"overloaded\"}",
        ]),
        1,
    );
    let p = build(
        &spec(&server.url())
            .option("stream", "sse")
            .option("stream_path", "/stream")
            .option("stream_flag", "stream")
            .option("delta_pointer", "/choices/0/delta/content")
            .option("prompt_tokens_pointer", "/usage/prompt_tokens")
            .option("completion_tokens_pointer", "/usage/completion_tokens"),
    );
    let req = LlmRequest::new("hi");
    assert_eq!(
        events(&p, &req).await,
        vec![
            Ok(StreamEvent::delta("你")),
            Ok(StreamEvent::delta("好")),
            Ok(StreamEvent::Usage {
                usage: Usage::new(3, 2)
            }),
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Stop
            }),
        ]
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.json()["stream"], json!(true));
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
    assert_eq!(
        events(&p, &req).await,
        vec![Ok(StreamEvent::delta("a")), Err("overloaded".to_string())]
    );
}

#[tokio::test]
async fn ndjson_done_pointer_can_be_a_finish_reason_string() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        ndjson(&[
            r#"{"token":"Hi","finish":null}"#,
            r#"{"token":" there","finish":"length"}"#,
        ]),
    );
    let p = build(
        &spec(&server.url())
            .option("stream", "ndjson")
            .option("delta_pointer", "/token")
            .option("stream_done_pointer", "/finish")
            .option("finish_reason_pointer", "/finish"),
    );
    let got = events(&p, &LlmRequest::new("hello")).await;
    assert_eq!(
        got,
        vec![
            Ok(StreamEvent::delta("Hi")),
            Ok(StreamEvent::delta(" there")),
            Ok(StreamEvent::Usage {
                usage: Usage::new(2, 2)
            }),
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Length
            }),
        ]
    );
}

#[tokio::test]
async fn stream_mode_none_replays_one_generate_call() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/generate",
        MockReply::json(200, r#"{"content":"whole answer"}"#),
    );
    let p = build(&spec(&server.url()));
    let got = events(&p, &LlmRequest::new("q")).await;
    assert_eq!(got[0], Ok(StreamEvent::delta("whole answer")));
    assert_eq!(got.len(), 3);
    assert!(matches!(got[2], Ok(StreamEvent::Done { .. })));
    let sent = &server.requests()[0];
    assert!(sent.json().get("stream").is_none());
}

#[tokio::test]
async fn models_come_from_the_profile_or_the_models_path() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/v1/models",
        MockReply::json(200, r#"{"data":[{"id":"a"},{"name":"b"},{"other":"c"}]}"#),
    );
    let p = build(&spec(&server.url()));
    assert_eq!(p.models().await.unwrap(), vec!["private-model".to_string()]);
    assert!(
        server.requests().is_empty(),
        "no request without models_path"
    );
    let p = build(&spec(&server.url()).option("models_path", "/v1/models"));
    assert_eq!(
        p.models().await.unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    let p = build(
        &spec(&server.url())
            .option("models_path", "/v1/models")
            .option("models_pointer", "/models"),
    );
    let e = p.models().await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Decode);
}

#[tokio::test]
async fn health_needs_a_2xx_on_the_health_path() {
    let server = MockServer::start().await.unwrap();
    server.on("GET", "/health", MockReply::json(500, "{}"));
    server.on("GET", "/ready", MockReply::new(204, "text/plain", ""));
    let p = build(&spec(&server.url()));
    assert!(!p.is_available().await);
    let p = build(
        &spec(&server.url())
            .option("health_path", "/ready")
            .option("api_key", KEY),
    );
    assert!(p.is_available().await);
    let sent = server.requests().pop().unwrap();
    assert_eq!(sent.path, "/ready");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn debug_never_shows_the_key_or_header_values() {
    let s = spec("http://127.0.0.1:9").option("api_key", KEY).option(
        "headers",
        toml::Table::from_iter([("X-Api-Key".to_string(), toml::Value::from("hdr-secret-55"))]),
    );
    let p = CustomProvider::from_spec(&s).unwrap();
    let debug = format!("{p:?} {:?}", p.config());
    assert!(!debug.contains(KEY), "{debug}");
    assert!(!debug.contains("hdr-secret-55"), "{debug}");
    assert!(
        debug.contains("X-Api-Key") && debug.contains("redacted"),
        "{debug}"
    );
}

fn load(section: &str) -> Result<Config, llm_core::ConfigError> {
    let text = format!("[llm_providers.custom]\nmodels = [\"m\"]\n{section}\n");
    Config::from_toml_str_with_env(&text, Some("providers.toml".into()), &|_| None)
}

#[test]
fn config_errors_name_the_key_and_line() {
    let e = load("timeout = 5").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.base_url"),
        "{e}"
    );
    assert!(e.to_string().contains("missing field `base_url`"), "{e}");

    let e = load("base_url = \"http://x\"\nbase_path = \"/v1\"").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.base_path"),
        "{e}"
    );
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.to_string().starts_with("providers.toml:4:"), "{e}");

    let e = load("base_url = \"http://x\"\nstream = \"websocket\"").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("llm_providers.custom.stream"), "{e}");
    assert!(
        e.message
            .ends_with("expected one of `none`, `ndjson`, `sse`"),
        "{e}"
    );

    let e = load("base_url = \"http://x\"\ncontent_pointers = [\"content\"]").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.content_pointers"),
        "{e}"
    );

    let e = load("base_url = \"not a url\"").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.base_url"),
        "{e}"
    );

    let e = load("base_url = \"http://x\"\ngenerate_path = \"generate\"").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.generate_path"),
        "{e}"
    );

    let e =
        load("base_url = \"http://x\"\n[llm_providers.custom.request_template]\nq = \"{{promt}}\"")
            .unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.request_template"),
        "{e}"
    );
    assert!(e.message.contains("{{promt}}"), "{e}");

    let e = load("base_url = \"http://x\"\nheaders = { \"bad header\" = \"v\" }").unwrap_err();
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.custom.headers"),
        "{e}"
    );
}

#[test]
fn the_documented_examples_load() {
    let text = r#"
[llm_providers.custom]
base_url = "${CUSTOM_LLM_URL:-http://localhost:8080}"
api_key = "${CUSTOM_LLM_API_KEY:-}"
models = ["private-model"]
default_model = "private-model"
cost_per_1k_tokens = 0.005
timeout = 120
generate_path = "/generate"
health_path = "/health"
content_pointers = ["/content", "/text"]
error_pointer = "/error"
stream = "none"

[llm_providers.gpu-box]
kind = "custom"
base_url = "http://10.0.0.5:9000"
generate_path = "/v1/chat"
models_path = "/v1/models"
models_pointer = "/models"
headers = { "X-Tenant" = "novels" }
content_pointers = ["/output/text"]
prompt_tokens_pointer = "/usage/input"
completion_tokens_pointer = "/usage/output"
finish_reason_pointer = "/output/finish"
stream = "ndjson"
stream_flag = "stream"
delta_pointer = "/output/delta"
stream_done_pointer = "/done"

[llm_providers.gpu-box.request_template]
model = "{{model}}"
messages = "{{messages}}"
parameters = { max_new_tokens = "{{max_tokens}}", temperature = "{{temperature}}", top_p = "{{top_p}}", stop = "{{stop}}" }
"#;
    let config = Config::from_toml_str_with_env(text, None, &|_| None).unwrap();
    let providers = config.build_providers().unwrap();
    let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["custom", "gpu-box"]);
    assert!(providers.iter().all(|p| p.kind() == "custom"));
    assert!((providers[0].profile().cost_per_1k_tokens - 0.005).abs() < f64::EPSILON);

    // Every TOML example of the README, together, is a valid configuration.
    let readme = include_str!("../../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 4);
    let config = Config::from_toml_str_with_env(&blocks.concat(), None, &|_| None).unwrap();
    let providers = config.build_providers().unwrap();
    assert_eq!(providers.len(), 4);
    // The embeddings example embeds with its listed model only.
    let tei = providers.iter().find(|p| p.name() == "tei-box").unwrap();
    assert!(tei.supports(Capability::Embeddings, "bge-m3"));
    assert!(!tei.supports(Capability::Embeddings, "other"));
    // The structured-output example claims what its template carries.
    let vllm = providers.iter().find(|p| p.name() == "vllm-box").unwrap();
    for c in [
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Penalties,
    ] {
        assert!(vllm.supports(c, "any"), "{c:?}");
    }
    assert!(!vllm.supports(Capability::Tools, "any"));
}
