//! An Anthropic Messages request body → an [`LlmRequest`], with
//! Anthropic-style validation; an [`LlmResponse`] → a `message`.

use llm_router::{
    FinishReason, ImageInput, LlmClient, LlmRequest, LlmResponse, Message, Thinking, ThinkingBlock,
    Tool, ToolCall, ToolChoice, MIN_THINKING_BUDGET,
};
use serde_json::{Map, Value};

use super::wire::{
    Block, ContentBlock, ImageSource, InputMessage, MessageContent, MessageObject, MessagesRequest,
    SystemPrompt, TextBlockParam, ToolResultContent, WireTool, WireToolChoice, IGNORED_FIELDS,
    MAPPED_FIELDS, REFUSED_FIELDS,
};
use super::AnthropicError;
use crate::protocols::openai_chat::{check_tool_support, resolve_model};

/// Image media types Anthropic accepts inline.
const MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Text put before the content of a `tool_result` with `is_error: true`, so
/// every provider's model sees that the tool failed.
pub const TOOL_ERROR_PREFIX: &str = "Error: ";

/// A parsed Messages request.
#[derive(Debug)]
pub struct Parsed {
    /// What the client is asked.
    pub request: LlmRequest,
    /// Whether to answer with server-sent events.
    pub stream: bool,
}

/// Which endpoint a body was sent to: `count_tokens` takes no `max_tokens`
/// and no `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

fn invalid(message: impl Into<String>) -> AnthropicError {
    AnthropicError::invalid(message)
}

/// Parses and validates a request body.
pub fn parse(
    body: &[u8],
    client: &LlmClient,
    endpoint: Endpoint,
) -> Result<Parsed, AnthropicError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The request body is not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(invalid("The request body must be a JSON object."));
    };
    check_fields(object, endpoint)?;
    let raw: MessagesRequest = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path.is_empty() || path == "." {
            "body".to_string()
        } else {
            path
        };
        invalid(format!("{at}: {}", e.inner()))
    })?;
    convert(raw, client, endpoint)
}

/// Refuses unknown fields and fields the gateway cannot honour (a null value
/// counts as absent).
fn check_fields(object: &Map<String, Value>, endpoint: Endpoint) -> Result<(), AnthropicError> {
    for (key, value) in object {
        let key = key.as_str();
        if endpoint == Endpoint::CountTokens && matches!(key, "max_tokens" | "stream") {
            return Err(invalid(format!("{key}: Extra inputs are not permitted")));
        }
        if MAPPED_FIELDS.contains(&key) || IGNORED_FIELDS.contains(&key) {
            continue;
        }
        if REFUSED_FIELDS.contains(&key) {
            if value.is_null() {
                continue;
            }
            return Err(invalid(format!(
                "{key}: this gateway does not support `{key}` (no provider behind it offers \
                 it); omit it."
            )));
        }
        return Err(invalid(format!("{key}: Extra inputs are not permitted")));
    }
    Ok(())
}

