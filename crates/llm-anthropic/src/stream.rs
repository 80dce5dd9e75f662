//! Decoder of the Messages API event stream.
//!
//! `message_start` carries the input usage, `content_block_delta` events with a
//! `text_delta` carry the text, `message_delta` carries the stop reason and the
//! cumulative output usage, and `message_stop` is the only real end: it yields
//! `Usage` then `Done`. `ping` and unknown events are ignored. An `error` event
//! becomes an `Err` item and ends the stream; a stream that stops before
//! `message_stop` ends with an `Incomplete` error.
//!
//! Tool calls: a `content_block_start` with a `tool_use` block yields the
//! first fragment (id, name, no arguments) of call *n*, where *n* counts
//! `tool_use` blocks only (0, 1, …), not Anthropic's block index; each
//! `input_json_delta` of that block yields a fragment with its
//! `partial_json`. A tool block with no argument text yields `{}` (or the
//! block's non-empty start `input`) at its stop. Whether the joined arguments
//! form a JSON object is noted at the block's stop and judged at
//! `message_stop`: an answer cut short (`stop_reason` `max_tokens`,
//! `model_context_window_exceeded` or `refusal`) ends normally (its `Done`
//! says e.g. `Length`), its partial arguments already streamed as fragments;
//! any other end with such arguments is a `Decode` error item instead of
//! `Done`.
//!
//! Thinking: a `content_block_start` with a `thinking` block yields a
//! [`StreamEvent::Thinking`] (its start text, normally empty) for thinking
//! block *n*, where *n* counts `thinking` and `redacted_thinking` blocks
//! only; each `thinking_delta` yields a `Thinking` fragment and each
//! `signature_delta` a [`StreamEvent::ThinkingSignature`]. A
//! `redacted_thinking` block arrives whole in its `content_block_start` and
//! yields one [`StreamEvent::RedactedThinking`].
//!
//! Structured output: the `tool_use` block of the tool that carries the
//! answer (`response_format`) is not a tool call: its `input_json_delta`
//! pieces are text deltas, and a `tool_use` end with no other call is `Stop`.
//!
//! Usage: `message_start` and every `message_delta` may report counts
//! (`input_tokens`, the cache fields, `output_tokens`); each reported count
//! replaces the previous one. Counts reported before an `error` event are
//! yielded as a `Usage` item just before the error item.

use std::collections::{BTreeMap, VecDeque};

use futures::{Stream, TryStreamExt};
use llm_core::http::{decode_frames, FrameDecoder, SseEvent};
use llm_core::provider_kit::arguments_object;
use llm_core::{FinishReason, ProviderError, StreamEvent, Usage};

use crate::error;
use crate::wire::{self, StreamPayload};

/// Event names the decoder understands; other events are skipped.
const KNOWN: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

/// State of one streamed answer.
#[derive(Debug)]
pub(crate) struct Decoder {
    provider: String,
    request_id: Option<String>,
    /// Counts reported so far (the latest of each).
    usage: wire::WireUsage,
    stop_reason: Option<String>,
    /// The tool whose input is the answer (`response_format`).
    format_tool: Option<String>,
    /// Whether the format tool's block was seen.
    format_used: bool,
    /// Open `tool_use` blocks by Anthropic's block index.
    tools: BTreeMap<u64, ToolBlock>,
    /// Ordinal of the next `tool_use` block.
    next_tool: u32,
    /// Open `thinking` blocks by Anthropic's block index → their ordinal.
    thinking: BTreeMap<u64, u32>,
    /// Ordinal of the next `thinking`/`redacted_thinking` block.
    next_thinking: u32,
    /// What is wrong with the first closed tool call whose arguments are
    /// not a JSON object; an error at `message_stop` unless the answer was cut.
    bad_tool: Option<String>,
    done: bool,
}

/// An open `tool_use` block.
#[derive(Debug)]
struct ToolBlock {
    /// Our call index (unused for the format tool).
    ordinal: u32,
    /// The block of the format tool: its arguments are the answer's text.
    format: bool,
    id: String,
    name: String,
    /// Argument text streamed so far.
    arguments: String,
    /// The `input` of `content_block_start` (normally `{}`).
    start_input: Option<serde_json::Value>,
}

