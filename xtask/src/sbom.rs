//! `cargo xtask sbom`: a CycloneDX 1.5 JSON software bill of materials of the
//! `llm` binary (package `llm-cli`).
//!
//! The crates come from `cargo metadata` (all features, the target platform
//! only), following normal and build dependencies from `llm-cli`;
//! development-only dependencies (test and benchmark tools) are left out.
//! Each component has its name, version, package URL (`pkg:cargo/…`), SPDX
//! license expression and, for registry crates, the SHA-256 that Cargo.lock
//! records for its `.crate` file; `dependencies` is the graph between them.
//! The output depends only on its inputs: the timestamp is
//! `SOURCE_DATE_EPOCH` when set, and the serial number is derived from the
//! content.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::workspace_root;

/// Arguments of `cargo xtask sbom`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the SBOM (default: `sbom/llm-router.cdx.json` in the
    /// target directory).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Target triple whose dependencies count (default: the host's).
    #[arg(long)]
    target: Option<String>,
}

/// The package whose dependency tree the SBOM describes.
const ROOT_PACKAGE: &str = "llm-cli";

/// The source of crates.io packages in `cargo metadata` and Cargo.lock.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

pub(crate) fn run(args: &Args) -> Result<()> {
    let root = workspace_root()?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => host_triple()?,
    };
    let metadata = cargo_metadata(&root, &target)?;
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("reading {}", lock_path.display()))?;
    let checksums = lock_checksums(&lock)?;
    let timestamp = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => s
            .trim()
            .parse::<i64>()
            .context("SOURCE_DATE_EPOCH is not a number of seconds")?,
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    let bom = build(&metadata, &checksums, &target, timestamp)?;

    let output = match &args.output {
        Some(p) => p.clone(),
        None => {
            let target_dir = metadata["target_directory"]
                .as_str()
                .context("cargo metadata gave no target_directory")?;
            Path::new(target_dir)
                .join("sbom")
                .join("llm-router.cdx.json")
        }
    };
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(&bom)?;
    text.push('\n');
    std::fs::write(&output, text).with_context(|| format!("writing {}", output.display()))?;
    let count = bom["components"].as_array().map_or(0, Vec::len);
    println!(
        "{}: CycloneDX 1.5, {count} components of {ROOT_PACKAGE} ({target})",
        output.display()
    );
    Ok(())
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .context("rustc -vV names no host")
}

/// `cargo metadata` of the workspace: all features, `target`'s dependencies.
fn cargo_metadata(root: &Path, target: &str) -> Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--all-features",
            "--filter-platform",
            target,
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing cargo metadata's output")
}

/// (name, version, source) → the SHA-256 Cargo.lock records.
type Checksums = HashMap<(String, String, String), String>;

/// The checksums of Cargo.lock's `[[package]]` entries.
pub(crate) fn lock_checksums(lock: &str) -> Result<Checksums> {
    let lock: toml::Table = toml::from_str(lock).context("parsing Cargo.lock")?;
    let mut out = HashMap::new();
    for p in lock
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| p.get(k).and_then(toml::Value::as_str).map(str::to_string);
        if let (Some(name), Some(version), Some(source), Some(sum)) = (
            field("name"),
            field("version"),
            field("source"),
            field("checksum"),
        ) {
            out.insert((name, version, source), sum);
        }
    }
    Ok(out)
}

/// The package URL of a crate: `pkg:cargo/NAME@VERSION`, with a `vcs_url`
/// qualifier for crates from git.
pub(crate) fn purl(name: &str, version: &str, source: Option<&str>) -> String {
    let mut p = format!("pkg:cargo/{}@{}", encode(name), encode(version));
    if let Some(git) = source.and_then(|s| s.strip_prefix("git+")) {
        p.push_str("?vcs_url=");
        p.push_str(&encode(&format!("git+{git}")));
    }
    p
}

