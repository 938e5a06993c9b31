//! Resources (every entry, the latest handoff, runs) and prompts
//! (continue, record-learning, review-run).

use agentops_api::knowledge::{self as api, ContextRequest};
use agentops_api::runs;
use agentops_knowledge::{Filter, Provenance};
use rmcp::ErrorData as McpError;
use serde_json::{Map, Value, json};

use crate::state::State;

pub const ENTRY: &str = "agentops://entry/";
pub const RUN: &str = "agentops://run/";
pub const HANDOFF_LATEST: &str = "agentops://handoff/latest";
/// Resources per `resources/list` page.
pub const PAGE: usize = 200;

fn internal(e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(e.to_string(), None)
}

pub fn templates() -> Vec<Value> {
    vec![
        json!({
            "uriTemplate": format!("{ENTRY}{{id}}"),
            "name": "entry",
            "title": "Knowledge entry",
            "description": "One entry of .agents/ as Markdown with its front matter (ids from search, packets or resources/list).",
            "mimeType": "text/markdown",
        }),
        json!({
            "uriTemplate": format!("{RUN}{{id}}"),
            "name": "run",
            "title": "Run summary",
            "description": "One workflow run's state as JSON: status, goal, spend, phases and gates (as `agentops show --json`).",
            "mimeType": "application/json",
        }),
    ]
}

/// One page of `resources/list`: the latest handoff first, then every
/// entry by id. The cursor is the offset of the page.
pub fn list(state: &State, cursor: Option<&str>) -> Result<Value, McpError> {
    let offset = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            McpError::invalid_params(
                format!(
                    "resources/list: cursor `{}` is not one this server gave",
                    clip(c)
                ),
                Some(json!({"field": "cursor"})),
            )
        })?,
    };
    let p = state.project();
    let k = p.knowledge().map_err(internal)?;
    let mut entries = k.list(&Filter::default()).map_err(internal)?.entries;
    entries.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut all: Vec<Value> = Vec::with_capacity(entries.len() + 1);
    if entries
        .iter()
        .any(|e| e.kind == agentops_knowledge::EntryType::Handoff)
    {
        all.push(json!({
            "uri": HANDOFF_LATEST, "name": "handoff-latest", "title": "Latest handoff",
            "description": "The newest handoff for the current branch (any branch when it has none).",
            "mimeType": "text/markdown",
        }));
    }
    for e in entries {
        let e = k.for_display(e);
        all.push(json!({
            "uri": format!("{ENTRY}{}", e.id),
            "name": e.id.as_str(),
            "title": e.title,
            "description": format!("{} ({})", e.kind, e.maturity),
            "mimeType": "text/markdown",
        }));
    }
    let end = (offset + PAGE).min(all.len());
    let page: Vec<Value> = all
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut out = json!({"resources": page});
    if end < all.len() {
        out["nextCursor"] = Value::String(end.to_string());
    }
    Ok(out)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn not_found(uri: &str, why: String) -> McpError {
    McpError::resource_not_found(why, Some(json!({"uri": clip(uri)})))
}

/// A resource's text and MIME type.
pub fn read(state: &State, uri: &str) -> Result<(String, &'static str), McpError> {
    let p = state.project();
    if let Some(id) = uri.strip_prefix(ENTRY) {
        let k = state.knowledge().map_err(internal)?;
        let e = k
            .find(id)
            .map_err(|e| not_found(uri, format!("{}: {e}", clip(uri))))?;
        let text = agentops_knowledge::entry::render(&k.for_display(e)).map_err(internal)?;
        return Ok((text, "text/markdown"));
    }
    if uri == HANDOFF_LATEST {
        let branch = agentops_harness::paths::current_branch(&p.layout);
        let e = agentops_harness::handoff::latest(&p.layout, branch.as_deref())
            .or_else(|| agentops_harness::handoff::latest(&p.layout, None))
            .ok_or_else(|| not_found(uri, "no handoff yet".into()))?;
        let k = p.knowledge().map_err(internal)?;
        let text = agentops_knowledge::entry::render(&k.for_display(e)).map_err(internal)?;
        return Ok((text, "text/markdown"));
    }
    if let Some(id) = uri.strip_prefix(RUN) {
        let j = p.journal_read().map_err(internal)?;
        let run = agentops_runner::run::find_run(&j, id)
            .map_err(|e| not_found(uri, format!("{}: {e}", clip(uri))))?;
        let v = runs::detail_json(&p.layout, &j, &run).map_err(internal)?;
        return Ok((
            serde_json::to_string_pretty(&v).unwrap_or_default(),
            "application/json",
        ));
    }
    Err(not_found(
        uri,
        format!(
            "no resource `{}` (agentops serves {ENTRY}{{id}}, {RUN}{{id}} and {HANDOFF_LATEST})",
            clip(uri)
        ),
    ))
}

pub fn prompts() -> Vec<Value> {
    vec![
        json!({
            "name": "continue",
            "title": "Continue from the last handoff",
            "description": "The latest handoff for this branch and a context packet for what it says is next.",
            "arguments": [{"name": "branch", "description": "The branch (default: the current one).", "required": false}],
        }),
        json!({
            "name": "record-learning",
            "title": "Record a learning",
            "description": "The Context / Solution / Learning / Impact template, to fill in and save with the `learn` tool.",
            "arguments": [{"name": "topic", "description": "What the learning is about.", "required": false}],
        }),
        json!({
            "name": "review-run",
            "title": "Review a run",
            "description": "A run's state, trace and gate evidence, to review before landing it.",
            "arguments": [{"name": "run", "description": "A run id or a unique prefix.", "required": true}],
        }),
    ]
}

