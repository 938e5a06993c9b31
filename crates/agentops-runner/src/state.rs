//! A run's state, derived from its journal events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use agentops_core::{Event, EventKind, RunId};
use agentops_gates::GateSpec;
use agentops_llm::{Response, Usage};
use agentops_protocol::EventBody;
use agentops_protocol::event as body;
use agentops_store::{Journal, Query};
use serde::Serialize;

use crate::RunError;
use crate::spec::{Agent, Budget, WorkflowSpec};

pub use agentops_protocol::event::PauseReason;

/// What `run.started` records, with the runner's and gates' spec types.
pub type Started = body::RunStarted<WorkflowSpec, Agent, GateSpec>;

/// The branch of run `id`.
pub fn branch_of(id: &RunId) -> String {
    format!("agentops/run/{id}")
}

/// The worktree of run `id`.
pub fn worktree_of(state_dir: &Path, id: &RunId) -> PathBuf {
    state_dir.join("worktrees").join(id.as_str())
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    /// Executing now, or killed while executing (see [`RunState::interrupted`]).
    Running,
    Paused {
        reason: PauseReason,
        detail: String,
    },
    Completed {
        commit: String,
    },
    Failed {
        error: String,
    },
    Cancelled,
    Landed {
        commit: String,
    },
}

impl RunStatus {
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Paused { .. } => "paused",
            RunStatus::Completed { .. } => "completed",
            RunStatus::Failed { .. } => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Landed { .. } => "landed",
        }
    }

    pub fn finished(&self) -> bool {
        matches!(
            self,
            RunStatus::Completed { .. }
                | RunStatus::Cancelled
                | RunStatus::Landed { .. }
                | RunStatus::Failed { .. }
        )
    }
}

/// A phase that completed.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseDone {
    pub commit: String,
    pub summary: String,
    pub attempt: u32,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// What has been spent.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spent {
    pub tokens: u64,
    pub usd: f64,
    pub turns: u64,
}

impl Spent {
    pub fn add(&mut self, u: &Usage, cost: f64) {
        self.tokens += u.total();
        self.usd += cost;
        self.turns += 1;
    }
}

/// Everything known about a run.
#[derive(Debug, Clone)]
pub struct RunState {
    pub id: RunId,
    pub started: Started,
    pub started_ts: i64,
    pub status: RunStatus,
    pub completed: BTreeMap<String, PhaseDone>,
    pub last_checkpoint: Option<String>,
    /// Recorded answers by request key, in order.
    pub recorded: HashMap<String, VecDeque<Response>>,
    pub spent: Spent,
    pub spent_by_phase: BTreeMap<String, Spent>,
    /// Microseconds of execution before the current segment.
    pub active_us: i64,
    /// Attempts granted beyond `max_attempts` by resumes after escalation.
    pub extra_attempts: u32,
    /// The budget in force (the workflow's, or a resume's override).
    pub budget: Budget,
    /// `seq` of the last start or resume.
    pub segment_seq: i64,
    pub calls: u64,
    pub last_ts: i64,
}

fn err_decode(e: &Event, what: &str) -> RunError {
    RunError::State(format!(
        "journal event {} ({}) is not a valid {what}",
        e.seq, e.kind
    ))
}

impl RunState {
    /// Rebuilds the state of `id` from its events.
    pub fn load(journal: &Journal, state_dir: &Path, id: &RunId) -> Result<Self, RunError> {
        let events = journal.read(&Query::run(id.clone()))?;
        Self::from_events(id, state_dir, &events)
    }

