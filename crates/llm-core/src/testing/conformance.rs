//! The provider conformance suite.
//!
//! A provider crate (this workspace's or a third party's) describes its API's
//! real response bytes in [`Fixtures`] and how to build an instance against a
//! base URL in a [`ConformanceTarget`]; [`conformance_tests!`](crate::conformance_tests)
//! then generates one `#[tokio::test]` per check, each against a fresh
//! [`MockServer`].
//!
//! The checks are assertions: they panic with a message naming what differs,
//! like `assert_eq!`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::mock::{MockBody, MockReply, MockServer};
use crate::error::{ConfigError, ErrorClass, ProviderError, ProviderErrorKind};
use crate::provider::Provider;
use crate::types::{FinishReason, LlmRequest, StreamEvent, Usage};

/// What a provider's API answers, byte for byte, and what the provider must make of it.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// Path of the generation endpoint (`POST`), e.g. `/v1/chat/completions`.
    pub generate_path: String,
    /// Path of the streaming endpoint (`POST`); often the same.
    pub stream_path: String,
    /// Path of the models list (`GET`).
    pub models_path: String,
    /// Routes that make `is_available` true: `(method, path, reply)`.
    pub healthy: Vec<(String, String, MockReply)>,
    /// A successful non-streamed answer.
    pub completion: MockReply,
    /// Its text.
    pub completion_text: String,
    /// Its usage.
    pub completion_usage: Usage,
    /// Its finish reason.
    pub completion_finish: FinishReason,
    /// A successful streamed answer.
    pub stream: MockReply,
    /// Its text (concatenated deltas).
    pub stream_text: String,
    /// Its usage, when the stream reports one.
    pub stream_usage: Option<Usage>,
    /// A streamed answer in Chinese; the suite re-sends it in 1-byte chunks.
    pub stream_cjk: MockReply,
    /// Its text.
    pub stream_cjk_text: String,
    /// A stream that is well-formed HTTP but lacks its terminator.
    pub stream_truncated: MockReply,
    /// A stream carrying an error event after some text.
    pub stream_error: Option<MockReply>,
    /// The models list.
    pub models: MockReply,
    /// Its model ids.
    pub model_ids: Vec<String>,
    /// Bad key.
    pub unauthorized: MockReply,
    /// Unknown model.
    pub model_not_found: MockReply,
    /// Rate limited, with `retry-after`.
    pub rate_limited: MockReply,
    /// The wait the rate-limit reply asks for.
    pub rate_limited_wait: Duration,
    /// Internal error (500).
    pub server_error: MockReply,
    /// Unavailable (503).
    pub unavailable: MockReply,
    /// Overloaded (529), where the API has it.
    pub overloaded: Option<MockReply>,
    /// Request id that the error replies carry in their headers, if any.
    pub request_id: Option<String>,
}

/// A provider under test.
pub trait ConformanceTarget: Sync {
    /// The API's fixtures.
    fn fixtures(&self) -> Fixtures;
    /// An instance talking to `base_url` with the given per-attempt timeout,
    /// configured with the key [`secret`](Self::secret) returns.
    fn build(&self, base_url: &str, timeout: Duration) -> Result<Arc<dyn Provider>, ConfigError>;
    /// The API key the instance is built with (checked never to leak), if any.
    fn secret(&self) -> Option<&str>;
}

fn request() -> LlmRequest {
    LlmRequest::new("Say hello.").max_tokens(64)
}

async fn server_with(
    t: &impl ConformanceTarget,
    method: &str,
    path: &str,
    reply: MockReply,
) -> (MockServer, Arc<dyn Provider>) {
    let server = MockServer::start().await.expect("mock server");
    server.on(method, path, reply);
    for (m, p, r) in t.fixtures().healthy {
        server.on(&m, &p, r);
    }
    let provider = t
        .build(&server.url(), Duration::from_secs(10))
        .expect("provider builds");
    (server, provider)
}

fn assert_no_secret(t: &impl ConformanceTarget, what: &str, text: &str) {
    if let Some(secret) = t.secret() {
        assert!(
            !text.contains(secret),
            "the API key leaked into {what}: {text}"
        );
    }
}

/// A non-streamed answer: text, usage, finish reason, provider name; the key is sent, not leaked.
pub async fn generate(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let (server, p) = server_with(t, "POST", &f.generate_path, f.completion.clone()).await;
    let r = p.generate(&request()).await.expect("generate succeeds");
    assert_eq!(r.content, f.completion_text, "completion text");
    assert_eq!(r.usage, f.completion_usage, "completion usage");
    assert_eq!(r.finish_reason, f.completion_finish, "finish reason");
    assert_eq!(r.provider, p.name(), "provider name");
    assert_eq!(r.provider_kind, p.kind(), "provider kind");
    assert!(!r.model.is_empty(), "model is reported");
    let reqs = server.requests();
    let sent = reqs
        .iter()
        .find(|r| r.method == "POST")
        .expect("a POST was sent");
    assert!(sent.json().is_object(), "the request body is a JSON object");
    if let Some(secret) = t.secret() {
        let all: String = sent
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        assert!(all.contains(secret), "the API key is sent in a header");
    }
}