fn convert(
    raw: MessagesRequest,
    client: &LlmClient,
    endpoint: Endpoint,
) -> Result<Parsed, AnthropicError> {
    let model = raw.model.ok_or_else(|| invalid("model: Field required"))?;
    let messages = raw
        .messages
        .ok_or_else(|| invalid("messages: Field required"))?;
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    if endpoint == Endpoint::Messages && raw.max_tokens.is_none() {
        return Err(invalid("max_tokens: Field required"));
    }
    let thinking = match raw.thinking.filter(|t| !t.is_null()) {
        Some(t) => Some(parse_thinking(&t, raw.max_tokens, endpoint)?),
        None => None,
    };
    if raw.top_k.as_ref().is_some_and(|k| !k.is_null()) {
        return Err(invalid(
            "top_k: top-k sampling is not supported by this gateway (its providers are not \
             asked for it); omit `top_k`.",
        ));
    }

    let mut conversation = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        turn(i, m, &mut conversation)?;
    }
    if conversation.is_empty() {
        return Err(invalid(
            "messages: at least one message with content is required",
        ));
    }

    // Only what the client sent: no sampling default is invented here.
    let mut req = LlmRequest::plain(conversation);
    req.system_prompt = match raw.system {
        None => None,
        Some(SystemPrompt::Text(s)) => Some(s),
        Some(SystemPrompt::Blocks(blocks)) => Some(join_text(blocks)),
    }
    .filter(|s| !s.is_empty());

    if let Some(m) = raw.max_tokens {
        if m == 0 {
            return Err(invalid("max_tokens: must be greater than or equal to 1"));
        }
        req.max_tokens = Some(m);
    }
    if let Some(t) = raw.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid(format!(
                "temperature: must be between 0 and 1, got {t}"
            )));
        }
        req.temperature = Some(t);
    }
    if let Some(p) = raw.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(format!("top_p: must be between 0 and 1, got {p}")));
        }
        req.top_p = Some(p);
    }
    req.stop = raw.stop_sequences.unwrap_or_default();
    if req.stop.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid(
            "stop_sequences: each stop sequence must contain non-whitespace",
        ));
    }
    req.user = raw.metadata.and_then(|m| m.user_id);
    req.thinking = thinking;
    req.tools = tools(raw.tools)?;
    if let Some(choice) = raw.tool_choice {
        let (choice, parallel) = tool_choice(choice, &req.tools)?;
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = parallel;
    }

    resolve_model(&model, client, &mut req).map_err(|_| {
        AnthropicError::not_found(format!(
            "model: {model} (GET /v1/models lists the models of this gateway; `auto` lets the \
             router choose)"
        ))
    })?;
    llm_router::validate(&req).map_err(|v| invalid(format!("{}: {v}", v.field)))?;
    if endpoint == Endpoint::Messages {
        check_tool_support(&req, client).map_err(AnthropicError::from)?;
    }
    Ok(Parsed {
        request: req,
        stream: raw.stream.unwrap_or(false),
    })
}

/// `thinking` → the router's [`Thinking`], checked as Anthropic does: a
/// `type` of `enabled` (with an integer `budget_tokens` of at least 1024 and
/// below `max_tokens`), `adaptive` or `disabled`, and no other key.
fn parse_thinking(
    v: &Value,
    max_tokens: Option<u32>,
    endpoint: Endpoint,
) -> Result<Thinking, AnthropicError> {
    let Some(object) = v.as_object() else {
        return Err(invalid("thinking: Input should be an object"));
    };
    let kind = match object.get("type") {
        None => return Err(invalid("thinking.type: Field required")),
        Some(k) => k.as_str().unwrap_or_default(),
    };
    let allowed: &[&str] = match kind {
        "enabled" => &["type", "budget_tokens"],
        "adaptive" | "disabled" => &["type"],
        _ => {
            return Err(invalid(
                "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'",
            ))
        }
    };
    for key in object.keys() {
        if key == "display" {
            return Err(invalid(
                "thinking.display: this gateway does not support `display`; omit it (thinking \
                 is returned as the provider gives it).",
            ));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(format!(
                "thinking.{kind}.{key}: Extra inputs are not permitted"
            )));
        }
    }
    if kind != "enabled" {
        return Ok(if kind == "adaptive" {
            Thinking::Adaptive
        } else {
            Thinking::Disabled
        });
    }
    let budget = object
        .get("budget_tokens")
        .ok_or_else(|| invalid("thinking.enabled.budget_tokens: Field required"))?;
    let budget_tokens = budget
        .as_u64()
        .and_then(|b| u32::try_from(b).ok())
        .ok_or_else(|| {
            invalid("thinking.enabled.budget_tokens: Input should be a valid integer")
        })?;
    if budget_tokens < MIN_THINKING_BUDGET {
        return Err(invalid(format!(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to \
             {MIN_THINKING_BUDGET}"
        )));
    }
    if let Some(max) = max_tokens.filter(|m| endpoint == Endpoint::Messages && budget_tokens >= *m)
    {
        return Err(invalid(format!(
            "thinking.enabled.budget_tokens: must be less than max_tokens ({max}), got \
             {budget_tokens}"
        )));
    }
    Ok(Thinking::Enabled { budget_tokens })
}

/// Text blocks, joined with blank lines.
fn join_text(blocks: Vec<TextBlockParam>) -> String {
    let texts: Vec<String> = blocks
        .into_iter()
        .map(|b| b.text)
        .filter(|t| !t.is_empty())
        .collect();
    texts.join("\n\n")
}

