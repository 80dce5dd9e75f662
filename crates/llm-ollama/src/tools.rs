//! Tool calling on `POST /api/chat` (protocols reference, sections 3.2 and 3.4).
//!
//! - Tools go out as `{"type":"function","function":{"name","description","parameters"}}`.
//!   Ollama has no `tool_choice`: [`ToolChoice::None`] sends no tools (which
//!   is what it means), [`ToolChoice::Auto`] (and no choice) sends them all.
//!   A call cannot be forced ([`ToolChoice::Required`], [`ToolChoice::Function`])
//!   and `parallel_tool_calls: false` cannot be honoured: the provider does not
//!   claim those capabilities, so such requests are never sent here.
//! - Ollama's `arguments` are a JSON object, ours are JSON text: an assistant
//!   tool call sent upstream has its text parsed (empty text is `{}`; anything
//!   but an object is an error naming the call), and a received object is
//!   written out as compact JSON (keys in sorted order).
//! - Calls the server sends without an `id` get a random one in OpenAI's
//!   format, `call_` and 24 ASCII alphanumerics, made once per call (so
//!   `generate` and `stream` alike), unique across turns and providers.
//! - A tool result carries `tool_call_id` and, when an earlier assistant
//!   message made that call, its `tool_name` (the nearest such message wins
//!   should an id repeat). The id → name map is built in one pass over the
//!   request ([`CallNames`]).

use std::collections::HashMap;

use llm_core::http::truncate_text;
use llm_core::provider_kit::{arguments_object, arguments_text, json_kind};
use llm_core::{LlmRequest, Message, ProviderError, Role, ToolCall, ToolChoice};
use serde_json::Value;

use crate::wire::{FunctionCallOut, FunctionDef, ToolCallIn, ToolCallOut, ToolDef};

/// Number of random alphanumerics after `call_` in a synthesized id.
const SYNTHETIC_ID_LEN: usize = 24;

/// A fresh id for a call that came without one: `call_` and 24 random ASCII
/// alphanumerics, like OpenAI's ids.
pub(crate) fn synthetic_id() -> String {
    let mut id = String::with_capacity(5 + SYNTHETIC_ID_LEN);
    id.push_str("call_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(SYNTHETIC_ID_LEN));
    id
}

/// The `tools` of a request: none for `tool_choice: none`, else all of them.
pub(crate) fn tool_defs(req: &LlmRequest) -> Vec<ToolDef<'_>> {
    if req.tool_choice == Some(ToolChoice::None) {
        return Vec::new();
    }
    req.tools
        .iter()
        .map(|t| ToolDef {
            kind: "function",
            function: FunctionDef {
                name: &t.name,
                description: t.description.as_deref(),
                parameters: &t.parameters,
            },
        })
        .collect()
}

/// The `tool_calls` of message `position` (its index in the request's
/// messages) for the wire.
pub(crate) fn calls_out<'a>(
    provider: &str,
    position: usize,
    message: &'a Message,
) -> Result<Vec<ToolCallOut<'a>>, ProviderError> {
    message
        .tool_calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            Ok(ToolCallOut {
                id: &call.id,
                function: FunctionCallOut {
                    index,
                    name: &call.name,
                    arguments: arguments_out(provider, position, call)?,
                },
            })
        })
        .collect()
}

/// A call's JSON text as the JSON object Ollama expects.
fn arguments_out(provider: &str, position: usize, call: &ToolCall) -> Result<Value, ProviderError> {
    arguments_object(&call.arguments).map_err(|problem| {
        ProviderError::unsupported(
            provider,
            format!(
                "message {position}: tool call `{}` (`{}`): Ollama needs the arguments as a \
                 JSON object, but they are {problem}: {}",
                call.id,
                call.name,
                truncate_text(call.arguments.trim(), 80)
            ),
        )
    })
}

/// Call id → tool name over the assistant messages seen so far.
///
/// Walk the conversation in order, asking [`CallNames::get`] for a tool
/// result before [`CallNames::record`]ing each message: an id then names the
/// call in the nearest earlier assistant message that made it (within one
/// message, its first call with that id). Linear in the conversation length.
#[derive(Debug, Default)]
pub(crate) struct CallNames<'a>(HashMap<&'a str, &'a str>);

impl<'a> CallNames<'a> {
    /// Takes note of the tool calls of `message` if it is an assistant message.
    pub fn record(&mut self, message: &'a Message) {
        if message.role != Role::Assistant {
            return;
        }
        // Reversed, so that the first call with a repeated id wins.
        for call in message.tool_calls.iter().rev() {
            self.0.insert(&call.id, &call.name);
        }
    }

    /// The tool name of call `id`, if a recorded message made it.
    pub fn get(&self, id: &str) -> Option<&'a str> {
        self.0.get(id).copied()
    }
}

