//! PreCompact and SessionEnd (and a red context guard): the handoff for the next session.

use std::path::Path;

use agentops_core::NewEvent;
use agentops_protocol::event::{self as body, new_event};
use agentops_store::Journal;

use crate::{Harness, handoff};

use super::*;

pub(super) fn write_handoff(
    ctx: &Ctx,
    journal: &Journal,
    trigger: &str,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    if !ctx.config.hooks.handoffs {
        return Ok(Reply::Silent);
    }
    if ctx
        .deadline
        .saturating_duration_since(std::time::Instant::now())
        < WRITE_MARGIN
    {
        // Bounded: a handoff not started is better than one cut half-way.
        log_error(
            Some(&ctx.layout),
            ctx.harness,
            trigger,
            "no handoff written: too little of the hook's time limit was left for a memory write",
        );
        return Ok(Reply::Silent);
    }
    if ctx.harness == Harness::Claude
        && trigger != "context-critical"
        && let Some(t) = ctx.input.transcript_path.as_deref()
    {
        // Best effort: tokens and cost of the session from its transcript.
        let _ = crate::ingest::ingest_transcript_file(
            Path::new(t),
            journal,
            Some(ctx.session.as_str()),
        );
    }
    let written = handoff::write_for_session(
        &ctx.layout,
        &ctx.config,
        journal,
        ctx.harness,
        &ctx.session,
        trigger,
        &ctx.event,
    )?;
    if let Some(w) = written {
        events.push(new_event(
            ctx.session.clone(),
            body::HandoffWritten {
                harness: ctx.harness,
                trigger: trigger.to_owned(),
                id: w.id.clone(),
                path: w.path.clone(),
                branch: w.branch.clone(),
                commit: w.commit.clone(),
                deferred: w.deferred.clone(),
            },
        ));
    }
    Ok(Reply::Silent)
}
