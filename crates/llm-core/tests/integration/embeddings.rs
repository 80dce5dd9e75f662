//! `LlmClient::embed`: routing by model, same-model fallback only, per-item
//! cache with order kept, metrics under `operation="embeddings"`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use llm_core::cache::MemoryCache;
use llm_core::config::RoutingConfig;
use llm_core::metrics::MetricsRegistry;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{
    AttemptOutcome, CacheDirective, EmbeddingRequest, LlmClient, LlmError, ProviderError,
    ProviderProfile,
};

fn embedder(name: &str, models: &[&str]) -> ScriptedProvider {
    ScriptedProvider::new(name).profile(ProviderProfile {
        embedding_models: models.iter().map(|m| (*m).to_string()).collect(),
        ..Default::default()
    })
}

fn client(ps: &[Arc<ScriptedProvider>]) -> LlmClient {
    let mut b = LlmClient::builder().cache(Arc::new(MemoryCache::new(1 << 24)));
    for p in ps {
        b = b.provider(p.clone());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_partly_cached_batch_sends_only_the_new_inputs_and_keeps_the_order() {
    let p = Arc::new(embedder("ollama", &["nomic-embed-text"]));
    let c = client(std::slice::from_ref(&p));
    let seen: Vec<String> = (0..90).map(|i| format!("chapter {i}")).collect();
    c.embed(EmbeddingRequest::new(seen.clone()).model("nomic-embed-text"))
        .await
        .unwrap();
    // 100 inputs: the 90 seen ones interleaved with 10 new ones.
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.push(if i % 10 == 3 {
            format!("new {i}")
        } else {
            seen[i - i / 10 - usize::from(i % 10 > 3)].clone()
        });
    }
    let r = c
        .embed(EmbeddingRequest::new(batch.clone()).model("nomic-embed-text"))
        .await
        .unwrap();
    assert_eq!(r.cached_inputs, 90);
    let sent = p.embedded();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1],
        batch
            .iter()
            .filter(|t| t.starts_with("new"))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(r.vectors.len(), 100);
    for (text, v) in batch.iter().zip(&r.vectors) {
        assert_eq!(
            v,
            &ScriptedProvider::vector_for("nomic-embed-text", text),
            "{text}"
        );
    }
    // Usage and cost cover only what was sent.
    assert_eq!(
        r.usage.prompt_tokens,
        sent[1]
            .iter()
            .map(|t| t.len().div_ceil(4) as u64)
            .sum::<u64>()
    );
    // Fully cached: no call at all.
    let again = c
        .embed(EmbeddingRequest::new(batch).model("nomic-embed-text"))
        .await
        .unwrap();
    assert_eq!(again.cached_inputs, 100);
    assert_eq!(again.vectors, r.vectors);
    assert_eq!(p.embedded().len(), 2);
    // Bypass sends everything again.
    c.embed(
        EmbeddingRequest::new(["chapter 1"])
            .model("nomic-embed-text")
            .cache(CacheDirective::Bypass),
    )
    .await
    .unwrap();
    assert_eq!(p.embedded().len(), 3);
}

#[tokio::test]
async fn duplicate_inputs_are_sent_once() {
    let p = Arc::new(embedder("ollama", &["m"]));
    let c = client(std::slice::from_ref(&p));
    let r = c
        .embed(EmbeddingRequest::new(["a", "b", "a"]).model("m"))
        .await
        .unwrap();
    assert_eq!(p.embedded(), vec![vec!["a".to_string(), "b".to_string()]]);
    assert_eq!(r.vectors[0], r.vectors[2]);
    assert_ne!(r.vectors[0], r.vectors[1]);
}

