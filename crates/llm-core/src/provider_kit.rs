//! Small pieces every provider crate needs that know no provider's API:
//! the model a request is sent with ([`ProviderProfile::model_for`],
//! [`ProviderProfile::embedding_model_for`]) and tool-call arguments between
//! the JSON text of [`ToolCall::arguments`](crate::ToolCall) and the JSON
//! object some APIs carry ([`arguments_object`], [`arguments_text`]).
//!
//! ```
//! use llm_core::provider_kit::{arguments_object, arguments_text};
//! use serde_json::json;
//!
//! assert_eq!(arguments_object("").unwrap(), json!({}));
//! assert_eq!(arguments_object(r#"{"city":"Paris"}"#).unwrap(), json!({"city": "Paris"}));
//! assert!(arguments_object("[1]").unwrap_err().to_string().contains("not a JSON object"));
//! assert_eq!(arguments_text(Some(&json!({"city": "Paris"}))).unwrap(), r#"{"city":"Paris"}"#);
//! assert_eq!(arguments_text(None).unwrap(), "{}");
//! ```

use serde_json::Value;

use crate::embed::EmbeddingRequest;
use crate::error::ProviderError;
use crate::provider::ProviderProfile;
use crate::types::LlmRequest;

impl ProviderProfile {
    /// The model a provider sends `req` with: the request's own (the client
    /// has already resolved it for the instance), else, for a direct call
    /// that names none, the default model (`default_model`, else the first of
    /// `models`). Without either, an `Unsupported` error from `provider`
    /// before anything is sent.
    pub fn model_for(&self, provider: &str, req: &LlmRequest) -> Result<String, ProviderError> {
        req.model
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| self.resolve_model(None))
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ProviderError::unsupported(
                    provider,
                    "no model: the request names none and neither `default_model` nor `models` \
                     is configured",
                )
            })
    }

    /// The embedding model of `req`: its own, else the first of
    /// `embedding_models`. Without either, an `Unsupported` error naming the
    /// `model` field.
    pub fn embedding_model_for(
        &self,
        provider: &str,
        req: &EmbeddingRequest,
    ) -> Result<String, ProviderError> {
        req.model
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| self.embedding_models.first().cloned())
            .ok_or_else(|| {
                ProviderError::unsupported(
                    provider,
                    "model: the request names no embedding model and the provider has no \
                     `embedding_models`",
                )
            })
    }
}

/// Why tool-call arguments are not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentsError {
    /// The text is not JSON (serde's message).
    #[error("not valid JSON ({0})")]
    Invalid(String),
    /// The JSON is another kind of value ([`json_kind`]: `an array`, …).
    #[error("{0}, not a JSON object")]
    NotAnObject(&'static str),
}

/// Tool-call arguments (JSON text) as the JSON object an API carries
/// (Anthropic's `tool_use.input`, Ollama's `function.arguments`): blank text
/// is `{}`; anything but a JSON object is an error.
pub fn arguments_object(text: &str) -> Result<Value, ArgumentsError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(ArgumentsError::NotAnObject(json_kind(&other))),
        Err(e) => Err(ArgumentsError::Invalid(e.to_string())),
    }
}

/// An API's JSON-object arguments as the JSON text of
/// [`ToolCall::arguments`](crate::ToolCall): an object is written compact; a
/// missing or `null` value is `{}`; anything else is an error.
pub fn arguments_text(value: Option<&Value>) -> Result<String, ArgumentsError> {
    match value {
        None | Some(Value::Null) => Ok("{}".to_string()),
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        Some(other) => Err(ArgumentsError::NotAnObject(json_kind(other))),
    }
}

/// The kind of a JSON value with its article, for messages: `null`,
/// `a boolean`, `a number`, `a string`, `an array`, `an object`.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_round_trip_between_text_and_object() {
        assert_eq!(arguments_object("  ").unwrap(), json!({}));
        let object = arguments_object(r#"{ "city": "巴黎", "days": 2 }"#).unwrap();
        assert_eq!(object, json!({"city": "巴黎", "days": 2}));
        let text = arguments_text(Some(&object)).unwrap();
        assert_eq!(arguments_object(&text).unwrap(), object);
        assert_eq!(arguments_text(Some(&Value::Null)).unwrap(), "{}");
        assert_eq!(arguments_text(None).unwrap(), "{}");
    }

    #[test]
    fn arguments_that_are_not_an_object_say_what_they_are() {
        assert_eq!(
            arguments_object("[1]"),
            Err(ArgumentsError::NotAnObject("an array"))
        );
        assert_eq!(
            arguments_object("[1]").unwrap_err().to_string(),
            "an array, not a JSON object"
        );
        let e = arguments_object("{\"a\":").unwrap_err();
        assert!(matches!(e, ArgumentsError::Invalid(_)), "{e:?}");
        assert!(e.to_string().starts_with("not valid JSON ("), "{e}");
        assert_eq!(
            arguments_text(Some(&json!(7))),
            Err(ArgumentsError::NotAnObject("a number"))
        );
    }

    #[test]
    fn the_request_model_comes_first_then_the_default() {
        let profile = ProviderProfile {
            models: vec!["a".into(), "b".into()],
            default_model: Some("b".into()),
            embedding_models: vec!["e1".into()],
            ..Default::default()
        };
        let mut req = LlmRequest::plain(vec![crate::Message::user("hi")]);
        assert_eq!(profile.model_for("p", &req).unwrap(), "b");
        req.model = Some(String::new());
        assert_eq!(profile.model_for("p", &req).unwrap(), "b");
        req.model = Some("unlisted".into());
        assert_eq!(profile.model_for("p", &req).unwrap(), "unlisted");
        let e = ProviderProfile::default()
            .model_for("p", &LlmRequest::plain(vec![crate::Message::user("hi")]))
            .unwrap_err();
        assert_eq!(e.kind, crate::ProviderErrorKind::Unsupported);
        assert!(e.message.contains("default_model"), "{e}");

        let mut embed = EmbeddingRequest::new(["x"]);
        assert_eq!(profile.embedding_model_for("p", &embed).unwrap(), "e1");
        embed.model = Some("e2".into());
        assert_eq!(profile.embedding_model_for("p", &embed).unwrap(), "e2");
        let e = ProviderProfile::default()
            .embedding_model_for("p", &EmbeddingRequest::new(["x"]))
            .unwrap_err();
        assert!(e.message.starts_with("model:"), "{e}");
    }
}
