//! Request fidelity over real HTTP against the mock server: sampling fields
//! sent only when set, no blank text, prompt-cache usage, the context-window
//! stop reason, `x-should-retry`, credentials in `base_url`, capabilities,
//! structured output through a forced tool, images, `max_tokens` and `user`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::provider::{collect, post, provider, server};

use std::sync::Arc;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    Capability, ErrorClass, FinishReason, ImageInput, LlmClient, LlmRequest, Message, Provider,
    ProviderErrorKind, ProviderProfile, ProviderSpec, ResponseFormat, StreamEvent, Tool,
    ToolChoice, Usage,
};
use serde_json::json;

use common::*;

/// A request with nothing set but one user message and the model.
fn plain(text: &str) -> LlmRequest {
    LlmRequest::plain(vec![Message::user(text)]).model(MODEL)
}

fn body_text(s: &MockServer) -> String {
    String::from_utf8(post(s).body).unwrap()
}

#[tokio::test]
async fn temperature_and_top_p_are_sent_only_when_set_and_never_together() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    // Nothing set: neither is sent (the model's defaults apply).
    p.generate(&plain("Say hello.")).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"Say hello."}]}"#
    );

    // `top_p` alone is sent alone.
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    p.generate(&plain("Say hello.").top_p(0.5)).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"Say hello."}],"top_p":0.5}"#
    );

    // Both: current Claude models refuse the pair with a 400 ("temperature
    // and top_p cannot both be specified for this model"), so only
    // `temperature` goes out.
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    p.generate(&plain("Say hello.").temperature(0.25).top_p(0.5))
        .await
        .unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"Say hello."}],"temperature":0.25}"#
    );
}

#[tokio::test]
async fn blank_text_is_never_sent() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    let req = LlmRequest::plain(vec![
        Message::user("a"),
        Message::user(""),
        Message::assistant(""),
        Message::user("b"),
    ])
    .model(MODEL);
    p.generate(&req).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"a\n\nb"}]}"#
    );

    // A trailing blank message after a merged one adds nothing.
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    let req = LlmRequest::plain(vec![Message::user("a"), Message::user("")]).model(MODEL);
    p.generate(&req).await.unwrap();
    assert_eq!(
        post(&s).json()["messages"],
        json!([{"role": "user", "content": "a"}])
    );

    // Nothing to send at all: refused locally, nothing sent.
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(&s, "");
    let e = p.generate(&plain("")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Unsupported, "{e}");
    assert!(p.stream(&plain("  ")).await.is_err());
    assert!(s.requests().is_empty());
}

/// The 4.6 stream with prompt-cache counts (constructed: cache numbers set in
/// `message_start`; the final `message_delta` repeats the input counts, as
/// protocols.md 4.3 says newer servers do).
const STREAM_CACHE_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEM\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":1024,\"cache_read_input_tokens\":2048,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1024,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":1024,\"cache_read_input_tokens\":2048,\"output_tokens\":5}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

#[tokio::test]
async fn streamed_usage_keeps_cache_reads_and_writes_apart() {
    let want = Usage::new(16 + 1024 + 2048, 5).with_cache(2048, 1024);
    assert_eq!(want.cache_read_tokens, 2048);
    assert_eq!(want.cache_write_tokens, 1024);
    let s = server("POST", "/v1/messages", sse(STREAM_CACHE_EVENTS)).await;
    let items = collect(&provider(&s, ""), &plain("hi")).await;
    let usage: Vec<Usage> = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Usage { usage }) => Some(*usage),
            _ => None,
        })
        .collect();
    assert_eq!(usage, vec![want]);

    // The same counts when only `message_start` carries the cache fields.
    let mut events = STREAM_CACHE_EVENTS.to_vec();
    events[4] = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n";
    let s = server("POST", "/v1/messages", sse(&events)).await;
    let r = provider(&s, "")
        .stream(&plain("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.usage, want);
}

#[tokio::test]
async fn usage_reported_before_an_error_event_is_kept() {
    let mut events = STREAM_CACHE_EVENTS[..3].to_vec();
    events.push(OVERLOADED_EVENT);
    let s = server("POST", "/v1/messages", sse(&events)).await;
    let items = collect(&provider(&s, ""), &plain("hi")).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &StreamEvent::delta("Hello!"));
    assert_eq!(
        items[1].as_ref().unwrap(),
        &StreamEvent::Usage {
            usage: Usage::new(16 + 1024 + 2048, 1).with_cache(2048, 1024)
        }
    );
    assert_eq!(items[2].as_ref().unwrap_err().status, Some(529));
}

