//! Tool calling over real HTTP against the mock server: the request shape
//! (tools, tool_choice, tool_use and tool_result blocks), tool calls in
//! answers and in streams, a full round trip, and malformed tool data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use futures::StreamExt;
use llm_core::testing::{MockReply, MockServer, RecordedRequest};
use llm_core::{
    FinishReason, LlmRequest, Message, Provider, ProviderError, ProviderErrorKind, ProviderProfile,
    ProviderSpec, StreamEvent, Tool, ToolCall, ToolCallAssembler, ToolChoice, Usage,
};
use serde_json::json;

use common::*;

fn provider(server: &MockServer) -> Arc<dyn Provider> {
    let profile = ProviderProfile {
        default_model: Some(MODEL.into()),
        ..ProviderProfile::default()
    };
    let spec = ProviderSpec::new("claude", "anthropic", profile)
        .option("api_key", SECRET)
        .option("base_url", server.url());
    llm_anthropic::build(&spec).unwrap()
}

async fn server(reply: MockReply) -> MockServer {
    let s = MockServer::start().await.unwrap();
    s.on("POST", "/v1/messages", reply);
    s
}

fn posts(server: &MockServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect()
}

fn stock_tool() -> Tool {
    Tool::function(
        "get_stock_price",
        "Current price of a stock",
        json!({"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}),
    )
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather in a location",
        json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
    )
}

/// The 4.1 example call.
fn stock_call() -> ToolCall {
    ToolCall {
        id: "toolu_01D7FLrfh4GYq7yT1ULFeyMV".into(),
        name: "get_stock_price".into(),
        arguments: r#"{"ticker":"^GSPC"}"#.into(),
    }
}

async fn collect(
    p: &Arc<dyn Provider>,
    req: &LlmRequest,
) -> Vec<Result<StreamEvent, ProviderError>> {
    p.stream(req).await.expect("stream opens").collect().await
}

#[test]
fn the_provider_supports_tools() {
    let spec = ProviderSpec::new("c", "anthropic", ProviderProfile::default());
    assert!(llm_anthropic::build(&spec).unwrap().supports_tools());
}

#[tokio::test]
async fn tools_and_every_tool_choice_are_sent_in_the_documented_shape() {
    let cases = [
        (ToolChoice::Auto, json!({"type": "auto"})),
        (ToolChoice::Required, json!({"type": "any"})),
        (
            ToolChoice::Function("get_stock_price".into()),
            json!({"type": "tool", "name": "get_stock_price"}),
        ),
        (ToolChoice::None, json!({"type": "none"})),
    ];
    for (choice, wire) in cases {
        let s = server(completion()).await;
        let req = LlmRequest::new("What is the S&P 500 at?")
            .tool(stock_tool())
            .tool(Tool {
                name: "no_args".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
            })
            .tool_choice(choice)
            .max_tokens(256)
            .temperature(0.2);
        provider(&s).generate(&req).await.unwrap();
        let body = posts(&s)[0].json();
        assert_eq!(
            body,
            json!({
                "model": MODEL,
                "max_tokens": 256,
                "messages": [{"role": "user", "content": "What is the S&P 500 at?"}],
                "temperature": body["temperature"].clone(),
                "tools": [
                    {
                        "name": "get_stock_price",
                        "description": "Current price of a stock",
                        "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}
                    },
                    {"name": "no_args", "input_schema": {"type": "object", "properties": {}}}
                ],
                "tool_choice": wire
            })
        );
    }

    // No tool_choice: the field is left out (the API's default, auto).
    let s = server(completion()).await;
    let req = LlmRequest::new("x").tool(stock_tool());
    provider(&s).generate(&req).await.unwrap();
    let body = posts(&s)[0].json();
    assert!(body.get("tool_choice").is_none(), "{body}");
    assert_eq!(body["tools"][0]["name"], json!("get_stock_price"));

    // Without tools neither field is sent, and plain text turns stay strings.
    let s = server(completion()).await;
    let req = LlmRequest::new("x").tool_choice(ToolChoice::None);
    provider(&s).generate(&req).await.unwrap();
    let sent = String::from_utf8(posts(&s)[0].body.clone()).unwrap();
    assert!(!sent.contains("tool"), "{sent}");
    assert!(
        sent.contains(r#""messages":[{"role":"user","content":"x"}]"#),
        "{sent}"
    );
}

#[tokio::test]
async fn a_tool_use_answer_becomes_tool_calls() {
    let s = server(MockReply::json(200, TOOL_COMPLETION)).await;
    let r = provider(&s)
        .generate(&LlmRequest::new("S&P?").tool(stock_tool()))
        .await
        .unwrap();
    assert_eq!(r.content, "Checking the index.");
    assert_eq!(r.tool_calls, vec![stock_call()]);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.usage, Usage::new(380, 54));
}

#[tokio::test]
async fn a_streamed_tool_call_comes_in_fragments_with_its_text() {
    let s = server(sse(STREAM_TOOL_EVENTS)).await;
    let p = provider(&s);
    let req = LlmRequest::new("Weather in Paris?").tool(weather_tool());
    let events: Vec<StreamEvent> = collect(&p, &req)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let fragment = |id: Option<&str>, name: Option<&str>, args: &str| StreamEvent::ToolCall {
        // Anthropic's block index is 1; this is the first tool call.
        index: 0,
        id: id.map(Into::into),
        name: name.map(Into::into),
        arguments: args.into(),
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Let me check."),
            fragment(
                Some("toolu_01NRLabsLyVHZPKxbKvkfSMn"),
                Some("get_weather"),
                ""
            ),
            fragment(None, None, "{\"locati"),
            fragment(None, None, "on\": \"P"),
            fragment(None, None, "ar"),
            fragment(None, None, "is\"}"),
            StreamEvent::Usage {
                usage: Usage::new(16, 65)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls
            },
        ]
    );
    let mut calls = ToolCallAssembler::default();
    for e in &events {
        calls.push_event(e);
    }
    let expected = ToolCall {
        id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
        name: "get_weather".into(),
        arguments: r#"{"location": "Paris"}"#.into(),
    };
    assert_eq!(calls.finish(), vec![expected.clone()]);

    let r = p
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Let me check.");
    assert_eq!(r.tool_calls, vec![expected]);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn several_streamed_calls_are_numbered_among_tool_blocks_only() {
    // Constructed in the 4.3 layout: a thinking block, two tool blocks (the
    // second with no arguments), a server tool block and a third tool block.
    let events = [
        STREAM_TOOL_EVENTS[0],
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Two cities.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\\\"Paris\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"now\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_C\",\"name\":\"web_search\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"query\\\":\\\"x\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":4,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_D\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\\\"Rome\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":4}\n\n",
        STREAM_TOOL_EVENTS[11],
        STREAM_TOOL_EVENTS[12],
    ];
    let s = server(sse(&events)).await;
    let r = provider(&s)
        .stream(&LlmRequest::new("Weather in Paris and Rome, and the time?"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let call = |id: &str, name: &str, args: &str| ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    };
    assert_eq!(
        r.tool_calls,
        vec![
            call("toolu_A", "get_weather", r#"{"location":"Paris"}"#),
            call("toolu_B", "now", "{}"),
            call("toolu_D", "get_weather", r#"{"location":"Rome"}"#),
        ]
    );
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn a_round_trip_sends_tool_use_then_tool_result_blocks() {
    let s = MockServer::start().await.unwrap();
    s.on_times(
        "POST",
        "/v1/messages",
        MockReply::json(200, TOOL_COMPLETION),
        1,
    );
    s.on("POST", "/v1/messages", completion());
    let p = provider(&s);

    let first = LlmRequest::new("What is the S&P 500 at?")
        .system("You are a terse assistant.")
        .tool(stock_tool())
        .max_tokens(256)
        .temperature(0.2);
    let r = p.generate(&first).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);

    let mut second = first.clone();
    second
        .messages
        .push(Message::assistant_tool_calls(r.content, r.tool_calls));
    second.messages.push(Message::tool_result(
        "toolu_01D7FLrfh4GYq7yT1ULFeyMV",
        "259.75 USD",
    ));
    second.messages.push(Message::user("Round it."));
    let answer = p.generate(&second).await.unwrap();
    assert_eq!(answer.content, "Hello!");

    let sent = posts(&s);
    assert_eq!(sent.len(), 2);
    let body = String::from_utf8(sent[1].body.clone()).unwrap();
    // The 4.1 example blocks, byte for byte (compact, as serialized).
    assert!(
        body.contains(r#"{"type":"tool_use","id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","name":"get_stock_price","input":{"ticker":"^GSPC"}}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"{"type":"tool_result","tool_use_id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","content":"259.75 USD"}"#),
        "{body}"
    );
    let body = sent[1].json();
    assert_eq!(body["system"], json!("You are a terse assistant."));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "What is the S&P 500 at?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking the index."},
                {"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "get_stock_price", "input": {"ticker": "^GSPC"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "content": "259.75 USD"},
                {"type": "text", "text": "Round it."}
            ]}
        ])
    );
    assert_eq!(body["tools"][0]["name"], json!("get_stock_price"));
}

