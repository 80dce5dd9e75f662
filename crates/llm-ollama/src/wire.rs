//! Serde types of the Ollama native API (protocols reference, section 3).
//!
//! Response types are lenient: every field is optional, unknown fields are
//! ignored, and unknown `done_reason` values are kept as text.

use serde::{Deserialize, Serialize};

use crate::config::KeepAlive;

/// A message of `POST /api/chat` (Go field order: `role`, `content`,
/// `thinking`, `images`, `tool_calls`, `tool_name`, `tool_call_id`; the ones
/// this crate never sends are left out).
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub role: &'static str,
    pub content: &'a str,
    /// Base64 image data, without a `data:` prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

impl<'a> ChatMessage<'a> {
    /// A message with only a role and text.
    pub fn text(role: &'static str, content: &'a str) -> Self {
        Self {
            role,
            content,
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_name: None,
            tool_call_id: None,
        }
    }
}

/// A tool call of an assistant message sent upstream:
/// `{"id":"…","function":{"index":0,"name":"…","arguments":{…}}}`.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallOut<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub id: &'a str,
    pub function: FunctionCallOut<'a>,
}

/// `function` of [`ToolCallOut`]; `arguments` is a JSON object.
#[derive(Debug, Serialize)]
pub(crate) struct FunctionCallOut<'a> {
    pub index: usize,
    pub name: &'a str,
    pub arguments: serde_json::Value,
}

/// An entry of `tools`: `{"type":"function","function":{…}}`.
#[derive(Debug, Serialize)]
pub(crate) struct ToolDef<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDef<'a>,
}

/// `function` of [`ToolDef`].
#[derive(Debug, Serialize)]
pub(crate) struct FunctionDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub parameters: &'a serde_json::Value,
}

/// Model parameters (`options`): only what the caller set is sent, the rest
/// is left to the model's Modelfile `PARAMETER`s and the server's defaults.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
}

impl Options<'_> {
    /// Whether nothing is set (then `options` is not sent at all).
    pub fn is_empty(&self) -> bool {
        let Options {
            temperature,
            top_p,
            stop,
            seed,
            frequency_penalty,
            presence_penalty,
            num_predict,
            num_ctx,
        } = self;
        temperature.is_none()
            && top_p.is_none()
            && stop.is_empty()
            && seed.is_none()
            && frequency_penalty.is_none()
            && presence_penalty.is_none()
            && num_predict.is_none()
            && num_ctx.is_none()
    }
}

/// `format`: `"json"` (any JSON) or a JSON Schema the answer must match.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub(crate) enum Format<'a> {
    /// The keyword `"json"`.
    Json(&'static str),
    /// A JSON Schema object.
    Schema(&'a serde_json::Value),
}

/// Body of `POST /api/chat` (Go field order: `model`, `messages`, `stream`,
/// `format`, `keep_alive`, `tools`, `options`).
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<&'a KeepAlive>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef<'a>>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub options: Options<'a>,
}

/// Body of `POST /api/generate` (Go field order: `model`, `prompt`,
/// `system`, `stream`, `format`, `keep_alive`, `images`, `options`).
#[derive(Debug, Serialize)]
pub(crate) struct GenerateRequest<'a> {
    pub model: &'a str,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<&'a KeepAlive>,
    /// Base64 image data of every image in the conversation, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub options: Options<'a>,
}

/// Body of `POST /api/embed` (Go field order: `model`, `input`,
/// `keep_alive`, `truncate`, `dimensions`, `options`). `truncate` is never
/// sent: the server default (`true`, cut each input to the context length)
/// applies; `dimensions` only when the caller set it.
#[derive(Debug, Serialize)]
pub(crate) struct EmbedRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<&'a KeepAlive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

/// Answer of `POST /api/embed`: one vector per input, in input order, and
/// the tokens of all inputs in `prompt_eval_count`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EmbedResponse {
    #[serde(default)]
    pub embeddings: Option<Vec<Vec<f32>>>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub error: Option<ErrorValue>,
}

/// Body of the superseded `POST /api/embeddings` (servers before
/// `/api/embed`): one text per request.
#[derive(Debug, Serialize)]
pub(crate) struct LegacyEmbedRequest<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<&'a KeepAlive>,
}

/// Answer of `POST /api/embeddings`: `{"embedding":[…]}`, no token counts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LegacyEmbedResponse {
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub error: Option<ErrorValue>,
}

/// Body of `POST /api/pull`.
#[derive(Debug, Serialize)]
pub(crate) struct PullRequest<'a> {
    pub model: &'a str,
    pub stream: bool,
}

/// `message` of a chat response.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallIn>>,
}

/// A tool call of a response message:
/// `{"id":"…","function":{"index":0,"name":"…","arguments":{…}}}` (`id` may
/// be absent; `index` is not used).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolCallIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCallIn>,
}

