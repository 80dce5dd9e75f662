//! Decoding NDJSON and SSE streams into [`StreamEvent`]s.
//!
//! Each JSON payload is read through the configured pointers: an error ends
//! the stream with an `Err` item; a delta becomes [`StreamEvent::Delta`];
//! usage and finish reason are remembered; the end marker (or an SSE `[DONE]`)
//! emits [`StreamEvent::Usage`] (reported, else estimated with
//! [`llm_core::tokens::estimate_usage`] over the text received) and
//! [`StreamEvent::Done`]. A body that ends before the marker yields an
//! incomplete error, never a clean end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use llm_core::http::{self, decode_frames, reqwest, FrameDecoder};
use llm_core::{FinishReason, LlmRequest, ProviderError, StreamEvent, Usage};
use serde_json::Value;

use crate::error::in_body;
use crate::wire::{Pointers, ReportedUsage};

/// Longest NDJSON line accepted (a final line may carry a large context).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// One unit of a stream body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A JSON payload (an NDJSON line or SSE `data`).
    Json(Vec<u8>),
    /// The SSE `[DONE]` sentinel.
    Done,
    /// An SSE `event: error` with its data.
    Error(String),
    /// Nothing to decode (an SSE event without data).
    Skip,
}

type Item = Result<StreamEvent, ProviderError>;

/// Stream state: what has been seen so far.
#[derive(Debug)]
pub(crate) struct Decoder {
    provider: String,
    pointers: Arc<Pointers>,
    estimate: Estimate,
    usage: ReportedUsage,
    finish: Option<FinishReason>,
}

impl Decoder {
    /// A decoder for `provider`; `estimate` fills in counts the stream does not report.
    pub(crate) fn new(provider: &str, pointers: Arc<Pointers>, estimate: Estimate) -> Self {
        Self {
            provider: provider.to_string(),
            pointers,
            estimate,
            usage: ReportedUsage::default(),
            finish: None,
        }
    }

    /// Decodes one frame into `out`; `true` when the stream is over.
    pub(crate) fn on_frame(&mut self, frame: Frame, out: &mut VecDeque<Item>) -> bool {
        match frame {
            Frame::Skip => false,
            Frame::Done => {
                self.finish(out);
                true
            }
            Frame::Error(data) => {
                let parsed = serde_json::from_str::<Value>(&data).ok();
                let (message, code) = parsed
                    .and_then(|v| self.pointers.error(&v))
                    .unwrap_or_else(|| (non_empty(data.trim(), "error event in stream"), None));
                out.push_back(Err(in_body(&self.provider, &message, code)));
                true
            }
            Frame::Json(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => self.on_json(&v, out),
                Err(e) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let snippet: String = text.chars().take(200).collect();
                    out.push_back(Err(ProviderError::decode(
                        &self.provider,
                        format!("invalid JSON in stream ({e}): {snippet}"),
                    )));
                    true
                }
            },
        }
    }

    fn on_json(&mut self, v: &Value, out: &mut VecDeque<Item>) -> bool {
        if let Some((message, code)) = self.pointers.error(v) {
            out.push_back(Err(in_body(&self.provider, &message, code)));
            return true;
        }
        if let Some(text) = self.pointers.delta(v).filter(|t| !t.is_empty()) {
            self.estimate.add(text);
            out.push_back(Ok(StreamEvent::delta(text)));
        }
        self.usage.merge(self.pointers.usage(v));
        if let Some(f) = self.pointers.finish_reason(v) {
            self.finish = Some(f);
        }
        if self.pointers.is_done(v) {
            self.finish(out);
            return true;
        }
        false
    }

    fn finish(&mut self, out: &mut VecDeque<Item>) {
        let usage = self.usage.complete(|| self.estimate.usage());
        out.push_back(Ok(StreamEvent::Usage { usage }));
        out.push_back(Ok(StreamEvent::Done {
            finish_reason: self.finish.take().unwrap_or_default(),
        }));
    }

    fn incomplete(&self) -> ProviderError {
        ProviderError::incomplete(&self.provider, "the stream ended before its end marker")
    }
}

/// The token estimate of a streamed answer: the workspace estimator
/// ([`llm_core::tokens::estimate_usage`]) over the request and the text
/// received so far.
#[derive(Debug)]
pub(crate) struct Estimate {
    request: LlmRequest,
    text: String,
}

impl Estimate {
    /// An estimate for the answer to `request`.
    pub(crate) fn new(request: &LlmRequest) -> Self {
        Self {
            request: request.clone(),
            text: String::new(),
        }
    }

    /// Adds a piece of the answer.
    fn add(&mut self, delta: &str) {
        self.text.push_str(delta);
    }

    /// The estimated usage of the request and the answer so far.
    fn usage(&self) -> Usage {
        llm_core::tokens::estimate_usage(&self.request, &self.text)
    }
}

fn non_empty(s: &str, fallback: &str) -> String {
    if s.is_empty() { fallback } else { s }.to_string()
}

