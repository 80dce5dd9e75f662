//! TOML configuration: providers, routing, caching, monitoring and the gateway.
//!
//! ```
//! use llm_core::config::Config;
//!
//! let cfg = Config::from_toml_str(r#"
//!     [llm_providers.openai]
//!     enabled = false                  # checked (keys, types), not built
//!     api_key = "${OPENAI_API_KEY}"
//!
//!     [routing]
//!     strategy = "local_first"
//!     deadline = 120
//!
//!     [caching]
//!     redis_url = "${REDIS_URL:-redis://127.0.0.1:6379}"
//! "#).unwrap();
//! assert_eq!(cfg.providers[0].name, "openai");
//! assert_eq!(cfg.routing.strategy, llm_core::config::Strategy::LocalFirst);
//! # if std::env::var("REDIS_URL").is_err() {
//! assert_eq!(cfg.caching.redis_url, "redis://127.0.0.1:6379");
//! # }
//! ```
//!
//! Every error names the file, line and key; unknown keys are errors, in
//! disabled provider sections too; `${VAR}` and `${VAR:-default}` (defaults
//! may nest: `${A:-${B}}`) are expanded in strings (an unset `${VAR}` is an
//! error only in an enabled provider or in a section in use; a malformed
//! reference is an error everywhere).

mod env;
mod sections;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::cost::ModelPrice;
use crate::error::ConfigError;
use crate::provider::{Provider, ProviderProfile};
use crate::registry::{self, ProviderSpec};

pub use sections::{
    CacheBackend, CacheMode, CachingConfig, FallbackMap, GatewayConfig, HealthConfig,
    MonitoringConfig, RetryConfig, RoutingConfig, RulesConfig, Secs, StoreConfig, Strategy,
};
pub(crate) use source::SourceMap;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "LLM_CONFIG";
/// Default configuration path, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/llm_providers.toml";

/// A loaded configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Provider instances in file order (disabled ones included, unbuilt).
    pub providers: Vec<ProviderEntry>,
    /// `[routing]`.
    pub routing: RoutingConfig,
    /// `[caching]`.
    pub caching: CachingConfig,
    /// `[monitoring]`.
    pub monitoring: MonitoringConfig,
    /// `[gateway]`.
    pub gateway: GatewayConfig,
    /// Where the configuration came from.
    pub file: Option<PathBuf>,
}

/// One `[llm_providers.<name>]` section.
#[derive(Clone)]
pub struct ProviderEntry {
    /// Instance name.
    pub name: String,
    /// Provider kind.
    pub kind: String,
    /// Whether the instance is used.
    pub enabled: bool,
    /// Everything needed to build it; `None` when disabled.
    pub spec: Option<ProviderSpec>,
    /// The instance, built (and so validated) when the configuration was loaded.
    pub instance: Option<Arc<dyn Provider>>,
}

impl std::fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEntry")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    llm_providers: toml::Table,
    #[serde(default)]
    routing: RoutingConfig,
    #[serde(default)]
    caching: CachingConfig,
    #[serde(default)]
    monitoring: MonitoringConfig,
    #[serde(default)]
    gateway: GatewayConfig,
}

/// Keys every provider section may have, whatever its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonKeys {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    local: Option<bool>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    default_model: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    vision_models: Option<Vec<String>>,
    #[serde(default)]
    probe: Option<crate::provider::ProbeMode>,
    #[serde(default)]
    embedding_models: Vec<String>,
    #[serde(default)]
    max_response_bytes: Option<u64>,
    #[serde(default)]
    timeout: Option<Secs>,
    #[serde(default)]
    cost_per_1k_tokens: Option<f64>,
    #[serde(default)]
    pricing: BTreeMap<String, ModelPrice>,
}

const COMMON_KEYS: &[&str] = &[
    "kind",
    "enabled",
    "local",
    "models",
    "default_model",
    "max_tokens",
    "vision_models",
    "probe",
    "embedding_models",
    "max_response_bytes",
    "timeout",
    "cost_per_1k_tokens",
    "pricing",
];

