//! `cargo xtask`: maintenance tasks for this workspace.
//!
//! ```text
//! cargo xtask new-provider NAME [--path DIR] [--core-path PATH]
//! cargo xtask check-providers [--config PATH]
//! cargo xtask bench [ARGS…]          criterion benchmarks
//! cargo xtask bench gateway [ARGS…]  gateway load harness (direct vs. through `llm serve`)
//! cargo xtask chaos [ARGS…]          long chaos run (100,000 requests)
//! cargo xtask soak [ARGS…]           gateway memory soak (100,000 requests)
//! cargo xtask fuzz [SECS] [TARGET…]  bounded cargo-fuzz runs
//! cargo xtask sbom [--output PATH]   CycloneDX SBOM of the `llm` binary's crates
//! cargo xtask repro [--worktree]     two release builds of `llm`, same bytes?
//! cargo xtask ci
//! ```

mod check_providers;
mod new_provider;
mod repro;
mod sbom;
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
    /// The long chaos run: 100,000 requests across faulty upstreams, with a
    /// summary table (`cargo run --release -p llm-chaos --bin chaos`).
    Chaos {
        /// Arguments passed on to the `chaos` binary (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The gateway memory soak: RSS after 10,000 and 100,000 requests.
    Soak {
        /// Arguments passed on to the `soak` binary (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bounded fuzzing of every target with cargo-fuzz (`fuzz/run.sh`).
    Fuzz {
        /// Seconds per target, then target names (default: 60 s, all).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write a CycloneDX 1.5 SBOM of the `llm` binary's crates (default:
    /// `target/sbom/llm-router.cdx.json`).
    Sbom(sbom::Args),
    /// Check that the release build of `llm` is reproducible: build it twice
    /// in different directories with paths remapped and compare the SHA-256
    /// of the two binaries (exit code 1 when they differ).
    Repro(repro::Args),
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
        Task::Chaos { args } => cargo_run("chaos", &["--requests", "100000"], &args),
        Task::Soak { args } => {
            build_cli().and_then(|()| cargo_run("soak", &["--requests", "100000"], &args))
        }
        Task::Fuzz { args } => {
            run_in_root("bash", &[&["fuzz/run.sh".to_string()], &args[..]].concat())
        }
        Task::Sbom(args) => sbom::run(&args).map(|()| ExitCode::SUCCESS),
        Task::Repro(args) => repro::run(&args),
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
        return build_cli().and_then(|()| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut full: Vec<String> = [
                "run",
                "--release",
                "-p",
                "llm-benches",
                "--bin",
                "gateway_bench",
                "--",
            ]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
            full.extend(args[1..].iter().cloned());
            let status = Command::new(cargo)
                .args(&full)
                .current_dir(workspace_root()?)
                .status()
                .context("running the gateway load harness")?;
            if !status.success() {
                bail!("the gateway load harness failed: {status}");
            }
            Ok(())
        });
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

/// Builds the release `llm` binary that the harnesses start.
fn build_cli() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "llm-cli"])
        .current_dir(workspace_root()?)
        .status()
        .context("building llm-cli")?;
    if !status.success() {
        bail!("building llm-cli failed: {status}");
    }
    Ok(())
}

/// `cargo run --release -p llm-chaos --bin BIN -- DEFAULTS ARGS`; the defaults
/// are dropped when `args` are given.
fn cargo_run(bin: &str, defaults: &[&str], args: &[String]) -> Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut full: Vec<String> = ["run", "--release", "-p", "llm-chaos", "--bin", bin, "--"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    if args.is_empty() {
        full.extend(defaults.iter().map(|s| (*s).to_string()));
    } else {
        full.extend(args.iter().cloned());
    }
    run_in_root(&cargo.to_string_lossy(), &full)
}

/// Runs a program from the workspace root, passing its exit status on.
fn run_in_root(program: &str, args: &[String]) -> Result<ExitCode> {
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root()?)
        .status()
        .with_context(|| format!("running {program}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
