//! Configuration tests: every error names file, line and key.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::testing::ScriptedProvider;

fn build_test(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Opts {
        #[serde(default)]
        api_key: Option<secrecy::SecretString>,
        #[serde(default)]
        base_url: Option<String>,
    }
    let _opts: Opts = spec.options()?;
    Ok(Arc::new(
        ScriptedProvider::new(&spec.name).profile(spec.profile.clone()),
    ))
}

inventory::submit! {
    crate::registry::ProviderPlugin { kind: "cfgtest", local_by_default: true, build: build_test }
}

fn env(name: &str) -> Option<String> {
    match name {
        "TEST_KEY" => Some("sk-secret-123".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str_with_env(text, Some("test.toml".into()), &env)
}

#[test]
fn minimal_config_uses_defaults() {
    let c = parse("").unwrap();
    assert!(c.providers.is_empty());
    assert_eq!(c.routing.strategy, Strategy::CostOptimized);
    assert_eq!(c.routing.rules.simple_max_chars, 1000);
    assert_eq!(c.routing.fallback["openai"], vec!["ollama", "custom"]);
    assert_eq!(c.caching.ttl, Secs::from_secs(3600));
    assert_eq!(c.monitoring.prometheus_port, 8000);
}

#[test]
fn provider_sections_split_common_and_kind_keys() {
    let c = parse(
        r#"
[llm_providers.gpu-box]
kind = "cfgtest"
api_key = "${TEST_KEY}"
base_url = "${MISSING_URL:-http://localhost:1}"
models = ["a", "b"]
default_model = "b"
timeout = 2.5
max_tokens = 100
cost_per_1k_tokens = 0.5

[llm_providers.gpu-box.pricing.a]
input_per_1m = 1.0
output_per_1m = 2.0
"#,
    )
    .unwrap();
    let spec = c.providers[0].spec.as_ref().unwrap();
    assert_eq!(spec.kind, "cfgtest");
    assert!(spec.profile.local, "local by the plugin's default");
    assert_eq!(spec.profile.models, vec!["a", "b"]);
    assert_eq!(spec.profile.timeout, Duration::from_millis(2500));
    assert_eq!(spec.profile.pricing["a"].output_per_1m, 2.0);
    assert_eq!(
        spec.options["base_url"].as_str(),
        Some("http://localhost:1")
    );
    assert_eq!(spec.options["api_key"].as_str(), Some("sk-secret-123"));
    let built = c.build_providers().unwrap();
    assert_eq!(built[0].name(), "gpu-box");
}

fn err(text: &str) -> ConfigError {
    parse(text).unwrap_err()
}

#[test]
fn syntax_error_names_line() {
    let e = err("[routing]\nstrategy = \n");
    assert_eq!(e.line, Some(2), "{e}");
    assert_eq!(e.file.as_deref(), Some(std::path::Path::new("test.toml")));
    assert!(e.to_string().starts_with("test.toml:2:"), "{e}");
}

#[test]
fn unknown_key_in_fixed_section_names_line_and_key() {
    let e = err("[caching]\nenabled = true\nttl_secs = 5\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("ttl_secs"), "{e}");
    assert_eq!(e.key.as_deref(), Some("caching.ttl_secs"), "{e}");
    let e = err("bogus = 1\n");
    assert!(e.message.contains("bogus"), "{e}");
    assert_eq!(e.line, Some(1));
}

#[test]
fn unknown_key_in_provider_names_line_and_key() {
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\n\nbase_ulr = \"http://x\"\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.base_ulr"), "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn wrong_type_names_line_and_key() {
    let e = err("[routing]\nstrategy = \"cost_optimized\"\ndeadline = \"soon\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.key.as_deref(), Some("routing.deadline"), "{e}");
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nmax_tokens = \"many\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.max_tokens"), "{e}");
    let e = err("[routing]\nstrategy = \"fastest\"\n");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("fastest"), "{e}");
}

