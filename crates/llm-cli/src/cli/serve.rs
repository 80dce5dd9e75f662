//! `llm serve` and `llm config check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Args;
use llm_router::config::Config;
use llm_router::{ExposeSecret, LlmClient};
use tokio::task::{JoinHandle, JoinSet};

use super::load_config;

/// Longest wait for the spend log's last rows at exit.
/// Kubernetes' termination grace in `deploy/kubernetes` counts it (an xtask
/// test checks the sum).
const SPEND_FLUSH_AT_EXIT: Duration = Duration::from_secs(5);
use crate::gateway::{config_hash, Gateway, GatewayHandle, Shutdown, StopSignals};

/// Virtual keys, limits, budgets and the spend log: built once at start and
/// handed to every gateway built on a reload, so counters, ledgers and
/// pending spend rows survive it (their own settings are read at start).
static TENANCY: std::sync::OnceLock<std::sync::Arc<crate::gateway::tenancy::Tenancy>> =
    std::sync::OnceLock::new();

/// How often the configuration file is checked with `watch_config = true`.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// `llm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default: `[gateway] addr`, else 127.0.0.1:8000).
    #[arg(long)]
    pub addr: Option<String>,
}

/// Runs `llm serve` until SIGINT or SIGTERM.
///
/// Providers are prepared at start-up, in the background (an Ollama instance
/// that is down is started and its required models pulled, with progress in
/// the log), and the health of every provider is refreshed as each one is
/// ready, so it takes requests from then on. Requests never prepare a
/// provider: a pull can take many minutes.
///
/// SIGTERM drains (readiness false, the listener open for `drain_delay`,
/// then `shutdown_grace` for requests in flight); SIGINT skips the drain
/// delay; a second SIGINT or SIGTERM stops at once, cutting what is still
/// in flight. SIGHUP (and, with `watch_config`, a change of the file) reloads
/// the configuration: a valid file is swapped in for new requests, an
/// invalid one is refused with its file:line error and the running
/// configuration stays.
pub(crate) async fn serve(config_path: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let path = Config::locate(config_path);
    // Taken before the file is read: a change made while starting is seen.
    let stamp = path.as_deref().and_then(file_stamp);
    let (config, hash) = match &path {
        Some(p) => {
            let bytes = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read configuration: {e}", p.display()))?;
            (parse(p, &bytes)?, config_hash(&bytes))
        }
        None => (load_config(None)?, config_hash(b"")),
    };
    let client = build_client(&config)?;
    if crate::gateway::tenancy::enabled(&config.gateway) {
        let tenancy = crate::gateway::tenancy::Tenancy::from_config(&config.gateway)
            .await
            .context("cannot set up virtual keys ([gateway.store])")?;
        let _ = TENANCY.set(tenancy);
    }
    // Installed before the address is printed: a script that signals as
    // soon as it reads it is heard (not killed by the default action).
    let mut signals = StopSignals::new();
    let mut hangup = Hangup::new();
    let addr = args.addr.unwrap_or_else(|| config.gateway.addr.clone());
    let handle = build_gateway(client.clone(), &config, &hash)?
        .bind(&addr)
        .await?;
    let local = handle.local_addr();
    // The address is the command's result: scripts (and `--addr 127.0.0.1:0`) read it.
    println!("listening on http://{local} (OpenAI base URL: http://{local}/v1)");
    let mut live = Live {
        path,
        stamp,
        hash,
        refused: None,
        config,
        preparing: tokio::spawn(prepare_providers(client)),
        handle,
    };
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal = loop {
        let watching = live.config.gateway.watch_config && live.path.is_some();
        tokio::select! {
            signal = signals.recv() => break signal,
            () = hangup.recv() => live.reload("SIGHUP"),
            _ = ticker.tick(), if watching => {
                if live.file_changed() {
                    live.reload("file changed");
                }
            }
        }
    };
    let Live {
        handle, preparing, ..
    } = live;
    preparing.abort();
    // Upstream and database connections opened by requests live on the
    // worker threads: kept running until the spend log is flushed.
    let lease = handle.worker_lease();
    let status = handle.status();
    // A second SIGINT or SIGTERM ends the drain or grace at once: requests
    // still in flight are cut (and counted) before the spend log's flush.
    let outcome = handle.stop_for_signals(signal, &mut signals).await;
    if let Some(tenancy) = TENANCY.get() {
        // Bounded: with the database down, waiting for it would keep the
        // process alive until the orchestrator kills it.
        let unwritten = tenancy.flush_within(SPEND_FLUSH_AT_EXIT).await;
        if unwritten > 0 {
            tracing::error!(
                rows = unwritten,
                "spend log: rows not written at exit (the store did not answer within {:?})",
                SPEND_FLUSH_AT_EXIT
            );
        }
    }
    drop(lease);
    match outcome {
        Shutdown::Graceful => Ok(ExitCode::SUCCESS),
        Shutdown::Forced => {
            match status.cut_requests() {
                0 => eprintln!("warning: connections were dropped at shutdown (see the log)"),
                n => eprintln!("warning: {n} in-flight request(s) were cut off at shutdown"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Parses configuration bytes read from `path` (errors name the file and line).
fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<Config> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
    Ok(Config::from_toml_str_with_env(
        text,
        Some(path.to_path_buf()),
        &|k| std::env::var(k).ok(),
    )?)
}

/// The client of a configuration; its providers are prepared in the
/// background ([`prepare_providers`]), never on the request path.
fn build_client(config: &Config) -> anyhow::Result<LlmClient> {
    LlmClient::builder()
        .config(config)
        .and_then(|b| b.prepare_providers(false).build())
        .context("cannot build the client")
}

/// The gateway of a configuration (at start and on every reload).
fn build_gateway(client: LlmClient, config: &Config, hash: &str) -> anyhow::Result<Gateway> {
    let gateway = Gateway::from_config(client, config)
        .cors_origins(&config.gateway.cors_origins)?
        .with_config_hash(hash);
    Ok(match TENANCY.get() {
        Some(tenancy) => gateway.tenancy(tenancy.clone()),
        None => gateway,
    })
}

/// The running gateway and the configuration it serves.
struct Live {
    /// The configuration file (`None`: built-in defaults, nothing to reload).
    path: Option<PathBuf>,
    /// Modification time and size of the file when last looked at.
    stamp: Option<(SystemTime, u64)>,
    /// Hash of the live configuration's bytes.
    hash: String,
    /// Hash of the last file refused (not reported again until it changes).
    refused: Option<String>,
    config: Config,
    /// Preparation of the live client's providers.
    preparing: JoinHandle<()>,
    handle: GatewayHandle,
}

impl Live {
    fn stamp_now(&self) -> Option<(SystemTime, u64)> {
        file_stamp(self.path.as_ref()?)
    }

    /// Whether the file's modification time or size moved since last seen.
    fn file_changed(&mut self) -> bool {
        let now = self.stamp_now();
        let changed = now != self.stamp;
        self.stamp = now;
        changed
    }

    /// Re-reads the file; a valid, different configuration replaces the
    /// live one for new requests, an invalid one is refused (logged with its
    /// file:line error; the live one stays).
    fn reload(&mut self, trigger: &'static str) {
        let Some(path) = self.path.clone() else {
            tracing::warn!(
                trigger,
                "no configuration file (built-in defaults): nothing to reload"
            );
            return;
        };
        self.stamp = self.stamp_now();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(
                    trigger,
                    file = %path.display(),
                    error = %e,
                    config = %self.hash,
                    "cannot read the configuration: the running one stays"
                );
                self.handle.reload_refused();
                return;
            }
        };
        let hash = config_hash(&bytes);
        if hash == self.hash {
            tracing::info!(trigger, config = %hash, "configuration unchanged");
            return;
        }
        let next = parse(&path, &bytes).and_then(|config| {
            let client = build_client(&config)?;
            let gateway = build_gateway(client.clone(), &config, &hash)?;
            Ok((config, client, gateway))
        });
        let (config, client, gateway) = match next {
            Ok(next) => next,
            Err(e) => {
                if self.refused.as_deref() != Some(hash.as_str()) || trigger == "SIGHUP" {
                    tracing::error!(
                        trigger,
                        refused = %hash,
                        config = %self.hash,
                        "configuration refused, the running one stays: {e:#}"
                    );
                    self.handle.reload_refused();
                }
                self.refused = Some(hash);
                return;
            }
        };
        if config.gateway.addr != self.config.gateway.addr {
            tracing::warn!(
                listening = %self.handle.local_addr(),
                "[gateway] addr changed: ignored until a restart"
            );
        }
        // Compared as threads, so `0` (one per core) and the core count agree.
        let workers = llm_gateway::worker_threads(config.gateway.workers);
        if workers != self.handle.workers() {
            tracing::warn!(
                running = self.handle.workers(),
                configured = workers,
                "[gateway] workers changed: ignored until a restart"
            );
        }
        // Read once at start (Debug redacts the URLs' credentials).
        let store_changed = format!("{:?}", config.gateway.store)
            != format!("{:?}", self.config.gateway.store)
            || config
                .gateway
                .master_key
                .as_ref()
                .map(|k| k.expose_secret().to_string())
                != self
                    .config
                    .gateway
                    .master_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_string());
        if store_changed {
            tracing::warn!("[gateway.store] or master_key changed: ignored until a restart");
        }
        self.handle.reload(gateway);
        self.preparing.abort();
        self.preparing = tokio::spawn(prepare_providers(client));
        tracing::info!(trigger, from = %self.hash, to = %hash, "configuration live");
        self.hash = hash;
        self.refused = None;
        self.config = config;
    }
}

/// Modification time and size of a file.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// SIGHUP, as a stream of wake-ups (never fires where there is no SIGHUP).
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "SIGHUP reloads are off"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal {
            if s.recv().await.is_some() {
                return;
            }
        }
        futures::future::pending::<()>().await;
    }
}

