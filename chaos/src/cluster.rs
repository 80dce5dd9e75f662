//! The multi-replica harness: three `llm serve` processes on one
//! configuration file, one Redis (the `redis` cache backend), two chaos
//! upstreams (`alpha`, `beta`) answering every call correctly but slowly
//! (a drip), and a load generator spreading requests over the replicas the
//! way a load balancer does: it polls each replica's `/health/ready` and
//! sends only to ready ones, and retries a request on another replica when
//! the connection fails (refused, or cut before the answer was complete).
//!
//! Scenarios, each on a fresh cluster, each with asserted outcomes:
//!
//! - [`Scenario::Kill`]: one replica gets SIGKILL mid-load. No request
//!   fails; the ones in flight on it are retried elsewhere (counted).
//! - [`Scenario::Drain`]: one replica gets SIGTERM mid-load. No request
//!   fails and none is cut; the replica leaves the rotation through its
//!   readiness and exits 0.
//! - [`Scenario::Reload`]: the file's routing is changed (`alpha` first →
//!   `beta` first) and every replica gets SIGHUP mid-load. No request fails;
//!   every request sent after the replicas report the new configuration hash
//!   is answered by `beta`, every one before the change by `alpha`.
//! - [`Scenario::Redis`]: Redis is killed mid-load and restarted. No request
//!   fails; cache lookups during the outage are misses or errors (counted
//!   from the replicas' `/metrics`), and hits come back after the restart.
//! - [`Scenario::SharedLimit`]: every request carries one virtual key with
//!   an RPM limit (keys in one SQLite file, counters in the shared Redis).
//!   The three replicas together admit at least the limit and at most the
//!   documented bound (`L + L·t/60` in any `t` seconds); the rest get 429.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use llm_router::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::fault::{Fault, Role};
use crate::protocol::answer_for;
use crate::redis::RedisServer;
use crate::upstream::{ApiKind, ChaosOptions, Ledger, Upstream};

/// Replicas of a cluster.
pub const REPLICAS: usize = 3;

/// Attempts of one request (the first and the retries on connection errors).
const ATTEMPTS: usize = 8;

/// How often the load balancer polls readiness.
const READY_POLL: Duration = Duration::from_millis(50);

/// Bound on waiting for a process or a replica to do what it was told.
const PATIENCE: Duration = Duration::from_secs(60);

/// A scenario of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// SIGKILL one replica mid-load.
    Kill,
    /// SIGTERM (drain) one replica mid-load.
    Drain,
    /// Change the routing in the file and SIGHUP every replica mid-load.
    Reload,
    /// Kill Redis mid-load and restart it.
    Redis,
    /// One virtual key's RPM limit, shared by the replicas through Redis.
    SharedLimit,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 5] = [
        Scenario::Kill,
        Scenario::Drain,
        Scenario::Reload,
        Scenario::Redis,
        Scenario::SharedLimit,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::Drain => "drain",
            Scenario::Reload => "reload",
            Scenario::Redis => "redis",
            Scenario::SharedLimit => "ratelimit",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// `[gateway.store] redis_timeout` of the shared-limit replicas: generous,
/// because three gateways, Redis and the load generator share the machine
/// (a limiter call that times out is admitted, which the scenario counts).
const REDIS_TIMEOUT_SECS: f64 = 1.0;

/// Settings of a harness run.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The `llm` executable the replicas run.
    pub llm_bin: PathBuf,
    /// Requests per scenario.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Share of streamed requests.
    pub stream_share: f64,
    /// `[gateway] drain_delay` of the replicas, in seconds.
    pub drain_delay: f64,
    /// Pause between the pieces of an upstream answer (the drip).
    pub drip_delay: Duration,
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// RPM limit of the virtual key of [`Scenario::SharedLimit`].
    pub rpm: u32,
    /// `[gateway.store] url` the replicas share in [`Scenario::SharedLimit`]
    /// (e.g. a PostgreSQL URL); `None`: one SQLite file in the scenario's
    /// directory.
    pub store_url: Option<SecretString>,
}

