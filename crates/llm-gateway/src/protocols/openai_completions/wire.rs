//! The wire of legacy Completions: request fields the door knows, and the
//! `text_completion` object (<https://platform.openai.com/docs/api-reference/completions/object>;
//! openai-python `types/completion.py`, `completion_choice.py`,
//! `completion_usage.py`). Chunks of a stream are the same object with the
//! text delta, `finish_reason` null until the last one.

use llm_router::Usage;
use serde_json::{json, Value};

/// Request fields the door maps into the router's request.
pub const MAPPED_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "user",
    "stream",
    "stream_options",
    "n",
    "frequency_penalty",
    "presence_penalty",
];

/// OpenAI-specific fields sent verbatim to OpenAI-kind upstreams (so such
/// requests are served only by providers that pass them through).
pub const PASSTHROUGH_FIELDS: &[&str] = &["logit_bias"];

/// Fields refused with a 400 naming them, unless null or their neutral value
/// (`suffix` empty, `echo` false, `best_of` 1).
pub const REFUSED_FIELDS: &[&str] = &["suffix", "echo", "best_of", "logprobs"];

/// `cmpl-` and 29 random alphanumerics.
pub fn completion_id() -> String {
    let mut id = String::with_capacity(34);
    id.push_str("cmpl-");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(29));
    id
}

/// `usage`.
pub fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// A `text_completion` object (or chunk) with one choice, and `usage` when given.
pub fn object(
    id: &str,
    created: u64,
    model: &str,
    text: &str,
    finish_reason: Option<&str>,
    usage_value: Option<&Usage>,
) -> Value {
    let mut v = json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish_reason}],
    });
    if let (Some(u), Value::Object(m)) = (usage_value, &mut v) {
        m.insert("usage".into(), usage(u));
    }
    v
}
