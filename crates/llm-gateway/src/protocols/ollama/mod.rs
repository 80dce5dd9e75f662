//! The Ollama API: `POST /api/chat` and `POST /api/generate` (NDJSON streams
//! by default, one JSON object with `"stream": false`), `POST /api/embed`
//! (and the legacy `POST /api/embeddings`), `GET /api/tags`, `POST /api/show`,
//! `GET /api/version` and `GET /api/ps`, so Ollama clients (the `ollama`
//! libraries, Open WebUI, LangChain's `ChatOllama`, …) reach every configured
//! provider, whatever its kind.
//!
//! Other `/api/*` routes (pulling, creating or deleting models) are `404`.
//! Errors have Ollama's shape, `{"error":"…"}`; a failure after a stream
//! started ends it with one `{"error":"…"}` line, never a `done` line.
//! The routes need a gateway key when `api_keys` are configured (as
//! `Authorization: Bearer …`) and count against `max_concurrency`, as `/v1/*`.

mod convert;
mod error;
mod routes;
mod stream;
mod wire;

use axum::routing::{any, get, post};
use axum::Router;

use crate::{middleware, routes as shared, AppState};

pub use error::OllamaError;

/// The version `GET /api/version` reports: an Ollama release whose API this
/// door follows, so clients that check the server's version enable the
/// features it has (tools, structured outputs, `/api/embed`).
pub const OLLAMA_VERSION: &str = "0.12.0";

/// The `/api/*` routes with the gateway's authentication and concurrency
/// limit, their errors (those of the shared layers included) in Ollama's shape.
pub(crate) fn router(st: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/api/chat",
            post(routes::chat).fallback(shared::wrong_method),
        )
        .route(
            "/api/generate",
            post(routes::generate).fallback(shared::wrong_method),
        )
        .route(
            "/api/embed",
            post(routes::embed).fallback(shared::wrong_method),
        )
        .route(
            "/api/embeddings",
            post(routes::embeddings).fallback(shared::wrong_method),
        )
        .route(
            "/api/tags",
            get(routes::tags).fallback(shared::wrong_method),
        )
        .route(
            "/api/show",
            post(routes::show).fallback(shared::wrong_method),
        )
        .route(
            "/api/version",
            get(routes::version).fallback(shared::wrong_method),
        )
        .route("/api/ps", get(routes::ps).fallback(shared::wrong_method))
        .route("/api/{*rest}", any(routes::unknown))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            middleware::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(st, middleware::auth))
        .layer(axum::middleware::from_fn(error::reshape))
}
