//! One request through real providers.
//!
//! ```sh
//! cargo run -p llm-router --example quickstart -- "Write a haiku about Rust."
//! ```
//!
//! Loads the configuration (`$LLM_CONFIG`, else `config/llm_providers.toml`,
//! else built-in defaults), builds a client from it and sends one prompt. The
//! router picks the provider: a short prompt with a small `max_tokens` goes to
//! the cheapest local provider (Ollama), a long or creative one to the
//! strongest; when the pick fails, the next provider answers.

use llm_router::config::Config;
use llm_router::{LlmClient, LlmRequest};

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
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Say hello in one short sentence.".to_string());
    let client = LlmClient::from_config(&Config::load(None)?)?;

    let request = LlmRequest::new(prompt).max_tokens(200);
    println!("route: {}", client.explain(&request));
    let response = client.generate(request).await?;

    println!("\n{}\n", response.content.trim());
    println!(
        "provider {} ({}), model {}, {} tokens, ${:.6}, {} ms",
        response.provider,
        response.provider_kind,
        response.model,
        response.tokens_used(),
        response.cost,
        response.response_time.as_millis()
    );
    Ok(())
}
