//! Tool calling on `/api/chat`, against a mock server.
//!
//! Protocols reference 3.2 documents the message and tool shapes; it has no
//! complete tool-call response, so the fixtures below complete the documented
//! `message.tool_calls` (`{"id":…,"function":{"index":…,"name":…,"arguments":{…}}}`)
//! minimally inside the 3.10 response lines, in Go key order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    ErrorClass, FinishReason, LlmRequest, Message, Provider, ProviderErrorKind, ProviderProfile,
    ProviderSpec, StreamEvent, Tool, ToolCall, ToolCallAssembler, ToolChoice, Usage,
};
use llm_ollama::{OllamaProvider, KIND};
use serde_json::json;

use crate::provider::chunked;

const JSON: &str = "application/json; charset=utf-8";

fn spec(server: &MockServer) -> ProviderSpec {
    let profile = ProviderProfile {
        local: true,
        models: vec!["llama3.2".into()],
        default_model: Some("llama3.2".into()),
        timeout: Duration::from_secs(10),
        ..ProviderProfile::default()
    };
    ProviderSpec::new("local", KIND, profile).option("base_url", server.url())
}

fn provider(server: &MockServer) -> OllamaProvider {
    OllamaProvider::from_spec(&spec(server)).unwrap()
}

fn weather() -> Tool {
    Tool::function(
        "get_weather",
        "Get the current weather for a city",
        json!({"type":"object","properties":{"city":{"type":"string","description":"The name of the city"}},"required":["city"]}),
    )
}

fn time() -> Tool {
    Tool {
        name: "get_time".into(),
        description: None,
        parameters: json!({"type":"object","properties":{"timezone":{"type":"string"}}}),
    }
}

/// An id made for a call the server sent without one: OpenAI's format,
/// `call_` and 24 ASCII alphanumerics.
fn assert_synthetic(id: &str) {
    let rest = id.strip_prefix("call_").unwrap_or_else(|| panic!("{id}"));
    assert_eq!(rest.len(), 24, "{id}");
    assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
}

/// `calls` with their synthesized ids checked and all different, then
/// replaced by `call_<n>` (n = position) for comparison.
fn positional(calls: &[ToolCall]) -> Vec<ToolCall> {
    let ids: std::collections::HashSet<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), calls.len(), "ids are unique: {calls:?}");
    calls
        .iter()
        .enumerate()
        .map(|(n, c)| {
            assert_synthetic(&c.id);
            call(&format!("call_{n}"), &c.name, &c.arguments)
        })
        .collect()
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

/// Non-streaming answer with one call that has an id.
const CALL_WITH_ID: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_a1b2c3d4","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":18,"eval_duration":45678901}"#;

/// Non-streaming answer with two calls and no ids (as older servers send them).
const CALLS_WITHOUT_IDS: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}},{"function":{"index":1,"name":"get_time","arguments":{"timezone":"Asia/Tokyo"}}}]},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":18,"eval_duration":45678901}"#;

/// The streamed counterpart: text, a call with an id, a call without one, the final line.
const STREAM: [&str; 4] = [
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"Checking \u003cnow\u003e."},"done":false}"#,
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.141516171Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_a1b2c3d4","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}"#,
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.150000001Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":1,"name":"get_time","arguments":{"timezone":"Asia/Tokyo"}}}]},"done":false}"#,
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":18,"eval_duration":45678901}"#,
];

/// A plain text answer (section 3.10).
const TEXT: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

