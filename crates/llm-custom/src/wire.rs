//! Reading the API's JSON answers through the configured JSON pointers.
//!
//! Reading is lenient: a pointer that does not resolve, or resolves to a value
//! of another type, counts as absent; only a missing answer text is an error.

use llm_core::{FinishReason, Usage};
use serde_json::Value;

use crate::config::CustomConfig;

/// Where the parts of an answer are, compiled from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointers {
    /// Answer text, first match wins.
    pub content: Vec<String>,
    /// Stream chunk text, first match wins.
    pub delta: Vec<String>,
    /// Input tokens.
    pub prompt_tokens: Option<String>,
    /// Output tokens.
    pub completion_tokens: Option<String>,
    /// Total tokens.
    pub total_tokens: Option<String>,
    /// Finish reason.
    pub finish_reason: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// End-of-stream marker.
    pub done: Option<String>,
    /// Error message or object.
    pub error: String,
    /// Models list array (`None`: auto-detect).
    pub models: Option<String>,
    /// Array of vectors of an embeddings answer.
    pub embeddings: String,
    /// Input tokens of an embeddings answer.
    pub embed_tokens: Option<String>,
}

impl Pointers {
    /// The pointers in effect for `config`.
    pub(crate) fn from_config(config: &CustomConfig) -> Self {
        let delta = match &config.delta_pointer {
            Some(p) => vec![p.clone()],
            None => std::iter::once("/delta".to_string())
                .chain(config.content_pointers.iter().cloned())
                .collect(),
        };
        Self {
            content: config.content_pointers.clone(),
            delta,
            prompt_tokens: config.prompt_tokens_pointer.clone(),
            completion_tokens: config.completion_tokens_pointer.clone(),
            total_tokens: config.total_tokens_pointer.clone(),
            finish_reason: config.finish_reason_pointer.clone(),
            model: config.model_pointer.clone(),
            done: config.done_pointer().map(str::to_string),
            error: config.error_pointer.clone(),
            models: config.models_pointer.clone(),
            embeddings: config.embeddings_pointer.clone(),
            embed_tokens: config.embed_tokens_pointer.clone(),
        }
    }

