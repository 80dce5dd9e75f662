//! The wire of OpenAI's Responses API (`POST /v1/responses`): which request
//! fields the door knows, and the exact shapes of the `response` object, its
//! output items and usage, as OpenAI's API reference
//! (<https://platform.openai.com/docs/api-reference/responses/object>) and
//! the openai-python SDK's `types/responses/response.py`,
//! `response_output_message.py`, `response_function_tool_call.py` and
//! `response_usage.py` define them.

use llm_router::{FinishReason, LlmResponse, ToolCall, Usage};
use serde_json::{json, Map, Value};

/// Request fields the door maps into the router's request, or handles itself.
pub const MAPPED_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "stream",
    "stream_options",
    "store",
    "previous_response_id",
    "reasoning",
    "truncation",
    "include",
];

/// Fields accepted and not sent upstream because they do not change the
/// answer: `metadata` (echoed in the response object), and the caching and
/// abuse-monitoring hints `prompt_cache_key` and `safety_identifier`.
pub const ACCEPTED_FIELDS: &[&str] = &["metadata", "prompt_cache_key", "safety_identifier"];

/// Fields of stateful or hosted features this stateless gateway does not
/// offer: refused (with a 400 naming them) unless null.
pub const REFUSED_FIELDS: &[&str] = &[
    "background",
    "conversation",
    "prompt",
    "max_tool_calls",
    "top_logprobs",
    "service_tier",
];

/// The `response` object's status for a finish reason, and its
/// `incomplete_details.reason` when the answer was cut short.
pub fn status(finish: &FinishReason) -> (&'static str, Option<&'static str>) {
    match finish {
        FinishReason::Length => ("incomplete", Some("max_output_tokens")),
        FinishReason::ContentFilter => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// `usage` of a `response` object.
pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    })
}

/// An assistant `message` output item with one `output_text` part.
pub fn message_item(id: &str, status: &str, text: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    })
}

/// An `output_text` content part.
pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `function_call` output item.
pub fn function_call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": call.arguments,
        "call_id": call.id,
        "name": call.name,
    })
}

/// `prefix_` and 48 random hex digits, as OpenAI's Responses ids look
/// (`resp_…`, `msg_…`, `fc_…`).
pub fn new_id(prefix: &str) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 49);
    id.push_str(prefix);
    id.push('_');
    id.extend(std::iter::repeat_with(|| char::from(HEX[fastrand::usize(..16)])).take(48));
    id
}

/// The request parameters a `response` object repeats back.
#[derive(Debug, Clone)]
pub struct Echo {
    /// `instructions` as sent (string), else null.
    pub instructions: Value,
    /// `max_output_tokens` as sent, else null.
    pub max_output_tokens: Value,
    /// `metadata` as sent, else `{}`.
    pub metadata: Value,
    /// `parallel_tool_calls`, `true` unless sent.
    pub parallel_tool_calls: bool,
    /// `temperature` as sent, else null.
    pub temperature: Value,
    /// `top_p` as sent, else null.
    pub top_p: Value,
    /// `tool_choice` as sent, else `auto`.
    pub tool_choice: Value,
    /// `tools` as sent, else `[]`.
    pub tools: Value,
    /// `text` as sent, else `{"format":{"type":"text"}}`.
    pub text: Value,
    /// `user` as sent, else null.
    pub user: Value,
}

/// A whole `response` object.
pub struct ResponseObject<'a> {
    /// `resp_…`.
    pub id: &'a str,
    /// Unix seconds.
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'a str,
    /// `incomplete_details.reason`, when incomplete.
    pub incomplete: Option<&'a str>,
    /// The `error` object of a failed response.
    pub error: Option<Value>,
    /// The model that answered (or was asked for, before the answer).
    pub model: &'a str,
    /// Output items.
    pub output: Vec<Value>,
    /// Token counts (null until known).
    pub usage: Option<&'a Usage>,
    /// Parameters repeated back.
    pub echo: &'a Echo,
}

impl ResponseObject<'_> {
    /// The JSON value.
    pub fn to_value(&self) -> Value {
        let e = self.echo;
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!("response"));
        m.insert("created_at".into(), json!(self.created_at));
        m.insert("status".into(), json!(self.status));
        m.insert("background".into(), json!(false));
        m.insert("error".into(), self.error.clone().unwrap_or(Value::Null));
        m.insert(
            "incomplete_details".into(),
            self.incomplete
                .map_or(Value::Null, |r| json!({ "reason": r })),
        );
        m.insert("instructions".into(), e.instructions.clone());
        m.insert("max_output_tokens".into(), e.max_output_tokens.clone());
        m.insert("metadata".into(), e.metadata.clone());
        m.insert("model".into(), json!(self.model));
        m.insert("output".into(), Value::Array(self.output.clone()));
        m.insert("parallel_tool_calls".into(), json!(e.parallel_tool_calls));
        m.insert("previous_response_id".into(), Value::Null);
        m.insert("reasoning".into(), json!({"effort": null, "summary": null}));
        // Nothing is stored: the gateway is stateless.
        m.insert("store".into(), json!(false));
        m.insert("temperature".into(), e.temperature.clone());
        m.insert("text".into(), e.text.clone());
        m.insert("tool_choice".into(), e.tool_choice.clone());
        m.insert("tools".into(), e.tools.clone());
        m.insert("top_p".into(), e.top_p.clone());
        m.insert("truncation".into(), json!("disabled"));
        m.insert("usage".into(), self.usage.map_or(Value::Null, usage));
        m.insert("user".into(), e.user.clone());
        Value::Object(m)
    }
}

/// The output items of a whole answer: the message (when there is text, or
/// nothing else), then one `function_call` per tool call.
pub fn output_items(resp: &LlmResponse, item_status: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(1 + resp.tool_calls.len());
    if !resp.content.is_empty() || resp.tool_calls.is_empty() {
        out.push(message_item(&new_id("msg"), item_status, &resp.content));
    }
    for call in &resp.tool_calls {
        out.push(function_call_item(&new_id("fc"), call, "completed"));
    }
    out
}
