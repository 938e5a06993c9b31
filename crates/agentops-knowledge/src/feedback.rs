//! Feedback: what a signal about an entry does. Utility (an EMA in the
//! journal) moves toward the signal's target; enough good feedback promotes a
//! provisional entry to established, low utility deprecates it — each a
//! memory write. The one path for `agentops feedback` (a person) and the
//! hooks' automatic feedback.

use agentops_core::RunId;
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Durability, Journal, Utility};

use crate::{Entry, Knowledge, KnowledgeError, Maturity, Provenance, WriteOutcome};

/// How far one signal moves utility toward its target.
pub const ALPHA: f64 = 0.1;

/// A signal about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// It was given to a session (injected, or fetched by a search).
    Retrieved,
    /// The session referred to it: its id, its file, or its title.
    Used,
    /// A session that used it ended with its stop gates passing.
    Helpful,
    /// It was contradicted.
    Harmful,
}

impl Signal {
    pub const ALL: [Signal; 4] = [
        Signal::Retrieved,
        Signal::Used,
        Signal::Helpful,
        Signal::Harmful,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Retrieved => "retrieved",
            Signal::Used => "used",
            Signal::Helpful => "helpful",
            Signal::Harmful => "harmful",
        }
    }

    /// Where the signal moves utility: retrieval alone is neutral (the start
    /// value), so being shown often never raises an entry by itself.
    pub fn target(self) -> f64 {
        match self {
            Signal::Retrieved => Utility::START,
            Signal::Used => 0.75,
            Signal::Helpful => 1.0,
            Signal::Harmful => 0.0,
        }
    }

    /// Parses a signal name; the error lists the names.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!("signal `{s}` is not known; allowed: retrieved, used, helpful, harmful")
            })
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one signal did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub utility: Utility,
    /// The maturity it moved the entry to, if it did.
    pub moved: Option<Maturity>,
    /// That move's memory write.
    pub write: Option<WriteOutcome>,
}

/// The maturity an entry at `current` with utility `u` moves to, if any:
/// promoted after at least 3 signals with utility ≥ 0.55, deprecated below
/// 0.3.
pub fn maturity_move(current: Maturity, u: Utility) -> Option<Maturity> {
    if u.events >= 3 && u.value >= 0.55 && current == Maturity::Provisional {
        Some(Maturity::Established)
    } else if u.value < 0.3 && current != Maturity::Deprecated {
        Some(Maturity::Deprecated)
    } else {
        None
    }
}

/// Moves the utility of entry `id` by `signal` and journals the
/// `knowledge.feedback` event under `run`; no maturity move (see [`apply`]).
pub fn record(
    journal: &Journal,
    id: &str,
    signal: Signal,
    run: &RunId,
) -> Result<Utility, agentops_store::StoreError> {
    let u = journal.apply_feedback(id, signal.target(), ALPHA)?;
    journal.append(
        new_event(
            run.clone(),
            body::KnowledgeFeedback {
                entry: id.to_owned(),
                signal: signal.as_str().to_owned(),
                utility: u.value,
                events: u64::from(u.events),
            },
        ),
        Durability::Relaxed,
    )?;
    Ok(u)
}

/// [`record`] for several entries at once: one utility transaction, one
/// journal append.
pub fn record_many(
    journal: &Journal,
    ids: &[&str],
    signal: Signal,
    run: &RunId,
) -> Result<Vec<Utility>, agentops_store::StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<(&str, f64)> = ids.iter().map(|id| (*id, signal.target())).collect();
    let us = journal.apply_feedback_many(&items, ALPHA)?;
    let events = ids
        .iter()
        .zip(&us)
        .map(|(id, u)| {
            new_event(
                run.clone(),
                body::KnowledgeFeedback {
                    entry: (*id).to_owned(),
                    signal: signal.as_str().to_owned(),
                    utility: u.value,
                    events: u64::from(u.events),
                },
            )
        })
        .collect();
    journal.append_batch(events, Durability::Relaxed)?;
    Ok(us)
}

/// Applies `signal` to `entry`: moves its utility, journals a
/// `knowledge.feedback` event under `run`, and moves its maturity (a memory
/// write with `source`) when the utility says so.
pub fn apply(
    k: &Knowledge,
    journal: &Journal,
    entry: &Entry,
    signal: Signal,
    source: &Provenance,
    run: &RunId,
) -> Result<Applied, KnowledgeError> {
    let u = record(journal, entry.id.as_str(), signal, run)?;
    let moved = maturity_move(entry.maturity, u);
    let write = match moved {
        Some(m) => Some(k.set_maturity(entry.id.as_str(), m, source, Some(journal))?),
        None => None,
    };
    Ok(Applied {
        utility: u,
        moved,
        write,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_is_neutral_and_moves_follow_utility() {
        assert_eq!(Signal::Retrieved.target(), Utility::START);
        for s in Signal::ALL {
            assert_eq!(Signal::parse(s.as_str()), Ok(s));
        }
        assert!(Signal::parse("great").unwrap_err().contains("allowed"));
        let u = |value, events| Utility { value, events };
        assert_eq!(
            maturity_move(Maturity::Provisional, u(0.6, 3)),
            Some(Maturity::Established)
        );
        assert_eq!(maturity_move(Maturity::Provisional, u(0.6, 2)), None);
        assert_eq!(
            maturity_move(Maturity::Established, u(0.2, 9)),
            Some(Maturity::Deprecated)
        );
        assert_eq!(maturity_move(Maturity::Deprecated, u(0.2, 9)), None);
    }
}
