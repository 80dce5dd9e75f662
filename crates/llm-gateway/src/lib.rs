//! The HTTP gateway of llm-router, as a library: an axum [`Router`] around an
//! [`LlmClient`] ([`Gateway::router`]) that an application can mount inside
//! its own server with its own middleware, or serve as is ([`Gateway::bind`];
//! `llm serve` is a thin binary over it). Each protocol door is a module of
//! [`protocols`]; routing, fallback, caching, auth, limits and metrics are
//! shared by every door.
//!
//! Routes: `POST /v1/chat/completions` (JSON or server-sent events),
//! `POST /v1/responses` (OpenAI Responses, stateless), `POST /v1/completions`
//! (legacy text completions), `POST /v1/embeddings`, `POST /v1/messages` and
//! `POST /v1/messages/count_tokens` (Anthropic Messages), `GET /v1/models`,
//! `GET /v1/models/{model}`, `GET /health`, `GET /health/live`,
//! `GET /health/ready`, `GET /metrics`, and the Ollama
//! API under `/api/*` ([`protocols::ollama`]). `/v1/*` and `/api/*` need a
//! key (`Authorization: Bearer`, or `x-api-key`) when `api_keys` are
//! configured and count
//! against `max_concurrency`; `/health*` and `/metrics` are always open.
//! With virtual keys ([`Gateway::tenancy`], [`tenancy`]) every `/v1/*` and
//! `/api/*` request needs a configured or virtual key, each virtual key with
//! its allowed models, rate limits and budget, and `/admin/*` serves the
//! key and usage API behind the master key.
//!
//! A served gateway ([`GatewayHandle`]) drains on SIGTERM
//! ([`GatewayHandle::drain`]: readiness false at once, the listener open for
//! `drain_delay`, then in-flight requests get `shutdown_grace`) and can swap
//! in a new configuration while serving ([`GatewayHandle::reload`]).
//! With allowed CORS origins ([`Gateway::cors_origins`]) browser preflights
//! are answered, without a key. Error text from upstreams is scrubbed of
//! key-like tokens and of the configured keys before it reaches a caller or
//! a log.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use llm_gateway::Gateway;
//! use llm_router::config::Config;
//! use llm_router::LlmClient;
//!
//! let config = Config::load(None)?;
//! let client = LlmClient::from_config(&config)?;
//! let handle = Gateway::new(client, &config.gateway).bind("127.0.0.1:0").await?;
//! println!("listening on http://{}", handle.local_addr());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

pub mod error;
mod lifecycle;
mod middleware;
pub mod protocols;
mod routes;
pub mod scrub;
mod server;
pub mod tenancy;

pub use protocols::openai_chat::wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use llm_router::config::{Config, GatewayConfig};
use llm_router::{LlmClient, SecretString};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use lifecycle::{Lifecycle, Timings};

pub use error::ApiError;
pub use lifecycle::{config_hash, GatewayStatus};
pub use routes::PROMETHEUS_CONTENT_TYPE;
pub use scrub::Scrubber;
pub use server::Shutdown;

/// Response headers a browser script may read on a cross-origin answer.
const EXPOSED_HEADERS: &[&str] = &[
    "x-llm-provider",
    "x-llm-cache",
    "x-llm-cached-inputs",
    "x-llm-attempts",
    "x-llm-overhead-ms",
    "x-llm-config",
    "x-request-id",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// Response header naming the configuration (short hash) that answered.
const CONFIG_HEADER: &str = "x-llm-config";

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// A CORS origin that is not a valid `scheme://host[:port]` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin(pub String);

impl std::fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid CORS origin `{}`: expected `*` or scheme://host[:port] (e.g. https://app.example.com)",
            self.0
        )
    }
}

impl std::error::Error for InvalidOrigin {}

/// Limits of a running gateway (from `[gateway]`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_concurrency: usize,
    pub(crate) request_timeout: Duration,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) client: LlmClient,
    pub(crate) settings: Arc<Settings>,
    pub(crate) keys: Arc<middleware::Keys>,
    pub(crate) inflight: Arc<Semaphore>,
    /// Unix seconds of the start (the `created` of listed models).
    pub(crate) started: u64,
    /// Removes keys from upstream error text.
    pub(crate) scrubber: Scrubber,
    /// Readiness, drain and the live configuration (shared across reloads).
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Virtual keys, limits, budgets and the spend log (`None`: off).
    pub(crate) tenancy: Option<Arc<tenancy::Tenancy>>,
}

