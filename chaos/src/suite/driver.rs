//! Sending one request, through the client or the gateway, and recording
//! exactly what came back.

use std::time::Duration;

use futures::StreamExt;
use llm_core::{LlmClient, LlmError, LlmRequest, StreamEvent};
use tokio::time::Instant;

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A complete answer (for a stream: it ended with `Done` / `[DONE]`).
    Complete {
        /// The whole text.
        text: String,
        /// Served from the cache.
        cached: bool,
        /// Instance that answered.
        provider: String,
    },
    /// A typed error (for a stream: an error item or error event).
    Failed {
        /// Error type: an `LlmError` variant, a provider error kind, or the
        /// gateway's status and error type.
        kind: String,
        /// Its message.
        message: String,
    },
}

/// One request's result and what was noticed while reading it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Position in the run.
    pub index: usize,
    /// Its prompt.
    pub prompt: String,
    /// Whether it streamed.
    pub stream: bool,
    /// The answer.
    pub answer: Answer,
    /// Upstream calls the client reported (sum of `attempts[].calls`), when known.
    pub reported_calls: Option<u32>,
    /// From sending to the final item.
    pub elapsed: Duration,
    /// For streams: until the stream was open (first event received).
    pub opened_after: Option<Duration>,
    /// Contract breaches seen while reading (silent end, items after the end, …).
    pub violations: Vec<String>,
}

impl Outcome {
    fn new(index: usize, prompt: &str, stream: bool) -> Self {
        Self {
            index,
            prompt: prompt.to_string(),
            stream,
            answer: Answer::Failed {
                kind: "none".into(),
                message: String::new(),
            },
            reported_calls: None,
            elapsed: Duration::ZERO,
            opened_after: None,
            violations: Vec::new(),
        }
    }
}

/// The request every run sends for `prompt` (the same each time, so repeats
/// hit the cache and keys can be recomputed).
pub fn request_for(prompt: &str) -> LlmRequest {
    LlmRequest::new(prompt).max_tokens(64).temperature(0.2)
}

fn calls(attempts: &[llm_core::Attempt]) -> u32 {
    attempts.iter().map(|a| a.calls).sum()
}

fn error_kind(e: &LlmError) -> String {
    match e {
        LlmError::Config(_) => "config",
        LlmError::Validation(_) => "validation",
        LlmError::UnknownProvider { .. } => "unknown_provider",
        LlmError::NoProviderAvailable { .. } => "no_provider_available",
        LlmError::AllProvidersFailed { .. } => "all_providers_failed",
        LlmError::DeadlineExceeded { .. } => "deadline_exceeded",
        LlmError::Provider(_) => "provider",
        LlmError::Cache(_) => "cache",
        _ => "other",
    }
    .to_string()
}

/// Sends `req` through the client.
pub async fn via_client(
    client: &LlmClient,
    index: usize,
    prompt: &str,
    req: LlmRequest,
    stream: bool,
) -> Outcome {
    let mut out = Outcome::new(index, prompt, stream);
    let started = Instant::now();
    if !stream {
        match client.generate(req).await {
            Ok(resp) => {
                out.reported_calls = Some(calls(&resp.attempts));
                out.answer = Answer::Complete {
                    text: resp.content,
                    cached: resp.cached,
                    provider: resp.provider,
                };
            }
            Err(e) => {
                out.reported_calls = Some(calls(e.attempts()));
                out.answer = Answer::Failed {
                    kind: error_kind(&e),
                    message: e.to_string(),
                };
            }
        }
        out.elapsed = started.elapsed();
        return out;
    }
    let mut s = match client.stream(req).await {
        Ok(s) => s,
        Err(e) => {
            out.reported_calls = Some(calls(e.attempts()));
            out.answer = Answer::Failed {
                kind: error_kind(&e),
                message: e.to_string(),
            };
            out.elapsed = started.elapsed();
            return out;
        }
    };
    out.opened_after = Some(started.elapsed());
    out.reported_calls = Some(calls(&s.attempts));
    let (cached, provider) = (s.cached, s.provider.clone());
    let mut text = String::new();
    let mut end: Option<Answer> = None;
    while let Some(item) = s.next().await {
        if end.is_some() {
            out.violations
                .push("an item after the end of the stream".into());
            break;
        }
        match item {
            Ok(StreamEvent::Delta { text: t }) => text.push_str(&t),
            Ok(
                StreamEvent::Usage { .. }
                | StreamEvent::ToolCall { .. }
                | StreamEvent::Logprobs { .. }
                | StreamEvent::Thinking { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. },
            ) => {}
            Ok(StreamEvent::Done { .. }) => {
                end = Some(Answer::Complete {
                    text: std::mem::take(&mut text),
                    cached,
                    provider: provider.clone(),
                });
            }
            Err(e) => {
                end = Some(Answer::Failed {
                    kind: format!("stream:{:?}", e.kind),
                    message: e.to_string(),
                });
            }
        }
    }
    out.elapsed = started.elapsed();
    out.answer = end.unwrap_or_else(|| {
        out.violations
            .push("the stream ended silently, with neither Done nor an error".into());
        Answer::Failed {
            kind: "silent_end".into(),
            message: String::new(),
        }
    });
    out
}