    /// The answer text: the first content pointer that resolves to a string.
    pub(crate) fn content<'v>(&self, v: &'v Value) -> Option<&'v str> {
        first_string(v, &self.content)
    }

    /// A stream chunk's text: the first delta pointer that resolves to a string.
    pub(crate) fn delta<'v>(&self, v: &'v Value) -> Option<&'v str> {
        first_string(v, &self.delta)
    }

    /// The token counts the answer reports.
    pub(crate) fn usage(&self, v: &Value) -> ReportedUsage {
        let count = |p: &Option<String>| p.as_deref().and_then(|p| tokens(v.pointer(p)?));
        ReportedUsage {
            prompt: count(&self.prompt_tokens),
            completion: count(&self.completion_tokens),
            total: count(&self.total_tokens),
        }
    }

    /// The finish reason, when reported.
    pub(crate) fn finish_reason(&self, v: &Value) -> Option<FinishReason> {
        let p = self.finish_reason.as_deref()?;
        v.pointer(p)?.as_str().map(finish_reason)
    }

    /// The model, when reported.
    pub(crate) fn model<'v>(&self, v: &'v Value) -> Option<&'v str> {
        let p = self.model.as_deref()?;
        v.pointer(p)?.as_str().filter(|s| !s.is_empty())
    }

    /// Whether a stream chunk marks the end: the marker is `true` or a non-empty string.
    pub(crate) fn is_done(&self, v: &Value) -> bool {
        let Some(p) = self.done.as_deref() else {
            return false;
        };
        match v.pointer(p) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.is_empty(),
            _ => false,
        }
    }

    /// The error a body carries: `(message, code)`. `null`, `false`, `""` and
    /// `{}` are no error.
    pub(crate) fn error(&self, v: &Value) -> Option<(String, Option<String>)> {
        error_at(v, &self.error)
    }

    /// The vectors of an embeddings answer: the array at the embeddings
    /// pointer, whose items are arrays of numbers or objects with an
    /// `embedding` array of numbers (OpenAI's `data` items). `Err` says what
    /// is wrong.
    pub(crate) fn vectors(&self, v: &Value) -> Result<Vec<Vec<f32>>, String> {
        let items = v
            .pointer(&self.embeddings)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("no array of vectors at `{}`", self.embeddings))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let numbers = match item {
                    Value::Object(o) => o.get("embedding"),
                    other => Some(other),
                }
                .and_then(Value::as_array)
                .ok_or_else(|| format!("item {i} at `{}` is not a vector", self.embeddings))?;
                numbers
                    .iter()
                    .map(|n| n.as_f64().map(|f| f as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| {
                        format!(
                            "vector {i} at `{}` holds something other than numbers",
                            self.embeddings
                        )
                    })
            })
            .collect()
    }

    /// The input token count of an embeddings answer, when reported.
    pub(crate) fn embed_tokens(&self, v: &Value) -> Option<u64> {
        tokens(v.pointer(self.embed_tokens.as_deref()?)?)
    }

    /// Model ids of a models list.
    pub(crate) fn model_ids(&self, v: &Value) -> Option<Vec<String>> {
        let list = match &self.models {
            Some(p) => v.pointer(p)?.as_array()?,
            None => v
                .as_array()
                .or_else(|| v.pointer("/models").and_then(Value::as_array))
                .or_else(|| v.pointer("/data").and_then(Value::as_array))?,
        };
        Some(
            list.iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o
                        .get("id")
                        .or_else(|| o.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// The first of `pointers` that resolves to a string in `v`.
pub(crate) fn first_string<'v>(v: &'v Value, pointers: &[String]) -> Option<&'v str> {
    pointers.iter().find_map(|p| v.pointer(p)?.as_str())
}

/// The error at `pointer` in `v`: a string, or an object with `message` (else
/// its JSON) and `code` or `type`.
pub(crate) fn error_at(v: &Value, pointer: &str) -> Option<(String, Option<String>)> {
    match v.pointer(pointer)? {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some((s.clone(), None)),
        Value::Object(o) if o.is_empty() => None,
        Value::Object(o) => {
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_string);
            let code = ["code", "type"].iter().find_map(|k| match o.get(*k)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            Some((message, code))
        }
        other => Some((other.to_string(), None)),
    }
}

/// A token count: a non-negative integer (or integral float, or numeric
/// string); counts beyond `u64::MAX` saturate.
fn tokens(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => {
            let s = s.trim();
            s.parse().ok().or_else(|| whole(s.parse().ok()?))
        }
        _ => None,
    }
}

/// A non-negative whole float as a count (`as` saturates at `u64::MAX`).
fn whole(f: f64) -> Option<u64> {
    (f >= 0.0 && f.is_finite() && f.fract() == 0.0).then_some(f as u64)
}

/// Maps a finish reason as APIs spell it.
pub(crate) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" | "stopped" | "end" | "eos" | "eos_token" | "end_turn" | "stop_sequence"
        | "complete" | "completed" | "finished" => FinishReason::Stop,
        "length" | "max_tokens" | "max_length" | "max_new_tokens" => FinishReason::Length,
        "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
        "content_filter" | "safety" | "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

/// Token counts an answer reported, any of which may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReportedUsage {
    /// Input tokens.
    pub prompt: Option<u64>,
    /// Output tokens.
    pub completion: Option<u64>,
    /// Total tokens.
    pub total: Option<u64>,
}

impl ReportedUsage {
    /// Keeps what `later` does not report, takes what it does.
    pub(crate) fn merge(&mut self, later: ReportedUsage) {
        self.prompt = later.prompt.or(self.prompt);
        self.completion = later.completion.or(self.completion);
        self.total = later.total.or(self.total);
    }

