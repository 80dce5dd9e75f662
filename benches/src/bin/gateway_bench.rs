//! Load test of the gateway (`llm serve`) against a fast fake OpenAI upstream.
//!
//! ```text
//! cargo xtask bench gateway [--runs 3] [--rates 100,1000,3000] [--duration 10] …
//! ```
//!
//! For each rate it drives the same constant-arrival-rate load first straight
//! at the upstream, then through the gateway, and prints per-percentile
//! latencies, the overhead (gateway − direct), the gateway's CPU and peak RSS.
//! Then, in the same run: closed-loop throughput (32 connections sending back
//! to back, direct and through the gateway), streams (added time to first
//! token at 1,000 streams/s, CPU per stream), long paced streams (CPU per
//! chunk) and idle open streams (RSS per stream). It ends with the medians
//! of the runs in one table of every mode. Everything runs on
//! 127.0.0.1. See `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use llm_benches::fixtures;
use llm_benches::gateway::{self, GatewayProcess, PromHistogram};
use llm_benches::load::{self, LoadReport, LoadSpec, Mode, Pool, Target};
use llm_benches::procstat::{self, ProcSample};
use llm_benches::stats::{ms, ms_signed, spread, Spread};
use llm_benches::upstream::{Upstream, UpstreamOptions};

