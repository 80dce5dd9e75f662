//! The `llm` binary as a process, against mock upstreams on loopback through a
//! temporary configuration file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;
use llm_core::testing::{MockReply, MockServer};
use serde_json::Value;

/// Ollama fixtures (protocols.md 3.5, 3.7, 3.10).
const OLLAMA_VERSION: &str = r#"{"version":"0.5.1"}"#;
const OLLAMA_TAGS: &str = r#"{
  "models": [
    {
      "name": "llama3.2:latest",
      "model": "llama3.2:latest",
      "modified_at": "2025-05-04T17:37:44.706015396-07:00",
      "size": 2019393189,
      "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
      "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M"
      }
    }
  ]
}"#;
const PULL_LINES: [&str; 7] = [
    "{\"status\":\"pulling manifest\"}\n",
    "{\"status\":\"pulling dde5aa3fc5ff\",\"digest\":\"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff\",\"total\":2019377376}\n",
    "{\"status\":\"pulling dde5aa3fc5ff\",\"digest\":\"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff\",\"total\":2019377376,\"completed\":241970}\n",
    "{\"status\":\"pulling dde5aa3fc5ff\",\"digest\":\"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff\",\"total\":2019377376,\"completed\":2019377376}\n",
    "{\"status\":\"verifying sha256 digest\"}\n",
    "{\"status\":\"writing manifest\"}\n",
    "{\"status\":\"success\"}\n",
];

async fn ollama_upstream() -> MockServer {
    let m = MockServer::start().await.unwrap();
    m.on("GET", "/api/version", MockReply::json(200, OLLAMA_VERSION));
    m.on("GET", "/api/tags", MockReply::json(200, OLLAMA_TAGS));
    m.on(
        "POST",
        "/api/pull",
        MockReply::chunked(
            200,
            "application/x-ndjson",
            PULL_LINES.iter().map(|l| l.as_bytes().to_vec()).collect(),
        ),
    );
    m
}

fn ollama_section(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodels = [\"llama3.2:latest\"]\n\
         default_model = \"llama3.2:latest\"\nrequired_models = [\"llama3.2:latest\"]\n\
         binary = \"/nonexistent/ollama\"\ntimeout = 10\n\n"
    )
}

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn write_config(text: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("llm.toml");
    std::fs::write(&config, text).unwrap();
    Env { dir, config }
}

