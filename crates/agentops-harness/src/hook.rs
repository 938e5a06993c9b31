//! `agentops hook claude|codex`: one harness event on stdin, at most one
//! answer on stdout.
//!
//! The rules that keep it out of the agent's way:
//! - every event is journaled (redacted, long strings cut), grouped by the
//!   harness's session id;
//! - malformed input, an internal error or the time limit mean: exit 0, nothing
//!   on stdout, one line in `<git-common-dir>/agentops/hooks.log` — the agent
//!   goes on — unless `policy.fail = "closed"`, which denies a PreToolUse it
//!   could not check;
//! - outside a git repository or an agentops project it does nothing at all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentops_context::guard::Band;
use agentops_core::config::{Config, FailMode};
use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_gates::policy::{CommandPolicy, PolicyDecision};
use agentops_gates::{Gate, Verdict};
use agentops_protocol::event::{self as body, HookVerdict, new_event};
use agentops_store::{Durability, Journal, Query, RepoLayout};
use serde_json::{Value, json};

use crate::{Harness, cap_strings, clip, handoff};

/// Set while a memory write is committing: the time limit then waits for it,
/// so a hook never leaves a half-made commit or a stale `index.lock`.
pub static COMMITTING: AtomicBool = AtomicBool::new(false);

/// Larger inputs are not parsed (a hook event is a few KiB).
pub const MAX_INPUT: usize = 16 << 20;
/// Claude Code's cap on `additionalContext`.
pub const CONTEXT_CHAR_CAP: usize = 10_000;
/// Longest string kept in a journaled hook event.
const FIELD_CAP: usize = 4_096;

/// What the hook process does when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub exit_code: u8,
}

/// One invocation of the hook.
pub struct Invocation {
    pub harness: Harness,
    pub input: Vec<u8>,
    /// The input was longer than [`MAX_INPUT`] and was not read in full.
    pub oversized: bool,
    /// The process's working directory (used when the event has no `cwd`).
    pub cwd: PathBuf,
}

struct Ctx {
    harness: Harness,
    name: String,
    event: Value,
    layout: RepoLayout,
    config: Config,
    session: RunId,
    cwd: PathBuf,
    stop_gates: Vec<Gate>,
    /// A PreToolUse's policy verdict, made before the worker starts.
    verdict: Option<ToolVerdict>,
}

enum Reply {
    Silent,
    Json(Value),
}

