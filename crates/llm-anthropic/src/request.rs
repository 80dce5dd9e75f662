//! Mapping of a request's conversation and tools onto the Messages API.
//!
//! Plain-text turns keep the classic `"content":"…"` string; a turn that
//! carries tool calls or tool results becomes an array of content blocks.

use std::borrow::Cow;

use llm_core::provider_kit::arguments_object;
use llm_core::{ImageInput, LlmRequest, Message, ResponseFormat, Role, ThinkingBlock, ToolChoice};

use crate::wire::{
    truncate, ImageSource, RequestBlock, WireContent, WireMessage, WireTool, WireToolChoice,
};

/// Separator of merged text.
const JOIN: &str = "\n\n";

/// Name of the tool that carries a `json_object` answer.
pub(crate) const JSON_OBJECT_TOOL: &str = "json_object";

/// Whether `text` is nothing the API accepts as a text block (empty or only
/// whitespace: Anthropic answers 400 to such blocks).
fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// One piece of a turn before it is written.
enum Part<'a> {
    Text(&'a str),
    Block(RequestBlock<'a>),
}

/// A turn being assembled: consecutive messages of one wire role.
struct Turn<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

impl<'a> Turn<'a> {
    /// The wire form: a string when every part is text (merged parts joined
    /// by a blank line), else blocks. In a user turn the `tool_result` blocks
    /// come first, as the API requires, and in an assistant turn the
    /// `thinking`/`redacted_thinking` blocks do; adjacent text parts become one text
    /// block. Blank text is left out on both forms (the API rejects empty
    /// text); a turn always has at least one non-blank part (see
    /// [`map_messages`]).
    fn finish(self) -> WireMessage<'a> {
        let role = self.role;
        if self.parts.iter().all(|p| matches!(p, Part::Text(_))) {
            let texts: Vec<&str> = self
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) if !is_blank(t) => Some(*t),
                    _ => None,
                })
                .collect();
            let content = match texts.as_slice() {
                [one] => Cow::Borrowed(*one),
                many => Cow::Owned(many.join(JOIN)),
            };
            return WireMessage {
                role,
                content: WireContent::Text(content),
            };
        }
        let (mut ordered, rest): (Vec<Part<'a>>, Vec<Part<'a>>) =
            self.parts.into_iter().partition(|p| {
                matches!(
                    p,
                    Part::Block(
                        RequestBlock::ToolResult { .. }
                            | RequestBlock::Thinking { .. }
                            | RequestBlock::RedactedThinking { .. }
                    )
                )
            });
        ordered.extend(rest);
        let mut blocks = Vec::with_capacity(ordered.len());
        let mut pending: Vec<&'a str> = Vec::new();
        for part in ordered {
            match part {
                Part::Text(t) => {
                    if !is_blank(t) {
                        pending.push(t);
                    }
                }
                Part::Block(b) => {
                    flush_text(&mut pending, &mut blocks);
                    blocks.push(b);
                }
            }
        }
        flush_text(&mut pending, &mut blocks);
        WireMessage {
            role,
            content: WireContent::Blocks(blocks),
        }
    }
}

fn flush_text<'a>(pending: &mut Vec<&'a str>, blocks: &mut Vec<RequestBlock<'a>>) {
    let text = match pending.as_slice() {
        [] => return,
        [one] => Cow::Borrowed(*one),
        many => Cow::Owned(many.join(JOIN)),
    };
    pending.clear();
    blocks.push(RequestBlock::Text { text });
}

