//! Percentiles of latency samples (exact: the samples are sorted), and
//! medians with spread across runs.

use std::time::Duration;

/// The `q`-quantile (0 < q ≤ 1) of sorted samples by the nearest-rank method:
/// the smallest sample with at least `q·n` samples at or below it.
/// `None` for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // ceil(q·n) computed in integers of parts-per-million to avoid float
    // rounding at exact ranks (e.g. 0.999 · 1000).
    let ppm = (q.clamp(0.0, 1.0) * 1_000_000.0).round() as u128;
    let rank = (ppm * n as u128).div_ceil(1_000_000).max(1) as usize;
    sorted.get(rank.min(n) - 1).copied()
}

/// A latency summary, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: u64,
}

impl Summary {
    /// Summarizes samples (sorted in place).
    pub fn of(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let s = &*samples;
        let p = |q| percentile(s, q).unwrap_or(0);
        let sum: u128 = s.iter().map(|&v| u128::from(v)).sum();
        Self {
            count: s.len(),
            p50: p(0.50),
            p90: p(0.90),
            p99: p(0.99),
            p999: p(0.999),
            max: s.last().copied().unwrap_or(0),
            mean: if s.is_empty() {
                0
            } else {
                (sum / s.len() as u128) as u64
            },
        }
    }

    /// The four reported percentiles, in order.
    pub fn percentiles(&self) -> [u64; 4] {
        [self.p50, self.p90, self.p99, self.p999]
    }
}

/// Median and range of several runs' values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Median and range of `values`; `None` when empty.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// Nanoseconds as milliseconds with three decimals (`0.412`).
pub fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// Signed nanoseconds as milliseconds with three decimals (`+0.051`).
pub fn ms_signed(ns: i64) -> String {
    format!("{:+.3}", ns as f64 / 1e6)
}

/// A duration in nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), Some(500));
        assert_eq!(percentile(&v, 0.9), Some(900));
        assert_eq!(percentile(&v, 0.99), Some(990));
        assert_eq!(percentile(&v, 0.999), Some(999));
        assert_eq!(percentile(&v, 1.0), Some(1000));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.999), Some(7));
        // 10 samples: p99 and p99.9 are the largest one.
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.99), Some(10));
        assert_eq!(percentile(&v, 0.5), Some(5));
    }

    #[test]
    fn summary_sorts_and_averages() {
        let mut v = vec![5, 1, 4, 2, 3];
        let s = Summary::of(&mut v);
        assert_eq!(s.count, 5);
        assert_eq!((s.p50, s.max, s.mean), (3, 5, 3));
        assert_eq!(s.percentiles(), [3, 5, 5, 5]);
        assert_eq!(Summary::of(&mut []), Summary::default());
    }

    #[test]
    fn spread_of_runs() {
        let s = spread(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[1.0, 4.0]).unwrap().median, 2.5);
        assert!(spread(&[]).is_none());
        assert_eq!(ms(1_234_567), "1.235");
        assert_eq!(ms_signed(-51_000), "-0.051");
    }
}
