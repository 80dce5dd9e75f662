//! Serde types of the Anthropic Messages API.
//!
//! Response types are lenient: every field is optional, `null` is accepted
//! where a value is expected, unknown fields and unknown `type` values are
//! ignored.

use std::borrow::Cow;

use llm_core::provider_kit::arguments_text;
use llm_core::{FinishReason, Thinking, ThinkingBlock, ToolCall, Usage};
use serde::{Deserialize, Deserializer, Serialize};

/// `null` or absent → `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Body of `POST /v1/messages`. Field order follows the API's own examples.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    /// `{"type":"enabled","budget_tokens":N}`, `{"type":"adaptive"}` or
    /// `{"type":"disabled"}`: llm-core's [`Thinking`] has the API's shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata<'a>>,
}

/// `metadata`: `{"user_id":"…"}` (an opaque id of the end user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Metadata<'a> {
    pub user_id: &'a str,
}

/// One `user` or `assistant` turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WireMessage<'a> {
    pub role: &'static str,
    pub content: WireContent<'a>,
}

/// The `content` of a turn: a plain string when the turn is only text (the
/// classic shape), else an array of blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum WireContent<'a> {
    /// `"content":"…"`.
    Text(Cow<'a, str>),
    /// `"content":[{"type":…},…]`.
    Blocks(Vec<RequestBlock<'a>>),
}

/// A content block of a request turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RequestBlock<'a> {
    /// `{"type":"thinking","thinking":"…","signature":"…"}` (assistant
    /// turns): an earlier answer's reasoning, sent back unchanged.
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    /// `{"type":"redacted_thinking","data":"…"}` (assistant turns).
    RedactedThinking { data: &'a str },
    /// `{"type":"text","text":"…"}`.
    Text { text: Cow<'a, str> },
    /// `{"type":"image","source":{…}}` (user turns).
    Image { source: ImageSource<'a> },
    /// `{"type":"tool_use","id":"…","name":"…","input":{…}}` (assistant turns).
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: serde_json::Value,
    },
    /// `{"type":"tool_result","tool_use_id":"…","content":"…"}` (user turns);
    /// an empty result is sent without `content` (the field is optional).
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
    },
}

/// The `source` of an image block: inline base64 data or a URL.
///
/// Shapes from the Messages API reference (protocols.md 4.1, and
/// <https://platform.claude.com/docs/en/build-with-claude/vision>):
/// `{"type":"base64","media_type":"image/png","data":"…"}` and
/// `{"type":"url","url":"https://…"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ImageSource<'a> {
    /// Bytes given inline (from a `data:` URL).
    Base64 { media_type: &'a str, data: &'a str },
    /// An image Anthropic fetches itself.
    Url { url: &'a str },
}

/// A client tool: `{"name","description","input_schema"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WireTool<'a> {
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: Cow<'a, serde_json::Value>,
}

/// `tool_choice`: `{"type":"auto"}`, `{"type":"any"}`,
/// `{"type":"tool","name":"…"}` or `{"type":"none"}`; the first three with
/// `"disable_parallel_tool_use": true` when parallel calls are forbidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireToolChoice<'a> {
    Auto {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

/// A `Message` (non-streamed answer, and `message_start.message`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MessageResponse {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub content: Vec<ContentBlock>,
    pub stop_reason: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub usage: WireUsage,
    /// Present when a 2xx body is an error envelope after all.
    pub error: Option<ErrorDetail>,
    pub request_id: Option<String>,
}

impl MessageResponse {
    /// The `thinking` and `redacted_thinking` blocks, in order.
    pub fn thinking(&self) -> Vec<ThinkingBlock> {
        self.content
            .iter()
            .filter_map(ContentBlock::thinking_block)
            .collect()
    }

    /// The text of every `text` block, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter(|b| b.kind.as_deref() == Some("text"))
            .filter_map(|b| b.text.as_deref())
            .collect()
    }

    /// Every `tool_use` block as a call, in order; the error describes the
    /// first malformed block (no id or name, `input` not an object).
    ///
    /// When `cut` (the answer was cut short, see [`is_cut`]) nothing fails:
    /// what is there is mapped. A block without id or name is left out, and
    /// an `input` that is not an object becomes the arguments as is (a
    /// string's own text, anything else as JSON text).
    ///
    /// A block named `skip` (the tool that carries a structured answer) is
    /// not a call.
    pub fn tool_calls(&self, cut: bool, skip: Option<&str>) -> Result<Vec<ToolCall>, String> {
        let blocks = self
            .content
            .iter()
            .filter(|b| b.is_tool_use() && (skip.is_none() || b.name.as_deref() != skip));
        if cut {
            return Ok(blocks.filter_map(ContentBlock::partial_call).collect());
        }
        blocks
            .map(|b| {
                let (id, name) = b.tool_id_and_name()?;
                let arguments = input_text(&id, b.input.as_ref())?;
                Ok(ToolCall {
                    id,
                    name,
                    arguments,
                })
            })
            .collect()
    }
}

