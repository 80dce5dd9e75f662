//! A Responses request body → an [`LlmRequest`]: every field mapped, or
//! refused with a 400 naming it.

use llm_router::{
    LlmClient, LlmRequest, Message, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
};
use serde_json::{json, Map, Value};

use super::wire::{Echo, ACCEPTED_FIELDS, MAPPED_FIELDS, REFUSED_FIELDS};
use crate::error::ApiError;
use crate::protocols::openai_chat::convert::{check_tool_support, image, resolve_model};
use crate::protocols::openai_chat::wire::ImageUrl;

/// Built-in (hosted) tool types of the Responses API, refused by name.
const BUILT_IN_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "code_interpreter",
    "computer_use_preview",
    "computer_use",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
];

/// A parsed Responses request.
#[derive(Debug)]
pub struct Parsed {
    /// What the client is asked.
    pub request: LlmRequest,
    /// Whether to answer with server-sent events.
    pub stream: bool,
    /// Parameters the response object repeats back.
    pub echo: Echo,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param), message)
}

fn unsupported(param: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid(Some(param), message);
    e.code = Some("unsupported_parameter");
    e
}

fn missing(param: &str) -> ApiError {
    invalid(param, format!("Missing required parameter: '{param}'."))
}

fn wrong_type(param: &str, expected: &str) -> ApiError {
    let mut e = invalid(
        param,
        format!("Invalid type for '{param}': expected {expected}."),
    );
    e.code = Some("invalid_type");
    e
}

fn string_at<'a>(v: &'a Value, param: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| wrong_type(param, "a string"))
}

/// A field of `object`, `None` when absent or null.
fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// Parses and validates a request body.
pub fn parse(body: &[u8], client: &LlmClient) -> Result<Parsed, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!(
                "We could not parse the JSON body of your request ({e}). \
                 The body must be a JSON object."
            ),
        )
    })?;
    let Some(o) = value.as_object() else {
        return Err(ApiError::invalid(
            None,
            "The request body must be a JSON object.",
        ));
    };
    check_fields(o)?;
    convert(o, client)
}

/// Refuses unknown fields and the stateful or hosted features.
fn check_fields(o: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in o {
        let key = key.as_str();
        if MAPPED_FIELDS.contains(&key) || ACCEPTED_FIELDS.contains(&key) {
            continue;
        }
        if REFUSED_FIELDS.contains(&key) {
            // `false` and `auto`/`default` tiers ask for nothing special.
            let harmless = value.is_null()
                || value == &json!(false)
                || (key == "service_tier" && matches!(value.as_str(), Some("auto" | "default")));
            if harmless {
                continue;
            }
            return Err(unsupported(
                key,
                format!(
                    "Invalid '{key}': not supported by this gateway (it is stateless and serves \
                     text and function tools only); omit '{key}'."
                ),
            ));
        }
        let mut e = invalid(
            key,
            format!("Unrecognized request argument supplied: {key}"),
        );
        e.code = Some("unknown_parameter");
        return Err(e);
    }
    Ok(())
}

