//! Serde types of the Chat Completions API.
//!
//! Requests are built exactly; responses are decoded leniently: unknown fields
//! are ignored, optional fields may be missing or `null`, and unknown enum
//! values (finish reasons, roles) never fail.

use llm_core::{
    FinishReason, ImageInput, ResponseFormat, TokenLogprob, Tool, ToolCall, ToolChoice, TopLogprob,
    Usage,
};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `POST /chat/completions` body.
///
/// Serialized by hand (see the `Serialize` impl) so that the entries of
/// [`extra`](Self::extra) go out verbatim at the top level, after the typed
/// fields, and never override a field this provider sets itself.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<WireMessage<'a>>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: &'a [String],
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    /// Sent as `true` only; `false` is OpenAI's default and is not sent.
    pub logprobs: bool,
    pub top_logprobs: Option<u8>,
    pub response_format: Option<WireResponseFormat<'a>>,
    pub user: Option<&'a str>,
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub tools: Vec<WireTool<'a>>,
    pub tool_choice: Option<WireToolChoice<'a>>,
    pub parallel_tool_calls: Option<bool>,
    /// OpenAI-specific fields passed through verbatim (`LlmRequest::extra`).
    pub extra: &'a Map<String, Value>,
}

/// Writes one typed entry and remembers its key.
fn typed_entry<M, T>(
    map: &mut M,
    sent: &mut Vec<&'static str>,
    key: &'static str,
    value: &T,
) -> Result<(), M::Error>
where
    M: SerializeMap,
    T: Serialize + ?Sized,
{
    sent.push(key);
    map.serialize_entry(key, value)
}

impl Serialize for ChatRequest<'_> {
    /// The typed fields that are set, in a fixed order, then every `extra`
    /// entry whose key is not already in the body: a typed field always wins
    /// over an `extra` entry of the same name (`model`, `messages`, `stream`,
    /// …), and an `extra` entry fills a field only when the typed request
    /// left it unset.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut sent: Vec<&'static str> = Vec::with_capacity(24);
        let m = &mut map;
        let k = &mut sent;
        typed_entry(m, k, "model", self.model)?;
        typed_entry(m, k, "messages", &self.messages)?;
        if let Some(v) = self.max_tokens {
            typed_entry(m, k, "max_tokens", &v)?;
        }
        if let Some(v) = self.max_completion_tokens {
            typed_entry(m, k, "max_completion_tokens", &v)?;
        }
        if let Some(v) = self.temperature {
            typed_entry(m, k, "temperature", &v)?;
        }
        if let Some(v) = self.top_p {
            typed_entry(m, k, "top_p", &v)?;
        }
        if !self.stop.is_empty() {
            typed_entry(m, k, "stop", self.stop)?;
        }
        if let Some(v) = self.seed {
            typed_entry(m, k, "seed", &v)?;
        }
        if let Some(v) = self.frequency_penalty {
            typed_entry(m, k, "frequency_penalty", &v)?;
        }
        if let Some(v) = self.presence_penalty {
            typed_entry(m, k, "presence_penalty", &v)?;
        }
        if self.logprobs {
            typed_entry(m, k, "logprobs", &true)?;
        }
        if let Some(v) = self.top_logprobs {
            typed_entry(m, k, "top_logprobs", &v)?;
        }
        if let Some(v) = &self.response_format {
            typed_entry(m, k, "response_format", v)?;
        }
        if let Some(v) = self.user {
            typed_entry(m, k, "user", v)?;
        }
        // `stream: false` is OpenAI's default: sent only when streaming, so
        // a plain request carries exactly what its client set. An `extra`
        // entry can never set it either way.
        if self.stream {
            typed_entry(m, k, "stream", &true)?;
        } else {
            k.push("stream");
        }
        if let Some(v) = &self.stream_options {
            typed_entry(m, k, "stream_options", v)?;
        }
        if !self.tools.is_empty() {
            typed_entry(m, k, "tools", &self.tools)?;
        }
        if let Some(v) = &self.tool_choice {
            typed_entry(m, k, "tool_choice", v)?;
        }
        if let Some(v) = self.parallel_tool_calls {
            typed_entry(m, k, "parallel_tool_calls", &v)?;
        }
        for (key, value) in self.extra {
            if !sent.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// `response_format`: `{"type":"text"}`, `{"type":"json_object"}` or
/// `{"type":"json_schema","json_schema":{…}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema<'a> },
}

