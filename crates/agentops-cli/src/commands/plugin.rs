//! `agentops plugin install claude|codex`: the plugins in the repository's
//! `plugins/`, embedded in the binary and written out for a user.

use std::path::{Path, PathBuf};

use super::{Code, Failure};
use crate::cli::PluginCommand;
use crate::output::Output;

/// (path under the marketplace root, text) of each harness's files.
const CLAUDE: &[(&str, &str)] = &[
    (
        ".claude-plugin/marketplace.json",
        include_str!("../../../../plugins/.claude-plugin/marketplace.json"),
    ),
    (
        "claude/.claude-plugin/plugin.json",
        include_str!("../../../../plugins/claude/.claude-plugin/plugin.json"),
    ),
    (
        "claude/.mcp.json",
        include_str!("../../../../plugins/claude/.mcp.json"),
    ),
    (
        "claude/hooks/hooks.json",
        include_str!("../../../../plugins/claude/hooks/hooks.json"),
    ),
    (
        "claude/commands/learn.md",
        include_str!("../../../../plugins/claude/commands/learn.md"),
    ),
    (
        "claude/commands/handoff.md",
        include_str!("../../../../plugins/claude/commands/handoff.md"),
    ),
    (
        "claude/commands/status.md",
        include_str!("../../../../plugins/claude/commands/status.md"),
    ),
];
const CODEX: &[(&str, &str)] = &[
    (
        ".agents/plugins/marketplace.json",
        include_str!("../../../../plugins/.agents/plugins/marketplace.json"),
    ),
    (
        "codex/.codex-plugin/plugin.json",
        include_str!("../../../../plugins/codex/.codex-plugin/plugin.json"),
    ),
    (
        "codex/.mcp.json",
        include_str!("../../../../plugins/codex/.mcp.json"),
    ),
    (
        "codex/hooks/hooks.json",
        include_str!("../../../../plugins/codex/hooks/hooks.json"),
    ),
    (
        "codex/skills/agentops-learn/SKILL.md",
        include_str!("../../../../plugins/codex/skills/agentops-learn/SKILL.md"),
    ),
    (
        "codex/skills/agentops-handoff/SKILL.md",
        include_str!("../../../../plugins/codex/skills/agentops-handoff/SKILL.md"),
    ),
    (
        "codex/skills/agentops-status/SKILL.md",
        include_str!("../../../../plugins/codex/skills/agentops-status/SKILL.md"),
    ),
];

/// The files of `harness`'s plugin, as written.
pub fn files(harness: &str) -> &'static [(&'static str, &'static str)] {
    if harness == "codex" { CODEX } else { CLAUDE }
}

fn default_dir() -> Result<PathBuf, Failure> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("agentops/plugins"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share/agentops/plugins"))
        .ok_or_else(|| Failure::usage("HOME is not set: pass --dir"))
}

/// The file's text with `agentops` replaced by the commands that start this
/// binary, when `agentops` on PATH is not it.
fn with_command(text: &str, server: &str, hook: &str, harness: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    text.replace(
        "\"command\": \"agentops\"",
        &format!("\"command\": {}", q(server)),
    )
    .replace(&q(&format!("agentops hook {harness}")), &q(hook))
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<bool, Failure> {
    let path = dir.join(rel);
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(false);
    }
    let fail = |e: std::io::Error| Failure::failed(format!("{}: {e}", path.display()));
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(fail)?;
    }
    let tmp = path.with_extension(format!("agentops-{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })?;
    Ok(true)
}

pub fn run(cmd: PluginCommand, out: &Output) -> Result<Code, Failure> {
    let PluginCommand::Install { harness, dir } = cmd;
    let dir = match dir {
        Some(d) => d,
        None => default_dir()?,
    };
    let command = super::harness::mcp_server().command;
    let hook = super::harness::hook_command(if harness == "codex" {
        agentops_harness::Harness::Codex
    } else {
        agentops_harness::Harness::Claude
    });
    let mut written = Vec::new();
    for (rel, text) in files(&harness) {
        if write(&dir, rel, &with_command(text, &command, &hook, &harness))? {
            written.push(*rel);
        }
    }
    let plugin = dir.join(&harness);
    let next: Vec<String> = if harness == "codex" {
        vec![
            format!("codex plugin marketplace add {}", dir.display()),
            "codex plugin add agentops@agentops".into(),
        ]
    } else {
        vec![
            format!(
                "claude --plugin-dir {}   (this session only), or:",
                plugin.display()
            ),
            format!("claude plugin marketplace add {}", dir.display()),
            "claude plugin install agentops@agentops".into(),
        ]
    };
    if out.json {
        out.json(&serde_json::json!({
            "harness": harness, "dir": dir, "plugin": plugin, "written": written,
            "command": command, "next": next,
        }));
        return Ok(Code::Ok);
    }
    out.line(&format!(
        "wrote the agentops {harness} plugin to {} ({} of {} files changed)",
        plugin.display(),
        written.len(),
        files(&harness).len()
    ));
    out.line("load it with:");
    for n in &next {
        out.line(&format!("  {n}"));
    }
    out.line("Its hooks are the ones `agentops hooks install` writes: keep one of the two, or every hook runs twice.");
    Ok(Code::Ok)
}