fn convert(o: &Map<String, Value>, client: &LlmClient) -> Result<Parsed, ApiError> {
    let model = match field(o, "model") {
        Some(m) => string_at(m, "model")?.to_string(),
        None => return Err(invalid("model", "You must provide a model parameter.")),
    };
    if field(o, "previous_response_id").is_some() {
        return Err(unsupported(
            "previous_response_id",
            "Invalid 'previous_response_id': this gateway is stateless and stores no responses; \
             send the whole conversation in 'input' (earlier output items included) instead.",
        ));
    }
    match field(o, "store") {
        None | Some(Value::Bool(_)) => {}
        Some(_) => return Err(wrong_type("store", "a boolean")),
    }
    if let Some(r) = field(o, "reasoning") {
        let r = r
            .as_object()
            .ok_or_else(|| wrong_type("reasoning", "an object"))?;
        if let Some((k, _)) = r.iter().find(|(_, v)| !v.is_null()) {
            return Err(unsupported(
                &format!("reasoning.{k}"),
                format!(
                    "Invalid 'reasoning.{k}': reasoning options are not supported by this gateway \
                     (its providers are not all reasoning models); omit 'reasoning'."
                ),
            ));
        }
    }
    if let Some(t) = field(o, "truncation") {
        if string_at(t, "truncation")? != "disabled" {
            return Err(unsupported(
                "truncation",
                "Invalid 'truncation': this gateway never truncates the input; only 'disabled' \
                 is supported.",
            ));
        }
    }
    if let Some(inc) = field(o, "include") {
        let list = inc
            .as_array()
            .ok_or_else(|| wrong_type("include", "an array of strings"))?;
        if let Some(first) = list.first() {
            return Err(unsupported(
                "include",
                format!(
                    "Invalid 'include': {first} is not supported by this gateway; send an empty \
                     list or omit 'include'."
                ),
            ));
        }
    }

    let mut system: Vec<String> = Vec::new();
    let instructions = match field(o, "instructions") {
        Some(i) => {
            let text = string_at(i, "instructions")?;
            if !text.is_empty() {
                system.push(text.to_string());
            }
            Value::String(text.to_string())
        }
        None => Value::Null,
    };
    let input = field(o, "input").ok_or_else(|| missing("input"))?;
    let messages = input_messages(input, &mut system)?;
    if messages.is_empty() {
        return Err(invalid(
            "input",
            "Invalid 'input': at least one user or assistant message is required.",
        ));
    }

    let mut req = LlmRequest::plain(messages);
    if !system.is_empty() {
        req.system_prompt = Some(system.join("\n\n"));
    }
    let mut echo = Echo {
        instructions,
        max_output_tokens: Value::Null,
        metadata: json!({}),
        parallel_tool_calls: true,
        temperature: Value::Null,
        top_p: Value::Null,
        tool_choice: json!("auto"),
        tools: json!([]),
        text: json!({"format": {"type": "text"}}),
        user: Value::Null,
    };
    if let Some(m) = field(o, "max_output_tokens") {
        let n = m
            .as_u64()
            .ok_or_else(|| wrong_type("max_output_tokens", "a positive integer"))?;
        if n == 0 {
            return Err(invalid(
                "max_output_tokens",
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, \
                 but got 0 instead.",
            ));
        }
        req.max_tokens = Some(u32::try_from(n).unwrap_or(u32::MAX));
        echo.max_output_tokens = m.clone();
    }
    if let Some(t) = field(o, "temperature") {
        let t = number(t, "temperature", 0.0, 2.0)?;
        req.temperature = Some(t);
        echo.temperature = json!(t);
    }
    if let Some(p) = field(o, "top_p") {
        let p = number(p, "top_p", 0.0, 1.0)?;
        req.top_p = Some(p);
        echo.top_p = json!(p);
    }
    if let Some(m) = field(o, "metadata") {
        if !m.is_object() {
            return Err(wrong_type("metadata", "an object"));
        }
        echo.metadata = m.clone();
    }
    if let Some(u) = field(o, "user") {
        req.user = Some(string_at(u, "user")?.to_string());
        echo.user = u.clone();
    }
    if let Some(p) = field(o, "parallel_tool_calls") {
        let p = p
            .as_bool()
            .ok_or_else(|| wrong_type("parallel_tool_calls", "a boolean"))?;
        req.parallel_tool_calls = Some(p);
        echo.parallel_tool_calls = p;
    }
    if let Some(t) = field(o, "tools") {
        req.tools = tools(t)?;
        echo.tools = t.clone();
    }
    if let Some(c) = field(o, "tool_choice") {
        req.tool_choice = Some(tool_choice(c)?);
        echo.tool_choice = c.clone();
    }
    if let Some(t) = field(o, "text") {
        req.response_format = text_format(t)?;
        echo.text = t.clone();
    }
    let stream = match field(o, "stream") {
        Some(s) => s
            .as_bool()
            .ok_or_else(|| wrong_type("stream", "a boolean"))?,
        None => false,
    };
    if let Some(so) = field(o, "stream_options") {
        if !stream {
            return Err(invalid(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ));
        }
        if !so.is_object() {
            return Err(wrong_type("stream_options", "an object"));
        }
    }

    resolve_model(&model, client, &mut req)?;
    llm_router::validate(&req).map_err(|v| ApiError::invalid(Some(v.field), v.to_string()))?;
    check_tool_support(&req, client)?;
    Ok(Parsed {
        request: req,
        stream,
        echo,
    })
}

