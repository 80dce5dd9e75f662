//! Request and response types shared by every provider and by the client.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorClass, ProviderError};
use crate::model_filter::ModelFilter;

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
    /// Images given with the text (user messages only), in order, after the text.
    /// Only providers (and models) with vision serve a request carrying images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageInput>,
    /// The model's reasoning blocks of an earlier answer (assistant messages
    /// only, [`LlmResponse::thinking`]), sent back unchanged: Anthropic needs
    /// the last assistant turn's blocks, signatures included, when tools are
    /// used with thinking. Providers without thinking leave them out (as
    /// Anthropic itself does with the blocks of earlier turns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<ThinkingBlock>,
}

impl Message {
    /// A message with the given role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            images: Vec::new(),
            thinking: Vec::new(),
        }
    }

    /// Attaches an image (a `https:` or `data:` URL) to this message.
    ///
    /// ```
    /// use llm_core::{ImageInput, Message};
    /// let m = Message::user("What is in this picture?")
    ///     .image(ImageInput::url("data:image/png;base64,iVBORw0KGgo="));
    /// assert_eq!(m.images[0].data().map(|d| d.media_type), Some("image/png"));
    /// ```
    pub fn image(mut self, image: ImageInput) -> Self {
        self.images.push(image);
        self
    }

    /// An `assistant` message that called tools, as a response reported it
    /// ([`LlmResponse::tool_calls`]), to send back with the tools' results.
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// An `assistant` message as a response reported it: its reasoning
    /// blocks ([`LlmResponse::thinking`]), text and tool calls, to send back
    /// in the next request of the conversation.
    ///
    /// ```
    /// use llm_core::{Message, ThinkingBlock};
    /// let block = ThinkingBlock::Thinking { thinking: "2+2 is 4".into(), signature: "sig".into() };
    /// let m = Message::assistant_turn(vec![block.clone()], "4", Vec::new());
    /// assert_eq!(m.thinking, vec![block]);
    /// ```
    pub fn assistant_turn(
        thinking: Vec<ThinkingBlock>,
        content: impl Into<String>,
        calls: Vec<ToolCall>,
    ) -> Self {
        Self {
            thinking,
            ..Self::assistant_tool_calls(content, calls)
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

/// An image given to the model: a `https:`/`http:` URL, or a `data:` URL
/// carrying the bytes in base64 (`data:image/png;base64,…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageInput {
    /// The image's URL (`https://…` or `data:<media type>;base64,<data>`).
    pub url: String,
    /// OpenAI's `detail` hint (`low`, `high`, `auto`); providers without one ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The parts of a base64 `data:` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageData<'a> {
    /// The media type, e.g. `image/png`.
    pub media_type: &'a str,
    /// The base64 text of the bytes.
    pub base64: &'a str,
}

impl ImageInput {
    /// An image at `url` without a detail hint.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            detail: None,
        }
    }

    /// The media type and base64 data of a `data:<type>;base64,<data>` URL;
    /// `None` for any other URL.
    pub fn data(&self) -> Option<ImageData<'_>> {
        let rest = self.url.strip_prefix("data:")?;
        let (meta, data) = rest.split_once(',')?;
        let media_type = meta.strip_suffix(";base64")?;
        Some(ImageData {
            media_type,
            base64: data,
        })
    }

    /// Whether the URL is a remote `http:`/`https:` one (not inline data).
    pub fn is_remote(&self) -> bool {
        self.url.starts_with("https://") || self.url.starts_with("http://")
    }
}

/// The shape the answer must take (structured output).
///
/// ```
/// use llm_core::{LlmRequest, ResponseFormat};
/// use serde_json::json;
/// let req = LlmRequest::new("Name a city in France.").response_format(ResponseFormat::JsonSchema {
///     name: "city".into(),
///     schema: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
///     strict: Some(true),
///     description: None,
/// });
/// assert!(req.response_format.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON that matches a JSON Schema.
    JsonSchema {
        /// The schema's name (`a-z A-Z 0-9 _ -`, at most 64).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Whether the provider must follow the schema exactly (OpenAI's `strict`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        /// What the schema is for, for the model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// The log probability of one generated token, with the most likely alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token.
    pub token: String,
    /// Its log probability.
    pub logprob: f64,
    /// Its UTF-8 bytes, when the provider gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// The most likely tokens at this position (as many as `top_logprobs` asked).
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// One alternative of a [`TokenLogprob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// The token.
    pub token: String,
    /// Its log probability.
    pub logprob: f64,
    /// Its UTF-8 bytes, when the provider gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
}

