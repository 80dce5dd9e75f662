//! Request mapping, headers, pagination, usage, errors and secrecy, over real
//! HTTP against the mock server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use futures::StreamExt;
use llm_core::config::Config;
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    ErrorClass, FinishReason, LlmRequest, Message, Provider, ProviderError, ProviderErrorKind,
    StreamEvent, Usage,
};
use serde_json::json;

use common::*;

/// Builds the instance `claude` from a TOML section body (after
/// `[llm_providers.claude]` and `kind = "anthropic"`), through the real
/// configuration loader. `${KEY}` expands to the test secret.
pub(crate) fn from_toml(extra: &str) -> Result<Arc<dyn Provider>, llm_core::ConfigError> {
    // Referencing the crate links it, and so registers the kind.
    std::hint::black_box(llm_anthropic::build as llm_core::registry::BuildFn);
    let text = format!("[llm_providers.claude]\nkind = \"anthropic\"\n{extra}");
    let env = |k: &str| (k == "KEY").then(|| SECRET.to_string());
    let cfg = Config::from_toml_str_with_env(&text, None, &env)?;
    Ok(cfg.providers[0].instance.clone().expect("enabled"))
}

pub(crate) async fn server(method: &str, path: &str, reply: MockReply) -> MockServer {
    let s = MockServer::start().await.unwrap();
    s.on(method, path, reply);
    s
}

pub(crate) fn provider(server: &MockServer, extra: &str) -> Arc<dyn Provider> {
    from_toml(&format!(
        "api_key = \"${{KEY}}\"\nbase_url = \"{}\"\ndefault_model = \"{MODEL}\"\n{extra}",
        server.url()
    ))
    .unwrap()
}

pub(crate) fn post(server: &MockServer) -> RecordedRequest {
    server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a POST")
}

pub(crate) async fn collect(
    p: &Arc<dyn Provider>,
    req: &LlmRequest,
) -> Vec<Result<StreamEvent, ProviderError>> {
    p.stream(req).await.expect("stream opens").collect().await
}

fn example_request() -> LlmRequest {
    LlmRequest::new("Say hello.")
        .system("You are a terse assistant.")
        .max_tokens(256)
        .temperature(0.2)
        .stop("END")
        .model(MODEL)
}

#[tokio::test]
async fn request_matches_the_documented_example_byte_for_byte() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(
        &s,
        &format!("pricing = {{ \"{MODEL}\" = {{ input_per_1m = 3.0, output_per_1m = 15.0 }} }}"),
    );
    let r = p.generate(&example_request()).await.unwrap();
    let sent = post(&s);
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(String::from_utf8(sent.body.clone()).unwrap(), REQUEST_BODY);
    assert_eq!(sent.header("x-api-key"), Some(SECRET));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("anthropic-beta"), None);
    assert_eq!(sent.header("authorization"), None);

    assert_eq!(r.content, "Hello!");
    assert_eq!(r.model, MODEL);
    assert_eq!(r.usage, Usage::new(16, 5));
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.provider, "claude");
    assert_eq!(r.provider_kind, "anthropic");
    assert!(!r.cached && r.attempts.is_empty());
    // 16 × $3/M + 5 × $15/M
    assert!((r.cost - 0.000_123).abs() < 1e-12, "cost {}", r.cost);
}

#[tokio::test]
async fn stream_request_sets_stream_and_yields_text_usage_done() {
    let s = server("POST", "/v1/messages", stream()).await;
    let p = provider(&s, "");
    let items = collect(&p, &example_request()).await;
    let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Hello"),
            StreamEvent::delta("!"),
            StreamEvent::Usage {
                usage: Usage::new(16, 5)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::Stop
            },
        ]
    );
    let body = post(&s).json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["system"], json!("You are a terse assistant."));
}

