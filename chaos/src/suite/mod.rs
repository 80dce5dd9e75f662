//! The chaos run: three faulty upstreams, a client (and optionally the
//! gateway) in front of them, many concurrent requests, then the checks.
//!
//! Used by `cargo test -p llm-chaos` (short) and the `chaos` binary (long).

mod driver;
mod report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use llm_core::cache::{MemoryCache, ResponseCache};
use llm_core::client::known_models;
use llm_core::config::{Config, GatewayConfig, Secs};
use llm_core::metrics::MetricsRegistry;
use llm_core::LlmClient;
use tokio::sync::watch;
use tokio::time::Instant;

pub use driver::{request_for, via_client, via_gateway, Answer, Outcome};
pub use report::{Report, Violation};

use crate::audit::AuditCache;
use crate::fault::{rotating, Phase, Role};
use crate::monitor::{rss_kib, BreakerWatch};
use crate::redis::RedisServer;
use crate::upstream::{ApiKind, ChaosOptions, Ledger, Upstream};

/// Timeouts, retries and breaker settings of the client under test.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Per-attempt timeout (`timeout` of every provider).
    pub attempt_timeout: Duration,
    /// `routing.retry.max_retries`.
    pub max_retries: u32,
    /// `routing.retry.backoff_base`.
    pub backoff_base: Duration,
    /// `routing.retry.backoff_max`.
    pub backoff_max: Duration,
    /// `routing.retry.max_retry_after`.
    pub max_retry_after: Duration,
    /// `routing.deadline`.
    pub deadline: Duration,
    /// `routing.health.failure_threshold`.
    pub failure_threshold: u32,
    /// `routing.health.cooldown`.
    pub cooldown: Duration,
    /// `routing.health.max_cooldown`.
    pub max_cooldown: Duration,
    /// `routing.health.check_interval`.
    pub check_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(1),
            max_retries: 2,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            max_retry_after: Duration::from_millis(500),
            deadline: Duration::from_secs(10),
            failure_threshold: 3,
            cooldown: Duration::from_millis(200),
            max_cooldown: Duration::from_secs(1),
            check_interval: Duration::from_millis(250),
        }
    }
}

/// Which cache backs the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheChoice {
    /// The in-process memory cache, with this byte budget.
    Memory(u64),
    /// A `redis-server` started (and killed and restarted mid-run) here.
    OwnRedis,
    /// A Redis at this URL (not restarted).
    Redis(String),
}

/// Where requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `LlmClient` in this process.
    Client,
    /// The OpenAI-compatible gateway (in this process) over HTTP.
    Gateway,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Client requests to send.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Share of requests that stream.
    pub stream_share: f64,
    /// Share of requests that repeat an earlier prompt (cache traffic).
    pub repeat_share: f64,
    /// Fault phases in the run (the trouble rotates at every phase change;
    /// phases change as requests complete, so their number is fixed).
    pub phases: usize,
    /// Fault rate of flaky upstreams.
    pub flaky_rate: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Cache backend.
    pub cache: CacheChoice,
    /// Client or gateway.
    pub via: Via,
    /// Misbehaviour tunables.
    pub chaos: ChaosOptions,
    /// Client limits.
    pub limits: Limits,
    /// Print progress to stderr every this many requests.
    pub progress_every: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            requests: 2000,
            concurrency: 48,
            stream_share: 0.5,
            repeat_share: 0.25,
            phases: 12,
            flaky_rate: 0.5,
            seed: 42,
            cache: CacheChoice::Memory(64 * 1024 * 1024),
            via: Via::Client,
            chaos: ChaosOptions {
                hang_limit: Duration::from_secs(5),
                ..ChaosOptions::default()
            },
            limits: Limits::default(),
            progress_every: None,
        }
    }
}

