//! Request validation, before any provider sees a request.

use std::collections::HashSet;

use crate::error::ValidationError;
use crate::types::{
    LlmRequest, ResponseFormat, Role, Thinking, ThinkingBlock, ToolChoice, MIN_THINKING_BUDGET,
};

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// Checks a request: at least one message, `max_tokens` above 0, `temperature`
/// within 0..=2, `top_p` within 0..=1, penalties within -2..=2,
/// `top_logprobs` at most 20, a well-formed `response_format`, images only on
/// user messages as `https:`/`data:` URLs, and tools that a provider can take
/// (valid unique names, object schemas, a `tool_choice` naming a declared
/// tool, tool calls only on assistant messages, results naming their call).
/// The error names the field.
///
/// ```
/// use llm_core::{validate, LlmRequest};
/// assert!(validate(&LlmRequest::new("hi")).is_ok());
/// let err = validate(&LlmRequest::new("hi").temperature(3.0)).unwrap_err();
/// assert_eq!(err.field, "temperature");
/// ```
pub fn validate(req: &LlmRequest) -> Result<(), ValidationError> {
    if req.messages.is_empty() {
        return Err(invalid("messages", "must contain at least one message"));
    }
    if req.max_tokens == Some(0) {
        return Err(invalid("max_tokens", "must be at least 1"));
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(invalid(
                "temperature",
                format!("must be between 0 and 2, got {t}"),
            ));
        }
    }
    for (field, value) in [
        ("frequency_penalty", req.frequency_penalty),
        ("presence_penalty", req.presence_penalty),
    ] {
        if let Some(v) = value {
            if !(-2.0..=2.0).contains(&v) {
                return Err(invalid(field, format!("must be between -2 and 2, got {v}")));
            }
        }
    }
    if let Some(n) = req.top_logprobs {
        if n > 20 {
            return Err(invalid(
                "top_logprobs",
                format!("must be between 0 and 20, got {n}"),
            ));
        }
    }
    if let Some(ResponseFormat::JsonSchema { name, schema, .. }) = &req.response_format {
        if !valid_tool_name(name) {
            return Err(invalid(
                "response_format",
                format!("json_schema name {name:?} must be 1 to 64 of a-z, A-Z, 0-9, _ and -"),
            ));
        }
        if !schema.is_object() {
            return Err(invalid(
                "response_format",
                format!("json_schema schema must be a JSON object, got {schema}"),
            ));
        }
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !m.images.is_empty() && m.role != Role::User {
            return Err(invalid(
                "messages",
                format!("message {i}: images are allowed on user messages only"),
            ));
        }
        for img in &m.images {
            if img.data().is_none() && !img.is_remote() {
                return Err(invalid(
                    "image_url",
                    format!("message {i}: image URL must be https:, http: or a base64 data: URL"),
                ));
            }
        }
    }
    if let Some(p) = req.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "top_p",
                format!("must be between 0 and 1, got {p}"),
            ));
        }
    }
    if req.stop.iter().any(String::is_empty) {
        return Err(invalid("stop", "must not contain an empty sequence"));
    }
    validate_thinking(req)?;
    validate_tools(req)
}

/// `thinking`: a budget of at least [`MIN_THINKING_BUDGET`] tokens and below
/// `max_tokens` (when set); thinking blocks only on assistant messages,
/// redacted ones with data.
fn validate_thinking(req: &LlmRequest) -> Result<(), ValidationError> {
    if let Some(Thinking::Enabled { budget_tokens }) = req.thinking {
        if budget_tokens < MIN_THINKING_BUDGET {
            return Err(invalid(
                "thinking",
                format!(
                    "budget_tokens must be at least {MIN_THINKING_BUDGET}, got {budget_tokens}"
                ),
            ));
        }
        if let Some(max) = req.max_tokens.filter(|m| budget_tokens >= *m) {
            return Err(invalid(
                "thinking",
                format!("budget_tokens ({budget_tokens}) must be less than max_tokens ({max})"),
            ));
        }
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !m.thinking.is_empty() && m.role != Role::Assistant {
            return Err(invalid(
                "messages",
                format!("message {i}: thinking blocks are allowed on assistant messages only"),
            ));
        }
        let empty_redacted = m
            .thinking
            .iter()
            .any(|b| matches!(b, ThinkingBlock::RedactedThinking { data } if data.is_empty()));
        if empty_redacted {
            return Err(invalid(
                "messages",
                format!("message {i}: a redacted thinking block has no data"),
            ));
        }
    }
    Ok(())
}

/// What OpenAI, Anthropic and Ollama all accept as a tool name.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Most tools one request may offer (OpenAI's limit; the others' are higher).
pub const MAX_TOOLS: usize = 128;

