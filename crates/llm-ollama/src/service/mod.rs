//! The service manager: start a local Ollama server when it is down, keep it
//! running, and pull the models the configuration requires.
//!
//! [`OllamaService::ensure_running`] probes `GET /api/version`. When nothing
//! answers and `base_url` names this machine, it starts `<binary> serve` (the
//! `binary` key, default `ollama` on `PATH`) with `OLLAMA_HOST` set to the
//! `host:port` of `base_url`, then polls the server with exponential backoff
//! (50 ms doubling to 1 s) until it answers or `start_timeout` (default 30 s)
//! passes. A `base_url` on an unspecified address (`0.0.0.0`, `[::]`) is
//! served on the loopback address of its family (`127.0.0.1`, `[::1]`), so a
//! server started here is not reachable from other machines unless
//! [`expose`](OllamaService::expose) says so.
//!
//! # One server per instance
//!
//! Each [`OllamaService`] owns at most one server process. The start runs in a
//! task of the manager: every concurrent caller waits for that one start, and
//! a caller that gives up (its future is dropped) does not stop it, so the next
//! call finds the same server instead of starting another. While the server
//! started here runs it is reused; when it exits by itself it is started again
//! after a pause. A start that fails is not tried again for a while: the first
//! pause is 2 s, doubling with each failure in a row up to 5 minutes
//! ([`restart_backoff`](OllamaService::restart_backoff)); calls in that window
//! return the last error at once (unless a server has appeared meanwhile).
//! [`ServiceError::to_provider_error`] turns these errors into provider
//! errors that count against the instance's health.
//!
//! # Lifetime of a started server
//!
//! A server started here is **left running as a service**: dropping the
//! [`OllamaService`] (or exiting the program) does not stop it, and it runs in
//! its own process group so a Ctrl-C in the terminal does not reach it. While
//! this program runs, a background task waits on the process, so it never
//! lingers as a zombie if it exits; after this program exits, the operating
//! system re-parents it. [`OllamaService::stop`] stops a server this instance
//! started (SIGTERM to its process group, then SIGKILL to the group after 5 s).
//! A server that does not become ready within `start_timeout` is stopped the
//! same way before the error returns.
//!
//! # Server log
//!
//! The server's output is appended to `ollama-<port>.log` in
//! `$XDG_STATE_HOME/llm-router/ollama` (default
//! `~/.local/state/llm-router/ollama`; see [`log_dir`](OllamaService::log_dir)).
//! The directory is made accessible to its owner only, and the log is opened
//! without following a symbolic link. When a start fails, the end of what it
//! wrote is logged (`tracing`, warning level) and kept in
//! [`ServiceError::NotReady`]; the error's message stays short.

