//! `agentops hooks install|uninstall claude|codex`: merge agentops's hook
//! entries into a harness's settings and take exactly those out again.
//!
//! Both harnesses use the same shape: `hooks.<Event>` is a list of matcher
//! groups, each with a list of `{"type": "command", "command": …, "timeout": s}`
//! handlers. We append one group per event holding our handler; every other
//! key, group and handler stays where it was, in its order. An entry is ours
//! when its command runs `agentops hook <harness>`.

use std::path::{Path, PathBuf};

use crate::Harness;
use crate::json::{self, Json};

/// Which settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Shared with the team, committed (`.claude/settings.json`, `.codex/hooks.json`).
    Project,
    /// This machine only (`.claude/settings.local.json`; Claude Code only).
    Local,
    /// Every project of this user (`~/.claude/settings.json`, `~/.codex/hooks.json`).
    User,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "project" => Some(Self::Project),
            "local" => Some(Self::Local),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

/// The events agentops listens to, with the harness's time limit (seconds)
/// and whether the event takes a tool matcher.
pub fn events(h: Harness) -> &'static [(&'static str, u64, bool)] {
    match h {
        Harness::Claude => &[
            ("SessionStart", 15, false),
            ("UserPromptSubmit", 10, false),
            ("PreToolUse", 10, true),
            ("PostToolUse", 10, true),
            ("PostToolUseFailure", 10, true),
            ("Stop", 900, false),
            ("SubagentStop", 900, false),
            ("PreCompact", 60, false),
            ("PostCompact", 10, false),
            ("SubagentStart", 10, false),
            ("SessionEnd", 60, false),
        ],
        // Codex's events (no PostToolUseFailure). Codex fires SessionEnd at
        // the end of `codex exec` and clamps its hooks to 3 s; the hook
        // bounds its own work to fit (see `hook::run`).
        Harness::Codex => &[
            ("SessionStart", 15, false),
            ("UserPromptSubmit", 10, false),
            ("PreToolUse", 10, false),
            ("PostToolUse", 10, false),
            ("Stop", 900, false),
            ("SubagentStop", 900, false),
            ("PreCompact", 60, false),
            ("SessionEnd", 3, false),
        ],
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(
        "{path}:{line}:{column}: not valid JSON ({reason}); fix the file or move it aside, then install again"
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(
        "{path}: field `{field}` {reason}; agentops will not rewrite a settings file it does not understand"
    )]
    Shape {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

/// What install or uninstall would do to one file.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    /// The file's text now (`None`: it does not exist).
    pub before: Option<String>,
    /// The text after (`None`: the file would be removed).
    pub after: Option<String>,
    /// Events whose entries are added, updated or removed.
    pub events: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// A unified diff of the change.
    pub fn diff(&self) -> String {
        let name = self.path.display().to_string();
        let before = self.before.clone().unwrap_or_default();
        let after = self.after.clone().unwrap_or_default();
        similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{name} (before)"), &format!("{name} (after)"))
            .to_string()
    }

    /// Writes the change: a temporary file renamed over the old one, so a
    /// crash leaves either the old or the new file, never half of one.
    pub fn apply(&self) -> Result<(), InstallError> {
        if !self.changed() {
            return Ok(());
        }
        let io = |e: std::io::Error| InstallError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        match &self.after {
            None => std::fs::remove_file(&self.path).map_err(io),
            Some(text) => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let tmp = self
                    .path
                    .with_extension(format!("json.agentops-{}.tmp", std::process::id()));
                std::fs::write(&tmp, text).map_err(io)?;
                if let Ok(meta) = std::fs::metadata(&self.path) {
                    // Keep the owner's permissions (settings may be private).
                    let _ = std::fs::set_permissions(&tmp, meta.permissions());
                }
                std::fs::rename(&tmp, &self.path).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    io(e)
                })
            }
        }
    }
}

