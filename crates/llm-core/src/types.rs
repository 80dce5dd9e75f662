//! Request and response types shared by every provider and by the client.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorClass, ProviderError};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The application's user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, answering the assistant message that made it.
    Tool,
}

impl Role {
    /// The lowercase wire name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
///
/// An assistant message may carry the tool calls the model made
/// ([`Message::assistant_tool_calls`]); each call is answered by a
/// [`Role::Tool`] message naming the call ([`Message::tool_result`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Author of the message.
    pub role: Role,
    /// Plain text content (may be empty on an assistant message that only calls tools).
    pub content: String,
    /// Tool calls made by the model (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call this message answers (tool messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with the given role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// An `assistant` message that called tools, as a response reported it
    /// ([`LlmResponse::tool_calls`]), to send back with the tools' results.
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// A `tool` message: the result of the call with id `call_id`.
    ///
    /// ```
    /// use llm_core::{Message, Role};
    /// let m = Message::tool_result("call_abc123", "18°C, cloudy");
    /// assert_eq!(m.role, Role::Tool);
    /// assert_eq!(m.tool_call_id.as_deref(), Some("call_abc123"));
    /// ```
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A function the model may call.
///
/// ```
/// use llm_core::{LlmRequest, Tool, ToolChoice};
/// use serde_json::json;
/// let weather = Tool::function(
///     "get_weather",
///     "Current weather in a city",
///     json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
/// );
/// let req = LlmRequest::new("Weather in Paris?").tool(weather).tool_choice(ToolChoice::Auto);
/// assert_eq!(req.tools[0].name, "get_weather");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Name the model calls it by: 1 to 64 of `a-z A-Z 0-9 _ -`.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object schema).
    pub parameters: serde_json::Value,
}

impl Tool {
    /// A function tool with a description and a JSON Schema for its arguments.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: Some(description.into()),
            parameters,
        }
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default when tools are given).
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call the named tool.
    Function(String),
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolCall {
    /// Identifier that the tool's result message refers to.
    pub id: String,
    /// Name of the tool called.
    pub name: String,
    /// Arguments as JSON text, as the model wrote them (not validated against the schema).
    pub arguments: String,
}

/// How a request uses the response cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheDirective {
    /// Answer from the cache when possible and store fresh answers (default).
    #[default]
    Use,
    /// Neither read nor write the cache.
    Bypass,
    /// Skip the lookup but store the fresh answer.
    Refresh,
}

/// Default `max_tokens` of a request.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Default sampling temperature of a request.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;

/// A generation request: what to ask and how.
///
/// ```
/// use llm_core::{LlmRequest, Role};
///
/// let req = LlmRequest::new("Write a haiku about Rust")
///     .system("You are a poet.")
///     .max_tokens(200)
///     .temperature(0.9)
///     .provider("ollama");
/// assert_eq!(req.messages[0].role, Role::User);
/// assert_eq!(req.max_tokens, 200);
/// assert_eq!(LlmRequest::new("hi").max_tokens, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// A system prompt sent ahead of `messages`.
    pub system_prompt: Option<String>,
    /// Upper bound on generated tokens (default 4096).
    pub max_tokens: u32,
    /// Sampling temperature, 0 to 2 (default 0.7).
    pub temperature: f32,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Best-effort deterministic sampling seed.
    pub seed: Option<u64>,
    /// Model to use; `None` lets the provider use its default model.
    pub model: Option<String>,
    /// Provider instance (a name from the configuration) to try first.
    pub provider: Option<String>,
    /// How the response cache is used.
    pub cache: CacheDirective,
    /// Functions the model may call; only providers that support tools serve
    /// such a request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call (`None`: the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one answer (`None`: the
    /// provider's default, which is yes for OpenAI and Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

impl Default for LlmRequest {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            system_prompt: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: DEFAULT_TEMPERATURE,
            top_p: None,
            stop: Vec::new(),
            seed: None,
            model: None,
            provider: None,
            cache: CacheDirective::Use,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
        }
    }
}

