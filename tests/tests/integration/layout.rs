//! Every file of a crate's `tests/integration/` directory is a module of its
//! `main.rs`: a file without its `mod` line would never be compiled or run.

use std::collections::BTreeSet;

use crate::workspace;

#[test]
fn every_integration_test_file_is_declared_in_its_main_rs() {
    let root = workspace();
    let mut dirs = Vec::new();
    for parent in ["crates", "."] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap() {
            let dir = entry.unwrap().path().join("tests/integration");
            if dir.join("main.rs").is_file() {
                dirs.push(dir);
            }
        }
    }
    assert!(dirs.len() >= 9, "found only {dirs:?}");
    for dir in dirs {
        let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
        let declared: BTreeSet<&str> = main
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
            .collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = if path.is_dir() {
                path.join("mod.rs")
                    .is_file()
                    .then(|| path.file_name().unwrap().to_string_lossy().into_owned())
            } else {
                path.extension()
                    .filter(|e| *e == "rs")
                    .and_then(|_| path.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
                    .filter(|s| s != "main")
            };
            if let Some(name) = name {
                assert!(
                    declared.contains(name.as_str()),
                    "{} is not declared in {}",
                    path.display(),
                    dir.join("main.rs").display()
                );
            }
        }
    }
}