impl Config {
    /// Loads the file at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!("cannot read configuration: {e}"))
                .with_file(Some(path.to_path_buf()))
        })?;
        Self::parse(&text, Some(path.to_path_buf()), &|k| std::env::var(k).ok())
    }

    /// Parses configuration text (environment variables from the process).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, None, &|k| std::env::var(k).ok())
    }

    /// Parses configuration text with an explicit environment, for tests and
    /// embedders that do not want the process environment.
    pub fn from_toml_str_with_env(
        text: &str,
        file: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::parse(text, file, env)
    }

    /// The file named by `explicit`, else by `LLM_CONFIG`, else
    /// `config/llm_providers.toml` when it exists; `None` means built-in defaults.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(p) = explicit {
            return Some(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    }

    /// Loads the located file, or built-in defaults when there is none.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match Self::locate(explicit) {
            Some(path) => Self::from_path(path),
            None => Ok(Self::default()),
        }
    }

    fn parse(
        text: &str,
        file: Option<PathBuf>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let source = Arc::new(SourceMap::new(file.clone(), text));
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(&source, &e))?;
        let RawConfig {
            llm_providers,
            routing,
            mut caching,
            monitoring,
            mut gateway,
        } = raw;

        let mut providers = Vec::with_capacity(llm_providers.len());
        for (name, value) in llm_providers {
            providers.push(provider_entry(&name, value, &source, lookup)?);
        }

        let expand_in = |section: &[&str], key: &str, value: &str| {
            env::expand(value, lookup).map_err(|e| {
                let message = match e {
                    env::ExpandError::Unset(var) => {
                        format!("environment variable `{var}` is not set")
                    }
                    env::ExpandError::Malformed(why) => why,
                };
                source
                    .error(section, Some(key), message)
                    .with_key(format!("{}.{key}", section.join(".")))
            })
        };
        if caching.enabled {
            caching.redis_url = expand_in(&["caching"], "redis_url", &caching.redis_url)?;
            caching.key_prefix = expand_in(&["caching"], "key_prefix", &caching.key_prefix)?;
            if let Some(path) = caching.redis_ca_file.as_ref().and_then(|p| p.to_str()) {
                caching.redis_ca_file =
                    Some(expand_in(&["caching"], "redis_ca_file", path)?.into());
            }
        }
        gateway.addr = expand_in(&["gateway"], "addr", &gateway.addr)?;
        gateway.expand_keys(|v| expand_in(&["gateway"], "api_keys", v))?;
        if let Some(dir) = file.as_deref().and_then(Path::parent) {
            gateway.store.anchor_sqlite(dir);
        }
        routing.validate().map_err(|(key, msg)| {
            source
                .error(&["routing"], Some(key), msg)
                .with_key(format!("routing.{key}"))
        })?;

        Ok(Self {
            providers,
            routing,
            caching,
            monitoring,
            gateway,
            file,
        })
    }

    /// Every enabled provider instance, in file order. They were built through
    /// the plugin registry when the configuration was loaded.
    pub fn build_providers(&self) -> Result<Vec<Arc<dyn Provider>>, ConfigError> {
        Ok(self
            .providers
            .iter()
            .filter_map(|p| p.instance.clone())
            .collect())
    }

    /// The entry for instance `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderEntry> {
        self.providers.iter().find(|p| p.name == name)
    }
}

fn toml_error(source: &SourceMap, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| source.line_of_offset(s.start));
    let key = e.span().and_then(|s| source.key_at_offset(s.start));
    let mut err = ConfigError::new(e.message().trim().to_string())
        .with_file(source.file.clone())
        .with_line(line);
    err.key = key;
    err
}

fn provider_entry(
    name: &str,
    value: toml::Value,
    source: &Arc<SourceMap>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderEntry, ConfigError> {
    let section = ["llm_providers", name];
    let toml::Value::Table(mut table) = value else {
        return Err(source
            .error(&section, None, "a provider section must be a table".into())
            .with_key(format!("llm_providers.{name}")));
    };
    let enabled = match table.get("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            return Err(source
                .error(&section, Some("enabled"), "expected a boolean".into())
                .with_key(format!("llm_providers.{name}.enabled")))
        }
    };
    let kind = match table.get("kind") {
        None => name.to_string(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(source
                .error(&section, Some("kind"), "expected a string".into())
                .with_key(format!("llm_providers.{name}.kind")))
        }
    };
    if !enabled {
        check_disabled(name, &kind, table, source)?;
        return Ok(ProviderEntry {
            name: name.to_string(),
            kind,
            enabled,
            spec: None,
            instance: None,
        });
    }
    for (key, v) in table.iter_mut() {
        env::expand_value(v, lookup).map_err(|e| match e {
            env::ExpandError::Unset(var) => ConfigError::new(format!(
                "environment variable `{var}` is not set (needed by enabled provider `{name}`; \
                 set it, or set `enabled = false`)"
            ))
            .with_file(source.file.clone())
            .with_line(
                source
                    .line_of_var(&section, &var)
                    .or_else(|| source.line_of(&section, Some(key))),
            )
            .with_key(format!("llm_providers.{name}.{key}")),
            env::ExpandError::Malformed(why) => malformed(name, key, why, source),
        })?;
    }
    let spec = spec_from_table(name, table, source.clone())?;
    let instance = registry::build_spec(&spec)?;
    Ok(ProviderEntry {
        name: name.to_string(),
        kind,
        enabled,
        spec: Some(spec),
        instance: Some(instance),
    })
}

/// A located error about a malformed `${…}` in provider `name`'s `key`.
fn malformed(name: &str, key: &str, why: String, source: &SourceMap) -> ConfigError {
    source
        .error(&["llm_providers", name], Some(key), why)
        .with_key(format!("llm_providers.{name}.{key}"))
}

