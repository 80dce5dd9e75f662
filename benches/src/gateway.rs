//! Running `llm serve` for a load test: a temporary configuration whose only
//! provider is an `openai` instance at the fake upstream (caching off, so
//! every request goes upstream), a free loopback port, readiness by
//! `GET /health`, and one-off HTTP requests (health, metrics scrape).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::fixtures::{MODEL, MODEL_HELD_STREAM, MODEL_LONG_STREAM};

/// The configuration `llm serve` gets: one `openai` instance at `base_url`.
pub fn config_toml(base_url: &str) -> String {
    config_toml_with(base_url, "")
}

/// [`config_toml`] with `gateway` (TOML lines such as `workers = 1`) as its
/// `[gateway]` table.
pub fn config_toml_with(base_url: &str, gateway: &str) -> String {
    format!(
        r#"# Written by gateway_bench: one OpenAI-compatible upstream, no cache.
[llm_providers.upstream]
kind = "openai"
base_url = "{base_url}"
api_key = "sk-bench-not-a-real-key"
models = ["{MODEL}", "{MODEL_LONG_STREAM}", "{MODEL_HELD_STREAM}"]
default_model = "{MODEL}"
timeout = 30

[caching]
enabled = false

[monitoring]
enabled = true

[gateway]
{gateway}
"#
    )
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One request on a fresh connection: status, headers and whole body.
pub async fn request_once(
    addr: SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    drop(sender);
    conn.abort();
    Ok((parts.status, parts.headers, body))
}

/// A running `llm serve`; killed when dropped.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `llm --config <tmp> serve --addr 127.0.0.1:<free port>` with
    /// its single provider at `upstream_base_url`, logs in a temporary file.
    /// `env` is added to its environment.
    pub fn start(
        llm: &Path,
        upstream_base_url: &str,
        env: &[(String, String)],
        gateway_toml: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("llm_providers.toml");
        std::fs::write(&config, config_toml_with(upstream_base_url, gateway_toml))?;
        let log = dir.path().join("gateway.log");
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(llm)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .arg("--addr")
            .arg(addr.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", llm.display()))?;
        Ok(Self {
            child,
            addr,
            log,
            _dir: dir,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /health` until it answers 200 (or `within` passes, or the
    /// process exits).
    pub async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("llm serve exited ({status}):\n{}", self.log());
            }
            if let Ok((s, _, _)) =
                request_once(self.addr, hyper::Method::GET, "/health", Bytes::new()).await
            {
                if s == StatusCode::OK {
                    return Ok(());
                }
            }
            if Instant::now() > until {
                bail!(
                    "llm serve did not answer GET /health with 200 within {within:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks it to stop (SIGTERM through `kill`), waits up to 5 s, then kills it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Prometheus histogram read from the text exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromHistogram {
    /// `(le, cumulative count)`, in exposition order.
    pub buckets: Vec<(f64, u64)>,
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: u64,
}

impl PromHistogram {
    /// The upper bound of the bucket holding the `q`-quantile.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let want = (q * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, c)| *c >= want.max(1))
            .map(|(le, _)| *le)
    }

    /// Mean of the observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Reads the unlabelled histogram `name` (e.g. `llm_gateway_overhead_seconds`).
pub fn parse_histogram(text: &str, name: &str) -> Option<PromHistogram> {
    let mut h = PromHistogram::default();
    let mut seen = false;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        if let Some(labels) = key.strip_prefix(&format!("{name}_bucket")) {
            let le = labels
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(|s| {
                    if s == "+Inf" {
                        f64::INFINITY
                    } else {
                        s.parse().unwrap_or(f64::NAN)
                    }
                });
            if let Some(le) = le {
                h.buckets.push((le, v as u64));
                seen = true;
            }
        } else if key.starts_with(&format!("{name}_sum")) {
            h.sum = v;
        } else if key.starts_with(&format!("{name}_count")) {
            h.count = v as u64;
        }
    }
    seen.then_some(h)
}

/// Subtracts an earlier reading of the same histogram (for one phase's share).
pub fn histogram_delta(after: &PromHistogram, before: Option<&PromHistogram>) -> PromHistogram {
    let Some(before) = before else {
        return after.clone();
    };
    PromHistogram {
        buckets: after
            .buckets
            .iter()
            .map(|(le, c)| {
                let prev = before
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0, |(_, p)| *p);
                (*le, c.saturating_sub(prev))
            })
            .collect(),
        sum: after.sum - before.sum,
        count: after.count.saturating_sub(before.count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_valid_for_llm_core() {
        let cfg = llm_router::config::Config::from_toml_str(&config_toml("http://127.0.0.1:1/v1"))
            .unwrap();
        assert!(!cfg.caching.enabled);
        assert_eq!(cfg.providers.len(), 1);
        assert_eq!(cfg.providers[0].kind, "openai");
    }

    #[test]
    fn histogram_parsing() {
        let text = "# HELP x\n# TYPE llm_gateway_overhead_seconds histogram\n\
            llm_gateway_overhead_seconds_bucket{le=\"0.00001\"} 2\n\
            llm_gateway_overhead_seconds_bucket{le=\"0.000025\"} 90\n\
            llm_gateway_overhead_seconds_bucket{le=\"0.00005\"} 100\n\
            llm_gateway_overhead_seconds_bucket{le=\"+Inf\"} 100\n\
            llm_gateway_overhead_seconds_sum 0.0015\n\
            llm_gateway_overhead_seconds_count 100\n\
            other_metric 3\n";
        let h = parse_histogram(text, "llm_gateway_overhead_seconds").unwrap();
        assert_eq!(h.count, 100);
        assert_eq!(h.buckets.len(), 4);
        assert_eq!(h.quantile_bound(0.5), Some(0.000025));
        assert_eq!(h.quantile_bound(0.99), Some(0.00005));
        assert_eq!(h.mean(), Some(0.000015));
        assert!(parse_histogram(text, "nope").is_none());
        let d = histogram_delta(&h, Some(&h));
        assert_eq!(d.count, 0);
        assert!(d.buckets.iter().all(|(_, c)| *c == 0));
    }
}
