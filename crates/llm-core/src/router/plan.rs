//! The route plan: which providers a request will try, in which order, and why.

use std::fmt;

use serde::Serialize;

use super::classify::Classification;
use crate::config::Strategy;

/// One provider of the fallback sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedProvider {
    /// Instance name.
    pub provider: String,
    /// Model the request will ask it for.
    pub model: String,
    /// `max_tokens` it will be sent (`None`: the request set no limit).
    pub max_tokens: Option<u32>,
    /// Why it is at this place.
    pub reason: String,
    /// Tried although it is unhealthy, because no healthy provider is left
    /// (its circuit breaker is bypassed for this call).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last_resort: bool,
}

/// A provider passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedProvider {
    /// Instance name.
    pub provider: String,
    /// Why (circuit open, unavailable, …).
    pub reason: String,
}

/// How a request will be routed. Computed without any upstream call.
///
/// Its `Display` reads like `complex (max_tokens 4000 > 3000) → openai → ollama → custom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    /// Task classification.
    pub classification: Classification,
    /// Strategy in force.
    pub strategy: Strategy,
    /// Provider the request named, if any.
    pub requested: Option<String>,
    /// Providers to try, primary first.
    pub sequence: Vec<PlannedProvider>,
    /// Providers passed over.
    pub skipped: Vec<SkippedProvider>,
}

impl RoutePlan {
    /// The primary provider, if any can be tried.
    pub fn primary(&self) -> Option<&str> {
        self.sequence.first().map(|p| p.provider.as_str())
    }

    /// Instance names in order.
    pub fn names(&self) -> Vec<&str> {
        self.sequence.iter().map(|p| p.provider.as_str()).collect()
    }
}

impl fmt::Display for RoutePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.classification)?;
        if let Some(r) = &self.requested {
            write!(f, ", requested `{r}`")?;
        }
        if self.sequence.is_empty() {
            write!(f, " → no provider available")?;
        }
        for p in &self.sequence {
            write!(f, " → {}", p.provider)?;
            if p.last_resort {
                write!(f, " (last resort)")?;
            }
        }
        if !self.skipped.is_empty() {
            write!(f, " (skipped: ")?;
            for (i, s) in self.skipped.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{}: {}", s.provider, s.reason)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}
