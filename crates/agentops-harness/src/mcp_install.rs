//! Registering `agentops mcp` with Claude Code and Codex, beside the hooks:
//! merged into the harness's own file and taken out again exactly, like the
//! hook entries (`install`).
//!
//! - Claude Code: project scope `.mcp.json` at the repository root; local
//!   scope `~/.claude.json` under `projects.<work tree>.mcpServers`; user
//!   scope `~/.claude.json` under `mcpServers`. The server is
//!   `{"type": "stdio", "command": …, "args": ["mcp"], "env": {}}`.
//! - Codex: `[mcp_servers.agentops]` with `command` and `args`, in the
//!   project's `.codex/config.toml` (read for trusted projects) or the user's
//!   `$CODEX_HOME/config.toml`. The TOML is edited as text: only our table
//!   (and its sub-tables) is written; every other byte stays.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Harness;
use crate::install::{InstallError, Plan, Scope, parse, read, render_change, shape};
use crate::json::Json;

/// The server's name in the harness's configuration.
pub const NAME: &str = "agentops";

/// How the harness starts the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub command: String,
    pub args: Vec<String>,
}

/// Where a registration lives: the file, and for Claude's local scope the
/// project key inside it.
#[derive(Debug, Clone)]
pub struct Location {
    pub path: PathBuf,
    pub project: Option<String>,
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, InstallError> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            InstallError::Usage("HOME is not set: cannot find the user's settings".into())
        })
}

/// The file for `harness` at `scope`.
pub fn location(
    harness: Harness,
    scope: Scope,
    work_tree: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Location, InstallError> {
    let tree = || {
        work_tree.map(Path::to_path_buf).ok_or_else(|| {
            InstallError::Usage(
                "not inside a git repository: run this in your project, or use --scope user".into(),
            )
        })
    };
    Ok(match (harness, scope) {
        (Harness::Claude, Scope::Project) => Location {
            path: tree()?.join(".mcp.json"),
            project: None,
        },
        (Harness::Claude, Scope::Local) => Location {
            path: home(env)?.join(".claude.json"),
            project: Some(tree()?.display().to_string()),
        },
        (Harness::Claude, Scope::User) => Location {
            path: home(env)?.join(".claude.json"),
            project: None,
        },
        (Harness::Codex, Scope::Project) => Location {
            path: tree()?.join(".codex/config.toml"),
            project: None,
        },
        (Harness::Codex, Scope::User) => Location {
            path: match env("CODEX_HOME").filter(|h| !h.is_empty()) {
                Some(h) => PathBuf::from(h).join("config.toml"),
                None => home(env)?.join(".codex/config.toml"),
            },
            project: None,
        },
        (Harness::Codex, Scope::Local) => {
            return Err(InstallError::Usage(
                "Codex has no local (uncommitted) configuration: use --scope project or --scope user"
                    .into(),
            ));
        }
    })
}

fn claude_entry(s: &Server) -> Json {
    Json::Object(vec![
        ("type".into(), Json::str("stdio")),
        ("command".into(), Json::str(&s.command)),
        (
            "args".into(),
            Json::Array(s.args.iter().map(|a| Json::str(a)).collect()),
        ),
        ("env".into(), Json::Object(Vec::new())),
    ])
}

/// The object holding `mcpServers` (the root, or the project's entry).
fn servers_parent<'a>(
    root: &'a mut Json,
    project: Option<&str>,
    path: &Path,
    create: bool,
) -> Result<Option<&'a mut Json>, InstallError> {
    let Some(key) = project else {
        return Ok(Some(root));
    };
    if root.get("projects").is_none() {
        if !create {
            return Ok(None);
        }
        if let Json::Object(m) = root {
            m.push(("projects".into(), Json::Object(Vec::new())));
        }
    }
    let Some(Json::Object(projects)) = root.get_mut("projects") else {
        return Err(shape(path, "projects", "is not an object"));
    };
    if !projects.iter().any(|(k, _)| k == key) {
        if !create {
            return Ok(None);
        }
        projects.push((key.to_owned(), Json::Object(Vec::new())));
    }
    let Some((_, p)) = projects.iter_mut().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    if !matches!(p, Json::Object(_)) {
        return Err(shape(path, &format!("projects.{key}"), "is not an object"));
    }
    Ok(Some(p))
}

