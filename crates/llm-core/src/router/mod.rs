//! Routing: task classification, strategies and fallback sequences.

mod classify;
mod plan;
mod strategy;

use std::sync::Arc;

pub use classify::{classify, Classification, TaskClass};
pub use plan::{PlannedProvider, RoutePlan, SkippedProvider};

use crate::config::RoutingConfig;
use crate::model_filter::ModelFilter;
use crate::provider::Provider;
use crate::types::{Capability, LlmRequest};
use strategy::Candidate;

/// The skip reason of a provider that cannot serve a request using tools
/// ([`Provider::supports`] [`Capability::Tools`]); such a provider is never
/// tried for it.
pub const NO_TOOL_SUPPORT: &str = "does not support tools";

/// The skip reason of a provider (with the model it would use) that lacks a
/// capability the request needs.
pub fn unsupported_reason(capability: Capability) -> String {
    format!("does not support {}", capability.describe())
}

/// The first capability of `needs` that `p` lacks with the model the request
/// resolves to there.
pub(crate) fn missing_capability(
    cfg: &RoutingConfig,
    p: &dyn Provider,
    req: &LlmRequest,
    needs: &[Capability],
) -> Option<Capability> {
    if needs.is_empty() {
        return None;
    }
    let model = adapt_model(cfg, p, req.model.as_deref());
    needs.iter().copied().find(|c| !p.supports(*c, &model))
}

/// What the router sees of one configured instance.
pub(crate) struct InstanceView<'a> {
    pub(crate) provider: &'a Arc<dyn Provider>,
    /// Why it cannot be tried now, if so.
    pub(crate) skip: Option<String>,
    pub(crate) latency: Option<f64>,
}

/// The model `p` gets for a request asking for `requested`: the requested one
/// when served, else an alias from `model_aliases`, else the default model.
pub(crate) fn adapt_model(
    cfg: &RoutingConfig,
    p: &dyn Provider,
    requested: Option<&str>,
) -> String {
    let profile = p.profile();
    if let Some(m) = requested {
        if profile.serves(m) {
            return m.to_string();
        }
        if let Some(alias) = cfg
            .model_aliases
            .get(m)
            .and_then(|a| a.get(p.name()).or_else(|| a.get(p.kind())))
        {
            return alias.clone();
        }
    }
    profile
        .resolve_model(requested)
        .unwrap_or_else(|| "default".to_string())
}

/// Whether `p` may serve `req` under its [`allowed_models`].
///
/// [`allowed_models`]: LlmRequest::allowed_models
pub(crate) fn allowed(cfg: &RoutingConfig, p: &dyn Provider, req: &LlmRequest) -> bool {
    let Some(filter) = &req.allowed_models else {
        return true;
    };
    let model = adapt_model(cfg, p, req.model.as_deref());
    filter.allows(p.name(), &model, p.profile().is_default_model(&model))
}

/// Whether `p` may embed with `model` under `allowed`.
pub(crate) fn embedding_allowed(
    p: &dyn Provider,
    model: &str,
    allowed: Option<&ModelFilter>,
) -> bool {
    allowed.is_none_or(|f| f.allows(p.name(), model, p.profile().is_default_model(model)))
}

/// `max_tokens` clamped to the provider's limit (unset stays unset).
pub(crate) fn adapt_max_tokens(p: &dyn Provider, requested: Option<u32>) -> Option<u32> {
    let requested = requested?;
    Some(
        p.profile()
            .max_tokens
            .map_or(requested, |cap| requested.min(cap)),
    )
}

