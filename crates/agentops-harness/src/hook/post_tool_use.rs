//! PostToolUse and PostToolUseFailure: the tool call as a span, with the files it wrote.

use agentops_core::{NewEvent, SpanId};
use agentops_protocol::event::{self as body, new_event};

use crate::clip;

use super::*;

pub(super) fn post_tool(ctx: &Ctx, events: &mut Vec<NewEvent>) {
    let EventInput::PostToolUse {
        tool: t,
        failed,
        error,
        is_interrupt,
        duration_ms,
    } = &ctx.input.data
    else {
        return;
    };
    let (tool, input, failed) = (
        if t.name.is_empty() { "?" } else { &t.name },
        &t.input,
        *failed,
    );
    let span =
        t.id.as_deref()
            .and_then(|s| SpanId::parse(s).ok())
            .unwrap_or_else(SpanId::generate);
    let mut files = written_paths(t.kind, input);
    for f in &mut files {
        *f = relative_to(&ctx.layout.work_tree, &ctx.cwd, f);
    }
    let mut call = body::ToolCall {
        source: Some("hook".into()),
        harness: Some(ctx.harness),
        name: tool.to_owned(),
        is_error: failed,
        duration_ms: *duration_ms,
        command: if t.kind == ToolKind::Shell {
            tool_command(input).map(|c| clip(&c, 500))
        } else {
            None
        },
        files,
        ..body::ToolCall::default()
    };
    if failed {
        call.error = Some(clip(error.as_deref().unwrap_or("failed"), 2_000));
        call.interrupted = Some(*is_interrupt);
    }
    events.push(new_event(ctx.session.clone(), call).in_span(span, None));
}