/// A received call, the `index`-th of its response.
///
/// A missing or empty `id` becomes a fresh [`synthetic_id`]; missing or `null`
/// arguments are `{}`; string arguments (JSON text, as OpenAI-style proxies
/// send) are kept as they are. A call without a function name, or with
/// arguments that are neither an object nor a string, is a decode error.
pub(crate) fn call_in(
    provider: &str,
    index: u32,
    call: ToolCallIn,
) -> Result<ToolCall, ProviderError> {
    let given = call.id.filter(|id| !id.is_empty());
    // Errors name the server's id; a synthesized one would mean nothing.
    let which = |name: Option<&str>| match (given.as_deref(), name) {
        (Some(id), Some(name)) => format!("tool call {index} (`{id}`, `{name}`)"),
        (Some(one), None) | (None, Some(one)) => format!("tool call {index} (`{one}`)"),
        (None, None) => format!("tool call {index}"),
    };
    let function = call.function.unwrap_or_default();
    let Some(name) = function.name.filter(|n| !n.is_empty()) else {
        return Err(ProviderError::decode(
            provider,
            format!("{} has no `function.name`", which(None)),
        ));
    };
    let arguments = match function.arguments {
        Some(Value::String(s)) if s.trim().is_empty() => "{}".to_string(),
        Some(Value::String(s)) => s,
        other => arguments_text(other.as_ref()).map_err(|_| {
            let other = other.unwrap_or_default();
            ProviderError::decode(
                provider,
                format!(
                    "{}: `function.arguments` must be a JSON object, got {}: {}",
                    which(Some(&name)),
                    json_kind(&other),
                    truncate_text(&other.to_string(), 80)
                ),
            )
        })?,
    };
    let id = given.unwrap_or_else(synthetic_id);
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FunctionCallIn;
    use serde_json::json;

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn arguments_out_needs_an_object() {
        let ok = arguments_out("p", 1, &call("c", "f", r#"{"city":"Tokyo"}"#)).unwrap();
        assert_eq!(ok, json!({"city": "Tokyo"}));
        assert_eq!(
            arguments_out("p", 1, &call("c", "f", " ")).unwrap(),
            json!({})
        );
        for (text, says) in [
            ("[1]", "they are an array, not a JSON object: [1]"),
            ("{\"a\":", "not valid JSON"),
        ] {
            let e = arguments_out("p", 3, &call("call_9", "get_weather", text)).unwrap_err();
            assert!(e.message.contains(says), "{e}");
            assert!(e.message.contains("`call_9` (`get_weather`)"), "{e}");
            assert!(e.message.starts_with("message 3:"), "{e}");
        }
    }

    #[test]
    fn received_calls_are_lenient_where_documented() {
        let c = |id: Option<&str>, name: Option<&str>, args: Option<Value>| ToolCallIn {
            id: id.map(Into::into),
            function: Some(FunctionCallIn {
                name: name.map(Into::into),
                arguments: args,
            }),
        };
        let got = call_in("p", 2, c(None, Some("f"), None)).unwrap();
        assert_synthetic(&got.id);
        assert_eq!(got, call(&got.id, "f", "{}"));
        let got = call_in("p", 0, c(Some(""), Some("f"), Some(json!("{\"a\":1}")))).unwrap();
        assert_synthetic(&got.id);
        assert_eq!(got, call(&got.id, "f", "{\"a\":1}"));
        let got = call_in(
            "p",
            0,
            c(Some("x"), Some("f"), Some(json!({"b":1,"a":"<"}))),
        )
        .unwrap();
        assert_eq!(got, call("x", "f", r#"{"a":"<","b":1}"#));
        let e = call_in("p", 1, c(None, None, None)).unwrap_err();
        assert!(e.message.contains("tool call 1 has no"), "{e}");
        let e = call_in("p", 1, c(None, Some("f"), Some(json!([])))).unwrap_err();
        assert!(e.message.contains("tool call 1 (`f`): "), "{e}");
        let e = call_in("p", 0, c(Some("x"), Some("f"), Some(json!(5)))).unwrap_err();
        assert!(
            e.message.contains("must be a JSON object, got a number"),
            "{e}"
        );
        let e = call_in("p", 0, ToolCallIn::default()).unwrap_err();
        assert!(e.message.contains("no `function.name`"), "{e}");
    }

    fn assert_synthetic(id: &str) {
        let rest = id.strip_prefix("call_").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(rest.len(), 24, "{id}");
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }

    #[test]
    fn synthetic_ids_are_random_and_openai_shaped() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| synthetic_id()).collect();
        assert_eq!(ids.len(), 1000);
        ids.iter().for_each(|id| assert_synthetic(id));
    }

    /// The name of each tool result as `chat_messages` resolves it.
    fn names(msgs: &[Message]) -> Vec<Option<&str>> {
        let mut names = CallNames::default();
        let mut out = Vec::new();
        for m in msgs {
            if let Some(id) = m.tool_call_id.as_deref() {
                out.push(names.get(id));
            }
            names.record(m);
        }
        out
    }

    #[test]
    fn the_nearest_call_names_a_result() {
        let msgs = vec![
            Message::assistant_tool_calls(
                "",
                vec![call("c0", "first", "{}"), call("c0", "shadowed", "{}")],
            ),
            Message::tool_result("c0", "r"),
            Message::assistant_tool_calls("", vec![call("c0", "second", "{}")]),
            Message::tool_result("c0", "r"),
            Message::tool_result("nope", "r"),
            // A later call does not name an earlier result.
            Message::tool_result("c1", "r"),
            Message::assistant_tool_calls("", vec![call("c1", "late", "{}")]),
        ];
        assert_eq!(names(&msgs), [Some("first"), Some("second"), None, None]);
    }
}
