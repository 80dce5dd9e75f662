//! The service manager against the fake `ollama` executable built by this crate
//! (`src/bin/fake-ollama.rs`). Every test stops the servers it starts; the fake
//! also exits by itself after 30 s without requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{
    ErrorClass, LlmRequest, Provider, ProviderErrorKind, ProviderProfile, ProviderSpec,
};
use llm_ollama::{OllamaProvider, OllamaService, ServiceError, ServiceStatus};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-ollama");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spec(base_url: &str) -> ProviderSpec {
    let profile = ProviderProfile {
        local: true,
        models: vec!["llama3.2".into(), "qwen:7b".into()],
        default_model: Some("llama3.2".into()),
        timeout: Duration::from_secs(10),
        ..ProviderProfile::default()
    };
    ProviderSpec::new("ollama", "ollama", profile)
        .option("base_url", base_url)
        .option("binary", FAKE)
        .option("start_timeout", 20)
}

/// A directory of its own for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "llm-ollama-test-{name}-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A manager of the fake server, logging into `scratch`.
fn service_in(spec: &ProviderSpec, scratch: &Scratch) -> OllamaService {
    OllamaService::from_spec(spec)
        .unwrap()
        .env("FAKE_OLLAMA_IDLE_EXIT_SECS", "30")
        .log_dir(scratch.join("logs"))
}

