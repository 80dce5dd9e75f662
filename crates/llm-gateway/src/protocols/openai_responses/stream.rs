//! The Responses API's typed server-sent events, encoded from the router's
//! stream events: `response.created`, `response.in_progress`, then per output
//! item `response.output_item.added`, (for a message)
//! `response.content_part.added`, `response.output_text.delta`…,
//! `response.output_text.done`, `response.content_part.done`, (for a function
//! call) `response.function_call_arguments.delta`…,
//! `response.function_call_arguments.done`, then `response.output_item.done`;
//! last `response.completed` (or `response.incomplete` when the answer was cut
//! at `max_output_tokens`). Every event is `event: <type>` and `data: <json>`
//! with a `sequence_number` counting from 0, as OpenAI streams them
//! (<https://platform.openai.com/docs/api-reference/responses-streaming>;
//! openai-python `types/responses/response_stream_event.py`). A failure after
//! the first byte ends the stream with `response.failed` (status `failed`
//! and an `error` object), never with a completion.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use futures::StreamExt;
use llm_router::{
    FinishReason, LlmRequest, ProviderError, ResponseStream, StreamEvent, ToolCall, Usage,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::wire::{self, new_id, Echo, ResponseObject};
use crate::error::ApiError;
use crate::protocols::openai_chat::{llm_headers, stream_error};
use crate::scrub::Scrubber;

/// What a stream needs besides its events.
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) echo: Echo,
    /// The request, kept to estimate usage when the provider reports none.
    pub(crate) request: LlmRequest,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) scrubber: Scrubber,
}

/// The output item being streamed.
enum Open {
    /// A message; its text so far.
    Text {
        item_id: String,
        output_index: usize,
        text: String,
    },
    /// A function call; the router's call index and the call so far.
    Call {
        item_id: String,
        output_index: usize,
        index: u32,
        call: ToolCall,
    },
}

enum Phase {
    Start,
    Body,
    End,
}

struct Encoder {
    events: ResponseStream,
    meta: Meta,
    model: String,
    seq: u64,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<Open>,
    usage: Option<Usage>,
    /// Everything generated, to estimate usage when the provider reports none.
    generated: String,
    phase: Phase,
}

