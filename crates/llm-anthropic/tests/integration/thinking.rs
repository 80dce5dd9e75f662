//! Extended thinking over real HTTP: the `thinking` field sent, `thinking`
//! and `redacted_thinking` blocks read from answers and streams (fixtures
//! from Anthropic's documentation, see `tests/fixtures/README.md`), blocks
//! of earlier turns sent back unchanged, and what the API refuses with
//! thinking refused before sending.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llm_core::testing::MockReply;
use llm_core::{
    Capability, FinishReason, LlmRequest, Message, ProviderErrorKind, ResponseFormat, StreamEvent,
    Thinking, ThinkingBlock, Tool, ToolCall, ToolChoice,
};
use serde_json::json;

use crate::common::{self, MODEL};
use crate::provider::{collect, post, provider, server};

/// "Streaming request with thinking" (docs/build-with-claude/streaming).
const THINKING_STREAM: &str = include_str!("../fixtures/thinking_stream.sse");
/// Normal and redacted thinking blocks (docs/build-with-claude/extended-thinking).
const REDACTED_RESPONSE: &str = include_str!("../fixtures/redacted_thinking_response.json");

const SIGNATURE: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...";
const DOC_SIGNATURE: &str =
    "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL....";
const REDACTED_DATA: &str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB9URj2pLmN3kF8/dW5hR7xJ0aP1oLs9yTcMnKVf2wRpEGjH9XZaBt4UvDcPrQ...";

/// The fixture's events, one chunk each (comment lines included).
fn thinking_stream() -> MockReply {
    let events: Vec<&str> = THINKING_STREAM.split_inclusive("\n\n").collect();
    common::sse(&events)
}

fn thinking_request() -> LlmRequest {
    let mut req = LlmRequest::new("What is 27 * 453?")
        .max_tokens(16000)
        .thinking(Thinking::Enabled {
            budget_tokens: 10000,
        });
    req.temperature = None;
    req
}

fn weather() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    )
}

#[tokio::test]
async fn thinking_is_sent_and_blocks_are_read_from_the_answer() {
    let s = server(
        "POST",
        "/v1/messages",
        MockReply::json(200, REDACTED_RESPONSE),
    )
    .await;
    let p = provider(&s, "");
    assert!(p.supports(Capability::Thinking, MODEL));
    let resp = p.generate(&thinking_request()).await.unwrap();
    assert_eq!(
        post(&s).json(),
        json!({
            "model": MODEL,
            "max_tokens": 16000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "messages": [{"role": "user", "content": "What is 27 * 453?"}]
        })
    );
    assert_eq!(resp.content, "Based on my analysis...");
    assert_eq!(
        resp.thinking,
        vec![
            ThinkingBlock::Thinking {
                thinking: "Let me analyze this step by step...".into(),
                signature: DOC_SIGNATURE.into(),
            },
            ThinkingBlock::RedactedThinking {
                data: REDACTED_DATA.into()
            },
        ]
    );
}

#[tokio::test]
async fn adaptive_and_disabled_thinking_are_sent_as_given() {
    for (thinking, wire) in [
        (Thinking::Adaptive, json!({"type": "adaptive"})),
        (Thinking::Disabled, json!({"type": "disabled"})),
    ] {
        let s = server("POST", "/v1/messages", common::completion()).await;
        let p = provider(&s, "");
        let mut req = thinking_request();
        req.thinking = Some(thinking);
        p.generate(&req).await.unwrap();
        assert_eq!(post(&s).json()["thinking"], wire);
    }
}

#[tokio::test]
async fn streamed_thinking_becomes_thinking_events_in_order() {
    let s = server("POST", "/v1/messages", thinking_stream()).await;
    let p = provider(&s, "");
    let events: Vec<StreamEvent> = collect(&p, &thinking_request())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let thinking = |text: &str| StreamEvent::Thinking {
        index: 0,
        text: text.into(),
    };
    assert_eq!(
        events,
        vec![
            thinking(""),
            thinking("Let me solve this step by step:\n\n1. First break down 27 * 453"),
            thinking("\n2. 453 = 400 + 50 + 3"),
            thinking("\n3. 27 * 400 = 10,800"),
            thinking("\n4. 27 * 50 = 1,350"),
            thinking("\n5. 27 * 3 = 81"),
            thinking("\n6. 10,800 + 1,350 + 81 = 12,231"),
            StreamEvent::ThinkingSignature {
                index: 0,
                signature: SIGNATURE.into()
            },
            StreamEvent::delta("27 * 453 = 12,231"),
            StreamEvent::Done {
                finish_reason: FinishReason::Stop
            },
        ]
    );
    let body = post(&s).json();
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 10000})
    );

    // Collected, the stream is the same answer as a JSON one would be.
    let s = server("POST", "/v1/messages", thinking_stream()).await;
    let resp = provider(&s, "")
        .stream(&thinking_request())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(resp.content, "27 * 453 = 12,231");
    assert_eq!(
        resp.thinking,
        vec![ThinkingBlock::Thinking {
            thinking: "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = \
                       400 + 50 + 3\n3. 27 * 400 = 10,800\n4. 27 * 50 = 1,350\n5. 27 * 3 = 81\n6. \
                       10,800 + 1,350 + 81 = 12,231"
                .into(),
            signature: SIGNATURE.into(),
        }]
    );
}

