//! Request validation, before any provider sees a request.

use crate::error::ValidationError;
use crate::types::{LlmRequest, Role, ToolChoice};

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// Checks a request: at least one message, `max_tokens` above 0, `temperature`
/// within 0..=2, `top_p` within 0..=1, and tools that a provider can take
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
    if req.max_tokens == 0 {
        return Err(invalid("max_tokens", "must be at least 1"));
    }
    if !(0.0..=2.0).contains(&req.temperature) {
        return Err(invalid(
            "temperature",
            format!("must be between 0 and 2, got {}", req.temperature),
        ));
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
    validate_tools(req)
}

/// What OpenAI, Anthropic and Ollama all accept as a tool name.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn validate_tools(req: &LlmRequest) -> Result<(), ValidationError> {
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
        if req.tools[..i].iter().any(|t| t.name == tool.name) {
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
        Some(ToolChoice::Function(name)) if !req.tools.iter().any(|t| &t.name == name) => {
            return Err(invalid(
                "tool_choice",
                format!("names {name:?}, which is not among the request's tools"),
            ));
        }
        Some(ToolChoice::Required | ToolChoice::Function(_)) if req.tools.is_empty() => {
            return Err(invalid("tool_choice", "requires at least one tool"));
        }
        _ => {}
    }
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
        if let Some(c) = m
            .tool_calls
            .iter()
            .find(|c| c.id.is_empty() || c.name.is_empty())
        {
            return Err(invalid(
                "messages",
                format!("message {i}: a tool call needs an id and a name, got {c:?}"),
            ));
        }
        match (&m.role, &m.tool_call_id) {
            (Role::Tool, None) => {
                return Err(invalid(
                    "messages",
                    format!("message {i}: a tool message needs the id of the call it answers"),
                ))
            }
            (Role::Tool, Some(_)) | (_, None) => {}
            (role, Some(_)) => {
                return Err(invalid(
                    "messages",
                    format!("message {i}: only tool messages answer a call, not {role}"),
                ))
            }
        }
    }
    Ok(())
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
}
