//! Journal event bodies: one type per event kind, shared by every writer and
//! every reader, so a field has one name and one type.
//!
//! The journal stores a body as JSON beside its kind ([`EventKind`]);
//! [`EventBody::decode`] turns the pair back into a typed value and
//! [`EventBody::into_event`] does the reverse. Decoding is lenient where old
//! journals differ: missing fields take their defaults, and the names older
//! releases wrote (a tool result's `ok`, the runner's `tool` and `wrote`) are
//! read into today's (`is_error`, `name`, `files`). A kind this version does
//! not know decodes as [`EventBody::Other`] with its JSON kept verbatim.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use agentops_core::{Event, EventKind, NewEvent, RunId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::harness::Harness;
use crate::model::{Response, Usage};

/// Spending limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub tokens: Option<u64>,
    pub usd: Option<f64>,
    pub seconds: Option<u64>,
    /// Model calls.
    pub turns: Option<u64>,
}

/// A gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// The kinds of gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateKind {
    Command,
    Scope,
    Diff,
    Secrets,
    Judge,
    Council,
    Approval,
}

/// Why a run paused. Stored as its lowercase name; a reason from a newer
/// writer is kept as [`PauseReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PauseReason {
    /// An approval gate waits for a person.
    Approval,
    /// A budget (tokens, USD, seconds, turns) ran out.
    Budget,
    /// A phase failed its gates on its last attempt.
    Escalation,
    /// A model call failed in a way retries did not cure.
    Error,
    /// Someone asked (`agentops pause`, Ctrl-C).
    Requested,
    Other(String),
}

impl PauseReason {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Approval => "approval",
            Self::Budget => "budget",
            Self::Escalation => "escalation",
            Self::Error => "error",
            Self::Requested => "requested",
            Self::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "approval" => Self::Approval,
            "budget" => Self::Budget,
            "escalation" => Self::Escalation,
            "error" => Self::Error,
            "requested" => Self::Requested,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PauseReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PauseReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// What `run.started` records: everything needed to resume, whatever happens
/// to the files afterwards. The spec types belong to the runner and gates
/// (and change with the spec format): here they are parameters, JSON by
/// default, and the runner reads the body with its own types
/// (`RunStarted<WorkflowSpec, Agent, GateSpec>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted<W = Value, A = Value, G = Value> {
    pub workflow: W,
    pub agents: BTreeMap<String, A>,
    pub gates: BTreeMap<String, G>,
    pub goal: String,
    pub vars: BTreeMap<String, String>,
    pub base_commit: String,
    pub base_branch: Option<String>,
    pub branch: String,
    pub worktree: PathBuf,
    pub budget: Budget,
    /// Overrides every agent's backend (`--backend`).
    #[serde(default)]
    pub backend: Option<String>,
}

/// `run.resumed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// The status the run had (`paused`, `running` when it was killed).
    #[serde(default)]
    pub from: String,
    /// The budget in force from here (`None`: unchanged).
    #[serde(default)]
    pub budget: Option<Budget>,
    #[serde(default)]
    pub extra_attempts: u32,
}

/// `run.paused`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPaused {
    pub reason: PauseReason,
    #[serde(default)]
    pub detail: String,
}

/// What a `run.control` event asks of a running run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlAction {
    Pause,
    Cancel,
}

/// `run.control`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunControl {
    pub action: ControlAction,
}

/// How a run ended, as `run.completed` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RunCompleted {
    Completed {
        #[serde(default)]
        commit: String,
        #[serde(default)]
        gates_passed: bool,
    },
    Failed {
        #[serde(default)]
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<String>,
    },
    Cancelled,
}

/// `run.landed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLanded {
    pub into: String,
    pub commit: String,
    /// `fast-forward` or `merge`.
    #[serde(default)]
    pub how: String,
}

/// `run.orphans_stopped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOrphansStopped {
    #[serde(default)]
    pub process_groups: Vec<i64>,
}

/// `step.started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStarted {
    pub phase: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub provider: String,
}

/// A gate's verdict inside `step.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub gate: String,
    pub verdict: Verdict,
}

/// `step.completed`: the checkpoint commit is durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCompleted {
    pub phase: String,
    #[serde(default)]
    pub attempt: u32,
    pub commit: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub gates: Vec<GateOutcome>,
}

/// `step.retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRetry {
    pub phase: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub feedback: String,
    #[serde(default)]
    pub agent: String,
}

