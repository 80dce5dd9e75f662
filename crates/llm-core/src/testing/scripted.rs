//! [`ScriptedProvider`]: a provider whose answers are scripted per call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::embed::{EmbeddingRequest, EmbeddingResponse};
use crate::error::ProviderError;
use crate::provider::{Provider, ProviderProfile};
use crate::types::{
    Capability, FinishReason, LlmRequest, LlmResponse, ResponseStream, StreamEvent, ToolCall, Usage,
};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this text (streamed as one delta per word).
    Text(String),
    /// Fail with this error.
    Error(ProviderError),
    /// Call these tools (streamed as two fragments per call: id and name,
    /// then the arguments), finishing with `ToolCalls`.
    ToolCalls(Vec<ToolCall>),
    /// Stream exactly these items (for `generate`, they are collected).
    Stream(Vec<Result<StreamEvent, ProviderError>>),
    /// Wait, then give the inner reply (tokio time, so paused-time tests are instant).
    Delayed(Duration, Box<Reply>),
    /// Never answer.
    Hang,
}

impl Reply {
    /// A text answer.
    pub fn text(t: impl Into<String>) -> Self {
        Reply::Text(t.into())
    }

    /// This reply after `d`.
    pub fn after(self, d: Duration) -> Self {
        Reply::Delayed(d, Box::new(self))
    }
}

/// A provider for tests: answers, errors, latencies and availability are
/// scripted, and every request is recorded.
///
/// ```
/// # tokio_test_block_on(async {
/// use llm_core::testing::{Reply, ScriptedProvider};
/// use llm_core::{LlmRequest, Provider, ProviderError};
///
/// let p = ScriptedProvider::new("ollama")
///     .local(true)
///     .then(Reply::Error(ProviderError::http("ollama", 503, "busy")))
///     .then(Reply::text("hello"));
/// assert!(p.generate(&LlmRequest::new("hi")).await.is_err());
/// assert_eq!(p.generate(&LlmRequest::new("hi")).await.unwrap().content, "hello");
/// assert_eq!(p.calls(), 2);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptedProvider {
    name: String,
    kind: &'static str,
    profile: ProviderProfile,
    tools: bool,
    capabilities: Vec<Capability>,
    reported_model: Option<String>,
    embedded: Mutex<Vec<Vec<String>>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    failure: Mutex<Option<(f64, ProviderError, fastrand::Rng)>>,
    available: AtomicBool,
    calls: AtomicU32,
    availability_checks: AtomicU32,
    prepares: AtomicU32,
    prepare_error: Mutex<Option<ProviderError>>,
    requests: Mutex<Vec<LlmRequest>>,
}

