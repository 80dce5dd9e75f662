//! Extended thinking through the Anthropic Messages door: passed through to
//! Anthropic upstreams (the request's `thinking` and the history's thinking
//! blocks as sent, the answer's `thinking`/`redacted_thinking` blocks and
//! the stream's `thinking_delta`/`signature_delta` events as Anthropic sends
//! them), refused with a 400 naming `thinking` when no upstream has it. The
//! upstream bytes are the examples of Anthropic's documentation
//! (crates/llm-anthropic/tests/fixtures, sources in its README).

use llm_core::testing::{MockReply, MockServer};
use llm_gateway::{Gateway, GatewayHandle};
use llm_openai::fixtures::COMPLETION;
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::{json, Value};

const KEY: &str = "gw-key-0123456789";
const MODEL: &str = "claude-sonnet-4-5-20250929";

/// "Streaming request with thinking" (docs/build-with-claude/streaming).
const THINKING_STREAM: &str =
    include_str!("../../../llm-anthropic/tests/fixtures/thinking_stream.sse");
/// Normal and redacted thinking blocks (docs/build-with-claude/extended-thinking).
const REDACTED_RESPONSE: &str =
    include_str!("../../../llm-anthropic/tests/fixtures/redacted_thinking_response.json");

const DOC_SIGNATURE: &str =
    "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL....";
const STREAM_SIGNATURE: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...";
const REDACTED_DATA: &str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB9URj2pLmN3kF8/dW5hR7xJ0aP1oLs9yTcMnKVf2wRpEGjH9XZaBt4UvDcPrQ...";

const ROUTING: &str = "[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = false\n\n";

fn anthropic_section(url: &str) -> String {
    format!(
        "[llm_providers.claude]\nkind = \"anthropic\"\nbase_url = \"{url}\"\napi_key = \"sk-ant-upstream-test\"\n\
         models = [\"{MODEL}\"]\ndefault_model = \"{MODEL}\"\ntimeout = 10\n\n"
    )
}

fn openai_section(url: &str) -> String {
    format!(
        "[llm_providers.oai]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"sk-upstream-test\"\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n"
    )
}

async fn upstream(path: &str, reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("POST", path, reply);
    m
}

fn thinking_stream() -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        THINKING_STREAM
            .split_inclusive("\n\n")
            .map(|e| e.as_bytes().to_vec())
            .collect(),
    )
}

struct TestGateway {
    _handle: GatewayHandle,
    base: String,
    http: reqwest::Client,
}

async fn gateway(sections: &str) -> TestGateway {
    let toml = format!("{sections}{ROUTING}[gateway]\napi_keys = [\"{KEY}\"]\n");
    let config = Config::from_toml_str(&toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let handle = Gateway::from_config(client, &config)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    TestGateway {
        base: format!("http://{}", handle.local_addr()),
        _handle: handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl TestGateway {
    async fn messages(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/messages", self.base))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn posts(up: &MockServer) -> Vec<Value> {
    up.requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect()
}

/// The `(event, data)` pairs of a stream, each `event: X\ndata: {"type":"X",…}\n\n`.
fn events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "unterminated last event: {body:?}");
    body.split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e
                .strip_prefix("event: ")
                .and_then(|e| e.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an Anthropic event: {e:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name, "{e}");
            (name.to_string(), data)
        })
        .collect()
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

/// A tool round trip with thinking on: the assistant turn carries the
/// thinking blocks of the answer that called the tool.
fn tool_turn_request(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": DOC_SIGNATURE},
                {"type": "redacted_thinking", "data": REDACTED_DATA},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, cloudy"}
            ]}
        ]
    })
}

#[tokio::test]
async fn thinking_passes_through_to_an_anthropic_upstream_and_back() {
    let up = upstream("/v1/messages", MockReply::json(200, REDACTED_RESPONSE)).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let r = gw.messages(&tool_turn_request(MODEL)).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();

    // The upstream got the thinking setting and the earlier blocks, unchanged
    // and first in their turn.
    assert_eq!(
        posts(&up),
        vec![json!({
            "model": MODEL,
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": DOC_SIGNATURE},
                    {"type": "redacted_thinking", "data": REDACTED_DATA},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, cloudy"}
                ]}
            ],
            "tools": [weather_tool()]
        })]
    );
    // The answer's blocks come back as the upstream gave them, in order.
    assert_eq!(answer["type"], "message");
    assert_eq!(
        answer["content"],
        json!([
            {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": DOC_SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            {"type": "text", "text": "Based on my analysis..."}
        ])
    );
}

