//! The Ollama API door through real HTTP, with providers of every kind
//! (OpenAI, Anthropic, Ollama) pointed at mock upstreams that answer with the
//! exact bytes of their APIs; each test checks what the client received and
//! what the upstream was sent.

use llm_core::testing::{MockBody, MockReply, MockServer};
use llm_gateway::{Gateway, GatewayHandle};
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::{json, Value};

// ---- upstream bytes -------------------------------------------------------

/// OpenAI Chat Completions (protocols.md §2.6, as `llm_openai::fixtures`).
const OPENAI_COMPLETION: &str = r#"{"id":"chatcmpl-C9xQ2d7LkzP4mWm1nHqYt0bR8sVjE","object":"chat.completion","created":1756300000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_560af6e559"}"#;
const OPENAI_STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Qm3xT\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"p8Kd\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Zr0wYb2Hk\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"V1\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"a7Tq\"}\n\n",
    "data: [DONE]\n\n",
];
const OPENAI_TOOL_CALL: &str = r#"{"id":"chatcmpl-C9xQ4hV2bNm6Xc8pRs1Tf3Jk5Lw7Qe","object":"chat.completion","created":1756300002,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":58,"completion_tokens":15,"total_tokens":73,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_560af6e559"}"#;
const OPENAI_TOOL_STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: [DONE]\n\n",
];
const OPENAI_MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}"#;
const OPENAI_SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

/// Anthropic Messages (protocols.md §4.6).
const ANTHROPIC_COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;
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
const ANTHROPIC_MODELS: &str = r#"{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-sonnet-4-5-20250929"}"#;

/// Ollama (protocols.md §3).
const OLLAMA_LINES: &[&str] = &[
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:01.960129032Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.060129032Z","message":{"role":"assistant","content":"lo!"},"done":false}"#,
    r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#,
];
const OLLAMA_COMPLETION: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;
const OLLAMA_STRUCTURED: &str = r#"{"model":"llama3.1","created_at":"2024-12-06T00:46:58.265747Z","message":{"role":"assistant","content":"{\"age\": 22, \"available\": false}"},"done":true,"done_reason":"stop","total_duration":2254970291,"load_duration":574751416,"prompt_eval_count":34,"prompt_eval_duration":1502000000,"eval_count":12,"eval_duration":175000000}"#;
const OLLAMA_EMBED: &str = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704,0.105441414,-0.025878139,0.12958129,0.031952348],[-0.0098027075,0.06042469,0.025257962,-0.006364387,0.07272725,0.017194884,0.09032035,-0.051705178,0.09951512,0.09072481]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
/// The single-input answer of `/api/embed` (the first vector of [`OLLAMA_EMBED`]).
const OLLAMA_EMBED_ONE: &str = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704,0.105441414,-0.025878139,0.12958129,0.031952348]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
const OLLAMA_VERSION: &str = r#"{"version":"0.12.6"}"#;

/// A 1×1 PNG, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

// ---- kit ---------------------------------------------------------------------

const ROUTING: &str = "[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = false\n\n";

fn link_providers() {
    // Referencing the crates links them, and so registers their kinds.
    std::hint::black_box(llm_router::anthropic::build as llm_router::registry::BuildFn);
    std::hint::black_box(llm_router::ollama::build as llm_router::registry::BuildFn);
    std::hint::black_box(llm_router::openai::KIND);
}

async fn openai_upstream(path_reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/v1/models", MockReply::json(200, OPENAI_MODELS));
    m.on("POST", "/v1/chat/completions", path_reply);
    m
}

async fn anthropic_upstream(reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/v1/models", MockReply::json(200, ANTHROPIC_MODELS));
    m.on("POST", "/v1/messages", reply);
    m
}

async fn ollama_upstream(path: &str, reply: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/api/version", MockReply::json(200, OLLAMA_VERSION));
    m.on("POST", path, reply);
    m
}

fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        events.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
}

fn ndjson(lines: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "application/x-ndjson",
        lines
            .iter()
            .map(|l| format!("{l}\n").into_bytes())
            .collect(),
    )
}

fn openai_section(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"sk-upstream-test\"\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n"
    )
}

fn anthropic_section(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"anthropic\"\nbase_url = \"{url}\"\napi_key = \"sk-ant-api03-test\"\n\
         models = [\"claude-sonnet-4-5\"]\ndefault_model = \"claude-sonnet-4-5\"\ntimeout = 10\n\n"
    )
}