/// The upstreams of a run: two OpenAI-kind and one Ollama-kind.
pub const UPSTREAMS: &[(&str, ApiKind)] = &[
    ("openai-a", ApiKind::OpenAi),
    ("openai-b", ApiKind::OpenAi),
    ("ollama", ApiKind::Ollama),
];

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The configuration of the client under test, pointing at `upstreams`.
pub fn config_toml(upstreams: &[Upstream], limits: &Limits) -> String {
    let mut t = String::new();
    for u in upstreams {
        let (model, extra) = match u.kind() {
            ApiKind::OpenAi => ("gpt-4o-mini", "allow_no_key = true\n"),
            ApiKind::Ollama => ("llama3.2", ""),
        };
        t.push_str(&format!(
            "[llm_providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{url}\"\n{extra}\
             models = [\"{model}\"]\ndefault_model = \"{model}\"\ntimeout = {timeout}\n\n",
            name = u.name(),
            kind = u.kind().provider_kind(),
            url = u.base_url(),
            timeout = secs(limits.attempt_timeout),
        ));
    }
    t.push_str(&format!(
        "[routing]\nstrategy = \"weighted\"\ndeadline = {deadline}\nfallback = {{}}\n\n\
         [routing.rules]\nsimple_max_chars = 0\ncomplex_min_chars = 100000000\n\
         complex_min_tokens = 100000000\ncomplex_keywords = []\n\n\
         [routing.retry]\nmax_retries = {retries}\nbackoff_base = {base}\nbackoff_max = {max}\n\
         max_retry_after = {ra}\n\n\
         [routing.health]\ncheck_interval = {check}\nfailure_threshold = {threshold}\n\
         cooldown = {cooldown}\nmax_cooldown = {max_cooldown}\n\n\
         [caching]\nenabled = true\n\n[monitoring]\nenabled = false\n",
        deadline = secs(limits.deadline),
        retries = limits.max_retries,
        base = secs(limits.backoff_base),
        max = secs(limits.backoff_max),
        ra = secs(limits.max_retry_after),
        check = secs(limits.check_interval),
        threshold = limits.failure_threshold,
        cooldown = secs(limits.cooldown),
        max_cooldown = secs(limits.max_cooldown),
    ));
    t
}

/// Starts the three upstreams of a run.
pub async fn start_upstreams(
    options: &ChaosOptions,
    ledger: &Arc<Ledger>,
) -> std::io::Result<Vec<Upstream>> {
    let mut out = Vec::new();
    for (name, kind) in UPSTREAMS {
        out.push(Upstream::start(name, *kind, options.clone(), ledger.clone()).await?);
    }
    Ok(out)
}

/// Plays `phases` over `upstreams`, entering phase `k` once `k × per_phase`
/// requests are done, until stopped; then makes every upstream healthy.
/// Returns the roles of every phase entered.
async fn conduct(
    upstreams: Arc<Vec<Upstream>>,
    phases: Vec<Phase>,
    done: Arc<AtomicUsize>,
    per_phase: usize,
    mut stop: watch::Receiver<bool>,
) -> Vec<Vec<Role>> {
    let mut entered = Vec::new();
    for (k, phase) in phases.iter().enumerate() {
        while done.load(Ordering::Relaxed) < k * per_phase {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(2)) => {}
                _ = stop.changed() => return heal(&upstreams, entered).await,
            }
        }
        for (u, role) in upstreams.iter().zip(&phase.roles) {
            if let Err(e) = u.set_role(role.clone()).await {
                tracing::warn!(upstream = u.name(), error = %e, "cannot change role");
            }
        }
        entered.push(phase.roles.clone());
    }
    let _ = stop.changed().await;
    heal(&upstreams, entered).await
}

async fn heal(upstreams: &[Upstream], entered: Vec<Vec<Role>>) -> Vec<Vec<Role>> {
    for u in upstreams {
        let _ = u.set_role(Role::Healthy).await;
    }
    entered
}

/// The cache of a run and, for an own Redis, its server.
struct CacheSetup {
    audit: Arc<AuditCache>,
    redis: Option<Arc<Mutex<RedisServer>>>,
    label: String,
}

fn setup_cache(choice: &CacheChoice, seed: u64) -> Result<CacheSetup, String> {
    let prefix = format!("llmchaos:{}:{seed}:", std::process::id());
    let (backend, redis, label): (Arc<dyn ResponseCache>, _, String) = match choice {
        CacheChoice::Memory(bytes) => (
            Arc::new(MemoryCache::new(*bytes)),
            None,
            format!("memory ({} MiB)", bytes / (1024 * 1024)),
        ),
        CacheChoice::OwnRedis => {
            let server =
                RedisServer::start(None).map_err(|e| format!("cannot start redis-server: {e}"))?;
            let cache = redis_cache(&server.url(), &prefix)?;
            let label = format!(
                "redis (own server on port {}, restarted mid-run)",
                server.port()
            );
            (Arc::new(cache), Some(Arc::new(Mutex::new(server))), label)
        }
        CacheChoice::Redis(url) => (
            Arc::new(redis_cache(url, &prefix)?),
            None,
            "redis (external, not restarted)".to_string(),
        ),
    };
    Ok(CacheSetup {
        audit: Arc::new(AuditCache::new(backend)),
        redis,
        label,
    })
}

