//! Ollama error bodies and statuses → [`ProviderError`].
//!
//! Ollama answers errors with `{"error":"<message>"}` and no error codes. Three
//! conditions get a code of this crate so callers can act without reading
//! prose: `model_not_found` (404 on a generation endpoint; the message says how
//! to pull the model), `context_length_exceeded` (400 whose message says the
//! prompt does not fit the context) and `tools_not_supported` (400
//! `… does not support tools`: the model cannot call tools). All three are
//! fallback-class: not retried, the next provider is tried.
//!
//! Images that cannot be sent are an [`ImageError`], reported as an
//! `Unsupported` (fallback-class) [`ProviderError`] with the code
//! [`IMAGE_TOO_LARGE`], [`NOT_AN_IMAGE`] or [`IMAGE_FETCH_FAILED`]; another
//! provider may still take the image URL.

use llm_core::http::ErrorBody;
use llm_core::{ProviderError, ProviderErrorKind};

use crate::wire;

/// Code set on a 404 for a model the server does not have.
pub const MODEL_NOT_FOUND: &str = "model_not_found";
/// Code set on a 400 for a prompt longer than the context window.
pub const CONTEXT_LENGTH_EXCEEDED: &str = "context_length_exceeded";
/// Code set on a 400 for a request with tools to a model without tool support.
pub const TOOLS_NOT_SUPPORTED: &str = "tools_not_supported";

/// Code set when an image is larger than [`MAX_IMAGE_BYTES`](crate::MAX_IMAGE_BYTES).
pub const IMAGE_TOO_LARGE: &str = "image_too_large";
/// Code set when an image URL does not answer with an image.
pub const NOT_AN_IMAGE: &str = "not_an_image";
/// Code set when an image URL could not be fetched (or is not a supported URL).
pub const IMAGE_FETCH_FAILED: &str = "image_fetch_failed";

/// Why an image of a request cannot be sent to Ollama, which takes images
/// only as base64 data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The image (its `Content-Length`, or the bytes read so far) is larger than the limit.
    #[error("the image at {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL without query, fragment or credentials.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The URL answered with something that is not an image.
    #[error("{url} is not an image (Content-Type `{content_type}`)")]
    NotAnImage {
        /// The URL without query, fragment or credentials.
        url: String,
        /// The `Content-Type` it answered with (`none` when absent).
        content_type: String,
    },
    /// The URL could not be fetched: no answer in time, a connection error or
    /// an error status.
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The URL without query, fragment or credentials.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A remote image URL on an instance that does not fetch them
    /// (`fetch_image_urls = false`, the default).
    #[error(
        "image URLs are not fetched by this instance (fetch_image_urls = false); send the image as a base64 `data:` URL"
    )]
    NotFetched,
    /// Neither a base64 `data:` URL nor an `http(s)` URL.
    #[error(
        "unsupported image URL `{url}`: Ollama takes base64 `data:` URLs and fetched http(s) URLs"
    )]
    UnsupportedUrl {
        /// The start of the URL.
        url: String,
    },
}

impl ImageError {
    /// The error code of this crate for it.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooLarge { .. } => IMAGE_TOO_LARGE,
            ImageError::NotAnImage { .. } => NOT_AN_IMAGE,
            ImageError::Fetch { .. }
            | ImageError::UnsupportedUrl { .. }
            | ImageError::NotFetched => IMAGE_FETCH_FAILED,
        }
    }

    /// As the [`ProviderError`] of provider instance `provider`, naming the
    /// message (its index in the request) and the image (its index in the message).
    pub fn into_provider_error(
        self,
        provider: &str,
        message: usize,
        image: usize,
    ) -> ProviderError {
        ProviderError::unsupported(
            provider,
            format!("image_url (message {message}, image {image}): {self}"),
        )
        .with_code(self.code())
    }
}

/// Gin's body for a route the server does not know (an old server without `/api/chat`).
const UNKNOWN_ROUTE: &str = "404 page not found";

/// Parses `{"error":"…"}` (for [`llm_core::http::send`]).
pub(crate) fn parse_error(body: &[u8]) -> ErrorBody {
    let message = serde_json::from_slice::<wire::ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .map(|e| e.message());
    ErrorBody {
        code: None,
        message,
    }
}

