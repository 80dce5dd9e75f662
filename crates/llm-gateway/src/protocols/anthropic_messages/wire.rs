//! Serde types of Anthropic's Messages API, as the gateway serves it.
//!
//! Requests: every top-level field of the Messages reference is known
//! ([`MAPPED_FIELDS`], [`IGNORED_FIELDS`], [`REFUSED_FIELDS`]); any other
//! field is refused, and a known field with a wrong type is an error naming
//! the field. Content blocks of an unknown or unsupported `type` are refused
//! naming their path. Responses: the exact shapes of a `message`, of the
//! stream's events, of `count_tokens` and of the model list.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Request fields the gateway maps into the router's request (or handles itself).
pub const MAPPED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "top_k",
];

/// Request fields accepted and dropped because they do not change the answer:
/// `service_tier` and `speed` (scheduling preferences), `cache_control` (a
/// prompt caching hint; caching is the router's), `user_profile_id` and
/// `workspace_id` (Anthropic account attribution).
pub const IGNORED_FIELDS: &[&str] = &[
    "service_tier",
    "speed",
    "cache_control",
    "user_profile_id",
    "workspace_id",
];

/// Request fields naming Anthropic-only features no provider behind the
/// gateway offers: refused with a 400 when set (not null).
pub const REFUSED_FIELDS: &[&str] = &[
    "container",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
    "inference_geo",
    "diagnostics",
];

/// `POST /v1/messages` (and `count_tokens`) body: the mapped fields.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    /// `auto`, a model name, or `instance/model`.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Option<Vec<InputMessage>>,
    /// A string or a list of text blocks.
    pub system: Option<SystemPrompt>,
    /// Upper bound on generated tokens (required by `/v1/messages`).
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 1.
    pub temperature: Option<f32>,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Top-k sampling (refused: no provider behind the gateway is asked for it).
    pub top_k: Option<Value>,
    /// Stop sequences.
    pub stop_sequences: Option<Vec<String>>,
    /// Server-sent events instead of one JSON object.
    pub stream: Option<bool>,
    /// Client tools.
    pub tools: Option<Vec<WireTool>>,
    /// How tools are used.
    pub tool_choice: Option<WireToolChoice>,
    /// `{"user_id": …}`.
    pub metadata: Option<Metadata>,
    /// Extended thinking: `{"type":"enabled","budget_tokens":N}`,
    /// `{"type":"adaptive"}` or `{"type":"disabled"}` (checked field by field).
    pub thinking: Option<Value>,
}

/// `metadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// An opaque id of the end user.
    pub user_id: Option<String>,
}

/// `system`: a string or text blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Plain text.
    Text(String),
    /// Text blocks, joined.
    Blocks(Vec<TextBlockParam>),
}

/// A `text` block of `system` or of a `tool_result`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBlockParam {
    /// Always `text`.
    #[serde(rename = "type")]
    pub _kind: TextKind,
    /// The text.
    pub text: String,
    /// Prompt caching hint (ignored).
    #[serde(default, rename = "cache_control")]
    pub _cache_control: Option<Value>,
    /// Citations (ignored: they annotate, they do not change the prompt).
    #[serde(default, rename = "citations")]
    pub _citations: Option<Value>,
}

/// The only block type allowed where text is expected.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// `text`.
    Text,
}

/// One turn of `messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or a list of blocks.
    pub content: MessageContent,
}

/// A message's content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<Value>),
}

/// A content block of a request message (parsed one by one, so an error
/// names the block's path).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt caching hint (ignored).
        #[serde(default, rename = "cache_control")]
        _cache_control: Option<Value>,
        /// Citations (ignored).
        #[serde(default, rename = "citations")]
        _citations: Option<Value>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// Prompt caching hint (ignored).
        #[serde(default, rename = "cache_control")]
        _cache_control: Option<Value>,
    },
    /// A tool call the model made (assistant turns).
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, a JSON object.
        input: Value,
        /// Prompt caching hint (ignored).
        #[serde(default, rename = "cache_control")]
        _cache_control: Option<Value>,
    },
    /// The model's reasoning in an earlier answer (assistant turns), passed
    /// back unchanged.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// The signature that authenticates it.
        signature: String,
    },
    /// Encrypted reasoning of an earlier answer (assistant turns).
    RedactedThinking {
        /// The encrypted reasoning.
        data: String,
    },
    /// The result of a tool call (user turns).
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// A string or text blocks.
        #[serde(default)]
        content: Option<ToolResultContent>,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
        /// Prompt caching hint (ignored).
        #[serde(default, rename = "cache_control")]
        _cache_control: Option<Value>,
    },
}

