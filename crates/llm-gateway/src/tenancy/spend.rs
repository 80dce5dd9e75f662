//! The spend log writer: requests hand their [`SpendRow`] to
//! [`SpendLog::record`], which only appends to a bounded in-memory buffer
//! (never blocks, never touches the database); a background task writes the
//! buffer in batches ([`Store::write_spend`]: raw rows and daily aggregates in
//! one transaction).
//!
//! While the database is down or busy, rows stay buffered and the writer
//! retries with exponential backoff (100 ms doubling to 30 s); they are
//! written, in order, once it answers again. When the buffer is full a new
//! row is dropped: counted in `llm_gateway_spend_rows_dropped_total`
//! ([`prometheus_text`]) and logged at most every 10 seconds, never
//! silently. A batch the database rejects (not a transient failure) is
//! retried row by row, so only the rows it refuses are dropped (and
//! counted).
//!
//! With a retention, raw rows older than it are pruned at start and then
//! every [`SpendConfig::prune_interval`]; the daily aggregates are kept.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use super::store::Store;
use super::types::SpendRow;

/// Rows dropped by every spend log of this process (buffer full, or rejected
/// by the database).
static ROWS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// First retry delay after a failed write.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// At most one "dropped" (or "store unavailable") warning per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// After the last handle is gone, a failed write of what is left is retried
/// this many times, then every row still buffered is dropped (counted).
const ATTEMPTS_AFTER_CLOSE: u32 = 3;

/// How the spend log batches, buffers and prunes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendConfig {
    /// Rows per write (a full batch is written at once).
    pub batch_rows: usize,
    /// Longest time a row waits before its batch is written.
    pub flush_interval: Duration,
    /// Most rows held in memory (waiting or being written); beyond, new rows
    /// are dropped and counted.
    pub buffer_rows: usize,
    /// How long raw rows are kept (`None`: forever). Aggregates are kept.
    pub retention: Option<Duration>,
    /// How often the retention is applied.
    pub prune_interval: Duration,
}

impl Default for SpendConfig {
    fn default() -> Self {
        Self {
            batch_rows: 500,
            flush_interval: Duration::from_secs(1),
            buffer_rows: 100_000,
            retention: Some(Duration::from_secs(90 * 86_400)),
            prune_interval: Duration::from_secs(3_600),
        }
    }
}

/// The buffer and the writer's progress, under one lock.
#[derive(Default)]
struct State {
    /// Rows waiting, oldest first.
    queue: VecDeque<SpendRow>,
    /// Rows taken by the writer and not yet written (or dropped).
    in_flight: usize,
    /// Flushes asked for (a counter; each [`SpendLog::flush`] takes the next).
    flush_asked: u64,
    /// The highest flush request fully served.
    flush_done: u64,
    /// Set when the last [`SpendLog`] handle is dropped.
    closed: bool,
    /// A retention pass is running (next to the writer, never blocking it).
    pruning: bool,
    /// Drops not yet logged, and when the last warning went out.
    drops_unlogged: u64,
    last_drop_log: Option<Instant>,
}

struct Shared {
    store: Arc<dyn Store>,
    cfg: SpendConfig,
    state: Mutex<State>,
    /// Wakes the writer (a full batch, a flush, closing).
    wake: Notify,
    /// Cuts a retry backoff short (a flush, closing).
    retry_now: Notify,
    /// Tells flushes the writer made progress.
    progress: Notify,
    dropped: AtomicU64,
    written: AtomicU64,
    pruned: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_dropped(&self, n: u64, why: &'static str) {
        if n == 0 {
            return;
        }
        self.dropped.fetch_add(n, Ordering::Relaxed);
        ROWS_DROPPED.fetch_add(n, Ordering::Relaxed);
        let mut st = self.lock();
        st.drops_unlogged += n;
        let now = Instant::now();
        if st
            .last_drop_log
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            let rows = std::mem::take(&mut st.drops_unlogged);
            st.last_drop_log = Some(now);
            drop(st);
            tracing::warn!(
                rows,
                reason = why,
                buffer_rows = self.cfg.buffer_rows,
                "spend log: rows dropped (llm_gateway_spend_rows_dropped_total)"
            );
        }
    }
}

/// Keeps the writer running while any [`SpendLog`] handle exists.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake.notify_one();
        self.0.retry_now.notify_one();
    }
}

