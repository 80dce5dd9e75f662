//! Criterion benchmarks of the client path.
//!
//! - `generate/*`: one non-streaming completion from a fake OpenAI server on
//!   127.0.0.1 (keep-alive, the §2.6 body, served on the same single thread),
//!   made directly with reqwest + serde_json, with the `openai` provider
//!   alone, and through `LlmClient::generate`; the difference is the
//!   client's overhead.
//! - `client_path/*`: the client's own work with an instant provider (no I/O).
//! - `cache_hit/*`: a memory-cache hit through `LlmClient::generate`, and its parts.
//! - `explain/*`: the routing decision for a short and a long prompt.
//! - `cache_key/*`: `CacheKey::for_request` of a 100 KB prompt.
//!
//! Results and method: `docs/benchmarks.md`.
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use llm_benches::fixtures::MODEL;
use llm_benches::upstream::{Upstream, UpstreamOptions};
use llm_core::cache::{CacheKey, MemoryCache, ResponseCache};
use llm_core::http::reqwest;
use llm_core::metrics::MetricsRegistry;
use llm_router::{
    async_trait, LlmClient, LlmRequest, LlmResponse, Provider, ProviderError, ProviderProfile,
    ProviderSpec,
};
use serde::{Deserialize, Serialize};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn profile(local: bool) -> ProviderProfile {
    ProviderProfile {
        local,
        models: vec![MODEL.to_string()],
        default_model: Some(MODEL.to_string()),
        timeout: Duration::from_secs(30),
        ..ProviderProfile::default()
    }
}

fn openai(name: &str, base_url: &str, local: bool) -> Arc<dyn Provider> {
    let spec = ProviderSpec::new(name, "openai", profile(local))
        .option("base_url", base_url)
        .option("api_key", "sk-bench-not-a-real-key");
    Arc::new(llm_router::openai::OpenAiProvider::from_spec(&spec).unwrap())
}

fn ollama(name: &str, base_url: &str) -> Arc<dyn Provider> {
    let mut p = profile(true);
    p.models = vec!["llama3.2".into()];
    p.default_model = Some("llama3.2".into());
    let spec = ProviderSpec::new(name, "ollama", p).option("base_url", base_url);
    llm_router::ollama::build(&spec).unwrap()
}

/// A provider that answers at once with a fixed response: what is left of a
/// call through `LlmClient` is the client's own work.
struct InstantProvider {
    profile: ProviderProfile,
    answer: LlmResponse,
}

impl InstantProvider {
    fn new() -> Self {
        Self {
            profile: profile(false),
            answer: LlmResponse {
                content: "Hello!".into(),
                provider: "instant".into(),
                provider_kind: "instant".into(),
                model: "gpt-4o-mini-2024-07-18".into(),
                usage: llm_router::Usage::new(20, 2),
                cost: 0.0,
                response_time: Duration::ZERO,
                finish_reason: llm_router::FinishReason::Stop,
                cached: false,
                attempts: Vec::new(),
                tool_calls: Vec::new(),
                logprobs: Vec::new(),
                thinking: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl Provider for InstantProvider {
    fn name(&self) -> &str {
        "instant"
    }
    fn kind(&self) -> &'static str {
        "instant"
    }
    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }
    async fn generate(&self, _req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        Ok(self.answer.clone())
    }
    async fn is_available(&self) -> bool {
        true
    }
    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(vec![MODEL.into()])
    }
}

/// The §2.6 request.
fn request() -> LlmRequest {
    LlmRequest::new("Say hello.")
        .system("You are a terse assistant.")
        .max_tokens(50)
        .temperature(0.2)
        .model(MODEL)
}

// ---- the direct call: what an application would write with reqwest ------

#[derive(Serialize)]
struct DirectMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct DirectRequest<'a> {
    model: &'a str,
    messages: Vec<DirectMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
}

#[derive(Deserialize)]
struct DirectCompletion {
    model: String,
    choices: Vec<DirectChoice>,
    usage: DirectUsage,
}

