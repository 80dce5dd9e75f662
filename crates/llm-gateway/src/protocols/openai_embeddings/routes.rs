//! The `POST /v1/embeddings` handler.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::convert::{self, Parsed};
use super::wire;
use crate::error::ApiError;
use crate::protocols::openai_chat::{llm_headers, overhead_header, own_time};
use crate::AppState;

/// Handles `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let scrubber = st.scrubber.clone();
    match handle(st, body).await {
        Ok(r) => r,
        Err(mut e) => {
            e.message = scrubber.scrub(&e.message);
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "embedding failed");
            }
            e.into_response()
        }
    }
}

async fn handle(st: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let entered = Instant::now();
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(st.settings.max_body_bytes)
        } else {
            ApiError::invalid(None, rej.body_text())
        }
    })?;
    let Parsed { request, encoding } = convert::parse(&body, &st.client)?;
    let timeout = st.settings.request_timeout;
    let resp = tokio::time::timeout(timeout, st.embed(request))
        .await
        .map_err(|_| ApiError::timeout(timeout))??;
    let body = wire::body(&resp, encoding);
    let mut out = Response::new(Body::from(body.to_string()));
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let cached = resp.cached_inputs > 0 && resp.cached_inputs == resp.vectors.len();
    let id = format!("emb-{}", fastrand::u64(..));
    llm_headers(h, &resp.provider, cached, resp.attempts.len(), &id);
    if let Ok(v) = HeaderValue::from_str(&resp.cached_inputs.to_string()) {
        h.insert("x-llm-cached-inputs", v);
    }
    let own = own_time(entered, &resp.attempts);
    st.client
        .telemetry()
        .gateway_overhead("embeddings", own.as_secs_f64());
    overhead_header(&mut out, own);
    Ok(out)
}
