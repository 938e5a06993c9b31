//! Running gates, and the retry contract the runner uses between attempts.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentops_core::{RunId, SpanId};
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Durability, Journal};
use serde_json::json;

use crate::{Check, CommandCheck, CouncilRule, DiffLimits};

use crate::diff::{self, Diff};
use crate::{CommandSpec, Gate, GateError, GateKind, GateResult, Severity, Verdict};

/// Lines of command output kept as evidence.
const TAIL_LINES: usize = 200;
/// Longest line kept.
const MAX_LINE: usize = 2_000;

fn failing(sev: Severity) -> Verdict {
    match sev {
        Severity::Fail => Verdict::Fail,
        Severity::Warn => Verdict::Warn,
    }
}

/// Runs `gates` against the work tree at `root` (diff against `base`;
/// default: merge-base with the default branch), recording each verdict in
/// `journal` as a `gate.verdict` span of `run`.
pub fn run_gates(
    gates: &[&Gate],
    root: &Path,
    base: Option<&str>,
    journal: Option<&Journal>,
    run: &RunId,
) -> Result<Vec<GateResult>, GateError> {
    run_gates_with(gates, &[], root, base, journal, run, None, None)
}

/// [`run_gates`] with what `judge` and `council` gates need: the judge
/// gates a council may call on (`all`) and the model configuration; each
/// verdict's span is a child of `parent` (a workflow phase) when given.
#[allow(clippy::too_many_arguments)]
pub fn run_gates_with(
    gates: &[&Gate],
    all: &[&Gate],
    root: &Path,
    base: Option<&str>,
    journal: Option<&Journal>,
    run: &RunId,
    judges: Option<&crate::JudgeEnv<'_>>,
    parent: Option<&SpanId>,
) -> Result<Vec<GateResult>, GateError> {
    let needs_diff = gates.iter().any(|g| {
        matches!(
            g.spec.kind(),
            GateKind::Scope
                | GateKind::Diff
                | GateKind::Secrets
                | GateKind::Judge
                | GateKind::Council
        )
    });
    let diff = if needs_diff {
        let base = base.map_or_else(|| diff::default_base(root), str::to_owned);
        Some(diff::collect(root, &base)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(gates.len());
    for g in gates {
        let start = Instant::now();
        let started_us = agentops_core::time::now_micros();
        let mut pending = false;
        let (verdict, summary, evidence) = match (&g.spec.check, &diff) {
            (Check::Approval, _) => {
                let (v, s, e, p) = approval_gate(g, journal, run);
                pending = p;
                (v, s, e)
            }
            (Check::Command(c), _) => command_gate(g, c, root),
            (Check::Scope { allow, deny }, Some(d)) => scope_gate(g, allow, deny, root, d),
            (Check::Diff(limits), Some(d)) => diff_gate(g, limits, d),
            (Check::Secrets { skip }, Some(d)) => secrets_gate(g, skip, d),
            (Check::Judge(j), Some(d)) => {
                let (v, s, e) = crate::judge::judge(g, j, root, &d.base, judges);
                let v = if v == Verdict::Fail {
                    failing(g.spec.severity)
                } else {
                    v
                };
                (v, s, e)
            }
            (
                Check::Council {
                    judges: names,
                    rule,
                },
                Some(d),
            ) => council_gate(
                g,
                names,
                rule.unwrap_or_default(),
                all,
                root,
                &d.base,
                judges,
            ),
            (_, None) => (
                Verdict::Fail,
                format!("internal: the {:?} gate ran without a diff", g.spec.kind()),
                json!({}),
            ),
        };
        let r = GateResult {
            name: g.name.clone(),
            kind: g.spec.kind(),
            verdict,
            summary,
            evidence,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
            pending,
        };
        if let Some(j) = journal {
            let mut e = new_event(
                run.clone(),
                body::GateVerdict {
                    gate: r.name.clone(),
                    kind: r.kind,
                    verdict: r.verdict,
                    summary: r.summary.clone(),
                    evidence: r.evidence.clone(),
                    duration_ms: r.duration_ms,
                    started_us,
                    base: diff.as_ref().map(|d| d.base.clone()),
                    pending: r.pending,
                    agent: judges.and_then(|j| j.worker.clone()),
                },
            )
            .in_span(SpanId::generate(), parent.cloned());
            e.ts = started_us;
            // Best effort: a journal that cannot be written must not turn a
            // verdict into a crash; the verdict is still returned.
            let _ = j.append(e, Durability::Configured);
        }
        out.push(r);
    }
    Ok(out)
}

fn council_gate(
    g: &Gate,
    names: &[String],
    rule: CouncilRule,
    all: &[&Gate],
    root: &Path,
    base: &str,
    env: Option<&crate::JudgeEnv<'_>>,
) -> (Verdict, String, serde_json::Value) {
    let mut votes = Vec::new();
    let mut verdicts = Vec::new();
    for name in names {
        let judge = all
            .iter()
            .find(|x| &x.name == name)
            .and_then(|x| match &x.spec.check {
                Check::Judge(j) => Some((*x, j)),
                _ => None,
            });
        let Some((j, check)) = judge else {
            votes.push(
                json!({"judge": name, "verdict": "FAIL", "summary": "not a defined judge gate"}),
            );
            verdicts.push(Verdict::Fail);
            continue;
        };
        let (v, summary, evidence) = crate::judge::judge(j, check, root, base, env);
        votes.push(json!({"judge": name, "verdict": v, "summary": summary, "score": evidence.get("score")}));
        verdicts.push(v);
    }
    let v = crate::judge::consensus(rule, &verdicts);
    let rule = rule.as_str();
    let v = if v == Verdict::Fail {
        failing(g.spec.severity)
    } else {
        v
    };
    let pass = verdicts.iter().filter(|x| **x == Verdict::Pass).count();
    (
        v,
        format!("council ({rule}): {pass} of {} judges pass", verdicts.len()),
        json!({"rule": rule, "votes": votes}),
    )
}

fn approval_gate(
    g: &Gate,
    journal: Option<&Journal>,
    run: &RunId,
) -> (Verdict, String, serde_json::Value, bool) {
    use crate::approval::{self, ApprovalState};
    let Some(j) = journal else {
        return (
            Verdict::Fail,
            "approval gates need the journal".into(),
            json!({}),
            false,
        );
    };
    let what = g
        .spec
        .description
        .clone()
        .unwrap_or_else(|| format!("gate `{}`", g.name));
    match approval::state(j, run, &g.name) {
        Ok(ApprovalState::Approved { by, reason, ts }) => (
            Verdict::Pass,
            format!(
                "approved by {by}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
            json!({"run": run, "approved": true, "by": by, "reason": reason, "ts": ts}),
            false,
        ),
        Ok(ApprovalState::Rejected { by, reason, ts }) => (
            failing(g.spec.severity),
            format!(
                "rejected by {by}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
            json!({"run": run, "approved": false, "by": by, "reason": reason, "ts": ts}),
            false,
        ),
        Ok(ApprovalState::Pending { requested_ts, .. }) => (
            Verdict::Fail,
            format!(
                "waiting for a person: agentops approve {run} --gate {} (or reject)",
                g.name
            ),
            json!({"run": run, "pending": true, "requested_ts": requested_ts, "what": what}),
            true,
        ),
        Ok(ApprovalState::None) => match approval::request(j, run, &g.name, &what) {
            Ok(()) => (
                Verdict::Fail,
                format!(
                    "approval requested ({what}): agentops approve {run} --gate {} (or reject)",
                    g.name
                ),
                json!({"run": run, "pending": true, "what": what}),
                true,
            ),
            Err(e) => (
                Verdict::Fail,
                format!("cannot record the approval request: {e}"),
                json!({}),
                false,
            ),
        },
        Err(e) => (
            Verdict::Fail,
            format!("cannot read approvals: {e}"),
            json!({}),
            false,
        ),
    }
}

fn scope_gate(
    g: &Gate,
    allowed: &[String],
    denied: &[String],
    root: &Path,
    d: &Diff,
) -> (Verdict, String, serde_json::Value) {
    let allow = crate::compile_globs(allowed);
    let deny = crate::compile_globs(denied);
    let root_c = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut offending = Vec::new();
    for f in &d.files {
        // A rename must be allowed at both ends.
        for p in std::iter::once(&f.path).chain(f.old_path.iter()) {
            let reason = if !allow.is_match(p) {
                Some("outside the allowed globs")
            } else if deny.is_match(p) {
                Some("matches a denied glob")
            } else {
                None
            };
            if let Some(r) = reason {
                offending.push(json!({"path": p, "reason": r}));
                continue;
            }
            // A symlink that points out of the repository is out of scope
            // wherever it sits.
            let full = root.join(p);
            if std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
                let target = full.canonicalize().ok();
                let inside = target.as_ref().is_some_and(|t| t.starts_with(&root_c));
                if !inside {
                    let to = std::fs::read_link(&full)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    offending.push(json!({"path": p, "reason": format!("symlink pointing outside the repository ({to})")}));
                }
            }
        }
    }
    if offending.is_empty() {
        (
            Verdict::Pass,
            format!(
                "{} changed paths, all within {}",
                d.files.len(),
                allowed.join(", ")
            ),
            json!({"checked": d.files.len(), "allow": allowed}),
        )
    } else {
        (
            failing(g.spec.severity),
            format!(
                "{} of {} out of scope",
                offending.len(),
                agentops_core::counted(d.files.len() as u64, "changed path", "changed paths")
            ),
            json!({"checked": d.files.len(), "allow": allowed, "offending": offending}),
        )
    }
}

fn diff_gate(g: &Gate, l: &DiffLimits, d: &Diff) -> (Verdict, String, serde_json::Value) {
    let files = d.files.len() as u64;
    let lines: u64 = d.files.iter().map(|f| f.added + f.deleted).sum();
    let over = |v: u64, lim: Option<u64>| lim.is_some_and(|l| v > l);
    let verdict = if over(files, l.max_files) || over(lines, l.max_lines) {
        failing(g.spec.severity)
    } else if over(files, l.warn_files) || over(lines, l.warn_lines) {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let lim = |l: Option<u64>| l.map_or_else(|| "no limit".to_owned(), |l| l.to_string());
    (
        verdict,
        format!(
            "{files} files (max {}), {lines} lines (max {})",
            lim(l.max_files),
            lim(l.max_lines)
        ),
        json!({
            "files": files, "lines": lines, "max_files": l.max_files, "max_lines": l.max_lines,
            "warn_files": l.warn_files, "warn_lines": l.warn_lines,
            "binary_files": d.files.iter().filter(|f| f.binary).count(),
        }),
    )
}

fn secrets_gate(g: &Gate, skipped: &[String], d: &Diff) -> (Verdict, String, serde_json::Value) {
    let skip = crate::compile_globs(skipped);
    let r = agentops_core::redact::builtin();
    let mut found = Vec::new();
    let mut by_file: std::collections::BTreeMap<&str, Vec<&diff::AddedLine>> = Default::default();
    for l in &d.added_lines {
        if !skip.is_match(&l.path) {
            by_file.entry(&l.path).or_default().push(l);
        }
    }
    for (path, lines) in by_file {
        // Contiguous lines are scanned together so multi-line shapes (private
        // key blocks) are found; each finding maps back to its real line.
        let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
        for f in r.findings(&text) {
            let line = lines.get(f.line.saturating_sub(1)).map_or(0, |l| l.line);
            found.push(
                json!({"rule": f.rule, "file": path, "line": line, "at": format!("{path}:{line}")}),
            );
        }
    }
    if found.is_empty() {
        (
            Verdict::Pass,
            format!("no secrets in {} added lines", d.added_lines.len()),
            json!({"scanned_lines": d.added_lines.len()}),
        )
    } else {
        (
            failing(g.spec.severity),
            format!(
                "{} in added lines",
                agentops_core::counted(found.len() as u64, "possible secret", "possible secrets")
            ),
            json!({"scanned_lines": d.added_lines.len(), "findings": found}),
        )
    }
}

struct Tail {
    lines: VecDeque<String>,
    total: u64,
}

fn command_gate(g: &Gate, c: &CommandCheck, root: &Path) -> (Verdict, String, serde_json::Value) {
    use std::os::unix::process::CommandExt;
    let dir = c
        .dir
        .as_deref()
        .map_or_else(|| root.to_path_buf(), |d| root.join(d));
    let timeout = Duration::from_secs(c.timeout_s());
    let (mut cmd, shown) = match &c.command {
        CommandSpec::Shell(s) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(s);
            (c, s.clone())
        }
        CommandSpec::Argv(v) if !v.is_empty() => {
            let mut c = Command::new(&v[0]);
            c.args(&v[1..]);
            (c, v.join(" "))
        }
        _ => return (Verdict::Fail, "no command configured".into(), json!({})),
    };
    cmd.current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                failing(g.spec.severity),
                format!("cannot start `{shown}` in {}: {e}", dir.display()),
                json!({"command": shown, "error": e.to_string()}),
            );
        }
    };
    let tail = Arc::new(Mutex::new(Tail {
        lines: VecDeque::new(),
        total: 0,
    }));
    let mut readers = Vec::new();
    let pipes: Vec<Box<dyn std::io::Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    for pipe in pipes {
        let tail = Arc::clone(&tail);
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            while r
                .read_until(b'\n', &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let mut line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                if line.len() > MAX_LINE {
                    let cut = (0..=MAX_LINE)
                        .rev()
                        .find(|&i| line.is_char_boundary(i))
                        .unwrap_or(0);
                    line.truncate(cut);
                    line.push('…');
                }
                if let Ok(mut t) = tail.lock() {
                    t.total += 1;
                    t.lines.push_back(line);
                    if t.lines.len() > TAIL_LINES {
                        t.lines.pop_front();
                    }
                }
                buf.clear();
            }
        }));
    }
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() >= timeout => {
                timed_out = true;
                // The whole process group: the shell and everything it started.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    for r in readers {
        let _ = r.join();
    }
    let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    let (lines, total) = tail
        .lock()
        .map(|t| (t.lines.iter().cloned().collect::<Vec<_>>(), t.total))
        .unwrap_or_default();
    let tail_text = agentops_core::redact::redact(&lines.join("\n")).into_owned();
    let code = status.and_then(|s| s.code());
    let ok = !timed_out && code == Some(0);
    let verdict = if ok {
        Verdict::Pass
    } else {
        failing(g.spec.severity)
    };
    let summary = if timed_out {
        format!("`{shown}` timed out after {} s", timeout.as_secs())
    } else if ok {
        format!("`{shown}` passed in {:.1} s", duration_ms / 1000.0)
    } else {
        format!(
            "`{shown}` failed with exit code {}",
            code.map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string())
        )
    };
    (
        verdict,
        summary,
        json!({
            "command": shown, "dir": dir.display().to_string(), "exit_code": code, "timed_out": timed_out,
            "duration_ms": duration_ms, "output_lines": total, "tail": tail_text,
            "tail_truncated": total > lines.len() as u64,
        }),
    )
}

