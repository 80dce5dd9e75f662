//! Prints criterion results as a markdown table, with the median and range
//! over several saved runs and the derived client overheads.
//!
//! ```text
//! cargo run -p llm-benches --bin criterion_table -- [DIR …]
//! ```
//!
//! Each `DIR` is a criterion output directory (`target/criterion`, or a copy
//! of it saved after one `cargo bench` run); the default is the workspace's
//! `target/criterion`. A benchmark's time is criterion's point estimate
//! (the slope of the linear fit, else the mean) from `new/estimates.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use llm_benches::stats::{spread, Spread};
use serde::Deserialize;

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
    #[serde(default)]
    throughput: Option<Throughput>,
}

#[derive(Deserialize, Clone, Copy)]
enum Throughput {
    Bytes(u64),
    Elements(u64),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    #[serde(default)]
    slope: Option<Estimate>,
}

/// `(full id, throughput, time in ns)` of every benchmark under `dir`.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, Option<Throughput>, f64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let bench = path.join("new").join("benchmark.json");
            let est = path.join("new").join("estimates.json");
            if bench.exists() && est.exists() {
                let b: Benchmark = serde_json::from_str(&std::fs::read_to_string(&bench)?)?;
                let e: Estimates = serde_json::from_str(&std::fs::read_to_string(&est)?)?;
                let ns = e.slope.unwrap_or(e.mean).point_estimate;
                out.push((b.full_id, b.throughput, ns));
            } else if path.file_name().is_some_and(|n| n != "report") {
                stack.push(path);
            }
        }
    }
    Ok(out)
}

fn time(ns: f64) -> String {
    if ns.abs() >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns.abs() >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else {
        format!("{:.1} k/s", per_sec / 1e3)
    }
}

fn range(s: Spread, f: impl Fn(f64) -> String) -> String {
    if s.min == s.max {
        f(s.median)
    } else {
        format!("{} [{} – {}]", f(s.median), f(s.min), f(s.max))
    }
}

/// Derived figures: (label, minuend, subtrahend).
const DERIVED: &[(&str, &str, &str)] = &[
    (
        "client overhead over the direct call (client_openai − direct_reqwest)",
        "generate/client_openai",
        "generate/direct_reqwest",
    ),
    (
        "… with metrics recorded",
        "generate/client_openai_metrics",
        "generate/direct_reqwest",
    ),
    (
        "… with `info` spans formatted (as `llm serve` logs)",
        "generate/client_openai_info_spans",
        "generate/direct_reqwest",
    ),
    (
        "provider alone over the direct call (provider_openai − direct_reqwest)",
        "generate/provider_openai",
        "generate/direct_reqwest",
    ),
    (
        "client's own work, no I/O (client_instant_provider − instant_provider_direct)",
        "client_path/client_instant_provider",
        "client_path/instant_provider_direct",
    ),
];

fn main() -> anyhow::Result<()> {
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs.push(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("criterion"),
        );
    }
    let mut runs: Vec<BTreeMap<String, f64>> = Vec::new();
    let mut throughput: BTreeMap<String, Option<Throughput>> = BTreeMap::new();
    for d in &dirs {
        let mut run = BTreeMap::new();
        for (id, tp, ns) in read_dir(d)? {
            throughput.insert(id.clone(), tp);
            run.insert(id, ns);
        }
        runs.push(run);
    }
    println!(
        "| benchmark | time, median of {} run(s) [min – max] | throughput |",
        runs.len()
    );
    println!("|---|---:|---:|");
    for (id, tp) in &throughput {
        let times: Vec<f64> = runs.iter().filter_map(|r| r.get(id).copied()).collect();
        let Some(s) = spread(&times) else { continue };
        let tput = match tp {
            Some(Throughput::Bytes(b)) => {
                let mbs: Vec<f64> = times.iter().map(|ns| *b as f64 / ns * 1e3).collect();
                spread(&mbs).map_or(String::new(), |m| range(m, |v| format!("{v:.0} MB/s")))
            }
            Some(Throughput::Elements(n)) => {
                let per: Vec<f64> = times.iter().map(|ns| *n as f64 / ns * 1e9).collect();
                spread(&per).map_or(String::new(), |m| range(m, rate))
            }
            _ => String::new(),
        };
        println!("| `{id}` | {} | {tput} |", range(s, time));
    }
    println!("\n| derived (per run, then median [min – max]) | value |");
    println!("|---|---:|");
    for (label, a, b) in DERIVED {
        let diffs: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r.get(*a)? - r.get(*b)?))
            .collect();
        if let Some(s) = spread(&diffs) {
            println!("| {label} | {} |", range(s, time));
        }
    }
    Ok(())
}
