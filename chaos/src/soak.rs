//! The soak: many requests through the gateway (a separate `llm serve`
//! process when its binary is at hand, else in-process) with cache churn and
//! streams, sampling the gateway's resident memory as it goes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use llm_core::config::{Config, GatewayConfig, Secs};
use llm_core::LlmClient;
use tokio::time::Instant;

use crate::fault::{Fault, Role};
use crate::monitor::rss_kib;
use crate::suite::{config_toml, start_upstreams, via_gateway, Answer, Limits};
use crate::upstream::{ChaosOptions, Ledger, Upstream};

/// Soak settings.
#[derive(Debug, Clone)]
pub struct SoakSettings {
    /// Requests in all.
    pub requests: usize,
    /// RSS is sampled every this many requests.
    pub checkpoint: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Distinct prompts drawn from (more than the cache holds: churn).
    pub prompts: usize,
    /// Memory cache budget of the gateway, in bytes.
    pub cache_bytes: u64,
    /// Share of streamed requests.
    pub stream_share: f64,
    /// Fault rate of every upstream (hangs and stalls excluded: they only
    /// slow the soak down).
    pub fault_rate: f64,
    /// The `llm` binary to run as the gateway process; `None`: in-process.
    pub llm_bin: Option<std::path::PathBuf>,
    /// Seed.
    pub seed: u64,
}

impl Default for SoakSettings {
    fn default() -> Self {
        Self {
            requests: 100_000,
            checkpoint: 10_000,
            concurrency: 32,
            prompts: 50_000,
            cache_bytes: 4 * 1024 * 1024,
            stream_share: 0.5,
            fault_rate: 0.05,
            llm_bin: None,
            seed: 11,
        }
    }
}

/// One RSS sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Requests done when it was taken.
    pub done: usize,
    /// Gateway RSS in KiB.
    pub rss_kib: u64,
    /// Seconds since the start.
    pub secs: f64,
}

/// The soak's result.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Where the gateway ran.
    pub gateway: String,
    /// RSS samples, every checkpoint.
    pub samples: Vec<Sample>,
    /// Complete, correct answers.
    pub complete: usize,
    /// Typed errors.
    pub errors: usize,
    /// Answers that broke the contract (wrong text, silent end, untyped error).
    pub violations: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

impl SoakReport {
    /// RSS at the first checkpoint and at the end, in KiB.
    pub fn first_and_last(&self) -> Option<(u64, u64)> {
        Some((self.samples.first()?.rss_kib, self.samples.last()?.rss_kib))
    }