fn redis_cache(url: &str, prefix: &str) -> Result<llm_router::cache_redis::RedisCache, String> {
    llm_router::cache_redis::RedisCache::builder(url)
        .key_prefix(prefix)
        .timeout(Duration::from_millis(250))
        .retry_interval(Duration::from_millis(100))
        .build()
        .map_err(|e| format!("cannot build the Redis cache: {e}"))
}

/// Kills the own Redis when 40 % of the requests are done and restarts it at 60 %.
fn redis_chaos(
    redis: Arc<Mutex<RedisServer>>,
    done: Arc<AtomicUsize>,
    total: usize,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut events = Vec::new();
        for (at, kill) in [(total * 2 / 5, true), (total * 3 / 5, false)] {
            while done.load(Ordering::Relaxed) < at {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let r = redis.clone();
            let res = tokio::task::spawn_blocking(move || {
                let mut s = r.lock().unwrap_or_else(PoisonError::into_inner);
                if kill {
                    s.stop();
                    Ok(())
                } else {
                    s.restart()
                }
            })
            .await;
            let what = if kill { "killed" } else { "restarted" };
            match res {
                Ok(Ok(())) => events.push(format!("redis {what} after {at} requests")),
                Ok(Err(e)) => events.push(format!("redis could not be {what}: {e}")),
                Err(e) => events.push(format!("redis task failed: {e}")),
            }
        }
        events
    })
}

/// What each request of a run will be: its prompt and whether it streams.
fn workload(s: &Settings) -> Vec<(String, bool)> {
    let mut rng = fastrand::Rng::with_seed(s.seed);
    let mut fresh: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(s.requests);
    for i in 0..s.requests {
        let stream = rng.f64() < s.stream_share;
        let prompt = if !fresh.is_empty() && rng.f64() < s.repeat_share {
            // Mostly recent prompts, so some repeats are in flight together.
            let back = rng.usize(..fresh.len().min(64));
            out_prompt(fresh[fresh.len() - 1 - back], s.seed)
        } else {
            fresh.push(i);
            out_prompt(i, s.seed)
        };
        out.push((prompt, stream));
    }
    out
}

fn out_prompt(i: usize, seed: u64) -> String {
    format!("q{i:06} 写一首关于秋天的短诗 (run {seed})")
}