/// `llm.call`: one model request and its answer (or its error). Written by
/// the runner (with `key`, `phase`, `turn` and the whole `response`, which
/// a resume answers from) and by stream ingest (with `source`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// Where it was seen: `claude-stream`, `codex-exec`, … (absent for the runner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The request key (see `Request::key`); the runner's calls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// OTel's `gen_ai.operation.name` (`chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    /// `None` when no price is known.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// `price-table` or `reported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Whether a resume may answer this request from the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    /// Messages in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's class (`rate_limit`, `auth`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
}

/// `tool.call`: one tool invocation and its result, from the runner's
/// built-in tools, a harness hook (`source = "hook"`) or an ingested stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harness: Option<Harness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The tool's name (`Bash`, `write_file`, `shell`).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// The arguments (capped); the runner stores them as a JSON string.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Whether the tool failed. (Releases before 0.2 wrote `ok` from hooks
    /// and ingest; [`EventBody::decode`] reads it.)
    pub is_error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The user interrupted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// A shell tool's command (capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Files the tool wrote, relative to the work tree where inside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

/// The stored form of [`ToolCall`], old names included.
#[derive(Deserialize)]
struct ToolCallWire {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    harness: Option<Harness>,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    turn: Option<u32>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    interrupted: Option<bool>,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    files: Option<Vec<String>>,
    #[serde(default)]
    wrote: Option<Vec<String>>,
    #[serde(default)]
    duration_ms: Option<f64>,
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ToolCallWire::deserialize(d)?;
        Ok(ToolCall {
            source: w.source,
            harness: w.harness,
            phase: w.phase,
            attempt: w.attempt,
            turn: w.turn,
            agent: w.agent,
            name: w.name.or(w.tool).unwrap_or_else(|| "?".into()),
            tool_use_id: w.tool_use_id,
            input: w.input,
            output: w.output,
            is_error: w.is_error.or(w.ok.map(|ok| !ok)).unwrap_or(false),
            error: w.error,
            interrupted: w.interrupted,
            exit_code: w.exit_code,
            command: w.command,
            query: w.query,
            files: w.files.or(w.wrote).unwrap_or_default(),
            duration_ms: w.duration_ms,
        })
    }
}

/// `gate.verdict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    #[serde(alias = "name")]
    pub gate: String,
    pub kind: GateKind,
    pub verdict: Verdict,
    #[serde(default)]
    pub summary: String,
    /// Kind-specific details (never a secret's value).
    #[serde(default)]
    pub evidence: Value,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub started_us: i64,
    /// The commit the diff was taken against.
    #[serde(default)]
    pub base: Option<String>,
    /// An approval gate still waiting.
    #[serde(default)]
    pub pending: bool,
    /// The judge's worker agent, for judge and council gates.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `approval.requested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub gate: String,
    #[serde(default)]
    pub what: String,
}

/// `approval.resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalResolved {
    pub gate: String,
    pub approved: bool,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub reason: String,
}

/// `knowledge.write`: an entry written (and committed unless deferred).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeWrite {
    pub entry: String,
    pub path: String,
    /// `created`, `updated`, …
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    /// Why it was not committed, when it was not.
    #[serde(default)]
    pub deferred: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// Recorded by recovery after a killed write.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

/// `knowledge.feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeFeedback {
    pub entry: String,
    pub signal: String,
    pub utility: f64,
    #[serde(default)]
    pub events: u64,
}

/// `context.assembled`: a packet built for a task (by `agentops context` or
/// a SessionStart hook).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextAssembled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<Harness>,
    /// The hook event that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// SessionStart's source (`startup`, `resume`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub task: String,
    #[serde(default)]
    pub budget: u64,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub cited: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<usize>,
    /// A note on the index (missing, being built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `hook.received`: a harness hook's input, capped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookReceived {
    pub harness: Harness,
    /// The hook event's name (`PreToolUse`).
    pub event: String,
    #[serde(default)]
    pub input: Value,
}

/// What a hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookVerdict {
    /// A tool call was denied.
    Deny,
    /// A stop was blocked because stop gates failed.
    Block,
    /// Stop gates kept failing; the session may stop and a person should look.
    Escalate,
}

/// `hook.decision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDecision {
    pub harness: Harness,
    pub event: String,
    pub decision: HookVerdict,
    /// The policy rule that denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Stop gates that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
    /// The block's number (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    /// Blocks before the escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_hook_active: Option<bool>,
}

/// `context.guard`: how full a session's window is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextGuard {
    pub harness: Harness,
    pub used: u64,
    pub window: u64,
    pub percent: f64,
    /// `green`, `amber`, `red`.
    pub band: String,
    #[serde(default)]
    pub model: Option<String>,
}