/// The parts of one message.
fn parts(i: usize, m: &Message) -> Result<Vec<Part<'_>>, String> {
    match m.role {
        Role::Tool => {
            let id = m.tool_call_id.as_deref().filter(|id| !id.is_empty());
            let id = id.ok_or_else(|| {
                format!("message {i}: a tool result needs the id of the call it answers")
            })?;
            Ok(vec![Part::Block(RequestBlock::ToolResult {
                tool_use_id: id,
                content: &m.content,
            })])
        }
        _ => {
            if !m.images.is_empty() && m.role != Role::User {
                return Err(format!(
                    "message {i}: images are only accepted on user messages"
                ));
            }
            if !m.thinking.is_empty() && m.role != Role::Assistant {
                return Err(format!(
                    "message {i}: thinking blocks are only accepted on assistant messages"
                ));
            }
            let mut parts =
                Vec::with_capacity(1 + m.images.len() + m.tool_calls.len() + m.thinking.len());
            // An earlier answer's reasoning goes back unchanged, first.
            for block in &m.thinking {
                parts.push(Part::Block(match block {
                    ThinkingBlock::Thinking {
                        thinking,
                        signature,
                    } => RequestBlock::Thinking {
                        thinking,
                        signature,
                    },
                    ThinkingBlock::RedactedThinking { data } => {
                        RequestBlock::RedactedThinking { data }
                    }
                }));
            }
            parts.push(Part::Text(&m.content));
            for (n, image) in m.images.iter().enumerate() {
                parts.push(Part::Block(RequestBlock::Image {
                    source: image_source(i, n, image)?,
                }));
            }
            for call in &m.tool_calls {
                parts.push(Part::Block(RequestBlock::ToolUse {
                    id: &call.id,
                    name: &call.name,
                    input: call_input(i, &call.id, &call.name, &call.arguments)?,
                }));
            }
            Ok(parts)
        }
    }
}

/// An image as a block source: a base64 `data:` URL inline, an `http(s)`
/// URL by reference (Anthropic fetches it); anything else fails, naming it.
fn image_source(i: usize, n: usize, image: &ImageInput) -> Result<ImageSource<'_>, String> {
    if let Some(data) = image.data() {
        return Ok(ImageSource::Base64 {
            media_type: data.media_type,
            data: data.base64,
        });
    }
    if image.is_remote() {
        return Ok(ImageSource::Url { url: &image.url });
    }
    let shown: String = image.url.chars().take(40).collect();
    Err(format!(
        "message {i}: image {n} (`{shown}…`) is neither an http(s) URL nor a base64 `data:` URL"
    ))
}

/// A call's JSON-text arguments as the `input` object; empty text is `{}`.
fn call_input(
    i: usize,
    id: &str,
    name: &str,
    arguments: &str,
) -> Result<serde_json::Value, String> {
    arguments_object(arguments).map_err(|problem| {
        format!(
            "message {i}: the arguments of tool call `{id}` (`{name}`) are {problem}: {}; \
             Anthropic needs a JSON object as `input`",
            truncate(arguments)
        )
    })
}

/// System prompt and system-role messages → one `system` string (joined by a
/// blank line, in order); the other messages in order as `user` (user text
/// and images, tool results) and `assistant` (text, tool calls) turns,
/// consecutive turns of the same role merged into one so that roles
/// alternate. A user or assistant message with nothing to send (blank text,
/// no images, no tool calls) is left out before merging, so it neither
/// sends empty text nor splits a turn.
///
/// Fails, naming the message, on a tool call whose arguments are not a JSON
/// object or a tool result without the id of its call.
pub(crate) fn map_messages(
    req: &LlmRequest,
) -> Result<(Option<String>, Vec<WireMessage<'_>>), String> {
    let mut system: Vec<&str> = req
        .system_prompt
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::System => {
                if !m.content.is_empty() {
                    system.push(&m.content);
                }
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        let empty = is_blank(&m.content)
            && m.images.is_empty()
            && m.tool_calls.is_empty()
            && m.thinking.is_empty();
        if empty && m.role != Role::Tool {
            continue;
        }
        let new = parts(i, m)?;
        match turns.last_mut() {
            Some(last) if last.role == role => last.parts.extend(new),
            _ => turns.push(Turn { role, parts: new }),
        }
    }
    let system = (!system.is_empty()).then(|| system.join(JOIN));
    Ok((system, turns.into_iter().map(Turn::finish).collect()))
}

/// `tools` and `tool_choice` of a request, and the name of the tool that
/// carries a structured answer, if one was added.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolMapping<'a> {
    pub tools: Vec<WireTool<'a>>,
    pub choice: Option<WireToolChoice<'a>>,
    /// The tool whose `input` is the answer (`response_format`).
    pub format: Option<Cow<'a, str>>,
}

