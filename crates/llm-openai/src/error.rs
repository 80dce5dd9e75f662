//! Error bodies and in-body error payloads → [`ProviderError`].

use llm_core::http::ErrorBody;
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

/// Parses an error response body; used by `llm_core::http::send`.
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

/// The error for an `error` payload found inside a 200 answer or a stream.
///
/// A numeric `code` that is an HTTP error status (llama.cpp, vLLM) becomes the
/// error's status, so a `500` in a stream is retryable like an HTTP 500.
pub(crate) fn payload_error(provider: &str, payload: ErrorPayload) -> ProviderError {
    let (message, code, status) = match payload {
        ErrorPayload::Object(obj) => (
            obj.message.clone().filter(|m| !m.is_empty()),
            obj.code_text(),
            obj.numeric_status(),
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
        assert_eq!(e.status, None);
        assert_eq!(e.message, "bad");
        assert_eq!(e.class(), ErrorClass::Fallback);
    }
}