/// `json_schema` of a `json_schema` response format.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireJsonSchema<'a> {
    pub name: &'a str,
    pub schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

impl<'a> From<&'a ResponseFormat> for WireResponseFormat<'a> {
    fn from(format: &'a ResponseFormat) -> Self {
        match format {
            ResponseFormat::Text => Self::Text,
            ResponseFormat::JsonObject => Self::JsonObject,
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
                description,
            } => Self::JsonSchema {
                json_schema: WireJsonSchema {
                    name,
                    schema,
                    strict: *strict,
                    description: description.as_deref(),
                },
            },
        }
    }
}

/// One request message. Field order follows protocols.md §2.1.1: an
/// assistant message is `role, content, tool_calls`, a tool result
/// `role, tool_call_id, content`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireMessage<'a> {
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
    /// `None` is sent as `null` (an assistant message that only calls tools).
    pub content: Option<WireContent<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall<'a>>,
}

/// A request message's `content`: a string, or (a message with images) an
/// array of parts.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum WireContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

impl<'a> WireContent<'a> {
    /// The content of a message with `text` and `images`: the plain string
    /// without images; with images a `text` part (left out when the text is
    /// empty) followed by one `image_url` part per image, in order.
    pub fn new(text: &'a str, images: &'a [ImageInput]) -> Self {
        if images.is_empty() {
            return Self::Text(text);
        }
        let mut parts = Vec::with_capacity(images.len() + 1);
        if !text.is_empty() {
            parts.push(WirePart::Text { text });
        }
        parts.extend(images.iter().map(|image| WirePart::ImageUrl {
            image_url: WireImageUrl {
                url: &image.url,
                detail: image.detail.as_deref(),
            },
        }));
        Self::Parts(parts)
    }
}

/// A content part: `{"type":"text","text":…}` or
/// `{"type":"image_url","image_url":{"url":…,"detail"?:…}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImageUrl<'a> },
}

/// `image_url` of an image part: an `https:` or base64 `data:` URL.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireImageUrl<'a> {
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// `{"type":"function","function":{…}}` of a request's `tools`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: WireFunctionDef<'a>,
}

/// A function tool's definition.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireFunctionDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub parameters: &'a Value,
}

impl<'a> From<&'a Tool> for WireTool<'a> {
    fn from(tool: &'a Tool) -> Self {
        Self {
            kind: "function",
            function: WireFunctionDef {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: &tool.parameters,
            },
        }
    }
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or a named function.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: WireFunctionName<'a>,
    },
}

/// `{"name":…}` of a named `tool_choice`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireFunctionName<'a> {
    pub name: &'a str,
}

impl<'a> From<&'a ToolChoice> for WireToolChoice<'a> {
    fn from(choice: &'a ToolChoice) -> Self {
        match choice {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode("required"),
            ToolChoice::Function(name) => Self::Function {
                kind: "function",
                function: WireFunctionName { name },
            },
        }
    }
}

/// A tool call of an assistant message in a request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: WireFunctionCall<'a>,
}

/// `{"name","arguments"}` of a request's tool call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireFunctionCall<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for WireToolCall<'a> {
    fn from(call: &'a ToolCall) -> Self {
        Self {
            id: &call.id,
            kind: "function",
            function: WireFunctionCall {
                name: &call.name,
                arguments: &call.arguments,
            },
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

/// A `chat.completion` object (or an error body answered with 200).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatCompletion {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ErrorPayload>,
}

/// One choice of a `chat.completion`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub message: Option<ResponseMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub logprobs: WireLogprobs,
}