/// Smallest thinking budget Anthropic accepts (`budget_tokens`).
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// Extended thinking: whether the model reasons in thinking blocks before it
/// answers (Anthropic's `thinking`; the wire shapes are the same:
/// `{"type":"enabled","budget_tokens":N}`, `{"type":"adaptive"}`,
/// `{"type":"disabled"}`).
///
/// `Enabled` and `Adaptive` are served only by providers with
/// [`Capability::Thinking`]; `Disabled` is every provider's default
/// behaviour and needs nothing.
///
/// ```
/// use llm_core::{Capability, LlmRequest, Thinking};
/// let req = LlmRequest::new("Is 1009 prime?")
///     .max_tokens(4000)
///     .thinking(Thinking::Enabled { budget_tokens: 2048 });
/// assert_eq!(req.needs(), vec![Capability::Thinking]);
/// assert_eq!(
///     serde_json::to_string(&req.thinking).unwrap(),
///     r#"{"type":"enabled","budget_tokens":2048}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    /// Think, with at most `budget_tokens` tokens of reasoning (at least
    /// [`MIN_THINKING_BUDGET`] and below `max_tokens`).
    Enabled {
        /// Most tokens the model may spend thinking.
        budget_tokens: u32,
    },
    /// The model decides whether and how much to think.
    Adaptive,
    /// No thinking (the default).
    Disabled,
}

impl Thinking {
    /// Whether the model is asked to think (`Enabled` or `Adaptive`).
    pub fn is_on(self) -> bool {
        !matches!(self, Thinking::Disabled)
    }
}

/// One block of the model's reasoning, as a provider with thinking returns
/// it. Blocks are sent back unchanged in later turns
/// ([`Message::thinking`]): the signature authenticates them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingBlock {
    /// Reasoning text and the signature that authenticates it (empty when
    /// the provider gives none).
    Thinking {
        /// The reasoning text (possibly a summary, or empty when omitted).
        thinking: String,
        /// Opaque signature of the block.
        #[serde(default)]
        signature: String,
    },
    /// Reasoning the provider encrypted: only its opaque data travels.
    RedactedThinking {
        /// The encrypted reasoning.
        data: String,
    },
}

/// Joins [`StreamEvent::Thinking`], [`StreamEvent::ThinkingSignature`] and
/// [`StreamEvent::RedactedThinking`] items into whole [`ThinkingBlock`]s.
///
/// ```
/// use llm_core::{StreamEvent, ThinkingAssembler, ThinkingBlock};
/// let mut a = ThinkingAssembler::default();
/// for e in [
///     StreamEvent::Thinking { index: 0, text: "Let me ".into() },
///     StreamEvent::Thinking { index: 0, text: "think.".into() },
///     StreamEvent::ThinkingSignature { index: 0, signature: "sig".into() },
///     StreamEvent::RedactedThinking { index: 1, data: "enc".into() },
/// ] {
///     assert!(a.push_event(&e));
/// }
/// assert_eq!(a.finish(), vec![
///     ThinkingBlock::Thinking { thinking: "Let me think.".into(), signature: "sig".into() },
///     ThinkingBlock::RedactedThinking { data: "enc".into() },
/// ]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct ThinkingAssembler {
    blocks: std::collections::BTreeMap<u32, ThinkingBlock>,
}

impl ThinkingAssembler {
    fn thinking(&mut self, index: u32) -> Option<(&mut String, &mut String)> {
        let block = self
            .blocks
            .entry(index)
            .or_insert_with(|| ThinkingBlock::Thinking {
                thinking: String::new(),
                signature: String::new(),
            });
        match block {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => Some((thinking, signature)),
            ThinkingBlock::RedactedThinking { .. } => None,
        }
    }

    /// Adds `event` if it is a thinking item; says whether it was.
    pub fn push_event(&mut self, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::Thinking { index, text } => {
                if let Some((thinking, _)) = self.thinking(*index) {
                    thinking.push_str(text);
                }
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                if let Some((_, sig)) = self.thinking(*index) {
                    sig.push_str(signature);
                }
            }
            StreamEvent::RedactedThinking { index, data } => {
                self.blocks.insert(
                    *index,
                    ThinkingBlock::RedactedThinking { data: data.clone() },
                );
            }
            _ => return false,
        }
        true
    }

    /// The blocks, in index order.
    pub fn finish(self) -> Vec<ThinkingBlock> {
        self.blocks.into_values().collect()
    }
}