/// One turn of `messages` → router messages: a user turn's `tool_result`
/// blocks become tool messages (in order, before the turn's text and
/// images); an assistant turn's `tool_use` blocks become its tool calls.
fn turn(i: usize, m: InputMessage, out: &mut Vec<Message>) -> Result<(), AnthropicError> {
    let user = match m.role.as_str() {
        "user" => true,
        "assistant" => false,
        other => {
            return Err(invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant', got '{other}'"
            )))
        }
    };
    let blocks = match m.content {
        MessageContent::Text(s) => {
            out.push(if user {
                Message::user(s)
            } else {
                Message::assistant(s)
            });
            return Ok(());
        }
        MessageContent::Blocks(b) => b,
    };
    let mut text = String::new();
    let mut images = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    let mut reasoning = Vec::new();
    for (j, raw) in blocks.into_iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        let block: Block = serde_path_to_error::deserialize(raw).map_err(|e| {
            let path = e.path().to_string();
            let at = if path.is_empty() || path == "." {
                at.clone()
            } else {
                format!("{at}.{path}")
            };
            invalid(format!("{at}: {}", e.inner()))
        })?;
        match block {
            Block::Text { text: t, .. } => {
                if !text.is_empty() && !t.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&t);
            }
            Block::Image { source, .. } if user => images.push(image(&at, source)?),
            Block::Image { .. } => {
                return Err(invalid(format!(
                    "{at}: image blocks are allowed in user messages only"
                )))
            }
            Block::ToolUse {
                id, name, input, ..
            } if !user => {
                if !input.is_object() {
                    return Err(invalid(format!("{at}.input: Input should be an object")));
                }
                calls.push(ToolCall {
                    id,
                    name,
                    arguments: input.to_string(),
                });
            }
            Block::ToolUse { .. } => {
                return Err(invalid(format!(
                    "{at}: tool_use blocks are allowed in assistant messages only"
                )))
            }
            Block::Thinking {
                thinking,
                signature,
            } if !user => reasoning.push(ThinkingBlock::Thinking {
                thinking,
                signature,
            }),
            Block::RedactedThinking { data } if !user => {
                reasoning.push(ThinkingBlock::RedactedThinking { data });
            }
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {
                return Err(invalid(format!(
                    "{at}: thinking and redacted_thinking blocks are allowed in assistant \
                     messages only"
                )))
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } if user => {
                let mut body = match content {
                    None => String::new(),
                    Some(ToolResultContent::Text(s)) => s,
                    Some(ToolResultContent::Blocks(b)) => join_text(b),
                };
                if is_error == Some(true) {
                    body.insert_str(0, TOOL_ERROR_PREFIX);
                }
                results.push(Message::tool_result(tool_use_id, body));
            }
            Block::ToolResult { .. } => {
                return Err(invalid(format!(
                    "{at}: tool_result blocks are allowed in user messages only"
                )))
            }
        }
    }
    out.extend(results);
    if user {
        if !text.is_empty() || !images.is_empty() {
            let mut message = Message::user(text);
            message.images = images;
            out.push(message);
        }
    } else if !text.is_empty() || !calls.is_empty() || !reasoning.is_empty() {
        out.push(Message::assistant_turn(reasoning, text, calls));
    }
    Ok(())
}

/// An image block's source → an [`ImageInput`] (`data:` URL for base64).
fn image(at: &str, source: ImageSource) -> Result<ImageInput, AnthropicError> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            if !MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(invalid(format!(
                    "{at}.source.media_type: Input should be 'image/jpeg', 'image/png', \
                     'image/gif' or 'image/webp'"
                )));
            }
            if data.is_empty() {
                return Err(invalid(format!(
                    "{at}.source.data: the image data is empty"
                )));
            }
            Ok(ImageInput {
                url: format!("data:{media_type};base64,{data}"),
                detail: None,
            })
        }
        ImageSource::Url { url } => {
            let input = ImageInput { url, detail: None };
            if !input.is_remote() {
                return Err(invalid(format!("{at}.source.url: expected an http(s) URL")));
            }
            Ok(input)
        }
    }
}