/// Adds what a caller needs to an error of a generation endpoint for `model`.
pub(crate) fn refine_generation_error(
    mut err: ProviderError,
    model: &str,
    path: &str,
) -> ProviderError {
    match err.status {
        Some(404) if err.message.trim() == UNKNOWN_ROUTE => {
            err.message = format!(
                "{UNKNOWN_ROUTE}: this Ollama server has no `{path}` endpoint; \
                 upgrade Ollama or set `api = \"generate\"` for old servers"
            );
        }
        Some(404) => {
            err.code = Some(MODEL_NOT_FOUND.to_string());
            err.message = format!(
                "{}; pull it with `llm pull {model}` or `ollama pull {model}`",
                err.message.trim_end_matches('.')
            );
        }
        Some(400) if is_context_overflow(&err.message) => {
            err.code = Some(CONTEXT_LENGTH_EXCEEDED.to_string());
        }
        Some(400) if err.message.contains("does not support tools") => {
            err.code = Some(TOOLS_NOT_SUPPORTED.to_string());
            err.message = format!(
                "{}; use a model whose capabilities include `tools` (see `ollama show {model}`)",
                err.message.trim_end_matches('.')
            );
        }
        _ => {}
    }
    err
}

fn is_context_overflow(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("longer than the context length") || m.contains("exceeds the context length")
}

/// An `{"error":"…"}` line inside a `200` stream.
pub(crate) fn in_stream(provider: &str, what: &str, message: &str) -> ProviderError {
    ProviderError::new(
        provider,
        ProviderErrorKind::Http,
        format!("{what} failed inside the stream: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::ErrorClass;

    #[test]
    fn error_bodies_parse() {
        let b = parse_error(br#"{"error":"model 'llama9' not found"}"#);
        assert_eq!(b.message.as_deref(), Some("model 'llama9' not found"));
        assert_eq!(parse_error(b"404 page not found").message, None);
    }

    #[test]
    fn missing_model_says_how_to_pull_it() {
        let e = ProviderError::http("o", 404, "model \"llama9\" not found, try pulling it first");
        let e = refine_generation_error(e, "llama9", "/api/chat");
        assert_eq!(e.class(), ErrorClass::Fallback);
        assert_eq!(e.code.as_deref(), Some(MODEL_NOT_FOUND));
        assert!(e.message.contains("`llm pull llama9`"), "{e}");
        assert!(e.message.contains("`ollama pull llama9`"), "{e}");
    }

    #[test]
    fn unknown_route_points_at_the_generate_api() {
        let e = ProviderError::http("o", 404, "404 page not found");
        let e = refine_generation_error(e, "m", "/api/chat");
        assert_eq!(e.code, None);
        assert!(e.message.contains("api = \"generate\""), "{e}");
    }

    #[test]
    fn model_without_tools_gets_a_code() {
        let e = ProviderError::http(
            "o",
            400,
            "registry.ollama.ai/library/gemma:2b does not support tools",
        );
        let e = refine_generation_error(e, "gemma:2b", "/api/chat");
        assert_eq!(e.code.as_deref(), Some(TOOLS_NOT_SUPPORTED));
        assert_eq!(e.class(), ErrorClass::Fallback);
        assert!(e.message.contains("does not support tools"), "{e}");
        assert!(e.message.contains("`ollama show gemma:2b`"), "{e}");
    }

    #[test]
    fn image_errors_name_the_field_and_have_codes() {
        let e = ImageError::TooLarge {
            url: "https://example.com/a.png".into(),
            limit: 10,
        }
        .into_provider_error("o", 2, 1);
        assert_eq!(e.kind, ProviderErrorKind::Unsupported);
        assert_eq!(e.class(), ErrorClass::Fallback);
        assert_eq!(e.code.as_deref(), Some(IMAGE_TOO_LARGE));
        assert!(
            e.message.starts_with(
                "image_url (message 2, image 1): the image at https://example.com/a.png"
            ),
            "{e}"
        );
    }

    #[test]
    fn context_overflow_gets_a_code() {
        let e = ProviderError::http(
            "o",
            400,
            "the prompt is longer than the context length currently available to the model; …",
        );
        let e = refine_generation_error(e, "m", "/api/chat");
        assert_eq!(e.code.as_deref(), Some(CONTEXT_LENGTH_EXCEEDED));
        assert_eq!(e.class(), ErrorClass::Fallback);
    }
}