impl Decoder {
    /// A decoder for `provider`; `request_id` (from the response headers) is
    /// attached to the errors it yields.
    pub(crate) fn new(provider: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            provider: provider.into(),
            request_id,
            usage: wire::WireUsage::default(),
            stop_reason: None,
            format_tool: None,
            format_used: false,
            tools: BTreeMap::new(),
            next_tool: 0,
            thinking: BTreeMap::new(),
            next_thinking: 0,
            bad_tool: None,
            done: false,
        }
    }

    /// Streams the `tool_use` block named `name` as the answer's text.
    pub(crate) fn with_format_tool(mut self, name: Option<String>) -> Self {
        self.format_tool = name;
        self
    }

    /// Whether `message_stop` has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Usage reported so far, if any.
    fn usage(&self) -> Option<Usage> {
        self.usage.is_reported().then(|| self.usage.to_usage())
    }

    fn record_usage(&mut self, usage: &wire::WireUsage) {
        self.usage.update(usage);
    }

    /// Handles one event; the events to emit, or the error that ends the stream.
    pub(crate) fn on_event(&mut self, ev: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        if ev.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let payload: StreamPayload = match serde_json::from_str(&ev.data) {
            Ok(p) => p,
            Err(e) if KNOWN.contains(&ev.event.as_str()) => {
                return Err(ProviderError::decode(
                    &self.provider,
                    format!("invalid `{}` event ({e})", ev.event),
                )
                .with_request_id(self.request_id.clone()))
            }
            Err(_) => return Ok(Vec::new()),
        };
        let kind = payload.kind.clone().unwrap_or_else(|| ev.event.clone());
        if kind == "error" || ev.event == "error" {
            let id = payload.request_id.or_else(|| self.request_id.clone());
            return Err(error::from_event(&self.provider, payload.error, id));
        }
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                if let Some(m) = &payload.message {
                    self.record_usage(&m.usage);
                }
            }
            "content_block_start" => {
                if let Some(b) = payload.content_block {
                    if b.is_tool_use() {
                        out.extend(self.start_tool(payload.index, b)?);
                    } else if b.kind.as_deref() == Some("text") {
                        push_text(&mut out, b.text);
                    } else if let Some(block) = b.thinking_block() {
                        self.start_thinking(payload.index, block, &mut out);
                    }
                }
            }
            "content_block_delta" => {
                if let Some(d) = payload.delta {
                    match d.kind.as_deref() {
                        Some("text_delta") => push_text(&mut out, d.text),
                        Some("thinking_delta") => {
                            let index = payload.index.and_then(|i| self.thinking.get(&i));
                            let text = d.thinking.filter(|t| !t.is_empty());
                            if let (Some(&index), Some(text)) = (index, text) {
                                out.push(StreamEvent::Thinking { index, text });
                            }
                        }
                        Some("signature_delta") => {
                            let index = payload.index.and_then(|i| self.thinking.get(&i));
                            let signature = d.signature.filter(|s| !s.is_empty());
                            if let (Some(&index), Some(signature)) = (index, signature) {
                                out.push(StreamEvent::ThinkingSignature { index, signature });
                            }
                        }
                        Some("input_json_delta") => {
                            let block = payload.index.and_then(|i| self.tools.get_mut(&i));
                            let fragment = d.partial_json.filter(|j| !j.is_empty());
                            if let (Some(block), Some(json)) = (block, fragment) {
                                block.arguments.push_str(&json);
                                out.push(if block.format {
                                    StreamEvent::Delta { text: json }
                                } else {
                                    StreamEvent::ToolCall {
                                        index: block.ordinal,
                                        id: None,
                                        name: None,
                                        arguments: json,
                                    }
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            "content_block_stop" => {
                if let Some(i) = payload.index {
                    self.thinking.remove(&i);
                }
                if let Some(block) = payload.index.and_then(|i| self.tools.remove(&i)) {
                    out.extend(self.finish_tool(block));
                }
            }
            "message_delta" => {
                if let Some(reason) = payload.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(u) = &payload.usage {
                    self.record_usage(u);
                }
            }
            "message_stop" => {
                // Blocks the server never closed are closed here.
                let open = std::mem::take(&mut self.tools);
                for block in open.into_values() {
                    out.extend(self.finish_tool(block));
                }
                if let Some(problem) = &self.bad_tool {
                    if !wire::is_cut(self.stop_reason.as_deref()) {
                        let reason = self.stop_reason.as_deref().unwrap_or("none");
                        return Err(self.decode_error(format!(
                            "{problem} (the answer claims a complete end, `stop_reason` `{reason}`)"
                        )));
                    }
                }
                self.done = true;
                if let Some(usage) = self.usage() {
                    out.push(StreamEvent::Usage { usage });
                }
                out.push(StreamEvent::Done {
                    finish_reason: self.finish_reason(),
                });
            }
            other => tracing::trace!(event = other, "ignored Anthropic stream event"),
        }
        Ok(out)
    }

    /// Opens a `thinking` block (its start text, possibly empty, and any
    /// start signature) or yields a whole `redacted_thinking` block.
    fn start_thinking(
        &mut self,
        index: Option<u64>,
        block: llm_core::ThinkingBlock,
        out: &mut Vec<StreamEvent>,
    ) {
        let ordinal = self.next_thinking;
        self.next_thinking = self.next_thinking.saturating_add(1);
        match block {
            llm_core::ThinkingBlock::Thinking {
                thinking,
                signature,
            } => {
                if let Some(i) = index {
                    self.thinking.insert(i, ordinal);
                }
                out.push(StreamEvent::Thinking {
                    index: ordinal,
                    text: thinking,
                });
                if !signature.is_empty() {
                    out.push(StreamEvent::ThinkingSignature {
                        index: ordinal,
                        signature,
                    });
                }
            }
            llm_core::ThinkingBlock::RedactedThinking { data } => {
                out.push(StreamEvent::RedactedThinking {
                    index: ordinal,
                    data,
                });
            }
        }
    }

    /// Opens a `tool_use` block: its first fragment (id and name); nothing
    /// for the format tool's block.
    fn start_tool(
        &mut self,
        index: Option<u64>,
        block: wire::ContentBlock,
    ) -> Result<Option<StreamEvent>, ProviderError> {
        let (id, name) = block
            .tool_id_and_name()
            .map_err(|e| self.decode_error(format!("in `content_block_start`: {e}")))?;
        let index = index.ok_or_else(|| {
            self.decode_error(format!(
                "`content_block_start` of tool call `{id}` has no `index`"
            ))
        })?;
        let format = self.format_tool.as_deref() == Some(name.as_str());
        let ordinal = if format {
            self.format_used = true;
            0
        } else {
            let ordinal = self.next_tool;
            self.next_tool = self.next_tool.saturating_add(1);
            ordinal
        };
        self.tools.insert(
            index,
            ToolBlock {
                ordinal,
                format,
                id: id.clone(),
                name: name.clone(),
                arguments: String::new(),
                start_input: block.input,
            },
        );
        Ok((!format).then_some(StreamEvent::ToolCall {
            index: ordinal,
            id: Some(id),
            name: Some(name),
            arguments: String::new(),
        }))
    }

    /// Closes a `tool_use` block: a block that streamed no arguments gets one
    /// fragment with its start `input` (`{}` normally). Arguments that are not
    /// a JSON object are noted in `bad_tool`, not failed on: a cut answer
    /// legitimately ends with partial arguments.
    fn finish_tool(&mut self, block: ToolBlock) -> Option<StreamEvent> {
        let problem = if block.arguments.trim().is_empty() {
            match wire::input_text(&block.id, block.start_input.as_ref()) {
                Ok(text) if block.format => return Some(StreamEvent::Delta { text }),
                Ok(arguments) => {
                    return Some(StreamEvent::ToolCall {
                        index: block.ordinal,
                        id: None,
                        name: None,
                        arguments,
                    })
                }
                Err(e) => e,
            }
        } else {
            let problem = match arguments_object(&block.arguments) {
                Ok(_) => return None,
                Err(e) => e,
            };
            format!(
                "the streamed arguments of tool call `{}` (`{}`) are {problem}: {}",
                block.id,
                block.name,
                wire::truncate(&block.arguments)
            )
        };
        self.bad_tool.get_or_insert(problem);
        None
    }

    fn decode_error(&self, message: String) -> ProviderError {
        ProviderError::decode(&self.provider, message).with_request_id(self.request_id.clone())
    }

    /// The mapped `stop_reason`; a `tool_use` end whose only call was the
    /// format tool is a structured answer, so `Stop`.
    fn finish_reason(&self) -> FinishReason {
        match wire::finish_reason(self.stop_reason.as_deref()) {
            FinishReason::ToolCalls if self.format_used && self.next_tool == 0 => {
                FinishReason::Stop
            }
            other => other,
        }
    }

    /// The error for a stream that ended before `message_stop`.
    pub(crate) fn incomplete(&self) -> ProviderError {
        ProviderError::incomplete(&self.provider, "the stream ended before `message_stop`")
            .with_request_id(self.request_id.clone())
    }
}

fn push_text(out: &mut Vec<StreamEvent>, text: Option<String>) {
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        out.push(StreamEvent::Delta { text: t });
    }
}

impl FrameDecoder for Decoder {
    type Frame = SseEvent;

    fn frame(
        &mut self,
        ev: SseEvent,
        out: &mut VecDeque<Result<StreamEvent, ProviderError>>,
    ) -> bool {
        match self.on_event(&ev) {
            Ok(events) => {
                out.extend(events.into_iter().map(Ok));
                self.is_done()
            }
            Err(e) => {
                // Tokens reported before the error were consumed: keep them.
                if let Some(usage) = self.usage() {
                    out.push_back(Ok(StreamEvent::Usage { usage }));
                }
                out.push_back(Err(e));
                true
            }
        }
    }

    fn incomplete(&self) -> ProviderError {
        Decoder::incomplete(self)
    }
}

/// Turns server-sent events into stream events.
pub(crate) fn decode<S>(
    events: S,
    decoder: Decoder,
) -> impl Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static
where
    S: Stream<Item = Result<SseEvent, ProviderError>> + Send + Unpin + 'static,
{
    // A broken connection carries the response's request id, for support tickets.
    let id = decoder.request_id.clone();
    let events = events.map_err(move |e| {
        let id = e.request_id.clone().or_else(|| id.clone());
        e.with_request_id(id)
    });
    decode_frames(events, decoder)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::StreamExt;
    use llm_core::ErrorClass;

    fn ev(name: &str, data: &str) -> SseEvent {
        SseEvent {
            event: name.into(),
            data: data.into(),
            ..SseEvent::default()
        }
    }

    async fn run(events: Vec<SseEvent>) -> Vec<Result<StreamEvent, ProviderError>> {
        let s = futures::stream::iter(events.into_iter().map(Ok));
        decode(s, Decoder::new("a", Some("req_1".into())))
            .collect()
            .await
    }

    #[tokio::test]
    async fn usage_is_cumulative_and_includes_cache_tokens() {
        let out = run(vec![
            ev("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":20,"output_tokens":1}}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#),
            ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":7}}"#),
            ev("message_delta", r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":9}}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after"}}"#),
        ])
        .await;
        let out: Vec<StreamEvent> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            out,
            vec![
                StreamEvent::delta("x"),
                StreamEvent::Usage {
                    usage: Usage::new(123, 9).with_cache(20, 100)
                },
                StreamEvent::Done {
                    finish_reason: FinishReason::Length
                },
            ]
        );
    }

    #[tokio::test]
    async fn unknown_and_non_text_events_are_ignored() {
        let out = run(vec![
            ev("ping", r#"{"type": "ping"}"#),
            ev("brand_new_event", "not json"),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ])
        .await;
        let out: Vec<StreamEvent> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            out,
            vec![StreamEvent::Done {
                finish_reason: FinishReason::Other("unknown".into())
            }]
        );
    }

    #[tokio::test]
    async fn error_event_ends_the_stream_with_a_classified_error() {
        let out = run(vec![
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
            ev("error", r#"{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ])
        .await;
        assert_eq!(out.len(), 2);
        let err = out[1].clone().unwrap_err();
        assert_eq!(err.code.as_deref(), Some("overloaded_error"));
        assert!(matches!(out[0], Ok(StreamEvent::Delta { .. })), "{out:?}");
        assert_eq!(err.status, Some(529));
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(err.request_id.as_deref(), Some("req_1"));
        assert!(err.message.contains("Overloaded"), "{err}");
    }

    #[tokio::test]
    async fn missing_message_stop_is_incomplete() {
        let out = run(vec![ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
        )])
        .await;
        assert_eq!(out.len(), 1);
        let err = out[0].clone().unwrap_err();
        assert_eq!(err.kind, llm_core::ProviderErrorKind::Incomplete);
        assert_eq!(err.class(), ErrorClass::Retryable);
    }

    #[tokio::test]
    async fn tool_blocks_get_ordinals_start_input_and_are_closed_at_message_stop() {
        let fragment = |index: u32, id: Option<&str>, args: &str| StreamEvent::ToolCall {
            index,
            id: id.map(Into::into),
            name: id.map(|_| "f".into()),
            arguments: args.into(),
        };
        let out = run(vec![
            // A whole input in the start event (no deltas), then a block the
            // server never closes.
            ev("content_block_start", r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":3}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":5,"content_block":{"type":"tool_use","id":"t2","name":"f","input":{}}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ])
        .await;
        let out: Vec<StreamEvent> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            out,
            vec![
                fragment(0, Some("t1"), ""),
                fragment(0, None, r#"{"a":1}"#),
                fragment(1, Some("t2"), ""),
                fragment(1, None, "{}"),
                StreamEvent::Done {
                    finish_reason: FinishReason::Other("unknown".into())
                },
            ]
        );

        let out = run(vec![ev(
            "content_block_start",
            r#"{"type":"content_block_start","content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
        )])
        .await;
        let err = out[0].clone().unwrap_err();
        assert_eq!(err.kind, llm_core::ProviderErrorKind::Decode);
        assert!(err.message.contains("no `index`"), "{err}");
        assert_eq!(err.request_id.as_deref(), Some("req_1"));
    }

    #[tokio::test]
    async fn partial_arguments_are_an_error_only_when_the_answer_claims_a_complete_end() {
        let events = |reason: &str| {
            vec![
                ev(
                    "content_block_start",
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
                ),
                ev(
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\": \"b"}}"#,
                ),
                ev(
                    "content_block_stop",
                    r#"{"type":"content_block_stop","index":0}"#,
                ),
                // A later block with a start `input` that is not an object.
                ev(
                    "content_block_start",
                    r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t2","name":"f","input":"x"}}"#,
                ),
                ev(
                    "message_delta",
                    &format!(
                        r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{{"output_tokens":7}}}}"#
                    ),
                ),
                ev("message_stop", r#"{"type":"message_stop"}"#),
            ]
        };
        for (reason, finish) in [
            ("max_tokens", FinishReason::Length),
            ("refusal", FinishReason::ContentFilter),
            ("model_context_window_exceeded", FinishReason::Length),
        ] {
            let out: Vec<StreamEvent> = run(events(reason))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                out,
                vec![
                    StreamEvent::ToolCall {
                        index: 0,
                        id: Some("t1".into()),
                        name: Some("f".into()),
                        arguments: String::new(),
                    },
                    StreamEvent::ToolCall {
                        index: 0,
                        id: None,
                        name: None,
                        arguments: r#"{"a": "b"#.into(),
                    },
                    StreamEvent::ToolCall {
                        index: 1,
                        id: Some("t2".into()),
                        name: Some("f".into()),
                        arguments: String::new(),
                    },
                    StreamEvent::Usage {
                        usage: Usage::new(0, 7)
                    },
                    StreamEvent::Done {
                        finish_reason: finish
                    },
                ],
                "{reason}"
            );
        }
        for reason in ["tool_use", "end_turn", "stop_sequence", "pause_turn"] {
            let out = run(events(reason)).await;
            let (last, before) = out.split_last().unwrap();
            // The fragments, then the usage reported, then the error.
            assert_eq!(before.len(), 4, "{reason}: {out:?}");
            assert!(before.iter().all(Result::is_ok), "{reason}: {out:?}");
            assert_eq!(
                before[3].as_ref().unwrap(),
                &StreamEvent::Usage {
                    usage: Usage::new(0, 7)
                }
            );
            let err = last.clone().unwrap_err();
            assert_eq!(err.kind, llm_core::ProviderErrorKind::Decode);
            assert_eq!(err.request_id.as_deref(), Some("req_1"));
            // The first bad call is named, with the claimed end.
            assert!(
                err.message
                    .contains("tool call `t1` (`f`) are not valid JSON"),
                "{err}"
            );
            assert!(
                err.message.contains(&format!("`stop_reason` `{reason}`")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn malformed_known_event_is_a_decode_error() {
        let out = run(vec![ev("content_block_delta", "{not json")]).await;
        let err = out[0].clone().unwrap_err();
        assert_eq!(err.kind, llm_core::ProviderErrorKind::Decode);
        assert_eq!(out.len(), 1);
    }
}
