//! Starting, executing, resuming, pausing, cancelling, landing and cleaning
//! up runs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentops_core::config::Config;
use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_gates::{Gate, GateResult, Next, Verdict};
use agentops_llm::{Backend, BackendSpec, Message, Part, PriceTable, Request, Response, Role};
use agentops_protocol::EventBody;
use agentops_protocol::event::{self as body, ControlAction, new_event};
use agentops_store::{Durability, Journal, Query, RepoLayout};
use serde::Serialize;

use crate::RunError;
use crate::git::{checkpoint, checkpoint_paths, git, reset_to};
use crate::spec::{self, Agent, Budget};
use crate::state::{self, PauseReason, PhaseDone, RunState, RunStatus, Spent, Started};
use crate::tools::{KnowledgeSearch, ToolEnv};

/// What a run reports as it goes (the CLI renders it).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    RunStarted {
        run: String,
        workflow: String,
        branch: String,
        worktree: String,
        resumed: bool,
    },
    PhaseStarted {
        phase: String,
        agent: String,
        attempt: u32,
    },
    ModelCall {
        phase: String,
        turn: u32,
        tokens: u64,
        cost_usd: f64,
        ms: f64,
        replayed: bool,
    },
    ToolCall {
        phase: String,
        tool: String,
        ok: bool,
    },
    Gate {
        phase: String,
        gate: String,
        verdict: String,
        summary: String,
    },
    PhaseRetry {
        phase: String,
        attempt: u32,
    },
    PhaseCompleted {
        phase: String,
        attempt: u32,
        tokens: u64,
        cost_usd: f64,
        seconds: f64,
        commit: String,
        replayed_calls: u32,
        live_calls: u32,
    },
    Paused {
        reason: PauseReason,
        detail: String,
    },
    Finished {
        status: String,
        commit: Option<String>,
        tokens: u64,
        cost_usd: f64,
    },
}

/// Receives progress.
pub trait Progress: Sync {
    fn event(&self, e: &ProgressEvent);
}

/// What runs need from the project.
pub struct RunContext<'a> {
    pub layout: &'a RepoLayout,
    pub config: &'a Config,
    pub journal: &'a Journal,
    /// Reads environment variables (keys).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    pub progress: &'a dyn Progress,
}

/// `agentops run WORKFLOW GOAL`
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub workflow: String,
    pub goal: String,
    pub vars: BTreeMap<String, String>,
    /// Base revision (default: HEAD).
    pub base: Option<String>,
    /// Overrides of the workflow's budget.
    pub budget: Budget,
    /// Overrides every agent's backend.
    pub backend: Option<String>,
}

/// `agentops resume RUN`
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    /// New limits (replace the run's, key by key).
    pub budget: Budget,
}

/// How a run ended this time.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Completed {
        run: String,
        commit: String,
    },
    Paused {
        run: String,
        reason: PauseReason,
        detail: String,
    },
    Failed {
        run: String,
        error: String,
    },
    Cancelled {
        run: String,
    },
}

impl Outcome {
    /// 0 completed, 1 failed or cancelled, 3 paused (waiting for a person).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Completed { .. } => 0,
            Outcome::Paused { .. } => 3,
            Outcome::Failed { .. } | Outcome::Cancelled { .. } => 1,
        }
    }
}

fn merge_budget(base: Budget, over: Budget) -> Budget {
    Budget {
        tokens: over.tokens.or(base.tokens),
        usd: over.usd.or(base.usd),
        seconds: over.seconds.or(base.seconds),
        turns: over.turns.or(base.turns),
    }
}

fn event(run: &RunId, body: impl Into<EventBody>) -> NewEvent {
    new_event(run.clone(), body)
}

/// An event kind by its stored name.
fn kind(name: &str) -> EventKind {
    name.parse()
        .unwrap_or_else(|_| EventKind::Other(name.to_owned()))
}

/// The fields every `llm.call` of a phase turn carries.
fn call_body(
    key: &str,
    phase: &str,
    attempt: u32,
    turn: u32,
    agent: &Agent,
    backend: &dyn Backend,
    model: &str,
) -> body::LlmCall {
    body::LlmCall {
        key: Some(key.to_owned()),
        phase: Some(phase.to_owned()),
        attempt: Some(attempt),
        turn: Some(turn),
        agent: Some(agent.spec.name.clone()),
        provider: Some(backend.provider().to_owned()),
        model: Some(model.to_owned()),
        ..body::LlmCall::default()
    }
}