/// Runs the chaos scenario and checks every invariant. `Err` only when the
/// run could not be set up; violations are in the report.
pub async fn run(s: Settings) -> Result<Report, String> {
    let rss_start = rss_kib(None);
    let started = Instant::now();
    let ledger = Arc::new(Ledger::default());
    let upstreams = Arc::new(
        start_upstreams(&s.chaos, &ledger)
            .await
            .map_err(|e| format!("cannot start the upstreams: {e}"))?,
    );
    let cache = setup_cache(&s.cache, s.seed)?;
    let config = Config::from_toml_str(&config_toml(&upstreams, &s.limits))
        .map_err(|e| format!("the chaos configuration is invalid: {e}"))?;
    let providers = config
        .build_providers()
        .map_err(|e| format!("cannot build providers: {e}"))?;
    let registry = MetricsRegistry::new().map_err(|e| e.to_string())?;
    let telemetry = registry.telemetry().with_models(known_models(&providers));
    let client = LlmClient::builder()
        .providers(providers)
        .routing(config.routing.clone())
        .cache(cache.audit.clone())
        .telemetry(telemetry)
        .seed(s.seed)
        .build()
        .map_err(|e| format!("cannot build the client: {e}"))?;

    let gateway = match s.via {
        Via::Client => None,
        Via::Gateway => {
            let cfg = GatewayConfig {
                request_timeout: Secs(s.limits.deadline + Duration::from_secs(5)),
                max_concurrency: s.concurrency * 2,
                ..GatewayConfig::default()
            };
            let handle = llm_cli::gateway::Gateway::new(client.clone(), &cfg)
                .bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot start the gateway: {e}"))?;
            Some(handle)
        }
    };
    let base = gateway
        .as_ref()
        .map(|g| format!("http://{}", g.local_addr()))
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(s.concurrency * 2)
        .build()
        .map_err(|e| e.to_string())?;

    let watch_breakers = BreakerWatch::start(client.clone(), Duration::from_millis(5));
    let phases = rotating(
        upstreams.len(),
        s.phases.max(1),
        Duration::ZERO,
        s.flaky_rate,
    );
    let per_phase = s.requests.div_ceil(s.phases.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let done = Arc::new(AtomicUsize::new(0));
    let conductor = tokio::spawn(conduct(
        upstreams.clone(),
        phases,
        done.clone(),
        per_phase,
        stop_rx,
    ));
    let redis_task = cache
        .redis
        .clone()
        .map(|r| redis_chaos(r, done.clone(), s.requests));

    let work = workload(&s);
    let via = s.via;
    let bound = s.limits.deadline * 3 + Duration::from_secs(30);
    let outcomes: Vec<Outcome> = futures::stream::iter(work.into_iter().enumerate())
        .map(|(i, (prompt, stream))| {
            let (client, http, base, done) = (&client, &http, &base, &done);
            let progress = s.progress_every;
            let total = s.requests;
            async move {
                let fut = async {
                    match via {
                        Via::Client => {
                            via_client(client, i, &prompt, request_for(&prompt), stream).await
                        }
                        Via::Gateway => via_gateway(http, base, i, &prompt, stream).await,
                    }
                };
                let out = match tokio::time::timeout(bound, fut).await {
                    Ok(o) => o,
                    Err(_) => hung(i, &prompt, stream, bound),
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress.is_some_and(|p| p > 0 && n % p == 0) {
                    eprintln!("  {n}/{total} requests");
                }
                out
            }
        })
        .buffer_unordered(s.concurrency.max(1))
        .collect()
        .await;
    let load_elapsed = started.elapsed();

    stop_tx.send_replace(true);
    let phases_entered = conductor.await.unwrap_or_default();
    let redis_events = match redis_task {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };

    // Every upstream is healthy again: each circuit must close after its cooldown.
    let recovery = recover(&client, &s.limits).await;
    let breakers = watch_breakers.finish().await;
    let readback = read_back(&cache.audit, &outcomes).await;
    let metrics = registry.encode();
    if let Some(g) = gateway {
        g.shutdown().await;
    }
    let upstream_stats = upstreams
        .iter()
        .map(|u| (u.name().to_string(), u.stats()))
        .collect();
    Ok(report::build(report::Inputs {
        settings: s,
        outcomes,
        ledger: ledger.snapshot(),
        upstream_stats,
        breakers,
        recovery,
        readback,
        audit_violations: cache.audit.violations(),
        cache_sets: cache.audit.sets(),
        cache_label: cache.label,
        redis_events,
        metrics,
        phases_entered,
        load_elapsed,
        rss_start,
        rss_end: rss_kib(None),
    }))
}

fn hung(i: usize, prompt: &str, stream: bool, bound: Duration) -> Outcome {
    Outcome {
        index: i,
        prompt: prompt.to_string(),
        stream,
        answer: Answer::Failed {
            kind: "hung".into(),
            message: String::new(),
        },
        reported_calls: None,
        elapsed: bound,
        opened_after: None,
        violations: vec![format!("no answer within {:.0} s", bound.as_secs_f64())],
    }
}

/// After the run: requests straight at each provider until its circuit
/// closes. Returns, per provider, whether it closed and how many requests it took.
async fn recover(client: &LlmClient, limits: &Limits) -> HashMap<String, (bool, u32)> {
    let mut out = HashMap::new();
    let patience = limits.max_cooldown * 4 + limits.check_interval * 4 + Duration::from_secs(5);
    for p in client.providers() {
        let name = p.name().to_string();
        let until = Instant::now() + patience;
        let mut sent = 0u32;
        let closed = loop {
            let closed = client
                .health()
                .iter()
                .any(|h| h.provider == name && h.circuit == llm_core::exec::CircuitState::Closed);
            if closed || Instant::now() > until {
                break closed;
            }
            sent += 1;
            let prompt = format!("r{sent:05}-{name} recovery probe");
            let req = request_for(&prompt)
                .provider(name.clone())
                .cache(llm_core::CacheDirective::Bypass);
            let _ = client.generate(req).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        out.insert(name, (closed, sent));
    }
    out
}

/// Reads back, through the cache backend, the entry of every prompt that was
/// sent: each present entry must be the full, correct answer.
async fn read_back(audit: &AuditCache, outcomes: &[Outcome]) -> report::Readback {
    let mut seen = std::collections::HashSet::new();
    let mut rb = report::Readback::default();
    for o in outcomes {
        if !seen.insert(o.prompt.clone()) {
            continue;
        }
        let key = llm_core::cache::CacheKey::for_request(&request_for(&o.prompt));
        match audit.inner().get(&key).await {
            Ok(Some(entry)) => {
                rb.present += 1;
                let expected = crate::protocol::answer_for(&o.prompt);
                if entry.content != expected {
                    rb.wrong.push(format!(
                        "{}: cached {:?}, correct answer {:?}",
                        o.prompt, entry.content, expected
                    ));
                }
            }
            Ok(None) => rb.absent += 1,
            Err(_) => rb.unreadable += 1,
        }
    }
    rb
}