/// What a structured answer carries: the `input` of the `tool_use` block
/// named `name` as JSON text, or `None` when the answer has no such block.
///
/// A missing or `null` input is `{}`; an input that is not an object is an
/// error unless the answer was `cut` (then it is passed as its text).
pub(crate) fn format_answer(
    message: &MessageResponse,
    name: &str,
    cut: bool,
) -> Option<Result<String, String>> {
    let block = message
        .content
        .iter()
        .find(|b| b.is_tool_use() && b.name.as_deref() == Some(name))?;
    let id = block.id.as_deref().unwrap_or(name);
    Some(match (&block.input, cut) {
        (Some(serde_json::Value::String(s)), true) => Ok(s.clone()),
        (Some(v @ serde_json::Value::Array(_)), true) => Ok(v.to_string()),
        (input, _) => input_text(id, input.as_ref()),
    })
}

/// A content block; `text`, `tool_use`, `thinking` and `redacted_thinking`
/// blocks are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `text` blocks.
    pub text: Option<String>,
    /// `thinking` blocks: the reasoning text.
    pub thinking: Option<String>,
    /// `thinking` blocks: the signature.
    pub signature: Option<String>,
    /// `redacted_thinking` blocks: the encrypted reasoning.
    pub data: Option<String>,
    /// `tool_use` blocks: the call's id.
    pub id: Option<String>,
    /// `tool_use` blocks: the tool's name.
    pub name: Option<String>,
    /// `tool_use` blocks: the arguments (an object; `{}` at a streamed block's start).
    pub input: Option<serde_json::Value>,
}

impl ContentBlock {
    /// A `thinking` block (missing fields empty) or a `redacted_thinking`
    /// block; `None` for any other block.
    pub fn thinking_block(&self) -> Option<ThinkingBlock> {
        match self.kind.as_deref()? {
            "thinking" => Some(ThinkingBlock::Thinking {
                thinking: self.thinking.clone().unwrap_or_default(),
                signature: self.signature.clone().unwrap_or_default(),
            }),
            "redacted_thinking" => Some(ThinkingBlock::RedactedThinking {
                data: self.data.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// Whether this is a client `tool_use` block (server tools are not).
    pub fn is_tool_use(&self) -> bool {
        self.kind.as_deref() == Some("tool_use")
    }

    /// The `id` and `name` of a `tool_use` block; the error says which is missing.
    pub fn tool_id_and_name(&self) -> Result<(String, String), String> {
        let id = self.id.clone().filter(|s| !s.is_empty());
        let name = self.name.clone().filter(|s| !s.is_empty());
        match (id, name) {
            (Some(id), Some(name)) => Ok((id, name)),
            (None, _) => Err(format!(
                "a `tool_use` block has no `id` (name {:?})",
                self.name.as_deref().unwrap_or("")
            )),
            (Some(id), None) => Err(format!("`tool_use` block `{id}` has no `name`")),
        }
    }

    /// A `tool_use` block of a cut answer as a call, without any check but
    /// that it has an id and a name.
    fn partial_call(&self) -> Option<ToolCall> {
        let (id, name) = self.tool_id_and_name().ok()?;
        let arguments = match &self.input {
            None | Some(serde_json::Value::Null) => "{}".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        Some(ToolCall {
            id,
            name,
            arguments,
        })
    }
}

/// The JSON text of a `tool_use` block's `input`: an object is written
/// compact; a missing or `null` input is `{}`; anything else is an error.
pub(crate) fn input_text(id: &str, input: Option<&serde_json::Value>) -> Result<String, String> {
    arguments_text(input).map_err(|e| {
        format!(
            "`tool_use` block `{id}` has an `input` that is {e}: {}",
            truncate(&input.map(ToString::to_string).unwrap_or_default())
        )
    })
}

/// At most 200 bytes of `s` (on a character boundary), for error messages.
pub(crate) fn truncate(s: &str) -> String {
    llm_core::http::truncate_text(s, 200)
}

/// `usage` of a message or of a `message_delta` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct WireUsage {
    pub input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl WireUsage {
    /// Full input: uncached + cache writes + cache reads; `None` when none is reported.
    pub fn input_total(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts.iter().flatten().copied().reduce(u64::saturating_add)
    }

    /// As llm-core usage (missing counts are 0): `prompt_tokens` is the full
    /// input, of which `cache_read_tokens` were read from and
    /// `cache_write_tokens` written to the prompt cache.
    pub fn to_usage(self) -> Usage {
        Usage::new(
            self.input_total().unwrap_or(0),
            self.output_tokens.unwrap_or(0),
        )
        .with_cache(
            self.cache_read_input_tokens.unwrap_or(0),
            self.cache_creation_input_tokens.unwrap_or(0),
        )
    }

    /// Overwrites the counts `newer` reports (a later `message_delta` gives
    /// cumulative totals), keeping the others.
    pub fn update(&mut self, newer: &WireUsage) {
        let fields = [
            (&mut self.input_tokens, newer.input_tokens),
            (
                &mut self.cache_creation_input_tokens,
                newer.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                newer.cache_read_input_tokens,
            ),
            (&mut self.output_tokens, newer.output_tokens),
        ];
        for (mine, theirs) in fields {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }

    /// Whether any count is reported.
    pub fn is_reported(&self) -> bool {
        self.input_total().is_some() || self.output_tokens.is_some()
    }
}

/// The inner object of an error body or `error` event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message: Option<String>,
}

/// `{"type":"error","error":{…},"request_id":"…"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorEnvelope {
    pub error: Option<ErrorDetail>,
    pub request_id: Option<String>,
}

/// The `data` of any streamed event; which fields are set depends on `type`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StreamPayload {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `message_start`.
    pub message: Option<MessageResponse>,
    /// `content_block_start`, `content_block_delta`, `content_block_stop`.
    pub index: Option<u64>,
    /// `content_block_start`.
    pub content_block: Option<ContentBlock>,
    /// `content_block_delta` (`type`, `text`) and `message_delta` (`stop_reason`).
    pub delta: Option<Delta>,
    /// `message_delta` (cumulative).
    pub usage: Option<WireUsage>,
    /// `error`.
    pub error: Option<ErrorDetail>,
    pub request_id: Option<String>,
}

/// The `delta` of `content_block_delta` or `message_delta`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Delta {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    /// `input_json_delta`: a piece of a tool call's JSON arguments.
    pub partial_json: Option<String>,
    /// `thinking_delta`: a piece of a thinking block's reasoning.
    pub thinking: Option<String>,
    /// `signature_delta`: the thinking block's signature.
    pub signature: Option<String>,
    pub stop_reason: Option<String>,
}

/// A page of `GET /v1/models`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ModelPage {
    #[serde(deserialize_with = "null_default")]
    pub data: Vec<ModelInfo>,
    #[serde(deserialize_with = "null_default")]
    pub has_more: bool,
    pub last_id: Option<String>,
}

/// One model of the list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ModelInfo {
    pub id: Option<String>,
}

