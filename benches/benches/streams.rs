//! Criterion benchmarks of stream decoding throughput, in bytes of body per
//! second.
//!
//! - `*_provider`: the provider's whole stream path (HTTP over loopback,
//!   framing, JSON decoding of every chunk, `StreamEvent`s) for a ~1 MB answer
//!   from the fake server, sent in 16 KiB frames.
//! - `client_stream_openai`: the same through `LlmClient::stream`.
//! - `*_framing_in_memory`: `llm_core::http::sse_events` / `ndjson_lines` over
//!   an in-memory body of the same bytes (framing and UTF-8 only, no JSON).
//!
//! Results and method: `docs/benchmarks.md`.
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::StreamExt;
use llm_benches::fixtures::{self, MODEL};
use llm_benches::upstream::{Upstream, UpstreamOptions};
use llm_core::http::reqwest;
use llm_router::{LlmClient, LlmRequest, Provider, ProviderProfile, ProviderSpec, StreamEvent};

/// Text fragments in each long stream: about 1 MB of SSE, 0.9 MB of NDJSON.
const OPENAI_EVENTS: usize = 4000;
const OLLAMA_LINES: usize = 7000;
/// Body frame size, like a socket read of a body written quickly.
const FRAME: usize = 16 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn profile(model: &str, local: bool) -> ProviderProfile {
    ProviderProfile {
        local,
        models: vec![model.to_string()],
        default_model: Some(model.to_string()),
        timeout: Duration::from_secs(30),
        ..ProviderProfile::default()
    }
}

/// Consumes a provider stream; returns the text length and checks it ended well.
async fn drain(mut s: llm_router::ResponseStream) -> usize {
    let mut text = 0;
    let mut done = false;
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            StreamEvent::Delta { text: t } => text += t.len(),
            StreamEvent::Done { .. } => done = true,
            _ => {}
        }
    }
    assert!(done);
    text
}

/// A reqwest response whose body is `frames`, without any socket.
fn in_memory_response(frames: &[Bytes], content_type: &str) -> reqwest::Response {
    let items: Vec<Result<Bytes, std::io::Error>> = frames.iter().cloned().map(Ok).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(items));
    let resp = hyper::Response::builder()
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    reqwest::Response::from(resp)
}

fn streams(c: &mut Criterion) {
    let rt = runtime();
    let openai_frames = fixtures::reframe(&fixtures::openai_long_stream(OPENAI_EVENTS), FRAME);
    let ollama_frames = fixtures::reframe(&fixtures::ollama_long_stream(OLLAMA_LINES), FRAME);
    let sse_len = fixtures::total_len(&openai_frames) as u64;
    let ndjson_len = fixtures::total_len(&ollama_frames) as u64;
    let up = Upstream::start(UpstreamOptions {
        openai_stream: openai_frames.clone(),
        ollama_stream: ollama_frames.clone(),
        ..UpstreamOptions::default()
    })
    .unwrap();

    let openai_spec = ProviderSpec::new("openai", "openai", profile(MODEL, false))
        .option("base_url", up.openai_base_url())
        .option("api_key", "sk-bench-not-a-real-key");
    let openai: Arc<dyn Provider> =
        Arc::new(llm_router::openai::OpenAiProvider::from_spec(&openai_spec).unwrap());
    let ollama_spec = ProviderSpec::new("ollama", "ollama", profile("llama3.2", true))
        .option("base_url", up.ollama_base_url());
    let ollama = llm_router::ollama::build(&ollama_spec).unwrap();
    let client = LlmClient::builder()
        .provider(openai.clone())
        .no_cache()
        .build()
        .unwrap();
    let req = LlmRequest::new("Tell me a long story.")
        .max_tokens(4000)
        .model(MODEL);
    let ollama_req = LlmRequest::new("Tell me a long story.")
        .max_tokens(4000)
        .model("llama3.2");
    let openai_text = fixtures::long_stream_text(OPENAI_EVENTS).len();
    let ollama_text = fixtures::long_stream_text(OLLAMA_LINES).len();
    rt.block_on(async {
        assert_eq!(drain(openai.stream(&req).await.unwrap()).await, openai_text);
        assert_eq!(
            drain(ollama.stream(&ollama_req).await.unwrap()).await,
            ollama_text
        );
        assert_eq!(
            drain(client.stream(req.clone()).await.unwrap()).await,
            openai_text
        );
    });

    let mut g = c.benchmark_group("stream_decode");
    g.throughput(Throughput::Bytes(sse_len));
    g.bench_function("openai_sse_provider", |b| {
        b.to_async(&rt)
            .iter(|| async { drain(openai.stream(&req).await.unwrap()).await });
    });
    g.bench_function("client_stream_openai", |b| {
        b.to_async(&rt)
            .iter(|| async { drain(client.stream(req.clone()).await.unwrap()).await });
    });
    g.bench_function("sse_framing_in_memory", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = in_memory_response(&openai_frames, "text/event-stream");
            let events = llm_core::http::sse_events("bench", resp, Duration::from_secs(30));
            let n = events.fold(0usize, |n, e| async move { n + e.unwrap().data.len() });
            n.await
        });
    });
    g.throughput(Throughput::Bytes(ndjson_len));
    g.bench_function("ollama_ndjson_provider", |b| {
        b.to_async(&rt)
            .iter(|| async { drain(ollama.stream(&ollama_req).await.unwrap()).await });
    });
    g.bench_function("ndjson_framing_in_memory", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = in_memory_response(&ollama_frames, "application/x-ndjson");
            let lines =
                llm_core::http::ndjson_lines("bench", resp, Duration::from_secs(30), 1 << 24);
            let n = lines.fold(0usize, |n, l| async move { n + l.unwrap().len() });
            n.await
        });
    });
    g.finish();
    drop(up);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    targets = streams
}
criterion_main!(benches);
