//! SessionStart: the briefing packet.

use agentops_core::NewEvent;
use agentops_protocol::event::{self as body, new_event};
use agentops_store::Journal;
use serde_json::Value;

use super::*;

pub(super) fn session_start(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    let branch = current_branch(&ctx.layout);
    let source = ctx
        .event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("startup");
    let model = match &ctx.input.data {
        EventInput::SessionStart { model, .. } => model.as_deref(),
        _ => None,
    };
    // Harnesses that start a session with its first prompt pass it; after a
    // compaction, what the compaction kept is the task.
    let summary = (source == "compact")
        .then(|| compact_summary(journal, &ctx.session))
        .flatten();
    let prompt = ctx
        .event
        .get("prompt")
        .and_then(Value::as_str)
        .or(summary.as_deref());
    let injected = crate::handoff::session_context(
        &ctx.layout,
        &ctx.config,
        journal,
        branch.as_deref(),
        model,
        prompt,
    )?;
    events.push(new_event(
        ctx.session.clone(),
        body::ContextAssembled {
            harness: Some(ctx.harness),
            event: Some(ctx.input.event.to_string()),
            source: Some(source.to_owned()),
            task: injected.query.clone(),
            budget: u64::from(injected.budget),
            tokens: u64::from(injected.tokens),
            cited: injected.cited.clone(),
            handoff: injected.handoff.clone(),
            chars: Some(injected.text.len()),
            index: injected.index_note.clone(),
            ..body::ContextAssembled::default()
        },
    ));
    note_retrieved(ctx, journal, &injected.cited);
    if injected.text.is_empty() {
        return Ok(Reply::Silent);
    }
    Ok(Reply::Json(context_reply(
        &HookEvent::SessionStart,
        &injected.text,
    )))
}

/// SubagentStart: knowledge for the subagent's task — what the event says,
/// else the prompt of the session's latest Task/Agent tool call — the same
/// way a prompt brings it in (relevance threshold, once per session, within
/// the prompt budget).
pub(super) fn subagent_start(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    let EventInput::SubagentStart { task, .. } = &ctx.input.data else {
        return Ok(Reply::Silent);
    };
    let task = match task {
        Some(t) => Some(t.clone()),
        None => latest_task(journal, &ctx.session)?,
    };
    let Some(task) = task.filter(|t| !t.trim().is_empty()) else {
        return Ok(Reply::Silent);
    };
    super::user_prompt_submit::just_in_time(
        ctx,
        journal,
        events,
        &task,
        0,
        ctx.config.context.window,
    )
}

/// The prompt of the session's latest Task/Agent tool call.
fn latest_task(
    journal: &Journal,
    session: &agentops_core::RunId,
) -> Result<Option<String>, crate::error::HarnessError> {
    latest_input(journal, session, &|i| {
        if i["hook_event_name"] != "PreToolUse"
            || !matches!(i["tool_name"].as_str(), Some("Task" | "Agent"))
        {
            return None;
        }
        ["prompt", "description"]
            .iter()
            .find_map(|k| i["tool_input"][*k].as_str())
            .map(str::to_owned)
    })
}

/// What the session's latest compaction summarised (PostCompact's
/// `compact_summary`), for the query after a compaction.
pub(super) fn compact_summary(journal: &Journal, session: &agentops_core::RunId) -> Option<String> {
    latest_input(journal, session, &|i| {
        (i["hook_event_name"] == "PostCompact")
            .then(|| i["compact_summary"].as_str().map(str::to_owned))
            .flatten()
    })
    .ok()
    .flatten()
}

/// The newest hook input of `session` that `pick` takes something from.
fn latest_input(
    journal: &Journal,
    session: &agentops_core::RunId,
    pick: &dyn Fn(&Value) -> Option<String>,
) -> Result<Option<String>, crate::error::HarnessError> {
    let events = journal.read(&agentops_store::Query {
        run_id: Some(session.clone()),
        kinds: vec![agentops_core::EventKind::HookReceived],
        ..agentops_store::Query::default()
    })?;
    Ok(events.iter().rev().find_map(|e| pick(&e.body["input"])))
}
