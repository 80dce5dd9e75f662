//! Serde types of the OpenAI Chat Completions API, as the gateway serves it.
//!
//! Requests: unknown fields are ignored (as OpenAI does); known fields with a
//! wrong type are errors naming the field. Responses: the exact shapes of
//! `chat.completion`, `chat.completion.chunk` and the model list.

use llm_router::{FinishReason, Usage};
use serde::{Deserialize, Serialize};

/// `POST /v1/chat/completions` body (the fields the gateway uses).
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
}

impl From<Usage> for WireUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
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
    /// Always null.
    pub logprobs: Option<()>,
    /// Why generation ended.
    pub finish_reason: &'static str,
}

/// `choices[0].message`.
#[derive(Debug, Serialize)]
pub struct AssistantMessage<'a> {
    /// `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: &'a str,
    /// Always null.
    pub refusal: Option<&'a str>,
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
    /// Always null.
    pub logprobs: Option<()>,
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
}

impl Delta<'_> {
    /// The first chunk's delta: `{"role":"assistant","content":"","refusal":null}`.
    pub fn first() -> Self {
        Self {
            role: Some("assistant"),
            content: Some(""),
            refusal: Some(None),
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