fn ollama_section(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"ollama\"\nbase_url = \"{url}\"\n\
         models = [\"llama3.2\", \"llama3:8b\"]\ndefault_model = \"llama3.2\"\n\
         embedding_models = [\"all-minilm\"]\ntimeout = 10\n\n"
    )
}

struct Gw {
    _handle: GatewayHandle,
    base: String,
    http: reqwest::Client,
}

async fn gateway(toml: &str) -> Gw {
    link_providers();
    let config = Config::from_toml_str(toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let handle = Gateway::from_config(client, &config)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    Gw {
        base: format!("http://{}", handle.local_addr()),
        _handle: handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl Gw {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The NDJSON lines of a body (every line must be a JSON object).
fn lines(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "{body:?}");
    body.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn posted(up: &MockServer) -> Value {
    up.requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a POST upstream")
        .json()
}

fn assert_final(v: &Value, reason: &str, prompt: u64, eval: u64) {
    assert_eq!(v["done"], true, "{v}");
    assert_eq!(v["done_reason"], reason, "{v}");
    assert_eq!(v["prompt_eval_count"], prompt, "{v}");
    assert_eq!(v["eval_count"], eval, "{v}");
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(v[k].is_u64(), "{k} in {v}");
    }
    let total = v["total_duration"].as_u64().unwrap();
    let parts = v["prompt_eval_duration"].as_u64().unwrap() + v["eval_duration"].as_u64().unwrap();
    assert_eq!(parts, total, "{v}");
    let created = v["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 30, "{created}");
}

fn hello() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello."}
        ],
        "options": {"temperature": 0.2, "num_predict": 50, "top_p": 0.5, "seed": 7,
                    "stop": ["END"], "num_thread": 4},
        "keep_alive": "5m"
    })
}

// ---- chat and generate -------------------------------------------------------

#[tokio::test]
async fn chat_streams_ndjson_by_default_from_an_openai_upstream() {
    let up = openai_upstream(sse(OPENAI_STREAM)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let r = gw.post("/api/chat", hello()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/x-ndjson");
    assert_eq!(r.headers()["x-llm-provider"], "cloud");
    let body = r.text().await.unwrap();
    let l = lines(&body);
    assert_eq!(l.len(), 3, "{body}");
    for (v, text) in l.iter().zip(["Hello", "!"]) {
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["message"], json!({"role": "assistant", "content": text}));
        assert_eq!(v["done"], false);
        assert!(v.get("done_reason").is_none());
    }
    assert_eq!(l[2]["message"], json!({"role": "assistant", "content": ""}));
    assert_final(&l[2], "stop", 20, 2);

    let sent = posted(&up);
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "You are a terse assistant."},
               {"role": "user", "content": "Say hello."}])
    );
    assert_eq!(sent["temperature"], json!(0.2));
    assert_eq!(sent["top_p"], json!(0.5));
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["stop"], json!(["END"]));
    let max = sent.get("max_completion_tokens").or(sent.get("max_tokens"));
    assert_eq!(max, Some(&json!(50)), "{sent}");
    assert!(sent.get("keep_alive").is_none() && sent.get("num_thread").is_none());
}

#[tokio::test]
async fn chat_stream_false_is_one_object_from_an_anthropic_upstream() {
    let up = anthropic_upstream(MockReply::json(200, ANTHROPIC_COMPLETION)).await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        anthropic_section("claude", &up.url())
    ))
    .await;
    let mut body = hello();
    body["model"] = json!("claude-sonnet-4-5");
    body["stream"] = json!(false);
    let r = gw.post("/api/chat", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/json; charset=utf-8");
    let text = r.text().await.unwrap();
    assert!(!text.ends_with('\n'));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(
        v["message"],
        json!({"role": "assistant", "content": "Hello!"})
    );
    assert_final(&v, "stop", 16, 5);

    let sent = posted(&up);
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "You are a terse assistant.");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say hello."}])
    );
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["temperature"], json!(0.2));
}

