//! The service manager: start a local Ollama server when it is down and pull
//! the models the configuration requires.
//!
//! [`OllamaService::ensure_running`] probes `GET /api/version`. When nothing
//! answers and `base_url` names this machine, it starts `<binary> serve` (the
//! `binary` key, default `ollama` on `PATH`) with `OLLAMA_HOST` set to the
//! `host:port` of `base_url`, then polls the server with exponential backoff
//! (50 ms doubling to 1 s) until it answers or `start_timeout` (default 30 s)
//! passes.
//!
//! # Lifetime of a started server
//!
//! A server started here is **left running as a service**, like the original
//! design: dropping the [`OllamaService`] (or exiting the program) does not stop
//! it, and it runs in its own process group so a Ctrl-C in the terminal does not
//! reach it. While this program runs, a background task waits on the process, so
//! it never lingers as a zombie if it exits; after this program exits, the
//! operating system re-parents it. [`OllamaService::stop`] kills a server this
//! instance started (tests use it to clean up). A server that does not become
//! ready within `start_timeout` is killed and reaped before the error returns.
//! Its output goes to `llm-ollama-serve-<port>.log` in the temporary directory.

mod process;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use llm_core::http::reqwest::Url;
use llm_core::{ConfigError, ProviderError, ProviderSpec};
use tokio::time::Instant;

use crate::api::{canonical_model, Api, PROBE_TIMEOUT};
use crate::config::OllamaConfig;
use crate::pull::PullProgress;
use process::Spawned;

/// First pause between readiness probes; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(50);
/// Longest pause between readiness probes.
const MAX_POLL: Duration = Duration::from_secs(1);
/// Shortest timeout of one readiness probe.
const MIN_PROBE: Duration = Duration::from_millis(100);

/// Where to get Ollama, quoted in [`ServiceError::BinaryNotFound`].
pub const INSTALL_HINT: &str = "install Ollama from https://ollama.com/download \
     (Linux: `curl -fsSL https://ollama.com/install.sh | sh`)";

/// What [`OllamaService::ensure_running`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceStatus {
    /// A server was already answering.
    AlreadyRunning {
        /// Its version, when it reported one.
        version: Option<String>,
    },
    /// A server was started and is now answering.
    Started {
        /// Process id of the started server.
        pid: Option<u32>,
        /// Its version, when it reported one.
        version: Option<String>,
    },
}

/// A failure of the service manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The Ollama executable does not exist.
    #[error(
        "Ollama is not installed: `{}` was not found{}; {INSTALL_HINT}, \
         or set `binary` to the path of the `ollama` executable",
        binary.display(),
        if *on_path { " on PATH" } else { "" }
    )]
    BinaryNotFound {
        /// The configured `binary`.
        binary: PathBuf,
        /// Whether `PATH` was searched (the configured value is a bare name).
        on_path: bool,
    },
    /// `base_url` is another machine, where this program cannot start a server.
    #[error("the Ollama server at {url} is not answering, and it is not on this machine, so it cannot be started here")]
    NotLocal {
        /// `base_url`.
        url: String,
    },
    /// The executable could not be started.
    #[error("cannot start `{} serve`: {source}", binary.display())]
    Spawn {
        /// The executable.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A started server did not answer in time (or exited first).
    #[error("{}", not_ready_message(url, *waited, *pid, exit.as_deref(), log.as_ref(), log_tail.as_deref()))]
    NotReady {
        /// `base_url`.
        url: String,
        /// How long it was waited for.
        waited: Duration,
        /// Process id of the started server (killed and reaped by now).
        pid: Option<u32>,
        /// How it exited, when it exited by itself before answering.
        exit: Option<String>,
        /// Its log file.
        log: Option<PathBuf>,
        /// The end of its log, when it exited by itself.
        log_tail: Option<String>,
    },
    /// Required models are missing and `auto_download` is off.
    #[error(
        "required models missing on the Ollama server: {}; pull them with {}, \
         or set `auto_download = true`",
        models.join(", "),
        models.iter().map(|m| format!("`llm pull {m}` / `ollama pull {m}`")).collect::<Vec<_>>().join(", ")
    )]
    ModelsMissing {
        /// The missing models.
        models: Vec<String>,
    },
    /// Downloading a model failed.
    #[error("pulling `{model}` failed: {source}")]
    Pull {
        /// The model.
        model: String,
        /// Why.
        #[source]
        source: ProviderError,
    },
    /// The server's API failed (e.g. listing its models).
    #[error(transparent)]
    Api(#[from] ProviderError),
}