impl LlmRequest {
    /// A request with one user message and the default settings.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self::from_messages(vec![Message::user(prompt)])
    }

    /// A request with the given conversation and the default settings.
    pub fn from_messages(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Offers a tool to the model (call once per tool).
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets whether and which tool the model must call.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Allows or forbids several tool calls in one answer.
    pub fn parallel_tool_calls(mut self, allowed: bool) -> Self {
        self.parallel_tool_calls = Some(allowed);
        self
    }

    /// Whether serving this request needs a provider that supports tools:
    /// it offers tools or its conversation carries tool calls or results.
    pub fn uses_tools(&self) -> bool {
        !self.tools.is_empty()
            || self
                .messages
                .iter()
                .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
    }

    /// Sets the system prompt.
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system_prompt = Some(system.into());
        self
    }

    /// Appends a message to the conversation.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Sets `max_tokens`.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets `top_p`.
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = Some(top_p);
        self
    }

    /// Adds a stop sequence.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }

    /// Sets the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Names the provider instance to try first.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Sets the cache directive.
    pub fn cache(mut self, cache: CacheDirective) -> Self {
        self.cache = cache;
        self
    }

    /// The prompt text the router measures: every message except system ones,
    /// joined by newlines (the system prompt is not part of it).
    pub fn prompt_text(&self) -> String {
        let mut out = String::new();
        for m in self.messages.iter().filter(|m| m.role != Role::System) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&m.content);
        }
        out
    }

    /// Length of [`prompt_text`](Self::prompt_text) in Unicode scalar values.
    pub fn prompt_chars(&self) -> usize {
        let texts: Vec<&str> = self
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let separators = texts.len().saturating_sub(1);
        texts.iter().map(|t| t.chars().count()).sum::<usize>() + separators
    }
}

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the input.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Sum of both.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage from input and output counts; the total is their sum.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    #[default]
    Stop,
    /// The token limit was reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Content was withheld by a filter or refused.
    ContentFilter,
    /// Any other reason, as the provider named it.
    Other(String),
}

impl FinishReason {
    /// A short name: `stop`, `length`, `tool_calls`, `content_filter` or the provider's own.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened when the client tried one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The provider answered.
    Success,
    /// The provider failed.
    Failed {
        /// How the failure was classified.
        class: ErrorClass,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The provider was not tried.
    Skipped {
        /// Why it was passed over (circuit open, unavailable, …).
        reason: String,
    },
}

/// One entry of [`LlmResponse::attempts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Provider instance name.
    pub provider: String,
    /// Model the request asked that provider for.
    pub model: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    /// Time spent on this provider, retries included.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
    /// How many calls were made to this provider (1 + retries).
    pub calls: u32,
}

impl Attempt {
    /// Whether this attempt produced the answer.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, AttemptOutcome::Success)
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.provider, self.model)?;
        match &self.outcome {
            AttemptOutcome::Success => write!(f, ": ok")?,
            AttemptOutcome::Failed {
                class,
                status,
                message,
            } => {
                write!(f, ": {class}")?;
                if let Some(s) = status {
                    write!(f, ", HTTP {s}")?;
                }
                write!(f, ": {message}")?;
            }
            AttemptOutcome::Skipped { reason } => write!(f, ": skipped: {reason}")?,
        }
        write!(
            f,
            " [{} call(s), {} ms]",
            self.calls,
            self.elapsed.as_millis()
        )
    }
}

/// A completed generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// Generated text.
    pub content: String,
    /// Provider instance that answered.
    pub provider: String,
    /// Kind of that provider (`openai`, `ollama`, …).
    pub provider_kind: String,
    /// Model that answered, as the provider reported it.
    pub model: String,
    /// Token counts.
    pub usage: Usage,
    /// Cost in US dollars (0 for local providers and cache hits).
    pub cost: f64,
    /// Wall time of the whole call.
    #[serde(with = "duration_ms")]
    pub response_time: Duration,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// Every provider tried, in order.
    pub attempts: Vec<Attempt>,
    /// Tools the model called (then `finish_reason` is usually `ToolCalls`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl LlmResponse {
    /// Total tokens used.
    pub fn tokens_used(&self) -> u64 {
        self.usage.total_tokens
    }

    /// The answer as stream events: its text as one delta (unless it is empty
    /// and there are tool calls), one fragment per tool call, usage and `Done`.
    pub fn into_events(self) -> Vec<StreamEvent> {
        replay_events(
            self.content,
            self.tool_calls,
            self.usage,
            self.finish_reason,
        )
    }
}

