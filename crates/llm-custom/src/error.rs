//! HTTP error statuses and error bodies → [`ProviderError`].
//!
//! An error body is parsed whole (up to [`MAX_ERROR_BODY`] bytes) and read
//! through the configured error pointer first; only the text kept as the
//! message is then shortened to [`MAX_ERROR_TEXT`] bytes, so a long JSON body
//! keeps its message and code.

use std::time::Duration;

use llm_core::http::{self, reqwest};
use llm_core::{ProviderError, ProviderErrorKind};
use serde_json::Value;

use crate::wire::error_at;

/// Longest error body read from a non-2xx answer; the rest is not waited for.
pub(crate) const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Longest error message kept, in bytes (cut at a character boundary).
pub(crate) const MAX_ERROR_TEXT: usize = 1000;

/// Builds the error for a non-2xx response: status, request id,
/// `Retry-After`, and the message and code found at `error_pointer`.
pub(crate) async fn from_response(
    provider: &str,
    resp: reqwest::Response,
    timeout: Duration,
    error_pointer: &str,
) -> ProviderError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = tokio::time::timeout(timeout, read_capped(resp, MAX_ERROR_BODY))
        .await
        .unwrap_or_default();
    let fallback = status.canonical_reason().unwrap_or("error");
    let (message, code) = read_body(&body, error_pointer, fallback);
    let mut err = ProviderError::http(provider, status.as_u16(), message)
        .with_request_id(http::request_id(&headers))
        .with_retry_after(http::retry_after(&headers));
    err.code = code;
    err
}

/// Up to `max` bytes of the body; a transport failure ends it early.
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The message and code of an error body: those at `error_pointer` when the
/// body is JSON and holds an error there, else the body text (or `fallback`
/// when it is empty). The message is shortened to [`MAX_ERROR_TEXT`] bytes.
pub(crate) fn read_body(
    body: &[u8],
    error_pointer: &str,
    fallback: &str,
) -> (String, Option<String>) {
    if let Some((message, code)) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| error_at(&v, error_pointer))
    {
        return (truncate(&message, MAX_ERROR_TEXT), code);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        fallback.to_string()
    } else {
        truncate(text, MAX_ERROR_TEXT)
    };
    (message, None)
}

/// An error reported inside a successful (2xx) answer or stream.
pub(crate) fn in_body(provider: &str, message: &str, code: Option<String>) -> ProviderError {
    let mut err = ProviderError::new(
        provider,
        ProviderErrorKind::Http,
        truncate(message, MAX_ERROR_TEXT),
    );
    err.code = code;
    err
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ErrorClass;

    #[test]
    fn json_bodies_are_read_through_the_pointer() {
        let body = br#"{"error":{"message":"slow down","code":"rate_limit"}}"#;
        assert_eq!(
            read_body(body, "/error", "x"),
            ("slow down".into(), Some("rate_limit".into()))
        );
        let body = br#"{"detail":{"msg":"bad prompt"}}"#;
        assert_eq!(read_body(body, "/detail/msg", "x").0, "bad prompt");
    }

    #[test]
    fn long_json_bodies_keep_their_message_and_code() {
        let filler = "x".repeat(5000);
        let body = format!(
            r#"{{"error":{{"message":"prompt too long","code":"context_length","trace":"{filler}"}}}}"#
        );
        assert!(body.len() > MAX_ERROR_TEXT);
        assert_eq!(
            read_body(body.as_bytes(), "/error", "x"),
            ("prompt too long".into(), Some("context_length".into()))
        );

        // A long message itself is shortened after it is read.
        let long = "é".repeat(3000);
        let body = format!(r#"{{"error":{{"message":"{long}","type":"invalid"}}}}"#);
        let (message, code) = read_body(body.as_bytes(), "/error", "x");
        assert_eq!(code.as_deref(), Some("invalid"));
        assert!(
            message.len() <= MAX_ERROR_TEXT + '…'.len_utf8(),
            "{}",
            message.len()
        );
        assert!(message.starts_with("éé") && message.ends_with('…'));
    }

    #[test]
    fn other_bodies_are_kept_shortened() {
        assert_eq!(
            read_body(b"<html>Bad gateway</html>", "/error", "x"),
            ("<html>Bad gateway</html>".into(), None)
        );
        assert_eq!(
            read_body(br#"{"detail":"x"}"#, "/error", "x"),
            (r#"{"detail":"x"}"#.into(), None)
        );
        assert_eq!(read_body(b"  ", "/error", "Bad Gateway").0, "Bad Gateway");
        let html = "<p>".repeat(1000);
        let (message, _) = read_body(html.as_bytes(), "/error", "x");
        assert_eq!(message.len(), MAX_ERROR_TEXT + '…'.len_utf8());
    }

    #[test]
    fn in_body_errors_move_on_to_the_next_provider() {
        let e = in_body("c", "model crashed", None);
        assert_eq!(e.class(), ErrorClass::Fallback);
        assert_eq!(e.status, None);
        let e = in_body("c", &"y".repeat(4000), None);
        assert!(e.message.len() <= MAX_ERROR_TEXT + '…'.len_utf8());
    }
}
