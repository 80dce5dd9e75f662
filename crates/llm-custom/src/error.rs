//! HTTP error statuses and error bodies → [`ProviderError`].

use llm_core::http::ErrorBody;
use llm_core::{ProviderError, ProviderErrorKind};
use serde_json::Value;

use crate::wire::error_at;

/// Body parser handed to [`llm_core::http::send`]: it keeps the raw body text as
/// the message, which [`refine`] then reads with the configured error pointer
/// (a plain `fn` cannot see the configuration).
pub(crate) fn raw_body(_: &[u8]) -> ErrorBody {
    ErrorBody::default()
}

/// Replaces the raw JSON body of an HTTP error by the message (and code) found
/// at `error_pointer`; other errors and bodies are left as they are.
pub(crate) fn refine(mut err: ProviderError, error_pointer: &str) -> ProviderError {
    if err.kind != ProviderErrorKind::Http {
        return err;
    }
    let Ok(body) = serde_json::from_str::<Value>(&err.message) else {
        return err;
    };
    if let Some((message, code)) = error_at(&body, error_pointer) {
        err.message = message;
        if code.is_some() {
            err.code = code;
        }
    }
    err
}

/// An error reported inside a successful (2xx) answer or stream.
pub(crate) fn in_body(provider: &str, message: String, code: Option<String>) -> ProviderError {
    let mut err = ProviderError::new(provider, ProviderErrorKind::Http, message);
    err.code = code;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ErrorClass;

    #[test]
    fn json_bodies_are_read_through_the_pointer() {
        let raw = ProviderError::http(
            "c",
            429,
            r#"{"error":{"message":"slow down","code":"rate_limit"}}"#,
        );
        let e = refine(raw, "/error");
        assert_eq!(e.message, "slow down");
        assert_eq!(e.code.as_deref(), Some("rate_limit"));
        assert_eq!(e.class(), ErrorClass::Retryable);

        let raw = ProviderError::http("c", 400, r#"{"detail":{"msg":"bad prompt"}}"#);
        assert_eq!(refine(raw, "/detail/msg").message, "bad prompt");
    }

    #[test]
    fn other_bodies_are_kept() {
        let raw = ProviderError::http("c", 502, "<html>Bad gateway</html>");
        assert_eq!(refine(raw, "/error").message, "<html>Bad gateway</html>");
        let raw = ProviderError::http("c", 500, r#"{"detail":"x"}"#);
        assert_eq!(refine(raw, "/error").message, r#"{"detail":"x"}"#);
        let t = ProviderError::timeout("c", r#"{"error":"x"}"#);
        assert_eq!(refine(t, "/error").message, r#"{"error":"x"}"#);
    }

    #[test]
    fn in_body_errors_move_on_to_the_next_provider() {
        let e = in_body("c", "model crashed".into(), None);
        assert_eq!(e.class(), ErrorClass::Fallback);
        assert_eq!(e.status, None);
    }
}
