//! What a call costs: USD per million tokens by model, with separate prices
//! for cache reads and cache writes.
//!
//! The checked-in table holds list prices of current OpenAI and Anthropic
//! models (late 2026); a model is matched by the longest table key that its
//! name starts with, so `claude-sonnet-4-5-20250929` finds `claude-sonnet-4-5`.
//! Override or extend it with [`PriceTable::set`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Cache reads (OpenAI: "cached input").
    pub cache_read: f64,
    /// Cache writes (Anthropic's 5-minute cache; OpenAI does not charge extra).
    pub cache_write: f64,
}

impl Price {
    const fn anthropic(input: f64, output: f64) -> Self {
        // Anthropic: cache reads 0.1×, 5-minute cache writes 1.25× the input price.
        Self {
            input,
            output,
            cache_read: input * 0.1,
            cache_write: input * 1.25,
        }
    }

    const fn openai(input: f64, cached: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cache_read: cached,
            cache_write: input,
        }
    }

    /// The cost of `usage` at this price.
    pub fn cost(&self, u: &Usage) -> f64 {
        (u.uncached_input() as f64 * self.input
            + u.cache_read_tokens as f64 * self.cache_read
            + u.cache_creation_tokens as f64 * self.cache_write
            + u.output_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

const DEFAULTS: &[(&str, Price)] = &[
    ("claude-opus-4-5", Price::anthropic(5.0, 25.0)),
    ("claude-opus-4-1", Price::anthropic(15.0, 75.0)),
    ("claude-opus-4", Price::anthropic(15.0, 75.0)),
    ("claude-sonnet-4", Price::anthropic(3.0, 15.0)),
    ("claude-3-7-sonnet", Price::anthropic(3.0, 15.0)),
    ("claude-haiku-4-5", Price::anthropic(1.0, 5.0)),
    ("claude-3-5-haiku", Price::anthropic(0.8, 4.0)),
    ("gpt-5-nano", Price::openai(0.05, 0.005, 0.40)),
    ("gpt-5-mini", Price::openai(0.25, 0.025, 2.0)),
    ("gpt-5", Price::openai(1.25, 0.125, 10.0)),
    ("gpt-4.1-nano", Price::openai(0.10, 0.025, 0.40)),
    ("gpt-4.1-mini", Price::openai(0.40, 0.10, 1.60)),
    ("gpt-4.1", Price::openai(2.0, 0.50, 8.0)),
    ("gpt-4o-mini", Price::openai(0.15, 0.075, 0.60)),
    ("gpt-4o", Price::openai(2.50, 1.25, 10.0)),
    ("o4-mini", Price::openai(1.10, 0.275, 4.40)),
    ("o3", Price::openai(2.0, 0.50, 8.0)),
];

/// Prices by model-name prefix.
#[derive(Debug, Clone, Serialize)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            prices: DEFAULTS
                .iter()
                .map(|(k, p)| ((*k).to_owned(), *p))
                .collect(),
        }
    }
}

impl PriceTable {
    /// Sets (or adds) the price of models starting with `prefix`.
    pub fn set(&mut self, prefix: &str, price: Price) {
        self.prices.insert(prefix.to_owned(), price);
    }

    /// The checked-in table with `[prices]` from config on top.
    pub fn with_overrides(
        overrides: &std::collections::BTreeMap<String, agentops_core::config::PriceOverride>,
    ) -> Self {
        let mut t = Self::default();
        for (k, o) in overrides {
            t.set(
                &k.to_ascii_lowercase(),
                Price {
                    input: o.input,
                    output: o.output,
                    cache_read: o.cache_read.unwrap_or(o.input),
                    cache_write: o.cache_write.unwrap_or(o.input),
                },
            );
        }
        t
    }

    /// The price for `model`: the longest prefix that matches.
    pub fn price(&self, model: &str) -> Option<Price> {
        let model = model.trim().to_ascii_lowercase();
        // Providers' routing prefixes ("anthropic/claude-…", "openai/gpt-…").
        let model = model.rsplit('/').next().unwrap_or(&model);
        self.prices
            .iter()
            .filter(|(k, _)| model.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    /// What `usage` on `model` costs, when the model is known.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::default();
        assert_eq!(
            t.price("gpt-5-mini-2025-08-07"),
            Some(Price::openai(0.25, 0.025, 2.0))
        );
        assert_eq!(
            t.price("gpt-5-codex"),
            Some(Price::openai(1.25, 0.125, 10.0))
        );
        assert_eq!(
            t.price("anthropic/claude-sonnet-4-5"),
            Some(Price::anthropic(3.0, 15.0))
        );
        assert_eq!(t.price("llama-3.3-70b"), None);
    }

    #[test]
    fn cached_tokens_are_priced_apart() {
        let t = PriceTable::default();
        // The Claude Code fixture's run: its own total_cost_usd is 0.0571.
        let u = Usage {
            input_tokens: 2429 + 12044 + 12446,
            output_tokens: 275,
            cache_read_tokens: 12044,
            cache_creation_tokens: 12446,
        };
        let c = t.cost("claude-sonnet-4-5", &u).unwrap_or(0.0);
        let expect = (2429.0 * 3.0 + 12044.0 * 0.3 + 12446.0 * 3.75 + 275.0 * 15.0) / 1e6;
        assert!(close(c, expect), "{c} vs {expect}");
        // Within 10% of what Claude Code itself reported for the run.
        assert!((c - 0.0571).abs() / 0.0571 < 0.1, "{c}");
        // Codex: 19,840 of 24,763 input tokens were cache reads.
        let u = Usage {
            input_tokens: 24763,
            output_tokens: 1122,
            cache_read_tokens: 19840,
            cache_creation_tokens: 0,
        };
        let c = t.cost("gpt-5-codex", &u).unwrap_or(0.0);
        let expect = (4923.0 * 1.25 + 19840.0 * 0.125 + 1122.0 * 10.0) / 1e6;
        assert!(close(c, expect));
    }
}
