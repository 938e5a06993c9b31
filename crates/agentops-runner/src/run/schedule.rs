//! Executing a run: its lock, resume recovery, and the waves of phases that can run at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use agentops_core::RunId;
use agentops_gates::Gate;
use agentops_llm::PriceTable;
use agentops_protocol::event::{self as body};
use agentops_store::Durability;

use crate::RunError;
use crate::git::{checkpoint_paths, reset_to};
use crate::spec::{self};
use crate::state::{PauseReason, PhaseDone, RunState};
use crate::tools::KnowledgeSearch;

use super::*;

pub(super) fn execute(
    ctx: &RunContext<'_>,
    mut st: RunState,
    resumed: bool,
) -> Result<Outcome, RunError> {
    let id = st.id.clone();
    let lock = acquire_lock(&ctx.layout.state_dir(), &id)?;
    let wt = st.started.worktree.clone();
    if !wt.exists() {
        return Err(RunError::State(format!(
            "the worktree of run {id} ({}) is gone; the run cannot continue",
            wt.display()
        )));
    }
    if resumed {
        // A harness the killed run started must not go on editing and
        // spending while the step runs again.
        let killed =
            agentops_llm::command::kill_recorded(&children_file(&ctx.layout.state_dir(), &id));
        if !killed.is_empty() {
            ctx.journal.append(
                event(
                    &id,
                    body::RunOrphansStopped {
                        process_groups: killed.iter().map(|&g| i64::from(g)).collect(),
                    },
                ),
                Durability::Sync,
            )?;
        }
        let to = st
            .last_checkpoint
            .clone()
            .unwrap_or_else(|| st.started.base_commit.clone());
        reset_to(&wt, &to)?;
    }
    ctx.progress.event(&ProgressEvent::RunStarted {
        run: id.to_string(),
        workflow: st.started.workflow.name.clone(),
        branch: st.started.branch.clone(),
        worktree: wt.display().to_string(),
        resumed,
    });
    let tokenizer = agentops_context::tokens::TokenizerKind::of(ctx.config.context.tokenizer);
    let count = move |s: &str| tokenizer.count(s) as usize;
    let index = agentops_context::index::KnowledgeIndex::open(ctx.layout, ctx.config, false, false)
        .ok()
        .map(|(i, _)| i);
    let search_fn = |q: &str, limit: usize| -> Result<String, String> {
        let Some(idx) = &index else {
            return Ok("no knowledge index".into());
        };
        let utility = |ids: &[&str]| ctx.journal.utility_scores(ids);
        let hits = idx
            .search(
                q,
                &agentops_context::index::SearchFilter::default(),
                50,
                &utility,
            )
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        for h in hits.into_iter().take(limit) {
            out.push_str(&format!(
                "- {} ({}) — {}\n",
                h.entry.id, h.entry.kind, h.entry.title
            ));
        }
        Ok(if out.is_empty() {
            "no matches".into()
        } else {
            out
        })
    };
    let gates = st
        .started
        .gates
        .iter()
        .map(|(k, spec)| {
            (
                k.clone(),
                Gate {
                    name: k.clone(),
                    spec: spec.clone(),
                    defined_at: format!("run {id}"),
                },
            )
        })
        .collect();
    let policy = agentops_gates::policy::CommandPolicy::from_config(&ctx.config.policy)
        .map_err(|e| RunError::Config(format!("policy: {e:?}")))?;
    let shared = Shared {
        ctx,
        recorded: Mutex::new(std::mem::take(&mut st.recorded)),
        spent: Mutex::new((st.spent, st.spent_by_phase.clone())),
        commit_lock: Mutex::new(()),
        stop: AtomicBool::new(false),
        segment: Instant::now(),
        prices: PriceTable::with_overrides(&ctx.config.prices),
        count: &count,
        search: index.as_ref().map(|_| &search_fn as KnowledgeSearch<'_>),
        index: index.as_ref(),
        policy,
        gates,
        st,
    };
    let result = drive(&shared);
    drop(lock);
    result
}

/// Where a run's command-harness process groups are recorded.
pub(super) fn children_file(state_dir: &Path, id: &RunId) -> std::path::PathBuf {
    state_dir.join("runs").join(format!("{id}.children"))
}

pub(super) fn acquire_lock(state_dir: &Path, id: &RunId) -> Result<File, RunError> {
    let p = RunState::lock_path(state_dir, id);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(RunError::io(d))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&p)
        .map_err(RunError::io(&p))?;
    f.try_lock()
        .map_err(|_| RunError::Busy(format!("run {id} is being executed by another process")))?;
    Ok(f)
}