/// Open-loop load test of `llm serve` versus the upstream it fronts.
#[derive(Debug, Parser)]
#[command(name = "gateway_bench")]
struct Args {
    /// Request rates (per second) to test, in order.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,3000")]
    rates: Vec<f64>,
    /// Connections of the closed-loop throughput test; 0 skips it.
    #[arg(long, default_value_t = 32)]
    closed_connections: usize,
    /// Rate of the long-stream test (streams per second; CPU per chunk); 0 skips it.
    #[arg(long, default_value_t = 100.0)]
    long_stream_rate: f64,
    /// Pause between the long stream's chunks, in milliseconds (0: all at once).
    #[arg(long, default_value_t = 1)]
    chunk_interval_ms: u64,
    /// Streams held open idle to measure memory per open stream; 0 skips it.
    #[arg(long, default_value_t = 1000)]
    held_streams: usize,
    /// `[gateway] workers` of `llm serve` (default: its own default).
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds of measured load per rate and path.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unmeasured load before each measurement (same rate).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Fixed delay of the fake upstream before each response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    upstream_delay_ms: u64,
    /// Repetitions of the whole sweep (medians and ranges are printed for >1).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Rate of the streaming (time-to-first-token) comparison; 0 skips it.
    #[arg(long, default_value_t = 1000.0)]
    stream_rate: f64,
    /// Upper bound on requests in flight (a request beyond it is an error).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Upper bound on requests per measurement.
    #[arg(long, default_value_t = 200_000)]
    max_requests: usize,
    /// The `llm` binary to run (default: target/release/llm, built first).
    #[arg(long)]
    llm_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p llm-cli` first.
    #[arg(long)]
    no_build: bool,
    /// Environment of `llm serve`, `KEY=VALUE` (repeatable), e.g.
    /// `RUST_LOG=warn` or `TOKIO_WORKER_THREADS=1`.
    #[arg(long = "gateway-env", value_parser = parse_env)]
    gateway_env: Vec<(String, String)>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// One rate of one run.
#[derive(Debug, Clone)]
struct RatePoint {
    rate: f64,
    direct: LoadReport,
    gateway: LoadReport,
    /// Gateway CPU during the measured gateway phase, in cores.
    cpu_cores: f64,
    /// Gateway CPU per successful request, in microseconds.
    cpu_us_per_req: f64,
    /// Gateway peak RSS during the measured phase (bytes).
    peak_rss: u64,
    /// Whether the peak could be reset before the phase (else: since start).
    peak_reset: bool,
    /// The harness's own CPU (generator + upstream) during the gateway phase, cores.
    harness_cores: f64,
    /// `llm_gateway_overhead_seconds` observed during the phase.
    overhead_hist: Option<PromHistogram>,
}

/// One streaming comparison.
#[derive(Debug, Clone)]
struct StreamPoint {
    rate: f64,
    direct: LoadReport,
    gateway: LoadReport,
    /// Gateway CPU per stream (µs).
    cpu_us_per_stream: f64,
}

/// One closed-loop comparison.
#[derive(Debug, Clone)]
struct ClosedPoint {
    direct: LoadReport,
    gateway: LoadReport,
    /// Gateway CPU per request (µs).
    cpu_us_per_req: f64,
    /// Gateway CPU in cores.
    cpu_cores: f64,
}

/// Everything else measured in one run.
#[derive(Debug, Clone, Default)]
struct Extras {
    closed: Option<ClosedPoint>,
    /// Gateway CPU per chunk of the long paced streams (µs; the streams'
    /// own request work included, so an upper bound).
    cpu_us_per_chunk: Option<f64>,
    /// RSS per idle open stream (bytes) and how many were open.
    held: Option<(f64, usize)>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rates must be positive numbers");
    }
    if args.runs == 0 || !args.duration.is_finite() || args.duration <= 0.0 {
        bail!("--runs and --duration must be positive");
    }
    let llm = llm_binary(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args, llm))
}

/// `target/release/llm`, next to this binary, built first unless told not to.
fn llm_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.llm_bin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("cannot locate the target directory")?;
    let llm = dir.join("llm");
    if !args.no_build || !llm.exists() {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("building llm: {cargo} build --release -p llm-cli");
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "llm-cli"])
            .current_dir(&workspace)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release -p llm-cli failed");
        }
    }
    if !llm.exists() {
        bail!("{} not found", llm.display());
    }
    Ok(llm)
}

async fn run(args: Args, llm: PathBuf) -> anyhow::Result<()> {
    let up = Upstream::start(UpstreamOptions {
        delay: Duration::from_millis(args.upstream_delay_ms),
        chunk_interval: Duration::from_millis(args.chunk_interval_ms),
        ..UpstreamOptions::default()
    })?;
    let gateway_toml = args
        .workers
        .map_or_else(String::new, |n| format!("workers = {n}"));
    let mut gw = GatewayProcess::start(
        &llm,
        &up.openai_base_url(),
        &args.gateway_env,
        &gateway_toml,
    )?;
    gw.wait_ready(Duration::from_secs(30)).await?;
    let ticks = procstat::clock_ticks();
    let idle = procstat::sample(gw.pid(), ticks)?;
    eprintln!(
        "llm serve pid {} on {}; upstream on {}; idle RSS {:.1} MB",
        gw.pid(),
        gw.addr(),
        up.addr(),
        idle.rss as f64 / 1e6
    );
    let header_note = overhead_header(&gw).await;

    let direct_pool = Arc::new(Pool::new(up.addr()));
    let gateway_pool = Arc::new(Pool::new(gw.addr()));
    let target = |addr, stream| {
        Arc::new(Target {
            addr,
            path: "/v1/chat/completions".into(),
            body: fixtures::openai_request_body(stream),
            headers: vec![],
        })
    };
    let (direct_t, gateway_t) = (target(up.addr(), false), target(gw.addr(), false));

    let mut runs: Vec<Vec<RatePoint>> = Vec::new();
    let mut streams: Vec<StreamPoint> = Vec::new();
    let mut extras: Vec<Extras> = Vec::new();
    for run_no in 1..=args.runs {
        let mut points = Vec::new();
        for &rate in &args.rates {
            let spec = spec(&args, rate, Mode::Full);
            eprintln!("run {run_no}: {rate} req/s direct …");
            warm(&direct_pool, &direct_t, &args, rate).await;
            let direct = load::run(direct_pool.clone(), direct_t.clone(), &spec).await;

            eprintln!("run {run_no}: {rate} req/s through the gateway …");
            warm(&gateway_pool, &gateway_t, &args, rate).await;
            let hist_before = scrape_overhead(&gw).await;
            let peak_reset = procstat::reset_peak(gw.pid()).is_ok();
            let before = procstat::sample(gw.pid(), ticks)?;
            let me_before = procstat::sample(std::process::id(), ticks)?;
            let started = Instant::now();
            let gateway = load::run(gateway_pool.clone(), gateway_t.clone(), &spec).await;
            let wall = started.elapsed().as_secs_f64();
            let after = procstat::sample(gw.pid(), ticks)?;
            let me_after = procstat::sample(std::process::id(), ticks)?;
            let hist_after = scrape_overhead(&gw).await;
            let cpu = cpu_secs(&before, &after);
            points.push(RatePoint {
                rate,
                cpu_cores: cpu / wall,
                cpu_us_per_req: cpu * 1e6 / gateway.ok.max(1) as f64,
                peak_rss: after.peak_rss,
                peak_reset,
                harness_cores: cpu_secs(&me_before, &me_after) / wall,
                overhead_hist: hist_after
                    .map(|a| gateway::histogram_delta(&a, hist_before.as_ref())),
                direct,
                gateway,
            });
        }
        print_run(run_no, &points, &args);
        runs.push(points);

        if args.stream_rate > 0.0 {
            let spec = spec(&args, args.stream_rate, Mode::FirstToken);
            let (ds, gs) = (target(up.addr(), true), target(gw.addr(), true));
            eprintln!("run {run_no}: streams at {} req/s …", args.stream_rate);
            warm(&direct_pool, &ds, &args, args.stream_rate).await;
            let direct = load::run(direct_pool.clone(), ds, &spec).await;
            warm(&gateway_pool, &gs, &args, args.stream_rate).await;
            let (gateway, cpu, _) =
                on_gateway(&gw, ticks, load::run(gateway_pool.clone(), gs, &spec)).await?;
            let point = StreamPoint {
                rate: args.stream_rate,
                cpu_us_per_stream: cpu * 1e6 / gateway.ok.max(1) as f64,
                direct,
                gateway,
            };
            print_stream(&point);
            streams.push(point);
        }
        let mut extra = Extras::default();
        if args.closed_connections > 0 {
            let n = args.closed_connections;
            let d = Duration::from_secs_f64(args.duration);
            let w = Duration::from_secs_f64(args.warmup);
            eprintln!("run {run_no}: closed loop, {n} connections, direct …");
            let _ = load::closed_loop(direct_t.clone(), n, w).await;
            let direct = load::closed_loop(direct_t.clone(), n, d).await;
            eprintln!("run {run_no}: closed loop, {n} connections, through the gateway …");
            let _ = load::closed_loop(gateway_t.clone(), n, w).await;
            let (gateway, cpu, wall) =
                on_gateway(&gw, ticks, load::closed_loop(gateway_t.clone(), n, d)).await?;
            extra.closed = Some(ClosedPoint {
                cpu_us_per_req: cpu * 1e6 / gateway.ok.max(1) as f64,
                cpu_cores: cpu / wall,
                direct,
                gateway,
            });
        }
        if args.long_stream_rate > 0.0 {
            let t = Arc::new(Target {
                addr: gw.addr(),
                path: "/v1/chat/completions".into(),
                body: fixtures::openai_request_body_for(fixtures::MODEL_LONG_STREAM, true),
                headers: vec![],
            });
            eprintln!(
                "run {run_no}: long streams ({} chunks, {} ms apart) at {} streams/s …",
                fixtures::LONG_STREAM_CHUNKS,
                args.chunk_interval_ms,
                args.long_stream_rate
            );
            let spec = spec(&args, args.long_stream_rate, Mode::FirstToken);
            warm(&gateway_pool, &t, &args, args.long_stream_rate).await;
            let (r, cpu, _) =
                on_gateway(&gw, ticks, load::run(gateway_pool.clone(), t, &spec)).await?;
            let chunks = r.ok * fixtures::openai_long_stream(fixtures::LONG_STREAM_CHUNKS).len();
            if r.errors > 0 {
                eprintln!("long streams: {}", errors(&r));
            }
            extra.cpu_us_per_chunk = Some(cpu * 1e6 / chunks.max(1) as f64);
        }
        if args.held_streams > 0 {
            let t = Arc::new(Target {
                addr: gw.addr(),
                path: "/v1/chat/completions".into(),
                body: fixtures::openai_request_body_for(fixtures::MODEL_HELD_STREAM, true),
                headers: vec![],
            });
            eprintln!("run {run_no}: {} idle open streams …", args.held_streams);
            // The slope between a quarter and all of them, so that memory
            // the allocator kept from earlier phases (reused by the first
            // streams) does not hide the cost of the rest.
            let first = args.held_streams / 4;
            let (held_a, open_a) = load::hold_streams(t.clone(), first).await;
            let before = procstat::sample(gw.pid(), ticks)?;
            let (held_b, open_b) = load::hold_streams(t, args.held_streams - first).await;
            let after = procstat::sample(gw.pid(), ticks)?;
            let per = (after.rss as f64 - before.rss as f64) / open_b.max(1) as f64;
            extra.held = Some((per, open_a + open_b));
            drop((held_a, held_b));
            // Let the gateway see the clients go before the next phase.
            wait_idle(&gw).await;
        }
        print_extras(run_no, &extra, &args);
        extras.push(extra);
    }
    print_summary(&runs, &streams, &extras, &args);
    if args.runs > 1 {
        print_medians(&runs, &streams);
    }
    let end = procstat::sample(gw.pid(), ticks)?;
    println!(
        "\nGateway RSS: idle {:.1} MB, at the end {:.1} MB. {}",
        idle.rss as f64 / 1e6,
        end.rss as f64 / 1e6,
        header_note
    );
    println!(
        "Upstream answered {} requests. Settings: duration {} s, warm-up {} s, upstream delay {} ms, {} run(s), gateway environment {:?}.",
        up.requests(),
        args.duration,
        args.warmup,
        args.upstream_delay_ms,
        args.runs,
        args.gateway_env
    );
    gw.stop()?;
    Ok(())
}

/// Runs `load` while measuring the gateway's CPU: (result, CPU seconds, wall seconds).
async fn on_gateway<R>(
    gw: &GatewayProcess,
    ticks: u64,
    load: impl std::future::Future<Output = R>,
) -> anyhow::Result<(R, f64, f64)> {
    let before = procstat::sample(gw.pid(), ticks)?;
    let started = Instant::now();
    let r = load.await;
    let wall = started.elapsed().as_secs_f64();
    let after = procstat::sample(gw.pid(), ticks)?;
    Ok((r, cpu_secs(&before, &after), wall))
}

/// Polls the gateway's `llm_gateway_inflight_requests` until only the
/// scrape itself is in flight (at most 10 s): the held streams' clients have gone.
async fn wait_idle(gw: &GatewayProcess) {
    for _ in 0..200 {
        if let Ok((_, _, body)) =
            gateway::request_once(gw.addr(), hyper::Method::GET, "/metrics", Bytes::new()).await
        {
            let text = String::from_utf8_lossy(&body);
            let idle = text
                .lines()
                .find(|l| l.starts_with("llm_gateway_inflight_requests "))
                .and_then(|l| l.split_whitespace().last())
                .is_some_and(|v| v == "0" || v == "1");
            if idle {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spec(args: &Args, rate: f64, mode: Mode) -> LoadSpec {
    let mut s = LoadSpec::new(rate, Duration::from_secs_f64(args.duration));
    s.mode = mode;
    s.max_in_flight = args.max_in_flight;
    s.max_requests = args.max_requests;
    s
}

/// Unmeasured load at the same rate: opens the connections the run will reuse.
async fn warm(pool: &Arc<Pool>, target: &Arc<Target>, args: &Args, rate: f64) {
    if args.warmup > 0.0 {
        let mut s = LoadSpec::new(rate, Duration::from_secs_f64(args.warmup));
        s.max_in_flight = args.max_in_flight;
        let _ = load::run(pool.clone(), target.clone(), &s).await;
    }
}

fn cpu_secs(before: &ProcSample, after: &ProcSample) -> f64 {
    after.cpu.saturating_sub(before.cpu).as_secs_f64()
}

async fn scrape_overhead(gw: &GatewayProcess) -> Option<PromHistogram> {
    let (status, _, body) =
        gateway::request_once(gw.addr(), hyper::Method::GET, "/metrics", Bytes::new())
            .await
            .ok()?;
    if !status.is_success() {
        return None;
    }
    gateway::parse_histogram(
        &String::from_utf8_lossy(&body),
        "llm_gateway_overhead_seconds",
    )
}

/// Whether responses carry `x-llm-overhead-ms`.
async fn overhead_header(gw: &GatewayProcess) -> String {
    match gateway::request_once(
        gw.addr(),
        hyper::Method::POST,
        "/v1/chat/completions",
        fixtures::openai_request_body(false),
    )
    .await
    {
        Ok((status, headers, _)) if status.is_success() => {
            match headers
                .get("x-llm-overhead-ms")
                .and_then(|v| v.to_str().ok())
            {
                Some(v) => format!("Responses carry `x-llm-overhead-ms` (e.g. {v})."),
                None => "Responses carry no `x-llm-overhead-ms` header.".into(),
            }
        }
        Ok((status, _, body)) => format!(
            "A test request failed with {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Err(e) => format!("A test request failed: {e}"),
    }
}

fn errors(r: &LoadReport) -> String {
    if r.errors == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = r
        .error_kinds
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    format!("{} ({})", r.errors, kinds.join(", "))
}

fn latency_row(label: &str, rate: f64, r: &LoadReport) -> String {
    let l = &r.latency;
    format!(
        "| {rate} | {label} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
        r.achieved_rate,
        r.ok,
        errors(r),
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        ms(r.dispatch_lag.p99),
    )
}

fn delta(g: u64, d: u64) -> i64 {
    i64::try_from(g).unwrap_or(i64::MAX) - i64::try_from(d).unwrap_or(i64::MAX)
}

fn print_run(run_no: usize, points: &[RatePoint], args: &Args) {
    println!(
        "\n### Run {run_no}: latency (ms, from the scheduled send time; upstream delay {} ms)\n",
        args.upstream_delay_ms
    );
    println!("| rate | path | achieved/s | ok | errors | p50 | p90 | p99 | p99.9 | max | dispatch lag p99 |");
    println!("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for p in points {
        println!("{}", latency_row("direct", p.rate, &p.direct));
        println!("{}", latency_row("gateway", p.rate, &p.gateway));
    }
    println!("\n### Run {run_no}: gateway overhead (gateway − direct, ms) and resources\n");
    println!("| rate | Δp50 | Δp90 | Δp99 | Δp99.9 | gateway CPU (cores) | CPU µs/req | peak RSS (MB) | client connections | harness CPU (cores) | `llm_gateway_overhead_seconds` mean / p99 bucket |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for p in points {
        let (g, d) = (
            p.gateway.latency.percentiles(),
            p.direct.latency.percentiles(),
        );
        let hist = p.overhead_hist.as_ref().map_or_else(
            || "not exposed".to_string(),
            |h| {
                format!(
                    "{} µs / ≤ {} µs (n = {})",
                    h.mean().map_or("-".into(), |m| format!("{:.1}", m * 1e6)),
                    h.quantile_bound(0.99)
                        .map_or("-".into(), |b| format!("{}", b * 1e6)),
                    h.count
                )
            },
        );
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1}{} | {} | {:.2} | {} |",
            p.rate,
            ms_signed(delta(g[0], d[0])),
            ms_signed(delta(g[1], d[1])),
            ms_signed(delta(g[2], d[2])),
            ms_signed(delta(g[3], d[3])),
            p.cpu_cores,
            p.cpu_us_per_req,
            p.peak_rss as f64 / 1e6,
            if p.peak_reset { "" } else { " (since start)" },
            p.gateway.connections,
            p.harness_cores,
            hist,
        );
    }
}

fn ttft(r: &LoadReport) -> [u64; 4] {
    r.first_token.map_or([0; 4], |s| s.percentiles())
}

fn print_stream(p: &StreamPoint) {
    println!(
        "\n### Streams at {} req/s: time to first token (ms, from the scheduled send time)\n",
        p.rate
    );
    println!(
        "| path | ok | errors | p50 | p90 | p99 | p99.9 | full stream p50 | full stream p99 |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for (label, r) in [("direct", &p.direct), ("gateway", &p.gateway)] {
        let t = ttft(r);
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.ok,
            errors(r),
            ms(t[0]),
            ms(t[1]),
            ms(t[2]),
            ms(t[3]),
            ms(r.latency.p50),
            ms(r.latency.p99)
        );
    }
    let (g, d) = (ttft(&p.gateway), ttft(&p.direct));
    println!(
        "| overhead | | | {} | {} | {} | {} | | |",
        ms_signed(delta(g[0], d[0])),
        ms_signed(delta(g[1], d[1])),
        ms_signed(delta(g[2], d[2])),
        ms_signed(delta(g[3], d[3])),
    );
}

fn print_extras(run_no: usize, e: &Extras, args: &Args) {
    if let Some(c) = &e.closed {
        println!(
            "\n### Run {run_no}: closed loop, {} connections\n",
            args.closed_connections
        );
        println!("| path | req/s | ok | errors | p50 | p99 | gateway CPU (cores) | CPU µs/req |");
        println!("|---|---:|---:|---|---:|---:|---:|---:|");
        println!(
            "| direct | {:.0} | {} | {} | {} | {} | | |",
            c.direct.achieved_rate,
            c.direct.ok,
            errors(&c.direct),
            ms(c.direct.latency.p50),
            ms(c.direct.latency.p99)
        );
        println!(
            "| gateway | {:.0} | {} | {} | {} | {} | {:.2} | {:.1} |",
            c.gateway.achieved_rate,
            c.gateway.ok,
            errors(&c.gateway),
            ms(c.gateway.latency.p50),
            ms(c.gateway.latency.p99),
            c.cpu_cores,
            c.cpu_us_per_req
        );
    }
    if let Some(c) = e.cpu_us_per_chunk {
        println!(
            "\nRun {run_no}: long streams ({} chunks {} ms apart, {} streams/s): gateway CPU ≤ {c:.2} µs per chunk (stream set-up included).",
            fixtures::LONG_STREAM_CHUNKS,
            args.chunk_interval_ms,
            args.long_stream_rate
        );
    }
    if let Some((per, open)) = e.held {
        println!(
            "\nRun {run_no}: {open} idle open streams: gateway RSS +{:.1} KB per stream.",
            per / 1e3
        );
    }
}

/// The medians of every mode in one table (the issue's table shape).
fn print_summary(runs: &[Vec<RatePoint>], streams: &[StreamPoint], extras: &[Extras], args: &Args) {
    let med = |v: Vec<f64>| spread(&v).map(|s| s.median);
    let f3 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.3}", v / 1e6));
    let d3 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:+.3}", v / 1e6));
    let f0 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    println!(
        "\n### Summary: medians of {} run(s) (ms; CPU in µs of the gateway process)\n",
        runs.len()
    );
    println!("| mode | direct p50 / p99 | `llm serve` p50 / p99 | added p50 / p99 | gateway CPU per request | gateway peak RSS (MB, first run) |");
    println!("|---|---|---|---|---:|---:|");
    for &rate in &args.rates {
        let ps: Vec<&RatePoint> = runs.iter().flatten().filter(|p| p.rate == rate).collect();
        let col = |f: &dyn Fn(&RatePoint) -> f64| med(ps.iter().map(|p| f(p)).collect());
        let dp = |i: usize| {
            col(&|p: &RatePoint| {
                delta(
                    p.gateway.latency.percentiles()[i],
                    p.direct.latency.percentiles()[i],
                ) as f64
            })
        };
        println!(
            "| {rate} req/s | {} / {} | {} / {} | {} / {} | {} | {} |",
            f3(col(&|p| p.direct.latency.p50 as f64)),
            f3(col(&|p| p.direct.latency.p99 as f64)),
            f3(col(&|p| p.gateway.latency.p50 as f64)),
            f3(col(&|p| p.gateway.latency.p99 as f64)),
            d3(dp(0)),
            d3(dp(2)),
            f0(col(&|p| p.cpu_us_per_req)),
            // The first run's: later runs start with what the allocator
            // kept from the idle-stream test.
            ps.first()
                .map_or("-".into(), |p| format!("{:.1}", p.peak_rss as f64 / 1e6)),
        );
    }
    let closed: Vec<&ClosedPoint> = extras.iter().filter_map(|e| e.closed.as_ref()).collect();
    if !closed.is_empty() {
        let col = |f: &dyn Fn(&ClosedPoint) -> f64| med(closed.iter().map(|p| f(p)).collect());
        println!(
            "| closed loop, {} connections | {} req/s ({} / {}) | {} req/s ({} / {}) | | {} | |",
            args.closed_connections,
            f0(col(&|p| p.direct.achieved_rate)),
            f3(col(&|p| p.direct.latency.p50 as f64)),
            f3(col(&|p| p.direct.latency.p99 as f64)),
            f0(col(&|p| p.gateway.achieved_rate)),
            f3(col(&|p| p.gateway.latency.p50 as f64)),
            f3(col(&|p| p.gateway.latency.p99 as f64)),
            f0(col(&|p| p.cpu_us_per_req)),
        );
    }
    if !streams.is_empty() {
        let col = |f: &dyn Fn(&StreamPoint) -> f64| med(streams.iter().map(f).collect());
        println!(
            "| streams at {} /s: time to first token | {} / {} | {} / {} | {} / {} | {} per stream | |",
            args.stream_rate,
            f3(col(&|p| ttft(&p.direct)[0] as f64)),
            f3(col(&|p| ttft(&p.direct)[2] as f64)),
            f3(col(&|p| ttft(&p.gateway)[0] as f64)),
            f3(col(&|p| ttft(&p.gateway)[2] as f64)),
            d3(col(&|p| delta(ttft(&p.gateway)[0], ttft(&p.direct)[0]) as f64)),
            d3(col(&|p| delta(ttft(&p.gateway)[2], ttft(&p.direct)[2]) as f64)),
            f0(col(&|p| p.cpu_us_per_stream)),
        );
    }
    if let Some(c) = med(extras.iter().filter_map(|e| e.cpu_us_per_chunk).collect()) {
        println!(
            "| long streams, {} chunks {} ms apart, {} /s | | | | ≤ {c:.2} per chunk | |",
            fixtures::LONG_STREAM_CHUNKS,
            args.chunk_interval_ms,
            args.long_stream_rate
        );
    }
    // The first run's, as for RSS: later runs reuse memory the allocator kept.
    if let Some((per, _)) = extras.first().and_then(|e| e.held) {
        println!(
            "| {} idle open streams | | | | | +{:.1} KB per stream |",
            args.held_streams,
            per / 1e3
        );
    }
}

fn fmt_spread(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    s.map_or("-".into(), |s| {
        format!("{} [{} – {}]", f(s.median), f(s.min), f(s.max))
    })
}

fn print_medians(runs: &[Vec<RatePoint>], streams: &[StreamPoint]) {
    println!("\n### Medians of {} runs [min – max]\n", runs.len());
    println!("| rate | direct p99 (ms) | gateway p99 (ms) | Δp50 (ms) | Δp90 (ms) | Δp99 (ms) | Δp99.9 (ms) | gateway achieved/s | errors (gw) | CPU (cores) | CPU µs/req | peak RSS (MB) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut by_rate: BTreeMap<u64, Vec<&RatePoint>> = BTreeMap::new();
    for p in runs.iter().flatten() {
        by_rate.entry(p.rate.to_bits()).or_default().push(p);
    }
    let mut rates: Vec<(f64, Vec<&RatePoint>)> = by_rate
        .into_values()
        .filter_map(|v| v.first().map(|p| (p.rate, v.clone())))
        .collect();
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let msf = |v: f64| format!("{:.3}", v / 1e6);
    let msd = |v: f64| format!("{:+.3}", v / 1e6);
    for (rate, ps) in rates {
        let col =
            |f: &dyn Fn(&RatePoint) -> f64| spread(&ps.iter().map(|p| f(p)).collect::<Vec<_>>());
        let d = |i: usize| {
            col(&|p: &RatePoint| {
                delta(
                    p.gateway.latency.percentiles()[i],
                    p.direct.latency.percentiles()[i],
                ) as f64
            })
        };
        println!(
            "| {rate} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_spread(col(&|p| p.direct.latency.p99 as f64), msf),
            fmt_spread(col(&|p| p.gateway.latency.p99 as f64), msf),
            fmt_spread(d(0), msd),
            fmt_spread(d(1), msd),
            fmt_spread(d(2), msd),
            fmt_spread(d(3), msd),
            fmt_spread(col(&|p| p.gateway.achieved_rate), |v| format!("{v:.0}")),
            fmt_spread(col(&|p| p.gateway.errors as f64), |v| format!("{v:.0}")),
            fmt_spread(col(&|p| p.cpu_cores), |v| format!("{v:.2}")),
            fmt_spread(col(&|p| p.cpu_us_per_req), |v| format!("{v:.0}")),
            fmt_spread(col(&|p| p.peak_rss as f64), |v| format!("{:.1}", v / 1e6)),
        );
    }
    if !streams.is_empty() {
        println!("\n| streams: TTFT | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) |");
        println!("|---|---:|---:|---:|---:|");
        for (label, f) in [
            (
                "direct",
                &(|p: &StreamPoint| ttft(&p.direct)) as &dyn Fn(&StreamPoint) -> [u64; 4],
            ),
            ("gateway", &|p: &StreamPoint| ttft(&p.gateway)),
        ] {
            let cells: Vec<String> = (0..4)
                .map(|i| {
                    fmt_spread(
                        spread(&streams.iter().map(|p| f(p)[i] as f64).collect::<Vec<_>>()),
                        msf,
                    )
                })
                .collect();
            println!("| {label} | {} |", cells.join(" | "));
        }
        let cells: Vec<String> = (0..4)
            .map(|i| {
                fmt_spread(
                    spread(
                        &streams
                            .iter()
                            .map(|p| delta(ttft(&p.gateway)[i], ttft(&p.direct)[i]) as f64)
                            .collect::<Vec<_>>(),
                    ),
                    msd,
                )
            })
            .collect();
        println!("| overhead | {} |", cells.join(" | "));
    }
}
