//! What the user can do after a failed call, from the attempts and the configuration.

use llm_router::config::Config;
use llm_router::{Attempt, AttemptOutcome, LlmError};

/// Hints for a failed call, most specific first, without duplicates.
pub(crate) fn for_error(e: &LlmError, config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |h: String| {
        if !out.contains(&h) {
            out.push(h);
        }
    };
    match e {
        LlmError::UnknownProvider { .. } => {
            add("`llm providers` lists the configured provider instances".into());
            return out;
        }
        LlmError::Validation(_) => return out,
        LlmError::UnknownEmbeddingModel { known, .. } => {
            if known.is_empty() {
                add(
                    "no provider instance lists an embedding model: add the ones it serves to \
                     its section, e.g. `embedding_models = [\"nomic-embed-text\"]` under an \
                     Ollama instance"
                        .into(),
                );
            } else {
                add(format!(
                    "pick one with --model ({}), or add the model to the `embedding_models` \
                     of an instance that serves it",
                    known.join(", ")
                ));
                add(
                    "`[routing] default_embedding_model` sets the model used without --model"
                        .into(),
                );
            }
            return out;
        }
        LlmError::Config(_) => {
            add("`llm config check` shows where the configuration is wrong".into());
            return out;
        }
        _ => {}
    }
    let attempts = e.attempts();
    if attempts.is_empty() {
        let enabled: Vec<&str> = config
            .providers
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.kind.as_str())
            .collect();
        if enabled.is_empty() {
            let file = config.file.as_ref().map_or_else(
                || "a configuration file".to_string(),
                |f| f.display().to_string(),
            );
            add(format!(
                "no provider is enabled: enable one in {file} (see config/llm_providers.toml), \
                 or pass --config PATH"
            ));
        }
        for kind in enabled {
            for h in kind_hints(kind, None, None) {
                add(h);
            }
        }
    }
    for a in attempts {
        let entry = config.provider(&a.provider);
        let kind = entry.map_or("", |p| p.kind.as_str());
        let option = |key: &str| {
            entry
                .and_then(|e| e.spec.as_ref())
                .and_then(|s| s.options.get(key))
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let keyless = option("api_key").is_none();
        let hosted_openai = option("base_url").is_none_or(|u| u.contains("api.openai.com"));
        if a.succeeded() {
            continue;
        }
        match kind {
            "openai" if keyless && hosted_openai => {
                add(key_hint("OPENAI_API_KEY", &a.provider));
            }
            "anthropic" if keyless => add(key_hint("ANTHROPIC_API_KEY", &a.provider)),
            _ => {}
        }
        for h in attempt_hints(kind, a) {
            add(h);
        }
    }
    add("`llm providers` shows which providers are available now".into());
    out
}

fn attempt_hints(kind: &str, a: &Attempt) -> Vec<String> {
    match &a.outcome {
        AttemptOutcome::Success => Vec::new(),
        AttemptOutcome::Skipped { .. } => kind_hints(kind, None, Some(a)),
        AttemptOutcome::Failed { status, .. } => kind_hints(kind, *status, Some(a)),
    }
}

/// A call was made and failed before any HTTP status (connection, timeout).
fn failed_without_status(a: Option<&Attempt>) -> bool {
    a.is_some_and(|a| matches!(a.outcome, AttemptOutcome::Failed { status: None, .. }))
}

/// Whether an executable called `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

fn key_hint(var: &str, instance: &str) -> String {
    format!("set {var} (the `api_key` of [llm_providers.{instance}]) to a valid key")
}

fn kind_hints(kind: &str, status: Option<u16>, a: Option<&Attempt>) -> Vec<String> {
    let instance = a.map_or(kind, |a| a.provider.as_str());
    let model = a.map_or("", |a| a.model.as_str());
    match (kind, status) {
        ("ollama", Some(404)) => vec![format!(
            "pull the model: `llm pull {model} --provider {instance}`"
        )],
        ("ollama", _) if !on_path("ollama") => vec![format!(
            "{}; then `llm setup` starts it and pulls the required models",
            llm_router::ollama::INSTALL_HINT
        )],
        ("ollama", _) => vec![
            "start Ollama (`ollama serve`), or run `llm setup` to start it and pull the required models"
                .into(),
        ],
        ("openai", Some(401 | 403)) => vec![key_hint("OPENAI_API_KEY", instance)],
        ("openai", None) if failed_without_status(a) => vec![format!(
            "check that `{instance}` is reachable at its `base_url` (OPENAI_BASE_URL)"
        )],
        ("openai", None) => vec![key_hint("OPENAI_API_KEY", instance)],
        ("openai", Some(429)) => vec![format!(
            "`{instance}` is rate limited or out of credit: wait, or check your OpenAI plan and billing"
        )],
        ("anthropic", Some(401 | 403) | None) => vec![key_hint("ANTHROPIC_API_KEY", instance)],
        ("custom", _) => vec![format!(
            "check that the API of [llm_providers.{instance}] answers at its `base_url` (CUSTOM_LLM_URL)"
        )],
        (_, Some(404)) => vec![format!(
            "`{instance}` does not serve `{model}`: pick another with --model (`llm models`)"
        )],
        (_, Some(s)) if s >= 500 => vec![format!("`{instance}` is failing (HTTP {s}); try again later")],
        _ => Vec::new(),
    }
}
