//! The Anthropic Messages door through real HTTP on loopback, served by
//! providers of every kind (OpenAI, Anthropic, Ollama) pointed at mock
//! upstreams that answer with the exact bytes of their protocols
//! (/work/shared/protocols.md §2.6, §3.10 and §4.6).

use llm_core::testing::{MockBody, MockReply, MockServer};
use llm_gateway::{Gateway, GatewayHandle};
use llm_openai::fixtures::{COMPLETION, STREAM, TOOL_CALL_COMPLETION, TOOL_CALL_STREAM};
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::{json, Value};

const KEY: &str = "gw-key-0123456789";

/// §4.6 non-streaming body.
const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;

/// §4.6 streamed response, one event per element.
const ANTHROPIC_STREAM: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEM\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// §4.3: an overload reported after the `200`.
const ANTHROPIC_OVERLOAD_EVENT: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"details\":null,\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

/// §4.6 overloaded body.
const ANTHROPIC_OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;

/// §3.10 non-streaming `/api/chat` body.
const OLLAMA_CHAT: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

/// §3.10 streamed `/api/chat` lines.
const OLLAMA_STREAM: &[&str] = &[
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.141516171Z\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n",
];

/// An Ollama tool call (the shape of Ollama's `api/types.go` `ToolCall`).
const OLLAMA_TOOL_CALL: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_a1b2c3d4","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":18,"eval_duration":45678901}"#;

/// §2.5 server error.
const OPENAI_SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

const ROUTING: &str = "[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = false\n\n";

fn openai_section(url: &str) -> String {
    format!(
        "[llm_providers.oai]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"sk-upstream-test\"\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n"
    )
}

fn anthropic_section(url: &str) -> String {
    format!(
        "[llm_providers.claude]\nkind = \"anthropic\"\nbase_url = \"{url}\"\napi_key = \"sk-ant-upstream-test\"\n\
         models = [\"claude-sonnet-4-5-20250929\"]\ndefault_model = \"claude-sonnet-4-5-20250929\"\ntimeout = 10\n\n"
    )
}

fn ollama_section(url: &str) -> String {
    format!(
        "[llm_providers.local]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodels = [\"llama3.2\"]\n\
         default_model = \"llama3.2\"\nbinary = \"/nonexistent/ollama\"\ntimeout = 10\n\n"
    )
}

async fn openai_upstream(chat: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("POST", "/v1/chat/completions", chat);
    m
}

async fn anthropic_upstream(messages: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("POST", "/v1/messages", messages);
    m
}

async fn ollama_upstream(chat: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on(
        "GET",
        "/api/version",
        MockReply::json(200, r#"{"version":"0.11.7"}"#),
    );
    m.on(
        "GET",
        "/api/tags",
        MockReply::json(
            200,
            r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest"}]}"#,
        ),
    );
    m.on("POST", "/api/chat", chat);
    m
}

fn sse(pieces: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
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
    /// `POST path` as the Anthropic SDK sends it (`x-api-key`, `anthropic-version`).
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn messages(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/messages", body).await
    }
}

/// §4.6's request, for `model`.
fn hello(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "Say hello."}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"}
    })
}

fn sent(up: &MockServer) -> Value {
    up.requests()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .expect("the upstream got no request")
        .json()
}

/// The `(event, data)` pairs of a stream, every event checked to be
/// `event: X\ndata: {…"type":"X"…}\n\n`.
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

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

async fn error_of(r: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(r.status(), status);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn json_answer_from_an_openai_upstream() {
    let up = openai_upstream(MockReply::json(200, COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let r = gw.messages(&hello("gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-provider"], "oai");
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 28, "{id}");
    assert_eq!(
        v,
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o-mini-2024-07-18",
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 2}
        })
    );
    let body = sent(&up);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello."}
        ])
    );
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["user"], "user-42");
    assert_eq!(
        body.get("max_completion_tokens")
            .or_else(|| body.get("max_tokens")),
        Some(&json!(256))
    );
    assert!(body.get("top_p").is_none(), "nothing invented: {body}");
}