impl ScriptedProvider {
    /// A provider named `name` of kind `scripted` that answers `ok` by default.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            profile: ProviderProfile::default(),
            name,
            kind: "scripted",
            tools: false,
            capabilities: Vec::new(),
            reported_model: None,
            embedded: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Reply::text("ok")),
            failure: Mutex::new(None),
            available: AtomicBool::new(true),
            calls: AtomicU32::new(0),
            availability_checks: AtomicU32::new(0),
            prepares: AtomicU32::new(0),
            prepare_error: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Whether it claims tool support (tools, forced tool choice and serial
    /// tool calls; default no).
    pub fn tools(mut self, supported: bool) -> Self {
        self.tools = supported;
        self
    }

    /// Claims `capability` as well ([`Provider::supports`]; tools aside, none by default).
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Reports `model` as the model that answered, whatever was asked (as
    /// OpenAI reports dated snapshot names).
    pub fn reports_model(mut self, model: impl Into<String>) -> Self {
        self.reported_model = Some(model.into());
        self
    }

    /// Every embedding batch received, in order.
    pub fn embedded(&self) -> Vec<Vec<String>> {
        lock(&self.embedded).clone()
    }

    /// The vector this provider gives `text` with `model` (deterministic, 4
    /// values): what [`embed`](Provider::embed) answers unless scripted to fail.
    pub fn vector_for(model: &str, text: &str) -> Vec<f32> {
        let mut h: u32 = 2_166_136_261;
        for b in model.bytes().chain([0]).chain(text.bytes()) {
            h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
        }
        vec![
            text.chars().count() as f32,
            (h & 0xffff) as f32,
            (h >> 16) as f32,
            1.0,
        ]
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// Marks the provider local (or not).
    pub fn local(mut self, local: bool) -> Self {
        self.profile.local = local;
        self
    }

    /// Sets the models and the default model (the first).
    pub fn models<I: IntoIterator<Item = S>, S: Into<String>>(mut self, models: I) -> Self {
        self.profile.models = models.into_iter().map(Into::into).collect();
        self.profile.default_model = self.profile.models.first().cloned();
        self
    }

    /// Replaces the whole profile.
    pub fn profile(mut self, profile: ProviderProfile) -> Self {
        self.profile = profile;
        self
    }

    /// Queues a reply for the next call.
    pub fn then(self, reply: Reply) -> Self {
        self.push(reply);
        self
    }

    /// The reply used when the queue is empty (default `Text("ok")`).
    pub fn otherwise(self, reply: Reply) -> Self {
        *lock(&self.fallback) = reply;
        self
    }

    /// Fails a `rate` share of calls (seeded, reproducible) with `error`.
    pub fn failure_rate(self, rate: f64, error: ProviderError, seed: u64) -> Self {
        *lock(&self.failure) = Some((rate, error, fastrand::Rng::with_seed(seed)));
        self
    }

    /// Queues a reply (usable after the provider is shared).
    pub fn push(&self, reply: Reply) {
        lock(&self.script).push_back(reply);
    }

    /// Sets what `is_available` answers.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// Makes `prepare` fail with `error` until [`clear_prepare_error`](Self::clear_prepare_error).
    pub fn fail_prepare(self, error: ProviderError) -> Self {
        *lock(&self.prepare_error) = Some(error);
        self
    }

    /// Lets `prepare` succeed again.
    pub fn clear_prepare_error(&self) {
        *lock(&self.prepare_error) = None;
    }

    /// Calls of `prepare` so far.
    pub fn prepares(&self) -> u32 {
        self.prepares.load(Ordering::SeqCst)
    }

    /// Calls of `generate` and `stream` so far.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls of `is_available` so far.
    pub fn availability_checks(&self) -> u32 {
        self.availability_checks.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<LlmRequest> {
        lock(&self.requests).clone()
    }

    fn next_reply(&self, req: &LlmRequest) -> Reply {
        lock(&self.requests).push(req.clone());
        self.next_scripted()
    }

    fn next_scripted(&self) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(r) = lock(&self.script).pop_front() {
            return r;
        }
        if let Some((rate, err, rng)) = lock(&self.failure).as_mut() {
            if rng.f64() < *rate {
                return Reply::Error(err.clone());
            }
        }
        lock(&self.fallback).clone()
    }

    fn model_for(&self, req: &LlmRequest) -> String {
        if let Some(m) = &self.reported_model {
            return m.clone();
        }
        self.profile
            .resolve_model(req.model.as_deref())
            .unwrap_or_else(|| "scripted-model".to_string())
    }

    fn text_events(text: &str, req: &LlmRequest) -> Vec<Result<StreamEvent, ProviderError>> {
        let mut events: Vec<_> = text
            .split_inclusive(' ')
            .map(|w| Ok(StreamEvent::delta(w)))
            .collect();
        events.push(Ok(StreamEvent::Usage {
            usage: usage_for(req, text),
        }));
        events.push(Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop,
        }));
        events
    }

    fn tool_call_events(
        calls: Vec<ToolCall>,
        req: &LlmRequest,
    ) -> Vec<Result<StreamEvent, ProviderError>> {
        let mut events = Vec::new();
        let mut written = 0;
        for (index, call) in (0u32..).zip(calls) {
            written += call.arguments.chars().count();
            events.push(Ok(StreamEvent::ToolCall {
                index,
                id: Some(call.id),
                name: Some(call.name),
                arguments: String::new(),
            }));
            events.push(Ok(StreamEvent::ToolCall {
                index,
                id: None,
                name: None,
                arguments: call.arguments,
            }));
        }
        events.push(Ok(StreamEvent::Usage {
            usage: Usage::new(req.prompt_chars() as u64, written as u64),
        }));
        events.push(Ok(StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls,
        }));
        events
    }
}