/// A manager of the fake server whose log goes to a directory that outlives
/// the test only when the test fails before [`stop`].
fn service(spec: &ProviderSpec) -> OllamaService {
    let dir = std::env::temp_dir().join(format!(
        "llm-ollama-test-logs-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    OllamaService::from_spec(spec)
        .unwrap()
        .env("FAKE_OLLAMA_IDLE_EXIT_SECS", "30")
        .log_dir(dir)
}

fn local_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Stops the server the test started and removes its log directory.
async fn stop(s: &OllamaService) -> Option<String> {
    let ended = s.stop().await;
    if let Some(dir) = s.log_file().as_deref().and_then(Path::parent) {
        if dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    ended
}

/// Whether a live process with this id exists (a zombie, dead but not yet
/// reaped by its parent, counts as gone).
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) S …`: the state follows the last `)`.
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
    } else {
        let out = std::process::Command::new("ps")
            .args(["-o", "stat=", "-p", &pid.to_string()])
            .output()
            .unwrap();
        let stat = String::from_utf8_lossy(&out.stdout);
        let stat = stat.trim();
        !stat.is_empty() && !stat.starts_with('Z')
    }
}

/// Polls `done` every 20 ms; fails the test after 30 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The servers started so far (`FAKE_OLLAMA_SPAWN_LOG`): pid and `OLLAMA_HOST`.
fn spawns(log: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (pid, host) = l.split_once(' ').unwrap();
            (pid.parse().unwrap(), host.to_string())
        })
        .collect()
}

#[cfg(unix)]
fn kill(signal: &str, target: &str) {
    let ok = std::process::Command::new("kill")
        .args(["-s", signal, "--", target])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {signal} {target}");
}

#[test]
fn process_exists_tells_live_processes_from_gone_ones() {
    assert!(process_exists(std::process::id()));
    let mut child = std::process::Command::new(FAKE).spawn().unwrap();
    let pid = child.id();
    // `fake-ollama` without `serve` exits at once with status 2.
    assert_eq!(child.wait().unwrap().code(), Some(2));
    assert!(!process_exists(pid), "a reaped child is gone");
}

#[tokio::test]
async fn starts_the_server_and_polls_until_it_answers() {
    let url = local_url();
    // The fake listens only after a delay, so the first probes fail.
    let s = service(&spec(&url)).env("FAKE_OLLAMA_READY_DELAY_MS", "300");
    assert!(!s.is_running().await);
    let status = s.ensure_running().await.unwrap();
    let ServiceStatus::Started { pid, version } = status else {
        panic!("expected a start, got {status:?}");
    };
    let pid = pid.unwrap();
    assert_eq!(version.as_deref(), Some("0.0.0-fake"));
    assert_eq!(s.pid(), Some(pid));
    assert!(process_exists(pid));
    assert!(s.is_running().await);
    // A second call finds it running.
    assert!(matches!(
        s.ensure_running().await.unwrap(),
        ServiceStatus::AlreadyRunning { .. }
    ));
    // Stopping ends and reaps it: no zombie is left.
    assert!(stop(&s).await.is_some());
    assert!(!process_exists(pid), "pid {pid} still exists");
    assert_eq!(s.pid(), None);
    assert!(!s.is_running().await);
    assert_eq!(s.stop().await, None, "nothing left to stop");
}

#[tokio::test]
async fn server_started_by_someone_else_is_left_alone() {
    let server = MockServer::start().await.unwrap();
    server.on(
        "GET",
        "/api/version",
        MockReply::json(200, r#"{"version":"0.5.1"}"#),
    );
    let s = service(&spec(&server.url()).option("binary", "/nonexistent/ollama"));
    assert_eq!(
        s.ensure_running().await.unwrap(),
        ServiceStatus::AlreadyRunning {
            version: Some("0.5.1".into())
        }
    );
    assert_eq!(s.stop().await, None);
}

#[tokio::test]
async fn missing_binary_says_how_to_install_ollama() {
    let s = service(&spec(&local_url()).option("binary", "/nonexistent/dir/ollama"));
    let err = s.ensure_running().await.unwrap_err();
    assert!(
        matches!(&err, ServiceError::BinaryNotFound { on_path: false, .. }),
        "{err:?}"
    );
    let s = service(&spec(&local_url()).option("binary", "llm-ollama-test-no-such-binary"));
    let err = s.ensure_running().await.unwrap_err();
    assert!(
        matches!(&err, ServiceError::BinaryNotFound { on_path: true, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    for needle in [
        "llm-ollama-test-no-such-binary",
        "on PATH",
        "https://ollama.com/download",
        "curl -fsSL https://ollama.com/install.sh | sh",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    let pe = err.to_provider_error("ollama");
    assert_eq!(pe.kind, ProviderErrorKind::Connect, "counts against health");
    assert_eq!(pe.code.as_deref(), Some("ollama_not_installed"));
    assert!(pe.message.contains("https://ollama.com/download"), "{pe}");
}

#[tokio::test]
async fn binary_that_exits_at_once_is_reported_with_its_log() {
    let s = service(&spec(&local_url())).env("FAKE_OLLAMA_MODE", "exit");
    let err = s.ensure_running().await.unwrap_err();
    let ServiceError::NotReady {
        exit,
        pid,
        log,
        log_tail,
        ..
    } = &err
    else {
        panic!("expected NotReady, got {err:?}");
    };
    assert!(exit.is_some(), "{err}");
    let log = log.clone().unwrap();
    assert_eq!(Some(&log), s.log_file().as_ref());
    let msg = err.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(msg.contains(&log.display().to_string()), "{msg}");
    // The log's end is kept in the error (and logged), not put in the message.
    let tail = log_tail.as_deref().unwrap();
    assert!(tail.contains("exiting at once"), "{tail}");
    assert!(!msg.contains("exiting at once"), "{msg}");
    assert!(
        !process_exists(pid.unwrap()),
        "the exited process was reaped"
    );
    assert_eq!(s.pid(), None);

    // As a provider error: short, without the log, and it counts against health.
    let pe = err.to_provider_error("ollama");
    assert_eq!(pe.kind, ProviderErrorKind::Connect);
    assert_eq!(pe.class(), ErrorClass::Retryable);
    assert_eq!(pe.code.as_deref(), Some("ollama_not_started"));
    assert!(pe.message.contains("exited"), "{pe}");
    assert!(!pe.message.contains("exiting at once"), "{pe}");
    assert!(!pe.message.contains(".log"), "{pe}");
    assert_eq!(stop(&s).await, None);
}

#[tokio::test]
async fn server_that_never_answers_times_out_and_is_killed() {
    let s =
        service(&spec(&local_url()).option("start_timeout", 0.5)).env("FAKE_OLLAMA_MODE", "hang");
    let err = s.ensure_running().await.unwrap_err();
    let ServiceError::NotReady { exit, pid, .. } = &err else {
        panic!("expected NotReady, got {err:?}");
    };
    assert_eq!(exit, &None, "{err}");
    assert!(err.to_string().contains("start_timeout"), "{err}");
    assert!(
        !process_exists(pid.unwrap()),
        "the hung server was killed and reaped"
    );
    assert_eq!(s.pid(), None);
    let pe = err.to_provider_error("ollama");
    assert_eq!(pe.kind, ProviderErrorKind::Timeout);
    assert_eq!(pe.class(), ErrorClass::Retryable);
    assert_eq!(stop(&s).await, None);
}

#[tokio::test]
async fn remote_servers_are_not_started() {
    let s = service(&spec("http://gpu-box.invalid:11434"));
    let err = s.ensure_running().await.unwrap_err();
    assert!(matches!(err, ServiceError::NotLocal { .. }), "{err:?}");
}

#[tokio::test]
async fn ensure_models_pulls_what_is_missing_then_serves_it() {
    let url = local_url();
    let spec = spec(&url)
        .option(
            "required_models",
            vec!["llama3.2", "qwen:7b", "llama3.2:latest"],
        )
        .option("auto_download", true);
    let s = service(&spec).env("FAKE_OLLAMA_MODELS", "llama3.2:latest");
    s.ensure_running().await.unwrap();

    assert_eq!(s.missing_models().await.unwrap(), vec!["qwen:7b"]);
    let mut progress: Vec<(String, String)> = Vec::new();
    let pulled = s
        .ensure_models(|model, p| progress.push((model.to_string(), p.status.clone())))
        .await
        .unwrap();
    assert_eq!(pulled, vec!["qwen:7b"]);
    assert_eq!(
        progress.first(),
        Some(&("qwen:7b".to_string(), "pulling manifest".to_string()))
    );
    assert_eq!(
        progress.last(),
        Some(&("qwen:7b".to_string(), "success".to_string()))
    );
    assert!(s.missing_models().await.unwrap().is_empty());
    let mut calls = 0;
    assert!(s.ensure_models(|_, _| calls += 1).await.unwrap().is_empty());
    assert_eq!(calls, 0, "nothing to pull");

    // The pulled model now answers through the provider.
    let p = OllamaProvider::from_spec(&spec).unwrap();
    assert!(p.is_available().await);
    assert!(p.models().await.unwrap().contains(&"qwen:7b".to_string()));
    let r = p
        .generate(&LlmRequest::new("hi").model("qwen:7b"))
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    let r = p
        .stream(&LlmRequest::new("hi").model("qwen:7b"))
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.content, "Hello!");
    assert_eq!(r.usage.prompt_tokens, 31);

    stop(&s).await;
}

#[tokio::test]
async fn missing_models_without_auto_download_are_an_error() {
    let spec = spec(&local_url()).option("required_models", vec!["qwen:7b"]);
    let s = service(&spec);
    s.ensure_running().await.unwrap();
    let err = s.ensure_models(|_, _| {}).await.unwrap_err();
    stop(&s).await;
    assert!(
        matches!(&err, ServiceError::ModelsMissing { models } if models == &["qwen:7b"]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`llm pull qwen:7b`"), "{msg}");
    assert!(msg.contains("auto_download"), "{msg}");
    let pe = err.to_provider_error("ollama");
    assert_eq!((pe.kind, pe.status), (ProviderErrorKind::Http, Some(404)));
    assert_eq!(pe.code.as_deref(), Some("model_not_found"));
}

#[tokio::test]
async fn pull_error_line_fails_ensure_models() {
    let spec = spec(&local_url())
        .option("required_models", vec!["ghost"])
        .option("auto_download", true);
    let s = service(&spec).env("FAKE_OLLAMA_PULL_FAIL", "ghost");
    s.ensure_running().await.unwrap();
    let mut statuses = Vec::new();
    let err = s
        .ensure_models(|_, p| statuses.push(p.status.clone()))
        .await
        .unwrap_err();
    stop(&s).await;
    let ServiceError::Pull { model, source } = &err else {
        panic!("expected a pull error, got {err:?}");
    };
    assert_eq!(model, "ghost");
    assert!(
        source
            .message
            .contains("pull model manifest: file does not exist"),
        "{err}"
    );
    assert_eq!(statuses, ["pulling manifest"]);
}

#[tokio::test]
async fn a_client_that_prepares_providers_starts_the_server_and_pulls_models() {
    let url = local_url();
    let spec = spec(&url)
        .option("required_models", vec!["qwen:7b"])
        .option("auto_download", true);
    let provider = std::sync::Arc::new(OllamaProvider::from_spec(&spec).unwrap());
    let client = llm_core::LlmClient::builder()
        .provider(provider.clone())
        .no_cache()
        .prepare_providers(true)
        .build()
        .unwrap();
    let r = client
        .generate(LlmRequest::new("Hello").model("qwen:7b").max_tokens(50))
        .await;
    let manager = provider.prepared_service().expect("prepare ran");
    assert!(manager.pid().is_some(), "the server was started");
    assert!(
        manager.missing_models().await.unwrap().is_empty(),
        "models pulled"
    );
    let r = r.unwrap();
    assert_eq!(r.provider, "ollama");
    assert!(!r.content.is_empty());
    stop(manager).await;
}

#[tokio::test]
async fn prepare_starts_the_server_and_pulls_required_models() {
    let scratch = Scratch::new("prepare");
    let spec = spec(&local_url())
        .option("required_models", vec!["qwen:7b"])
        .option("auto_download", true);
    let s = service_in(&spec, &scratch);
    s.prepare().await.unwrap();
    assert!(s.pid().is_some());
    assert!(s.missing_models().await.unwrap().is_empty());
    stop(&s).await;
}

#[tokio::test]
async fn concurrent_callers_share_one_start() {
    let scratch = Scratch::new("concurrent");
    let spawn_log = scratch.join("spawns");
    let s = service_in(&spec(&local_url()), &scratch)
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .env("FAKE_OLLAMA_READY_DELAY_MS", "200");
    let results = futures::future::join_all((0..100).map(|_| s.ensure_running())).await;
    let started = spawns(&spawn_log);
    assert_eq!(started.len(), 1, "one server for 100 callers: {started:?}");
    let pid = started[0].0;
    for r in results {
        match r.unwrap() {
            ServiceStatus::Started { pid: p, .. } => assert_eq!(p, Some(pid)),
            other => panic!("every caller waited for the same start: {other:?}"),
        }
    }
    assert_eq!(s.pid(), Some(pid));
    // While it runs, it is reused.
    let again = futures::future::join_all((0..100).map(|_| s.ensure_running())).await;
    assert!(again
        .iter()
        .all(|r| matches!(r, Ok(ServiceStatus::AlreadyRunning { .. }))));
    assert_eq!(spawns(&spawn_log).len(), 1);
    stop(&s).await;
    assert!(!process_exists(pid));
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_orphan_the_start() {
    let scratch = Scratch::new("cancel");
    let spawn_log = scratch.join("spawns");
    let ready = scratch.join("ready");
    let s = service_in(&spec(&local_url()), &scratch)
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .env("FAKE_OLLAMA_READY_FILE", &ready);
    // The first caller goes away while the server is starting.
    tokio::select! {
        r = s.ensure_running() => panic!("the server cannot be ready yet: {r:?}"),
        () = wait_until("the server was started", || spawns(&spawn_log).len() == 1) => {}
    }
    // The next caller waits for that same server instead of starting another.
    let s = Arc::new(s);
    let next = tokio::spawn({
        let s = s.clone();
        async move { s.ensure_running().await }
    });
    std::fs::write(&ready, "").unwrap();
    let status = next.await.unwrap().unwrap();
    let started = spawns(&spawn_log);
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        status,
        ServiceStatus::Started {
            pid: Some(started[0].0),
            version: Some("0.0.0-fake".into())
        }
    );
    assert_eq!(s.pid(), Some(started[0].0));
    stop(&s).await;
    assert!(!process_exists(started[0].0));
}

#[tokio::test]
async fn a_failed_start_is_not_repeated_within_the_backoff() {
    let scratch = Scratch::new("backoff");
    let spawn_log = scratch.join("spawns");
    let hour = Duration::from_secs(3600);
    let s = service_in(&spec(&local_url()).option("start_timeout", 0.5), &scratch)
        .env("FAKE_OLLAMA_MODE", "hang")
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .restart_backoff(hour, hour);
    let first = s.ensure_running().await.unwrap_err();
    let ServiceError::NotReady {
        pid, exit: None, ..
    } = &first
    else {
        panic!("expected a timeout, got {first:?}");
    };
    for _ in 0..5 {
        let again = s.ensure_running().await.unwrap_err();
        // The same failure, without starting (and waiting for) another server.
        assert!(
            matches!(&again, ServiceError::NotReady { pid: p, .. } if p == pid),
            "{again:?}"
        );
    }
    assert_eq!(spawns(&spawn_log).len(), 1);
    stop(&s).await;

    // Past the pause, it is tried again.
    let spawn_log = scratch.join("spawns-2");
    let s = service_in(&spec(&local_url()), &scratch)
        .env("FAKE_OLLAMA_MODE", "exit")
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .restart_backoff(Duration::ZERO, Duration::ZERO);
    s.ensure_running().await.unwrap_err();
    s.ensure_running().await.unwrap_err();
    assert_eq!(spawns(&spawn_log).len(), 2);
    stop(&s).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_server_that_exits_is_started_again() {
    let scratch = Scratch::new("restart");
    let spawn_log = scratch.join("spawns");
    let s = service_in(&spec(&local_url()), &scratch)
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(10));
    let ServiceStatus::Started {
        pid: Some(first), ..
    } = s.ensure_running().await.unwrap()
    else {
        panic!("expected a start");
    };
    kill("KILL", &first.to_string());
    wait_until("the server was started again", || {
        s.pid().is_some_and(|p| p != first)
    })
    .await;
    let started = spawns(&spawn_log);
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(s.pid(), Some(started[1].0));
    assert!(s.is_running().await);
    assert!(matches!(
        s.ensure_running().await.unwrap(),
        ServiceStatus::AlreadyRunning { .. }
    ));
    stop(&s).await;
    // A stopped server is not started again.
    assert_eq!(s.pid(), None);
    assert_eq!(spawns(&spawn_log).len(), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn stopping_ends_the_whole_process_group() {
    let scratch = Scratch::new("group");
    let grandchild = scratch.join("grandchild.pid");
    let s = service_in(&spec(&local_url()), &scratch).env("FAKE_OLLAMA_GRANDCHILD", &grandchild);
    let ServiceStatus::Started { pid: Some(pid), .. } = s.ensure_running().await.unwrap() else {
        panic!("expected a start");
    };
    let gc: u32 = std::fs::read_to_string(&grandchild)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_exists(gc), "the grandchild runs");
    // It ignores SIGTERM: only the SIGKILL to the group ends it.
    assert!(stop(&s).await.is_some());
    assert!(!process_exists(pid));
    wait_until("the grandchild is gone", || !process_exists(gc)).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_is_private_appended_and_never_follows_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("log");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let victim = scratch.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // A link planted where the log used to go (shared temporary directory)…
    let old = std::env::temp_dir().join(format!("llm-ollama-serve-{port}.log"));
    let _ = std::fs::remove_file(&old);
    std::os::unix::fs::symlink(&victim, &old).unwrap();
    // …and one at the log's path in its directory.
    let dir = scratch.join("logs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = service_in(&spec(&url), &scratch)
        .env("FAKE_OLLAMA_MODE", "exit")
        .restart_backoff(Duration::ZERO, Duration::ZERO);
    let log = s.log_file().unwrap();
    assert_eq!(log.parent(), Some(dir.as_path()));
    std::os::unix::fs::symlink(&victim, &log).unwrap();

    let err = s.ensure_running().await.unwrap_err();
    assert!(
        matches!(
            &err,
            ServiceError::NotReady {
                log: None,
                exit: Some(_),
                ..
            }
        ),
        "started without a log: {err:?}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the log directory is private");
    std::fs::remove_file(&old).unwrap();

    // Without the link, each start appends to the log; an error quotes only its own start.
    std::fs::remove_file(&log).unwrap();
    for round in 1..=2 {
        let err = s.ensure_running().await.unwrap_err();
        let ServiceError::NotReady {
            log_tail, log: l, ..
        } = &err
        else {
            panic!("expected NotReady, got {err:?}");
        };
        assert_eq!(l.as_ref(), Some(&log));
        assert_eq!(
            log_tail
                .as_deref()
                .unwrap()
                .matches("exiting at once")
                .count(),
            1
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("exiting at once").count(), round, "{text}");
    }
    let mode = std::fs::symlink_metadata(&log)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the log is private");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    stop(&s).await;
}

#[tokio::test]
async fn an_unspecified_address_is_served_on_loopback_unless_exposed() {
    let scratch = Scratch::new("loopback");
    let spawn_log = scratch.join("spawns");
    let port = free_port();
    let s = service_in(&spec(&format!("http://0.0.0.0:{port}")), &scratch)
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log);
    s.ensure_running().await.unwrap();
    assert_eq!(spawns(&spawn_log)[0].1, format!("127.0.0.1:{port}"));
    stop(&s).await;

    let spawn_log = scratch.join("spawns-exposed");
    let port = free_port();
    let s = service_in(&spec(&format!("http://0.0.0.0:{port}")), &scratch)
        .env("FAKE_OLLAMA_SPAWN_LOG", &spawn_log)
        .expose(true);
    s.ensure_running().await.unwrap();
    assert_eq!(spawns(&spawn_log)[0].1, format!("0.0.0.0:{port}"));
    stop(&s).await;
}
