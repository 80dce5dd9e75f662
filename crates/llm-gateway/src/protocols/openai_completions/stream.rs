//! Server-sent `text_completion` chunks: one per text delta (`finish_reason`
//! null), then one with the finish reason, a usage chunk (empty `choices`)
//! when `stream_options.include_usage` asked for it, and `data: [DONE]`.
//! A failure after the first byte ends the stream with
//! `data: {"error":{…}}` and no `[DONE]`.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use futures::StreamExt;
use llm_router::{LlmRequest, ProviderError, ResponseStream, StreamEvent, Usage};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::wire;
use crate::error::ApiError;
use crate::protocols::openai_chat::wire::finish_reason;
use crate::protocols::openai_chat::{llm_headers, stream_error};
use crate::scrub::Scrubber;

/// What a stream needs besides its events.
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) created: u64,
    /// With `include_usage`: the request, to estimate usage when the provider reports none.
    pub(crate) estimate_from: Option<LlmRequest>,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) scrubber: Scrubber,
}

struct State {
    events: ResponseStream,
    meta: Meta,
    model: String,
    text: String,
    usage: Option<Usage>,
    done: bool,
}

fn data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

impl State {
    fn chunk(&self, text: &str, finish: Option<&str>) -> Bytes {
        data(&wire::object(
            &self.meta.id,
            self.meta.created,
            &self.model,
            text,
            finish,
            None,
        ))
    }

    fn fail(&mut self, e: &ProviderError) -> Bytes {
        self.done = true;
        let err = stream_error(e, &self.meta.scrubber);
        Bytes::from(format!("data: {}\n\n", err.body_json()))
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        if self.done {
            return None;
        }
        loop {
            let item = match tokio::time::timeout_at(self.meta.deadline, self.events.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.done = true;
                    let err = ApiError::timeout(self.meta.timeout);
                    let out = Bytes::from(format!("data: {}\n\n", err.body_json()));
                    return Some((out, self));
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if text.is_empty() {
                        continue;
                    }
                    let out = self.chunk(&text, None);
                    if self.meta.estimate_from.is_some() {
                        self.text.push_str(&text);
                    }
                    return Some((out, self));
                }
                Some(Ok(StreamEvent::Usage { usage })) => self.usage = Some(usage),
                Some(Ok(StreamEvent::Done { finish_reason: r })) => {
                    self.done = true;
                    let mut out = self.chunk("", Some(finish_reason(&r))).to_vec();
                    if let Some(req) = &self.meta.estimate_from {
                        let usage = self
                            .usage
                            .unwrap_or_else(|| llm_router::tokens::estimate_usage(req, &self.text));
                        let v = json!({
                            "id": self.meta.id, "object": "text_completion",
                            "created": self.meta.created, "model": self.model,
                            "choices": [], "usage": wire::usage(&usage),
                        });
                        out.extend_from_slice(&data(&v));
                    }
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    return Some((Bytes::from(out), self));
                }
                // Tools are never asked for by this door; log probabilities are not offered.
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    let out = self.fail(&e);
                    return Some((out, self));
                }
                None => {
                    let e = ProviderError::incomplete(
                        self.events.provider.clone(),
                        "stream ended before it was complete",
                    );
                    let out = self.fail(&e);
                    return Some((out, self));
                }
            }
        }
    }
}

/// The `text/event-stream` answer for an opened stream.
pub(crate) fn event_stream(events: ResponseStream, meta: Meta) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    llm_headers(
        &mut headers,
        &events.provider,
        events.cached,
        events.attempts.len(),
        &meta.id,
    );
    let state = State {
        model: events.model.clone(),
        events,
        meta,
        text: String::new(),
        usage: None,
        done: false,
    };
    let body = futures::stream::unfold(state, State::next).map(Ok::<_, Infallible>);
    let mut r = Response::new(Body::from_stream(body));
    *r.headers_mut() = headers;
    r
}