mod process;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use llm_core::http::reqwest::Url;
use llm_core::{ConfigError, ProviderError, ProviderSpec};
use tokio::sync::{oneshot, watch};
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
/// Default pause after the first failed start (or exit); it doubles with each
/// failure in a row up to [`DEFAULT_BACKOFF_MAX`].
pub const DEFAULT_BACKOFF_FIRST: Duration = Duration::from_secs(2);
/// Default longest pause between two starts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A server that ran at least this long before it exited counts as a fresh
/// failure (the pause before its restart starts again from the first one).
const STABLE_UPTIME: Duration = Duration::from_secs(60);

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
#[derive(Debug, Clone, thiserror::Error)]
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
        source: Arc<std::io::Error>,
    },
    /// A started server did not answer in time (or exited first). The message
    /// names the log; the end of the log is in `log_tail` (and in the warning
    /// logged when it happened), not in the message.
    #[error("{}", not_ready_message(url, *waited, *pid, exit.as_deref(), log.as_ref()))]
    NotReady {
        /// `base_url`.
        url: String,
        /// How long it was waited for.
        waited: Duration,
        /// Process id of the started server (stopped and reaped by now).
        pid: Option<u32>,
        /// How it exited, when it exited by itself before answering.
        exit: Option<String>,
        /// Its log file.
        log: Option<PathBuf>,
        /// The end (at most 2,000 bytes) of what this start wrote to the log.
        log_tail: Option<String>,
    },
    /// The server started here exited after it had answered; it is started
    /// again after a pause.
    #[error(
        "the Ollama server started here{} exited ({exit}); it is started again in {:.1} s",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        restart_in.as_secs_f64()
    )]
    Exited {
        /// Its process id.
        pid: Option<u32>,
        /// How it exited.
        exit: String,
        /// The pause before it is started again.
        restart_in: Duration,
    },
    /// The server started here runs but does not answer.
    #[error("the Ollama server started here{} runs but does not answer at {url}: {source}",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Unresponsive {
        /// `base_url`.
        url: String,
        /// Its process id.
        pid: Option<u32>,
        /// The failed probe.
        #[source]
        source: ProviderError,
    },
    /// The start was cancelled by [`OllamaService::stop`] (or the program is
    /// shutting down).
    #[error("the start of the Ollama server was cancelled")]
    Stopped {
        /// How the server being started ended, when one had been started.
        exit: Option<String>,
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

impl ServiceError {
    /// The error as a [`ProviderError`] of instance `provider`, with a short
    /// message (no log path or log text) fit for API callers.
    ///
    /// Failures to get a server running (not installed, cannot start, exited,
    /// no answer in time) are connection failures or timeouts: they count
    /// against the instance's health. Missing required models are a `404`
    /// with code `model_not_found`, as Ollama answers for a missing model; API
    /// and pull failures keep their own kind.
    pub fn to_provider_error(&self, provider: &str) -> ProviderError {
        match self {
            ServiceError::BinaryNotFound { .. } => {
                ProviderError::connect(provider, self.to_string()).with_code("ollama_not_installed")
            }
            ServiceError::NotLocal { .. } | ServiceError::Spawn { .. } => {
                ProviderError::connect(provider, self.to_string()).with_code("ollama_not_started")
            }
            ServiceError::NotReady {
                waited, exit: None, ..
            } => ProviderError::timeout(
                provider,
                format!(
                    "the started Ollama server did not answer within {:.1} s (`start_timeout`)",
                    waited.as_secs_f64()
                ),
            )
            .with_code("ollama_not_started"),
            ServiceError::NotReady {
                exit: Some(exit), ..
            } => ProviderError::connect(
                provider,
                format!("the started Ollama server exited ({exit}) before it answered"),
            )
            .with_code("ollama_not_started"),
            ServiceError::Exited { .. } | ServiceError::Stopped { .. } => {
                ProviderError::connect(provider, self.to_string()).with_code("ollama_not_running")
            }
            ServiceError::Unresponsive { pid, source, .. } => {
                let mut e = source.clone();
                e.message = format!(
                    "the Ollama server started here{} runs but does not answer: {}",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    source.message
                );
                e
            }
            ServiceError::ModelsMissing { .. } => {
                ProviderError::http(provider, 404, self.to_string()).with_code("model_not_found")
            }
            ServiceError::Pull { model, source } => {
                let mut e = source.clone();
                e.message = format!("pulling `{model}` failed: {}", source.message);
                e
            }
            ServiceError::Api(e) => e.clone(),
        }
    }
}

fn not_ready_message(
    url: &str,
    waited: Duration,
    pid: Option<u32>,
    exit: Option<&str>,
    log: Option<&PathBuf>,
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
    m
}

/// Starts and provisions the Ollama server of one provider instance.
///
/// Build it from the instance's configuration section with
/// [`from_spec`](Self::from_spec) (or from an [`OllamaProvider`](crate::OllamaProvider)).
/// See the [module documentation](self) for what happens to a started server.
pub struct OllamaService {
    inner: Arc<Inner>,
}

/// What the manager's tasks share.
struct Inner {
    config: OllamaConfig,
    url: Url,
    api: Api,
    settings: Mutex<Settings>,
    core: Mutex<Core>,
}

/// Settings of the builder methods.
#[derive(Clone)]
struct Settings {
    env: Vec<(OsString, OsString)>,
    log_dir: Option<PathBuf>,
    expose: bool,
    backoff_first: Duration,
    backoff_max: Duration,
}

/// The state machine: one owner of the server process.
struct Core {
    phase: Phase,
    /// Changes whenever a start is launched or the server is stopped, so a
    /// task acting on an older state does nothing.
    generation: u64,
    /// Failed starts (and early exits) in a row.
    failures: u32,
    /// No start before this instant.
    retry_at: Option<Instant>,
    /// What the last failure was, returned while `retry_at` is ahead.
    last_error: Option<ServiceError>,
    /// A server started here ran: start it again when it exits or fails.
    supervise: bool,
}

type StartResult = Result<ServiceStatus, ServiceError>;

enum Phase {
    /// No server of ours.
    Idle,
    /// A task is starting a server; callers wait for `done`.
    Starting {
        done: watch::Receiver<Option<StartResult>>,
        cancel: Option<oneshot::Sender<()>>,
    },
    /// Our server answered and has not been seen to exit.
    Running { child: Spawned, since: Instant },
}

/// How a start ended well.
enum Started {
    /// Another server answered; nothing was started.
    External(Option<String>),
    /// Our server answers.
    Ours(Spawned, Option<String>),
}

/// How the wait for a started server ended well.
enum Ready {
    /// It answers, with this version.
    Answered(Option<String>),
    /// It exited, and another server answers at the address.
    Replaced,
}

impl fmt::Debug for OllamaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = self.inner.settings();
        f.debug_struct("OllamaService")
            .field("name", &self.inner.api.name)
            .field("config", &self.inner.config)
            .field(
                "env",
                &settings.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
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
            inner: Arc::new(Inner {
                config,
                url,
                api,
                settings: Mutex::new(Settings {
                    env: Vec::new(),
                    log_dir: None,
                    expose: false,
                    backoff_first: DEFAULT_BACKOFF_FIRST,
                    backoff_max: DEFAULT_BACKOFF_MAX,
                }),
                core: Mutex::new(Core {
                    phase: Phase::Idle,
                    generation: 0,
                    failures: 0,
                    retry_at: None,
                    last_error: None,
                    supervise: false,
                }),
            }),
        })
    }

    /// Adds an environment variable for a server this manager starts (e.g.
    /// `OLLAMA_MODELS`). `OLLAMA_HOST` is always set from `base_url`.
    pub fn env(self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.inner
            .settings_mut()
            .env
            .push((key.into(), value.into()));
        self
    }

    /// Sets the directory of the server log (default
    /// `$XDG_STATE_HOME/llm-router/ollama`, else `~/.local/state/llm-router/ollama`).
    /// It is created if needed and made accessible to its owner only.
    pub fn log_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.inner.settings_mut().log_dir = Some(dir.into());
        self
    }

    /// With `true`, a `base_url` on an unspecified address (`0.0.0.0`, `[::]`)
    /// starts the server on every interface, reachable (without
    /// authentication) from other machines. Default `false`: loopback only.
    pub fn expose(self, on: bool) -> Self {
        self.inner.settings_mut().expose = on;
        self
    }

    /// Sets the pause after a failed start or an exit of the server (`first`,
    /// default 2 s), doubled with each failure in a row up to `max` (default 5
    /// minutes).
    pub fn restart_backoff(self, first: Duration, max: Duration) -> Self {
        {
            let mut s = self.inner.settings_mut();
            s.backoff_first = first;
            s.backoff_max = max.max(first);
        }
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &OllamaConfig {
        &self.inner.config
    }

    /// Process id of the server this manager started, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let core = self.inner.core();
        match &core.phase {
            Phase::Running { child, .. } if child.exited().is_none() => child.pid,
            _ => None,
        }
    }

    /// Where the output of a server started by this manager goes:
    /// `ollama-<port>.log` in the [log directory](Self::log_dir).
    pub fn log_file(&self) -> Option<PathBuf> {
        self.inner.log_file()
    }

    /// Whether the server answers `GET /api/version` (within 2 s).
    pub async fn is_running(&self) -> bool {
        self.inner.api.probe().await
    }

    /// Makes sure the server answers, starting it when it is down.
    ///
    /// Concurrent calls share one start; a call that is cancelled does not
    /// cancel the start. After a failed start, calls within the pause (see the
    /// [module documentation](self)) return that error at once.
    ///
    /// Errors: [`ServiceError::BinaryNotFound`] (with install instructions),
    /// [`ServiceError::NotLocal`], [`ServiceError::Spawn`],
    /// [`ServiceError::NotReady`] when the started server does not answer within
    /// `start_timeout` (it is then stopped) or exits first,
    /// [`ServiceError::Exited`] while a server that exited waits to be started
    /// again, [`ServiceError::Unresponsive`] when the server started here runs
    /// but does not answer.
    pub async fn ensure_running(&self) -> Result<ServiceStatus, ServiceError> {
        enum Step {
            Wait(watch::Receiver<Option<StartResult>>),
            Probe(Option<u32>),
            Backoff(ServiceError),
        }
        let step = {
            let mut core = self.inner.core();
            let exited = match &core.phase {
                Phase::Running { child, since } => child.exited().map(|e| (e, child.pid, *since)),
                _ => None,
            };
            if let Some((exit, pid, since)) = exited {
                record_exit(&self.inner, &mut core, pid, exit, since);
            }
            match &core.phase {
                Phase::Starting { done, .. } => Step::Wait(done.clone()),
                Phase::Running { child, .. } => Step::Probe(child.pid),
                Phase::Idle => match (core.retry_at, core.last_error.clone()) {
                    (Some(at), Some(e)) if Instant::now() < at => Step::Backoff(e),
                    _ => Step::Wait(launch(&self.inner, &mut core)),
                },
            }
        };
        let probe_timeout = PROBE_TIMEOUT.min(self.inner.api.timeout);
        match step {
            Step::Wait(mut done) => {
                let result = match done.wait_for(Option::is_some).await {
                    Ok(r) => r.clone(),
                    Err(_) => None,
                };
                match result {
                    Some(r) => r,
                    None => {
                        // The start task is gone without an answer (the
                        // runtime is shutting down): forget it.
                        let mut core = self.inner.core();
                        if matches!(&core.phase, Phase::Starting { done: d, .. } if d.same_channel(&done))
                        {
                            core.phase = Phase::Idle;
                        }
                        Err(ServiceError::Stopped { exit: None })
                    }
                }
            }
            Step::Probe(pid) => match self.inner.api.version(probe_timeout).await {
                Ok(version) => Ok(ServiceStatus::AlreadyRunning { version }),
                Err(source) => Err(ServiceError::Unresponsive {
                    url: self.inner.api.display.clone(),
                    pid,
                    source,
                }),
            },
            Step::Backoff(error) => match self.inner.api.version(probe_timeout).await {
                // A server appeared (started by someone else) in the meantime.
                Ok(version) => Ok(ServiceStatus::AlreadyRunning { version }),
                Err(_) => {
                    tracing::debug!(provider = %self.inner.api.name, error = %error,
                        "not starting the Ollama server yet after the last failure");
                    Err(error)
                }
            },
        }
    }

    /// Stops the server this manager started, if it still runs (SIGTERM to its
    /// process group, then SIGKILL to the group), or cancels a start under way,
    /// and waits until it has been reaped. Returns how it ended, or `None` when
    /// there was none. A server this manager did not start is never touched.
    /// Afterwards the server is not started again until the next
    /// [`ensure_running`](Self::ensure_running).
    pub async fn stop(&self) -> Option<String> {
        enum Stopping {
            Child(Spawned),
            Start(watch::Receiver<Option<StartResult>>),
            Nothing,
        }
        let stopping = {
            let mut core = self.inner.core();
            core.generation += 1;
            core.supervise = false;
            core.failures = 0;
            core.retry_at = None;
            core.last_error = None;
            match std::mem::replace(&mut core.phase, Phase::Idle) {
                Phase::Running { child, .. } => Stopping::Child(child),
                Phase::Starting { done, cancel } => {
                    if let Some(cancel) = cancel {
                        let _ = cancel.send(());
                    }
                    Stopping::Start(done)
                }
                Phase::Idle => Stopping::Nothing,
            }
        };
        match stopping {
            Stopping::Child(mut child) => {
                if let Some(exit) = child.exited() {
                    return Some(exit);
                }
                let ended = child.stop().await;
                tracing::info!(provider = %self.inner.api.name, pid = child.pid, exit = ?ended,
                    "stopped the Ollama server");
                ended
            }
            Stopping::Start(mut done) => {
                let result = done.wait_for(Option::is_some).await.ok()?.clone();
                match result {
                    Some(Err(ServiceError::Stopped { exit })) => exit,
                    _ => None,
                }
            }
            Stopping::Nothing => None,
        }
    }

    /// The `required_models` that `GET /api/tags` does not list (a name without
    /// a tag means `:latest`).
    pub async fn missing_models(&self) -> Result<Vec<String>, ServiceError> {
        let have: HashSet<String> = self
            .inner
            .api
            .tags()
            .await?
            .iter()
            .map(|m| canonical_model(m))
            .collect();
        let mut seen = HashSet::new();
        Ok(self
            .inner
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
        if !self.inner.config.auto_download {
            return Err(ServiceError::ModelsMissing { models: missing });
        }
        for model in &missing {
            tracing::info!(provider = %self.inner.api.name, model, "pulling a required model");
            self.inner
                .api
                .pull(model, &mut |p: &PullProgress| progress(model, p))
                .await
                .map_err(|source| ServiceError::Pull {
                    model: model.clone(),
                    source,
                })?;
        }
        Ok(missing)
    }

    /// Gets the instance ready: [`ensure_running`](Self::ensure_running), then,
    /// with `auto_download = true`, [`ensure_models`](Self::ensure_models) with
    /// progress logged (`tracing`, info level: each new status, and each tenth
    /// of a layer's download).
    pub async fn prepare(&self) -> Result<(), ServiceError> {
        self.ensure_running().await?;
        if !self.inner.config.auto_download {
            return Ok(());
        }
        let name = self.inner.api.name.clone();
        let mut last: Option<(String, Option<u64>)> = None;
        self.ensure_models(move |model, p| {
            let tenth = p.fraction().map(|f| (f * 10.0).floor() as u64);
            let shown = (p.status.clone(), tenth);
            if last.as_ref() != Some(&shown) {
                tracing::info!(provider = %name, model, status = %p.status,
                    percent = tenth.map(|t| t * 10), "pulling");
                last = Some(shown);
            }
        })
        .await?;
        Ok(())
    }

    /// Downloads `model` through streamed `POST /api/pull`, calling `progress`
    /// for every line (`status`, and `digest`/`total`/`completed` while layers
    /// download). Succeeds on the final `success` line; an `{"error":…}` line in
    /// the stream, or a stream that ends before `success`, is an error.
    pub async fn pull<F>(&self, model: &str, mut progress: F) -> Result<(), ProviderError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        self.inner.api.pull(model, &mut progress).await
    }
}