/// Starts a run of `opts.workflow` and executes it.
pub fn start(ctx: &RunContext<'_>, opts: &StartOptions) -> Result<Outcome, RunError> {
    let agents_dir = ctx.layout.agents_dir();
    let workflow =
        spec::load_workflow(&agents_dir, &opts.workflow).map_err(|e| RunError::Spec(vec![e]))?;
    let (agents, agent_errors) = spec::load_agents_checked(&agents_dir);
    let gates = agentops_gates::load(&agents_dir).map_err(|e| RunError::Config(e.to_string()))?;
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
    .map_err(|e| RunError::Config(format!("--base: {e}")))?;
    let base_branch = if opts.base.is_none() {
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
    let id = RunId::parse(
        &agentops_core::ids::Ulid::generate()
            .to_string()
            .to_ascii_lowercase(),
    )
    .map_err(|e| RunError::State(e.to_string()))?;
    let branch = state::branch_of(&id);
    let worktree = state::worktree_of(&ctx.layout.state_dir(), &id);
    std::fs::create_dir_all(ctx.layout.state_dir().join("worktrees"))
        .map_err(|e| RunError::Git(e.to_string()))?;
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
                                .is_some_and(|c| c.spec.judges.iter().flatten().any(|j| j == *k))
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
    let body = started
        .to_body()
        .map_err(|e| RunError::State(e.to_string()))?;
    ctx.journal.append(event(&id, body), Durability::Sync)?;
    let st = RunState::load(ctx.journal, &ctx.layout.state_dir(), &id)?;
    execute(ctx, st, false)
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
        if let Err(e) = git(
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
            return Err(RunError::Git(format!(
                "the merge into {base} conflicts; nothing changed ({e})"
            )));
        }
        "merge"
    } else {
        git(root, &["fetch", "-q", ".", &format!("{}:{base}", st.started.branch)]).map_err(|e| {
            RunError::Git(format!("{base} moved since the run started and is not checked out; check it out and land again ({e})"))
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

struct Shared<'a> {
    ctx: &'a RunContext<'a>,
    st: RunState,
    recorded: Mutex<HashMap<String, VecDeque<Response>>>,
    spent: Mutex<(Spent, BTreeMap<String, Spent>)>,
    commit_lock: Mutex<()>,
    stop: AtomicBool,
    segment: Instant,
    prices: PriceTable,
    count: &'a (dyn Fn(&str) -> usize + Sync),
    search: Option<KnowledgeSearch<'a>>,
    /// The knowledge index, opened once per run.
    index: Option<&'a agentops_context::index::KnowledgeIndex>,
    policy: agentops_gates::policy::CommandPolicy,
    gates: BTreeMap<String, Gate>,
}

enum PhaseResult {
    Done(PhaseDone),
    Paused { reason: PauseReason, detail: String },
    Stopped,
    Cancelled,
}

fn execute(ctx: &RunContext<'_>, mut st: RunState, resumed: bool) -> Result<Outcome, RunError> {
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
    let tokenizer = agentops_context::tokens::TokenizerKind::parse(&ctx.config.context.tokenizer)
        .unwrap_or(agentops_context::tokens::TokenizerKind::O200k);
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
fn children_file(state_dir: &Path, id: &RunId) -> std::path::PathBuf {
    state_dir.join("runs").join(format!("{id}.children"))
}

fn acquire_lock(state_dir: &Path, id: &RunId) -> Result<File, RunError> {
    let p = RunState::lock_path(state_dir, id);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| RunError::State(format!("{}: {e}", d.display())))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&p)
        .map_err(|e| RunError::State(format!("{}: {e}", p.display())))?;
    f.try_lock()
        .map_err(|_| RunError::Busy(format!("run {id} is being executed by another process")))?;
    Ok(f)
}

fn drive(sh: &Shared<'_>) -> Result<Outcome, RunError> {
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
            sh.ctx.journal.append(
                event(
                    id,
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
            return Ok(Outcome::Paused {
                run,
                reason,
                detail,
            });
        }
    }
    // Every phase is done: the run summary, a last commit, the end.
    let wt = &sh.st.started.worktree;
    let summary = run_summary(sh, &summaries)?;
    let rel = format!(".agents/runs/{id}.md");
    let path = wt.join(&rel);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| RunError::Git(e.to_string()))?;
    }
    std::fs::write(&path, summary).map_err(|e| RunError::Git(e.to_string()))?;
    let commit = checkpoint_paths(
        wt,
        &sh.st.started.branch,
        &BTreeSet::from([rel]),
        &format!(
            "agentops: run {id} completed ({})",
            sh.st.started.workflow.name
        ),
    )?;
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

fn finish_progress(sh: &Shared<'_>, status: &str, commit: Option<String>) {
    let spent = sh.spent.lock().map(|g| g.0).unwrap_or_default();
    sh.ctx.progress.event(&ProgressEvent::Finished {
        status: status.into(),
        commit,
        tokens: spent.tokens,
        cost_usd: spent.usd,
    });
}

/// The run's summary for `.agents/runs/<id>.md` — deterministic (no times,
/// no commit ids), so a resumed run writes the same file.
fn run_summary(sh: &Shared<'_>, done: &BTreeMap<String, PhaseDone>) -> Result<String, RunError> {
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

fn ancestors(phases: &BTreeMap<String, spec::PhaseSpec>, name: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = phases
        .get(name)
        .map(|p| p.needs.clone())
        .unwrap_or_default();
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone())
            && let Some(p) = phases.get(&n)
        {
            stack.extend(p.needs.iter().cloned());
        }
    }
    // In workflow order.
    spec::waves(phases)
        .into_iter()
        .flatten()
        .filter(|p| seen.contains(p))
        .collect()
}

