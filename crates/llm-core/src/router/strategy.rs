//! Ordering strategies over provider instances.

use crate::config::{RoutingConfig, Strategy};

/// What a strategy needs to know about one instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// Position in the configuration (ties keep this order).
    pub(crate) index: usize,
    pub(crate) name: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) local: bool,
    pub(crate) latency: Option<f64>,
}

fn weight(map: &std::collections::BTreeMap<String, f64>, c: &Candidate<'_>) -> Option<f64> {
    map.get(c.name).or_else(|| map.get(c.kind)).copied()
}

/// Cost weight: configured by instance, else by kind, else 0 for local and 1 for remote.
pub(crate) fn cost(cfg: &RoutingConfig, c: &Candidate<'_>) -> f64 {
    weight(&cfg.cost_weights, c).unwrap_or(if c.local { 0.0 } else { 1.0 })
}

/// Performance weight: configured by instance, else by kind, else 0.5.
pub(crate) fn performance(cfg: &RoutingConfig, c: &Candidate<'_>) -> f64 {
    weight(&cfg.performance_weights, c).unwrap_or(0.5)
}

fn load_weight(cfg: &RoutingConfig, c: &Candidate<'_>) -> f64 {
    weight(&cfg.weights, c).unwrap_or(1.0)
}

/// Sorts candidates by the strategy; ties keep configuration order.
pub(crate) fn order(
    cfg: &RoutingConfig,
    strategy: Strategy,
    cands: &mut [Candidate<'_>],
    rng: &mut fastrand::Rng,
) {
    let by = |a: f64, b: f64| a.total_cmp(&b);
    match strategy {
        Strategy::CostOptimized => {
            cands.sort_by(|a, b| by(cost(cfg, a), cost(cfg, b)).then(a.index.cmp(&b.index)));
        }
        Strategy::PerformanceFirst => cands.sort_by(|a, b| {
            by(performance(cfg, b), performance(cfg, a)).then(a.index.cmp(&b.index))
        }),
        Strategy::LocalFirst => cands.sort_by(|a, b| {
            b.local
                .cmp(&a.local)
                .then(by(cost(cfg, a), cost(cfg, b)))
                .then(a.index.cmp(&b.index))
        }),
        Strategy::Latency => cands.sort_by(|a, b| {
            // Unmeasured instances first, so every instance gets measured.
            let la = a.latency.unwrap_or(-1.0);
            let lb = b.latency.unwrap_or(-1.0);
            by(la, lb).then(a.index.cmp(&b.index))
        }),
        Strategy::Weighted => {
            // Efraimidis–Spirakis: sort by u^(1/w) descending.
            let mut keyed: Vec<(f64, Candidate<'_>)> = cands
                .iter()
                .map(|c| {
                    let w = load_weight(cfg, c);
                    let key = if w <= 0.0 {
                        -1.0
                    } else {
                        rng.f64().powf(1.0 / w)
                    };
                    (key, *c)
                })
                .collect();
            keyed.sort_by(|a, b| by(b.0, a.0));
            for (slot, (_, c)) in cands.iter_mut().zip(keyed) {
                *slot = c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands() -> Vec<Candidate<'static>> {
        let c = |index, name: &'static str, local, latency| Candidate {
            index,
            name,
            kind: name,
            local,
            latency,
        };
        vec![
            c(0, "openai", false, Some(0.9)),
            c(1, "ollama", true, Some(2.0)),
            c(2, "custom", false, Some(0.3)),
        ]
    }

    fn names(s: Strategy) -> Vec<String> {
        let mut v = cands();
        order(
            &RoutingConfig::default(),
            s,
            &mut v,
            &mut fastrand::Rng::with_seed(1),
        );
        v.into_iter().map(|c| c.name.to_string()).collect()
    }

    #[test]
    fn each_strategy_orders_as_documented() {
        assert_eq!(
            names(Strategy::CostOptimized),
            ["ollama", "custom", "openai"]
        );
        assert_eq!(
            names(Strategy::PerformanceFirst),
            ["openai", "custom", "ollama"]
        );
        assert_eq!(names(Strategy::LocalFirst), ["ollama", "custom", "openai"]);
        assert_eq!(names(Strategy::Latency), ["custom", "openai", "ollama"]);
    }

    #[test]
    fn weighted_spreads_by_weight() {
        let mut cfg = RoutingConfig::default();
        cfg.weights.insert("a".into(), 3.0);
        cfg.weights.insert("b".into(), 1.0);
        let mk = |i, n: &'static str| Candidate {
            index: i,
            name: n,
            kind: "ollama",
            local: true,
            latency: None,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first_a = 0;
        for _ in 0..4000 {
            let mut v = vec![mk(0, "a"), mk(1, "b")];
            order(&cfg, Strategy::Weighted, &mut v, &mut rng);
            if v[0].name == "a" {
                first_a += 1;
            }
        }
        // Expected share 3/4.
        assert!((2800..3200).contains(&first_a), "{first_a}");
    }
}
