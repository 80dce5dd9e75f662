//! The provider plugin registry.
//!
//! A provider crate registers a factory for its kind with one
//! [`inventory::submit!`]; the configuration then builds instances of every kind
//! that is linked into the program, with no central list to edit.
//!
//! ```
//! use std::sync::Arc;
//! use llm_core::registry::{self, ProviderPlugin, ProviderSpec};
//! use llm_core::{ConfigError, Provider};
//!
//! fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
//!     // Deserialize the kind's own keys with `spec.options::<MyConfig>()`, then
//!     // construct the provider.
//! #   Err(ConfigError::new("example"))
//! }
//!
//! inventory::submit! {
//!     ProviderPlugin { kind: "my-llm", local_by_default: false, build }
//! }
//!
//! assert!(registry::kinds().contains(&"my-llm"));
//! ```

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::SourceMap;
use crate::error::ConfigError;
use crate::provider::{Provider, ProviderProfile};

/// Factory signature of a provider kind.
pub type BuildFn = fn(&ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError>;

/// A provider kind's registration.
#[derive(Debug)]
pub struct ProviderPlugin {
    /// The kind name used in configuration (`kind = "…"`).
    pub kind: &'static str,
    /// Whether instances are local unless the configuration says `local = false`.
    pub local_by_default: bool,
    /// Builds an instance from its configuration.
    pub build: BuildFn,
}

inventory::collect!(ProviderPlugin);

/// Factory signature of a cache backend.
pub type CacheBuildFn =
    fn(
        &crate::config::CachingConfig,
    ) -> Result<Arc<dyn crate::cache::ResponseCache>, crate::error::CacheError>;

/// A cache backend's registration (e.g. `redis` from `llm-cache-redis`).
#[derive(Debug)]
pub struct CachePlugin {
    /// The `[caching] backend` name.
    pub backend: &'static str,
    /// Builds the backend from the caching configuration.
    pub build: CacheBuildFn,
}

inventory::collect!(CachePlugin);

/// The cache plugin registered for `backend`.
pub fn cache_plugin(backend: &str) -> Option<&'static CachePlugin> {
    inventory::iter::<CachePlugin>
        .into_iter()
        .find(|p| p.backend == backend)
}

/// Everything a factory needs to build one provider instance.
///
/// Its `Debug` lists option names only: option values may be secrets.
#[derive(Clone)]
pub struct ProviderSpec {
    /// Instance name (the key under `[llm_providers]`).
    pub name: String,
    /// Kind name.
    pub kind: String,
    /// Common settings (models, limits, prices, timeout, locality).
    pub profile: ProviderProfile,
    /// The section's remaining, kind-specific keys, with `${VAR}` already expanded.
    pub options: toml::Table,
    pub(crate) source: Arc<SourceMap>,
}

impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("profile", &self.profile)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProviderSpec {
    /// A spec built in code rather than from a file.
    pub fn new(name: impl Into<String>, kind: impl Into<String>, profile: ProviderProfile) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            profile,
            options: toml::Table::new(),
            source: Arc::new(SourceMap::default()),
        }
    }

    /// Adds a kind-specific option.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Deserializes the kind-specific keys into the factory's own config type.
    ///
    /// Use `#[serde(deny_unknown_fields)]` on `T`: an unknown key then becomes an
    /// error naming the file, line and key.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(self.options.clone())).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().message().to_string();
            // `content_pointers[0]` and `headers.x` both belong to their top-level key.
            let key = path
                .split(['.', '['])
                .next()
                .filter(|k| !k.is_empty() && *k != "?" && self.options.contains_key(*k));
            match key {
                Some(k) => self.error_at(Some(k), message),
                None => self.option_error(&message),
            }
        })
    }

    /// An error about this instance's option `key` (or the whole section), located.
    pub fn error_at(&self, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        let section = ["llm_providers", self.name.as_str()];
        let path = match key {
            Some(k) => format!("llm_providers.{}.{k}", self.name),
            None => format!("llm_providers.{}", self.name),
        };
        self.source
            .error(&section, key, message.into())
            .with_key(path)
    }

    fn option_error(&self, message: &str) -> ConfigError {
        let key = first_backticked(message);
        self.error_at(key, message)
    }
}

/// The first `name` quoted in backticks in a serde message (`unknown field `x``).
pub(crate) fn first_backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Every registered plugin.
pub fn plugins() -> impl Iterator<Item = &'static ProviderPlugin> {
    inventory::iter::<ProviderPlugin>.into_iter()
}

/// Provider kinds compiled into this program, sorted and deduplicated.
pub fn kinds() -> Vec<&'static str> {
    let mut k: Vec<&'static str> = plugins().map(|p| p.kind).collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// The plugin registered for `kind`.
pub fn plugin(kind: &str) -> Option<&'static ProviderPlugin> {
    plugins().find(|p| p.kind == kind)
}

/// The cargo feature of the `llm-router` crate that adds a built-in kind.
pub fn feature_for(kind: &str) -> Option<&'static str> {
    match kind {
        "openai" => Some("openai"),
        "anthropic" => Some("anthropic"),
        "ollama" => Some("ollama"),
        "custom" => Some("custom"),
        _ => None,
    }
}

/// The error for a kind that is not compiled in.
pub(crate) fn unknown_kind_message(kind: &str) -> String {
    let compiled = kinds();
    let compiled = if compiled.is_empty() {
        "none".to_string()
    } else {
        compiled.join(", ")
    };
    match feature_for(kind) {
        Some(feature) => format!(
            "provider kind `{kind}` is not compiled in (compiled in: {compiled}); \
             enable the `{feature}` cargo feature of `llm-router`"
        ),
        None => format!(
            "unknown provider kind `{kind}` (compiled in: {compiled}); \
             add the crate that provides it as a dependency"
        ),
    }
}

/// Builds an instance from a spec through its kind's plugin.
pub fn build_spec(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    let plugin = plugin(&spec.kind)
        .ok_or_else(|| spec.error_at(Some("kind"), unknown_kind_message(&spec.kind)))?;
    (plugin.build)(spec)
}

/// Builds an instance named `name` from a configuration section (common keys
/// and kind-specific keys together, as under `[llm_providers.<name>]`).
pub fn build(name: &str, section: &toml::Value) -> Result<Arc<dyn Provider>, ConfigError> {
    let table = section
        .as_table()
        .cloned()
        .ok_or_else(|| ConfigError::new("a provider section must be a table").with_key(name))?;
    let spec = crate::config::spec_from_table(name, table, Arc::new(SourceMap::default()))?;
    build_spec(&spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticked_name_is_found() {
        assert_eq!(
            first_backticked("unknown field `foo`, expected `bar`"),
            Some("foo")
        );
        assert_eq!(first_backticked("no names"), None);
    }

    #[test]
    fn unknown_builtin_kind_names_the_feature() {
        let m = unknown_kind_message("anthropic");
        if !kinds().contains(&"anthropic") {
            assert!(m.contains("`anthropic` cargo feature"), "{m}");
        }
        let m = unknown_kind_message("bogus");
        assert!(m.contains("unknown provider kind `bogus`"), "{m}");
    }

    #[test]
    fn a_wrong_type_inside_an_array_option_names_the_option() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Opts {
            content_pointers: Vec<String>,
        }
        let spec = ProviderSpec::new("c", "custom", ProviderProfile::default())
            .option("content_pointers", vec![toml::Value::from(1)]);
        let err = spec.options::<Opts>().unwrap_err();
        assert_eq!(
            err.key.as_deref(),
            Some("llm_providers.c.content_pointers"),
            "{err}"
        );
    }
}
