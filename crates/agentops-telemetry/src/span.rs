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

use std::collections::HashMap;

use agentops_core::{Event, EventKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

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

/// Body keys no span uses, and the largest: model responses, tool inputs,
/// gate evidence, last messages.
pub const SLIM: &[&str] = &["response", "input", "evidence", "last_message"];

/// The journal query for building one run's or session's spans: its events,
/// without the [`SLIM`] keys.
pub fn query(run: &agentops_core::RunId) -> agentops_store::Query {
    agentops_store::Query {
        omit: SLIM.to_vec(),
        ..agentops_store::Query::run(run.clone())
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

fn s<'a>(b: &'a Value, k: &str) -> Option<&'a str> {
    b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn f(b: &Value, k: &str) -> Option<f64> {
    b.get(k).and_then(Value::as_f64)
}

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

struct Builder<'a> {
    run_id: &'a str,
    trace: [u8; 16],
    spans: Vec<Span>,
    by_key: HashMap<String, usize>,
    /// Journal span key of each span, to resolve parents after the pass.
    parents: Vec<Option<String>>,
}

impl<'a> Builder<'a> {
    fn get_or_insert(
        &mut self,
        key: &str,
        kind: SpanKind,
        ts: i64,
        parent: Option<&str>,
    ) -> (usize, bool) {
        if let Some(&i) = self.by_key.get(key) {
            return (i, false);
        }
        let i = self.spans.len();
        self.spans.push(Span {
            trace_id: self.trace,
            span_id: span_id(self.run_id, key),
            parent_span_id: None,
            name: String::new(),
            kind,
            start_us: ts,
            end_us: ts,
            error: None,
            attrs: Vec::new(),
            events: Vec::new(),
            done_seq: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            status: "ok".into(),
        });
        self.parents.push(if key == ROOT {
            None
        } else {
            Some(parent.unwrap_or(ROOT).to_owned())
        });
        self.by_key.insert(key.to_owned(), i);
        (i, true)
    }

    fn root(&mut self, ts: i64) -> usize {
        self.get_or_insert(ROOT, SpanKind::Session, ts, None).0
    }
}

fn done(sp: &mut Span, seq: i64) {
    if sp.done_seq.is_none() {
        sp.done_seq = Some(seq);
    }
}

fn usage_attrs(sp: &mut Span, u: &Value) {
    let n = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (input, output) = (n("input_tokens"), n("output_tokens"));
    let (read, write) = (n("cache_read_tokens"), n("cache_creation_tokens"));
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
    let mut b = Builder {
        run_id,
        trace: trace_id(run_id),
        spans: Vec::new(),
        by_key: HashMap::new(),
        parents: Vec::new(),
    };
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let workflow = events.iter().any(|e| e.kind == EventKind::RunStarted);
    let root = b.root(first.ts);
    {
        let r = &mut b.spans[root];
        if workflow {
            r.kind = SpanKind::Workflow;
            r.name = "invoke_workflow".into();
            r.set("gen_ai.operation.name", "invoke_workflow");
            r.status = "running".into();
        } else {
            r.name = "session".into();
            r.set("gen_ai.operation.name", "invoke_agent");
        }
    }
    let mut last_ts = first.ts;
    for e in events {
        let body = &e.body;
        last_ts = last_ts.max(e.ts);
        let key_of = |e: &Event| {
            e.span_id
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| format!("#{}", e.seq))
        };
        let parent_key = e.parent_span_id.as_ref().map(|p| p.as_str().to_owned());
        match &e.kind {
            EventKind::RunStarted => {
                let r = &mut b.spans[root];
                r.start_us = e.ts;
                let wf = body
                    .pointer("/workflow/name")
                    .and_then(Value::as_str)
                    .unwrap_or("workflow");
                r.name = format!("invoke_workflow {wf}");
                r.set("agentops.workflow", wf);
                r.set("gen_ai.workflow.name", wf);
                r.set_opt("agentops.run.goal", s(body, "goal").map(|g| clip(g, 500)));
                // The runner's branch is derived from the run id (the body's
                // copy may have been redacted as high-entropy).
                r.set("agentops.run.branch", format!("agentops/run/{run_id}"));
                r.set_opt("agentops.run.base_commit", s(body, "base_commit"));
            }
            EventKind::RunCompleted => {
                let status = s(body, "status").unwrap_or("completed").to_owned();
                let r = &mut b.spans[root];
                r.end_us = e.ts;
                if status != "completed" {
                    r.error = Some(
                        s(body, "error")
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
                close_open(&mut b.spans, e.ts, e.seq, &status);
            }
            EventKind::RunPaused => {
                let reason = s(body, "reason").unwrap_or("paused").to_owned();
                let r = &mut b.spans[root];
                r.status = "paused".into();
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "run.paused".into(),
                    attrs: vec![
                        ("reason", reason.as_str().into()),
                        (
                            "detail",
                            s(body, "detail")
                                .map(|d| clip(d, 500))
                                .unwrap_or_default()
                                .into(),
                        ),
                    ],
                });
                close_open(&mut b.spans, e.ts, e.seq, "paused");
            }
            EventKind::RunResumed => {
                let r = &mut b.spans[root];
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
                let r = &mut b.spans[root];
                let mut attrs = Vec::new();
                for k in ["gate", "decision", "reason", "event", "path"] {
                    if let Some(v) = s(body, k) {
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
                let r = &mut b.spans[root];
                r.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "context.guard".into(),
                    attrs: vec![
                        ("percent", f(body, "percent").unwrap_or(0.0).into()),
                        ("band", s(body, "band").unwrap_or("").into()),
                    ],
                });
                if let Some(p) = f(body, "percent") {
                    r.set("agentops.context.percent", p);
                }
            }
            EventKind::SessionStarted | EventKind::HookReceived => {
                let r = &mut b.spans[root];
                r.start_us = r.start_us.min(e.ts);
                name_session(r, s(body, "harness"));
                r.set_opt("gen_ai.request.model", s(body, "model"));
                if e.kind == EventKind::HookReceived && s(body, "event") == Some("SessionEnd") {
                    r.end_us = r.end_us.max(e.ts);
                    done(r, e.seq);
                }
            }
            EventKind::SessionEnded => {
                let r = &mut b.spans[root];
                r.end_us = r.end_us.max(e.ts);
                // The harness's own wall time, when it is longer than what
                // the events span (streams without timestamps).
                if let Some(d) = f(body, "duration_ms").map(ms_to_us) {
                    r.start_us = r.start_us.min(r.end_us - d);
                }
                name_session(r, s(body, "harness"));
                r.set_opt("gen_ai.request.model", s(body, "model"));
                if let Some(u) = body.get("usage").filter(|u| u.is_object()) {
                    usage_attrs(r, u);
                }
                if let Some(c) = f(body, "cost_usd") {
                    r.cost_usd = Some(c);
                    r.set("agentops.cost_usd", c);
                }
                if body.get("is_error").and_then(Value::as_bool) == Some(true) {
                    let msg = body
                        .get("errors")
                        .and_then(|v| v.get(0))
                        .and_then(Value::as_str)
                        .map(|m| clip(m, 500))
                        .unwrap_or_else(|| "session ended with an error".into());
                    r.error = Some(msg);
                    r.set("error.type", "session_error");
                    r.status = "error".into();
                }
                done(r, e.seq);
            }
            EventKind::StepStarted => {
                let key = key_of(e);
                let (i, new) = b.get_or_insert(&key, SpanKind::Agent, e.ts, None);
                let sp = &mut b.spans[i];
                let agent = s(body, "agent").unwrap_or("agent");
                if new {
                    sp.name = format!("invoke_agent {agent}");
                    sp.set("gen_ai.operation.name", "invoke_agent");
                    sp.set("gen_ai.agent.name", agent);
                    sp.set_opt(
                        "gen_ai.provider.name",
                        s(body, "provider").map(provider_name),
                    );
                    sp.set_opt("gen_ai.request.model", s(body, "model"));
                    sp.set_opt("agentops.phase", s(body, "phase"));
                    sp.status = "running".into();
                }
                let attempt = body.get("attempt").and_then(Value::as_i64).unwrap_or(1);
                sp.set("agentops.attempts", attempt);
                sp.events.push(SpanEvent {
                    ts_us: e.ts,
                    name: "attempt".into(),
                    attrs: vec![("attempt", attempt.into())],
                });
            }
            EventKind::StepCompleted => {
                let key = key_of(e);
                let (i, _) = b.get_or_insert(&key, SpanKind::Agent, e.ts, None);
                let sp = &mut b.spans[i];
                sp.end_us = e.ts;
                sp.status = "ok".into();
                if let Some(u) = body.get("usage").filter(|u| u.is_object()) {
                    usage_attrs(sp, u);
                }
                if let Some(c) = f(body, "cost_usd") {
                    sp.cost_usd = Some(c);
                    sp.set("agentops.cost_usd", c);
                }
                sp.set_opt("agentops.commit", s(body, "commit"));
                done(sp, e.seq);
            }
            EventKind::Other(k) if k == "step.retry" => {
                let key = key_of(e);
                if let Some(&i) = b.by_key.get(&key) {
                    let sp = &mut b.spans[i];
                    sp.events.push(SpanEvent {
                        ts_us: e.ts,
                        name: "retry".into(),
                        attrs: vec![(
                            "feedback",
                            s(body, "feedback")
                                .map(|x| clip(x, 500))
                                .unwrap_or_default()
                                .into(),
                        )],
                    });
                }
            }
            EventKind::LlmCall => {
                let key = key_of(e);
                let (i, new) = b.get_or_insert(&key, SpanKind::Llm, e.ts, parent_key.as_deref());
                let sp = &mut b.spans[i];
                if !new && sp.done_seq.is_some() {
                    continue; // the same call journaled twice (a stream ingested again)
                }
                let model = s(body, "model").unwrap_or("unknown");
                sp.name = format!("chat {model}");
                sp.start_us = e.ts;
                sp.end_us = e.ts + f(body, "duration_ms").map(ms_to_us).unwrap_or(0);
                sp.set(
                    "gen_ai.operation.name",
                    s(body, "operation").unwrap_or("chat"),
                );
                let provider = s(body, "provider").map(provider_name);
                sp.set_opt("gen_ai.provider.name", provider.clone());
                sp.set("gen_ai.request.model", model);
                sp.set_opt("gen_ai.response.model", s(body, "response_model"));
                sp.set_opt("gen_ai.response.id", s(body, "response_id"));
                if let Some(r) = s(body, "stop_reason") {
                    sp.set(
                        "gen_ai.response.finish_reasons",
                        AttrValue::StrArray(vec![r.to_owned()]),
                    );
                }
                sp.set_opt("gen_ai.agent.name", s(body, "agent"));
                sp.set_opt("agentops.phase", s(body, "phase"));
                let u = body.get("usage").cloned().unwrap_or(Value::Null);
                usage_attrs(sp, &u);
                // OpenInference names: Phoenix prices LLM spans from these.
                let n = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
                sp.set("llm.model_name", s(body, "response_model").unwrap_or(model));
                sp.set_opt("llm.provider", provider.clone());
                sp.set_opt("llm.system", provider);
                sp.set("llm.token_count.prompt", n("input_tokens"));
                sp.set("llm.token_count.completion", n("output_tokens"));
                sp.set(
                    "llm.token_count.total",
                    n("input_tokens") + n("output_tokens"),
                );
                sp.set(
                    "llm.token_count.prompt_details.cache_read",
                    n("cache_read_tokens"),
                );
                sp.set(
                    "llm.token_count.prompt_details.cache_write",
                    n("cache_creation_tokens"),
                );
                if let Some(c) = f(body, "cost_usd") {
                    sp.cost_usd = Some(c);
                    sp.set("agentops.cost_usd", c);
                }
                if let Some(err) = s(body, "error") {
                    sp.error = Some(clip(err, 500));
                    sp.set("error.type", s(body, "error_type").unwrap_or("llm_error"));
                    sp.status = "error".into();
                }
                done(sp, e.seq);
            }
            EventKind::ToolCall => {
                let key = key_of(e);
                let (i, new) = b.get_or_insert(&key, SpanKind::Tool, e.ts, parent_key.as_deref());
                let sp = &mut b.spans[i];
                if !new && sp.done_seq.is_some() {
                    // Seen twice (a hook and an ingested stream): keep the
                    // first, fill what it lacked.
                    if sp.end_us == sp.start_us
                        && let Some(d) = f(body, "duration_ms")
                    {
                        sp.start_us = e.ts - ms_to_us(d);
                        sp.end_us = e.ts;
                    }
                    continue;
                }
                let tool = s(body, "tool")
                    .or_else(|| s(body, "name"))
                    .unwrap_or("tool");
                sp.name = format!("execute_tool {tool}");
                match f(body, "duration_ms") {
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
                sp.set_opt(
                    "gen_ai.tool.call.id",
                    s(body, "tool_use_id").or(e.span_id.as_ref().map(|x| x.as_str())),
                );
                sp.set_opt("gen_ai.agent.name", s(body, "agent"));
                sp.set_opt("agentops.tool.command", s(body, "command"));
                let failed = body.get("is_error").and_then(Value::as_bool) == Some(true)
                    || body.get("ok").and_then(Value::as_bool) == Some(false);
                if failed {
                    let msg = s(body, "error")
                        .or_else(|| s(body, "output"))
                        .map(|m| clip(m, 500));
                    sp.error = Some(msg.unwrap_or_else(|| "the tool failed".into()));
                    sp.set("error.type", "tool_error");
                    sp.status = "error".into();
                }
                done(sp, e.seq);
            }
            EventKind::GateVerdict => {
                let key = key_of(e);
                let (i, _) = b.get_or_insert(&key, SpanKind::Gate, e.ts, parent_key.as_deref());
                let sp = &mut b.spans[i];
                let gate = s(body, "gate").unwrap_or("gate");
                let verdict = s(body, "verdict").unwrap_or("?");
                let pending = body.get("pending").and_then(Value::as_bool) == Some(true);
                sp.name = format!("gate {gate}");
                sp.start_us = e.ts;
                sp.end_us = e.ts + f(body, "duration_ms").map(ms_to_us).unwrap_or(0);
                sp.set("agentops.gate.name", gate);
                sp.set_opt("agentops.gate.kind", s(body, "kind"));
                sp.set(
                    "agentops.gate.verdict",
                    if pending { "PENDING" } else { verdict },
                );
                sp.set_opt(
                    "agentops.gate.summary",
                    s(body, "summary").map(|x| clip(x, 500)),
                );
                sp.status = if pending {
                    "PENDING".into()
                } else {
                    verdict.to_owned()
                };
                if verdict == "FAIL" && !pending {
                    sp.error = Some(
                        s(body, "summary")
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
    // Parents, and the root's extent.
    let index: HashMap<String, [u8; 8]> = b
        .by_key
        .iter()
        .map(|(k, &i)| (k.clone(), b.spans[i].span_id))
        .collect();
    let root_id = b.spans[root].span_id;
    let mut max_end = last_ts;
    for (sp, p) in b.spans.iter_mut().zip(&b.parents) {
        if let Some(p) = p {
            sp.parent_span_id = Some(index.get(p).copied().unwrap_or(root_id));
        }
        max_end = max_end.max(sp.end_us);
    }
    let session = !workflow;
    let loose = session
        && !events.iter().any(|e| {
            matches!(
                e.kind,
                EventKind::SessionStarted | EventKind::SessionEnded | EventKind::HookReceived
            )
        });
    let r = &mut b.spans[root];
    if r.done_seq.is_none() || session {
        r.end_us = r.end_us.max(max_end);
    }
    r.set("session.id", run_id);
    r.set("gen_ai.conversation.id", run_id);
    if session && r.done_seq.is_none() {
        r.status = "running".into();
    }
    // Agent spans of a running run end at their last child for views.
    let ends: HashMap<[u8; 8], i64> = {
        let mut m: HashMap<[u8; 8], i64> = HashMap::new();
        for sp in &b.spans {
            if let Some(p) = sp.parent_span_id {
                let v = m.entry(p).or_insert(sp.end_us);
                *v = (*v).max(sp.end_us);
            }
        }
        m
    };
    // Views of spans without their own totals (the workflow, an agent
    // paused mid-step) show the sum of their model calls.
    let mut sums: HashMap<[u8; 8], (i64, i64, f64, bool)> = HashMap::new();
    let up: HashMap<[u8; 8], Option<[u8; 8]>> = b
        .spans
        .iter()
        .map(|s| (s.span_id, s.parent_span_id))
        .collect();
    for sp in b.spans.iter().filter(|s| s.kind == SpanKind::Llm) {
        let mut p = sp.parent_span_id;
        while let Some(id) = p {
            let e = sums.entry(id).or_default();
            e.0 += sp.input_tokens;
            e.1 += sp.output_tokens;
            e.2 += sp.cost_usd.unwrap_or(0.0);
            e.3 |= sp.cost_usd.is_some();
            p = up.get(&id).copied().flatten().filter(|n| *n != id);
        }
    }
    for sp in &mut b.spans {
        if matches!(
            sp.kind,
            SpanKind::Workflow | SpanKind::Agent | SpanKind::Session
        ) && sp.input_tokens + sp.output_tokens == 0
            && let Some(&(i, o, c, priced)) = sums.get(&sp.span_id)
        {
            sp.input_tokens = i;
            sp.output_tokens = o;
            if priced && sp.cost_usd.is_none() {
                sp.cost_usd = Some(c);
            }
        }
    }
    for sp in &mut b.spans {
        if sp.kind == SpanKind::Agent
            && sp.done_seq.is_none()
            && let Some(&end) = ends.get(&sp.span_id)
        {
            sp.end_us = sp.end_us.max(end);
        }
        if sp.attr("session.id").is_none() {
            sp.set("session.id", run_id);
        }
        if matches!(sp.kind, SpanKind::Llm | SpanKind::Agent)
            && sp.attr("gen_ai.conversation.id").is_none()
        {
            sp.set("gen_ai.conversation.id", run_id);
        }
        let kind = sp.kind.openinference();
        sp.set("openinference.span.kind", kind);
        if sp.end_us < sp.start_us {
            sp.end_us = sp.start_us;
        }
    }
    if loose {
        // Neither a workflow nor a harness session (`agentops gate run`,
        // memory writes): no root that could never close; each span stands
        // alone in the trace.
        let root_id = b.spans[root].span_id;
        b.spans.remove(root);
        for sp in &mut b.spans {
            if sp.parent_span_id == Some(root_id) {
                sp.parent_span_id = None;
            }
        }
    }
    b.spans
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