impl Encoder {
    /// Appends one event (`type` and `sequence_number` added) to `out`.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut body: Value) {
        if let Value::Object(m) = &mut body {
            m.insert("type".into(), json!(kind));
            m.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // A `Value` always serializes.
        out.extend_from_slice(body.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn snapshot(
        &self,
        status: &str,
        incomplete: Option<&str>,
        error: Option<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut output = self.output.clone();
        if status == "failed" {
            // Items cut by the failure stay as they were when it happened.
            match &self.open {
                Some(Open::Text { item_id, text, .. }) => {
                    output.push(wire::message_item(item_id, "incomplete", text));
                }
                Some(Open::Call { item_id, call, .. }) => {
                    output.push(wire::function_call_item(item_id, call, "incomplete"));
                }
                None => {}
            }
        }
        ResponseObject {
            id: &self.meta.id,
            created_at: self.meta.created,
            status,
            incomplete,
            error,
            model: &self.model,
            output,
            usage,
            echo: &self.meta.echo,
        }
        .to_value()
    }

    /// Closes the open item, if any (`item_status` for a message).
    fn close(&mut self, out: &mut Vec<u8>, item_status: &str) {
        match self.open.take() {
            None => {}
            Some(Open::Text {
                item_id,
                output_index,
                text,
            }) => {
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                           "part": wire::output_text(&text)}),
                );
                let item = wire::message_item(&item_id, item_status, &text);
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": output_index, "item": item}),
                );
                self.output.push(item);
            }
            Some(Open::Call {
                item_id,
                output_index,
                call,
                ..
            }) => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "name": call.name, "arguments": call.arguments}),
                );
                let item = wire::function_call_item(&item_id, &call, "completed");
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": output_index, "item": item}),
                );
                self.output.push(item);
            }
        }
    }

    fn text(&mut self, out: &mut Vec<u8>, delta: &str) {
        if !matches!(self.open, Some(Open::Text { .. })) {
            self.close(out, "completed");
            let item_id = new_id("msg");
            let output_index = self.output.len();
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": output_index, "item": {
                    "id": item_id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}}),
            );
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                       "part": wire::output_text("")}),
            );
            self.open = Some(Open::Text {
                item_id,
                output_index,
                text: String::new(),
            });
        }
        let Some(Open::Text {
            item_id,
            output_index,
            text,
        }) = &mut self.open
        else {
            return;
        };
        text.push_str(delta);
        let body = json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                          "delta": delta, "logprobs": []});
        self.emit(out, "response.output_text.delta", body);
    }

    fn tool_call(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: &str,
    ) {
        let same = matches!(&self.open, Some(Open::Call { index: i, .. }) if *i == index);
        if !same {
            self.close(out, "completed");
            let item_id = new_id("fc");
            let output_index = self.output.len();
            let call = ToolCall {
                id: id
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| new_id("call")),
                name: name.unwrap_or_default(),
                arguments: String::new(),
            };
            let item = wire::function_call_item(&item_id, &call, "in_progress");
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
            );
            self.open = Some(Open::Call {
                item_id,
                output_index,
                index,
                call,
            });
        }
        if arguments.is_empty() {
            return;
        }
        let Some(Open::Call {
            item_id,
            output_index,
            call,
            ..
        }) = &mut self.open
        else {
            return;
        };
        call.arguments.push_str(arguments);
        let body = json!({"item_id": item_id, "output_index": output_index, "delta": arguments});
        self.emit(out, "response.function_call_arguments.delta", body);
    }

    fn finish(&mut self, out: &mut Vec<u8>, reason: &FinishReason) {
        let (status, incomplete) = wire::status(reason);
        self.close(out, status);
        let usage = self.usage.unwrap_or_else(|| {
            llm_router::tokens::estimate_usage(&self.meta.request, &self.generated)
        });
        let response = self.snapshot(status, incomplete, None, Some(&usage));
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, kind, json!({ "response": response }));
    }

    fn fail(&mut self, out: &mut Vec<u8>, err: &ApiError) {
        let error = json!({"code": err.code.unwrap_or("server_error"), "message": err.message});
        let response = self.snapshot("failed", None, Some(error), None);
        self.emit(out, "response.failed", json!({ "response": response }));
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        let mut out = Vec::new();
        match self.phase {
            Phase::End => return None,
            Phase::Start => {
                self.phase = Phase::Body;
                let response = self.snapshot("in_progress", None, None, None);
                self.emit(
                    &mut out,
                    "response.created",
                    json!({ "response": response.clone() }),
                );
                self.emit(
                    &mut out,
                    "response.in_progress",
                    json!({ "response": response }),
                );
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
                    let err = ApiError::timeout(self.meta.timeout);
                    self.fail(&mut out, &err);
                    return Some((Bytes::from(out), self));
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if text.is_empty() {
                        continue;
                    }
                    self.generated.push_str(&text);
                    self.text(&mut out, &text);
                }
                Some(Ok(StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                })) => {
                    self.generated.push_str(&arguments);
                    self.tool_call(&mut out, index, id, name, &arguments);
                }
                Some(Ok(StreamEvent::Usage { usage })) => self.usage = Some(usage),
                Some(Ok(StreamEvent::Done { finish_reason })) => {
                    self.phase = Phase::End;
                    self.finish(&mut out, &finish_reason);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.phase = Phase::End;
                    let err = stream_error(&e, &self.meta.scrubber);
                    self.fail(&mut out, &err);
                }
                None => {
                    self.phase = Phase::End;
                    let e = ProviderError::incomplete(
                        self.events.provider.clone(),
                        "stream ended before it was complete",
                    );
                    let err = stream_error(&e, &self.meta.scrubber);
                    self.fail(&mut out, &err);
                }
            }
            if !out.is_empty() {
                return Some((Bytes::from(out), self));
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
    let encoder = Encoder {
        model: events.model.clone(),
        events,
        meta,
        seq: 0,
        output: Vec::new(),
        open: None,
        usage: None,
        generated: String::new(),
        phase: Phase::Start,
    };
    let body = futures::stream::unfold(encoder, Encoder::next).map(Ok::<_, Infallible>);
    let mut r = Response::new(Body::from_stream(body));
    *r.headers_mut() = headers;
    r
}
