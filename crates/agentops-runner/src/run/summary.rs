//! The run summary written to `.agents/runs/<id>.md`.

use std::collections::BTreeMap;

use crate::RunError;
use crate::spec::{self};
use crate::state::PhaseDone;

use super::*;

/// The run's summary for `.agents/runs/<id>.md` — deterministic (no times,
/// no commit ids), so a resumed run writes the same file.
pub(super) fn run_summary(
    sh: &Shared<'_>,
    done: &BTreeMap<String, PhaseDone>,
) -> Result<String, RunError> {
    let s = &sh.st.started;
    let order: Vec<String> = spec::waves(&s.workflow.phases)
        .into_iter()
        .flatten()
        .collect();
    let mut body = format!(
        "# Run {}: {}\n\nGoal: {}\n\n| phase | agent | attempts | tokens | cost (USD) |\n|---|---|---|---|---|\n",
        sh.st.id, s.workflow.name, s.goal
    );
    for p in &order {
        if let Some(d) = done.get(p) {
            body.push_str(&format!(
                "| {p} | {} | {} | {} | {:.4} |\n",
                s.workflow.phases[p].agent,
                d.attempt,
                d.usage.total(),
                d.cost_usd
            ));
        }
    }
    for p in &order {
        if let Some(d) = done.get(p) {
            body.push_str(&format!("\n## {p}\n\n{}\n", d.summary.trim()));
        }
    }
    crate::tools::render_entry(
        &format!("run-{}", sh.st.id),
        agentops_knowledge::EntryType::Run,
        &format!(
            "{}: {}",
            s.workflow.name,
            s.goal.lines().next().unwrap_or("")
        ),
        Vec::new(),
        sh.st.started_ts,
        None,
        sh.st.id.as_str(),
        &body,
        sh.ctx.journal.redactor(),
    )
    .map_err(RunError::State)
}