#[tokio::test(start_paused = true)]
async fn fallback_stays_on_the_same_model() {
    let a = Arc::new(
        embedder("ollama-a", &["nomic-embed-text"])
            .otherwise(Reply::Error(ProviderError::http("ollama-a", 500, "down"))),
    );
    let b = Arc::new(embedder("ollama-b", &["nomic-embed-text"]));
    let other = Arc::new(embedder("openai", &["text-embedding-3-small"]));
    let c = client(&[a.clone(), other.clone(), b.clone()]);
    let r = c
        .embed(
            EmbeddingRequest::new(["x"])
                .model("nomic-embed-text")
                .provider("ollama-a"),
        )
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama-b");
    assert_eq!(r.model, "nomic-embed-text");
    assert!(matches!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed { .. }
    ));
    assert!(other.embedded().is_empty(), "another model is never tried");

    // The only instance serving a model fails: an error, not another model.
    let lone = Arc::new(
        embedder("solo", &["bge-m3"])
            .otherwise(Reply::Error(ProviderError::http("solo", 503, "busy"))),
    );
    let other = Arc::new(embedder("openai", &["text-embedding-3-small"]));
    let c = client(&[lone.clone(), other.clone()]);
    let err = c
        .embed(EmbeddingRequest::new(["x"]).model("bge-m3"))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::AllProvidersFailed { .. }), "{err}");
    assert!(other.embedded().is_empty());
}