/// Handles one event, within its time limit.
pub fn run(inv: Invocation) -> Outcome {
    let started = Instant::now();
    let fallback_layout = || RepoLayout::discover(&inv.cwd).ok();
    if inv.oversized {
        log_error(
            fallback_layout().as_ref(),
            inv.harness,
            "?",
            &format!("input larger than {MAX_INPUT} bytes; ignored"),
        );
        return Outcome::default();
    }
    let event: Value = match serde_json::from_slice(&inv.input) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            log_error(
                fallback_layout().as_ref(),
                inv.harness,
                "?",
                "stdin: the event is not a JSON object; ignored",
            );
            return Outcome::default();
        }
        Err(e) => {
            let layout = fallback_layout();
            log_error(
                layout.as_ref(),
                inv.harness,
                "?",
                &format!(
                    "stdin:{}:{}: malformed event JSON ({}); ignored",
                    e.line(),
                    e.column(),
                    if e.is_eof() {
                        "truncated"
                    } else {
                        "syntax error"
                    }
                ),
            );
            // Fail closed only when the policy says so; the event is unknown,
            // so the answer is the universal one: exit 2 blocks a PreToolUse.
            let closed = layout
                .as_ref()
                .is_some_and(|l| fail_mode(l) == FailMode::Closed);
            if closed {
                return Outcome {
                    stdout: None,
                    stderr: Some("agentops could not read this hook event (malformed JSON) and policy.fail = \"closed\": blocked. Try again.".into()),
                    exit_code: 2,
                };
            }
            return Outcome::default();
        }
    };
    let name = event
        .get("hook_event_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let cwd = event
        .get("cwd")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| inv.cwd.clone());
    let Ok(layout) = RepoLayout::discover(&cwd) else {
        return Outcome::default();
    };
    if !layout.agents_dir().is_dir() {
        // Not an agentops project: stay out of the way.
        return Outcome::default();
    }
    // A configuration that cannot be read never switches the policy off: the
    // built-in rules apply, `policy.fail` is read leniently, and the agent is
    // told once per session.
    let (config, config_error) =
        match agentops_store::project::load_config(Some(&layout), Vec::new()) {
            Ok(c) => (c, None),
            Err(e) => {
                let msg = e.to_string();
                log_error(Some(&layout), inv.harness, &name, &msg);
                let mut c = Config::default();
                c.policy.fail = fail_mode(&layout);
                (c, Some(msg))
            }
        };
    let session = event
        .get("session_id")
        .or_else(|| event.get("thread_id"))
        .and_then(Value::as_str)
        .and_then(|s| RunId::parse(s).ok())
        .unwrap_or_else(|| {
            RunId::parse(&format!("{}-unknown-session", inv.harness))
                .unwrap_or_else(|_| RunId::generate())
        });
    let mut limit = Duration::from_millis(config.hooks.timeout_ms);
    let mut stop_gates = Vec::new();
    if name == "Stop" || name == "SubagentStop" {
        let wanted = if name == "Stop" {
            &config.hooks.stop_gates
        } else {
            &config.hooks.subagent_stop_gates
        };
        if !wanted.is_empty() {
            match select_gates(&layout, wanted) {
                Ok(g) => {
                    let secs: u64 = g
                        .iter()
                        .map(|g| {
                            g.spec
                                .timeout_s
                                .unwrap_or(agentops_gates::DEFAULT_TIMEOUT_S)
                        })
                        .sum();
                    limit = limit.max(Duration::from_secs(secs + 5));
                    stop_gates = g;
                }
                Err(e) => log_error(Some(&layout), inv.harness, &name, &e),
            }
        }
    }
    if name == "PreCompact" || name == "SessionEnd" {
        // These may write a handoff (a memory write).
        limit = limit.max(Duration::from_secs(15));
    }
    let closed_on_error = name == "PreToolUse" && config.policy.fail == FailMode::Closed;
    let mut ctx = Ctx {
        harness: inv.harness,
        name: name.clone(),
        event,
        layout: layout.clone(),
        config,
        session,
        cwd,
        stop_gates,
        verdict: None,
    };
    // The policy verdict is made here, before anything that can fail or hang
    // (the journal, the time limit): whatever happens after, it holds.
    if name == "PreToolUse" {
        ctx.verdict = Some(pre_tool_verdict(&ctx, config_error.as_deref()));
    }
    let verdict_reply = ctx.verdict.as_ref().and_then(ToolVerdict::reply);
    let notice = config_error
        .as_deref()
        .filter(|_| first_notice(&layout, &ctx.session, "config"))
        .map(|e| {
            format!(
                "agentops: the project's configuration cannot be read, so agentops runs on its built-in defaults (the built-in policy still applies{}). Ask the user to fix it (`agentops doctor` says the same): {e}",
                if ctx.config.policy.fail == FailMode::Closed {
                    "; policy.fail = \"closed\" denies what it cannot check"
                } else {
                    ""
                }
            )
        });
    let with_notice = |o: Outcome| add_notice(o, notice.as_deref());
    let fallback = |why: &str| match &verdict_reply {
        Some(v) => Outcome {
            stdout: Some(v.to_string()),
            stderr: None,
            exit_code: 0,
        },
        None => fail_outcome(closed_on_error, why),
    };
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("agentops-hook".into())
        .spawn(move || {
            let r = handle(&ctx);
            let _ = tx.send(r);
        });
    if let Err(e) = worker {
        log_error(
            Some(&layout),
            inv.harness,
            &name,
            &format!("cannot start: {e}"),
        );
        return with_notice(fallback("could not start"));
    }
    let remaining = limit.saturating_sub(started.elapsed());
    let result = match rx.recv_timeout(remaining) {
        Ok(r) => Some(r),
        Err(mpsc::RecvTimeoutError::Timeout) if COMMITTING.load(Ordering::SeqCst) => {
            // Never abandon a commit half-way: give it a little longer.
            rx.recv_timeout(Duration::from_secs(10)).ok()
        }
        Err(_) => None,
    };
    with_notice(match result {
        Some(Ok(Reply::Silent)) => Outcome::default(),
        Some(Ok(Reply::Json(v))) => Outcome {
            stdout: Some(v.to_string()),
            stderr: None,
            exit_code: 0,
        },
        Some(Err(e)) => {
            log_error(Some(&layout), inv.harness, &name, &e);
            fallback(&e)
        }
        None => {
            let why = if started.elapsed() >= limit {
                format!(
                    "timed out after {} ms; the agent went on",
                    limit.as_millis()
                )
            } else {
                "internal error (the handler stopped unexpectedly); the agent went on".into()
            };
            log_error(Some(&layout), inv.harness, &name, &why);
            fallback(&why)
        }
    })
}