#[tokio::test]
async fn mapping_lifts_system_merges_turns_and_sends_the_model_as_given() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(
        &s,
        "max_tokens = 100\nmodels = [\"claude-sonnet-4-5-20250929\", \"claude-haiku\"]",
    );
    let req = LlmRequest::from_messages(vec![
        Message::system("Write in Chinese."),
        Message::user("第一章"),
        Message::user("继续"),
        Message::assistant("好的。"),
        Message::user("再写一段"),
    ])
    .system("You are a novelist.")
    .max_tokens(4096)
    .temperature(1.5)
    .stop("END")
    .stop("\n\nHuman:")
    .seed(7)
    .model("claude-opus-4-1-20250805");
    p.generate(&req).await.unwrap();
    let body = post(&s).json();
    // The client has already chosen the model and clamped `max_tokens`:
    // the provider sends them as given. `seed` has no Anthropic field.
    assert_eq!(
        body,
        json!({
            "model": "claude-opus-4-1-20250805",
            "max_tokens": 4096,
            "system": "You are a novelist.\n\nWrite in Chinese.",
            "messages": [
                {"role": "user", "content": "第一章\n\n继续"},
                {"role": "assistant", "content": "好的。"},
                {"role": "user", "content": "再写一段"}
            ],
            "temperature": 1.0,
            "stop_sequences": ["END", "\n\nHuman:"]
        })
    );

    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(
        &s,
        "max_tokens = 100\nmodels = [\"claude-sonnet-4-5-20250929\", \"claude-haiku\"]",
    );
    p.generate(
        &LlmRequest::new("x")
            .model("claude-haiku")
            .max_tokens(50)
            .temperature(0.0),
    )
    .await
    .unwrap();
    let body = post(&s).json();
    assert_eq!(body["model"], json!("claude-haiku"));
    assert_eq!(body["max_tokens"], json!(50));
    assert_eq!(body["temperature"], json!(0.0));
    assert!(body.get("system").is_none() && body.get("top_p").is_none());
    assert!(body.get("stop_sequences").is_none() && body.get("stream").is_none());
    assert!(body.get("metadata").is_none() && body.get("tools").is_none());
}

#[tokio::test]
async fn configured_headers_are_sent() {
    let s = server("POST", "/v1/messages", completion()).await;
    let p = provider(
        &s,
        "version = \"2023-01-01\"\nbeta = [\"prompt-caching-2024-07-31\", \"output-128k-2025-02-19\"]\nheaders = { \"x-team\" = \"novels\" }",
    );
    p.generate(&LlmRequest::new("hi")).await.unwrap();
    let sent = post(&s);
    assert_eq!(sent.header("anthropic-version"), Some("2023-01-01"));
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31,output-128k-2025-02-19")
    );
    assert_eq!(sent.header("x-team"), Some("novels"));
    assert_eq!(sent.header("x-api-key"), Some(SECRET));
}

#[tokio::test]
async fn models_follow_pagination() {
    let s = MockServer::start().await.unwrap();
    // Constructed pages in the 4.4 layout.
    s.on_times(
        "GET",
        "/v1/models",
        MockReply::json(
            200,
            r#"{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},{"type":"model","id":"claude-opus-4-1-20250805","display_name":"Claude Opus 4.1","created_at":"2025-08-05T00:00:00Z"}],"has_more":true,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-opus-4-1-20250805"}"#,
        ),
        1,
    );
    s.on(
        "GET",
        "/v1/models",
        MockReply::json(
            200,
            r#"{"data":[{"type":"model","id":"claude-3-5-haiku-20241022","display_name":"Claude Haiku 3.5","created_at":"2024-10-22T00:00:00Z"}],"has_more":false,"first_id":"claude-3-5-haiku-20241022","last_id":"claude-3-5-haiku-20241022"}"#,
        ),
    );
    let p = provider(&s, "");
    let ids = p.models().await.unwrap();
    assert_eq!(
        ids,
        vec![
            "claude-sonnet-4-5-20250929",
            "claude-opus-4-1-20250805",
            "claude-3-5-haiku-20241022"
        ]
    );
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/v1/models?limit=1000");
    assert_eq!(
        reqs[1].path,
        "/v1/models?limit=1000&after_id=claude-opus-4-1-20250805"
    );
    assert!(reqs.iter().all(|r| r.header("x-api-key") == Some(SECRET)));
    assert!(reqs
        .iter()
        .all(|r| r.header("anthropic-version") == Some("2023-06-01")));
}

