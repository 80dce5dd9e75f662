//! OpenAI Chat Completions, `POST /v1/chat/completions`: one JSON object, or
//! server-sent events.

pub(crate) mod convert;
pub mod wire;

pub(crate) use self::convert::{check_tool_support, resolve_model};

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use llm_router::{LlmRequest, LlmResponse, ProviderError, ResponseStream, StreamEvent, Usage};
use tokio::time::Instant;

use self::convert::Parsed;
use self::wire::{
    finish_reason, AssistantMessage, ChatCompletion, Choice, Chunk, ChunkChoice, Delta,
    DeltaFunction, DeltaToolCall, UsageField, WireLogprobs, WireUsage,
};
use crate::error::ApiError;
use crate::scrub::Scrubber;
use crate::AppState;

/// Handles `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let scrubber = st.scrubber.clone();
    match handle(st, body).await {
        Ok(r) => r,
        Err(mut e) => {
            e.message = scrubber.scrub(&e.message);
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "chat completion failed");
            }
            e.into_response()
        }
    }
}

async fn handle(st: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let entered = Instant::now();
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(st.settings.max_body_bytes)
        } else {
            ApiError::invalid(None, rej.body_text())
        }
    })?;
    let Parsed {
        request,
        stream,
        include_usage,
    } = convert::parse(&body, &st.client)?;
    let logprobs = request.logprobs;
    let timeout = st.settings.request_timeout;
    let deadline = Instant::now() + timeout;
    let id = completion_id();
    let created = unix_now();
    let telemetry = st.client.telemetry();
    if !stream {
        let resp = tokio::time::timeout_at(deadline, st.generate(request))
            .await
            .map_err(|_| ApiError::timeout(timeout))??;
        let mut out = completion(&id, created, &resp, logprobs);
        let own = own_time(entered, &resp.attempts);
        telemetry.gateway_overhead("chat", own.as_secs_f64());
        overhead_header(&mut out, own);
        return Ok(out);
    }
    let estimate_from = include_usage.then(|| request.clone());
    let opened = tokio::time::timeout_at(deadline, st.stream(request))
        .await
        .map_err(|_| ApiError::timeout(timeout))??;
    // Until the first event: what the gateway and the client spent beyond the upstream's time.
    let own = own_time(entered, &opened.attempts);
    telemetry.gateway_overhead("chat", own.as_secs_f64());
    let mut out = event_stream(
        opened,
        Meta {
            id,
            created,
            include_usage,
            logprobs,
            estimate_from,
            deadline,
            timeout,
            scrubber: st.scrubber.clone(),
        },
    );
    overhead_header(&mut out, own);
    Ok(out)
}

/// Time spent in this process (parsing, routing, cache, encoding): the time
/// since the request arrived, less the time spent on upstream providers.
pub(crate) fn own_time(entered: Instant, attempts: &[llm_router::Attempt]) -> Duration {
    let upstream: Duration = attempts.iter().map(|a| a.elapsed).sum();
    entered.elapsed().saturating_sub(upstream)
}

/// `x-llm-overhead-ms`: [`own_time`] in milliseconds, so users can check it in production.
pub(crate) fn overhead_header(resp: &mut Response, own: Duration) {
    let ms = format!("{:.3}", own.as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&ms) {
        resp.headers_mut().insert("x-llm-overhead-ms", v);
    }
}

/// `chatcmpl-` and 29 random alphanumerics, as OpenAI's ids look.
pub(crate) fn completion_id() -> String {
    let mut id = String::with_capacity(38);
    id.push_str("chatcmpl-");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(29));
    id
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn llm_headers(
    headers: &mut HeaderMap,
    provider: &str,
    cached: bool,
    attempts: usize,
    id: &str,
) {
    if let Ok(v) = HeaderValue::from_str(provider) {
        headers.insert("x-llm-provider", v);
    }
    headers.insert(
        "x-llm-cache",
        HeaderValue::from_static(if cached { "hit" } else { "miss" }),
    );
    headers.insert("x-llm-attempts", HeaderValue::from(attempts));
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert("x-request-id", v);
    }
}

