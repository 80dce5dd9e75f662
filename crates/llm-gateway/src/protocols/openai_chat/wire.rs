//! Serde types of the OpenAI Chat Completions API, as the gateway serves it.
//!
//! Requests: every top-level field of OpenAI's Chat Completions reference is
//! known ([`MAPPED_FIELDS`], [`PASSTHROUGH_FIELDS`], [`REFUSED_FIELDS`]); any
//! other field is refused, and a known field with a wrong type is an error
//! naming the field. Responses: the exact shapes of `chat.completion`,
//! `chat.completion.chunk` and the model list.

use llm_router::{FinishReason, TokenLogprob, Usage};
use serde::{Deserialize, Serialize};

/// Request fields the gateway maps into the router's request (or handles itself).
pub const MAPPED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "user",
    "response_format",
    "modalities",
];

/// OpenAI-specific request fields passed through verbatim to OpenAI-kind
/// upstreams (a request carrying any is served only by those).
pub const PASSTHROUGH_FIELDS: &[&str] = &[
    "logit_bias",
    "service_tier",
    "metadata",
    "store",
    "reasoning_effort",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
];

/// Request fields the gateway cannot honour: refused with a 400 when set
/// (not null). `n` above 1 and `modalities` other than `["text"]` are refused
/// too.
pub const REFUSED_FIELDS: &[&str] = &["audio", "functions", "function_call"];

/// `POST /v1/chat/completions` body (the fields the gateway maps; pass-through
/// fields are taken from the JSON object as they are).
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// `auto`, a model name, or `instance/model`.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Option<Vec<ChatMessage>>,
    /// Deprecated upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Upper bound on generated tokens (wins over `max_tokens`).
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Best-effort deterministic sampling.
    pub seed: Option<i64>,
    /// Number of choices (only 1 is supported).
    pub n: Option<u32>,
    /// Server-sent events instead of one JSON object.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Functions the model may call.
    pub tools: Option<Vec<WireTool>>,
    /// `none`, `auto`, `required` or `{"type":"function","function":{"name":…}}`.
    pub tool_choice: Option<WireToolChoice>,
    /// Whether the model may call several tools in one answer.
    pub parallel_tool_calls: Option<bool>,
    /// Penalty for frequent tokens, -2 to 2.
    pub frequency_penalty: Option<f32>,
    /// Penalty for tokens that appeared at all, -2 to 2.
    pub presence_penalty: Option<f32>,
    /// Return the log probability of each generated token.
    pub logprobs: Option<bool>,
    /// With `logprobs`, how many alternatives per position (0 to 20).
    pub top_logprobs: Option<u8>,
    /// An end-user identifier.
    pub user: Option<String>,
    /// `{"type":"text"}`, `{"type":"json_object"}` or
    /// `{"type":"json_schema","json_schema":{…}}`.
    pub response_format: Option<WireResponseFormat>,
    /// Output modalities; only `["text"]` is served.
    pub modalities: Option<Vec<String>>,
}

/// `response_format`.
#[derive(Debug, Deserialize)]
pub struct WireResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The schema of a `json_schema` format.
    #[serde(default)]
    pub json_schema: Option<WireJsonSchema>,
}