/// `handoff.written`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffWritten {
    pub harness: Harness,
    /// What wrote it (`SessionEnd`, `PreCompact`, `context-critical`).
    pub trigger: String,
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub deferred: Option<String>,
}

/// `session.started`: a harness session seen in a stream or transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub harness: Option<Harness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub tools: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
}

/// `session.ended`, with the harness's own totals where it reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEnded {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub harness: Option<Harness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_api_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u64>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<String>,
    /// Claude Code's per-model usage, as it reports it.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub model_usage: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub errors: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    /// The session's first prompt (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
}

macro_rules! bodies {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) => $kind:path,)*) => {
        /// A journal event's body, by kind.
        // Bodies are decoded one at a time and consumed at once, never kept
        // in bulk, so boxing the large `llm.call` would only add allocations.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventBody {
            $($(#[$doc])* $variant($ty),)*
            /// A kind this version does not know, kept verbatim.
            Other(EventKind, Value),
        }

        impl EventBody {
            /// The kind this body is stored under.
            pub fn kind(&self) -> EventKind {
                match self {
                    $(EventBody::$variant(_) => $kind,)*
                    EventBody::Other(k, _) => k.clone(),
                }
            }

            /// The body as stored.
            pub fn to_value(&self) -> Value {
                match self {
                    $(EventBody::$variant(b) => serde_json::to_value(b).unwrap_or(Value::Null),)*
                    EventBody::Other(_, v) => v.clone(),
                }
            }

            /// Decodes `body` stored under `kind`.
            pub fn decode_parts(kind: &EventKind, body: &Value) -> Result<Self, BodyError> {
                let fit = |e: serde_json::Error| BodyError { kind: kind.as_str().to_owned(), message: e.to_string() };
                match kind {
                    $($kind => <$ty>::deserialize(body).map(EventBody::$variant).map_err(fit),)*
                    _ => Ok(EventBody::Other(kind.clone(), body.clone())),
                }
            }
        }

        $(
            impl From<$ty> for EventBody {
                fn from(b: $ty) -> Self {
                    EventBody::$variant(b)
                }
            }
        )*
    };
}

bodies! {
    RunStarted(RunStarted) => EventKind::RunStarted,
    RunResumed(RunResumed) => EventKind::RunResumed,
    RunPaused(RunPaused) => EventKind::RunPaused,
    RunControl(RunControl) => EventKind::RunControl,
    RunCompleted(RunCompleted) => EventKind::RunCompleted,
    RunLanded(RunLanded) => EventKind::RunLanded,
    RunOrphansStopped(RunOrphansStopped) => EventKind::RunOrphansStopped,
    StepStarted(StepStarted) => EventKind::StepStarted,
    StepCompleted(StepCompleted) => EventKind::StepCompleted,
    StepRetry(StepRetry) => EventKind::StepRetry,
    LlmCall(LlmCall) => EventKind::LlmCall,
    ToolCall(ToolCall) => EventKind::ToolCall,
    GateVerdict(GateVerdict) => EventKind::GateVerdict,
    ApprovalRequested(ApprovalRequested) => EventKind::ApprovalRequested,
    ApprovalResolved(ApprovalResolved) => EventKind::ApprovalResolved,
    KnowledgeWrite(KnowledgeWrite) => EventKind::KnowledgeWrite,
    KnowledgeFeedback(KnowledgeFeedback) => EventKind::KnowledgeFeedback,
    ContextAssembled(ContextAssembled) => EventKind::ContextAssembled,
    HookReceived(HookReceived) => EventKind::HookReceived,
    HookDecision(HookDecision) => EventKind::HookDecision,
    ContextGuard(ContextGuard) => EventKind::ContextGuard,
    HandoffWritten(HandoffWritten) => EventKind::HandoffWritten,
    SessionStarted(SessionStarted) => EventKind::SessionStarted,
    SessionEnded(SessionEnded) => EventKind::SessionEnded,
}

/// A stored body that does not fit its kind's type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a `{kind}` event body does not fit its schema: {message}")]
pub struct BodyError {
    pub kind: String,
    pub message: String,
}

impl EventBody {
    /// Decodes a stored event's body.
    pub fn decode(e: &Event) -> Result<Self, BodyError> {
        Self::decode_parts(&e.kind, &e.body)
    }

    /// An event of this body for `run`, stamped now.
    pub fn into_event(self, run: RunId) -> NewEvent {
        let kind = self.kind();
        NewEvent::now(run, kind, self.to_value())
    }
}

