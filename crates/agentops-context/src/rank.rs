//! Rank = relevance × freshness × utility × maturity. Relevance (BM25) comes
//! first: the other factors are bounded, so together they can move an entry
//! by at most a few times, never make an unrelated entry outrank a match.

use agentops_knowledge::{EntryType, Maturity};
use serde::Serialize;

/// The parts of a score, for `--explain`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreParts {
    /// BM25 over the body (title included) and tags (×0.5), with expansion;
    /// with vectors, BM25 over the best BM25 plus the similarity scaled over
    /// the vector candidates (0 to 2).
    pub relevance: f64,
    /// 0.5 + 0.5 × 2^(−age / half-life): from 1.0 (new) down to 0.5 (old).
    pub freshness: f64,
    /// 0.5 + utility, utility being the EMA of feedback in [0, 1] (starts at 0.5).
    pub utility: f64,
    /// established 1.3, provisional 1.0, deprecated 0.4.
    pub maturity: f64,
    pub total: f64,
}

/// Freshness of an entry `age_days` old.
pub fn freshness(age_days: f64, half_life_days: f64) -> f64 {
    let age = age_days.max(0.0);
    0.5 + 0.5 * 0.5f64.powf(age / half_life_days.max(f64::MIN_POSITIVE))
}

/// The weight of a maturity.
pub fn maturity_weight(m: Maturity) -> f64 {
    match m {
        Maturity::Established => 1.3,
        Maturity::Provisional => 1.0,
        Maturity::Deprecated => 0.4,
    }
}

/// Whether entries of this type are shown as warnings.
pub fn is_warning(kind: EntryType) -> bool {
    kind == EntryType::AntiPattern
}

/// Combines the parts.
pub fn score(
    relevance: f64,
    age_days: f64,
    half_life_days: f64,
    utility: f64,
    maturity: Maturity,
) -> ScoreParts {
    let f = freshness(age_days, half_life_days);
    let u = 0.5 + utility.clamp(0.0, 1.0);
    let m = maturity_weight(maturity);
    ScoreParts {
        relevance,
        freshness: f,
        utility: u,
        maturity: m,
        total: relevance * f * u * m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn factors_are_bounded(age in 0.0f64..100_000.0, hl in 1.0f64..1000.0, u in 0.0f64..1.0) {
            let f = freshness(age, hl);
            prop_assert!((0.5..=1.0).contains(&f));
            let s = score(1.0, age, hl, u, Maturity::Provisional);
            prop_assert!(s.total >= 0.25 && s.total <= 1.5);
        }

        #[test]
        fn newer_is_never_less_fresh(a in 0.0f64..10_000.0, b in 0.0f64..10_000.0) {
            let (young, old) = if a < b { (a, b) } else { (b, a) };
            prop_assert!(freshness(young, 90.0) >= freshness(old, 90.0));
        }
    }
}