/// `choices[].logprobs`: `null`, or `{"content":[…],"refusal":…}` (only
/// `content` is read). Anything else decodes as empty.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireLogprobs {
    #[serde(default, deserialize_with = "lenient_list")]
    pub content: Vec<WireTokenLogprob>,
}

impl WireLogprobs {
    /// The per-token log probabilities.
    pub fn into_logprobs(self) -> Vec<TokenLogprob> {
        self.content.into_iter().map(Into::into).collect()
    }
}

/// One `logprobs.content[]` entry: `{"token","logprob","bytes","top_logprobs"}`.
/// An entry without a string `token` and a numeric `logprob` is left out.
#[derive(Debug, Deserialize)]
pub(crate) struct WireTokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, deserialize_with = "lenient_bytes")]
    pub bytes: Option<Vec<u8>>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub top_logprobs: Vec<WireTopLogprob>,
}

/// One `top_logprobs[]` entry: `{"token","logprob","bytes"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireTopLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, deserialize_with = "lenient_bytes")]
    pub bytes: Option<Vec<u8>>,
}

impl From<WireTokenLogprob> for TokenLogprob {
    fn from(t: WireTokenLogprob) -> Self {
        TokenLogprob {
            token: t.token,
            logprob: t.logprob,
            bytes: t.bytes,
            top_logprobs: t
                .top_logprobs
                .into_iter()
                .map(|top| TopLogprob {
                    token: top.token,
                    logprob: top.logprob,
                    bytes: top.bytes,
                })
                .collect(),
        }
    }
}

/// `choices[].message`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseMessage {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<ResponseToolCall>,
}

/// `message.tool_calls[]`: `{"id","type","function":{"name","arguments"}}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCall>,
}

/// `function` of a tool call or of a tool-call delta.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionCall {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<Value>,
}

impl FunctionCall {
    /// The arguments as JSON text: a string as sent, any other JSON value
    /// (some compatible servers send an object) as its compact text, `null`
    /// or missing as `""`.
    pub fn arguments_text(&mut self) -> String {
        match self.arguments.take() {
            Some(Value::String(s)) => s,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        }
    }
}

impl ResponseToolCall {
    /// The call, or `None` when it has no non-empty `function.name` (nothing
    /// sensible can be made up for it). A missing or empty `id` (some
    /// compatible servers omit it) is replaced by a [`synthesized_call_id`],
    /// so that a tool result can still name the call it answers.
    pub fn into_call(self) -> Option<ToolCall> {
        let mut function = self.function.unwrap_or_default();
        let name = function.name.take().filter(|n| !n.is_empty())?;
        Some(ToolCall {
            id: call_id(self.id),
            name,
            arguments: function.arguments_text(),
        })
    }
}

/// The id the server sent, or a [`synthesized_call_id`] when it sent none or
/// an empty one.
pub(crate) fn call_id(id: Option<String>) -> String {
    id.filter(|id| !id.is_empty())
        .unwrap_or_else(synthesized_call_id)
}

/// A fresh, unique id for a tool call the server sent without one: `call_`
/// and 24 random ASCII alphanumerics (the shape of OpenAI's own ids).
pub(crate) fn synthesized_call_id() -> String {
    let mut id = String::with_capacity(5 + 24);
    id.push_str("call_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

/// Message content: a string, or (from some compatible servers) an array of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<Value>),
    Other(IgnoredAny),
}

impl Content {
    /// The text: the string, or the `text` of every part joined.
    pub fn into_text(self) -> String {
        match self {
            Content::Text(s) => s,
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            Content::Other(_) => String::new(),
        }
    }
}

/// `usage`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub completion_tokens: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_tokens: u64,
    #[serde(default, deserialize_with = "lenient")]
    pub prompt_tokens_details: PromptTokensDetails,
}