#[tokio::test]
async fn a_full_context_window_is_length() {
    // `stop_reason` value from the Messages API reference (protocols.md 4.2;
    // "The response filled the model's context window. Treat the response as
    // truncated.", platform.claude.com/docs/en/build-with-claude/handling-stop-reasons).
    let body = COMPLETION.replace(
        r#""stop_reason":"end_turn""#,
        r#""stop_reason":"model_context_window_exceeded""#,
    );
    assert_ne!(body, COMPLETION);
    let s = server("POST", "/v1/messages", MockReply::json(200, body)).await;
    let r = provider(&s, "").generate(&plain("hi")).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.content, "Hello!");

    let events: Vec<String> = STREAM_EVENTS
        .iter()
        .map(|e| e.replace("\"end_turn\"", "\"model_context_window_exceeded\""))
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let s = server("POST", "/v1/messages", sse(&refs)).await;
    let items = collect(&provider(&s, ""), &plain("hi")).await;
    assert_eq!(
        items.last().unwrap().as_ref().unwrap(),
        &StreamEvent::Done {
            finish_reason: FinishReason::Length
        }
    );
}

/// 409 `conflict_error` (status and type from protocols.md 4.5's table; its
/// message constructed) with `x-should-retry: true`.
fn conflict_should_retry() -> MockReply {
    MockReply::json(
        409,
        r#"{"type":"error","error":{"type":"conflict_error","message":"Conflict"}}"#,
    )
    .header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
    .header("x-should-retry", "true")
}

/// The 4.6 529 capture with `x-should-retry: false` instead of `true`.
fn overloaded_should_not_retry() -> MockReply {
    MockReply::json(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .header("request-id", "req_01RCc7MbLyQNtGKzBTv8VCep")
    .header("x-should-retry", "false")
}

#[tokio::test]
async fn x_should_retry_overrides_the_status_rule() {
    let s = server("POST", "/v1/messages", overloaded_should_not_retry()).await;
    let e = provider(&s, "").generate(&plain("hi")).await.unwrap_err();
    assert_eq!(e.status, Some(529), "{e}");
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.class(), ErrorClass::Fallback, "{e}");
    assert!(e.message.contains("x-should-retry: false"), "{e}");

    let s = server("POST", "/v1/messages", conflict_should_retry()).await;
    let e = provider(&s, "").generate(&plain("hi")).await.unwrap_err();
    assert_eq!(e.status, Some(409), "{e}");
    assert_eq!(e.code.as_deref(), Some("conflict_error"));
    assert_eq!(e.class(), ErrorClass::Retryable, "{e}");

    // The captured `true` on a 529 changes nothing.
    let s = server("POST", "/v1/messages", overloaded()).await;
    let e = provider(&s, "").generate(&plain("hi")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Http);
    assert_eq!(e.class(), ErrorClass::Retryable, "{e}");

    // Through the client: `false` is sent once, `true` on a 409 is retried.
    for (reply, want_retried) in [
        (overloaded_should_not_retry(), false),
        (conflict_should_retry(), true),
    ] {
        let s = server("POST", "/v1/messages", reply).await;
        s.on("GET", "/v1/models", MockReply::json(200, MODELS));
        let client = LlmClient::builder()
            .provider(provider(&s, ""))
            .no_cache()
            .build()
            .unwrap();
        assert!(client.generate(plain("hi")).await.is_err());
        let posts = s.requests().iter().filter(|r| r.method == "POST").count();
        assert_eq!(posts > 1, want_retried, "{posts} POSTs");
    }
}