fn conversation() -> LlmRequest {
    LlmRequest::from_messages(vec![
        Message::user("What is the weather in Tokyo?"),
        Message::assistant_tool_calls(
            "",
            vec![call("call_a1b2c3d4", "get_weather", r#"{"city":"Tokyo"}"#)],
        ),
        Message::tool_result("call_a1b2c3d4", "11 degrees celsius"),
    ])
    .tool(weather())
    .tool(time())
}

#[tokio::test]
async fn tools_and_a_tool_conversation_are_sent_in_ollama_shape() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
    let p = provider(&server);
    assert!(p.supports_tools());
    p.generate(&conversation().tool_choice(ToolChoice::Auto))
        .await
        .unwrap();
    let sent = &server.requests()[0];
    let body = sent.json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "What is the weather in Tokyo?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_a1b2c3d4", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}}
            ]},
            {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather", "tool_call_id": "call_a1b2c3d4"}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city",
                "parameters": {"type":"object","properties":{"city":{"type":"string","description":"The name of the city"}},"required":["city"]}}},
            {"type": "function", "function": {"name": "get_time",
                "parameters": {"type":"object","properties":{"timezone":{"type":"string"}}}}}
        ])
    );
    assert!(
        body.get("tool_choice").is_none(),
        "Ollama has no tool_choice"
    );
    // Message keys in Go field order.
    let raw = String::from_utf8(sent.body.clone()).unwrap();
    assert!(
        raw.contains(r#"{"role":"assistant","content":"","tool_calls":[{"id":"call_a1b2c3d4","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]}"#),
        "{raw}"
    );
    assert!(
        raw.contains(r#"{"role":"tool","content":"11 degrees celsius","tool_name":"get_weather","tool_call_id":"call_a1b2c3d4"}"#),
        "{raw}"
    );
}

#[tokio::test]
async fn tool_choice_decides_which_tools_are_sent() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
    let p = provider(&server);
    let names = |body: &serde_json::Value| -> Option<Vec<String>> {
        body.get("tools").map(|t| {
            t.as_array()
                .unwrap()
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
    };
    let base = LlmRequest::new("Weather and time in Tokyo?")
        .tool(weather())
        .tool(time());
    for (choice, want) in [
        (None, Some(vec!["get_weather", "get_time"])),
        (
            Some(ToolChoice::Auto),
            Some(vec!["get_weather", "get_time"]),
        ),
        // `required` and a named function cannot be honoured: refused (see
        // fidelity.rs), never downgraded.
        (Some(ToolChoice::None), None),
    ] {
        server.reset();
        server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
        let mut req = base.clone();
        req.tool_choice = choice.clone();
        p.generate(&req).await.unwrap();
        let body = server.requests().last().unwrap().json();
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&body), want, "{choice:?}");
        assert!(body.get("tool_choice").is_none());
    }
}

#[tokio::test]
async fn tool_choice_none_still_sends_the_tool_history() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
    let p = provider(&server);
    let r = p
        .generate(&conversation().tool_choice(ToolChoice::None))
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls.is_empty());
    let body = server.requests()[0].json();
    assert!(body.get("tools").is_none(), "{body}");
    assert_eq!(body["messages"][1]["tool_calls"][0]["id"], "call_a1b2c3d4");
    assert_eq!(body["messages"][2]["tool_name"], "get_weather");
}

#[tokio::test]
async fn non_streamed_tool_call_is_mapped() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, CALL_WITH_ID));
    let r = provider(&server)
        .generate(&LlmRequest::new("What is the weather in Tokyo?").tool(weather()))
        .await
        .unwrap();
    assert_eq!(r.content, "");
    assert_eq!(
        r.tool_calls,
        vec![call("call_a1b2c3d4", "get_weather", r#"{"city":"Tokyo"}"#)]
    );
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.usage, Usage::new(31, 18));
}

#[tokio::test]
async fn missing_ids_are_random_and_unique_in_generate_and_stream() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(200, JSON, CALLS_WITHOUT_IDS),
    );
    let p = provider(&server);
    let req = LlmRequest::new("Weather and time in Tokyo?")
        .tool(weather())
        .tool(time());
    let want = vec![
        call("call_0", "get_weather", r#"{"city":"Tokyo"}"#),
        call("call_1", "get_time", r#"{"timezone":"Asia/Tokyo"}"#),
    ];
    let first = p.generate(&req).await.unwrap();
    assert_eq!(positional(&first.tool_calls), want);
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    // The same answer again (a later turn) gets other ids.
    let again = p.generate(&req).await.unwrap();
    assert_eq!(positional(&again.tool_calls), want);

    server.reset();
    server.on("POST", "/api/chat", chunked(&[CALLS_WITHOUT_IDS]));
    let streamed = p
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(positional(&streamed.tool_calls), want);
    assert_eq!(streamed.finish_reason, FinishReason::ToolCalls);

    let all: Vec<&ToolCall> = [&first, &again, &streamed]
        .iter()
        .flat_map(|r| &r.tool_calls)
        .collect();
    let ids: std::collections::HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 6, "no id repeats across responses: {all:?}");
}

