//! Configuration through the real loader: keys, defaults and located errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Links the crate, so its `inventory` registration is in this test binary.
#[allow(unused_extern_crates)]
extern crate llm_openai;

use std::path::PathBuf;

use llm_core::config::Config;
use llm_core::ConfigError;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str_with_env(text, Some(PathBuf::from("providers.toml")), &|var| {
        (var == "OPENAI_API_KEY").then(|| "sk-from-env-0000".to_string())
    })
}

#[test]
fn a_full_section_loads() {
    let cfg = load(
        r#"
[llm_providers.openai]
api_key = "${OPENAI_API_KEY}"
base_url = "https://api.openai.com/v1/"
organization = "org-abc"
project = "proj_xyz"
headers = { "X-Team" = "novels" }
max_completion_tokens_models = ["o", "gpt-5"]
no_sampling_params_models = []
stream_usage = false
allow_no_key = false
models = ["gpt-4o-mini"]
default_model = "gpt-4o-mini"
timeout = 30

[llm_providers.lmstudio]
kind = "openai"
base_url = "http://127.0.0.1:1234/v1"
local = true
"#,
    )
    .unwrap();
    let providers = cfg.build_providers().unwrap();
    assert_eq!(providers.len(), 2);
    assert!(providers.iter().all(|p| p.kind() == "openai"));
    assert!(providers[1].profile().local);
}

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let e = load(
        r#"
[llm_providers.openai]
api_key = "sk-x"
base_ulr = "http://localhost:8000/v1"
"#,
    )
    .expect_err("an unknown key is an error");
    assert_eq!(e.file, Some(PathBuf::from("providers.toml")));
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.openai.base_ulr"),
        "{e}"
    );
    assert!(e.message.contains("base_ulr"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let e = load("[llm_providers.openai]\nbase_url = \"localhost:8000\"\n")
        .expect_err("a base_url without scheme is an error");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.openai.base_url"),
        "{e}"
    );
    assert_eq!(e.line, Some(2), "{e}");

    let e = load("[llm_providers.openai]\nstream_usage = \"yes\"\n")
        .expect_err("a wrong type is an error");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.openai.stream_usage"),
        "{e}"
    );

    let e = load("[llm_providers.openai]\nheaders = { \"bad header\" = \"v\" }\n")
        .expect_err("an invalid header name is an error");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.openai.headers"),
        "{e}"
    );

    let e = load("[llm_providers.openai]\napi_key = \"sk-bad\\nkey\"\n")
        .expect_err("a key that cannot be a header is an error");
    assert_eq!(
        e.key.as_deref(),
        Some("llm_providers.openai.api_key"),
        "{e}"
    );
    assert!(!e.to_string().contains("sk-bad"), "{e}");
}
