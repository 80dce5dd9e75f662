//! Request fidelity: only what the caller set is sent, structured output
//! (`format`), images, penalties, capabilities, and fields Ollama cannot
//! honour refused before anything is sent. Bodies are compared byte for byte
//! (keys in Go field order) against the local mock server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_core::testing::{MockBody, MockReply, MockServer};
use llm_core::{
    Capability, ErrorClass, ImageInput, LlmRequest, Message, Provider, ProviderErrorKind,
    ProviderProfile, ProviderSpec, ResponseFormat, Tool, ToolChoice,
};
use llm_ollama::{OllamaProvider, KIND, MAX_IMAGE_BYTES};
use serde_json::json;

use crate::provider::chunked;

const JSON: &str = "application/json; charset=utf-8";

/// A plain answer (protocols reference 3.10).
const DONE: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

/// The structured-output answer of Ollama's API docs (docs/api.md, "Chat
/// request (Structured outputs)", response), with `done` before `done_reason`
/// as the server writes them (protocols reference 3.4) and compact, as Go
/// encodes it.
const STRUCTURED: &str = r#"{"model":"llama3.1","created_at":"2024-12-06T00:46:58.265747Z","message":{"role":"assistant","content":"{\"age\": 22, \"available\": false}"},"done":true,"done_reason":"stop","total_duration":2254970291,"load_duration":574751416,"prompt_eval_count":34,"prompt_eval_duration":1502000000,"eval_count":12,"eval_duration":175000000}"#;

/// The `/api/generate` final line of protocols reference 3.10.
const GENERATE_DONE: &str = r#"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000}"#;

/// A 1×1 PNG, and its base64 as Ollama takes it (docs/api.md: "a list of
/// base64-encoded images"; the Go type is `[]byte`, standard base64).
const PNG: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// A header value configured for the Ollama server; never sent to image hosts.
const SECRET: &str = "Bearer sk-ollama-proxy-secret-123";

fn profile() -> ProviderProfile {
    ProviderProfile {
        local: true,
        models: vec!["llama3.2".into(), "llava".into()],
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

/// The body of the last generation request the server received, as text.
fn sent_body(server: &MockServer, path: &str) -> String {
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path == path)
        .expect("a generation request");
    String::from_utf8(last.body).unwrap()
}

fn user(text: &str) -> Vec<Message> {
    vec![Message::user(text)]
}

#[tokio::test]
async fn options_are_left_out_when_nothing_is_set() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    p.generate(&LlmRequest::plain(user("hi"))).await.unwrap();
    assert_eq!(
        sent_body(&server, "/api/chat"),
        r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
    );

    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/generate",
        MockReply::new(200, JSON, GENERATE_DONE),
    );
    let p = provider(&spec(&server).option("api", "generate"));
    p.generate(&LlmRequest::plain(user("Why is the sky blue?")))
        .await
        .unwrap();
    assert_eq!(
        sent_body(&server, "/api/generate"),
        r#"{"model":"llama3.2","prompt":"Why is the sky blue?","stream":false}"#
    );
}

#[tokio::test]
async fn an_empty_system_prompt_is_sent_only_when_set() {
    // Set, even empty, it replaces the Modelfile's SYSTEM, as the caller asked.
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    p.generate(&LlmRequest::plain(user("hi")).system(""))
        .await
        .unwrap();
    assert_eq!(
        sent_body(&server, "/api/chat"),
        r#"{"model":"llama3.2","messages":[{"role":"system","content":""},{"role":"user","content":"hi"}],"stream":false}"#
    );

    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/generate",
        MockReply::new(200, JSON, GENERATE_DONE),
    );
    let p = provider(&spec(&server).option("api", "generate"));
    p.generate(&LlmRequest::plain(user("hi")).system(""))
        .await
        .unwrap();
    assert_eq!(
        sent_body(&server, "/api/generate"),
        r#"{"model":"llama3.2","prompt":"hi","system":"","stream":false}"#
    );
}

#[tokio::test]
async fn penalties_and_a_negative_seed_go_into_options() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    let mut req = LlmRequest::plain(user("hi")).seed(-1);
    req.frequency_penalty = Some(0.5);
    req.presence_penalty = Some(-0.25);
    p.generate(&req).await.unwrap();
    assert_eq!(
        sent_body(&server, "/api/chat"),
        r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"seed":-1,"frequency_penalty":0.5,"presence_penalty":-0.25}}"#
    );
}