#[tokio::test]
async fn streamed_tool_calls_are_one_fragment_each_and_keep_text_and_usage() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", chunked(&STREAM));
    let p = provider(&server);
    let req = LlmRequest::new("Weather and time in Tokyo?")
        .tool(weather())
        .tool(time());
    let events: Vec<StreamEvent> = p
        .stream(&req)
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(server.requests()[0].json()["stream"], true);
    // The second call came without an id.
    let Some(StreamEvent::ToolCall { id: Some(made), .. }) = events.get(2) else {
        panic!("{events:?}");
    };
    let made = made.clone();
    assert_synthetic(&made);
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Checking <now>."),
            StreamEvent::ToolCall {
                index: 0,
                id: Some("call_a1b2c3d4".into()),
                name: Some("get_weather".into()),
                arguments: r#"{"city":"Tokyo"}"#.into(),
            },
            StreamEvent::ToolCall {
                index: 1,
                id: Some(made.clone()),
                name: Some("get_time".into()),
                arguments: r#"{"timezone":"Asia/Tokyo"}"#.into(),
            },
            StreamEvent::Usage {
                usage: Usage::new(31, 18)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls
            },
        ]
    );
    let mut assembler = ToolCallAssembler::default();
    for e in &events {
        assembler.push_event(e);
    }
    assert_eq!(
        assembler.finish(),
        vec![
            call("call_a1b2c3d4", "get_weather", r#"{"city":"Tokyo"}"#),
            call(&made, "get_time", r#"{"timezone":"Asia/Tokyo"}"#),
        ]
    );
}

#[tokio::test]
async fn length_stop_with_tool_calls_stays_length() {
    let server = MockServer::start().await.unwrap();
    let body = CALL_WITH_ID.replace(r#""done_reason":"stop""#, r#""done_reason":"length""#);
    server.on("POST", "/api/chat", MockReply::new(200, JSON, body));
    let r = provider(&server)
        .generate(&LlmRequest::new("x").tool(weather()))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.tool_calls.len(), 1);
}

#[tokio::test]
async fn round_trip_user_call_result_answer() {
    let server = MockServer::start().await.unwrap();
    // First turn: the model calls a tool (no id); second turn: it answers.
    server.on_times(
        "POST",
        "/api/chat",
        MockReply::new(200, JSON, CALLS_WITHOUT_IDS),
        1,
    );
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(
            200,
            JSON,
            r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:03.160129032Z","message":{"role":"assistant","content":"It is 11 °C in Tokyo at 19:05."},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":64,"prompt_eval_duration":98765432,"eval_count":12,"eval_duration":45678901}"#,
        ),
    );
    let p = provider(&server);
    let mut req = LlmRequest::new("Weather and time in Tokyo?")
        .tool(weather())
        .tool(time());
    let first = p.generate(&req).await.unwrap();
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    req.messages.push(Message::assistant_tool_calls(
        first.content.clone(),
        first.tool_calls.clone(),
    ));
    let (weather_id, time_id) = (&first.tool_calls[0].id, &first.tool_calls[1].id);
    assert_synthetic(weather_id);
    assert_synthetic(time_id);
    req.messages
        .push(Message::tool_result(weather_id, "11 degrees celsius"));
    req.messages.push(Message::tool_result(time_id, "19:05"));
    let second = p.generate(&req).await.unwrap();
    assert_eq!(second.content, "It is 11 °C in Tokyo at 19:05.");
    assert_eq!(second.finish_reason, FinishReason::Stop);
    assert!(second.tool_calls.is_empty());

    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].json()["messages"],
        json!([
            {"role": "user", "content": "Weather and time in Tokyo?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": weather_id, "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}},
                {"id": time_id, "function": {"index": 1, "name": "get_time", "arguments": {"timezone": "Asia/Tokyo"}}}
            ]},
            {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather", "tool_call_id": weather_id},
            {"role": "tool", "content": "19:05", "tool_name": "get_time", "tool_call_id": time_id}
        ])
    );
}

#[tokio::test]
async fn repeated_ids_name_the_nearest_call() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
    let req = LlmRequest::from_messages(vec![
        Message::user("Weather, then time?"),
        Message::assistant_tool_calls("", vec![call("call_0", "get_weather", "{}")]),
        Message::tool_result("call_0", "11 degrees celsius"),
        Message::assistant_tool_calls("", vec![call("call_0", "get_time", "")]),
        Message::tool_result("call_0", "19:05"),
        // A result whose call is not in the conversation: no tool_name.
        Message::tool_result("call_unknown", "?"),
    ])
    .tool(weather())
    .tool(time());
    provider(&server).generate(&req).await.unwrap();
    let m = &server.requests()[0].json()["messages"];
    assert_eq!(m[2]["tool_name"], "get_weather");
    assert_eq!(m[3]["tool_calls"][0]["function"]["arguments"], json!({}));
    assert_eq!(m[4]["tool_name"], "get_time");
    assert!(m[5].get("tool_name").is_none(), "{m}");
    assert_eq!(m[5]["tool_call_id"], "call_unknown");
}