#[derive(Deserialize)]
struct DirectChoice {
    message: DirectAnswer,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct DirectAnswer {
    content: Option<String>,
}

#[derive(Deserialize)]
struct DirectUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

struct Direct {
    http: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
}

impl Direct {
    /// The provider's client settings: `llm_core::http::client` (rustls,
    /// pooling, TCP_NODELAY, 10 s connect timeout) and the same headers.
    fn new(base_url: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static("llm-router-openai/0.1.0"),
        );
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_static("Bearer sk-bench-not-a-real-key"),
        );
        Self {
            http: llm_core::http::client(Duration::from_secs(10))
                .unwrap()
                .reqwest(),
            url: format!("{base_url}/chat/completions"),
            headers,
        }
    }

    async fn generate(&self, req: &LlmRequest) -> (String, String, Option<String>, u64) {
        let mut messages = Vec::with_capacity(2);
        if let Some(s) = req.system_prompt.as_deref() {
            messages.push(DirectMessage {
                role: "system",
                content: s,
            });
        }
        messages.extend(req.messages.iter().map(|m| DirectMessage {
            role: m.role.as_str(),
            content: &m.content,
        }));
        let body = DirectRequest {
            model: req.model.as_deref().unwrap_or(MODEL),
            messages,
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            stream: false,
        };
        let resp = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let bytes = resp.bytes().await.unwrap();
        let c: DirectCompletion = serde_json::from_slice(&bytes).unwrap();
        let choice = c.choices.into_iter().next().unwrap();
        (
            choice.message.content.unwrap_or_default(),
            c.model,
            choice.finish_reason,
            c.usage.prompt_tokens + c.usage.completion_tokens + c.usage.total_tokens,
        )
    }
}

fn generate(c: &mut Criterion) {
    let rt = runtime();
    // The server runs on the benchmark's own single-threaded runtime: a round
    // trip is then CPU work only. (With the server on another thread, each
    // request also pays two cross-thread wake-ups, which on an idle VM cost
    // tens of microseconds and swamp what is measured here.)
    let up = Upstream::start_on(rt.handle(), UpstreamOptions::default()).unwrap();
    let base = up.openai_base_url();
    let req = request();

    let direct = Direct::new(&base);
    let plain = LlmClient::builder()
        .provider(openai("openai", &base, false))
        .no_cache()
        .build()
        .unwrap();
    let registry = MetricsRegistry::new().unwrap();
    let with_metrics = LlmClient::builder()
        .provider(openai("openai", &base, false))
        .no_cache()
        .telemetry(registry.telemetry().with_models([MODEL.to_string()]))
        .build()
        .unwrap();
    // Same answer both ways, and connections warmed up.
    rt.block_on(async {
        let (text, _, _, _) = direct.generate(&req).await;
        assert_eq!(text, "Hello!");
        let r = plain.generate(req.clone()).await.unwrap();
        assert_eq!(r.content, "Hello!");
        assert_eq!(r.usage.total_tokens, 22);
        with_metrics.generate(req.clone()).await.unwrap();
    });

    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("direct_reqwest", |b| {
        b.to_async(&rt).iter(|| direct.generate(&req));
    });
    let provider = openai("openai", &base, false);
    g.bench_function("provider_openai", |b| {
        b.to_async(&rt)
            .iter(|| async { provider.generate(&req).await.unwrap() });
    });
    g.bench_function("client_openai", |b| {
        b.to_async(&rt)
            .iter(|| async { plain.generate(req.clone()).await.unwrap() });
    });
    g.bench_function("client_openai_metrics", |b| {
        b.to_async(&rt)
            .iter(|| async { with_metrics.generate(req.clone()).await.unwrap() });
    });
    // As `llm serve` runs by default: a fmt subscriber at `info`, so the
    // client's `info` spans are built and their fields formatted.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("client_openai_info_spans", |b| {
            b.to_async(&rt)
                .iter(|| async { plain.generate(req.clone()).await.unwrap() });
        });
    });
    g.finish();
    drop(up);
}