#[tokio::test]
async fn the_model_comes_from_the_request_the_default_or_the_only_one() {
    let p = Arc::new(embedder("a", &["m1", "m2"]));
    let q = Arc::new(embedder("b", &["m3"]));
    // Two models configured and no default: the model must be named.
    let c = client(&[p.clone(), q.clone()]);
    let err = c.embed(EmbeddingRequest::new(["x"])).await.unwrap_err();
    let LlmError::UnknownEmbeddingModel { model, known } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(model, "");
    assert_eq!(known, &["m1", "m2", "m3"]);
    let err = c
        .embed(EmbeddingRequest::new(["x"]).model("gpt-4o"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`gpt-4o`"), "{err}");
    // A default model from the routing configuration.
    let c = LlmClient::builder()
        .provider(p.clone())
        .provider(q.clone())
        .routing(RoutingConfig {
            default_embedding_model: Some("m3".into()),
            ..RoutingConfig::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        c.embed(EmbeddingRequest::new(["x"]))
            .await
            .unwrap()
            .provider,
        "b"
    );
    // Empty batches and zero dimensions are refused naming the field.
    let err = c
        .embed(EmbeddingRequest::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
}

#[tokio::test]
async fn embeddings_are_counted_under_their_operation() {
    let reg = MetricsRegistry::new().unwrap();
    let p = Arc::new(embedder("ollama", &["nomic-embed-text"]));
    let c = LlmClient::builder()
        .provider(p)
        .no_cache()
        .telemetry(
            reg.telemetry()
                .with_models(["nomic-embed-text".to_string()]),
        )
        .build()
        .unwrap();
    c.embed(EmbeddingRequest::new(["abcd", "efgh"]).model("nomic-embed-text"))
        .await
        .unwrap();
    let text = reg.encode();
    assert!(
        text.contains(r#"llm_requests_total{model="nomic-embed-text",operation="embeddings",provider="ollama",status="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"llm_tokens_used_total{model="nomic-embed-text",operation="embeddings",provider="ollama",type="input"} 2"#),
        "{text}"
    );
}

/// A provider that answers vectors of the wrong length.
struct Short;

#[async_trait::async_trait]
impl llm_core::Provider for Short {
    fn name(&self) -> &str {
        "short"
    }
    fn kind(&self) -> &'static str {
        "short"
    }
    fn profile(&self) -> &ProviderProfile {
        static P: std::sync::OnceLock<ProviderProfile> = std::sync::OnceLock::new();
        P.get_or_init(|| ProviderProfile {
            embedding_models: vec!["m".into()],
            ..Default::default()
        })
    }
    fn supports(&self, c: llm_core::Capability, _model: &str) -> bool {
        c == llm_core::Capability::Embeddings
    }
    async fn generate(
        &self,
        _req: &llm_core::LlmRequest,
    ) -> Result<llm_core::LlmResponse, ProviderError> {
        Err(ProviderError::unsupported("short", "no chat"))
    }
    async fn embed(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<llm_core::EmbeddingResponse, ProviderError> {
        // Ignores `dimensions` and gives ragged vectors.
        let vectors = req
            .inputs
            .iter()
            .enumerate()
            .map(|(i, _)| vec![1.0; 3 + i])
            .collect();
        Ok(llm_core::EmbeddingResponse::from_provider(
            "short",
            "short",
            "m",
            vectors,
            llm_core::Usage::new(1, 0),
        ))
    }
    async fn is_available(&self) -> bool {
        true
    }
    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn vectors_of_the_wrong_length_go_to_the_next_instance() {
    let good = Arc::new(embedder("good", &["m"]));
    let c = LlmClient::builder()
        .provider(Arc::new(Short))
        .provider(good.clone())
        .no_cache()
        .build()
        .unwrap();
    // Ragged vectors: the next instance serving the model answers.
    let r = c
        .embed(
            EmbeddingRequest::new(["a", "b"])
                .model("m")
                .provider("short"),
        )
        .await
        .unwrap();
    assert_eq!(r.provider, "good");
    assert!(matches!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed { .. }
    ));
    // Asked dimensions that the answer does not have: refused the same way.
    let err = c
        .embed(
            EmbeddingRequest::new(["a"])
                .model("m")
                .provider("short")
                .dimensions(8),
        )
        .await;
    // The scripted provider gives 4 values, not 8: nobody can answer.
    assert!(err.is_err());
}

#[tokio::test]
async fn embeddings_cost_only_what_their_model_is_priced() {
    use llm_core::cost::ModelPrice;
    let mut profile = ProviderProfile {
        embedding_models: vec!["text-embedding-3-small".into(), "unpriced".into()],
        cost_per_1k_tokens: 0.01,
        ..Default::default()
    };
    profile.pricing.insert(
        "text-embedding-3-small".into(),
        ModelPrice {
            input_per_1m: 0.02,
            output_per_1m: 0.0,
            cached_input_per_1m: None,
            cache_write_per_1m: None,
        },
    );
    let p = Arc::new(ScriptedProvider::new("openai").profile(profile));
    let c = client(std::slice::from_ref(&p));
    // 1,000 inputs of 4 bytes: 1,000 tokens at $0.02 per million.
    let inputs: Vec<String> = (0..1000).map(|i| format!("{i:04}")).collect();
    let r = c
        .embed(EmbeddingRequest::new(inputs.clone()).model("text-embedding-3-small"))
        .await
        .unwrap();
    assert_eq!(r.usage.prompt_tokens, 1000);
    assert!((r.cost - 0.000_02).abs() < 1e-12, "{}", r.cost);
    // No price for the model: free, not the chat fallback price.
    let r = c
        .embed(EmbeddingRequest::new(inputs).model("unpriced"))
        .await
        .unwrap();
    assert_eq!(r.cost, 0.0);
}

/// Allowed models keep an embedding call on the instances they allow: a
/// fallback never sends the texts elsewhere; nothing allowed is refused
/// before any call.
#[tokio::test(start_paused = true)]
async fn allowed_models_keep_the_texts_on_the_allowed_instances() {
    use llm_core::ModelFilter;
    let a = Arc::new(
        embedder("ollama-a", &["nomic-embed-text"])
            .otherwise(Reply::Error(ProviderError::http("ollama-a", 500, "down"))),
    );
    let b = Arc::new(embedder("ollama-b", &["nomic-embed-text"]));
    let c = client(&[a.clone(), b.clone()]);
    let req = || {
        EmbeddingRequest::new(["x"])
            .model("nomic-embed-text")
            .provider("ollama-a")
            .cache(CacheDirective::Bypass)
    };
    let err = c
        .embed(req().allowed_models(ModelFilter::new(["ollama-a/*"])))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::AllProvidersFailed { .. }), "{err}");
    assert!(!err.to_string().contains("ollama-b"), "{err}");
    assert!(b.embedded().is_empty(), "the texts went to ollama-b");
    let r = c
        .embed(req().allowed_models(ModelFilter::new(["nomic-*"])))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama-b");
    let err = c
        .embed(req().allowed_models(ModelFilter::new(["openai/*"])))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::NotAllowed { .. }), "{err}");
    assert_eq!(b.embedded().len(), 1);
}