/// One item of a streamed generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A fragment of generated text.
    Delta {
        /// The text fragment.
        text: String,
    },
    /// A fragment of a tool call. The first fragment of call `index` carries
    /// its `id` and `name`; the `arguments` of all its fragments, concatenated
    /// in order, are the call's JSON arguments. A provider that receives whole
    /// calls sends one fragment per call.
    ToolCall {
        /// Position of the call in the response (0, 1, …).
        index: u32,
        /// The call's id (first fragment only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The tool's name (first fragment only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A piece of the JSON arguments.
        arguments: String,
    },
    /// Token counts; sent once, near the end.
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// The generation finished normally; nothing follows.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
    },
}

impl StreamEvent {
    /// A text fragment.
    pub fn delta(text: impl Into<String>) -> Self {
        StreamEvent::Delta { text: text.into() }
    }
}

/// The boxed stream type behind [`ResponseStream`].
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A streamed generation: text deltas, then usage, then `Done`.
///
/// A stream that ends without `Done` is incomplete; a failure after the first
/// event is delivered as an `Err` item, never as a silent end.
pub struct ResponseStream {
    inner: EventStream,
    /// Provider instance that is answering.
    pub provider: String,
    /// Kind of that provider.
    pub provider_kind: String,
    /// Model that is answering.
    pub model: String,
    /// Providers tried before this stream was opened (filled in by the client).
    pub attempts: Vec<Attempt>,
    /// Whether the stream replays a cached answer.
    pub cached: bool,
}

impl ResponseStream {
    /// Wraps a stream of events produced by `provider`.
    pub fn new(
        provider: impl Into<String>,
        provider_kind: impl Into<String>,
        model: impl Into<String>,
        inner: impl Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            provider: provider.into(),
            provider_kind: provider_kind.into(),
            model: model.into(),
            attempts: Vec::new(),
            cached: false,
        }
    }

    /// Replaces the event stream, keeping the metadata.
    pub fn map_inner(self, f: impl FnOnce(EventStream) -> EventStream) -> Self {
        Self {
            inner: f(self.inner),
            ..self
        }
    }

    /// Takes the event stream out, dropping the metadata.
    pub fn into_inner(self) -> EventStream {
        self.inner
    }

    /// A whole answer replayed as a stream of its
    /// [`into_events`](LlmResponse::into_events), with its provider, model,
    /// attempts and `cached` flag.
    pub fn replay(resp: LlmResponse) -> Self {
        let LlmResponse {
            content,
            provider,
            provider_kind,
            model,
            usage,
            finish_reason,
            cached,
            attempts,
            tool_calls,
            cost: _,
            response_time: _,
        } = resp;
        let events = replay_events(content, tool_calls, usage, finish_reason);
        let mut s = Self::new(
            provider,
            provider_kind,
            model,
            futures::stream::iter(events.into_iter().map(Ok)),
        );
        s.attempts = attempts;
        s.cached = cached;
        s
    }

    /// Reads the whole stream into a response (usage and finish reason included).
    ///
    /// Fails with the stream's error, or with a [`ProviderError`] of kind
    /// [`Incomplete`](crate::ProviderErrorKind::Incomplete) when it ends without `Done`.
    pub async fn collect_response(mut self) -> Result<LlmResponse, ProviderError> {
        use futures::StreamExt;
        let started = std::time::Instant::now();
        let mut content = String::new();
        let mut calls = ToolCallAssembler::default();
        let mut usage = None;
        let mut finish = None;
        while let Some(item) = self.inner.next().await {
            match item? {
                StreamEvent::Delta { text } => content.push_str(&text),
                StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                } => calls.push(index, id, name, &arguments),
                StreamEvent::Usage { usage: u } => usage = Some(u),
                StreamEvent::Done { finish_reason } => {
                    finish = Some(finish_reason);
                    break;
                }
            }
        }
        let finish_reason = finish.ok_or_else(|| {
            ProviderError::incomplete(&self.provider, "stream ended before it was complete")
        })?;
        Ok(LlmResponse {
            content,
            provider: self.provider,
            provider_kind: self.provider_kind,
            model: self.model,
            usage: usage.unwrap_or_default(),
            cost: 0.0,
            response_time: started.elapsed(),
            finish_reason,
            cached: self.cached,
            attempts: self.attempts,
            tool_calls: calls.finish(),
        })
    }
}

/// The events that replay a whole answer as a stream: its text as one delta
/// (if any), one fragment per tool call, usage and `Done`.
fn replay_events(
    content: String,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    finish_reason: FinishReason,
) -> Vec<StreamEvent> {
    let mut events = Vec::with_capacity(3 + tool_calls.len());
    if !content.is_empty() || tool_calls.is_empty() {
        events.push(StreamEvent::delta(content));
    }
    for (index, call) in (0u32..).zip(tool_calls) {
        events.push(StreamEvent::ToolCall {
            index,
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        });
    }
    events.push(StreamEvent::Usage { usage });
    events.push(StreamEvent::Done { finish_reason });
    events
}