fn clip_tokens(text: &str, max: usize, count: &dyn Fn(&str) -> usize) -> String {
    if count(text) <= max {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        let keep = chars.len() * 9 / 10;
        chars.truncate(keep);
        let s: String = chars.iter().collect();
        if count(&s) + 8 <= max {
            return format!("{s}\n[summary cut to {max} tokens]");
        }
    }
    String::new()
}

fn system_prompt(agent: &Agent) -> String {
    let mut s = String::new();
    if !agent.prompt.trim().is_empty() {
        s.push_str(agent.prompt.trim());
        s.push_str("\n\n");
    }
    s.push_str(&format!(
        "You are the `{}` agent. Your one purpose: {}\nDo only this phase's task. When you are done, answer with a short summary of what you did and what the next phase should know.",
        agent.spec.name,
        agent.spec.purpose.trim()
    ));
    if !agent.spec.write_scope.is_empty() {
        s.push_str(&format!(
            "\nYou may change only: {}.",
            agent.spec.write_scope.join(", ")
        ));
    }
    s
}

fn phase_message(
    sh: &Shared<'_>,
    phase: &str,
    agent: &Agent,
    summaries: &BTreeMap<String, PhaseDone>,
    feedback: Option<&str>,
) -> Result<String, RunError> {
    let s = &sh.st.started;
    let p = &s.workflow.phases[phase];
    let task = spec::render_task(&p.task, &s.goal, &s.vars).map_err(RunError::Config)?;
    let mut m = format!(
        "# Task ({phase})\n\n{task}\n\n# Goal of the run\n\n{}\n",
        s.goal
    );
    let before = ancestors(&s.workflow.phases, phase);
    if !before.is_empty() {
        m.push_str("\n# Earlier phases\n");
        for b in before {
            if let Some(d) = summaries.get(&b) {
                let clipped = clip_tokens(
                    d.summary.trim(),
                    s.workflow.summary_tokens as usize,
                    sh.count,
                );
                m.push_str(&format!(
                    "\n## {b} ({})\n\n{clipped}\n",
                    s.workflow.phases[&b].agent
                ));
            }
        }
    }
    if agent.spec.context.knowledge
        && let Some(packet) = context_packet(sh, agent, &task)
    {
        m.push_str("\n# Relevant knowledge\n\n");
        m.push_str(&packet);
    }
    if let Some(f) = feedback {
        m.push_str("\n# Feedback from the previous attempt\n\n");
        m.push_str(f);
    }
    Ok(m)
}

/// What a call cost: as the backend reported it, else from the price table
/// (by the model that answered, else the one asked).
fn call_cost(sh: &Shared<'_>, model: &str, r: &Response) -> f64 {
    let m = if r.model.is_empty() { model } else { &r.model };
    r.reported_cost_usd
        .or_else(|| sh.prices.cost(m, &r.usage))
        .unwrap_or(0.0)
}