impl ClusterSettings {
    /// Defaults for `llm_bin`: 3,000 requests per scenario, 24 in flight.
    pub fn new(llm_bin: PathBuf) -> Self {
        Self {
            llm_bin,
            requests: 3_000,
            concurrency: 24,
            stream_share: 0.25,
            drain_delay: 1.0,
            drip_delay: Duration::from_millis(2),
            scenarios: Scenario::ALL.to_vec(),
            rpm: 600,
            store_url: None,
        }
    }
}

/// What one scenario did.
#[derive(Debug, Clone, Default)]
pub struct ScenarioReport {
    /// Its name.
    pub name: String,
    /// Requests sent.
    pub requests: usize,
    /// Requests answered completely and correctly.
    pub answered: usize,
    /// Requests without a correct answer after every attempt.
    pub failed: usize,
    /// Attempts refused at connect (retried elsewhere).
    pub retried_refused: usize,
    /// Attempts cut after the connection was made (in flight on a replica
    /// that died; retried elsewhere).
    pub retried_cut: usize,
    /// Requests in flight on the replica when it was killed or signalled.
    pub inflight_at_action: u64,
    /// Answers per provider (`x-llm-provider`), before and after the action.
    pub providers: BTreeMap<String, usize>,
    /// Cache lookups by result over all replicas: `phase/result` → count.
    pub cache: BTreeMap<String, u64>,
    /// Other figures, as `name = value`.
    pub notes: Vec<String>,
    /// Failed checks (empty: the scenario passed).
    pub broken: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl ScenarioReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.broken.is_empty()
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let mut out = format!(
            "[{}] {} requests in {:.1} s: answered {}, failed {}, retried after refused connect {}, \
             retried after a cut {}, in flight on the replica at the action {}\n",
            self.name,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.answered,
            self.failed,
            self.retried_refused,
            self.retried_cut,
            self.inflight_at_action,
        );
        if !self.providers.is_empty() {
            let p: Vec<String> = self
                .providers
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out.push_str(&format!("  answers by provider: {}\n", p.join(", ")));
        }
        if !self.cache.is_empty() {
            let c: Vec<String> = self.cache.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.push_str(&format!("  cache lookups: {}\n", c.join(", ")));
        }
        for n in &self.notes {
            out.push_str(&format!("  {n}\n"));
        }
        for b in &self.broken {
            out.push_str(&format!("  ! {b}\n"));
        }
        out.push_str(if self.passed() {
            "  PASS\n"
        } else {
            "  FAIL\n"
        });
        out
    }
}

/// One `llm serve` process.
#[derive(Debug)]
struct Replica {
    child: Child,
    addr: String,
}

impl Replica {
    fn start(bin: &Path, config: &Path, log: &Path) -> Result<Self, String> {
        let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .env_remove("LLM_CONFIG")
            .arg("--config")
            .arg(config)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading a replica's address: {e}"))?;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .map(|a| a.trim_end_matches('/').to_string())
            .ok_or_else(|| format!("unexpected first line from a replica: {line:?}"))?;
        Ok(Self { child, addr })
    }