fn schema_request() -> LlmRequest {
    // docs/api.md, "Chat request (Structured outputs)".
    LlmRequest::plain(user(
        "Ollama is 22 years old and busy saving the world. Return a JSON object with the age and availability.",
    ))
    .model("llama3.1")
    .temperature(0.0)
    .response_format(ResponseFormat::JsonSchema {
        name: "person".into(),
        schema: json!({"type":"object","properties":{"age":{"type":"integer"},"available":{"type":"boolean"}},"required":["age","available"]}),
        strict: Some(true),
        description: Some("Age and availability".into()),
    })
}

#[tokio::test]
async fn json_schema_becomes_format_on_chat() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, STRUCTURED));
    let p = provider(&spec(&server));
    let r = p.generate(&schema_request()).await.unwrap();
    assert_eq!(r.content, r#"{"age": 22, "available": false}"#);
    // The docs' request, in Go field order (`name`, `description` and
    // `strict` have no place in Ollama's API; the grammar always enforces the
    // schema). The schema is sent as the caller's JSON value (a
    // `serde_json::Value`, whose object keys are sorted).
    assert_eq!(
        sent_body(&server, "/api/chat"),
        r#"{"model":"llama3.1","messages":[{"role":"user","content":"Ollama is 22 years old and busy saving the world. Return a JSON object with the age and availability."}],"stream":false,"format":{"properties":{"age":{"type":"integer"},"available":{"type":"boolean"}},"required":["age","available"],"type":"object"},"options":{"temperature":0.0}}"#
    );
}

#[tokio::test]
async fn json_schema_becomes_format_when_streaming_and_on_generate() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        chunked(&[
            r#"{"model":"llama3.1","created_at":"2024-12-06T00:46:58.1Z","message":{"role":"assistant","content":"{\"age\": 22, "},"done":false}"#,
            r#"{"model":"llama3.1","created_at":"2024-12-06T00:46:58.2Z","message":{"role":"assistant","content":"\"available\": false}"},"done":false}"#,
            r#"{"model":"llama3.1","created_at":"2024-12-06T00:46:58.265747Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":2254970291,"load_duration":574751416,"prompt_eval_count":34,"prompt_eval_duration":1502000000,"eval_count":12,"eval_duration":175000000}"#,
        ]),
    );
    let p = provider(&spec(&server));
    let r = p
        .stream(&schema_request())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, r#"{"age": 22, "available": false}"#);
    let body = sent_body(&server, "/api/chat");
    assert!(
        body.contains(r#""stream":true,"format":{"properties":{"age":{"type":"integer"},"available":{"type":"boolean"}},"required":["age","available"],"type":"object"},"options""#),
        "{body}"
    );

    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/generate",
        MockReply::new(200, JSON, GENERATE_DONE),
    );
    let p = provider(&spec(&server).option("api", "generate"));
    p.generate(&schema_request()).await.unwrap();
    assert_eq!(
        sent_body(&server, "/api/generate"),
        r#"{"model":"llama3.1","prompt":"Ollama is 22 years old and busy saving the world. Return a JSON object with the age and availability.","stream":false,"format":{"properties":{"age":{"type":"integer"},"available":{"type":"boolean"}},"required":["age","available"],"type":"object"},"options":{"temperature":0.0}}"#
    );
}

#[tokio::test]
async fn json_mode_is_format_json_and_text_sends_no_format() {
    for (api, path, reply) in [
        ("chat", "/api/chat", DONE),
        ("generate", "/api/generate", GENERATE_DONE),
    ] {
        let server = MockServer::start().await.unwrap();
        server.on("POST", path, MockReply::new(200, JSON, reply));
        let p = provider(&spec(&server).option("api", api));
        // docs/api.md, "Request (JSON mode)": `"format": "json"`.
        p.generate(&LlmRequest::plain(user("hi")).response_format(ResponseFormat::JsonObject))
            .await
            .unwrap();
        let body = sent_body(&server, path);
        assert!(
            body.ends_with(r#""stream":false,"format":"json"}"#),
            "{body}"
        );

        server.reset();
        server.on("POST", path, MockReply::new(200, JSON, reply));
        p.generate(&LlmRequest::plain(user("hi")).response_format(ResponseFormat::Text))
            .await
            .unwrap();
        let body = sent_body(&server, path);
        assert!(!body.contains("format"), "{body}");
    }
}

fn image_request(urls: &[&str]) -> LlmRequest {
    let mut m = Message::user("what is in this image?");
    for url in urls {
        m = m.image(ImageInput::url(*url));
    }
    LlmRequest::plain(vec![m]).model("llava")
}

#[tokio::test]
async fn data_url_images_are_sent_as_base64_on_their_message() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    let png = format!("data:image/png;base64,{PNG_BASE64}");
    let req = LlmRequest::plain(vec![
        Message::user("first"),
        Message::assistant("ok"),
        Message::user("what is in these images?")
            .image(ImageInput::url(&png))
            .image(ImageInput::url("data:image/jpeg;base64,/9j/4AAQ")),
    ])
    .model("llava");
    p.generate(&req).await.unwrap();
    // docs/api.md, "Chat request (with images)": `images` on the message, base64.
    assert_eq!(
        sent_body(&server, "/api/chat"),
        format!(
            r#"{{"model":"llava","messages":[{{"role":"user","content":"first"}},{{"role":"assistant","content":"ok"}},{{"role":"user","content":"what is in these images?","images":["{PNG_BASE64}","/9j/4AAQ"]}}],"stream":false}}"#
        )
    );

    // `/api/generate` takes them at the top level (docs/api.md, "Request (with images)").
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/generate",
        MockReply::new(200, JSON, GENERATE_DONE),
    );
    let p = provider(&spec(&server).option("api", "generate"));
    p.generate(&image_request(&[&png])).await.unwrap();
    assert_eq!(
        sent_body(&server, "/api/generate"),
        format!(
            r#"{{"model":"llava","prompt":"what is in this image?","stream":false,"images":["{PNG_BASE64}"]}}"#
        )
    );
}

