//! Event streams into sessions and spans with tokens and cost:
//! `claude -p --output-format stream-json --verbose`, `codex exec --json`, and
//! Claude Code session transcripts (best effort: that format is internal).
//!
//! Every session becomes journal events under the harness's session id:
//! `session.started`, one `llm.call` per model response (usage normalised so
//! that `input_tokens` includes cache reads and writes), one `tool.call` per
//! tool use, and `session.ended` with the totals. Span ids come from the
//! stream (message ids, tool-use ids, item ids), so ingesting the same stream
//! twice adds nothing.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use agentops_core::{NewEvent, RunId, SpanId};
use agentops_llm::{PriceTable, Usage};
use agentops_protocol::event::{self as body, new_event};
use agentops_protocol::stream::{Block, ClaudeLine, CodexEvent, CodexItem, Content};
use agentops_protocol::{EventBody, Harness};
use agentops_store::{Durability, Journal, Query};
use serde::Serialize;
use serde_json::{Value, json};

use crate::clip;

/// Which stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    ClaudeStream,
    CodexExec,
    ClaudeTranscript,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClaudeStream => "claude-stream",
            Self::CodexExec => "codex-exec",
            Self::ClaudeTranscript => "claude-transcript",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{name}:{line}: {reason}")]
    Line {
        name: String,
        line: usize,
        reason: String,
    },
    #[error("{name}: {reason}")]
    Read { name: String, reason: String },
    #[error("journal: {0}")]
    Journal(#[from] agentops_store::StoreError),
    #[error(
        "{name}: this is not a {expected} stream; it looks like {found}: use `agentops ingest {found} {name}`"
    )]
    WrongFormat {
        name: String,
        expected: &'static str,
        found: &'static str,
    },
}

/// Which stream format `lines` look like, from their event types: Codex's
/// `thread.*`/`turn.*`/`item.*`, or Claude's `system`/`assistant`/`user`/`result`.
fn detect(lines: &[(usize, Value)]) -> Option<Source> {
    let mut codex = 0;
    let mut claude = 0;
    for (_, v) in lines {
        let t = v["type"].as_str().unwrap_or("");
        if t.starts_with("thread.") || t.starts_with("turn.") || t.starts_with("item.") {
            codex += 1;
        } else if matches!(t, "system" | "assistant" | "user" | "result") {
            claude += 1;
        }
    }
    match (codex, claude) {
        (0, 0) => None,
        (c, l) if c > l => Some(Source::CodexExec),
        _ => Some(Source::ClaudeStream),
    }
}

/// Options for [`ingest`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The model, when the stream does not say (Codex's does not).
    pub model: Option<String>,
    /// Ingest under this session id instead of the stream's.
    pub session: Option<String>,
    pub prices: PriceTable,
}

/// One session's totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionTotals {
    pub id: String,
    pub model: Option<String>,
    pub llm_calls: usize,
    pub tool_calls: usize,
    pub tool_errors: usize,
    pub usage: Usage,
    /// What the harness reported, else the price table's estimate.
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub source: Option<Source>,
    pub sessions: Vec<SessionTotals>,
    /// Events added to the journal.
    pub added: usize,
    /// Events already in the journal (an earlier ingest of the same stream).
    pub duplicates: usize,
    /// Lines skipped (transcripts only), with why.
    pub warnings: Vec<String>,
}

struct Builder {
    source: Source,
    opts_model: Option<String>,
    session_override: Option<String>,
    prices: PriceTable,
    /// Events per session, in stream order.
    sessions: BTreeMap<String, Vec<NewEvent>>,
    order: Vec<String>,
    totals: BTreeMap<String, SessionTotals>,
    ts: i64,
}

impl Builder {
    fn new(source: Source, opts: &Options) -> Self {
        Self {
            source,
            opts_model: opts.model.clone(),
            session_override: opts.session.clone(),
            prices: opts.prices.clone(),
            sessions: BTreeMap::new(),
            order: Vec::new(),
            totals: BTreeMap::new(),
            ts: agentops_core::time::now_micros(),
        }
    }

    fn session_id(&self, from_stream: Option<&str>) -> String {
        self.session_override
            .clone()
            .or_else(|| from_stream.map(str::to_owned))
            .unwrap_or_else(|| format!("{}-unknown-session", self.source.as_str()))
    }