/// Percent-encodes everything but the characters a purl segment may hold
/// as they are.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A crate's `license` field as an SPDX expression (the old `/` separator
/// becomes `OR`).
fn license_expression(license: &str) -> String {
    license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The BOM of `ROOT_PACKAGE`'s normal and build dependencies.
fn build(metadata: &Value, checksums: &Checksums, target: &str, timestamp: i64) -> Result<Value> {
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata has no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root_id = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|id| packages.get(id).and_then(|p| p["name"].as_str()) == Some(ROOT_PACKAGE))
        .with_context(|| format!("{ROOT_PACKAGE} is not a workspace member"))?;

    // Normal and build dependencies reachable from the root.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut queue = VecDeque::from([root_id]);
    while let Some(id) = queue.pop_front() {
        if edges.contains_key(id) {
            continue;
        }
        let node = nodes
            .get(id)
            .with_context(|| format!("{id} is not in the resolve graph"))?;
        let mut deps = BTreeSet::new();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let shipped = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"].as_str() == Some("build"));
            if let (true, Some(pkg)) = (shipped, dep["pkg"].as_str()) {
                deps.insert(pkg);
                queue.push_back(pkg);
            }
        }
        edges.insert(id, deps);
    }

    let mut refs: HashMap<&str, String> = HashMap::new();
    let mut components = Vec::new();
    let mut root_component = Value::Null;
    let mut seen_refs = BTreeSet::new();
    for id in edges.keys() {
        let p = packages
            .get(id)
            .with_context(|| format!("{id} is not among cargo metadata's packages"))?;
        let name = p["name"].as_str().context("a package without a name")?;
        let version = p["version"]
            .as_str()
            .context("a package without a version")?;
        let source = p["source"].as_str();
        let purl = purl(name, version, source);
        if !seen_refs.insert(purl.clone()) {
            bail!("two packages have the package URL {purl}");
        }
        let mut c = Map::new();
        let kind = if *id == root_id {
            "application"
        } else {
            "library"
        };
        c.insert("type".into(), json!(kind));
        c.insert("bom-ref".into(), json!(purl));
        c.insert("name".into(), json!(name));
        c.insert("version".into(), json!(version));
        if let Some(d) = p["description"].as_str() {
            c.insert("description".into(), json!(d.trim()));
        }
        c.insert("scope".into(), json!("required"));
        if let Some(l) = p["license"].as_str() {
            c.insert(
                "licenses".into(),
                json!([{ "expression": license_expression(l) }]),
            );
        }
        if let Some(src) = source {
            let key = (name.to_string(), version.to_string(), src.to_string());
            if let Some(sum) = checksums.get(&key) {
                c.insert(
                    "hashes".into(),
                    json!([{ "alg": "SHA-256", "content": sum }]),
                );
            } else if src == CRATES_IO {
                bail!("Cargo.lock has no checksum for {name} {version}");
            }
        }
        c.insert("purl".into(), json!(purl));
        let mut links = Vec::new();
        for (field, kind) in [
            ("repository", "vcs"),
            ("homepage", "website"),
            ("documentation", "documentation"),
        ] {
            if let Some(url) = p[field].as_str().filter(|u| u.starts_with("http")) {
                links.push(json!({ "type": kind, "url": url }));
            }
        }
        if !links.is_empty() {
            c.insert("externalReferences".into(), Value::Array(links));
        }
        refs.insert(id, purl);
        if *id == root_id {
            root_component = Value::Object(c);
        } else {
            components.push(Value::Object(c));
        }
    }
    components.sort_by(|a, b| {
        (a["name"].as_str(), a["version"].as_str())
            .cmp(&(b["name"].as_str(), b["version"].as_str()))
    });

    let mut dependencies: Vec<Value> = edges
        .iter()
        .map(|(id, deps)| {
            let mut on: Vec<&str> = deps
                .iter()
                .filter_map(|d| refs.get(d))
                .map(String::as_str)
                .collect();
            on.sort_unstable();
            on.dedup();
            json!({ "ref": refs.get(id), "dependsOn": on })
        })
        .collect();
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));

    let serial = serial_number(&components, &dependencies)?;
    Ok(json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(timestamp),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "cargo xtask sbom",
                    "version": env!("CARGO_PKG_VERSION"),
                }]
            },
            "component": root_component,
            "properties": [
                { "name": "cargo:target", "value": target },
                { "name": "cargo:features", "value": "all" },
                { "name": "cargo:dependency-kinds", "value": "normal, build" },
            ],
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

/// A `urn:uuid:` in the version-4 layout whose bits come from the SHA-256
/// of the content: the same inputs give the same SBOM, byte for byte.
fn serial_number(components: &[Value], dependencies: &[Value]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(components)?);
    h.update(serde_json::to_vec(dependencies)?);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_encoded() {
        assert_eq!(
            purl("serde", "1.0.2", Some(CRATES_IO)),
            "pkg:cargo/serde@1.0.2"
        );
        assert_eq!(
            purl("x", "1.0.0+build.5", None),
            "pkg:cargo/x@1.0.0%2Bbuild.5"
        );
        assert_eq!(
            purl("y", "0.1.0", Some("git+https://h/r?rev=1#abc")),
            "pkg:cargo/y@0.1.0?vcs_url=git%2Bhttps%3A%2F%2Fh%2Fr%3Frev%3D1%23abc"
        );
    }

    #[test]
    fn licenses_become_spdx_expressions() {
        assert_eq!(license_expression("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(
            license_expression("Apache-2.0 WITH LLVM-exception"),
            "Apache-2.0 WITH LLVM-exception"
        );
    }

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_633_599), "2025-12-01T23:59:59Z");
    }
}
