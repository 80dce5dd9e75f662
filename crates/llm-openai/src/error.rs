//! Error bodies and in-body error payloads → [`ProviderError`].

use llm_core::http::{ErrorBody, ErrorMapping};
use llm_core::{ProviderError, ProviderErrorKind};
use serde::Deserialize;

use crate::wire::{ErrorObject, ErrorPayload};

/// An error body: `{"error":{…}}`, `{"error":"…"}`, or a bare error object
/// (`{"object":"error","message":…}`, as older vLLM versions send).
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Option<ErrorPayload>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// How OpenAI's error replies become errors: [`parse_error`] reads the body;
/// `llm_core::http::send_with` adds the status, request id and `Retry-After`.
pub(crate) struct OpenAiErrors;

impl ErrorMapping for OpenAiErrors {
    fn parse(&self, body: &[u8]) -> ErrorBody {
        parse_error(body)
    }
}

/// Parses an error response body.
///
/// The code is the body's `code`, else its `type`. A body that is not JSON
/// gives an empty result, and the caller falls back to the raw text.
pub(crate) fn parse_error(body: &[u8]) -> ErrorBody {
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        return ErrorBody::default();
    };
    match env.error {
        Some(ErrorPayload::Object(obj)) => ErrorBody {
            code: obj.code_text(),
            message: obj.message.filter(|m| !m.is_empty()),
        },
        Some(ErrorPayload::Message(m)) => ErrorBody {
            code: None,
            message: Some(m).filter(|m| !m.is_empty()),
        },
        Some(ErrorPayload::Other(_)) | None => {
            let obj = ErrorObject {
                message: env.message,
                kind: env.kind,
                code: env.code,
            };
            ErrorBody {
                code: obj.code_text(),
                message: obj.message.filter(|m| !m.is_empty()),
            }
        }
    }
}

/// The HTTP status OpenAI answers an error `code` or `type` with, for errors
/// that arrive without one (inside a `200` body or a stream).
///
/// Giving such an error the status the same error has as a reply lets the
/// client classify it and count it against the provider's health like the
/// reply: `server_error` → 500 and `rate_limit_exceeded` → 429 are retried;
/// `insufficient_quota` → 429 (out of credit), `invalid_api_key` → 401,
/// `model_not_found` → 404 and `context_length_exceeded` → 400 move on to the
/// next provider. The `code` is looked up first (it is the more specific:
/// `invalid_request_error` is the `type` of a 401 `invalid_api_key` as well
/// as of a 400), then the `type`. The names of OpenAI's errors guide are
/// mapped, and the ones OpenAI-compatible servers use (llama.cpp's
/// `unavailable_error`, `exceed_context_size_error`, …). `None` for any
/// other value: the error then has no status and falls back without
/// counting against health.
pub(crate) fn status_for_error(code: Option<&str>, kind: Option<&str>) -> Option<u16> {
    code.and_then(status_for_name)
        .or_else(|| kind.and_then(status_for_name))
}

fn status_for_name(name: &str) -> Option<u16> {
    Some(match name {
        "invalid_request_error"
        | "context_length_exceeded"
        | "exceed_context_size_error"
        | "invalid_value"
        | "BadRequestError" => 400,
        "invalid_api_key" | "authentication_error" | "AuthenticationError" => 401,
        "permission_error" | "permission_denied" | "unsupported_country_region_territory" => 403,
        "model_not_found" | "not_found_error" | "NotFoundError" => 404,
        "rate_limit_exceeded"
        | "rate_limit_error"
        | "requests"
        | "tokens"
        | "slow_down"
        | "insufficient_quota"
        | "RateLimitError" => 429,
        "server_error" | "api_error" | "internal_error" | "InternalServerError" => 500,
        "overloaded"
        | "overloaded_error"
        | "engine_overloaded"
        | "server_overloaded"
        | "service_unavailable"
        | "unavailable_error"
        | "ServiceUnavailableError" => 503,
        _ => return None,
    })
}

