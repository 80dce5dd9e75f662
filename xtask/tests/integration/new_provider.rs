//! `cargo xtask new-provider`: the scaffolded crate builds, its own tests pass
//! as generated (the conformance suite included, against its own mock
//! upstream), it is clean under clippy, rustdoc and rustfmt, and a program
//! that links it lists its kind.
//!
//! One scaffold (outside the workspace, depending on this workspace's llm-core
//! through `--core-path`) is shared by the tests. Builds reuse this
//! workspace's target directory and its `Cargo.lock`, so only the new crate and
//! llm-core are compiled, offline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The provider kind the tests scaffold (two words, to exercise the name mapping).
const KIND: &str = "scaffold-check";
const CRATE: &str = "llm-scaffold-check";
/// Tests sharing the scaffold; the last one to finish removes it.
const USERS: usize = 3;
/// The checks of llm-core's conformance suite (`conformance_tests!`).
const CONFORMANCE_CHECKS: &[&str] = &[
    "generate",
    "stream",
    "stream_utf8_split",
    "stream_truncated",
    "stream_broken",
    "stream_error_event",
    "models",
    "availability",
    "error_statuses",
    "malformed_bodies",
    "timeout",
];
static DONE: AtomicUsize = AtomicUsize::new(0);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The workspace's own debug profile, so that the scaffold reuses what the
    // workspace already built in the shared target dir instead of building
    // its dependencies again with full debug info.
    cmd.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .args([
            "--config",
            "profile.dev.debug=\"line-tables-only\"",
            "--config",
            "profile.dev.package.\"*\".debug=false",
        ]);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The temporary directory holding the scaffold (and the test program).
fn scaffold() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("xtask-new-provider-")
            .tempdir()
            .unwrap()
            .keep();
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["new-provider", KIND, "--path"])
            .arg(root.join(CRATE))
            .arg("--core-path")
            .arg(workspace().join("crates/llm-core"))
            .output()
            .unwrap();
        assert!(out.status.success(), "new-provider failed\n{}", text(&out));
        // The workspace's lock file pins the versions already built in its target dir.
        std::fs::copy(
            workspace().join("Cargo.lock"),
            root.join(CRATE).join("Cargo.lock"),
        )
        .unwrap();
        root
    })
}

/// Marks a test done; the last one removes the scaffold.
fn release() {
    if DONE.fetch_add(1, Ordering::SeqCst) + 1 == USERS {
        let _ = std::fs::remove_dir_all(scaffold());
    }
}