#[tokio::test]
async fn a_streamed_thinking_answer_is_anthropics_event_sequence() {
    let up = upstream("/v1/messages", thinking_stream()).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let r = gw
        .messages(&json!({
            "model": MODEL,
            "max_tokens": 16000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "stream": true,
            "messages": [{"role": "user", "content": "What is 27 * 453?"}]
        }))
        .await;
    assert_eq!(r.status(), 200);
    let ev = events(&r.text().await.unwrap());
    let thinking_delta = |t: &str| {
        (
            "content_block_delta".to_string(),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": t}}),
        )
    };
    let expected = vec![
        (
            "content_block_start".to_string(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        ("ping".to_string(), json!({"type": "ping"})),
        thinking_delta("Let me solve this step by step:\n\n1. First break down 27 * 453"),
        thinking_delta("\n2. 453 = 400 + 50 + 3"),
        thinking_delta("\n3. 27 * 400 = 10,800"),
        thinking_delta("\n4. 27 * 50 = 1,350"),
        thinking_delta("\n5. 27 * 3 = 81"),
        thinking_delta("\n6. 10,800 + 1,350 + 81 = 12,231"),
        (
            "content_block_delta".to_string(),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": STREAM_SIGNATURE}}),
        ),
        (
            "content_block_stop".to_string(),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start".to_string(),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta".to_string(),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}}),
        ),
        (
            "content_block_stop".to_string(),
            json!({"type": "content_block_stop", "index": 1}),
        ),
    ];
    assert_eq!(ev[0].0, "message_start");
    assert_eq!(ev[0].1["message"]["content"], json!([]));
    let (last_two, body) = (&ev[ev.len() - 2..], &ev[1..ev.len() - 2]);
    assert_eq!(body, &expected[..]);
    assert_eq!(last_two[0].0, "message_delta");
    assert_eq!(
        last_two[0].1["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(last_two[1].0, "message_stop");
    let sent = posts(&up);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(
        sent[0]["thinking"],
        json!({"type": "enabled", "budget_tokens": 10000})
    );
}

#[tokio::test]
async fn thinking_for_an_openai_upstream_is_refused_naming_the_field() {
    let up = upstream("/v1/chat/completions", MockReply::json(200, COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    for stream in [false, true] {
        let mut req = tool_turn_request("gpt-4o-mini");
        req["stream"] = json!(stream);
        let r = gw.messages(&req).await;
        assert_eq!(r.status(), 400, "stream: {stream}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.starts_with("thinking:"), "{m}");
        assert!(m.contains("extended thinking"), "{m}");
    }
    let mut adaptive = tool_turn_request("gpt-4o-mini");
    adaptive["thinking"] = json!({"type": "adaptive"});
    assert_eq!(gw.messages(&adaptive).await.status(), 400);
    assert!(posts(&up).is_empty(), "refused requests reach no upstream");

    // Thinking disabled is every provider's default: served, and the
    // history's thinking blocks (which only Anthropic reads) left out.
    let mut off = tool_turn_request("gpt-4o-mini");
    off["thinking"] = json!({"type": "disabled"});
    let r = gw.messages(&off).await;
    assert_eq!(r.status(), 200);
    let sent = posts(&up);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].get("thinking").is_none(), "{}", sent[0]);
    assert!(!sent[0].to_string().contains(DOC_SIGNATURE), "{}", sent[0]);
    assert_eq!(sent[0]["messages"][1]["tool_calls"][0]["id"], "toolu_01");
}

#[tokio::test]
async fn with_several_upstreams_thinking_goes_to_the_one_that_has_it() {
    let oai = upstream("/v1/chat/completions", MockReply::json(200, COMPLETION)).await;
    let claude = upstream("/v1/messages", MockReply::json(200, REDACTED_RESPONSE)).await;
    let gw = gateway(&format!(
        "{}{}",
        openai_section(&oai.url()),
        anthropic_section(&claude.url())
    ))
    .await;
    let r = gw.messages(&tool_turn_request("auto")).await;
    assert_eq!(r.status(), 200);
    assert!(posts(&oai).is_empty());
    assert_eq!(posts(&claude).len(), 1);
    assert_eq!(
        posts(&claude)[0]["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
}

#[tokio::test]
async fn what_anthropic_rejects_with_thinking_is_a_400_before_the_upstream() {
    let up = upstream("/v1/messages", MockReply::json(200, REDACTED_RESPONSE)).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    for (field, value) in [
        ("temperature", json!(0.5)),
        ("top_p", json!(0.9)),
        ("tool_choice", json!({"type": "any"})),
    ] {
        let mut req = tool_turn_request(MODEL);
        req[field] = value;
        let r = gw.messages(&req).await;
        assert_eq!(r.status(), 400, "{field}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(&format!("`{field}`")), "{field}: {m}");
    }
    assert!(posts(&up).is_empty(), "refused requests reach no upstream");
}