/// A capability a request may need and a provider (or model) may have.
///
/// A request is planned only onto providers that have every capability it
/// needs ([`LlmRequest::needs`], [`Provider::supports`](crate::Provider::supports)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// Tools offered, or tool calls and results in the conversation.
    Tools,
    /// `tool_choice` `required` or a named function: a tool call can be forced.
    ForcedToolChoice,
    /// `parallel_tool_calls: false` can be honoured.
    SerialToolCalls,
    /// `response_format` `json_object`.
    JsonObject,
    /// `response_format` `json_schema`.
    JsonSchema,
    /// Images in user messages (vision).
    Images,
    /// `logprobs` / `top_logprobs` returned with the answer.
    Logprobs,
    /// `frequency_penalty` / `presence_penalty`.
    Penalties,
    /// OpenAI-specific fields passed through verbatim ([`LlmRequest::extra`]).
    Passthrough,
    /// Embeddings ([`Provider::embed`](crate::Provider::embed)) with the given model.
    Embeddings,
    /// Extended thinking ([`LlmRequest::thinking`] enabled or adaptive): the
    /// answer's reasoning comes back as [`ThinkingBlock`]s.
    Thinking,
}

impl Capability {
    /// The request field that needs this capability, as error messages name it.
    pub fn field(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::ForcedToolChoice => "tool_choice",
            Capability::SerialToolCalls => "parallel_tool_calls",
            Capability::JsonObject | Capability::JsonSchema => "response_format",
            Capability::Images => "image_url",
            Capability::Logprobs => "logprobs",
            Capability::Penalties => "frequency_penalty/presence_penalty",
            Capability::Passthrough => "extra",
            Capability::Embeddings => "model",
            Capability::Thinking => "thinking",
        }
    }

    /// What a provider without it "does not support", for skip reasons.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::ForcedToolChoice => "forcing a tool call (tool_choice)",
            Capability::SerialToolCalls => "parallel_tool_calls: false",
            Capability::JsonObject => "JSON mode (response_format json_object)",
            Capability::JsonSchema => "structured output (response_format json_schema)",
            Capability::Images => "images",
            Capability::Logprobs => "logprobs",
            Capability::Penalties => "frequency/presence penalties",
            Capability::Passthrough => "OpenAI-specific request fields",
            Capability::Embeddings => "embeddings",
            Capability::Thinking => "extended thinking",
        }
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

/// Default sampling temperature of a request built with [`LlmRequest::new`].
pub const DEFAULT_TEMPERATURE: f32 = 0.7;

/// A generation request: what to ask and how.
///
/// Optional settings left at `None` are not sent: the provider's own default
/// applies (a provider that requires `max_tokens`, like Anthropic, uses the
/// instance's configured output limit).
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
/// assert_eq!(req.max_tokens, Some(200));
/// assert_eq!(LlmRequest::new("hi").max_tokens, None); // no limit unless asked
/// assert_eq!(LlmRequest::new("hi").temperature, Some(0.7));
/// assert_eq!(LlmRequest::plain(vec![]).temperature, None); // nothing set
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// A system prompt sent ahead of `messages`.
    pub system_prompt: Option<String>,
    /// Upper bound on generated tokens; `None`: the caller set no limit.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2 (`None`: the provider's default; 0.7 from
    /// [`LlmRequest::new`]).
    pub temperature: Option<f32>,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Best-effort deterministic sampling seed (signed, as OpenAI's).
    pub seed: Option<i64>,
    /// Penalty for tokens by how often they appeared, -2 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Penalty for tokens that appeared at all, -2 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Return the log probability of each generated token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    /// With `logprobs`, how many most likely alternatives per position (0 to 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    /// The shape the answer must take (`None`: free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// An end-user identifier for the provider's abuse monitoring (OpenAI
    /// `user`, Anthropic `metadata.user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// OpenAI-specific request fields passed through verbatim to OpenAI-kind
    /// upstreams (`logit_bias`, `service_tier`, `metadata`, `store`,
    /// `reasoning_effort`, `prediction`, `web_search_options`, …). A request
    /// carrying any is planned only onto providers that pass them through.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
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
    /// Extended thinking (`None`: the provider's default, no thinking). When
    /// on, only providers with [`Capability::Thinking`] serve the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// The instances and models that may serve the request (`None`: any).
    /// The router leaves every other instance out of the plan (fallbacks
    /// and last resort included, and unlisted among the skipped ones);
    /// nothing allowed is [`LlmError::NotAllowed`](crate::LlmError::NotAllowed),
    /// and capabilities are checked among the allowed instances only. A gateway
    /// sets it from a virtual key's allowed models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<ModelFilter>,
}