/// A new event of `body` for `run`, stamped now: how writers build events.
pub fn new_event(run: RunId, body: impl Into<EventBody>) -> NewEvent {
    body.into().into_event(run)
}

/// Decodes one kind's body straight into its type (for readers that asked
/// the journal for that kind only).
pub fn decode<T: serde::de::DeserializeOwned>(e: &Event) -> Result<T, BodyError> {
    T::deserialize(&e.body).map_err(|err| BodyError {
        kind: e.kind.as_str().to_owned(),
        message: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn stored(kind: &str, body: Value) -> Event {
        Event {
            seq: 1,
            ts: 1,
            run_id: RunId::parse("r1").unwrap(),
            span_id: None,
            parent_span_id: None,
            kind: kind.parse().unwrap(),
            body,
        }
    }

    #[test]
    fn tool_results_of_every_writer_read_as_is_error() {
        // The runner wrote `tool`, `is_error`, `wrote`; hooks and ingest
        // wrote `name` and `ok`.
        let runner = stored(
            "tool.call",
            json!({"phase": "p", "attempt": 1, "turn": 0, "tool": "write_file", "tool_use_id": "t1",
                   "input": "{}", "output": "ok", "is_error": false, "wrote": ["a.txt"], "duration_ms": 1.5, "agent": "a"}),
        );
        let hook = stored(
            "tool.call",
            json!({"source": "hook", "harness": "claude", "name": "Bash", "ok": false,
                   "duration_ms": null, "command": "false", "files": [], "error": "exit 1", "interrupted": false}),
        );
        let EventBody::ToolCall(r) = EventBody::decode(&runner).unwrap() else {
            panic!("not a tool call")
        };
        assert_eq!(
            (r.name.as_str(), r.is_error, r.files.clone()),
            ("write_file", false, vec!["a.txt".to_owned()])
        );
        let EventBody::ToolCall(h) = EventBody::decode(&hook).unwrap() else {
            panic!("not a tool call")
        };
        assert_eq!(
            (h.name.as_str(), h.is_error, h.harness),
            ("Bash", true, Some(Harness::Claude))
        );
        // Written again, there is one name for one meaning.
        let v = EventBody::ToolCall(h).to_value();
        assert_eq!(v.get("ok"), None);
        assert_eq!(v["is_error"], json!(true));
    }

    #[test]
    fn bodies_round_trip_and_unknown_kinds_are_kept() {
        let bodies: Vec<EventBody> = vec![
            RunPaused {
                reason: PauseReason::Escalation,
                detail: "d".into(),
            }
            .into(),
            RunControl {
                action: ControlAction::Cancel,
            }
            .into(),
            RunCompleted::Failed {
                error: "e".into(),
                phase: Some("p".into()),
            }
            .into(),
            RunCompleted::Cancelled.into(),
            HookDecision {
                harness: Harness::Codex,
                event: "PreToolUse".into(),
                decision: HookVerdict::Deny,
                rule: Some("rm-rf".into()),
                tool: Some("Bash".into()),
                reason: Some("no".into()),
                gates: vec![],
                attempt: None,
                blocks: None,
                cap: None,
                stop_hook_active: None,
            }
            .into(),
            KnowledgeWrite {
                entry: "e".into(),
                path: ".agents/learnings/e.md".into(),
                action: "created".into(),
                commit: Some("abc".into()),
                branch: None,
                deferred: None,
                agent: None,
                recovered: false,
            }
            .into(),
        ];
        for b in bodies {
            let kind = b.kind();
            let back = EventBody::decode_parts(&kind, &b.to_value()).unwrap();
            assert_eq!(back, b);
        }
        let other = stored("metrics.sample", json!({"x": 1}));
        assert_eq!(
            EventBody::decode(&other).unwrap(),
            EventBody::Other(EventKind::Other("metrics.sample".into()), json!({"x": 1}))
        );
        assert_eq!(
            EventBody::from(RunControl {
                action: ControlAction::Pause
            })
            .kind()
            .as_str(),
            "run.control"
        );
    }

    #[test]
    fn an_unknown_pause_reason_is_kept_and_a_misfit_body_is_an_error() {
        let e = stored("run.paused", json!({"reason": "quota", "detail": ""}));
        assert_eq!(
            EventBody::decode(&e).unwrap(),
            EventBody::RunPaused(RunPaused {
                reason: PauseReason::Other("quota".into()),
                detail: String::new()
            })
        );
        let bad = stored("run.paused", json!({"detail": 3}));
        let err = EventBody::decode(&bad).unwrap_err();
        assert_eq!(err.kind, "run.paused");
    }
}