/// A gateway, configured but not yet listening.
pub struct Gateway {
    state: AppState,
    /// Threads serving connections ([`bind`](Self::bind)); 0: one per core.
    workers: usize,
    shutdown_grace: Duration,
    /// After SIGTERM, how long the listener keeps accepting.
    drain_delay: Duration,
    /// Short hash of the configuration file (`llm_gateway_config_info`).
    config_hash: Option<String>,
    /// Allowed browser origins (`None`: no CORS headers at all).
    cors: Option<AllowOrigin>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.state.settings)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.state.keys.len()),
            )
            .field("workers", &self.workers)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("drain_delay", &self.drain_delay)
            .field("config_hash", &self.config_hash)
            .field("cors", &self.cors.is_some())
            .finish()
    }
}

impl Gateway {
    /// A gateway serving `client` with the limits and keys of `config`
    /// (its `addr` is used by [`start`](Self::start)).
    pub fn new(client: LlmClient, config: &GatewayConfig) -> Self {
        let settings = Settings {
            max_body_bytes: config.max_body_bytes,
            max_concurrency: config.max_concurrency.max(1),
            request_timeout: config.request_timeout.0,
        };
        Self {
            state: AppState {
                client,
                inflight: middleware::semaphore(settings.max_concurrency),
                settings: Arc::new(settings),
                keys: Arc::new(middleware::Keys::new(&config.api_keys)),
                started: protocols::openai_chat::unix_now(),
                scrubber: Scrubber::new(&config.api_keys),
                lifecycle: Arc::new(Lifecycle::new(Timings {
                    drain_delay: config.drain_delay.0,
                    shutdown_grace: config.shutdown_grace.0,
                })),
                tenancy: None,
            },
            workers: config.workers,
            shutdown_grace: config.shutdown_grace.0,
            drain_delay: config.drain_delay.0,
            config_hash: None,
            cors: None,
        }
    }

    /// A gateway for `config`: its `[gateway]` settings, with every
    /// provider's secrets (`api_key`, key- or token-like options and headers)
    /// also scrubbed verbatim from upstream error text.
    pub fn from_config(client: LlmClient, config: &Config) -> Self {
        let secrets = provider_secrets(config);
        Self::new(client, &config.gateway).scrub_secrets(&secrets)
    }

    /// Allows browser scripts from `origins` (`*` for any) to call the
    /// gateway: preflights (`OPTIONS`) are answered without a key, with the
    /// methods `GET`/`POST` and whatever request headers the browser asks
    /// for (`Authorization`, `Content-Type`, the SDKs' `x-stainless-*`, …).
    /// No origins (the default) means no CORS headers at all.
    pub fn cors_origins<S: AsRef<str>>(mut self, origins: &[S]) -> Result<Self, InvalidOrigin> {
        self.cors = parse_origins(origins)?;
        Ok(self)
    }

    /// Turns on virtual keys, limits, budgets, the spend log and the admin
    /// API (`/admin/*`, with a master key) with `tenancy`. The same
    /// `Arc` can be handed to a gateway rebuilt on a configuration reload,
    /// which then keeps its counters, ledgers and pending spend rows.
    pub fn tenancy(mut self, tenancy: Arc<tenancy::Tenancy>) -> Self {
        if let Some(master) = tenancy.master_key() {
            self.state.scrubber.add([master]);
        }
        self.state.tenancy = Some(tenancy);
        self
    }

