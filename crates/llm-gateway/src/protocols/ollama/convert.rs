//! Ollama request bodies → [`LlmRequest`] / [`EmbeddingRequest`], every field
//! mapped or refused with a 400 naming it.

use llm_router::{
    EmbeddingRequest, ImageInput, LlmClient, LlmRequest, Message, ResponseFormat, Tool, ToolCall,
};
use serde_json::{Map, Value};

use super::error::OllamaError;
use crate::protocols::openai_chat::convert::{check_tool_support, resolve_model};

/// `options` mapped onto the request.
const MAPPED_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "num_predict",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
];

/// `options` about how the local runtime loads and runs a model (threads,
/// GPUs, memory mapping, batch size): they do not change the answer, so they
/// are accepted and ignored.
const RUNTIME_OPTIONS: &[&str] = &[
    "num_thread",
    "num_gpu",
    "main_gpu",
    "num_batch",
    "use_mmap",
    "use_mlock",
    "numa",
    "low_vram",
    "f16_kv",
    "vocab_only",
];

/// A parsed `/api/chat` or `/api/generate` request.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// What the client is asked; `None` when there is nothing to generate
    /// (no messages, or an empty prompt): Ollama then only loads the model
    /// and answers `done_reason: "load"`.
    pub(crate) request: Option<LlmRequest>,
    /// The model name as the client wrote it (echoed in every answer).
    pub(crate) model: String,
    /// NDJSON stream (the default) or one object.
    pub(crate) stream: bool,
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, OllamaError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(OllamaError::bad_request(
            "invalid request: the body must be a JSON object",
        )),
        Err(e) => Err(OllamaError::bad_request(format!("invalid JSON body: {e}"))),
    }
}

/// `field` of `o`, a null value counting as absent.
fn get<'a>(o: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    o.get(field).filter(|v| !v.is_null())
}

fn wrong_type(field: &str, expected: &str) -> OllamaError {
    OllamaError::bad_request(format!("invalid value for `{field}`: expected {expected}"))
}

fn string(o: &Map<String, Value>, field: &str) -> Result<Option<String>, OllamaError> {
    match get(o, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong_type(field, "a string")),
    }
}

fn boolean(o: &Map<String, Value>, field: &str) -> Result<Option<bool>, OllamaError> {
    match get(o, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(field, "true or false")),
    }
}

/// Refuses any top-level field not in `known` (a null value counts as absent).
fn only_known(o: &Map<String, Value>, known: &[&str]) -> Result<(), OllamaError> {
    match o
        .iter()
        .find(|(k, v)| !v.is_null() && !known.contains(&k.as_str()))
    {
        Some((k, _)) => Err(OllamaError::unsupported(
            k,
            "this gateway does not know this field of the Ollama API",
        )),
        None => Ok(()),
    }
}

/// The required `model`.
fn model(o: &Map<String, Value>) -> Result<String, OllamaError> {
    match string(o, "model")? {
        Some(m) if !m.trim().is_empty() => Ok(m),
        _ => Err(OllamaError::bad_request("model is required")),
    }
}

/// `think`: only `false` (or absent) is accepted.
fn think(o: &Map<String, Value>) -> Result<(), OllamaError> {
    match get(o, "think") {
        None | Some(Value::Bool(false)) => Ok(()),
        Some(_) => Err(OllamaError::unsupported(
            "think",
            "thinking output is not supported by this gateway; omit `think` or set it to false",
        )),
    }
}

/// `keep_alive`: how long a local server keeps the model loaded. It does not
/// change the answer; accepted (a duration string or seconds) and ignored.
fn keep_alive(o: &Map<String, Value>) -> Result<(), OllamaError> {
    match get(o, "keep_alive") {
        None | Some(Value::String(_)) | Some(Value::Number(_)) => Ok(()),
        Some(_) => Err(wrong_type(
            "keep_alive",
            "a duration such as \"5m\" or a number of seconds",
        )),
    }
}