/// A number in `min..=max`.
fn number(v: &Value, param: &str, min: f32, max: f32) -> Result<f32, ApiError> {
    let n = v.as_f64().ok_or_else(|| wrong_type(param, "a number"))?;
    #[allow(clippy::cast_possible_truncation)]
    let n = n as f32;
    if !(min..=max).contains(&n) {
        return Err(invalid(
            param,
            format!(
                "Invalid '{param}': expected a value between {min} and {max}, but got {n} instead."
            ),
        ));
    }
    Ok(n)
}

/// `input`: a string (one user message) or a list of items.
fn input_messages(input: &Value, system: &mut Vec<String>) -> Result<Vec<Message>, ApiError> {
    let items = match input {
        Value::String(s) => return Ok(vec![Message::user(s.clone())]),
        Value::Array(items) => items,
        _ => return Err(wrong_type("input", "a string or an array of input items")),
    };
    let mut out: Vec<Message> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let o = item
            .as_object()
            .ok_or_else(|| wrong_type(&at, "an input item object"))?;
        let kind = match field(o, "type") {
            Some(t) => string_at(t, &format!("{at}.type"))?,
            None => "message",
        };
        match kind {
            "message" => message(&at, o, system, &mut out)?,
            "function_call" => {
                let get = |k: &str| -> Result<String, ApiError> {
                    let p = format!("{at}.{k}");
                    Ok(string_at(field(o, k).ok_or_else(|| missing(&p))?, &p)?.to_string())
                };
                let call = ToolCall {
                    id: get("call_id")?,
                    name: get("name")?,
                    arguments: get("arguments")?,
                };
                // Calls right after an assistant message (or after other calls) belong to it.
                match out.last_mut() {
                    Some(last) if last.role == Role::Assistant => last.tool_calls.push(call),
                    _ => out.push(Message::assistant_tool_calls("", vec![call])),
                }
            }
            "function_call_output" => {
                let p = format!("{at}.call_id");
                let call_id = string_at(field(o, "call_id").ok_or_else(|| missing(&p))?, &p)?;
                let p = format!("{at}.output");
                let output = match field(o, "output").ok_or_else(|| missing(&p))? {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => {
                        let mut text = String::new();
                        for (j, part) in parts.iter().enumerate() {
                            let pp = format!("{p}[{j}]");
                            if part.get("type").and_then(Value::as_str) != Some("input_text") {
                                return Err(unsupported(
                                    &format!("{pp}.type"),
                                    format!(
                                        "Invalid '{pp}.type': this gateway supports only \
                                         'input_text' parts in a function call output."
                                    ),
                                ));
                            }
                            let t = part
                                .get("text")
                                .ok_or_else(|| missing(&format!("{pp}.text")))?;
                            text.push_str(string_at(t, &format!("{pp}.text"))?);
                        }
                        text
                    }
                    _ => return Err(wrong_type(&p, "a string")),
                };
                out.push(Message::tool_result(call_id, output));
            }
            other => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    format!(
                        "Invalid value for '{at}.type': '{other}'. This stateless gateway accepts \
                         'message', 'function_call' and 'function_call_output' items."
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// A `message` item (`role` and `content`, a string or a list of parts).
fn message(
    at: &str,
    o: &Map<String, Value>,
    system: &mut Vec<String>,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    let rp = format!("{at}.role");
    let role = string_at(field(o, "role").ok_or_else(|| missing(&rp))?, &rp)?;
    let cp = format!("{at}.content");
    let content = field(o, "content").ok_or_else(|| missing(&cp))?;
    let user = role == "user";
    let mut text = String::new();
    let mut images = Vec::new();
    match content {
        Value::String(s) => text.push_str(s),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{cp}[{j}]");
                let po = part
                    .as_object()
                    .ok_or_else(|| wrong_type(&pp, "a content part object"))?;
                let tp = format!("{pp}.type");
                let kind = string_at(field(po, "type").ok_or_else(|| missing(&tp))?, &tp)?;
                match kind {
                    "input_text" | "output_text" => {
                        let p = format!("{pp}.text");
                        text.push_str(string_at(field(po, "text").ok_or_else(|| missing(&p))?, &p)?);
                    }
                    // A refusal the model gave earlier adds nothing to the prompt.
                    "refusal" => {}
                    "input_image" if user => {
                        if field(po, "file_id").is_some() {
                            return Err(unsupported(
                                &format!("{pp}.file_id"),
                                format!(
                                    "Invalid '{pp}.file_id': this gateway stores no files; send \
                                     the image as 'image_url' (an https or base64 data URL)."
                                ),
                            ));
                        }
                        let up = format!("{pp}.image_url");
                        let url = string_at(field(po, "image_url").ok_or_else(|| missing(&up))?, &up)?;
                        let detail = match field(po, "detail") {
                            Some(d) => Some(string_at(d, &format!("{pp}.detail"))?.to_string()),
                            None => None,
                        };
                        // `image` checks `{at}.url` and `{at}.detail`; name the Responses fields.
                        let img = image(
                            &pp,
                            ImageUrl {
                                url: url.to_string(),
                                detail,
                            },
                        )
                        .map_err(|mut e| {
                            if e.param.as_deref() == Some(&format!("{pp}.url")) {
                                e.param = Some(up.clone());
                                e.message = format!(
                                    "Invalid '{up}': expected an https URL or a base64 data URL \
                                     (data:image/png;base64,...)."
                                );
                            }
                            e
                        })?;
                        images.push(img);
                    }
                    "input_image" => {
                        return Err(invalid(
                            &tp,
                            format!("Invalid value: 'input_image'. Images are allowed in user messages only ('{tp}')."),
                        ))
                    }
                    other => {
                        return Err(unsupported(
                            &tp,
                            format!(
                                "Invalid value for '{tp}': '{other}'. This gateway supports \
                                 'input_text', 'input_image' and 'output_text' parts."
                            ),
                        ))
                    }
                }
            }
        }
        _ => return Err(wrong_type(&cp, "a string or an array of content parts")),
    }
    match role {
        "system" | "developer" => {
            if !text.is_empty() {
                system.push(text);
            }
        }
        "user" => {
            let mut m = Message::user(text);
            m.images = images;
            out.push(m);
        }
        "assistant" => out.push(Message::assistant_tool_calls(text, Vec::new())),
        other => {
            return Err(invalid(
                &rp,
                format!(
                    "Invalid value: '{other}'. Supported values are: 'user', 'assistant', \
                     'system' and 'developer'."
                ),
            ))
        }
    }
    Ok(())
}

/// `tools`: function tools (`{"type":"function","name","description","parameters","strict"}`).
fn tools(raw: &Value) -> Result<Vec<Tool>, ApiError> {
    let list = raw
        .as_array()
        .ok_or_else(|| wrong_type("tools", "an array of tools"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let o = t
            .as_object()
            .ok_or_else(|| wrong_type(&at, "a tool object"))?;
        let tp = format!("{at}.type");
        let kind = string_at(field(o, "type").ok_or_else(|| missing(&tp))?, &tp)?;
        if kind != "function" {
            let what = if BUILT_IN_TOOLS.contains(&kind) {
                format!(
                    "Invalid value for '{tp}': the built-in tool '{kind}' is not supported by \
                     this gateway (it runs no hosted tools); only 'function' tools are."
                )
            } else {
                format!("Invalid value for '{tp}': '{kind}'. This gateway supports only 'function' tools.")
            };
            return Err(unsupported(&tp, what));
        }
        let np = format!("{at}.name");
        let name = string_at(field(o, "name").ok_or_else(|| missing(&np))?, &np)?;
        if field(o, "strict") == Some(&Value::Bool(true)) {
            return Err(unsupported(
                &format!("{at}.strict"),
                format!(
                    "Invalid '{at}.strict': strict function calling is not supported by this \
                     gateway (no provider behind it is asked to follow a tool's schema exactly). \
                     Set 'strict' to false; for output that must match a schema, use \
                     text.format json_schema."
                ),
            ));
        }
        let description = match field(o, "description") {
            Some(d) => Some(string_at(d, &format!("{at}.description"))?.to_string()),
            None => None,
        };
        let parameters = match field(o, "parameters") {
            Some(p) if p.is_object() => p.clone(),
            Some(_) => {
                return Err(wrong_type(
                    &format!("{at}.parameters"),
                    "a JSON Schema object",
                ))
            }
            None => json!({"type": "object", "properties": {}}),
        };
        out.push(Tool {
            name: name.to_string(),
            description,
            parameters,
        });
    }
    Ok(out)
}

/// `tool_choice`: `none`, `auto`, `required` or `{"type":"function","name"}`.
fn tool_choice(raw: &Value) -> Result<ToolChoice, ApiError> {
    match raw {
        Value::String(m) => match m.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(
                "tool_choice",
                format!("Invalid value: '{other}'. Supported values are: 'none', 'auto' and 'required'."),
            )),
        },
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind != "function" {
                return Err(unsupported(
                    "tool_choice.type",
                    format!(
                        "Invalid value for 'tool_choice.type': '{kind}'. This gateway supports \
                         only the 'function' form of tool_choice."
                    ),
                ));
            }
            let name = o
                .get("name")
                .ok_or_else(|| missing("tool_choice.name"))
                .and_then(|n| string_at(n, "tool_choice.name"))?;
            Ok(ToolChoice::Function(name.to_string()))
        }
        _ => Err(wrong_type("tool_choice", "a string or an object")),
    }
}

