//! Anthropic Messages, `POST /v1/messages` (one JSON `message`, or
//! server-sent events) and `POST /v1/messages/count_tokens`, served by any
//! configured provider; `GET /v1/models` in Anthropic's list shape when the
//! request carries `anthropic-version`. Errors come in Anthropic's shape,
//! `{"type":"error","error":{"type","message"}}`, with its statuses (529
//! `overloaded_error` when every provider was overloaded or unavailable).
//! Gateway keys are accepted in `x-api-key` as well as `Authorization: Bearer`;
//! any `anthropic-version` is accepted.

mod convert;
mod stream;
mod wire;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router::{AttemptOutcome, LlmError};
use tokio::time::Instant;

use self::convert::{Endpoint, Parsed};
use self::wire::{ErrorDetail, ErrorEnvelope, ModelInfo, ModelPage, TokenCount};
use crate::error::ApiError;
use crate::protocols::openai_chat::{llm_headers, overhead_header, own_time};
use crate::AppState;

/// The header Anthropic's SDKs send on every request.
pub const VERSION_HEADER: &str = "anthropic-version";

/// Anthropic's status for "overloaded".
const OVERLOADED: u16 = 529;

/// An error in Anthropic's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct AnthropicError {
    /// HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `request_too_large`, `rate_limit_error`,
    /// `api_error`, `timeout_error` or `overloaded_error`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// Seconds a client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl AnthropicError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// 500 `api_error`.
    pub fn api(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", message)
    }

    /// 529 `overloaded_error`.
    pub fn overloaded(message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(OVERLOADED).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Self::new(status, "overloaded_error", message)
    }

    fn envelope(&self) -> ErrorEnvelope<'_> {
        ErrorEnvelope {
            kind: "error",
            error: ErrorDetail {
                kind: self.kind,
                message: &self.message,
            },
        }
    }

    /// The JSON body.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.envelope()).unwrap_or_else(|_| {
            r#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#
                .to_string()
        })
    }

    /// The error for a failed routing: 529 when every provider tried was
    /// overloaded or unavailable, 429 when every one was rate limited, else
    /// the gateway's usual status in Anthropic's words.
    pub fn from_llm(e: LlmError) -> Self {
        let busy = match &e {
            LlmError::AllProvidersFailed { attempts } => {
                let statuses: Vec<u16> = attempts
                    .iter()
                    .filter_map(|a| match &a.outcome {
                        AttemptOutcome::Failed { status, .. } => Some(status.unwrap_or(0)),
                        _ => None,
                    })
                    .collect();
                if statuses.is_empty() || !statuses.iter().all(|s| matches!(s, 429 | 503 | 529)) {
                    None
                } else if statuses.iter().all(|s| *s == 429) {
                    Some(StatusCode::TOO_MANY_REQUESTS)
                } else {
                    StatusCode::from_u16(OVERLOADED).ok()
                }
            }
            _ => None,
        };
        // A field no provider can honour is named first, as the door's own
        // refusals are (`thinking: …`).
        let unsupported = match &e {
            LlmError::Unsupported { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut out = Self::from(ApiError::from(e));
        if let Some(field) = unsupported {
            out.message = format!("{field}: {}", out.message);
        }
        match busy {
            Some(StatusCode::TOO_MANY_REQUESTS) => {
                out.status = StatusCode::TOO_MANY_REQUESTS;
                out.kind = "rate_limit_error";
            }
            Some(s) => {
                out.status = s;
                out.kind = "overloaded_error";
            }
            None => {}
        }
        out
    }
}

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        let (status, kind) = match e.status.as_u16() {
            401 => (e.status, "authentication_error"),
            403 => (e.status, "permission_error"),
            404 => (e.status, "not_found_error"),
            413 => (e.status, "request_too_large"),
            429 => (e.status, "rate_limit_error"),
            // No provider can take the request now.
            503 => (
                StatusCode::from_u16(OVERLOADED).unwrap_or(e.status),
                "overloaded_error",
            ),
            504 => (e.status, "timeout_error"),
            s if s >= 500 => (e.status, "api_error"),
            _ => (e.status, "invalid_request_error"),
        };
        Self {
            status,
            kind,
            message: e.message,
            retry_after: e.retry_after,
        }
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body_json()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// Whether an error the shared layers (auth, limits) produce should be in
/// Anthropic's shape: the request is for `/v1/messages…` or carries
/// `anthropic-version`.
pub(crate) fn wants_anthropic(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/v1/messages") || headers.contains_key(VERSION_HEADER)
}

/// A shared layer's error in Anthropic's shape, with Anthropic's words for
/// a missing or wrong key.
pub(crate) fn layer_error(e: ApiError) -> Response {
    let mut out = AnthropicError::from(e);
    if out.status == StatusCode::UNAUTHORIZED {
        out.message = if out.message.starts_with("Missing") {
            "x-api-key header is required".to_string()
        } else {
            "invalid x-api-key".to_string()
        };
    }
    out.into_response()
}

/// `msg_` and 24 random alphanumerics, as Anthropic's ids look.
fn message_id() -> String {
    let mut id = String::with_capacity(28);
    id.push_str("msg_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

fn read_body(st: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, AnthropicError> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AnthropicError::from(ApiError::too_large(st.settings.max_body_bytes))
        } else {
            AnthropicError::invalid(rej.body_text())
        }
    })
}