/// `policy.fail` of the project, read leniently (see
/// [`agentops_core::config::lenient_fail_mode`]).
fn fail_mode(layout: &RepoLayout) -> FailMode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    agentops_core::config::lenient_fail_mode(&agentops_core::config::LoadOptions {
        project_file: Some(layout.project_config()),
        user_file: agentops_core::config::user_config_path(&env),
        env,
        flags: Vec::new(),
    })
}

/// Adds `notice` as the reply's `systemMessage` (shown to the user, not the
/// model), keeping whatever else the reply says.
fn add_notice(mut o: Outcome, notice: Option<&str>) -> Outcome {
    let Some(notice) = notice else { return o };
    if o.exit_code != 0 {
        return o;
    }
    let mut v = o
        .stdout
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    v["systemMessage"] = Value::String(notice.to_owned());
    o.stdout = Some(v.to_string());
    o
}

/// Whether this is the first time `what` is said to `session`: a marker file
/// per session in the state directory (or the temporary directory when that
/// is not writable). Unrecorded means said again, never silence.
fn first_notice(layout: &RepoLayout, session: &RunId, what: &str) -> bool {
    let name = format!("{session}.{what}");
    let dirs = [
        layout.state_dir().join("notices"),
        std::env::temp_dir().join(format!(
            "agentops-notices-{}",
            agentops_core::ids::hex(&fnv(layout.git_dir.as_os_str().as_encoded_bytes()))
        )),
    ];
    for d in dirs {
        let p = d.join(&name);
        if p.exists() {
            return false;
        }
        if std::fs::create_dir_all(&d).is_ok()
            && std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
                .is_ok()
        {
            return true;
        }
    }
    true
}

fn fnv(bytes: &[u8]) -> [u8; 8] {
    // FNV-1a: a short stable name, not a security property.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

fn fail_outcome(closed: bool, why: &str) -> Outcome {
    if !closed {
        return Outcome::default();
    }
    Outcome {
        stdout: Some(deny(&format!(
            "agentops could not check this tool call ({why}) and the project's policy.fail = \"closed\" denies what it cannot check. Try again; if it persists, ask the user to look at .git/agentops/hooks.log."
        )).to_string()),
        stderr: None,
        exit_code: 0,
    }
}

fn deny(reason: &str) -> Value {
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    })
}

fn context_reply(event: &str, text: &str) -> Value {
    json!({
        "hookSpecificOutput": {
            "hookEventName": event,
            "additionalContext": clip_chars(text, CONTEXT_CHAR_CAP - 100),
        }
    })
}

/// At most `max` characters, cut at a line end where possible.
fn clip_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut end = s
        .char_indices()
        .nth(max - 40)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if let Some(nl) = s[..end].rfind('\n') {
        end = nl;
    }
    format!("{}\n[… cut to stay under the harness's limit]", &s[..end])
}

