//! Metrics on OpenTelemetry, exported in Prometheus text format.
//!
//! Exposed names (the contract):
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `llm_requests_total` | counter | `operation` (`chat`, `embeddings`), `provider`, `model`, `status` = `success` \| `error` \| `cache_hit` |
//! | `llm_response_time_seconds` | histogram | `operation`, `provider`, `model` |
//! | `llm_time_to_first_token_seconds` | histogram | `provider`, `model` |
//! | `llm_tokens_used_total` | counter | `operation`, `provider`, `model`, `type` = `input` \| `output` |
//! | `llm_cost_total` | counter (USD) | `operation`, `provider`, `model` |
//! | `llm_active_providers` | gauge | — |
//! | `llm_cache_requests_total` | counter | `result` = `hit` \| `miss` \| `error` |
//! | `llm_fallbacks_total` | counter | `from`, `to` |
//! | `llm_retries_total` | counter | `provider` |
//! | `llm_circuit_state` | gauge (0 closed, 1 half-open, 2 open) | `provider` |
//! | `llm_gateway_overhead_seconds` | histogram | `api` (the protocol door) |
//!
//! Model labels are bounded: a model not configured on any provider is
//! recorded as `other`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::exec::CircuitState;
use crate::types::Usage;

/// Buckets for LLM latencies, in seconds (50 ms … 300 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// Buckets for the gateway's own overhead, in seconds (10 µs … 100 ms).
pub const OVERHEAD_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1,
];

struct Instruments {
    requests: Counter<u64>,
    latency: Histogram<f64>,
    ttft: Histogram<f64>,
    tokens: Counter<u64>,
    cost: Counter<f64>,
    active: Gauge<i64>,
    cache: Counter<u64>,
    fallbacks: Counter<u64>,
    retries: Counter<u64>,
    circuit: Gauge<i64>,
    overhead: Histogram<f64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter("llm_requests")
                .with_description("LLM requests by provider, model and status")
                .build(),
            latency: meter
                .f64_histogram("llm_response_time")
                .with_unit("s")
                .with_description("Response time of successful LLM calls")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            ttft: meter
                .f64_histogram("llm_time_to_first_token")
                .with_unit("s")
                .with_description("Time to the first streamed event")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            tokens: meter
                .u64_counter("llm_tokens_used")
                .with_description("Tokens used, by type (input or output)")
                .build(),
            cost: meter
                .f64_counter("llm_cost")
                .with_description("Cost in US dollars")
                .build(),
            active: meter
                .i64_gauge("llm_active_providers")
                .with_description("Provider instances that can take requests")
                .build(),
            cache: meter
                .u64_counter("llm_cache_requests")
                .with_description("Cache lookups and failures by result")
                .build(),
            fallbacks: meter
                .u64_counter("llm_fallbacks")
                .with_description("Moves from a failed provider to the next")
                .build(),
            retries: meter
                .u64_counter("llm_retries")
                .with_description("Retries of transient failures")
                .build(),
            circuit: meter
                .i64_gauge("llm_circuit_state")
                .with_description("Circuit state: 0 closed, 1 half-open, 2 open")
                .build(),
            overhead: meter
                .f64_histogram("llm_gateway_overhead")
                .with_unit("s")
                .with_description("Time spent in the gateway, upstream call excluded")
                .with_boundaries(OVERHEAD_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// A metrics registry: an OpenTelemetry meter provider exporting to a
/// Prometheus registry.
pub struct MetricsRegistry {
    registry: prometheus::Registry,
    _provider: SdkMeterProvider,
    instruments: Arc<Instruments>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// A fresh, independent registry (tests, embedding several clients).
    pub fn new() -> Result<Self, crate::error::ConfigError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| crate::error::ConfigError::new(format!("cannot set up metrics: {e}")))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("llm-router");
        Ok(Self {
            instruments: Arc::new(Instruments::new(&meter)),
            registry,
            _provider: provider,
        })
    }