#[tokio::test]
async fn usage_counts_cache_tokens_as_input_and_apart() {
    // The 4.6 body with non-zero cache counts (constructed).
    let body = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello"},{"type":"text","text":" again!"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":1024,"cache_read_input_tokens":2048,"cache_creation":{"ephemeral_5m_input_tokens":1024,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;
    let s = server("POST", "/v1/messages", MockReply::json(200, body)).await;
    let p = provider(&s, "");
    let r = p.generate(&LlmRequest::new("hi")).await.unwrap();
    assert_eq!(
        r.usage,
        Usage::new(16 + 1024 + 2048, 5).with_cache(2048, 1024)
    );
    assert_eq!(r.usage.cache_read_tokens, 2048);
    assert_eq!(r.usage.cache_write_tokens, 1024);
    assert_eq!(r.content, "Hello again!");
    assert_eq!(r.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn debug_and_errors_never_show_the_key() {
    let s = server("POST", "/v1/messages", unauthorized()).await;
    let p = provider(&s, "");
    let e = p.generate(&LlmRequest::new("hi")).await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("authentication_error"));
    assert_eq!(e.message, "invalid x-api-key");
    assert_eq!(e.class(), ErrorClass::Fallback);
    let text = format!("{e} {e:?}");
    assert!(!text.contains(SECRET), "{text}");
    let direct = llm_anthropic::AnthropicProvider::from_spec(
        &llm_core::ProviderSpec::new("direct", "anthropic", Default::default())
            .option("api_key", SECRET)
            .option("base_url", s.url()),
    )
    .unwrap();
    let debug = format!("{direct:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(
        debug.contains("direct") && debug.contains("[set]"),
        "{debug}"
    );
}

#[test]
fn config_errors_name_the_key_and_line() {
    let err = |extra: &str| from_toml(extra).err().expect("config error");
    let e = err("api_key = \"${KEY}\"\nbogus = 1\n");
    assert_eq!(e.key.as_deref(), Some("llm_providers.claude.bogus"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");

    let e = err("base_url = \"not a url\"\n");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.claude.base_url"),
        "{e}"
    );
    let e = err("headers = { \"bad header\" = \"x\" }\n");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.claude.headers"),
        "{e}"
    );
    let e = err("api_key = 5\n");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.claude.api_key"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_or_empty_key_is_unavailable_and_sends_nothing() {
    let s = MockServer::start().await.unwrap();
    s.on("GET", "/v1/models", MockReply::json(200, MODELS));
    s.on("POST", "/v1/messages", completion());
    for key_line in ["", "api_key = \"${UNSET_ANTHROPIC_KEY:-}\"\n"] {
        let p = from_toml(&format!(
            "{key_line}base_url = \"{}\"\ndefault_model = \"{MODEL}\"\n",
            s.url()
        ))
        .unwrap();
        assert!(!p.is_available().await);
        let e = p.generate(&LlmRequest::new("hi")).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Unsupported, "{e}");
        assert!(e.message.contains("api_key"), "{e}");
        assert!(p.stream(&LlmRequest::new("hi")).await.is_err());
        assert!(p.models().await.is_err());
    }
    assert!(s.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn availability_probe_is_one_cheap_authenticated_get() {
    let s = server("GET", "/v1/models", MockReply::json(200, MODELS)).await;
    let p = provider(&s, "");
    assert!(p.is_available().await);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/models?limit=1");
    assert_eq!(reqs[0].header("x-api-key"), Some(SECRET));

    let s = server("GET", "/v1/models", unauthorized()).await;
    assert!(!provider(&s, "").is_available().await);
}

#[tokio::test]
async fn error_replies_keep_code_request_id_and_class() {
    let cases = [
        (
            prompt_too_long(),
            400,
            "invalid_request_error",
            Some("req_011CSHoEeqs5C35K2UUqR7Fy"),
            ErrorClass::Fallback,
        ),
        (
            overloaded(),
            529,
            "overloaded_error",
            Some("req_01RCc7MbLyQNtGKzBTv8VCep"),
            ErrorClass::Retryable,
        ),
        (
            overloaded_with_body_id(),
            529,
            "overloaded_error",
            Some("req_011CZAYwiDg6Eqv7HiBNWoE5"),
            ErrorClass::Retryable,
        ),
        (
            server_error(),
            500,
            "api_error",
            Some("req_011CVT1TGNi4VcKHaM5xKGTs"),
            ErrorClass::Retryable,
        ),
        (
            model_not_found(),
            404,
            "not_found_error",
            Some("req_011CSHoEeqs5C35K2UUqR7Fy"),
            ErrorClass::Fallback,
        ),
        // 402: status and type from 4.5's table, message elided as there.
        (
            MockReply::json(
                402,
                r#"{"type":"error","error":{"type":"billing_error","message":"…"}}"#,
            ),
            402,
            "billing_error",
            None,
            ErrorClass::Fallback,
        ),
    ];
    for (reply, status, code, id, class) in cases {
        let s = server("POST", "/v1/messages", reply).await;
        let e = provider(&s, "")
            .generate(&LlmRequest::new("hi"))
            .await
            .unwrap_err();
        assert_eq!(e.status, Some(status), "{e}");
        assert_eq!(e.code.as_deref(), Some(code), "{e}");
        assert_eq!(e.request_id.as_deref(), id, "{e}");
        assert_eq!(e.class(), class, "{e}");
    }

    let s = server("POST", "/v1/messages", prompt_too_long()).await;
    let e = provider(&s, "")
        .generate(&LlmRequest::new("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "prompt is too long: 215332 tokens > 200000 maximum"
    );

    let s = server("POST", "/v1/messages", unavailable()).await;
    let e = provider(&s, "")
        .generate(&LlmRequest::new("hi"))
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(503));
    assert!(e.message.starts_with("upstream connect error"), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn error_envelope_in_a_200_is_an_error() {
    let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let s = server("POST", "/v1/messages", MockReply::json(200, body)).await;
    let e = provider(&s, "")
        .generate(&LlmRequest::new("hi"))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn mid_stream_overloaded_error_is_retryable_after_the_text() {
    let s = server(
        "POST",
        "/v1/messages",
        stream_error().header("request-id", "req_01RCc7MbLyQNtGKzBTv8VCep"),
    )
    .await;
    let p = provider(&s, "");
    let items = collect(&p, &LlmRequest::new("hi")).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &StreamEvent::delta("Hello"));
    // The usage `message_start` reported is kept, just before the error.
    assert_eq!(
        items[1].as_ref().unwrap(),
        &StreamEvent::Usage {
            usage: Usage::new(16, 1)
        }
    );
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.status, Some(529));
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(
        e.request_id.as_deref(),
        Some("req_01RCc7MbLyQNtGKzBTv8VCep")
    );
    assert!(e.message.contains("Overloaded"), "{e}");
}

#[tokio::test]
async fn truncated_stream_keeps_the_text_then_fails_incomplete() {
    let s = server("POST", "/v1/messages", stream_truncated()).await;
    let p = provider(&s, "");
    let items = collect(&p, &LlmRequest::new("hi")).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &StreamEvent::delta("Hello"));
    assert_eq!(items[1].as_ref().unwrap(), &StreamEvent::delta("!"));
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Incomplete);
    assert!(e.message.contains("message_stop"), "{e}");
}
