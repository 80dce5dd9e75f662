//! Cost accounting, exact to well below a cent.
//!
//! Prices are converted once to integer pico-dollars per token; a cost is an
//! integer product, converted to `f64` dollars only at the API edge.

use serde::{Deserialize, Serialize};

use crate::provider::ProviderProfile;
use crate::types::Usage;

/// Price of one model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// USD per 1M input tokens.
    pub input_per_1m: f64,
    /// USD per 1M output tokens.
    pub output_per_1m: f64,
    /// USD per 1M input tokens read from the provider's prompt cache
    /// (defaults to the input price).
    #[serde(default)]
    pub cached_input_per_1m: Option<f64>,
    /// USD per 1M input tokens written to the provider's prompt cache
    /// (Anthropic's cache writes; defaults to the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_1m: Option<f64>,
}

/// Pico-dollars (10⁻¹² USD) per token for a price given in USD per `per` tokens.
fn pico_per_token(usd: f64, per: f64) -> u128 {
    if !usd.is_finite() || usd <= 0.0 {
        return 0;
    }
    // USD per token × 10¹², rounded once; exact for prices with up to 6 decimals per 1M.
    (usd / per * 1e12).round() as u128
}

/// Cost of `usage` on `model` in pico-dollars, from the profile's price table,
/// else its `cost_per_1k_tokens` applied to all tokens. Local providers cost 0.
pub fn cost_pico(profile: &ProviderProfile, model: &str, usage: &Usage) -> u128 {
    if profile.local {
        return 0;
    }
    if let Some(price) = profile.pricing.get(model) {
        // Prompt-cache reads and writes are part of `prompt_tokens`, priced
        // at their own rates; the rest at the input price.
        let read = usage.cache_read_tokens.min(usage.prompt_tokens);
        let write = usage
            .cache_write_tokens
            .min(usage.prompt_tokens.saturating_sub(read));
        let plain = usage
            .prompt_tokens
            .saturating_sub(read)
            .saturating_sub(write);
        let input = pico_per_token(price.input_per_1m, 1e6);
        let read_price = price
            .cached_input_per_1m
            .map_or(input, |p| pico_per_token(p, 1e6));
        let write_price = price
            .cache_write_per_1m
            .map_or(input, |p| pico_per_token(p, 1e6));
        let output = pico_per_token(price.output_per_1m, 1e6) * u128::from(usage.completion_tokens);
        return input * u128::from(plain)
            + read_price * u128::from(read)
            + write_price * u128::from(write)
            + output;
    }
    pico_per_token(profile.cost_per_1k_tokens, 1e3) * u128::from(usage.total_tokens)
}

/// Converts pico-dollars to dollars.
pub fn pico_to_usd(pico: u128) -> f64 {
    // Split to keep full precision for large totals.
    let whole = (pico / 1_000_000_000_000) as f64;
    let frac = (pico % 1_000_000_000_000) as f64 / 1e12;
    whole + frac
}

/// Cost of `usage` on `model` in USD.
pub fn cost_usd(profile: &ProviderProfile, model: &str, usage: &Usage) -> f64 {
    pico_to_usd(cost_pico(profile, model, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_input_tokens_are_priced_at_their_own_rates() {
        let mut p = ProviderProfile::default();
        p.pricing.insert(
            "claude".into(),
            ModelPrice {
                input_per_1m: 3.0,
                output_per_1m: 15.0,
                cached_input_per_1m: Some(0.30),
                cache_write_per_1m: Some(3.75),
            },
        );
        // 1M prompt tokens: 600k cache reads, 100k cache writes, 300k plain.
        let usage = Usage::new(1_000_000, 0).with_cache(600_000, 100_000);
        // 0.3 × 3.0 + 0.6 × 0.30 + 0.1 × 3.75 = 0.9 + 0.18 + 0.375 = 1.455 USD
        assert_eq!(cost_pico(&p, "claude", &usage), 1_455_000_000_000);
        // Without a cached price, reads cost the input price.
        p.pricing.get_mut("claude").unwrap().cached_input_per_1m = None;
        assert_eq!(cost_pico(&p, "claude", &usage), 3_075_000_000_000);
    }

    #[test]
    fn million_token_cost_is_exact_to_the_cent() {
        let mut p = ProviderProfile::default();
        p.pricing.insert(
            "gpt-4o-mini".into(),
            ModelPrice {
                input_per_1m: 0.15,
                output_per_1m: 0.60,
                cached_input_per_1m: None,
                cache_write_per_1m: None,
            },
        );
        let usage = Usage::new(1_000_000, 1_000_000);
        assert_eq!(cost_pico(&p, "gpt-4o-mini", &usage), 750_000_000_000);
        assert!((cost_usd(&p, "gpt-4o-mini", &usage) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn fallback_price_per_1k_applies_to_total_tokens() {
        let p = ProviderProfile {
            cost_per_1k_tokens: 0.01,
            ..Default::default()
        };
        let usage = Usage::new(600, 400);
        assert!((cost_usd(&p, "any", &usage) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn local_providers_cost_nothing() {
        let p = ProviderProfile {
            local: true,
            cost_per_1k_tokens: 5.0,
            ..Default::default()
        };
        assert_eq!(cost_pico(&p, "m", &Usage::new(10, 10)), 0);
    }
}
