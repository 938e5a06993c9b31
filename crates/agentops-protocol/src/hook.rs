//! What a harness sends a hook on stdin and what the hook answers on stdout.
//! Claude Code and Codex share the JSON shapes (Codex names the session
//! `thread_id` in some events); what differs is the tool names, so each
//! harness has its own tool table ([`ToolKind::of`]). The event is typed
//! ([`HookEvent`]) and so is what each event carries ([`EventInput`]).

use serde::Serialize;
use serde_json::Value;

use crate::harness::Harness;

/// A hook event, by the name harnesses give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    SessionStart,
    UserPromptSubmit,
    PreToolUse,
    PostToolUse,
    PostToolUseFailure,
    Stop,
    SubagentStop,
    PreCompact,
    SessionEnd,
    /// Claude Code: a subagent starts (its task brings knowledge in).
    SubagentStart,
    /// After a compaction (its `compact_summary` is journaled).
    PostCompact,
    /// An event agentops does not handle (it is journaled and answered with
    /// silence).
    Other(String),
}

impl HookEvent {
    /// Every event agentops handles.
    pub const HANDLED: [HookEvent; 11] = [
        Self::SessionStart,
        Self::UserPromptSubmit,
        Self::PreToolUse,
        Self::PostToolUse,
        Self::PostToolUseFailure,
        Self::Stop,
        Self::SubagentStop,
        Self::PreCompact,
        Self::SessionEnd,
        Self::SubagentStart,
        Self::PostCompact,
    ];

    pub fn parse(name: &str) -> Self {
        Self::HANDLED
            .into_iter()
            .find(|e| e.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::SessionStart => "SessionStart",
            Self::UserPromptSubmit => "UserPromptSubmit",
            Self::PreToolUse => "PreToolUse",
            Self::PostToolUse => "PostToolUse",
            Self::PostToolUseFailure => "PostToolUseFailure",
            Self::Stop => "Stop",
            Self::SubagentStop => "SubagentStop",
            Self::PreCompact => "PreCompact",
            Self::SessionEnd => "SessionEnd",
            Self::SubagentStart => "SubagentStart",
            Self::PostCompact => "PostCompact",
            Self::Other(n) => n,
        }
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tool does, as far as the policy and the journal care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    /// Runs a shell command (`command`: a string, or Codex's argv).
    Shell,
    /// Writes or edits one file (`file_path`).
    File,
    /// Edits a notebook (`notebook_path`).
    Notebook,
    /// Codex's `apply_patch` envelope (its paths are in the patch text).
    Patch,
    /// Reads, searches, or anything else.
    Other,
}

/// Claude Code's tool names.
const CLAUDE_TOOLS: &[(&str, ToolKind)] = &[
    ("Bash", ToolKind::Shell),
    ("Write", ToolKind::File),
    ("Edit", ToolKind::File),
    ("MultiEdit", ToolKind::File),
    ("NotebookEdit", ToolKind::Notebook),
];

/// Codex's tool names.
const CODEX_TOOLS: &[(&str, ToolKind)] = &[
    ("shell", ToolKind::Shell),
    ("local_shell", ToolKind::Shell),
    ("exec_command", ToolKind::Shell),
    ("unified_exec", ToolKind::Shell),
    ("apply_patch", ToolKind::Patch),
];

impl ToolKind {
    /// The kind of `harness`'s tool `name`. The other harness's table is
    /// consulted too: a shell is a shell whoever names it, and the policy's
    /// denials must hold when a release renames a tool after the other's.
    pub fn of(harness: Option<Harness>, name: &str) -> Self {
        let tables = match harness {
            Some(Harness::Codex) => [CODEX_TOOLS, CLAUDE_TOOLS],
            Some(Harness::Claude) | None => [CLAUDE_TOOLS, CODEX_TOOLS],
        };
        tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|(n, _)| *n == name)
            .map_or(ToolKind::Other, |(_, k)| *k)
    }
}

/// A tool call a harness reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// The harness's name for the tool.
    pub name: String,
    pub kind: ToolKind,
    pub input: Value,
    pub id: Option<String>,
}

/// What one event carries, by event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventInput {
    SessionStart {
        /// `startup`, `resume`, `clear`, `compact`.
        source: Option<String>,
        model: Option<String>,
    },
    UserPromptSubmit {
        prompt: Option<String>,
    },
    PreToolUse(ToolUse),
    /// PostToolUse and PostToolUseFailure.
    PostToolUse {
        tool: ToolUse,
        failed: bool,
        error: Option<String>,
        is_interrupt: bool,
        duration_ms: Option<f64>,
    },
    /// Stop and SubagentStop.
    Stop {
        subagent: bool,
        stop_hook_active: bool,
        last_assistant_message: Option<String>,
    },
    /// PreCompact and SessionEnd.
    Checkpoint,
    /// SubagentStart: the subagent's type and, where the harness passes it,
    /// its task.
    SubagentStart {
        agent_type: Option<String>,
        task: Option<String>,
    },
    /// PostCompact and events agentops only journals.
    Other,
}