async fn collect(
    p: &Arc<dyn Provider>,
) -> (
    String,
    Option<Usage>,
    Option<FinishReason>,
    Option<ProviderError>,
    usize,
) {
    let mut text = String::new();
    let mut usage = None;
    let mut done = None;
    let mut after_done = 0;
    let stream = match p.stream(&request()).await {
        Ok(s) => s,
        Err(e) => return (text, usage, done, Some(e), 0),
    };
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if done.is_some() {
            after_done += 1;
        }
        match item {
            Ok(StreamEvent::Delta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Usage { usage: u }) => usage = Some(u),
            Ok(
                StreamEvent::ToolCall { .. }
                | StreamEvent::Logprobs { .. }
                | StreamEvent::Thinking { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. },
            ) => {}
            Ok(StreamEvent::Done { finish_reason }) => done = Some(finish_reason),
            Err(e) => return (text, usage, done, Some(e), after_done),
        }
    }
    (text, usage, done, None, after_done)
}

/// A streamed answer: deltas concatenate to the text, usage arrives, `Done` ends it.
pub async fn stream(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let (_server, p) = server_with(t, "POST", &f.stream_path, f.stream.clone()).await;
    let (text, usage, done, err, after) = collect(&p).await;
    assert!(err.is_none(), "stream error: {err:?}");
    assert_eq!(text, f.stream_text, "streamed text");
    assert_eq!(usage, f.stream_usage, "streamed usage");
    assert!(done.is_some(), "stream ends with Done");
    assert_eq!(after, 0, "nothing follows Done");
}

/// A Chinese stream sent one byte per chunk decodes intact.
pub async fn stream_utf8_split(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let bytes = f.stream_cjk.body_bytes();
    let pieces: Vec<Vec<u8>> = bytes.chunks(1).map(<[u8]>::to_vec).collect();
    let reply = f.stream_cjk.clone().with_body(MockBody::Chunks(pieces));
    let (_server, p) = server_with(t, "POST", &f.stream_path, reply).await;
    let (text, _, done, err, _) = collect(&p).await;
    assert!(err.is_none(), "stream error: {err:?}");
    assert_eq!(text, f.stream_cjk_text, "CJK text split mid-character");
    assert!(done.is_some(), "stream ends with Done");
}

/// A stream without its terminator is an error, never a clean end.
pub async fn stream_truncated(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let (_server, p) = server_with(t, "POST", &f.stream_path, f.stream_truncated.clone()).await;
    let (_, _, done, err, _) = collect(&p).await;
    assert!(done.is_none(), "a truncated stream must not end with Done");
    let err = err.expect("a truncated stream ends with an error item");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
}

/// A connection that breaks mid-stream is an error item.
pub async fn stream_broken(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let bytes = f.stream.body_bytes();
    let half = bytes.len() / 2;
    let reply = f
        .stream
        .clone()
        .with_body(MockBody::ChunksThenCut(vec![bytes[..half].to_vec()]));
    let (_server, p) = server_with(t, "POST", &f.stream_path, reply).await;
    let (_, _, done, err, _) = collect(&p).await;
    assert!(done.is_none(), "a broken stream must not end with Done");
    let err = err.expect("a broken stream ends with an error item");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
}

/// An error event inside a 200 stream is an error item.
pub async fn stream_error_event(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let Some(reply) = f.stream_error.clone() else {
        return;
    };
    let (_server, p) = server_with(t, "POST", &f.stream_path, reply).await;
    let (_, _, done, err, _) = collect(&p).await;
    assert!(done.is_none(), "an error event must not end with Done");
    assert!(err.is_some(), "an error event becomes an error item");
}

/// The models list.
pub async fn models(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let (_server, p) = server_with(t, "GET", &f.models_path, f.models.clone()).await;
    let mut got = p.models().await.expect("models succeeds");
    let mut want = f.model_ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "model ids");
}

