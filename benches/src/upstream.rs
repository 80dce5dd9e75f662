//! A fast fake LLM server on 127.0.0.1 (hyper, HTTP/1.1 keep-alive), on its
//! own thread and single-threaded runtime or as a task of a given runtime,
//! answering fixed realistic bodies:
//!
//! - `POST /v1/chat/completions`: the §2.6 `chat.completion`, or with
//!   `"stream":true` in the body the configured SSE events;
//! - `GET /v1/models`: one model;
//! - `POST /api/chat`: the configured NDJSON lines, or with `"stream":false`
//!   the non-streaming Ollama answer;
//! - `GET /api/version`.
//!
//! An optional fixed delay is applied before every response head.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::fixtures;

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Wait before every response head.
    pub delay: Duration,
    /// Body frames of a streamed OpenAI answer.
    pub openai_stream: Vec<Bytes>,
    /// Body frames of a streamed Ollama answer.
    pub ollama_stream: Vec<Bytes>,
    /// Body frames of the long stream (model [`fixtures::MODEL_LONG_STREAM`]).
    pub openai_long_stream: Vec<Bytes>,
    /// Pause between the long stream's frames (zero: written at once).
    pub chunk_interval: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            openai_stream: fixtures::OPENAI_STREAM_EVENTS
                .iter()
                .map(|e| Bytes::from_static(e.as_bytes()))
                .collect(),
            ollama_stream: fixtures::OLLAMA_STREAM_LINES
                .iter()
                .map(|e| Bytes::from_static(e.as_bytes()))
                .collect(),
            openai_long_stream: fixtures::openai_long_stream(fixtures::LONG_STREAM_CHUNKS),
            chunk_interval: Duration::ZERO,
        }
    }
}

struct State {
    opts: UpstreamOptions,
    requests: AtomicU64,
}

/// A running fake server; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .finish()
    }
}

type Body = BoxBody<Bytes, Infallible>;

impl Upstream {
    /// Starts a server on a free loopback port.
    pub fn start(opts: UpstreamOptions) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            opts,
            requests: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let st = state.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("fake-upstream".into())
            .spawn(move || rt.block_on(serve(listener, st, stopped)))?;
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Starts a server on a free loopback port as a task of the runtime
    /// `handle` (no thread of its own): with a single-threaded runtime the
    /// client and the server then take turns on one thread, so a round trip
    /// costs CPU time only, no cross-thread wake-ups.
    pub fn start_on(
        handle: &tokio::runtime::Handle,
        opts: UpstreamOptions,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            opts,
            requests: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        handle.spawn(serve(listener, state.clone(), stopped));
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            thread: None,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `base_url` of an `openai` instance pointing here.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `base_url` of an `ollama` instance pointing here.
    pub fn ollama_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, st: Arc<State>, mut stop: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                let _ = sock.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, st.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), service)
                        .await;
                });
            }
        }
    }
}

fn full(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    h.insert(
        "x-request-id",
        hyper::header::HeaderValue::from_static("req_7b4c1e2f9a0d4e6b8c3f5a1d2e9b0c47"),
    );
    resp
}

fn streamed(content_type: &'static str, frames: &[Bytes]) -> Response<Body> {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        frames.iter().map(|b| Ok(Frame::data(b.clone()))).collect();
    let mut resp = Response::new(StreamBody::new(futures::stream::iter(frames)).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// `frames` with `interval` before each after the first (none: at once).
fn paced(content_type: &'static str, frames: &[Bytes], interval: Duration) -> Response<Body> {
    if interval.is_zero() {
        return streamed(content_type, frames);
    }
    let frames = frames.to_vec();
    let body = futures::stream::unfold(
        (frames.into_iter(), true),
        move |(mut it, first)| async move {
            let next = it.next()?;
            if !first {
                tokio::time::sleep(interval).await;
            }
            Some((Ok::<_, Infallible>(Frame::data(next)), (it, false)))
        },
    );
    let mut resp = Response::new(StreamBody::new(body).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// `first`, then nothing until the client goes away.
fn held(content_type: &'static str, first: &[Bytes]) -> Response<Body> {
    use futures::StreamExt as _;
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        first.iter().map(|b| Ok(Frame::data(b.clone()))).collect();
    let body = futures::stream::iter(frames).chain(futures::stream::pending());
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(body)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn handle(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    st.requests.fetch_add(1, Ordering::Relaxed);
    if !st.opts.delay.is_zero() {
        tokio::time::sleep(st.opts.delay).await;
    }
    let resp = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/v1/chat/completions") => {
            let model = |m: &str| contains(&body, format!("\"model\":\"{m}\"").as_bytes());
            if contains(&body, b"\"stream\":true") {
                if model(fixtures::MODEL_LONG_STREAM) {
                    paced(
                        "text/event-stream",
                        &st.opts.openai_long_stream,
                        st.opts.chunk_interval,
                    )
                } else if model(fixtures::MODEL_HELD_STREAM) {
                    held(
                        "text/event-stream",
                        st.opts.openai_stream.get(..2).unwrap_or_default(),
                    )
                } else {
                    streamed("text/event-stream", &st.opts.openai_stream)
                }
            } else {
                full("application/json", fixtures::OPENAI_COMPLETION)
            }
        }
        (&Method::GET, "/v1/models") => full("application/json", fixtures::OPENAI_MODELS),
        (&Method::POST, "/api/chat") => {
            if contains(&body, b"\"stream\":false") {
                full(
                    "application/json; charset=utf-8",
                    fixtures::OLLAMA_COMPLETION,
                )
            } else {
                streamed("application/x-ndjson", &st.opts.ollama_stream)
            }
        }
        (&Method::GET, "/api/version") => {
            full("application/json; charset=utf-8", fixtures::OLLAMA_VERSION)
        }
        _ => {
            let mut r = full("text/plain", "404 page not found");
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(resp)
}
