//! docs/configuration.md documents every configuration key the code accepts.
//!
//! The keys are derived from the code, not listed here: the sections that
//! derive `Serialize` are serialized at their defaults; the others (the
//! gateway, the top level, each provider kind's own keys) are read from the
//! "unknown field `…`, expected one of `…`" error their `deny_unknown_fields`
//! deserializers give. Each key must appear in the docs as `` `key` ``. Every
//! key used in the shipped configuration files must be documented too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::workspace;
use std::collections::BTreeSet;

use llm_router::config::{
    CachingConfig, Config, HealthConfig, MonitoringConfig, RetryConfig, RoutingConfig, RulesConfig,
};
use llm_router::cost::ModelPrice;
use llm_router::{registry, ProviderProfile};
use serde::Serialize;

/// A key name no section accepts.
const UNKNOWN: &str = "zz_not_a_key";

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn docs() -> String {
    read("docs/configuration.md")
}

/// The field names of a serialized struct.
fn fields<T: Serialize>(value: &T) -> Vec<String> {
    match serde_json::to_value(value).unwrap() {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("not a struct: {other}"),
    }
}

/// The fields a section accepts, from the error an unknown key gives.
fn accepted(config: &str) -> Vec<String> {
    let err = Config::from_toml_str_with_env(config, None, &|_| None)
        .expect_err("an unknown key is an error")
        .to_string();
    assert!(
        err.contains(&format!("unknown field `{UNKNOWN}`")),
        "unexpected error for\n{config}\n{err}"
    );
    let tail = &err[err.find("expected").unwrap_or(err.len())..];
    let names: Vec<String> = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "no field list in: {err}");
    names
}

fn assert_documented(section: &str, keys: &[String]) {
    let docs = docs();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !docs.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these keys of {section}: {missing:?}"
    );
}

#[test]
fn the_top_level_sections_are_documented() {
    let keys = accepted(&format!("{UNKNOWN} = 1\n"));
    for section in [
        "llm_providers",
        "routing",
        "caching",
        "monitoring",
        "gateway",
    ] {
        assert!(keys.contains(&section.to_string()), "{keys:?}");
    }
    assert_documented("the top level", &keys);
}

#[test]
fn routing_keys_are_documented() {
    let routing = fields(&RoutingConfig::default());
    assert!(routing.contains(&"strategy".to_string()));
    assert_documented("[routing]", &routing);
    assert_documented("[routing.rules]", &fields(&RulesConfig::default()));
    assert_documented("[routing.retry]", &fields(&RetryConfig::default()));
    assert_documented("[routing.health]", &fields(&HealthConfig::default()));
    // The serialized view and the accepted keys agree.
    let mut accepted_keys = accepted(&format!("[routing]\n{UNKNOWN} = 1\n"));
    let mut serialized = routing.clone();
    accepted_keys.sort();
    serialized.sort();
    assert_eq!(accepted_keys, serialized);
}

#[test]
fn caching_and_monitoring_keys_are_documented() {
    assert_documented("[caching]", &fields(&CachingConfig::default()));
    assert_documented("[monitoring]", &fields(&MonitoringConfig::default()));
}

#[test]
fn gateway_keys_are_documented() {
    let keys = accepted(&format!("[gateway]\n{UNKNOWN} = 1\n"));
    assert!(keys.contains(&"api_keys".to_string()), "{keys:?}");
    assert_documented("[gateway]", &keys);
}

#[test]
fn common_provider_keys_are_documented() {
    let mut keys = fields(&ProviderProfile::default());
    keys.extend(["kind".to_string(), "enabled".to_string()]);
    assert_documented("[llm_providers.<name>]", &keys);
    let price = ModelPrice {
        input_per_1m: 1.0,
        output_per_1m: 2.0,
        cached_input_per_1m: None,
        cache_write_per_1m: None,
    };
    assert_documented("pricing entries", &fields(&price));
}

#[test]
fn every_compiled_in_kind_has_its_keys_documented() {
    let docs = docs();
    let kinds = registry::kinds();
    for kind in ["openai", "anthropic", "ollama", "custom"] {
        assert!(kinds.contains(&kind), "{kind} is linked into this test");
    }
    for kind in kinds {
        assert!(
            docs.contains(&format!("### `kind = \"{kind}\"`")),
            "docs/configuration.md has no section for kind `{kind}`"
        );
        // `custom` needs its one required key before an unknown one is reported.
        let keys = accepted(&format!(
            "[llm_providers.p]\nkind = \"{kind}\"\n{UNKNOWN} = 1\nbase_url = \"http://127.0.0.1:9\"\n"
        ));
        assert!(keys.contains(&"base_url".to_string()), "{kind}: {keys:?}");
        assert_documented(&format!("kind `{kind}`"), &keys);
    }
}

/// Every configuration key in `text`: section and key names, but not the
/// names that are data (instance names, model names, weight and map keys).
fn keys_in(text: &str) -> BTreeSet<String> {
    // Tables whose keys are data; the value is whether their values are
    // themselves tables of configuration keys (e.g. `pricing."model"`).
    const DATA_TABLES: &[(&str, bool)] = &[
        ("llm_providers", true),
        ("pricing", true),
        ("cost_weights", false),
        ("performance_weights", false),
        ("weights", false),
        ("fallback", false),
        ("model_aliases", false),
        ("headers", false),
        ("request_template", false),
    ];
    fn walk(table: &toml::Table, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            out.insert(key.clone());
            let Some(inner) = value.as_table() else {
                continue;
            };
            match DATA_TABLES.iter().find(|(name, _)| name == key) {
                Some((_, true)) => {
                    for entry in inner.values().filter_map(toml::Value::as_table) {
                        walk(entry, out);
                    }
                }
                Some((_, false)) => {}
                None => walk(inner, out),
            }
        }
    }
    let table: toml::Table = toml::from_str(text).unwrap();
    let mut out = BTreeSet::new();
    walk(&table, &mut out);
    out
}

#[test]
fn every_key_of_the_shipped_configurations_is_documented() {
    for file in ["config/llm_providers.toml", "config/docker.toml"] {
        let keys: Vec<String> = keys_in(&read(file)).into_iter().collect();
        assert!(
            keys.contains(&"default_model".to_string()),
            "{file}: {keys:?}"
        );
        assert!(
            !keys.contains(&"openai".to_string()),
            "instance names are data: {keys:?}"
        );
        assert_documented(file, &keys);
    }
}

#[test]
fn the_env_expansion_rules_are_documented() {
    let docs = docs();
    for syntax in ["`${VAR}`", "`${VAR:-default}`", "`$$`"] {
        assert!(docs.contains(syntax), "{syntax} is not documented");
    }
}

#[test]
fn the_docs_link_to_files_that_exist() {
    let docs = docs();
    for path in ["config/llm_providers.toml", "config/docker.toml"] {
        assert!(docs.contains(path));
        assert!(workspace().join(path).is_file(), "{path}");
    }
    for doc in [
        "architecture.md",
        "configuration.md",
        "writing-a-provider.md",
    ] {
        assert!(workspace().join("docs").join(doc).is_file(), "docs/{doc}");
    }
}
