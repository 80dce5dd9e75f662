//! The cache key: a SHA-256 over a canonical, versioned encoding of everything
//! that changes the answer.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::types::{
    CacheDirective, ImageInput, LlmRequest, Message, ResponseFormat, Thinking, ThinkingBlock, Tool,
    ToolCall, ToolChoice,
};

/// Version of the key encoding; bumping it invalidates every stored entry.
const KEY_VERSION: &[u8] = b"llm-cache-key/v3";

/// A cache key: the 32-byte SHA-256 digest of a canonical encoding (no heap
/// allocation; `Copy`). External stores name entries by its 64 lowercase hex
/// digits ([`to_hex`](Self::to_hex), [`Display`](fmt::Display)).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

/// Hashes by the digest's first 8 bytes: the key already is a uniform
/// cryptographic hash, so hashing all of it again buys nothing.
impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix_u64());
    }
}

impl CacheKey {
    /// The key of a request.
    ///
    /// The request is destructured field by field, so adding a field to
    /// [`LlmRequest`] does not compile until it is decided here whether it
    /// changes the answer.
    ///
    /// ```
    /// use llm_core::cache::CacheKey;
    /// use llm_core::LlmRequest;
    /// let a = CacheKey::for_request(&LlmRequest::new("hi").max_tokens(5));
    /// let b = CacheKey::for_request(&LlmRequest::new("hi").max_tokens(6));
    /// assert_ne!(a, b);
    /// assert_eq!(a.to_hex().len(), 64);
    /// ```
    pub fn for_request(req: &LlmRequest) -> Self {
        let LlmRequest {
            messages,
            system_prompt,
            max_tokens,
            temperature,
            top_p,
            stop,
            seed,
            frequency_penalty,
            presence_penalty,
            logprobs,
            top_logprobs,
            response_format,
            user,
            extra,
            model,
            provider,
            // How the cache is used does not change the answer.
            cache: _,
            tools,
            tool_choice,
            parallel_tool_calls,
            thinking,
            allowed_models,
        } = req;
        let _: &CacheDirective = &req.cache;
        let mut h = Sha256::new();
        h.update(KEY_VERSION);
        field(&mut h, b"messages", &(messages.len() as u64).to_le_bytes());
        for Message {
            role,
            content,
            tool_calls,
            tool_call_id,
            images,
            thinking,
        } in messages
        {
            field(&mut h, b"role", role.as_str().as_bytes());
            field(&mut h, b"content", content.as_bytes());
            for ImageInput { url, detail } in images {
                field(&mut h, b"image_url", url.as_bytes());
                opt_field(
                    &mut h,
                    b"image_detail",
                    detail.as_deref().map(str::as_bytes),
                );
            }
            // Tool fields only when present: every field is tagged, so
            // leaving out absent ones keeps the encoding unambiguous and
            // requests without tools pay nothing for them.
            for ToolCall {
                id,
                name,
                arguments,
            } in tool_calls
            {
                field(&mut h, b"call_id", id.as_bytes());
                field(&mut h, b"call_name", name.as_bytes());
                field(&mut h, b"call_arguments", arguments.as_bytes());
            }
            if let Some(id) = tool_call_id {
                field(&mut h, b"tool_call_id", id.as_bytes());
            }
            for block in thinking {
                match block {
                    ThinkingBlock::Thinking {
                        thinking,
                        signature,
                    } => {
                        field(&mut h, b"thinking_text", thinking.as_bytes());
                        field(&mut h, b"thinking_signature", signature.as_bytes());
                    }
                    ThinkingBlock::RedactedThinking { data } => {
                        field(&mut h, b"redacted_thinking", data.as_bytes());
                    }
                }
            }
        }
        opt_field(
            &mut h,
            b"system",
            system_prompt.as_deref().map(str::as_bytes),
        );
        opt_field(
            &mut h,
            b"max_tokens",
            max_tokens.map(u32::to_le_bytes).as_ref().map(|b| &b[..]),
        );
        opt_f32(&mut h, b"temperature", *temperature);
        opt_f32(&mut h, b"top_p", *top_p);
        field(&mut h, b"stop", &(stop.len() as u64).to_le_bytes());
        for s in stop {
            field(&mut h, b"stop_item", s.as_bytes());
        }
        opt_field(
            &mut h,
            b"seed",
            seed.map(i64::to_le_bytes).as_ref().map(|b| &b[..]),
        );
        // Fields most requests leave unset are tagged only when present.
        if frequency_penalty.is_some() {
            opt_f32(&mut h, b"frequency_penalty", *frequency_penalty);
        }
        if presence_penalty.is_some() {
            opt_f32(&mut h, b"presence_penalty", *presence_penalty);
        }
        if *logprobs {
            field(&mut h, b"logprobs", &[1]);
        }
        if let Some(n) = top_logprobs {
            field(&mut h, b"top_logprobs", &[*n]);
        }
        match response_format {
            None => {}
            Some(ResponseFormat::Text) => field(&mut h, b"response_format", b"text"),
            Some(ResponseFormat::JsonObject) => field(&mut h, b"response_format", b"json_object"),
            Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
                description,
            }) => {
                field(&mut h, b"response_format", b"json_schema");
                field(&mut h, b"schema_name", name.as_bytes());
                field(&mut h, b"schema", schema.to_string().as_bytes());
                if let Some(strict) = strict {
                    field(&mut h, b"schema_strict", &[u8::from(*strict)]);
                }
                if let Some(d) = description {
                    field(&mut h, b"schema_description", d.as_bytes());
                }
            }
        }
        if let Some(user) = user {
            field(&mut h, b"user", user.as_bytes());
        }
        for (k, v) in extra {
            field(&mut h, b"extra_key", k.as_bytes());
            field(&mut h, b"extra_value", v.to_string().as_bytes());
        }
        opt_field(&mut h, b"model", model.as_deref().map(str::as_bytes));
        opt_field(&mut h, b"provider", provider.as_deref().map(str::as_bytes));
        for Tool {
            name,
            description,
            parameters,
        } in tools
        {
            field(&mut h, b"tool_name", name.as_bytes());
            opt_field(
                &mut h,
                b"tool_description",
                description.as_deref().map(str::as_bytes),
            );
            // The schema as serialized: the same schema written in another key
            // order can only cost a miss, never give a wrong hit.
            field(
                &mut h,
                b"tool_parameters",
                parameters.to_string().as_bytes(),
            );
        }
        match tool_choice {
            None => {}
            Some(ToolChoice::Auto) => field(&mut h, b"tool_choice", b"auto"),
            Some(ToolChoice::None) => field(&mut h, b"tool_choice", b"none"),
            Some(ToolChoice::Required) => field(&mut h, b"tool_choice", b"required"),
            Some(ToolChoice::Function(name)) => {
                field(&mut h, b"tool_choice_function", name.as_bytes());
            }
        }
        if let Some(allowed) = parallel_tool_calls {
            field(&mut h, b"parallel_tool_calls", &[u8::from(*allowed)]);
        }
        match thinking {
            None => {}
            Some(Thinking::Enabled { budget_tokens }) => {
                field(&mut h, b"thinking_budget", &budget_tokens.to_le_bytes());
            }
            Some(Thinking::Adaptive) => field(&mut h, b"thinking", b"adaptive"),
            Some(Thinking::Disabled) => field(&mut h, b"thinking", b"disabled"),
        }
        // A restricted request neither hits nor joins an answer that came
        // from outside its allowed models.
        if let Some(filter) = allowed_models {
            field(
                &mut h,
                b"allowed_models",
                &(filter.globs().len() as u64).to_le_bytes(),
            );
            for glob in filter.globs() {
                field(&mut h, b"allowed_model", glob.as_bytes());
            }
        }
        CacheKey(h.finalize().into())
    }

    /// The key of one embedding input: the model, the output dimensions and
    /// the text (its own version tag, so it never meets a generation key).
    ///
    /// ```
    /// use llm_core::cache::CacheKey;
    /// let a = CacheKey::for_embedding("nomic-embed-text", None, "你好");
    /// assert_ne!(a, CacheKey::for_embedding("nomic-embed-text", Some(256), "你好"));
    /// assert_ne!(a, CacheKey::for_embedding("text-embedding-3-small", None, "你好"));
    /// ```
    pub fn for_embedding(model: &str, dimensions: Option<u32>, text: &str) -> Self {
        Self::embedding_text(embedding_prefix(model, dimensions), text)
    }

    /// The keys of a batch of embedding inputs, in order: the same keys as
    /// [`for_embedding`](Self::for_embedding) gives one by one, with the
    /// model and dimensions hashed once for the whole batch.
    ///
    /// ```
    /// use llm_core::cache::CacheKey;
    /// let keys = CacheKey::for_embeddings("nomic-embed-text", Some(256), ["a", "b"]);
    /// assert_eq!(keys[1], CacheKey::for_embedding("nomic-embed-text", Some(256), "b"));
    /// ```
    pub fn for_embeddings<'a>(
        model: &str,
        dimensions: Option<u32>,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Self> {
        let prefix = embedding_prefix(model, dimensions);
        texts
            .into_iter()
            .map(|t| Self::embedding_text(prefix.clone(), t))
            .collect()
    }

    fn embedding_text(mut h: Sha256, text: &str) -> Self {
        field(&mut h, b"text", text.as_bytes());
        CacheKey(h.finalize().into())
    }

    /// The SHA-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex digits (how external stores name entries).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The 64 lowercase hex digits, without allocating.
    fn hex_digits(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        // 32 bytes always fill exactly 64 digits: this cannot fail.
        let _ = hex::encode_to_slice(self.0, &mut out);
        out
    }

    /// The digest's first 8 bytes, for in-memory hash tables.
    pub(crate) fn prefix_u64(&self) -> u64 {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, g, h])
    }
}

