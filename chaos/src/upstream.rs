//! The chaos upstream: an HTTP server on 127.0.0.1 speaking the OpenAI Chat
//! Completions or the Ollama native chat API, injecting faults as its current
//! [`Role`] says.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::fault::{Fault, Role};
use crate::http1::{self, Request};
use crate::protocol::{self, answer_for, ollama, openai, poisoned_for};

/// Which API an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKind {
    /// OpenAI Chat Completions under `/v1`.
    OpenAi,
    /// Ollama's native `/api/chat`.
    Ollama,
}

impl ApiKind {
    /// The llm-router provider kind that talks to it.
    pub fn provider_kind(self) -> &'static str {
        match self {
            ApiKind::OpenAi => "openai",
            ApiKind::Ollama => "ollama",
        }
    }
}

/// Tunables of the misbehaviour.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Size of the padding of [`Fault::Huge`] replies.
    pub huge_bytes: usize,
    /// Longest time a hanging or stalled reply keeps the connection.
    pub hang_limit: Duration,
    /// Pause between the pieces of a slow drip.
    pub drip_delay: Duration,
    /// Pieces a slow drip is cut into.
    pub drip_pieces: usize,
    /// `retry-after-ms` of [`Fault::RateLimited`].
    pub retry_after_ms: u64,
    /// `retry-after` (seconds) of [`Fault::RateLimitedLong`].
    pub long_retry_after_secs: u64,
    /// Whether the `/models`, `/api/version` and `/api/tags` probes get faults too.
    pub fault_probes: bool,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        Self {
            huge_bytes: 1024 * 1024,
            hang_limit: Duration::from_secs(30),
            drip_delay: Duration::from_millis(5),
            drip_pieces: 24,
            retry_after_ms: 20,
            long_retry_after_secs: 3600,
            fault_probes: true,
            seed: 7,
        }
    }
}

/// Upstream calls per prompt, shared by every upstream of a run, so each
/// client request (with its own prompt) can be matched with its calls.
#[derive(Debug, Default)]
pub struct Ledger {
    calls: Mutex<HashMap<String, u32>>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, prompt: &str) {
        *self.lock().entry(prompt.to_string()).or_insert(0) += 1;
    }

    /// Calls seen for `prompt` by every upstream.
    pub fn calls(&self, prompt: &str) -> u32 {
        self.lock().get(prompt).copied().unwrap_or(0)
    }

    /// Calls of every prompt.
    pub fn snapshot(&self) -> HashMap<String, u32> {
        self.lock().clone()
    }
}

/// What one upstream saw and did.
#[derive(Debug, Clone, Default)]
pub struct UpstreamStats {
    /// Chat calls received.
    pub chat_calls: u64,
    /// Probe calls (`/models`, `/api/version`, `/api/tags`) received.
    pub probe_calls: u64,
    /// Faults injected, by kind (refusals counted per phase spent down).
    pub faults: BTreeMap<Fault, u64>,
}

struct Shared {
    kind: ApiKind,
    options: ChaosOptions,
    role: Mutex<Role>,
    rng: Mutex<fastrand::Rng>,
    ledger: Arc<Ledger>,
    faults: Mutex<BTreeMap<Fault, u64>>,
    chat_calls: AtomicU64,
    probe_calls: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One chaos upstream listening on a fixed loopback port.
pub struct Upstream {
    name: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("kind", &self.shared.kind)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Starts an upstream on a free loopback port, healthy.
    pub async fn start(
        name: &str,
        kind: ApiKind,
        options: ChaosOptions,
        ledger: Arc<Ledger>,
    ) -> std::io::Result<Self> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let seed = options.seed ^ u64::from(addr.port());
        let shared = Arc::new(Shared {
            kind,
            options,
            role: Mutex::new(Role::Healthy),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            ledger,
            faults: Mutex::new(BTreeMap::new()),
            chat_calls: AtomicU64::new(0),
            probe_calls: AtomicU64::new(0),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            name: name.to_string(),
            addr,
            shared,
            server: Mutex::new(Some(server)),
        })
    }

