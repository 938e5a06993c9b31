//! The tools: each one's schema, annotations and its call into the same
//! library functions as the command of the same name.

use agentops_api::knowledge::{self as api, ContextRequest};
use agentops_api::{ApiError, gates, runs};
use agentops_knowledge::{EntryType, NewEntry, Provenance};
use serde_json::{Map, Value, json};

use crate::args::{ArgError, Args, MAX_BODY, MAX_SHORT};
use crate::state::State;

/// A tool's failure, shown to the model as a tool error.
pub struct ToolError {
    pub message: String,
    /// The argument at fault, if one is.
    pub field: Option<String>,
}

impl From<ArgError> for ToolError {
    fn from(e: ArgError) -> Self {
        Self {
            message: e.message,
            field: Some(e.field),
        }
    }
}

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> Self {
        Self {
            message: e.message,
            field: None,
        }
    }
}

fn failed(e: impl std::fmt::Display) -> ToolError {
    ToolError {
        message: e.to_string(),
        field: None,
    }
}

/// How a tool touches the world (MCP tool annotations).
#[derive(Clone, Copy)]
enum Effect {
    /// Reads (it still journals the call, and `get` counts as feedback).
    Read,
    /// Adds to memory or the journal; never removes or overwrites.
    Write,
    /// Runs commands (the gates' checks).
    Run,
}

struct Def {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    effect: Effect,
    input: Value,
    output: Value,
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

fn open_obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

fn str_prop(d: &str) -> Value {
    json!({"type": "string", "description": d})
}

fn int_prop(d: &str, min: u64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max, "description": d})
}

fn tags_prop(d: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": d})
}

const TYPES: &str = "learning, decision, pattern, anti-pattern, handoff, run-summary";

fn hit_schema() -> Value {
    open_obj(json!({
        "id": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}, "maturity": {"type": "string"},
        "path": {"type": "string"}, "score": {"type": "object"}, "snippet": {"type": "string"},
    }))
}

fn write_schema() -> Value {
    open_obj(json!({
        "id": {"type": "string"}, "path": {"type": "string"},
        "commit": {"type": ["string", "null"]}, "branch": {"type": ["string", "null"]},
        "deferred": {"type": ["string", "null"]}, "changed": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    }))
}

