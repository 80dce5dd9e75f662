//! `cargo xtask sbom` writes a CycloneDX 1.5 SBOM of the `llm` binary's
//! crates: well-formed package URLs, Cargo.lock's checksums, licenses and
//! a dependency graph, the same bytes on every run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `xtask sbom --output PATH` with a fixed SOURCE_DATE_EPOCH; returns
/// the file's bytes.
fn sbom(path: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("sbom")
        .arg("--output")
        .arg(path)
        .env("SOURCE_DATE_EPOCH", "1764633600")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xtask sbom failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CycloneDX 1.5"));
    std::fs::read(path).unwrap()
}

/// name → (version, checksum) of Cargo.lock's crates.io packages (the last
/// version when several are locked).
fn locked() -> HashMap<String, Vec<(String, Option<String>)>> {
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap()).unwrap();
    let mut out: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
    for p in lock["package"].as_array().unwrap() {
        out.entry(p["name"].as_str().unwrap().to_string())
            .or_default()
            .push((
                p["version"].as_str().unwrap().to_string(),
                p.get("checksum")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
            ));
    }
    out
}

/// `pkg:cargo/NAME@VERSION` with a crate name and an encoded version.
fn well_formed(purl: &str) -> bool {
    let Some(rest) = purl.strip_prefix("pkg:cargo/") else {
        return false;
    };
    let rest = rest.split('?').next().unwrap();
    let Some((name, version)) = rest.split_once('@') else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_~%".contains(c))
        && version.starts_with(|c: char| c.is_ascii_digit())
}

#[test]
fn the_sbom_lists_the_binarys_crates_with_purls_hashes_licenses_and_graph() {
    let dir = tempfile::tempdir().unwrap();
    let first = sbom(&dir.path().join("a.cdx.json"));
    let second = sbom(&dir.path().join("nested/b.cdx.json"));
    assert_eq!(first, second, "the same inputs give the same SBOM");

    let bom: Value = serde_json::from_slice(&first).expect("valid JSON");
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    assert_eq!(bom["version"], 1);
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );
    assert_eq!(bom["metadata"]["timestamp"], "2025-12-02T00:00:00Z");

    let app = &bom["metadata"]["component"];
    assert_eq!(app["name"], "llm-cli");
    assert_eq!(app["type"], "application");
    assert_eq!(app["licenses"][0]["expression"], "MIT OR Apache-2.0");

    let components = bom["components"].as_array().unwrap();
    assert!(components.len() > 50, "{} components", components.len());
    let locked = locked();
    let mut refs = BTreeSet::new();
    for c in components {
        let name = c["name"].as_str().unwrap();
        let version = c["version"].as_str().unwrap();
        let purl = c["purl"].as_str().unwrap();
        assert!(well_formed(purl), "{purl}");
        assert_eq!(c["bom-ref"], c["purl"]);
        assert!(refs.insert(purl.to_string()), "{purl} twice");
        let versions = locked
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in Cargo.lock"));
        let (_, checksum) = versions
            .iter()
            .find(|(v, _)| v == version)
            .unwrap_or_else(|| panic!("{name} {version} is not in Cargo.lock"));
        match checksum {
            Some(sum) => {
                assert_eq!(c["hashes"][0]["alg"], "SHA-256", "{name}");
                assert_eq!(
                    c["hashes"][0]["content"].as_str(),
                    Some(sum.as_str()),
                    "{name}"
                );
            }
            None => assert!(name.starts_with("llm-"), "{name}: a workspace crate"),
        }
        assert!(
            c["licenses"][0]["expression"]
                .as_str()
                .is_some_and(|l| !l.is_empty()),
            "{name} has a license"
        );
    }

    // A known component, as Cargo.lock has it.
    let serde_json_version = &locked["serde_json"].last().unwrap().0;
    let sj = components
        .iter()
        .find(|c| c["name"] == "serde_json")
        .expect("serde_json is a component");
    assert_eq!(
        sj["purl"].as_str().unwrap(),
        format!("pkg:cargo/serde_json@{serde_json_version}")
    );
    assert_eq!(sj["licenses"][0]["expression"], "MIT OR Apache-2.0");
    for name in ["llm-core", "llm-gateway", "llm-router", "tokio", "rustls"] {
        assert!(
            components.iter().any(|c| c["name"] == name),
            "{name} is listed"
        );
    }
    // Test and benchmark tools are not in the binary.
    for name in ["criterion", "assert_cmd"] {
        assert!(
            !components.iter().any(|c| c["name"] == name),
            "{name} is a dev-dependency"
        );
    }

    // The graph: every component has an entry, every edge ends at one.
    let app_ref = app["bom-ref"].as_str().unwrap();
    let deps = bom["dependencies"].as_array().unwrap();
    let mut with_entry = BTreeSet::new();
    for d in deps {
        let r = d["ref"].as_str().unwrap();
        with_entry.insert(r.to_string());
        for on in d["dependsOn"].as_array().unwrap() {
            let on = on.as_str().unwrap();
            assert!(refs.contains(on), "{r} depends on unknown {on}");
        }
    }
    refs.insert(app_ref.to_string());
    assert_eq!(with_entry, refs, "one dependency entry per component");
    let direct: Vec<&str> = deps.iter().find(|d| d["ref"] == app_ref).unwrap()["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        direct
            .iter()
            .any(|d| d.starts_with("pkg:cargo/llm-gateway@")),
        "{direct:?}"
    );
    assert!(
        direct
            .iter()
            .any(|d| d.starts_with("pkg:cargo/llm-router@")),
        "{direct:?}"
    );
}
