//! `cargo xtask repro`: checks that the release build of the `llm` binary is
//! reproducible — two builds from the same sources, in different directories,
//! give the same bytes.
//!
//! Each build gets its own source directory (a `git archive` of `HEAD`, or the
//! working tree itself with `--worktree`) and its own target directory. Every
//! path that could end up in the binary is remapped to a fixed name
//! (`--remap-path-prefix` for rustc, `-ffile-prefix-map` for the C code some
//! dependencies compile), and `SOURCE_DATE_EPOCH` is the commit time of `HEAD`.
//! The two binaries' SHA-256 are printed; the exit code is 1 when they differ.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::workspace_root;

/// Arguments of `cargo xtask repro`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Build the working tree (uncommitted changes included) twice, into two
    /// target directories, instead of two copies of `HEAD` at two paths.
    #[arg(long)]
    worktree: bool,
    /// Cargo features of `llm-cli` to build with (the container image's set
    /// by default).
    #[arg(long, default_value = "redis")]
    features: String,
    /// Where the two builds go (default: `target/repro` of the workspace).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep both build trees afterwards (by default only the two binaries are
    /// kept, as `llm-a` and `llm-b` in the build directory).
    #[arg(long)]
    keep: bool,
}

/// The fixed names paths are remapped to.
const SOURCE_AS: &str = "/build/llm-router";
const CARGO_HOME_AS: &str = "/cargo";
const TARGET_AS: &str = "/build/target";

/// One of the two builds: where its sources and its target directory are.
struct Build {
    name: &'static str,
    source: PathBuf,
    target: PathBuf,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let root = workspace_root()?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => root.join("target").join("repro"),
    };
    let epoch = git(&root, &["log", "-1", "--format=%ct", "HEAD"])?;
    let commit = git(&root, &["rev-parse", "HEAD"])?;
    let cargo_home = cargo_home()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;

    let mut builds = Vec::new();
    for name in ["a", "b"] {
        let base = dir.join(name);
        remove_dir(&base)?;
        let source = if args.worktree {
            root.clone()
        } else {
            let source = base.join("src");
            snapshot(&root, &source)?;
            source
        };
        builds.push(Build {
            name,
            source,
            target: base.join("target"),
        });
    }
    if args.worktree {
        eprintln!("repro: the working tree at {}", root.display());
    } else {
        eprintln!(
            "repro: two copies of HEAD ({commit}) under {}",
            dir.display()
        );
    }
    eprintln!(
        "repro: SOURCE_DATE_EPOCH={epoch}, features: {}",
        args.features
    );

    let started = Instant::now();
    let mut hashes = Vec::new();
    for build in &builds {
        let t = Instant::now();
        let binary = cargo_build(build, &args.features, &epoch, &cargo_home)?;
        let kept = dir.join(format!("llm-{}", build.name));
        std::fs::copy(&binary, &kept)
            .with_context(|| format!("copying {} to {}", binary.display(), kept.display()))?;
        let hash = sha256_file(&kept)?;
        eprintln!(
            "repro: build {} took {:.0} s",
            build.name,
            t.elapsed().as_secs_f64()
        );
        hashes.push((kept, hash));
        if !args.keep {
            remove_dir(&dir.join(build.name))?;
        }
    }
    for (path, hash) in &hashes {
        println!("{hash}  {}", path.display());
    }
    println!(
        "both builds: {:.0} s",
        started.elapsed().as_secs_f64().round()
    );
    if hashes[0].1 == hashes[1].1 {
        println!("reproducible: the two release binaries are identical");
        Ok(ExitCode::SUCCESS)
    } else {
        let (a, b) = (&hashes[0].0, &hashes[1].0);
        println!(
            "NOT reproducible: the binaries differ{}\ncompare them with `diffoscope {} {}`",
            first_difference(a, b)?
                .map(|at| format!(" (first at byte {at})"))
                .unwrap_or_default(),
            a.display(),
            b.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo build --release --locked -p llm-cli` of one build, with its paths
/// remapped; returns the path of the binary.
fn cargo_build(build: &Build, features: &str, epoch: &str, cargo_home: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let maps = [
        (build.source.as_path(), SOURCE_AS),
        (cargo_home, CARGO_HOME_AS),
        (build.target.as_path(), TARGET_AS),
    ];
    let mut rustflags = OsString::new();
    let mut cflags = OsString::new();
    for (i, (from, to)) in maps.iter().enumerate() {
        // CARGO_ENCODED_RUSTFLAGS separates flags with 0x1f, so paths with
        // spaces stay whole.
        if i > 0 {
            rustflags.push("\x1f");
            cflags.push(" ");
        }
        rustflags.push("--remap-path-prefix=");
        rustflags.push(from.as_os_str());
        rustflags.push(format!("={to}"));
        cflags.push("-ffile-prefix-map=");
        cflags.push(from.as_os_str());
        cflags.push(format!("={to}"));
    }
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--locked", "-p", "llm-cli"])
        .current_dir(&build.source)
        .env("CARGO_TARGET_DIR", &build.target)
        .env("CARGO_ENCODED_RUSTFLAGS", &rustflags)
        .env_remove("RUSTFLAGS")
        .env("CFLAGS", &cflags)
        .env("SOURCE_DATE_EPOCH", epoch)
        .env("CARGO_INCREMENTAL", "0");
    if !features.is_empty() {
        command.args(["--features", features]);
    }
    eprintln!(
        "repro: build {}: cargo build --release --locked -p llm-cli in {}",
        build.name,
        build.source.display()
    );
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("build {} failed: {status}", build.name);
    }
    Ok(build.target.join("release").join("llm"))
}

/// Extracts `git archive HEAD` of `root` into `dest`.
fn snapshot(root: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut archive = Command::new("git")
        .args(["archive", "--format=tar", "HEAD"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let stdout = archive.stdout.take().context("git archive's output")?;
    let extracted = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(stdout)
        .status()
        .context("running tar")?;
    let archived = archive.wait().context("waiting for git archive")?;
    if !archived.success() || !extracted.success() {
        bail!("copying HEAD to {} failed", dest.display());
    }
    Ok(())
}

/// The trimmed standard output of `git ARGS` in `root`.
fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `$CARGO_HOME`, or `~/.cargo`.
fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// The lowercase hex SHA-256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// The offset of the first byte where two files differ (or where the shorter
/// one ends); `None` when they are equal.
fn first_difference(a: &Path, b: &Path) -> Result<Option<usize>> {
    let a = std::fs::read(a).with_context(|| format!("reading {}", a.display()))?;
    let b = std::fs::read(b).with_context(|| format!("reading {}", b.display()))?;
    Ok(a.iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len()))))
}

/// Removes a directory tree if it exists.
fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
