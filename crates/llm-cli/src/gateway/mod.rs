//! The OpenAI-compatible gateway behind `llm serve`.
//!
//! Routes: `POST /v1/chat/completions` (JSON or server-sent events),
//! `GET /v1/models`, `GET /v1/models/{model}`, `GET /health`, `GET /metrics`.
//! `/v1/*` needs a bearer key when `api_keys` are configured and counts
//! against `max_concurrency`; `/health` and `/metrics` are always open.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use llm_cli::gateway::Gateway;
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

mod chat;
mod convert;
pub mod error;
mod middleware;
mod routes;
mod server;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use llm_router::config::GatewayConfig;
use llm_router::LlmClient;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use routes::PROMETHEUS_CONTENT_TYPE;
pub use server::Shutdown;

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
}

/// A gateway, configured but not yet listening.
pub struct Gateway {
    state: AppState,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.state.settings)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.state.keys.len()),
            )
            .field("shutdown_grace", &self.shutdown_grace)
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
                started: chat::unix_now(),
            },
            shutdown_grace: config.shutdown_grace.0,
        }
    }

    /// The axum router, for embedding the gateway in another server.
    pub fn router(&self) -> Router {
        let st = self.state.clone();
        let api = Router::new()
            .route(
                "/v1/chat/completions",
                post(chat::chat_completions).fallback(routes::wrong_method),
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
        Router::new()
            .route(
                "/health",
                get(routes::health).fallback(routes::wrong_method),
            )
            .route(
                "/metrics",
                get(routes::metrics).fallback(routes::wrong_method),
            )
            .merge(api)
            .fallback(routes::not_found)
            .layer(DefaultBodyLimit::max(st.settings.max_body_bytes))
            .layer(TraceLayer::new_for_http())
            .with_state(st)
    }

    /// Listens on `[gateway] addr`.
    pub async fn start(self, config: &GatewayConfig) -> std::io::Result<GatewayHandle> {
        self.bind(&config.addr).await
    }

    /// Listens on `addr` (`127.0.0.1:0` picks a free port) and serves in the
    /// background until the handle shuts it down.
    pub async fn bind(self, addr: &str) -> std::io::Result<GatewayHandle> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        self.serve(listener)
    }

    /// Serves on an already bound listener.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<GatewayHandle> {
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && self.state.keys.is_empty() {
            tracing::warn!(
                %addr,
                "the gateway listens on a non-loopback address without api_keys: \
                 anyone who can reach it can use your providers; set [gateway] api_keys"
            );
        }
        let app = self.router();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(server::run(listener, app, rx, self.shutdown_grace));
        // Probe every provider once, so /health reports real state early.
        let client = self.state.client.clone();
        tokio::spawn(async move {
            client.refresh_health().await;
        });
        tracing::info!(%addr, "gateway listening");
        Ok(GatewayHandle {
            addr,
            stop: tx,
            task,
        })
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Shutdown>,
}

impl GatewayHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and lets in-flight requests finish within
    /// `shutdown_grace`; after that, remaining connections are dropped.
    pub async fn shutdown(mut self) -> Shutdown {
        self.stop.send_replace(true);
        match (&mut self.task).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, "the gateway task failed");
                Shutdown::Forced
            }
        }
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Shutdown {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
