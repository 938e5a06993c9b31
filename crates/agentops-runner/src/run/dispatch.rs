//! Tool dispatch: which tool calls an agent may make, what they changed, and
//! the `tool.call` body the journal keeps of each.

use std::collections::BTreeSet;

use agentops_protocol::event as body;

use crate::tools::ToolOutput;

/// The most bytes of a tool's input and output the journal keeps.
pub(super) const JOURNAL_CLIP: usize = 2_048;

/// What the tools of one attempt changed, for its checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Changes {
    /// Paths written through the file tools.
    pub wrote: BTreeSet<String>,
    /// Something may have changed any file (a command ran, or a harness that
    /// runs its own tools): the checkpoint takes the whole work tree.
    pub all_files: bool,
}

/// Runs the tool `name` if the agent has it (`execute` does the work), and
/// records what it changed in `changes`.
pub(super) fn dispatch(
    allowed: &[String],
    name: &str,
    input: &serde_json::Value,
    changes: &mut Changes,
    execute: impl FnOnce(&str, &serde_json::Value) -> ToolOutput,
) -> ToolOutput {
    if !allowed.iter().any(|t| t == name) {
        return ToolOutput {
            content: format!("tool `{name}` is not available to this agent"),
            is_error: true,
            wrote: vec![],
        };
    }
    if name == "run_command" {
        // A command can change any file: commit with `git add -A`.
        changes.all_files = true;
    }
    let out = execute(name, input);
    changes.wrote.extend(out.wrote.iter().cloned());
    out
}

/// `s` cut to at most [`JOURNAL_CLIP`] bytes, on a character boundary.
pub(super) fn clip(mut s: String) -> String {
    s.truncate(s.floor_char_boundary(JOURNAL_CLIP));
    s
}

/// The journal's record of one tool call (input and output clipped).
pub(super) fn tool_body(
    name: &str,
    tool_use_id: &str,
    input: &serde_json::Value,
    out: &ToolOutput,
    duration_ms: f64,
) -> body::ToolCall {
    body::ToolCall {
        name: name.to_owned(),
        tool_use_id: Some(tool_use_id.to_owned()),
        input: serde_json::Value::String(clip(input.to_string())),
        output: Some(clip(out.content.clone())),
        is_error: out.is_error,
        files: out.wrote.clone(),
        duration_ms: Some(duration_ms),
        ..body::ToolCall::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn wrote(paths: &[&str]) -> ToolOutput {
        ToolOutput {
            content: "ok".into(),
            is_error: false,
            wrote: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn only_the_agents_tools_run_and_their_writes_are_collected() {
        let allowed = vec!["write_file".to_owned(), "run_command".to_owned()];
        let mut changes = Changes::default();
        let out = dispatch(&allowed, "read_file", &json!({}), &mut changes, |_, _| {
            panic!("a tool the agent lacks must not run")
        });
        assert!(out.is_error);
        assert_eq!(
            out.content,
            "tool `read_file` is not available to this agent"
        );
        dispatch(&allowed, "write_file", &json!({}), &mut changes, |_, _| {
            wrote(&["src/a.rs", "src/b.rs"])
        });
        assert_eq!(
            changes,
            Changes {
                wrote: ["src/a.rs".to_owned(), "src/b.rs".to_owned()].into(),
                all_files: false
            }
        );
        dispatch(
            &allowed,
            "run_command",
            &json!({"command": "make"}),
            &mut changes,
            |n, i| {
                assert_eq!((n, i["command"].as_str()), ("run_command", Some("make")));
                wrote(&[])
            },
        );
        assert!(changes.all_files);
    }

    #[test]
    fn the_journal_keeps_clipped_input_and_output() {
        let big = "é".repeat(3_000);
        let out = ToolOutput {
            content: big.clone(),
            is_error: true,
            wrote: vec!["x".into()],
        };
        let b = tool_body("read_file", "t1", &json!({"path": big}), &out, 1.5);
        let input = b.input.as_str().unwrap();
        assert!(input.len() <= JOURNAL_CLIP && input.len() > JOURNAL_CLIP - 4);
        assert!(input.starts_with("{\"path\":\"éé"));
        let output = b.output.as_deref().unwrap();
        assert_eq!(output.len(), JOURNAL_CLIP);
        assert!(b.is_error);
        assert_eq!(b.files, ["x"]);
        assert_eq!(b.tool_use_id.as_deref(), Some("t1"));
    }
}