#[tokio::test]
async fn remote_images_are_fetched_without_the_configured_headers() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    server.on("GET", "/cat.png", MockReply::new(200, "image/png", PNG));
    // No image Content-Type, but PNG bytes: taken.
    server.on(
        "GET",
        "/blob",
        MockReply::new(200, "application/octet-stream", PNG),
    );
    let headers =
        toml::Table::from_iter([("Authorization".to_string(), toml::Value::from(SECRET))]);
    let p = provider(
        &spec(&server)
            .option("headers", headers)
            .option("fetch_image_urls", true),
    );
    let req = image_request(&[
        &format!("{}/cat.png?X-Amz-Signature=abc", server.url()),
        &format!("{}/blob", server.url()),
    ]);
    p.stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(
        sent_body(&server, "/api/chat"),
        format!(
            r#"{{"model":"llava","messages":[{{"role":"user","content":"what is in this image?","images":["{PNG_BASE64}","{PNG_BASE64}"]}}],"stream":true}}"#
        )
    );
    let reqs = server.requests();
    for get in reqs.iter().filter(|r| r.method == "GET") {
        assert_eq!(get.header("authorization"), None, "{get:?}");
    }
    let chat = reqs.iter().find(|r| r.path == "/api/chat").unwrap();
    assert_eq!(chat.header("authorization"), Some(SECRET));
}

#[tokio::test]
async fn remote_image_urls_are_refused_unless_fetching_is_on() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    server.on("GET", "/cat.png", MockReply::new(200, "image/png", PNG));
    let p = provider(&spec(&server));
    let req = image_request(&[&format!("{}/cat.png", server.url())]);
    let err = p.generate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
    assert!(err.message.contains("fetch_image_urls = false"), "{err}");
    // Nothing was fetched and nothing generated.
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[tokio::test]
async fn images_that_cannot_be_sent_are_refused_before_generation() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let big = vec![0u8; usize::try_from(MAX_IMAGE_BYTES).unwrap() + 1];
    // Announced too large by Content-Length.
    server.on(
        "GET",
        "/big.png",
        MockReply::new(200, "image/png", big.clone()),
    );
    // No Content-Length: too large once read.
    server.on(
        "GET",
        "/big-chunked.png",
        MockReply::new(200, "image/png", Vec::new()).with_body(MockBody::Chunks(
            big.chunks(1 << 20).map(<[u8]>::to_vec).collect(),
        )),
    );
    server.on(
        "GET",
        "/page",
        MockReply::new(200, "text/html; charset=utf-8", "<!doctype html><p>hi</p>"),
    );
    server.on(
        "GET",
        "/gone.png",
        MockReply::new(404, "text/plain", "not found"),
    );
    let p = provider(&spec(&server).option("fetch_image_urls", true));
    for (path, code, says) in [
        ("/big.png", "image_too_large", "larger than 20971520 bytes"),
        (
            "/big-chunked.png",
            "image_too_large",
            "larger than 20971520 bytes",
        ),
        (
            "/page",
            "not_an_image",
            "is not an image (Content-Type `text/html; charset=utf-8`)",
        ),
        ("/gone.png", "image_fetch_failed", "HTTP 404"),
    ] {
        let url = format!("{}{path}?token=sig-secret", server.url());
        for streamed in [false, true] {
            let req = image_request(&[&format!("data:image/png;base64,{PNG_BASE64}"), &url]);
            let err = if streamed {
                p.stream(&req).await.unwrap_err()
            } else {
                p.generate(&req).await.unwrap_err()
            };
            assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
            assert_eq!(err.class(), ErrorClass::Fallback, "{err}");
            assert_eq!(err.code.as_deref(), Some(code), "{err}");
            assert!(
                err.message.starts_with("image_url (message 0, image 1): "),
                "{err}"
            );
            assert!(err.message.contains(says), "{err}");
            assert!(
                err.message.contains(&format!("{}{path}", server.url())),
                "{err}"
            );
            assert!(!err.message.contains("sig-secret"), "{err}");
        }
    }
    assert!(
        server.requests().iter().all(|r| r.path != "/api/chat"),
        "nothing was generated"
    );
}

