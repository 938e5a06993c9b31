//! Spans from the journal: a workflow run or a harness session becomes one
//! trace, following the OpenTelemetry GenAI conventions (`invoke_workflow`,
//! `invoke_agent {agent}`, `chat {model}`, `execute_tool {tool}`) plus gate
//! spans, with the OpenInference attributes Phoenix reads for token counts
//! and cost.
//!
//! Ids are derived, not stored: the trace id is a hash of the run id, a span
//! id a hash of the run id and the journal's span key, so building the same
//! journal twice gives the same ids and a span exported twice is the same
//! span.

use std::borrow::Cow;
use std::collections::HashMap;

use agentops_core::{Event, EventKind, RunId};
use agentops_store::{Journal, RawRef, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::body::{Body, Usage};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
    StrArray(Vec<String>),
}

impl AttrValue {
    /// As JSON, for `--json` views.
    pub fn to_json(&self) -> Value {
        match self {
            AttrValue::Str(s) => Value::from(s.as_str()),
            AttrValue::Int(i) => Value::from(*i),
            AttrValue::F64(f) => Value::from(*f),
            AttrValue::Bool(b) => Value::from(*b),
            AttrValue::StrArray(a) => Value::from(a.clone()),
        }
    }
}

impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::F64(v) => s.serialize_f64(*v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
            AttrValue::StrArray(v) => s.collect_seq(v),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}
impl From<i64> for AttrValue {
    fn from(i: i64) -> Self {
        AttrValue::Int(i)
    }
}
impl From<f64> for AttrValue {
    fn from(f: f64) -> Self {
        AttrValue::F64(f)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// What a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Workflow,
    Agent,
    Llm,
    Tool,
    Gate,
    Session,
}

impl SpanKind {
    /// OpenInference's span kind, for Phoenix.
    pub fn openinference(self) -> &'static str {
        match self {
            SpanKind::Workflow => "CHAIN",
            SpanKind::Agent | SpanKind::Session => "AGENT",
            SpanKind::Llm => "LLM",
            SpanKind::Tool => "TOOL",
            SpanKind::Gate => "GUARDRAIL",
        }
    }
}

/// A timestamped note inside a span (pause, resume, retry, approval).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub ts_us: i64,
    pub name: String,
    pub attrs: Vec<(&'static str, AttrValue)>,
}

/// One span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_us: i64,
    pub end_us: i64,
    /// `Some(message)` when the span failed.
    pub error: Option<String>,
    pub attrs: Vec<(&'static str, AttrValue)>,
    pub events: Vec<SpanEvent>,
    /// The journal position of the event that completed the span; `None`
    /// while it is still open (a running step, a live session). Export sends
    /// a span once, when this position passes its watermark.
    pub done_seq: Option<i64>,
    /// For views: tokens in (cached included) and out, and cost.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: Option<f64>,
    /// A status word for views: ok, error, running, paused, FAIL…
    pub status: String,
}

impl Span {
    /// The attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn set(&mut self, key: &'static str, v: impl Into<AttrValue>) {
        let v = v.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v,
            None => self.attrs.push((key, v)),
        }
    }

    fn set_opt(&mut self, key: &'static str, v: Option<impl Into<AttrValue>>) {
        if let Some(v) = v {
            self.set(key, v);
        }
    }
}

pub use agentops_core::ids::hex;

/// The trace id of run or session `run_id`.
pub fn trace_id(run_id: &str) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(b"agentops-trace\0")
        .chain_update(run_id.as_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The span id of journal span key `key` in run `run_id`.
pub fn span_id(run_id: &str, key: &str) -> [u8; 8] {
    let d = Sha256::new()
        .chain_update(run_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(key.as_bytes())
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    if out == [0; 8] {
        out[7] = 1;
    }
    out
}

const ROOT: &str = "#root";

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_owned()
    } else {
        let mut t = s[..s.floor_char_boundary(n)].to_owned();
        t.push('…');
        t
    }
}

fn ms_to_us(ms: f64) -> i64 {
    (ms * 1000.0).round() as i64
}

/// The harness's name as `gen_ai.agent.name` of a session root.
fn harness_agent(h: &str) -> String {
    match h {
        "claude" => "claude-code".into(),
        other => other.to_owned(),
    }
}

