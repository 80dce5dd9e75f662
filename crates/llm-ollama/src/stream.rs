//! NDJSON generation stream → [`StreamEvent`]s.
//!
//! Every line is one JSON object. Lines with `"done": false` carry a text
//! fragment; the `"done": true` line may carry a last fragment and always ends
//! the answer with usage and `done_reason`. Tool calls arrive whole in a
//! line's `message.tool_calls` and become one [`StreamEvent::ToolCall`] each.
//! An `{"error":"…"}` line is an error item; a body that ends without a
//! `done: true` line is an incomplete error.
//!
//! Usage seen before an error line is kept: a [`StreamEvent::Usage`] comes
//! before the error item. Ollama's server itself writes counts only on the
//! `done: true` line, which ends the stream, and writes an error line instead
//! of it, so there the error comes without usage; the rule covers servers and
//! proxies that send counts earlier.

use std::collections::VecDeque;

use futures::Stream;
use llm_core::http::{decode_frames, FrameDecoder};
use llm_core::{FinishReason, ProviderError, StreamEvent, Usage};

use crate::error;
use crate::tools;
use crate::wire::GenerationLine;

/// Maps `done_reason` to a finish reason; absent (old servers) means a
/// natural stop, and a natural stop after tool calls is [`FinishReason::ToolCalls`].
pub(crate) fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> FinishReason {
    match done_reason {
        None | Some("stop") if called_tools => FinishReason::ToolCalls,
        None | Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

/// Usage of a line that carries counts, if it does.
fn counted(line: &GenerationLine) -> Option<Usage> {
    (line.prompt_eval_count.is_some() || line.eval_count.is_some()).then(|| usage(line))
}

/// Usage of a final line; absent counts are 0 (e.g. a fully cached prompt).
pub(crate) fn usage(line: &GenerationLine) -> Usage {
    Usage::new(
        line.prompt_eval_count.unwrap_or(0),
        line.eval_count.unwrap_or(0),
    )
}

/// Logs the timings of a final line (all in nanoseconds on the wire).
pub(crate) fn log_metrics(provider: &str, line: &GenerationLine) {
    let ms = |ns: Option<u64>| ns.map(|n| n as f64 / 1e6);
    let tokens_per_s = match (line.eval_count, line.eval_duration) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 * 1e9 / d as f64),
        _ => None,
    };
    tracing::debug!(
        provider,
        model = line.model.as_deref().unwrap_or(""),
        prompt_eval_count = line.prompt_eval_count.unwrap_or(0),
        eval_count = line.eval_count.unwrap_or(0),
        total_ms = ms(line.total_duration),
        load_ms = ms(line.load_duration),
        prompt_eval_ms = ms(line.prompt_eval_duration),
        eval_ms = ms(line.eval_duration),
        tokens_per_s,
        "ollama generation finished"
    );
}

/// Decodes one line.
pub(crate) fn parse_line(provider: &str, line: &[u8]) -> Result<GenerationLine, ProviderError> {
    llm_core::http::decode_json(provider, line)
}

/// Decoder state of one NDJSON generation stream of `B` lines.
struct Decoder<B> {
    provider: String,
    /// Tool calls seen so far (the index of the next one).
    calls: u32,
    /// The last usage a line reported, if any.
    usage: Option<Usage>,
    line: std::marker::PhantomData<fn(B)>,
}

impl<B: AsRef<[u8]> + Send + 'static> FrameDecoder for Decoder<B> {
    type Frame = B;

    fn frame(&mut self, bytes: B, out: &mut VecDeque<Result<StreamEvent, ProviderError>>) -> bool {
        let mut line = match parse_line(&self.provider, bytes.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                out.push_back(Err(e));
                return true;
            }
        };
        if let Some(seen) = counted(&line) {
            self.usage = Some(seen);
        }
        if let Some(e) = &line.error {
            if let Some(usage) = self.usage.take() {
                out.push_back(Ok(StreamEvent::Usage { usage }));
            }
            out.push_back(Err(error::in_stream(
                &self.provider,
                "generation",
                &e.message(),
            )));
            return true;
        }
        if let Some(text) = line.text().filter(|t| !t.is_empty()) {
            out.push_back(Ok(StreamEvent::delta(text)));
        }
        // Ollama sends whole calls: one fragment per call.
        for call in line.take_tool_calls() {
            match tools::call_in(&self.provider, self.calls, call) {
                Ok(call) => out.push_back(Ok(StreamEvent::ToolCall {
                    index: self.calls,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments,
                })),
                Err(e) => {
                    out.push_back(Err(e));
                    return true;
                }
            }
            self.calls += 1;
        }
        if !line.is_done() {
            return false;
        }
        log_metrics(&self.provider, &line);
        out.push_back(Ok(StreamEvent::Usage {
            usage: usage(&line),
        }));
        out.push_back(Ok(StreamEvent::Done {
            finish_reason: finish_reason(line.done_reason.as_deref(), self.calls > 0),
        }));
        true
    }

    fn incomplete(&self) -> ProviderError {
        ProviderError::incomplete(
            &self.provider,
            "the stream ended without its `\"done\": true` line",
        )
    }
}

/// The events of an NDJSON generation stream.
pub(crate) fn decode<S, B>(
    provider: &str,
    lines: S,
) -> impl Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static
where
    S: Stream<Item = Result<B, ProviderError>> + Send + Unpin + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    decode_frames(
        lines,
        Decoder {
            provider: provider.to_string(),
            calls: 0,
            usage: None,
            line: std::marker::PhantomData,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn events(lines: &[&'static str]) -> Vec<Result<StreamEvent, String>> {
        let lines = futures::stream::iter(
            lines
                .iter()
                .map(|l| Ok::<_, ProviderError>(l.as_bytes()))
                .collect::<Vec<_>>(),
        );
        decode("p", lines)
            .map(|e| e.map_err(|e| e.message))
            .collect()
            .await
    }

    #[tokio::test]
    async fn usage_seen_before_an_error_line_is_kept() {
        // Counts on a line before the error (not something Ollama's own
        // server writes; a proxy may): the usage comes before the error.
        let got = events(&[
            r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false,"prompt_eval_count":7,"eval_count":1}"#,
            r#"{"error":"an error was encountered while running the model"}"#,
        ])
        .await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::delta("Hi")),
                Ok(StreamEvent::Usage {
                    usage: Usage::new(7, 1)
                }),
                Err("generation failed inside the stream: an error was encountered while running the model".into()),
            ]
        );
    }

    #[tokio::test]
    async fn an_error_without_usage_has_no_usage_event() {
        let got = events(&[
            r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}"#,
            r#"{"error":"boom"}"#,
        ])
        .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].is_err());
    }
}
