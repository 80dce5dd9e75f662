//! What can go wrong with an upstream, and the plan that decides when.

use std::fmt;
use std::time::Duration;

/// One injected fault, applied to one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// `429` with a short `Retry-After` (`retry-after-ms`).
    RateLimited,
    /// `429` with a `Retry-After` longer than the client waits: it moves on.
    RateLimitedLong,
    /// An error status: 500, 502, 503 or 529.
    Status(u16),
    /// The request is read, then nothing is ever sent (until the client gives up).
    Hang,
    /// The request is read, then the connection is reset (RST).
    Reset,
    /// A `200` whose body (JSON or stream) stops in the middle and the
    /// connection closes.
    Cut,
    /// A stream that ends cleanly at the HTTP level but without its terminator
    /// (`[DONE]`, `"done":true`); for a JSON answer, a body cut mid-JSON.
    Truncated,
    /// An in-band error after some text (`data: {"error":…}`, `{"error":"…"}`).
    InBandError,
    /// The correct answer, dripped a few bytes at a time.
    SlowDrip,
    /// Part of the body, then silence longer than the client's timeout.
    Stall,
    /// A `200` with random bytes (invalid UTF-8 included).
    Garbage,
    /// The correct answer inside a huge body (an ignored padding field or comment).
    Huge,
    /// The port stops listening: connections are refused.
    Refused,
}

impl Fault {
    /// Every per-call fault (all but [`Fault::Refused`], which is a provider state).
    pub const PER_CALL: &'static [Fault] = &[
        Fault::RateLimited,
        Fault::RateLimitedLong,
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(529),
        Fault::Hang,
        Fault::Reset,
        Fault::Cut,
        Fault::Truncated,
        Fault::InBandError,
        Fault::SlowDrip,
        Fault::Stall,
        Fault::Garbage,
        Fault::Huge,
    ];

    /// A stable name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimited => "429 retry-after",
            Fault::RateLimitedLong => "429 long retry-after",
            Fault::Status(500) => "500",
            Fault::Status(502) => "502",
            Fault::Status(503) => "503",
            Fault::Status(529) => "529",
            Fault::Status(_) => "other status",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Cut => "cut mid-body",
            Fault::Truncated => "no terminator",
            Fault::InBandError => "in-band error",
            Fault::SlowDrip => "slow drip",
            Fault::Stall => "stall",
            Fault::Garbage => "garbage",
            Fault::Huge => "huge body",
            Fault::Refused => "refused",
        }
    }

    /// Whether the client must treat the reply as a failure (slow drips and
    /// huge bodies carry the correct answer and may succeed).
    pub fn is_failure(self) -> bool {
        !matches!(self, Fault::SlowDrip | Fault::Huge)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one upstream behaves during a phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Every call is answered correctly.
    Healthy,
    /// Each call fails with probability `rate`, with a fault drawn from `faults`.
    Flaky {
        /// Probability of a fault per call.
        rate: f64,
        /// Faults to draw from.
        faults: Vec<Fault>,
    },
    /// The port is closed: connections are refused.
    Down,
}

impl Role {
    /// Flaky with every per-call fault.
    pub fn flaky(rate: f64) -> Self {
        Role::Flaky {
            rate,
            faults: Fault::PER_CALL.to_vec(),
        }
    }

    /// Short label for reports.
    pub fn label(&self) -> String {
        match self {
            Role::Healthy => "healthy".into(),
            Role::Flaky { rate, .. } => format!("flaky {:.0}%", rate * 100.0),
            Role::Down => "down".into(),
        }
    }

    /// The fault for one call (`None`: answer correctly).
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Option<Fault> {
        match self {
            Role::Healthy => None,
            Role::Down => Some(Fault::Refused),
            Role::Flaky { rate, faults } => {
                if faults.is_empty() || rng.f64() >= *rate {
                    None
                } else {
                    Some(faults[rng.usize(..faults.len())])
                }
            }
        }
    }
}

/// One phase: a role per upstream, for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Role of each upstream, in upstream order.
    pub roles: Vec<Role>,
    /// How long the phase lasts.
    pub duration: Duration,
}

/// Phases that rotate the trouble over `n` upstreams so that at every moment
/// exactly one is healthy: in phase `k`, upstream `k % n` is healthy, the next
/// one is down on even phases and fails every call on odd ones, and the rest
/// are flaky at `flaky_rate`.
pub fn rotating(n: usize, phases: usize, duration: Duration, flaky_rate: f64) -> Vec<Phase> {
    (0..phases)
        .map(|k| {
            let roles = (0..n)
                .map(|i| {
                    let offset = (i + n - k % n.max(1)) % n.max(1);
                    match offset {
                        0 => Role::Healthy,
                        1 if k % 2 == 0 => Role::Down,
                        1 => Role::flaky(1.0),
                        _ => Role::flaky(flaky_rate),
                    }
                })
                .collect();
            Phase { roles, duration }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_exactly_one_healthy() {
        let phases = rotating(3, 12, Duration::from_millis(10), 0.5);
        for (k, p) in phases.iter().enumerate() {
            let healthy = p.roles.iter().filter(|r| **r == Role::Healthy).count();
            assert_eq!(healthy, 1, "phase {k}");
            assert_eq!(p.roles[k % 3], Role::Healthy);
        }
        assert!(phases.iter().any(|p| p.roles.contains(&Role::Down)));
    }

    #[test]
    fn draws_follow_the_role() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(Role::Healthy.draw(&mut rng), None);
        assert_eq!(Role::Down.draw(&mut rng), Some(Fault::Refused));
        let always = Role::flaky(1.0);
        assert!((0..100).all(|_| always.draw(&mut rng).is_some()));
        let never = Role::flaky(0.0);
        assert!((0..100).all(|_| never.draw(&mut rng).is_none()));
    }
}
