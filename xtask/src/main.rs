//! `cargo xtask`: maintenance tasks for this workspace.

use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        None | Some("help") => {
            println!("cargo xtask <task>\n\ntasks:\n  ci    run exactly what .ci/run runs");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`; try `cargo xtask help`"),
    }
}

/// Runs `.ci/run` from the workspace root.
fn ci() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives inside the workspace")?;
    let status = Command::new("bash")
        .arg(".ci/run")
        .current_dir(root)
        .status()
        .context("running .ci/run")?;
    if !status.success() {
        bail!(".ci/run failed: {status}");
    }
    Ok(())
}