fn validate_tools(req: &LlmRequest) -> Result<(), ValidationError> {
    if req.tools.len() > MAX_TOOLS {
        return Err(invalid(
            "tools",
            format!("at most {MAX_TOOLS} tools, got {}", req.tools.len()),
        ));
    }
    let mut names = HashSet::with_capacity(req.tools.len());
    for (i, tool) in req.tools.iter().enumerate() {
        if !valid_tool_name(&tool.name) {
            return Err(invalid(
                "tools",
                format!(
                    "tool {i}: name {:?} must be 1 to 64 of a-z, A-Z, 0-9, _ and -",
                    tool.name
                ),
            ));
        }
        if !names.insert(tool.name.as_str()) {
            return Err(invalid(
                "tools",
                format!("tool {i}: name {:?} is declared twice", tool.name),
            ));
        }
        if !tool.parameters.is_object() {
            return Err(invalid(
                "tools",
                format!(
                    "tool {:?}: parameters must be a JSON Schema object, got {}",
                    tool.name, tool.parameters
                ),
            ));
        }
    }
    match &req.tool_choice {
        Some(ToolChoice::Function(name)) if !names.contains(name.as_str()) => {
            return Err(invalid(
                "tool_choice",
                format!("names {name:?}, which is not among the request's tools"),
            ));
        }
        Some(ToolChoice::Required) if req.tools.is_empty() => {
            return Err(invalid("tool_choice", "requires at least one tool"));
        }
        _ => {}
    }
    validate_tool_turns(req)
}

/// The tool calls of one assistant message and which are answered yet.
struct OpenCalls<'a> {
    message: usize,
    unanswered: HashSet<&'a str>,
    ids: HashSet<&'a str>,
}

impl OpenCalls<'_> {
    /// An error unless every call has its result.
    fn all_answered(&self, before: &str) -> Result<(), ValidationError> {
        if self.unanswered.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = self.unanswered.iter().copied().collect();
        ids.sort_unstable();
        Err(invalid(
            "messages",
            format!(
                "message {}: tool call(s) {} have no result {before}; each call is answered \
                 by a tool message right after the assistant message that made it",
                self.message,
                ids.join(", ")
            ),
        ))
    }
}

