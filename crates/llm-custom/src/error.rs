//! HTTP error statuses and error bodies → [`ProviderError`].
//!
//! Non-2xx answers go through [`llm_core::http::send_with`] with
//! [`ErrorPointer`]: the body is parsed whole (up to 64 KiB) and read through
//! the configured error pointer first; only the text kept as the message is
//! then shortened to [`MAX_ERROR_TEXT`] bytes, so a long JSON body keeps its
//! message and code. A body without an error there gives its text (shortened),
//! or the status's reason when it is empty.

use llm_core::http::{truncate_text, ErrorBody, ErrorMapping};
use llm_core::{ProviderError, ProviderErrorKind};
use serde_json::Value;

use crate::wire::error_at;

/// Longest error message kept, in bytes (cut at a character boundary).
pub(crate) const MAX_ERROR_TEXT: usize = 1000;

/// The error mapping of an instance: message and code at its `error_pointer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorPointer(pub String);

impl ErrorMapping for ErrorPointer {
    fn parse(&self, body: &[u8]) -> ErrorBody {
        match serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| error_at(&v, &self.0))
        {
            Some((message, code)) => ErrorBody {
                code,
                message: Some(truncate_text(&message, MAX_ERROR_TEXT)),
            },
            None => ErrorBody::default(),
        }
    }
}

/// An error reported inside a successful (2xx) answer or stream.
pub(crate) fn in_body(provider: &str, message: &str, code: Option<String>) -> ProviderError {
    let mut err = ProviderError::new(
        provider,
        ProviderErrorKind::Http,
        truncate_text(message, MAX_ERROR_TEXT),
    );
    err.code = code;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::http::reqwest::{header::HeaderMap, StatusCode};
    use llm_core::ErrorClass;

    /// `(message, code)` of a 400 with `body`, read through `pointer`.
    fn read_body(body: &[u8], pointer: &str) -> (String, Option<String>) {
        let e = ErrorPointer(pointer.to_string()).map_error(
            "c",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body,
        );
        assert_eq!(e.status, Some(400));
        (e.message, e.code)
    }

    #[test]
    fn json_bodies_are_read_through_the_pointer() {
        let body = br#"{"error":{"message":"slow down","code":"rate_limit"}}"#;
        assert_eq!(
            read_body(body, "/error"),
            ("slow down".into(), Some("rate_limit".into()))
        );
        let body = br#"{"detail":{"msg":"bad prompt"}}"#;
        assert_eq!(read_body(body, "/detail/msg").0, "bad prompt");
    }

    #[test]
    fn long_json_bodies_keep_their_message_and_code() {
        let filler = "x".repeat(5000);
        let body = format!(
            r#"{{"error":{{"message":"prompt too long","code":"context_length","trace":"{filler}"}}}}"#
        );
        assert!(body.len() > MAX_ERROR_TEXT);
        assert_eq!(
            read_body(body.as_bytes(), "/error"),
            ("prompt too long".into(), Some("context_length".into()))
        );

        // A long message itself is shortened after it is read.
        let long = "é".repeat(3000);
        let body = format!(r#"{{"error":{{"message":"{long}","type":"invalid"}}}}"#);
        let (message, code) = read_body(body.as_bytes(), "/error");
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
            read_body(b"<html>Bad gateway</html>", "/error"),
            ("<html>Bad gateway</html>".into(), None)
        );
        assert_eq!(
            read_body(br#"{"detail":"x"}"#, "/error"),
            (r#"{"detail":"x"}"#.into(), None)
        );
        assert_eq!(read_body(b"  ", "/error").0, "Bad Request");
        let html = "<p>".repeat(1000);
        let (message, _) = read_body(html.as_bytes(), "/error");
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