/// One event as a hook reads it: the fields every event has, and the typed
/// part of its own event.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEventInput {
    pub event: HookEvent,
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub transcript_path: Option<String>,
    pub data: EventInput,
}

impl HookEventInput {
    /// Reads event `event` (named by the CLI argument) of `harness` from
    /// its JSON, leniently (see [`HookInput`]).
    pub fn read(harness: Harness, event: &str, v: &Value) -> Self {
        let raw = HookInput::from_value(v);
        let event = HookEvent::parse(event);
        let tool = || ToolUse {
            name: raw.tool_name.clone().unwrap_or_default(),
            kind: ToolKind::of(Some(harness), raw.tool_name.as_deref().unwrap_or("")),
            input: raw.tool_input.clone(),
            id: raw.tool_use_id.clone(),
        };
        let data = match &event {
            HookEvent::SessionStart => EventInput::SessionStart {
                source: raw.source.clone(),
                model: raw.model.clone(),
            },
            HookEvent::UserPromptSubmit => EventInput::UserPromptSubmit {
                prompt: raw.prompt.clone(),
            },
            HookEvent::PreToolUse => EventInput::PreToolUse(tool()),
            HookEvent::PostToolUse | HookEvent::PostToolUseFailure => EventInput::PostToolUse {
                tool: tool(),
                failed: event == HookEvent::PostToolUseFailure || raw.tool_failed,
                error: raw.error.clone(),
                is_interrupt: raw.is_interrupt,
                duration_ms: raw.duration_ms,
            },
            HookEvent::Stop | HookEvent::SubagentStop => EventInput::Stop {
                subagent: event == HookEvent::SubagentStop,
                stop_hook_active: raw.stop_hook_active,
                last_assistant_message: raw.last_assistant_message.clone(),
            },
            HookEvent::PreCompact | HookEvent::SessionEnd => EventInput::Checkpoint,
            HookEvent::SubagentStart => EventInput::SubagentStart {
                agent_type: v
                    .get("agent_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                task: ["prompt", "task", "description"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_str))
                    .map(str::to_owned),
            },
            HookEvent::PostCompact | HookEvent::Other(_) => EventInput::Other,
        };
        HookEventInput {
            event,
            session_id: raw.session_id,
            cwd: raw.cwd,
            transcript_path: raw.transcript_path,
            data,
        }
    }

    /// The tool call of a PreToolUse or PostToolUse.
    pub fn tool(&self) -> Option<&ToolUse> {
        match &self.data {
            EventInput::PreToolUse(t) | EventInput::PostToolUse { tool: t, .. } => Some(t),
            _ => None,
        }
    }
}

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
                hook_event_name: HookEvent::PreToolUse.as_str().to_owned(),
                permission_decision: Some("deny".into()),
                permission_decision_reason: Some(reason.to_owned()),
                additional_context: None,
            }),
            ..HookOutput::default()
        }
    }

    /// SessionStart or UserPromptSubmit: context for the model.
    pub fn context(event: &HookEvent, text: String) -> Self {
        HookOutput {
            specific: Some(HookSpecific {
                hook_event_name: event.as_str().to_owned(),
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
            HookOutput::context(&HookEvent::SessionStart, "ctx".into()).to_value(),
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
    fn events_and_tools_are_typed_per_harness() {
        let v = json!({"session_id": "s", "tool_name": "apply_patch", "tool_input": {"input": "*** Add File: a"}, "tool_use_id": "u1"});
        let e = HookEventInput::read(Harness::Codex, "PreToolUse", &v);
        assert_eq!(e.event, HookEvent::PreToolUse);
        assert_eq!(
            e.data,
            EventInput::PreToolUse(ToolUse {
                name: "apply_patch".into(),
                kind: ToolKind::Patch,
                input: json!({"input": "*** Add File: a"}),
                id: Some("u1".into())
            })
        );
        let e = HookEventInput::read(
            Harness::Claude,
            "PostToolUseFailure",
            &json!({"tool_name": "Bash", "error": "exit 1"}),
        );
        assert!(matches!(
            e.data,
            EventInput::PostToolUse { failed: true, ref tool, .. } if tool.kind == ToolKind::Shell
        ));
        let e = HookEventInput::read(
            Harness::Claude,
            "SubagentStop",
            &json!({"stop_hook_active": true}),
        );
        assert_eq!(
            e.data,
            EventInput::Stop {
                subagent: true,
                stop_hook_active: true,
                last_assistant_message: None
            }
        );
        assert_eq!(
            HookEvent::parse("Notification"),
            HookEvent::Other("Notification".into())
        );
        for e in HookEvent::HANDLED {
            assert_eq!(HookEvent::parse(e.as_str()), e);
        }
        // Each harness's names first; the other's still count.
        assert_eq!(ToolKind::of(Some(Harness::Claude), "Write"), ToolKind::File);
        assert_eq!(
            ToolKind::of(Some(Harness::Claude), "shell"),
            ToolKind::Shell
        );
        assert_eq!(ToolKind::of(None, "Read"), ToolKind::Other);
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
