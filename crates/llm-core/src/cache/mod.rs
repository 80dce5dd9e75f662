//! Response caching: the [`ResponseCache`] trait, its key and stored value.

mod key;
mod memory;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::types::{FinishReason, LlmResponse, ThinkingBlock, TokenLogprob, ToolCall, Usage};

pub use key::CacheKey;
pub use memory::MemoryCache;

/// A stored answer: what a later identical request gets back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// Generated text.
    pub content: String,
    /// Instance that produced it.
    pub provider: String,
    /// Kind of that instance.
    pub provider_kind: String,
    /// Model that produced it.
    pub model: String,
    /// Token counts of the original generation.
    pub usage: Usage,
    /// Why the original generation ended.
    pub finish_reason: FinishReason,
    /// Tools the model called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Log probabilities of the generated tokens, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprob>,
    /// The model's reasoning blocks, when thinking was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<ThinkingBlock>,
    /// The configured model the request resolved to (the metrics label of
    /// the answer, so a hit is counted under the same model as the call that
    /// stored it); `None`: `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_model: Option<String>,
}

/// Version tag of the byte encoding; bumped whenever the encoding changes.
const ENCODING_VERSION: u8 = 1;

impl CachedResponse {
    /// What to store for a fresh response.
    pub fn from_response(resp: &LlmResponse) -> Self {
        Self {
            content: resp.content.clone(),
            provider: resp.provider.clone(),
            provider_kind: resp.provider_kind.clone(),
            model: resp.model.clone(),
            usage: resp.usage,
            finish_reason: resp.finish_reason.clone(),
            tool_calls: resp.tool_calls.clone(),
            logprobs: resp.logprobs.clone(),
            thinking: resp.thinking.clone(),
            route_model: None,
        }
    }

    /// Approximate memory footprint in bytes, for byte-bounded caches.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.content.len()
            + self.provider.len()
            + self.provider_kind.len()
            + self.model.len()
            + self
                .tool_calls
                .iter()
                .map(|c| {
                    std::mem::size_of::<ToolCall>() + c.id.len() + c.name.len() + c.arguments.len()
                })
                .sum::<usize>()
            + self
                .logprobs
                .iter()
                .map(|l| {
                    std::mem::size_of::<TokenLogprob>()
                        + l.token.len()
                        + l.bytes.as_ref().map_or(0, Vec::len)
                        + l.top_logprobs
                            .iter()
                            .map(|t| 48 + t.token.len() + t.bytes.as_ref().map_or(0, Vec::len))
                            .sum::<usize>()
                })
                .sum::<usize>()
            + self
                .thinking
                .iter()
                .map(|b| {
                    std::mem::size_of::<ThinkingBlock>()
                        + match b {
                            ThinkingBlock::Thinking {
                                thinking,
                                signature,
                            } => thinking.len() + signature.len(),
                            ThinkingBlock::RedactedThinking { data } => data.len(),
                        }
                })
                .sum::<usize>()
    }

    /// Versioned bytes for external stores: one version byte, then JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_VERSION];
        // Serializing this plain struct to JSON cannot fail.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.truncate(1);
        }
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes; another version or garbage is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, CacheError> {
        match bytes.split_first() {
            Some((&ENCODING_VERSION, json)) => serde_json::from_slice(json)
                .map_err(|e| CacheError::new("decode", format!("corrupt cache entry: {e}"))),
            Some((v, _)) => Err(CacheError::new(
                "decode",
                format!("cache entry has encoding version {v}, expected {ENCODING_VERSION}"),
            )),
            None => Err(CacheError::new("decode", "empty cache entry")),
        }
    }
}

/// A response store. Implementations must be cheap to share and must never
/// block the async runtime.
///
/// Failures are reported as [`CacheError`]; the client turns them into misses
/// and counts them, so a broken cache never fails a request.
#[async_trait]
pub trait ResponseCache: Send + Sync {
    /// Backend name for logs and metrics (`memory`, `redis`).
    fn name(&self) -> &str;

    /// Whether a write completes in memory without I/O. The client writes to
    /// an in-process cache inline and to any other in the background, so a
    /// slow backend never delays an answer.
    fn is_local(&self) -> bool {
        false
    }

    /// The entry stored under `key`, if any and not expired.
    async fn get(&self, key: &CacheKey) -> Result<Option<CachedResponse>, CacheError>;

    /// Stores `value` under `key` for `ttl`.
    async fn set(
        &self,
        key: &CacheKey,
        value: &CachedResponse,
        ttl: Duration,
    ) -> Result<(), CacheError>;

    /// Embedding vectors stored under `keys` ([`CacheKey::for_embedding`]),
    /// one entry per key, `None` for a miss. The default stores none (every
    /// key misses); backends keep vectors as `f32` bytes
    /// ([`vector_to_bytes`](crate::embed::vector_to_bytes)), not JSON.
    async fn get_vectors(&self, keys: &[CacheKey]) -> Result<Vec<Option<Vec<f32>>>, CacheError> {
        Ok(vec![None; keys.len()])
    }

    /// Stores embedding vectors for `ttl`.
    async fn set_vectors(
        &self,
        items: &[(CacheKey, Vec<f32>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let _ = (items, ttl);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CachedResponse {
        CachedResponse {
            content: "你好".into(),
            provider: "p".into(),
            provider_kind: "k".into(),
            model: "m".into(),
            usage: Usage::new(1, 2),
            finish_reason: FinishReason::Length,
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            thinking: Vec::new(),
            route_model: None,
        }
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let bytes = sample().encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(CachedResponse::decode(&bytes).unwrap(), sample());
        assert!(CachedResponse::decode(b"").is_err());
        assert!(CachedResponse::decode(b"\x01{not json").is_err());
        assert!(CachedResponse::decode(b"\x02{}")
            .unwrap_err()
            .message
            .contains("version 2"));
    }

    #[test]
    fn tool_calls_round_trip_and_older_entries_still_decode() {
        let mut with_calls = sample();
        with_calls.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        });
        let bytes = with_calls.encode();
        assert_eq!(CachedResponse::decode(&bytes).unwrap(), with_calls);
        assert!(with_calls.weight() > sample().weight());
        // An entry written before tool calls existed has no `tool_calls` key.
        let old = br#"{"content":"x","provider":"p","provider_kind":"k","model":"m","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"finish_reason":"stop"}"#;
        let mut bytes = vec![1];
        bytes.extend_from_slice(old);
        assert!(CachedResponse::decode(&bytes)
            .unwrap()
            .tool_calls
            .is_empty());
    }
}
