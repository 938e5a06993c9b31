//! What a harness sends a hook on stdin and what the hook answers on stdout.
//! Claude Code and Codex share these shapes (Codex names the session
//! `thread_id` in some events); one reader and one set of answers serve both.

use serde::Serialize;
use serde_json::Value;

/// A hook event's input, read leniently: a field of an unexpected type
/// reads as absent (harnesses add and change fields between releases); the
/// raw JSON is kept for the journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookInput {
    pub session_id: Option<String>,
    /// `hook_event_name` (the CLI argument names the event too).
    pub event: Option<String>,
    pub cwd: Option<String>,
    pub transcript_path: Option<String>,
    /// SessionStart: the model, where the harness says.
    pub model: Option<String>,
    /// SessionStart: `startup`, `resume`, `clear`, `compact`.
    pub source: Option<String>,
    /// UserPromptSubmit: what the user typed.
    pub prompt: Option<String>,
    pub tool_name: Option<String>,
    pub tool_input: Value,
    pub tool_use_id: Option<String>,
    /// PostToolUse: `tool_response.success == false`.
    pub tool_failed: bool,
    /// PostToolUseFailure's `error`, else `tool_response.error`.
    pub error: Option<String>,
    pub is_interrupt: bool,
    pub duration_ms: Option<f64>,
    pub stop_hook_active: bool,
    pub last_assistant_message: Option<String>,
}

impl HookInput {
    /// Reads the fields agentops uses from a parsed event.
    pub fn from_value(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let at = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        HookInput {
            session_id: s("session_id").or_else(|| s("thread_id")),
            event: s("hook_event_name"),
            cwd: s("cwd"),
            transcript_path: s("transcript_path"),
            model: s("model"),
            source: s("source"),
            prompt: s("prompt"),
            tool_name: s("tool_name"),
            tool_input: v.get("tool_input").cloned().unwrap_or(Value::Null),
            tool_use_id: s("tool_use_id"),
            tool_failed: v.pointer("/tool_response/success").and_then(Value::as_bool)
                == Some(false),
            error: s("error").or_else(|| at("/tool_response/error")),
            is_interrupt: v.get("is_interrupt").and_then(Value::as_bool) == Some(true),
            duration_ms: v.get("duration_ms").and_then(Value::as_f64),
            stop_hook_active: v.get("stop_hook_active").and_then(Value::as_bool) == Some(true),
            last_assistant_message: s("last_assistant_message"),
        }
    }
}

/// The event-specific part of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookSpecific {
    pub hook_event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_decision_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_context: Option<String>,
}

/// A hook's answer on stdout.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HookOutput {
    #[serde(rename = "hookSpecificOutput", skip_serializing_if = "Option::is_none")]
    pub specific: Option<HookSpecific>,
    /// `block` (Stop): the agent must go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Shown to the user, not the model.
    #[serde(rename = "systemMessage", skip_serializing_if = "Option::is_none")]
    pub system_message: Option<String>,
}

impl HookOutput {
    /// PreToolUse: deny the tool call, telling the model why.
    pub fn deny(reason: &str) -> Self {
        HookOutput {
            specific: Some(HookSpecific {
                hook_event_name: "PreToolUse".into(),
                permission_decision: Some("deny".into()),
                permission_decision_reason: Some(reason.to_owned()),
                additional_context: None,
            }),
            ..HookOutput::default()
        }
    }

    /// SessionStart or UserPromptSubmit: context for the model.
    pub fn context(event: &str, text: String) -> Self {
        HookOutput {
            specific: Some(HookSpecific {
                hook_event_name: event.to_owned(),
                permission_decision: None,
                permission_decision_reason: None,
                additional_context: Some(text),
            }),
            ..HookOutput::default()
        }
    }

    /// Stop: block it, with the reason the agent reads.
    pub fn block(reason: String) -> Self {
        HookOutput {
            decision: Some("block".into()),
            reason: Some(reason),
            ..HookOutput::default()
        }
    }

    /// A message for the user.
    pub fn message(text: String) -> Self {
        HookOutput {
            system_message: Some(text),
            ..HookOutput::default()
        }
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn answers_have_the_harness_shapes() {
        assert_eq!(
            HookOutput::deny("no").to_value(),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "no"}})
        );
        assert_eq!(
            HookOutput::context("SessionStart", "ctx".into()).to_value(),
            json!({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "ctx"}})
        );
        assert_eq!(
            HookOutput::block("fix".into()).to_value(),
            json!({"decision": "block", "reason": "fix"})
        );
        assert_eq!(
            HookOutput::message("hi".into()).to_value(),
            json!({"systemMessage": "hi"})
        );
    }

    #[test]
    fn input_is_read_leniently() {
        let i = HookInput::from_value(&json!({
            "thread_id": "t1", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "tool_input": {"command": "ls"}, "tool_response": {"success": false, "error": "boom"},
            "model": {"not": "a string"}, "duration_ms": 12
        }));
        assert_eq!(i.session_id.as_deref(), Some("t1"));
        assert_eq!(
            (i.tool_failed, i.error.as_deref(), i.model),
            (true, Some("boom"), None)
        );
        assert_eq!(i.duration_ms, Some(12.0));
        assert_eq!(
            HookInput::from_value(&json!("not an object")),
            HookInput::default()
        );
    }
}
