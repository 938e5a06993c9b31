//! Built-in tools for API backends. Paths are checked on their canonical
//! form against the agent's scopes (no `..`, no symlink escape, nothing under
//! `.git`); commands pass the command policy and the agent's allow-list, with
//! a timeout and an output cap.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentops_gates::policy::{Access, CommandPolicy, PolicyDecision, check_access, check_write};
use agentops_llm::ToolSpec;
use globset::GlobSet;
use serde_json::{Value, json};

/// Most characters a tool result carries back to the model.
pub const MAX_OUTPUT: usize = 16 * 1024;

/// What a tool answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    /// Paths written (relative to the work tree).
    pub wrote: Vec<String>,
}

impl ToolOutput {
    fn ok(content: impl Into<String>) -> Self {
        Self {
            content: cap(content.into()),
            is_error: false,
            wrote: Vec::new(),
        }
    }
    fn err(content: impl Into<String>) -> Self {
        Self {
            content: cap(content.into()),
            is_error: true,
            wrote: Vec::new(),
        }
    }
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let more = s.len() - cut;
        s.truncate(cut);
        s.push_str(&format!("\n[… {more} more bytes cut]"));
    }
    s
}

/// Searches the knowledge index: (query, limit) → rendered hits.
pub type KnowledgeSearch<'a> = &'a (dyn Fn(&str, usize) -> Result<String, String> + Sync);

/// Where and under which limits tools run.
pub struct ToolEnv<'a> {
    /// The run's worktree.
    pub root: PathBuf,
    pub read_scope: GlobSet,
    /// Empty: the agent may not write.
    pub write_scope: GlobSet,
    pub write_scope_empty: bool,
    pub allow_commands: Vec<regex::Regex>,
    pub policy: &'a CommandPolicy,
    pub command_timeout: Duration,
    pub search: Option<KnowledgeSearch<'a>>,
    /// Who records learnings.
    pub agent: String,
    pub run_id: String,
    /// `created` of recorded learnings: the run's start, so a resumed run
    /// writes the same file.
    pub created_us: i64,
    /// What every text the tools return or write passes through.
    pub redactor: &'a agentops_core::redact::Redactor,
}

/// The JSON-schema specs of `names`.
pub fn specs(names: &[String]) -> Vec<ToolSpec> {
    let s = |name: &str, description: &str, schema: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        input_schema: schema,
    };
    let path = json!({"type": "string", "description": "a path relative to the repository root"});
    names
        .iter()
        .filter_map(|n| {
            Some(match n.as_str() {
                "read_file" => s(n, "Read a text file of the repository.", json!({"type": "object", "properties": {"path": path, "offset": {"type": "integer", "description": "first line, 1-based"}, "limit": {"type": "integer", "description": "most lines"}}, "required": ["path"]})),
                "list_files" => s(n, "List files under a directory of the repository (recursively).", json!({"type": "object", "properties": {"path": {"type": "string", "description": "directory, default the root"}}})),
                "search_files" => s(n, "Search the repository's files for a regular expression; answers file:line: text.", json!({"type": "object", "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}}, "required": ["pattern"]})),
                "search_knowledge" => s(n, "Search the project's knowledge (learnings, decisions, patterns).", json!({"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query"]})),
                "write_file" => s(n, "Create or replace a file with the given content.", json!({"type": "object", "properties": {"path": path, "content": {"type": "string"}}, "required": ["path", "content"]})),
                "edit_file" => s(n, "Replace exactly one occurrence of `old` with `new` in a file.", json!({"type": "object", "properties": {"path": path, "old": {"type": "string"}, "new": {"type": "string"}}, "required": ["path", "old", "new"]})),
                "run_command" => s(n, "Run a shell command in the repository (allow-listed, with a timeout).", json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})),
                "record_learning" => s(n, "Record a learning for future work (committed with the run).", json!({"type": "object", "properties": {"title": {"type": "string"}, "body": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["title", "body"]})),
                _ => return None,
            })
        })
        .collect()
}

