//! What outlives one configuration of a running gateway: readiness, the
//! drain, requests in flight, what a shutdown cut, and which configuration
//! (hash) is live. Every router a gateway serves — the first one and each
//! one a reload swaps in — shares one [`Lifecycle`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Hex digits of a configuration hash.
const HASH_HEX_CHARS: usize = 12;

/// The short hash naming a configuration: the first 12 hex digits of the
/// SHA-256 of the file's bytes (what `llm_gateway_config_info{hash}`, the
/// reload log lines and `x-llm-config` show).
pub fn config_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(HASH_HEX_CHARS);
    for b in digest.iter().take(HASH_HEX_CHARS / 2) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Timings of the shutdown, from the live configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timings {
    /// After SIGTERM, how long the listener keeps accepting.
    pub(crate) drain_delay: Duration,
    /// How long in-flight requests get once the listener is closed.
    pub(crate) shutdown_grace: Duration,
}

/// Shared state of a running gateway.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    draining: AtomicBool,
    stopped: AtomicBool,
    inflight: AtomicU64,
    cut_requests: AtomicU64,
    cut_connections: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_refused: AtomicU64,
    config: Mutex<Option<String>>,
    timings: Mutex<Timings>,
}

impl Lifecycle {
    pub(crate) fn new(timings: Timings) -> Self {
        Self {
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            inflight: AtomicU64::new(0),
            cut_requests: AtomicU64::new(0),
            cut_connections: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            config: Mutex::new(None),
            timings: Mutex::new(timings),
        }
    }

    /// Ready: not draining and the listener not closed.
    pub(crate) fn ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub(crate) fn stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    pub(crate) fn timings(&self) -> Timings {
        *self.timings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_timings(&self, t: Timings) {
        *self.timings.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    pub(crate) fn config_hash(&self) -> Option<String> {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_config_hash(&self, hash: Option<String>) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = hash;
    }

    pub(crate) fn reloaded(&self) {
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reload_refused(&self) {
        self.reloads_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard is dropped (when its
    /// response body has been sent, or abandoned).
    pub(crate) fn request(self: &std::sync::Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.clone())
    }

    pub(crate) fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Acquire)
    }

    /// Records what a shutdown cut at the end of the grace period.
    pub(crate) fn cut(&self, connections: u64, requests: u64) {
        self.cut_connections
            .fetch_add(connections, Ordering::Relaxed);
        self.cut_requests.fetch_add(requests, Ordering::Relaxed);
    }

    /// The gateway's own series in the Prometheus text format.
    pub(crate) fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let mut series = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        if let Some(hash) = self.config_hash() {
            series(
                "llm_gateway_config_info",
                "gauge",
                "The configuration in use: the short SHA-256 of its file",
                &[(format!("{{hash=\"{hash}\"}}"), 1)],
            );
        }
        series(
            "llm_gateway_draining",
            "gauge",
            "1 while the gateway drains (readiness false), else 0",
            &[(String::new(), u64::from(self.draining()))],
        );
        series(
            "llm_gateway_inflight_requests",
            "gauge",
            "Requests whose answer is not fully sent yet",
            &[(String::new(), self.inflight())],
        );
        series(
            "llm_gateway_config_reloads_total",
            "counter",
            "Configuration reloads, applied or refused (invalid file)",
            &[
                (
                    "{result=\"applied\"}".to_string(),
                    self.reloads_ok.load(Ordering::Relaxed),
                ),
                (
                    "{result=\"refused\"}".to_string(),
                    self.reloads_refused.load(Ordering::Relaxed),
                ),
            ],
        );
        series(
            "llm_gateway_shutdown_cut_requests_total",
            "counter",
            "Requests still running when the shutdown grace ended (cut)",
            &[(String::new(), self.cut_requests.load(Ordering::Relaxed))],
        );
        series(
            "llm_gateway_shutdown_cut_connections_total",
            "counter",
            "Connections still open when the shutdown grace ended (dropped)",
            &[(String::new(), self.cut_connections.load(Ordering::Relaxed))],
        );
        out
    }
}

/// What a running (or stopped) gateway says about itself: readiness,
/// requests in flight, the live configuration and what its shutdown cut.
/// Cheap to clone; it outlives the [`GatewayHandle`](crate::GatewayHandle).
#[derive(Debug, Clone)]
pub struct GatewayStatus(pub(crate) std::sync::Arc<Lifecycle>);

impl GatewayStatus {
    /// What `/health/ready` says: not draining and the listener open.
    pub fn is_ready(&self) -> bool {
        self.0.ready()
    }

    /// Requests whose answer is not fully sent yet.
    pub fn inflight_requests(&self) -> u64 {
        self.0.inflight()
    }

    /// The short hash of the live configuration, if one was named.
    pub fn config_hash(&self) -> Option<String> {
        self.0.config_hash()
    }

    /// Requests still running when a shutdown's grace ended (cut).
    pub fn cut_requests(&self) -> u64 {
        self.0.cut_requests.load(Ordering::Relaxed)
    }

    /// Connections still open when a shutdown's grace ended (dropped).
    pub fn cut_connections(&self) -> u64 {
        self.0.cut_connections.load(Ordering::Relaxed)
    }

    /// Configuration reloads applied and refused.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.0.reloads_ok.load(Ordering::Relaxed),
            self.0.reloads_refused.load(Ordering::Relaxed),
        )
    }

    /// The gateway's own series (`llm_gateway_config_info`, …) in the
    /// Prometheus text format, as `/metrics` appends them.
    pub fn prometheus_text(&self) -> String {
        self.0.prometheus_text()
    }
}

/// One request in flight; see [`Lifecycle::request`].
#[derive(Debug)]
pub(crate) struct InflightGuard(std::sync::Arc<Lifecycle>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_short_stable_hex() {
        let h = config_hash(b"[gateway]\n");
        assert_eq!(h.len(), HASH_HEX_CHARS);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, config_hash(b"[gateway]\n"));
        assert_ne!(h, config_hash(b"[gateway]\n\n"));
        // SHA-256("") starts with e3b0c44298fc.
        assert_eq!(config_hash(b""), "e3b0c44298fc");
    }

    #[test]
    fn exposition_names_the_live_configuration() {
        let l = std::sync::Arc::new(Lifecycle::new(Timings {
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::ZERO,
        }));
        assert!(!l.prometheus_text().contains("llm_gateway_config_info"));
        l.set_config_hash(Some("abc123def456".into()));
        let g = l.request();
        l.start_draining();
        l.cut(2, 3);
        let text = l.prometheus_text();
        assert!(
            text.contains("llm_gateway_config_info{hash=\"abc123def456\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("llm_gateway_draining 1\n"), "{text}");
        assert!(text.contains("llm_gateway_inflight_requests 1\n"), "{text}");
        assert!(text.contains("llm_gateway_shutdown_cut_requests_total 3\n"));
        assert!(text.contains("llm_gateway_shutdown_cut_connections_total 2\n"));
        drop(g);
        assert_eq!(l.inflight(), 0);
        assert!(!l.ready());
    }
}