    /// The process-wide registry, created on first use.
    pub fn global() -> Option<&'static MetricsRegistry> {
        static GLOBAL: OnceLock<Option<MetricsRegistry>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| match MetricsRegistry::new() {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics disabled");
                    None
                }
            })
            .as_ref()
    }

    /// A recorder writing to this registry.
    pub fn telemetry(&self) -> Telemetry {
        Telemetry {
            instruments: Some(self.instruments.clone()),
            models: None,
            series: Arc::default(),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Records the client's metrics. Cheap to clone; a disabled one records nothing.
#[derive(Clone, Default)]
pub struct Telemetry {
    instruments: Option<Arc<Instruments>>,
    models: Option<Arc<HashSet<String>>>,
    series: Arc<SeriesCache>,
}

/// The operations and request statuses of the per-request metrics: their
/// attribute sets are built once per (provider, model).
const OPERATIONS: [&str; 2] = ["chat", "embeddings"];
const STATUSES: [&str; 3] = ["success", "error", "cache_hit"];
/// Most (provider, model) pairs whose attribute sets are kept; beyond (only
/// possible without [`Telemetry::with_models`]) they are built per record.
const MAX_SERIES: usize = 1024;

/// Every attribute set the per-request metrics of one (provider, model
/// label) use, built once: recording then allocates nothing.
struct Series {
    /// `[operation][status]`: operation, provider, model, status.
    requests: [[[KeyValue; 4]; 3]; 2],
    /// `[operation]`: operation, provider, model (latency and cost).
    base: [[KeyValue; 3]; 2],
    /// `[operation][input, output]`: operation, provider, model, type.
    tokens: [[[KeyValue; 4]; 2]; 2],
    /// provider, model.
    ttft: [KeyValue; 2],
}

impl Series {
    fn new(provider: &str, model: &str) -> Self {
        let provider = KeyValue::new("provider", Arc::<str>::from(provider));
        let model = KeyValue::new("model", Arc::<str>::from(model));
        let base = |op: &'static str| {
            [
                KeyValue::new("operation", op),
                provider.clone(),
                model.clone(),
            ]
        };
        let with = |op: &'static str, k: &'static str, v: &'static str| {
            let [a, b, c] = base(op);
            [a, b, c, KeyValue::new(k, v)]
        };
        Self {
            requests: OPERATIONS.map(|op| STATUSES.map(|st| with(op, "status", st))),
            base: OPERATIONS.map(base),
            tokens: OPERATIONS.map(|op| ["input", "output"].map(|t| with(op, "type", t))),
            ttft: [provider.clone(), model.clone()],
        }
    }
}

/// Attribute sets of one provider, by model label.
type ByModel = HashMap<Box<str>, Arc<Series>>;

/// Attribute sets by provider, then model label.
#[derive(Default)]
struct SeriesCache {
    map: RwLock<HashMap<Box<str>, ByModel>>,
}

impl SeriesCache {
    fn get(&self, provider: &str, model: &str) -> Option<Arc<Series>> {
        if let Ok(map) = self.map.read() {
            if let Some(s) = map.get(provider).and_then(|m| m.get(model)) {
                return Some(s.clone());
            }
        }
        let mut map = self.map.write().ok()?;
        let total: usize = map.values().map(HashMap::len).sum();
        if total >= MAX_SERIES {
            return None;
        }
        let s = Arc::new(Series::new(provider, model));
        map.entry(provider.into())
            .or_default()
            .insert(model.into(), s.clone());
        Some(s)
    }
}

fn op_index(op: &str) -> Option<usize> {
    OPERATIONS.iter().position(|o| *o == op)
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.instruments.is_some())
            .finish()
    }
}

fn kv(k: &'static str, v: &str) -> KeyValue {
    KeyValue::new(k, v.to_string())
}

impl Telemetry {
    /// A recorder that records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A recorder on the process-wide registry (what `LlmClient::from_config` uses).
    pub fn global() -> Self {
        MetricsRegistry::global().map_or_else(Self::disabled, MetricsRegistry::telemetry)
    }