pub(super) fn drive(sh: &Shared<'_>) -> Result<Outcome, RunError> {
    let id = &sh.st.id;
    let run = id.to_string();
    let mut summaries: BTreeMap<String, PhaseDone> = sh.st.completed.clone();
    for wave in spec::waves(&sh.st.started.workflow.phases) {
        let todo: Vec<String> = wave
            .into_iter()
            .filter(|p| !summaries.contains_key(p))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let results: Vec<(String, Result<PhaseResult, RunError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .iter()
                .map(|p| {
                    let summaries = &summaries;
                    (p.clone(), s.spawn(move || run_phase(sh, p, summaries)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(p, h)| {
                    (
                        p,
                        h.join().unwrap_or_else(|_| {
                            Err(RunError::State("a phase thread panicked".into()))
                        }),
                    )
                })
                .collect()
        });
        if lost(sh) {
            // Another worker owns the run now: record nothing more.
            return Err(lost_error(id));
        }
        let mut pause: Option<(PauseReason, String)> = None;
        let mut cancelled = false;
        for (p, r) in results {
            match r {
                Ok(PhaseResult::Done(d)) => {
                    summaries.insert(p.clone(), d);
                }
                Ok(PhaseResult::Paused { reason, detail }) => {
                    pause.get_or_insert((reason, detail));
                }
                Ok(PhaseResult::Stopped) => {}
                Ok(PhaseResult::Cancelled) => cancelled = true,
                // The journal could not take a write (the team store
                // restarting, a full disk): the run is not failed, it is
                // interrupted — `resume` (or a worker's retry) goes on from
                // the last recorded step.
                Err(e @ RunError::Store(_)) => return Err(e),
                Err(e) => {
                    let error = e.to_string();
                    sh.ctx.journal.append(
                        event(
                            id,
                            body::RunCompleted::Failed {
                                error: error.clone(),
                                phase: Some(p.clone()),
                            },
                        ),
                        Durability::Sync,
                    )?;
                    finish_progress(sh, "failed", None);
                    return Ok(Outcome::Failed { run, error });
                }
            }
        }
        if cancelled {
            sh.ctx
                .journal
                .append(event(id, body::RunCompleted::Cancelled), Durability::Sync)?;
            finish_progress(sh, "cancelled", None);
            return Ok(Outcome::Cancelled { run });
        }
        if let Some((reason, detail)) = pause {
            return pause_run(sh, reason, detail);
        }
    }
    // Every phase is done: the run summary, a last commit, the end.
    let wt = &sh.st.started.worktree;
    let summary = run_summary(sh, &summaries)?;
    let rel = format!(".agents/runs/{id}.md");
    let path = wt.join(&rel);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(RunError::io(d))?;
    }
    std::fs::write(&path, summary).map_err(RunError::io(&path))?;
    let commit = checkpoint_paths(
        wt,
        &sh.st.started.branch,
        &BTreeSet::from([rel]),
        &format!(
            "agentops: run {id} completed ({})",
            sh.st.started.workflow.name
        ),
    )?;
    if let Err(detail) = publish(sh, &commit) {
        return pause_run(sh, PauseReason::Other("remote".into()), detail);
    }
    if lost(sh) {
        return Err(lost_error(id));
    }
    sh.ctx.journal.append(
        event(
            id,
            body::RunCompleted::Completed {
                commit: commit.clone(),
                gates_passed: true,
            },
        ),
        Durability::Sync,
    )?;
    finish_progress(sh, "completed", Some(commit.clone()));
    Ok(Outcome::Completed { run, commit })
}

/// Records the pause, reports it, and ends this segment of the run.
fn pause_run(sh: &Shared<'_>, reason: PauseReason, detail: String) -> Result<Outcome, RunError> {
    sh.ctx.journal.append(
        event(
            &sh.st.id,
            body::RunPaused {
                reason: reason.clone(),
                detail: detail.clone(),
            },
        ),
        Durability::Sync,
    )?;
    sh.ctx.progress.event(&ProgressEvent::Paused {
        reason: reason.clone(),
        detail: detail.clone(),
    });
    Ok(Outcome::Paused {
        run: sh.st.id.to_string(),
        reason,
        detail,
    })
}

/// What a run that another worker took over stops with.
fn lost_error(id: &RunId) -> RunError {
    RunError::Busy(format!(
        "run {id}: this worker's lease ran out and another worker took the run over; it stopped here"
    ))
}

pub(super) fn finish_progress(sh: &Shared<'_>, status: &str, commit: Option<String>) {
    let spent = sh.spent.lock().map(|g| g.0).unwrap_or_default();
    sh.ctx.progress.event(&ProgressEvent::Finished {
        status: status.into(),
        commit,
        tokens: spent.tokens,
        cost_usd: spent.usd,
    });
}
