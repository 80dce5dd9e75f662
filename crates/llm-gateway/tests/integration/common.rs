//! Mock upstreams (OpenAI, Anthropic, Ollama) with their exact wire bytes, and
//! an in-process gateway over them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llm_core::testing::{MockBody, MockReply, MockServer, RecordedRequest};
use llm_gateway::{Gateway, GatewayHandle};
pub use llm_openai::fixtures::{
    COMPLETION as OPENAI_COMPLETION, MODELS as OPENAI_MODELS, STREAM as OPENAI_STREAM,
};
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::Value;

/// Anthropic's non-streamed answer (protocols.md 4.6).
pub const ANTHROPIC_COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;

/// Anthropic's `tool_use` answer (the 4.6 body layout with a 4.2 `tool_use` block).
pub const ANTHROPIC_TOOL_COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEQ","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Checking the index."},{"type":"tool_use","id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","name":"get_stock_price","input":{"ticker":"^GSPC"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":380,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":54,"service_tier":"standard"}}"#;

/// Anthropic's streamed text answer (protocols.md 4.3), one event per element.
pub const ANTHROPIC_STREAM: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEM\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Anthropic's streamed `tool_use` answer (protocols.md 4.3): text, then a
/// call whose arguments arrive in pieces.
pub const ANTHROPIC_TOOL_STREAM: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEP\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01NRLabsLyVHZPKxbKvkfSMn\",\"name\":\"get_weather\",\"caller\":{\"type\":\"direct\"},\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"locati\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"on\\\": \\\"P\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ar\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":65}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Ollama's `/api/chat` answer (protocols.md 3.10).
pub const OLLAMA_COMPLETION: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

/// Ollama's streamed `/api/chat` answer (protocols.md 3.10), one line each.
pub const OLLAMA_STREAM: [&str; 3] = [
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.141516171Z\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n",
];

/// Ollama's mid-stream error line (protocols.md 3.9); the stream then ends.
pub const OLLAMA_STREAM_ERROR_LINE: &str =
    "{\"error\":\"an error was encountered while running the model\"}\n";

/// Ollama's tool-call answer (a call with an id, arguments as an object).
pub const OLLAMA_TOOL_CALL: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_a1b2c3d4","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":18,"eval_duration":45678901}"#;

/// Ollama's `POST /api/embed` answer for two inputs (its API reference,
/// "Generate Embeddings", multiple input).
pub const OLLAMA_TWO_VECTORS: &str = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704,0.105441414,-0.025878139,0.12958129,0.031952348],[-0.0098027075,0.06042469,0.025257962,-0.006364387,0.07272725,0.017194884,0.09032035,-0.051705178,0.09951512,0.09072481]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;

/// Ollama's `GET /api/tags` (protocols.md 3.5).
pub const OLLAMA_TAGS: &str = r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-05-04T17:37:44.706015396-07:00","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}"#;

/// OpenAI's server-error body.
pub const OPENAI_SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

pub const OLLAMA_JSON: &str = "application/json; charset=utf-8";
pub const OLLAMA_NDJSON: &str = "application/x-ndjson";

/// Chunked pieces of a stream.
pub fn pieces(events: &[&str]) -> Vec<Vec<u8>> {
    events.iter().map(|e| e.as_bytes().to_vec()).collect()
}

/// A server-sent-event reply.
pub fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(200, "text/event-stream", pieces(events))
}

/// A reply that sends `events` and then drops the connection.
pub fn sse_cut(events: &[&str]) -> MockReply {
    MockReply::chunked(200, "text/event-stream", vec![])
        .with_body(MockBody::ChunksThenCut(pieces(events)))
}

/// An Ollama NDJSON reply.
pub fn ndjson(lines: &[&str]) -> MockReply {
    MockReply::chunked(200, OLLAMA_NDJSON, pieces(lines))
}

/// An OpenAI upstream answering chat completions with `chat`.
pub async fn openai(chat: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/v1/models", MockReply::json(200, OPENAI_MODELS));
    m.on("POST", "/v1/chat/completions", chat);
    m
}

/// An Anthropic upstream answering messages with `reply`.
pub async fn anthropic(reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("POST", "/v1/messages", reply);
    m
}

/// An Ollama upstream answering `/api/chat` with `reply`.
pub async fn ollama(reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on(
        "GET",
        "/api/tags",
        MockReply::new(200, OLLAMA_JSON, OLLAMA_TAGS),
    );
    m.on("POST", "/api/chat", reply);
    m
}

/// `[llm_providers.openai]` pointing at `url`.
pub fn openai_section(url: &str) -> String {
    format!(
        "[llm_providers.openai]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"sk-upstream-test\"\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n"
    )
}

/// `[llm_providers.claude]` pointing at `url`.
pub fn anthropic_section(url: &str) -> String {
    format!(
        "[llm_providers.claude]\nkind = \"anthropic\"\nbase_url = \"{url}\"\napi_key = \"sk-ant-upstream-test\"\n\
         models = [\"claude-sonnet-4-5-20250929\"]\ndefault_model = \"claude-sonnet-4-5-20250929\"\ntimeout = 10\n\n"
    )
}

/// `[llm_providers.local]` (Ollama) pointing at `url`, also serving the
/// embedding model `all-minilm`.
pub fn ollama_section(url: &str) -> String {
    format!(
        "[llm_providers.local]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodels = [\"llama3.2\"]\n\
         default_model = \"llama3.2\"\nembedding_models = [\"all-minilm\"]\nbinary = \"/nonexistent/ollama\"\n\
         timeout = 10\n\n"
    )
}

/// Routing without retries, no answer cache.
pub const ROUTING: &str = "[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = false\n\n";

/// A running in-process gateway.
pub struct TestGateway {
    pub handle: GatewayHandle,
    pub base: String,
    pub http: reqwest::Client,
}

/// Starts a gateway on 127.0.0.1:0 for the configuration text.
pub async fn gateway(toml: &str) -> TestGateway {
    let config = Config::from_toml_str(toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let handle = Gateway::from_config(client, &config)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let base = format!("http://{}", handle.local_addr());
    TestGateway {
        handle,
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl TestGateway {
    /// POSTs `body` to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs and returns the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.post(path, body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    /// POSTs and returns the status, content type and body text.
    pub async fn post_text(&self, path: &str, body: &Value) -> (u16, String, String) {
        let r = self.post(path, body).await;
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, ct, r.text().await.unwrap())
    }
}

/// The requests `server` received on `path`.
pub fn received(server: &MockServer, path: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// The one request `server` received on `path`, as JSON.
pub fn only_body(server: &MockServer, path: &str) -> Value {
    let got = received(server, path);
    assert_eq!(got.len(), 1, "requests on {path}: {}", got.len());
    got[0].json()
}

/// The `(event, data)` pairs of a server-sent-event body.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            let v = if data == "[DONE]" {
                Value::String(data)
            } else {
                serde_json::from_str(&data).unwrap_or_else(|_| panic!("bad data {data}"))
            };
            (name, v)
        })
        .collect()
}
