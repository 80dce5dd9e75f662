//! The Messages stream: the router's events → Anthropic's server-sent events
//! (`message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`; an `error` event,
//! and no `message_stop`, after a failure).
//!
//! Thinking: each thinking block of the answer is a `thinking` content block
//! (`{"type":"thinking","thinking":""}` at its start, then `thinking_delta`
//! and `signature_delta` deltas), each redacted one a `redacted_thinking`
//! block given whole at its start, as Anthropic streams them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use futures::StreamExt;
use llm_router::{LlmRequest, ProviderError, ResponseStream, StreamEvent, Usage};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::convert::stop_reason;
use super::wire::{ContentBlock, MessageObject, WireUsage};
use super::AnthropicError;
use crate::protocols::openai_chat::llm_headers;
use crate::scrub::Scrubber;

/// One `event:` + `data:` pair, ended by a blank line.
pub fn event<T: Serialize>(name: &str, payload: &T) -> Vec<u8> {
    let json = serde_json::to_string(payload).unwrap_or_else(|_| {
        r#"{"type":"error","error":{"type":"api_error","message":"cannot encode an event"}}"#
            .to_string()
    });
    let mut out = Vec::with_capacity(json.len() + name.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// `ping`, byte for byte as Anthropic sends it (with spaces).
const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// The `error` event for a failure after the `200`.
pub fn error_event(e: &AnthropicError) -> Vec<u8> {
    event("error", &e.envelope())
}

/// What a stream needs besides its events.
pub struct Meta {
    /// `msg_…`.
    pub id: String,
    /// The request, to estimate usage the provider does not report.
    pub request: LlmRequest,
    /// When the gateway's `request_timeout` passes.
    pub deadline: Instant,
    /// The `request_timeout`.
    pub timeout: Duration,
    /// Removes keys from upstream error text.
    pub scrubber: Scrubber,
}

/// The open content block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text(usize),
    Tool(usize),
    /// A `thinking` block, with the router's thinking index.
    Thinking(usize, u32),
    /// A `redacted_thinking` block (complete at its start).
    Redacted(usize),
}

enum Phase {
    Start,
    Body,
    End,
}

struct State {
    events: ResponseStream,
    meta: Meta,
    model: String,
    phase: Phase,
    open: Open,
    /// Blocks opened so far (the next block's index).
    blocks: usize,
    /// The router's tool-call index → its block's index.
    tool_blocks: BTreeMap<u32, usize>,
    /// Generated text and arguments, for a usage estimate.
    text: String,
    usage: Option<Usage>,
}

impl State {
    fn message_start(&self) -> Vec<u8> {
        let mut usage = WireUsage::from(llm_router::tokens::estimate_usage(&self.meta.request, ""));
        // A placeholder, as Anthropic's own `message_start` carries; the
        // final count is in `message_delta`.
        usage.output_tokens = 1;
        let message = MessageObject {
            id: &self.meta.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage,
        };
        event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        )
    }

    /// Closes the open block, if any.
    fn close(&mut self, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::None => return,
            Open::Text(i) | Open::Tool(i) | Open::Thinking(i, _) | Open::Redacted(i) => i,
        };
        self.open = Open::None;
        out.extend(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }

    /// Opens a new block (closing the open one); the first is followed by a `ping`.
    fn start(&mut self, block: ContentBlock<'_>, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        out.extend(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        if index == 0 {
            out.extend_from_slice(PING);
        }
        index
    }

    fn delta(index: usize, delta: Value, out: &mut Vec<u8>) {
        out.extend(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    fn text_delta(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let index = match self.open {
            Open::Text(i) => i,
            _ => {
                let i = self.start(ContentBlock::Text { text: "" }, &mut out);
                self.open = Open::Text(i);
                i
            }
        };
        Self::delta(index, json!({"type": "text_delta", "text": text}), &mut out);
        out
    }

    /// The block of the router's thinking block `thinking`, opened when it
    /// is not the open one.
    fn thinking_block(&mut self, thinking: u32, out: &mut Vec<u8>) -> usize {
        match self.open {
            Open::Thinking(i, t) if t == thinking => i,
            _ => {
                let block = ContentBlock::Thinking {
                    thinking: "",
                    signature: None,
                };
                let i = self.start(block, out);
                self.open = Open::Thinking(i, thinking);
                i
            }
        }
    }

    fn thinking_delta(&mut self, thinking: u32, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let index = self.thinking_block(thinking, &mut out);
        if !text.is_empty() {
            Self::delta(
                index,
                json!({"type": "thinking_delta", "thinking": text}),
                &mut out,
            );
        }
        out
    }

    fn signature_delta(&mut self, thinking: u32, signature: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let index = self.thinking_block(thinking, &mut out);
        Self::delta(
            index,
            json!({"type": "signature_delta", "signature": signature}),
            &mut out,
        );
        out
    }

    fn redacted(&mut self, data: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let i = self.start(ContentBlock::RedactedThinking { data }, &mut out);
        self.open = Open::Redacted(i);
        out
    }

    fn tool(&mut self, call: u32, id: Option<&str>, name: Option<&str>, args: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let index = match self.tool_blocks.get(&call) {
            Some(&i) => i,
            None => {
                let id = id.unwrap_or_default();
                let name = name.unwrap_or_default();
                let block = ContentBlock::ToolUse {
                    id,
                    name,
                    input: json!({}),
                };
                let i = self.start(block, &mut out);
                self.open = Open::Tool(i);
                self.tool_blocks.insert(call, i);
                // As Anthropic: the first fragment of the input is empty.
                Self::delta(
                    i,
                    json!({"type": "input_json_delta", "partial_json": ""}),
                    &mut out,
                );
                i
            }
        };
        if !args.is_empty() {
            Self::delta(
                index,
                json!({"type": "input_json_delta", "partial_json": args}),
                &mut out,
            );
        }
        out
    }

    fn finish(&mut self, reason: &'static str) -> Vec<u8> {
        let mut out = Vec::new();
        self.close(&mut out);
        let usage = self
            .usage
            .unwrap_or_else(|| llm_router::tokens::estimate_usage(&self.meta.request, &self.text));
        out.extend(event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": WireUsage::from(usage),
            }),
        ));
        out.extend(event("message_stop", &json!({"type": "message_stop"})));
        out
    }

    fn fail(&mut self, e: &ProviderError) -> Vec<u8> {
        let text = self.meta.scrubber.scrub(&e.to_string());
        tracing::warn!(error = %text, "upstream failed after the stream started");
        let message = format!("The upstream provider failed mid-stream: {text}");
        let overloaded = matches!(e.status, Some(503 | 529))
            || e.code.as_deref().is_some_and(|c| c.contains("overloaded"));
        let err = if overloaded {
            AnthropicError::overloaded(message)
        } else {
            AnthropicError::api(message)
        };
        error_event(&err)
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        match self.phase {
            Phase::End => return None,
            Phase::Start => {
                self.phase = Phase::Body;
                let out = self.message_start();
                return Some((Bytes::from(out), self));
            }
            Phase::Body => {}
        }
        loop {
            let item = match tokio::time::timeout_at(self.meta.deadline, self.events.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.phase = Phase::End;
                    tracing::warn!(provider = %self.events.provider, "stream cut at the request timeout");
                    let err = AnthropicError::api(format!(
                        "The request timed out after {:.1} s (the gateway's request_timeout).",
                        self.meta.timeout.as_secs_f64()
                    ));
                    return Some((Bytes::from(error_event(&err)), self));
                }
            };
            let out = match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if text.is_empty() {
                        continue;
                    }
                    self.text.push_str(&text);
                    self.text_delta(&text)
                }
                Some(Ok(StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                })) => {
                    self.text.push_str(&arguments);
                    let out = self.tool(index, id.as_deref(), name.as_deref(), &arguments);
                    if out.is_empty() {
                        continue;
                    }
                    out
                }
                Some(Ok(StreamEvent::Usage { usage })) => {
                    self.usage = Some(usage);
                    continue;
                }
                Some(Ok(StreamEvent::Thinking { index, text })) => {
                    self.text.push_str(&text);
                    self.thinking_delta(index, &text)
                }
                Some(Ok(StreamEvent::ThinkingSignature { index, signature })) => {
                    self.signature_delta(index, &signature)
                }
                Some(Ok(StreamEvent::RedactedThinking { data, .. })) => self.redacted(&data),
                // Not asked for by this protocol.
                Some(Ok(StreamEvent::Logprobs { .. })) => continue,
                Some(Ok(StreamEvent::Done { finish_reason })) => {
                    self.phase = Phase::End;
                    self.finish(stop_reason(&finish_reason))
                }
                Some(Err(e)) => {
                    self.phase = Phase::End;
                    self.fail(&e)
                }
                None => {
                    self.phase = Phase::End;
                    let e = ProviderError::incomplete(
                        self.events.provider.clone(),
                        "stream ended before it was complete",
                    );
                    self.fail(&e)
                }
            };
            return Some((Bytes::from(out), self));
        }
    }
}

/// The streamed answer.
pub fn event_stream(events: ResponseStream, meta: Meta) -> Response {
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
    if let Ok(v) = HeaderValue::from_str(&meta.id) {
        headers.insert("request-id", v);
    }
    let state = State {
        model: events.model.clone(),
        events,
        meta,
        phase: Phase::Start,
        open: Open::None,
        blocks: 0,
        tool_blocks: BTreeMap::new(),
        text: String::new(),
        usage: None,
    };
    let body = futures::stream::unfold(state, State::next).map(Ok::<_, Infallible>);
    let mut r = Response::new(Body::from_stream(body));
    *r.headers_mut() = headers;
    r
}
