//! The command-harness backend: a coding agent CLI run inside the worktree
//! (`claude -p --output-format stream-json`, `codex exec --json`, or any
//! argv with the task in a file). The harness runs its own tool loop; one
//! call is one whole task. Usage and cost come from its stream when it gives
//! them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentops_protocol::Harness;
use agentops_protocol::stream::{Block, ClaudeLine, ClaudeResult, CodexEvent, CodexItem};

use crate::error::{ErrorKind, LlmError};
use crate::types::{Part, Request, Response, Role};
use crate::{Backend, Usage};

/// Which command a [`CommandBackend`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A known harness: `claude -p --output-format stream-json --verbose`
    /// or `codex exec --json -`, the task on stdin.
    Harness(Harness),
    /// Any argv; the task is written to a file whose path replaces
    /// `{task_file}` in the arguments (or is appended), and is in
    /// `AGENTOPS_TASK_FILE`. Standard output is the answer.
    Argv(Vec<String>),
}

/// A command harness run in `workdir`.
#[derive(Debug, Clone)]
pub struct CommandBackend {
    pub program: Program,
    pub workdir: PathBuf,
    pub timeout: Duration,
    /// Passed as `--model` / `-m` when set.
    pub model: Option<String>,
    /// Where the harness's process group is recorded while it runs, so a
    /// resume after a kill -9 can make sure it is gone (see [`kill_recorded`]).
    pub children_file: Option<PathBuf>,
}

/// `setpriv --pdeathsig KILL --`, where the system has it: the harness is
/// killed by the kernel when the agentops thread that started it dies, even
/// by kill -9 (prctl `PR_SET_PDEATHSIG`, without unsafe code here).
fn death_signal_prefix() -> Vec<String> {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        cfg!(target_os = "linux")
            && Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    });
    if found {
        ["setpriv", "--pdeathsig", "KILL", "--"]
            .map(String::from)
            .to_vec()
    } else {
        Vec::new()
    }
}

/// Kills the process groups recorded in `file` by a run that was killed
/// (each harness runs in a group of its own, so its children go too), waits
/// until they are gone (at most 5 s), and removes the file. Returns the
/// groups that were still alive.
pub fn kill_recorded(file: &std::path::Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let alive = |pgid: u32| {
        Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut killed = Vec::new();
    for pgid in text.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        if pgid > 1 && alive(pgid) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pgid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            killed.push(pgid);
        }
    }
    let _ = std::fs::remove_file(file);
    killed
}

/// The task text a command harness receives: the system prompt, then every
/// user turn.
pub fn task_text(req: &Request) -> String {
    let mut s = String::new();
    if !req.system.is_empty() {
        s.push_str(&req.system);
        s.push_str("\n\n");
    }
    for m in req.messages.iter().filter(|m| m.role == Role::User) {
        s.push_str(&m.text());
        s.push_str("\n\n");
    }
    s
}

impl CommandBackend {
    fn argv(&self, task_file: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = match &self.program {
            Program::Harness(Harness::Claude) => [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
            ]
            .map(String::from)
            .to_vec(),
            Program::Harness(Harness::Codex) => ["codex", "exec", "--json", "--full-auto"]
                .map(String::from)
                .to_vec(),
            Program::Argv(a) => {
                let tf = task_file.display().to_string();
                let mut out: Vec<String> =
                    a.iter().map(|x| x.replace("{task_file}", &tf)).collect();
                if !a.iter().any(|x| x.contains("{task_file}")) {
                    out.push(tf);
                }
                return out;
            }
        };
        if let Some(m) = &self.model {
            v.push(
                if self.program == Program::Harness(Harness::Codex) {
                    "-m"
                } else {
                    "--model"
                }
                .into(),
            );
            v.push(m.clone());
        }
        if self.program == Program::Harness(Harness::Codex) {
            v.push("-".into());
        }
        v
    }
}

impl Backend for CommandBackend {
    fn provider(&self) -> &str {
        match self.program {
            Program::Harness(Harness::Claude) => "claude-code",
            Program::Harness(Harness::Codex) => "codex",
            Program::Argv(_) => "command",
        }
    }

    fn offers_tools(&self) -> bool {
        false
    }

    fn has_side_effects(&self) -> bool {
        true
    }