impl FrameDecoder for Decoder {
    type Frame = Frame;

    fn frame(&mut self, frame: Frame, out: &mut VecDeque<Item>) -> bool {
        self.on_frame(frame, out)
    }

    fn incomplete(&self) -> ProviderError {
        Decoder::incomplete(self)
    }
}

/// Runs `decoder` over `frames`, ending after the end marker, the first error,
/// or the end of the body (as an incomplete error).
pub(crate) fn decode<S>(frames: S, decoder: Decoder) -> impl Stream<Item = Item> + Send + 'static
where
    S: Stream<Item = Result<Frame, ProviderError>> + Send + 'static,
{
    decode_frames(frames, decoder)
}

/// Frames of an NDJSON body: one JSON object per line.
pub(crate) fn ndjson_frames(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<Frame, ProviderError>> + Send + 'static {
    http::ndjson_lines(provider, resp, idle, MAX_LINE).map_ok(|line| Frame::Json(line.to_vec()))
}

/// Frames of an SSE body: `data` payloads, `[DONE]` and `event: error`.
pub(crate) fn sse_frames(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<Frame, ProviderError>> + Send + 'static {
    http::sse_events(provider, resp, idle).map_ok(|ev| {
        let data = ev.data.trim();
        if ev.event == "error" {
            Frame::Error(ev.data)
        } else if data == "[DONE]" {
            Frame::Done
        } else if data.is_empty() {
            Frame::Skip
        } else {
            Frame::Json(ev.data.into_bytes())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use llm_core::Usage;

    fn pointers() -> Arc<Pointers> {
        Arc::new(Pointers {
            content: vec!["/content".into()],
            delta: vec!["/delta".into(), "/content".into()],
            prompt_tokens: Some("/usage/prompt_tokens".into()),
            completion_tokens: Some("/usage/completion_tokens".into()),
            total_tokens: None,
            finish_reason: Some("/finish_reason".into()),
            model: None,
            done: Some("/done".into()),
            error: "/error".into(),
            models: None,
            embeddings: "/embeddings".into(),
            embed_tokens: None,
        })
    }

    fn request() -> LlmRequest {
        LlmRequest::new("写一首关于春天的诗").system("你是诗人")
    }

    async fn run(frames: Vec<Frame>) -> Vec<Item> {
        let decoder = Decoder::new("c", pointers(), Estimate::new(&request()));
        decode(futures::stream::iter(frames.into_iter().map(Ok)), decoder)
            .collect()
            .await
    }

    fn json(s: &str) -> Frame {
        Frame::Json(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn deltas_usage_and_done() {
        let items = run(vec![
            json(r#"{"delta":"Hel"}"#),
            json(r#"{"content":"lo"}"#),
            json(r#"{"done":true,"finish_reason":"length","usage":{"prompt_tokens":9,"completion_tokens":2}}"#),
            json(r#"{"delta":"ignored"}"#),
        ]).await;
        let items: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            items,
            vec![
                StreamEvent::delta("Hel"),
                StreamEvent::delta("lo"),
                StreamEvent::Usage {
                    usage: Usage::new(9, 2)
                },
                StreamEvent::Done {
                    finish_reason: FinishReason::Length
                },
            ]
        );
    }

    #[tokio::test]
    async fn usage_is_estimated_when_not_reported() {
        let items = run(vec![
            json(r#"{"delta":"你好，"}"#),
            json(r#"{"delta":"世界"}"#),
            Frame::Done,
        ])
        .await;
        let expected = llm_core::tokens::estimate_usage(&request(), "你好，世界");
        assert_eq!(expected, Usage::new(8 + 4, 4));
        assert_eq!(
            items[2].as_ref().unwrap(),
            &StreamEvent::Usage { usage: expected }
        );

        // A reported prompt count is kept; the completion is estimated.
        let items = run(vec![
            json(r#"{"delta":"Hello, world","usage":{"prompt_tokens":40}}"#),
            Frame::Done,
        ])
        .await;
        assert_eq!(
            items[1].as_ref().unwrap(),
            &StreamEvent::Usage {
                usage: Usage::new(40, 3)
            }
        );
    }

    #[tokio::test]
    async fn errors_and_early_ends() {
        let items = run(vec![json(r#"{"delta":"a"}"#), json(r#"{"error":"boom"}"#)]).await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().unwrap_err().message, "boom");

        let items = run(vec![json(r#"{"delta":"a"}"#)]).await;
        let err = items[1].as_ref().unwrap_err();
        assert_eq!(err.kind, llm_core::ProviderErrorKind::Incomplete);

        let items = run(vec![Frame::Error("overloaded".into())]).await;
        assert_eq!(items[0].as_ref().unwrap_err().message, "overloaded");

        let items = run(vec![json("{not json")]).await;
        assert_eq!(
            items[0].as_ref().unwrap_err().kind,
            llm_core::ProviderErrorKind::Decode
        );
    }
}