impl Default for LlmRequest {
    /// No messages, temperature 0.7, everything else unset.
    fn default() -> Self {
        Self {
            temperature: Some(DEFAULT_TEMPERATURE),
            ..Self::plain(Vec::new())
        }
    }
}

impl LlmRequest {
    /// A request with one user message and the default settings.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self::from_messages(vec![Message::user(prompt)])
    }

    /// A request with the given conversation and the default settings
    /// (temperature 0.7, no `max_tokens`).
    pub fn from_messages(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// A request with the given conversation and nothing else set: every
    /// sampling parameter is left to the provider. A gateway builds its
    /// requests this way, so an upstream receives only what its client sent.
    pub fn plain(messages: Vec<Message>) -> Self {
        Self {
            messages,
            system_prompt: None,
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            seed: None,
            frequency_penalty: None,
            presence_penalty: None,
            logprobs: false,
            top_logprobs: None,
            response_format: None,
            user: None,
            extra: serde_json::Map::new(),
            model: None,
            provider: None,
            cache: CacheDirective::Use,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            thinking: None,
            allowed_models: None,
        }
    }

    /// Keeps the route within `filter` ([`allowed_models`](Self::allowed_models)).
    pub fn allowed_models(mut self, filter: ModelFilter) -> Self {
        self.allowed_models = Some(filter);
        self
    }

    /// Asks for extended thinking. Anthropic takes no `temperature` but 1
    /// with thinking on, so turning thinking on clears the temperature
    /// (set one afterwards to send it anyway).
    pub fn thinking(mut self, thinking: Thinking) -> Self {
        if thinking.is_on() {
            self.temperature = None;
        }
        self.thinking = Some(thinking);
        self
    }

    /// Sets the response format (structured output).
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Asks for the log probability of each token, with `top` alternatives.
    pub fn logprobs(mut self, top: Option<u8>) -> Self {
        self.logprobs = true;
        self.top_logprobs = top;
        self
    }

    /// The capabilities a provider needs to serve this request, each once.
    ///
    /// ```
    /// use llm_core::{Capability, LlmRequest, ResponseFormat};
    /// let req = LlmRequest::new("hi").response_format(ResponseFormat::JsonObject);
    /// assert_eq!(req.needs(), vec![Capability::JsonObject]);
    /// assert!(LlmRequest::new("hi").needs().is_empty());
    /// ```
    pub fn needs(&self) -> Vec<Capability> {
        let mut out = Vec::new();
        if self.uses_tools() {
            out.push(Capability::Tools);
        }
        if matches!(
            self.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Function(_))
        ) {
            out.push(Capability::ForcedToolChoice);
        }
        if self.parallel_tool_calls == Some(false) && !self.tools.is_empty() {
            out.push(Capability::SerialToolCalls);
        }
        match self.response_format {
            Some(ResponseFormat::JsonObject) => out.push(Capability::JsonObject),
            Some(ResponseFormat::JsonSchema { .. }) => out.push(Capability::JsonSchema),
            Some(ResponseFormat::Text) | None => {}
        }
        if self.messages.iter().any(|m| !m.images.is_empty()) {
            out.push(Capability::Images);
        }
        if self.logprobs || self.top_logprobs.is_some() {
            out.push(Capability::Logprobs);
        }
        if self.frequency_penalty.is_some() || self.presence_penalty.is_some() {
            out.push(Capability::Penalties);
        }
        if !self.extra.is_empty() {
            out.push(Capability::Passthrough);
        }
        if self.thinking.is_some_and(Thinking::is_on) {
            out.push(Capability::Thinking);
        }
        out
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
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
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
    pub fn seed(mut self, seed: i64) -> Self {
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
    /// Of `prompt_tokens`, those read from the provider's prompt cache
    /// (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`), priced
    /// at the cached-input price.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Of `prompt_tokens`, those written to the provider's prompt cache
    /// (Anthropic `cache_creation_input_tokens`), priced at the cache-write price.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Usage from input and output counts; the total is their sum (saturating:
    /// counts come from servers).
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        }
    }

    /// Records prompt-cache reads and writes (both part of `prompt_tokens`).
    pub fn with_cache(mut self, read: u64, write: u64) -> Self {
        self.cache_read_tokens = read.min(self.prompt_tokens);
        self.cache_write_tokens = write.min(self.prompt_tokens - self.cache_read_tokens);
        self
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
        /// The provider refused the request before sending it: it cannot
        /// serve what was asked (a field, an image it cannot fetch). A
        /// gateway answers such a request with a client error, not a 502.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refused: bool,
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
                ..
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
    /// Log probabilities of the generated tokens, when the request asked for
    /// them and the provider gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprob>,
    /// The model's reasoning, in order, when thinking was asked for
    /// ([`LlmRequest::thinking`]); it came before the text and tool calls.
    /// Send it back with [`Message::assistant_turn`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<ThinkingBlock>,
}