#[test]
fn wrong_type_in_kind_option_names_the_key() {
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nbase_url = 5\n");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.base_url"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn unknown_kind_lists_compiled_kinds_and_names_feature() {
    let e = err("[llm_providers.anthropic]\napi_key = \"k\"\n");
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.message.contains("`anthropic` cargo feature"), "{e}");
    assert!(e.message.contains("cfgtest"), "lists compiled kinds: {e}");
    let e = err("[llm_providers.mine]\nkind = \"mystery\"\n");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("unknown provider kind `mystery`"), "{e}");
}

#[test]
fn unset_variable_in_enabled_provider_names_variable_provider_and_line() {
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\napi_key = \"${NOPE_KEY}\"\n");
    assert!(e.message.contains("NOPE_KEY"), "{e}");
    assert!(e.message.contains("`x`"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.api_key"));
    // A disabled provider does not need its variables.
    let c = parse(
        "[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\napi_key = \"${NOPE_KEY}\"\n",
    )
    .unwrap();
    assert!(!c.providers[0].enabled);
    assert!(c.build_providers().unwrap().is_empty());
}

#[test]
fn key_lines_ignore_names_inside_comments_and_string_values() {
    // `max_tokens = …` written inside a multi-line string above the real key.
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\n\
         base_url = \"\"\"\nmax_tokens = 1\n[routing]\n\"\"\"\nmax_tokens = \"many\"\n");
    assert_eq!(e.line, Some(7), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.max_tokens"), "{e}");
    // A commented-out reference to the same unset variable above the real one.
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\n\
         # api_key = \"${NOPE_KEY}\" (the old way)\napi_key = \"${NOPE_KEY}\"\n");
    assert!(e.message.contains("NOPE_KEY"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.api_key"), "{e}");
    // A string value that reads like the key, in a section above the key's own.
    let e = err("[gateway]\naddr = \"deadline = soon\"\n\
         [routing]\nstrategy = \"cost_optimized\"\ndeadline = \"soon\"\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(e.key.as_deref(), Some("routing.deadline"), "{e}");
    // A value error in a dotted key names the whole path.
    let e = err("routing.deadline = \"soon\"\n");
    assert_eq!(e.line, Some(1), "{e}");
    assert_eq!(e.key.as_deref(), Some("routing.deadline"), "{e}");
}

#[test]
fn unset_variable_line_matches_the_whole_name() {
    // `${API` occurs first inside `${API_URL:-…}`; the unset one is `${API}`.
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\n\
         base_url = \"${API_URL:-http://localhost:1}\"\napi_key = \"${API}\"\n");
    assert!(e.message.contains("`API`"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.api_key"), "{e}");
    // Nor a reference in another section further down.
    let e = err(
        "[llm_providers.x]\nkind = \"cfgtest\"\napi_key = \"k-${NOPE}\"\n\
         [llm_providers.y]\nkind = \"cfgtest\"\napi_key = \"${NOPE}\"\n",
    );
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn nested_defaults_expand() {
    let c = parse(
        "[llm_providers.x]\nkind = \"cfgtest\"\n\
         api_key = \"${NOPE_KEY:-${TEST_KEY}}\"\n\
         base_url = \"${NOPE_URL:-${NOPE_HOST:-http://localhost:2}}/v1\"\n\
         [caching]\nredis_url = \"${NOPE_REDIS:-${NOPE_R2:-redis://h:1}}\"\n",
    )
    .unwrap();
    let spec = c.providers[0].spec.as_ref().unwrap();
    assert_eq!(spec.options["api_key"].as_str(), Some("sk-secret-123"));
    assert_eq!(
        spec.options["base_url"].as_str(),
        Some("http://localhost:2/v1")
    );
    assert_eq!(c.caching.redis_url, "redis://h:1");
    // Every variable of the chain unset: the innermost one is named, on its line.
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\n\
         api_key = \"${NOPE_KEY:-${NOPE_TOO}}\"\n");
    assert!(e.message.contains("`NOPE_TOO` is not set"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn malformed_references_are_errors_naming_file_line_and_key() {
    for (text, line, key, what) in [
        (
            "[llm_providers.x]\nkind = \"cfgtest\"\napi_key = \"${TEST_KEY\"\n",
            3,
            "llm_providers.x.api_key",
            "closing `}`",
        ),
        (
            "[llm_providers.x]\nkind = \"cfgtest\"\n\
             base_url = \"${NOPE:-${NOPE_HOST:-http://h}\"\n",
            3,
            "llm_providers.x.base_url",
            "closing `}`",
        ),
        (
            "[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\n\
             base_url = \"${NOPE-http://h}\"\n",
            4,
            "llm_providers.x.base_url",
            "`NOPE-http://h` is not a variable name",
        ),
        (
            "[caching]\nttl = 5\nredis_url = \"${REDIS_URL:-${}}\"\n",
            3,
            "caching.redis_url",
            "names no variable",
        ),
    ] {
        let e = err(text);
        assert!(e.message.contains(what), "{text}: {e}");
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        assert!(
            e.to_string().starts_with(&format!("test.toml:{line}:")),
            "{e}"
        );
    }
}

#[test]
fn disabled_provider_sections_are_checked_without_their_variables() {
    // Unknown key of the kind, common key of the wrong type, unknown kind.
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\n\
         api_key = \"${NOPE_KEY}\"\nbase_ulr = \"http://x\"\n");
    assert!(e.message.contains("unknown field `base_ulr`"), "{e}");
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.base_ulr"), "{e}");
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\nmax_tokens = \"many\"\n");
    assert!(e.message.contains("invalid type"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.max_tokens"), "{e}");
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\nbase_url = 5\n");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.base_url"), "{e}");
    let e = err("[llm_providers.x]\nkind = \"mystery\"\nenabled = false\n");
    assert!(e.message.contains("unknown provider kind `mystery`"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
    assert_eq!(e.key.as_deref(), Some("llm_providers.x.kind"), "{e}");

    // What needs the variables waits until the section is enabled: unset
    // variables, values that are still `${…}`, missing keys.
    let c = parse(
        "[llm_providers.x]\nkind = \"cfgtest\"\nenabled = false\n\
         api_key = \"${NOPE_KEY}\"\nbase_url = \"${NOPE_URL:-${NOPE_HOST}}\"\n\
         models = [\"a\"]\ndefault_model = \"${NOPE_MODEL}\"\n",
    )
    .unwrap();
    assert!(!c.providers[0].enabled && c.providers[0].spec.is_none());
    // A built-in kind that is not compiled in: its common keys are checked,
    // its own keys cannot be.
    if registry::plugin("anthropic").is_none() {
        assert!(parse(
            "[llm_providers.anthropic]\nenabled = false\napi_key = \"${NOPE}\"\nversion = \"x\"\n"
        )
        .is_ok());
        let e = err("[llm_providers.anthropic]\nenabled = false\ntimeout = \"soon\"\n");
        assert_eq!(
            e.key.as_deref(),
            Some("llm_providers.anthropic.timeout"),
            "{e}"
        );
    }
}

#[test]
fn unset_variable_in_used_sections_is_an_error() {
    let e = err("[caching]\nredis_url = \"${NOPE_REDIS}\"\n");
    assert!(e.message.contains("NOPE_REDIS"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(parse("[caching]\nenabled = false\nredis_url = \"${NOPE_REDIS}\"\n").is_ok());
    let e = err("[caching]\nredis_ca_file = \"${NOPE_CA}/ca.pem\"\n");
    assert!(e.message.contains("NOPE_CA"), "{e}");
    assert_eq!(e.key.as_deref(), Some("caching.redis_ca_file"), "{e}");
    let c = parse("[caching]\nredis_ca_file = \"${NOPE_CA:-/etc/ssl}/ca.pem\"\n").unwrap();
    assert_eq!(
        c.caching.redis_ca_file,
        Some(std::path::PathBuf::from("/etc/ssl/ca.pem"))
    );
}

#[test]
fn semantic_checks_name_the_key() {
    let e = err("[routing.retry]\nbackoff_base = 10\nbackoff_max = 1\n");
    assert!(e.message.contains("backoff_max"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
    let e = err("[llm_providers.x]\nkind = \"cfgtest\"\nmodels = [\"a\"]\ndefault_model = \"b\"\n");
    assert_eq!(e.line, Some(4), "{e}");
    let e = err("[routing]\ndeadline = -1\n");
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn secrets_never_show_in_debug() {
    let c = parse("[llm_providers.x]\nkind = \"cfgtest\"\napi_key = \"${TEST_KEY}\"\n[gateway]\napi_keys = [\"${TEST_KEY}\"]\n").unwrap();
    let built = c.build_providers().unwrap();
    assert_eq!(built.len(), 1);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("sk-secret-123"), "{dbg}");
    assert!(dbg.contains("api_key"), "option names are listed: {dbg}");
    let dbg = format!("{:?}", c.gateway);
    assert!(!dbg.contains("sk-secret-123"), "{dbg}");
    assert!(dbg.contains("1 redacted"), "{dbg}");
    let key: secrecy::SecretString = c.providers[0]
        .spec
        .as_ref()
        .unwrap()
        .options::<toml::Table>()
        .map(|_| secrecy::SecretString::from("sk-secret-123"))
        .unwrap();
    assert!(!format!("{key:?}").contains("sk-secret-123"));
}

#[test]
fn from_path_reports_missing_file() {
    let e = Config::from_path("/nonexistent/llm.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/llm.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn a_relative_sqlite_store_is_relative_to_the_config_file() {
    let parse = |url: &str| {
        let text = format!("[gateway.store]\nurl = \"{url}\"\n");
        Config::from_toml_str_with_env(&text, Some(PathBuf::from("/etc/llm/llm.toml")), &|_| None)
            .unwrap()
            .gateway
            .store
            .url
            .unwrap()
    };
    assert_eq!(parse("sqlite://keys.db"), "sqlite:///etc/llm/keys.db");
    assert_eq!(
        parse("sqlite:data/keys.db?mode=rwc"),
        "sqlite:///etc/llm/data/keys.db?mode=rwc"
    );
    assert_eq!(
        parse("sqlite:///var/lib/keys.db"),
        "sqlite:///var/lib/keys.db"
    );
    assert_eq!(parse("sqlite::memory:"), "sqlite::memory:");
    assert_eq!(parse("postgres://u@h/db"), "postgres://u@h/db");
    // The default database sits beside the file too.
    let c = Config::from_toml_str_with_env(
        "[gateway]\nmaster_key = \"m\"\n",
        Some(PathBuf::from("/etc/llm/llm.toml")),
        &|_| None,
    )
    .unwrap();
    assert_eq!(c.gateway.store.url, None);
    assert_eq!(
        c.gateway.store.effective_url(),
        "sqlite:///etc/llm/llm-router.db"
    );
    // Without a file (text from elsewhere), paths stay as written.
    let text = "[gateway.store]\nurl = \"sqlite://keys.db\"\n";
    let c = Config::from_toml_str_with_env(text, None, &|_| None).unwrap();
    assert_eq!(c.gateway.store.url.as_deref(), Some("sqlite://keys.db"));
}

#[test]
fn durations_beyond_a_year_are_refused_with_their_key() {
    for (section, key) in [
        ("[llm_providers.x]\nkind = \"cfgtest\"\n", "timeout"),
        ("[caching]\n", "ttl"),
        ("[routing]\n", "deadline"),
    ] {
        let text = format!("{section}{key} = 1e15\n");
        let e = err(&text);
        assert!(e.to_string().contains("at most"), "{e}");
        assert!(
            e.key.as_deref().is_some_and(|k| k.ends_with(key)),
            "{key}: {e}"
        );
    }
    // One year exactly is fine.
    let cfg = Config::parse("[caching]\nttl = 31536000\n", None, &|_| None).unwrap();
    assert_eq!(
        cfg.caching.ttl.0,
        std::time::Duration::from_secs(31_536_000)
    );
}