/// The conversation's tool turns are well formed, as OpenAI and Anthropic
/// require: an assistant message's tool calls have unique ids and are each
/// answered by a tool message that follows it directly (only tool messages in
/// between), before any other message and before the conversation ends.
fn validate_tool_turns(req: &LlmRequest) -> Result<(), ValidationError> {
    let mut open: Option<OpenCalls<'_>> = None;
    for (i, m) in req.messages.iter().enumerate() {
        if !m.tool_calls.is_empty() && m.role != Role::Assistant {
            return Err(invalid(
                "messages",
                format!(
                    "message {i}: only assistant messages carry tool calls, not {}",
                    m.role
                ),
            ));
        }
        if m.role != Role::Tool && m.tool_call_id.is_some() {
            return Err(invalid(
                "messages",
                format!(
                    "message {i}: only tool messages answer a call, not {}",
                    m.role
                ),
            ));
        }
        if m.role == Role::Tool {
            let Some(id) = m.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
                return Err(invalid(
                    "messages",
                    format!("message {i}: a tool message needs the id of the call it answers"),
                ));
            };
            let Some(calls) = open.as_mut() else {
                return Err(invalid(
                    "messages",
                    format!(
                        "message {i}: a tool message must follow the assistant message that \
                         made call {id:?}"
                    ),
                ));
            };
            if !calls.ids.contains(id) {
                return Err(invalid(
                    "messages",
                    format!(
                        "message {i}: answers call {id:?}, which message {} did not make",
                        calls.message
                    ),
                ));
            }
            if !calls.unanswered.remove(id) {
                return Err(invalid(
                    "messages",
                    format!("message {i}: call {id:?} is answered twice"),
                ));
            }
            continue;
        }
        if let Some(calls) = open.take() {
            calls.all_answered(&format!("before message {i}"))?;
        }
        if m.tool_calls.is_empty() {
            continue;
        }
        let mut ids = HashSet::with_capacity(m.tool_calls.len());
        for c in &m.tool_calls {
            if c.id.is_empty() || c.name.is_empty() {
                return Err(invalid(
                    "messages",
                    format!("message {i}: a tool call needs an id and a name, got {c:?}"),
                ));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(invalid(
                    "messages",
                    format!("message {i}: two tool calls have the id {:?}", c.id),
                ));
            }
        }
        open = Some(OpenCalls {
            message: i,
            unanswered: ids.clone(),
            ids,
        });
    }
    match open {
        Some(calls) => calls.all_answered("at the end of the conversation"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_invalid_field_is_named() {
        let ok = LlmRequest::new("x");
        assert!(validate(&ok).is_ok());
        let cases = [
            (LlmRequest::from_messages(vec![]), "messages"),
            (ok.clone().max_tokens(0), "max_tokens"),
            (ok.clone().temperature(-0.1), "temperature"),
            (ok.clone().temperature(2.1), "temperature"),
            (ok.clone().temperature(f32::NAN), "temperature"),
            (ok.clone().top_p(1.5), "top_p"),
            (ok.clone().stop(""), "stop"),
        ];
        for (req, field) in cases {
            let err = validate(&req).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(validate(&ok.clone().temperature(0.0)).is_ok());
        assert!(validate(&ok.temperature(2.0).top_p(1.0)).is_ok());
    }

    #[test]
    fn tools_and_tool_messages_are_checked() {
        use crate::types::{Message, Tool, ToolCall};
        let schema = serde_json::json!({"type": "object"});
        let tool = |name: &str| Tool::function(name, "d", schema.clone());
        let ok = LlmRequest::new("x").tool(tool("get_weather"));
        assert!(validate(&ok).is_ok());
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{}".into(),
        };
        let conversation = LlmRequest::from_messages(vec![
            Message::user("weather?"),
            Message::assistant_tool_calls("", vec![call.clone()]),
            Message::tool_result("call_1", "sunny"),
        ]);
        assert!(validate(&conversation).is_ok());
        assert!(conversation.uses_tools());
        assert!(!LlmRequest::new("x").uses_tools());

        let mut no_id = Message::tool_result("c", "r");
        no_id.tool_call_id = None;
        let mut user_with_calls = Message::user("u");
        user_with_calls.tool_calls.push(call.clone());
        let mut user_answering = Message::user("u");
        user_answering.tool_call_id = Some("c".into());
        let cases = [
            (
                LlmRequest::new("x").tool(tool("bad name")),
                "tools",
                "bad name",
            ),
            (LlmRequest::new("x").tool(tool("")), "tools", "1 to 64"),
            (
                LlmRequest::new("x").tool(tool(&"a".repeat(65))),
                "tools",
                "1 to 64",
            ),
            (
                ok.clone().tool(tool("get_weather")),
                "tools",
                "declared twice",
            ),
            (
                LlmRequest::new("x").tool(Tool::function("f", "d", serde_json::json!("string"))),
                "tools",
                "JSON Schema object",
            ),
            (
                ok.clone().tool_choice(ToolChoice::Function("other".into())),
                "tool_choice",
                "\"other\"",
            ),
            (
                LlmRequest::new("x").tool_choice(ToolChoice::Required),
                "tool_choice",
                "at least one tool",
            ),
            (
                LlmRequest::from_messages(vec![no_id]),
                "messages",
                "needs the id",
            ),
            (
                LlmRequest::from_messages(vec![user_with_calls]),
                "messages",
                "only assistant messages",
            ),
            (
                LlmRequest::from_messages(vec![user_answering]),
                "messages",
                "only tool messages",
            ),
        ];
        for (req, field, text) in cases {
            let err = validate(&req).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(text), "{err}");
        }
        assert!(validate(&LlmRequest::new("x").tool_choice(ToolChoice::None)).is_ok());
    }

    #[test]
    fn tool_turns_must_pair_calls_with_results() {
        use crate::types::{Message, ToolCall};
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "f".into(),
            arguments: "{}".into(),
        };
        let calls =
            |ids: &[&str]| Message::assistant_tool_calls("", ids.iter().map(|i| call(i)).collect());
        let q = || Message::user("q");
        let result = |id: &str| Message::tool_result(id, "r");
        let ok = [
            vec![q(), calls(&["a", "b"]), result("b"), result("a"), q()],
            vec![q(), calls(&["a"]), result("a"), calls(&["a"]), result("a")],
        ];
        for messages in ok {
            let req = LlmRequest::from_messages(messages.clone());
            assert!(validate(&req).is_ok(), "{messages:?}: {:?}", validate(&req));
        }
        let bad = [
            (
                vec![q(), calls(&["a", "b"]), result("a"), q()],
                "call(s) b have no result before message 3",
            ),
            (vec![q(), calls(&["a"])], "have no result at the end"),
            (
                vec![q(), calls(&["a"]), result("x")],
                "answers call \"x\", which message 1 did not make",
            ),
            (
                vec![q(), calls(&["a"]), result("a"), result("a")],
                "answered twice",
            ),
            (vec![q(), result("a")], "must follow the assistant message"),
            (
                vec![q(), calls(&["a"]), q(), result("a")],
                "have no result before message 2",
            ),
            (
                vec![q(), calls(&["a", "a"])],
                "two tool calls have the id \"a\"",
            ),
            (vec![q(), calls(&["a"]), result("")], "needs the id"),
        ];
        for (messages, text) in bad {
            let err = validate(&LlmRequest::from_messages(messages.clone())).unwrap_err();
            assert_eq!(err.field, "messages", "{err}");
            assert!(err.to_string().contains(text), "{messages:?}: {err}");
        }
    }

    #[test]
    fn many_tools_are_refused_quickly() {
        use crate::types::Tool;
        let schema = serde_json::json!({"type": "object"});
        let mut req = LlmRequest::new("x");
        for i in 0..MAX_TOOLS {
            req = req.tool(Tool::function(format!("t{i}"), "d", schema.clone()));
        }
        assert!(validate(&req).is_ok());
        let err = validate(&req.tool(Tool::function("one_more", "d", schema))).unwrap_err();
        assert_eq!(err.field, "tools");
        assert!(
            err.to_string().contains("at most 128 tools, got 129"),
            "{err}"
        );
    }
}