    /// Also removes these secrets (e.g. the providers' keys) verbatim from
    /// upstream error text. The gateway's own `api_keys` are always removed.
    pub fn scrub_secrets<'a>(
        mut self,
        secrets: impl IntoIterator<Item = &'a SecretString>,
    ) -> Self {
        self.state.scrubber.add(secrets);
        self
    }

    /// Names the configuration this gateway serves: the short hash of its
    /// file ([`config_hash`]), exported as `llm_gateway_config_info{hash}`
    /// and logged when it goes live.
    pub fn with_config_hash(mut self, hash: impl Into<String>) -> Self {
        self.config_hash = Some(hash.into());
        self
    }

    fn timings(&self) -> Timings {
        Timings {
            drain_delay: self.drain_delay,
            shutdown_grace: self.shutdown_grace,
        }
    }

    fn cors_layer(&self) -> Option<CorsLayer> {
        let origins = self.cors.clone()?;
        let exposed: Vec<HeaderName> = EXPOSED_HEADERS
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers(AllowHeaders::mirror_request())
                .expose_headers(exposed)
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }

    /// The axum router, for embedding the gateway in another server.
    pub fn router(&self) -> Router {
        let st = self.state.clone();
        let api = Router::new()
            .route(
                "/v1/chat/completions",
                post(protocols::openai_chat::chat_completions).fallback(routes::wrong_method),
            )
            .route(
                "/v1/responses",
                post(protocols::openai_responses::responses).fallback(routes::wrong_method),
            )
            .route(
                "/v1/completions",
                post(protocols::openai_completions::completions).fallback(routes::wrong_method),
            )
            .route(
                "/v1/embeddings",
                post(protocols::openai_embeddings::embeddings).fallback(routes::wrong_method),
            )
            .route(
                "/v1/messages",
                post(protocols::anthropic_messages::messages).fallback(routes::wrong_method),
            )
            .route(
                "/v1/messages/count_tokens",
                post(protocols::anthropic_messages::count_tokens).fallback(routes::wrong_method),
            )
            .route(
                "/v1/models",
                get(routes::list_models).fallback(routes::wrong_method),
            )
            .route(
                "/v1/models/{*model}",
                get(routes::get_model).fallback(routes::wrong_method),
            )
            .layer(axum::middleware::from_fn_with_state(
                st.clone(),
                middleware::limit,
            ))
            .layer(axum::middleware::from_fn_with_state(
                st.clone(),
                middleware::auth,
            ));
        let app = Router::new()
            .route(
                "/health",
                get(routes::health).fallback(routes::wrong_method),
            )
            .route(
                "/health/live",
                get(routes::live).fallback(routes::wrong_method),
            )
            .route(
                "/health/ready",
                get(routes::ready).fallback(routes::wrong_method),
            )
            .route(
                "/metrics",
                get(routes::metrics).fallback(routes::wrong_method),
            )
            .merge(api)
            .merge(protocols::ollama::router(st.clone()))
            .merge(match &st.tenancy {
                Some(t) => tenancy::admin::router(t.clone()),
                None => Router::new(),
            })
            .fallback(routes::not_found)
            .layer(DefaultBodyLimit::max(st.settings.max_body_bytes))
            // A 5xx answer is logged by the door that produced it (with the
            // provider's error); the trace layer's own failure line would
            // turn every draining `/health/ready` probe into an ERROR.
            .layer(
                TraceLayer::new_for_http()
                    .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
            )
            .with_state(st);
        // Every answer names the configuration that produced it (after a
        // reload, requests still running answer with the previous hash).
        let app = match self
            .config_hash
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok())
        {
            Some(hash) => app.layer(axum::middleware::map_response(
                move |mut r: axum::response::Response| {
                    let hash = hash.clone();
                    async move {
                        r.headers_mut().insert(CONFIG_HEADER, hash);
                        r
                    }
                },
            )),
            None => app,
        };
        // Outermost, so a preflight is answered before authentication.
        match self.cors_layer() {
            Some(cors) => app.layer(cors),
            None => app,
        }
    }

    /// Listens on `[gateway] addr`.
    pub async fn start(self, config: &GatewayConfig) -> std::io::Result<GatewayHandle> {
        self.bind(&config.addr).await
    }

    /// Serves on `workers` threads of its own ([`GatewayConfig::workers`];
    /// 0, the default: one per available core), each a single-threaded
    /// runtime with its own listening socket.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The threads [`bind`](Self::bind) starts.
    fn worker_count(&self) -> usize {
        worker_threads(self.workers)
    }

    /// Listens on `addr` (`127.0.0.1:0` picks a free port) and serves in the
    /// background, on [`workers`](Self::workers) threads of its own, until
    /// the handle shuts it down.
    pub async fn bind(self, addr: &str) -> std::io::Result<GatewayHandle> {
        let listeners = server::listeners(addr, self.worker_count())
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local = listeners
            .first()
            .map(std::net::TcpListener::local_addr)
            .transpose()?
            .ok_or_else(|| std::io::Error::other(format!("cannot listen on {addr}")))?;
        let workers = listeners.len();
        let wiring = self.wiring();
        let done = server::spawn_workers(
            listeners,
            &wiring.current,
            &wiring.life,
            &wiring.stop_rx,
            &wiring.release,
        )
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start the gateway's workers on {addr}: {e}"),
            )
        })?;
        Ok(self.finish(local, workers, wiring, tokio::spawn(done)))
    }

    /// Serves on an already bound listener, as a task of the current
    /// runtime (not on threads of its own).
    pub fn serve(self, listener: TcpListener) -> std::io::Result<GatewayHandle> {
        let addr = listener.local_addr()?;
        let wiring = self.wiring();
        let task = tokio::spawn(server::run(
            listener,
            wiring.current.clone(),
            wiring.life.clone(),
            wiring.stop_rx.clone(),
        ));
        Ok(self.finish(addr, 1, wiring, task))
    }

    /// The channels between a handle and its servers.
    fn wiring(&self) -> Wiring {
        let life = self.state.lifecycle.clone();
        life.set_timings(self.timings());
        life.set_config_hash(self.config_hash.clone());
        let (routers, current) = watch::channel(self.router());
        let (stop, stop_rx) = watch::channel(server::Stop::Serve);
        Wiring {
            routers,
            current,
            stop,
            stop_rx,
            release: Arc::new(watch::Sender::new(())),
            life,
        }
    }

    fn finish(
        self,
        addr: SocketAddr,
        workers: usize,
        wiring: Wiring,
        task: JoinHandle<Shutdown>,
    ) -> GatewayHandle {
        if !addr.ip().is_loopback() && self.state.keys.is_empty() && self.state.tenancy.is_none() {
            tracing::warn!(
                %addr,
                "the gateway listens on a non-loopback address without api_keys: \
                 anyone who can reach it can use your providers; set [gateway] api_keys"
            );
        }
        let probe = self.probe_providers();
        tracing::info!(
            %addr,
            workers,
            config = self.config_hash.as_deref().unwrap_or("-"),
            "gateway listening"
        );
        GatewayHandle {
            addr,
            workers,
            stop: wiring.stop,
            task,
            routers: wiring.routers,
            lifecycle: wiring.life,
            probe,
            release: wiring.release,
        }
    }

    /// Probes every provider once in the background, so /health reports
    /// real state early.
    fn probe_providers(&self) -> JoinHandle<()> {
        let client = self.state.client.clone();
        tokio::spawn(async move {
            client.refresh_health().await;
        })
    }
}