fn finish(st: &AppState, result: Result<Response, AnthropicError>) -> Response {
    match result {
        Ok(r) => r,
        Err(mut e) => {
            e.message = st.scrubber.scrub(&e.message);
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "message failed");
            }
            e.into_response()
        }
    }
}

/// Handles `POST /v1/messages`.
pub(crate) async fn messages(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = handle(&st, body).await;
    finish(&st, result)
}

async fn handle(
    st: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let entered = Instant::now();
    let body = read_body(st, body)?;
    let Parsed { request, stream } = convert::parse(&body, &st.client, Endpoint::Messages)?;
    let timeout = st.settings.request_timeout;
    let deadline = Instant::now() + timeout;
    let timed_out = || AnthropicError::from(ApiError::timeout(timeout));
    let id = message_id();
    let telemetry = st.client.telemetry();
    if !stream {
        let resp = tokio::time::timeout_at(deadline, st.generate(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(AnthropicError::from)?;
        let json = serde_json::to_vec(&convert::message(&id, &resp)?)
            .map_err(|e| AnthropicError::api(format!("cannot encode the response: {e}")))?;
        let mut out = Response::new(Body::from(json));
        let h = out.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        llm_headers(h, &resp.provider, resp.cached, resp.attempts.len(), &id);
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("request-id", v);
        }
        let own = own_time(entered, &resp.attempts);
        telemetry.gateway_overhead("messages", own.as_secs_f64());
        overhead_header(&mut out, own);
        return Ok(out);
    }
    let kept = request.clone();
    let opened = tokio::time::timeout_at(deadline, st.stream(request))
        .await
        .map_err(|_| timed_out())?
        .map_err(AnthropicError::from)?;
    let own = own_time(entered, &opened.attempts);
    telemetry.gateway_overhead("messages", own.as_secs_f64());
    let mut out = stream::event_stream(
        opened,
        stream::Meta {
            id,
            request: kept,
            deadline,
            timeout,
            scrubber: st.scrubber.clone(),
        },
    );
    overhead_header(&mut out, own);
    Ok(out)
}

/// Handles `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, an
/// estimate by the router's one estimator (a real BPE count for
/// OpenAI-family models, a character-based estimate for the others).
pub(crate) async fn count_tokens(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = read_body(&st, body).and_then(|body| {
        let parsed = convert::parse(&body, &st.client, Endpoint::CountTokens)?;
        let usage = llm_router::tokens::estimate_usage(&parsed.request, "");
        let json = serde_json::to_vec(&TokenCount {
            input_tokens: usage.prompt_tokens,
        })
        .map_err(|e| AnthropicError::api(format!("cannot encode the response: {e}")))?;
        let mut out = Response::new(Body::from(json));
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(out)
    });
    finish(&st, result)
}

/// `GET /v1/models` in Anthropic's shape: every model on one page.
pub(crate) fn model_page(ids: Vec<String>, started: u64) -> Response {
    let created_at = rfc3339(started);
    let data: Vec<ModelInfo> = ids
        .into_iter()
        .map(|id| ModelInfo {
            kind: "model",
            display_name: id.clone(),
            id,
            created_at: created_at.clone(),
            lifecycle: "active",
        })
        .collect();
    let page = ModelPage {
        first_id: data.first().map(|m| m.id.clone()),
        last_id: data.last().map(|m| m.id.clone()),
        has_more: false,
        data,
    };
    axum::Json(page).into_response()
}

/// `GET /v1/models/{model}` in Anthropic's shape.
pub(crate) fn model_info(id: Option<String>, wanted: &str, started: u64) -> Response {
    match id {
        Some(id) => axum::Json(ModelInfo {
            kind: "model",
            display_name: id.clone(),
            id,
            created_at: rfc3339(started),
            lifecycle: "active",
        })
        .into_response(),
        None => AnthropicError::not_found(format!("model: {wanted}")).into_response(),
    }
}

/// Unix seconds as an RFC 3339 UTC time (`2025-09-29T00:00:00Z`).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_759_104_000), "2025-09-29T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn statuses_map_to_anthropic_types() {
        let e = AnthropicError::from(ApiError::wrong_key());
        assert_eq!((e.status.as_u16(), e.kind), (401, "authentication_error"));
        let e = AnthropicError::from(ApiError::overloaded(4));
        assert_eq!((e.status.as_u16(), e.kind), (429, "rate_limit_error"));
        assert_eq!(e.retry_after, Some(1));
        let e = AnthropicError::from(ApiError::invalid(Some("x"), "bad"));
        assert_eq!((e.status.as_u16(), e.kind), (400, "invalid_request_error"));
        let e = AnthropicError::overloaded("busy");
        assert_eq!(
            e.body_json(),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#
        );
        assert_eq!(e.status.as_u16(), 529);
    }
}