#[tokio::test]
async fn chat_streams_from_an_anthropic_upstream() {
    let up = anthropic_upstream(sse(ANTHROPIC_STREAM)).await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        anthropic_section("claude", &up.url())
    ))
    .await;
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "claude/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let l = lines(&r.text().await.unwrap());
    let text: String = l
        .iter()
        .filter_map(|v| v["message"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello!");
    assert_eq!(l.last().unwrap()["model"], "claude/claude-sonnet-4-5");
    assert_final(l.last().unwrap(), "stop", 16, 5);
    assert_eq!(posted(&up)["stream"], true);
}

#[tokio::test]
async fn generate_streams_from_an_ollama_upstream_and_answers_one_object() {
    let up = ollama_upstream("/api/chat", ndjson(OLLAMA_LINES)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let r = gw
        .post(
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "Say hello.", "system": "Be terse.",
                   "options": {"num_predict": 20, "frequency_penalty": 0.5}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/x-ndjson");
    let l = lines(&r.text().await.unwrap());
    assert_eq!(l.len(), 3);
    assert_eq!(l[0]["response"], "Hel");
    assert_eq!(l[1]["response"], "lo!");
    assert_eq!(l[0]["done"], false);
    assert_eq!(l[2]["response"], "");
    assert_final(&l[2], "stop", 31, 2);
    let sent = posted(&up);
    assert_eq!(sent["model"], "llama3.2");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello."}])
    );
    assert_eq!(sent["options"]["num_predict"], 20);
    assert_eq!(sent["options"]["frequency_penalty"], json!(0.5));

    // `stream: false`: one object.
    let up = ollama_upstream("/api/chat", MockReply::json(200, OLLAMA_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let r = gw
        .post(
            "/api/generate",
            json!({"model": "llama3.2:latest", "prompt": "Say hello.", "stream": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "llama3.2:latest");
    assert_eq!(v["response"], "Hello!");
    assert_final(&v, "stop", 31, 2);
    assert_eq!(posted(&up)["stream"], false);
}

#[tokio::test]
async fn tagged_model_names_route_to_the_instance_listing_them() {
    let up = ollama_upstream("/api/chat", MockReply::json(200, OLLAMA_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "llama3:8b", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(posted(&up)["model"], "llama3:8b");
}

#[tokio::test]
async fn nothing_to_generate_answers_load_without_calling_upstream() {
    let up = ollama_upstream("/api/chat", MockReply::json(200, OLLAMA_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let r = gw.post("/api/generate", json!({"model": "llama3.2"})).await;
    assert_eq!(r.status(), 200);
    let l = lines(&r.text().await.unwrap());
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["done"], true);
    assert_eq!(l[0]["done_reason"], "load");
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "llama3.2", "messages": [], "stream": false}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["done_reason"], "load");
    assert!(up.requests().iter().all(|r| r.method != "POST"));
}

// ---- tools, format, images -----------------------------------------------------

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn tools_round_trip_in_ollamas_shape() {
    let up = openai_upstream(MockReply::json(200, OPENAI_TOOL_CALL)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "gpt-4o-mini", "stream": false, "tools": weather_tool(), "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
                {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
                {"role": "user", "content": "And Paris?"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["message"]["tool_calls"],
        json!([{"id": "call_abc123", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}])
    );
    assert_eq!(v["message"]["content"], "");
    assert_final(&v, "stop", 58, 15);

    let sent = posted(&up);
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["type"], "function");
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Rome"}"#
    );
    let id = msgs[1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], id);
    assert_eq!(msgs[2]["content"], "sunny");
}

#[tokio::test]
async fn streamed_tool_calls_arrive_whole_before_the_final_line() {
    let up = openai_upstream(sse(OPENAI_TOOL_STREAM)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "gpt-4o-mini", "tools": weather_tool(),
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
        )
        .await;
    let l = lines(&r.text().await.unwrap());
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0]["done"], false);
    assert_eq!(
        l[0]["message"]["tool_calls"][0]["function"],
        json!({"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}})
    );
    assert_eq!(l[1]["done"], true);
    assert_eq!(l[1]["done_reason"], "stop");
}

#[tokio::test]
async fn format_and_images_reach_an_ollama_upstream() {
    let up = ollama_upstream("/api/chat", MockReply::json(200, OLLAMA_STRUCTURED)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let schema = json!({"type": "object", "properties": {"age": {"type": "integer"},
        "available": {"type": "boolean"}}, "required": ["age", "available"]});
    let r = gw
        .post(
            "/api/chat",
            json!({"model": "llama3.2", "stream": false, "format": schema, "messages": [
                {"role": "user", "content": "Describe this", "images": [PNG]}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["message"]["content"],
        "{\"age\": 22, \"available\": false}"
    );
    let sent = posted(&up);
    assert_eq!(sent["format"], schema);
    assert_eq!(sent["messages"][0]["images"], json!([PNG]));
}

#[tokio::test]
async fn json_format_and_images_reach_an_openai_upstream() {
    let up = openai_upstream(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let r = gw
        .post(
            "/api/generate",
            json!({"model": "gpt-4o-mini", "stream": false, "format": "json",
                   "prompt": "What is this?", "images": [PNG]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let sent = posted(&up);
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    let parts = &sent["messages"][0]["content"];
    assert_eq!(parts[0], json!({"type": "text", "text": "What is this?"}));
    assert_eq!(
        parts[1]["image_url"]["url"],
        format!("data:image/png;base64,{PNG}")
    );
}

// ---- errors ----------------------------------------------------------------------

async fn error_of(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status(), status);
    assert!(content_type(&r).starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    v["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn errors_have_ollamas_shape_and_name_the_field() {
    let up = openai_upstream(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let msg = |m: &str| json!([{"role": "user", "content": m}]);

    let e = error_of(
        gw.post(
            "/api/chat",
            json!({"model": "llama9:70b", "messages": msg("hi")}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(e, "model \"llama9:70b\" not found, try pulling it first");

    for (body, field) in [
        (
            json!({"model": "gpt-4o-mini", "messages": msg("hi"), "options": {"top_k": 40}}),
            "options.top_k",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msg("hi"), "options": {"num_ctx": 8192}}),
            "options.num_ctx",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msg("hi"), "options": {"repeat_penalty": 1.1}}),
            "options.repeat_penalty",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msg("hi"), "think": true}),
            "think",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msg("hi"), "logprobs": true}),
            "logprobs",
        ),
    ] {
        let e = error_of(gw.post("/api/chat", body).await, 400).await;
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
    for (body, field) in [
        (
            json!({"model": "gpt-4o-mini", "prompt": "x", "template": "{{ .Prompt }}"}),
            "template",
        ),
        (
            json!({"model": "gpt-4o-mini", "prompt": "x", "raw": true}),
            "raw",
        ),
        (
            json!({"model": "gpt-4o-mini", "prompt": "x", "context": [1, 2]}),
            "context",
        ),
        (
            json!({"model": "gpt-4o-mini", "prompt": "x", "suffix": "end"}),
            "suffix",
        ),
    ] {
        let e = error_of(gw.post("/api/generate", body).await, 400).await;
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
    let e = error_of(
        gw.post(
            "/api/generate",
            json!({"model": "gpt-4o-mini", "prompt": "x", "images": ["bm90IGFuIGltYWdl"]}),
        )
        .await,
        400,
    )
    .await;
    assert!(e.contains("`images[0]`"), "{e}");
    let r = gw
        .http
        .post(format!("{}/api/chat", gw.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(error_of(r, 400).await.contains("invalid JSON"));
    let e = error_of(gw.get("/api/chat").await, 405).await;
    assert!(e.contains("GET"), "{e}");
    let e = error_of(
        gw.post("/api/pull", json!({"model": "llama3.2"})).await,
        404,
    )
    .await;
    assert!(e.contains("POST /api/pull"), "{e}");
    assert!(up.requests().iter().all(|r| r.method != "POST"));
}

#[tokio::test]
async fn an_upstream_failure_is_an_error_object() {
    let up = openai_upstream(MockReply::json(500, OPENAI_SERVER_ERROR)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let mut body = hello();
    body["stream"] = json!(false);
    let e = error_of(gw.post("/api/chat", body).await, 502).await;
    assert!(e.contains("All providers failed"), "{e}");
}

#[tokio::test]
async fn a_mid_stream_failure_ends_with_an_error_line_not_done() {
    let pieces: Vec<Vec<u8>> = OPENAI_STREAM[..2]
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let up = openai_upstream(
        MockReply::chunked(200, "text/event-stream", vec![])
            .with_body(MockBody::ChunksThenCut(pieces)),
    )
    .await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section("cloud", &up.url()))).await;
    let r = gw.post("/api/chat", hello()).await;
    assert_eq!(r.status(), 200);
    let l = lines(&r.text().await.unwrap());
    assert_eq!(l[0]["message"]["content"], "Hello");
    let last = l.last().unwrap();
    assert_eq!(last.as_object().unwrap().len(), 1, "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("mid-stream"),
        "{last}"
    );
    assert!(l.iter().all(|v| v["done"] != true));
}

#[tokio::test]
async fn api_routes_need_the_gateway_key_when_keys_are_configured() {
    let up = openai_upstream(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!(
        "[gateway]\napi_keys = [\"gw-secret-key\"]\n\n{}{ROUTING}",
        openai_section("cloud", &up.url())
    ))
    .await;
    let e = error_of(gw.get("/api/tags").await, 401).await;
    assert!(e.contains("Missing bearer"), "{e}");
    let r = gw
        .http
        .get(format!("{}/api/tags", gw.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    error_of(r, 401).await;
    let r = gw
        .http
        .get(format!("{}/api/version", gw.base))
        .bearer_auth("gw-secret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---- embeddings ---------------------------------------------------------------

#[tokio::test]
async fn embed_batches_to_an_ollama_upstream() {
    let up = ollama_upstream("/api/embed", MockReply::json(200, OLLAMA_EMBED)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section("local", &up.url()))).await;
    let r = gw
        .post(
            "/api/embed",
            json!({"model": "all-minilm", "input": ["Why is the sky blue?", "Why is the grass green?"],
                   "keep_alive": "10m", "truncate": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "all-minilm");
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].as_array().unwrap().len(), 10);
    assert_eq!(e[0][0].as_f64().unwrap() as f32, 0.010071029_f32);
    assert_eq!(e[1][9].as_f64().unwrap() as f32, 0.09072481_f32);
    assert_eq!(v["prompt_eval_count"], 8);
    assert_eq!(v["load_duration"], 0);
    assert!(v["total_duration"].is_u64());
    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/embed")
        .unwrap();
    assert_eq!(
        String::from_utf8(sent.body).unwrap(),
        r#"{"model":"all-minilm","input":["Why is the sky blue?","Why is the grass green?"]}"#
    );

    // The legacy endpoint: one prompt, one vector.
    up.reset();
    up.on("POST", "/api/embed", MockReply::json(200, OLLAMA_EMBED_ONE));
    let r = gw
        .post(
            "/api/embeddings",
            json!({"model": "local/all-minilm", "prompt": "Why is the sky blue?"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!(v["embedding"].as_array().unwrap().len(), 10);
    assert_eq!(v["embedding"][0].as_f64().unwrap() as f32, 0.010071029_f32);

    let e = error_of(
        gw.post(
            "/api/embed",
            json!({"model": "nomic-embed-text", "input": "x"}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(
        e,
        "model \"nomic-embed-text\" not found, try pulling it first"
    );
    let e = error_of(
        gw.post(
            "/api/embed",
            json!({"model": "all-minilm", "input": "x", "truncate": false}),
        )
        .await,
        400,
    )
    .await;
    assert!(e.contains("`truncate`"), "{e}");
}

// ---- listing ------------------------------------------------------------------

#[tokio::test]
async fn tags_show_version_and_ps() {
    let oa = openai_upstream(MockReply::json(200, OPENAI_COMPLETION)).await;
    let ol = ollama_upstream("/api/chat", MockReply::json(200, OLLAMA_COMPLETION)).await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}",
        openai_section("cloud", &oa.url()),
        ollama_section("local", &ol.url())
    ))
    .await;
    let v: Value = gw.get("/api/tags").await.json().await.unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cloud/gpt-4o-mini",
            "local/llama3.2",
            "local/llama3:8b",
            "local/all-minilm"
        ]
    );
    let m = &v["models"][1];
    assert_eq!(m["model"], "local/llama3.2");
    assert_eq!(m["size"], 0);
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    assert!(m["modified_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m["details"]["family"], "ollama");
    assert_eq!(m["details"]["format"], "gguf");

    // The same models as /v1/models.
    let ids: Vec<String> = gw.get("/v1/models").await.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, names[..3]);

    let r = gw.post("/api/show", json!({"model": "llama3.2"})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["capabilities"], json!(["completion", "tools", "vision"]));
    assert_eq!(v["details"]["family"], "ollama");
    let v: Value = gw
        .post("/api/show", json!({"name": "local/all-minilm"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["capabilities"], json!(["embedding"]));
    let e = error_of(gw.post("/api/show", json!({"model": "x"})).await, 404).await;
    assert_eq!(e, "model 'x' not found");

    let v: Value = gw.get("/api/version").await.json().await.unwrap();
    assert_eq!(
        v,
        json!({"version": llm_gateway::protocols::ollama::OLLAMA_VERSION})
    );
    let v: Value = gw.get("/api/ps").await.json().await.unwrap();
    assert_eq!(v, json!({"models": []}));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_ollamas_shape() {
    let up = openai_upstream(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!(
        "[gateway]\nmax_body_bytes = 200\n\n{}{ROUTING}",
        openai_section("cloud", &up.url())
    ))
    .await;
    let long = "x".repeat(500);
    let e = error_of(
        gw.post(
            "/api/chat",
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": long}]}),
        )
        .await,
        413,
    )
    .await;
    assert!(e.contains("200 bytes"), "{e}");
    assert!(up.requests().iter().all(|r| r.method != "POST"));
}