/// The error for an `error` payload found inside a 200 answer or a stream.
///
/// A numeric `code` that is an HTTP error status (llama.cpp, vLLM) becomes the
/// error's status, so a `500` in a stream is retryable like an HTTP 500;
/// otherwise the status comes from the `code`/`type` names
/// ([`status_for_error`]).
pub(crate) fn payload_error(provider: &str, payload: ErrorPayload) -> ProviderError {
    let (message, code, status) = match payload {
        ErrorPayload::Object(obj) => (
            obj.message.clone().filter(|m| !m.is_empty()),
            obj.code_text(),
            obj.numeric_status().or_else(|| {
                status_for_error(
                    obj.code.as_ref().and_then(serde_json::Value::as_str),
                    obj.kind.as_deref(),
                )
            }),
        ),
        ErrorPayload::Message(m) => (Some(m).filter(|m| !m.is_empty()), None, None),
        ErrorPayload::Other(v) => (Some(v.to_string()), None, None),
    };
    let message = message.unwrap_or_else(|| "the server reported an error".to_string());
    let mut err = ProviderError::new(provider, ProviderErrorKind::Http, message);
    err.status = status;
    err.code = code;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ErrorClass;

    #[test]
    fn openai_bodies() {
        let b = parse_error(
            br#"{
  "error": {
    "message": "This model's maximum context length is 128000 tokens.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded"
  }
}"#,
        );
        assert_eq!(b.code.as_deref(), Some("context_length_exceeded"));
        assert_eq!(
            b.message.as_deref(),
            Some("This model's maximum context length is 128000 tokens.")
        );
        let b = parse_error(
            br#"{"error":{"message":"Missing bearer or basic authentication in header","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(b.code.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn compatible_server_bodies() {
        let b = parse_error(br#"{"error":"Unexpected endpoint or method."}"#);
        assert_eq!(b.code, None);
        assert_eq!(b.message.as_deref(), Some("Unexpected endpoint or method."));
        let b = parse_error(
            br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
        );
        assert_eq!(b.code.as_deref(), Some("NotFoundError"));
        assert_eq!(b.message.as_deref(), Some("The model `x` does not exist."));
        assert_eq!(
            parse_error(b"<html>bad gateway</html>"),
            ErrorBody::default()
        );
        assert_eq!(parse_error(b""), ErrorBody::default());
    }

    #[test]
    fn payload_errors() {
        let p: ErrorPayload =
            serde_json::from_str(r#"{"code":500,"message":"boom","type":"server_error"}"#).unwrap();
        let e = payload_error("p", p);
        assert_eq!(e.status, Some(500));
        assert_eq!(e.code.as_deref(), Some("server_error"));
        assert_eq!(e.class(), ErrorClass::Retryable);
        let p: ErrorPayload = serde_json::from_str(
            r#"{"message":"bad","type":"invalid_request_error","param":null,"code":null}"#,
        )
        .unwrap();
        let e = payload_error("p", p);
        assert_eq!(e.status, Some(400));
        assert_eq!(e.message, "bad");
        assert_eq!(e.class(), ErrorClass::Fallback);
        let p: ErrorPayload =
            serde_json::from_str(r#"{"message":"m","type":"brand_new_type","code":null}"#).unwrap();
        let e = payload_error("p", p);
        assert_eq!(e.status, None);
        assert_eq!(e.code.as_deref(), Some("brand_new_type"));
        assert_eq!(e.class(), ErrorClass::Fallback);
    }

    /// Errors without a numeric status get the one OpenAI answers them with.
    #[test]
    fn named_errors_get_their_status_and_class() {
        let cases: &[(&str, Option<u16>, ErrorClass)] = &[
            (
                r#"{"message":"m","type":"server_error","param":null,"code":null}"#,
                Some(500),
                ErrorClass::Retryable,
            ),
            (
                r#"{"message":"m","type":"tokens","param":null,"code":"rate_limit_exceeded"}"#,
                Some(429),
                ErrorClass::Retryable,
            ),
            (
                r#"{"message":"m","type":"requests","param":null,"code":"rate_limit_exceeded"}"#,
                Some(429),
                ErrorClass::Retryable,
            ),
            (
                r#"{"message":"m","type":"server_error","param":null,"code":"overloaded"}"#,
                Some(503),
                ErrorClass::Retryable,
            ),
            (
                r#"{"message":"m","type":"insufficient_quota","param":null,"code":"insufficient_quota"}"#,
                Some(429),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"insufficient_quota","param":null,"code":null}"#,
                Some(429),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"invalid_request_error","param":null,"code":"invalid_api_key"}"#,
                Some(401),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"invalid_request_error","param":null,"code":"model_not_found"}"#,
                Some(404),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}"#,
                Some(400),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"permission_error","param":null,"code":null}"#,
                Some(403),
                ErrorClass::Fallback,
            ),
            (
                r#"{"message":"m","type":"unavailable_error","code":null}"#,
                Some(503),
                ErrorClass::Retryable,
            ),
            // A numeric code wins over the names.
            (
                r#"{"message":"m","type":"server_error","code":502}"#,
                Some(502),
                ErrorClass::Retryable,
            ),
            // An unknown code falls back to the type.
            (
                r#"{"message":"m","type":"server_error","code":"brand_new_code"}"#,
                Some(500),
                ErrorClass::Retryable,
            ),
        ];
        for (json, status, class) in cases {
            let p: ErrorPayload = serde_json::from_str(json).unwrap();
            let e = payload_error("p", p);
            assert_eq!(e.status, *status, "{json}");
            assert_eq!(e.class(), *class, "{json}");
            assert_eq!(e.message, "m");
        }
    }
}
