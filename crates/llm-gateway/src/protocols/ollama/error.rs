//! Errors in Ollama's shape: `{"error":"…"}` with the status Ollama uses.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llm_router::LlmError;
use serde::Serialize;

use crate::error::ApiError;

/// Largest error body of the shared layers that is rewritten (theirs are small).
const MAX_REWRITTEN: usize = 64 * 1024;

/// An error of the Ollama API: a status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` text.
    pub message: String,
    /// Seconds a client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorText<'a> {
    error: &'a str,
}

impl OllamaError {
    /// An error with this status and text.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 for a request the gateway refuses or cannot read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 for a field the gateway cannot honour, named in the text.
    pub fn unsupported(field: &str, why: &str) -> Self {
        Self::bad_request(format!("unsupported field `{field}`: {why}"))
    }

    /// 404 for a model no configured provider serves, in Ollama's words.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("model \"{model}\" not found, try pulling it first"),
        )
    }

    /// The body, `{"error":"…"}`.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&ErrorText {
            error: &self.message,
        })
        .unwrap_or_else(|_| r#"{"error":"internal error"}"#.to_string())
    }
}

impl From<ApiError> for OllamaError {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            message: e.message,
            retry_after: e.retry_after,
        }
    }
}

impl From<LlmError> for OllamaError {
    fn from(e: LlmError) -> Self {
        match &e {
            LlmError::UnknownEmbeddingModel { model, .. } => Self::model_not_found(model),
            _ => ApiError::from(e).into(),
        }
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body_json()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Rewrites an error answered by the shared layers (a missing key, the
/// concurrency limit, a wrong method) from OpenAI's error object into
/// Ollama's `{"error":"…"}`, keeping status and headers.
pub(crate) async fn reshape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITTEN).await else {
        return OllamaError::new(parts.status, "internal error").into_response();
    };
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| match &v["error"] {
            serde_json::Value::Object(o) => o
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            _ => None,
        });
    match message {
        Some(m) => {
            let body = OllamaError::new(parts.status, m).body_json();
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
