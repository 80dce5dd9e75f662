//! An OpenAI request body → an [`LlmRequest`], with OpenAI-style validation.

use llm_router::{
    ImageInput, LlmClient, LlmRequest, Message, ResponseFormat, Tool, ToolCall, ToolChoice,
};
use serde_json::{Map, Value};

use super::wire::{
    ChatMessage, ChatRequest, Content, Stop, WireResponseFormat, WireTool, WireToolChoice,
    MAPPED_FIELDS, PASSTHROUGH_FIELDS, REFUSED_FIELDS,
};
use crate::error::ApiError;

/// Most stop sequences OpenAI accepts.
const MAX_STOP: usize = 4;

/// Most alternatives per token `top_logprobs` may ask for.
const MAX_TOP_LOGPROBS: u8 = 20;

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
    let Some(object) = value.as_object() else {
        return Err(ApiError::invalid(
            None,
            "The request body must be a JSON object.",
        ));
    };
    let extra = sort_fields(object)?;
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
    convert(raw, extra, client)
}

/// Refuses unknown fields and fields the gateway cannot honour (a null value
/// counts as absent) and returns the pass-through fields, verbatim.
fn sort_fields(object: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    // First, so a request for audio output is refused naming `modalities`.
    if let Some(Value::Array(modalities)) = object.get("modalities") {
        if modalities.iter().any(|m| m.as_str() != Some("text")) {
            let mut e = ApiError::invalid(
                Some("modalities"),
                "Invalid 'modalities': this gateway answers with text only; modalities must \
                 be [\"text\"].",
            );
            e.code = Some("unsupported_parameter");
            return Err(e);
        }
    }
    let mut extra = Map::new();
    for (key, value) in object {
        let key = key.as_str();
        if MAPPED_FIELDS.contains(&key) {
            continue;
        }
        if PASSTHROUGH_FIELDS.contains(&key) {
            if !value.is_null() {
                extra.insert(key.to_string(), value.clone());
            }
            continue;
        }
        if REFUSED_FIELDS.contains(&key) {
            if value.is_null() {
                continue;
            }
            let message = match key {
                "audio" => {
                    "Invalid 'audio': audio output is not supported by this gateway; omit                      'audio' (text answers only)."
                }
                "functions" => {
                    "Invalid 'functions': the deprecated 'functions' parameter is not supported                      by this gateway; use 'tools'."
                }
                _ => {
                    "Invalid 'function_call': the deprecated 'function_call' parameter is not                      supported by this gateway; use 'tool_choice'."
                }
            };
            let mut e = ApiError::invalid(Some(key), message);
            e.code = Some("unsupported_parameter");
            return Err(e);
        }
        let mut e = ApiError::invalid(
            Some(key),
            format!("Unrecognized request argument supplied: {key}"),
        );
        e.code = Some("unknown_parameter");
        return Err(e);
    }
    Ok(extra)
}

fn convert(
    raw: ChatRequest,
    extra: Map<String, Value>,
    client: &LlmClient,
) -> Result<Parsed, ApiError> {
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
            name: _,
        } = m;
        let (text, images) = content_parts(i, content, role == "user")?;
        let required = |field: &str| {
            ApiError::invalid(
                Some(&format!("messages[{i}].{field}")),
                format!("Missing required parameter: 'messages[{i}].{field}'."),
            )
        };
        match role.as_str() {
            "system" | "developer" => system.push(text.unwrap_or_default()),
            "user" => {
                let mut message = Message::user(text.ok_or_else(|| required("content"))?);
                message.images = images;
                conversation.push(message);
            }
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
        let mut e = ApiError::invalid(
            Some("n"),
            "Invalid 'n': this gateway returns exactly one choice; n must be 1 (send n \
             requests for n answers).",
        );
        e.code = Some("unsupported_parameter");
        return Err(e);
    }
    req.frequency_penalty = penalty("frequency_penalty", raw.frequency_penalty)?;
    req.presence_penalty = penalty("presence_penalty", raw.presence_penalty)?;
    req.logprobs = raw.logprobs.unwrap_or(false);
    if let Some(top) = raw.top_logprobs {
        if top > MAX_TOP_LOGPROBS {
            return Err(ApiError::invalid(
                Some("top_logprobs"),
                format!(
                    "Invalid 'top_logprobs': integer above maximum value. Expected a value <= \
                     {MAX_TOP_LOGPROBS}, but got {top} instead."
                ),
            ));
        }
        if !req.logprobs {
            return Err(ApiError::invalid(
                Some("top_logprobs"),
                "Invalid 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is \
                 used.",
            ));
        }
        req.top_logprobs = Some(top);
    }
    req.user = raw.user;
    req.response_format = raw.response_format.map(response_format).transpose()?;
    req.extra = extra;

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

