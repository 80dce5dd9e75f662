//! The offline examples of `llm-router` run and show what they promise.
//!
//! They are built with `cargo build --workspace --all-features --examples`,
//! which resolves features exactly as CI's `cargo test --workspace
//! --all-features` does, so in CI nothing is rebuilt; then each one is run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::workspace;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the examples once; returns the directory holding them.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => workspace().join(dir),
            None => workspace().join("target"),
        };
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "--offline",
                "--workspace",
                "--all-features",
                "--examples",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TERM_COLOR", "never")
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the examples failed\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug").join("examples")
    })
}

/// Runs an example; returns its stdout.
fn run_example(name: &str) -> String {
    let out = Command::new(examples_dir().join(name))
        .env_remove("LLM_CONFIG")
        .current_dir(workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "example {name} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn fallback_answers_from_the_second_provider_and_lists_attempts() {
    let out = run_example("fallback");
    assert!(
        out.contains("answer from ollama: Hello from the local model!"),
        "{out}"
    );
    assert!(
        out.contains("openai (gpt-4o-mini): retryable, HTTP 503"),
        "{out}"
    );
    assert!(out.contains("ollama (llama3:8b): ok"), "{out}");
}

#[test]
fn streaming_prints_the_deltas_usage_and_done() {
    let out = run_example("streaming");
    assert!(
        out.contains("Streaming sends the answer piece by piece"),
        "{out}"
    );
    assert!(out.contains("[usage: "), "{out}");
    assert!(out.contains("[done: stop]"), "{out}");
}

#[test]
fn novel_sends_the_outline_local_and_the_chapters_to_the_strong_model() {
    let out = run_example("novel");
    assert!(out.contains("outline route: simple"), "{out}");
    assert!(out.contains("chapter route: complex"), "{out}");
    assert!(out.contains("大纲 (ollama / qwen:7b)"), "{out}");
    for n in 1..=3 {
        assert!(
            out.contains(&format!("chapter {n}  openai")),
            "chapter {n} by openai\n{out}"
        );
    }
    let total = out
        .lines()
        .find_map(|l| l.strip_prefix("total cost: $"))
        .expect("a total cost line");
    assert!(total.parse::<f64>().unwrap() > 0.0, "{out}");
    assert!(out.contains("ollama: $0.000000"), "{out}");
}

#[test]
fn tools_runs_the_tool_and_answers_with_its_result() {
    let out = run_example("tools");
    assert!(
        out.contains("skipped: ollama: does not support tools"),
        "{out}"
    );
    assert!(
        out.contains(r#"tool call call_abc123 get_weather({"city":"Paris"}) → 18°C, cloudy"#),
        "{out}"
    );
    assert!(
        out.contains("answer from openai: It is 18°C and cloudy in Paris."),
        "{out}"
    );
}