/// Parses `POST /api/chat`.
pub(crate) fn chat(body: &[u8], client: &LlmClient) -> Result<Parsed, OllamaError> {
    let o = object(body)?;
    only_known(
        &o,
        &[
            "model",
            "messages",
            "tools",
            "format",
            "options",
            "stream",
            "keep_alive",
            "think",
        ],
    )?;
    let model = model(&o)?;
    let stream = boolean(&o, "stream")?.unwrap_or(true);
    think(&o)?;
    keep_alive(&o)?;
    let raw = match get(&o, "messages") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(wrong_type("messages", "an array of messages")),
    };
    let mut system = Vec::new();
    let mut conversation = Vec::with_capacity(raw.len());
    // Tool calls of the latest assistant message not yet answered: (id, name).
    let mut pending: Vec<(String, String)> = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let at = |f: &str| format!("messages[{i}].{f}");
        let Value::Object(m) = m else {
            return Err(wrong_type(&format!("messages[{i}]"), "a message object"));
        };
        let role = match get(m, "role") {
            Some(Value::String(r)) => r.as_str(),
            _ => return Err(wrong_type(&at("role"), "a role string")),
        };
        let content = match get(m, "content") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(wrong_type(&at("content"), "a string")),
        };
        for (k, v) in m {
            let known = matches!(
                k.as_str(),
                "role" | "content" | "images" | "tool_calls" | "tool_name" | "tool_call_id"
            );
            // Earlier thinking of the model is not part of the prompt.
            if !known && k != "thinking" && !v.is_null() {
                return Err(OllamaError::unsupported(
                    &at(k),
                    "this gateway does not know this field of an Ollama message",
                ));
            }
        }
        let images = images(m, &at("images"))?;
        if !images.is_empty() && role != "user" {
            return Err(OllamaError::bad_request(format!(
                "invalid `{}`: images are allowed in user messages only",
                at("images")
            )));
        }
        match role {
            "system" => system.push(content),
            "user" => {
                let mut msg = Message::user(content);
                msg.images = images;
                conversation.push(msg);
            }
            "assistant" => {
                let calls = tool_calls(m, i)?;
                pending = calls
                    .iter()
                    .map(|c| (c.id.clone(), c.name.clone()))
                    .collect();
                conversation.push(Message::assistant_tool_calls(content, calls));
            }
            "tool" => {
                let id = string(m, "tool_call_id")?;
                let name = string(m, "tool_name")?;
                let slot = match (&id, &name) {
                    (Some(id), _) => pending.iter().position(|(p, _)| p == id),
                    (None, Some(n)) => pending.iter().position(|(_, p)| p == n),
                    (None, None) => (!pending.is_empty()).then_some(0),
                };
                let call_id = match (slot, id) {
                    (Some(s), _) => pending.remove(s).0,
                    (None, Some(id)) => id,
                    (None, None) => {
                        return Err(OllamaError::bad_request(format!(
                            "invalid `messages[{i}]`: a tool message must answer a tool call of \
                             the assistant message before it (name it with `tool_name`)"
                        )))
                    }
                };
                conversation.push(Message::tool_result(call_id, content));
            }
            other => {
                return Err(OllamaError::bad_request(format!(
                    "invalid role `{other}` in `{}`: expected system, user, assistant or tool",
                    at("role")
                )))
            }
        }
    }
    let mut req = if conversation.is_empty() {
        if !system.is_empty() {
            return Err(OllamaError::bad_request(
                "invalid `messages`: at least one user or assistant message is required",
            ));
        }
        None
    } else {
        let mut req = LlmRequest::plain(conversation);
        let system: Vec<String> = system.into_iter().filter(|s| !s.is_empty()).collect();
        if !system.is_empty() {
            req.system_prompt = Some(system.join("\n\n"));
        }
        Some(req)
    };
    let tools = tools(&o)?;
    // Checked also when there is nothing to generate.
    let mut checked = LlmRequest::plain(Vec::new());
    common(&o, req.as_mut().unwrap_or(&mut checked))?;
    if let Some(req) = req.as_mut() {
        req.tools = tools;
    }
    finish(req, model, stream, client)
}