/// Whether a `stop_reason` says the answer was cut short (`max_tokens`,
/// `model_context_window_exceeded`, `refusal`): its last tool call may then
/// have incomplete arguments, which is not a decoding error.
pub(crate) fn is_cut(stop_reason: Option<&str>) -> bool {
    matches!(
        stop_reason,
        Some("max_tokens" | "model_context_window_exceeded" | "refusal")
    )
}

/// Maps a `stop_reason`.
///
/// `model_context_window_exceeded` means the answer filled the model's
/// context window and is truncated ("Treat the response as truncated",
/// <https://platform.claude.com/docs/en/build-with-claude/handling-stop-reasons>),
/// so it is `Length` like `max_tokens`.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_string()),
        None => FinishReason::Other("unknown".to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_adds_cache_fields_and_tolerates_null() {
        let u: WireUsage = serde_json::from_str(
            r#"{"input_tokens":10,"cache_creation_input_tokens":null,"cache_read_input_tokens":5,"output_tokens":3,"service_tier":"standard"}"#,
        )
        .unwrap();
        assert_eq!(u.to_usage(), Usage::new(15, 3).with_cache(5, 0));
        let none: WireUsage = serde_json::from_str("{}").unwrap();
        assert_eq!(none.input_total(), None);
    }

    #[test]
    fn unknown_blocks_and_fields_are_ignored() {
        let m: MessageResponse = serde_json::from_str(
            r#"{"content":[{"type":"thinking","thinking":"hm","signature":"x"},{"type":"text","text":"a","citations":[]},{"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":"b"}],"stop_reason":"pause_turn","usage":null,"new_field":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(m.text(), "ab");
        assert_eq!(
            finish_reason(m.stop_reason.as_deref()),
            FinishReason::Other("pause_turn".into())
        );
        assert_eq!(m.usage, WireUsage::default());
    }

    #[test]
    fn stop_reasons_map() {
        for (s, f) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("model_context_window_exceeded", FinishReason::Length),
            ("pause_turn", FinishReason::Other("pause_turn".into())),
        ] {
            assert_eq!(finish_reason(Some(s)), f, "{s}");
        }
    }
}