/// The client's own work, without any I/O: an instant provider called
/// directly and through `LlmClient::generate`; and some per-request steps of
/// the HTTP path, for the record.
fn client_path(c: &mut Criterion) {
    let rt = runtime();
    let req = request();
    let instant: Arc<dyn Provider> = Arc::new(InstantProvider::new());
    let client = LlmClient::builder()
        .provider(instant.clone())
        .no_cache()
        .build()
        .unwrap();
    let registry = MetricsRegistry::new().unwrap();
    let with_metrics = LlmClient::builder()
        .provider(instant.clone())
        .no_cache()
        .telemetry(registry.telemetry().with_models([MODEL.to_string()]))
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(
            client.generate(req.clone()).await.unwrap().content,
            "Hello!"
        );
    });
    let mut g = c.benchmark_group("client_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("instant_provider_direct", |b| {
        b.to_async(&rt)
            .iter(|| async { instant.generate(&req).await.unwrap() });
    });
    g.bench_function("client_instant_provider", |b| {
        b.to_async(&rt)
            .iter(|| async { client.generate(req.clone()).await.unwrap() });
    });
    g.bench_function("client_instant_provider_metrics", |b| {
        b.to_async(&rt)
            .iter(|| async { with_metrics.generate(req.clone()).await.unwrap() });
    });
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("client_instant_provider_info_spans", |b| {
            b.to_async(&rt)
                .iter(|| async { client.generate(req.clone()).await.unwrap() });
        });
    });
    g.bench_function("explain_one_provider", |b| b.iter(|| client.explain(&req)));
    // Steps the openai provider takes per request (llm-openai/src/provider.rs `post`).
    let url = "http://127.0.0.1:40000/v1/chat/completions";
    let parsed = reqwest::Url::parse(url).unwrap();
    g.bench_function("url_parse_per_request", |b| {
        b.iter(|| reqwest::Url::parse(std::hint::black_box(url)).unwrap());
    });
    g.bench_function("url_clone_pre_parsed", |b| b.iter(|| parsed.clone()));
    g.finish();
}

fn cache_hit(c: &mut Criterion) {
    let rt = runtime();
    let up = Upstream::start(UpstreamOptions::default()).unwrap();
    let base = up.openai_base_url();
    let req = request();
    let cache = Arc::new(MemoryCache::new(64 * 1024 * 1024));
    let client = LlmClient::builder()
        .provider(openai("openai", &base, false))
        .cache(cache.clone())
        .build()
        .unwrap();
    let registry = MetricsRegistry::new().unwrap();
    let with_metrics = LlmClient::builder()
        .provider(openai("openai", &base, false))
        .cache(cache.clone())
        .telemetry(registry.telemetry().with_models([MODEL.to_string()]))
        .build()
        .unwrap();
    rt.block_on(async {
        let first = client.generate(req.clone()).await.unwrap();
        assert!(!first.cached);
        let hit = client.generate(req.clone()).await.unwrap();
        assert!(hit.cached);
        assert!(with_metrics.generate(req.clone()).await.unwrap().cached);
    });
    let upstream_calls = up.requests();
    let key = CacheKey::for_request(&req);

    let mut g = c.benchmark_group("cache_hit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("client_generate_memory_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { client.generate(req.clone()).await.unwrap() });
    });
    g.bench_function("client_generate_memory_hit_metrics", |b| {
        b.to_async(&rt)
            .iter(|| async { with_metrics.generate(req.clone()).await.unwrap() });
    });
    g.bench_function("memory_cache_get", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.get(&key).await.unwrap().unwrap() });
    });
    g.bench_function("cache_key_short_prompt", |b| {
        b.iter(|| CacheKey::for_request(&req));
    });
    g.bench_function("request_clone", |b| {
        b.iter_batched(|| (), |()| req.clone(), BatchSize::SmallInput);
    });
    g.finish();
    // Only misses reach the server (plus background health probes).
    assert!(up.requests() <= upstream_calls + 2);
    drop(up);
}

