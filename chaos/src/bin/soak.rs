//! The soak: `cargo run --release -p llm-chaos --bin soak -- --requests 100000`.
//!
//! Sends the requests through the gateway with cache churn, streams and a few
//! faults, sampling the gateway's RSS every `--checkpoint` requests. The
//! gateway is a separate `llm serve` process when the `llm` binary is found
//! (`--llm-bin`, else next to this executable: build it first with
//! `cargo build --release -p llm-cli`), otherwise in-process. Exits with
//! status 1 when RSS grew more than the bound between the first checkpoint
//! and the end, or when an answer broke the contract.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use llm_chaos::soak::{run, SoakSettings};

/// Memory soak of the llm-router gateway.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// Requests in all.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// RSS sample every this many requests (the first one is the baseline).
    #[arg(long, default_value_t = 10_000)]
    checkpoint: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Distinct prompts (more than the cache holds).
    #[arg(long, default_value_t = 50_000)]
    prompts: usize,
    /// Gateway memory cache budget in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    cache_bytes: u64,
    /// The `llm` binary (default: `llm` next to this executable, if built).
    #[arg(long)]
    llm_bin: Option<PathBuf>,
    /// Run the gateway in this process even if the `llm` binary exists.
    #[arg(long)]
    in_process: bool,
    /// Largest accepted RSS growth from the first checkpoint to the end, in MiB.
    #[arg(long, default_value_t = 16.0)]
    max_growth_mib: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let llm_bin = if a.in_process {
        None
    } else {
        a.llm_bin.clone().or_else(|| {
            let sibling = std::env::current_exe().ok()?.with_file_name("llm");
            sibling.is_file().then_some(sibling)
        })
    };
    if llm_bin.is_none() && !a.in_process {
        eprintln!("note: no `llm` binary found (cargo build --release -p llm-cli); the gateway runs in-process");
    }
    let report = match run(SoakSettings {
        requests: a.requests,
        checkpoint: a.checkpoint,
        concurrency: a.concurrency,
        prompts: a.prompts,
        cache_bytes: a.cache_bytes,
        llm_bin,
        ..SoakSettings::default()
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.table());
    let growth_ok = report
        .first_and_last()
        .is_some_and(|(first, last)| (last as f64 - first as f64) / 1024.0 <= a.max_growth_mib);
    if growth_ok && report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