    /// Sends `signal` (`TERM`, `HUP`, `KILL`) with `kill(1)`.
    fn signal(&self, signal: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .map_err(|e| format!("kill -{signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{signal} failed: {status}"))
        }
    }

    /// Waits for the process to exit; `Ok(true)` when it exited with 0.
    async fn exited(&mut self) -> Result<bool, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if Instant::now() > deadline => {
                    return Err("a replica did not exit".into());
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the load balancer knows of one replica.
#[derive(Debug)]
struct Slot {
    base: String,
    ready: AtomicBool,
    inflight: AtomicU64,
    /// The configuration hash its readiness last reported.
    config: Mutex<String>,
}

/// The shared state of a load run.
struct Load {
    slots: Vec<Slot>,
    http: reqwest::Client,
    next: AtomicUsize,
    rr: AtomicUsize,
    done: AtomicUsize,
    stop: AtomicBool,
    /// Set once the scenario's change is in force (reload: every replica
    /// reports the new hash).
    marker: AtomicBool,
    /// Set when the scenario's change starts (reload: before the file is
    /// written).
    changing: AtomicBool,
    results: Mutex<Vec<Attempted>>,
    /// The virtual key every request carries, if any.
    key: Option<String>,
    retried_refused: AtomicUsize,
    retried_cut: AtomicUsize,
}

/// The end of one request.
#[derive(Debug)]
struct Attempted {
    ok: bool,
    provider: String,
    /// Answered before the change started.
    before: bool,
    /// Sent after the change was in force.
    after: bool,
    error: Option<String>,
}

impl Load {
    /// A ready replica (round robin); any replica when none is ready.
    fn pick(&self, avoid: Option<usize>) -> usize {
        let n = self.slots.len();
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            if Some(i) != avoid && self.slots[i].ready.load(Ordering::Acquire) {
                return i;
            }
        }
        start % n
    }

    /// The load balancer's readiness poll.
    async fn monitor(self: Arc<Self>) {
        while !self.stop.load(Ordering::Acquire) {
            // All replicas at once: one slow answer delays no other.
            futures::future::join_all(self.slots.iter().map(|s| self.poll_ready(s))).await;
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// One readiness check of `s`.
    async fn poll_ready(&self, s: &Slot) {
        let r = self
            .http
            .get(format!("{}/health/ready", s.base))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        let ready = match r {
            Ok(r) if r.status() == 200 => {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if let Some(h) = v["config"].as_str() {
                        *s.config.lock().unwrap_or_else(PoisonError::into_inner) = h.to_string();
                    }
                }
                true
            }
            _ => false,
        };
        s.ready.store(ready, Ordering::Release);
    }

    /// Sends requests until `total` are done.
    /// `distinct`: prompts drawn from (0: every prompt new, no cache hits).
    async fn worker(
        self: Arc<Self>,
        total: usize,
        stream_share: f64,
        distinct: usize,
        tag: String,
    ) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                return;
            }
            let stream = (i as f64 * stream_share).fract() + stream_share >= 1.0;
            let n = if distinct == 0 { i } else { i % distinct };
            let prompt = format!("{tag} prompt {n}: 写一句关于海的话");
            let after = self.marker.load(Ordering::Acquire);
            let end = self.request(&prompt, stream).await;
            // Answered before the configuration changed: sent before it
            // is not enough (a request sent just before may be read by a
            // replica after the reload, and rightly get the new routing).
            let before = !self.changing.load(Ordering::Acquire);
            let attempted = match end {
                Ok(provider) => Attempted {
                    ok: true,
                    provider,
                    before,
                    after,
                    error: None,
                },
                Err(e) => Attempted {
                    ok: false,
                    provider: String::new(),
                    before,
                    after,
                    error: Some(format!("request {i}: {e}")),
                },
            };
            self.results
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(attempted);
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// One request with retries on connection errors; the provider that
    /// answered.
    async fn request(&self, prompt: &str, stream: bool) -> Result<String, String> {
        // `auto`: the routing strategy picks the provider (a model name
        // goes to the first instance serving it).
        let body = serde_json::json!({
            "model": "auto",
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        });
        let mut avoid = None;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let k = self.pick(avoid);
            let slot = &self.slots[k];
            slot.inflight.fetch_add(1, Ordering::AcqRel);
            let r = attempt(
                &self.http,
                &slot.base,
                self.key.as_deref(),
                &body,
                stream,
                prompt,
            )
            .await;
            slot.inflight.fetch_sub(1, Ordering::AcqRel);
            match r {
                Ok(provider) => return Ok(provider),
                Err(AttemptError::Refused(e)) => {
                    self.retried_refused.fetch_add(1, Ordering::Relaxed);
                    last = e;
                }
                Err(AttemptError::Cut(e)) => {
                    self.retried_cut.fetch_add(1, Ordering::Relaxed);
                    last = e;
                }
                Err(AttemptError::Wrong(e)) => return Err(e),
                Err(AttemptError::Limited) => return Ok(LIMITED.to_string()),
            }
            avoid = Some(k);
        }
        Err(format!("no answer after {ATTEMPTS} attempts: {last}"))
    }
}

