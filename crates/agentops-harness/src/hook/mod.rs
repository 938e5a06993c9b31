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

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentops_core::config::{Config, FailMode};
use agentops_core::{NewEvent, RunId};
use agentops_gates::Gate;
use agentops_protocol::event::{self as body, HookVerdict, new_event};
use agentops_protocol::hook::{EventInput, HookEvent, HookEventInput, HookOutput, ToolKind};
use agentops_store::{Durability, Journal, RepoLayout};
use serde_json::{Value, json};

use crate::{Harness, cap_strings};

mod post_tool_use;
mod pre_tool_use;
mod session_end;
mod session_start;
mod stop;
mod user_prompt_submit;

pub use crate::commit_guard::{COMMITTING, CommitGuard};
use crate::paths::tool_command;
pub use crate::paths::{current_branch, patch_paths, relative_to, written_paths};
use post_tool_use::*;
use pre_tool_use::*;
use session_end::*;
use session_start::*;
use stop::*;
use user_prompt_submit::*;

/// Larger inputs are not parsed (a hook event is a few KiB).
pub const MAX_INPUT: usize = 16 << 20;
/// Claude Code's cap on `additionalContext`.
pub const CONTEXT_CHAR_CAP: usize = 10_000;
/// What a Codex SessionEnd hook allows itself (Codex kills it at 3 s).
const CODEX_SESSION_END_LIMIT: Duration = Duration::from_millis(2_500);
/// A memory write starts only with at least this much of the limit left, so
/// that it never has to be abandoned half-way.
const WRITE_MARGIN: Duration = Duration::from_millis(1_000);
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
    /// The raw event, for the journal.
    event: Value,
    /// What agentops reads of it, typed by event.
    input: HookEventInput,
    layout: RepoLayout,
    config: Config,
    session: RunId,
    cwd: PathBuf,
    stop_gates: Vec<Gate>,
    /// When the time limit strikes.
    deadline: Instant,
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
    let input = HookEventInput::read(inv.harness, &name, &event);
    let session = input
        .session_id
        .as_deref()
        .and_then(|s| RunId::parse(s).ok())
        .unwrap_or_else(|| {
            RunId::parse(&format!("{}-unknown-session", inv.harness))
                .unwrap_or_else(|_| RunId::generate())
        });
    let mut limit = Duration::from_millis(config.hooks.timeout_ms);
    let mut stop_gates = Vec::new();
    if let EventInput::Stop { subagent, .. } = input.data {
        let wanted = if subagent {
            &config.hooks.subagent_stop_gates
        } else {
            &config.hooks.stop_gates
        };
        if !wanted.is_empty() {
            match select_gates(&layout, wanted) {
                Ok(g) => {
                    let secs: u64 = g.iter().map(|g| g.spec.time_limit_s()).sum();
                    limit = limit.max(Duration::from_secs(secs + 5));
                    stop_gates = g;
                }
                Err(e) => log_error(Some(&layout), inv.harness, &name, &e.to_string()),
            }
        }
    }
    if matches!(input.data, EventInput::SessionStart { .. }) && config.memory.auto_sync.on(true) {
        // The sync comes first, then the briefing.
        limit += Duration::from_millis(config.memory.auto_sync_timeout_ms);
    }
    if input.data == EventInput::Checkpoint {
        // These may write a handoff (a memory write).
        limit = limit.max(Duration::from_secs(15));
        if config.memory.auto_sync.on(false) {
            limit += Duration::from_millis(config.memory.auto_sync_timeout_ms);
        }
        if inv.harness == Harness::Codex && input.event == HookEvent::SessionEnd {
            // Codex clamps SessionEnd hooks to 3 s and kills them after.
            limit = CODEX_SESSION_END_LIMIT;
        }
    }
    let closed_on_error =
        input.event == HookEvent::PreToolUse && config.policy.fail == FailMode::Closed;
    let mut ctx = Ctx {
        harness: inv.harness,
        event,
        input,
        layout: layout.clone(),
        config,
        session,
        cwd,
        stop_gates,
        deadline: started + limit,
        verdict: None,
    };
    // The policy verdict is made here, before anything that can fail or hang
    // (the journal, the time limit): whatever happens after, it holds.
    if let EventInput::PreToolUse(_) = ctx.input.data {
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
    // The events of a tool call only need keeping: they go to the spool
    // (a file write, no journal, no worker thread: a thread costs more than
    // the write).
    if let Some(spooled) = spooled(&ctx) {
        let result = spooled.and_then(|(events, reply)| {
            Journal::spool_for(&ctx.layout, &ctx.config, events)?;
            Ok(reply)
        });
        return with_notice(match result {
            Ok(Reply::Silent) => Outcome::default(),
            Ok(Reply::Json(v)) => Outcome {
                stdout: Some(v.to_string()),
                stderr: None,
                exit_code: 0,
            },
            Err(e) => {
                let e = e.to_string();
                log_error(Some(&layout), inv.harness, &name, &e);
                fallback(&e)
            }
        });
    }
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
            // Never abandon a commit half-way: give it a little longer
            // (within what the harness itself allows).
            let grace = if limit == CODEX_SESSION_END_LIMIT {
                Duration::from_millis(400)
            } else {
                Duration::from_secs(10)
            };
            rx.recv_timeout(grace).ok()
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
            let e = e.to_string();
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
    HookOutput::deny(reason).to_value()
}