fn not_ready_message(
    url: &str,
    waited: Duration,
    pid: Option<u32>,
    exit: Option<&str>,
    log: Option<&PathBuf>,
    log_tail: Option<&str>,
) -> String {
    let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let mut m = match exit {
        Some(exit) => format!(
            "the started Ollama server{pid} exited ({exit}) after {:.1} s without answering at {url}",
            waited.as_secs_f64()
        ),
        None => format!(
            "the started Ollama server{pid} did not answer at {url} within {:.1} s \
             (`start_timeout`); it was stopped",
            waited.as_secs_f64()
        ),
    };
    if let Some(log) = log {
        m.push_str(&format!("; log: {}", log.display()));
    }
    if let Some(tail) = log_tail {
        m.push_str(&format!("\n{tail}"));
    }
    m
}

/// Starts and provisions the Ollama server of one provider instance.
///
/// Build it from the instance's configuration section with
/// [`from_spec`](Self::from_spec) (or from an [`OllamaProvider`](crate::OllamaProvider)).
/// See the [module documentation](self) for what happens to a started server.
pub struct OllamaService {
    config: OllamaConfig,
    url: Url,
    api: Api,
    env: Vec<(OsString, OsString)>,
    spawned: Mutex<Option<Spawned>>,
    start_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for OllamaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaService")
            .field("name", &self.api.name)
            .field("config", &self.config)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl OllamaService {
    /// A manager for the server of the instance configured by `spec`.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let config = OllamaConfig::from_spec(spec)?;
        Self::new(&spec.name, config, spec.profile.timeout)
            .map_err(|e| spec.error_at(e.key.as_deref(), e.message))
    }

