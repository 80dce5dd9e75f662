//! Tool calling: request mapping, tool calls in answers and streams, and
//! malformed tool data, against a mock server with protocols.md §2 bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    FinishReason, LlmRequest, Message, Provider, ProviderErrorKind, ProviderProfile, ProviderSpec,
    StreamEvent, Tool, ToolCall, ToolCallAssembler, ToolChoice, Usage,
};
use llm_openai::fixtures::{TOOL_CALL_COMPLETION, TOOL_CALL_STREAM};
use llm_openai::OpenAiProvider;
use serde_json::{json, Value};

const CHAT: &str = "/v1/chat/completions";

fn provider(server: &MockServer) -> OpenAiProvider {
    let profile = ProviderProfile {
        default_model: Some("gpt-4o-mini".into()),
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let spec = ProviderSpec::new("oai", "openai", profile)
        .option("base_url", format!("{}/v1", server.url()))
        .option("api_key", "sk-tools-test");
    OpenAiProvider::from_spec(&spec).unwrap()
}

fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        events.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
}

/// A compact chunk of the §2.6 stream with the given `choices` and `usage` JSON.
fn chunk(choices: &str, usage: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-T\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":{choices},\"usage\":{usage},\"obfuscation\":\"x\"}}\n\n"
    )
}

/// A non-streaming answer whose message is `message` (JSON).
fn answer(message: &str, finish: &str) -> MockReply {
    MockReply::json(
        200,
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1756300000,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"message":{message},"logprobs":null,"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}}}"#
        ),
    )
}

fn last_post(server: &MockServer) -> RecordedRequest {
    server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .expect("a POST was sent")
}

/// Schema keys in sorted order, so the request bytes are the same whether or
/// not serde_json's `preserve_order` feature is on in the build.
fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather in a city",
        json!({"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}),
    )
}

fn paris_call() -> ToolCall {
    ToolCall {
        id: "call_abc123".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }
}

async fn events(p: &OpenAiProvider, req: &LlmRequest) -> Vec<StreamEvent> {
    let stream = p.stream(req).await.unwrap();
    stream.map(|e| e.unwrap()).collect().await
}

fn assemble(events: &[StreamEvent]) -> Vec<ToolCall> {
    let mut calls = ToolCallAssembler::default();
    for e in events {
        calls.push_event(e);
    }
    calls.finish()
}

#[tokio::test]
async fn openai_claims_tool_support() {
    let server = MockServer::start().await.unwrap();
    assert!(provider(&server).supports_tools());
}

#[tokio::test]
async fn tools_and_tool_choice_are_sent_in_the_documented_shape() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, TOOL_CALL_COMPLETION));
    let p = provider(&server);
    let no_description = Tool {
        name: "now".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {}}),
    };
    let req = LlmRequest::new("Weather in Paris?")
        .tool(weather_tool())
        .tool(no_description)
        .tool_choice(ToolChoice::Auto);
    p.generate(&req).await.unwrap();
    let body = last_post(&server).json();
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ])
    );
    assert_eq!(body["tool_choice"], "auto");

    for (choice, wire) in [
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Function("get_weather".into()),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ] {
        p.generate(&req.clone().tool_choice(choice)).await.unwrap();
        assert_eq!(last_post(&server).json()["tool_choice"], wire);
    }

    // No choice: the field is absent (the API's default applies); no tools:
    // neither field is sent (OpenAI rejects `tool_choice` without `tools`).
    let mut no_choice = req.clone();
    no_choice.tool_choice = None;
    p.generate(&no_choice).await.unwrap();
    assert!(last_post(&server).json().get("tool_choice").is_none());
    p.generate(&LlmRequest::new("hi").tool_choice(ToolChoice::None))
        .await
        .unwrap();
    let body = last_post(&server).json();
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());

    // `parallel_tool_calls` as set, with tools only.
    assert!(last_post(&server)
        .json()
        .get("parallel_tool_calls")
        .is_none());
    for allowed in [false, true] {
        p.generate(&req.clone().parallel_tool_calls(allowed))
            .await
            .unwrap();
        assert_eq!(last_post(&server).json()["parallel_tool_calls"], allowed);
    }
    p.generate(&LlmRequest::new("hi").parallel_tool_calls(false))
        .await
        .unwrap();
    assert!(last_post(&server)
        .json()
        .get("parallel_tool_calls")
        .is_none());
}