fn context_packet(sh: &Shared<'_>, agent: &Agent, task: &str) -> Option<String> {
    let idx = sh.index?;
    let q = agent
        .spec
        .context
        .query
        .clone()
        .unwrap_or_else(|| task.to_owned());
    let utility = |ids: &[&str]| sh.ctx.journal.utility_scores(ids);
    let hits = idx
        .search(
            &q,
            &agentops_context::index::SearchFilter::default(),
            50,
            &utility,
        )
        .ok()?;
    if hits.is_empty() {
        return None;
    }
    let p = agentops_context::packet::assemble(
        &hits,
        idx.fixed_tokens(),
        &agentops_context::packet::PacketRequest {
            budget: agent.spec.context.max_tokens,
            full_entries: usize::try_from(sh.ctx.config.context.full_entries).unwrap_or(5),
        },
    );
    (!p.text.trim().is_empty()).then_some(p.text)
}

/// Checks, before anything is created (run, branch, worktree), that every
/// API backend the workflow's phases need has its key: a missing key is a
/// configuration error naming the variable, not a paused run to clean up.
fn preflight(
    ctx: &RunContext<'_>,
    phases: &BTreeMap<String, spec::PhaseSpec>,
    agents: &BTreeMap<String, Agent>,
    gates: &BTreeMap<String, Gate>,
    backend: Option<&str>,
) -> Result<(), RunError> {
    for (name, p) in phases {
        if let Some(agent) = agents.get(&p.agent) {
            let spec_str = backend.unwrap_or(&agent.spec.backend);
            key_check(
                ctx,
                spec_str,
                agent.spec.base_url.clone(),
                agent.spec.api_key_env.clone(),
            )
            .map_err(|e| {
                RunError::Config(format!(
                    "phase {name} (agent {}, backend {spec_str}): {e}; nothing was started",
                    agent.spec.name
                ))
            })?;
        }
        // The judges of the phase's gates (a council's through its members).
        let mut names: Vec<&String> = p.gates.iter().collect();
        let mut seen = Vec::new();
        while let Some(g) = names.pop() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            let Some(gate) = gates.get(g) else { continue };
            if let Some(js) = &gate.spec.judges {
                names.extend(js.iter());
            }
            if let Some(b) = &gate.spec.backend {
                key_check(ctx, b, None, None).map_err(|e| {
                    RunError::Config(format!(
                        "phase {name}: gate `{g}` (judge backend {b}): {e}; nothing was started"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Whether an API backend (`openai:`/`anthropic:`) has what it needs to
/// start (its key); other backends and unparsable specs pass here (the spec
/// check reports those).
fn key_check(
    ctx: &RunContext<'_>,
    spec: &str,
    base_url: Option<String>,
    key_env: Option<String>,
) -> Result<(), agentops_llm::LlmError> {
    let Ok(bspec) = BackendSpec::parse(spec) else {
        return Ok(());
    };
    if !matches!(
        bspec,
        BackendSpec::OpenAi { .. } | BackendSpec::Anthropic { .. }
    ) {
        return Ok(());
    }
    let o = agentops_llm::BuildOptions {
        llm: &ctx.config.llm,
        workdir: ctx.layout.work_tree.clone(),
        env: ctx.env,
        base_url,
        key_env,
        children_file: None,
    };
    agentops_llm::build(&bspec, &o).map(|_| ())
}

fn build_backend(sh: &Shared<'_>, agent: &Agent) -> Result<(Box<dyn Backend>, String), RunError> {
    let spec_str = sh
        .st
        .started
        .backend
        .clone()
        .unwrap_or_else(|| agent.spec.backend.clone());
    let bspec = BackendSpec::parse(&spec_str)
        .map_err(|m| RunError::Config(format!("agent {}: backend: {m}", agent.spec.name)))?;
    let model = bspec
        .model()
        .map_or_else(|| spec_str.clone(), str::to_owned);
    let o = agentops_llm::BuildOptions {
        llm: &sh.ctx.config.llm,
        workdir: sh.st.started.worktree.clone(),
        env: sh.ctx.env,
        base_url: agent.spec.base_url.clone(),
        key_env: agent.spec.api_key_env.clone(),
        children_file: Some(children_file(&sh.ctx.layout.state_dir(), &sh.st.id)),
    };
    let b = agentops_llm::build(&bspec, &o)
        .map_err(|e| RunError::Config(format!("agent {}: {e}", agent.spec.name)))?;
    Ok((b, model))
}

/// Whether something asks this run to stop: a control event, a budget.
fn check_stop(
    sh: &Shared<'_>,
    phase: &str,
    agent: &Agent,
) -> Result<Option<PhaseResult>, RunError> {
    if sh.stop.load(Ordering::Relaxed) {
        return Ok(Some(PhaseResult::Stopped));
    }
    let controls = sh.ctx.journal.read(&Query {
        run_id: Some(sh.st.id.clone()),
        kinds: vec![kind(state::RUN_CONTROL)],
        after_seq: Some(sh.st.segment_seq),
        ..Query::default()
    })?;
    if let Some(c) = controls.last() {
        sh.stop.store(true, Ordering::Relaxed);
        let cancel = matches!(
            body::decode::<body::RunControl>(c),
            Ok(body::RunControl {
                action: ControlAction::Cancel
            })
        );
        return Ok(Some(if cancel {
            PhaseResult::Cancelled
        } else {
            PhaseResult::Paused {
                reason: PauseReason::Requested,
                detail: "paused on request (`agentops pause`)".into(),
            }
        }));
    }
    let (spent, by_phase) = sh
        .spent
        .lock()
        .map(|g| (g.0, g.1.get(phase).copied().unwrap_or_default()))
        .unwrap_or_default();
    let b = &sh.st.budget;
    let secs = (sh.st.active_us as f64 / 1e6) + sh.segment.elapsed().as_secs_f64();
    let over = |what: &str, used: String, limit: String, scope: &str| {
        Some(PhaseResult::Paused {
            reason: PauseReason::Budget,
            detail: format!(
                "{scope} {what} budget spent ({used} of {limit}); resume with a larger one: agentops resume {} --budget-{what} N",
                sh.st.id
            ),
        })
    };
    let found = if b.tokens.is_some_and(|l| spent.tokens >= l) {
        over(
            "tokens",
            spent.tokens.to_string(),
            b.tokens.unwrap_or(0).to_string(),
            "the run's",
        )
    } else if b.usd.is_some_and(|l| spent.usd >= l) {
        over(
            "usd",
            format!("${:.4}", spent.usd),
            format!("${:.4}", b.usd.unwrap_or(0.0)),
            "the run's",
        )
    } else if b.turns.is_some_and(|l| spent.turns >= l) {
        over(
            "turns",
            spent.turns.to_string(),
            b.turns.unwrap_or(0).to_string(),
            "the run's",
        )
    } else if b.seconds.is_some_and(|l| secs >= l as f64) {
        over(
            "seconds",
            format!("{secs:.0}"),
            b.seconds.unwrap_or(0).to_string(),
            "the run's",
        )
    } else {
        let ab = &agent.spec.budget;
        if ab.tokens.is_some_and(|l| by_phase.tokens >= l) {
            over(
                "tokens",
                by_phase.tokens.to_string(),
                ab.tokens.unwrap_or(0).to_string(),
                &format!("agent {}'s", agent.spec.name),
            )
        } else if ab.usd.is_some_and(|l| by_phase.usd >= l) {
            over(
                "usd",
                format!("${:.4}", by_phase.usd),
                format!("${:.4}", ab.usd.unwrap_or(0.0)),
                &format!("agent {}'s", agent.spec.name),
            )
        } else if ab.turns.is_some_and(|l| by_phase.turns >= l) {
            over(
                "turns",
                by_phase.turns.to_string(),
                ab.turns.unwrap_or(0).to_string(),
                &format!("agent {}'s", agent.spec.name),
            )
        } else {
            None
        }
    };
    if found.is_some() {
        sh.stop.store(true, Ordering::Relaxed);
    }
    Ok(found)
}

fn run_phase(
    sh: &Shared<'_>,
    phase: &str,
    summaries: &BTreeMap<String, PhaseDone>,
) -> Result<PhaseResult, RunError> {
    let id = &sh.st.id;
    let s = &sh.st.started;
    let p = &s.workflow.phases[phase];
    let agent = s
        .agents
        .get(&p.agent)
        .ok_or_else(|| RunError::Config(format!("agent `{}` is missing from the run", p.agent)))?;
    let (backend, model) = match build_backend(sh, agent) {
        Ok(b) => b,
        Err(e) => {
            sh.stop.store(true, Ordering::Relaxed);
            return Ok(PhaseResult::Paused {
                reason: PauseReason::Error,
                detail: e.to_string(),
            });
        }
    };
    let tools = if backend.offers_tools() {
        crate::tools::specs(&agent.spec.tools)
    } else {
        Vec::new()
    };
    let scope = |g: &[String]| agentops_gates::policy::write_scope(g).map_err(RunError::Config);
    let env = ToolEnv {
        root: s
            .worktree
            .canonicalize()
            .unwrap_or_else(|_| s.worktree.clone()),
        read_scope: scope(&agent.spec.read_scope)?,
        write_scope: scope(&agent.spec.write_scope)?,
        write_scope_empty: agent.spec.write_scope.is_empty(),
        allow_commands: agent
            .spec
            .allow_commands
            .iter()
            .filter_map(|r| regex::Regex::new(r).ok())
            .collect(),
        policy: &sh.policy,
        command_timeout: Duration::from_secs(120),
        search: sh.search,
        agent: agent.spec.name.clone(),
        run_id: id.to_string(),
        created_us: sh.st.started_ts,
        redactor: sh.ctx.journal.redactor(),
    };
    let gates: Vec<&Gate> = p.gates.iter().filter_map(|g| sh.gates.get(g)).collect();
    let max_attempts = p.max_attempts + sh.st.extra_attempts;
    let phase_start = Instant::now();
    let mut feedback: Option<String> = None;
    let (mut live, mut replayed) = (0u32, 0u32);
    // What the step changed: known paths when every change went through our
    // file tools, else everything (a command or a harness ran).
    let mut wrote: BTreeSet<String> = BTreeSet::new();
    let mut all_files = backend.has_side_effects();
    let mut phase_usage = agentops_llm::Usage::default();
    let mut phase_cost = 0.0;
    let phase_span = SpanId::generate();
    for attempt in 1..=max_attempts {
        sh.ctx.progress.event(&ProgressEvent::PhaseStarted {
            phase: phase.into(),
            agent: agent.spec.name.clone(),
            attempt,
        });
        sh.ctx.journal.append(
            event(
                id,
                body::StepStarted {
                    phase: phase.to_owned(),
                    attempt,
                    agent: agent.spec.name.clone(),
                    model: model.clone(),
                    provider: backend.provider().to_owned(),
                },
            )
            .in_span(phase_span.clone(), None),
            Durability::Relaxed,
        )?;
        let first = phase_message(sh, phase, agent, summaries, feedback.as_deref())?;
        let mut messages = vec![Message::user(first)];
        let mut last_text = String::new();
        for turn in 0..agent.spec.max_turns {
            let req = Request {
                model: model.clone(),
                system: system_prompt(agent),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: agent.spec.max_tokens,
                temperature: agent.spec.temperature,
            };
            let key = req.key_redacted(sh.ctx.journal.redactor());
            let from_journal = if backend.has_side_effects() {
                None
            } else {
                sh.recorded
                    .lock()
                    .ok()
                    .and_then(|mut m| m.get_mut(&key).and_then(VecDeque::pop_front))
            };
            let resp = match from_journal {
                Some(r) => {
                    replayed += 1;
                    sh.ctx.progress.event(&ProgressEvent::ModelCall {
                        phase: phase.into(),
                        turn,
                        tokens: r.usage.total(),
                        cost_usd: 0.0,
                        ms: 0.0,
                        replayed: true,
                    });
                    r
                }
                None => {
                    if let Some(stop) = check_stop(sh, phase, agent)? {
                        return Ok(stop);
                    }
                    let t = Instant::now();
                    let started_us = agentops_core::time::now_micros();
                    let r = match backend.complete(&req, &mut |_| {}) {
                        Ok(r) => r,
                        Err(e) => {
                            sh.ctx.journal.append(
                                event(
                                    id,
                                    body::LlmCall {
                                        error: Some(e.to_string()),
                                        error_type: Some(e.kind.as_str().to_owned()),
                                        replayable: Some(false),
                                        cost_usd: Some(0.0),
                                        ..call_body(
                                            &key,
                                            phase,
                                            attempt,
                                            turn,
                                            agent,
                                            backend.as_ref(),
                                            &model,
                                        )
                                    },
                                )
                                .in_span(SpanId::generate(), Some(phase_span.clone())),
                                Durability::Sync,
                            )?;
                            sh.stop.store(true, Ordering::Relaxed);
                            return Ok(PhaseResult::Paused {
                                reason: PauseReason::Error,
                                detail: format!("phase {phase}: {e}"),
                            });
                        }
                    };
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let cost = call_cost(sh, &model, &r);
                    let mut ev = event(
                        id,
                        body::LlmCall {
                            response_model: Some(r.model.clone()),
                            response_id: Some(r.id.clone()),
                            usage: r.usage,
                            cost_usd: Some(cost),
                            duration_ms: Some(ms),
                            replayable: Some(!backend.has_side_effects()),
                            stop_reason: Some(r.stop_reason.clone()),
                            response: Some(r.clone()),
                            messages: Some(req.messages.len()),
                            ..call_body(&key, phase, attempt, turn, agent, backend.as_ref(), &model)
                        },
                    )
                    .in_span(SpanId::generate(), Some(phase_span.clone()));
                    ev.ts = started_us;
                    // Durable before any tool acts on it: a kill after this
                    // line never pays for the call again.
                    sh.ctx.journal.append(ev, Durability::Sync)?;
                    if let Ok(mut g) = sh.spent.lock() {
                        g.0.add(&r.usage, cost);
                        g.1.entry(phase.to_owned()).or_default().add(&r.usage, cost);
                    }
                    live += 1;
                    sh.ctx.progress.event(&ProgressEvent::ModelCall {
                        phase: phase.into(),
                        turn,
                        tokens: r.usage.total(),
                        cost_usd: cost,
                        ms,
                        replayed: false,
                    });
                    r
                }
            };
            phase_usage.add(&resp.usage);
            phase_cost += call_cost(sh, &model, &resp);
            last_text = resp.text();
            messages.push(resp.as_message());
            let uses: Vec<(String, String, serde_json::Value)> = resp
                .tool_uses()
                .into_iter()
                .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.clone()))
                .collect();
            if uses.is_empty() || !backend.offers_tools() {
                break;
            }
            let mut results = Vec::new();
            for (tid, name, input) in uses {
                let t = Instant::now();
                let out = if agent.spec.tools.contains(&name) {
                    if name == "run_command" {
                        // A command can change any file: commit with `git add -A`.
                        all_files = true;
                    }
                    let o = env.execute(&name, &input);
                    wrote.extend(o.wrote.iter().cloned());
                    o
                } else {
                    crate::tools::ToolOutput {
                        content: format!("tool `{name}` is not available to this agent"),
                        is_error: true,
                        wrote: vec![],
                    }
                };
                let mut input_s = input.to_string();
                input_s.truncate(input_s.floor_char_boundary(2_048));
                let mut out_s = out.content.clone();
                out_s.truncate(out_s.floor_char_boundary(2_048));
                sh.ctx.journal.append(
                    event(
                        id,
                        body::ToolCall {
                            phase: Some(phase.to_owned()),
                            attempt: Some(attempt),
                            turn: Some(turn),
                            agent: Some(agent.spec.name.clone()),
                            name: name.clone(),
                            tool_use_id: Some(tid.clone()),
                            input: serde_json::Value::String(input_s),
                            output: Some(out_s),
                            is_error: out.is_error,
                            files: out.wrote.clone(),
                            duration_ms: Some(t.elapsed().as_secs_f64() * 1000.0),
                            ..body::ToolCall::default()
                        },
                    )
                    .in_span(SpanId::generate(), Some(phase_span.clone())),
                    Durability::Relaxed,
                )?;
                sh.ctx.progress.event(&ProgressEvent::ToolCall {
                    phase: phase.into(),
                    tool: name.clone(),
                    ok: !out.is_error,
                });
                results.push(Part::ToolResult {
                    tool_use_id: tid,
                    content: out.content,
                    is_error: out.is_error,
                });
            }
            messages.push(Message {
                role: Role::User,
                content: results,
            });
        }
        // Gates on the worktree against the run's base.
        let results: Vec<GateResult> = if gates.is_empty() {
            Vec::new()
        } else {
            let all: Vec<&Gate> = sh.gates.values().collect();
            let judges = agentops_gates::JudgeEnv {
                llm: &sh.ctx.config.llm,
                agents_dir: sh.ctx.layout.agents_dir(),
                env: sh.ctx.env,
                worker: Some(agent.spec.name.clone()),
            };
            agentops_gates::run_gates_with(
                &gates,
                &all,
                &s.worktree,
                Some(&s.base_commit),
                Some(sh.ctx.journal),
                id,
                Some(&judges),
                Some(&phase_span),
            )
            .map_err(|e| RunError::Config(format!("phase {phase}: gates: {e}")))?
        };
        for r in &results {
            sh.ctx.progress.event(&ProgressEvent::Gate {
                phase: phase.into(),
                gate: r.name.clone(),
                verdict: r.verdict.as_str().into(),
                summary: r.summary.clone(),
            });
        }
        if let Some(pending) = results.iter().find(|r| r.pending) {
            sh.stop.store(true, Ordering::Relaxed);
            return Ok(PhaseResult::Paused {
                reason: PauseReason::Approval,
                detail: format!(
                    "phase {phase}: gate `{}` waits for a person: agentops approve {id} --gate {} (then agentops resume {id})",
                    pending.name, pending.name
                ),
            });
        }
        match agentops_gates::escalation(&results, attempt, max_attempts, 1_000, sh.count) {
            Next::Proceed => {
                let commit = {
                    let _g = sh.commit_lock.lock();
                    let msg = format!("agentops: {phase} (run {id}, attempt {attempt})");
                    if all_files {
                        checkpoint(&s.worktree, &msg)?
                    } else {
                        checkpoint_paths(&s.worktree, &s.branch, &wrote, &msg)?
                    }
                };
                // The summary reaches later phases, the run summary and git:
                // redacted here, once.
                let summary = sh
                    .ctx
                    .journal
                    .redactor()
                    .redact(&clip_tokens(
                        last_text.trim(),
                        s.workflow.summary_tokens as usize,
                        sh.count,
                    ))
                    .into_owned();
                sh.ctx.journal.append(
                    event(
                        id,
                        body::StepCompleted {
                            phase: phase.to_owned(),
                            attempt,
                            commit: commit.clone(),
                            summary: summary.clone(),
                            usage: phase_usage,
                            cost_usd: phase_cost,
                            duration_ms: phase_start.elapsed().as_secs_f64() * 1000.0,
                            agent: agent.spec.name.clone(),
                            gates: results
                                .iter()
                                .map(|r| body::GateOutcome {
                                    gate: r.name.clone(),
                                    verdict: r.verdict,
                                })
                                .collect(),
                        },
                    )
                    .in_span(phase_span.clone(), None),
                    Durability::Sync,
                )?;
                sh.ctx.progress.event(&ProgressEvent::PhaseCompleted {
                    phase: phase.into(),
                    attempt,
                    tokens: phase_usage.total(),
                    cost_usd: phase_cost,
                    seconds: phase_start.elapsed().as_secs_f64(),
                    commit: commit.clone(),
                    replayed_calls: replayed,
                    live_calls: live,
                });
                return Ok(PhaseResult::Done(PhaseDone {
                    commit,
                    summary,
                    attempt,
                    usage: phase_usage,
                    cost_usd: phase_cost,
                }));
            }
            Next::Retry { feedback: f } => {
                sh.ctx.journal.append(
                    event(
                        id,
                        body::StepRetry {
                            phase: phase.to_owned(),
                            attempt,
                            feedback: f.clone(),
                            agent: agent.spec.name.clone(),
                        },
                    )
                    .in_span(phase_span.clone(), None),
                    Durability::Relaxed,
                )?;
                sh.ctx.progress.event(&ProgressEvent::PhaseRetry {
                    phase: phase.into(),
                    attempt: attempt + 1,
                });
                feedback = Some(f);
            }
            Next::Escalate { feedback: f } => {
                sh.stop.store(true, Ordering::Relaxed);
                let failed: Vec<&str> = results
                    .iter()
                    .filter(|r| r.verdict == Verdict::Fail)
                    .map(|r| r.name.as_str())
                    .collect();
                return Ok(PhaseResult::Paused {
                    reason: PauseReason::Escalation,
                    detail: format!(
                        "phase {phase} failed gate(s) {} after {attempt} attempts; look at the worktree, then `agentops resume {id}` (more attempts) or `agentops cancel {id}`.\n{f}",
                        failed.join(", ")
                    ),
                });
            }
        }
    }
    Ok(PhaseResult::Paused {
        reason: PauseReason::Escalation,
        detail: format!("phase {phase}: no attempts left"),
    })
}

/// Reads a run by id prefix.
pub fn find_run(journal: &Journal, prefix: &str) -> Result<RunId, RunError> {
    if let Ok(id) = RunId::parse(prefix)
        && !journal
            .read(&Query {
                run_id: Some(id.clone()),
                kinds: vec![EventKind::RunStarted],
                limit: Some(1),
                ..Query::default()
            })?
            .is_empty()
    {
        return Ok(id);
    }
    let starts = journal.read(&Query {
        kinds: vec![EventKind::RunStarted],
        ..Query::default()
    })?;
    let matches: Vec<&RunId> = starts
        .iter()
        .map(|e| &e.run_id)
        .filter(|r| r.as_str().starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(RunError::NotFound(format!(
            "no run `{prefix}` (see `agentops runs`)"
        ))),
        many => Err(RunError::NotFound(format!(
            "`{prefix}` matches {} runs; give more of the id",
            many.len()
        ))),
    }
}