/// Checks `[gateway] cors_origins` as [`Gateway::cors_origins`] would
/// (for `llm config check`, which builds no gateway).
pub fn check_cors_origins<S: AsRef<str>>(origins: &[S]) -> Result<(), InvalidOrigin> {
    parse_origins(origins).map(drop)
}

/// The allowed origins (`None`: no CORS at all).
fn parse_origins<S: AsRef<str>>(origins: &[S]) -> Result<Option<AllowOrigin>, InvalidOrigin> {
    if origins.is_empty() {
        return Ok(None);
    }
    if origins.iter().any(|o| o.as_ref().trim() == "*") {
        return Ok(Some(AllowOrigin::any()));
    }
    let mut list = Vec::with_capacity(origins.len());
    for o in origins {
        let o = o.as_ref().trim().trim_end_matches('/');
        let well_formed = o.split_once("://").is_some_and(|(scheme, host)| {
            !scheme.is_empty() && !host.is_empty() && !host.contains('/')
        });
        let value = HeaderValue::from_str(o)
            .ok()
            .filter(|_| well_formed)
            .ok_or_else(|| InvalidOrigin(o.to_string()))?;
        list.push(value);
    }
    Ok(Some(AllowOrigin::list(list)))
}

/// Option names whose string values are secrets.
const SECRET_OPTION_WORDS: &[&str] = &["key", "token", "secret", "password", "authorization"];

