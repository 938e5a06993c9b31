//! What a front end shows of a run (`agentops show`, the dashboard, the MCP
//! `run_show` tool): its state and a timeline of what happened, as typed
//! values decoded once from the journal.

use std::path::Path;

use agentops_core::RunId;
use agentops_llm::Response;
use agentops_protocol::EventBody;
use agentops_protocol::event::{PauseReason, RunCompleted, Verdict};
use agentops_store::{Journal, Query};
use serde::Serialize;

use crate::RunError;
use crate::state::RunState;

/// One line of a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Step {
    Started,
    Resumed {
        from: String,
    },
    Paused {
        reason: PauseReason,
    },
    PhaseStarted {
        phase: String,
        attempt: u32,
        agent: String,
        model: String,
    },
    ModelCallFailed {
        error_type: String,
    },
    ModelCall {
        turn: u32,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
        duration_ms: f64,
    },
    Tool {
        name: String,
        is_error: bool,
    },
    Gate {
        gate: String,
        verdict: Verdict,
        summary: String,
    },
    Retry {
        phase: String,
    },
    PhaseDone {
        phase: String,
        commit: String,
    },
    Finished {
        /// `completed`, `failed`, `cancelled`.
        status: String,
    },
    Landed {
        into: String,
    },
}

/// A timeline line with its time (µs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineItem {
    pub ts: i64,
    #[serde(flatten)]
    pub step: Step,
}

/// Everything `agentops show` says of a run.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub state: RunState,
    /// The status label, `interrupted` for a run no process executes.
    pub status: String,
    pub timeline: Vec<TimelineItem>,
    /// Events in the run's journal.
    pub events: usize,
}

/// A recorded answer: what `agentops show --recording` prints, and what a
/// `replay:` backend reads.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub key: String,
    pub response: Response,
}

/// Reads run `id`'s detail from the journal.
pub fn run_detail(journal: &Journal, state_dir: &Path, id: &RunId) -> Result<RunDetail, RunError> {
    let events = journal.read(&Query::run(id.clone()))?;
    let state = RunState::from_events(id, state_dir, &events)?;
    let status = if state.interrupted(state_dir) {
        "interrupted".to_owned()
    } else {
        state.status.label().to_owned()
    };
    let timeline = timeline(&events);
    Ok(RunDetail {
        state,
        status,
        timeline,
        events: events.len(),
    })
}

/// The timeline lines of `events` (one run's, in order).
pub fn timeline(events: &[agentops_core::Event]) -> Vec<TimelineItem> {
    events
        .iter()
        .filter_map(|e| {
            let step = step_of(EventBody::decode(e).ok()?)?;
            Some(TimelineItem { ts: e.ts, step })
        })
        .collect()
}

/// The model answers run `id` recorded, in order.
pub fn recording(journal: &Journal, id: &RunId) -> Result<Vec<Recorded>, RunError> {
    let events = journal.read(&Query::run(id.clone()))?;
    Ok(events
        .iter()
        .filter_map(|e| match EventBody::decode(e) {
            Ok(EventBody::LlmCall(c)) => Some(Recorded {
                key: c.key?,
                response: c.response?,
            }),
            _ => None,
        })
        .collect())
}

fn step_of(b: EventBody) -> Option<Step> {
    Some(match b {
        EventBody::RunStarted(_) => Step::Started,
        EventBody::RunResumed(r) => Step::Resumed { from: r.from },
        EventBody::RunPaused(p) => Step::Paused { reason: p.reason },
        EventBody::StepStarted(s) => Step::PhaseStarted {
            phase: s.phase,
            attempt: s.attempt,
            agent: s.agent,
            model: s.model,
        },
        EventBody::LlmCall(c) if c.error.is_some() => Step::ModelCallFailed {
            error_type: c.error_type.unwrap_or_default(),
        },
        EventBody::LlmCall(c) => Step::ModelCall {
            turn: c.turn.unwrap_or(0),
            input_tokens: c.usage.input_tokens,
            output_tokens: c.usage.output_tokens,
            cost_usd: c.cost_usd.unwrap_or(0.0),
            duration_ms: c.duration_ms.unwrap_or(0.0),
        },
        EventBody::ToolCall(t) => Step::Tool {
            name: t.name,
            is_error: t.is_error,
        },
        EventBody::GateVerdict(g) => Step::Gate {
            gate: g.gate,
            verdict: g.verdict,
            summary: g.summary,
        },
        EventBody::StepRetry(r) => Step::Retry { phase: r.phase },
        EventBody::StepCompleted(d) => Step::PhaseDone {
            phase: d.phase,
            commit: d.commit,
        },
        EventBody::RunCompleted(c) => Step::Finished {
            status: match c {
                RunCompleted::Completed { .. } => "completed",
                RunCompleted::Failed { .. } => "failed",
                RunCompleted::Cancelled => "cancelled",
            }
            .to_owned(),
        },
        EventBody::RunLanded(l) => Step::Landed { into: l.into },
        _ => return None,
    })
}

impl Step {
    /// The line `agentops show` prints.
    pub fn text(&self) -> String {
        match self {
            Step::Started => "run started".to_owned(),
            Step::Resumed { from } => format!("resumed (was {from})"),
            Step::Paused { reason } => format!("paused: {reason}"),
            Step::PhaseStarted {
                phase,
                attempt,
                agent,
                model,
            } => format!("▸ {phase} attempt {attempt} ({agent}, {model})"),
            Step::ModelCallFailed { error_type } => {
                format!("    model call failed: {error_type}")
            }
            Step::ModelCall {
                turn,
                input_tokens,
                output_tokens,
                cost_usd,
                duration_ms,
            } => format!(
                "    model call turn {turn}: {input_tokens} in / {output_tokens} out tokens, ${cost_usd:.4}, {duration_ms:.0} ms"
            ),
            Step::Tool { name, is_error } => {
                format!(
                    "      tool {name}{}",
                    if *is_error { " (error)" } else { "" }
                )
            }
            Step::Gate {
                gate,
                verdict,
                summary,
            } => format!("    gate {gate}: {} — {summary}", verdict.as_str()),
            Step::Retry { .. } => "    retry with the gates' evidence as feedback".to_owned(),
            Step::PhaseDone { phase, commit } => format!(
                "✓ {phase} checkpoint {}",
                commit.chars().take(10).collect::<String>()
            ),
            Step::Finished { status } => format!("run {status}"),
            Step::Landed { into } => format!("landed into {into}"),
        }
    }
}
