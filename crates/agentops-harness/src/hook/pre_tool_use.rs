//! PreToolUse: the policy verdict (made before the journal opens) and its denial.

use std::path::Path;

use agentops_core::NewEvent;
use agentops_core::config::FailMode;
use agentops_gates::policy::{CommandPolicy, PolicyDecision};
use agentops_protocol::event::{self as body, HookVerdict, new_event};
use serde_json::Value;

use super::*;

/// A PreToolUse's verdict: what the policy decided, and for which tool.
#[derive(Debug, Clone)]
pub(super) struct ToolVerdict {
    tool: String,
    decision: PolicyDecision,
}

impl ToolVerdict {
    /// The hook's answer: a denial, or nothing.
    pub(super) fn reply(&self) -> Option<Value> {
        match &self.decision {
            PolicyDecision::Allow => None,
            PolicyDecision::Deny { reason, .. } => Some(deny(reason)),
        }
    }
}

/// The policy's verdict on a PreToolUse. Needs neither the journal nor a
/// readable configuration: with `config_error`, the built-in rules and the
/// project boundary still apply, and `policy.fail = "closed"` denies what
/// they allow (the project's own rules could not be checked).
pub(super) fn pre_tool_verdict(ctx: &Ctx, config_error: Option<&str>) -> ToolVerdict {
    let (tool, kind, input) = match ctx.input.tool() {
        Some(t) => (t.name.clone(), t.kind, t.input.clone()),
        None => (String::new(), ToolKind::Other, Value::Null),
    };
    let mut unchecked = config_error.map(|e| format!("the configuration cannot be read: {e}"));
    let mut decision = PolicyDecision::Allow;
    if kind == ToolKind::Shell {
        if let Some(cmd) = tool_command(&input) {
            let policy = match CommandPolicy::from_config(&ctx.config.policy) {
                Ok(p) => p,
                Err(e) => {
                    unchecked.get_or_insert(e.to_string());
                    CommandPolicy::defaults()
                }
            };
            decision = policy.check(&cmd);
        }
    } else {
        let paths = written_paths(kind, &input);
        if !paths.is_empty() {
            let scope = match agentops_gates::policy::write_scope(&ctx.config.policy.write_scope) {
                Ok(s) => s,
                Err(e) => {
                    unchecked.get_or_insert(e);
                    Default::default()
                }
            };
            for p in paths {
                let d = agentops_gates::policy::check_write(
                    Path::new(&p),
                    &ctx.cwd,
                    &ctx.layout.work_tree,
                    &scope,
                );
                if d.is_deny() {
                    decision = d;
                    break;
                }
            }
        }
    }
    if let (PolicyDecision::Allow, Some(why)) = (&decision, unchecked)
        && ctx.config.policy.fail == FailMode::Closed
        && (kind == ToolKind::Shell || !written_paths(kind, &input).is_empty())
    {
        decision = PolicyDecision::Deny {
            rule: "fail-closed".into(),
            reason: format!(
                "agentops could not check this tool call ({why}) and the project's policy.fail = \"closed\" denies what it cannot check. Ask the user to fix the configuration (`agentops doctor`)."
            ),
        };
    }
    ToolVerdict { tool, decision }
}

/// Journals a PreToolUse's denial and answers it.
pub(super) fn pre_tool(
    ctx: &Ctx,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, crate::error::HarnessError> {
    let Some(v) = &ctx.verdict else {
        return Ok(Reply::Silent);
    };
    match &v.decision {
        PolicyDecision::Allow => Ok(Reply::Silent),
        PolicyDecision::Deny { rule, reason } => {
            events.push(new_event(
                ctx.session.clone(),
                body::HookDecision {
                    rule: Some(rule.clone()),
                    tool: Some(v.tool.clone()),
                    reason: Some(reason.clone()),
                    ..decision(ctx, HookVerdict::Deny)
                },
            ));
            Ok(Reply::Json(deny(reason)))
        }
    }
}
