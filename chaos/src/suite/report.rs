//! The checks of a run and its summary.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::time::Duration;

use llm_core::exec::CircuitState;

use super::{Answer, Outcome, Settings, Via};
use crate::fault::Role;
use crate::monitor::{metric_sum, BreakerLog};
use crate::protocol::answer_for;
use crate::upstream::UpstreamStats;

/// Slack added to every time bound: the machine may be slow and loaded.
const SLACK: Duration = Duration::from_secs(5);

/// A breach of the reliability contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Request index, when it concerns one request.
    pub request: Option<usize>,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.request {
            Some(i) => write!(f, "request {i}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// Cache entries read back after the run.
#[derive(Debug, Clone, Default)]
pub struct Readback {
    /// Entries found.
    pub present: usize,
    /// Prompts with no entry (failed, evicted, or lost with a Redis restart).
    pub absent: usize,
    /// Lookups that failed.
    pub unreadable: usize,
    /// Entries that were not the correct full answer.
    pub wrong: Vec<String>,
}

pub(super) struct Inputs {
    pub(super) settings: Settings,
    pub(super) outcomes: Vec<Outcome>,
    pub(super) ledger: HashMap<String, u32>,
    pub(super) upstream_stats: Vec<(String, UpstreamStats)>,
    pub(super) breakers: BTreeMap<String, BreakerLog>,
    pub(super) recovery: HashMap<String, (bool, u32)>,
    pub(super) readback: Readback,
    pub(super) audit_violations: Vec<String>,
    pub(super) cache_sets: u64,
    pub(super) cache_label: String,
    pub(super) redis_events: Vec<String>,
    pub(super) metrics: String,
    pub(super) phases_entered: Vec<Vec<Role>>,
    pub(super) load_elapsed: Duration,
    pub(super) rss_start: Option<u64>,
    pub(super) rss_end: Option<u64>,
}

/// The result of a run: figures and every violation found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Requests sent.
    pub requests: usize,
    /// Answers received (must equal `requests`).
    pub answers: usize,
    /// Complete, correct answers.
    pub complete: usize,
    /// Of which from the cache.
    pub cache_hits: usize,
    /// Typed errors, by kind.
    pub errors: BTreeMap<String, usize>,
    /// Streams among the requests.
    pub streams: usize,
    /// Upstream chat calls made for client requests.
    pub upstream_calls: u64,
    /// Largest upstream calls for one request (prompt) per use.
    pub max_calls_per_request: u32,
    /// `(max_retries + 1) × providers`.
    pub call_budget: u32,
    /// Retries (metric `llm_retries_total`).
    pub retries: f64,
    /// Fallbacks (metric `llm_fallbacks_total`).
    pub fallbacks: f64,
    /// Circuit openings seen, per provider.
    pub breaker_trips: BTreeMap<String, u32>,
    /// Circuit closings seen, per provider.
    pub breaker_recoveries: BTreeMap<String, u32>,
    /// Faults injected, by type, over every upstream.
    pub faults: BTreeMap<String, u64>,
    /// Fault phases entered.
    pub phases: usize,
    /// Slowest request.
    pub max_latency: Duration,
    /// Median latency.
    pub p50_latency: Duration,
    /// 99th percentile latency.
    pub p99_latency: Duration,
    /// Time the load took.
    pub elapsed: Duration,
    /// Cache entries written.
    pub cache_sets: u64,
    /// Cache entries read back after the run (present, absent, unreadable).
    pub readback: (usize, usize, usize),
    /// Cache backend.
    pub cache: String,
    /// Redis kills and restarts.
    pub redis_events: Vec<String>,
    /// RSS of this process at the start and end, in KiB.
    pub rss_kib: (Option<u64>, Option<u64>),
    /// Client or gateway.
    pub via: String,
    /// Every breach found.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether no violation was found.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The summary as an aligned two-column table.
    pub fn table(&self) -> String {
        let kib =
            |k: Option<u64>| k.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        let join = |m: &BTreeMap<String, u32>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows: Vec<(&str, String)> = vec![
            ("via", self.via.clone()),
            ("cache", self.cache.clone()),
            ("requests", self.requests.to_string()),
            ("answers", self.answers.to_string()),
            (
                "complete (correct)",
                format!("{} ({} from cache)", self.complete, self.cache_hits),
            ),
            (
                "typed errors",
                format!(
                    "{} [{}]",
                    self.errors.values().sum::<usize>(),
                    self.errors
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (
                "lost answers",
                (self.requests - self.answers.min(self.requests)).to_string(),
            ),
            ("streams", self.streams.to_string()),
            ("upstream calls", self.upstream_calls.to_string()),
            (
                "max calls / request",
                format!(
                    "{} (budget {})",
                    self.max_calls_per_request, self.call_budget
                ),
            ),
            ("retries", format!("{:.0}", self.retries)),
            ("fallbacks", format!("{:.0}", self.fallbacks)),
            ("breaker trips", join(&self.breaker_trips)),
            ("breaker recoveries", join(&self.breaker_recoveries)),
            ("fault phases", self.phases.to_string()),
            (
                "faults injected",
                format!(
                    "{} [{}]",
                    self.faults.values().sum::<u64>(),
                    self.faults
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (
                "latency p50 / p99 / max",
                format!(
                    "{} / {} / {}",
                    ms(self.p50_latency),
                    ms(self.p99_latency),
                    ms(self.max_latency)
                ),
            ),
            (
                "duration",
                format!(
                    "{:.1} s ({:.0} req/s)",
                    self.elapsed.as_secs_f64(),
                    self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
                ),
            ),
            ("cache entries written", self.cache_sets.to_string()),
            (
                "cache read back",
                format!(
                    "{} present (all correct: {}), {} absent, {} unreadable",
                    self.readback.0,
                    !self.violations.iter().any(|v| v.what.contains("cache")),
                    self.readback.1,
                    self.readback.2
                ),
            ),
            ("redis", self.redis_events.join("; ")),
            (
                "RSS start / end",
                format!("{} / {}", kib(self.rss_kib.0), kib(self.rss_kib.1)),
            ),
            ("violations", self.violations.len().to_string()),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        for v in self.violations.iter().take(20) {
            let _ = writeln!(out, "  ! {v}");
        }
        out
    }
}

fn v(request: Option<usize>, what: impl Into<String>) -> Violation {
    Violation {
        request,
        what: what.into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn build(i: Inputs) -> Report {
    let s = &i.settings;
    let providers = i.upstream_stats.len() as u32;
    let budget = (s.limits.max_retries + 1) * providers;
    let mut r = Report {
        requests: s.requests,
        answers: i.outcomes.len(),
        call_budget: budget,
        via: match s.via {
            Via::Client => "client (in-process LlmClient)".into(),
            Via::Gateway => "gateway (in-process, over HTTP)".into(),
        },
        cache: i.cache_label.clone(),
        cache_sets: i.cache_sets,
        redis_events: i.redis_events.clone(),
        rss_kib: (i.rss_start, i.rss_end),
        elapsed: i.load_elapsed,
        phases: i.phases_entered.len(),
        readback: (i.readback.present, i.readback.absent, i.readback.unreadable),
        ..Report::default()
    };
    let mut vs = Vec::new();

    // Exactly one answer per request.
    let mut seen = vec![0u32; s.requests];
    for o in &i.outcomes {
        match seen.get_mut(o.index) {
            Some(n) => *n += 1,
            None => vs.push(v(Some(o.index), "an answer for a request never sent")),
        }
    }
    for (idx, n) in seen.iter().enumerate() {
        if *n != 1 {
            vs.push(v(Some(idx), format!("{n} answers instead of exactly one")));
        }
    }

    // Each answer complete and correct, or a typed error; time bounds.
    let stream_tail =
        s.limits.attempt_timeout * 2 + s.chaos.drip_delay * (s.chaos.drip_pieces as u32 + 1);
    let open_bound = s.limits.deadline + SLACK;
    let mut uses: HashMap<&str, (u32, Option<u32>)> = HashMap::new();
    let mut latencies = Vec::with_capacity(i.outcomes.len());
    for o in &i.outcomes {
        vs.extend(o.violations.iter().map(|w| v(Some(o.index), w.clone())));
        latencies.push(o.elapsed);
        if o.stream {
            r.streams += 1;
        }
        match &o.answer {
            Answer::Complete { text, cached, .. } => {
                let expected = answer_for(&o.prompt);
                if *text == expected {
                    r.complete += 1;
                    r.cache_hits += usize::from(*cached);
                } else {
                    vs.push(v(
                        Some(o.index),
                        format!("accepted a wrong answer: {text:?}, correct: {expected:?}"),
                    ));
                }
            }
            Answer::Failed { kind, message } => {
                *r.errors.entry(kind.clone()).or_default() += 1;
                if message.is_empty() && !o.violations.is_empty() {
                    // Already reported (silent end, hang).
                } else if message.is_empty() {
                    vs.push(v(
                        Some(o.index),
                        format!("an error without a message ({kind})"),
                    ));
                }
            }
        }
        let total_bound = if o.stream {
            open_bound + stream_tail
        } else {
            open_bound
        };
        if o.elapsed > total_bound {
            vs.push(v(
                Some(o.index),
                format!(
                    "took {:.1} s, more than the bound of {:.1} s",
                    o.elapsed.as_secs_f64(),
                    total_bound.as_secs_f64()
                ),
            ));
        }
        if let Some(open) = o.opened_after.filter(|d| *d > open_bound) {
            vs.push(v(
                Some(o.index),
                format!(
                    "stream opened after {:.1} s, past the deadline",
                    open.as_secs_f64()
                ),
            ));
        }
        let e = uses.entry(o.prompt.as_str()).or_insert((0, Some(0)));
        e.0 += 1;
        e.1 = match (e.1, o.reported_calls) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    latencies.sort();
    r.max_latency = latencies.last().copied().unwrap_or_default();
    r.p50_latency = percentile(&latencies, 0.5);
    r.p99_latency = percentile(&latencies, 0.99);

    // Upstream calls within the retry budget (and never more than the client reported).
    for (prompt, (n, reported)) in &uses {
        let calls = i.ledger.get(*prompt).copied().unwrap_or(0);
        r.upstream_calls += u64::from(calls);
        r.max_calls_per_request = r.max_calls_per_request.max(calls.div_ceil(*n));
        if calls > budget * n {
            vs.push(v(
                None,
                format!("prompt {prompt:?}: {calls} upstream calls for {n} request(s), budget {budget} each"),
            ));
        }
        if let Some(rep) = reported {
            if calls > *rep {
                vs.push(v(
                    None,
                    format!(
                        "prompt {prompt:?}: upstreams saw {calls} calls, the client reported {rep}"
                    ),
                ));
            }
        }
    }

    // Nothing wrong was ever cached.
    vs.extend(
        i.audit_violations
            .iter()
            .map(|w| v(None, format!("cache write: {w}"))),
    );
    vs.extend(
        i.readback
            .wrong
            .iter()
            .map(|w| v(None, format!("cache entry: {w}"))),
    );

    // Breakers: every provider given a hard phase tripped; every one closed again.
    let names: Vec<&str> = i.upstream_stats.iter().map(|(n, _)| n.as_str()).collect();
    for (idx, name) in names.iter().enumerate() {
        let log = i.breakers.get(*name).cloned().unwrap_or_default();
        r.breaker_trips.insert((*name).to_string(), log.trips);
        r.breaker_recoveries
            .insert((*name).to_string(), log.recoveries);
        let hard_phases = i
            .phases_entered
            .iter()
            .filter(|roles| {
                matches!(roles.get(idx), Some(Role::Down))
                    || matches!(roles.get(idx), Some(Role::Flaky { rate, .. }) if *rate >= 1.0)
            })
            .count();
        if hard_phases >= 2 && log.trips == 0 {
            vs.push(v(
                None,
                format!("the circuit of `{name}` never opened over {hard_phases} phases of hard failure"),
            ));
        }
        match i.recovery.get(*name) {
            Some((true, _)) => {}
            _ => vs.push(v(
                None,
                format!("the circuit of `{name}` did not close once its upstream was healthy (last: {:?})", log.last),
            )),
        }
        if log.last.is_some_and(|s| s != CircuitState::Closed) {
            vs.push(v(
                None,
                format!("`{name}` ended with circuit {:?}", log.last),
            ));
        }
    }

    for (_, st) in &i.upstream_stats {
        for (f, n) in &st.faults {
            *r.faults.entry(f.name().to_string()).or_default() += n;
        }
    }
    r.retries = metric_sum(&i.metrics, "llm_retries_total", None);
    r.fallbacks = metric_sum(&i.metrics, "llm_fallbacks_total", None);
    r.violations = vs;
    r
}
