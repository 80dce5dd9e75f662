//! An embeddings body → an [`EmbeddingRequest`].

use llm_router::{EmbeddingRequest, LlmClient};
use serde_json::Value;

use super::wire::{Encoding, FIELDS};
use crate::error::ApiError;

/// A parsed embeddings request.
#[derive(Debug)]
pub struct Parsed {
    /// What the client is asked.
    pub request: EmbeddingRequest,
    /// How the vectors are written.
    pub encoding: Encoding,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param), message)
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
    if let Some(key) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let mut e = invalid(
            key,
            format!("Unrecognized request argument supplied: {key}"),
        );
        e.code = Some("unknown_parameter");
        return Err(e);
    }
    let get = |k: &str| o.get(k).filter(|v| !v.is_null());
    let model = match get("model") {
        Some(Value::String(m)) => m.trim().to_string(),
        Some(_) => {
            return Err(invalid(
                "model",
                "Invalid type for 'model': expected a string.",
            ))
        }
        None => return Err(invalid("model", "You must provide a model parameter.")),
    };
    let token_arrays = || {
        let mut e = invalid(
            "input",
            "Invalid 'input': token arrays are not supported by this gateway (its providers \
             tokenize differently); send the text as a string or a list of strings.",
        );
        e.code = Some("unsupported_parameter");
        e
    };
    let inputs: Vec<String> = match get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => {
            let mut out = Vec::with_capacity(list.len());
            for v in list {
                match v {
                    Value::String(s) => out.push(s.clone()),
                    Value::Number(_) | Value::Array(_) => return Err(token_arrays()),
                    _ => {
                        return Err(invalid(
                            "input",
                            "Invalid 'input': expected a string or an array of strings.",
                        ))
                    }
                }
            }
            out
        }
        Some(_) => {
            return Err(invalid(
                "input",
                "Invalid 'input': expected a string or an array of strings.",
            ))
        }
        None => return Err(invalid("input", "Missing required parameter: 'input'.")),
    };
    if inputs.is_empty() {
        return Err(invalid(
            "input",
            "Invalid 'input': empty array. Expected an array with minimum length 1.",
        ));
    }
    if inputs.iter().any(String::is_empty) {
        return Err(invalid(
            "input",
            "Invalid 'input': input strings must not be empty.",
        ));
    }
    let encoding = match get("encoding_format") {
        None => Encoding::Float,
        Some(Value::String(f)) if f == "float" => Encoding::Float,
        Some(Value::String(f)) if f == "base64" => Encoding::Base64,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!(
                    "Invalid value for 'encoding_format': {other}. Supported values are: 'float' \
                     and 'base64'."
                ),
            ))
        }
    };
    let mut request = EmbeddingRequest::new(inputs);
    if let Some(d) = get("dimensions") {
        let d = d
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| *d >= 1)
            .ok_or_else(|| {
                invalid(
                    "dimensions",
                    "Invalid 'dimensions': expected a positive integer.",
                )
            })?;
        request.dimensions = Some(d);
    }
    if let Some(u) = get("user") {
        let u = u
            .as_str()
            .ok_or_else(|| invalid("user", "Invalid type for 'user': expected a string."))?;
        request.user = Some(u.to_string());
    }
    apply_model(&model, client, &mut request);
    Ok(Parsed { request, encoding })
}

/// `auto` or empty: the default embedding model; `instance/model` (when
/// `instance` is configured and the whole name is no model of its own): that
/// instance first; else the model name. Unknown models are the client's
/// `UnknownEmbeddingModel` (a 404 naming the model).
fn apply_model(model: &str, client: &LlmClient, req: &mut EmbeddingRequest) {
    if model.is_empty() || model.eq_ignore_ascii_case("auto") {
        return;
    }
    let providers = client.providers();
    let listed = |m: &str| {
        providers
            .iter()
            .any(|p| p.profile().embedding_models.iter().any(|e| e == m))
    };
    if !listed(model) {
        if let Some((instance, name)) = model.split_once('/') {
            if providers.iter().any(|p| p.name() == instance) {
                req.provider = Some(instance.to_string());
                if !name.is_empty() && !name.eq_ignore_ascii_case("auto") {
                    req.model = Some(name.to_string());
                }
                return;
            }
        }
    }
    req.model = Some(model.to_string());
}
