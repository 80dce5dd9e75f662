//! Request mapping and Ollama-specific behaviour of the provider, against a mock server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    ErrorClass, FinishReason, LlmRequest, Message, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, StreamEvent, Usage,
};
use llm_ollama::{OllamaProvider, KIND};
use serde_json::json;

const JSON: &str = "application/json; charset=utf-8";
const NDJSON: &str = "application/x-ndjson";

fn profile() -> ProviderProfile {
    ProviderProfile {
        local: true,
        models: vec!["llama3.2".into(), "qwen:7b".into()],
        default_model: Some("llama3.2".into()),
        timeout: Duration::from_secs(10),
        ..ProviderProfile::default()
    }
}

fn spec(server: &MockServer) -> ProviderSpec {
    ProviderSpec::new("local", KIND, profile()).option("base_url", server.url())
}

fn provider(spec: &ProviderSpec) -> OllamaProvider {
    OllamaProvider::from_spec(spec).unwrap()
}

/// A 200 NDJSON reply sending each line as its own chunk.
pub(crate) fn chunked(lines: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        NDJSON,
        lines
            .iter()
            .map(|l| format!("{l}\n").into_bytes())
            .collect(),
    )
}

async fn collect(p: &OllamaProvider, req: &LlmRequest) -> Vec<Result<StreamEvent, String>> {
    let stream = p.stream(req).await.unwrap();
    stream.map(|i| i.map_err(|e| e.to_string())).collect().await
}

const DONE: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

#[tokio::test]
async fn chat_request_carries_every_setting() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(
        &spec(&server)
            .option("num_ctx", 4096)
            .option("keep_alive", "5m"),
    );
    let req = LlmRequest::from_messages(vec![
        Message::user("Say hello."),
        Message::assistant("Hello."),
        Message::user("Again."),
    ])
    .system("You are a terse assistant.")
    .max_tokens(50)
    .temperature(0.2)
    .top_p(0.9)
    .stop("\n\n")
    .seed(42)
    .model("qwen:7b");
    p.generate(&req).await.unwrap();
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(
        sent.json(),
        json!({
            "model": "qwen:7b",
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Say hello."},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Again."}
            ],
            "stream": false,
            "options": {"temperature": 0.2, "top_p": 0.9, "stop": ["\n\n"], "seed": 42,
                        "num_predict": 50, "num_ctx": 4096},
            "keep_alive": "5m"
        })
    );
}

#[tokio::test]
async fn unset_settings_are_left_to_the_server() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    // Nothing set: no `options` (no temperature, no `num_predict`), no
    // system message, no `keep_alive`; the Modelfile and server decide.
    p.generate(&LlmRequest::plain(vec![Message::user("hi")]))
        .await
        .unwrap();
    let sent = &server.requests()[0];
    assert_eq!(
        String::from_utf8(sent.body.clone()).unwrap(),
        r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
    );
    // `LlmRequest::new` sets a temperature and nothing else: only it is sent.
    p.generate(&LlmRequest::new("hi")).await.unwrap();
    let body = server.requests()[1].json();
    assert_eq!(body["options"], json!({"temperature": 0.7}), "{body}");
    assert!(body.get("keep_alive").is_none(), "{body}");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[tokio::test]
async fn generate_reports_usage_and_model_and_leaves_pricing_to_the_client() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let mut priced = profile();
    priced.cost_per_1k_tokens = 1.0;
    let p = provider(&ProviderSpec::new("local", KIND, priced).option("base_url", server.url()));
    let r = p.generate(&LlmRequest::new("hi")).await.unwrap();
    assert_eq!(r.usage, Usage::new(31, 2));
    assert_eq!(r.model, "llama3.2");
    assert_eq!(r.provider, "local");
    assert_eq!(r.provider_kind, "ollama");
    // The client prices responses from their usage (once, for every provider).
    assert_eq!(r.cost, 0.0);
    assert!(!r.cached);
    assert!(r.attempts.is_empty());
}

