//! Orchestrator health (`/health/live`, `/health/ready`), the drain, what a
//! shutdown cuts, and configuration reloads of a running gateway.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use llm_core::testing::MockServer;
use llm_gateway::{Gateway, GatewayHandle, Shutdown};
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex, Semaphore};

use crate::common::*;

/// An OpenAI upstream whose chat completions wait for [`Gated::release`]:
/// a JSON answer is held before anything is sent, a stream after its first
/// text event.
struct Gated {
    url: String,
    arrived: Mutex<mpsc::UnboundedReceiver<()>>,
    gate: Arc<Semaphore>,
    _task: tokio::task::JoinHandle<()>,
}

impl Gated {
    async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let app = Router::new()
            .route(
                "/v1/models",
                get(|| async { ([("content-type", "application/json")], OPENAI_MODELS) }),
            )
            .route(
                "/v1/chat/completions",
                post(move |body: axum::Json<Value>| {
                    let (tx, g) = (tx.clone(), g.clone());
                    async move {
                        let _ = tx.send(());
                        if body.0["stream"] == json!(true) {
                            let first = futures::stream::iter(
                                OPENAI_STREAM[..2]
                                    .iter()
                                    .map(|e| Ok::<_, std::io::Error>(e.to_string())),
                            );
                            let rest = futures::stream::once(async move {
                                g.acquire().await.unwrap().forget();
                                futures::stream::iter(
                                    OPENAI_STREAM[2..]
                                        .iter()
                                        .map(|e| Ok::<_, std::io::Error>(e.to_string())),
                                )
                            })
                            .flatten();
                            let body = Body::from_stream(first.chain(rest));
                            return axum::response::Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(body)
                                .unwrap();
                        }
                        g.acquire().await.unwrap().forget();
                        axum::response::Response::builder()
                            .header("content-type", "application/json")
                            .body(Body::from(OPENAI_COMPLETION))
                            .unwrap()
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

    /// Waits until a chat completion has reached the upstream.
    async fn arrived(&self) {
        self.arrived.lock().await.recv().await.unwrap();
    }

    /// Lets `n` held answers go on.
    fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

/// `[llm_providers.<name>]` of kind openai at `url`.
fn provider(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\nallow_no_key = true\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 30\n\n"
    )
}

fn gateway_for(toml: &str, hash: &str) -> Gateway {
    let config = Config::from_toml_str(toml).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    Gateway::from_config(client, &config).with_config_hash(hash)
}

async fn start(toml: &str, hash: &str) -> (GatewayHandle, String) {
    let handle = gateway_for(toml, hash).bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", handle.local_addr());
    (handle, base)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream,
           "messages": [{"role": "user", "content": "Hello"}]})
}

async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A gated upstream and a gateway on it whose `[gateway]` table is
/// `gateway` (TOML lines), with the gateway's base URL.
async fn gated_gateway(gateway: &str, hash: &str) -> (Gated, GatewayHandle, String) {
    let up = Gated::start().await;
    let toml = format!(
        "{}{ROUTING}[gateway]\n{gateway}",
        provider("openai", &up.url)
    );
    let (handle, base) = start(&toml, hash).await;
    (up, handle, base)
}

/// A chat request sent on a connection of its own, in the background.
fn chat_in_background(base: &str) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let url = format!("{base}/v1/chat/completions");
    tokio::spawn(async move { http().post(url).json(&chat(false)).send().await })
}

/// Waits until nothing accepts connections on `base` any more.
async fn refused(base: &str) {
    let addr = base.trim_start_matches("http://").to_string();
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn live_and_ready_need_no_key_and_ignore_upstream_health() {
    let down = MockServer::refused_url().await.unwrap();
    let toml = format!(
        "{}{ROUTING}[gateway]\napi_keys = [\"sk-gw-test\"]\n",
        provider("openai", &down)
    );
    let (handle, base) = start(&toml, "aaaaaaaaaaaa").await;
    let http = http();

    // Every provider down: /health says so, readiness does not.
    let r = http
        .get(format!("{base}/health?probe=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (status, body) = get_json(&http, &format!("{base}/health/live")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("live")));
    let (status, body) = get_json(&http, &format!("{base}/health/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "ready", "config": "aaaaaaaaaaaa"}));
    // The API itself still needs the key.
    let r = http.get(format!("{base}/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(handle.status().is_ready());
    assert_eq!(handle.shutdown().await, Shutdown::Graceful);
}

#[tokio::test]
async fn draining_fails_readiness_keeps_answering_and_lets_streams_finish() {
    let up = Gated::start().await;
    let toml = format!("{}{ROUTING}", provider("openai", &up.url));
    let (handle, base) = start(&toml, "bbbbbbbbbbbb").await;
    let status = handle.status();
    let http = http();

    // A stream in flight: its first event is through, the rest is held.
    let mut stream = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    up.arrived().await;
    let mut text = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert_eq!(status.inflight_requests(), 1);

    handle.start_draining();
    let (code, body) = get_json(&http, &format!("{base}/health/ready")).await;
    assert_eq!(code, 503);
    assert_eq!(body["status"], "draining");
    let (code, _) = get_json(&http, &format!("{base}/health/live")).await;
    assert_eq!(code, 200);
    // Still accepting and answering, asking clients to reconnect elsewhere.
    let r = http.get(format!("{base}/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["connection"], "close");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("llm_gateway_draining 1\n"), "{metrics}");
    assert!(
        metrics.contains("llm_gateway_inflight_requests "),
        "{metrics}"
    );

    // The listener closes; the stream still finishes.
    let shutdown = tokio::spawn(handle.shutdown());
    refused(&base).await;
    up.release(1);
    while let Some(chunk) = stream.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("\"Hello\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(shutdown.await.unwrap(), Shutdown::Graceful);
    assert_eq!((status.cut_requests(), status.cut_connections()), (0, 0));
    assert_eq!(status.inflight_requests(), 0);
    assert!(!status.is_ready());
}

#[tokio::test]
async fn drain_closes_the_listener_after_the_delay() {
    let (up, handle, base) = gated_gateway("drain_delay = 0.2\n", "cccccccccccc").await;
    let status = handle.status();
    let http = http();
    let pending = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/v1/chat/completions"))
                .json(&chat(false))
                .send()
                .await
                .unwrap()
        }
    });
    up.arrived().await;
    let drained = tokio::spawn(handle.drain());
    while status.is_ready() {
        tokio::task::yield_now().await;
    }
    refused(&base).await;
    up.release(1);
    let r = pending.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "Hello!"
    );
    assert_eq!(drained.await.unwrap(), Shutdown::Graceful);
}

#[tokio::test]
async fn what_outlives_the_grace_is_cut_counted_and_exported() {
    let (up, handle, base) = gated_gateway("shutdown_grace = 0.1\n", "dddddddddddd").await;
    let status = handle.status();
    let pending = chat_in_background(&base);
    up.arrived().await;
    assert_eq!(handle.shutdown().await, Shutdown::Forced);
    assert!(
        pending.await.unwrap().is_err(),
        "the cut request has no answer"
    );
    assert_eq!((status.cut_requests(), status.cut_connections()), (1, 1));
    assert_eq!(status.inflight_requests(), 0);
    let text = status.prometheus_text();
    assert!(
        text.contains("llm_gateway_shutdown_cut_requests_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("llm_gateway_shutdown_cut_connections_total 1\n"),
        "{text}"
    );
}

/// A cut switch ends a drain in its delay (both the delay and the grace
/// are ten minutes here): the request in flight is cut and counted, on
/// every worker, and the drain returns at once.
#[tokio::test]
async fn a_cut_ends_a_long_drain_at_once() {
    let (up, handle, base) = gated_gateway(
        "drain_delay = 600\nshutdown_grace = 600\nworkers = 2\n",
        "cccccccccccc",
    )
    .await;
    let status = handle.status();
    let pending = chat_in_background(&base);
    up.arrived().await;
    let cut = handle.cut_switch();
    handle.start_draining();
    let draining = tokio::spawn(handle.drain());
    // Still serving during the delay: readiness is what changed.
    let (code, _) = get_json(&http(), &format!("{base}/health/ready")).await;
    assert_eq!(code, 503);
    cut.cut();
    // A bound on a failure (the drain would take ten minutes), not a timing.
    let outcome = tokio::time::timeout(Duration::from_secs(60), draining)
        .await
        .expect("the cut did not end the drain");
    assert_eq!(outcome.unwrap(), Shutdown::Forced);
    assert!(
        pending.await.unwrap().is_err(),
        "the cut request has no answer"
    );
    // The readiness probe's connection may still be closing: at least one.
    assert_eq!(status.cut_requests(), 1);
    assert!(status.cut_connections() >= 1);
    refused(&base).await;
}

/// A cut with nothing in flight is a graceful shutdown: idle keep-alive
/// connections close, nothing is counted as cut.
#[tokio::test]
async fn a_cut_with_nothing_in_flight_is_graceful() {
    let (up, handle, base) = gated_gateway(
        "drain_delay = 600\nshutdown_grace = 600\nworkers = 2\n",
        "bbbbbbbbbbbb",
    )
    .await;
    up.release(1);
    let status = handle.status();
    // One answered request leaves its keep-alive connection open and idle.
    let http = http();
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let cut = handle.cut_switch();
    let draining = tokio::spawn(handle.drain());
    cut.cut();
    let outcome = tokio::time::timeout(Duration::from_secs(60), draining)
        .await
        .expect("the cut did not end the drain");
    assert_eq!(outcome.unwrap(), Shutdown::Graceful);
    assert_eq!((status.cut_requests(), status.cut_connections()), (0, 0));
    refused(&base).await;
}

/// Dropping the handle stops its workers even while a cut switch and a
/// worker lease (which keeps their runtimes) are alive.
#[tokio::test]
async fn dropping_the_handle_stops_serving_whatever_else_is_held() {
    let (_up, handle, base) = gated_gateway("workers = 2\n", "999999999999").await;
    let (cut, lease) = (handle.cut_switch(), handle.worker_lease());
    drop(handle);
    // A bound on a failure (the listener would stay open), not a timing.
    tokio::time::timeout(Duration::from_secs(60), refused(&base))
        .await
        .expect("still accepting after the handle was dropped");
    drop((cut, lease));
}

/// With several worker threads (each a listener of its own), a forced
/// shutdown counts every cut request and connection once, whichever
/// workers held them.
#[tokio::test]
async fn several_workers_count_what_they_cut_once() {
    let (up, handle, base) =
        gated_gateway("shutdown_grace = 0.1\nworkers = 3\n", "eeeeeeeeeeee").await;
    assert_eq!(handle.workers(), 3);
    let status = handle.status();
    let mut pending = Vec::new();
    for _ in 0..6 {
        // A client each: six connections, spread over the workers by the kernel.
        pending.push(chat_in_background(&base));
    }
    for _ in 0..6 {
        up.arrived().await;
    }
    assert_eq!(status.inflight_requests(), 6);
    assert_eq!(handle.shutdown().await, Shutdown::Forced);
    for p in pending {
        assert!(p.await.unwrap().is_err(), "a cut request has no answer");
    }
    assert_eq!((status.cut_requests(), status.cut_connections()), (6, 6));
    assert_eq!(status.inflight_requests(), 0);
}

/// Requests on many connections are all answered by a gateway on several
/// workers, and a second gateway cannot take the same port (the socket
/// option that lets the workers share it does not let another process in).
#[tokio::test]
async fn workers_share_one_port_that_nobody_else_gets() {
    let up = Gated::start().await;
    up.release(1000);
    let toml = format!(
        "{}{ROUTING}[gateway]\nworkers = 2\n",
        provider("openai", &up.url)
    );
    let (handle, base) = start(&toml, "ffffffffffff").await;
    assert_eq!(handle.workers(), 2);
    let mut answers = Vec::new();
    for _ in 0..16 {
        let (http, base) = (http(), base.clone());
        answers.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/chat/completions"))
                .json(&chat(false))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    for a in answers {
        assert_eq!(a.await.unwrap(), 200);
    }
    let addr = handle.local_addr().to_string();
    let second = gateway_for(&toml, "ffffffffffff").bind(&addr).await;
    let err = second.expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
    assert_eq!(handle.shutdown().await, Shutdown::Graceful);
}

#[tokio::test]
async fn reload_routes_new_requests_while_running_ones_finish_on_the_old() {
    let alpha = Gated::start().await;
    let beta = openai(llm_core::testing::MockReply::json(200, OPENAI_COMPLETION)).await;
    let first = format!("{}{ROUTING}", provider("alpha", &alpha.url));
    let second = format!("{}{ROUTING}", provider("beta", &beta.url()));
    let (mut handle, base) = start(&first, "111111111111").await;
    let status = handle.status();
    let http = http();

    let running = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/v1/chat/completions"))
                .json(&chat(false))
                .send()
                .await
                .unwrap()
        }
    });
    alpha.arrived().await;
    handle.reload(gateway_for(&second, "222222222222"));
    assert_eq!(status.config_hash().as_deref(), Some("222222222222"));

    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-provider"], "beta");
    assert_eq!(r.headers()["x-llm-config"], "222222222222");
    alpha.release(1);
    let r = running.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-provider"], "alpha");
    assert_eq!(r.headers()["x-llm-config"], "111111111111");

    // One registry: the client's series once, the live configuration only.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("llm_gateway_config_info{hash=\"222222222222\"} 1\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("111111111111"), "{metrics}");
    assert!(metrics.contains("llm_gateway_config_reloads_total{result=\"applied\"} 1\n"));
    assert_eq!(
        metrics.matches("# TYPE llm_requests_total counter").count(),
        1,
        "{metrics}"
    );
    assert!(metrics.contains("provider=\"beta\""), "{metrics}");
    // The gateway's own series follow the client's.
    for name in [
        "# TYPE llm_gateway_limit_backend_errors_total counter",
        "# TYPE llm_gateway_spend_rows_dropped_total counter",
        "# TYPE llm_gateway_inflight_requests gauge",
    ] {
        assert_eq!(metrics.matches(name).count(), 1, "{name}: {metrics}");
    }
    let (_, ready) = get_json(&http, &format!("{base}/health/ready")).await;
    assert_eq!(ready["config"], "222222222222");
    assert_eq!(status.reloads(), (1, 0));
    handle.shutdown().await;
}

#[tokio::test]
async fn reload_applies_the_new_files_keys() {
    let up = openai(llm_core::testing::MockReply::json(200, OPENAI_COMPLETION)).await;
    let with_key = |k: &str| {
        format!(
            "{}{ROUTING}[gateway]\napi_keys = [\"{k}\"]\n",
            provider("openai", &up.url())
        )
    };
    let (mut handle, base) = start(&with_key("sk-gw-old"), "333333333333").await;
    let http = http();
    let models = |key: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/v1/models"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(models("sk-gw-old").await, 200);
    handle.reload(gateway_for(&with_key("sk-gw-new"), "444444444444"));
    assert_eq!(models("sk-gw-old").await, 401);
    assert_eq!(models("sk-gw-new").await, 200);
    handle.shutdown().await;
}
