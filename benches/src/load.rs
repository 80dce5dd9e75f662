//! An open-loop (constant arrival rate) HTTP/1.1 load generator.
//!
//! Request `i` is scheduled at `t0 + i / rate` whatever happened to the
//! earlier ones, and its latency is measured from that scheduled instant, so
//! a stalled server is charged for the requests that queued behind the stall
//! (no coordinated omission). A dedicated thread keeps the schedule with
//! `std::thread::sleep` (tokio's timer has a 1 ms grain); how late it hands
//! each request over is reported as the dispatch lag, and it is part of every
//! latency (direct and through the gateway alike).
//!
//! Connections are kept alive and reused from a pool; a new one is opened
//! only when none is idle. The number of requests, the duration, the
//! requests in flight and each request's time are all bounded; a request
//! that would exceed the in-flight bound is counted as an error, never queued.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::stats::{nanos, Summary};

/// What every request of a run is.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address (loopback).
    pub addr: SocketAddr,
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// JSON body (sent with `POST`).
    pub body: Bytes,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What is measured of each response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Time to the end of the response body.
    Full,
    /// Also the time to the first body bytes carrying answer text (a
    /// non-empty `"content":"…"`), for streamed answers.
    FirstToken,
}

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Requests per second.
    pub rate: f64,
    /// How long requests are scheduled for.
    pub duration: Duration,
    /// Upper bound on the requests of the run.
    pub max_requests: usize,
    /// Upper bound on requests in flight (beyond it a request is an error).
    pub max_in_flight: usize,
    /// Upper bound on one request.
    pub timeout: Duration,
    /// What is measured.
    pub mode: Mode,
}

impl LoadSpec {
    /// `rate` for `duration`, full responses, generous bounds.
    pub fn new(rate: f64, duration: Duration) -> Self {
        Self {
            rate,
            duration,
            max_requests: 1_000_000,
            max_in_flight: 4096,
            timeout: Duration::from_secs(30),
            mode: Mode::Full,
        }
    }

    /// Requests the run schedules.
    pub fn request_count(&self) -> usize {
        if self.rate.is_nan() || self.rate <= 0.0 {
            return 0;
        }
        let n = (self.rate * self.duration.as_secs_f64()).ceil();
        (n as usize).min(self.max_requests)
    }

    /// When request `i` is due, relative to the start.
    pub fn offset(&self, i: usize) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests per second asked for.
    pub offered_rate: f64,
    /// Requests scheduled.
    pub scheduled: usize,
    /// Requests answered `200` with a complete body.
    pub ok: usize,
    /// Everything else.
    pub errors: usize,
    /// Errors by kind (`status 429`, `timeout`, `connect`, …).
    pub error_kinds: BTreeMap<String, usize>,
    /// Scheduled instant → end of body, successful requests.
    pub latency: Summary,
    /// Scheduled instant → first answer text ([`Mode::FirstToken`]).
    pub first_token: Option<Summary>,
    /// Scheduled instant → request handed to the runtime.
    pub dispatch_lag: Summary,
    /// Successful responses per second, from the first scheduled instant to
    /// the last completion.
    pub achieved_rate: f64,
    /// From the first scheduled instant to the last completion.
    pub wall: Duration,
    /// Connections open in the pool at the end.
    pub connections: usize,
}

type Sender = SendRequest<Full<Bytes>>;

/// Kept-alive connections to one address.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    host: HeaderValue,
    idle: Mutex<Vec<Sender>>,
    opened: AtomicUsize,
}

impl Pool {
    /// An empty pool for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            addr,
            host,
            idle: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
        }
    }

    /// Connections opened so far.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(s) = idle.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    async fn checkout(&self) -> Result<Sender, String> {
        if let Some(s) = self.take_idle() {
            return Ok(s);
        }
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|_| "connect".to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "handshake".to_string())?;
        tokio::spawn(conn);
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    async fn checkin(&self, mut s: Sender) {
        if s.ready().await.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
        }
    }
}