    fn complete(&self, req: &Request, on_text: &mut dyn FnMut(&str)) -> Result<Response, LlmError> {
        let task = task_text(req);
        let dir = tempfile::tempdir()
            .map_err(|e| LlmError::new(ErrorKind::Config, format!("temp dir: {e}")))?;
        let task_file = dir.path().join("task.md");
        std::fs::write(&task_file, &task)
            .map_err(|e| LlmError::new(ErrorKind::Config, format!("writing the task file: {e}")))?;
        let argv = self.argv(&task_file);
        let mut full = death_signal_prefix();
        full.extend(argv.iter().cloned());
        let mut child = Command::new(&full[0]);
        // A group of its own: a resume (or the time limit) stops the
        // harness and everything it started.
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child
            .args(&full[1..])
            .current_dir(&self.workdir)
            .env("AGENTOPS_TASK_FILE", &task_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                LlmError::new(
                    ErrorKind::Config,
                    format!(
                        "cannot start `{}`: {e} (is it installed and on PATH?)",
                        argv[0]
                    ),
                )
            })?;
        let pgid = child.id();
        if let Some(f) = &self.children_file {
            if let Some(d) = f.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(f)
                .and_then(|mut file| writeln!(file, "{pgid}"));
        }
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let child = Arc::new(Mutex::new(child));
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let stdin_task = matches!(self.program, Program::Harness(_)).then_some(task);
        let writer = std::thread::spawn(move || {
            if let (Some(mut w), Some(t)) = (stdin, stdin_task) {
                let _ = w.write_all(t.as_bytes());
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut tail = Vec::new();
            if let Some(e) = stderr {
                for l in BufReader::new(e).lines().map_while(Result::ok) {
                    tail.push(l);
                    if tail.len() > 40 {
                        tail.remove(0);
                    }
                }
            }
            tail.join("\n")
        });
        let watchdog = {
            let (child, done, timed_out) = (child.clone(), done.clone(), timed_out.clone());
            let deadline = Instant::now() + self.timeout;
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if Instant::now() >= deadline {
                        timed_out.store(true, Ordering::Relaxed);
                        let _ = Command::new("kill")
                            .args(["-KILL", "--", &format!("-{pgid}")])
                            .stderr(Stdio::null())
                            .status();
                        if let Ok(mut c) = child.lock() {
                            let _ = c.kill();
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let mut parser = StreamParser::new(&self.program);
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                parser.line(&line, on_text);
            }
        }
        let status = child.lock().map(|mut c| c.wait()).ok().and_then(Result::ok);
        done.store(true, Ordering::Relaxed);
        if let Some(f) = &self.children_file {
            // Done: the group is no longer ours to stop.
            let _ = std::fs::read_to_string(f).map(|t| {
                let rest: String = t
                    .lines()
                    .filter(|l| l.trim() != pgid.to_string())
                    .map(|l| format!("{l}\n"))
                    .collect();
                if rest.is_empty() {
                    let _ = std::fs::remove_file(f);
                } else {
                    let _ = std::fs::write(f, rest);
                }
            });
        }
        let _ = watchdog.join();
        let _ = writer.join();
        let err_tail = err_reader.join().unwrap_or_default();
        if timed_out.load(Ordering::Relaxed) {
            return Err(LlmError::new(
                ErrorKind::Timeout,
                format!(
                    "`{}` ran longer than {:?} and was stopped",
                    argv[0], self.timeout
                ),
            ));
        }
        let code = status.and_then(|s| s.code());
        parser.finish(code, &err_tail, self.model.as_deref())
    }
}

/// Reads a harness's standard output line by line, through the stream
/// types both this backend and ingest use.
struct StreamParser {
    program: Program,
    text: String,
    result: Option<ClaudeResult>,
    usage: Usage,
    model: String,
    id: String,
    failed: Option<String>,
}

impl StreamParser {
    fn new(p: &Program) -> Self {
        Self {
            program: p.clone(),
            text: String::new(),
            result: None,
            usage: Usage::default(),
            model: String::new(),
            id: String::new(),
            failed: None,
        }
    }

