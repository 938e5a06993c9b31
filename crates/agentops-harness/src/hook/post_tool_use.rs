//! PostToolUse and PostToolUseFailure: the tool call as a span, with the files it wrote.

use agentops_core::{NewEvent, SpanId};
use agentops_protocol::event::{self as body, new_event};

use crate::clip;

use super::*;

pub(super) fn post_tool(ctx: &Ctx, events: &mut Vec<NewEvent>) {
    let e = &ctx.input;
    let tool = e.tool_name.as_deref().unwrap_or("?");
    let input = &e.tool_input;
    let failed = ctx.name == "PostToolUseFailure" || e.tool_failed;
    let span = e
        .tool_use_id
        .as_deref()
        .and_then(|s| SpanId::parse(s).ok())
        .unwrap_or_else(SpanId::generate);
    let mut files = written_paths(tool, input);
    for f in &mut files {
        *f = relative_to(&ctx.layout.work_tree, &ctx.cwd, f);
    }
    let mut call = body::ToolCall {
        source: Some("hook".into()),
        harness: Some(ctx.harness),
        name: tool.to_owned(),
        is_error: failed,
        duration_ms: e.duration_ms,
        command: if is_shell(tool) {
            tool_command(input).map(|c| clip(&c, 500))
        } else {
            None
        },
        files,
        ..body::ToolCall::default()
    };
    if failed {
        call.error = Some(clip(e.error.as_deref().unwrap_or("failed"), 2_000));
        call.interrupted = Some(e.is_interrupt);
    }
    events.push(new_event(ctx.session.clone(), call).in_span(span, None));
}