fn arg<'v>(input: &'v Value, key: &str) -> Result<&'v str, ToolOutput> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolOutput::err(format!("missing string argument `{key}`")))
}

impl ToolEnv<'_> {
    /// A path the agent may read: (absolute, relative).
    fn readable(&self, p: &str) -> Result<(PathBuf, String), ToolOutput> {
        if let PolicyDecision::Deny { reason, .. } = check_access(
            Path::new(p),
            &self.root,
            &self.root,
            &self.read_scope,
            Access::Read,
        ) {
            return Err(ToolOutput::err(reason));
        }
        let abs = self.root.join(p);
        let rel = rel_of(&self.root, &abs);
        Ok((abs, rel))
    }

    fn writable(&self, p: &str) -> Result<(PathBuf, String), ToolOutput> {
        if self.write_scope_empty {
            return Err(ToolOutput::err(format!(
                "{p}: this agent has no write scope; it may not change files"
            )));
        }
        match check_write(Path::new(p), &self.root, &self.root, &self.write_scope) {
            PolicyDecision::Allow => {}
            PolicyDecision::Deny { reason, .. } => return Err(ToolOutput::err(reason)),
        }
        let abs = self.root.join(p);
        Ok((abs.clone(), rel_of(&self.root, &abs)))
    }

    /// Runs one tool.
    pub fn execute(&self, name: &str, input: &Value) -> ToolOutput {
        let r = match name {
            "read_file" => self.read_file(input),
            "list_files" => self.list_files(input),
            "search_files" => self.search_files(input),
            "search_knowledge" => self.search_knowledge(input),
            "write_file" => self.write_file(input),
            "edit_file" => self.edit_file(input),
            "run_command" => self.run_command(input),
            "record_learning" => self.record_learning(input),
            other => Err(ToolOutput::err(format!("unknown tool `{other}`"))),
        };
        r.unwrap_or_else(|e| e)
    }

    fn read_file(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let (abs, rel) = self.readable(arg(input, "path")?)?;
        let bytes = std::fs::read(&abs).map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ToolOutput::err(format!("{rel}: not a text file")))?;
        let offset = input
            .get("offset")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1) as usize;
        let limit = input
            .get("limit")
            .and_then(Value::as_u64)
            .map(|l| l as usize);
        if offset == 1 && limit.is_none() {
            return Ok(ToolOutput::ok(text));
        }
        let lines: Vec<&str> = text
            .lines()
            .skip(offset - 1)
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        Ok(ToolOutput::ok(lines.join("\n")))
    }

    fn walk(&self, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if out.len() >= 2_000 {
                return;
            }
            let p = e.path();
            let name = e.file_name();
            if name == ".git" || name == "target" || name == "node_modules" {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                // Listed only when it points at a file inside the repository.
                let root = self
                    .root
                    .canonicalize()
                    .unwrap_or_else(|_| self.root.clone());
                let inside = p
                    .canonicalize()
                    .is_ok_and(|t| t.starts_with(&root) && t.is_file());
                if !inside {
                    continue;
                }
            }
            if ft.is_dir() {
                self.walk(&p, out);
            } else {
                let rel = rel_of(&self.root, &p);
                if self.read_scope.is_match(&rel) {
                    out.push(rel);
                }
            }
        }
    }

    fn list_files(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let dir = input.get("path").and_then(Value::as_str).unwrap_or(".");
        let abs = if dir == "." || dir.is_empty() {
            self.root.clone()
        } else {
            self.readable_dir(dir)?
        };
        let mut out = Vec::new();
        self.walk(&abs, &mut out);
        let more = if out.len() >= 2_000 {
            "\n[listing cut at 2000 files]"
        } else {
            ""
        };
        Ok(ToolOutput::ok(format!("{}{more}", out.join("\n"))))
    }

    fn readable_dir(&self, dir: &str) -> Result<PathBuf, ToolOutput> {
        let abs = self.root.join(dir);
        let c = abs
            .canonicalize()
            .map_err(|e| ToolOutput::err(format!("{dir}: {e}")))?;
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        if !c.starts_with(&root) {
            return Err(ToolOutput::err(format!("{dir}: outside the repository")));
        }
        Ok(c)
    }

    fn search_files(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let pat = arg(input, "pattern")?;
        let re =
            regex::Regex::new(pat).map_err(|e| ToolOutput::err(format!("bad pattern: {e}")))?;
        let dir = input.get("path").and_then(Value::as_str).unwrap_or(".");
        let abs = if dir == "." {
            self.root.clone()
        } else {
            self.readable_dir(dir)?
        };
        let mut files = Vec::new();
        self.walk(&abs, &mut files);
        let mut hits = Vec::new();
        'files: for f in files {
            let Ok(text) = std::fs::read_to_string(self.root.join(&f)) else {
                continue;
            };
            for (i, l) in text.lines().enumerate() {
                if re.is_match(l) {
                    hits.push(format!(
                        "{f}:{}: {}",
                        i + 1,
                        l.chars().take(200).collect::<String>()
                    ));
                    if hits.len() >= 200 {
                        hits.push("[cut at 200 matches]".into());
                        break 'files;
                    }
                }
            }
        }
        Ok(ToolOutput::ok(if hits.is_empty() {
            "no matches".into()
        } else {
            hits.join("\n")
        }))
    }

    fn search_knowledge(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let q = arg(input, "query")?;
        let limit = input
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(5)
            .clamp(1, 20) as usize;
        let Some(search) = self.search else {
            return Ok(ToolOutput::ok("no knowledge index (run `agentops index`)"));
        };
        search(q, limit)
            .map(ToolOutput::ok)
            .map_err(ToolOutput::err)
    }

    fn write_file(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let p = arg(input, "path")?;
        let content = arg(input, "content")?;
        let (abs, rel) = self.writable(p)?;
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        }
        write_atomic(&abs, content.as_bytes())
            .map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        let mut o = ToolOutput::ok(format!("wrote {rel} ({} bytes)", content.len()));
        o.wrote.push(rel);
        Ok(o)
    }

    fn edit_file(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let p = arg(input, "path")?;
        let old = arg(input, "old")?;
        let new = arg(input, "new")?;
        let (abs, rel) = self.writable(p)?;
        let text =
            std::fs::read_to_string(&abs).map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        let n = if old.is_empty() {
            0
        } else {
            text.matches(old).count()
        };
        if n != 1 {
            return Err(ToolOutput::err(format!(
                "{rel}: `old` occurs {n} times; it must occur exactly once (include more surrounding text)"
            )));
        }
        write_atomic(&abs, text.replacen(old, new, 1).as_bytes())
            .map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        let mut o = ToolOutput::ok(format!("edited {rel}"));
        o.wrote.push(rel);
        Ok(o)
    }

    fn run_command(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        let cmd = arg(input, "command")?;
        if let PolicyDecision::Deny { reason, .. } = self.policy.check(cmd) {
            return Err(ToolOutput::err(reason));
        }
        if !self.allow_commands.iter().any(|r| r.is_match(cmd)) {
            return Err(ToolOutput::err(format!(
                "`{cmd}` is not in this agent's allow_commands; allowed: {}",
                if self.allow_commands.is_empty() {
                    "none".into()
                } else {
                    self.allow_commands
                        .iter()
                        .map(regex::Regex::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        let started = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ToolOutput::err(format!("cannot start sh: {e}")))?;
        let out = child.stdout.take();
        let err = child.stderr.take();
        let t_out = std::thread::spawn(move || read_capped(out));
        let t_err = std::thread::spawn(move || read_capped(err));
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() > self.command_timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break None,
            }
        };
        let stdout = t_out.join().unwrap_or_default();
        let stderr = t_err.join().unwrap_or_default();
        let text = format!(
            "{}{}{}",
            stdout,
            if stderr.is_empty() {
                ""
            } else {
                "\n[stderr]\n"
            },
            stderr
        );
        let text = self.redactor.redact(&text).into_owned();
        match status {
            Some(s) if s.success() => Ok(ToolOutput::ok(format!("exit 0\n{text}"))),
            Some(s) => Err(ToolOutput::err(format!(
                "exit {}\n{text}",
                s.code().unwrap_or(-1)
            ))),
            None => Err(ToolOutput::err(format!(
                "timed out after {:?}\n{text}",
                self.command_timeout
            ))),
        }
    }

    fn record_learning(&self, input: &Value) -> Result<ToolOutput, ToolOutput> {
        // Redacted before the slug: the title names the file.
        let title = self
            .redactor
            .redact(arg(input, "title")?.trim())
            .into_owned();
        let title = title.as_str();
        let body = arg(input, "body")?;
        if title.is_empty() {
            return Err(ToolOutput::err("`title` is empty"));
        }
        let slug = agentops_knowledge::entry::slug(title);
        let rel = format!(".agents/learnings/run-{}-{}.md", self.run_id, slug);
        let tags: Vec<String> = input
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for t in &tags {
            agentops_knowledge::entry::validate_tag(t)
                .map_err(|m| ToolOutput::err(format!("tag `{t}`: {m}")))?;
        }
        let text = render_entry(
            &format!("run-{}-{slug}", self.run_id),
            agentops_knowledge::EntryType::Learning,
            title,
            tags,
            self.created_us,
            Some(&self.agent),
            &self.run_id,
            body,
            self.redactor,
        )
        .map_err(ToolOutput::err)?;
        let abs = self.root.join(&rel);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        }
        write_atomic(&abs, text.as_bytes()).map_err(|e| ToolOutput::err(format!("{rel}: {e}")))?;
        let mut o = ToolOutput::ok(format!(
            "recorded {rel}; it is committed with this run's checkpoint"
        ));
        o.wrote.push(rel);
        Ok(o)
    }
}

/// A knowledge entry written by a run, in the project's entry format, its
/// title and body redacted.
#[allow(clippy::too_many_arguments)]
pub(crate) fn render_entry(
    id: &str,
    kind: agentops_knowledge::EntryType,
    title: &str,
    tags: Vec<String>,
    created_us: i64,
    agent: Option<&str>,
    run: &str,
    body: &str,
    redactor: &agentops_core::redact::Redactor,
) -> Result<String, String> {
    use agentops_knowledge::{Entry, Maturity, Provenance};
    let e = Entry {
        id: agentops_core::EntryId::parse(id).map_err(|e| e.to_string())?,
        kind,
        title: redactor.redact(title).into_owned(),
        tags,
        created: Some(created_us),
        source: Provenance {
            run: Some(run.to_owned()),
            session: None,
            agent: agent.map(str::to_owned),
        },
        maturity: Maturity::Provisional,
        supersedes: Vec::new(),
        body: redactor.redact(body).into_owned(),
        path: String::new(),
        has_front_matter: true,
    };
    agentops_knowledge::entry::render(&e)
}

fn read_capped(r: Option<impl Read>) -> String {
    let Some(mut r) = r else { return String::new() };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // Keep the tail: the end of a build log is what matters.
                if buf.len() > 4 * MAX_OUTPUT {
                    buf.drain(..buf.len() - MAX_OUTPUT);
                }
            }
        }
    }
    let s = String::from_utf8_lossy(&buf).into_owned();
    if s.len() > MAX_OUTPUT {
        let mut cut = s.len() - MAX_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[… output cut]\n{}", &s[cut..])
    } else {
        s
    }
}