fn context_reply(event: &HookEvent, text: &str) -> Value {
    HookOutput::context(event, clip_chars(text, CONTEXT_CHAR_CAP - 100)).to_value()
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

fn select_gates(
    layout: &RepoLayout,
    names: &[String],
) -> Result<Vec<Gate>, crate::error::HarnessError> {
    let all = agentops_gates::load(&layout.agents_dir())?;
    names
        .iter()
        .map(|n| {
            all.get(n)
                .cloned()
                .ok_or_else(|| crate::error::HarnessError::UnknownStopGate {
                    name: n.clone(),
                    defined: all.keys().cloned().collect(),
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

/// The `hook.received` event of this call.
fn received(ctx: &Ctx) -> NewEvent {
    let mut input = ctx.event.clone();
    cap_strings(&mut input, FIELD_CAP);
    new_event(
        ctx.session.clone(),
        body::HookReceived {
            harness: ctx.harness,
            event: ctx.input.event.to_string(),
            input,
        },
    )
}

/// For the events that are only kept, never read back (a tool call's), the
/// events to spool and the answer; `None` for the others.
fn spooled(ctx: &Ctx) -> Option<Result<(Vec<NewEvent>, Reply), crate::error::HarnessError>> {
    let mut events = Vec::new();
    let reply = match &ctx.input.data {
        EventInput::PreToolUse(_) => {
            events.push(received(ctx));
            pre_tool(ctx, &mut events)
        }
        EventInput::PostToolUse { .. } => {
            events.push(received(ctx));
            post_tool(ctx, &mut events);
            Ok(Reply::Silent)
        }
        EventInput::Other => {
            events.push(received(ctx));
            Ok(Reply::Silent)
        }
        _ => return None,
    };
    Some(reply.map(|r| (events, r)))
}

fn handle(ctx: &Ctx) -> Result<Reply, crate::error::HarnessError> {
    // Opening may migrate the journal (one transaction; a new index on a
    // large journal takes seconds): the time limit waits for it, or every
    // hook would start it again and be stopped half-way.
    let journal = {
        let _migrating = CommitGuard::enter();
        Journal::open_for(&ctx.layout, &ctx.config)?
    };
    let mut events = vec![received(ctx)];
    if matches!(ctx.input.data, EventInput::SessionStart { .. })
        && ctx.config.memory.auto_sync.on(true)
    {
        auto_sync(ctx);
    }
    let reply = match &ctx.input.data {
        EventInput::SessionStart { .. } => session_start(ctx, &journal, &mut events),
        EventInput::UserPromptSubmit { .. } => prompt_submit(ctx, &journal, &mut events),
        EventInput::Stop { .. } => stop(ctx, &journal, &mut events),
        EventInput::SubagentStart { .. } => subagent_start(ctx, &journal, &mut events),
        EventInput::Checkpoint => {
            // Journal the event first: the handoff reads the session from it.
            journal.append_batch(std::mem::take(&mut events), Durability::Configured)?;
            if ctx.input.event == HookEvent::SessionEnd {
                settle_feedback(ctx, &journal, false);
            }
            let r = write_handoff(ctx, &journal, ctx.input.event.as_str(), &mut events);
            if ctx.input.event == HookEvent::SessionEnd && ctx.config.memory.auto_sync.on(false) {
                auto_sync(ctx);
            }
            r
        }
        // Spooled before a worker starts (see `spooled`).
        EventInput::PreToolUse(_) | EventInput::PostToolUse { .. } | EventInput::Other => {
            Ok(Reply::Silent)
        }
    };
    if !events.is_empty() {
        journal.append_batch(events, Durability::Configured)?;
    }
    reply
}

/// `memory.auto_sync`: runs `agentops sync -q` in the repository and waits
/// at most `memory.auto_sync_timeout_ms` (and never past the hook's own
/// limit, less a margin for its reply). A sync still going then finishes
/// on its own; one that fails is a line in hooks.log, never the session's
/// problem.
fn auto_sync(ctx: &Ctx) {
    let bound = Duration::from_millis(ctx.config.memory.auto_sync_timeout_ms).min(
        ctx.deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_millis(500)),
    );
    let log = |m: &str| {
        log_error(
            Some(&ctx.layout),
            ctx.harness,
            ctx.input.event.as_str(),
            &format!("auto_sync: {m}"),
        )
    };
    // Its errors, kept for hooks.log (a pipe would break once the hook exits
    // while a sync goes on).
    let log_path = ctx.layout.state_dir().join("auto-sync.log");
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return log(&format!("cannot find the agentops binary: {e}")),
    };
    let child = std::process::Command::new(exe)
        .args(["sync", "-q"])
        .current_dir(&ctx.layout.work_tree)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(match std::fs::File::create(&log_path) {
            Ok(f) => std::process::Stdio::from(f),
            Err(_) => std::process::Stdio::null(),
        })
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return log(&format!("cannot start `agentops sync`: {e}")),
    };
    let until = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                    log(err.trim());
                }
                return;
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return log(&format!(
                    "still syncing after {} ms; it goes on in the background",
                    bound.as_millis()
                ));
            }
            Err(e) => return log(&e.to_string()),
        }
    }
}