    /// A manager for the server of instance `name`; `timeout` bounds each API call
    /// (a pull only until its first line; then it may take as long as it needs).
    pub fn new(name: &str, config: OllamaConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let api = Api::new(name, &config, timeout)?;
        let url = config
            .url()
            .map_err(|m| ConfigError::new(m).with_key("base_url"))?;
        Ok(Self {
            config,
            url,
            api,
            env: Vec::new(),
            spawned: Mutex::new(None),
            start_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Adds an environment variable for a server this manager starts (e.g.
    /// `OLLAMA_MODELS`). `OLLAMA_HOST` is always set from `base_url`.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &OllamaConfig {
        &self.config
    }

    /// Process id of the server this manager started, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let guard = lock(&self.spawned);
        guard
            .as_ref()
            .filter(|s| s.exited().is_none())
            .and_then(|s| s.pid)
    }

    /// Where the output of a server started by this manager goes:
    /// `llm-ollama-serve-<port>.log` in the temporary directory.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.url.port_or_known_default().map(process::log_path)
    }

    /// Whether the server answers `GET /api/version` (within 2 s).
    pub async fn is_running(&self) -> bool {
        self.api.probe().await
    }

    /// Makes sure the server answers, starting it when it is down.
    ///
    /// Errors: [`ServiceError::BinaryNotFound`] (with install instructions),
    /// [`ServiceError::NotLocal`], [`ServiceError::Spawn`], or
    /// [`ServiceError::NotReady`] when the started server does not answer within
    /// `start_timeout` (it is then killed) or exits first.
    pub async fn ensure_running(&self) -> Result<ServiceStatus, ServiceError> {
        let _one_at_a_time = self.start_lock.lock().await;
        if let Ok(version) = self.api.version(PROBE_TIMEOUT.min(self.api.timeout)).await {
            return Ok(ServiceStatus::AlreadyRunning { version });
        }
        let url = self.api.display.clone();
        let host = match process::host_port(&self.url) {
            Some(h) if process::is_local(&self.url) => h,
            _ => return Err(ServiceError::NotLocal { url }),
        };
        let binary = self.config.binary.clone();
        let log = self.log_file();
        let path_var = std::env::var_os("PATH");
        let search = binary.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            process::prepare(&search, path_var, log.as_deref())
        })
        .await
        .ok()
        .flatten();
        let Some(prepared) = prepared else {
            let on_path = binary.parent().is_none_or(|p| p.as_os_str().is_empty());
            return Err(ServiceError::BinaryNotFound { binary, on_path });
        };
        let resolved = prepared.binary.clone();
        let spawned =
            process::spawn(prepared, &host, &self.env).map_err(|source| ServiceError::Spawn {
                binary: resolved.clone(),
                source,
            })?;
        tracing::info!(
            provider = %self.api.name,
            binary = %resolved.display(),
            pid = spawned.pid,
            ollama_host = %host,
            "started the Ollama server"
        );
        let pid = spawned.pid;
        let log = spawned.log.clone();
        let mut exit = spawned.exit.clone();
        *lock(&self.spawned) = Some(spawned);
        self.wait_ready(pid, log, &mut exit).await
    }

    /// Polls the started server until it answers, exits, or `start_timeout` passes.
    async fn wait_ready(
        &self,
        pid: Option<u32>,
        log: Option<PathBuf>,
        exit: &mut tokio::sync::watch::Receiver<Option<String>>,
    ) -> Result<ServiceStatus, ServiceError> {
        let started = Instant::now();
        let deadline = started + self.config.start_timeout;
        let mut pause = FIRST_POLL;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let probe = PROBE_TIMEOUT.min(left.max(MIN_PROBE));
            if let Ok(version) = self.api.version(probe).await {
                return Ok(ServiceStatus::Started { pid, version });
            }
            let exited = exit.borrow().clone();
            if let Some(status) = exited {
                // Another server may have won the port in the meantime.
                if let Ok(version) = self.api.version(PROBE_TIMEOUT).await {
                    *lock(&self.spawned) = None;
                    return Ok(ServiceStatus::AlreadyRunning { version });
                }
                *lock(&self.spawned) = None;
                let log_tail = match &log {
                    Some(p) => process::log_tail(p).await,
                    None => None,
                };
                return Err(ServiceError::NotReady {
                    url: self.api.display.clone(),
                    waited: started.elapsed(),
                    pid,
                    exit: Some(status),
                    log,
                    log_tail,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                self.stop().await;
                return Err(ServiceError::NotReady {
                    url: self.api.display.clone(),
                    waited: started.elapsed(),
                    pid,
                    exit: None,
                    log,
                    log_tail: None,
                });
            }
            let nap = pause.min(deadline - now);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                changed = exit.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(nap).await;
                    }
                }
            }
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Kills the server this manager started, if it still runs, and waits until
    /// it has been reaped. Returns how it ended, or `None` when there was none.
    /// A server this manager did not start is never touched.
    pub async fn stop(&self) -> Option<String> {
        let spawned = lock(&self.spawned).take();
        let mut spawned = spawned?;
        let ended = spawned.kill().await;
        tracing::info!(provider = %self.api.name, pid = spawned.pid, exit = ?ended, "stopped the Ollama server");
        ended
    }

    /// The `required_models` that `GET /api/tags` does not list (a name without
    /// a tag means `:latest`).
    pub async fn missing_models(&self) -> Result<Vec<String>, ServiceError> {
        let have: HashSet<String> = self
            .api
            .tags()
            .await?
            .iter()
            .map(|m| canonical_model(m))
            .collect();
        let mut seen = HashSet::new();
        Ok(self
            .config
            .required_models
            .iter()
            .filter(|m| !have.contains(&canonical_model(m)))
            .filter(|m| seen.insert(canonical_model(m)))
            .cloned()
            .collect())
    }

    /// Pulls every missing `required_models` entry when `auto_download = true`,
    /// calling `progress(model, line)` for each progress line; returns the
    /// models pulled. With `auto_download = false`, missing models are a
    /// [`ServiceError::ModelsMissing`] error. The server must be running (see
    /// [`ensure_running`](Self::ensure_running)).
    pub async fn ensure_models<F>(&self, mut progress: F) -> Result<Vec<String>, ServiceError>
    where
        F: FnMut(&str, &PullProgress) + Send,
    {
        let missing = self.missing_models().await?;
        if missing.is_empty() {
            return Ok(missing);
        }
        if !self.config.auto_download {
            return Err(ServiceError::ModelsMissing { models: missing });
        }
        for model in &missing {
            tracing::info!(provider = %self.api.name, model, "pulling a required model");
            self.api
                .pull(model, &mut |p: &PullProgress| progress(model, p))
                .await
                .map_err(|source| ServiceError::Pull {
                    model: model.clone(),
                    source,
                })?;
        }
        Ok(missing)
    }

    /// Downloads `model` through streamed `POST /api/pull`, calling `progress`
    /// for every line (`status`, and `digest`/`total`/`completed` while layers
    /// download). Succeeds on the final `success` line; an `{"error":…}` line in
    /// the stream, or a stream that ends before `success`, is an error.
    pub async fn pull<F>(&self, model: &str, mut progress: F) -> Result<(), ProviderError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        self.api.pull(model, &mut progress).await
    }
}

fn lock(m: &Mutex<Option<Spawned>>) -> MutexGuard<'_, Option<Spawned>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
