//! The `POST /v1/responses` handler.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router::LlmResponse;
use tokio::time::Instant;

use super::convert::{self, Parsed};
use super::stream::{event_stream, Meta};
use super::wire::{self, new_id, Echo, ResponseObject};
use crate::error::ApiError;
use crate::protocols::openai_chat::{llm_headers, overhead_header, own_time, unix_now};
use crate::AppState;

/// Handles `POST /v1/responses`.
pub(crate) async fn responses(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let scrubber = st.scrubber.clone();
    match handle(st, body).await {
        Ok(r) => r,
        Err(mut e) => {
            e.message = scrubber.scrub(&e.message);
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "response failed");
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
        echo,
    } = convert::parse(&body, &st.client)?;
    let timeout = st.settings.request_timeout;
    let deadline = Instant::now() + timeout;
    let id = new_id("resp");
    let created = unix_now();
    let telemetry = st.client.telemetry();
    if !stream {
        let resp = tokio::time::timeout_at(deadline, st.generate(request))
            .await
            .map_err(|_| ApiError::timeout(timeout))??;
        let mut out = answer(&id, created, &resp, &echo);
        let own = own_time(entered, &resp.attempts);
        telemetry.gateway_overhead("responses", own.as_secs_f64());
        overhead_header(&mut out, own);
        return Ok(out);
    }
    let opened = tokio::time::timeout_at(deadline, st.stream(request.clone()))
        .await
        .map_err(|_| ApiError::timeout(timeout))??;
    let own = own_time(entered, &opened.attempts);
    telemetry.gateway_overhead("responses", own.as_secs_f64());
    let mut out = event_stream(
        opened,
        Meta {
            id,
            created,
            echo,
            request,
            deadline,
            timeout,
            scrubber: st.scrubber.clone(),
        },
    );
    overhead_header(&mut out, own);
    Ok(out)
}

/// The JSON `response` object of a whole answer.
fn answer(id: &str, created: u64, resp: &LlmResponse, echo: &Echo) -> Response {
    let (status, incomplete) = wire::status(&resp.finish_reason);
    let mut calls = resp.clone();
    for c in &mut calls.tool_calls {
        if c.id.is_empty() {
            c.id = new_id("call");
        }
    }
    let body = ResponseObject {
        id,
        created_at: created,
        status,
        incomplete,
        error: None,
        model: &resp.model,
        output: wire::output_items(&calls, status),
        usage: Some(&resp.usage),
        echo,
    }
    .to_value();
    let mut r = Response::new(Body::from(body.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    llm_headers(h, &resp.provider, resp.cached, resp.attempts.len(), id);
    r
}