/// Plans the fallback sequence for a request. With `explain`, every place
/// and the classification carry their reason (for [`explain`] and debug
/// logs); without, those reasons are left empty, since a request on its way
/// reads only the sequence (skip reasons are always given: attempts report
/// them).
///
/// [`explain`]: crate::LlmClient::explain
pub(crate) fn plan(
    cfg: &RoutingConfig,
    req: &LlmRequest,
    instances: &[InstanceView<'_>],
    rng: &mut fastrand::Rng,
    explain: bool,
) -> RoutePlan {
    let why = |reason: &dyn Fn() -> String| {
        if explain {
            reason()
        } else {
            String::new()
        }
    };
    let classification = classify::classify_with(req, &cfg.rules, explain);
    let needs = req.needs();
    let mut skipped = Vec::new();
    let mut usable = Vec::new();
    let mut unhealthy = Vec::new();
    for (index, v) in instances.iter().enumerate() {
        // A provider that cannot serve the request at all is never tried, not
        // even as a last resort.
        // One outside the request's allowed models is left out first, and
        // not listed (a gateway's key holder learns nothing of it).
        if !allowed(cfg, v.provider.as_ref(), req) {
            continue;
        }
        if let Some(missing) = missing_capability(cfg, v.provider.as_ref(), req, &needs) {
            skipped.push(SkippedProvider {
                provider: v.provider.name().to_string(),
                reason: unsupported_reason(missing),
            });
            continue;
        }
        let candidate = Candidate {
            index,
            name: v.provider.name(),
            kind: v.provider.kind(),
            local: v.provider.profile().local,
            latency: v.latency,
        };
        match &v.skip {
            Some(reason) => {
                skipped.push(SkippedProvider {
                    provider: v.provider.name().to_string(),
                    reason: reason.clone(),
                });
                unhealthy.push(candidate);
            }
            None => usable.push(candidate),
        }
    }
    let mut ordered = usable.clone();
    strategy::order(cfg, cfg.strategy, &mut ordered, rng);

    let mut seq: Vec<(usize, String)> = Vec::with_capacity(usable.len() + 1);
    let push = |seq: &mut Vec<(usize, String)>, idx: usize, reason: String| {
        if !seq.iter().any(|(i, _)| *i == idx) {
            seq.push((idx, reason));
        }
    };

    // 1. The provider the request names.
    if let Some(name) = &req.provider {
        if let Some(c) = usable.iter().find(|c| c.name == name) {
            push(&mut seq, c.index, why(&|| "requested".into()));
        }
    }
    // 2. Classification.
    if seq.is_empty() {
        match classification.class {
            TaskClass::Simple => {
                let cheapest = usable.iter().filter(|c| c.local).min_by(|a, b| {
                    strategy::cost(cfg, a)
                        .total_cmp(&strategy::cost(cfg, b))
                        .then(a.index.cmp(&b.index))
                });
                if let Some(c) = cheapest {
                    push(
                        &mut seq,
                        c.index,
                        why(&|| "simple task: cheapest local provider".into()),
                    );
                }
            }
            TaskClass::Complex => {
                let strongest = usable.iter().min_by(|a, b| {
                    strategy::performance(cfg, b)
                        .total_cmp(&strategy::performance(cfg, a))
                        .then(a.index.cmp(&b.index))
                });
                if let Some(c) = strongest {
                    push(
                        &mut seq,
                        c.index,
                        why(&|| "complex task: highest performance".into()),
                    );
                }
            }
            TaskClass::Standard => {}
        }
    }
    // 3. Strategy.
    if seq.is_empty() {
        if let Some(c) = ordered.first() {
            push(
                &mut seq,
                c.index,
                why(&|| format!("{} strategy", cfg.strategy)),
            );
        }
    }
    // 4. The fallback map of the primary, then everyone else in strategy order.
    if let Some((primary, _)) = seq.first().cloned() {
        let p = instances[primary].provider;
        let chain = cfg
            .fallback
            .get(p.name())
            .or_else(|| cfg.fallback.get(p.kind()))
            .map_or(&[][..], Vec::as_slice);
        for entry in chain {
            let by_name = ordered.iter().any(|c| c.name == entry);
            for c in ordered.iter().filter(|c| {
                if by_name {
                    c.name == entry
                } else {
                    c.kind == entry
                }
            }) {
                push(
                    &mut seq,
                    c.index,
                    why(&|| format!("fallback of {}", p.name())),
                );
            }
        }
        for c in &ordered {
            push(
                &mut seq,
                c.index,
                why(&|| format!("{} strategy", cfg.strategy)),
            );
        }
    }

    // 5. Nothing healthy: one last-resort call to the first unhealthy provider
    //    in strategy order (the named one first), rather than no call at all.
    //    A provider that recovered before its cooldown ended answers it.
    let mut last_resort = None;
    if seq.is_empty() && !unhealthy.is_empty() {
        strategy::order(cfg, cfg.strategy, &mut unhealthy, rng);
        let named = req
            .provider
            .as_ref()
            .and_then(|n| unhealthy.iter().find(|c| c.name == n));
        if let Some(c) = named.or(unhealthy.first()) {
            seq.push((c.index, "last resort: no healthy provider".into()));
            last_resort = Some(c.index);
            skipped.retain(|s| s.provider != c.name);
        }
    }

    let sequence = seq
        .into_iter()
        .map(|(idx, reason)| {
            let p = instances[idx].provider.as_ref();
            PlannedProvider {
                provider: p.name().to_string(),
                model: adapt_model(cfg, p, req.model.as_deref()),
                max_tokens: adapt_max_tokens(p, req.max_tokens),
                reason,
                last_resort: last_resort == Some(idx),
            }
        })
        .collect();
    RoutePlan {
        classification,
        strategy: cfg.strategy,
        requested: req.provider.clone(),
        sequence,
        skipped,
    }
}

/// Plans an embedding request: only instances that serve `model` (config
/// `embedding_models`) and can embed with it, the named one first, then in
/// strategy order; an unhealthy one only as a last resort. Never another model.
pub(crate) fn plan_embeddings(
    cfg: &RoutingConfig,
    model: &str,
    provider: Option<&str>,
    allowed: Option<&ModelFilter>,
    instances: &[InstanceView<'_>],
    rng: &mut fastrand::Rng,
) -> RoutePlan {
    let mut skipped = Vec::new();
    let mut usable = Vec::new();
    let mut unhealthy = Vec::new();
    for (index, v) in instances.iter().enumerate() {
        let p = v.provider;
        if !p.profile().embedding_models.iter().any(|m| m == model) {
            continue;
        }
        // Outside the request's allowed models: left out, unlisted.
        if !embedding_allowed(p.as_ref(), model, allowed) {
            continue;
        }
        if !p.supports(Capability::Embeddings, model) {
            skipped.push(SkippedProvider {
                provider: p.name().to_string(),
                reason: unsupported_reason(Capability::Embeddings),
            });
            continue;
        }
        let candidate = Candidate {
            index,
            name: p.name(),
            kind: p.kind(),
            local: p.profile().local,
            latency: v.latency,
        };
        match &v.skip {
            Some(reason) => {
                skipped.push(SkippedProvider {
                    provider: p.name().to_string(),
                    reason: reason.clone(),
                });
                unhealthy.push(candidate);
            }
            None => usable.push(candidate),
        }
    }
    strategy::order(cfg, cfg.strategy, &mut usable, rng);
    if let Some(name) = provider {
        if let Some(pos) = usable.iter().position(|c| c.name == name) {
            let named = usable.remove(pos);
            usable.insert(0, named);
        }
    }
    let mut sequence: Vec<PlannedProvider> = usable
        .iter()
        .map(|c| PlannedProvider {
            provider: c.name.to_string(),
            model: model.to_string(),
            max_tokens: None,
            reason: format!("serves embedding model {model}"),
            last_resort: false,
        })
        .collect();
    if sequence.is_empty() && !unhealthy.is_empty() {
        strategy::order(cfg, cfg.strategy, &mut unhealthy, rng);
        let named = provider.and_then(|n| unhealthy.iter().find(|c| c.name == n));
        if let Some(c) = named.or(unhealthy.first()) {
            skipped.retain(|s| s.provider != c.name);
            sequence.push(PlannedProvider {
                provider: c.name.to_string(),
                model: model.to_string(),
                max_tokens: None,
                reason: "last resort: no healthy provider".into(),
                last_resort: true,
            });
        }
    }
    RoutePlan {
        classification: Classification {
            class: TaskClass::Standard,
            reason: format!("embeddings with {model}"),
            prompt_chars: 0,
        },
        strategy: cfg.strategy,
        requested: provider.map(str::to_string),
        sequence,
        skipped,
    }
}