/// `function` of [`ToolCallIn`]; `arguments` should be a JSON object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionCallIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<serde_json::Value>,
}

/// One generation object: a streamed line, or the whole non-streamed answer,
/// of `/api/chat` (`message`) or `/api/generate` (`response`). A line with
/// `error` reports a failure inside a `200` stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GenerationLine {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub message: Option<ResponseMessage>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub done: Option<bool>,
    #[serde(default)]
    pub done_reason: Option<String>,
    /// Nanoseconds.
    #[serde(default)]
    pub total_duration: Option<u64>,
    /// Nanoseconds.
    #[serde(default)]
    pub load_duration: Option<u64>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    /// Nanoseconds.
    #[serde(default)]
    pub prompt_eval_duration: Option<u64>,
    #[serde(default)]
    pub eval_count: Option<u64>,
    /// Nanoseconds.
    #[serde(default)]
    pub eval_duration: Option<u64>,
    #[serde(default)]
    pub error: Option<ErrorValue>,
}

impl GenerationLine {
    /// The text fragment of this line (chat `message.content` or generate `response`).
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_ref()
            .and_then(|m| m.content.as_deref())
            .or(self.response.as_deref())
    }

    /// Takes the tool calls of `message` out of this line.
    pub fn take_tool_calls(&mut self) -> Vec<ToolCallIn> {
        self.message
            .as_mut()
            .and_then(|m| m.tool_calls.take())
            .unwrap_or_default()
    }

    /// Whether this is the last line.
    pub fn is_done(&self) -> bool {
        self.done == Some(true)
    }
}

/// `GET /api/tags`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Tags {
    #[serde(default)]
    pub models: Option<Vec<TagModel>>,
}

/// One entry of `GET /api/tags`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagModel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

/// `GET /api/version`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Version {
    #[serde(default)]
    pub version: Option<String>,
}

/// One line of a `POST /api/pull` stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PullLine {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
    #[serde(default)]
    pub error: Option<ErrorValue>,
}

/// The `error` member of an error body: a string natively, an object with a
/// `message` behind OpenAI-style proxies.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorValue {
    Text(String),
    Object {
        #[serde(default)]
        message: Option<String>,
    },
    Other(serde_json::Value),
}

impl ErrorValue {
    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            ErrorValue::Text(s) => s.clone(),
            ErrorValue::Object { message: Some(m) } => m.clone(),
            ErrorValue::Object { message: None } => "unknown error".to_string(),
            ErrorValue::Other(v) => v.to_string(),
        }
    }
}

/// An error body, `{"error":"…"}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_shape() {
        let stop = vec!["END".to_string()];
        let ka = KeepAlive::Duration("5m".into());
        let body = ChatRequest {
            model: "llama3.2",
            messages: vec![
                ChatMessage::text("system", "You are a terse assistant."),
                ChatMessage::text("user", "Say hello."),
            ],
            stream: false,
            format: None,
            keep_alive: Some(&ka),
            tools: Vec::new(),
            options: Options {
                temperature: Some(0.2),
                stop: &stop,
                num_predict: Some(50),
                num_ctx: Some(4096),
                ..Options::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"model":"llama3.2","messages":[{"role":"system","content":"You are a terse assistant."},{"role":"user","content":"Say hello."}],"stream":false,"keep_alive":"5m","options":{"temperature":0.2,"stop":["END"],"num_predict":50,"num_ctx":4096}}"#
        );
    }

    #[test]
    fn embed_request_shape() {
        let input = vec!["第一章".to_string(), "b".to_string()];
        let body = EmbedRequest {
            model: "nomic-embed-text",
            input: &input,
            keep_alive: None,
            dimensions: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"model":"nomic-embed-text","input":["第一章","b"]}"#
        );
        let ka = KeepAlive::Seconds(0);
        let body = EmbedRequest {
            keep_alive: Some(&ka),
            dimensions: Some(256),
            ..body
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"model":"nomic-embed-text","input":["第一章","b"],"keep_alive":0,"dimensions":256}"#
        );
    }

    #[test]
    fn lines_are_lenient() {
        let l: GenerationLine = serde_json::from_str(r#"{"model":"m","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"\u003cb\u003e","images":null},"done":false,"new_field":[1]}"#).unwrap();
        assert_eq!(l.text(), Some("<b>"));
        assert!(!l.is_done());
        let l: GenerationLine =
            serde_json::from_str(r#"{"response":"x","done":true,"done_reason":"something_new"}"#)
                .unwrap();
        assert_eq!(l.text(), Some("x"));
        assert!(l.is_done());
        let e: ErrorBody = serde_json::from_str(r#"{"error":{"message":"m","type":"t"}}"#).unwrap();
        assert_eq!(e.error.unwrap().message(), "m");
    }
}