#[tokio::test]
async fn a_tool_call_answer_is_mapped() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, TOOL_CALL_COMPLETION));
    let p = provider(&server);
    let r = p
        .generate(&LlmRequest::new("Weather in Paris?").tool(weather_tool()))
        .await
        .unwrap();
    assert_eq!(r.content, "");
    assert_eq!(r.tool_calls, vec![paris_call()]);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.usage, Usage::new(58, 15));
    assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
}

#[tokio::test]
async fn a_round_trip_conversation_is_sent_as_documented() {
    let server = MockServer::start().await.unwrap();
    server.on_times("POST", CHAT, MockReply::json(200, TOOL_CALL_COMPLETION), 1);
    server.on(
        "POST",
        CHAT,
        answer(
            r#"{"role":"assistant","content":"18°C and cloudy in Paris."}"#,
            "stop",
        ),
    );
    let p = provider(&server);
    let ask = LlmRequest::new("Weather in Paris?").tool(weather_tool());
    let first = p.generate(&ask).await.unwrap();

    let follow_up = ask
        .clone()
        .message(Message::assistant_tool_calls(
            first.content,
            first.tool_calls,
        ))
        .message(Message::tool_result("call_abc123", "18°C, cloudy"));
    let second = p.generate(&follow_up).await.unwrap();
    assert_eq!(second.content, "18°C and cloudy in Paris.");
    assert_eq!(second.finish_reason, FinishReason::Stop);
    assert!(second.tool_calls.is_empty());

    let sent = last_post(&server);
    // The two messages of protocols.md §2.1.1, verbatim.
    let documented: Vec<Value> = [
        r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}"#,
        r#"{"role": "tool", "tool_call_id": "call_abc123", "content": "18°C, cloudy"}"#,
    ]
    .iter()
    .map(|m| serde_json::from_str(m).unwrap())
    .collect();
    let body = sent.json();
    assert_eq!(body["messages"].as_array().unwrap()[1..], documented[..]);
    assert_eq!(
        String::from_utf8(sent.body.clone()).unwrap(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_abc123","content":"18°C, cloudy"}],"temperature":0.7,"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city","parameters":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}}}]}"#
    );
}

#[tokio::test]
async fn an_assistant_message_with_text_and_tool_calls_keeps_its_text() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, TOOL_CALL_COMPLETION));
    let p = provider(&server);
    let req = LlmRequest::from_messages(vec![
        Message::user("Weather in Paris?"),
        Message::assistant_tool_calls("Let me check.", vec![paris_call()]),
        Message::tool_result("call_abc123", "18°C, cloudy"),
    ])
    .tool(weather_tool());
    p.generate(&req).await.unwrap();
    assert_eq!(
        last_post(&server).json()["messages"][1],
        json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]})
    );
}