    fn line(&mut self, line: &str, on_text: &mut dyn FnMut(&str)) {
        let harness = match self.program {
            Program::Argv(_) => {
                self.text.push_str(line);
                self.text.push('\n');
                on_text(line);
                return;
            }
            Program::Harness(h) => h,
        };
        match harness {
            Harness::Claude => match ClaudeLine::parse(line) {
                Ok(ClaudeLine::System(s)) => {
                    if let Some(m) = s.model {
                        self.model = m;
                    }
                    if let Some(id) = s.common.session_id {
                        self.id = id;
                    }
                }
                Ok(ClaudeLine::Assistant(a)) => {
                    for b in a.message.content.blocks() {
                        if let Block::Text { text } = b {
                            on_text(text);
                        }
                    }
                }
                Ok(ClaudeLine::Result(r)) => self.result = Some(r),
                _ => {}
            },
            Harness::Codex => match CodexEvent::parse(line) {
                Ok(CodexEvent::ThreadStarted {
                    thread_id: Some(id),
                }) => self.id = id,
                Ok(CodexEvent::ItemCompleted(CodexItem::AgentMessage { text, .. })) => {
                    on_text(&text);
                    self.text = text;
                }
                Ok(CodexEvent::TurnCompleted { usage }) => self.usage.add(&usage),
                Ok(CodexEvent::TurnFailed { message, .. } | CodexEvent::Error { message }) => {
                    self.failed = Some(message.unwrap_or_else(|| "the turn failed".into()));
                }
                _ => {}
            },
        }
    }

    fn finish(
        self,
        code: Option<i32>,
        err_tail: &str,
        model: Option<&str>,
    ) -> Result<Response, LlmError> {
        let model_name = if self.model.is_empty() {
            model.unwrap_or_default().to_owned()
        } else {
            self.model
        };
        let fail = |what: String| {
            LlmError::new(
                ErrorKind::BadRequest,
                format!(
                    "{what}{}",
                    if err_tail.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; its stderr ends with:\n{}",
                            agentops_core::redact::redact(err_tail)
                        )
                    }
                ),
            )
        };
        match self.program {
            Program::Harness(Harness::Claude) => {
                let Some(r) = self.result else {
                    return Err(fail(format!(
                        "`claude` ended (exit {}) without a `result` event",
                        code.map_or("signal".into(), |c| c.to_string())
                    )));
                };
                let model_name = r
                    .model_usage
                    .as_ref()
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or(model_name);
                let subtype = r.subtype.as_deref().unwrap_or("success");
                Ok(Response {
                    id: r.common.session_id.clone().unwrap_or(self.id),
                    model: model_name,
                    content: vec![Part::Text {
                        text: r.result.clone().unwrap_or_default(),
                    }],
                    stop_reason: if subtype == "success" {
                        "end_turn".into()
                    } else {
                        subtype.to_owned()
                    },
                    usage: r.usage(),
                    reported_cost_usd: r.total_cost_usd,
                })
            }
            Program::Harness(Harness::Codex) => {
                if let Some(f) = self.failed {
                    return Err(fail(format!("`codex exec` failed: {f}")));
                }
                if code != Some(0) && self.text.is_empty() {
                    return Err(fail(format!(
                        "`codex exec` ended (exit {}) without an answer",
                        code.map_or("signal".into(), |c| c.to_string())
                    )));
                }
                Ok(Response {
                    id: self.id,
                    model: model_name,
                    content: vec![Part::Text { text: self.text }],
                    stop_reason: "end_turn".into(),
                    usage: self.usage,
                    reported_cost_usd: None,
                })
            }
            Program::Argv(a) => {
                if code != Some(0) {
                    return Err(fail(format!(
                        "`{}` exited with {}",
                        a.first().map_or("", String::as_str),
                        code.map_or("a signal".into(), |c| format!("status {c}"))
                    )));
                }
                let text = if self.text.len() > 64 * 1024 {
                    let mut cut = self.text.len() - 64 * 1024;
                    while !self.text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    self.text[cut..].to_owned()
                } else {
                    self.text
                };
                Ok(Response {
                    id: String::new(),
                    model: model_name,
                    content: vec![Part::Text { text }],
                    stop_reason: "end_turn".into(),
                    usage: Usage::default(),
                    reported_cost_usd: None,
                })
            }
        }
    }
}