    fn push(
        &mut self,
        session: &str,
        ts: Option<i64>,
        span: &str,
        parent: Option<&str>,
        body: impl Into<EventBody>,
    ) {
        let Ok(run) = RunId::parse(session) else {
            return;
        };
        let span = SpanId::parse(span).unwrap_or_else(|_| SpanId::generate());
        let parent = parent.and_then(|p| SpanId::parse(p).ok());
        self.ts += 1;
        let mut e = new_event(run, body).in_span(span, parent);
        e.ts = ts.unwrap_or(self.ts);
        if !self.sessions.contains_key(session) {
            self.order.push(session.to_owned());
        }
        self.sessions.entry(session.to_owned()).or_default().push(e);
    }

    fn totals(&mut self, session: &str) -> &mut SessionTotals {
        self.totals
            .entry(session.to_owned())
            .or_insert_with(|| SessionTotals {
                id: session.to_owned(),
                ..SessionTotals::default()
            })
    }

    fn cost(&self, model: Option<&str>, u: &Usage) -> Option<f64> {
        model.and_then(|m| self.prices.cost(m, u))
    }
}

/// A model response being assembled (stream-json repeats a message once per
/// content block; the last usage wins).
#[derive(Default)]
struct Call {
    id: String,
    session: String,
    model: Option<String>,
    usage: Usage,
    stop_reason: Option<String>,
    text: Option<String>,
    ts: Option<i64>,
    tools: Vec<(String, String, Value)>,
}

/// Tool results by tool-use id: (failed, error text).
type Results = BTreeMap<String, (bool, Option<String>)>;

fn flush_calls(b: &mut Builder, calls: Vec<Call>, results: &Results) {
    for c in calls {
        let cost = b.cost(c.model.as_deref(), &c.usage);
        b.push(
            &c.session,
            c.ts,
            &c.id,
            None,
            body::LlmCall {
                source: Some(b.source.as_str().into()),
                provider: Some("anthropic".into()),
                operation: Some("chat".into()),
                model: c.model.clone(),
                usage: c.usage,
                cost_usd: cost,
                cost_source: cost.map(|_| "price-table".into()),
                stop_reason: c.stop_reason.clone(),
                last_message: c.text.as_deref().map(|t| clip(t, 1_200)),
                ..body::LlmCall::default()
            },
        );
        let t = b.totals(&c.session);
        t.llm_calls += 1;
        t.usage.add(&c.usage);
        if t.model.is_none() {
            t.model = c.model.clone();
        }
        for (id, name, input) in c.tools {
            let (failed, err) = results.get(&id).cloned().unwrap_or((false, None));
            let t = b.totals(&c.session);
            t.tool_calls += 1;
            if failed {
                t.tool_errors += 1;
            }
            let mut input = input;
            crate::cap_strings(&mut input, 1_024);
            b.push(
                &c.session,
                c.ts,
                &id,
                Some(&c.id),
                body::ToolCall {
                    source: Some(b.source.as_str().into()),
                    name,
                    is_error: failed,
                    error: err.map(|e| clip(&e, 2_000)),
                    input,
                    ..body::ToolCall::default()
                },
            );
        }
    }
}

/// The text of a tool result's content (a string or text blocks).
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let parts: Vec<&str> = a
                .iter()
                .filter(|c| c["type"] == "text")
                .filter_map(|c| c["text"].as_str())
                .collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        _ => None,
    }
}

