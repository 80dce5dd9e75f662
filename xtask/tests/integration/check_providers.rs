//! `cargo xtask check-providers` against an `openai`-kind instance pointed at a
//! local mock server that answers with the OpenAI API's bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use llm_core::testing::{MockReply, MockServer};
use llm_openai::fixtures::{COMPLETION, MODELS, UNAUTHORIZED};

async fn check_providers(config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.toml");
    std::fs::write(&path, config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check-providers")
        .arg("--config")
        .arg(&path)
        .env_remove("LLM_CONFIG")
        .output()
        .await
        .unwrap()
}

fn log(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The table row of `provider`, split into its cells (two or more spaces apart).
fn row(out: &Output, provider: &str) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.split("  ").next() == Some(provider))
        .unwrap_or_else(|| panic!("no row for {provider}\n{}", log(out)));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_working_provider_is_reported_and_the_exit_code_is_zero() {
    let server = MockServer::start().await.unwrap();
    server.on("GET", "/v1/models", MockReply::json(200, MODELS));
    server.on(
        "POST",
        "/v1/chat/completions",
        MockReply::json(200, COMPLETION),
    );
    let refused = MockServer::refused_url().await.unwrap();
    let config = format!(
        r#"
[llm_providers.mock]
kind = "openai"
base_url = "{}/v1"
api_key = "sk-check-providers-test"
models = ["gpt-4o-mini", "gpt-4o"]
default_model = "gpt-4o-mini"
timeout = 10

[llm_providers.down]
kind = "openai"
base_url = "{refused}/v1"
models = ["gpt-4o-mini"]
timeout = 10

[llm_providers.off]
kind = "openai"
enabled = false
"#,
        server.url()
    );
    let out = check_providers(&config).await;
    assert!(out.status.success(), "{}", log(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header = stdout.lines().find(|l| l.starts_with("PROVIDER")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["PROVIDER", "KIND", "AVAILABLE", "MODELS", "GENERATION"]
    );
    // Columns are aligned: every cell of a column starts at the same offset.
    let at = |line: &str, cell: &str| line.find(cell).unwrap();
    let mock_line = stdout.lines().find(|l| l.starts_with("mock ")).unwrap();
    let down_line = stdout.lines().find(|l| l.starts_with("down ")).unwrap();
    assert_eq!(at(header, "AVAILABLE"), at(mock_line, "yes"), "{stdout}");
    assert_eq!(at(header, "AVAILABLE"), at(down_line, "no"), "{stdout}");

    let mock = row(&out, "mock");
    assert_eq!(mock[1], "openai");
    assert_eq!(mock[2], "yes");
    assert_eq!(mock[3], "2 (gpt-4o-mini, gpt-4o)");
    assert!(mock[4].starts_with("ok "), "{}", log(&out));
    assert!(mock[4].contains("22 tokens"), "{}", log(&out));
    assert!(
        mock[4].ends_with("gpt-4o-mini-2024-07-18: Hello!"),
        "{}",
        log(&out)
    );

    let down = row(&out, "down");
    assert_eq!(down[2], "no");
    assert!(down[4].starts_with("failed (connect)"), "{}", log(&out));
    assert_eq!(row(&out, "off")[2], "disabled");
    assert!(
        stdout.contains("1 of 2 enabled provider(s) work"),
        "{stdout}"
    );

    // The tiny generation is "Say hello." with max_tokens 16.
    let sent = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json();
    assert_eq!(sent["messages"][0]["content"], "Say hello.");
    assert_eq!(sent["max_tokens"], 16);
}

#[tokio::test]
async fn the_exit_code_is_one_when_no_provider_works() {
    let server = MockServer::start().await.unwrap();
    server.on("GET", "/v1/models", MockReply::json(200, MODELS));
    server.on(
        "POST",
        "/v1/chat/completions",
        MockReply::json(401, UNAUTHORIZED),
    );
    let config = format!(
        "[llm_providers.mock]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"gpt-4o-mini\"]\n",
        server.url()
    );
    let out = check_providers(&config).await;
    assert_eq!(out.status.code(), Some(1), "{}", log(&out));
    let mock = row(&out, "mock");
    assert!(mock[4].starts_with("failed (HTTP 401)"), "{}", log(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no provider works"),
        "{}",
        log(&out)
    );
}

#[tokio::test]
async fn a_configuration_error_names_the_file_and_fails() {
    let out = check_providers("[llm_providers.x]\nkind = \"openai\"\nbase_ulr = \"x\"\n").await;
    assert_eq!(out.status.code(), Some(1), "{}", log(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("providers.toml:3"), "{stderr}");
    assert!(stderr.contains("base_ulr"), "{stderr}");
}