    /// The instance name it is configured under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API it speaks.
    pub fn kind(&self) -> ApiKind {
        self.shared.kind
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `base_url` a provider of its kind is configured with.
    pub fn base_url(&self) -> String {
        match self.shared.kind {
            ApiKind::OpenAi => format!("http://{}/v1", self.addr),
            ApiKind::Ollama => format!("http://{}", self.addr),
        }
    }

    /// The role in force.
    pub fn role(&self) -> Role {
        lock(&self.shared.role).clone()
    }

    /// Changes the role. Going down closes the port and every open connection;
    /// coming back up listens on the same port again.
    pub async fn set_role(&self, role: Role) -> std::io::Result<()> {
        let down = role == Role::Down;
        *lock(&self.shared.role) = role;
        let mut server = lock(&self.server);
        if down {
            if let Some(task) = server.take() {
                task.abort();
                *lock(&self.shared.faults).entry(Fault::Refused).or_insert(0) += 1;
            }
        } else if server.is_none() {
            let listener = rebind(self.addr)?;
            *server = Some(tokio::spawn(serve(listener, self.shared.clone())));
        }
        Ok(())
    }

    /// What it saw so far.
    pub fn stats(&self) -> UpstreamStats {
        UpstreamStats {
            chat_calls: self.shared.chat_calls.load(Ordering::Relaxed),
            probe_calls: self.shared.probe_calls.load(Ordering::Relaxed),
            faults: lock(&self.shared.faults).clone(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.server).take() {
            task.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds `addr` again, retrying briefly (the old socket may still be closing).
fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("cannot bind")))
}

/// Accepts connections until aborted; aborting drops the listener and every
/// connection task with it.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((sock, _)) = accepted {
                    let _ = sock.set_nodelay(true);
                    conns.spawn(connection(sock, shared.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What a connection does after a reply.
enum After {
    KeepAlive,
    Close,
}

async fn connection(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let req = match http1::read_request(&mut sock, &mut buf).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return,
        };
        match handle(&mut sock, &shared, req).await {
            Ok(After::KeepAlive) => {}
            Ok(After::Close) | Err(_) => return,
        }
    }
}

/// The parts of a chat request the server cares about.
struct Call {
    prompt: String,
    stream: bool,
    include_usage: bool,
}

fn parse_call(kind: ApiKind, body: &[u8]) -> Call {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let prompt = v["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let stream = match kind {
        ApiKind::OpenAi => v["stream"].as_bool().unwrap_or(false),
        ApiKind::Ollama => v["stream"].as_bool().unwrap_or(true),
    };
    Call {
        prompt,
        stream,
        include_usage: v["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false),
    }
}

fn draw(shared: &Shared) -> Option<Fault> {
    let role = lock(&shared.role).clone();
    let fault = role.draw(&mut lock(&shared.rng));
    if let Some(f) = fault {
        *lock(&shared.faults).entry(f).or_insert(0) += 1;
    }
    fault
}

async fn handle(sock: &mut TcpStream, shared: &Shared, req: Request) -> std::io::Result<After> {
    let kind = shared.kind;
    let chat = matches!(
        (kind, req.method.as_str(), req.path.as_str()),
        (ApiKind::OpenAi, "POST", "/v1/chat/completions") | (ApiKind::Ollama, "POST", "/api/chat")
    );
    let probe: Option<(&str, &str)> = match (kind, req.method.as_str(), req.path.as_str()) {
        (ApiKind::OpenAi, "GET", "/v1/models") => Some(("application/json", openai::MODELS)),
        (ApiKind::Ollama, "GET", "/api/version") => {
            Some(("application/json; charset=utf-8", ollama::VERSION))
        }
        (ApiKind::Ollama, "GET", "/api/tags") => {
            Some(("application/json; charset=utf-8", ollama::TAGS))
        }
        (ApiKind::Ollama, "GET" | "HEAD", "/") => Some(("text/plain", "Ollama is running")),
        _ => None,
    };
    if let Some((ct, body)) = probe {
        shared.probe_calls.fetch_add(1, Ordering::Relaxed);
        let fault = if shared.options.fault_probes {
            draw(shared)
        } else {
            None
        };
        return match fault {
            None | Some(Fault::SlowDrip | Fault::Huge) => {
                http1::send(sock, &http1::full(200, ct, &[], body.as_bytes())).await?;
                Ok(After::KeepAlive)
            }
            Some(f) => fail_plain(sock, shared, f).await,
        };
    }
    if !chat {
        let body = br#"{"error":"not found"}"#;
        http1::send(sock, &http1::full(404, "application/json", &[], body)).await?;
        return Ok(After::KeepAlive);
    }
    shared.chat_calls.fetch_add(1, Ordering::Relaxed);
    let call = parse_call(kind, &req.body);
    shared.ledger.record(&call.prompt);
    let fault = draw(shared);
    respond(sock, shared, &call, fault).await
}

fn json_type(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::OpenAi => "application/json",
        ApiKind::Ollama => "application/json; charset=utf-8",
    }
}

fn stream_type(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::OpenAi => "text/event-stream",
        ApiKind::Ollama => "application/x-ndjson",
    }
}

fn json_body(kind: ApiKind, text: &str) -> Vec<u8> {
    match kind {
        ApiKind::OpenAi => openai::completion(text).into_bytes(),
        ApiKind::Ollama => ollama::chat(text).into_bytes(),
    }
}

/// The stream for `text`, one element per event or line (terminator included).
fn stream_units(kind: ApiKind, text: &str, include_usage: bool) -> Vec<Vec<u8>> {
    match kind {
        ApiKind::OpenAi => openai::stream_events(text, include_usage),
        ApiKind::Ollama => ollama::stream_lines(text),
    }
}

fn in_band_error(kind: ApiKind) -> Vec<u8> {
    match kind {
        ApiKind::OpenAi => openai::error_event(),
        ApiKind::Ollama => ollama::ERROR_LINE.to_vec(),
    }
}

fn error_body(kind: ApiKind, status: u16) -> &'static str {
    match kind {
        ApiKind::OpenAi => openai::error_body(status),
        ApiKind::Ollama => ollama::error_body(status),
    }
}