#[tokio::test]
async fn stream_from_an_openai_upstream_is_anthropics_event_sequence() {
    let up = openai_upstream(sse(STREAM)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let mut req = hello("gpt-4o-mini");
    req["stream"] = json!(true);
    let r = gw.messages(&req).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let ev = events(&r.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &ev[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    // The model the stream was opened for (the upstream names its own in later chunks).
    assert_eq!(start["model"], "gpt-4o-mini");
    assert_eq!(
        ev[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        ev[3].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})
    );
    assert_eq!(ev[4].1["delta"]["text"], "!");
    assert_eq!(ev[5].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        ev[6].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 0, "output_tokens": 2}})
    );
    assert_eq!(sent(&up)["stream"], true);
}

#[tokio::test]
async fn an_anthropic_upstream_serves_json_and_streams() {
    let up = anthropic_upstream(MockReply::json(200, ANTHROPIC_MESSAGE)).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let r = gw.messages(&hello("claude-sonnet-4-5-20250929")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hello!"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(v["usage"]["input_tokens"], 16);
    assert_eq!(v["usage"]["output_tokens"], 5);
    let body = sent(&up);
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["system"], "You are a terse assistant.");
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"], json!({"user_id": "user-42"}));
    assert_eq!(body["messages"][0]["role"], "user");

    let up = anthropic_upstream(sse(ANTHROPIC_STREAM)).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let mut req = hello("claude-sonnet-4-5-20250929");
    req["stream"] = json!(true);
    let text = gw.messages(&req).await.text().await.unwrap();
    let ev = events(&text);
    // Past the message's id and usage, the upstream's events come out as they went in.
    let upstream: Vec<(String, Value)> = events(&ANTHROPIC_STREAM.concat());
    assert_eq!(names(&ev), names(&upstream));
    for i in 1..6 {
        assert_eq!(ev[i], upstream[i], "event {i}");
    }
    assert_eq!(ev[6].1["delta"], upstream[6].1["delta"]);
    assert_eq!(ev[6].1["usage"]["output_tokens"], 5);
    assert_eq!(ev[6].1["usage"]["input_tokens"], 16);
    assert_eq!(ev[7], upstream[7]);
    assert_eq!(sent(&up)["stream"], true);
}

#[tokio::test]
async fn an_ollama_upstream_serves_json_streams_and_tool_calls() {
    let up = ollama_upstream(MockReply::json(200, OLLAMA_CHAT)).await;
    let gw = gateway(&ollama_section(&up.url())).await;
    let r = gw.messages(&hello("llama3.2")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hello!"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 31);
    assert_eq!(v["usage"]["output_tokens"], 2);
    let body = sent(&up);
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(body["options"]["num_predict"], 256);
    assert_eq!(body["options"]["temperature"], json!(0.2));
    assert_eq!(body["options"]["stop"], json!(["END"]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello."}
        ])
    );

    let up = ollama_upstream(MockReply::chunked(
        200,
        "application/x-ndjson",
        OLLAMA_STREAM
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect(),
    ))
    .await;
    let gw = gateway(&ollama_section(&up.url())).await;
    let mut req = hello("llama3.2");
    req["stream"] = json!(true);
    let ev = events(&gw.messages(&req).await.text().await.unwrap());
    assert_eq!(names(&ev).first(), Some(&"message_start"));
    assert_eq!(names(&ev).last(), Some(&"message_stop"));
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello!");
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["usage"]["output_tokens"], 2);
    assert_eq!(delta["usage"]["input_tokens"], 31);

    let up = ollama_upstream(MockReply::json(200, OLLAMA_TOOL_CALL)).await;
    let gw = gateway(&ollama_section(&up.url())).await;
    let r = gw.messages(&weather_request("llama3.2")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "call_a1b2c3d4", "name": "get_weather", "input": {"city": "Tokyo"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");
    let body = sent(&up);
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        body["tools"][0]["function"]["parameters"],
        weather_tool()["input_schema"]
    );
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "Current weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    })
}

fn weather_request(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 100,
        "tools": [weather_tool()],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]
    })
}