/// `is_available` is true on a healthy server and false on a refused port.
pub async fn availability(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let (_server, p) = server_with(t, "GET", &f.models_path, f.models.clone()).await;
    assert!(p.is_available().await, "available on a healthy server");
    let refused = MockServer::refused_url().await.expect("free port");
    let p = t
        .build(&refused, Duration::from_secs(5))
        .expect("provider builds");
    assert!(!p.is_available().await, "unavailable on a refused port");
    let err = p
        .generate(&request())
        .await
        .expect_err("refused port fails");
    assert_eq!(err.kind, ProviderErrorKind::Connect, "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_no_secret(t, "a connection error", &err.to_string());
}

async fn expect_error(
    t: &impl ConformanceTarget,
    reply: MockReply,
    status: u16,
    class: ErrorClass,
) -> ProviderError {
    let f = t.fixtures();
    let (_server, p) = server_with(t, "POST", &f.generate_path, reply).await;
    let err = p
        .generate(&request())
        .await
        .expect_err("error status fails");
    assert_eq!(err.status, Some(status), "status of {err}");
    assert_eq!(err.class(), class, "class of {err}");
    assert_eq!(err.provider, p.name(), "provider named in {err}");
    assert!(!err.message.is_empty(), "a message");
    if let Some(id) = &f.request_id {
        assert_eq!(err.request_id.as_ref(), Some(id), "request id of {err}");
    }
    assert_no_secret(t, "an error", &format!("{err} {err:?}"));
    err
}

/// 401, 404 (unknown model), 429 with `Retry-After`, 500, 503 and 529 are classified.
pub async fn error_statuses(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let e = expect_error(t, f.unauthorized.clone(), 401, ErrorClass::Fallback).await;
    assert!(
        e.code.is_some() || !e.message.is_empty(),
        "401 carries the provider's code or message"
    );
    expect_error(t, f.model_not_found.clone(), 404, ErrorClass::Fallback).await;
    let e = expect_error(t, f.rate_limited.clone(), 429, ErrorClass::Retryable).await;
    assert_eq!(
        e.retry_after,
        Some(f.rate_limited_wait),
        "Retry-After of {e}"
    );
    expect_error(t, f.server_error.clone(), 500, ErrorClass::Retryable).await;
    expect_error(t, f.unavailable.clone(), 503, ErrorClass::Retryable).await;
    if let Some(r) = f.overloaded.clone() {
        expect_error(t, r, 529, ErrorClass::Retryable).await;
    }
}

/// A 200 whose body is not JSON, or is cut mid-JSON, is a decode or transport error.
pub async fn malformed_bodies(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let html = MockReply::new(200, "text/html", "<html><body>Bad gateway</body></html>");
    let (_s, p) = server_with(t, "POST", &f.generate_path, html).await;
    let err = p.generate(&request()).await.expect_err("HTML body fails");
    assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");

    let body = f.completion.body_bytes();
    let cut = f
        .completion
        .clone()
        .with_body(MockBody::Full(body[..body.len() / 2].to_vec()));
    let (_s, p) = server_with(t, "POST", &f.generate_path, cut).await;
    let err = p.generate(&request()).await.expect_err("cut JSON fails");
    assert_eq!(err.kind, ProviderErrorKind::Decode, "{err}");

    let truncated = f
        .completion
        .clone()
        .with_body(MockBody::Truncated(body[..body.len() / 2].to_vec()));
    let (_s, p) = server_with(t, "POST", &f.generate_path, truncated).await;
    let err = p
        .generate(&request())
        .await
        .expect_err("truncated body fails");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");

    let reset = f.completion.clone().with_body(MockBody::Reset);
    let (_s, p) = server_with(t, "POST", &f.generate_path, reset).await;
    let err = p.generate(&request()).await.expect_err("reset fails");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
}

/// A server that never answers times out with a typed error.
pub async fn timeout(t: &impl ConformanceTarget) {
    let f = t.fixtures();
    let server = MockServer::start().await.expect("mock server");
    server.on(
        "POST",
        &f.generate_path,
        f.completion.clone().with_body(MockBody::Hang),
    );
    server.on(
        "POST",
        &f.stream_path,
        f.completion.clone().with_body(MockBody::Hang),
    );
    let p = t
        .build(&server.url(), Duration::from_millis(300))
        .expect("provider builds");
    let err = p.generate(&request()).await.expect_err("hang times out");
    assert_eq!(err.kind, ProviderErrorKind::Timeout, "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    let (_, _, done, err, _) = collect(&p).await;
    assert!(done.is_none());
    assert_eq!(
        err.map(|e| e.kind),
        Some(ProviderErrorKind::Timeout),
        "stream hang times out"
    );
}

/// Generates one `#[tokio::test]` per conformance check for a target expression.
///
/// ```ignore
/// llm_core::conformance_tests!(MyTarget);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr) => {
        mod conformance {
            use super::*;
            #[tokio::test]
            async fn generate() {
                $crate::testing::conformance::generate(&$target).await
            }
            #[tokio::test]
            async fn stream() {
                $crate::testing::conformance::stream(&$target).await
            }
            #[tokio::test]
            async fn stream_utf8_split() {
                $crate::testing::conformance::stream_utf8_split(&$target).await
            }
            #[tokio::test]
            async fn stream_truncated() {
                $crate::testing::conformance::stream_truncated(&$target).await
            }
            #[tokio::test]
            async fn stream_broken() {
                $crate::testing::conformance::stream_broken(&$target).await
            }
            #[tokio::test]
            async fn stream_error_event() {
                $crate::testing::conformance::stream_error_event(&$target).await
            }
            #[tokio::test]
            async fn models() {
                $crate::testing::conformance::models(&$target).await
            }
            #[tokio::test]
            async fn availability() {
                $crate::testing::conformance::availability(&$target).await
            }
            #[tokio::test]
            async fn error_statuses() {
                $crate::testing::conformance::error_statuses(&$target).await
            }
            #[tokio::test]
            async fn malformed_bodies() {
                $crate::testing::conformance::malformed_bodies(&$target).await
            }
            #[tokio::test]
            async fn timeout() {
                $crate::testing::conformance::timeout(&$target).await
            }
        }
    };
}
