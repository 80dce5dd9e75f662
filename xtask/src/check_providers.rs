//! `cargo xtask check-providers [--config PATH]`: the provider test script of
//! the original design. For every configured provider: is it available, which
//! models does it list, and does one tiny generation work? Prints an aligned
//! table; exits with 1 when no provider works.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use llm_router::config::Config;
use llm_router::{LlmRequest, LlmResponse, Provider, ProviderError};

/// The prompt of the tiny generation.
const PROMPT: &str = "Say hello.";
/// Its `max_tokens`.
const MAX_TOKENS: u32 = 16;
/// Longest cell text.
const CELL: usize = 60;

/// Arguments of `check-providers`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Configuration file (default: $LLM_CONFIG, else config/llm_providers.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// What one enabled provider did.
struct Report {
    available: bool,
    models: Result<Vec<String>, ProviderError>,
    generation: Result<(LlmResponse, Duration), ProviderError>,
}

/// Runs the task.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let source = Config::locate(args.config.as_deref()).map_or_else(
        || "built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    let config = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rows = runtime.block_on(check_all(&config));
    println!("configuration: {source}\n");
    let working = rows.iter().filter(|r| r.works).count();
    let table: Vec<Vec<String>> = rows.into_iter().map(|r| r.cells).collect();
    print_table(
        &["PROVIDER", "KIND", "AVAILABLE", "MODELS", "GENERATION"],
        &table,
    );
    let enabled = config.providers.iter().filter(|p| p.enabled).count();
    println!("\n{working} of {enabled} enabled provider(s) work");
    if working == 0 {
        eprintln!("error: no provider works");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

struct Row {
    cells: Vec<String>,
    works: bool,
}

/// Checks every enabled provider concurrently; rows in configuration order.
async fn check_all(config: &Config) -> Vec<Row> {
    let tasks: Vec<_> = config
        .providers
        .iter()
        .map(|entry| {
            let instance = entry.instance.clone();
            tokio::spawn(async move {
                match instance {
                    Some(p) => Some(check(p).await),
                    None => None,
                }
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(tasks.len());
    for (entry, task) in config.providers.iter().zip(tasks) {
        let report = task.await.ok().flatten();
        let (cells, works) = match report {
            None if !entry.enabled => (vec!["disabled".into(), "-".into(), "-".into()], false),
            None => (
                vec!["-".into(), "-".into(), "the check panicked".into()],
                false,
            ),
            Some(r) => {
                let works = r.generation.is_ok();
                (
                    vec![
                        if r.available { "yes" } else { "no" }.to_string(),
                        models_cell(&r.models),
                        generation_cell(&r.generation),
                    ],
                    works,
                )
            }
        };
        let mut row = vec![entry.name.clone(), entry.kind.clone()];
        row.extend(cells);
        rows.push(Row { cells: row, works });
    }
    rows
}

/// Availability, models and one generation, one after the other.
async fn check(p: Arc<dyn Provider>) -> Report {
    let available = p.is_available().await;
    let models = p.models().await;
    let started = Instant::now();
    let generation = p
        .generate(&LlmRequest::new(PROMPT).max_tokens(MAX_TOKENS))
        .await
        .map(|r| (r, started.elapsed()));
    Report {
        available,
        models,
        generation,
    }
}

fn models_cell(models: &Result<Vec<String>, ProviderError>) -> String {
    match models {
        Ok(m) if m.is_empty() => "none listed".to_string(),
        Ok(m) => one_line(&format!("{} ({})", m.len(), m.join(", "))),
        Err(e) => one_line(&format!("error: {}", e.message)),
    }
}

fn generation_cell(generation: &Result<(LlmResponse, Duration), ProviderError>) -> String {
    match generation {
        Ok((r, elapsed)) => one_line(&format!(
            "ok {:.2} s, {} tokens, {}: {}",
            elapsed.as_secs_f64(),
            r.tokens_used(),
            r.model,
            r.content.trim()
        )),
        Err(e) => {
            let what = match e.status {
                Some(s) => format!("HTTP {s}"),
                None => format!("{:?}", e.kind).to_lowercase(),
            };
            one_line(&format!("failed ({what}): {}", e.message))
        }
    }
}

/// `text` on one line, at most [`CELL`] characters.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= CELL {
        return flat;
    }
    let mut cut: String = flat.chars().take(CELL - 1).collect();
    cut.push('…');
    cut
}

/// Prints rows as aligned columns (widths in characters).
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_one_short_line() {
        assert_eq!(one_line("a\n  b"), "a b");
        let long = "x".repeat(100);
        assert_eq!(one_line(&long).chars().count(), CELL);
        assert!(one_line(&long).ends_with('…'));
    }
}
