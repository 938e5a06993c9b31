//! What the harness CLIs print: Claude Code's `stream-json` (and its
//! transcripts, which share the message shapes) and `codex exec --json`.
//! One parser each, used by the command backend and by ingest.
//!
//! Parsing is lenient the way these streams need: a line of a type this
//! version does not know, or whose fields do not fit, reads as `Other`
//! rather than failing the stream (the CLIs add fields and types between
//! releases). Only text that is not JSON is an error, for the caller to name.

use serde::Deserialize;
use serde_json::Value;

use crate::model::Usage;

/// One line of Claude Code `stream-json` output or of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaudeLine {
    /// `{"type":"system", …}`: the session's init (model, tools, cwd).
    System(ClaudeSystem),
    /// A model response (streams repeat one message per content block).
    Assistant(ClaudeAssistant),
    /// A user turn: the prompt, or tool results.
    User(ClaudeUser),
    /// The session's end, with the harness's own totals.
    Result(ClaudeResult),
    /// Any other line (`summary`, a newer type, a line that does not fit).
    Other {
        kind: String,
        session_id: Option<String>,
        timestamp: Option<String>,
    },
}

/// Fields every Claude line may carry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeCommon {
    #[serde(default, alias = "sessionId")]
    pub session_id: Option<String>,
    /// RFC 3339 (transcripts).
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeSystem {
    #[serde(flatten)]
    pub common: ClaudeCommon,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub tools: Value,
    #[serde(default, rename = "permissionMode")]
    pub permission_mode: Option<String>,
    #[serde(default)]
    pub claude_code_version: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeAssistant {
    #[serde(flatten)]
    pub common: ClaudeCommon,
    #[serde(default)]
    pub message: ClaudeMessage,
}

/// An Anthropic message as the streams carry it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeMessage {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Anthropic's `usage` object (input tokens without the cache).
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default, deserialize_with = "content_blocks")]
    pub content: Content,
}

impl ClaudeMessage {
    /// The usage, normalised (see [`Usage::from_anthropic`]).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
            .as_ref()
            .filter(|u| u.is_object())
            .map(Usage::from_anthropic)
    }
}

/// A message's content: a plain string (a typed prompt) or blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

impl Default for Content {
    fn default() -> Self {
        Content::Blocks(Vec::new())
    }
}

impl Content {
    /// The blocks (none for plain text).
    pub fn blocks(&self) -> &[Block] {
        match self {
            Content::Text(_) => &[],
            Content::Blocks(b) => b,
        }
    }

    /// The text of a plain-string content, or of its text blocks joined by
    /// newlines; `None` when it has no text.
    pub fn text(&self) -> Option<String> {
        match self {
            Content::Text(s) => Some(s.clone()),
            Content::Blocks(b) => {
                let parts: Vec<&str> = b
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join("\n"))
            }
        }
    }
}

/// One content block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        #[serde(default)]
        tool_use_id: String,
        #[serde(default)]
        is_error: bool,
        #[serde(default)]
        content: Value,
    },
    #[serde(other)]
    Other,
}