#[tokio::test]
async fn a_streamed_tool_call_is_yielded_as_fragments() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, sse(TOOL_CALL_STREAM));
    let p = provider(&server);
    let req = LlmRequest::new("Weather in Paris?").tool(weather_tool());
    let events = events(&p, &req).await;
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                index: 0,
                id: Some("call_abc123".into()),
                name: Some("get_weather".into()),
                arguments: String::new(),
            },
            StreamEvent::ToolCall {
                index: 0,
                id: None,
                name: None,
                arguments: r#"{"city":"#.into(),
            },
            StreamEvent::ToolCall {
                index: 0,
                id: None,
                name: None,
                arguments: r#""Paris"}"#.into(),
            },
            StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls
            },
        ]
    );
    assert_eq!(assemble(&events), vec![paris_call()]);
    let body = last_post(&server).json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");

    let r = p
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.tool_calls, vec![paris_call()]);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn text_parallel_tool_calls_and_usage_all_survive_a_stream() {
    // Two calls in one response (§2.3's delta shape; `parallel_tool_calls`
    // defaults to true), after some text, with the include_usage chunk.
    let second_start = r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_def456","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}]"#;
    let stream = [
        chunk(
            r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"content":"Checking."},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(second_start, "null"),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":\"CET\"}"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]"#,
            "null",
        ),
        chunk(
            "[]",
            r#"{"prompt_tokens":80,"completion_tokens":40,"total_tokens":120}"#,
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    let server = MockServer::start().await.unwrap();
    let refs: Vec<&str> = stream.iter().map(String::as_str).collect();
    server.on("POST", CHAT, sse(&refs));
    let p = provider(&server);
    let r = p
        .stream(&LlmRequest::new("Weather and time in Paris?").tool(weather_tool()))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Checking.");
    assert_eq!(
        r.tool_calls,
        vec![
            paris_call(),
            ToolCall {
                id: "call_def456".into(),
                name: "get_time".into(),
                arguments: r#"{"tz":"CET"}"#.into(),
            }
        ]
    );
    assert_eq!(r.usage, Usage::new(80, 40));
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_replays_its_tool_calls() {
    let server = MockServer::start().await.unwrap();
    server.on("POST", CHAT, MockReply::json(200, TOOL_CALL_COMPLETION));
    let p = provider(&server);
    let events = events(&p, &LlmRequest::new("Weather?").tool(weather_tool())).await;
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                index: 0,
                id: Some("call_abc123".into()),
                name: Some("get_weather".into()),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
            StreamEvent::Usage {
                usage: Usage::new(58, 15)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls
            },
        ]
    );
}

#[tokio::test]
async fn lenient_tool_data_is_mapped() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    let req = LlmRequest::new("Weather?").tool(weather_tool());

    // Arguments as an object (some compatible servers) become its JSON text;
    // "stop" with tool calls becomes ToolCalls; no arguments is "".
    server.on_times(
        "POST",
        CHAT,
        answer(
            r#"{"role":"assistant","content":"","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}},
                {"id":"call_2","function":{"name":"now"}}]}"#,
            "stop",
        ),
        1,
    );
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(r.tool_calls[1].arguments, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);

    // `tool_calls: null` is no tool calls.
    server.on_times(
        "POST",
        CHAT,
        answer(
            r#"{"role":"assistant","content":"Hi","tool_calls":null}"#,
            "stop",
        ),
        1,
    );
    let r = p.generate(&req).await.unwrap();
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

/// `call_` and 24 ASCII alphanumerics: the shape of a synthesized call id.
fn assert_synthesized(id: &str) {
    assert_eq!(id.len(), 29, "{id}");
    assert!(id.starts_with("call_"), "{id}");
    assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
}

