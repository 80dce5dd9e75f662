//! The long chaos run: `cargo run --release -p llm-chaos --bin chaos -- --requests 100000`.
//!
//! Sends the requests through the in-process client, then through the
//! gateway (each `--requests` long), with the trouble rotating over three
//! upstreams, Redis killed and restarted, and prints a summary table per run.
//! Exits with status 1 when any invariant was broken.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use llm_chaos::suite::{run, CacheChoice, Settings, Via};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Route {
    Client,
    Gateway,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Cache {
    /// An own redis-server (killed and restarted mid-run), else memory.
    Auto,
    /// The in-process memory cache.
    Memory,
    /// An own redis-server, killed and restarted mid-run.
    Redis,
}

/// Chaos run of llm-router against fault-injecting upstreams.
#[derive(Debug, Parser)]
#[command(name = "chaos")]
struct Args {
    /// Client requests per run.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Through the client, the gateway, or both (one run each).
    #[arg(long, value_enum, default_value_t = Route::Both)]
    via: Route,
    /// Fault phases per run (default: one per 3,000 requests, at least 12, so
    /// that a phase outlasts the breaker cooldowns at release-build speed).
    #[arg(long)]
    phases: Option<usize>,
    /// Fault rate of flaky upstreams.
    #[arg(long, default_value_t = 0.5)]
    flaky_rate: f64,
    /// Share of streamed requests.
    #[arg(long, default_value_t = 0.5)]
    stream_share: f64,
    /// Share of requests repeating an earlier prompt.
    #[arg(long, default_value_t = 0.25)]
    repeat_share: f64,
    /// Padding of huge replies, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    huge_bytes: usize,
    /// Cache backend.
    #[arg(long, value_enum, default_value_t = Cache::Auto)]
    cache: Cache,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Progress line every this many requests.
    #[arg(long, default_value_t = 10_000)]
    progress: usize,
}

fn settings(a: &Args, via: Via) -> Settings {
    let cache = match a.cache {
        Cache::Memory => CacheChoice::Memory(64 * 1024 * 1024),
        Cache::Redis => CacheChoice::OwnRedis,
        Cache::Auto if llm_chaos::redis::available() => CacheChoice::OwnRedis,
        Cache::Auto => CacheChoice::Memory(64 * 1024 * 1024),
    };
    let mut s = Settings {
        requests: a.requests,
        concurrency: a.concurrency,
        phases: a.phases.unwrap_or((a.requests / 3000).max(12)),
        flaky_rate: a.flaky_rate,
        stream_share: a.stream_share,
        repeat_share: a.repeat_share,
        seed: a.seed,
        cache,
        via,
        progress_every: Some(a.progress),
        ..Settings::default()
    };
    s.chaos.huge_bytes = a.huge_bytes;
    s.chaos.hang_limit = Duration::from_secs(5);
    s
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let routes: &[Via] = match args.via {
        Route::Client => &[Via::Client],
        Route::Gateway => &[Via::Gateway],
        Route::Both => &[Via::Client, Via::Gateway],
    };
    let mut clean = true;
    for via in routes {
        eprintln!("chaos run via {via:?}: {} requests", args.requests);
        match run(settings(&args, *via)).await {
            Ok(report) => {
                println!("{}", report.table());
                clean &= report.is_clean();
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