/// A penalty in OpenAI's range, -2 to 2.
fn penalty(field: &str, value: Option<f32>) -> Result<Option<f32>, ApiError> {
    match value {
        Some(v) if !(-2.0..=2.0).contains(&v) => Err(ApiError::invalid(
            Some(field),
            format!("Invalid '{field}': expected a value between -2 and 2, but got {v} instead."),
        )),
        other => Ok(other),
    }
}

/// `response_format`: `text`, `json_object` or `json_schema` (name and schema required).
fn response_format(raw: WireResponseFormat) -> Result<ResponseFormat, ApiError> {
    match raw.kind.as_str() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let js = raw.json_schema.ok_or_else(|| {
                ApiError::invalid(
                    Some("response_format.json_schema"),
                    "Missing required parameter: 'response_format.json_schema'.",
                )
            })?;
            let name_ok = !js.name.is_empty()
                && js.name.len() <= 64
                && js
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(ApiError::invalid(
                    Some("response_format.json_schema.name"),
                    format!(
                        "Invalid 'response_format.json_schema.name': '{}'. Expected 1 to 64 of \
                         a-z, A-Z, 0-9, underscores and dashes.",
                        js.name
                    ),
                ));
            }
            let schema = js.schema.ok_or_else(|| {
                ApiError::invalid(
                    Some("response_format.json_schema.schema"),
                    "Missing required parameter: 'response_format.json_schema.schema' (this \
                     gateway needs the schema to give it to every kind of provider).",
                )
            })?;
            if !schema.is_object() {
                return Err(ApiError::invalid(
                    Some("response_format.json_schema.schema"),
                    "Invalid 'response_format.json_schema.schema': expected a JSON Schema object.",
                ));
            }
            Ok(ResponseFormat::JsonSchema {
                name: js.name,
                schema,
                strict: js.strict,
                description: js.description,
            })
        }
        other => Err(ApiError::invalid(
            Some("response_format.type"),
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object' and \
                 'json_schema'."
            ),
        )),
    }
}

