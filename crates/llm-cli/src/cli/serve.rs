//! `llm serve` and `llm config check`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use llm_router::config::Config;

use super::load_client;
use crate::gateway::{Gateway, Shutdown};

/// `llm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default: `[gateway] addr`, else 127.0.0.1:8000).
    #[arg(long)]
    pub addr: Option<String>,
}

/// Runs `llm serve` until SIGINT or SIGTERM.
pub(crate) async fn serve(config_path: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, client) = load_client(config_path)?;
    let addr = args.addr.unwrap_or_else(|| config.gateway.addr.clone());
    let handle = Gateway::new(client, &config.gateway).bind(&addr).await?;
    let local = handle.local_addr();
    // The address is the command's result: scripts (and `--addr 127.0.0.1:0`) read it.
    println!("listening on http://{local} (OpenAI base URL: http://{local}/v1)");
    match handle.run_until_signal().await {
        Shutdown::Graceful => Ok(ExitCode::SUCCESS),
        Shutdown::Forced => {
            eprintln!("warning: in-flight requests were cut off after the shutdown grace period");
            Ok(ExitCode::SUCCESS)
        }
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
