//! Exact wire bytes of the upstream APIs the chaos server speaks.
//!
//! Every template is copied from `shared/protocols.md` (OpenAI §2.6, Ollama
//! §3.9–3.10); only the generated text is substituted. OpenAI bodies are
//! pretty-printed, its stream chunks compact; Ollama writes compact JSON the
//! way Go's `encoding/json` does (`<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`).

/// The answer a healthy upstream gives to `prompt`: a pure function of the
/// prompt, identical for every provider kind, with non-ASCII text and the
/// characters Go escapes, so byte-level encoding and decoding are exercised.
pub fn answer_for(prompt: &str) -> String {
    let tag = prompt.split_whitespace().next().unwrap_or("");
    format!("答复 {tag}: 秋风起，落叶<飘>&舞 — \"ok\" ✓")
}

/// The text a *faulty* reply carries (cut streams, error-terminated streams,
/// cut bodies): never equal to [`answer_for`], so a client that accepted or
/// cached a broken answer is caught by comparing with the correct one.
pub fn poisoned_for(prompt: &str) -> String {
    format!("POISON {}", answer_for(prompt))
}

/// Splits `text` into about `parts` fragments on character boundaries.
pub fn fragments(text: &str, parts: usize) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let parts = parts.clamp(1, chars.len().max(1));
    let per = chars.len().div_ceil(parts).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i].0;
        let end = chars.get(i + per).map_or(text.len(), |c| c.0);
        out.push(&text[start..end]);
        i += per;
    }
    out
}

/// A JSON string literal as `serde_json` writes it (OpenAI's encoding).
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A JSON string literal as Go's `encoding/json` writes it (Ollama's encoding).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// OpenAI Chat Completions bytes (protocols.md §2.6).
pub mod openai {
    use super::json_string;

    /// The model OpenAI reports in the §2.6 captures.
    pub const MODEL: &str = "gpt-4o-mini-2024-07-18";

    /// `x-request-id` of the §2.6 non-streaming capture.
    pub const REQUEST_ID: &str = "req_7b4c1e2f9a0d4e6b8c3f5a1d2e9b0c47";

    /// The pretty-printed `chat.completion` body of §2.6 with `content` replaced.
    pub fn completion(content: &str) -> String {
        format!(
            r#"{{
  "id": "chatcmpl-C9xQ2d7LkzP4mWm1nHqYt0bR8sVjE",
  "object": "chat.completion",
  "created": 1756300000,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {{
      "index": 0,
      "message": {{
        "role": "assistant",
        "content": {content},
        "refusal": null,
        "annotations": []
      }},
      "logprobs": null,
      "finish_reason": "stop"
    }}
  ],
  "usage": {{
    "prompt_tokens": 20,
    "completion_tokens": 2,
    "total_tokens": 22,
    "prompt_tokens_details": {{
      "cached_tokens": 0,
      "audio_tokens": 0
    }},
    "completion_tokens_details": {{
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }}
  }},
  "service_tier": "default",
  "system_fingerprint": "fp_560af6e559"
}}"#,
            content = json_string(content)
        )
    }

    const CHUNK_HEAD: &str = r#"{"id":"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs","object":"chat.completion.chunk","created":1756300001,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","#;

    fn event(json: &str) -> Vec<u8> {
        format!("data: {json}\n\n").into_bytes()
    }

    fn usage_field(include_usage: bool) -> &'static str {
        if include_usage {
            r#","usage":null"#
        } else {
            ""
        }
    }

    /// The first chunk (`role`, empty content).
    pub fn role_event(include_usage: bool) -> Vec<u8> {
        event(&format!(
            r#"{CHUNK_HEAD}"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}]{},"obfuscation":"Qm3xT"}}"#,
            usage_field(include_usage)
        ))
    }

    /// One text fragment.
    pub fn content_event(text: &str, include_usage: bool) -> Vec<u8> {
        event(&format!(
            r#"{CHUNK_HEAD}"choices":[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}]{},"obfuscation":"p8Kd"}}"#,
            json_string(text),
            usage_field(include_usage)
        ))
    }

    /// The finish chunk.
    pub fn finish_event(include_usage: bool) -> Vec<u8> {
        event(&format!(
            r#"{CHUNK_HEAD}"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]{},"obfuscation":"V1"}}"#,
            usage_field(include_usage)
        ))
    }

    /// The usage chunk (only with `stream_options.include_usage`).
    pub fn usage_event() -> Vec<u8> {
        event(&format!(
            r#"{CHUNK_HEAD}"choices":[],"usage":{{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}},"obfuscation":"a7Tq"}}"#
        ))
    }

    /// `data: [DONE]` and its blank line.
    pub const DONE: &[u8] = b"data: [DONE]\n\n";

    /// A mid-stream error payload (§2.3, the form the SDK recognises).
    pub fn error_event() -> Vec<u8> {
        event(
            r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
        )
    }

    /// A complete stream for `text`: role chunk, one chunk per fragment,
    /// finish chunk, usage chunk when asked for, `[DONE]` — one element per event.
    pub fn stream_events(text: &str, include_usage: bool) -> Vec<Vec<u8>> {
        let mut out = vec![role_event(include_usage)];
        for f in super::fragments(text, 4) {
            out.push(content_event(f, include_usage));
        }
        out.push(finish_event(include_usage));
        if include_usage {
            out.push(usage_event());
        }
        out.push(DONE.to_vec());
        out
    }

    /// An SSE comment line of `len` bytes (ignored by conforming parsers).
    pub fn padding_comment(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 4);
        v.extend_from_slice(b": ");
        v.resize(len + 2, b'x');
        v.extend_from_slice(b"\n\n");
        v
    }

    /// `GET /v1/models` (§2.4).
    pub const MODELS: &str = r#"{
  "object": "list",
  "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system", "shutdown_date": null}
  ]
}"#;

    /// Error body for `status` (real captures of §2.5 where there is one).
    pub fn error_body(status: u16) -> &'static str {
        match status {
            401 => r#"{"error":{"message":"Missing bearer or basic authentication in header","type":"invalid_request_error","param":null,"code":null}}"#,
            404 => r#"{"error":{"message":"The model `gpt-4o` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
            429 => r#"{"error":{"message":"Request too large for gpt-4o in organization org-XXXX on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            // A proxy in front of the API answers with HTML.
            502 => "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
            // Anthropic's overloaded body (the only real 529 capture).
            529 => r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            _ => r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
        }
    }
}