/// A request using tools needs a configured provider that supports them;
/// otherwise it is a 400 now rather than a "no provider available" later.
pub(crate) fn check_tool_support(req: &LlmRequest, client: &LlmClient) -> Result<(), ApiError> {
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
        if f.strict == Some(true) {
            let mut e = ApiError::invalid(
                Some(&format!("tools[{i}].function.strict")),
                format!(
                    "Invalid 'tools[{i}].function.strict': strict function calling is not \
                     supported by this gateway (no provider behind it is asked to follow a tool's \
                     schema exactly). Omit 'strict' or set it to false; for output that must \
                     match a schema, use response_format json_schema."
                ),
            );
            e.code = Some("unsupported_parameter");
            return Err(e);
        }
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

/// The text of a message's content (`None` for null or absent content; text
/// parts joined) and its images, in order (`image_url` parts, user messages only).
fn content_parts(
    i: usize,
    content: Option<Content>,
    images_allowed: bool,
) -> Result<(Option<String>, Vec<ImageInput>), ApiError> {
    match content {
        None => Ok((None, Vec::new())),
        Some(Content::Text(s)) => Ok((Some(s), Vec::new())),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            let mut images = Vec::new();
            for (j, p) in parts.into_iter().enumerate() {
                let at = |field: &str| format!("messages[{i}].content[{j}].{field}");
                match p.kind.as_str() {
                    "text" => {
                        let t = p.text.ok_or_else(|| {
                            ApiError::invalid(
                                Some(&at("text")),
                                format!("Missing required parameter: '{}'.", at("text")),
                            )
                        })?;
                        out.push_str(&t);
                    }
                    // A refusal the model gave earlier adds nothing to the prompt.
                    "refusal" => {}
                    "image_url" if images_allowed => {
                        let img = p.image_url.ok_or_else(|| {
                            ApiError::invalid(
                                Some(&at("image_url")),
                                format!("Missing required parameter: '{}'.", at("image_url")),
                            )
                        })?;
                        images.push(image(&at("image_url"), img)?);
                    }
                    "image_url" => {
                        return Err(ApiError::invalid(
                            Some(&at("type")),
                            format!(
                                "Invalid value: 'image_url'. Images are allowed in user messages \
                                 only ('{}').",
                                at("type")
                            ),
                        ))
                    }
                    other => {
                        let mut e = ApiError::invalid(
                            Some(&at("type")),
                            format!(
                                "Invalid value for '{}': '{other}'. This gateway supports 'text' \
                                 and 'image_url' content parts.",
                                at("type")
                            ),
                        );
                        e.code = Some("unsupported_parameter");
                        return Err(e);
                    }
                }
            }
            Ok((Some(out), images))
        }
    }
}

/// An `image_url` part: an `http(s):` URL or a base64 `data:image/…` URL, and
/// an optional `detail` of `low`, `high` or `auto`.
fn image(at: &str, raw: super::wire::ImageUrl) -> Result<ImageInput, ApiError> {
    let input = ImageInput {
        url: raw.url,
        detail: raw.detail,
    };
    let inline_ok = input
        .data()
        .is_some_and(|d| d.media_type.starts_with("image/") && !d.base64.is_empty());
    if !input.is_remote() && !inline_ok {
        return Err(ApiError::invalid(
            Some(&format!("{at}.url")),
            format!(
                "Invalid '{at}.url': expected an https URL or a base64 data URL \
                 (data:image/png;base64,...)."
            ),
        ));
    }
    if let Some(d) = input.detail.as_deref() {
        if !matches!(d, "low" | "high" | "auto") {
            return Err(ApiError::invalid(
                Some(&format!("{at}.detail")),
                format!("Invalid value: '{d}'. Supported values are: 'low', 'high' and 'auto'."),
            ));
        }
    }
    Ok(input)
}