/// Parses `POST /api/generate`.
pub(crate) fn generate(body: &[u8], client: &LlmClient) -> Result<Parsed, OllamaError> {
    let o = object(body)?;
    only_known(
        &o,
        &[
            "model",
            "prompt",
            "suffix",
            "images",
            "format",
            "options",
            "system",
            "template",
            "context",
            "stream",
            "raw",
            "keep_alive",
            "think",
        ],
    )?;
    let model = model(&o)?;
    let stream = boolean(&o, "stream")?.unwrap_or(true);
    think(&o)?;
    keep_alive(&o)?;
    for (field, why) in [
        (
            "template",
            "prompt templates are applied by each upstream itself; omit `template`",
        ),
        (
            "context",
            "token contexts of earlier answers are not kept by this gateway; send the \
             conversation with /api/chat",
        ),
        (
            "suffix",
            "fill-in-the-middle is not supported by this gateway",
        ),
    ] {
        let set = match get(&o, field) {
            None => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(OllamaError::unsupported(field, why));
        }
    }
    if boolean(&o, "raw")? == Some(true) {
        return Err(OllamaError::unsupported(
            "raw",
            "raw prompts (no template) are not supported by this gateway; omit `raw`",
        ));
    }
    let prompt = string(&o, "prompt")?.unwrap_or_default();
    let images = images(&o, "images")?;
    if prompt.is_empty() && images.is_empty() {
        common(&o, &mut LlmRequest::plain(Vec::new()))?;
        string(&o, "system")?;
        return finish(None, model, stream, client);
    }
    let mut user = Message::user(prompt);
    user.images = images;
    let mut req = LlmRequest::plain(vec![user]);
    req.system_prompt = string(&o, "system")?.filter(|s| !s.is_empty());
    common(&o, &mut req)?;
    finish(Some(req), model, stream, client)
}

/// Resolves the model and validates the request.
fn finish(
    mut req: Option<LlmRequest>,
    model: String,
    stream: bool,
    client: &LlmClient,
) -> Result<Parsed, OllamaError> {
    let mut probe = LlmRequest::plain(Vec::new());
    resolve(&model, client, &mut probe)?;
    if let Some(r) = req.as_mut() {
        r.provider = probe.provider;
        r.model = probe.model;
        llm_router::validate(r).map_err(|v| OllamaError::bad_request(v.to_string()))?;
        check_tool_support(r, client)?;
    }
    Ok(Parsed {
        request: req,
        model,
        stream,
    })
}

/// Applies `model` as `/v1/*` does (`auto`, a configured model, `instance`,
/// `instance/model`); a name without a tag also matches `name:latest` and
/// `name:latest` matches `name`, as Ollama resolves them.
pub(crate) fn resolve(
    model: &str,
    client: &LlmClient,
    req: &mut LlmRequest,
) -> Result<(), OllamaError> {
    let mut candidates = vec![model.to_string()];
    match model.strip_suffix(":latest") {
        Some(bare) => candidates.push(bare.to_string()),
        None if !model.rsplit('/').next().unwrap_or(model).contains(':') => {
            candidates.push(format!("{model}:latest"));
        }
        None => {}
    }
    for c in &candidates {
        if resolve_model(c, client, req).is_ok() {
            return Ok(());
        }
    }
    Err(OllamaError::model_not_found(model))
}

