//! Decoder of the Chat Completions event stream.
//!
//! `data:` payloads are `chat.completion.chunk` objects; text deltas become
//! [`StreamEvent::Delta`]s, the finish reason is remembered, usage (the extra
//! final chunk with `"choices":[]`, or usage on any chunk from compatible
//! servers) is kept and sent once, just before [`StreamEvent::Done`], which is
//! emitted only on `data: [DONE]`. An `{"error":…}` payload is an `Err` item;
//! an end of stream without `[DONE]` is an incomplete-answer error.
//!
//! A chunk's `choices[0].logprobs.content` (when the request asked for
//! `logprobs`) becomes a [`StreamEvent::Logprobs`] right after the delta
//! whose tokens it describes; `null` or empty log probabilities yield nothing.
//! Usage carries `prompt_tokens_details.cached_tokens` as
//! [`Usage::cache_read_tokens`].
//!
//! Tool-call deltas become [`StreamEvent::ToolCall`] fragments: the delta
//! that starts a call (it must carry `function.name`) gives the fragment with
//! id and name, later deltas of the same `index` give argument fragments.
//! Calls are numbered 0, 1, … in the order they start. Leniently, a delta
//! without `index` continues the latest call, a delta whose `id` differs
//! from that of the call at its `index` starts a new call (for servers that
//! number every call 0), and a call that starts without an `id` (or with an
//! empty one; some compatible servers omit it) gets a synthesized unique id
//! (`call_` and 24 random alphanumerics). A delta without `id` that continues
//! a known `index` is always a continuation, never a new call.

use std::collections::VecDeque;

use futures::Stream;
use llm_core::http::{decode_frames, FrameDecoder, SseEvent};
use llm_core::{FinishReason, ProviderError, StreamEvent, Usage};

use crate::error::payload_error;
use crate::wire::{call_id, finish_reason, tool_finish, ChatChunk, ToolCallDelta};

type Item = Result<StreamEvent, ProviderError>;

/// Whether the stream goes on after a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    End,
}

/// The per-stream state: what has been learnt so far.
#[derive(Debug)]
pub(crate) struct Decoder {
    provider: String,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// The calls started so far, in order: each one's `index` on the wire and id.
    calls: Vec<(Option<u64>, String)>,
}

impl Decoder {
    pub(crate) fn new(provider: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            finish: None,
            usage: None,
            calls: Vec::new(),
        }
    }

    /// Handles one event's `data`, pushing what it yields onto `out`.
    pub(crate) fn on_data(&mut self, data: &str, out: &mut VecDeque<Item>) -> Flow {
        let data = data.trim();
        if data.is_empty() {
            return Flow::Continue;
        }
        if data == "[DONE]" {
            if let Some(usage) = self.usage.take() {
                out.push_back(Ok(StreamEvent::Usage { usage }));
            }
            let finish = self.finish.take().unwrap_or_default();
            let finish_reason = tool_finish(finish, !self.calls.is_empty());
            out.push_back(Ok(StreamEvent::Done { finish_reason }));
            return Flow::End;
        }
        let chunk: ChatChunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                out.push_back(Err(ProviderError::decode(
                    &self.provider,
                    format!("invalid stream chunk ({e}): {}", snippet(data)),
                )));
                return Flow::End;
            }
        };
        if let Some(err) = chunk.error {
            out.push_back(Err(payload_error(&self.provider, err)));
            return Flow::End;
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(text) = delta.content.map(|c| c.into_text()) {
                if !text.is_empty() {
                    out.push_back(Ok(StreamEvent::Delta { text }));
                }
            }
            for call in delta.tool_calls {
                match self.tool_call(call) {
                    Ok(event) => out.push_back(Ok(event)),
                    Err(e) => {
                        out.push_back(Err(e));
                        return Flow::End;
                    }
                }
            }
            let logprobs = choice.logprobs.into_logprobs();
            if !logprobs.is_empty() {
                out.push_back(Ok(StreamEvent::Logprobs { logprobs }));
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        Flow::Continue
    }

    /// The fragment for one tool-call delta.
    fn tool_call(&mut self, delta: ToolCallDelta) -> Result<StreamEvent, ProviderError> {
        let ToolCallDelta {
            index: wire_index,
            id,
            function,
        } = delta;
        let id = id.filter(|id| !id.is_empty());
        let mut function = function.unwrap_or_default();
        let arguments = function.arguments_text();
        // The call this delta continues, unless it names another id.
        let current = match wire_index {
            Some(i) => self.calls.iter().rposition(|(w, _)| *w == Some(i)),
            None => self.calls.len().checked_sub(1),
        }
        .filter(|&pos| id.as_ref().is_none_or(|id| *id == self.calls[pos].1));
        if let Some(pos) = current {
            return Ok(StreamEvent::ToolCall {
                index: u32::try_from(pos).unwrap_or(u32::MAX),
                id: None,
                name: None,
                arguments,
            });
        }
        // A new call: it needs a name; a missing id is made up.
        let Some(name) = function.name.filter(|n| !n.is_empty()) else {
            let index = wire_index.map_or_else(|| "none".to_string(), |i| i.to_string());
            return Err(ProviderError::decode(
                &self.provider,
                format!("a streamed tool call (index {index}) starts without a `function.name`"),
            ));
        };
        let id = call_id(id);
        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        self.calls.push((wire_index, id.clone()));
        Ok(StreamEvent::ToolCall {
            index,
            id: Some(id),
            name: Some(name),
            arguments,
        })
    }

    /// The error for a stream that ended before `[DONE]`.
    pub(crate) fn incomplete(&self) -> ProviderError {
        ProviderError::incomplete(
            &self.provider,
            "the stream ended without `data: [DONE]`; the answer is incomplete",
        )
    }
}