/// Ollama native API bytes (protocols.md §3.4, §3.7, §3.9, §3.10).
pub mod ollama {
    use super::go_json_string;

    /// The model of the §3.10 captures.
    pub const MODEL: &str = "llama3.2";

    /// The non-streaming `/api/chat` answer (§3.10), `content` replaced; no trailing newline.
    pub fn chat(content: &str) -> String {
        format!(
            r#"{{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{{"role":"assistant","content":{}}},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}}"#,
            go_json_string(content)
        )
    }

    /// One `"done":false` stream line with a fragment.
    pub fn line(text: &str) -> Vec<u8> {
        format!(
            "{{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"done\":false}}\n",
            go_json_string(text)
        )
        .into_bytes()
    }

    /// The final `"done":true` line with the metrics.
    pub fn done_line() -> Vec<u8> {
        b"{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.160129032Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":412345678,\"load_duration\":23456789,\"prompt_eval_count\":31,\"prompt_eval_duration\":98765432,\"eval_count\":2,\"eval_duration\":45678901}\n".to_vec()
    }

    /// The mid-stream error line (§3.9).
    pub const ERROR_LINE: &[u8] =
        b"{\"error\":\"an error was encountered while running the model\"}\n";

    /// A complete NDJSON stream for `text`, one element per line.
    pub fn stream_lines(text: &str) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = super::fragments(text, 4).into_iter().map(line).collect();
        out.push(done_line());
        out
    }

    /// A `"done":false` line with empty content and an unknown field of `len` bytes.
    pub fn padding_line(len: usize) -> Vec<u8> {
        let pad = "x".repeat(len);
        format!(
            "{{\"model\":\"llama3.2\",\"created_at\":\"2025-08-27T10:15:02.123456789Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":false,\"padding\":\"{pad}\"}}\n"
        )
        .into_bytes()
    }

    /// `GET /api/version` (§3.7).
    pub const VERSION: &str = r#"{"version":"0.5.1"}"#;

    /// `GET /api/tags` with the model of the captures.
    pub const TAGS: &str = r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-05-04T17:37:44.706015396-07:00","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}"#;

    /// Error body for `status` (§3.9 messages).
    pub fn error_body(status: u16) -> &'static str {
        match status {
            404 => r#"{"error":"model 'llama9' not found"}"#,
            503 => {
                r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#
            }
            502 => r#"{"error":"a cloud model cannot be reached"}"#,
            429 => r#"{"error":"rate limited"}"#,
            _ => r#"{"error":"an error was encountered while running the model"}"#,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fragments_cover_the_text_on_char_boundaries() {
        let a = answer_for("p-1 hello");
        let f = fragments(&a, 4);
        assert!(f.len() >= 3);
        assert_eq!(f.concat(), a);
        assert!(answer_for("p-1 x").contains("p-1"));
        assert_ne!(poisoned_for("p-1"), answer_for("p-1"));
    }

    #[test]
    fn go_escaping_matches_encoding_json() {
        assert_eq!(go_json_string("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(go_json_string("中\"\n"), "\"中\\\"\\n\"");
        let v: serde_json::Value = serde_json::from_str(&ollama::chat("x<y")).unwrap();
        assert_eq!(v["message"]["content"], "x<y");
    }

    #[test]
    fn templates_are_valid_json() {
        let v: serde_json::Value = serde_json::from_str(&openai::completion("hi")).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        for e in openai::stream_events("hello world", true) {
            let s = String::from_utf8(e).unwrap();
            let data = s.strip_prefix("data: ").unwrap().trim_end();
            if data != "[DONE]" {
                serde_json::from_str::<serde_json::Value>(data).unwrap();
            }
        }
        for l in ollama::stream_lines("hello") {
            serde_json::from_slice::<serde_json::Value>(&l).unwrap();
        }
        serde_json::from_str::<serde_json::Value>(openai::MODELS).unwrap();
        serde_json::from_str::<serde_json::Value>(ollama::TAGS).unwrap();
    }
}