/// One request's result.
struct Outcome {
    due: Instant,
    lag: Duration,
    result: Result<(Instant, Option<Instant>), String>,
}

/// Whether a streamed body so far shows answer text: a `"content":"` not
/// followed at once by its closing quote.
pub fn has_content(seen: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    let mut rest = seen;
    while let Some(pos) = rest.windows(KEY.len()).position(|w| w == KEY) {
        let after = &rest[pos + KEY.len()..];
        match after.first() {
            Some(b'"') => rest = after,
            Some(_) => return true,
            None => return false,
        }
    }
    false
}

async fn one(
    pool: &Pool,
    target: &Target,
    mode: Mode,
) -> Result<(Instant, Option<Instant>), String> {
    let mut sender = pool.checkout().await?;
    let mut builder = Request::post(target.path.as_str())
        .header(hyper::header::HOST, pool.host.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (k, v) in &target.headers {
        builder = builder.header(k, v);
    }
    let req = builder
        .body(Full::new(target.body.clone()))
        .map_err(|_| "request".to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|_| "transport".to_string())?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut first = None;
    let mut seen = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "body".to_string())?;
        if mode == Mode::FirstToken && first.is_none() {
            if let Some(data) = frame.data_ref() {
                seen.extend_from_slice(data);
                if has_content(&seen) {
                    first = Some(Instant::now());
                }
            }
        }
    }
    let done = Instant::now();
    pool.checkin(sender).await;
    if !status.is_success() {
        return Err(format!("status {}", status.as_u16()));
    }
    if mode == Mode::FirstToken && first.is_none() {
        return Err("no answer text".into());
    }
    Ok((done, first))
}

/// Runs `spec` against `target` on the current tokio runtime, reusing (and
/// growing) `pool`.
pub async fn run(pool: Arc<Pool>, target: Arc<Target>, spec: &LoadSpec) -> LoadReport {
    let n = spec.request_count();
    let t0 = Instant::now() + Duration::from_millis(5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let schedule = spec.clone();
    let ticker = std::thread::Builder::new()
        .name("load-schedule".into())
        .spawn(move || {
            for i in 0..n {
                let due = t0 + schedule.offset(i);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if tx.send(due).is_err() {
                    return;
                }
            }
        });
    let in_flight = Arc::new(tokio::sync::Semaphore::new(spec.max_in_flight.max(1)));
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(n);
    let mut rejected = 0usize;
    let mut open = ticker.is_ok();
    while open || !tasks.is_empty() {
        tokio::select! {
            due = rx.recv(), if open => match due {
                Some(due) => {
                    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                        rejected += 1;
                        continue;
                    };
                    let (pool, target, mode, timeout) =
                        (pool.clone(), target.clone(), spec.mode, spec.timeout);
                    tasks.spawn(async move {
                        let lag = due.elapsed();
                        let result = match tokio::time::timeout(timeout, one(&pool, &target, mode)).await {
                            Ok(r) => r,
                            Err(_) => Err("timeout".to_string()),
                        };
                        drop(permit);
                        Outcome { due, lag, result }
                    });
                }
                None => open = false,
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(o) = done {
                    outcomes.push(o);
                }
            }
        }
    }
    if let Ok(t) = ticker {
        let _ = t.join();
    }
    summarize(spec, n, t0, rejected, outcomes, pool.opened())
}

