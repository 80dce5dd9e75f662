//! `cargo xtask new-provider NAME [--path DIR] [--core-path PATH]`.
//!
//! Without `--path`, creates `crates/llm-NAME` in this workspace and wires it
//! into the `llm-router` facade (a cargo feature `NAME` and a re-export). With
//! `--path DIR`, creates a standalone crate in `DIR` (outside this workspace)
//! that depends on the published `llm-core`, or on `--core-path` when given.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::templates::{render, PROVIDER_FILES};
use crate::workspace_root;

/// Version of the llm-core a standalone crate depends on (this workspace's version).
const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Kinds built into this workspace: a new provider must not reuse them.
const RESERVED: &[&str] = &[
    "openai",
    "anthropic",
    "ollama",
    "custom",
    "scripted",
    "core",
    "router",
    "cli",
    "cache-redis",
];

/// Arguments of `new-provider`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Provider kind, e.g. `acme` (lowercase letters, digits and `-`); the
    /// crate is called `llm-NAME`.
    name: String,
    /// Create a standalone crate in this directory (outside this workspace)
    /// instead of `crates/llm-NAME`.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// With `--path`: depend on the llm-core crate in this directory instead of
    /// the published version.
    #[arg(long, value_name = "PATH", requires = "path")]
    core_path: Option<PathBuf>,
}

/// The names derived from a provider kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// Kind, e.g. `my-llm`.
    pub(crate) kind: String,
    /// Crate, e.g. `llm-my-llm`.
    pub(crate) crate_name: String,
    /// Crate as a Rust identifier, e.g. `llm_my_llm`.
    pub(crate) crate_ident: String,
    /// Type prefix, e.g. `MyLlm`.
    pub(crate) type_name: String,
    /// Environment variable prefix, e.g. `MY_LLM`.
    pub(crate) env: String,
}

impl Names {
    /// Checks `name` (an `llm-` prefix is dropped) and derives the other names.
    pub(crate) fn new(name: &str) -> Result<Self> {
        let kind = name.strip_prefix("llm-").unwrap_or(name);
        let valid = kind.len() <= 40
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && !kind.ends_with('-')
            && !kind.contains("--")
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        ensure!(
            valid,
            "invalid provider name `{name}`: use lowercase letters, digits and single `-`, \
             starting with a letter (e.g. `acme` or `my-llm`)"
        );
        ensure!(
            !RESERVED.contains(&kind),
            "`{kind}` is taken by this workspace; choose another name"
        );
        let type_name = kind
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Ok(Self {
            kind: kind.to_string(),
            crate_name: format!("llm-{kind}"),
            crate_ident: format!("llm_{}", kind.replace('-', "_")),
            type_name,
            env: kind.replace('-', "_").to_ascii_uppercase(),
        })
    }

    /// The template variables.
    pub(crate) fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kind", self.kind.clone()),
            ("crate", self.crate_name.clone()),
            ("crate_ident", self.crate_ident.clone()),
            ("Type", self.type_name.clone()),
            ("ENV", self.env.clone()),
            ("core_version", CORE_VERSION.to_string()),
        ]
    }
}

/// Where llm-core comes from, for a standalone crate.
enum CoreSource {
    /// This workspace (`workspace = true`).
    Workspace,
    /// The published crate.
    Published,
    /// A local checkout.
    Path(PathBuf),
}

