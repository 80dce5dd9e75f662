//! Fallback, offline: the primary provider fails, the next one answers, and
//! the response lists every attempt.
//!
//! ```sh
//! cargo run -p llm-router --example fallback
//! ```
//!
//! Two scripted providers (llm-core's test kit) stand in for OpenAI and a local
//! Ollama: "openai" answers 503 (transient: retried once, then abandoned) and
//! "ollama" answers. The default fallback map sends openai → ollama → custom.

use std::sync::Arc;

use llm_core::testing::{Reply, ScriptedProvider};
use llm_router::config::{RetryConfig, RoutingConfig, Secs};
use llm_router::{AttemptOutcome, LlmClient, LlmRequest, ProviderError};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let openai = ScriptedProvider::new("openai")
        .kind("openai")
        .models(["gpt-4o-mini"])
        .otherwise(Reply::Error(ProviderError::http(
            "openai",
            503,
            "The engine is currently overloaded, please try again later.",
        )));
    let ollama = ScriptedProvider::new("ollama")
        .kind("ollama")
        .local(true)
        .models(["llama3:8b"])
        .otherwise(Reply::text("Hello from the local model!"));

    let routing = RoutingConfig {
        retry: RetryConfig {
            max_retries: 1,
            backoff_base: Secs::from_millis(20),
            backoff_max: Secs::from_millis(100),
            ..RetryConfig::default()
        },
        ..RoutingConfig::default()
    };
    let client = LlmClient::builder()
        .provider(Arc::new(openai))
        .provider(Arc::new(ollama))
        .routing(routing)
        .build()?;

    // Ask for openai explicitly: it is tried first, then the fallback sequence.
    let request = LlmRequest::new("Say hello.")
        .max_tokens(64)
        .provider("openai");
    println!("route: {}", client.explain(&request));
    let response = client.generate(request).await?;

    println!("answer from {}: {}", response.provider, response.content);
    println!("attempts:");
    for attempt in &response.attempts {
        println!("  {attempt}");
    }
    let failed = response
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, AttemptOutcome::Failed { .. }))
        .count();
    println!(
        "{failed} provider(s) failed before {} answered ({} ms)",
        response.provider,
        response.response_time.as_millis()
    );
    Ok(())
}
