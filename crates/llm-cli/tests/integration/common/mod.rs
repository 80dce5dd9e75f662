//! Shared test kit: OpenAI upstream fixtures (exact bytes from
//! /work/shared/protocols.md section 2), mock upstreams and a gateway starter.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use llm_cli::gateway::{Gateway, GatewayHandle};
use llm_core::testing::{MockBody, MockReply, MockServer};
/// The API's bytes (protocols.md 2.4 and 2.6).
pub use llm_openai::fixtures::{COMPLETION, MODELS, STREAM as STREAM_EVENTS};
use llm_router::config::Config;
use llm_router::LlmClient;
use tokio::sync::{mpsc, Mutex, Semaphore};

/// A server-error body (protocols.md 2.5 shape).
pub const SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

/// The streamed response as chunked pieces.
pub fn stream_pieces() -> Vec<Vec<u8>> {
    STREAM_EVENTS
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect()
}

/// An OpenAI upstream answering chat completions with `chat` and listing models.
pub async fn openai_upstream(chat: MockReply) -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/v1/models", MockReply::json(200, MODELS));
    m.on("POST", "/v1/chat/completions", chat);
    m
}

/// An upstream answering the non-streaming fixture.
pub async fn completion_upstream() -> MockServer {
    openai_upstream(MockReply::json(200, COMPLETION)).await
}

/// An upstream answering the streamed fixture.
pub async fn stream_upstream() -> MockServer {
    openai_upstream(MockReply::chunked(
        200,
        "text/event-stream",
        stream_pieces(),
    ))
    .await
}

/// An upstream whose chat completions fail with HTTP 500.
pub async fn failing_upstream() -> MockServer {
    openai_upstream(MockReply::json(500, SERVER_ERROR)).await
}

/// An upstream that streams the first events, then drops the connection.
pub async fn cut_stream_upstream() -> MockServer {
    let pieces = stream_pieces()[..2].to_vec();
    openai_upstream(
        MockReply::chunked(200, "text/event-stream", vec![])
            .with_body(MockBody::ChunksThenCut(pieces)),
    )
    .await
}

/// A `[llm_providers.NAME]` section of kind `openai` pointing at `url`.
pub fn openai_section(name: &str, url: &str, models: &[&str]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "[llm_providers.{name}]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"sk-upstream-test\"\n\
         models = [{}]\ndefault_model = {}\ntimeout = 10\n\n",
        models.join(", "),
        models.first().cloned().unwrap_or_else(|| "\"gpt-4o-mini\"".into())
    )
}

/// Routing without retries or backoff, so attempts are predictable.
pub const ROUTING: &str = "[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = false\n\n";

/// A running in-process gateway.
pub struct TestGateway {
    pub handle: GatewayHandle,
    pub base: String,
    pub http: reqwest::Client,
}

/// Starts a gateway on 127.0.0.1:0 for the configuration text.
pub async fn gateway(toml: &str) -> TestGateway {
    gateway_with(toml, |g| g).await
}

/// Starts a gateway for the configuration text, adjusted by `customize`
/// (CORS origins, extra secrets, …).
pub async fn gateway_with(toml: &str, customize: impl FnOnce(Gateway) -> Gateway) -> TestGateway {
    let config = Config::from_toml_str(toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    serve(customize(Gateway::from_config(client, &config))).await
}

/// Starts a gateway serving `providers` directly (scripted ones, to see the
/// exact request the gateway built), with the `[gateway]` settings of `toml`.
pub async fn scripted_gateway(
    providers: Vec<Arc<llm_core::testing::ScriptedProvider>>,
    toml: &str,
) -> TestGateway {
    let config = Config::from_toml_str(toml).unwrap();
    let mut builder = LlmClient::builder();
    for p in providers {
        builder = builder.provider(p);
    }
    let client = builder.build().unwrap();
    serve(Gateway::new(client, &config.gateway)).await
}

async fn serve(gateway: Gateway) -> TestGateway {
    let handle = gateway.bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", handle.local_addr());
    TestGateway {
        handle,
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A simple request body.
pub fn hello(model: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello."}
        ],
        "max_completion_tokens": 50,
        "temperature": 0.2
    })
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_string()
        })
        .collect()
}

/// An upstream that holds every chat completion until released.
pub struct GatedUpstream {
    pub url: String,
    arrived: Mutex<mpsc::UnboundedReceiver<()>>,
    gate: Arc<Semaphore>,
    _task: tokio::task::JoinHandle<()>,
}

impl GatedUpstream {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let app = Router::new()
            .route(
                "/v1/models",
                get(|| async { ([("content-type", "application/json")], MODELS) }),
            )
            .route(
                "/v1/chat/completions",
                post(move || {
                    let tx = tx.clone();
                    let g = g.clone();
                    async move {
                        let _ = tx.send(());
                        g.acquire().await.unwrap().forget();
                        ([("content-type", "application/json")], COMPLETION)
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            arrived: Mutex::new(rx),
            gate,
            _task: task,
        }
    }

    /// Waits until a chat completion request has reached the upstream.
    pub async fn arrived(&self) {
        self.arrived.lock().await.recv().await.unwrap();
    }

    /// Lets `n` held requests answer.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}