fn completion(id: &str, created: u64, resp: &LlmResponse, logprobs: bool) -> Response {
    let body = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: &resp.model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                // As OpenAI does: null content when the model only called tools.
                content: (!resp.content.is_empty() || resp.tool_calls.is_empty())
                    .then_some(resp.content.as_str()),
                refusal: None,
                tool_calls: resp.tool_calls.iter().map(Into::into).collect(),
            },
            logprobs: logprobs.then(|| WireLogprobs::new(&resp.logprobs)),
            finish_reason: finish_reason(&resp.finish_reason),
        }],
        usage: resp.usage.into(),
        system_fingerprint: None,
    };
    let json = match serde_json::to_vec(&body) {
        Ok(j) => j,
        Err(e) => {
            return ApiError::internal(format!("cannot encode the response: {e}")).into_response()
        }
    };
    let mut r = Response::new(Body::from(json));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    llm_headers(h, &resp.provider, resp.cached, resp.attempts.len(), id);
    r
}

/// Where a stream is.
enum Phase {
    /// The role chunk is next.
    Start,
    /// Forwarding events.
    Body,
    /// Nothing more to send.
    End,
}

/// What a stream needs besides its events.
struct Meta {
    id: String,
    created: u64,
    include_usage: bool,
    /// Whether the request asked for log probabilities.
    logprobs: bool,
    /// The request, kept to estimate usage when the provider reports none.
    estimate_from: Option<LlmRequest>,
    deadline: Instant,
    timeout: Duration,
    scrubber: Scrubber,
}

struct SseState {
    events: ResponseStream,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    logprobs: bool,
    /// With `logprobs`: a text delta held back until the log probabilities
    /// of its tokens arrive, so both go out in one chunk as OpenAI sends them.
    pending: Option<String>,
    /// The request, kept to estimate usage when the provider reports none.
    estimate_from: Option<LlmRequest>,
    text: String,
    usage: Option<Usage>,
    phase: Phase,
    deadline: Instant,
    timeout: Duration,
    scrubber: Scrubber,
}

