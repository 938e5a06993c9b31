//! Stop and SubagentStop: the stop gates, blocking up to a cap, then escalating.

use agentops_core::{EventKind, NewEvent};
use agentops_gates::{Gate, Verdict};
use agentops_protocol::event::{self as body, HookVerdict, new_event};
use agentops_store::{Journal, Query};

use super::*;

pub(super) fn stop(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    if ctx.stop_gates.is_empty() {
        settle_feedback(ctx, journal, false);
        return Ok(Reply::Silent);
    }
    let prior = journal.read(&Query {
        run_id: Some(ctx.session.clone()),
        kinds: vec![EventKind::HookDecision],
        ..Query::default()
    })?;
    let decision_of = |e: &agentops_core::Event| {
        body::decode::<body::HookDecision>(e)
            .ok()
            .map(|d| d.decision)
    };
    let blocks = prior
        .iter()
        .filter(|e| decision_of(e) == Some(HookVerdict::Block))
        .count() as u64;
    let escalated = prior
        .iter()
        .any(|e| decision_of(e) == Some(HookVerdict::Escalate));
    let active = matches!(
        ctx.input.data,
        EventInput::Stop {
            stop_hook_active: true,
            ..
        }
    );
    let selected: Vec<&Gate> = ctx.stop_gates.iter().collect();
    let results = agentops_gates::run_gates(
        &selected,
        &ctx.layout.work_tree,
        None,
        Some(journal),
        &ctx.session,
    )?;
    let failing: Vec<_> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail && !r.pending)
        .collect();
    // A main session's gates passing make what it used helpful.
    let main = matches!(
        ctx.input.data,
        EventInput::Stop {
            subagent: false,
            ..
        }
    );
    settle_feedback(ctx, journal, failing.is_empty() && main);
    if failing.is_empty() {
        return Ok(Reply::Silent);
    }
    let names: Vec<&str> = failing.iter().map(|r| r.name.as_str()).collect();
    let cap = ctx.config.hooks.max_stop_blocks;
    if blocks < cap {
        let tokenizer = agentops_context::tokens::TokenizerKind::of(ctx.config.context.tokenizer);
        let count = |s: &str| tokenizer.count(s) as usize;
        let feedback = agentops_gates::feedback_message(&results, 1_000, &count);
        events.push(new_event(
            ctx.session.clone(),
            body::HookDecision {
                gates: names.iter().map(|n| (*n).to_owned()).collect(),
                attempt: Some(blocks + 1),
                cap: Some(cap),
                stop_hook_active: Some(active),
                ..decision(ctx, HookVerdict::Block)
            },
        ));
        let reason = format!(
            "{feedback}\nagentops stop gate (block {} of {cap}): fix this before finishing. After {cap} blocks the session may stop and a person is asked to look.",
            blocks + 1
        );
        return Ok(Reply::Json(HookOutput::block(reason).to_value()));
    }
    if !escalated {
        events.push(new_event(
            ctx.session.clone(),
            body::HookDecision {
                gates: names.iter().map(|n| (*n).to_owned()).collect(),
                blocks: Some(blocks),
                cap: Some(cap),
                stop_hook_active: Some(active),
                ..decision(ctx, HookVerdict::Escalate)
            },
        ));
    }
    Ok(Reply::Json(
        HookOutput::message(format!(
            "agentops: stop gates still failing after {blocks} blocks ({}); letting the agent stop. A person should look: `agentops sessions`, `agentops gate run {}`.",
            names.join(", "),
            names.join(" ")
        ))
        .to_value(),
    ))
}