/// Runs `llm --config CONFIG ARGS…` off the async runtime.
async fn llm(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::cargo_bin_cmd!("llm");
        cmd.env_remove("LLM_CONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .arg("--config")
            .arg(&config)
            .args(&args);
        if let Some(s) = stdin {
            cmd.write_stdin(s);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_prints_the_answer() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ));
    let o = llm(
        &env.config,
        &[
            "generate",
            "Say hello.",
            "--system",
            "Be terse.",
            "--max-tokens",
            "50",
        ],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(stdout(&o), "Hello!\n");
    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json();
    assert_eq!(sent["messages"][0]["content"], "Be terse.");
    assert_eq!(sent["messages"][1]["content"], "Say hello.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_reads_the_prompt_from_stdin() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ));
    let o = llm(&env.config, &["generate", "-"], Some("写一首诗\n")).await;
    assert_ok(&o);
    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json();
    assert_eq!(sent["messages"][0]["content"], "写一首诗");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_json_has_every_field() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ));
    let o = llm(
        &env.config,
        &["generate", "Say hello.", "--json", "--no-cache"],
        None,
    )
    .await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["content"], "Hello!");
    assert_eq!(v["provider"], "primary");
    assert_eq!(v["provider_kind"], "openai");
    assert_eq!(v["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(v["usage"]["prompt_tokens"], 20);
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["usage"]["total_tokens"], 22);
    assert!(v["cost"].is_number());
    assert!(v["response_time_ms"].is_u64());
    assert_eq!(v["cached"], false);
    assert_eq!(v["finish_reason"], "stop");
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["provider"], "primary");
    assert_eq!(attempts[0]["outcome"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_streams_token_by_token() {
    let up = stream_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ));
    let o = llm(&env.config, &["generate", "Say hello.", "--stream"], None).await;
    assert_ok(&o);
    assert_eq!(stdout(&o), "Hello!\n");
    let o = llm(
        &env.config,
        &["generate", "Say hello.", "--stream", "--json"],
        None,
    )
    .await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["content"], "Hello!");
    assert_eq!(v["usage"]["total_tokens"], 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_generate_exits_1_listing_every_provider_and_what_to_do() {
    let broken = failing_upstream().await;
    let gone = MockServer::refused_url().await.unwrap();
    let env = write_config(&format!(
        "{}{}{ROUTING}",
        openai_section("cloud", &broken.url(), &["gpt-4o-mini"]),
        ollama_section("local", &gone)
    ));
    let o = llm(
        &env.config,
        &["generate", "Say hello.", "--provider", "cloud"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("all providers failed"), "{err}");
    assert!(
        err.contains("cloud (gpt-4o-mini)") && err.contains("HTTP 500"),
        "{err}"
    );
    // Tried and refused, or skipped when the background probe already failed.
    assert!(err.contains("\n  - local ("), "{err}");
    assert!(err.contains("What you can do"), "{err}");
    // Start it, or install it first when no `ollama` is on PATH.
    assert!(
        err.contains("start Ollama") || err.contains("install Ollama"),
        "{err}"
    );
    assert!(!err.contains("sk-upstream-test"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_explains_the_plan() {
    let up = completion_upstream().await;
    let gone = MockServer::refused_url().await.unwrap();
    let env = write_config(&format!(
        "{}{}{ROUTING}",
        openai_section("cloud", &up.url(), &["gpt-4o-mini"]),
        ollama_section("local", &gone)
    ));
    let o = llm(
        &env.config,
        &["route", "Hello", "--max-tokens", "100", "--json"],
        None,
    )
    .await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["classification"]["class"], "simple");
    assert_eq!(v["sequence"][0]["provider"], "local");
    assert_eq!(v["sequence"][1]["provider"], "cloud");
    let o = llm(
        &env.config,
        &["route", "Hello", "--max-tokens", "4000"],
        None,
    )
    .await;
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("classification: complex"), "{out}");
    assert!(out.contains("cloud"), "{out}");
    assert_eq!(
        up.requests().iter().filter(|r| r.method == "POST").count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_lists_kinds_and_instances() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}[llm_providers.off]\nkind = \"anthropic\"\nenabled = false\n\n{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini", "gpt-4o"])
    ));
    let o = llm(&env.config, &["providers", "--json"], None).await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kinds: Vec<&str> = v["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in ["anthropic", "custom", "ollama", "openai"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let p = &v["providers"][0];
    assert_eq!(p["name"], "primary");
    assert_eq!(p["kind"], "openai");
    assert_eq!(p["enabled"], true);
    assert_eq!(p["local"], false);
    assert_eq!(p["available"], true);
    assert_eq!(p["circuit"], "closed");
    assert_eq!(p["default_model"], "gpt-4o-mini");
    assert_eq!(p["models"], serde_json::json!(["gpt-4o-mini", "gpt-4o"]));
    assert_eq!(v["providers"][1]["name"], "off");
    assert_eq!(v["providers"][1]["enabled"], false);

    let o = llm(&env.config, &["providers"], None).await;
    assert_ok(&o);
    let out = stdout(&o);
    assert!(
        out.starts_with("compiled-in kinds: anthropic, custom, ollama, openai"),
        "{out}"
    );
    assert!(
        out.contains("NAME") && out.contains("primary") && out.contains("off"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_configured_and_live_models() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini", "o4-mini"])
    ));
    let o = llm(&env.config, &["models", "--json"], None).await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["provider"], "primary");
    assert_eq!(
        v[0]["configured"],
        serde_json::json!(["gpt-4o-mini", "o4-mini"])
    );
    assert_eq!(
        v[0]["available"],
        serde_json::json!(["gpt-4o-mini", "gpt-4o"])
    );
    let o = llm(&env.config, &["models", "--provider", "primary"], None).await;
    assert_ok(&o);
    assert!(stdout(&o).contains("gpt-4o"));
    let o = llm(&env.config, &["models", "--provider", "nope"], None).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown provider `nope`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_shows_progress_lines_when_not_a_terminal() {
    let ol = ollama_upstream().await;
    let env = write_config(&format!("{}{ROUTING}", ollama_section("ollama", &ol.url())));
    let o = llm(&env.config, &["pull", "llama3.2"], None).await;
    assert_ok(&o);
    assert_eq!(stdout(&o), "pulled llama3.2 on ollama\n");
    let err = stderr(&o);
    assert!(err.contains("llama3.2: pulling manifest"), "{err}");
    assert!(err.contains("llama3.2: pulling dde5aa3fc5ff   0%"), "{err}");
    assert!(err.contains("100%"), "{err}");
    assert!(err.contains("llama3.2: success"), "{err}");
    let sent = ol
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/pull")
        .unwrap()
        .json();
    assert_eq!(sent["model"], "llama3.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_reports_pass_and_fail() {
    let ol = ollama_upstream().await;
    let up = completion_upstream().await;
    let gone = MockServer::refused_url().await.unwrap();
    let env = write_config(&format!(
        "{}{}{}{ROUTING}",
        ollama_section("ollama", &ol.url()),
        openai_section("primary", &up.url(), &["gpt-4o-mini"]),
        openai_section("dead", &gone, &["gpt-4o-mini"])
    ));
    let o = llm(&env.config, &["setup"], None).await;
    assert_ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("ok   ollama: Ollama is running (version 0.5.1)"),
        "{out}"
    );
    assert!(
        out.contains("ok   ollama: required models present"),
        "{out}"
    );
    assert!(out.contains("ok   primary (openai): available"), "{out}");
    assert!(out.contains("FAIL dead (openai): not available"), "{out}");
    assert!(out.contains("2 of 3 enabled providers work"), "{out}");

    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("dead", &gone, &["gpt-4o-mini"])
    ));
    let o = llm(&env.config, &["setup"], None).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no provider works"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_says_ok_or_names_file_and_line() {
    let env = write_config(
        "[llm_providers.openai]\nenabled = false\n\n[routing]\nstrategy = \"local_first\"\n",
    );
    let o = llm(&env.config, &["config", "check"], None).await;
    assert_ok(&o);
    assert!(stdout(&o).starts_with("ok"), "{}", stdout(&o));

    let bad = env.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[routing]\nstrategy = \"cost_optimized\"\nstrategee = 1\n",
    )
    .unwrap();
    let o = llm(
        &env.config,
        &["config", "check", bad.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:3", bad.display())), "{err}");
    assert!(err.contains("strategee"), "{err}");

    // What `llm serve` refuses beyond the file's own rules: a CORS origin.
    let cors = env.dir.path().join("cors.toml");
    std::fs::write(&cors, "[gateway]\ncors_origins = [\"app.example.com\"]\n").unwrap();
    let o = llm(
        &env.config,
        &["config", "check", cors.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cors_origins") && err.contains("app.example.com"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_then_stops_on_sigterm() {
    let up = completion_upstream().await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("llm"))
        .env_remove("LLM_CONFIG")
        .arg("--config")
        .arg(&env.config)
        .args(["-q", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&hello("auto"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "Hello!"
    );

    let pid = child.id().to_string();
    let status = tokio::task::spawn_blocking(move || {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

/// The fake `ollama` executable of llm-ollama, next to `llm` (built when it
/// is missing or older than its source).
fn fake_ollama() -> PathBuf {
    static FAKE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FAKE.get_or_init(|| {
        let llm = assert_cmd::cargo::cargo_bin!("llm");
        let fake = llm.with_file_name(format!("fake-ollama{}", std::env::consts::EXE_SUFFIX));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let source = root.join("crates/llm-ollama/src/bin/fake-ollama.rs");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = matches!((modified(&fake), modified(&source)), (Some(f), Some(s)) if f >= s);
        if !fresh {
            let mut cargo = std::process::Command::new(env!("CARGO"));
            cargo
                .current_dir(&root)
                .args(["build", "-p", "llm-ollama", "--bin", "fake-ollama"]);
            if llm.parent().is_some_and(|d| d.ends_with("release")) {
                cargo.arg("--release");
            }
            let status = cargo.status().unwrap();
            assert!(status.success(), "cannot build fake-ollama");
        }
        assert!(fake.is_file(), "{} is missing", fake.display());
        fake
    })
    .clone()
}

/// An Ollama instance on `url` whose server is the fake `ollama`.
fn fake_ollama_section(name: &str, url: &str, fake: &Path) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodels = [\"qwen:7b\"]\n\
         default_model = \"qwen:7b\"\nrequired_models = [\"qwen:7b\"]\nauto_download = true\n\
         binary = \"{}\"\nstart_timeout = 20\ntimeout = 10\n\n",
        fake.display()
    )
}

/// The servers the fake `ollama` recorded (`FAKE_OLLAMA_SPAWN_LOG`): their pids.
fn fake_spawns(log: &Path) -> Vec<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_starts_ollama_through_one_path_only() {
    let fake = tokio::task::spawn_blocking(fake_ollama).await.unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let env = write_config(&format!(
        "{}{ROUTING}",
        fake_ollama_section("local", &url, &fake)
    ));
    let spawn_log = env.dir.path().join("spawns");
    let (config, state, spawns) = (
        env.config.clone(),
        env.dir.path().to_path_buf(),
        spawn_log.clone(),
    );
    let o = tokio::task::spawn_blocking(move || {
        assert_cmd::cargo_bin_cmd!("llm")
            .env_remove("LLM_CONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("XDG_STATE_HOME", &state)
            .env("FAKE_OLLAMA_MODE", "exit")
            .env("FAKE_OLLAMA_SPAWN_LOG", &spawns)
            .arg("--config")
            .arg(&config)
            .args(["generate", "Say hello."])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    // The server that cannot start was started once, not once per manager.
    assert_eq!(fake_spawns(&spawn_log).len(), 1, "stderr: {}", stderr(&o));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_ollama_at_start_up_and_routes_to_it_once_ready() {
    let fake = tokio::task::spawn_blocking(fake_ollama).await.unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = write_config(&format!(
        "{}{ROUTING}",
        fake_ollama_section("local", &url, &fake)
    ));
    let spawn_log = env.dir.path().join("spawns");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("llm"))
        .env_remove("LLM_CONFIG")
        .env_remove("RUST_LOG")
        .env("XDG_STATE_HOME", env.dir.path())
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .env("FAKE_OLLAMA_IDLE_EXIT_SECS", "30")
        .arg("--config")
        .arg(&env.config)
        .args(["-q", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Without any request, the instance becomes available: started and
    // provisioned in the background, then probed again.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let health: Value = http
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let local = health["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "local")
            .cloned()
            .unwrap();
        if local["available"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Ollama instance never became available: {health}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let spawned = fake_spawns(&spawn_log);
    assert_eq!(spawned.len(), 1, "{spawned:?}");
    // The required model was pulled at start-up.
    let tags: Value = http
        .get(format!("{url}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["models"][0]["name"], "qwen:7b", "{tags}");

    let r = http
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&hello("qwen:7b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "Hello!"
    );

    let pid = child.id().to_string();
    let status = tokio::task::spawn_blocking(move || {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    // The started server is left running as a service; the test stops it.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &spawned[0].to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// `POST /api/embed` as Ollama answers it (two inputs of `nomic-embed-text`,
/// vectors shortened to six values).
const OLLAMA_EMBED_TWO: &str = r#"{"model":"nomic-embed-text","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704],[-0.0098027075,0.06042469,0.025257962,-0.006364387,0.07272725,0.017194884]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":16}"#;

/// An Ollama instance serving the embedding model, on a mock.
fn ollama_embedding_section(name: &str, url: &str) -> String {
    format!(
        "[llm_providers.{name}]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodels = [\"llama3.2:latest\"]\n\
         embedding_models = [\"nomic-embed-text\"]\nbinary = \"/nonexistent/ollama\"\ntimeout = 10\n\n"
    )
}

async fn ollama_embed_upstream(reply: MockReply) -> MockServer {
    let m = ollama_upstream().await;
    m.on("POST", "/api/embed", reply);
    m
}

fn embed_bodies(up: &MockServer, path: &str) -> Vec<Value> {
    up.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .map(|r| r.json())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_prints_dimensions_and_first_values() {
    let up = ollama_embed_upstream(MockReply::json(200, OLLAMA_EMBED_TWO)).await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        ollama_embedding_section("local", &up.url())
    ));
    let o = llm(&env.config, &["embed", "第一章", "chapter two"], None).await;
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("#  DIMS  FIRST VALUES"), "{out}");
    assert_eq!(
        lines[1],
        "1  6     [0.0101, -0.0018, 0.0501, 0.0469, 0.0549, …]   第一章"
    );
    assert_eq!(
        lines[2],
        "2  6     [-0.0098, 0.0604, 0.0253, -0.0064, 0.0727, …]  chapter two"
    );
    let err = stderr(&o);
    assert!(
        err.contains("model nomic-embed-text via local (ollama)"),
        "{err}"
    );
    assert!(err.contains("2 inputs, 0 cached · 16 tokens"), "{err}");
    let sent = embed_bodies(&up, "/api/embed");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "nomic-embed-text");
    assert_eq!(
        sent[0]["input"],
        serde_json::json!(["第一章", "chapter two"])
    );
    assert!(sent[0].get("dimensions").is_none(), "{}", sent[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_reads_lines_from_stdin_and_prints_the_whole_answer_as_json() {
    let up = ollama_embed_upstream(MockReply::json(200, OLLAMA_EMBED_TWO)).await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        ollama_embedding_section("local", &up.url())
    ));
    let o = llm(
        &env.config,
        &["embed", "-", "--json", "--dimensions", "6"],
        Some("first line\n\n  \r\nsecond line\r\n"),
    )
    .await;
    assert_ok(&o);
    let sent = embed_bodies(&up, "/api/embed");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["input"],
        serde_json::json!(["first line", "second line"])
    );
    assert_eq!(sent[0]["dimensions"], 6);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let vectors = v["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].as_array().unwrap().len(), 6);
    assert_eq!(vectors[1][1].as_f64().unwrap() as f32, 0.060_424_69_f32);
    assert_eq!(v["model"], "nomic-embed-text");
    assert_eq!(v["provider"], "local");
    assert_eq!(v["provider_kind"], "ollama");
    assert_eq!(v["usage"]["prompt_tokens"], 16);
    assert_eq!(v["cached_inputs"], 0);
    assert!(v["cost"].is_number());
    assert_eq!(v["attempts"][0]["provider"], "local");

    // `-` among texts: the lines of stdin at its place.
    let up = ollama_embed_upstream(MockReply::json(200, OLLAMA_EMBED_TWO)).await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        ollama_embedding_section("local", &up.url())
    ));
    let o = llm(&env.config, &["embed", "before", "-"], Some("from stdin\n")).await;
    assert_ok(&o);
    assert_eq!(
        embed_bodies(&up, "/api/embed")[0]["input"],
        serde_json::json!(["before", "from stdin"])
    );

    // Nothing on stdin: an error before any call.
    let o = llm(&env.config, &["embed", "-"], Some("\n\n")).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no text read from stdin"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_through_an_openai_kind_instance() {
    let up = MockServer::start().await.unwrap();
    up.on(
        "POST",
        "/v1/embeddings",
        MockReply::json(
            200,
            r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": [
        0.1,
        0.2
      ]
    }
  ],
  "model": "text-embedding-3-small",
  "usage": {
    "prompt_tokens": 2,
    "total_tokens": 2
  }
}
"#,
        ),
    );
    let section = openai_section("cloud", &up.url(), &["gpt-4o-mini"]).replace(
        "timeout = 10\n",
        "timeout = 10\nembedding_models = [\"text-embedding-3-small\"]\nembedding_encoding = \"float\"\n",
    );
    let env = write_config(&format!("{section}{ROUTING}"));
    let o = llm(&env.config, &["embed", "hello", "--json"], None).await;
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["vectors"], serde_json::json!([[0.1, 0.2]]));
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["provider"], "cloud");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let sent = embed_bodies(&up, "/v1/embeddings");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "text-embedding-3-small");
    assert_eq!(sent[0]["input"], serde_json::json!(["hello"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_embed_exits_1_listing_attempts_and_what_to_do() {
    // Ollama's answer for a model it has not pulled.
    let up = ollama_embed_upstream(MockReply::json(
        404,
        r#"{"error":"model \"nomic-embed-text\" not found, try pulling it first"}"#,
    ))
    .await;
    let env = write_config(&format!(
        "{}{ROUTING}",
        ollama_embedding_section("local", &up.url())
    ));
    let o = llm(&env.config, &["embed", "hello"], None).await;
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("local (nomic-embed-text)"), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains("What you can do"), "{err}");
    assert!(
        err.contains("`llm pull nomic-embed-text --provider local`"),
        "{err}"
    );

    // A model no instance serves: named with the ones that are, no call made.
    let before = embed_bodies(&up, "/api/embed").len();
    let o = llm(
        &env.config,
        &["embed", "hello", "--model", "text-embedding-3-small"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("embedding model `text-embedding-3-small`")
            && err.contains("nomic-embed-text"),
        "{err}"
    );
    assert!(
        err.contains("pick one with --model (nomic-embed-text)"),
        "{err}"
    );
    assert_eq!(embed_bodies(&up, "/api/embed").len(), before);
}