    /// `state_dir` is `<git-common-dir>/agentops`: the branch and worktree
    /// are derived from the id, never read back from the (redacted) body.
    pub fn from_events(id: &RunId, state_dir: &Path, events: &[Event]) -> Result<Self, RunError> {
        let first = events
            .iter()
            .find(|e| e.kind == EventKind::RunStarted)
            .ok_or_else(|| RunError::NotFound(format!("no run `{id}` (see `agentops runs`)")))?;
        let mut started =
            body::decode::<Started>(first).map_err(|_| err_decode(first, "run.started"))?;
        started.branch = branch_of(id);
        started.worktree = worktree_of(state_dir, id);
        let mut st = RunState {
            id: id.clone(),
            budget: started.budget,
            started,
            started_ts: first.ts,
            status: RunStatus::Running,
            completed: BTreeMap::new(),
            last_checkpoint: None,
            recorded: HashMap::new(),
            spent: Spent::default(),
            spent_by_phase: BTreeMap::new(),
            active_us: 0,
            extra_attempts: 0,
            segment_seq: first.seq,
            calls: 0,
            last_ts: first.ts,
        };
        let mut segment_start = first.ts;
        for e in events {
            st.last_ts = st.last_ts.max(e.ts);
            // A body that does not fit its kind is skipped, as before the
            // bodies were typed: one odd event never hides a run.
            let Ok(b) = EventBody::decode(e) else {
                continue;
            };
            match b {
                EventBody::LlmCall(c) => {
                    let cost = c.cost_usd.unwrap_or(0.0);
                    st.spent.add(&c.usage, cost);
                    st.spent_by_phase
                        .entry(c.phase.clone().unwrap_or_default())
                        .or_default()
                        .add(&c.usage, cost);
                    st.calls += 1;
                    if c.replayable == Some(true)
                        && let (Some(k), Some(r)) = (c.key, c.response)
                    {
                        st.recorded.entry(k).or_default().push_back(r);
                    }
                }
                EventBody::StepCompleted(d) => {
                    st.last_checkpoint = Some(d.commit.clone());
                    st.completed.insert(
                        d.phase,
                        PhaseDone {
                            commit: d.commit,
                            summary: d.summary,
                            attempt: d.attempt.max(1),
                            usage: d.usage,
                            cost_usd: d.cost_usd,
                        },
                    );
                }
                EventBody::RunPaused(p) => {
                    st.active_us += e.ts - segment_start;
                    segment_start = e.ts;
                    st.status = RunStatus::Paused {
                        reason: p.reason,
                        detail: p.detail,
                    };
                }
                EventBody::RunResumed(r) => {
                    segment_start = e.ts;
                    st.segment_seq = e.seq;
                    st.status = RunStatus::Running;
                    if let Some(b) = r.budget {
                        st.budget = b;
                    }
                    st.extra_attempts += r.extra_attempts;
                }
                EventBody::RunCompleted(c) => {
                    st.status = match c {
                        body::RunCompleted::Completed { commit, .. } => {
                            RunStatus::Completed { commit }
                        }
                        body::RunCompleted::Cancelled => RunStatus::Cancelled,
                        body::RunCompleted::Failed { error, .. } => RunStatus::Failed { error },
                    };
                }
                EventBody::RunLanded(l) => {
                    st.status = RunStatus::Landed { commit: l.commit };
                }
                _ => {}
            }
        }
        if st.status == RunStatus::Running {
            st.active_us += st.last_ts - segment_start;
        }
        Ok(st)
    }

    /// The lock file that marks a run being executed.
    pub fn lock_path(state_dir: &std::path::Path, id: &RunId) -> PathBuf {
        state_dir.join("runs").join(format!("{id}.lock"))
    }

    /// Running in the journal but no process holds its lock: it was killed.
    pub fn interrupted(&self, state_dir: &std::path::Path) -> bool {
        self.status == RunStatus::Running && !Self::lock_held(state_dir, &self.id)
    }

    /// Whether a process holds run `id`'s lock (is executing it).
    pub fn lock_held(state_dir: &std::path::Path, id: &RunId) -> bool {
        let p = Self::lock_path(state_dir, id);
        let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(&p) else {
            return false;
        };
        match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

/// One line of `agentops runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    pub goal: String,
    pub status: String,
    pub detail: String,
    /// When the run started (µs; RFC 3339 in JSON, as `started`).
    #[serde(
        rename = "started",
        serialize_with = "agentops_core::time::serialize_us"
    )]
    pub started_ts: i64,
    pub phases_done: usize,
    pub phases: usize,
    pub tokens: u64,
    pub cost_usd: f64,
    pub branch: String,
}

/// Every run, newest first.
pub fn list_runs(
    journal: &Journal,
    state_dir: &std::path::Path,
    limit: usize,
) -> Result<Vec<RunSummary>, RunError> {
    let starts = journal.read(&Query {
        kinds: vec![EventKind::RunStarted],
        ..Query::default()
    })?;
    let mut out = Vec::new();
    for s in starts.iter().rev().take(limit) {
        let st = RunState::load(journal, state_dir, &s.run_id)?;
        let mut status = st.status.label().to_owned();
        let detail = match &st.status {
            RunStatus::Paused { reason, .. } => reason.to_string(),
            RunStatus::Failed { error } => error.chars().take(80).collect(),
            _ => String::new(),
        };
        if st.interrupted(state_dir) {
            status = "interrupted".into();
        }
        out.push(RunSummary {
            id: st.id.to_string(),
            workflow: st.started.workflow.name.clone(),
            goal: st.started.goal.clone(),
            status,
            detail,
            started_ts: st.started_ts,
            phases_done: st.completed.len(),
            phases: st.started.workflow.phases.len(),
            tokens: st.spent.tokens,
            cost_usd: st.spent.usd,
            branch: st.started.branch.clone(),
        });
    }
    Ok(out)
}