    /// Limits model labels to `models`; others are recorded as `other`.
    pub fn with_models(mut self, models: impl IntoIterator<Item = String>) -> Self {
        self.models = Some(Arc::new(models.into_iter().collect()));
        // Labels are resolved once per series: new rules, new series.
        self.series = Arc::default();
        self
    }

    fn model<'a>(&self, model: &'a str) -> &'a str {
        match &self.models {
            Some(known) if !known.contains(model) => "other",
            _ => model,
        }
    }

    /// The prebuilt attribute sets of (provider, model label).
    fn series(&self, provider: &str, model: &str) -> Option<Arc<Series>> {
        self.series.get(provider, self.model(model))
    }

    pub(crate) fn request(&self, op: &str, provider: &str, model: &str, status: &str) {
        if let Some(i) = &self.instruments {
            let st = STATUSES.iter().position(|s| *s == status);
            if let (Some(o), Some(st), Some(series)) =
                (op_index(op), st, self.series(provider, model))
            {
                i.requests.add(1, &series.requests[o][st]);
                return;
            }
            let attrs = [
                kv("operation", op),
                kv("provider", provider),
                kv("model", self.model(model)),
                kv("status", status),
            ];
            i.requests.add(1, &attrs);
        }
    }

    pub(crate) fn latency(&self, op: &str, provider: &str, model: &str, secs: f64) {
        if let Some(i) = &self.instruments {
            if let (Some(o), Some(series)) = (op_index(op), self.series(provider, model)) {
                i.latency.record(secs, &series.base[o]);
                return;
            }
            i.latency.record(
                secs,
                &[
                    kv("operation", op),
                    kv("provider", provider),
                    kv("model", self.model(model)),
                ],
            );
        }
    }

    pub(crate) fn ttft(&self, provider: &str, model: &str, secs: f64) {
        if let Some(i) = &self.instruments {
            if let Some(series) = self.series(provider, model) {
                i.ttft.record(secs, &series.ttft);
                return;
            }
            i.ttft.record(
                secs,
                &[kv("provider", provider), kv("model", self.model(model))],
            );
        }
    }

    pub(crate) fn tokens(&self, op: &str, provider: &str, model: &str, usage: &Usage) {
        if let Some(i) = &self.instruments {
            if let (Some(o), Some(series)) = (op_index(op), self.series(provider, model)) {
                let [input, output] = &series.tokens[o];
                i.tokens.add(usage.prompt_tokens, input);
                if usage.completion_tokens != 0 || op != "embeddings" {
                    i.tokens.add(usage.completion_tokens, output);
                }
                return;
            }
            let m = self.model(model);
            i.tokens.add(
                usage.prompt_tokens,
                &[
                    kv("operation", op),
                    kv("provider", provider),
                    kv("model", m),
                    kv("type", "input"),
                ],
            );
            if usage.completion_tokens == 0 && op == "embeddings" {
                return;
            }
            i.tokens.add(
                usage.completion_tokens,
                &[
                    kv("operation", op),
                    kv("provider", provider),
                    kv("model", m),
                    kv("type", "output"),
                ],
            );
        }
    }

    pub(crate) fn cost(&self, op: &str, provider: &str, model: &str, usd: f64) {
        if let Some(i) = &self.instruments {
            if let (Some(o), Some(series)) = (op_index(op), self.series(provider, model)) {
                i.cost.add(usd, &series.base[o]);
                return;
            }
            i.cost.add(
                usd,
                &[
                    kv("operation", op),
                    kv("provider", provider),
                    kv("model", self.model(model)),
                ],
            );
        }
    }

    pub(crate) fn cache(&self, result: &'static str) {
        self.cache_n(result, 1);
    }

    /// Counts `n` cache lookups of one result at once (a batch).
    pub(crate) fn cache_n(&self, result: &'static str, n: usize) {
        if let (Some(i), true) = (&self.instruments, n > 0) {
            i.cache.add(n as u64, &[KeyValue::new("result", result)]);
        }
    }

    pub(crate) fn fallback(&self, from: &str, to: &str) {
        if let Some(i) = &self.instruments {
            i.fallbacks.add(1, &[kv("from", from), kv("to", to)]);
        }
    }

    pub(crate) fn retry(&self, provider: &str) {
        if let Some(i) = &self.instruments {
            i.retries.add(1, &[kv("provider", provider)]);
        }
    }

    pub(crate) fn circuit(&self, provider: &str, state: CircuitState) {
        if let Some(i) = &self.instruments {
            let v = match state {
                CircuitState::Closed => 0,
                CircuitState::HalfOpen => 1,
                CircuitState::Open => 2,
            };
            i.circuit.record(v, &[kv("provider", provider)]);
        }
    }

    pub(crate) fn active_providers(&self, n: usize) {
        if let Some(i) = &self.instruments {
            i.active.record(i64::try_from(n).unwrap_or(i64::MAX), &[]);
        }
    }

    /// Records time spent in the gateway itself (upstream call excluded).
    /// `api` names the protocol door the request came in by (`chat`,
    /// `responses`, `completions`, `embeddings`, `messages`, `ollama`): the
    /// one place where the pipeline's metrics know it.
    pub fn gateway_overhead(&self, api: &str, secs: f64) {
        if let Some(i) = &self.instruments {
            i.overhead.record(secs, &[kv("api", api)]);
        }
    }
}

