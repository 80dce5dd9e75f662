//! The service manager against the fake `ollama` executable built by this crate
//! (`src/bin/fake-ollama.rs`). Every test stops the servers it starts; the fake
//! also exits by itself after 30 s without requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use llm_core::testing::{MockReply, MockServer};
use llm_core::{LlmRequest, Provider, ProviderProfile, ProviderSpec};
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

fn service(spec: &ProviderSpec) -> OllamaService {
    OllamaService::from_spec(spec)
        .unwrap()
        .env("FAKE_OLLAMA_IDLE_EXIT_SECS", "30")
}

fn local_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Stops the server the test started and removes its log.
async fn stop(s: &OllamaService) -> Option<String> {
    let ended = s.stop().await;
    if let Some(log) = s.log_file() {
        let _ = std::fs::remove_file(log);
    }
    ended
}

/// Whether a process (or its zombie) with this id exists.
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        PathBuf::from(format!("/proc/{pid}")).exists()
    } else {
        false
    }
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
    assert!(s.is_running().await);
    // A second call finds it running.
    assert!(matches!(
        s.ensure_running().await.unwrap(),
        ServiceStatus::AlreadyRunning { .. }
    ));
    // Stopping kills and reaps it: no zombie is left.
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
}

#[tokio::test]
async fn binary_that_exits_at_once_is_reported_with_its_log() {
    let s = service(&spec(&local_url())).env("FAKE_OLLAMA_MODE", "exit");
    let err = s.ensure_running().await.unwrap_err();
    let ServiceError::NotReady { exit, pid, log, .. } = &err else {
        panic!("expected NotReady, got {err:?}");
    };
    assert!(exit.is_some(), "{err}");
    assert!(log.is_some(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(
        msg.contains("exiting at once"),
        "the log tail is quoted: {msg}"
    );
    assert!(
        !process_exists(pid.unwrap()),
        "the exited process was reaped"
    );
    assert_eq!(s.pid(), None);
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