fn select_gates(layout: &RepoLayout, names: &[String]) -> Result<Vec<Gate>, String> {
    let all = agentops_gates::load(&layout.agents_dir()).map_err(|e| e.to_string())?;
    names
        .iter()
        .map(|n| {
            all.get(n).cloned().ok_or_else(|| {
                format!(
                    "hooks.stop_gates names `{n}`, which is not a gate; defined: {}",
                    all.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// Appends one line to the hook error log (best effort; rotated at 1 MiB).
pub fn log_error(layout: Option<&RepoLayout>, harness: Harness, event: &str, message: &str) {
    let path = error_log_path(layout);
    let Some(path) = path else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1 << 20) {
        let _ = std::fs::rename(&path, path.with_extension("log.1"));
    }
    let line = format!(
        "{} {harness} {} {}\n",
        agentops_core::time::rfc3339(agentops_core::time::now_micros()),
        if event.is_empty() { "?" } else { event },
        agentops_core::redact::builtin()
            .redact(message)
            .replace('\n', " ")
    );
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Where hook errors are logged: `<git-common-dir>/agentops/hooks.log`, or the
/// user's state directory outside a repository.
pub fn error_log_path(layout: Option<&RepoLayout>) -> Option<PathBuf> {
    if let Some(l) = layout {
        return Some(l.state_dir().join("hooks.log"));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("agentops/hooks.log"))
}

fn handle(ctx: &Ctx) -> Result<Reply, String> {
    let journal = Journal::open_for(&ctx.layout, &ctx.config).map_err(|e| e.to_string())?;
    let mut input = ctx.event.clone();
    cap_strings(&mut input, FIELD_CAP);
    let mut events = vec![new_event(
        ctx.session.clone(),
        body::HookReceived {
            harness: ctx.harness,
            event: ctx.name.clone(),
            input,
        },
    )];
    let reply = match ctx.name.as_str() {
        "SessionStart" => session_start(ctx, &journal, &mut events),
        "UserPromptSubmit" => prompt_submit(ctx, &journal, &mut events),
        "PreToolUse" => pre_tool(ctx, &mut events),
        "PostToolUse" | "PostToolUseFailure" => {
            post_tool(ctx, &mut events);
            Ok(Reply::Silent)
        }
        "Stop" | "SubagentStop" => stop(ctx, &journal, &mut events),
        "PreCompact" | "SessionEnd" => {
            // Journal the event first: the handoff reads the session from it.
            journal
                .append_batch(std::mem::take(&mut events), Durability::Configured)
                .map_err(|e| e.to_string())?;
            write_handoff(ctx, &journal, ctx.name.as_str(), &mut events)
        }
        _ => Ok(Reply::Silent),
    };
    if !events.is_empty() {
        journal
            .append_batch(events, Durability::Configured)
            .map_err(|e| e.to_string())?;
    }
    reply
}

/// The command a shell-like tool is about to run.
fn tool_command(input: &Value) -> Option<String> {
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
pub fn written_paths(tool: &str, input: &Value) -> Vec<String> {
    match tool {
        "Write" | "Edit" | "MultiEdit" => input
            .get("file_path")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        "NotebookEdit" => input
            .get("notebook_path")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        "apply_patch" => ["patch", "input", "command"]
            .iter()
            .filter_map(|k| input.get(*k).and_then(Value::as_str))
            .flat_map(patch_paths)
            .collect(),
        _ => Vec::new(),
    }
}

fn is_shell(tool: &str) -> bool {
    matches!(
        tool,
        "Bash" | "shell" | "local_shell" | "exec_command" | "unified_exec"
    )
}

/// A PreToolUse's verdict: what the policy decided, and for which tool.
#[derive(Debug, Clone)]
struct ToolVerdict {
    tool: String,
    decision: PolicyDecision,
}

impl ToolVerdict {
    /// The hook's answer: a denial, or nothing.
    fn reply(&self) -> Option<Value> {
        match &self.decision {
            PolicyDecision::Allow => None,
            PolicyDecision::Deny { reason, .. } => Some(deny(reason)),
        }
    }
}

/// The policy's verdict on a PreToolUse. Needs neither the journal nor a
/// readable configuration: with `config_error`, the built-in rules and the
/// project boundary still apply, and `policy.fail = "closed"` denies what
/// they allow (the project's own rules could not be checked).
fn pre_tool_verdict(ctx: &Ctx, config_error: Option<&str>) -> ToolVerdict {
    let tool = ctx
        .event
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let input = ctx.event.get("tool_input").cloned().unwrap_or(Value::Null);
    let mut unchecked = config_error.map(|e| format!("the configuration cannot be read: {e}"));
    let mut decision = PolicyDecision::Allow;
    if is_shell(&tool) {
        if let Some(cmd) = tool_command(&input) {
            let policy = match CommandPolicy::from_config(&ctx.config.policy) {
                Ok(p) => p,
                Err(e) => {
                    unchecked.get_or_insert(e.to_string());
                    CommandPolicy::defaults()
                }
            };
            decision = policy.check(&cmd);
        }
    } else {
        let paths = written_paths(&tool, &input);
        if !paths.is_empty() {
            let scope = match agentops_gates::policy::write_scope(&ctx.config.policy.write_scope) {
                Ok(s) => s,
                Err(e) => {
                    unchecked.get_or_insert(e);
                    Default::default()
                }
            };
            for p in paths {
                let d = agentops_gates::policy::check_write(
                    Path::new(&p),
                    &ctx.cwd,
                    &ctx.layout.work_tree,
                    &scope,
                );
                if d.is_deny() {
                    decision = d;
                    break;
                }
            }
        }
    }
    if let (PolicyDecision::Allow, Some(why)) = (&decision, unchecked)
        && ctx.config.policy.fail == FailMode::Closed
        && (is_shell(&tool) || !written_paths(&tool, &input).is_empty())
    {
        decision = PolicyDecision::Deny {
            rule: "fail-closed".into(),
            reason: format!(
                "agentops could not check this tool call ({why}) and the project's policy.fail = \"closed\" denies what it cannot check. Ask the user to fix the configuration (`agentops doctor`)."
            ),
        };
    }
    ToolVerdict { tool, decision }
}

/// A `hook.decision` of `verdict` for this hook call, the rest unset.
fn decision(ctx: &Ctx, verdict: HookVerdict) -> body::HookDecision {
    body::HookDecision {
        harness: ctx.harness,
        event: ctx.name.clone(),
        decision: verdict,
        rule: None,
        tool: None,
        reason: None,
        gates: Vec::new(),
        attempt: None,
        blocks: None,
        cap: None,
        stop_hook_active: None,
    }
}

/// Journals a PreToolUse's denial and answers it.
fn pre_tool(ctx: &Ctx, events: &mut Vec<NewEvent>) -> Result<Reply, String> {
    let Some(v) = &ctx.verdict else {
        return Ok(Reply::Silent);
    };
    match &v.decision {
        PolicyDecision::Allow => Ok(Reply::Silent),
        PolicyDecision::Deny { rule, reason } => {
            events.push(new_event(
                ctx.session.clone(),
                body::HookDecision {
                    rule: Some(rule.clone()),
                    tool: Some(v.tool.clone()),
                    reason: Some(reason.clone()),
                    ..decision(ctx, HookVerdict::Deny)
                },
            ));
            Ok(Reply::Json(deny(reason)))
        }
    }
}

fn post_tool(ctx: &Ctx, events: &mut Vec<NewEvent>) {
    let e = &ctx.event;
    let tool = e.get("tool_name").and_then(Value::as_str).unwrap_or("?");
    let input = e.get("tool_input").cloned().unwrap_or(Value::Null);
    let failed = ctx.name == "PostToolUseFailure"
        || e.pointer("/tool_response/success").and_then(Value::as_bool) == Some(false);
    let span = e
        .get("tool_use_id")
        .and_then(Value::as_str)
        .and_then(|s| SpanId::parse(s).ok())
        .unwrap_or_else(SpanId::generate);
    let mut files = written_paths(tool, &input);
    for f in &mut files {
        *f = relative_to(&ctx.layout.work_tree, &ctx.cwd, f);
    }
    let mut call = body::ToolCall {
        source: Some("hook".into()),
        harness: Some(ctx.harness),
        name: tool.to_owned(),
        is_error: failed,
        duration_ms: e.get("duration_ms").and_then(Value::as_f64),
        command: if is_shell(tool) {
            tool_command(&input).map(|c| clip(&c, 500))
        } else {
            None
        },
        files,
        ..body::ToolCall::default()
    };
    if failed {
        let err = e
            .get("error")
            .and_then(Value::as_str)
            .or_else(|| e.pointer("/tool_response/error").and_then(Value::as_str))
            .unwrap_or("failed");
        call.error = Some(clip(err, 2_000));
        call.interrupted = Some(
            e.get("is_interrupt")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
    }
    events.push(new_event(ctx.session.clone(), call).in_span(span, None));
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

fn session_start(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, String> {
    let branch = current_branch(&ctx.layout);
    let source = ctx
        .event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("startup");
    let model = ctx.event.get("model").and_then(Value::as_str);
    let injected = crate::handoff::session_context(
        &ctx.layout,
        &ctx.config,
        journal,
        branch.as_deref(),
        model,
    )?;
    events.push(new_event(
        ctx.session.clone(),
        body::ContextAssembled {
            harness: Some(ctx.harness),
            event: Some(ctx.name.clone()),
            source: Some(source.to_owned()),
            task: injected.query.clone(),
            budget: u64::from(injected.budget),
            tokens: u64::from(injected.tokens),
            cited: injected.cited.clone(),
            handoff: injected.handoff.clone(),
            chars: Some(injected.text.len()),
            index: injected.index_note.clone(),
            ..body::ContextAssembled::default()
        },
    ));
    if injected.text.is_empty() {
        return Ok(Reply::Silent);
    }
    Ok(Reply::Json(context_reply("SessionStart", &injected.text)))
}

fn prompt_submit(
    ctx: &Ctx,
    journal: &Journal,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, String> {
    let Some(path) = ctx.event.get("transcript_path").and_then(Value::as_str) else {
        return Ok(Reply::Silent);
    };
    let Ok(report) = agentops_context::guard::guard(Path::new(path), None, &ctx.config.context)
    else {
        // No transcript yet (first prompt) or unreadable: nothing to say.
        return Ok(Reply::Silent);
    };
    events.push(new_event(
        ctx.session.clone(),
        body::ContextGuard {
            harness: ctx.harness,
            used: report.used,
            window: report.window,
            percent: report.percent,
            band: report.band.as_str().to_owned(),
            model: report.model.clone(),
        },
    ));
    let pct = report.percent;
    match report.band {
        Band::Green | Band::Amber => Ok(Reply::Silent),
        Band::Red => Ok(Reply::Json(context_reply(
            "UserPromptSubmit",
            &format!(
                "agentops context guard: the context window is {pct:.0}% full (red: over 40%). Wrap up: finish the current step, commit or record what you learned (agentops learn), and avoid reading large files. A handoff will carry the state to a fresh session."
            ),
        ))),
        Band::Critical => {
            let already = journal
                .read(&Query {
                    run_id: Some(ctx.session.clone()),
                    kinds: vec![EventKind::HandoffWritten],
                    ..Query::default()
                })
                .map_err(|e| e.to_string())?
                .iter()
                .any(|e| e.body.get("trigger").and_then(Value::as_str) == Some("context-critical"));
            let mut note = String::new();
            if !already && ctx.config.hooks.handoffs {
                // The handoff reads this session from the journal: write what we have.
                journal
                    .append_batch(std::mem::take(events), Durability::Configured)
                    .map_err(|e| e.to_string())?;
                let mut more = Vec::new();
                write_handoff(ctx, journal, "context-critical", &mut more)?;
                events.extend(more);
                note =
                    " A handoff for the next session has been written to .agents/handoffs/.".into();
            }
            Ok(Reply::Json(context_reply(
                "UserPromptSubmit",
                &format!(
                    "agentops context guard: the context window is {pct:.0}% full (critical: over 60%). Stop starting new work: finish or revert the current edit, run the tests, and tell the user to continue in a fresh session (/clear or a new session picks up the handoff).{note}"
                ),
            )))
        }
    }
}

fn stop(ctx: &Ctx, journal: &Journal, events: &mut Vec<NewEvent>) -> Result<Reply, String> {
    if ctx.stop_gates.is_empty() {
        return Ok(Reply::Silent);
    }
    let prior = journal
        .read(&Query {
            run_id: Some(ctx.session.clone()),
            kinds: vec![EventKind::HookDecision],
            ..Query::default()
        })
        .map_err(|e| e.to_string())?;
    let decision_of = |e: &agentops_core::Event| {
        e.body
            .get("decision")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let blocks = prior
        .iter()
        .filter(|e| decision_of(e).as_deref() == Some("block"))
        .count() as u64;
    let escalated = prior
        .iter()
        .any(|e| decision_of(e).as_deref() == Some("escalate"));
    let active = ctx
        .event
        .get("stop_hook_active")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let selected: Vec<&Gate> = ctx.stop_gates.iter().collect();
    let results = agentops_gates::run_gates(
        &selected,
        &ctx.layout.work_tree,
        None,
        Some(journal),
        &ctx.session,
    )
    .map_err(|e| e.to_string())?;
    let failing: Vec<_> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail && !r.pending)
        .collect();
    if failing.is_empty() {
        return Ok(Reply::Silent);
    }
    let names: Vec<&str> = failing.iter().map(|r| r.name.as_str()).collect();
    let cap = ctx.config.hooks.max_stop_blocks;
    if blocks < cap {
        let tokenizer =
            agentops_context::tokens::TokenizerKind::parse(&ctx.config.context.tokenizer)
                .unwrap_or(agentops_context::tokens::TokenizerKind::O200k);
        let count = |s: &str| tokenizer.count(s) as usize;
        let feedback = agentops_gates::feedback_message(&results, 1_000, &count);
        events.push(new_event(
            ctx.session.clone(),
            body::HookDecision {
                gates: names.iter().map(|n| (*n).to_owned()).collect(),
                attempt: Some(blocks + 1),
                cap: Some(cap),
                stop_hook_active: Some(active),
                ..decision(ctx, HookVerdict::Block)
            },
        ));
        let reason = format!(
            "{feedback}\nagentops stop gate (block {} of {cap}): fix this before finishing. After {cap} blocks the session may stop and a person is asked to look.",
            blocks + 1
        );
        return Ok(Reply::Json(
            json!({ "decision": "block", "reason": reason }),
        ));
    }
    if !escalated {
        events.push(new_event(
            ctx.session.clone(),
            body::HookDecision {
                gates: names.iter().map(|n| (*n).to_owned()).collect(),
                blocks: Some(blocks),
                cap: Some(cap),
                stop_hook_active: Some(active),
                ..decision(ctx, HookVerdict::Escalate)
            },
        ));
    }
    Ok(Reply::Json(json!({
        "systemMessage": format!(
            "agentops: stop gates still failing after {blocks} blocks ({}); letting the agent stop. A person should look: `agentops sessions`, `agentops gate run {}`.",
            names.join(", "), names.join(" ")
        )
    })))
}

fn write_handoff(
    ctx: &Ctx,
    journal: &Journal,
    trigger: &str,
    events: &mut Vec<NewEvent>,
) -> Result<Reply, String> {
    if !ctx.config.hooks.handoffs {
        return Ok(Reply::Silent);
    }
    if ctx.harness == Harness::Claude
        && trigger != "context-critical"
        && let Some(t) = ctx.event.get("transcript_path").and_then(Value::as_str)
    {
        // Best effort: tokens and cost of the session from its transcript.
        let _ = crate::ingest::ingest_transcript_file(
            Path::new(t),
            journal,
            Some(ctx.session.as_str()),
        );
    }
    let written = handoff::write_for_session(
        &ctx.layout,
        &ctx.config,
        journal,
        ctx.harness,
        &ctx.session,
        trigger,
        &ctx.event,
    )?;
    if let Some(w) = written {
        events.push(new_event(
            ctx.session.clone(),
            body::HandoffWritten {
                harness: ctx.harness,
                trigger: trigger.to_owned(),
                id: w.id.clone(),
                path: w.path.clone(),
                branch: w.branch.clone(),
                commit: w.commit.clone(),
                deferred: w.deferred.clone(),
            },
        ));
    }
    Ok(Reply::Silent)
}

/// Marks a memory write in progress (see [`COMMITTING`]).
pub struct CommitGuard;

impl CommitGuard {
    pub fn enter() -> Self {
        COMMITTING.store(true, Ordering::SeqCst);
        Self
    }
}

impl Drop for CommitGuard {
    fn drop(&mut self) {
        COMMITTING.store(false, Ordering::SeqCst);
    }
}