/// Claude Code stream-json and transcripts share the message shapes.
fn claude(b: &mut Builder, lines: &[(usize, Value)]) {
    let mut calls: Vec<Call> = Vec::new();
    let mut results = Results::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut prompts: BTreeMap<String, String> = BTreeMap::new();
    for (_, v) in lines {
        let line = ClaudeLine::from_value(v);
        let common = line.common();
        let session = b.session_id(common.session_id.as_deref());
        let ts = common
            .timestamp
            .as_deref()
            .and_then(agentops_core::time::parse_rfc3339);
        let opens = matches!(
            line,
            ClaudeLine::System(_) | ClaudeLine::User(_) | ClaudeLine::Assistant(_)
        );
        if !started.contains(&session) && opens {
            started.insert(session.clone());
            let start = match &line {
                ClaudeLine::System(sys) => body::SessionStarted {
                    model: sys.model.clone(),
                    cwd: sys.cwd.clone(),
                    version: sys.claude_code_version.clone().or(sys.version.clone()),
                    tools: sys.tools.clone(),
                    permission_mode: sys.permission_mode.clone(),
                    ..body::SessionStarted::default()
                },
                // Transcript lines carry cwd and version too.
                _ => body::SessionStarted {
                    cwd: v["cwd"].as_str().map(str::to_owned),
                    version: v["version"].as_str().map(str::to_owned),
                    permission_mode: v["permissionMode"].as_str().map(str::to_owned),
                    ..body::SessionStarted::default()
                },
            };
            b.push(
                &session,
                ts,
                "session",
                None,
                body::SessionStarted {
                    source: b.source.as_str().into(),
                    harness: Some(Harness::Claude),
                    ..start
                },
            );
        }
        match line {
            ClaudeLine::Assistant(a) => {
                let m = a.message;
                let Some(id) = m.id.clone().or(a.common.uuid).filter(|i| !i.is_empty()) else {
                    continue;
                };
                let i = match calls
                    .iter()
                    .position(|c| c.id == id && c.session == session)
                {
                    Some(i) => i,
                    None => {
                        calls.push(Call {
                            id: id.clone(),
                            session: session.clone(),
                            ts,
                            ..Call::default()
                        });
                        calls.len() - 1
                    }
                };
                let c = &mut calls[i];
                if let Some(u) = m.usage() {
                    c.usage = u;
                }
                c.model = m.model.clone().or(c.model.take());
                c.stop_reason = m.stop_reason.clone().or(c.stop_reason.take());
                for p in m.content.blocks() {
                    match p {
                        Block::Text { text } => c.text = Some(text.clone()),
                        Block::ToolUse { id, name, input }
                            if !id.is_empty() && !c.tools.iter().any(|t| t.0 == *id) =>
                        {
                            let name = if name.is_empty() { "?" } else { name };
                            c.tools.push((id.clone(), name.to_owned(), input.clone()));
                        }
                        _ => {}
                    }
                }
            }
            ClaudeLine::User(u) => {
                if let Content::Text(text) = &u.message.content {
                    prompts
                        .entry(session.clone())
                        .or_insert_with(|| text.clone());
                }
                for p in u.message.content.blocks() {
                    if let Block::ToolResult {
                        tool_use_id,
                        is_error,
                        content,
                    } = p
                        && !tool_use_id.is_empty()
                    {
                        results.insert(
                            tool_use_id.clone(),
                            (
                                *is_error,
                                if *is_error {
                                    content_text(content)
                                } else {
                                    None
                                },
                            ),
                        );
                    }
                }
            }
            ClaudeLine::Result(r) => {
                // Responses before the result belong to it.
                let done: Vec<Call> = std::mem::take(&mut calls);
                flush_calls(b, done, &results);
                let usage = r.usage();
                let reported = r.total_cost_usd;
                let mut per_model = serde_json::Map::new();
                for (model, u) in r.model_usage.iter().flatten() {
                    per_model.insert(
                        model.clone(),
                        json!({ "usage": Usage::from_anthropic(u), "cost_usd": u["costUSD"].as_f64() }),
                    );
                }
                let t = b.totals(&session);
                if reported.is_some() {
                    t.cost_usd = reported;
                    t.cost_source = Some("reported".into());
                }
                // The harness's own totals beat the sum of the calls seen (it
                // counts calls the stream does not show): the same number
                // `sessions` and `trace` give.
                if !usage.is_zero() {
                    t.usage = usage;
                }
                let model = t.model.clone();
                b.push(
                    &session,
                    ts,
                    "session-end",
                    Some("session"),
                    body::SessionEnded {
                        source: b.source.as_str().into(),
                        harness: Some(Harness::Claude),
                        subtype: r.subtype.clone(),
                        is_error: r.is_error,
                        duration_ms: r.duration_ms,
                        duration_api_ms: r.duration_api_ms,
                        num_turns: r.num_turns,
                        usage,
                        model,
                        cost_usd: reported,
                        cost_source: reported.map(|_| "reported".into()),
                        model_usage: if r.model_usage.is_some() {
                            Value::Object(per_model)
                        } else {
                            Value::Null
                        },
                        errors: r.errors.clone(),
                        last_message: r.result.as_deref().map(|m| clip(m, 1_200)),
                        goal: prompts.get(&session).map(|p| clip(p, 600)),
                    },
                );
            }
            _ => {}
        }
    }
    flush_calls(b, calls, &results);
    // Sessions without a reported cost: the price table's sum.
    let prices = &b.prices;
    for t in b.totals.values_mut().filter(|t| t.cost_usd.is_none()) {
        if let Some(c) = t.model.as_deref().and_then(|m| prices.cost(m, &t.usage)) {
            t.cost_usd = Some(c);
            t.cost_source = Some("price-table".into());
        }
    }
}

