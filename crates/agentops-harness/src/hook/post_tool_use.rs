//! PostToolUse and PostToolUseFailure: the tool call as a span, with the files it wrote.

use agentops_core::{NewEvent, SpanId};
use agentops_protocol::event::{self as body, new_event};
use serde_json::Value;

use crate::clip;

use super::*;

pub(super) fn post_tool(ctx: &Ctx, events: &mut Vec<NewEvent>) {
    let e = &ctx.event;
    let tool = e.get("tool_name").and_then(Value::as_str).unwrap_or("?");
    let input = e.get("tool_input").cloned().unwrap_or(Value::Null);
    let failed = ctx.name == "PostToolUseFailure"
        || e.pointer("/tool_response/success").and_then(Value::as_bool) == Some(false);
    let span = e
        .get("tool_use_id")
        .and_then(Value::as_str)
        .and_then(|s| SpanId::parse(s).ok())
        .unwrap_or_else(SpanId::generate);
    let mut files = written_paths(tool, &input);
    for f in &mut files {
        *f = relative_to(&ctx.layout.work_tree, &ctx.cwd, f);
    }
    let mut call = body::ToolCall {
        source: Some("hook".into()),
        harness: Some(ctx.harness),
        name: tool.to_owned(),
        is_error: failed,
        duration_ms: e.get("duration_ms").and_then(Value::as_f64),
        command: if is_shell(tool) {
            tool_command(&input).map(|c| clip(&c, 500))
        } else {
            None
        },
        files,
        ..body::ToolCall::default()
    };
    if failed {
        let err = e
            .get("error")
            .and_then(Value::as_str)
            .or_else(|| e.pointer("/tool_response/error").and_then(Value::as_str))
            .unwrap_or("failed");
        call.error = Some(clip(err, 2_000));
        call.interrupted = Some(
            e.get("is_interrupt")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
    }
    events.push(new_event(ctx.session.clone(), call).in_span(span, None));
}