#[tokio::test]
async fn a_streamed_redacted_block_arrives_whole() {
    // Anthropic streams a `redacted_thinking` block whole in its
    // `content_block_start` (the fixture's data, in the documented stream layout).
    let start = format!(
        "event: content_block_start\ndata: {{\"type\": \"content_block_start\", \"index\": 0, \
         \"content_block\": {{\"type\": \"redacted_thinking\", \"data\": \"{REDACTED_DATA}\"}}}}\n\n"
    );
    let events: Vec<&str> = THINKING_STREAM.split_inclusive("\n\n").collect();
    // message_start, the redacted block, then the documented thinking and
    // text blocks renumbered.
    let rest: Vec<String> = events[2..]
        .iter()
        .map(|e| {
            e.replace("\"index\": 1", "\"index\": 2")
                .replace("\"index\": 0", "\"index\": 1")
        })
        .collect();
    let mut all: Vec<&str> = vec![
        events[1],
        &start,
        "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
    ];
    all.extend(rest.iter().map(String::as_str));
    let s = server("POST", "/v1/messages", common::sse(&all)).await;
    let resp = provider(&s, "")
        .stream(&thinking_request())
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(resp.thinking.len(), 2);
    assert_eq!(
        resp.thinking[0],
        ThinkingBlock::RedactedThinking {
            data: REDACTED_DATA.into()
        }
    );
    assert!(
        matches!(&resp.thinking[1], ThinkingBlock::Thinking { signature, .. } if signature == SIGNATURE)
    );
    assert_eq!(resp.content, "27 * 453 = 12,231");
}

#[tokio::test]
async fn thinking_blocks_of_an_earlier_turn_go_back_first_and_unchanged() {
    let s = server("POST", "/v1/messages", common::completion()).await;
    let p = provider(&s, "");
    let call = ToolCall {
        id: "toolu_01".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    };
    let blocks = vec![
        ThinkingBlock::Thinking {
            thinking: "Let me analyze this step by step...".into(),
            signature: DOC_SIGNATURE.into(),
        },
        ThinkingBlock::RedactedThinking {
            data: REDACTED_DATA.into(),
        },
    ];
    let req = thinking_request()
        .tool(weather())
        .message(Message::assistant_turn(blocks, "Checking.", vec![call]))
        .message(Message::tool_result("toolu_01", "18°C"));
    p.generate(&req).await.unwrap();
    let body = post(&s).json();
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": DOC_SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
        ]})
    );
    assert_eq!(
        body["messages"][2]["content"][0]["type"],
        json!("tool_result")
    );
}

#[tokio::test]
async fn what_the_api_refuses_with_thinking_is_refused_before_sending() {
    let s = server("POST", "/v1/messages", common::completion()).await;
    let p = provider(&s, "");
    let cases: Vec<(LlmRequest, &str)> = vec![
        (thinking_request().temperature(0.7), "temperature"),
        (thinking_request().top_p(0.9), "top_p"),
        (
            thinking_request()
                .tool(weather())
                .tool_choice(ToolChoice::Required),
            "tool_choice",
        ),
        (
            thinking_request()
                .tool(weather())
                .tool_choice(ToolChoice::Function("get_weather".into())),
            "tool_choice",
        ),
        (
            thinking_request().response_format(ResponseFormat::JsonObject),
            "response_format",
        ),
        (
            {
                let mut r = thinking_request();
                r.max_tokens = Some(8000);
                r
            },
            "budget_tokens",
        ),
    ];
    for (req, field) in cases {
        let e = p.generate(&req).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Unsupported, "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
        assert!(p.stream(&req).await.is_err());
    }
    assert!(s.requests().iter().all(|r| r.method != "POST"));

    // What the API accepts with thinking goes through: temperature 1,
    // top_p 0.95, tool_choice auto.
    let ok = thinking_request()
        .temperature(1.0)
        .tool(weather())
        .tool_choice(ToolChoice::Auto);
    p.generate(&ok).await.unwrap();
    let mut ok = thinking_request().top_p(0.95);
    ok.temperature = None;
    p.generate(&ok).await.unwrap();
    // Thinking off: none of this applies.
    let mut off = thinking_request().temperature(0.2);
    off.thinking = Some(Thinking::Disabled);
    p.generate(&off).await.unwrap();
    assert_eq!(
        s.requests().iter().filter(|r| r.method == "POST").count(),
        3
    );
}