/// `response_format.json_schema`.
#[derive(Debug, Deserialize)]
pub struct WireJsonSchema {
    /// The schema's name.
    pub name: String,
    /// What the schema is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The JSON Schema.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// Exact schema adherence.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// One entry of `tools`.
#[derive(Debug, Deserialize)]
pub struct WireTool {
    /// `function` (the only type the gateway serves).
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: Option<WireFunction>,
}

/// `tools[].function`.
#[derive(Debug, Deserialize)]
pub struct WireFunction {
    /// Name the model calls it by.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments (absent: no arguments).
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    /// Exact schema adherence of the arguments: `true` is refused (no
    /// provider behind the gateway is asked for it), `false` is the default.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WireToolChoice {
    /// `none`, `auto` or `required`.
    Mode(String),
    /// `{"type":"function","function":{"name":…}}` (or another object form).
    Named(NamedToolChoice),
}

/// The object form of `tool_choice`.
#[derive(Debug, Deserialize)]
pub struct NamedToolChoice {
    /// `function` (`allowed_tools` and `custom` are not served).
    #[serde(rename = "type")]
    pub kind: String,
    /// The function to call.
    #[serde(default)]
    pub function: Option<FunctionName>,
}

/// `{"name": …}`.
#[derive(Debug, Deserialize)]
pub struct FunctionName {
    /// The function's name.
    pub name: String,
}

/// One tool call of an assistant message (request side).
#[derive(Debug, Deserialize)]
pub struct WireToolCall {
    /// The call's id.
    pub id: String,
    /// `function`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Name and JSON arguments.
    pub function: WireCallFunction,
}

/// `tool_calls[].function` (request side).
#[derive(Debug, Deserialize)]
pub struct WireCallFunction {
    /// The tool called.
    pub name: String,
    /// Arguments, as JSON text.
    pub arguments: String,
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several sequences.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `usage` and `"choices": []`.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One message of the conversation.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant`, `tool` or `function`.
    pub role: String,
    /// A string, an array of content parts, or null.
    #[serde(default)]
    pub content: Option<Content>,
    /// Tool calls of an assistant message.
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// A participant name (accepted; not passed on).
    #[serde(default)]
    pub name: Option<String>,
}

/// Message content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// One content part (`{"type":"text","text":"…"}`, …).
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    /// Part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
    /// Text of a `refusal` part.
    #[serde(default)]
    pub refusal: Option<String>,
    /// The image of an `image_url` part.
    #[serde(default)]
    pub image_url: Option<ImageUrl>,
}

/// `content[].image_url`.
#[derive(Debug, Deserialize)]
pub struct ImageUrl {
    /// An `https:` URL or a `data:image/…;base64,…` URL.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default)]
    pub detail: Option<String>,
}

/// OpenAI's `finish_reason` for ours; reasons OpenAI does not have become `stop`.
pub fn finish_reason(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// `usage`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WireUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Sum.
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache (present when any were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PromptTokensDetails {
    /// Of `prompt_tokens`, those read from the prompt cache.
    pub cached_tokens: u64,
}

impl From<Usage> for WireUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: (u.cache_read_tokens > 0).then_some(PromptTokensDetails {
                cached_tokens: u.cache_read_tokens,
            }),
        }
    }
}

/// `choices[].logprobs`: `{"content":[…],"refusal":null}`.
#[derive(Debug, Serialize)]
pub struct WireLogprobs<'a> {
    /// One entry per generated token.
    pub content: Vec<WireTokenLogprob<'a>>,
    /// Always null.
    pub refusal: Option<()>,
}

impl<'a> WireLogprobs<'a> {
    /// The wire form of the core's log probabilities.
    pub fn new(logprobs: &'a [TokenLogprob]) -> Self {
        Self {
            content: logprobs
                .iter()
                .map(|t| WireTokenLogprob {
                    token: &t.token,
                    logprob: t.logprob,
                    bytes: t.bytes.as_deref(),
                    top_logprobs: t
                        .top_logprobs
                        .iter()
                        .map(|a| WireTopLogprob {
                            token: &a.token,
                            logprob: a.logprob,
                            bytes: a.bytes.as_deref(),
                        })
                        .collect(),
                })
                .collect(),
            refusal: None,
        }
    }
}

/// One token of `logprobs.content`.
#[derive(Debug, Serialize)]
pub struct WireTokenLogprob<'a> {
    /// The token.
    pub token: &'a str,
    /// Its log probability.
    pub logprob: f64,
    /// Its UTF-8 bytes (null when the provider gave none).
    pub bytes: Option<&'a [u8]>,
    /// The most likely alternatives.
    pub top_logprobs: Vec<WireTopLogprob<'a>>,
}

/// One alternative of a token.
#[derive(Debug, Serialize)]
pub struct WireTopLogprob<'a> {
    /// The token.
    pub token: &'a str,
    /// Its log probability.
    pub logprob: f64,
    /// Its UTF-8 bytes (null when the provider gave none).
    pub bytes: Option<&'a [u8]>,
}

/// A `chat.completion` object.
#[derive(Debug, Serialize)]
pub struct ChatCompletion<'a> {
    /// `chatcmpl-…`.
    pub id: &'a str,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Model that answered.
    pub model: &'a str,
    /// One choice.
    pub choices: [Choice<'a>; 1],
    /// Token counts.
    pub usage: WireUsage,
    /// Always null.
    pub system_fingerprint: Option<&'a str>,
}

/// `choices[0]` of a `chat.completion`.
#[derive(Debug, Serialize)]
pub struct Choice<'a> {
    /// 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage<'a>,
    /// Log probabilities when the request asked for them, else null.
    pub logprobs: Option<WireLogprobs<'a>>,
    /// Why generation ended.
    pub finish_reason: &'static str,
}

/// `choices[0].message`.
#[derive(Debug, Serialize)]
pub struct AssistantMessage<'a> {
    /// `assistant`.
    pub role: &'static str,
    /// The text; null when the model only called tools.
    pub content: Option<&'a str>,
    /// Always null.
    pub refusal: Option<&'a str>,
    /// The calls the model made (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<OutToolCall<'a>>,
}

/// One tool call of a response message.
#[derive(Debug, Serialize)]
pub struct OutToolCall<'a> {
    /// The call's id.
    pub id: &'a str,
    /// `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and JSON arguments.
    pub function: OutFunction<'a>,
}

/// `tool_calls[].function` (response side).
#[derive(Debug, Serialize)]
pub struct OutFunction<'a> {
    /// The tool called.
    pub name: &'a str,
    /// Arguments, as JSON text.
    pub arguments: &'a str,
}

