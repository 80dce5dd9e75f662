//! The NDJSON stream of `/api/chat` and `/api/generate`: one JSON object per
//! line, text as it comes, tool calls whole in the line before the last,
//! and a final `done: true` object with `done_reason`, token counts and
//! durations; after a failure, one `{"error":"…"}` line instead.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::StreamExt;
use llm_router::{
    FinishReason, LlmRequest, ProviderError, ResponseStream, StreamEvent, ToolCall, Usage,
};
use serde::Serialize;
use tokio::time::Instant;

use super::error::OllamaError;
use super::wire::{now, ChatChunk, ChatMessage, GenerateChunk, Stats, WireToolCall};
use crate::error::ApiError;
use crate::scrub::Scrubber;

/// Which endpoint's objects a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/api/chat`: `message` objects.
    Chat,
    /// `/api/generate`: `response` strings.
    Generate,
}

/// The content type of an NDJSON answer, as Ollama sends it.
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// One object as a line.
pub(crate) fn line<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(mut v) => {
            v.push(b'\n');
            Bytes::from(v)
        }
        Err(e) => error_line(&OllamaError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode a response line: {e}"),
        )),
    }
}

/// `{"error":"…"}` and a newline.
pub(crate) fn error_line(e: &OllamaError) -> Bytes {
    let mut s = e.body_json();
    s.push('\n');
    Bytes::from(s)
}

/// One object of the endpoint, text or tool calls or final stats.
pub(crate) fn object(
    kind: Kind,
    model: &str,
    content: &str,
    tool_calls: Vec<WireToolCall>,
    stats: Option<Stats>,
) -> Bytes {
    let done = stats.is_some();
    match kind {
        Kind::Chat => line(&ChatChunk {
            model,
            created_at: now(),
            message: ChatMessage {
                role: "assistant",
                content,
                tool_calls,
            },
            done,
            stats,
        }),
        Kind::Generate => line(&GenerateChunk {
            model,
            created_at: now(),
            response: content,
            done,
            stats,
        }),
    }
}

/// What a stream needs besides its events.
pub(crate) struct Meta {
    pub(crate) kind: Kind,
    /// The model name the client asked for.
    pub(crate) model: String,
    /// When the request arrived.
    pub(crate) entered: Instant,
    /// The request, to estimate usage when the provider reports none.
    pub(crate) request: LlmRequest,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) scrubber: Scrubber,
}

struct State {
    events: ResponseStream,
    meta: Meta,
    text: String,
    usage: Option<Usage>,
    /// Tool calls being assembled from their fragments, by index.
    calls: Vec<(u32, ToolCall)>,
    /// Time until the first generated text or tool call.
    first: Option<Duration>,
    ended: bool,
}

impl State {
    fn fail(&mut self, e: &ProviderError) -> Bytes {
        self.ended = true;
        let text = self.meta.scrubber.scrub(&e.to_string());
        tracing::warn!(error = %text, "upstream failed after the stream started");
        error_line(&OllamaError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upstream provider failed mid-stream: {text}"),
        ))
    }

    fn mark_first(&mut self) {
        if self.first.is_none() {
            self.first = Some(self.meta.entered.elapsed());
        }
    }

    /// The tool-call line (when the model called tools) and the final line.
    fn finish(&mut self, reason: &FinishReason) -> Bytes {
        self.ended = true;
        let mut out = Vec::new();
        let calls: Vec<WireToolCall> = self
            .calls
            .iter()
            .enumerate()
            .map(|(i, (_, c))| WireToolCall::new(i, c))
            .collect();
        if !calls.is_empty() {
            out.extend_from_slice(&object(self.meta.kind, &self.meta.model, "", calls, None));
        }
        let usage = self.usage.unwrap_or_else(|| {
            let mut answer = self.text.clone();
            for (_, c) in &self.calls {
                answer.push_str(&c.arguments);
            }
            llm_router::tokens::estimate_usage(&self.meta.request, &answer)
        });
        let stats = Stats::new(
            reason,
            usage,
            self.meta.entered.elapsed(),
            self.first.unwrap_or_default(),
        );
        out.extend_from_slice(&object(
            self.meta.kind,
            &self.meta.model,
            "",
            Vec::new(),
            Some(stats),
        ));
        Bytes::from(out)
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let item = match tokio::time::timeout_at(self.meta.deadline, self.events.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.ended = true;
                    tracing::warn!(provider = %self.events.provider, "stream cut at the request timeout");
                    let e: OllamaError = ApiError::timeout(self.meta.timeout).into();
                    return Some((error_line(&e), self));
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if text.is_empty() {
                        continue;
                    }
                    self.mark_first();
                    self.text.push_str(&text);
                    let out = object(self.meta.kind, &self.meta.model, &text, Vec::new(), None);
                    return Some((out, self));
                }
                Some(Ok(StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                })) => {
                    self.mark_first();
                    let slot = match self.calls.iter().position(|(i, _)| *i == index) {
                        Some(s) => s,
                        None => {
                            self.calls.push((
                                index,
                                ToolCall {
                                    id: String::new(),
                                    name: String::new(),
                                    arguments: String::new(),
                                },
                            ));
                            self.calls.len() - 1
                        }
                    };
                    let call = &mut self.calls[slot].1;
                    if let Some(id) = id {
                        call.id = id;
                    }
                    if let Some(name) = name {
                        call.name.push_str(&name);
                    }
                    call.arguments.push_str(&arguments);
                }
                Some(Ok(StreamEvent::Usage { usage })) => self.usage = Some(usage),
                Some(Ok(StreamEvent::Done { finish_reason })) => {
                    let out = self.finish(&finish_reason);
                    return Some((out, self));
                }
                Some(Ok(_)) => {}
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

/// The NDJSON body of a stream.
pub(crate) fn body(events: ResponseStream, meta: Meta) -> Body {
    let state = State {
        events,
        meta,
        text: String::new(),
        usage: None,
        calls: Vec::new(),
        first: None,
        ended: false,
    };
    Body::from_stream(futures::stream::unfold(state, State::next).map(Ok::<_, Infallible>))
}