impl Inner {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings_mut(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> Settings {
        self.settings_mut().clone()
    }

    fn log_file(&self) -> Option<PathBuf> {
        let dir = self
            .settings_mut()
            .log_dir
            .clone()
            .unwrap_or_else(process::default_log_dir);
        self.url
            .port_or_known_default()
            .map(|port| process::log_path(&dir, port))
    }

    /// The pause after `failures` failures in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let s = self.settings_mut();
        let doublings = failures.saturating_sub(1).min(20);
        s.backoff_first
            .saturating_mul(1u32 << doublings)
            .min(s.backoff_max)
    }

    /// One start: probe, and when nothing answers, find the executable, start
    /// it and wait until it answers. `cancel` stops the started server.
    async fn start(&self, cancel: oneshot::Receiver<()>) -> Result<Started, ServiceError> {
        let probe_timeout = PROBE_TIMEOUT.min(self.api.timeout);
        if let Ok(version) = self.api.version(probe_timeout).await {
            return Ok(Started::External(version));
        }
        let settings = self.settings();
        let url = self.api.display.clone();
        let host = match process::listen_host(&self.url, settings.expose) {
            Some(h) if process::is_local(&self.url) => h,
            _ => return Err(ServiceError::NotLocal { url }),
        };
        let binary = self.config.binary.clone();
        let log = self.log_file();
        let path_var = std::env::var_os("PATH");
        let search = binary.clone();
        let listen = host.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            process::prepare(&search, path_var, log.as_deref(), &listen)
        })
        .await
        .ok()
        .flatten();
        let Some(prepared) = prepared else {
            let on_path = binary.parent().is_none_or(|p| p.as_os_str().is_empty());
            return Err(ServiceError::BinaryNotFound { binary, on_path });
        };
        let resolved = prepared.binary.clone();
        let mut child = process::spawn(prepared, &host, &settings.env).map_err(|source| {
            ServiceError::Spawn {
                binary: resolved.clone(),
                source: Arc::new(source),
            }
        })?;
        tracing::info!(
            provider = %self.api.name,
            binary = %resolved.display(),
            pid = child.pid,
            ollama_host = %host,
            log = ?child.log,
            "started the Ollama server"
        );
        let cancelled = async move {
            if cancel.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let ready = tokio::select! {
            ready = self.wait_ready(&mut child) => ready,
            () = cancelled => {
                let exit = child.stop().await;
                return Err(ServiceError::Stopped { exit });
            }
        };
        match ready {
            Ok(Ready::Answered(version)) => Ok(Started::Ours(child, version)),
            Ok(Ready::Replaced) => {
                let version = self.api.version(probe_timeout).await.ok().flatten();
                Ok(Started::External(version))
            }
            Err(e) => Err(e),
        }
    }

    /// Polls the started server until it answers, it exits (while another
    /// server answers, or not), or `start_timeout` passes (it is then stopped).
    async fn wait_ready(&self, child: &mut Spawned) -> Result<Ready, ServiceError> {
        let started = Instant::now();
        let deadline = started + self.config.start_timeout;
        let mut exit = child.exit.clone();
        let mut pause = FIRST_POLL;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let probe = PROBE_TIMEOUT.min(left.max(MIN_PROBE));
            if let Ok(version) = self.api.version(probe).await {
                if child.exited().is_none() {
                    return Ok(Ready::Answered(version));
                }
            }
            let exited = exit.borrow().clone();
            if let Some(status) = exited {
                if self.api.version(PROBE_TIMEOUT).await.is_ok() {
                    return Ok(Ready::Replaced);
                }
                return Err(self.not_ready(child, started, Some(status)).await);
            }
            let now = Instant::now();
            if now >= deadline {
                child.stop().await;
                return Err(self.not_ready(child, started, None).await);
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

    /// The error of a start that did not answer; the end of its log is logged.
    async fn not_ready(
        &self,
        child: &Spawned,
        started: Instant,
        exit: Option<String>,
    ) -> ServiceError {
        let log_tail = match &child.log {
            Some(p) => process::log_tail(p, child.log_offset).await,
            None => None,
        };
        let error = ServiceError::NotReady {
            url: self.api.display.clone(),
            waited: started.elapsed(),
            pid: child.pid,
            exit,
            log: child.log.clone(),
            log_tail: log_tail.clone(),
        };
        tracing::warn!(
            provider = %self.api.name,
            error = %error,
            log_tail = log_tail.as_deref().unwrap_or(""),
            "the Ollama server did not start"
        );
        error
    }
}

/// Starts a start task and returns what its callers wait on. Call with the
/// phase `Idle`.
fn launch(inner: &Arc<Inner>, core: &mut Core) -> watch::Receiver<Option<StartResult>> {
    core.generation += 1;
    let generation = core.generation;
    let (done_tx, done_rx) = watch::channel(None);
    let (cancel_tx, cancel_rx) = oneshot::channel();
    core.phase = Phase::Starting {
        done: done_rx.clone(),
        cancel: Some(cancel_tx),
    };
    tokio::spawn(start_task(inner.clone(), generation, done_tx, cancel_rx));
    done_rx
}

/// Runs one start to its end (whether or not anyone still waits) and records
/// the outcome.
async fn start_task(
    inner: Arc<Inner>,
    generation: u64,
    done: watch::Sender<Option<StartResult>>,
    cancel: oneshot::Receiver<()>,
) {
    let outcome = inner.start(cancel).await;
    let mut orphan = None;
    let result = {
        let mut core = inner.core();
        if core.generation != generation {
            // Stopped while it started: whatever was started goes.
            match outcome {
                Ok(Started::Ours(child, _)) => {
                    orphan = Some(child);
                    Err(ServiceError::Stopped { exit: None })
                }
                Ok(Started::External(version)) => Ok(ServiceStatus::AlreadyRunning { version }),
                Err(e) => Err(e),
            }
        } else {
            match outcome {
                Ok(Started::External(version)) => {
                    core.phase = Phase::Idle;
                    core.failures = 0;
                    core.retry_at = None;
                    core.last_error = None;
                    core.supervise = false;
                    Ok(ServiceStatus::AlreadyRunning { version })
                }
                Ok(Started::Ours(child, version)) => {
                    let pid = child.pid;
                    tokio::spawn(monitor(
                        Arc::downgrade(&inner),
                        generation,
                        child.exit.clone(),
                    ));
                    core.phase = Phase::Running {
                        child,
                        since: Instant::now(),
                    };
                    core.retry_at = None;
                    core.last_error = None;
                    core.supervise = true;
                    Ok(ServiceStatus::Started { pid, version })
                }
                Err(e) => {
                    core.phase = Phase::Idle;
                    core.failures = core.failures.saturating_add(1);
                    let pause = inner.backoff(core.failures);
                    core.retry_at = Some(Instant::now() + pause);
                    core.last_error = Some(e.clone());
                    tracing::warn!(provider = %inner.api.name, error = %e,
                        retry_in_secs = pause.as_secs_f64(), "cannot start the Ollama server");
                    if core.supervise {
                        schedule_restart(Arc::downgrade(&inner), core.generation, pause);
                    }
                    Err(e)
                }
            }
        }
    };
    if let Some(mut child) = orphan {
        child.stop().await;
    }
    let _ = done.send(Some(result));
}

/// Waits for the exit of the server of `generation` and records it.
async fn monitor(inner: Weak<Inner>, generation: u64, mut exit: watch::Receiver<Option<String>>) {
    let Ok(ended) = exit.wait_for(Option::is_some).await.map(|e| e.clone()) else {
        return;
    };
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let mut core = inner.core();
    if core.generation != generation {
        return;
    }
    let running = match &core.phase {
        Phase::Running { child, since } => Some((child.pid, *since)),
        _ => None,
    };
    if let (Some((pid, since)), Some(ended)) = (running, ended) {
        record_exit(&inner, &mut core, pid, ended, since);
    }
}

/// Records that our running server exited by itself and plans its restart.
fn record_exit(
    inner: &Arc<Inner>,
    core: &mut Core,
    pid: Option<u32>,
    exit: String,
    since: Instant,
) {
    core.phase = Phase::Idle;
    if since.elapsed() >= STABLE_UPTIME {
        core.failures = 0;
    }
    core.failures = core.failures.saturating_add(1);
    let pause = inner.backoff(core.failures);
    core.retry_at = Some(Instant::now() + pause);
    let error = ServiceError::Exited {
        pid,
        exit,
        restart_in: pause,
    };
    tracing::warn!(provider = %inner.api.name, error = %error, "the Ollama server exited");
    core.last_error = Some(error);
    if core.supervise {
        schedule_restart(Arc::downgrade(inner), core.generation, pause);
    }
}

/// Starts the server again after `pause`, unless something happened meanwhile
/// (a start, a stop) or the manager is gone.
fn schedule_restart(inner: Weak<Inner>, generation: u64, pause: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut core = inner.core();
        if core.generation == generation && core.supervise && matches!(core.phase, Phase::Idle) {
            tracing::info!(provider = %inner.api.name, "starting the Ollama server again");
            launch(&inner, &mut core);
        }
    });
}