/// Records `retrieved` for what this call injected (best effort: feedback
/// never costs the session its context).
fn note_retrieved(ctx: &Ctx, journal: &Journal, cited: &[String]) {
    if !ctx.config.hooks.feedback {
        return;
    }
    if let Err(e) = crate::feedback::retrieved(journal, &ctx.session, cited) {
        log_error(
            Some(&ctx.layout),
            ctx.harness,
            ctx.input.event.as_str(),
            &format!("feedback: {e}"),
        );
    }
}

/// Gives the session's knowledge its `used`/`helpful`/`harmful` signals
/// (best effort), catching the index up when a maturity moved.
fn settle_feedback(ctx: &Ctx, journal: &Journal, gates_passed: bool) {
    if !ctx.config.hooks.feedback {
        return;
    }
    let transcript = ctx
        .input
        .transcript_path
        .as_deref()
        .map(std::path::Path::new);
    match crate::feedback::settle(
        &ctx.layout,
        &ctx.config,
        journal,
        ctx.harness,
        &ctx.session,
        transcript,
        gates_passed,
    ) {
        Ok(s) if s.moved => {
            let _ = agentops_context::catchup::after_write(&ctx.layout, &ctx.config);
        }
        Ok(_) => {}
        Err(e) => log_error(
            Some(&ctx.layout),
            ctx.harness,
            ctx.input.event.as_str(),
            &format!("feedback: {e}"),
        ),
    }
}

/// A `hook.decision` of `verdict` for this hook call, the rest unset.
fn decision(ctx: &Ctx, verdict: HookVerdict) -> body::HookDecision {
    body::HookDecision {
        harness: ctx.harness,
        event: ctx.input.event.to_string(),
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