fn usage_for(req: &LlmRequest, text: &str) -> Usage {
    Usage::new(req.prompt_chars() as u64, text.chars().count() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn settle(mut reply: Reply) -> Reply {
    loop {
        match reply {
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Hang => futures::future::pending::<()>().await,
            other => return other,
        }
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }

    fn supports(&self, capability: Capability, model: &str) -> bool {
        match capability {
            Capability::Embeddings => self.profile.embedding_models.iter().any(|m| m == model),
            Capability::Tools | Capability::ForcedToolChoice | Capability::SerialToolCalls
                if self.tools =>
            {
                true
            }
            c => self.capabilities.contains(&c),
        }
    }

    /// Scripted like `generate` (an `Error` reply fails the batch, `Hang`
    /// never answers); otherwise [`vector_for`](Self::vector_for) each
    /// input, with one token per four bytes of input as usage.
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        lock(&self.embedded).push(req.inputs.clone());
        if let Reply::Error(e) = settle(self.next_scripted()).await {
            return Err(e);
        }
        let model = req.model.clone().unwrap_or_default();
        let vectors = req
            .inputs
            .iter()
            .map(|t| Self::vector_for(&model, t))
            .collect();
        let tokens = req.inputs.iter().map(|t| t.len().div_ceil(4) as u64).sum();
        Ok(EmbeddingResponse::from_provider(
            &self.name,
            self.kind,
            model,
            vectors,
            Usage::new(tokens, 0),
        ))
    }

    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        let model = self.model_for(req);
        let reply = settle(self.next_reply(req)).await;
        let stream = match reply {
            Reply::Error(e) => return Err(e),
            Reply::Text(t) => Self::text_events(&t, req),
            Reply::ToolCalls(calls) => Self::tool_call_events(calls, req),
            Reply::Stream(items) => items,
            Reply::Delayed(..) | Reply::Hang => Vec::new(),
        };
        let mut resp =
            ResponseStream::new(&self.name, self.kind, model, futures::stream::iter(stream))
                .collect_response()
                .await?;
        resp.response_time = Duration::ZERO;
        Ok(resp)
    }

    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        let model = self.model_for(req);
        let reply = settle(self.next_reply(req)).await;
        let items = match reply {
            Reply::Error(e) => return Err(e),
            Reply::Text(t) => Self::text_events(&t, req),
            Reply::ToolCalls(calls) => Self::tool_call_events(calls, req),
            Reply::Stream(items) => items,
            Reply::Delayed(..) | Reply::Hang => Vec::new(),
        };
        Ok(ResponseStream::new(
            &self.name,
            self.kind,
            model,
            futures::stream::iter(items),
        ))
    }

    async fn prepare(&self) -> Result<(), ProviderError> {
        self.prepares.fetch_add(1, Ordering::SeqCst);
        match lock(&self.prepare_error).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn is_available(&self) -> bool {
        self.availability_checks.fetch_add(1, Ordering::SeqCst);
        self.available.load(Ordering::SeqCst)
    }

    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(self.profile.models.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn script_then_fallback_reply() {
        let p = ScriptedProvider::new("p")
            .models(["m1", "m2"])
            .then(Reply::text("first answer"))
            .then(Reply::Error(ProviderError::http("p", 500, "boom")))
            .otherwise(Reply::text("later"));
        let r = p.generate(&LlmRequest::new("hi")).await.unwrap();
        assert_eq!(r.content, "first answer");
        assert_eq!(r.model, "m1");
        assert_eq!(r.usage, Usage::new(2, 12));
        assert_eq!(
            p.generate(&LlmRequest::new("x")).await.unwrap_err().status,
            Some(500)
        );
        assert_eq!(
            p.generate(&LlmRequest::new("x").model("m2"))
                .await
                .unwrap()
                .content,
            "later"
        );
        assert_eq!(p.calls(), 3);
        assert_eq!(p.requests()[2].model.as_deref(), Some("m2"));
    }

    #[tokio::test]
    async fn streams_words_then_usage_and_done() {
        let p = ScriptedProvider::new("p").otherwise(Reply::text("a b c"));
        let events: Vec<_> = p
            .stream(&LlmRequest::new("q"))
            .await
            .unwrap()
            .collect()
            .await;
        let deltas: String = events
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::Delta { text }) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deltas, "a b c");
        assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
    }

    #[tokio::test(start_paused = true)]
    async fn delays_use_tokio_time_and_availability_is_scripted() {
        let p = ScriptedProvider::new("p").then(Reply::text("late").after(Duration::from_secs(60)));
        let start = tokio::time::Instant::now();
        assert_eq!(
            p.generate(&LlmRequest::new("q")).await.unwrap().content,
            "late"
        );
        assert!(start.elapsed() >= Duration::from_secs(60));
        assert!(p.is_available().await);
        p.set_available(false);
        assert!(!p.is_available().await);
        assert_eq!(p.availability_checks(), 2);
    }

    #[tokio::test]
    async fn failure_rate_is_reproducible() {
        let run = || async {
            let p = ScriptedProvider::new("p").failure_rate(
                0.3,
                ProviderError::http("p", 503, "x"),
                42,
            );
            let mut fails = 0;
            for _ in 0..1000 {
                if p.generate(&LlmRequest::new("q")).await.is_err() {
                    fails += 1;
                }
            }
            fails
        };
        let a = run().await;
        assert_eq!(a, run().await);
        assert!((200..400).contains(&a), "{a}");
    }

    #[tokio::test]
    async fn stream_without_done_is_incomplete_when_collected() {
        let p = ScriptedProvider::new("p").then(Reply::Stream(vec![Ok(StreamEvent::delta("x"))]));
        let err = p.generate(&LlmRequest::new("q")).await.unwrap_err();
        assert_eq!(err.kind, crate::ProviderErrorKind::Incomplete);
    }
}
