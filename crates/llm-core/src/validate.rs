//! Request validation, before any provider sees a request.

use crate::error::ValidationError;
use crate::types::LlmRequest;

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// Checks a request: at least one message, `max_tokens` above 0, `temperature`
/// within 0..=2 and `top_p` within 0..=1. The error names the field.
///
/// ```
/// use llm_core::{validate, LlmRequest};
/// assert!(validate(&LlmRequest::new("hi")).is_ok());
/// let err = validate(&LlmRequest::new("hi").temperature(3.0)).unwrap_err();
/// assert_eq!(err.field, "temperature");
/// ```
pub fn validate(req: &LlmRequest) -> Result<(), ValidationError> {
    if req.messages.is_empty() {
        return Err(invalid("messages", "must contain at least one message"));
    }
    if req.max_tokens == 0 {
        return Err(invalid("max_tokens", "must be at least 1"));
    }
    if !(0.0..=2.0).contains(&req.temperature) {
        return Err(invalid(
            "temperature",
            format!("must be between 0 and 2, got {}", req.temperature),
        ));
    }
    if let Some(p) = req.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "top_p",
                format!("must be between 0 and 1, got {p}"),
            ));
        }
    }
    if req.stop.iter().any(String::is_empty) {
        return Err(invalid("stop", "must not contain an empty sequence"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_invalid_field_is_named() {
        let ok = LlmRequest::new("x");
        assert!(validate(&ok).is_ok());
        let cases = [
            (LlmRequest::from_messages(vec![]), "messages"),
            (ok.clone().max_tokens(0), "max_tokens"),
            (ok.clone().temperature(-0.1), "temperature"),
            (ok.clone().temperature(2.1), "temperature"),
            (ok.clone().temperature(f32::NAN), "temperature"),
            (ok.clone().top_p(1.5), "top_p"),
            (ok.clone().stop(""), "stop"),
        ];
        for (req, field) in cases {
            let err = validate(&req).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(validate(&ok.clone().temperature(0.0)).is_ok());
        assert!(validate(&ok.temperature(2.0).top_p(1.0)).is_ok());
    }
}