/// The string values of the providers' secret-looking options (nested
/// tables such as `headers` included).
fn provider_secrets(config: &Config) -> Vec<SecretString> {
    let mut out = Vec::new();
    for spec in config.providers.iter().filter_map(|p| p.spec.as_ref()) {
        let mut stack: Vec<_> = spec.options.iter().collect();
        while let Some((name, value)) = stack.pop() {
            if let Some(table) = value.as_table() {
                stack.extend(table.iter());
                continue;
            }
            let Some(text) = value.as_str() else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            let secret_name = SECRET_OPTION_WORDS.iter().any(|w| name.contains(w));
            let bearer = text
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
            if secret_name || bearer {
                out.push(SecretString::from(text.to_string()));
                if let Some(token) = bearer.then(|| text[7..].trim()) {
                    out.push(SecretString::from(token.to_string()));
                }
            }
        }
    }
    out
}

/// The worker threads [`Gateway::bind`] starts for a configured
/// [`GatewayConfig::workers`]: the number itself, or for 0 one per available
/// core (1 when the core count cannot be read).
///
/// ```
/// assert_eq!(llm_gateway::worker_threads(3), 3);
/// assert!(llm_gateway::worker_threads(0) >= 1);
/// ```
pub fn worker_threads(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    }
}

/// The channels between a [`GatewayHandle`] and its servers.
struct Wiring {
    /// The router new requests get (a reload replaces it).
    routers: watch::Sender<Router>,
    current: watch::Receiver<Router>,
    stop: watch::Sender<server::Stop>,
    stop_rx: watch::Receiver<server::Stop>,
    release: Arc<watch::Sender<()>>,
    life: Arc<Lifecycle>,
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    /// Threads serving connections (1 for [`Gateway::serve`]).
    workers: usize,
    stop: watch::Sender<server::Stop>,
    task: JoinHandle<Shutdown>,
    /// The router new requests get (a reload replaces it).
    routers: watch::Sender<Router>,
    lifecycle: Arc<Lifecycle>,
    /// The start-up probe of the live client's providers.
    probe: JoinHandle<()>,
    /// Keeps the worker threads' runtimes running ([`WorkerLease`]).
    release: Arc<watch::Sender<()>>,
}

/// Keeps the runtimes of a gateway's worker threads running after it shut
/// down, until dropped: tasks they own (pooled upstream and database
/// connections opened by requests, background settlements) go on serving
/// work that outlives the shutdown, such as the spend log's last flush.
/// Without leases the threads end with their [`GatewayHandle`].
#[derive(Debug, Clone)]
pub struct WorkerLease {
    _release: Arc<watch::Sender<()>>,
}

/// Ends a gateway's drain or shutdown grace at once, from outside the
/// future that runs it: the listener closes and every request still in
/// flight is cut, counted in `llm_gateway_shutdown_cut_requests_total`
/// and the handle's [`status`](GatewayHandle::status), and the shutdown
/// returns [`Shutdown::Forced`] (or [`Shutdown::Graceful`] when nothing was
/// left to cut). `llm serve` pulls it on a second SIGINT or SIGTERM.
///
/// ```no_run
/// # async fn demo(handle: llm_gateway::GatewayHandle) {
/// let cut = handle.cut_switch();
/// let stopping = handle.drain();
/// tokio::pin!(stopping);
/// tokio::select! {
///     _ = &mut stopping => {}
///     _ = tokio::signal::ctrl_c() => {
///         cut.cut();
///         stopping.await;
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CutSwitch {
    stop: watch::Sender<server::Stop>,
}

impl CutSwitch {
    /// Stops accepting and cuts every request in flight now (on a gateway
    /// still serving, that is a shutdown without grace).
    pub fn cut(&self) {
        raise(&self.stop, server::Stop::Cut);
    }
}

/// Raises `stop` to `level` (it never goes back down).
fn raise(stop: &watch::Sender<server::Stop>, level: server::Stop) {
    stop.send_if_modified(|s| {
        let higher = *s < level;
        if higher {
            *s = level;
        }
        higher
    });
}

