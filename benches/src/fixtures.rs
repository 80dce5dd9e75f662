//! Wire bytes the fake upstreams answer with: the exact OpenAI and Ollama
//! examples of `shared/protocols.md` (§2.6, §3.10), and long streams built
//! from the same event shapes for throughput measurements.

use bytes::Bytes;

/// OpenAI's non-streaming answer and its streamed form (protocols.md §2.6).
pub use llm_openai::fixtures::{COMPLETION as OPENAI_COMPLETION, STREAM as OPENAI_STREAM_EVENTS};

/// The model every fixture names.
pub const MODEL: &str = "gpt-4o-mini";

/// A model name the fake upstream answers with a long stream
/// ([`LONG_STREAM_CHUNKS`] content chunks) when asked to stream.
pub const MODEL_LONG_STREAM: &str = "bench-long-stream";

/// Content chunks of the long stream.
pub const LONG_STREAM_CHUNKS: usize = 200;

/// A model name the fake upstream answers, when asked to stream, with the
/// first chunk only, then holds the stream open until the client goes.
pub const MODEL_HELD_STREAM: &str = "bench-held-stream";

/// `GET /v1/models` answer.
pub const OPENAI_MODELS: &str = r#"{
  "object": "list",
  "data": [
    {
      "id": "gpt-4o-mini",
      "object": "model",
      "created": 1721172741,
      "owned_by": "system"
    }
  ]
}
"#;

/// The Ollama `/api/chat` stream of §3.10, one line per element.
pub const OLLAMA_STREAM_LINES: [&str; 3] = [
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.141516171Z\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n",
];

/// The Ollama non-streaming `/api/chat` answer.
pub const OLLAMA_COMPLETION: &str = "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n";

/// `GET /api/version` answer.
pub const OLLAMA_VERSION: &str = "{\"version\":\"0.11.4\"}";

/// The request body a benchmark client sends (§2.6, non-streaming).
pub fn openai_request_body(stream: bool) -> Bytes {
    openai_request_body_for(MODEL, stream)
}

/// [`openai_request_body`] for another model.
pub fn openai_request_body_for(model: &str, stream: bool) -> Bytes {
    let tail = if stream {
        r#","stream":true,"stream_options":{"include_usage":true}}"#
    } else {
        "}"
    };
    Bytes::from(format!(
        r#"{{"model":"{model}","messages":[{{"role":"system","content":"You are a terse assistant."}},{{"role":"user","content":"Say hello."}}],"max_tokens":50,"temperature":0.2{tail}"#
    ))
}

/// Fragments the long streams cycle through (English and Chinese, as real
/// answers mix them; one or two tokens each).
const FRAGMENTS: [&str; 8] = [
    "Hello",
    " world",
    ",",
    " this",
    " is",
    " 你好",
    "世界",
    " streaming",
];

/// The events of the long OpenAI stream: the first chunk of §2.6, `n`
/// content chunks shaped like its second, then its finish, usage and
/// `[DONE]` events. Each element is one event.
pub fn openai_long_stream(n: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(n + 4);
    out.push(Bytes::from_static(OPENAI_STREAM_EVENTS[0].as_bytes()));
    for i in 0..n {
        let text = FRAGMENTS[i % FRAGMENTS.len()];
        out.push(Bytes::from(format!(
            "data: {{\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"p8Kd\"}}\n\n"
        )));
    }
    for e in &OPENAI_STREAM_EVENTS[3..] {
        out.push(Bytes::from_static(e.as_bytes()));
    }
    out
}

/// The lines of the long Ollama stream: `n` lines shaped like the first of
/// §3.10, then its final `done: true` line.
pub fn ollama_long_stream(n: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(n + 1);
    for i in 0..n {
        let text = FRAGMENTS[i % FRAGMENTS.len()];
        out.push(Bytes::from(format!(
            "{{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"done\":false}}\n"
        )));
    }
    out.push(Bytes::from_static(OLLAMA_STREAM_LINES[2].as_bytes()));
    out
}

/// The text a long stream of `n` fragments carries.
pub fn long_stream_text(n: usize) -> String {
    (0..n).map(|i| FRAGMENTS[i % FRAGMENTS.len()]).collect()
}

/// Concatenates parts and cuts the result into `frame`-byte pieces, as a
/// socket read would deliver a body that was written quickly.
pub fn reframe(parts: &[Bytes], frame: usize) -> Vec<Bytes> {
    let all: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let all = Bytes::from(all);
    let frame = frame.max(1);
    (0..all.len())
        .step_by(frame)
        .map(|start| all.slice(start..(start + frame).min(all.len())))
        .collect()
}

/// Total length of some parts.
pub fn total_len(parts: &[Bytes]) -> usize {
    parts.iter().map(Bytes::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_valid_json_and_streams_are_well_formed() {
        let v: serde_json::Value = serde_json::from_str(OPENAI_COMPLETION).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
        for e in &OPENAI_STREAM_EVENTS[..5] {
            let json = e.strip_prefix("data: ").unwrap().trim_end();
            serde_json::from_str::<serde_json::Value>(json).unwrap();
            assert!(e.ends_with("\n\n"));
        }
        for l in ollama_long_stream(5) {
            serde_json::from_slice::<serde_json::Value>(&l).unwrap();
        }
        let body: serde_json::Value = serde_json::from_slice(&openai_request_body(true)).unwrap();
        assert_eq!(body["stream"], true);
        let long = openai_long_stream(10);
        assert_eq!(long.len(), 14);
        let framed = reframe(&long, 100);
        assert_eq!(total_len(&framed), total_len(&long));
        assert!(framed.iter().all(|f| f.len() <= 100));
    }
}