/// Why an attempt gave no answer.
enum AttemptError {
    /// The connection was refused: nothing was sent.
    Refused(String),
    /// The connection broke before the answer was complete.
    Cut(String),
    /// An HTTP error or a wrong answer (not retried: a real failure).
    Wrong(String),
    /// 429 for the virtual key (an expected answer under a rate limit).
    Limited,
}

/// What a request refused by the rate limit counts as, in place of a provider.
const LIMITED: &str = "429";

async fn attempt(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &serde_json::Value,
    stream: bool,
    prompt: &str,
) -> Result<String, AttemptError> {
    let mut req = http.post(format!("{base}/v1/chat/completions")).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_connect() {
            AttemptError::Refused(e.to_string())
        } else {
            AttemptError::Cut(e.to_string())
        }
    })?;
    let status = resp.status().as_u16();
    let provider = resp
        .headers()
        .get("x-llm-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp
        .text()
        .await
        .map_err(|e| AttemptError::Cut(e.to_string()))?;
    if status == 429 && key.is_some() {
        return Err(AttemptError::Limited);
    }
    if status != 200 {
        return Err(AttemptError::Wrong(format!("HTTP {status}: {text}")));
    }
    let answer = if stream {
        let mut out = String::new();
        let mut done = false;
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(data)
                .map_err(|e| AttemptError::Wrong(format!("bad event {data:?}: {e}")))?;
            if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
                out.push_str(piece);
            }
        }
        if !done {
            // The connection ended cleanly but the stream did not: cut.
            return Err(AttemptError::Cut("stream without [DONE]".into()));
        }
        out
    } else {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| AttemptError::Wrong(format!("bad JSON {text:?}: {e}")))?;
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    if answer != answer_for(prompt) {
        return Err(AttemptError::Wrong(format!("wrong answer {answer:?}")));
    }
    Ok(provider)
}

/// The master key of the replicas of [`Scenario::SharedLimit`].
const MASTER_KEY: &str = "sk-master-cluster-harness";

/// Creates a virtual key limited to `rpm` through the admin API of the
/// replica at `addr`; its secret.
async fn create_key(http: &reqwest::Client, addr: &str, rpm: u32) -> Result<String, String> {
    let r = http
        .post(format!("http://{addr}/admin/keys"))
        .bearer_auth(MASTER_KEY)
        .json(&serde_json::json!({"name": "cluster", "rpm": rpm}))
        .send()
        .await
        .map_err(|e| format!("POST /admin/keys: {e}"))?;
    let status = r.status().as_u16();
    let v: serde_json::Value = r
        .json()
        .await
        .map_err(|e| format!("POST /admin/keys: {e}"))?;
    match v["key"].as_str() {
        Some(k) if status == 201 => Ok(k.to_string()),
        _ => Err(format!("POST /admin/keys: HTTP {status}")),
    }
}

/// Whether a request for `prompt` to `base` is answered from the cache.
async fn cache_hit(http: &reqwest::Client, base: &str, prompt: &str) -> bool {
    let body = serde_json::json!({
        "model": "auto",
        "messages": [{"role": "user", "content": prompt}],
    });
    match http
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r
            .headers()
            .get("x-llm-cache")
            .is_some_and(|v| v.as_bytes() == b"hit"),
        Err(_) => false,
    }
}

