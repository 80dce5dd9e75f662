//! Serde types of the Chat Completions API.
//!
//! Requests are built exactly; responses are decoded leniently: unknown fields
//! are ignored, optional fields may be missing or `null`, and unknown enum
//! values (finish reasons, roles) never fail.

use llm_core::{FinishReason, Tool, ToolCall, ToolChoice, Usage};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `POST /chat/completions` body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
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
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall<'a>>,
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
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let sum = u.prompt_tokens.saturating_add(u.completion_tokens);
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: if u.total_tokens == 0 {
                sum
            } else {
                u.total_tokens
            },
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        }
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
