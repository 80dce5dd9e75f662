//! End to end: a client built from a TOML configuration with several provider
//! kinds, each against a local mock answering with the exact bytes of its API,
//! falls back from a failing instance to a healthy one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer};
use llm_router::config::Config;
use llm_router::{AttemptOutcome, ErrorClass, LlmClient, LlmRequest};

/// OpenAI's 500 body (pretty-printed, as the API sends non-streaming bodies).
const OPENAI_500: &str = r#"{
  "error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": null,
    "code": null
  }
}
"#;

/// Anthropic's non-streaming answer (protocols.md 4.6).
const ANTHROPIC_OK: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;

/// Anthropic's streamed answer (protocols.md 4.6), every event ended by a blank line.
const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEM\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

async fn openai_failing() -> MockServer {
    let s = MockServer::start().await.unwrap();
    s.on(
        "POST",
        "/v1/chat/completions",
        MockReply::json(500, OPENAI_500).header("x-request-id", "req_openai_500"),
    );
    s
}

async fn anthropic_healthy() -> MockServer {
    let s = MockServer::start().await.unwrap();
    s.on(
        "POST",
        "/v1/messages",
        MockReply::json(200, ANTHROPIC_OK).header("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE"),
    );
    s
}

fn config(openai: &MockServer, anthropic: &MockServer) -> Config {
    let text = format!(
        r#"
[llm_providers.openai]
api_key = "sk-test-openai"
base_url = "{}/v1"
models = ["gpt-4o-mini"]
default_model = "gpt-4o-mini"
timeout = 5

[llm_providers.claude]
kind = "anthropic"
api_key = "sk-ant-test"
base_url = "{}"
models = ["claude-sonnet-4-5-20250929"]
default_model = "claude-sonnet-4-5-20250929"
timeout = 5

[routing.retry]
max_retries = 1
backoff_base = 0.001
backoff_max = 0.002

[caching]
enabled = false
"#,
        openai.url(),
        anthropic.url()
    );
    Config::from_toml_str(&text).unwrap()
}

#[tokio::test]
async fn a_failing_openai_instance_falls_back_to_a_healthy_anthropic_one() {
    let (openai, anthropic) = (openai_failing().await, anthropic_healthy().await);
    let client = LlmClient::from_config(&config(&openai, &anthropic)).unwrap();
    let resp = client
        .generate(
            LlmRequest::new("Say hello.")
                .provider("openai")
                .max_tokens(256),
        )
        .await
        .unwrap();
    assert_eq!(resp.content, "Hello!");
    assert_eq!(resp.provider, "claude");
    assert_eq!(resp.provider_kind, "anthropic");
    assert_eq!(resp.usage.prompt_tokens, 16);
    assert_eq!(resp.usage.completion_tokens, 5);
    assert_eq!(resp.attempts.len(), 2);
    assert_eq!(resp.attempts[0].provider, "openai");
    assert_eq!(
        resp.attempts[0].calls, 2,
        "a 500 is retried once, then the next provider"
    );
    assert!(matches!(
        resp.attempts[0].outcome,
        AttemptOutcome::Failed {
            class: ErrorClass::Retryable,
            status: Some(500),
            ..
        }
    ));
    assert!(resp.attempts[1].succeeded());
    // What each upstream received.
    let sent = anthropic.requests();
    assert_eq!(sent[0].header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    // Two generation calls (the background availability probe is a GET).
    let posts = openai
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn a_stream_falls_back_the_same_way() {
    let (openai, anthropic) = (openai_failing().await, MockServer::start().await.unwrap());
    anthropic.on(
        "POST",
        "/v1/messages",
        MockReply::chunked(
            200,
            "text/event-stream",
            vec![ANTHROPIC_STREAM.as_bytes().to_vec()],
        ),
    );
    let client = LlmClient::from_config(&config(&openai, &anthropic)).unwrap();
    let stream = client
        .stream(
            LlmRequest::new("Say hello.")
                .provider("openai")
                .max_tokens(256),
        )
        .await
        .unwrap();
    assert_eq!(stream.provider, "claude");
    let items: Vec<_> = stream.collect().await;
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            Ok(llm_router::StreamEvent::Delta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello!");
    assert!(matches!(
        items.last(),
        Some(Ok(llm_router::StreamEvent::Done { .. }))
    ));
}