/// Runs the task.
pub(crate) fn run(args: &Args) -> Result<()> {
    let names = Names::new(&args.name)?;
    let root = workspace_root()?;
    match &args.path {
        None => {
            let dir = root.join("crates").join(&names.crate_name);
            scaffold(&dir, &names, &CoreSource::Workspace)?;
            wire_into_facade(&root, &names)?;
            println!("created {} and wired it into llm-router", dir.display());
            println!(
                "\nnext steps:\n  \
                 - grep -rn SKELETON {dir}  (the API-specific parts)\n  \
                 - add `{kind}` to the expected kinds in crates/llm-router/tests/registry.rs\n  \
                 - map `{kind}` to its feature in llm_core::registry::feature_for\n  \
                 - cargo test -p {krate}",
                dir = dir.display(),
                kind = names.kind,
                krate = names.crate_name,
            );
        }
        Some(path) => {
            let dir = absolute(path)?;
            ensure!(
                !dir.starts_with(&root),
                "{} is inside the llm-router workspace; run without --path to add \
                 crates/{} to it",
                dir.display(),
                names.crate_name
            );
            let core = match &args.core_path {
                Some(p) => CoreSource::Path(core_dir(p)?),
                None => CoreSource::Published,
            };
            scaffold(&dir, &names, &core)?;
            println!("created {} ({})", dir.display(), names.crate_name);
            println!(
                "\nnext steps:\n  \
                 - grep -rn SKELETON {dir}  (the API-specific parts)\n  \
                 - cd {dir} && cargo test",
                dir = dir.display()
            );
        }
    }
    Ok(())
}

/// Writes the crate into `dir`, which must not exist or be empty.
fn scaffold(dir: &Path, names: &Names, core: &CoreSource) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        ensure!(empty, "{} already exists and is not empty", dir.display());
    }
    let vars = names.vars();
    let mut files: Vec<(String, String)> = vec![("Cargo.toml".into(), cargo_toml(names, core))];
    for (path, template) in PROVIDER_FILES {
        files.push(((*path).to_string(), render(template, &vars)?));
    }
    if !matches!(core, CoreSource::Workspace) {
        files.push((".gitignore".into(), "/target\n".into()));
        files.push((
            "clippy.toml".into(),
            "allow-unwrap-in-tests = true\nallow-expect-in-tests = true\nallow-panic-in-tests = true\n"
                .into(),
        ));
    }
    let mut sources = Vec::new();
    for (path, text) in files {
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        if path.ends_with(".rs") {
            sources.push(file);
        }
    }
    format_sources(&sources);
    Ok(())
}

/// Formats the generated sources with `rustfmt` (names change line lengths);
/// a missing `rustfmt` leaves them as rendered.
fn format_sources(files: &[PathBuf]) {
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(files)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("warning: rustfmt did not run; the generated sources are not formatted");
    }
}

