//! A legacy Completions body → an [`LlmRequest`].

use llm_router::{LlmClient, LlmRequest, Message};
use serde_json::{Map, Value};

use super::wire::{MAPPED_FIELDS, PASSTHROUGH_FIELDS, REFUSED_FIELDS};
use crate::error::ApiError;
use crate::protocols::openai_chat::convert::{penalty, resolve_model};

/// Most stop sequences OpenAI accepts.
const MAX_STOP: usize = 4;

/// A parsed completions request.
#[derive(Debug)]
pub struct Parsed {
    /// What the client is asked.
    pub request: LlmRequest,
    /// Whether to answer with server-sent events.
    pub stream: bool,
    /// Whether a stream ends with a usage chunk.
    pub include_usage: bool,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param), message)
}

fn unsupported(param: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid(Some(param), message);
    e.code = Some("unsupported_parameter");
    e
}

fn wrong_type(param: &str, expected: &str) -> ApiError {
    let mut e = invalid(
        param,
        format!("Invalid type for '{param}': expected {expected}."),
    );
    e.code = Some("invalid_type");
    e
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
    let mut extra = Map::new();
    for (key, v) in o {
        let key = key.as_str();
        if MAPPED_FIELDS.contains(&key) {
            continue;
        }
        if PASSTHROUGH_FIELDS.contains(&key) {
            if !v.is_null() {
                extra.insert(key.to_string(), v.clone());
            }
            continue;
        }
        if REFUSED_FIELDS.contains(&key) {
            let neutral = match key {
                "suffix" => v.is_null() || v.as_str() == Some(""),
                "echo" => v.is_null() || v.as_bool() == Some(false),
                "best_of" => v.is_null() || v.as_u64() == Some(1),
                _ => v.is_null(),
            };
            if neutral {
                continue;
            }
            let why = match key {
                "suffix" => "insertion (text after the completion) is not supported by this gateway",
                "echo" => "echoing the prompt is not supported by this gateway",
                "best_of" => "this gateway generates one completion per request; best_of must be 1",
                _ => "log probabilities of legacy completions are not supported by this gateway (use /v1/chat/completions with logprobs)",
            };
            return Err(unsupported(key, format!("Invalid '{key}': {why}.")));
        }
        let mut e = invalid(
            key,
            format!("Unrecognized request argument supplied: {key}"),
        );
        e.code = Some("unknown_parameter");
        return Err(e);
    }
    let get = |k: &str| o.get(k).filter(|v| !v.is_null());

    let model = match get("model") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(wrong_type("model", "a string")),
        None => return Err(invalid("model", "You must provide a model parameter.")),
    };
    let prompt =
        match get("prompt") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Array(list)) => match list.as_slice() {
                [Value::String(p)] => p.clone(),
                [_] => return Err(unsupported(
                    "prompt",
                    "Invalid 'prompt': token arrays are not supported by this gateway; send the \
                     prompt as a string.",
                )),
                _ => {
                    return Err(unsupported(
                        "prompt",
                        format!(
                        "Invalid 'prompt': this gateway completes one prompt per request, got {} \
                         (send one request per prompt).",
                        list.len()
                    ),
                    ))
                }
            },
            Some(_) => return Err(wrong_type("prompt", "a string or an array of one string")),
            None => return Err(invalid("prompt", "Missing required parameter: 'prompt'.")),
        };

    let mut req = LlmRequest::plain(vec![Message::user(prompt)]);
    if let Some(m) = get("max_tokens") {
        let n = m
            .as_u64()
            .ok_or_else(|| wrong_type("max_tokens", "a positive integer"))?;
        if n == 0 {
            return Err(invalid(
                "max_tokens",
                "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            ));
        }
        req.max_tokens = Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    req.temperature = number(get("temperature"), "temperature", 0.0, 2.0)?;
    req.top_p = number(get("top_p"), "top_p", 0.0, 1.0)?;
    req.frequency_penalty = penalty(
        "frequency_penalty",
        number(
            get("frequency_penalty"),
            "frequency_penalty",
            f32::MIN,
            f32::MAX,
        )?,
    )?;
    req.presence_penalty = penalty(
        "presence_penalty",
        number(
            get("presence_penalty"),
            "presence_penalty",
            f32::MIN,
            f32::MAX,
        )?,
    )?;
    req.stop = match get("stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong_type("stop", "a string or an array of strings"))?,
        Some(_) => return Err(wrong_type("stop", "a string or an array of strings")),
    };
    if req.stop.len() > MAX_STOP {
        return Err(invalid(
            "stop",
            format!("Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, but got {} instead.", req.stop.len()),
        ));
    }
    if req.stop.iter().any(String::is_empty) {
        return Err(invalid(
            "stop",
            "Invalid 'stop': stop sequences must not be empty.",
        ));
    }
    if let Some(s) = get("seed") {
        req.seed = Some(s.as_i64().ok_or_else(|| wrong_type("seed", "an integer"))?);
    }
    if let Some(u) = get("user") {
        req.user = Some(
            u.as_str()
                .ok_or_else(|| wrong_type("user", "a string"))?
                .to_string(),
        );
    }
    if let Some(n) = get("n") {
        if n.as_u64() != Some(1) {
            return Err(unsupported(
                "n",
                "Invalid 'n': this gateway returns exactly one choice; n must be 1 (send n requests for n answers).",
            ));
        }
    }
    req.extra = extra;
    let stream = match get("stream") {
        Some(s) => s
            .as_bool()
            .ok_or_else(|| wrong_type("stream", "a boolean"))?,
        None => false,
    };
    let include_usage = match get("stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(invalid(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ))
        }
        Some(so) => so
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    resolve_model(&model, client, &mut req)?;
    llm_router::validate(&req).map_err(|v| ApiError::invalid(Some(v.field), v.to_string()))?;
    Ok(Parsed {
        request: req,
        stream,
        include_usage,
    })
}

/// An optional number in `min..=max`.
fn number(v: Option<&Value>, param: &str, min: f32, max: f32) -> Result<Option<f32>, ApiError> {
    let Some(v) = v else { return Ok(None) };
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
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use llm_core::testing::{Reply, ScriptedProvider};
    use serde_json::json;

    use super::*;

    fn client() -> LlmClient {
        let p = ScriptedProvider::new("cloud")
            .kind("openai")
            .models(["gpt-3.5-turbo-instruct"])
            .otherwise(Reply::text("x"));
        LlmClient::builder().provider(Arc::new(p)).build().unwrap()
    }

    fn parse_json(v: Value) -> Result<Parsed, ApiError> {
        parse(v.to_string().as_bytes(), &client())
    }

    #[test]
    fn maps_the_prompt_and_options_and_leaves_max_tokens_unset() {
        let p = parse_json(
            json!({"model":"gpt-3.5-turbo-instruct","prompt":["Once upon"],
            "stop":["\n"],"seed":-3,"temperature":0.1,"user":"u","n":1,"echo":false,"best_of":1}),
        )
        .unwrap();
        let r = p.request;
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].content, "Once upon");
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.stop, vec!["\n".to_string()]);
        assert_eq!(r.seed, Some(-3));
        assert_eq!(r.temperature, Some(0.1));
        assert_eq!(r.user.as_deref(), Some("u"));
        assert!(!p.stream);
    }

    #[test]
    fn refusals_name_the_field() {
        for (body, param) in [
            (json!({"model":"auto","prompt":["a","b"]}), "prompt"),
            (json!({"model":"auto","prompt":[1,2]}), "prompt"),
            (json!({"model":"auto","prompt":"a","suffix":"z"}), "suffix"),
            (json!({"model":"auto","prompt":"a","echo":true}), "echo"),
            (json!({"model":"auto","prompt":"a","best_of":2}), "best_of"),
            (
                json!({"model":"auto","prompt":"a","logprobs":2}),
                "logprobs",
            ),
            (json!({"model":"auto","prompt":"a","n":2}), "n"),
            (
                json!({"model":"auto","prompt":"a","max_tokens":0}),
                "max_tokens",
            ),
            (
                json!({"model":"auto","prompt":"a","whatever":0}),
                "whatever",
            ),
            (json!({"model":"auto"}), "prompt"),
        ] {
            let e = parse_json(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.status.as_u16(), 400);
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
            assert!(e.message.contains(param), "{}", e.message);
        }
    }
}