/// The Prometheus text exposition of the process-wide registry (what
/// `GET /metrics` serves).
pub fn prometheus_text() -> String {
    MetricsRegistry::global()
        .map(MetricsRegistry::encode)
        .unwrap_or_default()
}

/// A running `/metrics` endpoint. Stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` for `registry` on `addr` (port 0 picks a free port).
///
/// This is the library user's endpoint (`[monitoring] prometheus_port`); the
/// gateway serves the same registry on its own `/metrics`.
pub async fn serve(
    registry: Arc<MetricsRegistry>,
    addr: std::net::SocketAddr,
) -> std::io::Result<MetricsServer> {
    serve_with(move || registry.encode(), addr).await
}

async fn serve_static(
    registry: &'static MetricsRegistry,
    addr: std::net::SocketAddr,
) -> std::io::Result<MetricsServer> {
    serve_with(move || registry.encode(), addr).await
}

async fn serve_with(
    encode: impl Fn() -> String + Clone + Send + Sync + 'static,
    addr: std::net::SocketAddr,
) -> std::io::Result<MetricsServer> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let encode = encode.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let encode = encode.clone();
                        async move {
                            let resp = if req.uri().path() == "/metrics" {
                                Response::builder()
                                    .header(
                                        "content-type",
                                        "text/plain; version=0.0.4; charset=utf-8",
                                    )
                                    .body(Full::new(Bytes::from(encode())))
                            } else {
                                Response::builder()
                                    .status(StatusCode::NOT_FOUND)
                                    .body(Full::new(Bytes::from_static(b"not found\n")))
                            };
                            resp
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(sock);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

/// Serves the process-wide registry as `[monitoring]` says: on
/// `prometheus_host:prometheus_port` (port 0 picks a free port; read it from
/// [`MetricsServer::local_addr`]), or not at all when monitoring is disabled.
pub async fn serve_monitoring(
    cfg: &crate::config::MonitoringConfig,
) -> std::io::Result<Option<MetricsServer>> {
    if !cfg.enabled {
        return Ok(None);
    }
    let Some(registry) = MetricsRegistry::global() else {
        return Ok(None);
    };
    let ip: std::net::IpAddr = cfg.prometheus_host.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "`monitoring.prometheus_host` is not an IP address: {}",
                cfg.prometheus_host
            ),
        )
    })?;
    let addr = std::net::SocketAddr::new(ip, cfg.prometheus_port);
    serve_static(registry, addr).await.map(Some)
}
