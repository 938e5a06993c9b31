//! Whether Codex will run agentops's hooks: Codex runs a project's hooks only
//! in a trusted project (`[projects."<dir>"] trust_level = "trusted"` in
//! `$CODEX_HOME/config.toml`, written when the person trusts the folder or
//! runs `codex exec --trust`), and each hook only once the person has
//! approved it in `/hooks` (Codex records `[hooks.state."<hooks.json>:<event>:
//! <group>:<handler>"] trusted_hash = "sha256:…"`). `codex exec` skips an
//! untrusted hook without a word.
//!
//! agentops only reads this, for `doctor`: it never trusts a project or a
//! hook on the person's behalf, and it does not compute Codex's hash (Codex
//! re-asks when a hook's content changed; a recorded hash is reported as
//! approved).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Harness;

/// One agentops hook in a Codex hooks file, and whether it is approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTrust {
    /// The event as Codex keys it (`session_start`, `pre_tool_use` …).
    pub event: String,
    /// Codex's key for it.
    pub key: String,
    pub approved: bool,
}

/// What Codex's configuration says about agentops in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexTrust {
    /// `$CODEX_HOME/config.toml`.
    pub config: PathBuf,
    /// The hooks file that holds agentops's hooks.
    pub hooks_file: PathBuf,
    /// Whether the project is trusted (`None`: the hooks file is the user's,
    /// which needs no project trust).
    pub project_trusted: Option<bool>,
    pub hooks: Vec<HookTrust>,
}

impl CodexTrust {
    /// Hooks Codex will skip.
    pub fn unapproved(&self) -> Vec<&str> {
        self.hooks
            .iter()
            .filter(|h| !h.approved)
            .map(|h| h.event.as_str())
            .collect()
    }
}

/// `PreToolUse` → `pre_tool_use`.
pub fn event_key(event: &str) -> String {
    let mut out = String::new();
    for (i, c) in event.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The config file Codex reads: `$CODEX_HOME/config.toml`, else
/// `~/.codex/config.toml`.
pub fn codex_config(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env("CODEX_HOME").filter(|h| !h.is_empty()) {
        Some(h) => Some(PathBuf::from(h).join("config.toml")),
        None => env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".codex/config.toml")),
    }
}

/// Reads what Codex's `config` says about the agentops hooks in
/// `hooks_file` (none there: `Ok(None)`), for a project at `project`
/// (`None` for the user's own hooks file).
pub fn read(
    config: &Path,
    hooks_file: &Path,
    project: Option<&Path>,
) -> Result<Option<CodexTrust>, String> {
    let hooks_text = match std::fs::read_to_string(hooks_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", hooks_file.display())),
    };
    let hooks: Value = serde_json::from_str(&hooks_text)
        .map_err(|e| format!("{}:{}: {e}", hooks_file.display(), e.line()))?;
    // Codex keys hooks by the hooks file's absolute path.
    let file = std::fs::canonicalize(hooks_file).unwrap_or_else(|_| hooks_file.to_path_buf());
    let mut out = Vec::new();
    if let Some(events) = hooks.get("hooks").and_then(Value::as_object) {
        for (event, groups) in events {
            for (g, group) in groups.as_array().into_iter().flatten().enumerate() {
                let handlers = group.get("hooks").and_then(Value::as_array);
                for (h, handler) in handlers.into_iter().flatten().enumerate() {
                    let ours = handler
                        .get("command")
                        .and_then(Value::as_str)
                        .is_some_and(|c| crate::install::is_ours(c, Harness::Codex));
                    if !ours {
                        continue;
                    }
                    let key = format!("{}:{}:{g}:{h}", file.display(), event_key(event));
                    out.push(HookTrust {
                        event: event.clone(),
                        approved: false,
                        key,
                    });
                }
            }
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    let cfg_text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", config.display())),
    };
    let cfg: toml::Table = toml::from_str(&cfg_text).map_err(|e| {
        let line = e
            .span()
            .map(|s| {
                cfg_text[..s.start.min(cfg_text.len())]
                    .lines()
                    .count()
                    .max(1)
            })
            .unwrap_or(1);
        format!("{}:{line}: {}", config.display(), e.message())
    })?;
    let state = cfg
        .get("hooks")
        .and_then(|h| h.get("state"))
        .and_then(toml::Value::as_table);
    let approved = |key: &str| {
        state
            .and_then(|s| s.get(key))
            .and_then(|e| e.get("trusted_hash"))
            .and_then(toml::Value::as_str)
            .is_some_and(|h| !h.is_empty())
    };
    for h in &mut out {
        h.approved = approved(&h.key);
    }
    let project_trusted = project.map(|p| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        cfg.get("projects")
            .and_then(toml::Value::as_table)
            .and_then(|t| t.get(p.to_string_lossy().as_ref()))
            .and_then(|e| e.get("trust_level"))
            .and_then(toml::Value::as_str)
            == Some("trusted")
    });
    Ok(Some(CodexTrust {
        config: config.to_path_buf(),
        hooks_file: file,
        project_trusted,
        hooks: out,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_project_trust_and_each_hooks_approval() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("shop");
        std::fs::create_dir_all(project.join(".codex")).unwrap();
        let hooks = project.join(".codex/hooks.json");
        std::fs::write(
            &hooks,
            r#"{"hooks": {
                "PreToolUse": [{"hooks": [{"type": "command", "command": "other-tool"}, {"type": "command", "command": "agentops hook codex"}]}],
                "SessionEnd": [{"hooks": [{"type": "command", "command": "agentops hook codex", "timeout": 3}]}]
            }}"#,
        )
        .unwrap();
        let config = dir.path().join("config.toml");
        let canon = std::fs::canonicalize(&hooks).unwrap();
        assert_eq!(event_key("PreToolUse"), "pre_tool_use");
        assert_eq!(event_key("SessionEnd"), "session_end");
        // Nothing trusted yet.
        let t = read(&config, &hooks, Some(&project)).unwrap().unwrap();
        assert_eq!(t.project_trusted, Some(false));
        assert_eq!(t.unapproved(), ["PreToolUse", "SessionEnd"]);
        assert_eq!(
            t.hooks[0].key,
            format!("{}:pre_tool_use:0:1", canon.display())
        );
        std::fs::write(
            &config,
            format!(
                "[projects.{:?}]\ntrust_level = \"trusted\"\n\n[hooks.state.{:?}]\ntrusted_hash = \"sha256:00\"\n",
                std::fs::canonicalize(&project).unwrap().display().to_string(),
                t.hooks[0].key
            ),
        )
        .unwrap();
        let t = read(&config, &hooks, Some(&project)).unwrap().unwrap();
        assert_eq!(t.project_trusted, Some(true));
        assert_eq!(t.unapproved(), ["SessionEnd"]);
        // A broken config names its file and line.
        std::fs::write(&config, "[projects\n").unwrap();
        let e = read(&config, &hooks, Some(&project)).unwrap_err();
        assert!(e.contains("config.toml:1:"), "{e}");
        // No agentops hook there: nothing to say.
        std::fs::write(&hooks, r#"{"hooks": {}}"#).unwrap();
        assert_eq!(read(&config, &hooks, Some(&project)).unwrap(), None);
    }
}