fn codex(b: &mut Builder, lines: &[(usize, Value)]) {
    let mut session = b.session_id(None);
    let mut turn = 0u32;
    let mut last_message: Option<String> = None;
    let mut error: Option<String> = None;
    let model = b.opts_model.clone();
    let mut started = false;
    let tool = |name: &str, is_error: bool| body::ToolCall {
        source: Some("codex-exec".into()),
        name: name.to_owned(),
        is_error,
        ..body::ToolCall::default()
    };
    for (_, v) in lines {
        match CodexEvent::from_value(v) {
            CodexEvent::ThreadStarted { thread_id } => {
                session = b.session_id(thread_id.as_deref());
                started = true;
                b.push(
                    &session,
                    None,
                    "session",
                    None,
                    body::SessionStarted {
                        source: "codex-exec".into(),
                        harness: Some(Harness::Codex),
                        model: model.clone(),
                        ..body::SessionStarted::default()
                    },
                );
            }
            CodexEvent::TurnStarted => turn += 1,
            CodexEvent::ItemCompleted(item) => {
                let span = format!("turn{turn}-{}", item.id());
                let parent = format!("turn-{turn}");
                let call = match item {
                    CodexItem::CommandExecution {
                        command,
                        aggregated_output,
                        exit_code,
                        ..
                    } => {
                        let failed = exit_code != Some(0);
                        Some(body::ToolCall {
                            exit_code,
                            command: command.as_deref().map(|c| clip(c, 500)),
                            error: if failed {
                                aggregated_output.as_deref().map(|o| clip(o, 2_000))
                            } else {
                                None
                            },
                            ..tool("shell", failed)
                        })
                    }
                    CodexItem::FileChange {
                        changes, status, ..
                    } => Some(body::ToolCall {
                        files: changes.into_iter().map(|c| c.path).collect(),
                        ..tool("apply_patch", status.as_deref() == Some("failed"))
                    }),
                    CodexItem::McpToolCall {
                        server,
                        tool: t,
                        status,
                        ..
                    } => Some(tool(
                        &format!(
                            "{}.{}",
                            server.as_deref().unwrap_or("mcp"),
                            t.as_deref().unwrap_or("?")
                        ),
                        status.as_deref() == Some("failed"),
                    )),
                    CodexItem::WebSearch { query, .. } => Some(body::ToolCall {
                        query,
                        ..tool("web_search", false)
                    }),
                    CodexItem::AgentMessage { text, .. } => {
                        last_message = Some(text);
                        None
                    }
                    CodexItem::Error { message, .. } => {
                        error = message;
                        None
                    }
                    CodexItem::Reasoning { .. } | CodexItem::Other => None,
                };
                if let Some(call) = call {
                    let t = b.totals(&session);
                    t.tool_calls += 1;
                    if call.is_error {
                        t.tool_errors += 1;
                    }
                    b.push(&session, None, &span, Some(&parent), call);
                }
            }
            ev @ (CodexEvent::TurnCompleted { .. } | CodexEvent::TurnFailed { .. }) => {
                let (usage, failed) = match ev {
                    CodexEvent::TurnFailed { message, usage } => {
                        error = message.or(error);
                        (usage, true)
                    }
                    CodexEvent::TurnCompleted { usage } => (usage, false),
                    _ => (Usage::default(), false),
                };
                let cost = b.cost(model.as_deref(), &usage);
                b.push(
                    &session,
                    None,
                    &format!("turn-{turn}"),
                    None,
                    body::LlmCall {
                        source: Some("codex-exec".into()),
                        provider: Some("openai".into()),
                        operation: Some("chat".into()),
                        model: model.clone(),
                        usage,
                        cost_usd: cost,
                        cost_source: cost.map(|_| "price-table".into()),
                        error: if failed { error.clone() } else { None },
                        last_message: last_message.as_deref().map(|t| clip(t, 1_200)),
                        ..body::LlmCall::default()
                    },
                );
                let t = b.totals(&session);
                t.llm_calls += 1;
                t.usage.add(&usage);
                t.model = model.clone();
            }
            CodexEvent::Error { message } => error = message,
            CodexEvent::ItemStarted(_) | CodexEvent::Other { .. } => {}
        }
    }
    if !started && b.sessions.is_empty() {
        return;
    }
    let usage = b.totals(&session).usage;
    let cost = b.cost(model.as_deref(), &usage);
    let t = b.totals(&session);
    t.cost_usd = cost;
    t.cost_source = Some(if cost.is_some() {
        "price-table".into()
    } else {
        "unknown: pass --model to price it".into()
    });
    b.push(
        &session,
        None,
        "session-end",
        Some("session"),
        body::SessionEnded {
            source: "codex-exec".into(),
            harness: Some(Harness::Codex),
            usage,
            model,
            num_turns: Some(u64::from(turn)),
            cost_usd: cost,
            cost_source: cost.map(|_| "price-table".into()),
            is_error: error.is_some(),
            errors: error.map_or(Value::Null, |e| json!([e])),
            last_message: last_message.as_deref().map(|t| clip(t, 1_200)),
            ..body::SessionEnded::default()
        },
    );
}