/// The configuration of the replicas: `first` is the provider routing
/// prefers.
fn config_text(alpha: &str, beta: &str, redis: &str, first: &str, drain_delay: f64) -> String {
    let (wa, wb) = if first == "alpha" {
        (1.0, 0.0)
    } else {
        (0.0, 1.0)
    };
    format!(
        "[llm_providers.alpha]\nkind = \"openai\"\nbase_url = \"{alpha}\"\nallow_no_key = true\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n\
         [llm_providers.beta]\nkind = \"openai\"\nbase_url = \"{beta}\"\nallow_no_key = true\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 10\n\n\
         [routing]\nstrategy = \"weighted\"\nweights = {{ alpha = {wa:.1}, beta = {wb:.1} }}\n\
         fallback = {{}}\ndeadline = 30\n\n\
         [routing.rules]\nsimple_max_chars = 0\ncomplex_min_chars = 100000000\n\
         complex_min_tokens = 100000000\ncomplex_keywords = []\n\n\
         [routing.retry]\nmax_retries = 1\nbackoff_base = 0.01\nbackoff_max = 0.1\n\n\
         [caching]\nenabled = true\nbackend = \"redis\"\nredis_url = \"{redis}\"\n\n\
         [monitoring]\nenabled = true\n\n\
         [gateway]\nmax_concurrency = 1024\nrequest_timeout = 30\nshutdown_grace = 20\n\
         drain_delay = {drain_delay}\n"
    )
}

/// The sum over the replicas of an unlabelled series of their `/metrics`.
async fn metric_sum(http: &reqwest::Client, slots: &[Slot], name: &str) -> u64 {
    let mut sum = 0;
    for s in slots {
        let Ok(r) = http.get(format!("{}/metrics", s.base)).send().await else {
            continue;
        };
        let Ok(text) = r.text().await else {
            continue;
        };
        for line in text.lines() {
            if let Some(v) = line
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
            {
                sum += v.trim().parse::<f64>().unwrap_or(0.0) as u64;
            }
        }
    }
    sum
}

/// Cache lookups by result, summed over the replicas that answer.
async fn cache_counts(http: &reqwest::Client, slots: &[Slot]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in slots {
        let Ok(r) = http.get(format!("{}/metrics", s.base)).send().await else {
            continue;
        };
        let Ok(text) = r.text().await else {
            continue;
        };
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("llm_cache_requests_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let result = labels
                .split(',')
                .find_map(|kv| kv.strip_prefix("result=\""))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default();
            let v = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            *out.entry(result).or_insert(0) += v;
        }
    }
    out
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
        .collect()
}