impl<'a> From<&'a llm_router::ToolCall> for OutToolCall<'a> {
    fn from(c: &'a llm_router::ToolCall) -> Self {
        Self {
            id: &c.id,
            kind: "function",
            function: OutFunction {
                name: &c.name,
                arguments: &c.arguments,
            },
        }
    }
}

/// A `chat.completion.chunk` object.
#[derive(Debug, Serialize)]
pub struct Chunk<'a> {
    /// Same for every chunk of a stream.
    pub id: &'a str,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Same for every chunk of a stream.
    pub created: u64,
    /// Model that answers.
    pub model: &'a str,
    /// Always null.
    pub system_fingerprint: Option<&'a str>,
    /// One choice, or none in the usage chunk.
    pub choices: Vec<ChunkChoice<'a>>,
    /// With `include_usage`: null except on the usage chunk; otherwise absent.
    #[serde(skip_serializing_if = "UsageField::is_absent")]
    pub usage: UsageField,
}

/// The `usage` key of a chunk.
#[derive(Debug, Clone, Copy)]
pub enum UsageField {
    /// Key absent (no `include_usage`).
    Absent,
    /// `"usage": null`.
    Null,
    /// `"usage": {…}`.
    Some(WireUsage),
}

impl UsageField {
    fn is_absent(&self) -> bool {
        matches!(self, UsageField::Absent)
    }
}

impl Serialize for UsageField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UsageField::Absent | UsageField::Null => s.serialize_none(),
            UsageField::Some(u) => u.serialize(s),
        }
    }
}

/// One choice of a chunk.
#[derive(Debug, Serialize)]
pub struct ChunkChoice<'a> {
    /// 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta<'a>,
    /// Log probabilities of the tokens of this chunk's text, else null.
    pub logprobs: Option<WireLogprobs<'a>>,
    /// Null until the last content chunk.
    pub finish_reason: Option<&'static str>,
}

/// A chunk's `delta`.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    /// `assistant` on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// A text fragment (`""` on the first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// `null` on the first chunk (written by [`Delta::first`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Option<&'a str>>,
    /// A fragment of a tool call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[DeltaToolCall<'a>; 1]>,
}

/// A tool-call fragment of a chunk: the first of a call carries `id`,
/// `type` and the name; later ones only `index` and more arguments.
#[derive(Debug, Serialize)]
pub struct DeltaToolCall<'a> {
    /// Which call of the response (0, 1, …).
    pub index: u32,
    /// The call's id (first fragment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// `function` (first fragment).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Name (first fragment) and an arguments fragment.
    pub function: DeltaFunction<'a>,
}

/// `delta.tool_calls[].function`.
#[derive(Debug, Serialize)]
pub struct DeltaFunction<'a> {
    /// The tool's name (first fragment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// A piece of the JSON arguments.
    pub arguments: &'a str,
}

impl Delta<'_> {
    /// The first chunk's delta: `{"role":"assistant","content":"","refusal":null}`.
    pub fn first() -> Self {
        Self {
            role: Some("assistant"),
            content: Some(""),
            refusal: Some(None),
            tool_calls: None,
        }
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelObject {
    /// `instance/model`.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix seconds (the gateway's start).
    pub created: u64,
    /// The instance.
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}