#[tokio::test]
async fn credentials_in_the_base_url_are_used_but_never_shown() {
    const PASSWORD: &str = "pr0xy-pa55word";
    let s = server("POST", "/v1/messages", unauthorized()).await;
    let url = s
        .url()
        .replace("http://", &format!("http://gateway:{PASSWORD}@"));
    let spec = ProviderSpec::new("claude", "anthropic", ProviderProfile::default())
        .option("api_key", SECRET)
        .option("base_url", url.as_str());
    let direct = llm_anthropic::AnthropicProvider::from_spec(&spec).unwrap();
    let debug = format!("{direct:?}");
    assert!(
        !debug.contains(PASSWORD) && !debug.contains(SECRET),
        "{debug}"
    );
    assert!(
        debug.contains(&s.url()),
        "shown without credentials: {debug}"
    );
    let config = llm_anthropic::AnthropicConfig::from_spec(&spec).unwrap();
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(PASSWORD) && !debug.contains(SECRET),
        "{debug}"
    );

    let e = direct.generate(&plain("hi")).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    // The credentials go out as basic authentication (for a proxy).
    let sent = post(&s);
    assert!(
        sent.header("authorization")
            .is_some_and(|a| a.starts_with("Basic ")),
        "{:?}",
        sent.headers
    );

    // A refused port and an invalid URL do not show it either.
    let refused = MockServer::refused_url().await.unwrap();
    let refused = refused.replace("http://", &format!("http://gateway:{PASSWORD}@"));
    let p = llm_anthropic::build(
        &ProviderSpec::new("claude", "anthropic", ProviderProfile::default())
            .option("api_key", SECRET)
            .option("base_url", refused.as_str()),
    )
    .unwrap();
    let e = p.generate(&plain("hi")).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(PASSWORD), "{e:?}");
    let e = llm_anthropic::build(
        &ProviderSpec::new("claude", "anthropic", ProviderProfile::default()).option(
            "base_url",
            format!("http://gateway:{PASSWORD}@host:notaport"),
        ),
    )
    .err()
    .unwrap();
    assert!(!format!("{e} {e:?}").contains(PASSWORD), "{e:?}");
}

#[tokio::test]
async fn capabilities_follow_the_mapping() {
    let s = MockServer::start().await.unwrap();
    let p = provider(&s, "");
    for c in [
        Capability::Tools,
        Capability::ForcedToolChoice,
        Capability::SerialToolCalls,
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Images,
    ] {
        assert!(p.supports(c, MODEL), "{c:?}");
    }
    for c in [
        Capability::Logprobs,
        Capability::Penalties,
        Capability::Passthrough,
    ] {
        assert!(!p.supports(c, MODEL), "{c:?}");
    }
    assert!(p.supports_tools());
    // `vision_models` restricts images.
    let p = provider(&s, "vision_models = [\"claude-sonnet-4-5-20250929\"]");
    assert!(p.supports(Capability::Images, MODEL));
    assert!(!p.supports(Capability::Images, "claude-text-only"));
}

/// The schema of the structured-output tests.
fn city_format() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "city".into(),
        schema: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        strict: Some(true),
        description: Some("A city and its country".into()),
    }
}

/// A forced-tool answer (constructed: the 4.6 body layout with the 4.2
/// `tool_use` block shape; a forced `tool_choice` prefills the turn, so the
/// answer has no text block).
const CITY_COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYER","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"city","input":{"name":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":38,"service_tier":"standard"}}"#;

/// The 4.6 tool stream for the forced `city` tool (constructed: its tool
/// block at index 0 with the documented delta layout, no text block).
const CITY_STREAM_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYES\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":412,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"city\",\"caller\":{\"type\":\"direct\"},\"input\":{}}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"name\\\": \\\"Pa\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":38}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

#[tokio::test]
async fn json_schema_is_a_forced_tool_whose_input_is_the_content() {
    let s = server(
        "POST",
        "/v1/messages",
        MockReply::json(200, CITY_COMPLETION),
    )
    .await;
    let p = provider(&s, "");
    let req = plain("Name a city in France.").response_format(city_format());
    let r = p.generate(&req).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"Name a city in France."}],"tools":[{"name":"city","description":"A city and its country","input_schema":{"properties":{"name":{"type":"string"}},"required":["name"],"type":"object"}}],"tool_choice":{"type":"tool","name":"city"}}"#
    );
    assert_eq!(r.content, r#"{"name":"Paris"}"#);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.usage, Usage::new(412, 38));

    // Streamed: the tool's argument pieces are the text.
    let s = server("POST", "/v1/messages", sse(CITY_STREAM_EVENTS)).await;
    let items = collect(&provider(&s, ""), &req).await;
    let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("{\"name\": \"Pa"),
            StreamEvent::delta("ris\"}"),
            StreamEvent::Usage {
                usage: Usage::new(412, 38)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::Stop
            },
        ]
    );
    let body = post(&s).json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "city"}));
}