#[test]
fn the_scaffolded_crate_passes_its_own_tests() {
    let dir = scaffold().join(CRATE);
    for file in [
        "Cargo.toml",
        "README.md",
        "src/lib.rs",
        "src/config.rs",
        "src/provider.rs",
        "src/stream.rs",
        "src/wire.rs",
        "src/error.rs",
        "tests/integration/main.rs",
        "tests/integration/fixtures.rs",
        "tests/integration/conformance.rs",
        "tests/integration/mapping.rs",
        "tests/integration/provider.rs",
        "tests/fixtures/completion.json",
        "tests/fixtures/stream.sse",
        "tests/fixtures/stream_cjk.sse",
        "tests/fixtures/stream_error.sse",
        "tests/fixtures/models.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} is generated");
    }
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let lib = read("src/lib.rs");
    assert!(lib.contains("llm_core::inventory::submit!"), "{lib}");
    let provider = read("src/provider.rs");
    for shape in [
        "fn supports(",
        "async fn check(",
        "send_with(",
        "read_json_max(",
        "max_response_bytes",
    ] {
        assert!(provider.contains(shape), "provider.rs has `{shape}`");
    }
    assert!(!provider.contains("todo!"), "{provider}");
    assert!(!provider.contains("not implemented"), "{provider}");
    let stream = read("src/stream.rs");
    for shape in ["sse_events(", "decode_frames(", "impl FrameDecoder for"] {
        assert!(stream.contains(shape), "stream.rs has `{shape}`");
    }
    let conformance = read("tests/integration/conformance.rs");
    assert!(
        conformance.contains("llm_core::conformance_tests!(ScaffoldCheck);"),
        "{conformance}"
    );
    assert!(!conformance.contains("#[ignore"), "{conformance}");
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("path = "),
        "depends on --core-path: {manifest}"
    );

    let out = cargo()
        .args(["test", "--offline"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let log = text(&out);
    assert!(
        out.status.success(),
        "cargo test of the scaffold failed\n{log}"
    );
    for check in CONFORMANCE_CHECKS {
        assert!(
            log.contains(&format!("test conformance::conformance::{check} ... ok")),
            "the conformance check `{check}` runs and passes\n{log}"
        );
    }
    for test in [
        "provider::the_kind_is_registered",
        "mapping::a_plain_request_sends_only_the_model_and_the_conversation",
        "mapping::no_capability_is_claimed_and_a_request_needing_one_is_refused_unsent",
        "mapping::availability_is_a_2xx_from_the_models_endpoint",
    ] {
        assert!(
            log.contains(&format!("test {test} ... ok")),
            "{test}\n{log}"
        );
    }
    let results: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .collect();
    assert!(!results.is_empty(), "{log}");
    for line in results {
        assert!(
            line.contains(" 0 ignored"),
            "nothing is ignored: {line}\n{log}"
        );
    }
    release();
}

#[test]
fn the_scaffolded_crate_is_clean_under_clippy_rustdoc_and_rustfmt() {
    let dir = scaffold().join(CRATE);
    let out = cargo()
        .args([
            "clippy",
            "--offline",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "clippy -D warnings\n{}", text(&out));
    let out = cargo()
        .args(["doc", "--offline", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "rustdoc -D warnings\n{}", text(&out));
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["fmt", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo fmt --check\n{}", text(&out));
    release();
}

#[test]
fn a_program_that_links_the_crate_lists_its_kind() {
    let root = scaffold();
    let app = root.join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    let core = workspace().join("crates/llm-core");
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scaffold-kinds\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nllm-core = {{ path = {core:?} }}\n{CRATE} = {{ path = \"../{CRATE}\" }}\n",
            core = core.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::write(
        app.join("src/main.rs"),
        "use llm_scaffold_check as _; // linking the crate registers its kind\n\n\
         fn main() {\n    println!(\"kinds: {}\", llm_core::registry::kinds().join(\", \"));\n}\n",
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), app.join("Cargo.lock")).unwrap();

    let out = cargo()
        .args(["run", "--offline", "--quiet"])
        .current_dir(&app)
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "the test program failed\n{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<&str> = stdout
        .trim()
        .strip_prefix("kinds: ")
        .unwrap_or_else(|| panic!("unexpected output\n{log}"))
        .split(", ")
        .collect();
    assert_eq!(kinds, vec![KIND], "{log}");
    release();
}

#[test]
fn bad_names_and_paths_inside_the_workspace_are_refused() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["new-provider", "Bad_Name", "--path", "/nonexistent/x"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("invalid provider name"),
        "{}",
        text(&out)
    );
    let out = run(&["new-provider", "openai", "--path", "/nonexistent/x"]);
    assert!(!out.status.success());
    let inside = workspace().join("target/should-not-exist");
    let out = run(&["new-provider", "acme", "--path", inside.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("inside the llm-router workspace"),
        "{}",
        text(&out)
    );
    assert!(!inside.exists());
}

#[test]
fn inside_a_workspace_the_crate_is_wired_into_the_facade() {
    // A copy of the files the task edits, standing in for this workspace.
    let root = tempfile::tempdir().unwrap();
    for file in [
        "Cargo.toml",
        "crates/llm-router/Cargo.toml",
        "crates/llm-router/src/lib.rs",
    ] {
        let to = root.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), to).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["new-provider", "acme"])
        .env("XTASK_WORKSPACE_ROOT", root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let read = |f: &str| std::fs::read_to_string(root.path().join(f)).unwrap();
    let manifest = read("crates/llm-acme/Cargo.toml");
    assert!(manifest.contains("llm-core = { workspace = true, features = [\"http\"] }"));
    assert!(manifest.contains("[lints]\nworkspace = true"));
    assert!(root
        .path()
        .join("crates/llm-acme/tests/integration/conformance.rs")
        .is_file());
    assert!(!root.path().join("crates/llm-acme/clippy.toml").exists());

    let workspace_manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    assert!(workspace_manifest["workspace"]["dependencies"]
        .get("llm-acme")
        .is_some());
    let facade: toml::Table = toml::from_str(&read("crates/llm-router/Cargo.toml")).unwrap();
    assert_eq!(
        facade["features"]["acme"].as_array().unwrap()[0].as_str(),
        Some("dep:llm-acme")
    );
    assert_eq!(
        facade["dependencies"]["llm-acme"]["optional"].as_bool(),
        Some(true)
    );
    assert!(read("crates/llm-router/src/lib.rs")
        .contains("#[cfg(feature = \"acme\")]\npub use llm_acme as acme;"));

    // Running it again does not overwrite the crate.
    let again = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["new-provider", "acme"])
        .env("XTASK_WORKSPACE_ROOT", root.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
}
