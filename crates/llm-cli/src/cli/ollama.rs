//! The Ollama service manager in the CLI: `llm pull` and `llm setup`. (Other
//! commands get Ollama started through the client's provider preparation.)

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;
use llm_router::config::{Config, ProviderEntry};
use llm_router::ollama::{OllamaService, ServiceStatus};

use super::progress::{MultiPull, PullDisplay};
use super::{load_client, load_config};

/// `llm pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Model to download, e.g. `llama3:8b`.
    pub model: String,
    /// Ollama instance (default: the first enabled one).
    #[arg(long, short = 'p')]
    pub provider: Option<String>,
}

fn service_of(entry: &ProviderEntry) -> anyhow::Result<OllamaService> {
    let spec = entry
        .spec
        .as_ref()
        .with_context(|| format!("provider `{}` is disabled", entry.name))?;
    Ok(OllamaService::from_spec(spec)?)
}

fn ollama_entries(config: &Config) -> impl Iterator<Item = &ProviderEntry> {
    config
        .providers
        .iter()
        .filter(|p| p.enabled && p.kind == "ollama")
}

/// Runs `llm pull`.
pub(crate) async fn pull(config_path: Option<&Path>, args: PullArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let entry = match &args.provider {
        Some(name) => {
            let Some(e) = config.provider(name) else {
                bail!("unknown provider `{name}`; `llm providers` lists the configured ones");
            };
            if e.kind != "ollama" {
                bail!(
                    "provider `{name}` is of kind `{}`; only Ollama instances can pull models",
                    e.kind
                );
            }
            e
        }
        None => match ollama_entries(&config).next() {
            Some(e) => e,
            None => bail!(
                "no enabled Ollama provider is configured; add an [llm_providers.ollama] section"
            ),
        },
    };
    let service = service_of(entry)?;
    if let Err(e) = service.ensure_running().await {
        bail!("{e}");
    }
    let mut display = PullDisplay::new(&args.model);
    let result = service.pull(&args.model, |p| display.update(p)).await;
    display.finish(result.is_ok());
    result.with_context(|| format!("cannot pull `{}`", args.model))?;
    println!("pulled {} on {}", args.model, entry.name);
    Ok(ExitCode::SUCCESS)
}

/// Runs `llm setup`.
pub(crate) async fn setup(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (config, client) = load_client(config_path)?;
    if let Some(f) = &config.file {
        println!("configuration: {}", f.display());
    } else {
        println!("configuration: built-in defaults");
    }
    for entry in ollama_entries(&config) {
        let service = match service_of(entry) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {}: {e:#}", entry.name);
                continue;
            }
        };
        match service.ensure_running().await {
            Ok(ServiceStatus::AlreadyRunning { version }) => println!(
                "ok   {}: Ollama is running{}",
                entry.name,
                version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            Ok(ServiceStatus::Started { pid, version }) => println!(
                "ok   {}: started Ollama{}{}",
                entry.name,
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                version
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default()
            ),
            Err(e) => {
                println!("FAIL {}: {e}", entry.name);
                continue;
            }
        }
        match service.missing_models().await {
            Ok(missing) if missing.is_empty() => {
                println!("ok   {}: required models present", entry.name);
            }
            Ok(missing) => {
                let mut display = MultiPull::default();
                for model in missing {
                    let r = service.pull(&model, |p| display.update(&model, p)).await;
                    display.finish(r.is_ok());
                    match r {
                        Ok(()) => println!("ok   {}: pulled {model}", entry.name),
                        Err(e) => println!("FAIL {}: cannot pull {model}: {e}", entry.name),
                    }
                }
            }
            Err(e) => println!("FAIL {}: cannot list models: {e}", entry.name),
        }
    }
    let reports = client.refresh_health().await;
    let mut working = 0;
    for r in &reports {
        if r.available == Some(true) {
            working += 1;
            println!("ok   {} ({}): available", r.provider, r.kind);
        } else {
            println!("FAIL {} ({}): not available", r.provider, r.kind);
        }
    }
    for p in config.providers.iter().filter(|p| !p.enabled) {
        println!("skip {} ({}): disabled", p.name, p.kind);
    }
    println!("{working} of {} enabled providers work", reports.len());
    if working == 0 {
        eprintln!(
            "error: no provider works. Start Ollama (`ollama serve`), set OPENAI_API_KEY or \
             ANTHROPIC_API_KEY, or enable a provider in the configuration; `llm providers` shows details"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