fn user(text: String) -> Value {
    json!({"role": "user", "content": {"type": "text", "text": text}})
}

fn arg<'a>(args: Option<&'a Map<String, Value>>, name: &str) -> Result<Option<&'a str>, McpError> {
    match args.and_then(|a| a.get(name)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.trim().is_empty())),
        Some(_) => Err(McpError::invalid_params(
            format!("prompt argument `{name}`: expected a string"),
            Some(json!({"field": name})),
        )),
    }
}

/// `prompts/get`.
pub fn prompt(
    state: &State,
    session: &Provenance,
    name: &str,
    args: Option<&Map<String, Value>>,
) -> Result<Value, McpError> {
    let p = state.project();
    match name {
        "continue" => {
            let branch = arg(args, "branch")?
                .map(str::to_owned)
                .or_else(|| agentops_harness::paths::current_branch(&p.layout));
            let handoff = agentops_harness::handoff::latest(&p.layout, branch.as_deref());
            let mut text = String::new();
            let task = match &handoff {
                Some(h) => {
                    let h = p.knowledge().map_err(internal)?.for_display(h.clone());
                    text.push_str(&format!(
                        "Continue the work described in the latest handoff ({}).\n\n# {}\n\n{}\n",
                        h.id,
                        h.title,
                        h.body.trim_end()
                    ));
                    // What is next is the task the packet is for.
                    let next = h
                        .body
                        .split("## Next")
                        .nth(1)
                        .map(|n| n.split("\n## ").next().unwrap_or(n).trim().to_owned())
                        .filter(|n| !n.is_empty());
                    next.unwrap_or(h.title)
                }
                None => {
                    text.push_str(&format!(
                        "There is no handoff yet{}. Ask what to work on, and use the `context` tool for it.\n",
                        branch
                            .as_deref()
                            .map(|b| format!(" for branch `{b}`"))
                            .unwrap_or_default()
                    ));
                    String::new()
                }
            };
            if !task.is_empty() {
                let req = ContextRequest {
                    task: task.chars().take(2000).collect(),
                    source: session.clone(),
                    ..ContextRequest::default()
                };
                let pk = state
                    .with_index(|idx, sem, warn| {
                        let j = p.journal()?;
                        api::context(idx, &j, sem, p, &req, warn)
                    })
                    .map_err(internal)?;
                if !pk.text.trim().is_empty() {
                    text.push_str("\n---\n\nWhat this repository knows that bears on it:\n\n");
                    text.push_str(&pk.text);
                }
            }
            Ok(json!({"description": "Continue from the last handoff", "messages": [user(text)]}))
        }
        "record-learning" => {
            let topic = arg(args, "topic")?;
            let text = format!(
                "Record what was learned{} with the agentops `learn` tool. Give it a one-line title and this body, each section a few sentences:\n\n\
                 ## Context\nWhat was going on: the task, the symptom, what was tried.\n\n\
                 ## Solution\nWhat fixed it or what was decided, concretely (commands, files, settings).\n\n\
                 ## Learning\nThe general lesson another agent should apply next time.\n\n\
                 ## Impact\nWhat it changes: time saved, errors avoided, where it applies.\n\n\
                 Add 2–4 lower-case tags. Leave secrets out (they would be redacted anyway).",
                topic.map(|t| format!(" about {t}")).unwrap_or_default()
            );
            Ok(json!({"description": "The learning template", "messages": [user(text)]}))
        }
        "review-run" => {
            let run = arg(args, "run")?.ok_or_else(|| {
                McpError::invalid_params(
                    "prompt review-run: argument `run` is required",
                    Some(json!({"field": "run"})),
                )
            })?;
            let j = p.journal_read().map_err(internal)?;
            let id = agentops_runner::run::find_run(&j, run).map_err(|e| {
                McpError::invalid_params(
                    format!("prompt review-run: argument `run`: {e}"),
                    Some(json!({"field": "run"})),
                )
            })?;
            let detail = runs::detail_json(&p.layout, &j, &id).map_err(internal)?;
            let spans = agentops_telemetry::span::read(&j, &id).map_err(internal)?;
            let trace = agentops_telemetry::view::render_trace(&spans, 100);
            let text = format!(
                "Review run {id} before it is landed: did each phase do what the goal asked, are the gate verdicts and their evidence convincing, was the spend reasonable? \
                 Say what to fix, or that it can land (`agentops land {id}`).\n\n## Run\n\n```json\n{}\n```\n\n## Trace\n\n```\n{}```\n",
                serde_json::to_string_pretty(&detail).unwrap_or_default(),
                trace
            );
            Ok(json!({"description": format!("Review of run {id}"), "messages": [user(text)]}))
        }
        other => Err(McpError::invalid_params(
            format!(
                "no prompt `{}` (prompts: continue, record-learning, review-run)",
                clip(other)
            ),
            Some(json!({"field": "name"})),
        )),
    }
}