fn defs() -> Vec<Def> {
    vec![
        Def {
            name: "search",
            title: "Search knowledge",
            description: "Search the repository's knowledge (.agents/: learnings, decisions, patterns, anti-patterns, handoffs, run summaries) with the same ranking as `agentops search`. Returns ids, titles, snippets and scores; fetch an entry in full with `get`.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "query": str_prop("What you are looking for, in words or as a symptom."),
                    "type": str_prop(&format!("Only entries of this type: {TYPES}.")),
                    "tags": tags_prop("Only entries with all of these tags."),
                    "limit": int_prop("How many hits (default 10).", 1, 100),
                }),
                &["query"],
            ),
            output: obj(
                json!({"hits": {"type": "array", "items": hit_schema()}}),
                &["hits"],
            ),
        },
        Def {
            name: "context",
            title: "Context packet for a task",
            description: "The knowledge a task needs, ranked and cut to a token budget (by default the 40% rule over the window): full bodies for the best entries, one-line summaries for the next, titles and ids for the rest (expand one with `get`). `explain` says why each candidate was taken, shortened or left out.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "task": str_prop("The task, as you would brief a colleague."),
                    "budget": int_prop("Tokens the packet may use (default: min(context.packet_max, 40% of the window − used)).", 0, 1_000_000),
                    "window": int_prop("The model's context window in tokens (default context.window).", 1, 10_000_000),
                    "used": int_prop("Tokens already in the window.", 0, 10_000_000),
                    "type": str_prop(&format!("Only entries of this type: {TYPES}.")),
                    "tags": tags_prop("Only entries with all of these tags."),
                    "explain": {"type": "boolean", "description": "Include why each candidate was included, shortened or dropped."},
                }),
                &["task"],
            ),
            output: obj(
                json!({
                    "budget": {"type": "integer"}, "tokens": {"type": "integer"},
                    "cited": {"type": "array", "items": {"type": "string"}},
                    "text": {"type": "string"}, "explain": {"type": "array"},
                }),
                &["budget", "tokens", "cited", "text"],
            ),
        },
        Def {
            name: "get",
            title: "One entry in full",
            description: "One knowledge entry in full (front matter and body): the expansion of a summary or a title in a packet. Counts as the entry being used.",
            effect: Effect::Read,
            input: obj(
                json!({"id": str_prop("The entry's id, as search and packets give it.")}),
                &["id"],
            ),
            output: open_obj(json!({
                "id": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"},
                "body": {"type": "string"}, "tags": {"type": "array"}, "maturity": {"type": "string"},
                "path": {"type": "string"},
            })),
        },
        Def {
            name: "learn",
            title: "Record a learning",
            description: "Write a knowledge entry: one git commit on the current branch, indexed at once. Secrets in it are redacted before anything is stored. Use the Context / Solution / Learning / Impact sections (the record-learning prompt).",
            effect: Effect::Write,
            input: obj(
                json!({
                    "title": str_prop("One line: what was learned."),
                    "body": str_prop("Markdown: ## Context, ## Solution, ## Learning, ## Impact."),
                    "type": str_prop(&format!("One of {TYPES} (default learning).")),
                    "tags": tags_prop("Lower-case tags (letters, digits, `-`, `.`, `:`)."),
                    "supersedes": tags_prop("Ids of entries this one replaces."),
                }),
                &["title", "body"],
            ),
            output: write_schema(),
        },
        Def {
            name: "feedback",
            title: "Rate an entry",
            description: "Record whether an entry helped: retrieved, used, helpful, unhelpful, wrong. Utility moves; enough signals promote or deprecate the entry (a memory write).",
            effect: Effect::Write,
            input: obj(
                json!({
                    "id": str_prop("The entry's id."),
                    "signal": {"type": "string", "enum": ["retrieved", "used", "helpful", "unhelpful", "wrong"]},
                }),
                &["id", "signal"],
            ),
            output: obj(
                json!({
                    "id": {"type": "string"}, "signal": {"type": "string"}, "utility": {"type": "number"},
                    "events": {"type": "integer"}, "maturity": {"type": "string"},
                    "write": {"type": ["object", "null"]},
                }),
                &["id", "signal", "utility"],
            ),
        },
        Def {
            name: "handoff_latest",
            title: "Latest handoff",
            description: "The newest handoff for the current branch (or `branch`, or any with `any`): what the last session did and what is next.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "branch": str_prop("The branch (default: the current one)."),
                    "any": {"type": "boolean", "description": "The newest handoff of any branch."},
                }),
                &[],
            ),
            output: open_obj(
                json!({"id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"}}),
            ),
        },
        Def {
            name: "handoff_write",
            title: "Write a handoff",
            description: "Write a handoff for the next session: what was done, what is next, open questions. One commit under .agents/handoffs/, tagged with the branch.",
            effect: Effect::Write,
            input: obj(
                json!({
                    "done": str_prop("What this session did (Markdown)."),
                    "next": str_prop("What the next session should do first (Markdown)."),
                    "title": str_prop("One line (default: from `done`)."),
                }),
                &["done"],
            ),
            output: write_schema(),
        },
        Def {
            name: "gate_run",
            title: "Run gates",
            description: "Run named validation gates (or all) on the work tree, as `agentops gate run`: a verdict (PASS, WARN, FAIL, WAIT for a pending approval) and evidence for each.",
            effect: Effect::Run,
            input: obj(
                json!({
                    "names": tags_prop("Gates to run (see .agents/config.toml)."),
                    "all": {"type": "boolean", "description": "Run every gate defined."},
                    "base": str_prop("The commit to diff against (default: HEAD)."),
                    "strict": {"type": "boolean", "description": "A warning blocks too."},
                }),
                &[],
            ),
            output: obj(
                json!({"ok": {"type": "boolean"}, "strict": {"type": "boolean"}, "results": {"type": "array"}}),
                &["ok", "results"],
            ),
        },
        Def {
            name: "gate_check",
            title: "Check a command or a write",
            description: "The policy's verdict (allow, or deny with the reason) for a shell command or a file write, before doing it. Give `command` or `path`.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "command": str_prop("A shell command."),
                    "path": str_prop("A file to be written (relative to the repository)."),
                }),
                &[],
            ),
            output: obj(
                json!({"decision": {"type": "string"}, "reason": {"type": "string"}}),
                &["decision"],
            ),
        },
        Def {
            name: "runs",
            title: "Runs",
            description: "Workflow runs, newest first: status, workflow, goal, phases, tokens, cost.",
            effect: Effect::Read,
            input: obj(
                json!({"limit": int_prop("How many (default 20).", 1, 1000)}),
                &[],
            ),
            output: obj(json!({"runs": {"type": "array"}}), &["runs"]),
        },
        Def {
            name: "run_show",
            title: "One run",
            description: "One run's state: status (paused with the reason), goal, branch, spend against budget, completed phases with their gates, events.",
            effect: Effect::Read,
            input: obj(
                json!({"run": str_prop("A run id or a unique prefix.")}),
                &["run"],
            ),
            output: open_obj(json!({"run": {"type": "string"}, "status": {"type": "string"}})),
        },
        Def {
            name: "trace",
            title: "Trace",
            description: "A run's or a harness session's spans: phases, model calls, tool calls, gates, with tokens, cost and latency.",
            effect: Effect::Read,
            input: obj(
                json!({"id": str_prop("A run id (or prefix) or a session id.")}),
                &["id"],
            ),
            output: obj(
                json!({"run": {"type": "string"}, "spans": {"type": "array"}}),
                &["run", "spans"],
            ),
        },
        Def {
            name: "sessions",
            title: "Harness sessions",
            description: "Claude Code and Codex sessions seen by the hooks: duration, prompts, tools, tokens, cost, blocks, handoff.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "since": str_prop("A date (2026-11-01) or an age (7d, 12h)."),
                    "limit": int_prop("How many (default 20).", 1, 1000),
                }),
                &[],
            ),
            output: obj(json!({"sessions": {"type": "array"}}), &["sessions"]),
        },
        Def {
            name: "stats",
            title: "Usage and cost",
            description: "Tokens, cost, latency, errors and gate pass rate, grouped by day, model, agent, workflow or harness.",
            effect: Effect::Read,
            input: obj(
                json!({
                    "by": {"type": "string", "enum": ["day", "model", "agent", "workflow", "harness"]},
                    "since": str_prop("A date or an age (default 7d)."),
                }),
                &[],
            ),
            output: obj(
                json!({"by": {"type": "string"}, "since": {"type": "string"}, "groups": {"type": "array"}}),
                &["by", "groups"],
            ),
        },
        Def {
            name: "status",
            title: "Alerts",
            description: "What `agentops status` reports: each alert rule over the window, firing or not, with its value and threshold.",
            effect: Effect::Read,
            input: obj(
                json!({"window": str_prop("An age (24h, 7d; default alerts.window).")}),
                &[],
            ),
            output: open_obj(json!({"alerts": {"type": "array"}})),
        },
    ]
}