/// The tool that emulates `response_format`: `json_schema` → a tool named
/// after the schema with the schema as `input_schema`; `json_object` → a
/// tool `json_object` taking any object; `text` or unset → none.
fn format_tool(req: &LlmRequest) -> Option<WireTool<'_>> {
    match req.response_format.as_ref()? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(WireTool {
            name: Cow::Borrowed(JSON_OBJECT_TOOL),
            description: None,
            input_schema: Cow::Owned(serde_json::json!({"type": "object"})),
        }),
        ResponseFormat::JsonSchema {
            name,
            schema,
            description,
            ..
        } => Some(WireTool {
            name: Cow::Borrowed(name),
            description: description.as_deref().filter(|d| !d.is_empty()),
            input_schema: Cow::Borrowed(schema),
        }),
    }
}

/// `tools` and `tool_choice`.
///
/// Declared tools → `{"name","description","input_schema"}` each, and the
/// request's `tool_choice` (not sent when unset).
///
/// Without declared tools, a conversation whose history calls tools still
/// needs `tools` (Anthropic answers 400 "Requests which include tool_use or
/// tool_result blocks must define tools"): each tool name called in the
/// history is declared with `{"type":"object"}` as its schema and no
/// description, and `tool_choice` is `{"type":"none"}` so that the model
/// cannot call them. With neither, neither field is sent (the API only takes
/// `tool_choice` with tools).
///
/// `response_format` `json_object`/`json_schema` adds a tool whose input is
/// the answer ([`format_tool`]). Without declared tools (or with
/// `tool_choice` `none`) the model is forced to call it
/// (`{"type":"tool","name":…}`); with declared tools and `tool_choice`
/// unset or `auto`, the model must call a tool (`{"type":"any"}`): one of
/// the caller's, or the format tool to answer. A `tool_choice` that forces
/// one of the caller's tools (`required`, a named function) makes this turn
/// a tool call, so no format tool is added. Fails when the format tool's
/// name is also a tool's name.
pub(crate) fn map_tools(req: &LlmRequest) -> Result<ToolMapping<'_>, String> {
    // `parallel_tool_calls: false` is a flag of the choice; without a choice
    // it rides on `auto`, the API's default.
    let disable_parallel_tool_use = (req.parallel_tool_calls == Some(false)).then_some(true);
    let forces_own_tool = !req.tools.is_empty()
        && matches!(
            req.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Function(_))
        );
    let format = format_tool(req).filter(|_| !forces_own_tool);
    let mut tools = if req.tools.is_empty() {
        history_tools(req)
    } else {
        req.tools
            .iter()
            .map(|t| WireTool {
                name: Cow::Borrowed(&t.name),
                description: t.description.as_deref().filter(|d| !d.is_empty()),
                input_schema: Cow::Borrowed(&t.parameters),
            })
            .collect()
    };
    if let Some(format) = format {
        if tools.iter().any(|t| t.name == format.name) {
            return Err(format!(
                "the `response_format` name `{}` is also the name of a tool; \
                 Anthropic receives the format as a tool of that name",
                format.name
            ));
        }
        let name = format.name.clone();
        let choice = if req.tools.is_empty() || req.tool_choice == Some(ToolChoice::None) {
            WireToolChoice::Tool {
                name: name.clone(),
                disable_parallel_tool_use: None,
            }
        } else {
            WireToolChoice::Any {
                disable_parallel_tool_use,
            }
        };
        tools.push(format);
        return Ok(ToolMapping {
            tools,
            choice: Some(choice),
            format: Some(name),
        });
    }
    if req.tools.is_empty() {
        let choice = (!tools.is_empty()).then_some(WireToolChoice::None);
        return Ok(ToolMapping {
            tools,
            choice,
            format: None,
        });
    }
    let choice = match (&req.tool_choice, disable_parallel_tool_use) {
        (None, None) => None,
        (None | Some(ToolChoice::Auto), disable_parallel_tool_use) => Some(WireToolChoice::Auto {
            disable_parallel_tool_use,
        }),
        (Some(ToolChoice::Required), disable_parallel_tool_use) => Some(WireToolChoice::Any {
            disable_parallel_tool_use,
        }),
        (Some(ToolChoice::Function(name)), disable_parallel_tool_use) => {
            Some(WireToolChoice::Tool {
                name: Cow::Borrowed(name),
                disable_parallel_tool_use,
            })
        }
        (Some(ToolChoice::None), _) => Some(WireToolChoice::None),
    };
    Ok(ToolMapping {
        tools,
        choice,
        format: None,
    })
}