fn chunked(units: &[Vec<u8>], last: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for u in units {
        out.extend_from_slice(&http1::chunk(u));
    }
    if last {
        out.extend_from_slice(http1::LAST_CHUNK);
    }
    out
}

fn garbage(rng: &Mutex<fastrand::Rng>) -> Vec<u8> {
    let mut rng = lock(rng);
    let n = rng.usize(1..2048);
    (0..n).map(|_| rng.u8(..)).collect()
}

/// Failures that do not depend on the kind of call (also used for probes).
async fn fail_plain(sock: &mut TcpStream, shared: &Shared, fault: Fault) -> std::io::Result<After> {
    let kind = shared.kind;
    let opts = &shared.options;
    match fault {
        Fault::RateLimited => {
            let extra = [("retry-after-ms", opts.retry_after_ms.to_string())];
            let body = error_body(kind, 429).as_bytes();
            http1::send(sock, &http1::full(429, json_type(kind), &extra, body)).await?;
            Ok(After::KeepAlive)
        }
        Fault::RateLimitedLong => {
            let extra = [("retry-after", opts.long_retry_after_secs.to_string())];
            let body = error_body(kind, 429).as_bytes();
            http1::send(sock, &http1::full(429, json_type(kind), &extra, body)).await?;
            Ok(After::KeepAlive)
        }
        Fault::Status(s) => {
            let ct = if s == 502 && kind == ApiKind::OpenAi {
                "text/html"
            } else {
                json_type(kind)
            };
            let extra = [("x-request-id", openai::REQUEST_ID.to_string())];
            http1::send(
                sock,
                &http1::full(s, ct, &extra, error_body(kind, s).as_bytes()),
            )
            .await?;
            Ok(After::KeepAlive)
        }
        Fault::Hang => {
            http1::wait_for_close(sock, opts.hang_limit).await;
            Ok(After::Close)
        }
        Fault::Refused | Fault::Reset => {
            reset_later(sock);
            Ok(After::Close)
        }
        _ => {
            let body = garbage(&shared.rng);
            http1::send(sock, &http1::full(200, json_type(kind), &[], &body)).await?;
            Ok(After::Close)
        }
    }
}

/// Marks the socket so that closing it sends RST.
fn reset_later(sock: &TcpStream) {
    let _ = sock.set_zero_linger();
}