/// One journal event as span building reads it: the body reduced to the
/// fields spans use.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub seq: i64,
    pub ts: i64,
    pub span_id: Option<&'a str>,
    pub parent_span_id: Option<&'a str>,
    pub kind: EventKind,
    pub body: Body<'a>,
}

impl<'a> Input<'a> {
    /// From a parsed event.
    pub fn from_event(e: &'a Event) -> Self {
        Input {
            seq: e.seq,
            ts: e.ts,
            span_id: e.span_id.as_ref().map(|s| s.as_str()),
            parent_span_id: e.parent_span_id.as_ref().map(|s| s.as_str()),
            kind: e.kind.clone(),
            body: Body::from_value(&e.body),
        }
    }

    /// From a stored row, borrowing from it; `None` when its kind or body
    /// does not parse.
    pub fn from_raw(e: RawRef<'a>) -> Option<Self> {
        Some(Input {
            seq: e.seq,
            ts: e.ts,
            span_id: e.span_id,
            parent_span_id: e.parent_span_id,
            kind: e.kind.parse().ok()?,
            body: Body::parse(e.body)?,
        })
    }
}

/// Where a span hangs: the root, a span already seen, or a journal span key
/// not seen yet (resolved when the spans are taken; the root if never seen).
#[derive(Debug, Clone)]
enum Parent {
    None,
    At(usize),
    Key(String),
}

/// Builds the spans of one run or session event by event, in journal
/// order. [`Builder::spans`] can be taken at any point and building go on
/// (an exporter keeps one per run it follows).
#[derive(Debug, Clone)]
pub struct Builder {
    run_id: String,
    trace: [u8; 16],
    /// The root is `spans[0]` once an event was pushed.
    spans: Vec<Span>,
    by_key: HashMap<String, usize>,
    parents: Vec<Parent>,
    workflow: bool,
    /// A session event (start, end, hook) was seen: a session root.
    session_events: bool,
    last_ts: i64,
    last_seq: i64,
}

impl Builder {
    pub fn new(run_id: &str) -> Self {
        Builder {
            run_id: run_id.to_owned(),
            trace: trace_id(run_id),
            spans: Vec::new(),
            by_key: HashMap::new(),
            parents: Vec::new(),
            workflow: false,
            session_events: false,
            last_ts: i64::MIN,
            last_seq: 0,
        }
    }

    /// Whether the run or session has ended (its root span is complete).
    pub fn is_done(&self) -> bool {
        self.spans.first().is_some_and(|r| r.done_seq.is_some())
    }