/// The new crate's manifest.
fn cargo_toml(names: &Names, core: &CoreSource) -> String {
    let Names {
        kind, crate_name, ..
    } = names;
    let description = format!("The `{kind}` provider for llm-router");
    if matches!(core, CoreSource::Workspace) {
        return format!(
            r#"[package]
name = "{crate_name}"
description = "{description}"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
repository.workspace = true

[dependencies]
llm-core = {{ workspace = true, features = ["http"] }}
serde.workspace = true
serde_json.workspace = true

[dev-dependencies]
futures.workspace = true
llm-core = {{ workspace = true, features = ["testing"] }}
tokio.workspace = true

[lints]
workspace = true
"#
        );
    }
    let core_dep = |features: &str| match core {
        CoreSource::Path(p) => format!(
            "{{ path = \"{}\", version = \"{CORE_VERSION}\", features = [{features}] }}",
            toml_escape(&p.display().to_string())
        ),
        _ => format!("{{ version = \"{CORE_VERSION}\", features = [{features}] }}"),
    };
    format!(
        r#"[package]
name = "{crate_name}"
description = "{description}"
version = "0.1.0"
edition = "2021"
rust-version = "1.85"
license = "MIT OR Apache-2.0"
keywords = ["llm", "llm-router"]

[dependencies]
llm-core = {core}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[dev-dependencies]
futures = {{ version = "0.3", default-features = false, features = ["std"] }}
llm-core = {core_testing}
tokio = {{ version = "1", features = ["macros", "rt-multi-thread", "time"] }}

[lints.rust]
missing_docs = "warn"
unsafe_code = "forbid"
rust_2018_idioms = {{ level = "warn", priority = -1 }}

[lints.clippy]
unwrap_used = "deny"
expect_used = "deny"
panic = "deny"
dbg_macro = "warn"
todo = "warn"
"#,
        core = core_dep("\"http\""),
        core_testing = core_dep("\"testing\""),
    )
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `path` made absolute, with `.` and `..` resolved (it need not exist).
fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = std::env::current_dir()
        .context("reading the current directory")?
        .join(path);
    // Resolve symlinks of the longest existing ancestor, then append the rest.
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(parent) = existing.parent() else {
            break;
        };
        if let Some(name) = existing.file_name() {
            rest.push(name.to_os_string());
        }
        existing = parent;
    }
    let mut out = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    for part in rest.iter().rev() {
        out.push(part);
    }
    let mut normal = PathBuf::new();
    for c in out.components() {
        match c {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// The llm-core checkout at `path`, checked.
fn core_dir(path: &Path) -> Result<PathBuf> {
    let dir = path
        .canonicalize()
        .with_context(|| format!("--core-path {}", path.display()))?;
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("--core-path {}: no Cargo.toml", dir.display()))?;
    ensure!(
        manifest.lines().any(|l| l.trim() == "name = \"llm-core\""),
        "--core-path {} is not the llm-core crate",
        dir.display()
    );
    Ok(dir)
}

/// Adds the crate to `[workspace.dependencies]`, a cargo feature and a
/// dependency to the facade's manifest, and a re-export to its `lib.rs`.
fn wire_into_facade(root: &Path, names: &Names) -> Result<()> {
    let edit = |path: PathBuf, f: &dyn Fn(&str) -> Result<String>| -> Result<()> {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let new = f(&text).with_context(|| format!("editing {}", path.display()))?;
        std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))
    };
    edit(root.join("Cargo.toml"), &|t| add_workspace_dep(t, names))?;
    edit(root.join("crates/llm-router/Cargo.toml"), &|t| {
        add_facade_dep(t, names)
    })?;
    edit(root.join("crates/llm-router/src/lib.rs"), &|t| {
        Ok(add_facade_reexport(t, names))
    })
}

/// Root manifest: `llm-NAME = { path = "crates/llm-NAME", version = "…" }`.
fn add_workspace_dep(text: &str, names: &Names) -> Result<String> {
    let crate_name = &names.crate_name;
    if has_key_line(text, crate_name) {
        return Ok(text.to_string());
    }
    let line = format!(
        "{crate_name} = {{ path = \"crates/{crate_name}\", version = \"{CORE_VERSION}\" }}"
    );
    insert_at_section_end(text, "[workspace.dependencies]", &[line], Some("llm-"))
}

/// Facade manifest: the feature `NAME = ["dep:llm-NAME"]` and the optional dependency.
fn add_facade_dep(text: &str, names: &Names) -> Result<String> {
    let Names {
        kind, crate_name, ..
    } = names;
    if text.contains(&format!("\"dep:{crate_name}\"")) {
        return Ok(text.to_string());
    }
    let text = insert_at_section_end(
        text,
        "[features]",
        &[
            format!("## The `{kind}` provider."),
            format!("{kind} = [\"dep:{crate_name}\"]"),
        ],
        None,
    )?;
    insert_at_section_end(
        &text,
        "[dependencies]",
        &[format!(
            "{crate_name} = {{ workspace = true, optional = true }}"
        )],
        Some("llm-"),
    )
}

/// Facade `lib.rs`: `pub use llm_NAME as NAME;` behind the feature.
fn add_facade_reexport(text: &str, names: &Names) -> String {
    let Names {
        kind, crate_ident, ..
    } = names;
    if text.contains(&format!("pub use {crate_ident} ")) {
        return text.to_string();
    }
    let alias = kind.replace('-', "_");
    let mut out = text.trim_end().to_string();
    out.push_str(&format!(
        "\n\n/// The `{kind}` provider crate.\n#[cfg(feature = \"{kind}\")]\npub use {crate_ident} as {alias};\n"
    ));
    out
}

/// Whether a `key = …` line exists.
fn has_key_line(text: &str, key: &str) -> bool {
    text.lines()
        .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
}