async fn respond(
    sock: &mut TcpStream,
    shared: &Shared,
    call: &Call,
    fault: Option<Fault>,
) -> std::io::Result<After> {
    let kind = shared.kind;
    let opts = &shared.options;
    let good = answer_for(&call.prompt);
    let bad = poisoned_for(&call.prompt);
    match (fault, call.stream) {
        (None, false) => {
            let extra = [("x-request-id", openai::REQUEST_ID.to_string())];
            let bytes = http1::full(200, json_type(kind), &extra, &json_body(kind, &good));
            http1::send(sock, &bytes).await?;
            Ok(After::KeepAlive)
        }
        (None, true) => {
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            for unit in stream_units(kind, &good, call.include_usage) {
                http1::send(sock, &http1::chunk(&unit)).await?;
            }
            http1::send(sock, http1::LAST_CHUNK).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::SlowDrip), false) => {
            let bytes = http1::full(200, json_type(kind), &[], &json_body(kind, &good));
            let piece = bytes.len().div_ceil(opts.drip_pieces.max(1));
            http1::drip(sock, &bytes, piece, opts.drip_delay).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::SlowDrip), true) => {
            // The head and first text at once (the model started), the rest
            // a few bytes at a time, splitting characters and JSON tokens.
            let units = stream_units(kind, &good, call.include_usage);
            let split = units.len().min(2);
            let mut first = http1::chunked_head(200, stream_type(kind));
            first.extend(chunked(&units[..split], false));
            http1::send(sock, &first).await?;
            let rest = chunked(&units[split..], true);
            let piece = rest.len().div_ceil(opts.drip_pieces.max(1));
            http1::drip(sock, &rest, piece, opts.drip_delay).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::Huge), false) => {
            let body = json_body(kind, &good);
            let pad = format!("\"padding\":\"{}\",", "x".repeat(opts.huge_bytes));
            let mut huge = Vec::with_capacity(body.len() + pad.len());
            huge.push(b'{');
            huge.extend_from_slice(pad.as_bytes());
            huge.extend_from_slice(&body[1..]);
            http1::send(sock, &http1::full(200, json_type(kind), &[], &huge)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::Huge), true) => {
            let pad = match kind {
                ApiKind::OpenAi => openai::padding_comment(opts.huge_bytes),
                ApiKind::Ollama => ollama::padding_line(opts.huge_bytes),
            };
            let mut units = vec![pad];
            units.extend(stream_units(kind, &good, call.include_usage));
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            http1::send(sock, &chunked(&units, true)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::Cut), false) => {
            let body = json_body(kind, &bad);
            let head = http1::head(
                200,
                &[
                    ("content-type", json_type(kind).to_string()),
                    ("content-length", body.len().to_string()),
                ],
            );
            http1::send(sock, &head).await?;
            http1::send(sock, &body[..body.len() / 2]).await?;
            Ok(After::Close)
        }
        (Some(Fault::Cut), true) => {
            let units = stream_units(kind, &bad, call.include_usage);
            let keep = units.len() / 2;
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            http1::send(sock, &chunked(&units[..keep], false)).await?;
            // Half of the next event, inside a complete chunk, then the connection drops.
            let next = &units[keep];
            http1::send(sock, &http1::chunk(&next[..next.len() / 2])).await?;
            Ok(After::Close)
        }
        (Some(Fault::Truncated), false) => {
            let body = json_body(kind, &bad);
            let cut = &body[..body.len() * 2 / 3];
            http1::send(sock, &http1::full(200, json_type(kind), &[], cut)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::Truncated), true) => {
            let mut units = stream_units(kind, &bad, call.include_usage);
            units.pop(); // the terminator: `[DONE]` or the `"done":true` line
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            http1::send(sock, &chunked(&units, true)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::InBandError), false) => {
            let body = match kind {
                ApiKind::OpenAi => {
                    let e = openai::error_event();
                    let s = String::from_utf8_lossy(&e);
                    s.trim_start_matches("data: ")
                        .trim_end()
                        .as_bytes()
                        .to_vec()
                }
                ApiKind::Ollama => ollama::ERROR_LINE.trim_ascii_end().to_vec(),
            };
            http1::send(sock, &http1::full(200, json_type(kind), &[], &body)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::InBandError), true) => {
            let mut units = stream_units(kind, &bad, call.include_usage);
            units.truncate(units.len() / 2 + 1);
            units.push(in_band_error(kind));
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            http1::send(sock, &chunked(&units, true)).await?;
            Ok(After::KeepAlive)
        }
        (Some(Fault::Stall), stream) => {
            if stream {
                let units = stream_units(kind, &bad, call.include_usage);
                http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
                http1::send(sock, &chunked(&units[..units.len() / 2], false)).await?;
            } else {
                let body = json_body(kind, &bad);
                let head = http1::head(
                    200,
                    &[
                        ("content-type", json_type(kind).to_string()),
                        ("content-length", body.len().to_string()),
                    ],
                );
                http1::send(sock, &head).await?;
                http1::send(sock, &body[..body.len() / 2]).await?;
            }
            http1::wait_for_close(sock, opts.hang_limit).await;
            Ok(After::Close)
        }
        (Some(Fault::Garbage), true) => {
            let body = garbage(&shared.rng);
            http1::send(sock, &http1::chunked_head(200, stream_type(kind))).await?;
            http1::send(sock, &chunked(&[body], true)).await?;
            Ok(After::KeepAlive)
        }
        (Some(f), _) => fail_plain(sock, shared, f).await,
    }
}

/// The answer a healthy upstream gives for `prompt` (re-exported for checks).
pub fn expected_answer(prompt: &str) -> String {
    protocol::answer_for(prompt)
}