/// Closed-loop load: `connections` clients, each on its own kept-alive
/// connection, send `target`'s request again as soon as the previous answer
/// has been read, for `duration`. Latency is from send to end of body; the
/// achieved rate is the figure of merit (how many requests per second the
/// server answers with that many clients).
pub async fn closed_loop(
    target: Arc<Target>,
    connections: usize,
    duration: Duration,
) -> LoadReport {
    let t0 = Instant::now();
    let end = t0 + duration;
    let mut tasks: JoinSet<(Vec<u64>, BTreeMap<String, usize>)> = JoinSet::new();
    for _ in 0..connections.max(1) {
        let target = target.clone();
        tasks.spawn(async move {
            let pool = Pool::new(target.addr);
            let mut lat = Vec::new();
            let mut errors = BTreeMap::new();
            while Instant::now() < end {
                let sent = Instant::now();
                match one(&pool, &target, Mode::Full).await {
                    Ok((done, _)) => lat.push(nanos(done.saturating_duration_since(sent))),
                    Err(kind) => *errors.entry(kind).or_insert(0) += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::new();
    let mut error_kinds: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok((l, e)) = done {
            lat.extend(l);
            for (k, n) in e {
                *error_kinds.entry(k).or_insert(0) += n;
            }
        }
    }
    let wall = t0.elapsed();
    let ok = lat.len();
    let errors = error_kinds.values().sum();
    LoadReport {
        offered_rate: 0.0,
        scheduled: ok + errors,
        ok,
        errors,
        error_kinds,
        latency: Summary::of(&mut lat),
        first_token: None,
        dispatch_lag: Summary::of(&mut Vec::new()),
        achieved_rate: ok as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE),
        wall,
        connections,
    }
}

/// Streams held open: each of `n` clients opens its own connection and
/// sends `target`'s (streaming) request; returns once every stream has
/// delivered its first body bytes, with the number that did. The streams
/// stay open until the returned set is dropped.
pub async fn hold_streams(target: Arc<Target>, n: usize) -> (JoinSet<()>, usize) {
    let mut streams = JoinSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for _ in 0..n {
        let (target, tx) = (target.clone(), tx.clone());
        streams.spawn(async move {
            let pool = Pool::new(target.addr);
            let opened = async {
                let mut sender = pool.checkout().await.ok()?;
                let req = Request::post(target.path.as_str())
                    .header(hyper::header::HOST, pool.host.clone())
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(target.body.clone()))
                    .ok()?;
                let resp = sender.send_request(req).await.ok()?;
                let mut body = resp.into_body();
                let first = body.frame().await?.ok()?;
                first.is_data().then_some((sender, body))
            }
            .await;
            let _ = tx.send(opened.is_some());
            if let Some(held) = opened {
                // Held (body unread) until the task is dropped.
                std::future::pending::<()>().await;
                drop(held);
            }
        });
    }
    drop(tx);
    let mut open = 0;
    for _ in 0..n {
        match rx.recv().await {
            Some(ok) => open += usize::from(ok),
            None => break,
        }
    }
    (streams, open)
}

fn summarize(
    spec: &LoadSpec,
    scheduled: usize,
    t0: Instant,
    rejected: usize,
    outcomes: Vec<Outcome>,
    connections: usize,
) -> LoadReport {
    let mut error_kinds = BTreeMap::new();
    if rejected > 0 {
        error_kinds.insert("in-flight limit".to_string(), rejected);
    }
    let lost = scheduled.saturating_sub(outcomes.len() + rejected);
    if lost > 0 {
        error_kinds.insert("lost".to_string(), lost);
    }
    let mut lat = Vec::with_capacity(outcomes.len());
    let mut ttft = Vec::new();
    let mut lags = Vec::with_capacity(outcomes.len());
    let mut last = t0;
    for o in &outcomes {
        lags.push(nanos(o.lag));
        match &o.result {
            Ok((done, first)) => {
                last = last.max(*done);
                lat.push(nanos(done.saturating_duration_since(o.due)));
                if let Some(f) = first {
                    ttft.push(nanos(f.saturating_duration_since(o.due)));
                }
            }
            Err(kind) => *error_kinds.entry(kind.clone()).or_insert(0) += 1,
        }
    }
    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let wall = last.saturating_duration_since(t0);
    LoadReport {
        offered_rate: spec.rate,
        scheduled,
        ok,
        errors: scheduled - ok,
        error_kinds,
        latency: Summary::of(&mut lat),
        first_token: (spec.mode == Mode::FirstToken).then(|| Summary::of(&mut ttft)),
        dispatch_lag: Summary::of(&mut lags),
        achieved_rate: if wall.is_zero() {
            0.0
        } else {
            ok as f64 / wall.as_secs_f64()
        },
        wall,
        connections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::upstream::{Upstream, UpstreamOptions};

    #[test]
    fn schedule_math() {
        let spec = LoadSpec::new(1000.0, Duration::from_secs(2));
        assert_eq!(spec.request_count(), 2000);
        assert_eq!(spec.offset(0), Duration::ZERO);
        assert_eq!(spec.offset(1500), Duration::from_millis(1500));
        let mut capped = spec.clone();
        capped.max_requests = 10;
        assert_eq!(capped.request_count(), 10);
        assert_eq!(
            LoadSpec::new(0.0, Duration::from_secs(1)).request_count(),
            0
        );
        assert_eq!(
            LoadSpec::new(3.0, Duration::from_millis(500)).request_count(),
            2
        );
    }

    #[test]
    fn answer_text_detection() {
        assert!(!has_content(fixtures::OPENAI_STREAM_EVENTS[0].as_bytes()));
        assert!(has_content(fixtures::OPENAI_STREAM_EVENTS[1].as_bytes()));
        assert!(has_content(
            format!(
                "{}{}",
                fixtures::OPENAI_STREAM_EVENTS[0],
                fixtures::OPENAI_STREAM_EVENTS[1]
            )
            .as_bytes()
        ));
        assert!(!has_content(b"\"content\":\""));
        assert!(!has_content(b""));
    }

    /// The generator sends exactly the scheduled requests, each once, and
    /// counts what it measured (no timing is asserted).
    #[tokio::test]
    async fn open_loop_run_against_the_fake_upstream() {
        let up = Upstream::start(UpstreamOptions::default()).unwrap();
        let pool = Arc::new(Pool::new(up.addr()));
        let target = Arc::new(Target {
            addr: up.addr(),
            path: "/v1/chat/completions".into(),
            body: fixtures::openai_request_body(false),
            headers: vec![],
        });
        let spec = LoadSpec::new(400.0, Duration::from_millis(100));
        let r = run(pool.clone(), target, &spec).await;
        assert_eq!(r.scheduled, 40);
        assert_eq!((r.ok, r.errors), (40, 0), "{:?}", r.error_kinds);
        assert_eq!(r.latency.count, 40);
        assert_eq!(r.dispatch_lag.count, 40);
        assert!(r.first_token.is_none());
        assert_eq!(up.requests(), 40);
        assert!(r.connections >= 1 && r.connections <= 40);

        let target = Arc::new(Target {
            addr: up.addr(),
            path: "/v1/chat/completions".into(),
            body: fixtures::openai_request_body(true),
            headers: vec![],
        });
        let mut spec = LoadSpec::new(200.0, Duration::from_millis(50));
        spec.mode = Mode::FirstToken;
        let r = run(pool, target, &spec).await;
        assert_eq!((r.ok, r.errors), (10, 0), "{:?}", r.error_kinds);
        assert_eq!(r.first_token.map(|s| s.count), Some(10));

        // A path the server does not know: every request is an error, by status.
        let target = Arc::new(Target {
            addr: up.addr(),
            path: "/nope".into(),
            body: Bytes::new(),
            headers: vec![],
        });
        let pool = Arc::new(Pool::new(up.addr()));
        let r = run(
            pool,
            target,
            &LoadSpec::new(100.0, Duration::from_millis(50)),
        )
        .await;
        assert_eq!((r.ok, r.errors), (0, 5));
        assert_eq!(r.error_kinds.get("status 404"), Some(&5));
    }
}
