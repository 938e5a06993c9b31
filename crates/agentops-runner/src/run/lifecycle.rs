//! Starting, resuming, pausing, cancelling and cleaning up runs: the
//! lifecycle API (landing is `land.rs`).

use std::collections::BTreeSet;

use agentops_core::RunId;
use agentops_llm::BackendSpec;
use agentops_protocol::event::{self as body, ControlAction};
use agentops_store::{Durability, Journal, RepoLayout};

use crate::RunError;
use crate::git::git;
use crate::spec::{self};
use crate::state::{self, PauseReason, RunState, RunStatus, Started};

use super::*;

/// What [`check`] found: the specs a run of `opts` uses, valid.
pub struct Checked {
    pub workflow: spec::Workflow,
    pub agents: std::collections::BTreeMap<String, crate::spec::Agent>,
    pub gates: std::collections::BTreeMap<String, agentops_gates::Gate>,
    pub vars: std::collections::BTreeMap<String, String>,
}

/// Loads and validates what a run of `opts` needs — workflow, agents,
/// gates, task templates, `--backend` — without starting anything (what
/// `run --queue` checks before it enqueues; keys are the worker's).
pub fn check(layout: &RepoLayout, opts: &StartOptions) -> Result<Checked, RunError> {
    let agents_dir = opts
        .agents_dir
        .clone()
        .unwrap_or_else(|| layout.agents_dir());
    let workflow =
        spec::load_workflow(&agents_dir, &opts.workflow).map_err(|e| RunError::Spec(vec![e]))?;
    let (agents, agent_errors) = spec::load_agents_checked(&agents_dir);
    let gates = agentops_gates::load(&agents_dir).map_err(|source| RunError::Gates {
        context: String::new(),
        source,
    })?;
    let errs = spec::validate(&workflow, &agents, &agent_errors, &gates);
    if !errs.is_empty() {
        return Err(RunError::Spec(errs));
    }
    let mut vars = workflow.spec.vars.clone();
    vars.extend(opts.vars.clone());
    for (name, p) in &workflow.spec.phases {
        spec::render_task(&p.task, &opts.goal, &vars)
            .map_err(|m| RunError::Config(format!("phases.{name}.task: {m}")))?;
    }
    if let Some(b) = &opts.backend {
        BackendSpec::parse(b).map_err(|m| RunError::Config(format!("--backend: {m}")))?;
    }
    Ok(Checked {
        workflow,
        agents,
        gates,
        vars,
    })
}

/// Starts a run of `opts.workflow` and executes it.
pub fn start(ctx: &RunContext<'_>, opts: &StartOptions) -> Result<Outcome, RunError> {
    let Checked {
        workflow,
        agents,
        gates,
        vars,
    } = check(ctx.layout, opts)?;
    preflight(
        ctx,
        &workflow.spec.phases,
        &agents,
        &gates,
        opts.backend.as_deref(),
    )?;
    let root = ctx.layout.work_tree.clone();
    let base_commit = git(
        &root,
        &[
            "rev-parse",
            "--verify",
            &format!("{}^{{commit}}", opts.base.as_deref().unwrap_or("HEAD")),
        ],
    )
    .map_err(|e| match e {
        RunError::GitCommand(c) => RunError::Base(c),
        other => other,
    })?;
    let base_branch = if opts.base_branch.is_some() {
        opts.base_branch.clone()
    } else if opts.base.is_none() {
        git(&root, &["symbolic-ref", "--short", "-q", "HEAD"]).ok()
    } else {
        opts.base.clone().filter(|b| {
            git(
                &root,
                &["show-ref", "--verify", "-q", &format!("refs/heads/{b}")],
            )
            .is_ok()
        })
    };
    let id = match &opts.id {
        Some(id) => id.clone(),
        None => new_run_id()?,
    };
    let branch = state::branch_of(&id);
    let worktree = state::worktree_of(&ctx.layout.state_dir(), &id);
    let worktrees = ctx.layout.state_dir().join("worktrees");
    std::fs::create_dir_all(&worktrees).map_err(RunError::io(&worktrees))?;
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            &branch,
            &worktree.to_string_lossy(),
            &base_commit,
        ],
    )?;
    let used_agents: BTreeSet<&String> = workflow.spec.phases.values().map(|p| &p.agent).collect();
    let started = Started {
        agents: agents
            .into_iter()
            .filter(|(k, _)| used_agents.contains(k))
            .collect(),
        gates: gates
            .iter()
            .filter(|(k, _)| {
                workflow
                    .spec
                    .phases
                    .values()
                    .flat_map(|p| &p.gates)
                    .any(|g| {
                        g == *k
                            || gates
                                .get(g)
                                .is_some_and(|c| c.spec.judges().iter().any(|j| j == *k))
                    })
            })
            .map(|(k, g)| (k.clone(), g.spec.clone()))
            .collect(),
        budget: merge_budget(workflow.spec.budget, opts.budget),
        workflow: workflow.spec,
        goal: opts.goal.clone(),
        vars,
        base_commit,
        base_branch,
        branch,
        worktree,
        backend: opts.backend.clone(),
    };
    let body = serde_json::to_value(&started)?;
    ctx.journal.append(
        NewEvent::now(id.clone(), EventKind::RunStarted, body),
        Durability::Sync,
    )?;
    let st = RunState::load(ctx.journal, &ctx.layout.state_dir(), &id)?;
    execute(ctx, st, false)
}