/// Inserts `lines` into the TOML section `header`: after its last line starting
/// with `after_prefix` when given and present, else after its last non-blank line.
fn insert_at_section_end(
    text: &str,
    header: &str,
    lines: &[String],
    after_prefix: Option<&str>,
) -> Result<String> {
    let all: Vec<&str> = text.lines().collect();
    let Some(start) = all.iter().position(|l| l.trim() == header) else {
        bail!("no `{header}` section");
    };
    let end = all[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(all.len(), |i| start + 1 + i);
    let section = &all[start + 1..end];
    let last_prefixed = after_prefix.and_then(|p| section.iter().rposition(|l| l.starts_with(p)));
    let last_filled = section.iter().rposition(|l| !l.trim().is_empty());
    let at = start + 1 + last_prefixed.or(last_filled).map_or(0, |i| i + 1);
    let mut out: Vec<String> = all.iter().map(|l| (*l).to_string()).collect();
    for (i, l) in lines.iter().enumerate() {
        out.insert(at + i, l.clone());
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_and_checked() {
        let n = Names::new("my-llm").unwrap();
        assert_eq!(n.kind, "my-llm");
        assert_eq!(n.crate_name, "llm-my-llm");
        assert_eq!(n.crate_ident, "llm_my_llm");
        assert_eq!(n.type_name, "MyLlm");
        assert_eq!(n.env, "MY_LLM");
        assert_eq!(Names::new("llm-acme").unwrap().kind, "acme");
        for bad in [
            "", "Acme", "1x", "a--b", "a-", "a_b", "a b", "openai", "custom",
        ] {
            assert!(Names::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_facade_is_wired_idempotently() {
        let n = Names::new("acme").unwrap();
        let root = include_str!("../../Cargo.toml");
        let facade = include_str!("../../crates/llm-router/Cargo.toml");
        let lib = include_str!("../../crates/llm-router/src/lib.rs");

        let r = add_workspace_dep(root, &n).unwrap();
        assert!(r.contains(&format!(
            "\nllm-acme = {{ path = \"crates/llm-acme\", version = \"{CORE_VERSION}\" }}\n"
        )));
        let deps = r.split("[workspace.dependencies]").nth(1).unwrap();
        let deps = deps.split("\n[").next().unwrap();
        assert!(
            deps.contains("llm-acme ="),
            "inside [workspace.dependencies]"
        );
        assert_eq!(add_workspace_dep(&r, &n).unwrap(), r);

        let f = add_facade_dep(facade, &n).unwrap();
        let features = f.split("[features]").nth(1).unwrap();
        let features = features.split("\n[").next().unwrap();
        assert!(features.contains("acme = [\"dep:llm-acme\"]"), "{f}");
        let deps = f.split("\n[dependencies]").nth(1).unwrap();
        let deps = deps.split("\n[").next().unwrap();
        assert!(
            deps.contains("llm-acme = { workspace = true, optional = true }"),
            "{f}"
        );
        assert_eq!(add_facade_dep(&f, &n).unwrap(), f);
        toml::from_str::<toml::Table>(&f).unwrap();
        toml::from_str::<toml::Table>(&r).unwrap();

        let l = add_facade_reexport(lib, &n);
        assert!(l.ends_with("#[cfg(feature = \"acme\")]\npub use llm_acme as acme;\n"));
        assert_eq!(add_facade_reexport(&l, &n), l);
    }

    #[test]
    fn standalone_manifests_name_their_core() {
        let n = Names::new("acme").unwrap();
        let published = cargo_toml(&n, &CoreSource::Published);
        assert!(published.contains(&format!(
            "llm-core = {{ version = \"{CORE_VERSION}\", features = [\"http\"] }}"
        )));
        let local = cargo_toml(&n, &CoreSource::Path(PathBuf::from("/src/llm-core")));
        assert!(local.contains("path = \"/src/llm-core\""));
        assert!(local.contains("features = [\"testing\"]"));
    }
}
