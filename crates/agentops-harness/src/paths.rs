//! What hooks and handoffs read from tool inputs and the repository: the
//! paths a tool wrote, a shell command, the branch.

use std::path::Path;

use agentops_protocol::hook::ToolKind;
use agentops_store::RepoLayout;
use serde_json::Value;

/// The command a shell-like tool is about to run.
pub fn tool_command(input: &Value) -> Option<String> {
    match input.get("command")? {
        Value::String(s) => Some(s.clone()),
        // Codex passes argv arrays (`["bash", "-lc", "…"]`).
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// Paths an `apply_patch` envelope touches.
pub fn patch_paths(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| {
            [
                "*** Add File: ",
                "*** Update File: ",
                "*** Delete File: ",
                "*** Move to: ",
            ]
            .iter()
            .find_map(|p| l.strip_prefix(p))
        })
        .map(|p| p.trim().to_owned())
        .collect()
}

/// Files a tool call writes, as the tool gave them.
pub fn written_paths(tool: ToolKind, input: &Value) -> Vec<String> {
    match tool {
        ToolKind::File => input
            .get("file_path")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        ToolKind::Notebook => input
            .get("notebook_path")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        ToolKind::Patch => ["patch", "input", "command"]
            .iter()
            .filter_map(|k| input.get(*k).and_then(Value::as_str))
            .flat_map(patch_paths)
            .collect(),
        ToolKind::Shell | ToolKind::Other => Vec::new(),
    }
}

/// `path` (absolute or relative to `cwd`) relative to the work tree when it
/// is inside it.
pub fn relative_to(work_tree: &Path, cwd: &Path, path: &str) -> String {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let abs = std::path::absolute(&abs).unwrap_or(abs);
    match abs.strip_prefix(work_tree) {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => path.to_owned(),
    }
}

/// The checked-out branch, read from HEAD (no git process).
pub fn current_branch(layout: &RepoLayout) -> Option<String> {
    let head = std::fs::read_to_string(layout.git_dir.join("HEAD")).ok()?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_owned)
}