/// An image block's `source`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImageSource {
    /// Inline bytes.
    Base64 {
        /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
        media_type: String,
        /// The bytes, base64.
        data: String,
    },
    /// A URL the provider fetches.
    Url {
        /// The image's URL.
        url: String,
    },
}

/// A `tool_result`'s content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    /// Plain text.
    Text(String),
    /// Text blocks.
    Blocks(Vec<TextBlockParam>),
}

/// A client tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTool {
    /// `custom` or absent; any other type is a server tool (refused).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The tool's name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of its input (required for client tools).
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// Prompt caching hint (ignored).
    #[serde(default, rename = "cache_control")]
    pub _cache_control: Option<Value>,
}

/// `tool_choice`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The tool to call (`tool` only).
    #[serde(default)]
    pub name: Option<String>,
    /// At most one tool call per answer.
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

/// A response content block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock<'a> {
    /// Reasoning: `{"type":"thinking","thinking":"…","signature":"…"}`
    /// (in a stream's `content_block_start`, `{"type":"thinking","thinking":""}`).
    Thinking {
        /// The reasoning text.
        thinking: &'a str,
        /// The signature (absent at a streamed block's start).
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    /// Encrypted reasoning: `{"type":"redacted_thinking","data":"…"}`.
    RedactedThinking {
        /// The encrypted reasoning.
        data: &'a str,
    },
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// A tool call.
    ToolUse {
        /// The call's id.
        id: &'a str,
        /// The tool's name.
        name: &'a str,
        /// The arguments (a JSON object; `{}` while a stream fills it).
        input: Value,
    },
}

/// `usage` of a message.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WireUsage {
    /// Input tokens not read from or written to a prompt cache.
    pub input_tokens: u64,
    /// Input tokens written to a prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cache_read_input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl From<llm_router::Usage> for WireUsage {
    fn from(u: llm_router::Usage) -> Self {
        let cached = u.cache_read_tokens.saturating_add(u.cache_write_tokens);
        Self {
            input_tokens: u.prompt_tokens.saturating_sub(cached),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

/// A `message` (the JSON answer, and the `message` of `message_start`).
#[derive(Debug, Serialize)]
pub struct MessageObject<'a> {
    /// `msg_…`.
    pub id: &'a str,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `assistant`.
    pub role: &'static str,
    /// The model that answered.
    pub model: &'a str,
    /// The answer's blocks.
    pub content: Vec<ContentBlock<'a>>,
    /// Why it ended (`null` in `message_start`).
    pub stop_reason: Option<&'static str>,
    /// The stop sequence that ended it (the gateway cannot tell: `null`).
    pub stop_sequence: Option<&'a str>,
    /// Token counts.
    pub usage: WireUsage,
}

/// `count_tokens` answer.
#[derive(Debug, Serialize)]
pub struct TokenCount {
    /// Estimated input tokens.
    pub input_tokens: u64,
}

/// A model of Anthropic's model list.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    /// `model`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `instance/model`.
    pub id: String,
    /// The same, for display.
    pub display_name: String,
    /// RFC 3339 time (the gateway's start).
    pub created_at: String,
    /// `active`: every configured model can be called.
    pub lifecycle: &'static str,
}

/// `GET /v1/models` in Anthropic's shape (one page with every model).
#[derive(Debug, Serialize)]
pub struct ModelPage {
    /// The models.
    pub data: Vec<ModelInfo>,
    /// Always `false`: every model is on the one page.
    pub has_more: bool,
    /// The first id, `null` when there are none.
    pub first_id: Option<String>,
    /// The last id, `null` when there are none.
    pub last_id: Option<String>,
}

/// The inner object of an error.
#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    /// `invalid_request_error`, `authentication_error`, …
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// What went wrong.
    pub message: &'a str,
}

/// `{"type":"error","error":{…}}`.
#[derive(Debug, Serialize)]
pub struct ErrorEnvelope<'a> {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The error.
    pub error: ErrorDetail<'a>,
}
