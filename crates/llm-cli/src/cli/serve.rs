//! `llm serve` and `llm config check`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use llm_router::config::Config;
use llm_router::LlmClient;
use tokio::task::JoinSet;

use super::load_config;
use crate::gateway::{Gateway, Shutdown};

/// `llm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default: `[gateway] addr`, else 127.0.0.1:8000).
    #[arg(long)]
    pub addr: Option<String>,
}

/// Runs `llm serve` until SIGINT or SIGTERM.
///
/// Providers are prepared at start-up, in the background (an Ollama instance
/// that is down is started and its required models pulled, with progress in
/// the log), and the health of every provider is refreshed as each one is
/// ready, so it takes requests from then on. Requests never prepare a
/// provider: a pull can take many minutes.
pub(crate) async fn serve(config_path: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let client = LlmClient::builder()
        .config(&config)
        .and_then(|b| b.prepare_providers(false).build())
        .context("cannot build the client")?;
    let addr = args.addr.unwrap_or_else(|| config.gateway.addr.clone());
    let handle = Gateway::from_config(client.clone(), &config)
        .cors_origins(&config.gateway.cors_origins)?
        .bind(&addr)
        .await?;
    let local = handle.local_addr();
    // The address is the command's result: scripts (and `--addr 127.0.0.1:0`) read it.
    println!("listening on http://{local} (OpenAI base URL: http://{local}/v1)");
    let preparing = tokio::spawn(prepare_providers(client));
    let shutdown = handle.run_until_signal().await;
    preparing.abort();
    match shutdown {
        Shutdown::Graceful => Ok(ExitCode::SUCCESS),
        Shutdown::Forced => {
            eprintln!("warning: in-flight requests were cut off after the shutdown grace period");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prepares every provider concurrently; after each one (or each batch that
/// ends together) the health of all providers is refreshed.
async fn prepare_providers(client: LlmClient) {
    let mut preparing = JoinSet::new();
    for provider in client.providers() {
        preparing.spawn(async move {
            let result = provider.prepare().await;
            (provider.name().to_string(), result)
        });
    }
    let report = |done: Result<(String, Result<(), llm_router::ProviderError>), _>| match done {
        Ok((name, Ok(()))) => tracing::debug!(provider = %name, "provider prepared"),
        Ok((name, Err(e))) => {
            tracing::warn!(provider = %name, error = %e, "cannot prepare the provider");
        }
        Err(e) => tracing::warn!(error = %e, "a provider preparation ended abnormally"),
    };
    while let Some(done) = preparing.join_next().await {
        report(done);
        while let Some(done) = preparing.try_join_next() {
            report(done);
        }
        client.refresh_health().await;
    }
}

/// Runs `llm config check`: `ok …` on stdout, or the located error (exit 1).
pub(crate) fn check(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let located = Config::locate(path);
    let config = Config::load(path)?;
    let enabled: Vec<&str> = config
        .providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.name.as_str())
        .collect();
    let source = located.map_or_else(
        || "built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    println!(
        "ok: {source} ({} provider(s), enabled: {})",
        config.providers.len(),
        if enabled.is_empty() {
            "none".to_string()
        } else {
            enabled.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