fn content_blocks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Content, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Content::Text(s),
        Value::Array(a) => Content::Blocks(
            a.into_iter()
                .map(|b| Block::deserialize(b).unwrap_or(Block::Other))
                .collect(),
        ),
        _ => Content::default(),
    })
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeUser {
    #[serde(flatten)]
    pub common: ClaudeCommon,
    #[serde(default)]
    pub message: ClaudeMessage,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClaudeResult {
    #[serde(flatten)]
    pub common: ClaudeCommon,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub duration_api_ms: Option<f64>,
    #[serde(default)]
    pub num_turns: Option<u64>,
    /// The final answer.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    /// Anthropic-shaped totals.
    #[serde(default)]
    pub usage: Option<Value>,
    /// Per model: camelCase usage and `costUSD`.
    #[serde(default, rename = "modelUsage")]
    pub model_usage: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub errors: Value,
}

impl ClaudeResult {
    /// The session's totals, normalised.
    pub fn usage(&self) -> Usage {
        self.usage
            .as_ref()
            .map(Usage::from_anthropic)
            .unwrap_or_default()
    }
}

impl ClaudeLine {
    /// Reads one parsed line.
    pub fn from_value(v: &Value) -> Self {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let parsed = match kind {
            "system" => ClaudeSystem::deserialize(v).map(ClaudeLine::System).ok(),
            "assistant" => ClaudeAssistant::deserialize(v)
                .map(ClaudeLine::Assistant)
                .ok(),
            "user" => ClaudeUser::deserialize(v).map(ClaudeLine::User).ok(),
            "result" => ClaudeResult::deserialize(v).map(ClaudeLine::Result).ok(),
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            let common = ClaudeCommon::deserialize(v).unwrap_or_default();
            ClaudeLine::Other {
                kind: kind.to_owned(),
                session_id: common.session_id,
                timestamp: common.timestamp,
            }
        })
    }

    /// Parses one line of text.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Value>(line).map(|v| Self::from_value(&v))
    }

    /// The fields every line may carry.
    pub fn common(&self) -> ClaudeCommon {
        match self {
            ClaudeLine::System(s) => s.common.clone(),
            ClaudeLine::Assistant(a) => a.common.clone(),
            ClaudeLine::User(u) => u.common.clone(),
            ClaudeLine::Result(r) => r.common.clone(),
            ClaudeLine::Other {
                session_id,
                timestamp,
                ..
            } => ClaudeCommon {
                session_id: session_id.clone(),
                timestamp: timestamp.clone(),
                uuid: None,
            },
        }
    }
}

/// One event of `codex exec --json`.
#[derive(Debug, Clone, PartialEq)]
pub enum CodexEvent {
    ThreadStarted {
        thread_id: Option<String>,
    },
    TurnStarted,
    /// A turn's model usage (input includes cache reads).
    TurnCompleted {
        usage: Usage,
    },
    TurnFailed {
        message: Option<String>,
        usage: Usage,
    },
    ItemStarted(CodexItem),
    ItemCompleted(CodexItem),
    /// A stream-level error.
    Error {
        message: Option<String>,
    },
    Other {
        kind: String,
    },
}

/// An item of a Codex turn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CodexItem {
    AgentMessage {
        #[serde(default)]
        id: String,
        #[serde(default)]
        text: String,
    },
    Reasoning {
        #[serde(default)]
        id: String,
    },
    CommandExecution {
        #[serde(default)]
        id: String,
        #[serde(default)]
        command: Option<String>,
        #[serde(default)]
        aggregated_output: Option<String>,
        #[serde(default)]
        exit_code: Option<i64>,
        #[serde(default)]
        status: Option<String>,
    },
    FileChange {
        #[serde(default)]
        id: String,
        #[serde(default)]
        changes: Vec<CodexChange>,
        #[serde(default)]
        status: Option<String>,
    },
    McpToolCall {
        #[serde(default)]
        id: String,
        #[serde(default)]
        server: Option<String>,
        #[serde(default)]
        tool: Option<String>,
        #[serde(default)]
        status: Option<String>,
    },
    WebSearch {
        #[serde(default)]
        id: String,
        #[serde(default)]
        query: Option<String>,
    },
    Error {
        #[serde(default)]
        id: String,
        #[serde(default)]
        message: Option<String>,
    },
    #[serde(other)]
    Other,
}

impl CodexItem {
    /// The item's id (empty for unknown items).
    pub fn id(&self) -> &str {
        match self {
            CodexItem::AgentMessage { id, .. }
            | CodexItem::Reasoning { id }
            | CodexItem::CommandExecution { id, .. }
            | CodexItem::FileChange { id, .. }
            | CodexItem::McpToolCall { id, .. }
            | CodexItem::WebSearch { id, .. }
            | CodexItem::Error { id, .. } => id,
            CodexItem::Other => "",
        }
    }
}

/// One file of a `file_change` item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CodexChange {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub kind: Option<String>,
}