/// `tools`: client tools only; server tools (a `type` other than `custom`)
/// are refused naming the tool.
fn tools(raw: Option<Vec<WireTool>>) -> Result<Vec<Tool>, AnthropicError> {
    let mut out = Vec::new();
    for (i, t) in raw.into_iter().flatten().enumerate() {
        if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
            return Err(invalid(format!(
                "tools.{i}.type: the server tool `{kind}` ({}) is not supported by this \
                 gateway; only client tools (name, description, input_schema) are.",
                t.name
            )));
        }
        let schema = t
            .input_schema
            .ok_or_else(|| invalid(format!("tools.{i}.input_schema: Field required")))?;
        if !schema.is_object() {
            return Err(invalid(format!(
                "tools.{i}.input_schema: Input should be an object"
            )));
        }
        out.push(Tool {
            name: t.name,
            description: t.description,
            parameters: schema,
        });
    }
    Ok(out)
}

/// `tool_choice` → the router's choice and `parallel_tool_calls`
/// (`disable_parallel_tool_use: true` → `Some(false)`).
fn tool_choice(
    raw: WireToolChoice,
    tools: &[Tool],
) -> Result<(ToolChoice, Option<bool>), AnthropicError> {
    if raw.name.is_some() && raw.kind != "tool" {
        return Err(invalid(
            "tool_choice.name: Extra inputs are not permitted (only with type `tool`)",
        ));
    }
    let choice = match raw.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => {
            let name = raw
                .name
                .ok_or_else(|| invalid("tool_choice.name: Field required"))?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(invalid(format!(
                    "tool_choice.name: no tool named `{name}` is in `tools`"
                )));
            }
            ToolChoice::Function(name)
        }
        other => {
            return Err(invalid(format!(
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none', got \
                 '{other}'"
            )))
        }
    };
    let parallel =
        match (raw.disable_parallel_tool_use, &choice) {
            (Some(_), ToolChoice::None) => return Err(invalid(
                "tool_choice.disable_parallel_tool_use: Extra inputs are not permitted (not with \
                 type `none`)",
            )),
            (Some(disable), _) => Some(!disable),
            (None, _) => None,
        };
    Ok((choice, parallel))
}

/// Anthropic's `stop_reason` for the router's finish reason. A stop
/// sequence cannot be told apart from a natural end: both are `end_turn`.
pub fn stop_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
        FinishReason::Other(other) => match other.as_str() {
            "max_tokens" | "length" => "max_tokens",
            "tool_use" | "tool_calls" => "tool_use",
            "stop_sequence" => "stop_sequence",
            "pause_turn" => "pause_turn",
            "refusal" => "refusal",
            "model_context_window_exceeded" => "model_context_window_exceeded",
            _ => "end_turn",
        },
    }
}

/// A tool call's arguments as the `input` object (`{}` for none).
pub fn tool_input(arguments: &str) -> Result<Value, AnthropicError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(AnthropicError::api(
            "The upstream model called a tool with arguments that are not a JSON object.",
        )),
    }
}