    /// Complete counts: reported numbers win; a missing one is derived from the
    /// total when possible, else taken from `estimate` (called at most once);
    /// a missing total is the sum. All arithmetic saturates: the numbers come
    /// from the server.
    pub(crate) fn complete(self, estimate: impl FnOnce() -> Usage) -> Usage {
        let mut estimate = Some(estimate);
        let mut estimated = None::<Usage>;
        let mut guess = || {
            *estimated.get_or_insert_with(|| estimate.take().map_or_else(Usage::default, |f| f()))
        };
        let (prompt, completion) = match (self.prompt, self.completion, self.total) {
            (Some(p), Some(c), _) => (p, c),
            (Some(p), None, Some(t)) => (p, t.saturating_sub(p)),
            (None, Some(c), Some(t)) => (t.saturating_sub(c), c),
            (None, None, Some(t)) => {
                let c = guess().completion_tokens.min(t);
                (t.saturating_sub(c), c)
            }
            (p, c, None) => (
                p.unwrap_or_else(|| guess().prompt_tokens),
                c.unwrap_or_else(|| guess().completion_tokens),
            ),
        };
        let mut usage = Usage::new(prompt, completion);
        usage.total_tokens = self
            .total
            .unwrap_or_else(|| prompt.saturating_add(completion));
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers() -> Pointers {
        Pointers {
            content: vec!["/content".into(), "/text".into(), "/choices/0/text".into()],
            delta: vec!["/delta".into()],
            prompt_tokens: Some("/usage/in".into()),
            completion_tokens: Some("/usage/out".into()),
            total_tokens: Some("/usage/total".into()),
            finish_reason: Some("/finish".into()),
            model: Some("/model".into()),
            done: Some("/done".into()),
            error: "/error".into(),
            models: None,
            embeddings: "/embeddings".into(),
            embed_tokens: Some("/usage/in".into()),
        }
    }

    #[test]
    fn vectors_are_arrays_or_objects_with_an_embedding() {
        let p = pointers();
        let body = json!({"embeddings": [[0.5, -1], [2.25, 0]], "usage": {"in": 7}});
        assert_eq!(
            p.vectors(&body).unwrap(),
            vec![vec![0.5, -1.0], vec![2.25, 0.0]]
        );
        assert_eq!(p.embed_tokens(&body), Some(7));
        let p = Pointers {
            embeddings: "/data".into(),
            embed_tokens: None,
            ..pointers()
        };
        let body = json!({"data": [{"object": "embedding", "index": 0, "embedding": [0.1]}]});
        assert_eq!(p.vectors(&body).unwrap(), vec![vec![0.1_f32]]);
        assert_eq!(p.embed_tokens(&body), None);
        let e = p.vectors(&json!({"data": [[0.1, "x"]]})).unwrap_err();
        assert!(e.contains("vector 0"), "{e}");
        let e = p.vectors(&json!({"data": [{"vector": [1]}]})).unwrap_err();
        assert!(e.contains("item 0"), "{e}");
        let e = p.vectors(&json!({"embeddings": []})).unwrap_err();
        assert!(e.contains("no array of vectors at `/data`"), "{e}");
    }

    #[test]
    fn content_pointers_are_tried_in_order() {
        let p = pointers();
        assert_eq!(p.content(&json!({"content": "a", "text": "b"})), Some("a"));
        assert_eq!(p.content(&json!({"text": "b"})), Some("b"));
        // Present but not a string counts as absent.
        assert_eq!(p.content(&json!({"content": null, "text": "b"})), Some("b"));
        assert_eq!(p.content(&json!({"choices": [{"text": "c"}]})), Some("c"));
        assert_eq!(p.content(&json!({"other": "x"})), None);
    }

    #[test]
    fn usage_is_read_and_completed() {
        let p = pointers();
        let u = p.usage(&json!({"usage": {"in": 5, "out": 2, "total": 7}}));
        assert_eq!(u.complete(|| Usage::new(0, 0)), Usage::new(5, 2));
        let u = p.usage(&json!({"usage": {"in": "5", "out": 2.0}}));
        assert_eq!(u.complete(|| Usage::new(0, 0)), Usage::new(5, 2));
        let u = p.usage(&json!({"usage": {"total": 10}}));
        assert_eq!(u.complete(|| Usage::new(99, 3)), Usage::new(7, 3));
        let u = p.usage(&json!({"usage": {"out": 4, "total": 10}}));
        assert_eq!(u.complete(|| Usage::new(99, 99)), Usage::new(6, 4));
        let u = p.usage(&json!({}));
        assert_eq!(u, ReportedUsage::default());
        assert_eq!(u.complete(|| Usage::new(3, 2)), Usage::new(3, 2));
    }

    #[test]
    fn the_estimate_is_made_once_and_only_when_needed() {
        let p = pointers();
        let calls = std::cell::Cell::new(0);
        let estimate = || {
            calls.set(calls.get() + 1);
            Usage::new(3, 2)
        };
        let u = p.usage(&json!({"usage": {"in": 5, "out": 2}}));
        assert_eq!(u.complete(estimate), Usage::new(5, 2));
        assert_eq!(calls.get(), 0);
        assert_eq!(
            ReportedUsage::default().complete(estimate),
            Usage::new(3, 2)
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn huge_counts_saturate() {
        let p = pointers();
        let max = u64::MAX;
        let u32max = u64::from(u32::MAX);
        let body = json!({"usage": {"in": max, "out": max}});
        let u = p.usage(&body).complete(|| Usage::new(1, 1));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (max, max, max)
        );

        let body = json!({"usage": {"in": u32max, "out": u32max, "total": u32max}});
        let u = p.usage(&body).complete(|| Usage::new(1, 1));
        assert_eq!((u.prompt_tokens, u.completion_tokens), (u32max, u32max));
        assert_eq!(u.total_tokens, u32max);

        // Only one side and the total, inconsistent: nothing wraps.
        let body = json!({"usage": {"in": max, "total": 1}});
        assert_eq!(
            p.usage(&body)
                .complete(|| Usage::new(1, 1))
                .completion_tokens,
            0
        );
        let body = json!({"usage": {"out": max, "total": 1}});
        assert_eq!(
            p.usage(&body).complete(|| Usage::new(1, 1)).prompt_tokens,
            0
        );
        // One side reported as the maximum, the other estimated.
        let body = json!({"usage": {"in": max}});
        let u = p.usage(&body).complete(|| Usage::new(1, max));
        assert_eq!((u.completion_tokens, u.total_tokens), (max, max));
        let body = json!({"usage": {"total": max}});
        let u = p.usage(&body).complete(|| Usage::new(max, max));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (0, max, max)
        );

        // Beyond u64 (floats, long numeric strings) saturates too.
        let body = json!({"usage": {"in": 1e30, "out": "1e300", "total": "18446744073709551616"}});
        let u = p.usage(&body);
        assert_eq!(
            (u.prompt, u.completion, u.total),
            (Some(max), Some(max), Some(max))
        );
        assert_eq!(
            p.usage(&json!({"usage": {"in": -1, "out": "NaN"}})),
            ReportedUsage::default()
        );
    }

    #[test]
    fn merging_keeps_earlier_counts() {
        let mut u = ReportedUsage {
            prompt: Some(5),
            ..Default::default()
        };
        u.merge(ReportedUsage {
            completion: Some(2),
            ..Default::default()
        });
        assert_eq!(u.complete(|| Usage::new(0, 0)), Usage::new(5, 2));
    }

    #[test]
    fn errors_done_markers_and_finish_reasons() {
        let p = pointers();
        assert_eq!(
            p.error(&json!({"error": "boom"})),
            Some(("boom".into(), None))
        );
        assert_eq!(
            p.error(&json!({"error": {"message": "slow down", "type": "rate_limit"}})),
            Some(("slow down".into(), Some("rate_limit".into())))
        );
        for none in [json!({"error": null}), json!({"error": ""}), json!({})] {
            assert_eq!(p.error(&none), None);
        }
        assert!(p.is_done(&json!({"done": true})));
        assert!(p.is_done(&json!({"done": "stop"})));
        assert!(!p.is_done(&json!({"done": false})));
        assert!(!p.is_done(&json!({"delta": "x"})));
        assert_eq!(
            p.finish_reason(&json!({"finish": "length"})),
            Some(FinishReason::Length)
        );
        assert_eq!(
            p.finish_reason(&json!({"finish": "odd"})),
            Some(FinishReason::Other("odd".into()))
        );
        assert_eq!(p.model(&json!({"model": "m"})), Some("m"));
    }

    #[test]
    fn model_lists_of_strings_or_objects() {
        let mut p = pointers();
        assert_eq!(
            p.model_ids(&json!({"models": ["a", "b"]})).unwrap(),
            ["a", "b"]
        );
        assert_eq!(p.model_ids(&json!([{"name": "x"}])).unwrap(), ["x"]);
        assert_eq!(p.model_ids(&json!({"data": [{"id": "y"}]})).unwrap(), ["y"]);
        p.models = Some("/result/list".into());
        assert_eq!(
            p.model_ids(&json!({"result": {"list": [{"id": "z", "name": "Z"}]}}))
                .unwrap(),
            ["z"]
        );
        assert_eq!(p.model_ids(&json!({"models": ["a"]})), None);
    }
}