/// `usage.prompt_tokens_details` (only `cached_tokens` is read).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct PromptTokensDetails {
    /// Of `prompt_tokens`, those read from OpenAI's prompt cache.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cached_tokens: u64,
}

impl From<WireUsage> for Usage {
    /// The counts; `total_tokens` as reported (their sum when missing or 0),
    /// `cached_tokens` as [`Usage::cache_read_tokens`] (at most `prompt_tokens`).
    fn from(u: WireUsage) -> Self {
        let mut usage = Usage::new(u.prompt_tokens, u.completion_tokens)
            .with_cache(u.prompt_tokens_details.cached_tokens, 0);
        if u.total_tokens != 0 {
            usage.total_tokens = u.total_tokens;
        }
        usage
    }
}

/// A `chat.completion.chunk` (or an in-stream `{"error":…}`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ErrorPayload>,
}

/// One choice of a chunk.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub index: u64,
    #[serde(default)]
    pub delta: Option<Delta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub logprobs: WireLogprobs,
}

/// `choices[].delta`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<ToolCallDelta>,
}

/// `delta.tool_calls[]`: the first delta of a call carries `index`, `id`,
/// `type` and `function.name`; later ones `index` and an arguments fragment.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub index: Option<u64>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCall>,
}

/// `GET /models` answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ModelList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<ModelEntry>,
}

/// One model object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ModelEntry {
    #[serde(default)]
    pub id: Option<String>,
}

/// An `error` value: the standard object, or a bare string (some compatible servers).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorPayload {
    Object(ErrorObject),
    Message(String),
    Other(Value),
}

/// `{"message","type","param","code"}`; `code` may be a string, a number or `null`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
}

impl ErrorObject {
    /// `code` when it is a non-empty string, else `type`, else a numeric `code` as text.
    pub fn code_text(&self) -> Option<String> {
        let code = self.code.as_ref();
        code.and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .or_else(|| self.kind.clone().filter(|k| !k.is_empty()))
            .or_else(|| code.and_then(Value::as_u64).map(|n| n.to_string()))
    }

    /// A numeric `code` that is an HTTP error status (llama.cpp and vLLM send these).
    pub fn numeric_status(&self) -> Option<u16> {
        self.code
            .as_ref()
            .and_then(Value::as_u64)
            .filter(|n| (400..=599).contains(n))
            .and_then(|n| u16::try_from(n).ok())
    }
}

/// `POST /embeddings` body: only what is set is sent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbeddingsRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

/// `POST /embeddings` answer (`{"object":"list","data":[…],"model","usage"}`),
/// or an `{"error":…}` in a 200 body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EmbeddingList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<EmbeddingItem>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ErrorPayload>,
}

/// One `{"object":"embedding","index","embedding"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingItem {
    /// Position of the input this vector belongs to (missing: the item's own position).
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub index: Option<u64>,
    #[serde(default)]
    pub embedding: Option<WireVector>,
}

/// A vector as `encoding_format` gives it: base64 of little-endian `f32`s,
/// or a JSON array of numbers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireVector {
    Base64(String),
    Floats(Vec<f32>),
}

/// Maps an OpenAI `finish_reason`.
pub(crate) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

/// `Stop` becomes `ToolCalls` when the model called tools: a compatible
/// server may report `"stop"` with `tool_calls` (Ollama's native API does,
/// protocols.md §5).
pub(crate) fn tool_finish(finish: FinishReason, called_tools: bool) -> FinishReason {
    match finish {
        FinishReason::Stop if called_tools => FinishReason::ToolCalls,
        other => other,
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Any value: one that does not decode as `T` (`null`, another type, a
/// wrong shape) is `T::default()`.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).unwrap_or_default())
}

/// A list whose elements that do not decode as `T` are left out; anything
/// but an array is empty.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A token's UTF-8 bytes: an array of integers 0 to 255; anything else
/// (`null`, out-of-range values) is `None`.
fn lenient_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        _ => None,
    })
}