/// Sends `prompt` to the gateway's `POST /v1/chat/completions`.
pub async fn via_gateway(
    http: &reqwest::Client,
    base: &str,
    index: usize,
    prompt: &str,
    stream: bool,
) -> Outcome {
    let mut out = Outcome::new(index, prompt, stream);
    let started = Instant::now();
    let body = serde_json::json!({
        "model": "auto",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": stream,
    });
    let resp = match http
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.violations
                .push(format!("the gateway gave no HTTP answer: {e}"));
            out.answer = Answer::Failed {
                kind: "transport".into(),
                message: e.to_string(),
            };
            out.elapsed = started.elapsed();
            return out;
        }
    };
    let status = resp.status().as_u16();
    let cached = resp
        .headers()
        .get("x-llm-cache")
        .is_some_and(|v| v.as_bytes() == b"hit");
    let provider = resp
        .headers()
        .get("x-llm-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if status != 200 {
        let bytes = resp.bytes().await.unwrap_or_default();
        out.answer = typed_error(status, &bytes, &mut out.violations);
        out.elapsed = started.elapsed();
        return out;
    }
    if !stream {
        let bytes = resp.bytes().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match v["choices"][0]["message"]["content"].as_str() {
            Some(text) => {
                out.answer = Answer::Complete {
                    text: text.to_string(),
                    cached,
                    provider,
                }
            }
            None => {
                out.violations
                    .push("a 200 answer without choices[0].message.content".into());
                out.answer = Answer::Failed {
                    kind: "malformed".into(),
                    message: String::from_utf8_lossy(&bytes).into_owned(),
                };
            }
        }
        out.elapsed = started.elapsed();
        return out;
    }
    out.opened_after = Some(started.elapsed());
    let events = llm_core::http::sse_events("gateway", resp, Duration::from_secs(120));
    futures::pin_mut!(events);
    let mut text = String::new();
    let mut end: Option<Answer> = None;
    while let Some(item) = events.next().await {
        let ev = match item {
            Ok(ev) => ev,
            Err(e) => {
                if end.is_none() {
                    out.violations
                        .push(format!("the gateway's event stream broke: {e}"));
                    end = Some(Answer::Failed {
                        kind: "transport".into(),
                        message: e.to_string(),
                    });
                }
                break;
            }
        };
        if end.is_some() {
            out.violations
                .push("an event after the end of the stream".into());
            break;
        }
        if ev.data == "[DONE]" {
            end = Some(Answer::Complete {
                text: std::mem::take(&mut text),
                cached,
                provider: provider.clone(),
            });
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap_or_default();
        if v.get("error").is_some() {
            end = Some(gateway_error("stream", &v, &mut out.violations));
            continue;
        }
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    out.elapsed = started.elapsed();
    out.answer = end.unwrap_or_else(|| {
        out.violations
            .push("the stream ended silently, with neither [DONE] nor an error event".into());
        Answer::Failed {
            kind: "silent_end".into(),
            message: String::new(),
        }
    });
    out
}

fn typed_error(status: u16, body: &[u8], violations: &mut Vec<String>) -> Answer {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    gateway_error(&format!("http {status}"), &v, violations)
}

/// An OpenAI error object (`{"error":{"message","type",…}}`) as an answer.
fn gateway_error(what: &str, v: &serde_json::Value, violations: &mut Vec<String>) -> Answer {
    let message = v["error"]["message"].as_str();
    let kind = v["error"]["type"].as_str();
    match (message, kind) {
        (Some(m), Some(k)) if !m.is_empty() => Answer::Failed {
            kind: format!("{what} {k}"),
            message: m.to_string(),
        },
        _ => {
            violations.push(format!("{what}: not an OpenAI error body: {v}"));
            Answer::Failed {
                kind: format!("{what} untyped"),
                message: v.to_string(),
            }
        }
    }
}