#[tokio::test]
async fn consecutive_tool_results_merge_into_one_user_turn() {
    let s = server(completion()).await;
    let calls = vec![
        ToolCall {
            id: "toolu_A".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"Paris"}"#.into(),
        },
        ToolCall {
            id: "toolu_B".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"Rome"}"#.into(),
        },
    ];
    let req = LlmRequest::from_messages(vec![
        Message::user("Paris and Rome?"),
        Message::assistant_tool_calls("", calls),
        Message::tool_result("toolu_A", "18°C"),
        Message::tool_result("toolu_B", "24°C"),
    ])
    .tool(weather_tool());
    provider(&s).generate(&req).await.unwrap();
    assert_eq!(
        posts(&s)[0].json()["messages"],
        json!([
            {"role": "user", "content": "Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_B", "name": "get_weather", "input": {"location": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_B", "content": "24°C"}
            ]}
        ])
    );
}

#[tokio::test]
async fn arguments_that_are_not_an_object_fail_before_sending() {
    let s = server(completion()).await;
    let p = provider(&s);
    for args in ["[\"^GSPC\"]", "{\"ticker\":", "42"] {
        let mut call = stock_call();
        call.arguments = args.into();
        let req = LlmRequest::from_messages(vec![
            Message::user("S&P?"),
            Message::assistant_tool_calls("", vec![call]),
            Message::tool_result("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "259.75 USD"),
        ])
        .tool(stock_tool());
        for e in [
            p.generate(&req).await.unwrap_err(),
            p.stream(&req).await.unwrap_err(),
        ] {
            assert_eq!(e.kind, ProviderErrorKind::Unsupported, "{e}");
            assert_ne!(e.class(), llm_core::ErrorClass::Retryable, "{e}");
            assert!(
                e.message
                    .contains("tool call `toolu_01D7FLrfh4GYq7yT1ULFeyMV` (`get_stock_price`)"),
                "{e}"
            );
        }
    }
    assert!(posts(&s).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn malformed_tool_use_answers_are_decode_errors() {
    // Constructed from TOOL_COMPLETION: the block loses its id, its input
    // becomes a string, then a number.
    let cases = [
        (
            TOOL_COMPLETION.replace(r#""id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","#, ""),
            "no `id`",
        ),
        (
            TOOL_COMPLETION.replace(r#""name":"get_stock_price","#, ""),
            "no `name`",
        ),
        (
            TOOL_COMPLETION.replace(r#"{"ticker":"^GSPC"}"#, r#""{\"ticker\":\"^GSPC\"}""#),
            "not a JSON object",
        ),
        (
            TOOL_COMPLETION.replace(r#"{"ticker":"^GSPC"}"#, "7"),
            "not a JSON object",
        ),
    ];
    for (body, expected) in cases {
        assert_ne!(body, TOOL_COMPLETION);
        let s = server(MockReply::json(200, body).header("request-id", "req_tool")).await;
        let e = provider(&s)
            .generate(&LlmRequest::new("S&P?"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Decode, "{e}");
        assert!(e.message.contains(expected), "{e}");
        assert_eq!(e.request_id.as_deref(), Some("req_tool"));
    }

    // A missing input is read as no arguments.
    let body = TOOL_COMPLETION.replace(r#","input":{"ticker":"^GSPC"}"#, "");
    let s = server(MockReply::json(200, body)).await;
    let r = provider(&s)
        .generate(&LlmRequest::new("S&P?"))
        .await
        .unwrap();
    assert_eq!(r.tool_calls[0].arguments, "{}");
}

#[tokio::test]
async fn malformed_streamed_tool_data_ends_the_stream_with_a_decode_error() {
    let start = STREAM_TOOL_EVENTS[4];
    let cases: Vec<(Vec<String>, &str)> = vec![
        // The block start has no id.
        (
            vec![start.replace(r#""id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","#, "")],
            "no `id`",
        ),
        // A fragment that is not a string.
        (
            vec![
                start.to_string(),
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":5}}\n\n".into(),
            ],
            "invalid `content_block_delta` event",
        ),
        // Arguments that do not form an object, yet `stop_reason` `tool_use`.
        (
            vec![
                start.to_string(),
                STREAM_TOOL_EVENTS[6].to_string(),
                STREAM_TOOL_EVENTS[10].to_string(),
            ],
            "not valid JSON",
        ),
    ];
    for (middle, expected) in cases {
        assert!(
            middle.len() > 1 || middle[0] != start,
            "the fixture was changed"
        );
        let mut events: Vec<String> = STREAM_TOOL_EVENTS[..4]
            .iter()
            .map(|e| e.to_string())
            .collect();
        events.extend(middle);
        events.extend(STREAM_TOOL_EVENTS[11..].iter().map(|e| e.to_string()));
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        let s = server(sse(&refs)).await;
        let items = collect(&provider(&s), &LlmRequest::new("Weather?")).await;
        let (last, before) = items.split_last().unwrap();
        assert!(before.iter().all(Result::is_ok), "{items:?}");
        let e = last.as_ref().unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Decode, "{e}");
        assert!(e.message.contains(expected), "{e}");
        assert!(!items
            .iter()
            .any(|i| matches!(i, Ok(StreamEvent::Done { .. }))));
    }
}

/// The round trip's second turn without `tools`, as clients often send it.
fn history_without_tools() -> LlmRequest {
    LlmRequest::from_messages(vec![
        Message::user("What is the S&P 500 at?"),
        Message::assistant_tool_calls("Checking the index.", vec![stock_call()]),
        Message::tool_result("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "259.75 USD"),
    ])
    .max_tokens(256)
    .temperature(0.2)
}

#[tokio::test]
async fn tool_history_without_declared_tools_declares_the_called_tools_as_not_callable() {
    let s = server(completion()).await;
    let p = provider(&s);
    // A tool_choice the client set is overridden: the tools are not callable.
    let req = history_without_tools().tool_choice(ToolChoice::Auto);
    assert_eq!(p.generate(&req).await.unwrap().content, "Hello!");
    let sent = String::from_utf8(posts(&s)[0].body.clone()).unwrap();
    assert_eq!(
        sent,
        concat!(
            r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":256,"messages":["#,
            r#"{"role":"user","content":"What is the S&P 500 at?"},"#,
            r#"{"role":"assistant","content":[{"type":"text","text":"Checking the index."},"#,
            r#"{"type":"tool_use","id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","name":"get_stock_price","input":{"ticker":"^GSPC"}}]},"#,
            r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","content":"259.75 USD"}]}],"#,
            r#""temperature":0.2,"#,
            r#""tools":[{"name":"get_stock_price","input_schema":{"type":"object"}}],"#,
            r#""tool_choice":{"type":"none"}}"#
        )
    );

    // Streamed too; several tools, each declared once, in order of first use.
    let s = server(stream()).await;
    let mut req = history_without_tools();
    req.messages.push(Message::assistant_tool_calls(
        "",
        vec![
            ToolCall {
                id: "toolu_B".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Paris"}"#.into(),
            },
            ToolCall {
                id: "toolu_C".into(),
                name: "get_stock_price".into(),
                arguments: r#"{"ticker":"AAPL"}"#.into(),
            },
        ],
    ));
    req.messages.push(Message::tool_result("toolu_B", "18°C"));
    req.messages
        .push(Message::tool_result("toolu_C", "230 USD"));
    let r = provider(&s)
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    let body = posts(&s)[0].json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(
        body["tools"],
        json!([
            {"name": "get_stock_price", "input_schema": {"type": "object"}},
            {"name": "get_weather", "input_schema": {"type": "object"}}
        ])
    );
    assert_eq!(body["tool_choice"], json!({"type": "none"}));

    // Declared tools are sent unchanged, with the client's tool_choice.
    let s = server(completion()).await;
    let req = history_without_tools()
        .tool(stock_tool())
        .tool_choice(ToolChoice::Auto);
    provider(&s).generate(&req).await.unwrap();
    let body = posts(&s)[0].json();
    assert_eq!(
        body["tools"],
        json!([{
            "name": "get_stock_price",
            "description": "Current price of a stock",
            "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}
        }])
    );
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
}

/// [`STREAM_TOOL_EVENTS`] cut by `max_tokens` after its second argument
/// fragment (constructed: the block closes normally and the documented
/// `message_delta` carries `max_tokens`, as Anthropic ends a cut answer).
fn stream_cut_mid_arguments(stop_reason: &str) -> Vec<String> {
    let mut events: Vec<String> = STREAM_TOOL_EVENTS[..8]
        .iter()
        .map(|e| e.to_string())
        .collect();
    events.push(STREAM_TOOL_EVENTS[10].to_string());
    let delta = STREAM_TOOL_EVENTS[11].replace(
        r#""stop_reason":"tool_use""#,
        &format!(r#""stop_reason":"{stop_reason}""#),
    );
    if stop_reason != "tool_use" {
        assert_ne!(delta, STREAM_TOOL_EVENTS[11], "the fixture was changed");
    }
    events.push(delta);
    events.push(STREAM_TOOL_EVENTS[12].to_string());
    events
}

#[tokio::test]
async fn a_stream_cut_by_max_tokens_mid_arguments_ends_with_length() {
    let events = stream_cut_mid_arguments("max_tokens");
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let s = server(sse(&refs)).await;
    let p = provider(&s);
    let req = LlmRequest::new("Weather in Paris?").tool(weather_tool());
    let items = collect(&p, &req).await;
    let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    let fragment = |id: Option<&str>, args: &str| StreamEvent::ToolCall {
        index: 0,
        id: id.map(Into::into),
        name: id.map(|_| "get_weather".into()),
        arguments: args.into(),
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::delta("Let me check."),
            fragment(Some("toolu_01NRLabsLyVHZPKxbKvkfSMn"), ""),
            fragment(None, "{\"locati"),
            fragment(None, "on\": \"P"),
            StreamEvent::Usage {
                usage: Usage::new(16, 65)
            },
            StreamEvent::Done {
                finish_reason: FinishReason::Length
            },
        ]
    );

    // The partial call is kept as streamed, as OpenAI-style providers do.
    let r = p
        .stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(
        r.tool_calls,
        vec![ToolCall {
            id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
            name: "get_weather".into(),
            arguments: r#"{"location": "P"#.into(),
        }]
    );
}

#[tokio::test]
async fn a_stream_claiming_a_normal_end_with_partial_arguments_is_a_decode_error() {
    for reason in ["tool_use", "end_turn"] {
        let events = stream_cut_mid_arguments(reason);
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        let s = server(sse(&refs).header("request-id", "req_cut")).await;
        let items = collect(&provider(&s), &LlmRequest::new("Weather?")).await;
        let (last, before) = items.split_last().unwrap();
        // The text, the three fragments and the usage came through before the error.
        assert_eq!(before.len(), 5, "{items:?}");
        assert!(before.iter().all(Result::is_ok), "{items:?}");
        assert!(
            matches!(before[4], Ok(StreamEvent::Usage { .. })),
            "{items:?}"
        );
        let e = last.as_ref().unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Decode, "{e}");
        assert!(e.message.contains("not valid JSON"), "{e}");
        assert!(e.message.contains(&format!("`{reason}`")), "{e}");
        assert_eq!(e.request_id.as_deref(), Some("req_cut"));
    }
}

#[tokio::test]
async fn a_non_streamed_answer_cut_by_max_tokens_keeps_what_it_has() {
    // Constructed from TOOL_COMPLETION: `max_tokens`, and the tool block's
    // input empty, a (non-object) string, or the block without its id.
    let cut = TOOL_COMPLETION.replace(
        r#""stop_reason":"tool_use""#,
        r#""stop_reason":"max_tokens""#,
    );
    assert_ne!(cut, TOOL_COMPLETION);
    let cases = [
        (cut.replace(r#"{"ticker":"^GSPC"}"#, "{}"), Some("{}")),
        (
            cut.replace(r#"{"ticker":"^GSPC"}"#, r#""{\"tick""#),
            Some(r#"{"tick"#),
        ),
        (cut.replace(r#"{"ticker":"^GSPC"}"#, "7"), Some("7")),
        (
            cut.replace(r#""id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","#, ""),
            None,
        ),
    ];
    for (body, arguments) in cases {
        assert_ne!(body, cut);
        let s = server(MockReply::json(200, body)).await;
        let r = provider(&s)
            .generate(&LlmRequest::new("S&P?"))
            .await
            .unwrap();
        assert_eq!(r.finish_reason, FinishReason::Length);
        assert_eq!(r.content, "Checking the index.");
        let expected: Vec<ToolCall> = arguments
            .map(|a| ToolCall {
                arguments: a.into(),
                ..stock_call()
            })
            .into_iter()
            .collect();
        assert_eq!(r.tool_calls, expected);
    }
}