#[tokio::test]
async fn stream_request_asks_for_a_stream() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", chunked(&[DONE]));
    let p = provider(&spec(&server));
    let events = collect(&p, &LlmRequest::new("hi")).await;
    assert_eq!(server.requests()[0].json()["stream"], true);
    assert_eq!(
        events.last().cloned().unwrap(),
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop
        })
    );
}

#[tokio::test]
async fn final_line_text_is_kept_and_missing_counts_are_zero() {
    let server = MockServer::start().await.unwrap();
    // A `done: true` line carrying the last fragment; `prompt_eval_count`
    // omitted (fully cached prompt) and `done_reason` `length`.
    server.on(
        "POST",
        "/api/chat",
        chunked(&[
            r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
            r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"lo"},"done":true,"done_reason":"length","total_duration":412345678,"eval_count":2,"eval_duration":45678901}"#,
        ]),
    );
    let p = provider(&spec(&server));
    let events = collect(&p, &LlmRequest::new("hi")).await;
    assert_eq!(
        events,
        vec![
            Ok(StreamEvent::delta("Hel")),
            Ok(StreamEvent::delta("lo")),
            Ok(StreamEvent::Usage {
                usage: Usage::new(0, 2)
            }),
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Length
            }),
        ]
    );
}

#[tokio::test]
async fn done_reasons_map_to_finish_reasons() {
    for (reason, want) in [
        (Some("stop"), FinishReason::Stop),
        (Some("length"), FinishReason::Length),
        (Some("load"), FinishReason::Other("load".into())),
        (None, FinishReason::Stop),
    ] {
        let server = MockServer::start().await.unwrap();
        let mut body = json!({"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"x"},"done":true});
        if let Some(r) = reason {
            body["done_reason"] = json!(r);
        }
        server.on(
            "POST",
            "/api/chat",
            MockReply::new(200, JSON, body.to_string()),
        );
        let r = provider(&spec(&server))
            .generate(&LlmRequest::new("hi"))
            .await
            .unwrap();
        assert_eq!(r.finish_reason, want, "{reason:?}");
        assert_eq!(r.usage, Usage::new(0, 0), "absent counts are 0");
    }
}

#[tokio::test]
async fn error_line_inside_the_stream_is_an_error_item() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        chunked(&[
            r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"Hello"},"done":false}"#,
            r#"{"error":"an error was encountered while running the model"}"#,
        ]),
    );
    let events = collect(&provider(&spec(&server)), &LlmRequest::new("hi")).await;
    // Ollama writes counts only on the `done: true` line, which the error line
    // replaces: there is no usage to report before the error.
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], Ok(StreamEvent::delta("Hello")));
    let err = events[1].clone().unwrap_err();
    assert!(
        err.contains("an error was encountered while running the model"),
        "{err}"
    );
}

#[tokio::test]
async fn stream_without_done_line_is_incomplete() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        chunked(&[
            r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"Hello"},"done":false}"#,
        ]),
    );
    let p = provider(&spec(&server));
    let mut stream = p.stream(&LlmRequest::new("hi")).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::delta("Hello")
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Incomplete, "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn missing_model_says_how_to_pull_it() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(404, JSON, r#"{"error":"model 'llama9' not found"}"#),
    );
    let p = provider(&spec(&server));
    let err = p
        .generate(&LlmRequest::new("hi").model("llama9"))
        .await
        .unwrap_err();
    // The model is sent as given (the client resolves models, not the provider).
    assert_eq!(server.requests()[0].json()["model"], "llama9");
    assert_eq!(err.status, Some(404));
    assert_eq!(err.class(), ErrorClass::Fallback);
    assert_eq!(err.code.as_deref(), Some("model_not_found"));
    assert!(err.message.contains("model 'llama9' not found"), "{err}");
    assert!(err.message.contains("`llm pull llama9`"), "{err}");
    assert!(err.message.contains("`ollama pull llama9`"), "{err}");
    let err = p.stream(&LlmRequest::new("hi")).await.unwrap_err();
    assert!(err.message.contains("pull"), "{err}");
}

