//! `llm serve` as a process: SIGHUP and file-change reloads (an invalid file
//! refused with its file:line error, the running configuration kept), and
//! the SIGTERM drain (readiness false, then exit 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use llm_core::testing::{MockBody, MockReply};
use serde_json::Value;

/// Bound on waiting for the process to do what it was told (a failure, not
/// a timing assumption: it normally takes milliseconds).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `llm serve` and its address.
struct Serve {
    child: Option<Child>,
    base: String,
    http: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn serve(config: &Path) -> Serve {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("llm"))
        .env_remove("LLM_CONFIG")
        .arg("--config")
        .arg(config)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Serve {
        child: Some(child),
        base: format!("http://{addr}"),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl Serve {
    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([
                format!("-{sig}"),
                self.child.as_ref().unwrap().id().to_string(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// The configuration hash `/health/ready` names (`None`: not ready).
    async fn ready(&self) -> Option<String> {
        let r = self
            .http
            .get(format!("{}/health/ready", self.base))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        let v: Value = r.json().await.ok()?;
        v["config"].as_str().map(str::to_string)
    }

    /// Waits until readiness names `hash`.
    async fn live_config(&self, hash: &str) {
        let waited = std::time::Instant::now();
        while self.ready().await.as_deref() != Some(hash) {
            assert!(
                waited.elapsed() < PATIENCE,
                "configuration {hash} never went live"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn provider(&self) -> String {
        let r = self
            .http
            .post(format!("{}/v1/chat/completions", self.base))
            .json(&hello("auto"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-llm-provider"].to_str().unwrap().to_string()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM, then the exit status and everything written on stderr.
    async fn terminate(self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        self.exit().await
    }

    /// The exit status and everything written on stderr, once the process
    /// has ended (a failure if it has not within [`PATIENCE`]).
    async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let mut stderr = child.stderr.take().unwrap();
        let waiting = tokio::task::spawn_blocking(move || {
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            (child.wait().unwrap(), err)
        });
        match tokio::time::timeout(PATIENCE, waiting).await {
            Ok(done) => done.unwrap(),
            Err(_) => {
                // Killed, so the blocked reader ends and the test can report.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status();
                panic!("the process did not exit within {PATIENCE:?}");
            }
        }
    }
}

fn config_text(provider: &str, url: &str, extra: &str) -> String {
    format!(
        "{}{ROUTING}[gateway]\ndrain_delay = 0.2\n{extra}",
        openai_section(provider, url, &["gpt-4o-mini"])
    )
}

fn hash(text: &str) -> String {
    llm_cli::gateway::config_hash(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_file_and_refuses_an_invalid_one() {
    let up = completion_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    let first = config_text("alpha", &up.url(), "");
    std::fs::write(&path, &first).unwrap();
    let s = serve(&path).await;
    s.live_config(&hash(&first)).await;
    assert_eq!(s.provider().await, "alpha");

    // An invalid file: refused, counted, the running configuration stays.
    std::fs::write(
        &path,
        "[routing]\nstrategy = \"cost_optimized\"\nstrategee = 1\n",
    )
    .unwrap();
    s.signal("HUP");
    let waited = std::time::Instant::now();
    while !s
        .metrics()
        .await
        .contains("llm_gateway_config_reloads_total{result=\"refused\"} 1\n")
    {
        assert!(
            waited.elapsed() < PATIENCE,
            "the invalid file was never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.ready().await, Some(hash(&first)));
    assert_eq!(s.provider().await, "alpha");

    // A valid one: live for the next request.
    let second = config_text("beta", &up.url(), "");
    std::fs::write(&path, &second).unwrap();
    s.signal("HUP");
    s.live_config(&hash(&second)).await;
    assert_eq!(s.provider().await, "beta");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(&format!(
            "llm_gateway_config_info{{hash=\"{}\"}} 1\n",
            hash(&second)
        )),
        "{metrics}"
    );
    assert!(metrics.contains("llm_gateway_config_reloads_total{result=\"applied\"} 1\n"));

    let (status, stderr) = s.terminate().await;
    assert!(status.success(), "{status:?}");
    // The same located error as at start.
    assert!(
        stderr.contains(&format!("{}:3", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("strategee"), "{stderr}");
    assert!(stderr.contains(&hash(&second)), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_file_reloads_when_it_changes() {
    let up = completion_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    let first = config_text("alpha", &up.url(), "watch_config = true\n");
    std::fs::write(&path, &first).unwrap();
    let s = serve(&path).await;
    s.live_config(&hash(&first)).await;
    let second = config_text("beta", &up.url(), "watch_config = true\n");
    std::fs::write(&path, &second).unwrap();
    s.live_config(&hash(&second)).await;
    assert_eq!(s.provider().await, "beta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_cleanly() {
    let up = completion_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    std::fs::write(&path, config_text("alpha", &up.url(), "")).unwrap();
    let s = serve(&path).await;
    assert_eq!(s.provider().await, "alpha");
    let (status, stderr) = s.terminate().await;
    assert!(status.success(), "{status:?}");
    assert!(stderr.contains("draining"), "{stderr}");
}

/// A second SIGTERM during a long drain stops the process at once: the
/// request still in flight (its upstream never answers) is cut, counted and
/// reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_ends_a_long_drain_and_cuts_what_is_in_flight() {
    let up = openai_upstream(MockReply::json(200, "").with_body(MockBody::Hang)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    // Ten minutes of drain: the test's patience runs out long before.
    let text = format!(
        "{}{ROUTING}[gateway]\ndrain_delay = 600\n",
        openai_section("alpha", &up.url(), &["gpt-4o-mini"])
    );
    std::fs::write(&path, &text).unwrap();
    let s = serve(&path).await;
    s.live_config(&hash(&text)).await;
    let pending = tokio::spawn({
        let (http, base) = (s.http.clone(), s.base.clone());
        async move {
            http.post(format!("{base}/v1/chat/completions"))
                .json(&hello("auto"))
                .send()
                .await
        }
    });
    let waited = std::time::Instant::now();
    while !up
        .requests()
        .iter()
        .any(|r| r.path == "/v1/chat/completions")
    {
        assert!(waited.elapsed() < PATIENCE, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.signal("TERM");
    // Draining: the listener is open, readiness says 503.
    while s.ready().await.is_some() {
        assert!(waited.elapsed() < PATIENCE, "the drain never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.signal("TERM");
    let (status, stderr) = s.exit().await;
    assert!(status.success(), "{status:?}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("second signal: stopping now"), "{stderr}");
    assert!(
        stderr.contains("1 in-flight request(s) were cut off"),
        "{stderr}"
    );
    let cut = pending.await.unwrap();
    assert!(cut.is_err(), "a cut request has no answer: {cut:?}");
}

/// `workers` cannot change on a reload: a file that asks for other thread
/// counts is applied with a warning, but `0` (one per core) and the core
/// count are the same threads and are not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_warns_only_when_the_worker_threads_would_change() {
    let up = completion_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.toml");
    let cores = std::thread::available_parallelism().unwrap().get();
    let first = config_text("alpha", &up.url(), "workers = 0\n");
    std::fs::write(&path, &first).unwrap();
    let s = serve(&path).await;
    s.live_config(&hash(&first)).await;
    let same = config_text("alpha", &up.url(), &format!("workers = {cores}\n"));
    std::fs::write(&path, &same).unwrap();
    s.signal("HUP");
    s.live_config(&hash(&same)).await;
    let more = config_text("beta", &up.url(), &format!("workers = {}\n", cores + 1));
    std::fs::write(&path, &more).unwrap();
    s.signal("HUP");
    s.live_config(&hash(&more)).await;
    assert_eq!(s.provider().await, "beta", "the rest of the file applies");
    let (status, stderr) = s.terminate().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(
        stderr.matches("workers changed").count(),
        1,
        "only the second reload warns: {stderr}"
    );
    let plain = without_colours(&stderr);
    assert!(
        plain.contains(&format!("running={cores} configured={}", cores + 1)),
        "{plain}"
    );
}

/// `text` without its ANSI colour sequences (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