fn rel_of(root: &Path, abs: &Path) -> String {
    let root_c = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let norm = abs.canonicalize().unwrap_or_else(|_| abs.to_path_buf());
    norm.strip_prefix(&root_c)
        .or_else(|_| abs.strip_prefix(root))
        .map_or_else(
            |_| abs.display().to_string(),
            |p| p.to_string_lossy().replace('\\', "/"),
        )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}agentops-tmp",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(root: &Path, policy: &'a CommandPolicy) -> ToolEnv<'a> {
        ToolEnv {
            root: root.canonicalize().unwrap(),
            read_scope: agentops_gates::policy::write_scope(&["**".into()]).unwrap(),
            write_scope: agentops_gates::policy::write_scope(&["src/**".into()]).unwrap(),
            write_scope_empty: false,
            allow_commands: vec![regex::Regex::new("^(echo|cat|sleep|yes) ").unwrap()],
            policy,
            command_timeout: Duration::from_millis(500),
            search: None,
            agent: "coder".into(),
            run_id: "r1".into(),
            created_us: 0,
            redactor: agentops_core::redact::builtin(),
        }
    }

    #[test]
    fn writes_are_confined_to_the_scope_on_canonical_paths() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("src/escape")).unwrap();
        let p = CommandPolicy::defaults();
        let e = env(d.path(), &p);
        let ok = e.execute(
            "write_file",
            &json!({"path": "src/a.rs", "content": "fn a() {}\n"}),
        );
        assert!(!ok.is_error, "{}", ok.content);
        assert_eq!(ok.wrote, vec!["src/a.rs"]);
        for bad in [
            "docs/x.md",
            "src/../docs/x.md",
            "/etc/passwd",
            "src/escape/x",
            ".git/config",
        ] {
            let r = e.execute("write_file", &json!({"path": bad, "content": "x"}));
            assert!(r.is_error, "{bad} was allowed");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let ed = e.execute(
            "edit_file",
            &json!({"path": "src/a.rs", "old": "fn a", "new": "pub fn a"}),
        );
        assert!(!ed.is_error, "{}", ed.content);
        assert_eq!(
            std::fs::read_to_string(d.path().join("src/a.rs")).unwrap(),
            "pub fn a() {}\n"
        );
        let amb = e.execute(
            "edit_file",
            &json!({"path": "src/a.rs", "old": "", "new": "x"}),
        );
        assert!(amb.is_error);
        let r = e.execute("read_file", &json!({"path": "src/a.rs"}));
        assert_eq!(r.content, "pub fn a() {}\n");
        let r = e.execute("read_file", &json!({"path": "../../etc/passwd"}));
        assert!(r.is_error);
        let s = e.execute("search_files", &json!({"pattern": "pub fn"}));
        assert_eq!(s.content, "src/a.rs:1: pub fn a() {}");
        let l = e.execute("list_files", &json!({}));
        assert_eq!(l.content, "src/a.rs");
    }

    #[test]
    fn commands_are_allow_listed_policed_timed_and_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = CommandPolicy::defaults();
        let e = env(d.path(), &p);
        let ok = e.execute("run_command", &json!({"command": "echo hi"}));
        assert_eq!(ok.content, "exit 0\nhi\n");
        let no = e.execute("run_command", &json!({"command": "ls /"}));
        assert!(no.is_error && no.content.contains("allow_commands"));
        let danger = e.execute("run_command", &json!({"command": "echo x && rm -rf /"}));
        assert!(
            danger.is_error && danger.content.contains("agentops policy"),
            "{}",
            danger.content
        );
        let slow = e.execute("run_command", &json!({"command": "sleep 5"}));
        assert!(slow.is_error && slow.content.contains("timed out"));
        let big = e.execute(
            "run_command",
            &json!({"command": "yes 0123456789 | head -c 1000000"}),
        );
        assert!(
            big.content.len() < MAX_OUTPUT + 200,
            "{}",
            big.content.len()
        );
    }
}
