//! UserPromptSubmit: the context guard, and just-in-time knowledge: the
//! entries relevant to what the user asked, not injected before in this
//! session, within `hooks.prompt_budget` and the 40% rule.

use std::path::Path;

use agentops_context::guard::Band;
use agentops_core::{EventKind, NewEvent};
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Durability, Journal, Query};

use super::*;

pub(super) fn prompt_submit(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    let report =
        ctx.input.transcript_path.as_deref().and_then(|p| {
            agentops_context::guard::guard(Path::new(p), None, &ctx.config.context).ok()
        });
    let Some(report) = report else {
        // No transcript yet (the first prompt) or unreadable: no guard, but
        // the prompt still brings its knowledge in.
        return prompt_knowledge(ctx, journal, events, 0, ctx.config.context.window);
    };
    events.push(new_event(
        ctx.session.clone(),
        body::ContextGuard {
            harness: ctx.harness,
            used: report.used,
            window: report.window,
            percent: report.percent,
            band: report.band.as_str().to_owned(),
            model: report.model.clone(),
        },
    ));
    let pct = report.percent;
    match report.band {
        Band::Green | Band::Amber => {
            prompt_knowledge(ctx, journal, events, report.used, report.window)
        }
        Band::Red => Ok(Reply::Json(context_reply(
            &HookEvent::UserPromptSubmit,
            &format!(
                "agentops context guard: the context window is {pct:.0}% full (red: over 40%). Wrap up: finish the current step, commit or record what you learned (agentops learn), and avoid reading large files. A handoff will carry the state to a fresh session."
            ),
        ))),
        Band::Critical => {
            let already = journal
                .read(&Query {
                    run_id: Some(ctx.session.clone()),
                    kinds: vec![EventKind::HandoffWritten],
                    ..Query::default()
                })?
                .iter()
                .any(|e| {
                    body::decode::<body::HandoffWritten>(e)
                        .is_ok_and(|h| h.trigger == "context-critical")
                });
            let mut note = String::new();
            if !already && ctx.config.hooks.handoffs {
                // The handoff reads this session from the journal: write what we have.
                journal.append_batch(std::mem::take(events), Durability::Configured)?;
                let mut more = Vec::new();
                write_handoff(ctx, journal, "context-critical", &mut more)?;
                events.extend(more);
                note =
                    " A handoff for the next session has been written to .agents/handoffs/.".into();
            }
            Ok(Reply::Json(context_reply(
                &HookEvent::UserPromptSubmit,
                &format!(
                    "agentops context guard: the context window is {pct:.0}% full (critical: over 60%). Stop starting new work: finish or revert the current edit, run the tests, and tell the user to continue in a fresh session (/clear or a new session picks up the handoff).{note}"
                ),
            )))
        }
    }
}

/// The prompt's knowledge (see [`just_in_time`]).
fn prompt_knowledge(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
    used: u64,
    window: u64,
) -> Result<Reply, crate::error::HarnessError> {
    let EventInput::UserPromptSubmit {
        prompt: Some(prompt),
    } = &ctx.input.data
    else {
        return Ok(Reply::Silent);
    };
    just_in_time(ctx, journal, events, prompt, used, window)
}

/// Knowledge for a task (a prompt, a subagent's task): entries the search
/// ranks and the task's words cover, not already given to this session,
/// within the prompt budget. The index is searched as it is (never built on
/// this path).
pub(super) fn just_in_time(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
    prompt: &str,
    used: u64,
    window: u64,
) -> Result<Reply, crate::error::HarnessError> {
    use agentops_context::packet::{self, PacketRequest};
    use agentops_context::relevance::{content_words, coverage};
    use agentops_context::{KnowledgeIndex, SearchFilter};
    let budget = packet::default_budget(ctx.config.hooks.prompt_budget, window, used);
    let words = content_words(prompt);
    if budget < 100 || words.is_empty() || !agentops_context::catchup::exists(&ctx.layout) {
        return Ok(Reply::Silent);
    }
    let given: std::collections::BTreeSet<String> = journal
        .read(&Query {
            run_id: Some(ctx.session.clone()),
            kinds: vec![EventKind::ContextAssembled],
            ..Query::default()
        })?
        .iter()
        .filter_map(|e| body::decode::<body::ContextAssembled>(e).ok())
        .flat_map(|c| c.cited)
        .collect();
    // On the prompt's clock: no waiting on another writer, no tokenizer.
    let (idx, _) = KnowledgeIndex::open_waiting(
        &ctx.layout,
        &ctx.config,
        false,
        false,
        std::time::Duration::ZERO,
    )?;
    let utility = |ids: &[&str]| journal.utility_scores(ids);
    let min = ctx.config.hooks.prompt_min_match;
    let hits: Vec<_> = idx
        .search(prompt, &SearchFilter::default(), 20, &utility)?
        .into_iter()
        .filter(|h| h.entry.kind != agentops_knowledge::entry::EntryType::Handoff)
        .filter(|h| !given.contains(h.entry.id.as_str()))
        .filter(|h| coverage(&words, &h.entry).relevant(min))
        .collect();
    if hits.is_empty() {
        return Ok(Reply::Silent);
    }
    let p = packet::assemble(
        &hits,
        idx.fixed_tokens(),
        &PacketRequest {
            budget,
            full_entries: usize::try_from(ctx.config.context.full_entries).unwrap_or(5),
        },
    );
    if p.cited.is_empty() {
        return Ok(Reply::Silent);
    }
    let text = format!(
        "agentops: knowledge for this request (expand with `agentops knowledge show <id>`)\n\n{}\n",
        p.text.trim()
    );
    events.push(new_event(
        ctx.session.clone(),
        body::ContextAssembled {
            harness: Some(ctx.harness),
            event: Some(ctx.input.event.to_string()),
            task: crate::clip(prompt, 400),
            budget: u64::from(budget),
            tokens: u64::from(p.tokens),
            cited: p.cited.clone(),
            chars: Some(text.len()),
            ..body::ContextAssembled::default()
        },
    ));
    note_retrieved(ctx, journal, &p.cited);
    Ok(Reply::Json(context_reply(&ctx.input.event, &text)))
}