/// A 100-input embedding batch answered wholly from the memory cache
/// through `LlmClient::embed`: keys, one lookup per input, reassembly. Once
/// with sentence-sized inputs (~40 bytes), once with paragraph-sized ones
/// (~800 bytes, where hashing the text for its key shows).
fn embed_cached_batch(c: &mut Criterion) {
    use llm_core::testing::ScriptedProvider;
    use llm_core::{EmbeddingRequest, ProviderProfile};

    let rt = runtime();
    let provider = ScriptedProvider::new("ollama").profile(ProviderProfile {
        embedding_models: vec!["nomic-embed-text".into()],
        ..Default::default()
    });
    let provider = Arc::new(provider);
    let client = LlmClient::builder()
        .provider(provider.clone())
        .cache(Arc::new(MemoryCache::new(64 * 1024 * 1024)))
        .build()
        .unwrap();
    let batch = |sentences: usize| {
        let inputs: Vec<String> = (0..100)
            .map(|i| format!("第{i}章：{}", "主角在雨夜里回到了故乡。".repeat(sentences)))
            .collect();
        EmbeddingRequest::new(inputs).model("nomic-embed-text")
    };
    let short = batch(1);
    let long = batch(20);
    rt.block_on(async {
        for req in [&short, &long] {
            client.embed(req.clone()).await.unwrap();
            assert_eq!(client.embed(req.clone()).await.unwrap().cached_inputs, 100);
        }
    });
    let calls = provider.embedded().len();

    let mut g = c.benchmark_group("embed");
    g.throughput(Throughput::Elements(100));
    g.bench_function("client_embed_100_short_inputs_all_cached", |b| {
        b.to_async(&rt)
            .iter(|| async { client.embed(short.clone()).await.unwrap() });
    });
    g.bench_function("client_embed_100_paragraphs_all_cached", |b| {
        b.to_async(&rt)
            .iter(|| async { client.embed(long.clone()).await.unwrap() });
    });
    g.finish();
    assert_eq!(
        provider.embedded().len(),
        calls,
        "every batch was a cache hit"
    );
}

fn explain(c: &mut Criterion) {
    // Three instances, as a typical configuration has: remote OpenAI, a
    // local OpenAI-compatible server and Ollama. No request is sent.
    let client = LlmClient::builder()
        .provider(openai("openai", "https://api.openai.com/v1", false))
        .provider(openai("vllm", "http://127.0.0.1:9/v1", true))
        .provider(ollama("ollama", "http://127.0.0.1:9"))
        .no_cache()
        .build()
        .unwrap();
    let short = LlmRequest::new("Say hello.").max_tokens(100);
    // 4,000 characters and max_tokens 2,500: neither simple nor complex by
    // length, so the keyword scan runs over the whole prompt (the slowest path).
    let long_text: String = "The quick brown fox jumps over the lazy dog. 人工智能正在改变世界。"
        .chars()
        .cycle()
        .take(4000)
        .collect();
    let long = LlmRequest::new(long_text).max_tokens(2500);
    assert!(client.explain(&short).primary().is_some());
    assert_eq!(
        client.explain(&long).classification.class,
        llm_core::router::TaskClass::Standard
    );

    let mut g = c.benchmark_group("explain");
    g.throughput(Throughput::Elements(1));
    g.bench_function("short_prompt", |b| b.iter(|| client.explain(&short)));
    g.bench_function("long_prompt_4k_chars", |b| b.iter(|| client.explain(&long)));
    g.finish();
}

fn cache_key(c: &mut Criterion) {
    let prompt: String = "Lorem ipsum dolor sit amet, 中文内容也在其中。"
        .chars()
        .cycle()
        .take(100_000)
        .collect::<String>();
    // Exactly 100 KB of UTF-8.
    let mut prompt = prompt;
    while prompt.len() > 100_000 {
        prompt.pop();
    }
    let user = LlmRequest::new(prompt.clone()).model(MODEL);
    let system = LlmRequest::new("Summarize.").system(prompt).model(MODEL);
    let mut g = c.benchmark_group("cache_key");
    g.throughput(Throughput::Bytes(100_000));
    g.bench_function("for_request_100kB_prompt", |b| {
        b.iter(|| CacheKey::for_request(&user));
    });
    g.bench_function("for_request_100kB_system_prompt", |b| {
        b.iter(|| CacheKey::for_request(&system));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = generate, client_path, cache_hit, embed_cached_batch, explain, cache_key
}
criterion_main!(benches);