/// Waits until `n` requests of the run are done.
async fn reached(load: &Load, n: usize) {
    while load.done.load(Ordering::Acquire) < n && !load.stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the scenarios; one report each.
pub async fn run(s: &ClusterSettings) -> Result<Vec<ScenarioReport>, String> {
    let mut out = Vec::new();
    for sc in &s.scenarios {
        out.push(scenario(s, *sc).await?);
    }
    Ok(out)
}

/// Runs one scenario on a fresh cluster.
pub async fn scenario(s: &ClusterSettings, sc: Scenario) -> Result<ScenarioReport, String> {
    let dir = std::env::temp_dir().join(format!(
        "llm-cluster-{}-{}-{}",
        std::process::id(),
        sc.name(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ledger = Arc::new(Ledger::default());
    let options = ChaosOptions {
        drip_delay: s.drip_delay,
        drip_pieces: 8,
        fault_probes: false,
        ..ChaosOptions::default()
    };
    let drip = Role::Flaky {
        rate: 1.0,
        faults: vec![Fault::SlowDrip],
    };
    let alpha = Upstream::start("alpha", ApiKind::OpenAi, options.clone(), ledger.clone())
        .await
        .map_err(|e| e.to_string())?;
    let beta = Upstream::start("beta", ApiKind::OpenAi, options, ledger)
        .await
        .map_err(|e| e.to_string())?;
    for u in [&alpha, &beta] {
        u.set_role(drip.clone()).await.map_err(|e| e.to_string())?;
    }
    let mut redis = RedisServer::start(None).map_err(|e| format!("redis-server: {e}"))?;
    let config = dir.join("llm.toml");
    let mut first = config_text(
        &alpha.base_url(),
        &beta.base_url(),
        &redis.url(),
        "alpha",
        s.drain_delay,
    );
    if sc == Scenario::SharedLimit {
        let store = s
            .store_url
            .as_ref()
            .map(|u| u.expose_secret().to_string())
            .unwrap_or_else(|| format!("sqlite:{}", dir.join("keys.db").display()));
        first.push_str(&format!(
            "master_key = \"{MASTER_KEY}\"\n\n[gateway.store]\nurl = \"{store}\"\n\
             redis_url = \"{}\"\nredis_timeout = {REDIS_TIMEOUT_SECS}\n",
            redis.url()
        ));
    }
    std::fs::write(&config, &first).map_err(|e| e.to_string())?;
    let mut replicas = Vec::new();
    for k in 0..REPLICAS {
        let log = dir.join(format!("replica-{k}.log"));
        replicas.push(Replica::start(&s.llm_bin, &config, &log)?);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(s.concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let key = match sc {
        Scenario::SharedLimit => Some(create_key(&http, &replicas[0].addr, s.rpm).await?),
        _ => None,
    };
    let load = Arc::new(Load {
        slots: replicas
            .iter()
            .map(|r| Slot {
                base: format!("http://{}", r.addr),
                ready: AtomicBool::new(true),
                inflight: AtomicU64::new(0),
                config: Mutex::new(String::new()),
            })
            .collect(),
        http: http.clone(),
        next: AtomicUsize::new(0),
        rr: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        marker: AtomicBool::new(false),
        changing: AtomicBool::new(false),
        results: Mutex::new(Vec::new()),
        key,
        retried_refused: AtomicUsize::new(0),
        retried_cut: AtomicUsize::new(0),
    });
    let mut report = ScenarioReport {
        name: sc.name().to_string(),
        requests: s.requests,
        ..ScenarioReport::default()
    };
    let started = Instant::now();
    let monitor = tokio::spawn(load.clone().monitor());
    let tag = format!("{}-{}", sc.name(), fastrand::u32(..));
    let workers: Vec<_> = (0..s.concurrency.max(1))
        .map(|_| {
            tokio::spawn(load.clone().worker(
                s.requests,
                s.stream_share,
                if sc == Scenario::Redis { 64 } else { 0 },
                tag.clone(),
            ))
        })
        .collect();

    let action = act(
        sc,
        s,
        &load,
        &mut replicas,
        &mut redis,
        &config,
        (&alpha.base_url(), &beta.base_url()),
        &mut report,
    )
    .await;
    if let Err(e) = &action {
        report
            .broken
            .push(format!("the scenario's action failed: {e}"));
        load.stop.store(true, Ordering::Release);
        load.next.store(usize::MAX / 2, Ordering::Release);
    }
    for w in workers {
        let _ = w.await;
    }
    report.elapsed = started.elapsed();
    if sc == Scenario::Redis {
        let end = cache_counts(&http, &load.slots).await;
        if let Ok(marks) = &action {
            for (k, v) in delta(&end, marks) {
                report.cache.insert(format!("after restart/{k}"), v);
            }
        }
    }
    // Limit checks admitted without Redis (fail open), summed over the replicas.
    let fail_open = if sc == Scenario::SharedLimit {
        metric_sum(&http, &load.slots, "llm_gateway_limit_backend_errors_total").await
    } else {
        0
    };
    load.stop.store(true, Ordering::Release);
    let _ = monitor.await;

    let results = std::mem::take(&mut *load.results.lock().unwrap_or_else(PoisonError::into_inner));
    report.answered = results.iter().filter(|r| r.ok).count();
    report.failed = results.len() - report.answered;
    report.retried_refused = load.retried_refused.load(Ordering::Relaxed);
    report.retried_cut = load.retried_cut.load(Ordering::Relaxed);
    for r in results.iter().filter(|r| r.ok) {
        let phase = if r.after {
            "after"
        } else if r.before {
            "before"
        } else {
            "during"
        };
        *report
            .providers
            .entry(format!("{phase}/{}", r.provider))
            .or_insert(0) += 1;
    }
    for r in results.iter().filter(|r| !r.ok).take(5) {
        report
            .broken
            .push(r.error.clone().unwrap_or_else(|| "failed".into()));
    }
    if report.failed > 0 {
        report
            .broken
            .push(format!("{} request(s) failed", report.failed));
    }
    if results.len() != s.requests && action.is_ok() {
        report.broken.push(format!(
            "{} of {} requests ended",
            results.len(),
            s.requests
        ));
    }
    match sc {
        Scenario::Drain | Scenario::Reload | Scenario::Redis if report.retried_cut > 0 => {
            report.broken.push(format!(
                "{} request(s) cut by a {} (none may be: the client's retries would hide it)",
                report.retried_cut,
                sc.name()
            ));
        }
        Scenario::Kill
            if report.retried_cut as u64 > report.inflight_at_action + s.concurrency as u64 =>
        {
            report.broken.push(format!(
                "{} request(s) cut, more than the {} in flight on the killed replica",
                report.retried_cut, report.inflight_at_action
            ));
        }
        Scenario::SharedLimit => {
            let limited = results.iter().filter(|r| r.provider == LIMITED).count();
            let admitted = report.answered - limited;
            let l = f64::from(s.rpm);
            // Any t seconds admit at most L + L·t/60 (plus the rounding of
            // the cost to whole microseconds, under 0.1 %).
            // Checks that found Redis slow or away are admitted (fail open,
            // counted by every replica): they come on top.
            let bound = (l + l * report.elapsed.as_secs_f64() / 60.0) * 1.001;
            report.notes.push(format!(
                "shared limit {} rpm over {} replicas: admitted {admitted}, refused (429) {limited}, \
                 bound for {:.1} s: {bound:.0}, admitted without Redis (fail open): {fail_open}",
                s.rpm,
                REPLICAS,
                report.elapsed.as_secs_f64()
            ));
            if (admitted as f64) > bound + fail_open as f64 {
                report.broken.push(format!(
                    "{admitted} admitted, more than the bound {bound:.0} + {fail_open} fail-open"
                ));
            }
            if admitted < s.rpm as usize {
                report.broken.push(format!(
                    "{admitted} admitted, fewer than the limit {} of a new key",
                    s.rpm
                ));
            }
            if limited == 0 {
                report.broken.push("nothing was refused".into());
            }
        }
        Scenario::Reload => {
            let wrong_after: usize = results
                .iter()
                .filter(|r| r.ok && r.after && r.provider != "beta")
                .count();
            let wrong_before: usize = results
                .iter()
                .filter(|r| r.ok && r.before && r.provider != "alpha")
                .count();
            let after: usize = results.iter().filter(|r| r.after).count();
            if wrong_after > 0 {
                report.broken.push(format!(
                    "{wrong_after} request(s) sent after the reload were not routed to beta"
                ));
            }
            if wrong_before > 0 {
                report.broken.push(format!(
                    "{wrong_before} request(s) answered before the reload were not routed to alpha"
                ));
            }
            if after == 0 {
                report
                    .broken
                    .push("no request was sent after the reload".into());
            }
        }
        _ => {}
    }
    drop(replicas);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// The scenario's action, once a third of the requests are done. For
/// [`Scenario::Redis`], returns the cache counts when Redis came back.
#[allow(clippy::too_many_arguments)]
async fn act(
    sc: Scenario,
    s: &ClusterSettings,
    load: &Arc<Load>,
    replicas: &mut [Replica],
    redis: &mut RedisServer,
    config: &Path,
    (alpha, beta): (&str, &str),
    report: &mut ScenarioReport,
) -> Result<BTreeMap<String, u64>, String> {
    if sc == Scenario::SharedLimit {
        return Ok(BTreeMap::new());
    }
    let third = s.requests / 3;
    reached(load, third).await;
    match sc {
        Scenario::SharedLimit => Ok(BTreeMap::new()),
        Scenario::Kill => {
            report.inflight_at_action = load.slots[0].inflight.load(Ordering::Acquire);
            replicas[0].signal("KILL")?;
            let _ = replicas[0].exited().await?;
            Ok(BTreeMap::new())
        }
        Scenario::Drain => {
            report.inflight_at_action = load.slots[1].inflight.load(Ordering::Acquire);
            let t = Instant::now();
            replicas[1].signal("TERM")?;
            let mut left_rotation = None;
            while replicas[1]
                .child
                .try_wait()
                .map_err(|e| e.to_string())?
                .is_none()
            {
                if left_rotation.is_none() && !load.slots[1].ready.load(Ordering::Acquire) {
                    left_rotation = Some(t.elapsed());
                }
                if t.elapsed() > PATIENCE {
                    return Err("the drained replica did not exit".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let ok = replicas[1].exited().await?;
            report.notes.push(format!(
                "drained replica: out of the rotation after {} ms, exited after {} ms (drain_delay {} s), exit status 0: {ok}",
                left_rotation.map_or_else(|| "-".into(), |d| d.as_millis().to_string()),
                t.elapsed().as_millis(),
                s.drain_delay
            ));
            if !ok {
                report
                    .broken
                    .push("the drained replica did not exit with 0".into());
            }
            if left_rotation.is_none() {
                report
                    .broken
                    .push("the drained replica never reported not ready".into());
            }
            Ok(BTreeMap::new())
        }
        Scenario::Reload => {
            load.changing.store(true, Ordering::Release);
            let text = config_text(alpha, beta, &redis.url(), "beta", s.drain_delay);
            let hash = llm_cli::gateway::config_hash(text.as_bytes());
            std::fs::write(config, &text).map_err(|e| e.to_string())?;
            let t = Instant::now();
            for r in replicas.iter() {
                r.signal("HUP")?;
            }
            // In force once every replica's readiness names the new hash.
            loop {
                let mut all = true;
                for slot in &load.slots {
                    let r = load
                        .http
                        .get(format!("{}/health/ready", slot.base))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    all &= v["config"].as_str() == Some(hash.as_str());
                }
                if all {
                    break;
                }
                if t.elapsed() > PATIENCE {
                    return Err("the replicas never reported the new configuration".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            load.marker.store(true, Ordering::Release);
            report.notes.push(format!(
                "reload: every replica on configuration {hash} {} ms after SIGHUP",
                t.elapsed().as_millis()
            ));
            Ok(BTreeMap::new())
        }
        Scenario::Redis => {
            let start = cache_counts(&load.http, &load.slots).await;
            redis.stop();
            reached(load, 2 * third).await;
            let down = cache_counts(&load.http, &load.slots).await;
            redis
                .restart()
                .map_err(|e| format!("redis-server restart: {e}"))?;
            // Back once every replica answers a repeated request from Redis.
            let t = Instant::now();
            for (k, slot) in load.slots.iter().enumerate() {
                let prompt = format!("redis probe {k} {}", fastrand::u32(..));
                while !cache_hit(&load.http, &slot.base, &prompt).await {
                    if t.elapsed() > PATIENCE {
                        return Err("the cache never answered again after Redis came back".into());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            report.notes.push(format!(
                "cache hits again on every replica {} ms after Redis came back",
                t.elapsed().as_millis()
            ));
            for (k, v) in delta(&down, &start) {
                report.cache.insert(format!("outage/{k}"), v);
            }
            Ok(down)
        }
    }
}