/// `text`: `{"format": …}` → the response format (`None` for plain text).
fn text_format(raw: &Value) -> Result<Option<ResponseFormat>, ApiError> {
    let o = raw
        .as_object()
        .ok_or_else(|| wrong_type("text", "an object"))?;
    for (k, v) in o {
        match k.as_str() {
            "format" => {}
            "verbosity" if v.is_null() || v == "medium" => {}
            other => {
                return Err(unsupported(
                    &format!("text.{other}"),
                    format!("Invalid 'text.{other}': not supported by this gateway; omit it."),
                ))
            }
        }
    }
    let Some(f) = field(o, "format") else {
        return Ok(None);
    };
    let f = f
        .as_object()
        .ok_or_else(|| wrong_type("text.format", "an object"))?;
    let kind = f.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "text" => Ok(Some(ResponseFormat::Text)),
        "json_object" => Ok(Some(ResponseFormat::JsonObject)),
        "json_schema" => {
            let name = f
                .get("name")
                .ok_or_else(|| missing("text.format.name"))
                .and_then(|n| string_at(n, "text.format.name"))?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(invalid(
                    "text.format.name",
                    format!(
                        "Invalid 'text.format.name': '{name}'. Expected 1 to 64 of a-z, A-Z, 0-9, \
                         underscores and dashes."
                    ),
                ));
            }
            let schema = f
                .get("schema")
                .filter(|s| !s.is_null())
                .ok_or_else(|| missing("text.format.schema"))?;
            if !schema.is_object() {
                return Err(wrong_type("text.format.schema", "a JSON Schema object"));
            }
            let strict = match f.get("strict") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(wrong_type("text.format.strict", "a boolean")),
            };
            let description = match f.get("description") {
                None | Some(Value::Null) => None,
                Some(d) => Some(string_at(d, "text.format.description")?.to_string()),
            };
            Ok(Some(ResponseFormat::JsonSchema {
                name: name.to_string(),
                schema: schema.clone(),
                strict,
                description,
            }))
        }
        other => Err(invalid(
            "text.format.type",
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object' and \
                 'json_schema'."
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use llm_core::testing::{Reply, ScriptedProvider};

    use super::*;

    fn client() -> LlmClient {
        let p = ScriptedProvider::new("cloud")
            .kind("openai")
            .tools(true)
            .models(["gpt-4o"])
            .otherwise(Reply::text("x"));
        LlmClient::builder().provider(Arc::new(p)).build().unwrap()
    }

    fn parse_json(v: Value) -> Result<Parsed, ApiError> {
        parse(v.to_string().as_bytes(), &client())
    }

    #[test]
    fn a_string_input_is_one_user_message_and_instructions_the_system_prompt() {
        let p = parse_json(json!({"model":"gpt-4o","input":"Hi","instructions":"Be brief.",
            "max_output_tokens":20,"temperature":0.5,"user":"u1","metadata":{"k":"v"},"store":true}))
        .unwrap();
        let r = p.request;
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].role, Role::User);
        assert_eq!(r.messages[0].content, "Hi");
        assert_eq!(r.system_prompt.as_deref(), Some("Be brief."));
        assert_eq!(r.max_tokens, Some(20));
        assert_eq!(r.temperature, Some(0.5));
        assert_eq!(r.top_p, None);
        assert_eq!(r.user.as_deref(), Some("u1"));
        assert!(
            r.extra.is_empty(),
            "metadata and store are not sent upstream"
        );
        assert_eq!(p.echo.metadata, json!({"k":"v"}));
    }

    #[test]
    fn items_become_a_conversation_with_tool_calls_and_results() {
        let p = parse_json(json!({"model":"gpt-4o","input":[
            {"role":"developer","content":"Dev rule."},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather "},
                {"type":"input_text","text":"in Paris?"},
                {"type":"input_image","image_url":"https://example.com/a.png","detail":"low"}]},
            {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
            {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
            {"type":"function_call_output","call_id":"call_1","output":"18C"},
            {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]}
        ]}))
        .unwrap();
        let m = &p.request.messages;
        assert_eq!(p.request.system_prompt.as_deref(), Some("Dev rule."));
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].content, "Weather in Paris?");
        assert_eq!(m[0].images[0].url, "https://example.com/a.png");
        assert_eq!(m[0].images[0].detail.as_deref(), Some("low"));
        assert_eq!(m[1].role, Role::Assistant);
        assert_eq!(m[1].tool_calls.len(), 2);
        assert_eq!(m[1].tool_calls[1].name, "get_time");
        assert_eq!(m[2].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(m[3].content, "noon");
    }

    #[test]
    fn tools_choice_and_text_format_are_mapped() {
        let p = parse_json(json!({"model":"gpt-4o","input":"x",
            "tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":false}],
            "tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,
            "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}}}))
        .unwrap();
        let r = p.request;
        assert_eq!(r.tools[0].name, "f");
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("f".into())));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert_eq!(
            r.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "out".into(),
                schema: json!({"type":"object"}),
                strict: Some(true),
                description: None
            })
        );
        let p = parse_json(
            json!({"model":"gpt-4o","input":"x","text":{"format":{"type":"json_object"}}}),
        )
        .unwrap();
        assert_eq!(p.request.response_format, Some(ResponseFormat::JsonObject));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                json!({"model":"gpt-4o","input":"x","previous_response_id":"resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model":"gpt-4o","input":"x","tools":[{"type":"web_search"}]}),
                "tools[0].type",
            ),
            (
                json!({"model":"gpt-4o","input":"x","tools":[{"type":"file_search","vector_store_ids":[]}]}),
                "tools[0].type",
            ),
            (
                json!({"model":"gpt-4o","input":"x","reasoning":{"effort":"high"}}),
                "reasoning.effort",
            ),
            (
                json!({"model":"gpt-4o","input":"x","include":["file_search_call.results"]}),
                "include",
            ),
            (
                json!({"model":"gpt-4o","input":"x","truncation":"auto"}),
                "truncation",
            ),
            (
                json!({"model":"gpt-4o","input":"x","background":true}),
                "background",
            ),
            (json!({"model":"gpt-4o","input":"x","bogus":1}), "bogus"),
            (
                json!({"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}),
                "input[0].content[0].file_id",
            ),
            (
                json!({"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}),
                "input[0].content[0].type",
            ),
            (
                json!({"model":"gpt-4o","input":[{"type":"item_reference","id":"msg_1"}]}),
                "input[0].type",
            ),
            (
                json!({"model":"gpt-4o","input":"x","text":{"format":{"type":"json_schema","name":"a"}}}),
                "text.format.schema",
            ),
            (
                json!({"model":"gpt-4o","input":"x","tools":[{"type":"function","name":"f","strict":true}]}),
                "tools[0].strict",
            ),
            (json!({"model":"gpt-4o"}), "input"),
        ];
        for (body, param) in cases {
            let e = parse_json(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.status.as_u16(), 400, "{body}");
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
            assert!(
                e.message.contains(param.split('[').next().unwrap()),
                "{}",
                e.message
            );
        }
        let e = parse_json(json!({"model":"gpt-4o","input":"x","previous_response_id":"r"}))
            .unwrap_err();
        assert!(e.message.contains("stateless"), "{}", e.message);
        let e = parse_json(json!({"model":"gpt-4o","input":"x","tools":[{"type":"web_search"}]}))
            .unwrap_err();
        assert!(e.message.contains("'web_search'"), "{}", e.message);
    }

    #[test]
    fn harmless_values_of_stateful_fields_are_accepted() {
        parse_json(
            json!({"model":"gpt-4o","input":"x","store":false,"background":false,
            "reasoning":{"effort":null},"truncation":"disabled","include":[],"service_tier":"auto",
            "previous_response_id":null,"prompt_cache_key":"k"}),
        )
        .unwrap();
    }
}
