//! Factor III and V views of a run as JSON values.

use agentops_core::RunId;
use agentops_store::{Journal, Query, RepoLayout};
use serde_json::{Value, json};

use crate::ApiError;

/// A run id (or unique prefix), or a session id with events.
pub fn resolve(j: &Journal, id: &str) -> Result<RunId, ApiError> {
    if let Ok(r) = RunId::parse(id)
        && !j
            .read(&Query {
                run_id: Some(r.clone()),
                limit: Some(1),
                ..Query::default()
            })
            .map_err(ApiError::failed)?
            .is_empty()
    {
        return Ok(r);
    }
    agentops_runner::run::find_run(j, id).map_err(|_| {
        ApiError::failed(format!(
            "no run or session `{id}` in the journal (see `agentops runs` and `agentops sessions`)"
        ))
    })
}

/// One run as `agentops show --json` gives it.
pub fn detail_json(layout: &RepoLayout, j: &Journal, id: &RunId) -> Result<Value, ApiError> {
    let d = agentops_runner::view::run_detail(j, &layout.state_dir(), id).map_err(run_error)?;
    let (st, status) = (&d.state, &d.status);
    Ok(json!({
        "run": id, "status": status, "state": st.status, "workflow": st.started.workflow.name, "goal": st.started.goal,
        "branch": st.started.branch, "worktree": st.started.worktree, "base_commit": st.started.base_commit,
        "tokens": st.spent.tokens, "cost_usd": st.spent.usd, "calls": st.calls, "budget": st.budget,
        "phases": st.completed, "events": d.events,
    }))
}

/// A runner error, usage or failure as the command's exit code says.
pub fn run_error(e: agentops_runner::RunError) -> ApiError {
    if e.exit_code() == 2 {
        ApiError::usage(e)
    } else {
        ApiError::failed(e)
    }
}