/// `format`, `options` and the checks shared by chat and generate.
fn common(o: &Map<String, Value>, req: &mut LlmRequest) -> Result<(), OllamaError> {
    req.response_format = match get(o, "format") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s == "json" => Some(ResponseFormat::JsonObject),
        Some(Value::Object(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: Value::Object(schema.clone()),
            strict: None,
            description: None,
        }),
        Some(_) => return Err(wrong_type("format", "\"json\" or a JSON Schema object")),
    };
    let options = match get(o, "options") {
        None => return Ok(()),
        Some(Value::Object(opts)) => opts,
        Some(_) => return Err(wrong_type("options", "an object")),
    };
    for (k, v) in options {
        if v.is_null() || MAPPED_OPTIONS.contains(&k.as_str()) {
            continue;
        }
        if RUNTIME_OPTIONS.contains(&k.as_str()) {
            continue;
        }
        return Err(OllamaError::unsupported(
            &format!("options.{k}"),
            "this option cannot be honoured by every provider behind this gateway; the \
             options mapped are temperature, top_p, num_predict, stop, seed, \
             frequency_penalty and presence_penalty",
        ));
    }
    let number = |k: &str| -> Result<Option<f64>, OllamaError> {
        match get(options, k) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(wrong_type(&format!("options.{k}"), "a number")),
        }
    };
    if let Some(t) = number("temperature")? {
        if !(0.0..=2.0).contains(&t) {
            return Err(OllamaError::bad_request(format!(
                "invalid `options.temperature`: {t} is outside 0 to 2"
            )));
        }
        req.temperature = Some(t as f32);
    }
    if let Some(p) = number("top_p")? {
        if !(0.0..=1.0).contains(&p) {
            return Err(OllamaError::bad_request(format!(
                "invalid `options.top_p`: {p} is outside 0 to 1"
            )));
        }
        req.top_p = Some(p as f32);
    }
    for (k, slot) in [
        ("frequency_penalty", &mut req.frequency_penalty),
        ("presence_penalty", &mut req.presence_penalty),
    ] {
        if let Some(v) = number(k)? {
            if !(-2.0..=2.0).contains(&v) {
                return Err(OllamaError::bad_request(format!(
                    "invalid `options.{k}`: {v} is outside -2 to 2"
                )));
            }
            *slot = Some(v as f32);
        }
    }
    if let Some(v) = get(options, "num_predict") {
        match v.as_i64() {
            // -1: no limit (Ollama's default).
            Some(-1) => {}
            Some(n) if n >= 1 => {
                req.max_tokens = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            Some(-2) => {
                return Err(OllamaError::unsupported(
                    "options.num_predict",
                    "-2 (fill the context) is not supported by this gateway; use a positive \
                     limit or -1",
                ))
            }
            _ => {
                return Err(wrong_type(
                    "options.num_predict",
                    "a positive integer or -1",
                ))
            }
        }
    }
    if let Some(v) = get(options, "seed") {
        req.seed = Some(
            v.as_i64()
                .ok_or_else(|| wrong_type("options.seed", "an integer"))?,
        );
    }
    req.stop = match get(options, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong_type("options.stop", "an array of strings"))?,
        Some(_) => return Err(wrong_type("options.stop", "an array of strings")),
    };
    if req.stop.iter().any(String::is_empty) {
        return Err(OllamaError::bad_request(
            "invalid `options.stop`: stop sequences must not be empty",
        ));
    }
    Ok(())
}