fn snippet(s: &str) -> &str {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl FrameDecoder for Decoder {
    type Frame = SseEvent;

    fn frame(&mut self, event: SseEvent, out: &mut VecDeque<Item>) -> bool {
        self.on_data(&event.data, out) == Flow::End
    }

    fn incomplete(&self) -> ProviderError {
        Decoder::incomplete(self)
    }
}

/// Turns the server-sent events of a response into stream events.
pub(crate) fn decode<S>(provider: &str, events: S) -> impl Stream<Item = Item> + Send + 'static
where
    S: Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static,
{
    decode_frames(events, Decoder::new(provider))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use llm_core::ProviderErrorKind;

    async fn run(payloads: &[&str]) -> Vec<Item> {
        let events: Vec<Result<SseEvent, ProviderError>> = payloads
            .iter()
            .map(|d| {
                Ok(SseEvent {
                    data: (*d).to_string(),
                    ..Default::default()
                })
            })
            .collect();
        decode("p", futures::stream::iter(events)).collect().await
    }

    #[tokio::test]
    async fn usage_only_chunk_is_kept_and_sent_before_done() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#,
            "[DONE]",
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Ok(StreamEvent::delta("Hi")),
                Ok(StreamEvent::Usage {
                    usage: Usage::new(5, 1)
                }),
                Ok(StreamEvent::Done {
                    finish_reason: FinishReason::Length
                }),
            ]
        );
    }

    #[tokio::test]
    async fn unknown_finish_reason_and_no_usage() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"eos_token"}]}"#,
            "[DONE]",
            r#"{"choices":[{"index":0,"delta":{"content":"ignored"}}]}"#,
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Ok(StreamEvent::delta("a")),
                Ok(StreamEvent::Done {
                    finish_reason: FinishReason::Other("eos_token".into())
                }),
            ]
        );
    }

    #[tokio::test]
    async fn missing_done_is_incomplete_and_errors_end_the_stream() {
        let out = run(&[r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#]).await;
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].as_ref().unwrap_err().kind,
            ProviderErrorKind::Incomplete
        );

        let out = run(&[
            r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
            "[DONE]",
        ])
        .await;
        assert_eq!(out.len(), 1);
        let e = out[0].as_ref().unwrap_err();
        assert_eq!(e.message, "boom");
        assert_eq!(e.code.as_deref(), Some("server_error"));
        // No numeric status in the event: the one OpenAI answers `server_error` with.
        assert_eq!(e.status, Some(500));
        assert_eq!(e.class(), llm_core::ErrorClass::Retryable);

        let out = run(&["not json"]).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap_err().kind, ProviderErrorKind::Decode);
    }

    #[tokio::test]
    async fn calls_starting_without_an_id_get_distinct_synthesized_ids() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"a","arguments":"{\"x\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"","function":{"name":"b","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}"#,
            "[DONE]",
        ])
        .await;
        let events: Vec<StreamEvent> = out.into_iter().map(Result::unwrap).collect();
        let id = |e: &StreamEvent| match e {
            StreamEvent::ToolCall { id, .. } => id.clone(),
            other => panic!("{other:?}"),
        };
        let (a, b) = (id(&events[0]).unwrap(), id(&events[2]).unwrap());
        for synthesized in [&a, &b] {
            assert_eq!(synthesized.len(), 29, "{synthesized}");
            assert!(synthesized.starts_with("call_"), "{synthesized}");
            assert!(synthesized[5..].chars().all(|c| c.is_ascii_alphanumeric()));
        }
        assert_ne!(a, b);
        // Deltas without id continuing a known index (or the latest call) are continuations.
        assert_eq!(
            events[1],
            StreamEvent::ToolCall {
                index: 0,
                id: None,
                name: None,
                arguments: "1}".into()
            }
        );
        assert_eq!(
            events[3],
            StreamEvent::ToolCall {
                index: 1,
                id: None,
                name: None,
                arguments: "{}".into()
            }
        );
        assert_eq!(
            events[4],
            StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls
            }
        );
    }

    #[tokio::test]
    async fn a_call_starting_without_a_name_is_an_error_item() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"arguments":"{}"}}]}}]}"#,
            "[DONE]",
        ])
        .await;
        assert_eq!(out.len(), 1);
        let e = out[0].as_ref().unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Decode);
        assert!(
            e.message.contains("without a `function.name`"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn other_choices_are_ignored() {
        let out = run(&[
            r#"{"choices":[{"index":1,"delta":{"content":"x"}},{"index":0,"delta":{"content":"y"}}]}"#,
            "[DONE]",
        ])
        .await;
        assert_eq!(out[0], Ok(StreamEvent::delta("y")));
    }
}