#[tokio::test]
async fn json_object_is_a_forced_any_object_tool() {
    let reply = CITY_COMPLETION.replace(r#""name":"city""#, r#""name":"json_object""#);
    let s = server("POST", "/v1/messages", MockReply::json(200, reply)).await;
    let req = plain("A city as JSON.").response_format(ResponseFormat::JsonObject);
    let r = provider(&s, "").generate(&req).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"A city as JSON."}],"tools":[{"name":"json_object","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"json_object"}}"#
    );
    assert_eq!(r.content, r#"{"name":"Paris"}"#);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls.is_empty());

    // `text` adds nothing.
    let s = server("POST", "/v1/messages", completion()).await;
    provider(&s, "")
        .generate(&plain("hi").response_format(ResponseFormat::Text))
        .await
        .unwrap();
    assert!(post(&s).json().get("tools").is_none());
}

#[tokio::test]
async fn a_format_with_tools_lets_the_model_call_a_tool_or_answer_in_the_format() {
    let weather = Tool::function(
        "get_weather",
        "Get the weather",
        json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    );
    // The model called the caller's tool: a normal tool call.
    let s = server(
        "POST",
        "/v1/messages",
        MockReply::json(200, TOOL_COMPLETION),
    )
    .await;
    let req = plain("Weather?")
        .tool(weather.clone())
        .response_format(city_format());
    let r = provider(&s, "").generate(&req).await.unwrap();
    let body = post(&s).json();
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "city"]);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.content, "Checking the index.");

    // It answered through the format tool: the answer, no tool call.
    let s = server(
        "POST",
        "/v1/messages",
        MockReply::json(200, CITY_COMPLETION),
    )
    .await;
    let r = provider(&s, "").generate(&req).await.unwrap();
    assert_eq!(r.content, r#"{"name":"Paris"}"#);
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);

    // A forced call of the caller's tool: no format tool this turn.
    let s = server(
        "POST",
        "/v1/messages",
        MockReply::json(200, TOOL_COMPLETION),
    )
    .await;
    provider(&s, "")
        .generate(&req.clone().tool_choice(ToolChoice::Required))
        .await
        .unwrap();
    let body = post(&s).json();
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn images_become_image_blocks_after_the_text() {
    // Block shapes: protocols.md 4.1 (base64 source, `{"type":"url"}`
    // source) and platform.claude.com/docs/en/build-with-claude/vision.
    let s = server("POST", "/v1/messages", completion()).await;
    let req = LlmRequest::plain(vec![Message::user("What is in these images?")
        .image(ImageInput::url(
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
        ))
        .image(ImageInput::url("https://upload.wikimedia.org/cat.jpg"))])
    .model(MODEL);
    provider(&s, "").generate(&req).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"What is in these images?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUg=="}},{"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/cat.jpg"}}]}]}"#
    );

    // An image that is neither: refused locally, nothing sent.
    let s = server("POST", "/v1/messages", completion()).await;
    let req = LlmRequest::plain(vec![
        Message::user("x").image(ImageInput::url("ftp://example.com/a.png"))
    ])
    .model(MODEL);
    let e = provider(&s, "").generate(&req).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Unsupported, "{e}");
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn max_tokens_is_the_request_s_else_the_instance_s_else_the_default() {
    for (config, req, want) in [
        ("max_tokens = 8192", plain("hi").max_tokens(300), 300),
        ("max_tokens = 8192", plain("hi"), 8192),
        ("", plain("hi"), llm_anthropic::DEFAULT_MAX_TOKENS),
    ] {
        let s = server("POST", "/v1/messages", completion()).await;
        provider(&s, config).generate(&req).await.unwrap();
        assert_eq!(post(&s).json()["max_tokens"], json!(want), "{config}");
    }
    assert_eq!(llm_anthropic::DEFAULT_MAX_TOKENS, 4096);
}

#[tokio::test]
async fn user_becomes_metadata_user_id() {
    let s = server("POST", "/v1/messages", completion()).await;
    let mut req = plain("hi");
    req.user = Some("user-7f3a".into());
    provider(&s, "").generate(&req).await.unwrap();
    assert_eq!(
        body_text(&s),
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":4096,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"user-7f3a"}}"#
    );
}

#[tokio::test]
async fn a_direct_call_without_a_model_uses_the_default_model() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p: Arc<dyn Provider> = provider(&s, "");
    p.generate(&LlmRequest::plain(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(post(&s).json()["model"], json!(MODEL));
}

#[tokio::test]
async fn a_body_over_the_instance_s_limit_is_an_error() {
    // The 4.6 answer is 411 bytes: over a 100-byte limit, within the default.
    assert!(COMPLETION.len() > 100);
    let s = server("POST", "/v1/messages", completion()).await;
    let e = provider(&s, "max_response_bytes = 100")
        .generate(&plain("hi"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Decode, "{e}");
    assert!(e.message.contains("100 bytes"), "{e}");
    assert!(provider(&s, "").generate(&plain("hi")).await.is_ok());
}