/// Joins [`StreamEvent::ToolCall`] fragments into whole [`ToolCall`]s.
///
/// ```
/// use llm_core::{ToolCall, ToolCallAssembler};
/// let mut a = ToolCallAssembler::default();
/// a.push(0, Some("call_1".into()), Some("get_weather".into()), "");
/// a.push(0, None, None, "{\"city\":");
/// a.push(0, None, None, "\"Paris\"}");
/// assert_eq!(
///     a.finish(),
///     vec![ToolCall { id: "call_1".into(), name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() }]
/// );
/// ```
#[derive(Debug, Default, Clone)]
pub struct ToolCallAssembler {
    calls: std::collections::BTreeMap<u32, ToolCall>,
}

impl ToolCallAssembler {
    /// Adds one fragment of call `index`.
    pub fn push(&mut self, index: u32, id: Option<String>, name: Option<String>, arguments: &str) {
        let call = self.calls.entry(index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        if let Some(id) = id {
            call.id = id;
        }
        if let Some(name) = name {
            call.name = name;
        }
        call.arguments.push_str(arguments);
    }

    /// Adds `event` if it is a [`StreamEvent::ToolCall`] fragment; says whether it was.
    pub fn push_event(&mut self, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                self.push(*index, id.clone(), name.clone(), arguments);
                true
            }
            _ => false,
        }
    }

    /// Whether no fragment was added.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls, in index order.
    pub fn finish(self) -> Vec<ToolCall> {
        self.calls.into_values().collect()
    }
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("provider", &self.provider)
            .field("provider_kind", &self.provider_kind)
            .field("model", &self.model)
            .field("attempts", &self.attempts)
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

impl Stream for ResponseStream {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Serializes a `Duration` as whole milliseconds.
pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_defaults_match_the_original_design() {
        let r = LlmRequest::new("Hello");
        assert_eq!(r.max_tokens, 4096);
        assert!((r.temperature - 0.7).abs() < f32::EPSILON);
        assert_eq!(r.messages, vec![Message::user("Hello")]);
        assert_eq!(r.cache, CacheDirective::Use);
        assert!(r.model.is_none() && r.provider.is_none() && r.system_prompt.is_none());
    }

    #[test]
    fn builder_sets_every_field() {
        let r = LlmRequest::new("a")
            .system("s")
            .max_tokens(10)
            .temperature(0.1)
            .top_p(0.5)
            .stop("END")
            .seed(7)
            .model("m")
            .provider("p")
            .cache(CacheDirective::Bypass)
            .message(Message::assistant("b"));
        assert_eq!(r.system_prompt.as_deref(), Some("s"));
        assert_eq!(r.max_tokens, 10);
        assert_eq!(r.top_p, Some(0.5));
        assert_eq!(r.stop, vec!["END".to_string()]);
        assert_eq!(r.seed, Some(7));
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.provider.as_deref(), Some("p"));
        assert_eq!(r.cache, CacheDirective::Bypass);
        assert_eq!(r.messages.len(), 2);
    }

    #[test]
    fn prompt_measure_counts_characters_not_bytes_and_skips_system() {
        let r = LlmRequest::from_messages(vec![
            Message::system("ignored system text"),
            Message::user("创作"),
            Message::assistant("ab"),
        ])
        .system("also ignored");
        assert_eq!(r.prompt_text(), "创作\nab");
        assert_eq!(r.prompt_chars(), 5);
        assert_eq!(r.prompt_chars(), r.prompt_text().chars().count());
    }

    #[test]
    fn attempts_serialize_flat() {
        let a = Attempt {
            provider: "p".into(),
            model: "m".into(),
            outcome: AttemptOutcome::Failed {
                class: ErrorClass::Retryable,
                status: Some(503),
                message: "busy".into(),
            },
            elapsed: std::time::Duration::from_millis(12),
            calls: 3,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"provider":"p","model":"m","outcome":"failed","class":"retryable",
                "status":503,"message":"busy","elapsed":12,"calls":3})
        );
        let back: Attempt = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn usage_total_is_the_sum() {
        assert_eq!(Usage::new(3, 4).total_tokens, 7);
    }
}