impl GatewayHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The threads serving its connections: [`worker_threads`] of the
    /// configured count after [`Gateway::bind`], 1 after [`Gateway::serve`]
    /// (which runs on the caller's runtime).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// A switch that cuts this gateway's shutdown short (see [`CutSwitch`]).
    pub fn cut_switch(&self) -> CutSwitch {
        CutSwitch {
            stop: self.stop.clone(),
        }
    }

    /// A lease on the worker threads' runtimes (see [`WorkerLease`]).
    pub fn worker_lease(&self) -> WorkerLease {
        WorkerLease {
            _release: self.release.clone(),
        }
    }

    /// Readiness, requests in flight, the live configuration and what a
    /// shutdown cut; it stays readable after the handle is gone.
    pub fn status(&self) -> GatewayStatus {
        GatewayStatus(self.lifecycle.clone())
    }

    /// Starts draining without closing anything: `/health/ready` answers 503
    /// and every response asks its client to close the connection, while
    /// the listener keeps accepting and requests are answered as usual.
    /// [`drain`](Self::drain) does this, waits `drain_delay` and shuts down.
    pub fn start_draining(&self) {
        self.lifecycle.start_draining();
    }

    /// Swaps in `next` (a new client, routing, keys, limits, CORS, timings):
    /// requests that arrive from now on are answered by it, requests already
    /// running finish on the configuration they started with. Readiness, the
    /// in-flight count, the metrics and the listen address carry over (an
    /// address is bound once: changing it needs a restart). The previous
    /// client's start-up probe is stopped; `next`'s providers are probed.
    pub fn reload(&mut self, mut next: Gateway) {
        next.state.lifecycle = self.lifecycle.clone();
        self.lifecycle.set_timings(next.timings());
        let router = next.router();
        // The old router (and its client) lives on in the requests still
        // running on it, and goes when the last one ends.
        drop(self.routers.send_replace(router));
        self.probe.abort();
        self.probe = next.probe_providers();
        self.lifecycle.set_config_hash(next.config_hash.clone());
        self.lifecycle.reloaded();
        tracing::info!(
            config = next.config_hash.as_deref().unwrap_or("-"),
            "configuration reloaded: new requests use it"
        );
    }

    /// Counts a refused reload (an invalid file) in
    /// `llm_gateway_config_reloads_total{result="refused"}`.
    pub fn reload_refused(&self) {
        self.lifecycle.reload_refused();
    }

    /// Drains, then shuts down: readiness (`/health/ready`) turns false at
    /// once and responses ask clients to close their connections, while the
    /// listener keeps accepting for `drain_delay` (so a load balancer stops
    /// sending first); then [`shutdown`](Self::shutdown).
    pub async fn drain(self) -> Shutdown {
        self.start_draining();
        let delay = self.lifecycle.timings().drain_delay;
        tracing::info!(
            drain_delay_secs = delay.as_secs_f64(),
            inflight = self.lifecycle.inflight(),
            "draining: readiness is false; the listener closes after drain_delay"
        );
        // A cut (see `cut_switch`) ends the delay too.
        let mut stop = self.stop.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s >= server::Stop::Cut) => {}
        }
        self.shutdown().await
    }

    /// Stops accepting connections and lets in-flight requests finish within
    /// `shutdown_grace`; after that, remaining connections are dropped.
    ///
    /// The worker threads' runtimes end with the handle: background work
    /// that requests started there (a budget settlement retried against
    /// Redis, a pooled database connection) stops with them. Hold a
    /// [`worker_lease`](Self::worker_lease) across whatever must still run
    /// after the shutdown, as `llm serve` does for the spend log's last flush.
    pub async fn shutdown(mut self) -> Shutdown {
        self.lifecycle.start_draining();
        raise(&self.stop, server::Stop::Finish);
        match (&mut self.task).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, "the gateway task failed");
                Shutdown::Forced
            }
        }
    }

    /// Serves until SIGTERM, then [drains](Self::drain), or until SIGINT
    /// (Ctrl-C), then [shuts down](Self::shutdown) without the drain delay
    /// (in-flight requests still get `shutdown_grace`).
    ///
    /// A second SIGINT or SIGTERM during the drain or grace cuts what is
    /// left at once ([`stop_for_signals`](Self::stop_for_signals)).
    pub async fn run_until_signal(self) -> Shutdown {
        let mut signals = StopSignals::new();
        let first = signals.recv().await;
        self.stop_for_signals(first, &mut signals).await
    }

    /// [`stop_for`](Self::stop_for) `first`, while listening on `signals`:
    /// a further signal during the drain or grace [cuts](CutSwitch) the
    /// requests still in flight at once.
    pub async fn stop_for_signals(self, first: StopSignal, signals: &mut StopSignals) -> Shutdown {
        let cut = self.cut_switch();
        let stopping = self.stop_for(first);
        tokio::pin!(stopping);
        tokio::select! {
            outcome = &mut stopping => return outcome,
            again = signals.recv() => {
                tracing::warn!(
                    signal = ?again,
                    "second signal: stopping now, cutting requests in flight"
                );
                cut.cut();
            }
        }
        stopping.await
    }

    /// Ends serving as `signal` asks: a drain for SIGTERM, an immediate
    /// close of the listener for SIGINT.
    pub async fn stop_for(self, signal: StopSignal) -> Shutdown {
        match signal {
            StopSignal::Terminate => {
                tracing::info!("SIGTERM: draining");
                self.drain().await
            }
            StopSignal::Interrupt => {
                tracing::info!("interrupted: finishing in-flight requests");
                self.shutdown().await
            }
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        // Said outright: a `CutSwitch` keeps the channel open, and worker
        // threads kept by a lease must not go on serving.
        raise(&self.stop, server::Stop::Cut);
        self.task.abort();
        self.probe.abort();
    }
}

