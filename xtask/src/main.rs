//! `cargo xtask`: maintenance tasks for this workspace.
//!
//! ```text
//! cargo xtask new-provider NAME [--path DIR] [--core-path PATH]
//! cargo xtask check-providers [--config PATH]
//! cargo xtask bench [ARGS…]
//! cargo xtask ci
//! ```

mod check_providers;
mod new_provider;
mod templates;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Maintenance tasks of the llm-router workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Scaffold a provider crate: `crates/llm-NAME` in this workspace (wired
    /// into the `llm-router` facade behind the feature NAME), or a standalone
    /// crate at `--path DIR`.
    NewProvider(new_provider::Args),
    /// Check every configured provider: availability, models and one tiny
    /// generation. Exits with 1 when no provider works.
    CheckProviders(check_providers::Args),
    /// Run the benchmarks: `cargo bench --workspace`, or `cargo bench ARGS…`
    /// when the arguments choose packages (`-p llm-core -- --quick`).
    Bench {
        /// Arguments passed on to `cargo bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run exactly what CI runs (`.ci/run`).
    Ci,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::NewProvider(args) => new_provider::run(&args).map(|()| ExitCode::SUCCESS),
        Task::CheckProviders(args) => check_providers::run(&args),
        Task::Bench { args } => {
            bench(&raw_bench_args().unwrap_or(args)).map(|()| ExitCode::SUCCESS)
        }
        Task::Ci => ci().map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory, or
/// `$XTASK_WORKSPACE_ROOT` (to try `new-provider` on a copy of the workspace).
pub(crate) fn workspace_root() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os("XTASK_WORKSPACE_ROOT").filter(|r| !r.is_empty()) {
        return Ok(PathBuf::from(root));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask lives inside the workspace")
}

/// The arguments after `bench` exactly as given (clap drops a leading `--`,
/// which `cargo bench -- --quick` needs).
fn raw_bench_args() -> Option<Vec<String>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let at = all.iter().position(|a| a == "bench")?;
    Some(all[at + 1..].to_vec())
}

/// Runs `cargo bench` with `args` (over the whole workspace unless they name packages).
fn bench(args: &[String]) -> Result<()> {
    if args.first().is_some_and(|a| a == "gateway") {
        bail!("`cargo xtask bench gateway` is not available yet; `cargo xtask bench` runs the criterion benchmarks");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Every package unless the arguments (before `--`) choose some.
    let chooses = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p"));
    let mut full = vec!["bench".to_string()];
    if !chooses {
        full.push("--workspace".into());
    }
    full.extend(args.iter().cloned());
    eprintln!("running: cargo {}", full.join(" "));
    let status = Command::new(cargo)
        .args(&full)
        .current_dir(workspace_root()?)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed: {status}");
    }
    Ok(())
}

/// Runs `.ci/run` from the workspace root.
fn ci() -> Result<()> {
    let status = Command::new("bash")
        .arg(".ci/run")
        .current_dir(workspace_root()?)
        .status()
        .context("running .ci/run")?;
    if !status.success() {
        bail!(".ci/run failed: {status}");
    }
    Ok(())
}