/// `tools/list`: every tool with its schemas and annotations.
pub fn list() -> Vec<Value> {
    listing().to_vec()
}

/// The tool list, built once.
fn listing() -> &'static [Value] {
    static LIST: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    LIST.get_or_init(build_list)
}

fn build_list() -> Vec<Value> {
    defs()
        .into_iter()
        .map(|mut d| {
            // Outputs may grow fields: only inputs are closed.
            if let Some(o) = d.output.as_object_mut() {
                o.remove("additionalProperties");
            }
            let (read_only, destructive, idempotent, open_world) = match d.effect {
                Effect::Read => (true, false, true, false),
                Effect::Write => (false, false, false, false),
                Effect::Run => (false, false, false, true),
            };
            json!({
                "name": d.name,
                "title": d.title,
                "description": d.description,
                "inputSchema": d.input,
                "outputSchema": d.output,
                "annotations": {
                    "title": d.title,
                    "readOnlyHint": read_only,
                    "destructiveHint": destructive,
                    "idempotentHint": idempotent,
                    "openWorldHint": open_world,
                },
            })
        })
        .collect()
}

/// Whether tool `name` only reads (its annotation `readOnlyHint`).
pub fn reads_only(name: &str) -> bool {
    listing()
        .iter()
        .find(|t| t["name"] == name)
        .is_some_and(|t| t["annotations"]["readOnlyHint"] == json!(true))
}

/// Whether `name` is a tool.
pub fn exists(name: &str) -> bool {
    listing().iter().any(|t| t["name"] == name)
}

