//! Error statuses, error bodies and in-stream `error` events → [`ProviderError`].

use std::time::Duration;

use llm_core::http::reqwest::header::HeaderMap;
use llm_core::http::{self, reqwest, ErrorBody, ErrorMapping};
use llm_core::{ErrorClass, ProviderError, ProviderErrorKind};

use crate::wire::{ErrorDetail, ErrorEnvelope};

/// The HTTP status Anthropic uses for an `error.type` (its errors page).
///
/// An `error` event inside a `200` stream carries no status of its own; giving
/// it the status the same error has as a reply lets the client classify it
/// (`overloaded_error` → 529 → retryable, `invalid_request_error` → 400 → next
/// provider).
pub(crate) fn status_for_error_type(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "conflict_error" => 409,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// Anthropic's error replies, for [`http::send_with`] and [`http::probe`].
pub(crate) struct Errors;

impl ErrorMapping for Errors {
    fn parse(&self, body: &[u8]) -> ErrorBody {
        let envelope: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
        let detail = envelope.error.unwrap_or_default();
        ErrorBody {
            code: detail.kind,
            message: detail.message,
        }
    }

    fn map_error(
        &self,
        provider: &str,
        status: reqwest::StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ProviderError {
        let mut err = from_body(provider, status, body);
        if let Some(id) = http::request_id(headers) {
            err.request_id = Some(id);
        }
        let err = err.with_retry_after(http::retry_after(headers));
        should_retry(err, headers)
    }
}

/// Sends `request` and waits for the response head within `timeout`.
///
/// A non-2xx status becomes an HTTP error carrying `error.type` as the code,
/// `error.message`, the request id (the `request-id` header, else the body's
/// `request_id`) and `Retry-After`; `x-should-retry` then decides whether it
/// is retried ([`should_retry`]). The error body read is bounded by llm-core.
pub(crate) async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    http::send_with(provider, request, timeout, &Errors).await
}

/// The error for a non-2xx reply with `body`.
pub(crate) fn from_body(provider: &str, status: reqwest::StatusCode, body: &[u8]) -> ProviderError {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let (detail, body_id) = match envelope {
        Some(e) => (e.error.unwrap_or_default(), e.request_id),
        None => (ErrorDetail::default(), None),
    };
    let message = detail
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| http::error_text(status, body));
    let mut err = ProviderError::http(provider, status.as_u16(), message).with_request_id(body_id);
    err.code = detail.kind;
    err
}

/// Applies Anthropic's `x-should-retry: true|false` response header, which
/// overrides the status-based rule (protocols.md 4.5: the official SDKs
/// retry 408, 409, 429 and ≥500 unless the header says otherwise).
///
/// The header becomes the error's [`retry`](ProviderError::retry) word, which
/// the client's classification follows: `true` on a status that would not be
/// retried (e.g. 409) makes it retryable; `false` on one that would (e.g. 529
/// or 500) moves on to the next provider at once (it still counts against
/// this instance's health). The message says so. Any other value, or no
/// header, changes nothing.
pub(crate) fn should_retry(mut err: ProviderError, headers: &HeaderMap) -> ProviderError {
    let value = headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let retryable = err.class() == ErrorClass::Retryable;
    match value.as_deref() {
        Some("true") if !retryable => {
            err.message
                .push_str(" (the server asks for a retry: x-should-retry: true)");
            err = err.with_retry(Some(true));
        }
        Some("false") if retryable => {
            err.retry_after = None;
            err.message
                .push_str(" (the server asks not to retry: x-should-retry: false)");
            err = err.with_retry(Some(false));
        }
        _ => {}
    }
    err
}

/// The error for an `error` event inside a stream, or an error envelope in a 2xx body.
pub(crate) fn from_event(
    provider: &str,
    detail: Option<ErrorDetail>,
    request_id: Option<String>,
) -> ProviderError {
    let detail = detail.unwrap_or_default();
    let kind = detail.kind.unwrap_or_else(|| "error".to_string());
    let message = format!(
        "{} (error reported after HTTP 200)",
        detail.message.as_deref().unwrap_or("unknown error")
    );
    let mut err =
        ProviderError::new(provider, ProviderErrorKind::Http, message).with_request_id(request_id);
    err.status = status_for_error_type(&kind);
    err.with_code(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ErrorClass;

    #[test]
    fn body_fields_are_read() {
        let e = from_body(
            "a",
            reqwest::StatusCode::BAD_REQUEST,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215332 tokens > 200000 maximum"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
        );
        assert_eq!(e.status, Some(400));
        assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
        assert_eq!(
            e.message,
            "prompt is too long: 215332 tokens > 200000 maximum"
        );
        assert_eq!(
            e.request_id.as_deref(),
            Some("req_011CSHoEeqs5C35K2UUqR7Fy")
        );
        assert_eq!(e.class(), ErrorClass::Fallback);
    }

    #[test]
    fn non_json_bodies_keep_their_text() {
        let e = from_body(
            "a",
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            b"upstream gone\n",
        );
        assert_eq!(e.message, "upstream gone");
        assert_eq!(e.code, None);
        let e = from_body("a", reqwest::StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.message, "Bad Gateway");
    }

    #[test]
    fn stream_error_types_classify_like_their_statuses() {
        let ev = |t: &str| {
            from_event(
                "a",
                Some(ErrorDetail {
                    kind: Some(t.into()),
                    message: Some("m".into()),
                }),
                None,
            )
        };
        assert_eq!(ev("overloaded_error").status, Some(529));
        assert_eq!(ev("overloaded_error").class(), ErrorClass::Retryable);
        assert_eq!(ev("api_error").class(), ErrorClass::Retryable);
        assert_eq!(ev("billing_error").class(), ErrorClass::Fallback);
        assert_eq!(ev("invalid_request_error").class(), ErrorClass::Fallback);
        assert_eq!(ev("something_new").status, None);
        assert_eq!(ev("something_new").code.as_deref(), Some("something_new"));
    }
}