/// What the runner does after a phase's gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Every gate passed (or only warned): go on.
    Proceed,
    /// A gate failed and attempts remain: run the phase again with this
    /// feedback.
    Retry { feedback: String },
    /// A gate failed on the last attempt: pause for a person.
    Escalate { feedback: String },
}

/// The failures of `results` as a message for the next attempt, at most
/// `max_tokens` tokens as counted by `count` (the runner passes its real
/// tokenizer; 1,000 is the contract). Failures come first, most important
/// evidence first; what does not fit is cut with a note.
pub fn feedback_message(
    results: &[GateResult],
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> String {
    let mut blocks = Vec::new();
    for r in results.iter().filter(|r| r.verdict == Verdict::Fail) {
        let mut b = format!("Gate `{}` ({:?}) FAILED: {}\n", r.name, r.kind, r.summary);
        let ev = &r.evidence;
        if let Some(off) = ev.get("offending").and_then(|v| v.as_array()) {
            for o in off {
                b.push_str(&format!(
                    "- {}: {}\n",
                    o["path"].as_str().unwrap_or(""),
                    o["reason"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(found) = ev.get("findings").and_then(|v| v.as_array()) {
            for f in found {
                b.push_str(&format!(
                    "- {}: looks like a secret ({}); remove it and read it from the environment\n",
                    f["at"].as_str().unwrap_or(""),
                    f["rule"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(tail) = ev
            .get("tail")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
        {
            b.push_str("Last lines of output:\n");
            b.push_str(tail);
            b.push('\n');
        }
        if let Some(reasons) = ev.get("reasons").and_then(|v| v.as_array()) {
            b.push_str("The judge's reasons:\n");
            for r in reasons {
                b.push_str(&format!("- {}\n", r.as_str().unwrap_or_default()));
            }
        }
        if let Some(votes) = ev.get("votes").and_then(|v| v.as_array()) {
            for v in votes {
                b.push_str(&format!(
                    "- {}: {}\n",
                    v["judge"].as_str().unwrap_or(""),
                    v["summary"].as_str().unwrap_or("")
                ));
            }
        }
        if r.kind == GateKind::Diff {
            b.push_str("Make the change smaller: split it, or leave unrelated edits out.\n");
        }
        blocks.push(b);
    }
    let header = "The previous attempt did not pass its gates. Fix these and try again:\n\n";
    let mut msg = String::from(header);
    for b in blocks {
        msg.push_str(&b);
        msg.push('\n');
    }
    if count(&msg) <= max_tokens {
        return msg;
    }
    // Cut from the end (command output tails are last in each block) until
    // it fits, keeping whole lines.
    let note = "\n[feedback cut to fit its token budget]\n";
    let mut lines: Vec<&str> = msg.lines().collect();
    while !lines.is_empty() {
        lines.pop();
        let candidate = format!("{}{note}", lines.join("\n"));
        if count(&candidate) <= max_tokens {
            return candidate;
        }
    }
    // Even the header does not fit: cut characters.
    let mut s: String = header.to_owned();
    while !s.is_empty() && count(&s) > max_tokens {
        s.pop();
    }
    s
}

/// The retry contract: after attempt `attempt` (1-based) of `max_attempts`,
/// given the gates' results.
pub fn escalation(
    results: &[GateResult],
    attempt: u32,
    max_attempts: u32,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Next {
    if results.iter().all(|r| r.verdict != Verdict::Fail) {
        return Next::Proceed;
    }
    let feedback = feedback_message(results, max_tokens, count);
    if attempt >= max_attempts {
        Next::Escalate { feedback }
    } else {
        Next::Retry { feedback }
    }
}