#[tokio::test]
async fn a_tool_round_trip_through_an_openai_upstream() {
    let up = openai_upstream(MockReply::json(200, TOOL_CALL_COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let mut req = weather_request("gpt-4o-mini");
    req["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
    let r = gw.messages(&req).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let call = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert!(call["input"].is_object(), "{call}");
    let body = sent(&up);
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": weather_tool()["input_schema"]
        }}])
    );

    // The result goes back as Anthropic clients send it.
    let follow_up = json!({
        "model": "gpt-4o-mini",
        "max_tokens": 100,
        "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [call.clone()]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call["id"], "content": "18 °C, sunny"}
            ]}
        ]
    });
    up.reset();
    up.on(
        "POST",
        "/v1/chat/completions",
        MockReply::json(200, COMPLETION),
    );
    let r = gw.messages(&follow_up).await;
    assert_eq!(r.status(), 200);
    let body = sent(&up);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{body}");
    assert_eq!(messages[1]["role"], "assistant");
    let sent_call = &messages[1]["tool_calls"][0];
    assert_eq!(sent_call["id"], call["id"]);
    assert_eq!(sent_call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(sent_call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, call["input"]);
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": call["id"], "content": "18 °C, sunny"})
    );
}

#[tokio::test]
async fn a_streamed_tool_call_is_a_tool_use_block_with_input_json_deltas() {
    let up = openai_upstream(sse(TOOL_CALL_STREAM)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let mut req = weather_request("gpt-4o-mini");
    req["stream"] = json!(true);
    let ev = events(&gw.messages(&req).await.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        ev[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block":
               {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {}}})
    );
    let partial: Vec<&str> = ev[3..6]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(partial, ["", "{\"city\":", "\"Paris\"}"]);
    assert_eq!(ev[7].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn failures_after_the_200_end_with_an_error_event() {
    // The connection drops after the first text delta.
    let pieces: Vec<Vec<u8>> = STREAM[..2].iter().map(|p| p.as_bytes().to_vec()).collect();
    let up = openai_upstream(
        MockReply::chunked(200, "text/event-stream", vec![])
            .with_body(MockBody::ChunksThenCut(pieces)),
    )
    .await;
    let gw = gateway(&openai_section(&up.url())).await;
    let mut req = hello("gpt-4o-mini");
    req["stream"] = json!(true);
    let ev = events(&gw.messages(&req).await.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(ev[4].1["error"]["type"], "api_error");
    assert!(!ev[4].1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sk-upstream-test"));

    // An Anthropic upstream reports an overload mid-stream.
    let mut pieces = ANTHROPIC_STREAM[..4].to_vec();
    pieces.push(ANTHROPIC_OVERLOAD_EVENT);
    let up = anthropic_upstream(sse(&pieces)).await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let mut req = hello("claude-sonnet-4-5-20250929");
    req["stream"] = json!(true);
    let ev = events(&gw.messages(&req).await.text().await.unwrap());
    let last = ev.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["error"]["type"], "overloaded_error");
    assert!(!names(&ev).contains(&"message_stop"));
}

#[tokio::test]
async fn errors_have_anthropics_shape_and_statuses() {
    let up = openai_upstream(MockReply::json(200, COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;

    let mut req = hello("gpt-4o-mini");
    req.as_object_mut().unwrap().remove("max_tokens");
    let m = error_of(gw.messages(&req).await, 400, "invalid_request_error").await;
    assert_eq!(m, "max_tokens: Field required");

    let mut req = hello("gpt-4o-mini");
    req["top_k"] = json!(40);
    let m = error_of(gw.messages(&req).await, 400, "invalid_request_error").await;
    assert!(m.starts_with("top_k:"), "{m}");

    let mut req = hello("gpt-4o-mini");
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    req["max_tokens"] = json!(4096);
    let m = error_of(gw.messages(&req).await, 400, "invalid_request_error").await;
    assert!(m.starts_with("thinking:"), "{m}");

    let m = error_of(
        gw.messages(&hello("no-such-model")).await,
        404,
        "not_found_error",
    )
    .await;
    assert!(m.contains("no-such-model"), "{m}");
    assert!(
        up.requests().iter().all(|r| r.method != "POST"),
        "refused requests never reach upstream"
    );

    // Keys: x-api-key or a bearer token; anything else is Anthropic's 401.
    let url = format!("{}/v1/messages", gw.base);
    let r = gw
        .http
        .post(&url)
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    let m = error_of(r, 401, "authentication_error").await;
    assert_eq!(m, "x-api-key header is required");
    let r = gw
        .http
        .post(&url)
        .header("x-api-key", "wrong")
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    let m = error_of(r, 401, "authentication_error").await;
    assert_eq!(m, "invalid x-api-key");
    let r = gw
        .http
        .post(&url)
        .bearer_auth(KEY)
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The OpenAI door keeps OpenAI's error shape.
    let r = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("x-api-key", "wrong")
        .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");

    // An upstream's server error.
    let up = openai_upstream(MockReply::json(500, OPENAI_SERVER_ERROR)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let m = error_of(gw.messages(&hello("gpt-4o-mini")).await, 502, "api_error").await;
    assert!(!m.contains("sk-upstream-test"), "{m}");
}

#[tokio::test]
async fn every_provider_overloaded_is_a_529() {
    let up = anthropic_upstream(
        MockReply::json(529, ANTHROPIC_OVERLOADED).header("x-should-retry", "true"),
    )
    .await;
    let gw = gateway(&anthropic_section(&up.url())).await;
    let m = error_of(
        gw.messages(&hello("claude-sonnet-4-5-20250929")).await,
        529,
        "overloaded_error",
    )
    .await;
    assert!(m.contains("Overloaded"), "{m}");
}

#[tokio::test]
async fn count_tokens_estimates_the_input() {
    let up = openai_upstream(MockReply::json(200, COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let body = json!({
        "model": "gpt-4o-mini",
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "Say hello."}]
    });
    let r = gw.post("/v1/messages/count_tokens", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mut req = llm_router::LlmRequest::plain(vec![llm_router::Message::user("Say hello.")]);
    req.system_prompt = Some("You are a terse assistant.".into());
    req.model = Some("gpt-4o-mini".into());
    let expected = llm_router::tokens::estimate_usage(&req, "").prompt_tokens;
    assert!(expected > 0);
    assert_eq!(v, json!({"input_tokens": expected}));
    assert!(
        up.requests().iter().all(|r| r.method != "POST"),
        "counting calls no upstream"
    );

    let mut with_max = body.clone();
    with_max["max_tokens"] = json!(5);
    let r = gw.post("/v1/messages/count_tokens", &with_max).await;
    error_of(r, 400, "invalid_request_error").await;
}

#[tokio::test]
async fn models_are_listed_in_anthropics_shape_with_anthropic_version() {
    let up = openai_upstream(MockReply::json(200, COMPLETION)).await;
    let gw = gateway(&openai_section(&up.url())).await;
    let r = gw
        .http
        .get(format!("{}/v1/models", gw.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let created = v["data"][0]["created_at"].as_str().unwrap().to_string();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(
        v,
        json!({
            "data": [{"type": "model", "id": "oai/gpt-4o-mini", "display_name": "oai/gpt-4o-mini",
                      "created_at": created, "lifecycle": "active"}],
            "has_more": false,
            "first_id": "oai/gpt-4o-mini",
            "last_id": "oai/gpt-4o-mini"
        })
    );
    let r = gw
        .http
        .get(format!("{}/v1/models/oai/gpt-4o-mini", gw.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "model");
    assert_eq!(v["id"], "oai/gpt-4o-mini");

    // Without the header: OpenAI's list, as before.
    let r = gw
        .http
        .get(format!("{}/v1/models", gw.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["object"], "model");
}

#[tokio::test]
async fn shared_limits_answer_in_anthropics_shape() {
    let up = openai_upstream(MockReply::json(200, COMPLETION).with_body(MockBody::Hang)).await;
    let toml = format!(
        "{}{ROUTING}[gateway]\napi_keys = [\"{KEY}\"]\nmax_concurrency = 1\nmax_body_bytes = 2048\n",
        openai_section(&up.url())
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let handle = Gateway::from_config(client, &config)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let gw = TestGateway {
        base: format!("http://{}", handle.local_addr()),
        _handle: handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };

    let mut big = hello("gpt-4o-mini");
    big["system"] = json!("x".repeat(4096));
    error_of(gw.messages(&big).await, 413, "request_too_large").await;

    // One request holds the only slot (its upstream never answers) ...
    let held = {
        let http = gw.http.clone();
        let url = format!("{}/v1/messages", gw.base);
        tokio::spawn(async move {
            http.post(url)
                .header("x-api-key", KEY)
                .json(&hello("gpt-4o-mini"))
                .send()
                .await
        })
    };
    while !up.requests().iter().any(|r| r.method == "POST") {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // ... so the next one is refused with Anthropic's 429.
    let r = gw.messages(&hello("gpt-4o-mini")).await;
    assert_eq!(r.headers()["retry-after"], "1");
    error_of(r, 429, "rate_limit_error").await;
    held.abort();
}