/// Like [`lenient_u64`], but missing, `null` or unreadable is `None`.
fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A count that may be an integer, a float, a numeric string or `null`.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_null_values_never_fail() {
        let c: ChatCompletion = serde_json::from_str(
            r#"{"choices":[{"index":0,"message":{"role":"wizard","content":null,"extra":1},
                "finish_reason":"brand_new_reason","logprobs":{"x":[]}}],
                "usage":{"prompt_tokens":null,"completion_tokens":2.0,"new_field":{}},
                "something":"else"}"#,
        )
        .unwrap();
        let choice = &c.choices[0];
        assert!(choice.message.as_ref().unwrap().content.is_none());
        assert_eq!(
            finish_reason(choice.finish_reason.as_deref().unwrap()),
            FinishReason::Other("brand_new_reason".into())
        );
        assert_eq!(Usage::from(c.usage.unwrap()), Usage::new(0, 2));

        let c: ChatCompletion = serde_json::from_str(r#"{"choices":null}"#).unwrap();
        assert!(c.choices.is_empty());
    }

    #[test]
    fn logprobs_and_cached_tokens_are_read_leniently() {
        let c: ChatCompletion = serde_json::from_str(
            r#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop",
                "logprobs":{"content":[
                    {"token":"Hi","logprob":-0.5,"bytes":[72,105],"top_logprobs":[
                        {"token":"Hi","logprob":-0.5,"bytes":[72,105]},
                        {"token":"<|end|>","logprob":-10.9,"bytes":null},
                        {"token":7}]},
                    {"token":"?","logprob":"not a number"},
                    {"token":"!","logprob":-1,"bytes":[300],"top_logprobs":null}],
                    "refusal":null}}],
                "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
                    "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0}}}"#,
        )
        .unwrap();
        let choice = c.choices.into_iter().next().unwrap();
        assert_eq!(
            choice.logprobs.into_logprobs(),
            vec![
                TokenLogprob {
                    token: "Hi".into(),
                    logprob: -0.5,
                    bytes: Some(vec![72, 105]),
                    top_logprobs: vec![
                        TopLogprob {
                            token: "Hi".into(),
                            logprob: -0.5,
                            bytes: Some(vec![72, 105]),
                        },
                        TopLogprob {
                            token: "<|end|>".into(),
                            logprob: -10.9,
                            bytes: None,
                        },
                    ],
                },
                TokenLogprob {
                    token: "!".into(),
                    logprob: -1.0,
                    bytes: None,
                    top_logprobs: Vec::new(),
                },
            ]
        );
        assert_eq!(
            Usage::from(c.usage.unwrap()),
            Usage::new(2006, 300).with_cache(1920, 0)
        );

        for logprobs in [
            "null",
            "42",
            r#"[1,2]"#,
            r#"{"content":null}"#,
            r#"{"content":{}}"#,
        ] {
            let c: ChatCompletion = serde_json::from_str(&format!(
                r#"{{"choices":[{{"message":{{"content":"x"}},"logprobs":{logprobs}}}]}}"#
            ))
            .unwrap();
            let choice = c.choices.into_iter().next().unwrap();
            assert!(choice.logprobs.into_logprobs().is_empty(), "{logprobs}");
        }
        for details in ["null", "3", r#"{"cached_tokens":null}"#, "{}"] {
            let u: WireUsage = serde_json::from_str(&format!(
                r#"{{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{details}}}"#
            ))
            .unwrap();
            assert_eq!(Usage::from(u), Usage::new(5, 1), "{details}");
        }
        // More cached tokens than prompt tokens (a confused server) stay within the prompt.
        let u: WireUsage = serde_json::from_str(
            r#"{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}"#,
        )
        .unwrap();
        assert_eq!(Usage::from(u).cache_read_tokens, 5);
    }

    #[test]
    fn extra_fields_never_override_typed_ones() {
        let extra: Map<String, Value> = serde_json::from_str(
            r#"{"model":"evil","stream":true,"messages":[],"temperature":2,"service_tier":"flex","store":false}"#,
        )
        .unwrap();
        let req = ChatRequest {
            model: "gpt-4o-mini",
            messages: vec![WireMessage {
                role: "user",
                tool_call_id: None,
                content: Some(WireContent::Text("hi")),
                tool_calls: Vec::new(),
            }],
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            stop: &[],
            seed: Some(-1),
            frequency_penalty: None,
            presence_penalty: None,
            logprobs: false,
            top_logprobs: None,
            response_format: None,
            user: None,
            stream: false,
            stream_options: None,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            extra: &extra,
        };
        // `temperature` is not set by the typed request: the `extra` entry fills it.
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"seed":-1,"service_tier":"flex","store":false,"temperature":2}"#
        );
    }

    #[test]
    fn content_parts_are_joined() {
        let c: Content =
            serde_json::from_str(r#"[{"type":"text","text":"你好"},{"type":"text","text":"!"}]"#)
                .unwrap();
        assert_eq!(c.into_text(), "你好!");
        let c: Content = serde_json::from_str("42").unwrap();
        assert_eq!(c.into_text(), "");
    }

    fn is_synthesized(id: &str) -> bool {
        id.len() == 29
            && id.starts_with("call_")
            && id[5..].chars().all(|c| c.is_ascii_alphanumeric())
    }

    #[test]
    fn calls_without_an_id_get_a_synthesized_one() {
        let call = |json: &str| serde_json::from_str::<ResponseToolCall>(json).unwrap();
        let kept = call(r#"{"id":"call_x","function":{"name":"f"}}"#)
            .into_call()
            .unwrap();
        assert_eq!(kept.id, "call_x");
        let mut ids = Vec::new();
        for json in [
            r#"{"function":{"name":"f","arguments":"{}"}}"#,
            r#"{"id":"","function":{"name":"f"}}"#,
            r#"{"id":null,"function":{"name":"f"}}"#,
        ] {
            let c = call(json).into_call().unwrap();
            assert!(is_synthesized(&c.id), "{}", c.id);
            assert_eq!(c.name, "f");
            ids.push(c.id);
        }
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);

        for json in [
            r#"{"id":"call_x","function":{"arguments":"{}"}}"#,
            r#"{"id":"call_x","function":{"name":""}}"#,
            r#"{"id":"call_x"}"#,
            r#"{}"#,
        ] {
            assert!(call(json).into_call().is_none(), "{json}");
        }
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(finish_reason("stop"), FinishReason::Stop);
        assert_eq!(finish_reason("length"), FinishReason::Length);
        assert_eq!(finish_reason("tool_calls"), FinishReason::ToolCalls);
        assert_eq!(finish_reason("content_filter"), FinishReason::ContentFilter);
        assert_eq!(finish_reason("eos"), FinishReason::Other("eos".into()));
    }

    #[test]
    fn error_codes_prefer_code_then_type() {
        let e: ErrorObject = serde_json::from_str(
            r#"{"message":"m","type":"invalid_request_error","param":null,"code":"model_not_found"}"#,
        )
        .unwrap();
        assert_eq!(e.code_text().as_deref(), Some("model_not_found"));
        let e: ErrorObject =
            serde_json::from_str(r#"{"message":"m","type":"invalid_request_error","code":null}"#)
                .unwrap();
        assert_eq!(e.code_text().as_deref(), Some("invalid_request_error"));
        let e: ErrorObject =
            serde_json::from_str(r#"{"message":"m","type":"server_error","code":500}"#).unwrap();
        assert_eq!(e.code_text().as_deref(), Some("server_error"));
        assert_eq!(e.numeric_status(), Some(500));
        let e: ErrorObject = serde_json::from_str(r#"{"code":503}"#).unwrap();
        assert_eq!(e.code_text().as_deref(), Some("503"));
    }
}
