//! **Test helper, not a product.** A tiny fake `ollama` executable used by this
//! crate's service-manager integration tests (`tests/integration/service.rs`, which find it
//! through `env!("CARGO_BIN_EXE_fake-ollama")`).
//!
//! `fake-ollama serve` listens on `OLLAMA_HOST` (`host:port`, default
//! `127.0.0.1:11434`) and answers, with `Connection: close`:
//!
//! - `GET /` → `Ollama is running`
//! - `GET /api/version` → `{"version":"0.0.0-fake"}`
//! - `GET /api/tags` → the models it has
//! - `POST /api/pull` → an NDJSON progress stream ending in `{"status":"success"}`;
//!   the model is served afterwards
//! - `POST /api/chat` → `Hello!` (streamed as NDJSON unless `"stream": false`),
//!   or `404 {"error":"model '…' not found"}` for a model it does not have
//!
//! Behaviour is set through environment variables:
//!
//! - `FAKE_OLLAMA_MODE`: `exit` exits at once with status 1 after a message on
//!   stderr; `hang` never listens (never becomes ready)
//! - `FAKE_OLLAMA_READY_DELAY_MS`: wait this long before listening
//! - `FAKE_OLLAMA_MODELS`: comma-separated models it has at start
//! - `FAKE_OLLAMA_PULL_FAIL`: comma-separated models whose pull fails with an
//!   `{"error":…}` line inside the `200` stream
//! - `FAKE_OLLAMA_IDLE_EXIT_SECS`: exit after this long without a request
//!   (default 60), so a test that dies early leaves nothing behind for long
//! - `FAKE_OLLAMA_SPAWN_LOG`: append `<pid> <OLLAMA_HOST>` to this file at
//!   start, so a test can count the servers started
//! - `FAKE_OLLAMA_READY_FILE`: listen only once this file exists
//! - `FAKE_OLLAMA_GRANDCHILD`: start `fake-ollama linger` (which ignores
//!   SIGTERM) in the same process group and write its pid to this file
//!
//! `fake-ollama linger` ignores SIGTERM and exits after 60 s (or on SIGKILL).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const DIGEST: &str = "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff";
const LAYER_SIZE: u64 = 2_019_377_376;

struct State {
    models: Mutex<Vec<String>>,
    pull_fail: HashSet<String>,
    last_activity: Mutex<Instant>,
}

impl State {
    fn has(&self, model: &str) -> bool {
        let want = canonical(model);
        self.models
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|m| canonical(m) == want)
    }

    fn touch(&self) {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

fn canonical(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn list(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("linger") {
        linger().await;
        return;
    }
    if std::env::args().nth(1).as_deref() != Some("serve") {
        eprintln!("usage: fake-ollama serve   (a test helper of llm-ollama)");
        std::process::exit(2);
    }
    let idle = Duration::from_secs(env_u64("FAKE_OLLAMA_IDLE_EXIT_SECS").unwrap_or(60));
    let state = Arc::new(State {
        models: Mutex::new(list("FAKE_OLLAMA_MODELS")),
        pull_fail: list("FAKE_OLLAMA_PULL_FAIL")
            .iter()
            .map(|m| canonical(m))
            .collect(),
        last_activity: Mutex::new(Instant::now()),
    });
    tokio::spawn(watchdog(state.clone(), idle));
    let host = std::env::var("OLLAMA_HOST").unwrap_or_else(|_| "127.0.0.1:11434".into());
    if let Some(path) = std::env::var_os("FAKE_OLLAMA_SPAWN_LOG") {
        append_line(&path, &format!("{} {host}", std::process::id()));
    }
    if let Some(path) = std::env::var_os("FAKE_OLLAMA_GRANDCHILD") {
        start_grandchild(&path);
    }
    match std::env::var("FAKE_OLLAMA_MODE").as_deref() {
        Ok("exit") => {
            eprintln!("fake-ollama: exiting at once (FAKE_OLLAMA_MODE=exit)");
            std::process::exit(1);
        }
        Ok("hang") => std::future::pending::<()>().await,
        _ => {}
    }
    if let Some(ms) = env_u64("FAKE_OLLAMA_READY_DELAY_MS") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(path) = std::env::var_os("FAKE_OLLAMA_READY_FILE") {
        while !std::path::Path::new(&path).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let host = host
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = match TcpListener::bind(&host).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: listen tcp {host}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("fake-ollama: listening on {host}");
    while let Ok((sock, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(sock, &state).await {
                eprintln!("fake-ollama: connection error: {e}");
            }
        });
    }
}

fn append_line(path: &std::ffi::OsStr, line: &str) {
    use std::io::Write as _;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "fake-ollama: cannot append to {}: {e}",
            path.to_string_lossy()
        );
    }
}