/// Applies `model`: `auto` (the router decides), `instance/model` (that
/// instance first), `instance` (that instance, its default model) or a model
/// name (the first instance that lists it goes first).
pub(crate) fn resolve_model(
    model: &str,
    client: &LlmClient,
    req: &mut LlmRequest,
) -> Result<(), ApiError> {
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
        assert_eq!(r.frequency_penalty, Some(0.1));
        assert_eq!(r.user.as_deref(), Some("u"));
        assert!(p.stream && p.include_usage);
        assert_eq!(r.provider, None);
        assert_eq!(r.model, None);
        assert!(r.extra.is_empty());
    }

    #[test]
    fn maps_structured_output_logprobs_images_and_passthrough() {
        let p = parse_str(
            r#"{"model":"auto","messages":[{"role":"user","name":"ann","content":[
              {"type":"text","text":"What is "},
              {"type":"image_url","image_url":{"url":"https://example.com/a.png"}},
              {"type":"text","text":"this?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],
            "response_format":{"type":"json_schema","json_schema":{"name":"City","description":"a city",
              "schema":{"type":"object","properties":{"name":{"type":"string"}}},"strict":true}},
            "logprobs":true,"top_logprobs":2,"presence_penalty":-0.5,"modalities":["text"],
            "logit_bias":{"50256":-100},"service_tier":"flex","metadata":{"k":"v"},"store":true,
            "reasoning_effort":"low","prediction":{"type":"content","content":"x"},
            "web_search_options":{},"verbosity":"low","prompt_cache_key":"pk",
            "prompt_cache_retention":"24h","safety_identifier":"sid","audio":null,"functions":null}"#,
        )
        .unwrap();
        let r = p.request;
        assert_eq!(r.messages[0].content, "What is this?");
        assert_eq!(
            r.messages[0].images,
            vec![
                ImageInput::url("https://example.com/a.png"),
                ImageInput {
                    url: "data:image/png;base64,iVBORw0KGgo=".into(),
                    detail: Some("low".into())
                }
            ]
        );
        assert_eq!(
            r.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "City".into(),
                schema: serde_json::json!({"type":"object","properties":{"name":{"type":"string"}}}),
                strict: Some(true),
                description: Some("a city".into()),
            })
        );
        assert!(r.logprobs);
        assert_eq!(r.top_logprobs, Some(2));
        assert_eq!(r.presence_penalty, Some(-0.5));
        assert_eq!(r.frequency_penalty, None);
        let keys: Vec<&str> = r.extra.keys().map(String::as_str).collect();
        let mut expected = super::PASSTHROUGH_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(r.extra["logit_bias"], serde_json::json!({"50256": -100}));
        assert_eq!(
            r.extra["prediction"],
            serde_json::json!({"type":"content","content":"x"})
        );

        for (format, expected) in [
            (r#"{"type":"text"}"#, ResponseFormat::Text),
            (r#"{"type":"json_object"}"#, ResponseFormat::JsonObject),
        ] {
            let body = format!(
                r#"{{"model":"auto","messages":[{{"role":"user","content":"q"}}],"response_format":{format}}}"#
            );
            assert_eq!(
                parse_str(&body).unwrap().request.response_format,
                Some(expected)
            );
        }
        // Null pass-through fields are absent ones.
        let r = parse_str(
            r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"logit_bias":null,"n":1,"stream":false}"#,
        )
        .unwrap()
        .request;
        assert!(r.extra.is_empty());
    }

    #[test]
    fn maps_tools_tool_calls_and_results() {
        let p = parse_str(
            r#"{"model":"auto","messages":[{"role":"user","content":"weather?"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
              "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"sunny"}]}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}},
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
                "messages[0].content[0].image_url",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/a.png"}}]}]}"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]}]}"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png","detail":"max"}}]}]}"#,
                "messages[0].content[0].image_url.detail",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}}]},{"role":"user","content":"q"}]}"#,
                "messages[0].content[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}"#,
                "messages[0].content[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]}"#,
                "messages[0].content[0].type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"some_future_field":1}"#,
                "some_future_field",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"top_k":40}"#,
                "top_k",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"audio":{"voice":"alloy","format":"wav"}}"#,
                "audio",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"modalities":["text","audio"]}"#,
                "modalities",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"functions":[{"name":"f"}]}"#,
                "functions",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"function_call":"auto"}"#,
                "function_call",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"frequency_penalty":2.5}"#,
                "frequency_penalty",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"presence_penalty":-3}"#,
                "presence_penalty",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"top_logprobs":2}"#,
                "top_logprobs",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"logprobs":true,"top_logprobs":21}"#,
                "top_logprobs",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"response_format":{"type":"xml"}}"#,
                "response_format.type",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"response_format":{"type":"json_schema"}}"#,
                "response_format.json_schema",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"response_format":{"type":"json_schema","json_schema":{"name":"a b","schema":{}}}}"#,
                "response_format.json_schema.name",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"response_format":{"type":"json_schema","json_schema":{"name":"a"}}}"#,
                "response_format.json_schema.schema",
            ),
            (
                r#"{"model":"auto","messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f","strict":true}}]}"#,
                "tools[0].function.strict",
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