/// The asynchronous, batched spend-log writer. Cheap to clone; the writer
/// task writes what is left and stops when the last clone is dropped.
#[derive(Clone)]
pub struct SpendLog {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for SpendLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendLog")
            .field("cfg", &self.shared().cfg)
            .field("pending", &self.pending())
            .field("dropped", &self.dropped_rows())
            .finish()
    }
}

impl SpendLog {
    /// Starts the writer on the current tokio runtime. `batch_rows` and
    /// `buffer_rows` below 1 are taken as 1.
    pub fn spawn(store: Arc<dyn Store>, mut cfg: SpendConfig) -> Self {
        cfg.batch_rows = cfg.batch_rows.max(1);
        cfg.buffer_rows = cfg.buffer_rows.max(1);
        let cfg_retention = cfg.retention.is_some();
        let shared = Arc::new(Shared {
            store,
            cfg,
            state: Mutex::new(State {
                // The first retention pass starts with the writer.
                pruning: cfg_retention,
                ..State::default()
            }),
            wake: Notify::new(),
            retry_now: Notify::new(),
            progress: Notify::new(),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
        });
        tokio::spawn(writer(shared.clone()));
        Self {
            handle: Arc::new(Handle(shared)),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    /// Buffers `row` for writing. Never blocks on the database; when the
    /// buffer is full the row is dropped and counted.
    pub fn record(&self, row: SpendRow) {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.queue.len() + st.in_flight >= shared.cfg.buffer_rows {
            drop(st);
            shared.count_dropped(1, "buffer full");
            return;
        }
        st.queue.push_back(row);
        let full = st.queue.len() >= shared.cfg.batch_rows;
        drop(st);
        if full {
            shared.wake.notify_one();
        }
    }

    /// Writes every row recorded before this call, and waits for a retention
    /// pass in progress (one starts with the writer). While the database is
    /// down this waits until it is back: bound it with a timeout at shutdown.
    pub async fn flush(&self) {
        let shared = self.shared();
        let ticket = {
            let mut st = shared.lock();
            st.flush_asked += 1;
            st.flush_asked
        };
        loop {
            let progress = shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let st = shared.lock();
                if st.flush_done >= ticket && !st.pruning {
                    return;
                }
            }
            shared.wake.notify_one();
            shared.retry_now.notify_one();
            progress.await;
        }
    }

    /// Rows buffered and not yet written.
    pub fn pending(&self) -> usize {
        let st = self.shared().lock();
        st.queue.len() + st.in_flight
    }

    /// Rows this log dropped (buffer full, or rejected by the database).
    pub fn dropped_rows(&self) -> u64 {
        self.shared().dropped.load(Ordering::Relaxed)
    }

    /// Rows this log wrote.
    pub fn written_rows(&self) -> u64 {
        self.shared().written.load(Ordering::Relaxed)
    }

    /// Raw rows this log pruned (retention).
    pub fn pruned_rows(&self) -> u64 {
        self.shared().pruned.load(Ordering::Relaxed)
    }
}

/// Rows dropped by every spend log of this process.
pub fn rows_dropped_total() -> u64 {
    ROWS_DROPPED.load(Ordering::Relaxed)
}

/// The spend log's series in Prometheus text format, for `/metrics`:
/// `llm_gateway_spend_rows_dropped_total` (process-wide).
pub fn prometheus_text() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP llm_gateway_spend_rows_dropped_total Spend-log rows dropped: buffer full while \
         the database was slow or down, or rejected by it"
    );
    let _ = writeln!(out, "# TYPE llm_gateway_spend_rows_dropped_total counter");
    let _ = writeln!(
        out,
        "llm_gateway_spend_rows_dropped_total {}",
        rows_dropped_total()
    );
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The background writer: waits for a full batch, the flush interval, a
/// flush or closing; writes; starts retention passes on schedule (in their
/// own task: a long prune never holds rows back).
async fn writer(shared: Arc<Shared>) {
    let mut next_prune = Instant::now();
    let mut pruner: Option<tokio::task::JoinHandle<()>> = None;
    let mut unavailable_logged: Option<Instant> = None;
    loop {
        if next_prune <= Instant::now() {
            next_prune = Instant::now() + shared.cfg.prune_interval;
            if shared.cfg.retention.is_some() && pruner.as_ref().is_none_or(|t| t.is_finished()) {
                shared.lock().pruning = true;
                let shared = shared.clone();
                pruner = Some(tokio::spawn(async move {
                    prune(&shared).await;
                    shared.lock().pruning = false;
                    shared.progress.notify_waiters();
                }));
            }
        }
        // Rows present now, and the flushes they serve.
        let (target, flush_ticket, closed) = {
            let st = shared.lock();
            (st.queue.len(), st.flush_asked, st.closed)
        };
        let mut left = target;
        while left > 0 {
            let batch: Vec<SpendRow> = {
                let mut st = shared.lock();
                let n = left.min(shared.cfg.batch_rows).min(st.queue.len());
                st.in_flight = n;
                st.queue.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            left -= batch.len();
            write_batch(&shared, batch, &mut unavailable_logged).await;
        }
        {
            let mut st = shared.lock();
            st.flush_done = st.flush_done.max(flush_ticket);
        }
        shared.progress.notify_waiters();
        if closed {
            let st = shared.lock();
            if st.queue.is_empty() {
                return;
            }
            continue;
        }
        let wait = shared
            .cfg
            .flush_interval
            .min(next_prune.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
        let woken = {
            let st = shared.lock();
            st.queue.len() >= shared.cfg.batch_rows || st.flush_asked > st.flush_done || st.closed
        };
        if !woken {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Writes `batch` (retrying while the store is unavailable); rows the store
/// rejects are isolated and dropped.
async fn write_batch(shared: &Shared, batch: Vec<SpendRow>, logged: &mut Option<Instant>) {
    let mut parts: VecDeque<Vec<SpendRow>> = VecDeque::from([batch]);
    let mut delay = BACKOFF_START;
    let mut failures_after_close = 0u32;
    while let Some(part) = parts.pop_front() {
        match shared.store.write_spend(&part).await {
            Ok(()) => {
                let n = part.len();
                shared.written.fetch_add(n as u64, Ordering::Relaxed);
                let mut st = shared.lock();
                st.in_flight = st.in_flight.saturating_sub(n);
                delay = BACKOFF_START;
                if logged.take().is_some() {
                    tracing::info!("spend log: store reachable again, writing buffered rows");
                }
            }
            Err(e) if e.is_unavailable() => {
                let closed = shared.lock().closed;
                if closed {
                    failures_after_close += 1;
                    if failures_after_close > ATTEMPTS_AFTER_CLOSE {
                        // Nobody is left to wait: give up on everything
                        // still buffered, counted.
                        let n = part.len() + parts.iter().map(Vec::len).sum::<usize>();
                        let queued = {
                            let mut st = shared.lock();
                            st.in_flight = 0;
                            std::mem::take(&mut st.queue).len()
                        };
                        shared.count_dropped(
                            u64::try_from(n + queued).unwrap_or(u64::MAX),
                            "store unavailable at shutdown",
                        );
                        return;
                    }
                }
                let now = Instant::now();
                if logged.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
                    *logged = Some(now);
                    let pending = {
                        let st = shared.lock();
                        st.queue.len() + st.in_flight
                    };
                    tracing::warn!(
                        error = %e,
                        pending,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "spend log: store unavailable; rows stay buffered"
                    );
                }
                parts.push_front(part);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.retry_now.notified() => {}
                }
                delay = (delay * 2).min(BACKOFF_MAX);
            }
            Err(e) if part.len() > 1 => {
                tracing::warn!(error = %e, rows = part.len(), "spend log: batch rejected; writing its rows one by one");
                for row in part.into_iter().rev() {
                    parts.push_front(vec![row]);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "spend log: row rejected by the store");
                {
                    let mut st = shared.lock();
                    st.in_flight = st.in_flight.saturating_sub(1);
                }
                shared.count_dropped(1, "rejected by the store");
            }
        }
    }
}

/// Applies the retention once.
async fn prune(shared: &Shared) {
    let Some(retention) = shared.cfg.retention else {
        return;
    };
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let before = now_ms().saturating_sub(keep_ms);
    match shared.store.prune_spend(before).await {
        Ok(n) => {
            shared.pruned.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                tracing::info!(rows = n, "spend log: raw rows past retention pruned");
            }
        }
        Err(e) => tracing::warn!(error = %e, "spend log: pruning failed; retried next interval"),
    }
}
