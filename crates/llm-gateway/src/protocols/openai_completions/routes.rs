//! The `POST /v1/completions` handler.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::convert::{self, Parsed};
use super::stream::{event_stream, Meta};
use super::wire::{self, completion_id};
use crate::error::ApiError;
use crate::protocols::openai_chat::wire::finish_reason;
use crate::protocols::openai_chat::{llm_headers, overhead_header, own_time, unix_now};
use crate::AppState;

/// Handles `POST /v1/completions`.
pub(crate) async fn completions(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let scrubber = st.scrubber.clone();
    match handle(st, body).await {
        Ok(r) => r,
        Err(mut e) => {
            e.message = scrubber.scrub(&e.message);
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "completion failed");
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
    let Parsed {
        request,
        stream,
        include_usage,
    } = convert::parse(&body, &st.client)?;
    let timeout = st.settings.request_timeout;
    let deadline = Instant::now() + timeout;
    let id = completion_id();
    let created = unix_now();
    let telemetry = st.client.telemetry();
    if !stream {
        let resp = tokio::time::timeout_at(deadline, st.generate(request))
            .await
            .map_err(|_| ApiError::timeout(timeout))??;
        let body = wire::object(
            &id,
            created,
            &resp.model,
            &resp.content,
            Some(finish_reason(&resp.finish_reason)),
            Some(&resp.usage),
        );
        let mut out = Response::new(Body::from(body.to_string()));
        let h = out.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        llm_headers(h, &resp.provider, resp.cached, resp.attempts.len(), &id);
        let own = own_time(entered, &resp.attempts);
        telemetry.gateway_overhead("completions", own.as_secs_f64());
        overhead_header(&mut out, own);
        return Ok(out);
    }
    let estimate_from = include_usage.then(|| request.clone());
    let opened = tokio::time::timeout_at(deadline, st.stream(request))
        .await
        .map_err(|_| ApiError::timeout(timeout))??;
    let own = own_time(entered, &opened.attempts);
    telemetry.gateway_overhead("completions", own.as_secs_f64());
    let mut out = event_stream(
        opened,
        Meta {
            id,
            created,
            estimate_from,
            deadline,
            timeout,
            scrubber: st.scrubber.clone(),
        },
    );
    overhead_header(&mut out, own);
    Ok(out)
}
