//! The multi-replica harness: `cargo run --release -p llm-chaos --bin cluster`.
//!
//! Three `llm serve` processes (the `chaos-llm` binary next to this one, or
//! `--llm-bin`), one `redis-server`, two chaos upstreams and a load
//! generator that balances on readiness and retries on connection errors;
//! runs the kill, drain, reload, Redis and shared rate-limit scenarios and prints their
//! figures. Exits with status 1 when a check failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use llm_chaos::cluster::{run, ClusterSettings, Scenario};

/// Multi-replica scenarios of the llm-router gateway.
#[derive(Debug, Parser)]
#[command(name = "cluster")]
struct Args {
    /// Requests per scenario.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 48)]
    concurrency: usize,
    /// RPM limit of the virtual key of the ratelimit scenario.
    #[arg(long, default_value_t = 600)]
    rpm: u32,
    /// `[gateway] drain_delay` of the replicas, in seconds.
    #[arg(long, default_value_t = 2.0)]
    drain_delay: f64,
    /// Scenarios to run (kill, drain, reload, redis, ratelimit); default: all.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// The `llm` binary (default: `chaos-llm` next to this executable).
    #[arg(long)]
    llm_bin: Option<PathBuf>,
    /// `[gateway.store] url` the replicas share in the ratelimit scenario,
    /// e.g. `postgres://user:pass@127.0.0.1:5432/db` (default: one SQLite file).
    #[arg(long)]
    store_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let Some(llm_bin) = a.llm_bin.clone().or_else(|| {
        let sibling = std::env::current_exe()
            .ok()?
            .with_file_name(format!("chaos-llm{}", std::env::consts::EXE_SUFFIX));
        sibling.is_file().then_some(sibling)
    }) else {
        eprintln!(
            "error: no `chaos-llm` binary (cargo build -p llm-chaos --bins) and no --llm-bin"
        );
        return ExitCode::from(2);
    };
    if !llm_chaos::redis::available() {
        eprintln!("error: redis-server is not on PATH");
        return ExitCode::from(2);
    }
    let mut scenarios = Vec::new();
    for name in &a.scenarios {
        match Scenario::parse(name) {
            Some(s) => scenarios.push(s),
            None => {
                eprintln!(
                    "error: unknown scenario {name:?} (kill, drain, reload, redis, ratelimit)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let mut settings = ClusterSettings::new(llm_bin);
    settings.requests = a.requests;
    settings.concurrency = a.concurrency;
    settings.drain_delay = a.drain_delay;
    settings.rpm = a.rpm;
    settings.store_url = a.store_url.clone().map(llm_router::SecretString::from);
    if !scenarios.is_empty() {
        settings.scenarios = scenarios;
    }
    let reports = match run(&settings).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut ok = true;
    for r in &reports {
        print!("{}", r.text());
        ok &= r.passed();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
