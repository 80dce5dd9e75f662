//! The Ollama API's response bodies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_router::{FinishReason, ToolCall, Usage};
use serde::Serialize;
use serde_json::Value;

/// An assistant message of `/api/chat`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<WireToolCall>,
}

/// A tool call: arguments as a JSON object, as Ollama sends them.
#[derive(Debug, Serialize)]
pub(crate) struct WireToolCall {
    pub(crate) id: String,
    pub(crate) function: WireFunction,
}

/// The function of a tool call.
#[derive(Debug, Serialize)]
pub(crate) struct WireFunction {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) arguments: Value,
}

impl WireToolCall {
    /// A call of the answer; arguments that are not JSON (a model may write
    /// broken JSON) are sent as a JSON string.
    pub(crate) fn new(index: usize, call: &ToolCall) -> Self {
        let arguments = if call.arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()))
        };
        Self {
            id: call.id.clone(),
            function: WireFunction {
                index,
                name: call.name.clone(),
                arguments,
            },
        }
    }
}

/// One object of `/api/chat` (a stream line, or the whole answer).
#[derive(Debug, Serialize)]
pub(crate) struct ChatChunk<'a> {
    pub(crate) model: &'a str,
    pub(crate) created_at: String,
    pub(crate) message: ChatMessage<'a>,
    pub(crate) done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<Stats>,
}

/// One object of `/api/generate`.
#[derive(Debug, Serialize)]
pub(crate) struct GenerateChunk<'a> {
    pub(crate) model: &'a str,
    pub(crate) created_at: String,
    pub(crate) response: &'a str,
    pub(crate) done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<Stats>,
}

/// The fields of a final (`done: true`) object. Durations are nanoseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Stats {
    pub(crate) done_reason: String,
    pub(crate) total_duration: u64,
    pub(crate) load_duration: u64,
    pub(crate) prompt_eval_count: u64,
    pub(crate) prompt_eval_duration: u64,
    pub(crate) eval_count: u64,
    pub(crate) eval_duration: u64,
}

impl Stats {
    /// The final fields: `total` is the time since the request arrived,
    /// `prompt` the part until the first generated token (0 when unknown);
    /// no model is loaded by the gateway, so `load_duration` is 0.
    pub(crate) fn new(
        reason: &FinishReason,
        usage: Usage,
        total: Duration,
        prompt: Duration,
    ) -> Self {
        let total_ns = nanos(total);
        let prompt_ns = nanos(prompt).min(total_ns);
        Self {
            done_reason: done_reason(reason),
            total_duration: total_ns,
            load_duration: 0,
            prompt_eval_count: usage.prompt_tokens,
            prompt_eval_duration: prompt_ns,
            eval_count: usage.completion_tokens,
            eval_duration: total_ns - prompt_ns,
        }
    }

    /// A model-load answer (nothing to generate): `done_reason: "load"`.
    pub(crate) fn load(total: Duration) -> Self {
        Self {
            done_reason: "load".into(),
            total_duration: nanos(total),
            load_duration: 0,
            prompt_eval_count: 0,
            prompt_eval_duration: 0,
            eval_count: 0,
            eval_duration: 0,
        }
    }
}

/// Ollama's `done_reason`: `stop` (also after tool calls, as Ollama
/// reports them), `length`, or the reason's own name.
pub(crate) fn done_reason(r: &FinishReason) -> String {
    match r {
        FinishReason::Stop | FinishReason::ToolCalls => "stop".into(),
        FinishReason::Length => "length".into(),
        other => other.as_str().to_string(),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `/api/embed`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct EmbedResponse<'a> {
    pub(crate) model: &'a str,
    pub(crate) embeddings: &'a [Vec<f32>],
    pub(crate) total_duration: u64,
    pub(crate) load_duration: u64,
    pub(crate) prompt_eval_count: u64,
}

/// `/api/embeddings`' (legacy) answer.
#[derive(Debug, Serialize)]
pub(crate) struct LegacyEmbedResponse<'a> {
    pub(crate) embedding: &'a [f32],
}

/// One model of `/api/tags`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TagModel {
    pub(crate) name: String,
    pub(crate) model: String,
    pub(crate) modified_at: String,
    pub(crate) size: u64,
    pub(crate) digest: String,
    pub(crate) details: Details,
}

/// A model's `details`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Details {
    pub(crate) parent_model: &'static str,
    pub(crate) format: &'static str,
    pub(crate) family: String,
    pub(crate) families: Vec<String>,
    pub(crate) parameter_size: &'static str,
    pub(crate) quantization_level: &'static str,
}

/// `/api/tags`' answer.
#[derive(Debug, Serialize)]
pub(crate) struct Tags {
    pub(crate) models: Vec<TagModel>,
}

/// `/api/show`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct Show {
    pub(crate) modelfile: String,
    pub(crate) parameters: &'static str,
    pub(crate) template: &'static str,
    pub(crate) details: Details,
    pub(crate) model_info: serde_json::Map<String, Value>,
    pub(crate) capabilities: Vec<&'static str>,
    pub(crate) modified_at: String,
}

/// Unix time as RFC 3339 in UTC with nanoseconds, as Ollama writes `created_at`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, day) = civil(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `created_at` of now.
pub(crate) fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_693_170_165, 499_127_000);
        assert_eq!(rfc3339(t), "2023-08-27T21:02:45.499127000Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn tool_calls_carry_arguments_as_objects() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Tokyo"}"#.into(),
        };
        let v = serde_json::to_value(WireToolCall::new(0, &call)).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"id":"call_1","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}})
        );
    }
}