#[tokio::test]
async fn generate_api_for_old_servers() {
    let server = MockServer::start().await.unwrap();
    // Section 3.10, `/api/generate` final line.
    server.on(
        "POST",
        "/api/generate",
        MockReply::new(
            200,
            JSON,
            r#"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000}"#,
        ),
    );
    let p = provider(
        &spec(&server)
            .option("api", "generate")
            .option("keep_alive", 0),
    );
    let r = p
        .generate(&LlmRequest::new("Why is the sky blue?").system("Be brief."))
        .await
        .unwrap();
    assert_eq!(r.usage, Usage::new(26, 259));
    assert_eq!(r.content, "");
    let body = server.requests()[0].json();
    assert_eq!(body["prompt"], "Why is the sky blue?");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["stream"], false);
    assert_eq!(body["keep_alive"], 0);
    assert!(body.get("messages").is_none());
}

#[tokio::test]
async fn generate_api_streams() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/generate",
        chunked(&[
            r#"{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","response":"The","done":false}"#,
            r#"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":" sky","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000}"#,
        ]),
    );
    let p = provider(&spec(&server).option("api", "generate"));
    let r = p
        .stream(&LlmRequest::new("hi"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "The sky");
    assert_eq!(r.usage, Usage::new(26, 259));
}

#[tokio::test]
async fn old_server_without_chat_endpoint_is_explained() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(404, "text/plain", "404 page not found"),
    );
    let err = provider(&spec(&server))
        .generate(&LlmRequest::new("hi"))
        .await
        .unwrap_err();
    assert!(err.message.contains("api = \"generate\""), "{err}");
    assert_eq!(err.code, None);
}

#[tokio::test]
async fn models_and_availability_use_tags_and_version() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&spec(&server));
    assert!(!p.is_available().await, "no /api/version route yet");
    server.on(
        "GET",
        "/api/version",
        MockReply::new(200, JSON, r#"{"version":"0.5.1"}"#),
    );
    server.on(
        "GET",
        "/api/tags",
        MockReply::new(200, JSON, r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest"},{"name":"qwen:7b","model":"qwen:7b"}]}"#),
    );
    assert!(p.is_available().await);
    assert_eq!(
        p.models().await.unwrap(),
        vec!["llama3.2:latest", "qwen:7b"]
    );
    let reqs = server.requests();
    assert!(reqs
        .iter()
        .any(|r| r.method == "GET" && r.path == "/api/version"));
    server.reset();
    server.on(
        "GET",
        "/api/tags",
        MockReply::new(200, JSON, r#"{"models":[]}"#),
    );
    assert!(p.models().await.unwrap().is_empty());
}

#[tokio::test]
async fn configured_headers_are_sent_and_never_shown() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(500, JSON, r#"{"error":"boom"}"#),
    );
    let headers = toml::Table::from_iter([(
        "Authorization".to_string(),
        toml::Value::from("Bearer sk-hidden-999"),
    )]);
    let p = provider(&spec(&server).option("headers", headers));
    let err = p.generate(&LlmRequest::new("hi")).await.unwrap_err();
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer sk-hidden-999")
    );
    assert_eq!(err.class(), ErrorClass::Retryable);
    for text in [format!("{p:?}"), format!("{err} {err:?}")] {
        assert!(!text.contains("sk-hidden-999"), "{text}");
    }
}

#[tokio::test]
async fn unknown_keys_are_configuration_errors() {
    let server = MockServer::start().await.unwrap();
    let err = OllamaProvider::from_spec(&spec(&server).option("num_gpu", 1)).unwrap_err();
    assert_eq!(
        err.key.as_deref(),
        Some("llm_providers.local.num_gpu"),
        "{err}"
    );
    let err = OllamaProvider::from_spec(&spec(&server).option("api", "openai")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("llm_providers.local.api"), "{err}");
}

#[tokio::test]
async fn registered_kind_is_local_by_default() {
    let section: toml::Value = toml::from_str(
        r#"
        kind = "ollama"
        base_url = "http://127.0.0.1:9"
        models = ["llama3:8b"]
        "#,
    )
    .unwrap();
    let p = llm_core::registry::build("box", &section).unwrap();
    assert_eq!(p.kind(), "ollama");
    assert!(p.profile().local);
}