fn item_of(v: &Value) -> CodexItem {
    v.get("item")
        .and_then(|i| CodexItem::deserialize(i).ok())
        .unwrap_or(CodexItem::Other)
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

impl CodexEvent {
    /// Reads one parsed event.
    pub fn from_value(v: &Value) -> Self {
        let usage = || v.get("usage").map(Usage::from_openai).unwrap_or_default();
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "thread.started" => CodexEvent::ThreadStarted {
                thread_id: str_at(v, "/thread_id").map(str::to_owned),
            },
            "turn.started" => CodexEvent::TurnStarted,
            "turn.completed" => CodexEvent::TurnCompleted { usage: usage() },
            "turn.failed" => CodexEvent::TurnFailed {
                message: str_at(v, "/error/message").map(str::to_owned),
                usage: usage(),
            },
            "item.started" => CodexEvent::ItemStarted(item_of(v)),
            "item.completed" => CodexEvent::ItemCompleted(item_of(v)),
            "error" => CodexEvent::Error {
                message: str_at(v, "/message")
                    .or_else(|| str_at(v, "/error/message"))
                    .map(str::to_owned),
            },
            other => CodexEvent::Other {
                kind: other.to_owned(),
            },
        }
    }

    /// Parses one line of text.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Value>(line).map(|v| Self::from_value(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn claude_lines_read_by_type() {
        let sys = ClaudeLine::parse(r#"{"type":"system","subtype":"init","session_id":"s1","model":"claude-x","cwd":"/w","tools":["Bash"],"permissionMode":"default","claude_code_version":"2.1.0"}"#).unwrap();
        let ClaudeLine::System(s) = sys else {
            panic!("not system")
        };
        assert_eq!(
            (
                s.common.session_id.as_deref(),
                s.model.as_deref(),
                s.permission_mode.as_deref()
            ),
            (Some("s1"), Some("claude-x"), Some("default"))
        );
        let a = ClaudeLine::parse(r#"{"type":"assistant","sessionId":"s1","message":{"id":"m1","model":"claude-x","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}},{"type":"thinking","thinking":"…"}],"usage":{"input_tokens":3,"cache_read_input_tokens":10,"output_tokens":2}}}"#).unwrap();
        let ClaudeLine::Assistant(a) = a else {
            panic!("not assistant")
        };
        assert_eq!(a.common.session_id.as_deref(), Some("s1"));
        assert_eq!(a.message.content.blocks().len(), 3);
        assert_eq!(a.message.content.blocks()[2], Block::Other);
        assert_eq!(a.message.usage().unwrap().input_tokens, 13);
        let u =
            ClaudeLine::parse(r#"{"type":"user","message":{"content":"fix the bug"}}"#).unwrap();
        let ClaudeLine::User(u) = u else {
            panic!("not user")
        };
        assert_eq!(u.message.content.text().as_deref(), Some("fix the bug"));
        // A known type whose fields do not fit reads as Other, not as an error.
        assert_eq!(
            ClaudeLine::parse(r#"{"type":"result","is_error":"no","session_id":"s2"}"#).unwrap(),
            ClaudeLine::Other {
                kind: "result".into(),
                session_id: Some("s2".into()),
                timestamp: None
            }
        );
        assert!(ClaudeLine::parse("not json").is_err());
    }

    #[test]
    fn codex_events_read_by_type() {
        let e = CodexEvent::parse(r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"x","exit_code":0,"status":"completed"}}"#).unwrap();
        let CodexEvent::ItemCompleted(CodexItem::CommandExecution {
            exit_code, command, ..
        }) = e
        else {
            panic!("not a command")
        };
        assert_eq!((exit_code, command.as_deref()), (Some(0), Some("ls")));
        assert_eq!(
            CodexEvent::parse(r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":2}}"#).unwrap(),
            CodexEvent::TurnCompleted { usage: Usage { input_tokens: 10, output_tokens: 2, cache_read_tokens: 4, cache_creation_tokens: 0 } }
        );
        assert_eq!(
            CodexEvent::parse(r#"{"type":"item.completed","item":{"type":"todo_list","id":"i"}}"#)
                .unwrap(),
            CodexEvent::ItemCompleted(CodexItem::Other)
        );
    }
}