#[tokio::test]
async fn a_tool_call_without_an_id_gets_a_synthesized_one() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    let req = LlmRequest::new("Weather?").tool(weather_tool());
    // No `id`, then an empty one, then a real one (kept as sent).
    server.on_times(
        "POST",
        CHAT,
        answer(
            r#"{"role":"assistant","content":null,"tool_calls":[
                {"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}},
                {"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}"#,
            "tool_calls",
        ),
        1,
    );
    let r = p.generate(&req).await.unwrap();
    assert_eq!(r.tool_calls.len(), 3);
    assert_synthesized(&r.tool_calls[0].id);
    assert_synthesized(&r.tool_calls[1].id);
    assert_ne!(r.tool_calls[0].id, r.tool_calls[1].id);
    assert_eq!(r.tool_calls[2].id, "call_abc123");
    assert_eq!(r.tool_calls[0].name, "get_weather");
    assert_eq!(r.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(r.tool_calls[1].arguments, r#"{"city":"Rome"}"#);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);

    // The synthesized id round-trips: a tool result naming it is sent as is.
    let call = r.tool_calls[0].clone();
    server.on_times(
        "POST",
        CHAT,
        answer(r#"{"role":"assistant","content":"Sunny."}"#, "stop"),
        1,
    );
    let follow_up = LlmRequest::from_messages(vec![
        Message::user("Weather?"),
        Message::assistant_tool_calls("", vec![call.clone()]),
        Message::tool_result(call.id.clone(), "18 °C"),
    ])
    .tool(weather_tool());
    p.generate(&follow_up).await.unwrap();
    let body = last_post(&server).json();
    assert_eq!(body["messages"][1]["tool_calls"][0]["id"], json!(call.id));
    assert_eq!(body["messages"][2]["tool_call_id"], json!(call.id));
}

#[tokio::test]
async fn a_tool_call_without_a_name_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    let p = provider(&server);
    let req = LlmRequest::new("Weather?").tool(weather_tool());
    for message in [
        r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"arguments":"{}"}}]}"#,
        r#"{"role":"assistant","content":null,"tool_calls":[{"id":"","type":"function"}]}"#,
        r#"{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"","arguments":"{}"}}]}"#,
    ] {
        server.on_times("POST", CHAT, answer(message, "tool_calls"), 1);
        let e = p.generate(&req).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Decode, "{message}");
        assert!(e.message.contains("tool call 0"), "{}", e.message);
        assert!(e.message.contains("`function.name`"), "{}", e.message);
    }

    // `tool_calls` of the wrong type: the body does not decode.
    server.on_times(
        "POST",
        CHAT,
        answer(
            r#"{"role":"assistant","tool_calls":"get_weather"}"#,
            "tool_calls",
        ),
        1,
    );
    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Decode);
}

#[tokio::test]
async fn streamed_calls_without_an_id_get_distinct_synthesized_ids() {
    // Shaped like the §2.6 tool-call stream, but with the `id`s left out (as
    // some compatible servers send it) and a second call: two calls, each
    // continued by id-less deltas.
    let stream = [
        chunk(
            r#"[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"Rome\"}"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]"#,
            "null",
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    let server = MockServer::start().await.unwrap();
    let refs: Vec<&str> = stream.iter().map(String::as_str).collect();
    server.on("POST", CHAT, sse(&refs));
    let p = provider(&server);
    let events = events(&p, &LlmRequest::new("Weather?").tool(weather_tool())).await;
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls
        })
    );
    let calls = assemble(&events);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_synthesized(&calls[0].id);
    assert_synthesized(&calls[1].id);
    assert_ne!(calls[0].id, calls[1].id);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(calls[1].arguments, r#"{"city":"Rome"}"#);
}

#[tokio::test]
async fn a_streamed_call_that_starts_without_a_name_is_an_error_item() {
    let stream = [
        chunk(
            r#"[{"index":0,"delta":{"content":"Hm."},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]"#,
            "null",
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    let server = MockServer::start().await.unwrap();
    let refs: Vec<&str> = stream.iter().map(String::as_str).collect();
    server.on("POST", CHAT, sse(&refs));
    let p = provider(&server);
    let items: Vec<_> = p
        .stream(&LlmRequest::new("Weather?").tool(weather_tool()))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0], Ok(StreamEvent::delta("Hm.")));
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Decode);
    assert!(
        e.message.contains("without a `function.name`"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn streamed_calls_without_distinct_indexes_are_told_apart_by_id() {
    // Whole calls in one delta each, all numbered 0 or not numbered at all.
    let stream = [
        chunk(
            r#"[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"\"Rome\"}"}}]},"finish_reason":null}]"#,
            "null",
        ),
        chunk(
            r#"[{"index":0,"delta":{},"finish_reason":"tool_calls"}]"#,
            "null",
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    let server = MockServer::start().await.unwrap();
    let refs: Vec<&str> = stream.iter().map(String::as_str).collect();
    server.on("POST", CHAT, sse(&refs));
    let p = provider(&server);
    let events = events(&p, &LlmRequest::new("Weather?").tool(weather_tool())).await;
    let calls = assemble(&events);
    assert_eq!(
        calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
            ToolCall {
                id: "call_2".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Rome"}"#.into(),
            }
        ]
    );
}