/// Prepares every provider concurrently; after each one (or each batch that
/// ends together) the health of all providers is refreshed.
async fn prepare_providers(client: LlmClient) {
    let mut preparing = JoinSet::new();
    for provider in client.providers() {
        preparing.spawn(async move {
            let result = provider.prepare().await;
            (provider.name().to_string(), result)
        });
    }
    let report = |done: Result<(String, Result<(), llm_router::ProviderError>), _>| match done {
        Ok((name, Ok(()))) => tracing::debug!(provider = %name, "provider prepared"),
        Ok((name, Err(e))) => {
            tracing::warn!(provider = %name, error = %e, "cannot prepare the provider");
        }
        Err(e) => tracing::warn!(error = %e, "a provider preparation ended abnormally"),
    };
    while let Some(done) = preparing.join_next().await {
        report(done);
        while let Some(done) = preparing.try_join_next() {
            report(done);
        }
        client.refresh_health().await;
    }
}

/// Runs `llm config check`: `ok …` on stdout, or the located error (exit 1).
pub(crate) fn check(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let located = Config::locate(path);
    let config = Config::load(path)?;
    // What `llm serve` checks beyond the file's own rules.
    crate::gateway::check_cors_origins(&config.gateway.cors_origins).with_context(|| {
        format!(
            "{}: [gateway] cors_origins",
            Config::locate(path)
                .map_or_else(|| "configuration".into(), |p| p.display().to_string())
        )
    })?;
    let enabled: Vec<&str> = config
        .providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.name.as_str())
        .collect();
    let source = located.map_or_else(
        || "built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    println!(
        "ok: {source} ({} provider(s), enabled: {})",
        config.providers.len(),
        if enabled.is_empty() {
            "none".to_string()
        } else {
            enabled.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
