//! The `llm` command line: argument parsing, logging, and one module per
//! subcommand. Logs go to stderr, results to stdout; a failure exits with 1.

mod embed;
mod generate;
mod hints;
mod inventory;
mod keys;
mod ollama;
mod progress;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use llm_router::config::Config;
use llm_router::LlmClient;

/// One client for many LLM providers: generate, embed, route, inspect, pull models,
/// and serve an OpenAI-compatible gateway.
#[derive(Debug, Parser)]
#[command(name = "llm", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: $LLM_CONFIG, else config/llm_providers.toml
    /// in the working directory, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output on stderr (-q errors only, -qq nothing).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an answer to a prompt.
    Generate(generate::GenerateArgs),
    /// Embed texts: one vector per text (dimensions and first values, or JSON).
    Embed(embed::EmbedArgs),
    /// Show how a prompt would be routed (no upstream call).
    Route(generate::RouteArgs),
    /// List compiled-in provider kinds and configured instances with their health.
    Providers(inventory::ProvidersArgs),
    /// List the models of each provider instance (configured and live).
    Models(inventory::ModelsArgs),
    /// Download a model to an Ollama instance.
    Pull(ollama::PullArgs),
    /// Start Ollama, pull required models and check every provider.
    Setup,
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve the OpenAI-compatible gateway.
    Serve(serve::ServeArgs),
    /// Virtual keys of the gateway (in the configured store).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Spend per key, model or day, from the gateway's spend log.
    Usage(keys::UsageArgs),
}

/// `llm config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: prints `ok`, or the error with file and line.
    Check(CheckArgs),
}

/// `llm config check [PATH]`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file to check (default: as for --config).
    pub path: Option<PathBuf>,
}

/// Entry point of the binary: parses arguments, runs, maps errors to exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Generate(args) => generate::generate(config_path, args).await,
        Command::Embed(args) => embed::embed(config_path, args).await,
        Command::Route(args) => generate::route(config_path, args).await,
        Command::Providers(args) => inventory::providers(config_path, args).await,
        Command::Models(args) => inventory::models(config_path, args).await,
        Command::Pull(args) => ollama::pull(config_path, args).await,
        Command::Setup => ollama::setup(config_path).await,
        Command::Config(ConfigCommand::Check(args)) => {
            serve::check(args.path.as_deref().or(config_path))
        }
        Command::Serve(args) => serve::serve(config_path, args).await,
        Command::Keys(cmd) => keys::keys(config_path, cmd).await,
        Command::Usage(args) => keys::usage(config_path, args).await,
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let base: i16 = if matches!(cli.command, Command::Serve(_)) {
        2
    } else {
        1
    };
    let level = base + i16::from(cli.verbose) - i16::from(cli.quiet);
    let directive = match level {
        i16::MIN..=-1 => "off",
        0 => "error",
        1 => "warn",
        // llm-core emits no `info` events, only `info` spans (`llm.client`,
        // `llm.attempt`) whose fields the formatter would render on every
        // request without ever printing them: about 25 µs of the gateway's
        // CPU per request at saturation (docs/benchmarks.md, "Performance
        // round two"). `-v` or `RUST_LOG` brings
        // them back as context of the lines they enclose.
        2 => "info,llm_core=warn",
        3 => "debug",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(directive));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cli.log_format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Loads the configuration (see [`Cli::config`]).
pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// Loads the configuration and builds a client from it.
pub(crate) fn load_client(path: Option<&Path>) -> anyhow::Result<(Config, LlmClient)> {
    let config = load_config(path)?;
    // Providers are prepared before their first attempt: an Ollama instance
    // that is down is started (and its required models pulled), fallbacks included.
    let client = LlmClient::builder()
        .config(&config)
        .and_then(|b| b.prepare_providers(true).build())
        .context("cannot build the client")?;
    Ok((config, client))
}

/// Pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
