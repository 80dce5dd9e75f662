//! Integration tests of llm-router across its crates: one test binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

mod default_config;
mod deploy;
mod docs;
mod examples;
mod fallback;
mod layout;
mod real_model;

/// The workspace root (this crate's parent directory).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