fn plan_claude(loc: &Location, server: Option<&Server>) -> Result<Plan, InstallError> {
    let path = &loc.path;
    let before = read(path)?;
    if server.is_none() && before.is_none() {
        return Ok(Plan {
            path: path.clone(),
            before: None,
            after: None,
            events: Vec::new(),
        });
    }
    let mut root = parse(path, before.as_deref().unwrap_or(""))?;
    let original = root.clone();
    let field = match &loc.project {
        Some(p) => format!("projects.{p}.mcpServers"),
        None => "mcpServers".to_owned(),
    };
    let mut touched = Vec::new();
    if let Some(parent) = servers_parent(&mut root, loc.project.as_deref(), path, server.is_some())?
    {
        if parent.get("mcpServers").is_none()
            && server.is_some()
            && let Json::Object(m) = parent
        {
            m.push(("mcpServers".into(), Json::Object(Vec::new())));
        }
        match parent.get_mut("mcpServers") {
            Some(Json::Object(servers)) => match server {
                Some(s) => {
                    let want = claude_entry(s);
                    match servers.iter_mut().find(|(k, _)| k == NAME) {
                        Some((_, v)) if *v == want => {}
                        Some((_, v)) => {
                            *v = want;
                            touched.push(format!("{field}.{NAME}"));
                        }
                        None => {
                            servers.push((NAME.into(), want));
                            touched.push(format!("{field}.{NAME}"));
                        }
                    }
                }
                None => {
                    let n = servers.len();
                    servers.retain(|(k, _)| k != NAME);
                    if servers.len() != n {
                        touched.push(format!("{field}.{NAME}"));
                        if servers.is_empty() && loc.project.is_none() {
                            parent.remove("mcpServers");
                        }
                    }
                }
            },
            Some(_) => return Err(shape(path, &field, "is not an object")),
            None => {}
        }
    }
    let after = if touched.is_empty() {
        before.clone()
    } else if matches!(&root, Json::Object(m) if m.is_empty()) {
        None
    } else {
        Some(render_change(&original, &root, before.as_deref())?)
    };
    Ok(Plan {
        path: path.clone(),
        before,
        after,
        events: touched,
    })
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn codex_block(s: &Server) -> String {
    let args: Vec<String> = s.args.iter().map(|a| toml_str(a)).collect();
    format!(
        "[mcp_servers.{NAME}]\ncommand = {}\nargs = [{}]\n",
        toml_str(&s.command),
        args.join(", ")
    )
}

/// The table header a line opens, if it opens one (`[a.b]`, `[[a]]`).
fn header(line: &str) -> Option<String> {
    let t = line.trim_start();
    if !t.starts_with('[') {
        return None;
    }
    let inner = t.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(
        inner[..end]
            .split('.')
            .map(|p| p.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> InstallError {
    let (line, column) = e
        .span()
        .map(|s| {
            let before = &text[..s.start.min(text.len())];
            (
                before.matches('\n').count() + 1,
                before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
            )
        })
        .unwrap_or((0, 0));
    InstallError::Syntax {
        path: path.to_owned(),
        line,
        column,
        reason: e.message().to_owned(),
    }
}

fn plan_codex(path: &Path, server: Option<&Server>) -> Result<Plan, InstallError> {
    let before = read(path)?;
    let text = before.clone().unwrap_or_default();
    let parsed: toml::Table = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    let defined = parsed
        .get("mcp_servers")
        .and_then(|m| m.get(NAME))
        .is_some();
    // Our table: from its header to the next table that is not one of its
    // sub-tables.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let ours = |h: &str| {
        h == format!("mcp_servers.{NAME}") || h.starts_with(&format!("mcp_servers.{NAME}."))
    };
    let start = lines
        .iter()
        .position(|l| header(l).is_some_and(|h| h == format!("mcp_servers.{NAME}")));
    if defined && start.is_none() {
        return Err(shape(
            path,
            &format!("mcp_servers.{NAME}"),
            "is defined inline or with dotted keys; agentops only rewrites its own `[mcp_servers.agentops]` table",
        ));
    }
    let mut out = String::new();
    let mut touched = Vec::new();
    match start {
        Some(s) => {
            let end = lines[s + 1..]
                .iter()
                .position(|l| header(l).is_some_and(|h| !ours(&h)))
                .map_or(lines.len(), |i| s + 1 + i);
            // Keep blank lines and comments that sit before the next table.
            let tail_len = lines[s..end]
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                .count();
            let kept_tail: String = lines[end - tail_len..end].concat();
            let new = match server {
                Some(sv) => codex_block(sv),
                None => String::new(),
            };
            let body_old: String = lines[s..end - tail_len].concat();
            if body_old != new {
                touched.push(format!("mcp_servers.{NAME}"));
            }
            let prefix = lines[..s].concat();
            // Removing the table: no double blank line where it was.
            let drop_tail = server.is_none()
                && kept_tail.trim().is_empty()
                && (prefix.is_empty() || prefix.ends_with("\n\n"));
            out.push_str(&prefix);
            out.push_str(&new);
            if !drop_tail {
                out.push_str(&kept_tail);
            }
            out.push_str(&lines[end..].concat());
            if server.is_none() {
                // Leave no run of blank lines where the table was.
                while out.ends_with("\n\n") {
                    out.pop();
                }
            }
        }
        None => match server {
            Some(sv) => {
                out.push_str(&text);
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                if !out.trim().is_empty() {
                    out.push('\n');
                }
                out.push_str(&codex_block(sv));
                touched.push(format!("mcp_servers.{NAME}"));
            }
            None => out = text.clone(),
        },
    }
    // What we wrote must read back as what we meant.
    let check: toml::Table = toml::from_str(&out).map_err(|e| {
        InstallError::Usage(format!(
            "{}: the edited file would not parse ({}); nothing was written",
            path.display(),
            e.message()
        ))
    })?;
    let got = check.get("mcp_servers").and_then(|m| m.get(NAME));
    let right = match server {
        Some(sv) => {
            got.and_then(|g| g.get("command")).and_then(|c| c.as_str()) == Some(sv.command.as_str())
        }
        None => got.is_none(),
    };
    if !right {
        return Err(shape(
            path,
            &format!("mcp_servers.{NAME}"),
            "could not be edited as a table of its own",
        ));
    }
    let after = if touched.is_empty() {
        before.clone()
    } else if out.trim().is_empty() && server.is_none() {
        None
    } else {
        Some(out)
    };
    Ok(Plan {
        path: path.to_owned(),
        before,
        after,
        events: touched,
    })
}

/// Plans registering `server` at `loc`.
pub fn plan_install(
    harness: Harness,
    loc: &Location,
    server: &Server,
) -> Result<Plan, InstallError> {
    match harness {
        Harness::Claude => plan_claude(loc, Some(server)),
        Harness::Codex => plan_codex(&loc.path, Some(server)),
    }
}

/// Plans removing the registration at `loc`, leaving everything else.
pub fn plan_uninstall(harness: Harness, loc: &Location) -> Result<Plan, InstallError> {
    match harness {
        Harness::Claude => plan_claude(loc, None),
        Harness::Codex => plan_codex(&loc.path, None),
    }
}

/// The registration at `loc`, if there is one.
pub fn registered(harness: Harness, loc: &Location) -> Result<Option<Server>, InstallError> {
    let Some(text) = read(&loc.path)? else {
        return Ok(None);
    };
    let (command, args) = match harness {
        Harness::Claude => {
            let root = parse(&loc.path, &text)?;
            let parent = match &loc.project {
                Some(p) => root.get("projects").and_then(|x| x.get(p)),
                None => Some(&root),
            };
            let Some(e) = parent
                .and_then(|p| p.get("mcpServers"))
                .and_then(|m| m.get(NAME))
            else {
                return Ok(None);
            };
            let args = match e.get("args") {
                Some(Json::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            (
                e.get("command").and_then(Json::as_str).map(str::to_owned),
                args,
            )
        }
        Harness::Codex => {
            let t: toml::Table =
                toml::from_str(&text).map_err(|e| toml_error(&loc.path, &text, &e))?;
            let Some(e) = t.get("mcp_servers").and_then(|m| m.get(NAME)) else {
                return Ok(None);
            };
            let args = e
                .get("args")
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (
                e.get("command").and_then(|c| c.as_str()).map(str::to_owned),
                args,
            )
        }
    };
    Ok(command.map(|command| Server { command, args }))
}

/// Starts `server` in `dir` and asks it `initialize`: the protocol version
/// it answered and how long it took, or why it did not.
pub fn probe(server: &Server, dir: &Path, timeout: Duration) -> Result<(String, Duration), String> {
    let start = Instant::now();
    let mut child = Command::new(&server.command)
        .args(&server.args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{}` does not start: {e}", server.command))?;
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"agentops-doctor","version":"1"}}}"#;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{init}\n").as_bytes());
        // Closing stdin ends the server after it answers.
    }
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
    }
    let answer = rx.recv_timeout(timeout);
    let took = start.elapsed();
    let _ = child.kill();
    let out = child.wait_with_output();
    let stderr = out
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    let line = match answer {
        Ok(l) if !l.trim().is_empty() => l,
        Ok(_) => {
            return Err(format!(
                "it exited without answering initialize{}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {}", stderr.lines().last().unwrap_or(""))
                }
            ));
        }
        Err(_) => {
            return Err(format!(
                "no answer to initialize within {} s",
                timeout.as_secs()
            ));
        }
    };
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("its answer is not JSON-RPC ({e})"))?;
    match v["result"]["protocolVersion"].as_str() {
        Some(p) => Ok((p.to_owned(), took)),
        None => Err(format!(
            "it answered initialize with an error: {}",
            v["error"]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn server() -> Server {
        Server {
            command: "agentops".into(),
            args: vec!["mcp".into()],
        }
    }

    #[test]
    fn codex_table_is_added_replaced_and_removed_leaving_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let user = "# my settings\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\"docs\"]\n\n[profiles.fast]\nmodel = \"mini\" # keep\n";
        std::fs::write(&path, user).unwrap();
        let loc = Location {
            path: path.clone(),
            project: None,
        };
        let p = plan_install(Harness::Codex, &loc, &server()).unwrap();
        assert!(p.changed());
        p.apply().unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.starts_with(user), "{now}");
        assert!(
            now.ends_with("[mcp_servers.agentops]\ncommand = \"agentops\"\nargs = [\"mcp\"]\n")
        );
        // Again: nothing to change.
        assert!(
            !plan_install(Harness::Codex, &loc, &server())
                .unwrap()
                .changed()
        );
        // Another command replaces ours in place, sub-tables included.
        let with_env = now.replace(
            "args = [\"mcp\"]\n",
            "args = [\"mcp\"]\n\n[mcp_servers.agentops.env]\nX = \"1\"\n\n[z]\nk = 1\n",
        );
        std::fs::write(&path, &with_env).unwrap();
        let other = Server {
            command: "/opt/agentops".into(),
            args: vec!["mcp".into()],
        };
        plan_install(Harness::Codex, &loc, &other)
            .unwrap()
            .apply()
            .unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(
            now.contains("command = \"/opt/agentops\"")
                && !now.contains("X = \"1\"")
                && now.contains("[z]\nk = 1\n"),
            "{now}"
        );
        assert_eq!(registered(Harness::Codex, &loc).unwrap(), Some(other));
        // Uninstall takes exactly our table out.
        plan_uninstall(Harness::Codex, &loc)
            .unwrap()
            .apply()
            .unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(now, format!("{user}\n[z]\nk = 1\n"));
        assert_eq!(registered(Harness::Codex, &loc).unwrap(), None);
    }

    #[test]
    fn codex_refuses_what_it_cannot_edit_and_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let loc = Location {
            path: path.clone(),
            project: None,
        };
        std::fs::write(&path, "mcp_servers.agentops.command = \"x\"\n").unwrap();
        let e = plan_install(Harness::Codex, &loc, &server())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mcp_servers.agentops") && e.contains("dotted"),
            "{e}"
        );
        std::fs::write(&path, "a = 1\nb = = 2\n").unwrap();
        let e = plan_install(Harness::Codex, &loc, &server())
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.toml:2:"), "{e}");
    }

    #[test]
    fn claude_project_local_and_user_forms() {
        let dir = tempfile::tempdir().unwrap();
        let mcp = dir.path().join(".mcp.json");
        std::fs::write(
            &mcp,
            "{\n  \"mcpServers\": {\n    \"docs\": {\"command\": \"npx\"}\n  }\n}\n",
        )
        .unwrap();
        let loc = Location {
            path: mcp.clone(),
            project: None,
        };
        plan_install(Harness::Claude, &loc, &server())
            .unwrap()
            .apply()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&mcp).unwrap()).unwrap();
        assert_eq!(
            v["mcpServers"]["agentops"]["args"],
            serde_json::json!(["mcp"])
        );
        assert_eq!(v["mcpServers"]["docs"]["command"], "npx");
        plan_uninstall(Harness::Claude, &loc)
            .unwrap()
            .apply()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&mcp).unwrap(),
            "{\n  \"mcpServers\": {\n    \"docs\": {\"command\": \"npx\"}\n  }\n}\n"
        );
        // Local: under the project's key in ~/.claude.json; other keys stay.
        let cj = dir.path().join(".claude.json");
        std::fs::write(
            &cj,
            "{\"numStartups\": 3, \"projects\": {\"/other\": {\"x\": 1}}}",
        )
        .unwrap();
        let loc = Location {
            path: cj.clone(),
            project: Some("/repo".into()),
        };
        plan_install(Harness::Claude, &loc, &server())
            .unwrap()
            .apply()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cj).unwrap()).unwrap();
        assert_eq!(
            v["projects"]["/repo"]["mcpServers"]["agentops"]["command"],
            "agentops"
        );
        assert_eq!(v["numStartups"], 3);
        assert_eq!(registered(Harness::Claude, &loc).unwrap(), Some(server()));
        plan_uninstall(Harness::Claude, &loc)
            .unwrap()
            .apply()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cj).unwrap()).unwrap();
        assert_eq!(v["projects"]["/other"]["x"], 1);
        assert_eq!(registered(Harness::Claude, &loc).unwrap(), None);
    }
}
