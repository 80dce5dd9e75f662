//! Tool calling on `POST /api/chat` (protocols reference, sections 3.2 and 3.4).
//!
//! - Tools go out as `{"type":"function","function":{"name","description","parameters"}}`.
//!   Ollama has no `tool_choice`: [`ToolChoice::None`] sends no tools,
//!   [`ToolChoice::Auto`] (and no choice) sends them all,
//!   [`ToolChoice::Function`] sends only the named tool and
//!   [`ToolChoice::Required`] sends them all. Neither of the last two can
//!   force the model to call a tool; the answer may still be plain text.
//! - Ollama's `arguments` are a JSON object, ours are JSON text: an assistant
//!   tool call sent upstream has its text parsed (empty text is `{}`; anything
//!   but an object is an error naming the call), and a received object is
//!   written out as compact JSON (keys in sorted order).
//! - Calls the server sends without an `id` get `call_<n>`, `n` being the
//!   call's position in the response (0, 1, …), in `generate` and `stream` alike.
//! - A tool result carries `tool_call_id` and, when an earlier assistant
//!   message made that call, its `tool_name` (the nearest such message wins,
//!   so positional ids repeated across turns still resolve correctly).

use llm_core::{LlmRequest, Message, ProviderError, Role, ToolCall, ToolChoice};
use serde_json::Value;

use crate::wire::{FunctionCallOut, FunctionDef, ToolCallIn, ToolCallOut, ToolDef};

/// The id given to the `index`-th call of a response that came without one.
pub(crate) fn synthetic_id(index: u32) -> String {
    format!("call_{index}")
}

/// The `tools` of a request, after its `tool_choice`.
pub(crate) fn tool_defs<'a>(provider: &str, req: &'a LlmRequest) -> Vec<ToolDef<'a>> {
    if req.tools.is_empty() {
        return Vec::new();
    }
    let only = match &req.tool_choice {
        Some(ToolChoice::None) => return Vec::new(),
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Required) => {
            tracing::debug!(
                provider,
                "Ollama has no tool_choice: `required` sends every tool without forcing a call"
            );
            None
        }
        Some(ToolChoice::Function(name)) => {
            tracing::debug!(
                provider,
                tool = %name,
                "Ollama has no tool_choice: only the chosen tool is offered, a call is not forced"
            );
            Some(name.as_str())
        }
    };
    req.tools
        .iter()
        .filter(|t| only.is_none_or(|name| t.name == name))
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
    let text = call.arguments.trim();
    if text.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let problem = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => return Ok(v),
        Ok(other) => format!("are {}", json_type(&other)),
        Err(e) => format!("are not valid JSON ({e})"),
    };
    Err(ProviderError::unsupported(
        provider,
        format!(
            "message {position}: tool call `{}` (`{}`): Ollama needs the arguments as a \
             JSON object, but they {problem}: {}",
            call.id,
            call.name,
            abbreviate(text, 80)
        ),
    ))
}

/// The name of the call `id` in the nearest assistant message before `before`.
pub(crate) fn call_name<'a>(before: &'a [Message], id: &str) -> Option<&'a str> {
    before
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .find_map(|m| m.tool_calls.iter().find(|c| c.id == id))
        .map(|c| c.name.as_str())
}

/// A received call, the `index`-th of its response.
///
/// A missing or empty `id` becomes [`synthetic_id`]; missing or `null`
/// arguments are `{}`; string arguments (JSON text, as OpenAI-style proxies
/// send) are kept as they are. A call without a function name, or with
/// arguments that are neither an object nor a string, is a decode error.
pub(crate) fn call_in(
    provider: &str,
    index: u32,
    call: ToolCallIn,
) -> Result<ToolCall, ProviderError> {
    let id = call
        .id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| synthetic_id(index));
    let function = call.function.unwrap_or_default();
    let Some(name) = function.name.filter(|n| !n.is_empty()) else {
        return Err(ProviderError::decode(
            provider,
            format!("tool call {index} (`{id}`) has no `function.name`"),
        ));
    };
    let arguments = match function.arguments {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => "{}".to_string(),
        Some(Value::String(s)) => s,
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(other) => {
            return Err(ProviderError::decode(
                provider,
                format!(
                    "tool call {index} (`{id}`, `{name}`): `function.arguments` must be a JSON \
                     object, got {}: {}",
                    json_type(&other),
                    abbreviate(&other.to_string(), 80)
                ),
            ))
        }
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn abbreviate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
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
            ("[1]", "they are an array: [1]"),
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
        assert_eq!(got, call("call_2", "f", "{}"));
        let got = call_in("p", 0, c(Some(""), Some("f"), Some(json!("{\"a\":1}")))).unwrap();
        assert_eq!(got, call("call_0", "f", "{\"a\":1}"));
        let got = call_in(
            "p",
            0,
            c(Some("x"), Some("f"), Some(json!({"b":1,"a":"<"}))),
        )
        .unwrap();
        assert_eq!(got, call("x", "f", r#"{"a":"<","b":1}"#));
        let e = call_in("p", 1, c(None, None, None)).unwrap_err();
        assert!(e.message.contains("tool call 1 (`call_1`)"), "{e}");
        let e = call_in("p", 0, c(Some("x"), Some("f"), Some(json!(5)))).unwrap_err();
        assert!(
            e.message.contains("must be a JSON object, got a number"),
            "{e}"
        );
        let e = call_in("p", 0, ToolCallIn::default()).unwrap_err();
        assert!(e.message.contains("no `function.name`"), "{e}");
    }

    #[test]
    fn the_nearest_call_names_a_result() {
        let msgs = vec![
            Message::assistant_tool_calls("", vec![call("call_0", "first", "{}")]),
            Message::tool_result("call_0", "r"),
            Message::assistant_tool_calls("", vec![call("call_0", "second", "{}")]),
        ];
        assert_eq!(call_name(&msgs, "call_0"), Some("second"));
        assert_eq!(call_name(&msgs[..2], "call_0"), Some("first"));
        assert_eq!(call_name(&msgs, "nope"), None);
    }

    #[test]
    fn abbreviation_is_utf8_safe() {
        assert_eq!(abbreviate("天气天气", 2), "天气…");
        assert_eq!(abbreviate("ab", 2), "ab");
    }
}
