//! Runs: the types a front end uses (context, options, progress, outcome)
//! and, in submodules with one job each, the lifecycle API, the scheduler,
//! the phase, its turn loop, tool dispatch and checkpoint, prompts, backends
//! and the summary (budget policy is `crate::budget`, landing is in the
//! lifecycle).

mod backend;
mod checkpoint;
mod dispatch;
mod land;
mod lifecycle;
mod phase;
mod prompt;
mod schedule;
mod summary;
mod turn;

use backend::*;
use checkpoint::*;
use dispatch::*;
pub use land::{LandReport, land};
pub use lifecycle::{Checked, cancel, check, gc, new_run_id, pause, resume, start};
use phase::*;
use prompt::*;
use schedule::*;
use summary::*;
use turn::*;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use agentops_core::config::Config;
use agentops_core::{EventKind, NewEvent, RunId};
use agentops_gates::Gate;
use agentops_llm::{Backend, PriceTable, Response};
use agentops_protocol::EventBody;
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Journal, Query, RepoLayout};
use serde::Serialize;

use crate::RunError;
use crate::spec::{Agent, Budget};
use crate::state::{PauseReason, PhaseDone, RunState, Spent};
use crate::tools::KnowledgeSearch;

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
    /// Publishes a checkpoint before the journal records it (a worker
    /// pushes the run branch to the remote): `(branch, commit)`. An error
    /// pauses the run (reason `remote`) with nothing recorded past the last
    /// published checkpoint.
    pub publish: Option<&'a Publish>,
    /// Set when this process no longer owns the run (a worker's lease ran
    /// out and another took it over): the run stops at its next step and
    /// records nothing more.
    pub lost: Option<&'a AtomicBool>,
}

/// See [`RunContext::publish`].
pub type Publish = dyn Fn(&str, &str) -> Result<(), String> + Sync;

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
    /// The run's id (a queued run's, given at enqueue); default a new one.
    pub id: Option<RunId>,
    /// The branch the run lands into (a queued run's, from where it was
    /// enqueued); default the checked-out branch when `base` is not given.
    pub base_branch: Option<String>,
    /// Where the agent, workflow and gate specs are read (a worker reads
    /// them as of the base commit); default the project's `.agents/`.
    pub agents_dir: Option<std::path::PathBuf>,
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

#[derive(Debug)]
enum PhaseResult {
    Done(PhaseDone),
    Paused { reason: PauseReason, detail: String },
    Stopped,
    Cancelled,
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