    /// The journal position of the last event pushed (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    fn get_or_insert(
        &mut self,
        key: Cow<'_, str>,
        kind: SpanKind,
        ts: i64,
        parent: Option<&str>,
    ) -> (usize, bool) {
        if let Some(&i) = self.by_key.get(key.as_ref()) {
            return (i, false);
        }
        let i = self.spans.len();
        self.spans.push(Span {
            trace_id: self.trace,
            span_id: span_id(&self.run_id, &key),
            parent_span_id: None,
            name: String::new(),
            kind,
            start_us: ts,
            end_us: ts,
            error: None,
            // What each kind ends up with (finish adds session.id,
            // gen_ai.conversation.id and the OpenInference kind): one
            // allocation per span.
            attrs: Vec::with_capacity(match kind {
                SpanKind::Llm => 26,
                SpanKind::Agent => 16,
                SpanKind::Tool => 10,
                SpanKind::Gate => 8,
                SpanKind::Workflow | SpanKind::Session => 14,
            }),
            events: Vec::new(),
            done_seq: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            status: "ok".into(),
        });
        self.parents.push(match parent {
            _ if i == 0 => Parent::None,
            None | Some(ROOT) => Parent::At(0),
            Some(p) => match self.by_key.get(p) {
                Some(&at) => Parent::At(at),
                None => Parent::Key(p.to_owned()),
            },
        });
        self.by_key.insert(key.into_owned(), i);
        (i, true)
    }

    /// Makes the root a workflow's.
    fn workflow_root(&mut self) {
        self.workflow = true;
        let r = &mut self.spans[0];
        r.kind = SpanKind::Workflow;
        r.name = "invoke_workflow".into();
        r.set("gen_ai.operation.name", "invoke_workflow");
        if r.done_seq.is_none() {
            r.status = "running".into();
        }
    }

    /// Pushes a stored row; false (and nothing pushed) when its kind or
    /// body does not parse.
    pub fn push_raw(&mut self, r: RawRef<'_>) -> bool {
        match Input::from_raw(r) {
            Some(i) => {
                self.push(&i);
                true
            }
            None => false,
        }
    }

    /// Pushes the next event.
    pub fn push(&mut self, e: &Input<'_>) {
        if self.spans.is_empty() {
            self.get_or_insert(Cow::Borrowed(ROOT), SpanKind::Session, e.ts, None);
            let r = &mut self.spans[0];
            r.name = "session".into();
            r.set("gen_ai.operation.name", "invoke_agent");
            self.last_ts = e.ts;
        }
        if e.kind == EventKind::RunStarted && !self.workflow {
            self.workflow_root();
        }
        if matches!(
            e.kind,
            EventKind::SessionStarted | EventKind::SessionEnded | EventKind::HookReceived
        ) {
            self.session_events = true;
        }
        self.last_ts = self.last_ts.max(e.ts);
        self.last_seq = self.last_seq.max(e.seq);
        let body = &e.body;
        let parent_key = e.parent_span_id;
        match &e.kind {
            EventKind::RunStarted => {
                let r = &mut self.spans[0];
                r.start_us = e.ts;
                let wf = body
                    .workflow
                    .0
                    .as_ref()
                    .and_then(|w| w.name.str())
                    .unwrap_or("workflow");
                r.name = format!("invoke_workflow {wf}");
                r.set("agentops.workflow", wf);
                r.set("gen_ai.workflow.name", wf);
                r.set_opt("agentops.run.goal", body.goal.str().map(|g| clip(g, 500)));
                // The runner's branch is derived from the run id (the body's
                // copy may have been redacted as high-entropy).
                r.set(
                    "agentops.run.branch",
                    format!("agentops/run/{}", self.run_id),
                );
                r.set_opt("agentops.run.base_commit", body.base_commit.str());
            }
            EventKind::RunCompleted => {
                let status = body.status.str().unwrap_or("completed").to_owned();
                let r = &mut self.spans[0];
                r.end_us = e.ts;
                if status != "completed" {
                    r.error = Some(
                        body.error
                            .str()
                            .map(|m| clip(m, 500))
                            .unwrap_or_else(|| status.clone()),
                    );
                    r.set("error.type", status.as_str());
                }
                r.status = if status == "completed" {
                    "ok".into()
                } else {
                    status.clone()
                };
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: format!("run.{status}"),
                    attrs: vec![],
                });
                done(r, e.seq);
                close_open(&mut self.spans, e.ts, e.seq, &status);
            }
            EventKind::RunPaused => {
                let reason = body.reason.str().unwrap_or("paused").to_owned();
                let r = &mut self.spans[0];
                r.status = "paused".into();
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "run.paused".into(),
                    attrs: vec![
                        ("reason", reason.as_str().into()),
                        (
                            "detail",
                            body.detail
                                .str()
                                .map(|d| clip(d, 500))
                                .unwrap_or_default()
                                .into(),
                        ),
                    ],
                });
                close_open(&mut self.spans, e.ts, e.seq, "paused");
            }
            EventKind::RunResumed => {
                let r = &mut self.spans[0];
                r.status = "running".into();
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "run.resumed".into(),
                    attrs: vec![],
                });
            }
            EventKind::ApprovalRequested
            | EventKind::ApprovalResolved
            | EventKind::HandoffWritten
            | EventKind::HookDecision => {
                let r = &mut self.spans[0];
                let mut attrs = Vec::new();
                for (k, v) in [
                    ("gate", &body.gate),
                    ("decision", &body.decision),
                    ("reason", &body.reason),
                    ("event", &body.event),
                    ("path", &body.path),
                ] {
                    if let Some(v) = v.str() {
                        attrs.push((k, AttrValue::from(clip(v, 300))));
                    }
                }
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: e.kind.as_str().to_owned(),
                    attrs,
                });
            }
            EventKind::ContextGuard => {
                let r = &mut self.spans[0];
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "context.guard".into(),
                    attrs: vec![
                        ("percent", body.percent.f64().unwrap_or(0.0).into()),
                        ("band", body.band.str().unwrap_or("").into()),
                    ],
                });
                if let Some(p) = body.percent.f64() {
                    r.set("agentops.context.percent", p);
                }
            }
            EventKind::SessionStarted | EventKind::HookReceived => {
                let r = &mut self.spans[0];
                r.start_us = r.start_us.min(e.ts);
                name_session(r, body.harness.str());
                r.set_opt("gen_ai.request.model", body.model.str());
                if e.kind == EventKind::HookReceived && body.event.str() == Some("SessionEnd") {
                    r.end_us = r.end_us.max(e.ts);
                    done(r, e.seq);
                }
            }
            EventKind::SessionEnded => {
                let r = &mut self.spans[0];
                r.end_us = r.end_us.max(e.ts);
                // The harness's own wall time, when it is longer than what
                // the events span (streams without timestamps).
                if let Some(d) = body.duration_ms.f64().map(ms_to_us) {
                    r.start_us = r.start_us.min(r.end_us - d);
                }
                name_session(r, body.harness.str());
                r.set_opt("gen_ai.request.model", body.model.str());
                if body.usage.0.is_some() {
                    usage_attrs(r, body.usage.0.as_ref());
                }
                if let Some(c) = body.cost_usd.f64() {
                    r.cost_usd = Some(c);
                    r.set("agentops.cost_usd", c);
                }
                if body.is_error.bool() == Some(true) {
                    let msg = body
                        .errors
                        .0
                        .str()
                        .map(|m| clip(m, 500))
                        .unwrap_or_else(|| "session ended with an error".into());
                    r.error = Some(msg);
                    r.set("error.type", "session_error");
                    r.status = "error".into();
                }
                done(r, e.seq);
            }
            EventKind::StepStarted => {
                let (i, new) = self.get_or_insert(key_of(e), SpanKind::Agent, e.ts, None);
                let sp = &mut self.spans[i];
                let agent = body.agent.str().unwrap_or("agent");
                if new {
                    sp.name = format!("invoke_agent {agent}");
                    sp.set("gen_ai.operation.name", "invoke_agent");
                    sp.set("gen_ai.agent.name", agent);
                    sp.set_opt(
                        "gen_ai.provider.name",
                        body.provider.str().map(provider_name),
                    );
                    sp.set_opt("gen_ai.request.model", body.model.str());
                    sp.set_opt("agentops.phase", body.phase.str());
                    sp.status = "running".into();
                }
                let attempt = body.attempt.i64().unwrap_or(1);
                sp.set("agentops.attempts", attempt);
                sp.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "attempt".into(),
                    attrs: vec![("attempt", attempt.into())],
                });
            }
            EventKind::StepCompleted => {
                let (i, _) = self.get_or_insert(key_of(e), SpanKind::Agent, e.ts, None);
                let sp = &mut self.spans[i];
                sp.end_us = e.ts;
                sp.status = "ok".into();
                if body.usage.0.is_some() {
                    usage_attrs(sp, body.usage.0.as_ref());
                }
                if let Some(c) = body.cost_usd.f64() {
                    sp.cost_usd = Some(c);
                    sp.set("agentops.cost_usd", c);
                }
                sp.set_opt("agentops.commit", body.commit.str());
                done(sp, e.seq);
            }
            EventKind::StepRetry => {
                if let Some(&i) = self.by_key.get(key_of(e).as_ref()) {
                    let sp = &mut self.spans[i];
                    sp.events.push(SpanEvent {
                        ts_us: e.ts,
                        name: "retry".into(),
                        attrs: vec![(
                            "feedback",
                            body.feedback
                                .str()
                                .map(|x| clip(x, 500))
                                .unwrap_or_default()
                                .into(),
                        )],
                    });
                }
            }
            EventKind::LlmCall => {
                let (i, new) = self.get_or_insert(key_of(e), SpanKind::Llm, e.ts, parent_key);
                let sp = &mut self.spans[i];
                if !new && sp.done_seq.is_some() {
                    return; // the same call journaled twice (a stream ingested again)
                }
                let model = body.model.str().unwrap_or("unknown");
                sp.name = format!("chat {model}");
                sp.start_us = e.ts;
                sp.end_us = e.ts + body.duration_ms.f64().map(ms_to_us).unwrap_or(0);
                sp.set(
                    "gen_ai.operation.name",
                    body.operation.str().unwrap_or("chat"),
                );
                let provider = body.provider.str().map(provider_name);
                sp.set_opt("gen_ai.provider.name", provider.clone());
                sp.set("gen_ai.request.model", model);
                sp.set_opt("gen_ai.response.model", body.response_model.str());
                sp.set_opt("gen_ai.response.id", body.response_id.str());
                if let Some(r) = body.stop_reason.str() {
                    sp.set(
                        "gen_ai.response.finish_reasons",
                        AttrValue::StrArray(vec![r.to_owned()]),
                    );
                }
                sp.set_opt("gen_ai.agent.name", body.agent.str());
                sp.set_opt("agentops.phase", body.phase.str());
                let u = body.usage.0.as_ref();
                usage_attrs(sp, u);
                // OpenInference names: Phoenix prices LLM spans from these.
                let (input, output, read, write) = u.map(Usage::counts).unwrap_or_default();
                sp.set("llm.model_name", body.response_model.str().unwrap_or(model));
                sp.set_opt("llm.provider", provider.clone());
                sp.set_opt("llm.system", provider);
                sp.set("llm.token_count.prompt", input);
                sp.set("llm.token_count.completion", output);
                sp.set("llm.token_count.total", input + output);
                sp.set("llm.token_count.prompt_details.cache_read", read);
                sp.set("llm.token_count.prompt_details.cache_write", write);
                if let Some(c) = body.cost_usd.f64() {
                    sp.cost_usd = Some(c);
                    sp.set("agentops.cost_usd", c);
                }
                if let Some(err) = body.error.str() {
                    sp.error = Some(clip(err, 500));
                    sp.set("error.type", body.error_type.str().unwrap_or("llm_error"));
                    sp.status = "error".into();
                }
                done(sp, e.seq);
            }
            EventKind::ToolCall => {
                let (i, new) = self.get_or_insert(key_of(e), SpanKind::Tool, e.ts, parent_key);
                let sp = &mut self.spans[i];
                if !new && sp.done_seq.is_some() {
                    // Seen twice (a hook and an ingested stream): keep the
                    // first, fill what it lacked.
                    if sp.end_us == sp.start_us
                        && let Some(d) = body.duration_ms.f64()
                    {
                        sp.start_us = e.ts - ms_to_us(d);
                        sp.end_us = e.ts;
                    }
                    return;
                }
                let tool = body
                    .tool
                    .str()
                    .or_else(|| body.name.str())
                    .unwrap_or("tool");
                sp.name = format!("execute_tool {tool}");
                match body.duration_ms.f64() {
                    Some(d) => {
                        sp.start_us = e.ts - ms_to_us(d);
                        sp.end_us = e.ts;
                    }
                    None => {
                        sp.start_us = e.ts;
                        sp.end_us = e.ts;
                    }
                }
                sp.set("gen_ai.operation.name", "execute_tool");
                sp.set("gen_ai.tool.name", tool);
                sp.set("tool.name", tool);
                sp.set_opt("gen_ai.tool.call.id", body.tool_use_id.str().or(e.span_id));
                sp.set_opt("gen_ai.agent.name", body.agent.str());
                sp.set_opt("agentops.tool.command", body.command.str());
                let failed = body.is_error.bool() == Some(true) || body.ok.bool() == Some(false);
                if failed {
                    let msg = body
                        .error
                        .str()
                        .or_else(|| body.output.str())
                        .map(|m| clip(m, 500));
                    sp.error = Some(msg.unwrap_or_else(|| "the tool failed".into()));
                    sp.set("error.type", "tool_error");
                    sp.status = "error".into();
                }
                done(sp, e.seq);
            }
            EventKind::GateVerdict => {
                let (i, _) = self.get_or_insert(key_of(e), SpanKind::Gate, e.ts, parent_key);
                let sp = &mut self.spans[i];
                let gate = body.gate.str().unwrap_or("gate");
                let verdict = body.verdict.str().unwrap_or("?");
                let pending = body.pending.bool() == Some(true);
                sp.name = format!("gate {gate}");
                sp.start_us = e.ts;
                sp.end_us = e.ts + body.duration_ms.f64().map(ms_to_us).unwrap_or(0);
                sp.set("agentops.gate.name", gate);
                sp.set_opt("agentops.gate.kind", body.kind.str());
                sp.set(
                    "agentops.gate.verdict",
                    if pending { "PENDING" } else { verdict },
                );
                sp.set_opt(
                    "agentops.gate.summary",
                    body.summary.str().map(|x| clip(x, 500)),
                );
                sp.status = if pending {
                    "PENDING".into()
                } else {
                    verdict.to_owned()
                };
                if verdict == "FAIL" && !pending {
                    sp.error = Some(
                        body.summary
                            .str()
                            .map(|x| clip(x, 500))
                            .unwrap_or_else(|| "gate failed".into()),
                    );
                    sp.set("error.type", "gate_failed");
                }
                done(sp, e.seq);
            }
            _ => {}
        }
    }

    /// The spans so far, finished for export and views. The root comes
    /// first; the rest follow in order of first event.
    pub fn spans(&self) -> Vec<Span> {
        self.finish_spans(self.spans.clone())
    }

    /// The spans, finished (see [`Builder::spans`]).
    pub fn finish(mut self) -> Vec<Span> {
        let spans = std::mem::take(&mut self.spans);
        self.finish_spans(spans)
    }

    fn finish_spans(&self, mut spans: Vec<Span>) -> Vec<Span> {
        if spans.is_empty() {
            return spans;
        }
        let run_id = self.run_id.as_str();
        let root = 0;
        // Parents as indices (a key never seen is the root), and the root's
        // extent.
        let up: Vec<Option<usize>> = self
            .parents
            .iter()
            .map(|p| match p {
                Parent::None => None,
                Parent::At(i) => Some(*i),
                Parent::Key(k) => Some(self.by_key.get(k).copied().unwrap_or(root)),
            })
            .collect();
        let ids: Vec<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
        let mut max_end = self.last_ts;
        for (i, sp) in spans.iter_mut().enumerate() {
            if let Some(p) = up[i] {
                sp.parent_span_id = Some(ids[p]);
            }
            max_end = max_end.max(sp.end_us);
        }
        let session = !self.workflow;
        let loose = session && !self.session_events;
        let r = &mut spans[root];
        if r.done_seq.is_none() || session {
            r.end_us = r.end_us.max(max_end);
        }
        r.set("session.id", run_id);
        r.set("gen_ai.conversation.id", run_id);
        if session && r.done_seq.is_none() {
            r.status = "running".into();
        }
        // Agent spans of a running run end at their last child for views.
        let mut ends: Vec<Option<i64>> = vec![None; spans.len()];
        for (i, sp) in spans.iter().enumerate() {
            if let Some(p) = up[i] {
                let v = ends[p].get_or_insert(sp.end_us);
                *v = (*v).max(sp.end_us);
            }
        }
        // Views of spans without their own totals (the workflow, an agent
        // paused mid-step) show the sum of their model calls.
        let mut sums: Vec<(i64, i64, f64, bool)> = vec![(0, 0, 0.0, false); spans.len()];
        for (i, sp) in spans.iter().enumerate() {
            if sp.kind != SpanKind::Llm {
                continue;
            }
            let mut p = up[i];
            let mut hops = 0;
            while let Some(at) = p
                && hops < spans.len()
            {
                let e = &mut sums[at];
                e.0 += sp.input_tokens;
                e.1 += sp.output_tokens;
                e.2 += sp.cost_usd.unwrap_or(0.0);
                e.3 |= sp.cost_usd.is_some();
                p = up[at].filter(|n| *n != at);
                hops += 1;
            }
        }
        let mut has_child = vec![false; spans.len()];
        for p in up.iter().flatten() {
            has_child[*p] = true;
        }
        for (i, sp) in spans.iter_mut().enumerate() {
            if matches!(
                sp.kind,
                SpanKind::Workflow | SpanKind::Agent | SpanKind::Session
            ) && sp.input_tokens + sp.output_tokens == 0
                && has_child[i]
            {
                let (inp, out, c, priced) = sums[i];
                sp.input_tokens = inp;
                sp.output_tokens = out;
                if priced && sp.cost_usd.is_none() {
                    sp.cost_usd = Some(c);
                }
            }
            if sp.kind == SpanKind::Agent
                && sp.done_seq.is_none()
                && let Some(end) = ends[i]
            {
                sp.end_us = sp.end_us.max(end);
            }
            if i != root {
                // The root has these already.
                sp.attrs.push(("session.id", run_id.into()));
                if matches!(sp.kind, SpanKind::Llm | SpanKind::Agent) {
                    sp.attrs.push(("gen_ai.conversation.id", run_id.into()));
                }
            }
            let kind = sp.kind.openinference();
            sp.attrs.push(("openinference.span.kind", kind.into()));
            if sp.end_us < sp.start_us {
                sp.end_us = sp.start_us;
            }
        }
        if loose {
            // Neither a workflow nor a harness session (`agentops gate run`,
            // memory writes): no root that could never close; each span
            // stands alone in the trace.
            let root_id = spans[root].span_id;
            spans.remove(root);
            for sp in &mut spans {
                if sp.parent_span_id == Some(root_id) {
                    sp.parent_span_id = None;
                }
            }
        }
        spans
    }
}