#[tokio::test]
async fn assistant_arguments_that_are_not_an_object_fail_before_sending() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, TEXT));
    let p = provider(&server);
    for args in [r#"["Tokyo"]"#, r#"{"city":"#, "\"Tokyo\""] {
        let req = LlmRequest::from_messages(vec![
            Message::user("Weather?"),
            Message::assistant_tool_calls("", vec![call("call_x", "get_weather", args)]),
            Message::tool_result("call_x", "11 degrees celsius"),
        ])
        .tool(weather());
        for streamed in [false, true] {
            let err = if streamed {
                p.stream(&req).await.unwrap_err()
            } else {
                p.generate(&req).await.unwrap_err()
            };
            assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
            assert_ne!(err.class(), ErrorClass::Retryable);
            assert!(err.message.contains("message 1"), "{err}");
            assert!(err.message.contains("`call_x` (`get_weather`)"), "{err}");
            assert!(err.message.contains("JSON object"), "{err}");
        }
    }
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn malformed_tool_calls_from_the_server_are_clear_errors() {
    let bad_args = CALL_WITH_ID.replace(r#"{"city":"Tokyo"}"#, "42");
    let no_name = CALL_WITH_ID.replace(r#""name":"get_weather","#, "");
    for (body, says) in [
        (
            bad_args.as_str(),
            "tool call 0 (`call_a1b2c3d4`, `get_weather`): `function.arguments` must be a JSON object, got a number",
        ),
        (
            no_name.as_str(),
            "tool call 0 (`call_a1b2c3d4`) has no `function.name`",
        ),
    ] {
        let server = MockServer::start().await.unwrap();
        server.on("POST", "/api/chat", MockReply::new(200, JSON, body));
        let p = provider(&server);
        let req = LlmRequest::new("x").tool(weather());
        let err = p.generate(&req).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");
        assert!(err.message.contains(says), "{err}");

        server.reset();
        server.on("POST", "/api/chat", chunked(&[STREAM[0], body]));
        let mut stream = p.stream(&req).await.unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            StreamEvent::delta("Checking <now>.")
        );
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");
        assert!(err.message.contains(says), "{err}");
        assert!(stream.next().await.is_none());
    }
}

#[tokio::test]
async fn lenient_tool_call_shapes_are_mapped() {
    // `arguments` as JSON text (OpenAI-style proxies), absent, or null; an empty id.
    let body = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"","function":{"index":0,"name":"get_weather","arguments":"{\"city\":\"Tokyo\"}"}},{"function":{"index":1,"name":"get_time"}},{"function":{"index":2,"name":"get_time","arguments":null}}]},"done":true,"done_reason":"stop","eval_count":18}"#;
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/chat", MockReply::new(200, JSON, body));
    let r = provider(&server)
        .generate(&LlmRequest::new("x").tool(weather()).tool(time()))
        .await
        .unwrap();
    assert_eq!(
        positional(&r.tool_calls),
        vec![
            call("call_0", "get_weather", r#"{"city":"Tokyo"}"#),
            call("call_1", "get_time", "{}"),
            call("call_2", "get_time", "{}"),
        ]
    );
}

#[tokio::test]
async fn model_without_tool_support_is_a_clear_fallback_error() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "POST",
        "/api/chat",
        MockReply::new(
            400,
            JSON,
            r#"{"error":"registry.ollama.ai/library/gemma:2b does not support tools"}"#,
        ),
    );
    let p = provider(&server);
    let req = LlmRequest::new("x").tool(weather());
    for err in [
        p.generate(&req).await.unwrap_err(),
        p.stream(&req).await.unwrap_err(),
    ] {
        assert_eq!(err.status, Some(400));
        assert_eq!(err.class(), ErrorClass::Fallback, "not retried");
        assert_eq!(err.code.as_deref(), Some("tools_not_supported"));
        assert!(err.message.contains("does not support tools"), "{err}");
        assert!(err.message.contains("`ollama show llama3.2`"), "{err}");
    }
}

#[tokio::test]
async fn generate_api_cannot_carry_tools() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", "/api/generate", MockReply::new(200, JSON, TEXT));
    let p = OllamaProvider::from_spec(&spec(&server).option("api", "generate")).unwrap();
    assert!(!p.supports_tools());
    for req in [LlmRequest::new("x").tool(weather()), conversation()] {
        let err = p.generate(&req).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
        assert!(err.message.starts_with("tools: "), "{err}");
        assert!(err.message.contains("api = \"chat\""), "{err}");
        let err = p.stream(&req).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{err}");
    }
    assert!(server.requests().is_empty());
}
