//! Metrics recording.

use crate::exec::CircuitState;
use crate::types::Usage;

/// Records the client's metrics. Cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {}

impl Telemetry {
    /// A recorder that records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    pub(crate) fn request(&self, _provider: &str, _model: &str, _status: &str) {}
    pub(crate) fn latency(&self, _provider: &str, _model: &str, _secs: f64) {}
    pub(crate) fn tokens(&self, _provider: &str, _model: &str, _usage: &Usage) {}
    pub(crate) fn cost(&self, _provider: &str, _model: &str, _usd: f64) {}
    pub(crate) fn cache(&self, _result: &str) {}
    pub(crate) fn fallback(&self, _from: &str, _to: &str) {}
    pub(crate) fn retry(&self, _provider: &str) {}
    pub(crate) fn circuit(&self, _provider: &str, _state: CircuitState) {}
    /// The process-wide recorder (what `LlmClient::from_config` uses).
    pub fn global() -> Self {
        Self::default()
    }

    pub(crate) fn active_providers(&self, _n: usize) {}
    pub(crate) fn ttft(&self, _provider: &str, _model: &str, _secs: f64) {}
}

/// The Prometheus text exposition of the process-wide metrics registry
/// (what `GET /metrics` serves).
pub fn prometheus_text() -> String {
    String::new()
}