#[tokio::test]
async fn capabilities_are_what_ollama_honours() {
    let server = MockServer::start().await.unwrap();
    let chat = provider(&spec(&server));
    let generate = provider(&spec(&server).option("api", "generate"));
    for (cap, on_chat, on_generate) in [
        (Capability::Tools, true, false),
        (Capability::JsonObject, true, true),
        (Capability::JsonSchema, true, true),
        (Capability::Images, true, true),
        (Capability::Penalties, true, true),
        (Capability::ForcedToolChoice, false, false),
        (Capability::SerialToolCalls, false, false),
        (Capability::Logprobs, false, false),
        (Capability::Passthrough, false, false),
    ] {
        assert_eq!(chat.supports(cap, "llama3.2"), on_chat, "chat {cap:?}");
        assert_eq!(
            generate.supports(cap, "llama3.2"),
            on_generate,
            "generate {cap:?}"
        );
    }
    assert!(chat.supports_tools());
    assert!(!generate.supports_tools());

    // `vision_models` restricts images to the models listed.
    let mut restricted = profile();
    restricted.vision_models = Some(vec!["llava".into()]);
    let p =
        provider(&ProviderSpec::new("local", KIND, restricted).option("base_url", server.url()));
    assert!(p.supports(Capability::Images, "llava"));
    assert!(!p.supports(Capability::Images, "llama3.2"));
    let err = p
        .generate(
            &image_request(&[&format!("data:image/png;base64,{PNG_BASE64}")]).model("llama3.2"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
    assert!(err.message.starts_with("image_url:"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn fields_ollama_cannot_honour_are_refused_naming_the_field() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let p = provider(&spec(&server));
    let weather = Tool::function(
        "get_weather",
        "Get the current weather for a city",
        json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
    );
    let tools = LlmRequest::plain(user("Weather in Tokyo?")).tool(weather);
    let mut extra = LlmRequest::plain(user("hi"));
    extra.extra.insert("service_tier".into(), json!("flex"));
    for (req, field) in [
        (
            tools.clone().tool_choice(ToolChoice::Required),
            "tool_choice",
        ),
        (
            tools
                .clone()
                .tool_choice(ToolChoice::Function("get_weather".into())),
            "tool_choice",
        ),
        (
            tools.clone().parallel_tool_calls(false),
            "parallel_tool_calls",
        ),
        (LlmRequest::plain(user("hi")).logprobs(Some(2)), "logprobs"),
        (extra, "extra"),
    ] {
        for streamed in [false, true] {
            let err = if streamed {
                p.stream(&req).await.unwrap_err()
            } else {
                p.generate(&req).await.unwrap_err()
            };
            assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
            assert_eq!(err.class(), ErrorClass::Fallback);
            assert!(err.message.starts_with(&format!("{field}: ")), "{err}");
        }
    }
    assert!(server.requests().is_empty(), "nothing was sent");

    // What Ollama does honour goes through: `none` sends no tools, and
    // `parallel_tool_calls: true` is what Ollama does anyway.
    for (n, req) in [
        tools.clone().tool_choice(ToolChoice::None),
        tools.clone().parallel_tool_calls(true),
    ]
    .into_iter()
    .enumerate()
    {
        p.generate(&req).await.unwrap();
        assert_eq!(server.requests().len(), n + 1);
    }
}

#[tokio::test]
async fn the_model_and_max_tokens_are_used_as_given() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, DONE));
    let mut limited = profile();
    limited.max_tokens = Some(100);
    let p = provider(&ProviderSpec::new("local", KIND, limited).option("base_url", server.url()));
    // The client resolves and clamps; the provider sends what it gets.
    p.generate(
        &LlmRequest::plain(user("hi"))
            .model("not-listed:1b")
            .max_tokens(500),
    )
    .await
    .unwrap();
    assert_eq!(
        sent_body(&server, "/api/chat"),
        r#"{"model":"not-listed:1b","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":500}}"#
    );
    // A direct call without a model gets the default model.
    let r = p.generate(&LlmRequest::plain(user("hi"))).await.unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(server.requests()[1].json()["model"], "llama3.2");
}
