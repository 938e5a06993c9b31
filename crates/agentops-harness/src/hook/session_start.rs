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
    // Harnesses that start a session with its first prompt pass it.
    let prompt = ctx.event.get("prompt").and_then(Value::as_str);
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
