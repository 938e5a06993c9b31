//! Landing a completed run: its branch merged into the base, never forced.

use agentops_core::RunId;
use agentops_protocol::event::{self as body};
use agentops_store::{Durability, Journal, RepoLayout};
use serde::Serialize;

use crate::RunError;
use crate::git::git;
use crate::state::{RunState, RunStatus};

use super::*;

/// What `land` did.
#[derive(Debug, Clone, Serialize)]
pub struct LandReport {
    pub run: String,
    pub into: String,
    pub commit: String,
    pub how: String,
}

/// Merges a completed run (every gate passed) into its base branch — a
/// merge commit when the base is checked out and clean, a fast-forward
/// otherwise; never forced.
pub fn land(layout: &RepoLayout, journal: &Journal, id: &RunId) -> Result<LandReport, RunError> {
    let st = RunState::load(journal, &layout.state_dir(), id)?;
    let RunStatus::Completed { .. } = &st.status else {
        return Err(RunError::State(format!(
            "run {id} is {}; only a completed run whose gates passed can land",
            st.status.label()
        )));
    };
    let Some(base) = st.started.base_branch.clone() else {
        return Err(RunError::State(format!(
            "run {id} started from a detached HEAD; merge {} yourself",
            st.started.branch
        )));
    };
    let root = &layout.work_tree;
    let current = git(root, &["symbolic-ref", "--short", "-q", "HEAD"]).ok();
    let msg = format!(
        "agentops: land run {id} ({}: {})",
        st.started.workflow.name,
        st.started.goal.lines().next().unwrap_or("")
    );
    let how = if current.as_deref() == Some(base.as_str()) {
        let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])?;
        if !dirty.is_empty() {
            return Err(RunError::State(format!(
                "{base} has uncommitted changes; commit or stash them, then land again"
            )));
        }
        if let Err(source) = agentops_git::cmd::run(
            root,
            &[
                "merge",
                "--no-ff",
                "--no-edit",
                "-m",
                &msg,
                &st.started.branch,
            ],
        ) {
            let _ = git(root, &["merge", "--abort"]);
            return Err(RunError::GitStep {
                message: format!("the merge into {base} conflicts; nothing changed"),
                source,
            });
        }
        "merge"
    } else {
        agentops_git::cmd::run(
            root,
            &["fetch", "-q", ".", &format!("{}:{base}", st.started.branch)],
        )
        .map_err(|source| RunError::GitStep {
            message: format!(
                "{base} moved since the run started and is not checked out; check it out and land again"
            ),
            source,
        })?;
        "fast-forward"
    }
    .to_owned();
    let commit = git(root, &["rev-parse", &format!("refs/heads/{base}")])?;
    journal.append(
        event(
            id,
            body::RunLanded {
                into: base.clone(),
                commit: commit.clone(),
                how: how.clone(),
            },
        ),
        Durability::Sync,
    )?;
    Ok(LandReport {
        run: id.to_string(),
        into: base,
        commit,
        how,
    })
}
