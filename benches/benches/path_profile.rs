//! A fixed number of client calls of one scenario, for instruction counts
//! under callgrind, which (unlike wall-clock time) do not depend on what else
//! runs on the machine:
//!
//! ```sh
//! cargo bench -p llm-benches --bench path_profile --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/deps/path_profile-<hash> client_instant_provider 2000
//! ```
//!
//! Each scenario warms up (the first calls allocate caches, intern metric
//! series), then makes `n` calls; the instructions of one call are
//! `(Ir(n) − Ir(0)) / n`, which cancels start-up and set-up.
//!
//! Scenarios (the criterion benchmark of the same name in `client.rs`):
//! `client_instant_provider`, `client_instant_provider_metrics`,
//! `client_instant_provider_info_spans`, `client_generate_memory_hit`,
//! `client_generate_memory_hit_metrics`, `embed_short`, `embed_paragraphs`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use llm_benches::fixtures::MODEL;
use llm_core::cache::MemoryCache;
use llm_core::metrics::MetricsRegistry;
use llm_router::{
    async_trait, LlmClient, LlmRequest, LlmResponse, Provider, ProviderError, ProviderProfile,
};

fn profile() -> ProviderProfile {
    ProviderProfile {
        models: vec![MODEL.to_string()],
        default_model: Some(MODEL.to_string()),
        timeout: Duration::from_secs(30),
        ..ProviderProfile::default()
    }
}

/// The instant provider of `client.rs`: a fixed answer at once.
struct InstantProvider {
    profile: ProviderProfile,
    answer: LlmResponse,
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

fn instant() -> Arc<dyn Provider> {
    let answer = LlmResponse {
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
    };
    Arc::new(InstantProvider {
        profile: profile(),
        answer,
    })
}

/// The §2.6 request of `client.rs`.
fn request() -> LlmRequest {
    LlmRequest::new("Say hello.")
        .system("You are a terse assistant.")
        .max_tokens(50)
        .temperature(0.2)
        .model(MODEL)
}

fn client(cache: bool, metrics: Option<&MetricsRegistry>) -> LlmClient {
    let mut b = LlmClient::builder().provider(instant());
    b = if cache {
        b.cache(Arc::new(MemoryCache::new(64 * 1024 * 1024)))
    } else {
        b.no_cache()
    };
    if let Some(r) = metrics {
        b = b.telemetry(r.telemetry().with_models([MODEL.to_string()]));
    }
    b.build().unwrap()
}

fn generate_loop(rt: &tokio::runtime::Runtime, client: &LlmClient, n: usize) {
    let req = request();
    rt.block_on(async {
        for _ in 0..50 {
            std::hint::black_box(client.generate(req.clone()).await.unwrap());
        }
        for _ in 0..n {
            std::hint::black_box(client.generate(req.clone()).await.unwrap());
        }
    });
}

fn embed_loop(rt: &tokio::runtime::Runtime, sentences: usize, n: usize) {
    use llm_core::testing::ScriptedProvider;
    use llm_core::EmbeddingRequest;

    let provider = ScriptedProvider::new("ollama").profile(ProviderProfile {
        embedding_models: vec!["nomic-embed-text".into()],
        ..Default::default()
    });
    let client = LlmClient::builder()
        .provider(Arc::new(provider))
        .cache(Arc::new(MemoryCache::new(64 * 1024 * 1024)))
        .build()
        .unwrap();
    let inputs: Vec<String> = (0..100)
        .map(|i| format!("第{i}章：{}", "主角在雨夜里回到了故乡。".repeat(sentences)))
        .collect();
    let req = EmbeddingRequest::new(inputs).model("nomic-embed-text");
    rt.block_on(async {
        for _ in 0..20 {
            std::hint::black_box(client.embed(req.clone()).await.unwrap());
        }
        assert_eq!(client.embed(req.clone()).await.unwrap().cached_inputs, 100);
        for _ in 0..n {
            std::hint::black_box(client.embed(req.clone()).await.unwrap());
        }
    });
}

fn main() {
    // `cargo bench` runs every bench target with `--bench`: nothing to do then.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(scenario), Some(n)) = (args.first(), args.get(1)) else {
        return;
    };
    let n: usize = n.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = MetricsRegistry::new().unwrap();
    match scenario.as_str() {
        "client_instant_provider" => generate_loop(&rt, &client(false, None), n),
        "client_instant_provider_metrics" => {
            generate_loop(&rt, &client(false, Some(&registry)), n);
        }
        "client_instant_provider_info_spans" => {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(std::io::sink)
                .with_target(false)
                .finish();
            let c = client(false, None);
            tracing::subscriber::with_default(subscriber, || generate_loop(&rt, &c, n));
        }
        "client_generate_memory_hit" => generate_loop(&rt, &client(true, None), n),
        "client_generate_memory_hit_metrics" => {
            generate_loop(&rt, &client(true, Some(&registry)), n);
        }
        "embed_short" => embed_loop(&rt, 1, n),
        "embed_paragraphs" => embed_loop(&rt, 20, n),
        other => panic!("unknown scenario {other}"),
    }
}
