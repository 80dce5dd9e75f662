//! An OpenAI request body → an [`LlmRequest`], with OpenAI-style validation.

use llm_router::{LlmClient, LlmRequest, Message, Tool, ToolCall, ToolChoice};

use super::error::ApiError;
use super::wire::{ChatMessage, ChatRequest, Content, Stop, WireTool, WireToolChoice};

/// Most stop sequences OpenAI accepts.
const MAX_STOP: usize = 4;

/// A parsed chat request.
#[derive(Debug)]
pub struct Parsed {
    /// What the client is asked.
    pub request: LlmRequest,
    /// Whether to answer with server-sent events.
    pub stream: bool,
    /// Whether a stream ends with a usage chunk.
    pub include_usage: bool,
}

/// Parses and validates a request body.
pub fn parse(body: &[u8], client: &LlmClient) -> Result<Parsed, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!(
                "We could not parse the JSON body of your request ({e}). \
                 The body must be a JSON object."
            ),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            None,
            "The request body must be a JSON object.",
        ));
    }
    let raw: ChatRequest = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let param = (!path.is_empty() && path != ".").then_some(path);
        ApiError::invalid(
            param.as_deref(),
            format!(
                "Invalid value for '{}': {}",
                param.as_deref().unwrap_or("body"),
                e.inner()
            ),
        )
    })?;
    convert(raw, client)
}

fn convert(raw: ChatRequest, client: &LlmClient) -> Result<Parsed, ApiError> {
    let model = raw
        .model
        .ok_or_else(|| ApiError::invalid(Some("model"), "You must provide a model parameter."))?;
    let messages = raw.messages.ok_or_else(|| {
        ApiError::invalid(Some("messages"), "Missing required parameter: 'messages'.")
    })?;
    if messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        ));
    }

    let mut system: Vec<String> = Vec::new();
    let mut conversation = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let ChatMessage {
            role,
            content,
            tool_calls,
            tool_call_id,
        } = m;
        let text = content_text(i, content)?;
        let required = |field: &str| {
            ApiError::invalid(
                Some(&format!("messages[{i}].{field}")),
                format!("Missing required parameter: 'messages[{i}].{field}'."),
            )
        };
        match role.as_str() {
            "system" | "developer" => system.push(text.unwrap_or_default()),
            "user" => conversation.push(Message::user(text.ok_or_else(|| required("content"))?)),
            "assistant" => {
                let mut calls = Vec::new();
                for (j, c) in tool_calls.into_iter().flatten().enumerate() {
                    if c.kind.as_deref().is_some_and(|k| k != "function") {
                        return Err(ApiError::invalid(
                            Some(&format!("messages[{i}].tool_calls[{j}].type")),
                            "Invalid value: this gateway supports only 'function' tool calls.",
                        ));
                    }
                    calls.push(ToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                    });
                }
                conversation.push(Message::assistant_tool_calls(
                    text.unwrap_or_default(),
                    calls,
                ));
            }
            "tool" => {
                let call = tool_call_id.ok_or_else(|| required("tool_call_id"))?;
                let text = text.ok_or_else(|| required("content"))?;
                conversation.push(Message::tool_result(call, text));
            }
            "function" => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].role")),
                    format!(
                        "Invalid value for 'messages[{i}].role': the deprecated `function` role is \
                         not supported by this gateway; use `tools` and `tool` messages."
                    ),
                ))
            }
            other => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].role")),
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', 'developer', \
                         'user', 'assistant' and 'tool'."
                    ),
                ))
            }
        }
    }
    if conversation.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "Invalid 'messages': at least one user or assistant message is required.",
        ));
    }

    // Only what the client sent: no sampling default is invented here.
    let mut req = LlmRequest::plain(conversation);
    let system: Vec<String> = system.into_iter().filter(|s| !s.is_empty()).collect();
    if !system.is_empty() {
        req.system_prompt = Some(system.join("\n\n"));
    }

    let (field, max) = match (raw.max_completion_tokens, raw.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, Some(m)) => ("max_tokens", Some(m)),
        (None, None) => ("max_tokens", None),
    };
    if let Some(m) = max {
        if m == 0 {
            return Err(ApiError::invalid(
                Some(field),
                format!("Invalid '{field}': integer below minimum value. Expected a value >= 1, but got 0 instead."),
            ));
        }
        req.max_tokens = Some(m);
    }
    if let Some(temperature) = raw.temperature {
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                Some("temperature"),
                format!("Invalid 'temperature': expected a value between 0 and 2, but got {temperature} instead."),
            ));
        }
        req.temperature = Some(temperature);
    }
    if let Some(p) = raw.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(ApiError::invalid(
                Some("top_p"),
                format!("Invalid 'top_p': expected a value between 0 and 1, but got {p} instead."),
            ));
        }
        req.top_p = Some(p);
    }
    req.stop = match raw.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if req.stop.len() > MAX_STOP {
        return Err(ApiError::invalid(
            Some("stop"),
            format!(
                "Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, but got {} instead.",
                req.stop.len()
            ),
        ));
    }
    if req.stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "Invalid 'stop': stop sequences must not be empty.",
        ));
    }
    // OpenAI takes any 64-bit integer, negative ones too.
    req.seed = raw.seed;
    if raw.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(
            Some("n"),
            "Invalid 'n': this gateway returns exactly one choice; n must be 1.",
        ));
    }

    req.tools = tools(raw.tools)?;
    req.tool_choice = raw.tool_choice.map(tool_choice).transpose()?;
    req.parallel_tool_calls = raw.parallel_tool_calls;

    let stream = raw.stream.unwrap_or(false);
    if raw.stream_options.is_some() && !stream {
        return Err(ApiError::invalid(
            Some("stream_options"),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ));
    }
    let include_usage = raw
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);

    resolve_model(&model, client, &mut req)?;
    llm_router::validate(&req).map_err(|v| ApiError::invalid(Some(v.field), v.to_string()))?;
    check_tool_support(&req, client)?;
    Ok(Parsed {
        request: req,
        stream,
        include_usage,
    })
}