/// The hashed model and dimensions of embedding keys (their own version
/// tag, so they never meet a generation key).
fn embedding_prefix(model: &str, dimensions: Option<u32>) -> Sha256 {
    let mut h = Sha256::new();
    h.update(b"llm-embedding-key/v1");
    field(&mut h, b"model", model.as_bytes());
    opt_field(
        &mut h,
        b"dimensions",
        dimensions.map(u32::to_le_bytes).as_ref().map(|b| &b[..]),
    );
    h
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

fn opt_f32(h: &mut Sha256, tag: &[u8], v: Option<f32>) {
    opt_field(
        h,
        tag,
        v.map(|p| canonical_f32(p).to_le_bytes())
            .as_ref()
            .map(|b| &b[..]),
    );
}

/// `-0.0` and `0.0` hash alike.
fn canonical_f32(v: f32) -> u32 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// Tag, length, bytes: no two different field sequences encode alike.
fn field(h: &mut Sha256, tag: &[u8], bytes: &[u8]) {
    h.update((tag.len() as u64).to_le_bytes());
    h.update(tag);
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn opt_field(h: &mut Sha256, tag: &[u8], bytes: Option<&[u8]>) {
    const SOME: &[u8] = b"\x01some";
    match bytes {
        None => field(h, tag, b"\x00none"),
        // `field(tag, SOME ++ b)`, without building the concatenation.
        Some(b) => {
            h.update((tag.len() as u64).to_le_bytes());
            h.update(tag);
            h.update(((SOME.len() + b.len()) as u64).to_le_bytes());
            h.update(SOME);
            h.update(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Role;

    fn key(r: &LlmRequest) -> CacheKey {
        CacheKey::for_request(r)
    }

    fn call(id: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "f".into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn any_answer_changing_field_changes_the_key() {
        let base = LlmRequest::new("hello").system("sys");
        let variants = [
            LlmRequest::new("hello!").system("sys"),
            LlmRequest::new("hello").system("sys2"),
            LlmRequest::new("hello"),
            base.clone().max_tokens(5),
            base.clone().temperature(0.2),
            base.clone().top_p(0.9),
            base.clone().stop("x"),
            base.clone().seed(1),
            base.clone().model("m"),
            base.clone().provider("p"),
            LlmRequest::from_messages(vec![Message::new(Role::Assistant, "hello")]).system("sys"),
            base.clone().message(Message::user("")),
            base.clone().tool(Tool::function(
                "f",
                "d",
                serde_json::json!({"type": "object"}),
            )),
            base.clone().tool(Tool::function(
                "f",
                "d2",
                serde_json::json!({"type": "object"}),
            )),
            base.clone().tool(Tool::function(
                "g",
                "d",
                serde_json::json!({"type": "object"}),
            )),
            base.clone().tool(Tool::function(
                "f",
                "d",
                serde_json::json!({"type": "object", "required": []}),
            )),
            base.clone().tool_choice(ToolChoice::Auto),
            base.clone().tool_choice(ToolChoice::Function("f".into())),
            {
                let mut r = base.clone();
                r.temperature = None;
                r
            },
            base.clone().seed(-1),
            {
                let mut r = base.clone();
                r.frequency_penalty = Some(0.5);
                r
            },
            {
                let mut r = base.clone();
                r.presence_penalty = Some(0.5);
                r
            },
            base.clone().logprobs(None),
            base.clone().logprobs(Some(2)),
            base.clone()
                .response_format(crate::ResponseFormat::JsonObject),
            base.clone().response_format(crate::ResponseFormat::Text),
            base.clone()
                .response_format(crate::ResponseFormat::JsonSchema {
                    name: "a".into(),
                    schema: serde_json::json!({"type": "object"}),
                    strict: None,
                    description: None,
                }),
            base.clone()
                .response_format(crate::ResponseFormat::JsonSchema {
                    name: "a".into(),
                    schema: serde_json::json!({"type": "object"}),
                    strict: Some(true),
                    description: None,
                }),
            {
                let mut r = base.clone();
                r.user = Some("u".into());
                r
            },
            {
                let mut r = base.clone();
                r.extra
                    .insert("service_tier".into(), serde_json::json!("flex"));
                r
            },
            LlmRequest::from_messages(vec![
                Message::user("hello").image(crate::ImageInput::url("https://example.com/a.png"))
            ])
            .system("sys"),
            base.clone().parallel_tool_calls(true),
            base.clone().parallel_tool_calls(false),
            base.clone()
                .message(Message::assistant_tool_calls("", vec![call("c1", "{}")])),
            base.clone()
                .message(Message::assistant_tool_calls("", vec![call("c1", "{ }")])),
            base.clone().message(Message::tool_result("c1", "")),
            base.clone().message(Message::tool_result("c2", "")),
        ];
        let mut seen = std::collections::HashSet::new();
        for v in &variants {
            assert!(seen.insert(key(v)), "two variants share a key: {v:?}");
        }
        let k = key(&base);
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(key(v), k, "variant {i}");
        }
        // Boundaries between fields cannot be shifted.
        let a = LlmRequest::from_messages(vec![Message::user("ab"), Message::user("c")]);
        let b = LlmRequest::from_messages(vec![Message::user("a"), Message::user("bc")]);
        assert_ne!(key(&a), key(&b));
        let a = LlmRequest::new("x").stop("ab").stop("c");
        let b = LlmRequest::new("x").stop("a").stop("bc");
        assert_ne!(key(&a), key(&b));
    }

    #[test]
    fn identical_requests_built_differently_share_a_key() {
        let a = LlmRequest::new("hello").max_tokens(10).model("m");
        let mut b = LlmRequest::from_messages(vec![Message::user("hello")]);
        b.model = Some("m".into());
        b.max_tokens = Some(10);
        b.cache = CacheDirective::Refresh;
        assert_eq!(key(&a), key(&b));
        assert_eq!(key(&a.clone().temperature(0.0)), key(&a.temperature(-0.0)));
    }

    #[test]
    fn thinking_and_thinking_blocks_change_the_key() {
        use crate::types::{Thinking, ThinkingBlock};
        let base = LlmRequest::new("hello").max_tokens(4000);
        let with = |t: Thinking| base.clone().thinking(t);
        let budget = |n: u32| with(Thinking::Enabled { budget_tokens: n });
        let keys = [
            key(&base),
            key(&budget(1024)),
            key(&budget(2048)),
            key(&with(Thinking::Adaptive)),
            key(&with(Thinking::Disabled)),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let turn = |blocks: Vec<ThinkingBlock>| {
            key(&base
                .clone()
                .message(Message::assistant_turn(blocks, "4", Vec::new())))
        };
        let signed = |s: &str| ThinkingBlock::Thinking {
            thinking: "2+2".into(),
            signature: s.into(),
        };
        assert_ne!(turn(vec![]), turn(vec![signed("a")]));
        assert_ne!(turn(vec![signed("a")]), turn(vec![signed("b")]));
        assert_ne!(
            turn(vec![signed("a")]),
            turn(vec![ThinkingBlock::RedactedThinking { data: "a".into() }])
        );
        assert_eq!(turn(vec![signed("a")]), turn(vec![signed("a")]));
    }

    #[test]
    fn allowed_models_change_the_key() {
        use crate::ModelFilter;
        let base = LlmRequest::new("hello");
        let only = |globs: &[&str]| {
            key(&base
                .clone()
                .allowed_models(ModelFilter::new(globs.to_vec())))
        };
        assert_ne!(key(&base), only(&["gpt-4o"]));
        assert_ne!(only(&["gpt-4o"]), only(&["gpt-4o", "claude-*"]));
        assert_ne!(only(&["ab", "c"]), only(&["a", "bc"]));
        assert_eq!(only(&["gpt-4o"]), only(&[" gpt-4o "]));
    }

    #[test]
    fn embedding_keys_are_the_sha256_hex_external_stores_already_hold() {
        // Digests of the documented encoding, computed independently: the
        // 32-byte key names Redis entries exactly as the former hex key did.
        let none = CacheKey::for_embedding("nomic-embed-text", None, "你好");
        assert_eq!(
            none.to_hex(),
            "9fdb29d02556d8ac3c490e7075fefd67680eb4101e594dd9538b9f2c9a98f0eb"
        );
        let dims = CacheKey::for_embedding("nomic-embed-text", Some(256), "你好");
        assert_eq!(
            dims.to_string(),
            "d7b21a169a6bd5da8034a16d8a3eef6425a99b3deee36339d02bb2d054f7b037"
        );
        assert_eq!(format!("{dims:?}"), format!("CacheKey({dims})"));
        // The batch form gives the same keys, in order, duplicates included.
        let texts = ["你好", "", "a", "你好"];
        let batch = CacheKey::for_embeddings("nomic-embed-text", None, texts);
        let one: Vec<_> = texts
            .iter()
            .map(|t| CacheKey::for_embedding("nomic-embed-text", None, t))
            .collect();
        assert_eq!(batch, one);
        assert_eq!(batch[0], none);
        assert_eq!(batch[0], batch[3]);
        assert_ne!(batch[1], batch[2]);
    }
}