impl LlmResponse {
    /// Total tokens used.
    pub fn tokens_used(&self) -> u64 {
        self.usage.total_tokens
    }

    /// The answer as stream events: its thinking blocks (text, then
    /// signature; redacted ones whole), its text as one delta (unless it is
    /// empty and there are tool calls), one fragment per tool call, usage
    /// and `Done`.
    pub fn into_events(self) -> Vec<StreamEvent> {
        replay_events(
            self.thinking,
            self.content,
            self.tool_calls,
            self.logprobs,
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
    /// A fragment of the reasoning text of thinking block `index` (0, 1, …
    /// among the answer's thinking blocks, which come before its text).
    Thinking {
        /// Position of the block among the answer's thinking blocks.
        index: u32,
        /// The reasoning fragment.
        text: String,
    },
    /// The signature of thinking block `index`, after its last fragment.
    ThinkingSignature {
        /// Position of the block among the answer's thinking blocks.
        index: u32,
        /// The signature (fragments, if several, are concatenated).
        signature: String,
    },
    /// A whole redacted (encrypted) thinking block at `index`.
    RedactedThinking {
        /// Position of the block among the answer's thinking blocks.
        index: u32,
        /// The encrypted reasoning.
        data: String,
    },
    /// Log probabilities of the tokens of the text deltas before it.
    Logprobs {
        /// One entry per token.
        logprobs: Vec<TokenLogprob>,
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
            logprobs,
            thinking,
            cost: _,
            response_time: _,
        } = resp;
        let events = replay_events(
            thinking,
            content,
            tool_calls,
            logprobs,
            usage,
            finish_reason,
        );
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
        let mut logprobs = Vec::new();
        let mut thinking = ThinkingAssembler::default();
        while let Some(item) = self.inner.next().await {
            let item = item?;
            if thinking.push_event(&item) {
                continue;
            }
            match item {
                StreamEvent::Delta { text } => content.push_str(&text),
                StreamEvent::Logprobs { logprobs: l } => logprobs.extend(l),
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
                StreamEvent::Thinking { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. } => {}
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
            logprobs,
            thinking: thinking.finish(),
        })
    }
}

/// The events that replay a whole answer as a stream: its thinking blocks,
/// its text as one delta (if any), one fragment per tool call, usage and
/// `Done`.
fn replay_events(
    thinking: Vec<ThinkingBlock>,
    content: String,
    tool_calls: Vec<ToolCall>,
    logprobs: Vec<TokenLogprob>,
    usage: Usage,
    finish_reason: FinishReason,
) -> Vec<StreamEvent> {
    let mut events = Vec::with_capacity(4 + tool_calls.len() + 2 * thinking.len());
    for (index, block) in (0u32..).zip(thinking) {
        match block {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => {
                events.push(StreamEvent::Thinking {
                    index,
                    text: thinking,
                });
                // As a live stream: no signature event for an unsigned block.
                if !signature.is_empty() {
                    events.push(StreamEvent::ThinkingSignature { index, signature });
                }
            }
            ThinkingBlock::RedactedThinking { data } => {
                events.push(StreamEvent::RedactedThinking { index, data });
            }
        }
    }
    if !content.is_empty() || tool_calls.is_empty() {
        events.push(StreamEvent::delta(content));
    }
    if !logprobs.is_empty() {
        events.push(StreamEvent::Logprobs { logprobs });
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
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.temperature, Some(0.7));
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
        assert_eq!(r.max_tokens, Some(10));
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
                refused: false,
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
