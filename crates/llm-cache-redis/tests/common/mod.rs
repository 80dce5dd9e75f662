//! Test helpers: a real Redis, either the one CI provides through
//! `LLM_TEST_REDIS_URL` or a `redis-server` process started here.
//!
//! Without either, a test prints `SKIPPED …` and passes, except in CI
//! (`CI=true`, or `LLM_TEST_REDIS_URL` set): there a missing Redis or tool
//! fails the test, so a green run means the tests ran.

#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llm_core::cache::{CacheKey, CachedResponse};
use llm_core::LlmRequest;

/// The variable CI sets to its Redis.
pub const ENV: &str = "LLM_TEST_REDIS_URL";

/// Whether a missing Redis (or tool) must fail the test instead of skipping
/// it: in CI (`CI` set to anything but `false`/`0`/empty, as CI services do)
/// or when `LLM_TEST_REDIS_URL` is set.
pub fn redis_required() -> bool {
    let ci = std::env::var("CI")
        .map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
        .unwrap_or(false);
    ci || std::env::var_os(ENV).is_some_and(|v| !v.is_empty())
}

/// Skips the test (locally) or fails it (in CI) because `what` is missing.
fn missing(test: &str, what: &str, hint: &str) {
    if redis_required() {
        panic!(
            "{test}: {what}; in CI (CI=true or {ENV} set) the Redis tests must run, \
             not skip ({hint})"
        );
    }
    // Straight to the stderr handle: the test harness hides `eprintln!`
    // output of passing tests, and this notice must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {what} ({hint})");
}

/// Bound on every wait in these tests (readiness, expiry, recovery).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The Redis a test talks to; an own server is stopped when this is dropped.
pub struct TestRedis {
    pub url: String,
    _server: Option<RedisServer>,
}

/// Redis for a test: `LLM_TEST_REDIS_URL` if set (it must answer, or the test
/// fails), else a `redis-server` started here, else `None` after a skip notice.
pub async fn redis(test: &str) -> Option<TestRedis> {
    if let Some(url) = std::env::var(ENV).ok().filter(|u| !u.is_empty()) {
        if let Err(e) = ping_url(&url).await {
            panic!("{ENV} is set but Redis there does not answer PING: {e}");
        }
        return Some(TestRedis { url, _server: None });
    }
    let server = own_server(test)?;
    Some(TestRedis {
        url: server.url(),
        _server: Some(server),
    })
}

/// A `redis-server` process of this test's own (to stop, pause and restart).
/// Missing binary: a failure in CI (see [`redis_required`]), else `None`
/// after a skip notice.
pub fn own_server(test: &str) -> Option<RedisServer> {
    own_server_with(test, &[])
}

/// [`own_server`] with extra `redis-server` arguments.
pub fn own_server_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
    if !on_path("redis-server") {
        missing(
            test,
            "no Redis to test against: `redis-server` is not on PATH",
            &format!(
                "install redis-server (apt-get install redis-server) \
                 or set {ENV}=redis://host:port"
            ),
        );
        return None;
    }
    Some(RedisServer::start(extra))
}

/// Whether `bin` (another tool a test needs, e.g. `openssl`) is on `PATH`.
/// Missing: a failure in CI (see [`redis_required`]), else `false` after a
/// skip notice.
pub fn tool(test: &str, bin: &str) -> bool {
    if on_path(bin) {
        return true;
    }
    missing(
        test,
        &format!("`{bin}` is not on PATH"),
        &format!("apt-get install {bin}"),
    );
    false
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

async fn ping_url(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// A free loopback port (free when this returns; redis-server binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A loopback port nothing listens on: connections are refused.
pub fn refused_port() -> u16 {
    free_port()
}

/// A `redis-server` child process on a loopback port, without persistence.
pub struct RedisServer {
    pub port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    fn start(extra: &[&str]) -> Self {
        let mut last = String::new();
        // The port may be taken between picking and binding: try a few.
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            if self.answers() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("redis-server on port {} never answered", self.port));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether something on the port answers a PING like Redis.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            // `+PONG`, or `-NOAUTH` with --requirepass: it is up either way.
            Ok(n) if n > 0 => buf[0] == b'+' || buf.starts_with(b"-NOAUTH"),
            _ => false,
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (connections are dropped, data is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("restart: {e}");
        }
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server not running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL works on a stopped process too.
        self.stop();
    }
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("llmtest:{test}:{}:{nanos}:", std::process::id())
}

/// A distinct cache key per `text`.
pub fn key(text: &str) -> CacheKey {
    CacheKey::for_request(&LlmRequest::new(text))
}

/// A stored answer (read from its stored form, so fields added later keep
/// their defaults).
pub fn entry(content: &str) -> CachedResponse {
    let json = serde_json::json!({
        "content": content,
        "provider": "openai-main",
        "provider_kind": "openai",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46},
        "finish_reason": "stop",
    });
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(json.to_string().as_bytes());
    CachedResponse::decode(&bytes).expect("a valid stored entry")
}

/// A plain connection for looking at Redis behind the cache's back.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("test URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the test Redis")
}

/// Polls `check` until it is true, failing the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bounds a step that must not hang; a hang fails the test instead.
pub async fn no_hang<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// Everything logged on this thread while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's `tracing` output (current-thread runtimes run
    /// every task on it).
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines at `level` (`WARN`, `INFO`) that contain `needle`.
    pub fn count(&self, level: &str, needle: &str) -> usize {
        self.count_all(level, &[needle])
    }

    /// Lines at `level` that contain every one of `needles`.
    pub fn count_all(&self, level: &str, needles: &[&str]) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains(level) && needles.iter().all(|n| l.contains(n)))
            .count()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