/// The signal that ends serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C): stop accepting at once.
    Interrupt,
    /// SIGTERM (orchestrators): drain first.
    Terminate,
}

/// Resolves on SIGINT or SIGTERM, saying which.
pub async fn shutdown_signal() -> StopSignal {
    StopSignals::new().recv().await
}

/// Listens for SIGINT and SIGTERM from its creation on: unlike
/// [`shutdown_signal`], a second signal that arrives while the first is
/// being handled is not missed (a process that installed handlers no longer
/// dies of the default action, so a second Ctrl-C must be heard to mean
/// "stop now"). Signals of one kind that arrive between two reads count
/// once. On Windows it hears Ctrl-C only.
///
/// ```no_run
/// # async fn demo() {
/// let mut signals = llm_gateway::StopSignals::new();
/// let first = signals.recv().await;
/// // … start draining; a second signal cuts the drain short:
/// let second = signals.recv().await;
/// # let _ = (first, second);
/// # }
/// ```
#[derive(Debug)]
pub struct StopSignals {
    /// `None` where the handler could not be installed (never fires).
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    /// Ctrl-C (Windows has no SIGTERM).
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl StopSignals {
    /// Installs the handlers; signals are heard from here on. A handler
    /// that cannot be installed is logged and never fires.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O enabled (as every tokio signal
    /// listener does).
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for {name}: it will not stop the gateway");
                    None
                }
            };
            Self {
                interrupt: install(SignalKind::interrupt(), "SIGINT"),
                terminate: install(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(windows)]
        {
            let ctrl_c = match tokio::signal::windows::ctrl_c() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C: it will not stop the gateway");
                    None
                }
            };
            Self { ctrl_c }
        }
        #[cfg(not(any(unix, windows)))]
        Self {}
    }

    /// The next SIGINT or SIGTERM (cancellation-safe: a signal is kept
    /// for the next call if this one is dropped before it is returned).
    pub async fn recv(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                // A stream that ended (its driver gone) never fires again.
                let fired = match s {
                    Some(s) => s.recv().await.is_some(),
                    None => false,
                };
                if !fired {
                    futures::future::pending::<()>().await;
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => StopSignal::Interrupt,
                () = next(&mut self.terminate) => StopSignal::Terminate,
            }
        }
        #[cfg(windows)]
        {
            let fired = match &mut self.ctrl_c {
                Some(c) => c.recv().await.is_some(),
                None => false,
            };
            if !fired {
                futures::future::pending::<()>().await;
            }
            StopSignal::Interrupt
        }
        #[cfg(not(any(unix, windows)))]
        {
            futures::future::pending::<()>().await;
            StopSignal::Interrupt
        }
    }
}

impl Default for StopSignals {
    fn default() -> Self {
        Self::new()
    }
}