/// A request using tools needs a configured provider that supports them;
/// otherwise it is a 400 now rather than a "no provider available" later.
fn check_tool_support(req: &LlmRequest, client: &LlmClient) -> Result<(), ApiError> {
    if !req.uses_tools() {
        return Ok(());
    }
    let providers = client.providers();
    if providers.iter().any(|p| p.supports_tools()) {
        return Ok(());
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
    let (param, what) = if req.tools.is_empty() {
        (
            "messages",
            "This conversation carries tool calls or results",
        )
    } else {
        ("tools", "This request uses tools")
    };
    let mut err = ApiError::invalid(
        Some(param),
        format!(
            "{what}, but none of the gateway's providers supports tools ({}).",
            names.join(", ")
        ),
    );
    err.code = Some("tools_not_supported");
    Err(err)
}

/// `tools`: function tools only; absent parameters mean "no arguments".
fn tools(raw: Option<Vec<WireTool>>) -> Result<Vec<Tool>, ApiError> {
    let mut out = Vec::new();
    for (i, t) in raw.into_iter().flatten().enumerate() {
        if t.kind != "function" {
            return Err(ApiError::invalid(
                Some(&format!("tools[{i}].type")),
                format!(
                    "Invalid value: '{}'. This gateway supports only 'function' tools.",
                    t.kind
                ),
            ));
        }
        let f = t.function.ok_or_else(|| {
            ApiError::invalid(
                Some(&format!("tools[{i}].function")),
                format!("Missing required parameter: 'tools[{i}].function'."),
            )
        })?;
        out.push(Tool {
            name: f.name,
            description: f.description,
            parameters: f
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

/// `tool_choice`: `none`, `auto`, `required` or a named function.
fn tool_choice(raw: WireToolChoice) -> Result<ToolChoice, ApiError> {
    let invalid = |detail: &str| ApiError::invalid(Some("tool_choice"), detail.to_string());
    match raw {
        WireToolChoice::Mode(m) => match m.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(&format!(
                "Invalid value: '{other}'. Supported values are: 'none', 'auto' and 'required'."
            ))),
        },
        WireToolChoice::Named(n) => match (n.kind.as_str(), n.function) {
            ("function", Some(f)) => Ok(ToolChoice::Function(f.name)),
            ("function", None) => Err(ApiError::invalid(
                Some("tool_choice.function"),
                "Missing required parameter: 'tool_choice.function'.".to_string(),
            )),
            (other, _) => Err(invalid(&format!(
                "Invalid value: '{other}'. This gateway supports only the 'function' form of \
                 tool_choice."
            ))),
        },
    }
}

/// The text of a message's content; `None` for null or absent content.
fn content_text(i: usize, content: Option<Content>) -> Result<Option<String>, ApiError> {
    match content {
        None => Ok(None),
        Some(Content::Text(s)) => Ok(Some(s)),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            for (j, p) in parts.into_iter().enumerate() {
                match p.kind.as_str() {
                    "text" => {
                        let t = p.text.ok_or_else(|| {
                            ApiError::invalid(
                                Some(&format!("messages[{i}].content[{j}].text")),
                                format!(
                                    "Missing required parameter: 'messages[{i}].content[{j}].text'."
                                ),
                            )
                        })?;
                        out.push_str(&t);
                    }
                    // A refusal the model gave earlier adds nothing to the prompt.
                    "refusal" => {}
                    other => {
                        return Err(ApiError::invalid(
                            Some(&format!("messages[{i}].content[{j}].type")),
                            format!(
                                "Invalid value: '{other}'. This gateway supports only 'text' content parts."
                            ),
                        ))
                    }
                }
            }
            Ok(Some(out))
        }
    }
}

/// Applies `model`: `auto` (the router decides), `instance/model` (that
/// instance first), `instance` (that instance, its default model) or a model
/// name (the first instance that lists it goes first).
fn resolve_model(model: &str, client: &LlmClient, req: &mut LlmRequest) -> Result<(), ApiError> {
    let model = model.trim();
    if model.is_empty() || model.eq_ignore_ascii_case("auto") {
        return Ok(());
    }
    let providers = client.providers();
    if let Some((instance, name)) = model.split_once('/') {
        if let Some(p) = providers.iter().find(|p| p.name() == instance) {
            let name = name.trim();
            if name.is_empty() || name.eq_ignore_ascii_case("auto") {
                req.provider = Some(p.name().to_string());
                return Ok(());
            }
            let profile = p.profile();
            let listed = profile.models.iter().any(|m| m == name)
                || profile.default_model.as_deref() == Some(name);
            if !profile.models.is_empty() && !listed {
                return Err(ApiError::model_not_found(model));
            }
            req.provider = Some(p.name().to_string());
            req.model = Some(name.to_string());
            return Ok(());
        }
    }
    if let Some(p) = providers.iter().find(|p| {
        let profile = p.profile();
        profile.models.iter().any(|m| m == model) || profile.default_model.as_deref() == Some(model)
    }) {
        req.provider = Some(p.name().to_string());
        req.model = Some(model.to_string());
        return Ok(());
    }
    if let Some(p) = providers.iter().find(|p| p.name() == model) {
        req.provider = Some(p.name().to_string());
        return Ok(());
    }
    Err(ApiError::model_not_found(model))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use llm_core::testing::{Reply, ScriptedProvider};
    use llm_router::{LlmClient, Role};

    use super::*;

    fn client() -> LlmClient {
        let a = ScriptedProvider::new("gpu")
            .kind("openai")
            .models(["qwen", "Qwen/Qwen2.5"])
            .otherwise(Reply::text("x"));
        let b = ScriptedProvider::new("cloud")
            .kind("openai")
            .tools(true)
            .models(["gpt-4o", "qwen"])
            .otherwise(Reply::text("x"));
        LlmClient::builder()
            .provider(Arc::new(a))
            .provider(Arc::new(b))
            .build()
            .unwrap()
    }

    fn parse_str(s: &str) -> Result<Parsed, ApiError> {
        parse(s.as_bytes(), &client())
    }

    #[test]
    fn maps_messages_and_options() {
        let p = parse_str(
            r#"{"model":"auto","messages":[{"role":"system","content":"S1"},
            {"role":"developer","content":[{"type":"text","text":"S2"}]},
            {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
            {"role":"assistant","content":null},{"role":"user","content":"q"}],
            "max_completion_tokens":50,"max_tokens":7,"temperature":0.2,"top_p":0.5,
            "stop":"END","seed":-1,"stream":true,"stream_options":{"include_usage":true},
            "frequency_penalty":0.1,"user":"u"}"#,
        )
        .unwrap();
        let r = p.request;
        assert_eq!(r.system_prompt.as_deref(), Some("S1\n\nS2"));
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[0].content, "ab");
        assert_eq!(r.messages[1].role, Role::Assistant);
        assert_eq!(r.max_tokens, Some(50));
        assert_eq!(r.temperature, Some(0.2));
        assert_eq!(r.top_p, Some(0.5));
        assert_eq!(r.stop, vec!["END".to_string()]);
        assert_eq!(r.seed, Some(-1));
        assert!(p.stream && p.include_usage);
        assert_eq!(r.provider, None);
        assert_eq!(r.model, None);
    }

    #[test]
    fn maps_tools_tool_calls_and_results() {
        let p = parse_str(
            r#"{"model":"auto","messages":[{"role":"user","content":"weather?"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
              "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"sunny"}]}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
              {"type":"function","function":{"name":"now"}}],
            "tool_choice":{"type":"function","function":{"name":"now"}},"parallel_tool_calls":false}"#,
        )
        .unwrap();
        let r = p.request;
        assert_eq!(r.messages.len(), 3);
        assert_eq!(
            r.messages[1],
            Message::assistant_tool_calls(
                "",
                vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into()
                }]
            )
        );
        assert_eq!(r.messages[2], Message::tool_result("call_1", "sunny"));
        assert_eq!(r.tools.len(), 2);
        assert_eq!(r.tools[0].description.as_deref(), Some("d"));
        assert_eq!(
            r.tools[1].parameters,
            serde_json::json!({"type": "object", "properties": {}})
        );
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("now".into())));
        assert_eq!(r.parallel_tool_calls, Some(false));
        for (choice, expected) in [
            ("\"none\"", ToolChoice::None),
            ("\"auto\"", ToolChoice::Auto),
            ("\"required\"", ToolChoice::Required),
        ] {
            let body = format!(
                r#"{{"model":"auto","messages":[{{"role":"user","content":"q"}}],
                "tools":[{{"type":"function","function":{{"name":"f"}}}}],"tool_choice":{choice}}}"#
            );
            assert_eq!(
                parse_str(&body).unwrap().request.tool_choice,
                Some(expected)
            );
        }
    }

    #[test]
    fn resolves_models() {
        let r = parse_str(r#"{"model":"qwen","messages":[{"role":"user","content":"q"}]}"#)
            .unwrap()
            .request;
        assert_eq!(
            (r.provider.as_deref(), r.model.as_deref()),
            (Some("gpu"), Some("qwen"))
        );
        let r = parse_str(r#"{"model":"cloud/qwen","messages":[{"role":"user","content":"q"}]}"#)
            .unwrap()
            .request;
        assert_eq!(
            (r.provider.as_deref(), r.model.as_deref()),
            (Some("cloud"), Some("qwen"))
        );
        let r = parse_str(r#"{"model":"Qwen/Qwen2.5","messages":[{"role":"user","content":"q"}]}"#)
            .unwrap()
            .request;
        assert_eq!(
            (r.provider.as_deref(), r.model.as_deref()),
            (Some("gpu"), Some("Qwen/Qwen2.5"))
        );
        for m in ["nope", "cloud/nope", "gpu/gpt-4o"] {
            let body = format!(r#"{{"model":"{m}","messages":[{{"role":"user","content":"q"}}]}}"#);
            let e = parse_str(&body).unwrap_err();
            assert_eq!(e.status, 404, "{m}");
            assert_eq!(e.code, Some("model_not_found"));
        }
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let cases = [
            (r#"{"messages":[{"role":"user","content":"q"}]}"#, "model"),
            (r#"{"model":"auto"}"#, "messages"),
            (r#"{"model":"auto","messages":[]}"#, "messages"),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"temperature":"hot"}"#,
                "temperature",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"temperature":3}"#,
                "temperature",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"top_p":2}"#,
                "top_p",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"max_tokens":0}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"max_tokens":-5}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"max_completion_tokens":0}"#,
                "max_completion_tokens",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"stop":["a","b","c","d","e"]}"#,
                "stop",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"stop":5}"#,
                "stop",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"n":2}"#,
                "n",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"stream_options":{"include_usage":true}}"#,
                "stream_options",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"wizard","content":"q"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "messages[0].content[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user"}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"system","content":"s"}]}"#,
                "messages",
            ),
            (r#"{"model":"auto","messages":"hi"}"#, "messages"),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"custom","custom":{"name":"x"}}]}"#,
                "tools[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function"}]}"#,
                "tools[0].function",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"bad name"}}]}"#,
                "tools",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}"#,
                "tool_choice",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"allowed_tools"}}"#,
                "tool_choice",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}"#,
                "tool_choice",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tool_choice":"required"}"#,
                "tool_choice",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"tool","content":"r"}]}"#,
                "messages[0].tool_call_id",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"custom","function":{"name":"f","arguments":"{}"}}]}]}"#,
                "messages[0].tool_calls[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"function","name":"f","content":"r"}]}"#,
                "messages[0].role",
            ),
        ];
        for (body, field) in cases {
            let e = parse_str(body).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert_eq!(e.param.as_deref(), Some(field), "{body}: {}", e.message);
        }
        let e = parse_str("{not json").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse_str("[1]").unwrap_err();
        assert_eq!(e.status, 400);
    }
}