/// The tools called in the history (the `tool_use` blocks `map_messages`
/// writes), by name in order of first use, each with an any-object schema.
fn history_tools(req: &LlmRequest) -> Vec<WireTool<'_>> {
    let mut names: Vec<&str> = Vec::new();
    let calls = req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::User | Role::Assistant))
        .flat_map(|m| &m.tool_calls);
    for call in calls {
        let name = call.name.as_str();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| WireTool {
            name: Cow::Borrowed(name),
            description: None,
            input_schema: Cow::Owned(serde_json::json!({"type": "object"})),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use llm_core::{Tool, ToolCall};
    use serde_json::json;

    fn call(id: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "get_weather".into(),
            arguments: args.into(),
        }
    }

    /// `tools` and `tool_choice` only.
    fn tc(req: &LlmRequest) -> (Vec<WireTool<'_>>, Option<WireToolChoice<'_>>) {
        let m = map_tools(req).unwrap();
        (m.tools, m.choice)
    }

    fn wire(req: &LlmRequest) -> serde_json::Value {
        let (_, messages) = map_messages(req).unwrap();
        serde_json::to_value(messages).unwrap()
    }

    #[test]
    fn system_messages_lift_and_same_roles_merge() {
        let req = LlmRequest::from_messages(vec![
            Message::system("s2"),
            Message::user("a"),
            Message::user("b"),
            Message::assistant("c"),
            Message::system("s3"),
            Message::user("d"),
        ])
        .system("s1");
        let (system, messages) = map_messages(&req).unwrap();
        assert_eq!(system.as_deref(), Some("s1\n\ns2\n\ns3"));
        assert_eq!(
            serde_json::to_string(&messages).unwrap(),
            r#"[{"role":"user","content":"a\n\nb"},{"role":"assistant","content":"c"},{"role":"user","content":"d"}]"#
        );
    }

    #[test]
    fn no_system_at_all_is_omitted() {
        let req = LlmRequest::new("hi").system("");
        let (system, messages) = map_messages(&req).unwrap();
        assert_eq!(system, None);
        assert_eq!(messages.len(), 1);
    }

    #[test]
    fn tool_results_and_following_text_share_one_user_turn_results_first() {
        let req = LlmRequest::from_messages(vec![
            Message::user("Weather in Paris and Rome?"),
            Message::assistant_tool_calls(
                "Checking.",
                vec![call("t1", r#"{"city":"Paris"}"#), call("t2", "")],
            ),
            Message::user("(and be brief)"),
            Message::tool_result("t1", "18°C"),
            Message::tool_result("t2", ""),
            Message::user(""),
            Message::user("Thanks."),
        ]);
        assert_eq!(
            wire(&req),
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "18°C"},
                    {"type": "tool_result", "tool_use_id": "t2"},
                    {"type": "text", "text": "(and be brief)\n\nThanks."}
                ]}
            ])
        );
    }

    #[test]
    fn bad_arguments_or_missing_result_id_name_the_message() {
        for args in ["[1,2]", "\"x\"", "{\"city\":", "null"] {
            let req = LlmRequest::from_messages(vec![
                Message::user("q"),
                Message::assistant_tool_calls("", vec![call("toolu_9", args)]),
            ]);
            let e = map_messages(&req).err().unwrap();
            assert!(
                e.starts_with("message 1: the arguments of tool call `toolu_9` (`get_weather`)"),
                "{e}"
            );
        }
        let mut result = Message::tool_result("x", "r");
        result.tool_call_id = None;
        let req = LlmRequest::from_messages(vec![Message::user("q"), result]);
        let e = map_messages(&req).err().unwrap();
        assert!(e.starts_with("message 1: a tool result needs"), "{e}");
    }

    #[test]
    fn tool_choice_maps_and_needs_tools() {
        let tool = Tool::function("f", "", json!({"type": "object"}));
        let with = |c: ToolChoice| {
            let req = LlmRequest::new("x").tool(tool.clone()).tool_choice(c);
            serde_json::to_value(tc(&req).1).unwrap()
        };
        assert_eq!(with(ToolChoice::Auto), json!({"type": "auto"}));
        assert_eq!(with(ToolChoice::Required), json!({"type": "any"}));
        assert_eq!(
            with(ToolChoice::Function("f".into())),
            json!({"type": "tool", "name": "f"})
        );
        assert_eq!(with(ToolChoice::None), json!({"type": "none"}));
        let none = LlmRequest::new("x").tool_choice(ToolChoice::None);
        assert_eq!(tc(&none), (vec![], None));
        let req = LlmRequest::new("x").tool(tool);
        let (tools, choice) = tc(&req);
        assert_eq!(
            serde_json::to_value(tools).unwrap(),
            json!([{"name": "f", "input_schema": {"type": "object"}}])
        );
        assert_eq!(choice, None);
    }

    #[test]
    fn forbidding_parallel_calls_flags_the_choice() {
        let tool = Tool::function("f", "", json!({"type": "object"}));
        let choice = |req: LlmRequest| serde_json::to_value(tc(&req).1).unwrap();
        let base = LlmRequest::new("x").tool(tool);
        assert_eq!(
            choice(base.clone().parallel_tool_calls(false)),
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            choice(
                base.clone()
                    .tool_choice(ToolChoice::Function("f".into()))
                    .parallel_tool_calls(false)
            ),
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            choice(
                base.clone()
                    .tool_choice(ToolChoice::Required)
                    .parallel_tool_calls(false)
            ),
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        // Allowed is the API's default: nothing to send.
        assert_eq!(choice(base.clone().parallel_tool_calls(true)), json!(null));
        assert_eq!(
            choice(
                base.tool_choice(ToolChoice::None)
                    .parallel_tool_calls(false)
            ),
            json!({"type": "none"})
        );
    }

    #[test]
    fn undeclared_tools_of_the_history_are_declared_and_not_callable() {
        let mut other = call("t3", "{}");
        other.name = "now".into();
        let mut system = Message::system("s");
        system.tool_calls.push(ToolCall {
            id: "t9".into(),
            name: "never_written".into(),
            arguments: "{}".into(),
        });
        let req = LlmRequest::from_messages(vec![
            system,
            Message::user("q"),
            Message::assistant_tool_calls("", vec![call("t1", "{}"), other]),
            Message::tool_result("t1", "a"),
            Message::tool_result("t3", "b"),
            Message::assistant_tool_calls("", vec![call("t4", "{}")]),
            Message::tool_result("t4", "c"),
        ])
        .tool_choice(ToolChoice::Required);
        let (tools, choice) = tc(&req);
        assert_eq!(
            serde_json::to_value(tools).unwrap(),
            json!([
                {"name": "get_weather", "input_schema": {"type": "object"}},
                {"name": "now", "input_schema": {"type": "object"}}
            ])
        );
        assert_eq!(choice, Some(WireToolChoice::None));

        // Results without their calls: nothing to declare.
        let req = LlmRequest::from_messages(vec![Message::tool_result("t1", "a")]);
        assert_eq!(tc(&req), (vec![], None));
    }

    #[test]
    fn blank_text_is_never_sent_on_either_path() {
        // Text-only turns: a blank message is left out; merging skips it.
        let req = LlmRequest::from_messages(vec![
            Message::user("a"),
            Message::user(""),
            Message::assistant("  "),
            Message::user(" \n"),
            Message::user("b"),
        ]);
        assert_eq!(wire(&req), json!([{"role": "user", "content": "a\n\nb"}]));
        let req = LlmRequest::from_messages(vec![Message::user("a"), Message::user("")]);
        assert_eq!(wire(&req), json!([{"role": "user", "content": "a"}]));
        // A blank message between two assistant turns does not split them.
        let req = LlmRequest::from_messages(vec![
            Message::user("q"),
            Message::assistant("x"),
            Message::user(""),
            Message::assistant("y"),
        ]);
        assert_eq!(
            wire(&req),
            json!([
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "x\n\ny"}
            ])
        );
        // Nothing left: no turn at all (the provider refuses the request).
        let req = LlmRequest::from_messages(vec![Message::user("")]);
        assert_eq!(wire(&req), json!([]));
        // Block turns: blank text is left out the same way.
        let req = LlmRequest::from_messages(vec![
            Message::user("q"),
            Message::assistant_tool_calls(" ", vec![call("t1", "{}")]),
            Message::tool_result("t1", "r"),
            Message::user("  "),
        ]);
        assert_eq!(
            wire(&req),
            json!([
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "r"}
                ]}
            ])
        );
    }

    #[test]
    fn images_follow_the_text_as_blocks() {
        let req = LlmRequest::from_messages(vec![
            Message::user("What is this?")
                .image(ImageInput::url("data:image/png;base64,iVBORw0KGgo="))
                .image(ImageInput::url("https://example.com/cat.jpg")),
            Message::user("").image(ImageInput::url("http://example.com/dog.gif")),
        ]);
        assert_eq!(
            wire(&req),
            json!([{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "image", "source": {"type": "url", "url": "http://example.com/dog.gif"}}
            ]}])
        );
        let bad = LlmRequest::from_messages(vec![
            Message::user("x").image(ImageInput::url("file:///etc/passwd"))
        ]);
        let e = map_messages(&bad).err().unwrap();
        assert!(e.starts_with("message 0: image 0"), "{e}");
        let mut assistant = Message::assistant("x");
        assistant
            .images
            .push(ImageInput::url("https://example.com/a.png"));
        let bad = LlmRequest::from_messages(vec![Message::user("q"), assistant]);
        let e = map_messages(&bad).err().unwrap();
        assert!(e.contains("only accepted on user messages"), "{e}");
    }

    #[test]
    fn response_format_becomes_a_tool() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        let format = ResponseFormat::JsonSchema {
            name: "city".into(),
            schema: schema.clone(),
            strict: Some(true),
            description: Some("A city".into()),
        };
        let map = |req: &LlmRequest| {
            let m = map_tools(req).unwrap();
            (
                serde_json::to_value(&m.tools).unwrap(),
                serde_json::to_value(&m.choice).unwrap(),
                m.format.map(|f| f.into_owned()),
            )
        };
        let city = json!({"name": "city", "description": "A city", "input_schema": schema});
        // Alone: forced.
        let req = LlmRequest::new("x").response_format(format.clone());
        assert_eq!(
            map(&req),
            (
                json!([city]),
                json!({"type": "tool", "name": "city"}),
                Some("city".into())
            )
        );
        // json_object.
        let req = LlmRequest::new("x").response_format(ResponseFormat::JsonObject);
        assert_eq!(
            map(&req),
            (
                json!([{"name": "json_object", "input_schema": {"type": "object"}}]),
                json!({"type": "tool", "name": "json_object"}),
                Some("json_object".into())
            )
        );
        // Text: nothing.
        let req = LlmRequest::new("x").response_format(ResponseFormat::Text);
        assert_eq!(map(&req), (json!([]), json!(null), None));
        // With the caller's tools: a tool must be called, the format or one of them.
        let f = Tool::function("f", "", json!({"type": "object"}));
        let f_wire = json!({"name": "f", "input_schema": {"type": "object"}});
        let req = LlmRequest::new("x")
            .tool(f.clone())
            .response_format(format.clone())
            .parallel_tool_calls(false);
        assert_eq!(
            map(&req),
            (
                json!([f_wire, city]),
                json!({"type": "any", "disable_parallel_tool_use": true}),
                Some("city".into())
            )
        );
        // `none` forbids the caller's tools: the format is forced.
        let req = LlmRequest::new("x")
            .tool(f.clone())
            .tool_choice(ToolChoice::None)
            .response_format(format.clone());
        assert_eq!(
            map(&req),
            (
                json!([f_wire, city]),
                json!({"type": "tool", "name": "city"}),
                Some("city".into())
            )
        );
        // A forced call of the caller's tool: no format tool this turn.
        let req = LlmRequest::new("x")
            .tool(f.clone())
            .tool_choice(ToolChoice::Required)
            .response_format(format.clone());
        assert_eq!(map(&req), (json!([f_wire]), json!({"type": "any"}), None));
        // A history without declared tools: declared, format forced.
        let req = LlmRequest::from_messages(vec![
            Message::user("q"),
            Message::assistant_tool_calls("", vec![call("t1", "{}")]),
            Message::tool_result("t1", "r"),
        ])
        .response_format(format.clone());
        assert_eq!(
            map(&req),
            (
                json!([{"name": "get_weather", "input_schema": {"type": "object"}}, city]),
                json!({"type": "tool", "name": "city"}),
                Some("city".into())
            )
        );
        // Same name as a tool: refused.
        let req = LlmRequest::new("x")
            .tool(Tool::function("city", "", json!({"type": "object"})))
            .response_format(format);
        let e = map_tools(&req).err().unwrap();
        assert!(e.contains("`city`"), "{e}");
    }
}