/// The arguments tool `name` takes, from its input schema.
fn known(name: &str) -> Vec<String> {
    listing()
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| {
            t["inputSchema"]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// Calls tool `name` for `session`; the result is the tool's structured
/// content.
pub fn call(
    state: &State,
    session: &Provenance,
    name: &str,
    arguments: Option<Map<String, Value>>,
) -> Result<Value, ToolError> {
    let a = Args::new(name, arguments);
    a.only(&known(name))?;
    let p = state.project();
    match name {
        "search" => {
            let query = a.str_req("query", MAX_SHORT)?;
            let f = api::filter(
                a.str_opt("type", 64)?.as_deref(),
                &a.strings("tags")?,
                "type",
            )?;
            let limit = a.u64_opt("limit", 100)?.unwrap_or(10).max(1) as usize;
            let hits = state.with_index(|idx, sem, warn| {
                state.with_journal(|j| api::search(idx, j, sem, &query, &f, limit, warn))
            })?;
            Ok(json!({"hits": hits.iter().map(api::hit_json).collect::<Vec<_>>()}))
        }
        "context" => {
            let task = a.str_req("task", MAX_SHORT)?;
            let f = api::filter(
                a.str_opt("type", 64)?.as_deref(),
                &a.strings("tags")?,
                "type",
            )?;
            let req = ContextRequest {
                task,
                filter: f,
                budget: a
                    .u64_opt("budget", 1_000_000)?
                    .map(|b| u32::try_from(b).unwrap_or(u32::MAX)),
                window: a.u64_opt("window", 10_000_000)?,
                used: a.u64_opt("used", 10_000_000)?.unwrap_or(0),
                source: session.clone(),
            };
            let explain = a.bool_opt("explain")?.unwrap_or(false);
            let pk = state.with_index(|idx, sem, warn| {
                state.with_journal(|j| api::context(idx, j, sem, p, &req, warn))
            })?;
            Ok(api::packet_json(&pk, explain)?)
        }
        "get" => {
            let id = a.str_req("id", 256)?;
            // From the index (the entry as it was last indexed, which is
            // current: the index caught up first), else from the files.
            let k = state.knowledge()?;
            let indexed = state
                .with_index(|idx, _, _| {
                    idx.entries_by_id(&[id.as_str()]).map_err(ApiError::failed)
                })?
                .remove(&id);
            let e = match indexed {
                Some(e) => e,
                None => k.find(&id).map_err(ApiError::from)?,
            };
            // The `used` signal is recorded after the answer (server.rs).
            serde_json::to_value(k.for_display(e)).map_err(failed)
        }
        "learn" => {
            let kind = a.str_opt("type", 64)?.unwrap_or_else(|| "learning".into());
            let kind = EntryType::parse(&kind).map_err(|e| ToolError {
                message: format!("learn: argument `type`: {e}"),
                field: Some("type".into()),
            })?;
            let new = NewEntry {
                kind: Some(kind),
                title: a.str_req("title", 512)?,
                body: a.str_req("body", MAX_BODY)?,
                tags: a.strings("tags")?,
                supersedes: a.strings("supersedes")?,
                source: session.clone(),
            };
            let o = state.write(|| api::learn(p, new))?;
            serde_json::to_value(&o).map_err(failed)
        }
        "feedback" => {
            let id = a.str_req("id", 256)?;
            let signal = a.str_req("signal", 32)?;
            let o = state.write(|| api::feedback(p, &id, &signal, session))?;
            serde_json::to_value(&o).map_err(failed)
        }
        "handoff_latest" => {
            let any = a.bool_opt("any")?.unwrap_or(false);
            let branch = if any {
                None
            } else {
                a.str_opt("branch", 256)?
                    .or_else(|| agentops_harness::paths::current_branch(&p.layout))
            };
            match agentops_harness::handoff::latest(&p.layout, branch.as_deref()) {
                Some(e) => serde_json::to_value(p.knowledge()?.for_display(e)).map_err(failed),
                None => Err(failed(format!(
                    "no handoff yet{}: sessions write one at PreCompact and SessionEnd, or call handoff_write",
                    branch
                        .map(|b| format!(" for branch `{b}` (pass any: true)"))
                        .unwrap_or_default()
                ))),
            }
        }
        "handoff_write" => {
            let done = a.str_req("done", MAX_BODY)?;
            let next = a.str_opt("next", MAX_BODY)?;
            let title = a.str_opt("title", 512)?;
            let branch = agentops_harness::paths::current_branch(&p.layout);
            let o = state.write(|| {
                api::handoff(p, title.as_deref(), &done, next.as_deref(), branch, session)
            })?;
            serde_json::to_value(&o).map_err(failed)
        }
        "gate_run" => {
            let names = a.strings("names")?;
            let all = a.bool_opt("all")?.unwrap_or(false);
            let base = a.str_opt("base", 256)?;
            let strict = a.bool_opt("strict")?.unwrap_or(false);
            if names.is_empty() && !all {
                return Err(ToolError {
                    message: "gate_run: argument `names`: name the gates to run, or pass all: true"
                        .into(),
                    field: Some("names".into()),
                });
            }
            let r = gates::run(p, &names, all, base.as_deref(), strict, session)?;
            Ok(r.to_json())
        }
        "gate_check" => {
            let command = a.str_opt("command", MAX_SHORT)?;
            let path = a.str_opt("path", 4096)?;
            let d = match (command, path) {
                (Some(c), None) => gates::check_command(p, &c)?,
                (None, Some(w)) => gates::check_write(p, &w)?,
                _ => {
                    return Err(ToolError {
                        message:
                            "gate_check: give exactly one of the arguments `command` and `path`"
                                .into(),
                        field: Some("command".into()),
                    });
                }
            };
            serde_json::to_value(&d).map_err(failed)
        }
        "runs" => {
            let limit = a.u64_opt("limit", 1000)?.unwrap_or(20) as usize;
            let j = p.journal_read()?;
            let rows = agentops_runner::list_runs(&j, &p.layout.state_dir(), limit)
                .map_err(runs::run_error)?;
            Ok(json!({"runs": rows}))
        }
        "run_show" => {
            let run = a.str_req("run", 256)?;
            let j = p.journal_read()?;
            let id = agentops_runner::run::find_run(&j, &run).map_err(runs::run_error)?;
            Ok(runs::detail_json(&p.layout, &j, &id)?)
        }
        "trace" => {
            let id = a.str_req("id", 256)?;
            let j = p.journal_read()?;
            let run = runs::resolve(&j, &id)?;
            let spans = agentops_telemetry::span::read(&j, &run).map_err(failed)?;
            serde_json::to_value(agentops_telemetry::view::trace_json(run.as_str(), &spans))
                .map_err(failed)
        }
        "sessions" => {
            let since = a
                .str_opt("since", 64)?
                .map(|s| parse_since(&s, "sessions"))
                .transpose()?;
            let limit = a.u64_opt("limit", 1000)?.unwrap_or(20) as usize;
            let j = p.journal_read()?;
            let mut all = agentops_harness::sessions::list(&j, since).map_err(failed)?;
            all.truncate(limit);
            Ok(json!({"sessions": all}))
        }
        "stats" => {
            use agentops_telemetry::view;
            let by_s = a.str_opt("by", 32)?.unwrap_or_else(|| "day".into());
            let by = view::By::parse(&by_s).ok_or_else(|| ToolError {
                message: format!(
                    "stats: argument `by`: `{by_s}` is not one of day, model, agent, workflow, harness"
                ),
                field: Some("by".into()),
            })?;
            let since = a.str_opt("since", 64)?.unwrap_or_else(|| "7d".into());
            let from = parse_since(&since, "stats")?;
            let j = p.journal_read()?;
            let rows = j
                .store()
                .rollup(agentops_store::rollup::day_of(from))
                .map_err(failed)?;
            Ok(json!({"by": by.as_str(), "since": since, "groups": view::group(&rows, by)}))
        }
        "status" => {
            let mut config = p.config.clone();
            if let Some(w) = a.str_opt("window", 32)? {
                if agentops_core::time::parse_age(&w).is_none_or(|x| x <= 0) {
                    return Err(ToolError {
                        message: format!(
                            "status: argument `window`: `{w}` is not an age (24h, 7d, 30m)"
                        ),
                        field: Some("window".into()),
                    });
                }
                config.alerts.window = w;
            }
            let j = p.journal_read()?;
            let s = agentops_telemetry::alerts::status(
                &j,
                &config.alerts,
                agentops_core::time::now_micros(),
            )
            .map_err(failed)?;
            serde_json::to_value(&s).map_err(failed)
        }
        other => Err(failed(format!("no tool `{other}`"))),
    }
}

fn parse_since(s: &str, tool: &str) -> Result<i64, ToolError> {
    if let Some(age) = agentops_core::time::parse_age(s) {
        return Ok(agentops_core::time::now_micros() - age);
    }
    agentops_core::time::parse_rfc3339(s).ok_or_else(|| ToolError {
        message: format!(
            "{tool}: argument `since`: `{s}`: use a date (2026-11-01) or an age (7d, 12h, 2w)"
        ),
        field: Some("since".into()),
    })
}