/// A new run id (a ULID, lower case).
pub fn new_run_id() -> Result<RunId, RunError> {
    Ok(RunId::parse(
        &agentops_core::ids::Ulid::generate()
            .to_string()
            .to_ascii_lowercase(),
    )?)
}

/// Resumes a paused or interrupted run.
pub fn resume(ctx: &RunContext<'_>, id: &RunId, opts: &ResumeOptions) -> Result<Outcome, RunError> {
    let st = RunState::load(ctx.journal, &ctx.layout.state_dir(), id)?;
    if st.status.finished() {
        return Err(RunError::State(format!(
            "run {id} is {}; there is nothing to resume",
            st.status.label()
        )));
    }
    let extra = match &st.status {
        RunStatus::Paused {
            reason: PauseReason::Escalation,
            ..
        } => {
            // A person looked at it: give the phase another round of attempts.
            st.started
                .workflow
                .phases
                .values()
                .map(|p| p.max_attempts)
                .max()
                .unwrap_or(3)
        }
        _ => 0,
    };
    let budget = merge_budget(st.budget, opts.budget);
    ctx.journal.append(
        event(
            id,
            body::RunResumed {
                from: st.status.label().to_owned(),
                budget: Some(budget),
                extra_attempts: extra,
            },
        ),
        Durability::Sync,
    )?;
    let st = RunState::load(ctx.journal, &ctx.layout.state_dir(), id)?;
    execute(ctx, st, true)
}

/// Asks a running run to pause at its next step boundary (or pauses an
/// interrupted one at once).
pub fn pause(layout: &RepoLayout, journal: &Journal, id: &RunId) -> Result<String, RunError> {
    let st = RunState::load(journal, &layout.state_dir(), id)?;
    match &st.status {
        RunStatus::Running if st.interrupted(&layout.state_dir()) => {
            journal.append(
                event(
                    id,
                    body::RunPaused {
                        reason: PauseReason::Requested,
                        detail: "paused while interrupted".into(),
                    },
                ),
                Durability::Sync,
            )?;
            Ok(format!(
                "run {id} paused; `agentops resume {id}` continues it"
            ))
        }
        RunStatus::Running => {
            journal.append(
                event(
                    id,
                    body::RunControl {
                        action: ControlAction::Pause,
                    },
                ),
                Durability::Sync,
            )?;
            Ok(format!("asked run {id} to pause at its next step"))
        }
        s => Err(RunError::State(format!(
            "run {id} is {}; only a running run can pause",
            s.label()
        ))),
    }
}

/// Cancels a run: a running one stops at its next step, a paused or
/// interrupted one at once. Its branch stays; `agentops gc` removes the
/// worktree.
pub fn cancel(layout: &RepoLayout, journal: &Journal, id: &RunId) -> Result<String, RunError> {
    let st = RunState::load(journal, &layout.state_dir(), id)?;
    if st.status.finished() {
        return Err(RunError::State(format!(
            "run {id} is already {}",
            st.status.label()
        )));
    }
    if st.status == RunStatus::Running && !st.interrupted(&layout.state_dir()) {
        journal.append(
            event(
                id,
                body::RunControl {
                    action: ControlAction::Cancel,
                },
            ),
            Durability::Sync,
        )?;
        return Ok(format!(
            "asked run {id} to stop; it is cancelled at its next step"
        ));
    }
    journal.append(event(id, body::RunCompleted::Cancelled), Durability::Sync)?;
    Ok(format!(
        "run {id} cancelled (branch {} kept)",
        st.started.branch
    ))
}

/// Removes the worktrees of finished runs (branches stay); returns the ids.
pub fn gc(layout: &RepoLayout, journal: &Journal) -> Result<Vec<String>, RunError> {
    let mut out = Vec::new();
    for s in state::list_runs(journal, &layout.state_dir(), usize::MAX)? {
        if !matches!(
            s.status.as_str(),
            "completed" | "cancelled" | "landed" | "failed"
        ) {
            continue;
        }
        let wt = layout.state_dir().join("worktrees").join(&s.id);
        if wt.exists() {
            git(
                &layout.work_tree,
                &["worktree", "remove", "--force", &wt.to_string_lossy()],
            )?;
            out.push(s.id);
        }
    }
    let _ = git(&layout.work_tree, &["worktree", "prune"]);
    Ok(out)
}

// ------------------------------------------------------------ executing --
