//! Errors in OpenAI's error body: `{"error":{"message","type","param","code"}}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router::{Attempt, AttemptOutcome, LlmError};
use serde::Serialize;

use super::scrub::scrub_patterns;

/// Upstream HTTP statuses that blame the request itself: when every attempt
/// failed with one, the caller gets that status rather than a 502 (which
/// SDKs retry, sending the same bad request again).
const CLIENT_STATUSES: &[u16] = &[400, 404, 413, 422];

/// An API error: an HTTP status and OpenAI's error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable description.
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `server_error`, …).
    pub kind: &'static str,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `invalid_api_key`, …).
    pub code: Option<&'static str>,
    /// Seconds a client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u64>,
}

/// The wire form of an error.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorObject<'a>,
}

/// The inner `error` object.
#[derive(Serialize)]
pub(crate) struct ErrorObject<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`, naming the field at fault.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = param.map(str::to_string);
        e
    }

    /// 401 for a request without a bearer key.
    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Missing bearer authentication in header",
        )
    }

    /// 401 for a wrong bearer key (the key is never echoed).
    pub fn wrong_key() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided.",
        );
        e.code = Some("invalid_api_key");
        e
    }

    /// 401 for a virtual key that exists but may not be used now (revoked,
    /// disabled or expired); `why` says which, never quoting the key.
    pub fn key_refused(why: &str) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", why);
        e.code = Some("invalid_api_key");
        e
    }

    /// 403 for a model the caller's key may not use.
    pub fn model_not_allowed(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!("This API key is not allowed to use the model `{model}`."),
        );
        e.param = Some("model".into());
        e.code = Some("model_not_allowed");
        e
    }

    /// 429 for a key over its request or token rate: `kind` is OpenAI's
    /// `requests` or `tokens`.
    pub fn rate_limited(kind: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, kind, message);
        e.code = Some("rate_limit_exceeded");
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 429 `insufficient_quota` for a key over its budget; `retry_after`
    /// is the time until the budget resets, if it does.
    pub fn insufficient_quota(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message);
        e.code = Some("insufficient_quota");
        e.retry_after = retry_after;
        e
    }

    /// 503 when something the gateway needs (the key store) is unreachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
        e.retry_after = Some(1);
        e
    }

    /// 403 for an admin request without the master key.
    pub fn not_admin() -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "The admin API needs the master key.",
        );
        e.code = Some("not_admin");
        e
    }

    /// 404 for an unknown virtual key id.
    pub fn key_not_found(id: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No key with id `{id}`."),
        );
        e.code = Some("key_not_found");
        e
    }

    /// 404 for a model no configured provider serves.
    pub fn model_not_found(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model `{model}` does not exist or you do not have access to it. \
                 GET /v1/models lists the models of this gateway; `auto` lets the router choose."
            ),
        );
        e.param = Some("model".into());
        e.code = Some("model_not_found");
        e
    }

    /// 404 for an unknown route.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Invalid URL ({method} {path})"),
        )
    }

    /// 405 for a known route called with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("Method {method} is not allowed for {path}"),
        )
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        let mut e = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("The request body is larger than the limit of this gateway ({limit} bytes)."),
        );
        e.code = Some("request_too_large");
        e
    }

    /// 429 when the gateway is handling as many requests as it may.
    pub fn overloaded(max: usize) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            format!(
                "Too many concurrent requests: this gateway handles at most {max} at once. \
                 Please retry shortly."
            ),
        );
        e.code = Some("rate_limit_exceeded");
        e.retry_after = Some(1);
        e
    }

    /// 504 when the gateway's own `request_timeout` passed.
    pub fn timeout(after: Duration) -> Self {
        let mut e = Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            format!(
                "The request timed out after {:.1} s (the gateway's request_timeout).",
                after.as_secs_f64()
            ),
        );
        e.code = Some("timeout");
        e
    }

    /// 500 for a failure inside the gateway.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The JSON body, as bytes.
    pub fn body_json(&self) -> String {
        let body = ErrorBody {
            error: ErrorObject {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#
                .to_string()
        })
    }
}

/// `head: a; b; c`, each attempt on one line of the original collapsed.
fn with_attempts(head: &str, attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return head.to_string();
    }
    let list: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    format!("{head}: {}", list.join("; "))
}

/// Upstream error codes passed on to the caller with a client-class status
/// (SDKs and frameworks act on them, e.g. on a context overflow).
const KNOWN_CODES: &[&str] = &[
    "context_length_exceeded",
    "model_not_found",
    "invalid_value",
    "invalid_type",
    "invalid_image_url",
    "invalid_image_format",
    "image_too_large",
    "string_above_max_length",
    "array_above_max_length",
    "unsupported_parameter",
    "unsupported_value",
    "request_too_large",
];

/// The upstream's code (when it gave one) and its own message, out of an
/// attempt's description (`provider `x`: HTTP 400 (code): message [request id …]`).
fn upstream_parts(description: &str) -> (Option<&str>, &str) {
    let Some((_, rest)) = description.split_once(": HTTP ") else {
        return (None, description);
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let (code, rest) = match rest.strip_prefix(" (") {
        Some(r) => match r.split_once(')') {
            Some((code, after)) => (Some(code), after),
            None => (None, r),
        },
        None => (None, rest),
    };
    let rest = rest.strip_prefix(": ").unwrap_or(rest);
    let message = match rest.rfind(" [request id ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    (code, message)
}

/// When every attempt that was made failed with a client-class status
/// ([`CLIENT_STATUSES`]), or was refused by its provider before anything was
/// sent (it cannot serve what the request asks, e.g. an image it cannot
/// fetch: a 400): that error, with the first one's status and message.
fn client_error(attempts: &[Attempt]) -> Option<ApiError> {
    let failed: Vec<(&Attempt, u16, &str)> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            AttemptOutcome::Failed {
                status,
                message,
                refused,
                ..
            } => Some((
                a,
                if *refused { 400 } else { status.unwrap_or(0) },
                message.as_str(),
            )),
            _ => None,
        })
        .collect();
    let (_, status, first) = *failed.first()?;
    if !failed.iter().all(|(_, s, _)| CLIENT_STATUSES.contains(s)) {
        return None;
    }
    let code = StatusCode::from_u16(status).ok()?;
    let who: Vec<String> = failed
        .iter()
        .map(|(a, s, _)| format!("{} HTTP {s}", a.provider))
        .collect();
    let (upstream_code, message) = upstream_parts(first);
    let mut err = ApiError::new(
        code,
        "invalid_request_error",
        format!("{message} (rejected upstream: {})", who.join(", ")),
    );
    err.code = upstream_code.and_then(|c| KNOWN_CODES.iter().copied().find(|k| *k == c));
    Some(err)
}

impl From<LlmError> for ApiError {
    fn from(e: LlmError) -> Self {
        let mut err = Self::from_llm(&e);
        // Upstream text may quote keys (masked or not): never pass them on.
        err.message = scrub_patterns(&err.message);
        err
    }
}

impl ApiError {
    fn from_llm(e: &LlmError) -> Self {
        match e {
            LlmError::Unsupported { field, .. } => {
                let mut err = ApiError::invalid(Some(field), e.to_string());
                err.code = Some("unsupported_parameter");
                err
            }
            LlmError::Validation(v) => ApiError::invalid(Some(v.field), v.to_string()),
            // A key's allowed models leave nothing that may serve the request.
            LlmError::NotAllowed { .. } => {
                let mut err = ApiError::model_not_allowed("");
                err.message =
                    format!("This API key may not use any model that serves this request: {e}.");
                err
            }
            LlmError::UnknownProvider { name, .. } => ApiError::model_not_found(name),
            LlmError::UnknownEmbeddingModel { model, known } => {
                let mut err = ApiError::model_not_found(model);
                err.message = if model.is_empty() {
                    "No embedding model was given and this gateway has no \
                     `default_embedding_model`: set `model`."
                        .to_string()
                } else if known.is_empty() {
                    format!(
                        "The model `{model}` does not exist or you do not have access to it: this \
                         gateway serves no embedding model (configure `embedding_models`)."
                    )
                } else {
                    format!(
                        "The model `{model}` does not exist or you do not have access to it. \
                         Embedding models of this gateway: {}.",
                        known.join(", ")
                    )
                };
                err
            }
            // No configured provider can ever serve it: the request's fault.
            LlmError::NoProviderAvailable { attempts }
                if !attempts.is_empty()
                    && attempts.iter().all(|a| {
                        matches!(&a.outcome, AttemptOutcome::Skipped { reason }
                            if reason == llm_router::router::NO_TOOL_SUPPORT)
                    }) =>
            {
                let mut err = ApiError::invalid(
                    Some("tools"),
                    with_attempts(
                        "This request uses tools, which none of the gateway's providers supports",
                        attempts,
                    ),
                );
                err.code = Some("tools_not_supported");
                err
            }
            LlmError::NoProviderAvailable { attempts } => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    with_attempts("No provider is available", attempts),
                );
                err.code = Some("no_provider_available");
                err.retry_after = Some(5);
                err
            }
            LlmError::AllProvidersFailed { attempts } => {
                client_error(attempts).unwrap_or_else(|| {
                    let mut err = ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "server_error",
                        with_attempts("All providers failed", attempts),
                    );
                    err.code = Some("upstream_error");
                    err
                })
            }
            LlmError::DeadlineExceeded { deadline, attempts } => {
                let mut err = ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "server_error",
                    with_attempts(
                        &format!(
                            "The routing deadline of {:.1} s passed",
                            deadline.as_secs_f64()
                        ),
                        attempts,
                    ),
                );
                err.code = Some("timeout");
                err
            }
            LlmError::Provider(p) => {
                let mut err = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", p.to_string());
                err.code = Some("upstream_error");
                err
            }
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
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
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_four_keys() {
        let e = ApiError::invalid(Some("temperature"), "bad");
        let v: serde_json::Value = serde_json::from_str(&e.body_json()).unwrap_or_default();
        assert_eq!(v["error"]["message"], "bad");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "temperature");
        assert!(v["error"]["code"].is_null());
    }

    fn failed(provider: &str, status: Option<u16>, message: &str) -> Attempt {
        Attempt {
            provider: provider.into(),
            model: "m".into(),
            outcome: AttemptOutcome::Failed {
                class: llm_router::ErrorClass::Fallback,
                status,
                message: message.into(),
                refused: false,
            },
            elapsed: Duration::ZERO,
            calls: 1,
        }
    }

    #[test]
    fn the_upstream_message_is_taken_out_of_an_attempt() {
        assert_eq!(
            upstream_parts(
                "provider `openai`: HTTP 400 (context_length_exceeded): This model's maximum \
                 context length is 128000 tokens. [request id req_1]"
            ),
            (
                Some("context_length_exceeded"),
                "This model's maximum context length is 128000 tokens."
            )
        );
        assert_eq!(
            upstream_parts("provider `local`: HTTP 404: model \"x\" not found"),
            (None, "model \"x\" not found")
        );
        assert_eq!(
            upstream_parts("overall deadline reached"),
            (None, "overall deadline reached")
        );
    }

    #[test]
    fn requests_every_provider_refused_are_400_not_502() {
        let refused = |name: &str| Attempt {
            outcome: AttemptOutcome::Failed {
                class: llm_router::ErrorClass::Fallback,
                status: None,
                message: format!(
                    "provider `{name}`: image_url (message 0, image 0): fetching failed: HTTP 404"
                ),
                refused: true,
            },
            ..failed(name, None, "")
        };
        let e = ApiError::from(LlmError::AllProvidersFailed {
            attempts: vec![refused("ollama"), refused("local")],
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e:?}");
        // A provider failing without a status (a decode error) is still a 502.
        let e = ApiError::from(LlmError::AllProvidersFailed {
            attempts: vec![
                refused("ollama"),
                failed("b", None, "provider `b`: invalid JSON"),
            ],
        });
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn only_client_errors_everywhere_keep_their_status() {
        let all_400 = LlmError::AllProvidersFailed {
            attempts: vec![
                failed("a", Some(400), "provider `a`: HTTP 400: too long"),
                Attempt {
                    outcome: AttemptOutcome::Skipped {
                        reason: "circuit open".into(),
                    },
                    ..failed("b", None, "")
                },
                failed("c", Some(404), "provider `c`: HTTP 404: no such model"),
            ],
        };
        let e = ApiError::from(all_400);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.kind, "invalid_request_error");
        assert!(
            e.message
                .starts_with("too long (rejected upstream: a HTTP 400, c HTTP 404)"),
            "{}",
            e.message
        );
        assert_eq!(e.code, None);

        // The upstream's code goes along when it is one clients act on.
        let e = ApiError::from(LlmError::AllProvidersFailed {
            attempts: vec![failed(
                "a",
                Some(400),
                "provider `a`: HTTP 400 (context_length_exceeded): too long [request id r1]",
            )],
        });
        assert_eq!(e.code, Some("context_length_exceeded"));
        assert!(e.message.starts_with("too long (rejected"), "{}", e.message);

        for mixed in [
            vec![
                failed("a", Some(400), "provider `a`: HTTP 400: too long"),
                failed("b", Some(500), "provider `b`: HTTP 500: oops"),
            ],
            vec![failed("a", Some(401), "provider `a`: HTTP 401: bad key")],
            vec![failed("a", None, "provider `a`: connect: refused")],
        ] {
            let e = ApiError::from(LlmError::AllProvidersFailed { attempts: mixed });
            assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        }
    }

    #[test]
    fn nothing_allowed_is_a_403_without_retry() {
        let e = ApiError::from(LlmError::NotAllowed {
            globs: vec!["mistral-*".into()],
        });
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.code, Some("model_not_allowed"));
        assert_eq!(e.retry_after, None);
        assert!(e.message.contains("mistral-*"), "{}", e.message);
    }

    #[test]
    fn unsupported_fields_are_400_naming_the_field() {
        let e = ApiError::from(LlmError::Unsupported {
            field: "logit_bias".into(),
            capability: llm_router::Capability::Passthrough,
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("logit_bias"));
        assert_eq!(e.code, Some("unsupported_parameter"));
    }

    #[test]
    fn upstream_keys_never_reach_the_caller() {
        let e = ApiError::from(LlmError::AllProvidersFailed {
            attempts: vec![failed(
                "a",
                Some(401),
                "provider `a`: HTTP 401 (invalid_api_key): Incorrect API key provided: \
                 sk-VKMIs****wjh3.",
            )],
        });
        assert!(!e.message.contains("sk-"), "{}", e.message);
        assert!(e
            .message
            .contains("Incorrect API key provided: [redacted]."));
    }
}
