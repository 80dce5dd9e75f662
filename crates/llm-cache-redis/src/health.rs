//! Whether Redis is reachable, shared by every operation of one cache.
//!
//! The state drives two things: operations fail fast while Redis is down
//! (a background task reconnects), and the logs get one warning per outage
//! and one info line per recovery instead of a line per failed operation.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

/// No operation has completed yet.
const UNKNOWN: u8 = 0;
/// The last operation reached Redis.
const UP: u8 = 1;
/// Redis is unreachable; a background task is reconnecting.
const DOWN: u8 = 2;

/// Consecutive timeouts after which a slow Redis is treated as down.
///
/// One slow answer is only a miss; a run of them means the connection or the
/// server is stuck, and reconnecting is what helps.
pub(crate) const TIMEOUTS_BEFORE_OUTAGE: u32 = 3;

/// Reachability of one Redis, with transition logging.
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: AtomicU8,
    timeouts: AtomicU32,
    /// Whether a reconnect task is running.
    probing: AtomicBool,
}

impl Health {
    /// Whether operations should fail fast.
    pub(crate) fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == DOWN
    }

    /// `up`, `down` or `unknown`, for Debug output.
    pub(crate) fn describe(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            UP => "up",
            DOWN => "down",
            _ => "unknown",
        }
    }

    /// Records that Redis answered. Logs the recovery if it was down.
    pub(crate) fn succeeded(&self, url: &str) {
        if self.timeouts.load(Ordering::Relaxed) != 0 {
            self.timeouts.store(0, Ordering::Relaxed);
        }
        if self.state.load(Ordering::Acquire) == UP {
            return;
        }
        match self.state.swap(UP, Ordering::AcqRel) {
            DOWN => tracing::info!(cache = "redis", url, "redis cache recovered"),
            UNKNOWN => tracing::debug!(cache = "redis", url, "redis cache connected"),
            _ => {}
        }
    }

    /// Records an outage. Logs a warning only on the transition into it.
    pub(crate) fn failed(&self, url: &str, error: &str) {
        self.timeouts.store(0, Ordering::Relaxed);
        if self.state.swap(DOWN, Ordering::AcqRel) != DOWN {
            tracing::warn!(
                cache = "redis",
                url,
                error,
                "redis cache unavailable; cache lookups are misses until it recovers"
            );
        }
    }

    /// Counts a timed-out operation; returns the length of the current run.
    pub(crate) fn timed_out(&self) -> u32 {
        self.timeouts
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Claims the right to run the reconnect task; false if one is running.
    pub(crate) fn start_probing(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    /// Releases the claim taken by [`start_probing`](Self::start_probing).
    pub(crate) fn stop_probing(&self) {
        self.probing.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let h = Health::default();
        assert_eq!(h.describe(), "unknown");
        assert!(!h.is_down());
        h.failed("u", "e");
        assert!(h.is_down());
        h.failed("u", "e");
        assert_eq!(h.describe(), "down");
        h.succeeded("u");
        assert_eq!(h.describe(), "up");
        assert_eq!(h.timed_out(), 1);
        assert_eq!(h.timed_out(), 2);
        h.succeeded("u");
        assert_eq!(h.timed_out(), 1);
        assert!(h.start_probing());
        assert!(!h.start_probing());
        h.stop_probing();
        assert!(h.start_probing());
    }
}