/// Starts `fake-ollama linger` in this process group; its pid goes to `path`
/// (written whole: a temporary file renamed into place).
fn start_grandchild(path: &std::ffi::OsStr) {
    let started = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg("linger")
            .stdin(std::process::Stdio::null())
            .spawn()
    });
    match started {
        Ok(child) => {
            let path = std::path::PathBuf::from(path);
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, child.id().to_string())
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                eprintln!("fake-ollama: cannot write {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("fake-ollama: cannot start a grandchild: {e}"),
    }
}

/// Ignores SIGTERM (only SIGKILL ends it early) and exits after 60 s.
async fn linger() {
    #[cfg(unix)]
    let _term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    tokio::time::sleep(Duration::from_secs(60)).await;
}

async fn watchdog(state: Arc<State>, idle: Duration) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = *state
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() > idle {
            eprintln!("fake-ollama: idle for {idle:?}, exiting");
            std::process::exit(0);
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Value,
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let start = head_end + 4;
    while buf.len() < start + len {
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[start..start + len]).unwrap_or(Value::Null);
    Ok(Some(Request { method, path, body }))
}

async fn respond(
    sock: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.flush().await
}

async fn respond_ndjson(sock: &mut TcpStream, lines: &[Value]) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    sock.write_all(head.as_bytes()).await?;
    for line in lines {
        let text = format!("{line}\n");
        sock.write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes())
            .await?;
        sock.flush().await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    sock.flush().await
}

fn model_of(body: &Value) -> String {
    body.get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

async fn serve(mut sock: TcpStream, state: &State) -> std::io::Result<()> {
    let Some(req) = read_request(&mut sock).await? else {
        return Ok(());
    };
    state.touch();
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET" | "HEAD", "/") => {
            respond(&mut sock, "200 OK", "text/plain", "Ollama is running").await
        }
        ("GET", "/api/version") => {
            respond(
                &mut sock,
                "200 OK",
                "application/json; charset=utf-8",
                r#"{"version":"0.0.0-fake"}"#,
            )
            .await
        }
        ("GET", "/api/tags") => {
            let models: Vec<Value> = state
                .models
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|m| json!({"name": canonical(m), "model": canonical(m), "size": LAYER_SIZE}))
                .collect();
            let body = json!({ "models": models }).to_string();
            respond(
                &mut sock,
                "200 OK",
                "application/json; charset=utf-8",
                &body,
            )
            .await
        }
        ("POST", "/api/pull") => pull(&mut sock, state, &model_of(&req.body)).await,
        ("POST", "/api/chat") => chat(&mut sock, state, &req.body).await,
        _ => {
            respond(
                &mut sock,
                "404 Not Found",
                "text/plain",
                "404 page not found",
            )
            .await
        }
    }
}

async fn pull(sock: &mut TcpStream, state: &State, model: &str) -> std::io::Result<()> {
    if model.is_empty() {
        return respond(
            sock,
            "400 Bad Request",
            "application/json; charset=utf-8",
            r#"{"error":"model is required"}"#,
        )
        .await;
    }
    let mut lines = vec![json!({"status": "pulling manifest"})];
    if state.pull_fail.contains(&canonical(model)) {
        lines.push(json!({"error": "pull model manifest: file does not exist"}));
        return respond_ndjson(sock, &lines).await;
    }
    let short = &DIGEST[7..19];
    lines
        .push(json!({"status": format!("pulling {short}"), "digest": DIGEST, "total": LAYER_SIZE}));
    for completed in [LAYER_SIZE / 4, LAYER_SIZE / 2, LAYER_SIZE] {
        lines.push(json!({"status": format!("pulling {short}"), "digest": DIGEST, "total": LAYER_SIZE, "completed": completed}));
    }
    lines.push(json!({"status": "verifying sha256 digest"}));
    lines.push(json!({"status": "writing manifest"}));
    lines.push(json!({"status": "success"}));
    if !state.has(model) {
        state
            .models
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(canonical(model));
    }
    respond_ndjson(sock, &lines).await
}

async fn chat(sock: &mut TcpStream, state: &State, body: &Value) -> std::io::Result<()> {
    let model = model_of(body);
    if !state.has(&model) {
        let err = json!({ "error": format!("model '{model}' not found") }).to_string();
        return respond(
            sock,
            "404 Not Found",
            "application/json; charset=utf-8",
            &err,
        )
        .await;
    }
    let created = "2025-08-27T10:15:02.123456789Z";
    let done = json!({
        "model": model, "created_at": created,
        "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": "stop",
        "total_duration": 412_345_678u64, "load_duration": 23_456_789u64,
        "prompt_eval_count": 31, "prompt_eval_duration": 98_765_432u64,
        "eval_count": 2, "eval_duration": 45_678_901u64
    });
    if body.get("stream") == Some(&Value::Bool(false)) {
        let mut whole = done;
        whole["message"]["content"] = json!("Hello!");
        return respond(
            sock,
            "200 OK",
            "application/json; charset=utf-8",
            &whole.to_string(),
        )
        .await;
    }
    let piece = |text: &str| json!({"model": model, "created_at": created, "message": {"role": "assistant", "content": text}, "done": false});
    respond_ndjson(sock, &[piece("Hello"), piece("!"), done]).await
}
