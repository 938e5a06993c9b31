//! Approval gates: a person decides. A gate run records a request in the
//! journal; `agentops approve|reject` records the decision from any process;
//! the next run of the gate reads it.

use agentops_core::{EventKind, RunId};
use agentops_protocol::EventBody;
use agentops_protocol::event::{ApprovalRequested, ApprovalResolved, new_event};
use agentops_store::{Durability, Journal, Query, StoreError};
use serde::Serialize;

/// Where an approval stands for one gate of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ApprovalState {
    /// Never asked.
    None,
    /// Asked, not yet decided.
    Pending {
        requested_ts: i64,
        what: String,
    },
    Approved {
        by: String,
        reason: String,
        ts: i64,
    },
    Rejected {
        by: String,
        reason: String,
        ts: i64,
    },
}

/// The state of `gate` for `run`: the latest decision made after the latest
/// request, if any.
pub fn state(journal: &Journal, run: &RunId, gate: &str) -> Result<ApprovalState, StoreError> {
    let events = journal.read(&Query {
        run_id: Some(run.clone()),
        kinds: vec![EventKind::ApprovalRequested, EventKind::ApprovalResolved],
        ..Query::default()
    })?;
    let mut st = ApprovalState::None;
    for e in &events {
        match EventBody::decode(e) {
            // A decision holds: later requests do not reopen it.
            Ok(EventBody::ApprovalRequested(r))
                if r.gate == gate
                    && !matches!(
                        st,
                        ApprovalState::Approved { .. } | ApprovalState::Rejected { .. }
                    ) =>
            {
                st = ApprovalState::Pending {
                    requested_ts: e.ts,
                    what: r.what,
                };
            }
            Ok(EventBody::ApprovalResolved(r))
                if r.gate == gate && matches!(st, ApprovalState::Pending { .. }) =>
            {
                st = if r.approved {
                    ApprovalState::Approved {
                        by: r.by,
                        reason: r.reason,
                        ts: e.ts,
                    }
                } else {
                    ApprovalState::Rejected {
                        by: r.by,
                        reason: r.reason,
                        ts: e.ts,
                    }
                };
            }
            _ => {}
        }
    }
    Ok(st)
}

/// Records a request (durably: a person may act on it from another process).
pub fn request(journal: &Journal, run: &RunId, gate: &str, what: &str) -> Result<(), StoreError> {
    journal.append(
        new_event(
            run.clone(),
            ApprovalRequested {
                gate: gate.to_owned(),
                what: what.to_owned(),
            },
        ),
        Durability::Sync,
    )?;
    Ok(())
}

/// A pending approval, for listing.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub run: String,
    pub gate: String,
    pub what: String,
    pub requested_ts: i64,
}

/// Every approval still waiting, across runs (or in one run).
pub fn pending(journal: &Journal, run: Option<&RunId>) -> Result<Vec<Pending>, StoreError> {
    let events = journal.read(&Query {
        run_id: run.cloned(),
        kinds: vec![EventKind::ApprovalRequested],
        ..Query::default()
    })?;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for e in events.iter().rev() {
        let Ok(EventBody::ApprovalRequested(ApprovalRequested { gate, .. })) = EventBody::decode(e)
        else {
            continue;
        };
        let key = (e.run_id.to_string(), gate.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        if let ApprovalState::Pending { requested_ts, what } = state(journal, &e.run_id, &gate)? {
            out.push(Pending {
                run: e.run_id.to_string(),
                gate,
                what,
                requested_ts,
            });
        }
    }
    out.sort_by_key(|p| p.requested_ts);
    Ok(out)
}

/// Records a decision for every pending approval of `run` (or only `gate`).
/// Returns the gates decided; empty when nothing was pending.
pub fn resolve(
    journal: &Journal,
    run: &RunId,
    gate: Option<&str>,
    approved: bool,
    by: &str,
    reason: &str,
) -> Result<Vec<String>, StoreError> {
    let mut decided = Vec::new();
    for p in pending(journal, Some(run))? {
        if gate.is_some_and(|g| g != p.gate) {
            continue;
        }
        journal.append(
            new_event(
                run.clone(),
                ApprovalResolved {
                    gate: p.gate.clone(),
                    approved,
                    by: by.to_owned(),
                    reason: reason.to_owned(),
                },
            ),
            Durability::Sync,
        )?;
        decided.push(p.gate);
    }
    Ok(decided)
}
