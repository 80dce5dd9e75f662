//! Embeddings: a batch of texts in, one vector per text out.
//!
//! Routing is by model, not by task class: vectors from different models are
//! not comparable, so an embedding request only ever falls back to another
//! instance serving the same embedding model (config `embedding_models`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model_filter::ModelFilter;
use crate::types::{Attempt, CacheDirective, Usage};

/// Texts to embed.
///
/// ```
/// use llm_core::EmbeddingRequest;
/// let req = EmbeddingRequest::new(["第一章", "第二章"]).model("nomic-embed-text");
/// assert_eq!(req.inputs.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// The batch, in order; the answer has one vector per input, in the same order.
    pub inputs: Vec<String>,
    /// The embedding model (`None`: `routing.default_embedding_model`).
    pub model: Option<String>,
    /// Provider instance to try first (it must serve the model).
    pub provider: Option<String>,
    /// Output dimensions, for models that can shorten their vectors.
    pub dimensions: Option<u32>,
    /// An end-user identifier for the provider's abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How the per-item cache is used.
    pub cache: CacheDirective,
    /// The instances that may compute the vectors (`None`: any serving the
    /// model), as for chat ([`LlmRequest::allowed_models`]): a fallback never
    /// sends the texts to an instance outside it.
    ///
    /// [`LlmRequest::allowed_models`]: crate::LlmRequest::allowed_models
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<ModelFilter>,
}

impl EmbeddingRequest {
    /// A request for these texts with the default model.
    pub fn new<I, S>(inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            inputs: inputs.into_iter().map(Into::into).collect(),
            model: None,
            provider: None,
            dimensions: None,
            user: None,
            cache: CacheDirective::Use,
            allowed_models: None,
        }
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Names the instance to try first.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Sets the output dimensions.
    pub fn dimensions(mut self, dimensions: u32) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// Sets the cache directive.
    pub fn cache(mut self, cache: CacheDirective) -> Self {
        self.cache = cache;
        self
    }

    /// Keeps the request within `filter` ([`allowed_models`](Self::allowed_models)).
    pub fn allowed_models(mut self, filter: ModelFilter) -> Self {
        self.allowed_models = Some(filter);
        self
    }
}

/// Vectors for a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The model, as configured (the same for every vector).
    pub model: String,
    /// Instance that computed the vectors not found in the cache (empty when
    /// every input was cached).
    pub provider: String,
    /// Kind of that instance.
    pub provider_kind: String,
    /// Tokens of the inputs sent upstream (`prompt_tokens`; cached inputs cost none).
    pub usage: Usage,
    /// Cost in US dollars of the inputs sent upstream.
    pub cost: f64,
    /// How many inputs came from the cache.
    pub cached_inputs: usize,
    /// Every provider tried, in order.
    pub attempts: Vec<Attempt>,
    /// Wall time of the whole call.
    #[serde(with = "crate::types::duration_ms")]
    pub response_time: Duration,
}

impl EmbeddingResponse {
    /// What a provider returns: vectors, the model that computed them and usage;
    /// the client fills in the rest.
    pub fn from_provider(
        provider: impl Into<String>,
        provider_kind: impl Into<String>,
        model: impl Into<String>,
        vectors: Vec<Vec<f32>>,
        usage: Usage,
    ) -> Self {
        Self {
            vectors,
            model: model.into(),
            provider: provider.into(),
            provider_kind: provider_kind.into(),
            usage,
            cost: 0.0,
            cached_inputs: 0,
            attempts: Vec::new(),
            response_time: Duration::ZERO,
        }
    }

    /// Length of the vectors (0 for an empty batch).
    pub fn dimensions(&self) -> usize {
        self.vectors.first().map_or(0, Vec::len)
    }
}

/// A vector as little-endian `f32` bytes: how caches store it (4 bytes per
/// value, not JSON text).
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The vector of [`vector_to_bytes`]; `None` when the length is not a multiple of 4.
pub fn vector_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if b.len() % 4 != 0 {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.0, -1.5, f32::MAX, 1e-30, 0.25];
        let b = vector_to_bytes(&v);
        assert_eq!(b.len(), 20);
        assert_eq!(vector_from_bytes(&b), Some(v));
        assert_eq!(vector_from_bytes(&[1, 2, 3]), None);
    }
}
