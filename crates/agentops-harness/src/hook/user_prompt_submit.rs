//! UserPromptSubmit: the context guard.

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
    let Some(path) = ctx.input.transcript_path.as_deref() else {
        return Ok(Reply::Silent);
    };
    let Ok(report) = agentops_context::guard::guard(Path::new(path), None, &ctx.config.context)
    else {
        // No transcript yet (first prompt) or unreadable: nothing to say.
        return Ok(Reply::Silent);
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
        Band::Green | Band::Amber => Ok(Reply::Silent),
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
