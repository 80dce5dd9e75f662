//! Fixtures shared by the integration tests: bytes from /work/shared/protocols.md
//! section 4 unless a comment says otherwise.
#![allow(dead_code)]

use llm_core::testing::MockReply;

/// The key every test instance is built with.
pub const SECRET: &str = "sk-ant-api03-test-secret-0123456789";
/// The model of the protocol examples.
pub const MODEL: &str = "claude-sonnet-4-5-20250929";

/// 4.6 "Complete example": the request body.
pub const REQUEST_BODY: &str = r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":256,"system":"You are a terse assistant.","messages":[{"role":"user","content":"Say hello."}],"temperature":0.2,"stop_sequences":["END"]}"#;

/// 4.6: the non-streamed response body.
pub const COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":5,"service_tier":"standard"}}"#;

/// 4.6: the non-streamed response, with its headers.
pub fn completion() -> MockReply {
    MockReply::json(200, COMPLETION)
        .header("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE")
        .header(
            "anthropic-organization-id",
            "36562039-0000-0000-0000-1e517e3d2d12",
        )
        .header("anthropic-ratelimit-requests-limit", "1000")
        .header("anthropic-ratelimit-requests-remaining", "999")
        .header("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z")
        .header("anthropic-ratelimit-input-tokens-limit", "80000")
        .header("anthropic-ratelimit-input-tokens-remaining", "80000")
        .header(
            "anthropic-ratelimit-input-tokens-reset",
            "2025-08-21T12:40:59Z",
        )
        .header("anthropic-ratelimit-output-tokens-limit", "16000")
        .header("anthropic-ratelimit-output-tokens-remaining", "16000")
        .header(
            "anthropic-ratelimit-output-tokens-reset",
            "2025-08-21T12:41:00Z",
        )
        .header("anthropic-ratelimit-tokens-limit", "96000")
        .header("anthropic-ratelimit-tokens-remaining", "96000")
        .header("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:59Z")
}

/// 4.6 "Streamed response", every byte, one event per string.
pub const STREAM_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEM\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// 4.3: the `error` event as the server sends it after a 200.
pub const OVERLOADED_EVENT: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

/// A streamed reply made of `events`, one chunk each.
pub fn sse(events: &[&str]) -> MockReply {
    MockReply::chunked(
        200,
        "text/event-stream",
        events.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
}

/// 4.6 streamed response.
pub fn stream() -> MockReply {
    sse(STREAM_EVENTS)
}

/// A Chinese answer in the 4.6 stream format (constructed: same events and
/// JSON layout, the text and counts changed; Anthropic writes non-ASCII raw).
pub const STREAM_CJK_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEN\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":21,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"你好\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"，世界！这是一部小说的开头。\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":14}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Text of [`STREAM_CJK_EVENTS`].
pub const STREAM_CJK_TEXT: &str = "你好，世界！这是一部小说的开头。";

/// 4.6 stream with the final `message_stop` missing.
pub fn stream_truncated() -> MockReply {
    sse(&STREAM_EVENTS[..STREAM_EVENTS.len() - 1])
}

/// 4.6 stream start, one text delta, then the 4.3 overloaded `error` event;
/// the connection then closes with no `message_stop` (as captured).
pub fn stream_error() -> MockReply {
    let mut events = STREAM_EVENTS[..4].to_vec();
    events.push(OVERLOADED_EVENT);
    sse(&events)
}

/// 4.4, written compact as Anthropic sends bodies.
pub const MODELS: &str = r#"{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-sonnet-4-5-20250929"}"#;

/// 4.5: bad key.
pub fn unauthorized() -> MockReply {
    MockReply::json(
        401,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    )
}

/// 4.5: the documented `not_found_error` body (its message is elided there).
pub fn model_not_found() -> MockReply {
    MockReply::json(
        404,
        r#"{"type":"error","error":{"type":"not_found_error","message":"…"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
    )
}

/// Seconds in the `retry-after` of [`rate_limited`].
pub const RETRY_AFTER_SECS: u64 = 20;

/// 4.5: the rate-limit body, with `retry-after` (4.5 header table).
pub fn rate_limited() -> MockReply {
    MockReply::json(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (…) of 40,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."}}"#,
    )
    .header("retry-after", "20")
}

/// 500 `api_error`. Not in protocols.md; body as captured in
/// anthropics/claude-code#12264.
pub fn server_error() -> MockReply {
    MockReply::json(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_011CVT1TGNi4VcKHaM5xKGTs"}"#,
    )
}

/// 503 from Anthropic's edge proxy: plain text, not JSON. Not in protocols.md;
/// text as reported in anthropics/claude-code#7403.
pub fn unavailable() -> MockReply {
    MockReply::new(
        503,
        "text/plain",
        "upstream connect error or disconnect/reset before headers. reset reason: connection timeout",
    )
}

/// 4.6: the 529 capture, headers included.
pub fn overloaded() -> MockReply {
    MockReply::json(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .header("request-id", "req_01RCc7MbLyQNtGKzBTv8VCep")
    .header("x-should-retry", "true")
}

/// 4.6: the 400 "prompt is too long" reply.
pub fn prompt_too_long() -> MockReply {
    MockReply::json(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215332 tokens > 200000 maximum"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
    )
    .header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
}

/// 4.5: an overloaded body carrying `request_id` (no header captured).
pub fn overloaded_with_body_id() -> MockReply {
    MockReply::json(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CZAYwiDg6Eqv7HiBNWoE5"}"#,
    )
}

/// 4.6 "Tool use in a stream", completed minimally: protocols.md abridges the
/// SDK fixture to the tool block, so the 4.6 `message_start` (its id changed)
/// and one text block at index 0 (constructed, 4.6 layout) precede it; the
/// tool block, `message_delta` and `message_stop` are the documented bytes.
pub const STREAM_TOOL_EVENTS: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEP\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01NRLabsLyVHZPKxbKvkfSMn\",\"name\":\"get_weather\",\"caller\":{\"type\":\"direct\"},\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"locati\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"on\\\": \\\"P\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ar\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":65}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// A non-streamed `tool_use` answer (constructed: the 4.6 body layout with
/// the 4.2 `tool_use` block shape and the 4.1 example call's id, name and input).
pub const TOOL_COMPLETION: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEQ","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Checking the index."},{"type":"tool_use","id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","name":"get_stock_price","input":{"ticker":"^GSPC"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":380,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":54,"service_tier":"standard"}}"#;