    /// The report as text.
    pub fn table(&self) -> String {
        let mut out = format!("gateway: {}\n", self.gateway);
        out.push_str("requests   RSS (MiB)   time (s)\n");
        for s in &self.samples {
            out.push_str(&format!(
                "{:>8}   {:>9.1}   {:>8.1}\n",
                s.done,
                s.rss_kib as f64 / 1024.0,
                s.secs
            ));
        }
        if let Some((a, b)) = self.first_and_last() {
            out.push_str(&format!(
                "RSS growth from the first checkpoint to the end: {:+.1} MiB ({:+.1} %)\n",
                (b as f64 - a as f64) / 1024.0,
                (b as f64 - a as f64) * 100.0 / a.max(1) as f64
            ));
        }
        out.push_str(&format!(
            "complete {}, typed errors {}, violations {}, {:.0} s ({:.0} req/s)\n",
            self.complete,
            self.errors,
            self.violations.len(),
            self.elapsed.as_secs_f64(),
            (self.complete + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
        ));
        for v in self.violations.iter().take(10) {
            out.push_str(&format!("  ! {v}\n"));
        }
        out
    }
}

/// A gateway in its own process; killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: String,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_gateway(bin: &std::path::Path, config: &str) -> Result<GatewayProcess, String> {
    let path = std::env::temp_dir().join(format!("llm-soak-{}.toml", std::process::id()));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(config.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the gateway's address: {e}"))?;
    // `listening on http://127.0.0.1:PORT (OpenAI base URL: …)`
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .map(|a| a.trim_end_matches('/').to_string())
        .ok_or_else(|| format!("unexpected first line from the gateway: {line:?}"))?;
    Ok(GatewayProcess { child, addr })
}

/// Runs the soak.
pub async fn run(s: SoakSettings) -> Result<SoakReport, String> {
    let ledger = Arc::new(Ledger::default());
    let chaos = ChaosOptions {
        huge_bytes: 256 * 1024,
        hang_limit: Duration::from_secs(2),
        ..ChaosOptions::default()
    };
    let upstreams: Vec<Upstream> = start_upstreams(&chaos, &ledger)
        .await
        .map_err(|e| format!("cannot start the upstreams: {e}"))?;
    let faults: Vec<Fault> = Fault::PER_CALL
        .iter()
        .copied()
        .filter(|f| !matches!(f, Fault::Hang | Fault::Stall))
        .collect();
    for u in &upstreams {
        u.set_role(Role::Flaky {
            rate: s.fault_rate,
            faults: faults.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let limits = Limits::default();
    let config = config_toml(&upstreams, &limits).replace(
        "[caching]\nenabled = true\n",
        &format!(
            "[caching]\nenabled = true\nbackend = \"memory\"\nmax_bytes = {}\n",
            s.cache_bytes
        ),
    ) + "\n[gateway]\nmax_concurrency = 1024\nrequest_timeout = 30\n";

    let (process, handle, pid, label) = match &s.llm_bin {
        Some(bin) => {
            let p = spawn_gateway(bin, &config)?;
            let pid = p.child.id();
            let label = format!("`{} serve` (pid {pid})", bin.display());
            (Some(p), None, Some(pid), label)
        }
        None => {
            let cfg = Config::from_toml_str(&config).map_err(|e| e.to_string())?;
            let client = LlmClient::from_config(&cfg).map_err(|e| e.to_string())?;
            let gw = GatewayConfig {
                max_concurrency: 1024,
                request_timeout: Secs::from_secs(30),
                ..GatewayConfig::default()
            };
            let h = llm_cli::gateway::Gateway::new(client, &gw)
                .bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            (
                None,
                Some(h),
                None,
                "in-process (RSS is this whole process)".to_string(),
            )
        }
    };
    let base = match (&process, &handle) {
        (Some(p), _) => format!("http://{}", p.addr),
        (_, Some(h)) => format!("http://{}", h.local_addr()),
        _ => return Err("no gateway".into()),
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(s.concurrency * 2)
        .build()
        .map_err(|e| e.to_string())?;

    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let complete = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let violations: Mutex<Vec<String>> = Mutex::default();
    let mut rng = fastrand::Rng::with_seed(s.seed);
    let work: Vec<(String, bool)> = (0..s.requests)
        .map(|_| {
            // Skewed towards small numbers: some prompts repeat often (hits),
            // most rarely (misses that churn the cache).
            let r = rng.f64();
            let n = ((r * r * r) * s.prompts as f64) as usize;
            let stream = rng.f64() < s.stream_share;
            (
                format!("s{n:06} 写一段关于海的文字 {}", "浪".repeat(n % 64)),
                stream,
            )
        })
        .collect();
    futures::stream::iter(work.into_iter().enumerate())
        .for_each_concurrent(s.concurrency.max(1), |(i, (prompt, stream))| {
            let (http, base, done, samples) = (&http, &base, &done, &samples);
            let (complete, errors, violations) = (&complete, &errors, &violations);
            async move {
                let o = via_gateway(http, base, i, &prompt, stream).await;
                match &o.answer {
                    Answer::Complete { text, .. }
                        if *text == crate::protocol::answer_for(&prompt) =>
                    {
                        complete.fetch_add(1, Ordering::Relaxed);
                    }
                    Answer::Complete { text, .. } => violations
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(format!("request {i}: wrong answer {text:?}")),
                    Answer::Failed { .. } => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !o.violations.is_empty() {
                    violations
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(o.violations.iter().map(|v| format!("request {i}: {v}")));
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % s.checkpoint.max(1) == 0 || n == s.requests {
                    if let Some(rss) = rss_kib(pid) {
                        let secs = started.elapsed().as_secs_f64();
                        eprintln!("  {n} requests, gateway RSS {:.1} MiB", rss as f64 / 1024.0);
                        samples
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Sample {
                                done: n,
                                rss_kib: rss,
                                secs,
                            });
                    }
                }
            }
        })
        .await;
    let elapsed = started.elapsed();
    if let Some(h) = handle {
        h.shutdown().await;
    }
    drop(process);
    let mut samples = samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    samples.sort_by_key(|s| s.done);
    Ok(SoakReport {
        gateway: label,
        samples,
        complete: complete.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        violations: violations
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        elapsed,
    })
}