/// The settings file for `harness` at `scope`.
pub fn settings_path(
    harness: Harness,
    scope: Scope,
    work_tree: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, InstallError> {
    let home = || {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                InstallError::Usage("HOME is not set: cannot find the user's settings".into())
            })
    };
    let tree = || {
        work_tree.map(Path::to_path_buf).ok_or_else(|| {
            InstallError::Usage(
                "not inside a git repository: run this in your project, or use --scope user".into(),
            )
        })
    };
    Ok(match (harness, scope) {
        (Harness::Claude, Scope::Project) => tree()?.join(".claude/settings.json"),
        (Harness::Claude, Scope::Local) => tree()?.join(".claude/settings.local.json"),
        (Harness::Claude, Scope::User) => home()?.join(".claude/settings.json"),
        (Harness::Codex, Scope::Project) => tree()?.join(".codex/hooks.json"),
        (Harness::Codex, Scope::User) => match env("CODEX_HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h).join("hooks.json"),
            None => home()?.join(".codex/hooks.json"),
        },
        (Harness::Codex, Scope::Local) => {
            return Err(InstallError::Usage(
                "Codex has no local (uncommitted) hooks file: use --scope project or --scope user"
                    .into(),
            ));
        }
    })
}

/// Whether a hook command runs `agentops hook <harness>`.
pub fn is_ours(command: &str, harness: Harness) -> bool {
    let words: Vec<&str> = command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .collect();
    let Some(exe) = words.iter().position(|w| {
        let name = Path::new(w)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        name == "agentops" || name == "agentops.exe"
    }) else {
        return false;
    };
    words[exe + 1..]
        .windows(2)
        .any(|w| w[0] == "hook" && w[1] == harness.as_str())
}