/// `tools`: `{"type":"function","function":{"name","description","parameters"}}`.
fn tools(o: &Map<String, Value>) -> Result<Vec<Tool>, OllamaError> {
    let list = match get(o, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(wrong_type("tools", "an array of tools")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        if kind != "function" {
            return Err(OllamaError::unsupported(
                &format!("tools[{i}].type"),
                "only function tools are supported",
            ));
        }
        let f = t
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| wrong_type(&format!("tools[{i}].function"), "an object"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| wrong_type(&format!("tools[{i}].function.name"), "a name"))?;
        out.push(Tool {
            name: name.to_string(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: f
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

/// An assistant message's `tool_calls`; arguments are JSON objects in
/// Ollama, JSON text in the request. Calls without an id get `call_<i>_<j>`.
fn tool_calls(m: &Map<String, Value>, i: usize) -> Result<Vec<ToolCall>, OllamaError> {
    let list = match get(m, "tool_calls") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(wrong_type(&format!("messages[{i}].tool_calls"), "an array")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, c) in list.iter().enumerate() {
        let at = format!("messages[{i}].tool_calls[{j}]");
        let f = c
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| wrong_type(&format!("{at}.function"), "an object"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| wrong_type(&format!("{at}.function.name"), "a name"))?;
        let arguments = match f.get("arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(|| format!("call_{i}_{j}"), str::to_string);
        out.push(ToolCall {
            id,
            name: name.to_string(),
            arguments,
        });
    }
    Ok(out)
}

/// `images`: base64 strings (no `data:` prefix) → `data:` URLs, the media
/// type taken from the image's first bytes.
fn images(o: &Map<String, Value>, field: &str) -> Result<Vec<ImageInput>, OllamaError> {
    let list = match get(o, field.rsplit('.').next().unwrap_or(field)) {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(wrong_type(field, "an array of base64 strings")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, img) in list.iter().enumerate() {
        let at = format!("{field}[{j}]");
        let b64 = img
            .as_str()
            .ok_or_else(|| wrong_type(&at, "a base64 string"))?
            .trim();
        let media = media_type(b64).ok_or_else(|| {
            OllamaError::bad_request(format!(
                "invalid `{at}`: expected a base64 PNG, JPEG, GIF or WebP image"
            ))
        })?;
        out.push(ImageInput::url(format!("data:{media};base64,{b64}")));
    }
    Ok(out)
}

/// The media type of a base64 image, from the encoding of its magic bytes.
pub(crate) fn media_type(b64: &str) -> Option<&'static str> {
    if b64.starts_with("iVBORw0KGgo") {
        Some("image/png")
    } else if b64.starts_with("/9j/") {
        Some("image/jpeg")
    } else if b64.starts_with("R0lGOD") {
        Some("image/gif")
    } else if b64.starts_with("UklGR") && b64.get(12..16) == Some("RUJQ") {
        // "RIFF", four size bytes, "WEBP" (its last three bytes are "RUJQ").
        Some("image/webp")
    } else {
        None
    }
}

/// A parsed `/api/embed` (or `/api/embeddings`) request.
#[derive(Debug)]
pub(crate) struct ParsedEmbed {
    pub(crate) request: EmbeddingRequest,
    /// The model name as the client wrote it.
    pub(crate) model: String,
}

/// Parses `POST /api/embed` (`legacy`: `POST /api/embeddings`, one `prompt`).
pub(crate) fn embed(
    body: &[u8],
    client: &LlmClient,
    legacy: bool,
) -> Result<ParsedEmbed, OllamaError> {
    let o = object(body)?;
    let known: &[&str] = if legacy {
        &["model", "prompt", "options", "keep_alive"]
    } else {
        &[
            "model",
            "input",
            "truncate",
            "dimensions",
            "options",
            "keep_alive",
        ]
    };
    only_known(&o, known)?;
    let model = model(&o)?;
    keep_alive(&o)?;
    let inputs = if legacy {
        vec![string(&o, "prompt")?.unwrap_or_default()]
    } else {
        match get(&o, "input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| wrong_type("input", "a string or an array of strings"))?,
            None => Vec::new(),
            Some(_) => return Err(wrong_type("input", "a string or an array of strings")),
        }
    };
    if inputs.is_empty() {
        return Err(OllamaError::bad_request(
            "invalid `input`: nothing to embed",
        ));
    }
    if boolean(&o, "truncate")? == Some(false) {
        return Err(OllamaError::unsupported(
            "truncate",
            "false is not supported by this gateway (over-long inputs are truncated by Ollama \
             upstreams and rejected by others); omit `truncate`",
        ));
    }
    if let Some(Value::Object(opts)) = get(&o, "options") {
        if let Some((k, _)) = opts
            .iter()
            .find(|(k, v)| !v.is_null() && !RUNTIME_OPTIONS.contains(&k.as_str()))
        {
            return Err(OllamaError::unsupported(
                &format!("options.{k}"),
                "embedding requests take no model options here",
            ));
        }
    } else if get(&o, "options").is_some() {
        return Err(wrong_type("options", "an object"));
    }
    let mut request = EmbeddingRequest::new(inputs);
    if let Some(d) = get(&o, "dimensions") {
        let d = d
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| *d >= 1)
            .ok_or_else(|| wrong_type("dimensions", "a positive integer"))?;
        request.dimensions = Some(d);
    }
    let (provider, name) = embedding_model(&model, client);
    request.provider = provider;
    request.model = Some(name);
    Ok(ParsedEmbed { request, model })
}

/// The instance and embedding model a name means: `instance/model`, or a
/// model some instance lists in `embedding_models` (also with or without
/// `:latest`); anything else is passed on for the client to refuse.
fn embedding_model(model: &str, client: &LlmClient) -> (Option<String>, String) {
    let providers = client.providers();
    let (instance, name) = match model.split_once('/') {
        Some((i, n)) if providers.iter().any(|p| p.name() == i) => {
            (Some(i.to_string()), n.to_string())
        }
        _ => (None, model.to_string()),
    };
    let listed = |m: &str| {
        providers.iter().any(|p| {
            instance.as_deref().is_none_or(|i| p.name() == i)
                && p.profile().embedding_models.iter().any(|e| e == m)
        })
    };
    if listed(&name) {
        return (instance, name);
    }
    let other = match name.strip_suffix(":latest") {
        Some(bare) => bare.to_string(),
        None => format!("{name}:latest"),
    };
    if listed(&other) {
        return (instance, other);
    }
    (instance, name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use llm_core::testing::{Reply, ScriptedProvider};
    use llm_router::Role;

    use super::*;

    fn client() -> LlmClient {
        let p = ScriptedProvider::new("local")
            .kind("ollama")
            .tools(true)
            .models(["llama3.2:latest", "qwen:7b"])
            .otherwise(Reply::text("x"));
        LlmClient::builder().provider(Arc::new(p)).build().unwrap()
    }

    fn chat_str(s: &str) -> Result<Parsed, OllamaError> {
        chat(s.as_bytes(), &client())
    }

    #[test]
    fn media_types_come_from_the_magic_bytes() {
        assert_eq!(media_type("iVBORw0KGgoAAAANSUhEUg"), Some("image/png"));
        assert_eq!(media_type("/9j/4AAQSkZJRgABAQ"), Some("image/jpeg"));
        assert_eq!(media_type("R0lGODlhAQABAIAAAP"), Some("image/gif"));
        // "RIFF", a size, "WEBPVP8 ".
        assert_eq!(
            media_type("UklGRiQAAABXRUJQVlA4IBgAAAAw"),
            Some("image/webp")
        );
        // "RIFF", a size, "WAVE": not an image.
        assert_eq!(media_type("UklGRiQAAABXQVZFZm10IBAAAAAB"), None);
        assert_eq!(media_type("aGVsbG8="), None);
    }

    #[test]
    fn options_map_onto_the_request() {
        let p = chat_str(
            r#"{"model":"llama3.2","messages":[{"role":"system","content":"S"},
            {"role":"user","content":"hi"}],"options":{"temperature":0.3,"top_p":0.9,
            "num_predict":-1,"stop":"END","seed":-5,"presence_penalty":1.5,"num_gpu":1},
            "format":"json","stream":false,"keep_alive":300,"think":false}"#,
        )
        .unwrap();
        assert!(!p.stream);
        let r = p.request.unwrap();
        assert_eq!(r.system_prompt.as_deref(), Some("S"));
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].role, Role::User);
        assert_eq!(r.temperature, Some(0.3));
        assert_eq!(r.top_p, Some(0.9));
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.stop, vec!["END".to_string()]);
        assert_eq!(r.seed, Some(-5));
        assert_eq!(r.presence_penalty, Some(1.5));
        assert_eq!(r.response_format, Some(ResponseFormat::JsonObject));
        // `llama3.2` matches the configured `llama3.2:latest`.
        assert_eq!(r.model.as_deref(), Some("llama3.2:latest"));
        assert_eq!(r.provider.as_deref(), Some("local"));
    }

    #[test]
    fn refusals_name_the_field() {
        for (body, field) in [
            (
                r#"{"model":"qwen:7b","messages":[],"options":{"mirostat":1}}"#,
                "options.mirostat",
            ),
            (
                r#"{"model":"qwen:7b","messages":[],"options":{"num_predict":-2}}"#,
                "options.num_predict",
            ),
            (
                r#"{"model":"qwen:7b","messages":[{"role":"user","content":"x","extra":1}]}"#,
                "messages[0].extra",
            ),
            (
                r#"{"model":"qwen:7b","messages":[],"think":"high"}"#,
                "think",
            ),
        ] {
            let e = chat_str(body).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(e.message.contains(&format!("`{field}`")), "{}", e.message);
        }
        let e = chat_str(r#"{"model":"qwen:14b","messages":[]}"#).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
        let e = chat_str(
            r#"{"model":"qwen:7b","messages":[{"role":"user","content":"x"},
            {"role":"tool","content":"r"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("messages[1]"), "{}", e.message);
    }

    #[test]
    fn tool_results_answer_the_calls_by_id_or_name() {
        let p = chat_str(
            r#"{"model":"qwen:7b","messages":[{"role":"user","content":"x"},
            {"role":"assistant","tool_calls":[
              {"function":{"name":"a","arguments":{"k":1}}},
              {"id":"c2","function":{"name":"b","arguments":{}}}]},
            {"role":"tool","tool_name":"b","content":"rb"},
            {"role":"tool","content":"ra"}]}"#,
        )
        .unwrap();
        let r = p.request.unwrap();
        let calls = &r.messages[1].tool_calls;
        assert_eq!(calls[0].id, "call_1_0");
        assert_eq!(calls[0].arguments, r#"{"k":1}"#);
        assert_eq!(calls[1].id, "c2");
        assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("c2"));
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("call_1_0"));
    }
}