impl SseState {
    fn chunk(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<WireUsage>) -> Bytes {
        let usage = match (self.include_usage, usage) {
            (false, _) => UsageField::Absent,
            (true, None) => UsageField::Null,
            (true, Some(u)) => UsageField::Some(u),
        };
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: None,
            choices,
            usage,
        };
        match serde_json::to_string(&chunk) {
            Ok(json) => data(&json),
            Err(e) => error_event(&ApiError::internal(format!("cannot encode a chunk: {e}"))),
        }
    }

    fn content(&self, delta: Delta<'_>, finish: Option<&'static str>) -> Bytes {
        self.with_logprobs(delta, None, finish)
    }

    fn with_logprobs(
        &self,
        delta: Delta<'_>,
        logprobs: Option<WireLogprobs<'_>>,
        finish: Option<&'static str>,
    ) -> Bytes {
        self.chunk(
            vec![ChunkChoice {
                index: 0,
                delta,
                logprobs,
                finish_reason: finish,
            }],
            None,
        )
    }

    /// A text delta's chunk.
    fn text_chunk(&self, text: &str, logprobs: Option<WireLogprobs<'_>>) -> Bytes {
        self.with_logprobs(
            Delta {
                content: Some(text),
                ..Delta::default()
            },
            logprobs,
            None,
        )
    }

    /// The held-back text delta, if any, as a chunk without log probabilities.
    fn flush(&mut self) -> Vec<u8> {
        match self.pending.take() {
            Some(text) => self.text_chunk(&text, None).to_vec(),
            None => Vec::new(),
        }
    }

    /// `head` (flushed chunks) followed by `tail`.
    fn after(mut head: Vec<u8>, tail: &[u8]) -> Bytes {
        head.extend_from_slice(tail);
        Bytes::from(head)
    }

    /// The finish chunk, the usage chunk when asked for, and `[DONE]`.
    fn finish(&mut self, reason: &'static str) -> Bytes {
        let mut out = self.flush();
        out.extend_from_slice(&self.content(Delta::default(), Some(reason)));
        if self.include_usage {
            let usage = match (self.usage, &self.estimate_from) {
                (Some(u), _) => u,
                (None, Some(req)) => llm_router::tokens::estimate_usage(req, &self.text),
                (None, None) => Usage::default(),
            };
            out.extend_from_slice(&self.chunk(Vec::new(), Some(usage.into())));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Bytes::from(out)
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        match self.phase {
            Phase::End => return None,
            Phase::Start => {
                self.phase = Phase::Body;
                // As OpenAI: with log probabilities asked for, the role chunk has an empty list.
                let logprobs = self.logprobs.then(|| WireLogprobs::new(&[]));
                let first = self.with_logprobs(Delta::first(), logprobs, None);
                return Some((first, self));
            }
            Phase::Body => {}
        }
        loop {
            let item = match tokio::time::timeout_at(self.deadline, self.events.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.phase = Phase::End;
                    tracing::warn!(provider = %self.events.provider, "stream cut at the request timeout");
                    let head = self.flush();
                    let out = Self::after(head, &error_event(&ApiError::timeout(self.timeout)));
                    return Some((out, self));
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if text.is_empty() {
                        continue;
                    }
                    if self.estimate_from.is_some() {
                        self.text.push_str(&text);
                    }
                    if self.logprobs {
                        let head = self.flush();
                        self.pending = Some(text);
                        if head.is_empty() {
                            continue;
                        }
                        return Some((Bytes::from(head), self));
                    }
                    let out = self.text_chunk(&text, None);
                    return Some((out, self));
                }
                Some(Ok(StreamEvent::Usage { usage })) => self.usage = Some(usage),
                // Chat Completions has no field for reasoning blocks.
                Some(Ok(
                    StreamEvent::Thinking { .. }
                    | StreamEvent::ThinkingSignature { .. }
                    | StreamEvent::RedactedThinking { .. },
                )) => {}
                Some(Ok(StreamEvent::Logprobs { logprobs })) => {
                    if !self.logprobs {
                        continue;
                    }
                    // On the chunk of the text they describe; alone (an empty
                    // delta) when that text has gone out already.
                    let out = match self.pending.take() {
                        Some(text) => self.text_chunk(&text, Some(WireLogprobs::new(&logprobs))),
                        None => self.with_logprobs(
                            Delta::default(),
                            Some(WireLogprobs::new(&logprobs)),
                            None,
                        ),
                    };
                    return Some((out, self));
                }
                Some(Ok(StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                })) => {
                    let first = id.is_some() || name.is_some();
                    let head = self.flush();
                    let out = self.content(
                        Delta {
                            tool_calls: Some([DeltaToolCall {
                                index,
                                id: id.as_deref(),
                                kind: first.then_some("function"),
                                function: DeltaFunction {
                                    name: name.as_deref(),
                                    arguments: &arguments,
                                },
                            }]),
                            ..Delta::default()
                        },
                        None,
                    );
                    if self.estimate_from.is_some() {
                        self.text.push_str(&arguments);
                    }
                    return Some((Self::after(head, &out), self));
                }
                Some(Ok(StreamEvent::Done { finish_reason: r })) => {
                    self.phase = Phase::End;
                    let out = self.finish(finish_reason(&r));
                    return Some((out, self));
                }
                Some(Err(e)) => {
                    self.phase = Phase::End;
                    let head = self.flush();
                    let err = stream_error(&e, &self.scrubber);
                    return Some((Self::after(head, &error_event(&err)), self));
                }
                None => {
                    self.phase = Phase::End;
                    let e = ProviderError::incomplete(
                        self.events.provider.clone(),
                        "stream ended before it was complete",
                    );
                    let head = self.flush();
                    let err = stream_error(&e, &self.scrubber);
                    return Some((Self::after(head, &error_event(&err)), self));
                }
            }
        }
    }
}

pub(crate) fn stream_error(e: &ProviderError, scrubber: &Scrubber) -> ApiError {
    let text = scrubber.scrub(&e.to_string());
    tracing::warn!(error = %text, "upstream failed after the stream started");
    let mut err = ApiError::internal(format!("The upstream provider failed mid-stream: {text}"));
    err.code = Some("upstream_error");
    err
}

fn data(json: &str) -> Bytes {
    let mut s = String::with_capacity(json.len() + 8);
    s.push_str("data: ");
    s.push_str(json);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// `data: {"error":{…}}`: how a failure after the `200` is reported.
fn error_event(e: &ApiError) -> Bytes {
    data(&e.body_json())
}

fn event_stream(events: ResponseStream, meta: Meta) -> Response {
    let Meta {
        id,
        created,
        include_usage,
        logprobs,
        estimate_from,
        deadline,
        timeout,
        scrubber,
    } = meta;
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
        &id,
    );
    let state = SseState {
        model: events.model.clone(),
        events,
        id,
        created,
        include_usage,
        logprobs,
        pending: None,
        estimate_from,
        text: String::new(),
        usage: None,
        phase: Phase::Start,
        deadline,
        timeout,
        scrubber,
    };
    let body = futures::stream::unfold(state, SseState::next).map(Ok::<_, Infallible>);
    let mut r = Response::new(Body::from_stream(body));
    *r.headers_mut() = headers;
    r
}