/// Reads `reader` (named `name` in errors) as `source` and journals it.
/// Streams must be well formed: a bad line is an error naming the line, and
/// nothing is written. Transcripts are read best effort: bad lines are
/// skipped with a warning.
pub fn ingest(
    source: Source,
    reader: impl BufRead,
    name: &str,
    journal: &Journal,
    opts: &Options,
) -> Result<Report, IngestError> {
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| IngestError::Read {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let reason = match serde_json::from_str::<Value>(&line) {
            Ok(v) if v.get("type").is_some_and(Value::is_string) => {
                lines.push((n, v));
                continue;
            }
            Ok(_) => "field `type`: missing or not a string".to_owned(),
            Err(e) => format!("not valid JSON ({e})"),
        };
        if source == Source::ClaudeTranscript {
            warnings.push(format!("{name}:{n}: {reason}; skipped"));
        } else {
            return Err(IngestError::Line {
                name: name.to_owned(),
                line: n,
                reason,
            });
        }
    }
    // Another harness's stream would be read as nothing: say what it is.
    let found = detect(&lines);
    let wrong = match (source, found) {
        (Source::CodexExec, Some(Source::ClaudeStream)) => Some(Source::ClaudeStream),
        (Source::ClaudeStream | Source::ClaudeTranscript, Some(Source::CodexExec)) => {
            Some(Source::CodexExec)
        }
        _ => None,
    };
    if let Some(f) = wrong {
        return Err(IngestError::WrongFormat {
            name: name.to_owned(),
            expected: source.as_str(),
            found: f.as_str(),
        });
    }
    let mut b = Builder::new(source, opts);
    match source {
        Source::ClaudeStream | Source::ClaudeTranscript => claude(&mut b, &lines),
        Source::CodexExec => codex(&mut b, &lines),
    }
    let mut report = Report {
        source: Some(source),
        warnings,
        ..Report::default()
    };
    let mut batch = Vec::new();
    for s in &b.order {
        let events = b.sessions.remove(s).unwrap_or_default();
        let Ok(run) = RunId::parse(s) else { continue };
        let have: HashSet<String> = journal
            .read(&Query::run(run))?
            .into_iter()
            .filter_map(|e| e.span_id.map(|s| format!("{}:{}", e.kind, s)))
            .collect();
        for e in events {
            let key = format!(
                "{}:{}",
                e.kind,
                e.span_id.as_ref().map(|s| s.as_str()).unwrap_or("")
            );
            if have.contains(&key) {
                report.duplicates += 1;
            } else {
                batch.push(e);
            }
        }
        if let Some(t) = b.totals.get(s) {
            report.sessions.push(t.clone());
        }
    }
    report.added = batch.len();
    if !batch.is_empty() {
        journal.append_batch(batch, Durability::Configured)?;
    }
    Ok(report)
}

/// Ingests a Claude Code transcript file (best effort), under `session` when
/// given.
pub fn ingest_transcript_file(
    path: &Path,
    journal: &Journal,
    session: Option<&str>,
) -> Result<Report, IngestError> {
    let f = std::fs::File::open(path).map_err(|e| IngestError::Read {
        name: path.display().to_string(),
        reason: e.to_string(),
    })?;
    ingest(
        Source::ClaudeTranscript,
        std::io::BufReader::new(f),
        &path.display().to_string(),
        journal,
        &Options {
            session: session.map(str::to_owned),
            ..Options::default()
        },
    )
}