/// Checks a disabled provider section as far as it can be checked without its
/// environment variables: `${…}` syntax, the kind, unknown keys and value
/// types. The kind's own keys are checked when it is compiled in; a built-in
/// kind that is not compiled in gets the common keys checked only.
fn check_disabled(
    name: &str,
    kind: &str,
    table: toml::Table,
    source: &Arc<SourceMap>,
) -> Result<(), ConfigError> {
    let compiled = registry::plugin(kind).is_some();
    if !compiled && registry::feature_for(kind).is_none() {
        return Err(source
            .error(
                &["llm_providers", name],
                Some("kind"),
                registry::unknown_kind_message(kind),
            )
            .with_key(format!("llm_providers.{name}.kind")));
    }
    for (key, v) in &table {
        // Every variable set (and empty): only the syntax can fail.
        env::expand_value(&mut v.clone(), &|_| Some(String::new())).map_err(|e| match e {
            env::ExpandError::Malformed(why) => malformed(name, key, why, source),
            env::ExpandError::Unset(var) => {
                malformed(name, key, format!("`{var}` is not set"), source)
            }
        })?;
    }
    // Complaints about values (not about keys or types) wait until the section
    // is enabled: a value may still be an unexpanded `${VAR}`.
    let spec = match spec_from_table(name, table, source.clone()) {
        Ok(spec) => spec,
        Err(e) if is_key_or_type_error(&e.message) => return Err(e),
        Err(_) => return Ok(()),
    };
    if !compiled {
        return Ok(());
    }
    // The factory checks the kind's keys; its other complaints (a missing key,
    // a value) wait too.
    match registry::build_spec(&spec) {
        Err(e) if is_key_or_type_error(&e.message) => Err(e),
        _ => Ok(()),
    }
}

/// A deserialization error about the keys or value types themselves (serde's
/// wording), as opposed to one about a value's content.
fn is_key_or_type_error(message: &str) -> bool {
    message.starts_with("unknown field")
        || message.starts_with("invalid type")
        || (message.starts_with("unknown variant")
            && registry::first_backticked(message).is_some_and(|v| !v.contains('$')))
}

/// Splits a provider section into its common profile and kind-specific options.
pub(crate) fn spec_from_table(
    name: &str,
    mut table: toml::Table,
    source: Arc<SourceMap>,
) -> Result<ProviderSpec, ConfigError> {
    let mut common = toml::Table::new();
    for key in COMMON_KEYS {
        if let Some(v) = table.remove(*key) {
            common.insert((*key).to_string(), v);
        }
    }
    let mut spec = ProviderSpec {
        name: name.to_string(),
        kind: name.to_string(),
        profile: ProviderProfile::default(),
        options: table,
        source,
    };
    let keys: CommonKeys =
        serde_path_to_error::deserialize(toml::Value::Table(common)).map_err(|e| {
            let path = e.path().to_string();
            let top = path
                .split('.')
                .next()
                .filter(|p| !p.is_empty() && *p != "?");
            spec.error_at(top, e.inner().message())
        })?;
    if let Some(kind) = keys.kind {
        spec.kind = kind;
    }
    let local_default = registry::plugin(&spec.kind).is_some_and(|p| p.local_by_default);
    if let Some(t) = keys.timeout.map(|s| s.0).filter(|t| t.is_zero()) {
        return Err(spec.error_at(Some("timeout"), format!("must be more than 0 s, got {t:?}")));
    }
    if keys.max_response_bytes == Some(0) {
        return Err(spec.error_at(Some("max_response_bytes"), "must be more than 0"));
    }
    if keys.max_tokens == Some(0) {
        return Err(spec.error_at(Some("max_tokens"), "must be more than 0"));
    }
    if let Some(d) = &keys.default_model {
        if !keys.models.is_empty() && !keys.models.contains(d) {
            return Err(spec.error_at(
                Some("default_model"),
                format!("`{d}` is not one of `models` ({})", keys.models.join(", ")),
            ));
        }
    }
    let _ = keys.enabled;
    spec.profile = ProviderProfile {
        local: keys.local.unwrap_or(local_default),
        models: keys.models,
        default_model: keys.default_model,
        max_tokens: keys.max_tokens,
        vision_models: keys.vision_models,
        probe: keys.probe.unwrap_or_default(),
        embedding_models: keys.embedding_models,
        max_response_bytes: keys
            .max_response_bytes
            .unwrap_or(ProviderProfile::default().max_response_bytes),
        timeout: keys.timeout.map_or(Duration::from_secs(60), |s| s.0),
        cost_per_1k_tokens: keys.cost_per_1k_tokens.unwrap_or(0.0),
        pricing: keys.pricing,
    };
    Ok(spec)
}

#[cfg(test)]
mod tests;