/// The journal span key of an event (its span id, or its position).
fn key_of<'e>(e: &Input<'e>) -> Cow<'e, str> {
    match e.span_id {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(format!("#{}", e.seq)),
    }
}

fn done(sp: &mut Span, seq: i64) {
    if sp.done_seq.is_none() {
        sp.done_seq = Some(seq);
    }
}

fn usage_attrs(sp: &mut Span, u: Option<&Usage<'_>>) {
    let (input, output, read, write) = u.map(Usage::counts).unwrap_or_default();
    sp.input_tokens = input;
    sp.output_tokens = output;
    sp.set("gen_ai.usage.input_tokens", input);
    sp.set("gen_ai.usage.output_tokens", output);
    sp.set("gen_ai.usage.cache_read.input_tokens", read);
    sp.set("gen_ai.usage.cache_creation.input_tokens", write);
}

/// Builds the spans of one run or session from its events (in journal
/// order). The root comes first; the rest follow in order of first event.
pub fn build(run_id: &str, events: &[Event]) -> Vec<Span> {
    let mut b = Builder::new(run_id);
    for e in events {
        b.push(&Input::from_event(e));
    }
    b.finish()
}

/// Reads and builds the spans of one run or session.
pub fn read(journal: &Journal, run: &RunId) -> Result<Vec<Span>, StoreError> {
    let mut b = Builder::new(run.as_str());
    let mut ok = true;
    // Whole bodies: the parser skips the keys spans do not use faster than
    // the store could drop them.
    journal.scan(&agentops_store::Query::run(run.clone()), &mut |r| {
        ok = ok && b.push_raw(r);
    })?;
    if ok {
        Ok(b.finish())
    } else {
        // The parsed read names the file and the event that is malformed.
        Ok(build(
            run.as_str(),
            &journal.read(&agentops_store::Query::run(run.clone()))?,
        ))
    }
}

/// Closes every agent span still open (a run paused or ended).
fn close_open(spans: &mut [Span], ts: i64, seq: i64, status: &str) {
    for sp in spans
        .iter_mut()
        .filter(|s| s.kind == SpanKind::Agent && s.done_seq.is_none())
    {
        sp.end_us = sp.end_us.max(ts);
        sp.status = status.to_owned();
        if status != "paused" && status != "completed" {
            sp.error = Some(format!("run {status}"));
            sp.set("error.type", status.to_owned());
        }
        sp.done_seq = Some(seq);
    }
}

/// Names a session root after its harness, once.
fn name_session(r: &mut Span, harness: Option<&str>) {
    if let Some(h) = harness
        && r.attr("gen_ai.agent.name").is_none()
    {
        let a = harness_agent(h);
        r.name = format!("invoke_agent {a}");
        r.set("gen_ai.agent.name", a);
        r.set("agentops.harness", h);
    }
}

fn provider_name(p: &str) -> String {
    match p {
        "claude" => "anthropic".into(),
        "codex" => "openai".into(),
        other => other.to_owned(),
    }
}