/// The `message` for a response.
pub fn message<'a>(
    id: &'a str,
    resp: &'a LlmResponse,
) -> Result<MessageObject<'a>, AnthropicError> {
    let mut content = Vec::with_capacity(1 + resp.tool_calls.len() + resp.thinking.len());
    // The reasoning came first, as Anthropic orders an answer's blocks.
    for block in &resp.thinking {
        content.push(match block {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => ContentBlock::Thinking {
                thinking,
                signature: Some(signature),
            },
            ThinkingBlock::RedactedThinking { data } => ContentBlock::RedactedThinking { data },
        });
    }
    if !resp.content.is_empty() {
        content.push(ContentBlock::Text {
            text: &resp.content,
        });
    }
    for c in &resp.tool_calls {
        content.push(ContentBlock::ToolUse {
            id: &c.id,
            name: &c.name,
            input: tool_input(&c.arguments)?,
        });
    }
    Ok(MessageObject {
        id,
        kind: "message",
        role: "assistant",
        model: &resp.model,
        content,
        stop_reason: Some(stop_reason(&resp.finish_reason)),
        stop_sequence: None,
        usage: resp.usage.into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use llm_core::testing::ScriptedProvider;
    use llm_router::Role;
    use serde_json::json;

    use super::*;

    fn client() -> LlmClient {
        let p = Arc::new(
            ScriptedProvider::new("claude")
                .models(["claude-sonnet-4-5"])
                .tools(true),
        );
        LlmClient::builder().provider(p).build().unwrap()
    }

    fn parse_json(v: Value) -> Result<Parsed, AnthropicError> {
        parse(v.to_string().as_bytes(), &client(), Endpoint::Messages)
    }

    fn error_of(v: Value) -> String {
        let e = parse_json(v).unwrap_err();
        assert_eq!(e.kind, "invalid_request_error", "{e:?}");
        assert_eq!(e.status.as_u16(), 400);
        e.message
    }

    #[test]
    fn maps_system_messages_tools_and_options() {
        let p = parse_json(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}]},
                    {"type": "text", "text": "Go on."}
                ]},
                {"role": "assistant", "content": "Sure"}
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "tools": [{"name": "lookup", "description": "Looks up", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": true},
            "stream": true,
            "service_tier": "auto",
            "thinking": {"type": "disabled"}
        }))
        .unwrap();
        assert!(p.stream);
        let r = &p.request;
        assert_eq!(
            r.system_prompt.as_deref(),
            Some("Be terse.\n\nAnswer in English.")
        );
        assert_eq!(r.max_tokens, Some(100));
        assert_eq!(r.temperature, Some(0.5));
        assert_eq!(r.top_p, Some(0.9));
        assert_eq!(r.stop, vec!["END".to_string()]);
        assert_eq!(r.user.as_deref(), Some("u-1"));
        assert_eq!(r.provider.as_deref(), Some("claude"));
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("lookup".into())));
        assert_eq!(r.parallel_tool_calls, Some(false));
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::User,
                Role::Assistant
            ]
        );
        assert_eq!(r.messages[0].content, "What is here?");
        assert_eq!(
            r.messages[0].images[0].url,
            "data:image/png;base64,iVBORw0KGgo="
        );
        assert_eq!(r.messages[0].images[1].url, "https://example.com/a.jpg");
        assert_eq!(r.messages[1].content, "Let me check.");
        assert_eq!(r.messages[1].tool_calls[0].arguments, r#"{"q":"x"}"#);
        assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("toolu_1"));
        assert_eq!(r.messages[2].content, "42");
        assert_eq!(r.messages[3].content, "Go on.");
    }

    #[test]
    fn tool_choices_map() {
        let tools = [Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
        }];
        let c = |v: Value| tool_choice(serde_json::from_value(v).unwrap(), &tools);
        assert_eq!(
            c(json!({"type": "auto"})).unwrap(),
            (ToolChoice::Auto, None)
        );
        assert_eq!(
            c(json!({"type": "any"})).unwrap(),
            (ToolChoice::Required, None)
        );
        assert_eq!(
            c(json!({"type": "none"})).unwrap(),
            (ToolChoice::None, None)
        );
        assert_eq!(
            c(json!({"type": "auto", "disable_parallel_tool_use": false})).unwrap(),
            (ToolChoice::Auto, Some(true))
        );
        assert!(c(json!({"type": "tool", "name": "g"})).is_err());
        assert!(c(json!({"type": "required"})).is_err());
    }

    #[test]
    fn tool_errors_are_marked() {
        let p = parse_json(json!({
            "model": "auto", "max_tokens": 5,
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": true}]}
            ]
        }))
        .unwrap();
        assert_eq!(p.request.messages[1].content, "Error: boom");
        assert_eq!(p.request.messages[0].tool_calls[0].arguments, "{}");
    }

    #[test]
    fn refusals_name_the_field() {
        let base = || {
            json!({"model": "auto", "max_tokens": 5,
                   "messages": [{"role": "user", "content": "hi"}]})
        };
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        let mut no_max = base();
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(error_of(no_max), "max_tokens: Field required");
        assert!(error_of(with("top_k", json!(5))).starts_with("top_k:"));
        for (thinking, path) in [
            (
                json!({"type": "enabled", "budget_tokens": 2048}),
                "thinking.enabled.budget_tokens: must be less than max_tokens (5)",
            ),
            (
                json!({"type": "enabled", "budget_tokens": 1000}),
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            ),
            (
                json!({"type": "enabled", "budget_tokens": "many"}),
                "thinking.enabled.budget_tokens: Input should be a valid integer",
            ),
            (
                json!({"type": "enabled"}),
                "thinking.enabled.budget_tokens: Field required",
            ),
            (json!({"type": "on"}), "thinking.type: Input should be"),
            (
                json!({"budget_tokens": 2048}),
                "thinking.type: Field required",
            ),
            (
                json!({"type": "adaptive", "budget_tokens": 2048}),
                "thinking.adaptive.budget_tokens: Extra inputs",
            ),
            (
                json!({"type": "adaptive", "display": "omitted"}),
                "thinking.display:",
            ),
            (json!("enabled"), "thinking: Input should be an object"),
        ] {
            let m = error_of(with("thinking", thinking));
            assert!(m.starts_with(path), "{m}");
        }
        assert!(error_of(with("frobnicate", json!(1))).starts_with("frobnicate: Extra inputs"));
        assert!(error_of(with("container", json!("c"))).starts_with("container:"));
        assert!(error_of(with("temperature", json!(1.5))).starts_with("temperature:"));
        assert!(error_of(with(
            "tools",
            json!([{"type": "web_search_20250305", "name": "web_search"}])
        ))
        .starts_with("tools.0.type:"));
        let msg = error_of(with(
            "messages",
            json!([{"role": "user", "content": [{"type": "document", "source": {}}]}]),
        ));
        assert!(msg.starts_with("messages.0.content.0"), "{msg}");
        assert!(msg.contains("document"), "{msg}");
        let msg = error_of(with(
            "messages",
            json!([{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]}]),
        ));
        assert!(
            msg.starts_with("messages.0.content.0.source.media_type"),
            "{msg}"
        );
        let e = parse_json(with("model", json!("nope"))).unwrap_err();
        assert_eq!(e.kind, "not_found_error");
        // count_tokens takes no max_tokens.
        let e = parse(
            base().to_string().as_bytes(),
            &client(),
            Endpoint::CountTokens,
        )
        .unwrap_err();
        assert!(e.message.starts_with("max_tokens: Extra inputs"));
    }

    #[test]
    fn stop_reasons_map() {
        assert_eq!(stop_reason(&FinishReason::Stop), "end_turn");
        assert_eq!(stop_reason(&FinishReason::Length), "max_tokens");
        assert_eq!(stop_reason(&FinishReason::ToolCalls), "tool_use");
        assert_eq!(
            stop_reason(&FinishReason::Other("pause_turn".into())),
            "pause_turn"
        );
        assert!(tool_input("[1]").is_err());
        assert_eq!(tool_input("").unwrap(), json!({}));
    }

    #[test]
    fn thinking_and_assistant_thinking_blocks_are_mapped() {
        let p = parse_json(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should look it up.", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C"}
                ]}
            ],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]
        }))
        .unwrap();
        let r = &p.request;
        assert_eq!(
            r.thinking,
            Some(Thinking::Enabled {
                budget_tokens: 2048
            })
        );
        assert_eq!(
            r.messages[1].thinking,
            vec![
                ThinkingBlock::Thinking {
                    thinking: "I should look it up.".into(),
                    signature: "EqQBCgIYAhIM".into()
                },
                ThinkingBlock::RedactedThinking {
                    data: "EmwKAhgBEgy3".into()
                },
            ]
        );
        assert_eq!(r.messages[1].tool_calls[0].id, "toolu_01");
        for (thinking, expected) in [
            (json!({"type": "adaptive"}), Thinking::Adaptive),
            (json!({"type": "disabled"}), Thinking::Disabled),
        ] {
            let p = parse_json(
                json!({"model": "auto", "max_tokens": 10, "thinking": thinking,
                "messages": [{"role": "user", "content": "hi"}]}),
            )
            .unwrap();
            assert_eq!(p.request.thinking, Some(expected));
        }
        let m = error_of(json!({"model": "auto", "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}
        ]}));
        assert!(m.starts_with("messages.0.content.0: thinking"), "{m}");
    }

    #[test]
    fn answers_put_thinking_blocks_first() {
        let resp = LlmResponse {
            content: "18°C in Paris.".into(),
            provider: "claude".into(),
            provider_kind: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            usage: llm_router::Usage::new(10, 5),
            cost: 0.0,
            response_time: std::time::Duration::ZERO,
            finish_reason: FinishReason::Stop,
            cached: false,
            attempts: Vec::new(),
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            thinking: vec![
                ThinkingBlock::Thinking {
                    thinking: "Look it up.".into(),
                    signature: "sig".into(),
                },
                ThinkingBlock::RedactedThinking { data: "enc".into() },
            ],
        };
        let m = serde_json::to_value(message("msg_1", &resp).unwrap()).unwrap();
        assert_eq!(
            m["content"],
            json!([
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "enc"},
                {"type": "text", "text": "18°C in Paris."}
            ])
        );
    }
}
