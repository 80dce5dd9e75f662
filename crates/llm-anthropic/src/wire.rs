//! Serde types of the Anthropic Messages API.
//!
//! Response types are lenient: every field is optional, `null` is accepted
//! where a value is expected, unknown fields and unknown `type` values are
//! ignored.

use std::borrow::Cow;

use llm_core::{FinishReason, Usage};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<WireMessage<'a>>,
    pub temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// One `user` or `assistant` turn with plain text content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WireMessage<'a> {
    pub role: &'static str,
    pub content: Cow<'a, str>,
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
    /// The text of every `text` block, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter(|b| b.kind.as_deref() == Some("text"))
            .filter_map(|b| b.text.as_deref())
            .collect()
    }
}

/// A content block; only `text` blocks are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
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

    /// As llm-core usage (missing counts are 0).
    pub fn to_usage(self) -> Usage {
        Usage::new(
            self.input_total().unwrap_or(0),
            self.output_tokens.unwrap_or(0),
        )
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

/// Maps a `stop_reason`.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
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
        assert_eq!(u.to_usage(), Usage::new(15, 3));
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
            (
                "model_context_window_exceeded",
                FinishReason::Other("model_context_window_exceeded".into()),
            ),
        ] {
            assert_eq!(finish_reason(Some(s)), f, "{s}");
        }
    }
}