pub(crate) fn read(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Json, InstallError> {
    if text.trim().is_empty() {
        return Ok(Json::Object(Vec::new()));
    }
    let v: Json = serde_json::from_str(text).map_err(|e| InstallError::Syntax {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        reason: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or("")
            .to_owned(),
    })?;
    if !matches!(v, Json::Object(_)) {
        return Err(InstallError::Shape {
            path: path.to_owned(),
            field: "(top level)".into(),
            reason: "is not an object".into(),
        });
    }
    Ok(v)
}

/// The file after the change from `old` to `new`: only what changed is
/// rewritten (top-level members and the events under `hooks` that are equal
/// keep their bytes, compact or not); the whole file is rendered only when
/// its text cannot be followed or there was none.
pub(crate) fn render_change(
    old: &Json,
    new: &Json,
    before: Option<&str>,
) -> Result<String, InstallError> {
    if let Some(text) = before.filter(|t| !t.trim().is_empty()) {
        let indent = json::detect_indent(text);
        if let Some(out) = json::rewrite_object(text, old, new, &indent, 1) {
            return Ok(out);
        }
    }
    render(new, before)
}

fn render(v: &Json, before: Option<&str>) -> Result<String, InstallError> {
    let indent = before
        .map(json::detect_indent)
        .unwrap_or_else(|| "  ".into());
    let mut text = json::to_pretty(v, &indent).map_err(|e| InstallError::Usage(e.to_string()))?;
    // Keep the file's final newline as it was (new files get one).
    if before.is_none_or(|b| b.ends_with('\n')) {
        text.push('\n');
    }
    Ok(text)
}

pub(crate) fn shape(path: &Path, field: &str, reason: &str) -> InstallError {
    InstallError::Shape {
        path: path.to_owned(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn our_handler(command: &str, timeout: u64) -> Json {
    Json::Object(vec![
        ("type".into(), Json::str("command")),
        ("command".into(), Json::str(command)),
        ("timeout".into(), Json::int(timeout)),
    ])
}

/// Plans adding agentops's entries to `path` (running `command`).
pub fn plan_install(harness: Harness, path: &Path, command: &str) -> Result<Plan, InstallError> {
    let before = read(path)?;
    let mut root = parse(path, before.as_deref().unwrap_or(""))?;
    let original = root.clone();
    let mut touched = Vec::new();
    if root.get("hooks").is_none()
        && let Json::Object(m) = &mut root
    {
        m.push(("hooks".into(), Json::Object(Vec::new())));
    }
    let Some(Json::Object(hooks)) = root.get_mut("hooks") else {
        return Err(shape(path, "hooks", "is not an object"));
    };
    for (event, timeout, matcher) in events(harness) {
        let want = our_handler(command, *timeout);
        let slot = match hooks.iter().position(|(k, _)| k == event) {
            Some(i) => i,
            None => {
                hooks.push(((*event).to_owned(), Json::Array(Vec::new())));
                hooks.len() - 1
            }
        };
        let Json::Array(groups) = &mut hooks[slot].1 else {
            return Err(shape(path, &format!("hooks.{event}"), "is not a list"));
        };
        let mut found = false;
        for g in groups.iter_mut() {
            if let Some(Json::Array(handlers)) = g.get_mut("hooks") {
                for h in handlers.iter_mut() {
                    let ours = h
                        .get("command")
                        .and_then(Json::as_str)
                        .is_some_and(|c| is_ours(c, harness));
                    if ours {
                        if !found && *h != want {
                            *h = want.clone();
                            touched.push((*event).to_owned());
                        }
                        found = true;
                    }
                }
            }
        }
        if !found {
            let mut group = Vec::new();
            if *matcher {
                group.push(("matcher".into(), Json::str("*")));
            }
            group.push(("hooks".into(), Json::Array(vec![want])));
            groups.push(Json::Object(group));
            touched.push((*event).to_owned());
        }
    }
    let after = render_change(&original, &root, before.as_deref())?;
    let after = if before.is_some() && touched.is_empty() {
        before.clone()
    } else {
        Some(after)
    };
    Ok(Plan {
        path: path.to_owned(),
        before,
        after,
        events: touched,
    })
}

/// Plans removing exactly the entries install added (any agentops handler of
/// this harness, in any event), leaving everything else as it was.
pub fn plan_uninstall(harness: Harness, path: &Path) -> Result<Plan, InstallError> {
    let before = read(path)?;
    let Some(text) = before.as_deref() else {
        return Ok(Plan {
            path: path.to_owned(),
            before: None,
            after: None,
            events: Vec::new(),
        });
    };
    let mut root = parse(path, text)?;
    let original = root.clone();
    let mut touched = Vec::new();
    let mut hooks_now_empty = false;
    if let Some(h) = root.get_mut("hooks") {
        let Json::Object(hooks) = h else {
            return Err(shape(path, "hooks", "is not an object"));
        };
        for (event, groups) in hooks.iter_mut() {
            let Json::Array(groups) = groups else {
                continue;
            };
            let mut removed = false;
            groups.retain_mut(|g| {
                let Some(Json::Array(handlers)) = g.get_mut("hooks") else {
                    return true;
                };
                let n = handlers.len();
                handlers.retain(|h| {
                    !h.get("command")
                        .and_then(Json::as_str)
                        .is_some_and(|c| is_ours(c, harness))
                });
                if handlers.len() != n {
                    removed = true;
                    // A group that held only our handler goes with it.
                    return !handlers.is_empty();
                }
                true
            });
            if removed {
                touched.push(event.clone());
            }
        }
        hooks
            .retain(|(k, v)| !(touched.contains(k) && matches!(v, Json::Array(a) if a.is_empty())));
        hooks_now_empty = hooks.is_empty() && !touched.is_empty();
    }
    if touched.is_empty() {
        return Ok(Plan {
            path: path.to_owned(),
            after: before.clone(),
            before,
            events: Vec::new(),
        });
    }
    if hooks_now_empty {
        root.remove("hooks");
    }
    let after = if matches!(&root, Json::Object(m) if m.is_empty()) {
        None
    } else {
        Some(render_change(&original, &root, Some(text))?)
    };
    Ok(Plan {
        path: path.to_owned(),
        before,
        after,
        events: touched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const USER_SETTINGS: &str = r#"{
  "permissions": {
    "allow": [
      "Bash(cargo test:*)"
    ],
    "deny": []
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "~/bin/check-bash.sh",
            "timeout": 5
          }
        ]
      }
    ],
    "Notification": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify-send 'Claude'"
          }
        ]
      }
    ],
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "say done"
          }
        ]
      }
    ]
  },
  "model": "claude-sonnet-4-5",
  "env": {
    "FOO": "1"
  }
}
"#;

    #[test]
    fn compact_values_keep_their_bytes_and_uninstall_restores_the_file() {
        let d = tempfile::tempdir().unwrap();
        for original in [
            "{\"permissions\": {\"allow\": [\"Bash(cargo test:*)\"], \"deny\": []}, \"model\": \"claude-sonnet-4-5\"}\n",
            "{\n  \"permissions\": {\"allow\": [\"Bash(ls)\"]},\n  \"hooks\": {\"Notification\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"notify-send hi\"}]}]},\n  \"env\": {\"FOO\": \"1\"}\n}\n",
            "{\"hooks\":{}}",
            "{}\n",
        ] {
            let p = d.path().join("settings.json");
            std::fs::write(&p, original).unwrap();
            let plan = plan_install(Harness::Claude, &p, "agentops hook claude").unwrap();
            plan.apply().unwrap();
            let installed = std::fs::read_to_string(&p).unwrap();
            // Installed: still valid JSON, every untouched value as it was.
            let v: serde_json::Value = serde_json::from_str(&installed).unwrap();
            assert!(v["hooks"]["PreToolUse"].is_array(), "{installed}");
            for kept in [
                "{\"allow\": [\"Bash(cargo test:*)\"], \"deny\": []}",
                "{\"allow\": [\"Bash(ls)\"]}",
                "{\"FOO\": \"1\"}",
                "[{\"hooks\": [{\"type\": \"command\", \"command\": \"notify-send hi\"}]}]",
            ] {
                if original.contains(kept) {
                    assert!(installed.contains(kept), "{kept} rewritten:\n{installed}");
                }
            }
            plan_uninstall(Harness::Claude, &p)
                .unwrap()
                .apply()
                .unwrap();
            let back = std::fs::read_to_string(&p).unwrap_or_default();
            if original.trim() == "{\"hooks\":{}}" || original.trim() == "{}" {
                // Nothing of the user's was left: the file is gone or as it was.
                assert!(back.is_empty() || back == original, "{back:?}");
            } else {
                assert_eq!(back, original);
            }
        }
    }

    #[test]
    fn recognises_our_command_only() {
        assert!(is_ours("agentops hook claude", Harness::Claude));
        assert!(is_ours("'/opt/bin/agentops' hook claude", Harness::Claude));
        assert!(is_ours(
            "/usr/local/bin/agentops -C . hook claude",
            Harness::Claude
        ));
        assert!(!is_ours("agentops hook codex", Harness::Claude));
        assert!(!is_ours("~/bin/check-bash.sh", Harness::Claude));
        assert!(!is_ours("myagentops hook claude", Harness::Claude));
    }

    #[test]
    fn install_then_uninstall_is_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, USER_SETTINGS).unwrap();
        let plan = plan_install(Harness::Claude, &path, "agentops hook claude").unwrap();
        assert_eq!(plan.events.len(), 11);
        plan.apply().unwrap();
        let installed = std::fs::read_to_string(&path).unwrap();
        assert!(installed.contains("~/bin/check-bash.sh"));
        assert!(installed.contains("notify-send"));
        // Twice changes nothing.
        let again = plan_install(Harness::Claude, &path, "agentops hook claude").unwrap();
        assert!(!again.changed());
        let un = plan_uninstall(Harness::Claude, &path).unwrap();
        un.apply().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), USER_SETTINGS);
        // Uninstalling again is a no-op.
        assert!(!plan_uninstall(Harness::Claude, &path).unwrap().changed());
    }

    #[test]
    fn new_file_is_created_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".codex/hooks.json");
        let plan = plan_install(Harness::Codex, &path, "agentops hook codex").unwrap();
        assert!(plan.diff().contains("+    \"SessionStart\""));
        plan.apply().unwrap();
        plan_uninstall(Harness::Codex, &path)
            .unwrap()
            .apply()
            .unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn bad_files_are_refused_with_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{\n  \"hooks\": {\n    \"Stop\": [,]\n  }\n}\n").unwrap();
        let e = plan_install(Harness::Claude, &path, "agentops hook claude").unwrap_err();
        assert!(e.to_string().contains("settings.json:3:"), "{e}");
        std::fs::write(&path, "{\"hooks\": {\"Stop\": {}}}").unwrap();
        let e = plan_install(Harness::Claude, &path, "agentops hook claude").unwrap_err();
        assert!(e.to_string().contains("hooks.Stop"), "{e}");
    }
}
