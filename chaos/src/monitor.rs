//! Watching the client during a run: circuit breaker transitions, memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use llm_core::exec::CircuitState;
use llm_core::LlmClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Circuit transitions of one provider, as sampled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerLog {
    /// Times the circuit was seen opening (closed or half-open → open).
    pub trips: u32,
    /// Times it was seen closing again (open or half-open → closed).
    pub recoveries: u32,
    /// Times it was seen half-open.
    pub half_opens: u32,
    /// State at the last sample.
    pub last: Option<CircuitState>,
}

/// Samples `client.health()` every `every` until stopped.
#[derive(Debug)]
pub struct BreakerWatch {
    log: Arc<Mutex<BTreeMap<String, BreakerLog>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BreakerWatch {
    /// Starts sampling.
    pub fn start(client: LlmClient, every: Duration) -> Self {
        let log: Arc<Mutex<BTreeMap<String, BreakerLog>>> = Arc::default();
        let (stop, mut stopped) = watch::channel(false);
        let shared = log.clone();
        let task = tokio::spawn(async move {
            loop {
                sample(&client, &shared);
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => {
                        sample(&client, &shared);
                        return;
                    }
                }
            }
        });
        Self { log, stop, task }
    }

    /// What was seen so far.
    pub fn log(&self) -> BTreeMap<String, BreakerLog> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops sampling (after one last sample) and returns the log.
    pub async fn finish(self) -> BTreeMap<String, BreakerLog> {
        let Self { log, stop, task } = self;
        stop.send_replace(true);
        let _ = task.await;
        let out = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
        out
    }
}

fn sample(client: &LlmClient, log: &Mutex<BTreeMap<String, BreakerLog>>) {
    let reports = client.health();
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    for r in reports {
        let entry = log.entry(r.provider.clone()).or_default();
        let now = r.circuit;
        if entry.last != Some(now) {
            match now {
                CircuitState::Open => entry.trips += 1,
                CircuitState::Closed if entry.last.is_some() => entry.recoveries += 1,
                CircuitState::HalfOpen => entry.half_opens += 1,
                CircuitState::Closed => {}
            }
        }
        entry.last = Some(now);
    }
}

/// Resident set size of process `pid` (`None`: this process), in KiB, from
/// `/proc/<pid>/status`.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Sums every sample of a Prometheus counter family (`name` without `_total`
/// or with it) in `text`, optionally only those whose labels contain `filter`.
pub fn metric_sum(text: &str, name: &str, filter: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| filter.is_none_or(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed() {
        let text = "# HELP x\nllm_retries_total{provider=\"a\"} 3\nllm_retries_total{provider=\"b\"} 2\nllm_retries_totalx 9\n";
        assert_eq!(metric_sum(text, "llm_retries_total", None), 5.0);
        assert_eq!(metric_sum(text, "llm_retries_total", Some("\"a\"")), 3.0);
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib(None).is_some_and(|k| k > 0));
    }
}
