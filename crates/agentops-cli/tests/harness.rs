//! Harness integration through the real binary: every hook fixture, the
//! settings installer, the stop-gate loop and its cap, handoffs across
//! sessions, concurrency, and stream ingest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;

use agentops_testkit::{Run, TestContext};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/fixtures")
}

fn ctx() -> TestContext {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "agentops init"]);
    ctx
}

/// A hook fixture with its paths moved into the test repository.
fn event(ctx: &TestContext, name: &str) -> String {
    let text = std::fs::read_to_string(fixtures().join("claude-code/hooks").join(name)).unwrap();
    text.replace("/home/dev/shop", ctx.root.to_str().unwrap())
}

fn hook(ctx: &TestContext, input: &str) -> Run {
    ctx.run_stdin(&["hook", "claude"], input.as_bytes())
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr))
}

fn hook_log(ctx: &TestContext) -> String {
    std::fs::read_to_string(ctx.git_dir().join("agentops/hooks.log")).unwrap_or_default()
}

fn sessions(ctx: &TestContext) -> Vec<Value> {
    let r = ctx.run(&["sessions", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    json_of(&r).as_array().unwrap().clone()
}

#[test]
fn every_hook_fixture() {
    let ctx = ctx();
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("claude-code/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The session as it happens: the prompt first, the end before the restarts.
    names.retain(|n| n != "user-prompt-submit.json");
    names.insert(0, "user-prompt-submit.json".into());
    assert!(names.len() >= 18);
    let mut replies = String::new();
    for name in &names {
        let r = hook(&ctx, &event(&ctx, name));
        replies.push_str(&format!("{name}: {}\n", r.stdout.trim_end()));
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(r.stderr, "", "{name}");
        match name.as_str() {
            "pre-tool-use-bash-dangerous.json" => {
                let v = json_of(&r);
                assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
                assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
                let why = v["hookSpecificOutput"]["permissionDecisionReason"]
                    .as_str()
                    .unwrap();
                assert!(why.contains("force-push"), "{why}");
            }
            "pre-tool-use-write-out-of-scope.json" => {
                let v = json_of(&r);
                assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
                assert!(v.to_string().contains("outside-project"));
            }
            // Handoff exists only after SessionEnd, which sorts before these.
            "session-start-compact.json"
            | "session-start-resume.json"
            | "session-start-startup.json" => {
                let v = json_of(&r);
                let text = v["hookSpecificOutput"]["additionalContext"]
                    .as_str()
                    .unwrap();
                assert!(
                    text.contains("Add rate limiting to the /login endpoint"),
                    "{text}"
                );
                assert!(text.chars().count() <= 10_000);
            }
            _ => assert_eq!(r.stdout, "", "{name} answered"),
        }
    }
    // The malformed event is logged, the unknown one journaled and ignored.
    let log = hook_log(&ctx);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("malformed event JSON"), "{log}");
    let s = sessions(&ctx);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s["id"], "7f3c2a10-5b2e-4c1e-9a57-2f0d8e6b1c44");
    assert_eq!(s["harness"], "claude");
    assert_eq!(s["tools"], 2);
    assert_eq!(s["tool_errors"], 1);
    assert_eq!(s["denied"], 2);
    assert_eq!(s["ended"], true);
    assert!(s["handoff"].is_string());
    // The text view lists the session too.
    let r = ctx.run(&["sessions"]);
    assert!(r.stdout.contains("7f3c2a10"), "{}", r.stdout);
    // What the harness and the user see, pinned.
    let settings = ctx.insta_settings_with(&[
        (r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?", "[DATE]"),
        (r"\b20\d{6}\b", "[YYYYMMDD]"),
        (r"\b20\d\d-\d\d-\d\d\b", "[DAY]"),
        (r"\b\d+s\b", "[SECONDS]"),
    ]);
    let _g = settings.bind_to_scope();
    insta::assert_snapshot!("hook_replies", replies);
    insta::assert_snapshot!("sessions_after_hooks", r.stdout);
}

#[test]
fn outside_a_project_and_bad_input_stay_out_of_the_way() {
    // Not a git repository: nothing at all.
    let bare = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    let r = bare.run_stdin(&["hook", "claude"], br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"git push --force"}}"#);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    let ctx = ctx();
    for input in [&b""[..], b"[1,2]", b"{\"hook_event_name\": 7}", b"\xff\xfe"] {
        let r = ctx.run_stdin(&["hook", "codex"], input);
        assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{input:?}");
    }
    // Oversized input (over 16 MiB) is not parsed.
    let big = format!(
        "{{\"hook_event_name\":\"PostToolUse\",\"tool_response\":\"{}\"}}",
        "x".repeat(17 << 20)
    );
    let r = ctx.run_stdin(&["hook", "claude"], big.as_bytes());
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(hook_log(&ctx).contains("input larger than"));
    // A large but acceptable event is journaled with its long strings cut.
    let mut v: Value = serde_json::from_str(&event(&ctx, "post-tool-use.json")).unwrap();
    v["tool_response"]["content"] = Value::String("y".repeat(2 << 20));
    let r = hook(&ctx, &v.to_string());
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    let db = std::fs::metadata(ctx.git_dir().join("agentops/state.db"))
        .unwrap()
        .len();
    assert!(db < 1 << 20, "journal grew to {db} bytes");
}

#[test]
fn fail_closed_denies_what_it_cannot_check() {
    let ctx = ctx();
    ctx.write(".agents/config.toml", "[policy]\nfail = \"closed\"\n");
    let r = hook(&ctx, &event(&ctx, "malformed-truncated.json"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("policy.fail"), "{}", r.stderr);
    // A well-formed, allowed call is still allowed.
    let r = hook(&ctx, &event(&ctx, "pre-tool-use-bash-benign.json"));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
}

fn denied_rule(r: &Run) -> Option<String> {
    let v: Value = serde_json::from_str(&r.stdout).ok()?;
    let d = &v["hookSpecificOutput"];
    (d["permissionDecision"] == "deny").then(|| {
        d["permissionDecisionReason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    })
}

fn force_push(ctx: &TestContext, session: &str) -> String {
    json!({
        "session_id": session, "hook_event_name": "PreToolUse", "cwd": ctx.root,
        "tool_name": "Bash", "tool_input": {"command": "git push --force origin main"},
    })
    .to_string()
}

fn benign(ctx: &TestContext, session: &str) -> String {
    json!({
        "session_id": session, "hook_event_name": "PreToolUse", "cwd": ctx.root,
        "tool_name": "Bash", "tool_input": {"command": "cargo test"},
    })
    .to_string()
}

/// `agentops hook claude` with `.git/agentops` mounted read-only in a
/// private mount namespace (root ignores permission bits); `None` where
/// this machine cannot make one.
fn hook_with_read_only_state(ctx: &TestContext, input: &str) -> Option<Run> {
    use std::io::Write;
    let dir = ctx.git_dir().join("agentops");
    let script = format!(
        "mount --bind '{d}' '{d}' && mount -o remount,ro,bind '{d}' || exit 97; touch '{d}/probe' 2>/dev/null && exit 98; exec \"$0\" hook claude",
        d = dir.display()
    );
    let mut child = ctx
        .shell_private_mounts(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    // 97: no mount here; 98: mounted but still writable (not read-only).
    if matches!(out.status.code(), Some(97 | 98) | None) {
        eprintln!(
            "SKIPPED (read-only state): cannot mount here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(out.into())
}

#[test]
fn the_builtin_policy_holds_under_every_fault() {
    // A typo in the configuration: denied, and the agent is told once.
    let ctx = ctx();
    ctx.write(".agents/config.toml", "[memory]\ncomit = \"auto\"\n");
    let r = hook(&ctx, &force_push(&ctx, "s-typo"));
    assert_eq!(r.code, 0);
    assert!(
        denied_rule(&r).unwrap().contains("force-push"),
        "{}",
        r.stdout
    );
    let msg = json_of(&r)["systemMessage"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("comit") && msg.contains("config.toml"),
        "{msg}"
    );
    let again = hook(&ctx, &force_push(&ctx, "s-typo"));
    assert!(denied_rule(&again).is_some());
    assert!(json_of(&again).get("systemMessage").is_none(), "said twice");
    // A benign call goes on, still with the notice for a new session.
    let r = hook(&ctx, &benign(&ctx, "s-typo-2"));
    assert!(denied_rule(&r).is_none(), "{}", r.stdout);
    assert!(json_of(&r)["systemMessage"].as_str().is_some());

    // The same typo with fail = "closed": still closed, and says why.
    ctx.write(
        ".agents/config.toml",
        "[memory]\ncomit = \"auto\"\n\n[policy]\nfail = \"closed\"\n",
    );
    let r = hook(&ctx, &benign(&ctx, "s-closed"));
    let why = denied_rule(&r).expect("closed stays closed");
    assert!(
        why.contains("policy.fail") && why.contains("comit"),
        "{why}"
    );
    assert!(
        denied_rule(&hook(&ctx, &force_push(&ctx, "s-closed")))
            .unwrap()
            .contains("force-push")
    );
    // Not valid TOML at all: the same.
    ctx.write(".agents/config.toml", "[policy\nfail = \"closed\"\n");
    assert!(denied_rule(&hook(&ctx, &benign(&ctx, "s-closed-2"))).is_some());
    ctx.write(".agents/config.toml", "");

    // A corrupt journal: the verdict does not change.
    let ctx = self::ctx();
    std::fs::write(
        ctx.git_dir().join("agentops/state.db"),
        b"this is not a database",
    )
    .unwrap();
    for f in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(ctx.git_dir().join("agentops").join(f));
    }
    let r = hook(&ctx, &force_push(&ctx, "s-corrupt"));
    assert!(
        denied_rule(&r).unwrap().contains("force-push"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = hook(&ctx, &benign(&ctx, "s-corrupt"));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    ctx.write(".agents/config.toml", "[policy]\nfail = \"closed\"\n");
    let r = hook(&ctx, &force_push(&ctx, "s-corrupt"));
    assert!(denied_rule(&r).unwrap().contains("force-push"));
    // Tool calls never open the journal: their events wait in the spool,
    // and the first event that opens the journal says what is wrong.
    let spooled = std::fs::read_to_string(ctx.git_dir().join("agentops/state.spool/open.log"))
        .unwrap()
        .lines()
        .count();
    assert!(spooled >= 3, "{spooled} events spooled");
    let prompt = json!({"session_id": "s-corrupt", "cwd": ctx.root, "hook_event_name": "UserPromptSubmit", "prompt": "go on"});
    let r = hook(&ctx, &prompt.to_string());
    assert_eq!(r.code, 0);
    assert!(hook_log(&ctx).contains("state.db"), "{}", hook_log(&ctx));

    // A read-only .git/agentops: the same.
    let ctx = self::ctx();
    if let Some(r) = hook_with_read_only_state(&ctx, &force_push(&ctx, "s-ro")) {
        assert!(
            denied_rule(&r).unwrap_or_default().contains("force-push"),
            "{}{}",
            r.stdout,
            r.stderr
        );
        let r = hook_with_read_only_state(&ctx, &benign(&ctx, "s-ro")).unwrap();
        assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    }
}

#[test]
fn hard_time_limit_lets_the_agent_go_on() {
    let ctx = ctx();
    ctx.write(".agents/config.toml", "[hooks]\ntimeout_ms = 300\n");
    // A transcript that is a FIFO nobody writes to: reading it blocks forever.
    let fifo = ctx.path("transcript.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let input = json!({
        "session_id": "s-timeout", "hook_event_name": "UserPromptSubmit",
        "cwd": ctx.root, "transcript_path": fifo, "prompt": "hello",
    });
    let t = std::time::Instant::now();
    let r = hook(&ctx, &input.to_string());
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    assert!(
        hook_log(&ctx).contains("timed out after 300 ms"),
        "{}",
        hook_log(&ctx)
    );
}

fn stop_ctx() -> TestContext {
    let ctx = ctx();
    ctx.write(
        ".agents/config.toml",
        "[hooks]\nstop_gates = [\"tests\"]\n\n[gates.tests]\nkind = \"command\"\ncommand = \"echo 'test login::limits ... FAILED'; test -f fixed\"\ntimeout_s = 30\n",
    );
    ctx
}

#[test]
fn stop_gate_blocks_then_caps_and_escalates() {
    let ctx = stop_ctx();
    let first = hook(&ctx, &event(&ctx, "stop.json"));
    let v = json_of(&first);
    assert_eq!(v["decision"], "block");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("Gate `tests`"), "{reason}");
    assert!(reason.contains("FAILED"), "{reason}");
    assert!(reason.contains("block 1 of 3"), "{reason}");
    // The agent keeps trying to stop with the gate still failing: without the
    // cap this would never end.
    let mut answers = Vec::new();
    for _ in 0..6 {
        let r = hook(&ctx, &event(&ctx, "stop-active.json"));
        assert_eq!(r.code, 0);
        answers.push(json_of(&r));
    }
    assert_eq!(answers[0]["decision"], "block");
    assert_eq!(answers[1]["decision"], "block");
    for a in &answers[2..] {
        assert!(a.get("decision").is_none(), "{a}");
        assert!(
            a["systemMessage"]
                .as_str()
                .unwrap()
                .contains("after 3 blocks")
        );
    }
    let s = &sessions(&ctx)[0];
    assert_eq!(s["blocked"], 3);
    assert_eq!(s["escalated"], true);
    // Once the gate passes, Stop is silent.
    ctx.write("fixed", "");
    let r = hook(&ctx, &event(&ctx, "stop.json"));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    // SubagentStop runs only its own (empty) list.
    std::fs::remove_file(ctx.path("fixed")).unwrap();
    let r = hook(&ctx, &event(&ctx, "subagent-stop.json"));
    assert_eq!(r.stdout, "");
}

#[test]
fn handoff_at_session_end_is_injected_at_the_next_session_start() {
    let ctx = ctx();
    // Nothing to hand over yet: SessionStart is silent.
    let r = hook(&ctx, &event(&ctx, "session-start-startup.json"));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    for e in [
        "user-prompt-submit.json",
        "pre-tool-use-edit.json",
        "post-tool-use.json",
        "post-tool-use-failure.json",
        "stop.json",
        "session-end.json",
    ] {
        assert_eq!(hook(&ctx, &event(&ctx, e)).code, 0, "{e}");
    }
    // The handoff is a committed memory write, and the work tree stays clean.
    let log = ctx.git(&["log", "--format=%s", "-1", "--", ".agents/handoffs"]);
    assert!(log.starts_with("agentops: learn handoff-"), "{log}");
    assert_eq!(ctx.git(&["status", "--porcelain"]), "");
    let latest = ctx.run(&["handoff", "latest"]);
    let text = latest.ok();
    for want in [
        "## Goal",
        "Add rate limiting to the /login endpoint",
        "Edit ×1",
        "Bash ×1 (1 failed)",
        "`src/auth/login.rs`",
        "Rate limiting is in place",
        "## Next step",
        "**Branch:** `main`",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    // SessionEnd right after: nothing new, no second handoff.
    hook(&ctx, &event(&ctx, "session-end.json"));
    let count = ctx
        .git(&["log", "--format=%s", "--", ".agents/handoffs"])
        .lines()
        .filter(|l| l.contains("learn handoff-"))
        .count();
    assert_eq!(count, 1);
    // Resume: the handoff comes back as additionalContext.
    let r = hook(&ctx, &event(&ctx, "session-start-resume.json"));
    let v = json_of(&r);
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SessionStart");
    let injected = v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(
        injected.contains("Add rate limiting to the /login endpoint"),
        "{injected}"
    );
    assert!(injected.contains("Rate limiting is in place"));
    // Another branch has no handoff of its own.
    ctx.git(&["checkout", "-qb", "feature/other"]);
    let r = hook(&ctx, &event(&ctx, "session-start-startup.json"));
    assert_eq!(r.stdout, "");
    assert_eq!(ctx.run(&["handoff", "latest"]).code, 1);
    assert_eq!(ctx.run(&["handoff", "latest", "--any"]).code, 0);
}

/// Writes `n` unrelated learnings as files in one commit (a repository with
/// a few hundred entries, without a few hundred processes).
fn unrelated_learnings(ctx: &TestContext, n: usize) {
    let topics = [
        "css grid layout",
        "pdf export fonts",
        "locale date formats",
        "image thumbnails",
        "csv import quoting",
    ];
    for i in 0..n {
        let topic = topics[i % topics.len()];
        let id = format!("learning-20250101-note-{i:03}");
        ctx.write(
            &format!(".agents/learnings/2025-01/{id}.md"),
            &format!(
                "---\nid: {id}\ntype: learning\ntitle: Note {i} on {topic}\ntags: []\ncreated: \"2025-01-01T00:00:00Z\"\nmaturity: provisional\n---\n\n# Note {i} on {topic}\n\nHow {topic} behaves in case {i}.\n"
            ),
        );
    }
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "notes"]);
}

fn injected(r: &Run) -> String {
    let v = json_of(r);
    v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_learning_recorded_on_main_reaches_the_first_session() {
    let ctx = ctx();
    // `init` built the index: the first session never waits for one.
    assert!(ctx.git_dir().join("agentops/index/manifest.json").is_file());
    let r = ctx.run(&[
        "learn",
        "Retry with jittered exponential backoff",
        "--body",
        "After an outage every client retried in the same second; spread retries with full jitter.",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // On main, no handoff, nothing to search with: the briefing brings it.
    let text = injected(&hook(&ctx, &event(&ctx, "session-start-startup.json")));
    assert!(
        text.contains("Retry with jittered exponential backoff"),
        "{text}"
    );
    let assembled = ctx.run(&["sessions", "--json"]);
    assert_eq!(assembled.code, 0);
}

#[test]
fn the_branchs_recent_work_finds_the_entry_among_hundreds() {
    let ctx = ctx();
    unrelated_learnings(&ctx, 300);
    let r = ctx.run(&[
        "learn",
        "Retry with jittered exponential backoff",
        "--body",
        "The payment client retried in lockstep after an outage; spread retries with full jitter.",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Newer unrelated entries push it out of a plain briefing...
    unrelated_learnings_newer(&ctx);
    // ...but the branch's commits and changed paths are about retries.
    ctx.write("src/payment/retry_backoff.rs", "pub fn backoff() {}\n");
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "payment client: retry with backoff"]);
    // A budget the fresh notes alone would fill: the entry comes first
    // because the query found it, not because a briefing had room.
    ctx.write(".agents/config.toml", "[hooks]\ninjection_budget = 400\n");
    let text = injected(&hook(&ctx, &event(&ctx, "session-start-startup.json")));
    let at = text.find("Retry with jittered exponential backoff");
    let fresh = text.find("Fresh note");
    assert!(at.is_some(), "{text}");
    assert!(fresh.is_none_or(|f| at < Some(f)), "{text}");
}

/// Ten entries fresher than anything else, none about retries.
fn unrelated_learnings_newer(ctx: &TestContext) {
    for i in 0..10 {
        let id = format!("learning-20261130-fresh-{i}");
        ctx.write(
            &format!(".agents/learnings/2026-11/{id}.md"),
            &format!(
                "---\nid: {id}\ntype: learning\ntitle: Fresh note {i} on print styles\ntags: []\ncreated: \"2099-01-01T00:00:00Z\"\nmaturity: established\n---\n\n# Fresh note {i} on print styles\n\n{}\n",
                "Print stylesheets hide the navigation. ".repeat(40)
            ),
        );
    }
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "print notes"]);
}

#[test]
fn a_session_that_only_talked_leaves_the_last_handoff_in_place() {
    let ctx = ctx();
    for e in [
        "user-prompt-submit.json",
        "pre-tool-use-edit.json",
        "post-tool-use.json",
        "stop.json",
        "session-end.json",
    ] {
        assert_eq!(hook(&ctx, &event(&ctx, e)).code, 0, "{e}");
    }
    let first = ctx.run(&["handoff", "latest"]).ok().to_owned();
    // Another session: one prompt, one answer, no tools.
    let other = |e: &str| {
        event(&ctx, e).replace(
            "7f3c2a10-5b2e-4c1e-9a57-2f0d8e6b1c44",
            "0a0a0a0a-talk-only-session",
        )
    };
    for e in ["user-prompt-submit.json", "stop.json", "session-end.json"] {
        let input = other(e);
        assert!(
            input.contains("0a0a0a0a-talk-only-session"),
            "{e} names no session to replace"
        );
        assert_eq!(hook(&ctx, &input).code, 0, "{e}");
    }
    assert_eq!(ctx.run(&["handoff", "latest"]).ok(), first.as_str());
    let handoffs = ctx
        .git(&["log", "--format=%s", "--", ".agents/handoffs"])
        .lines()
        .filter(|l| l.contains("learn handoff-"))
        .count();
    assert_eq!(handoffs, 1);
}

#[test]
fn prompts_pull_in_relevant_knowledge_once() {
    let ctx = ctx();
    for (title, body) in [
        (
            "Retry with jittered exponential backoff",
            "The payment client retried in lockstep after an outage; spread retries with full jitter.",
        ),
        (
            "CSS grid for the settings page",
            "Use grid-template-areas for the settings layout.",
        ),
    ] {
        let r = ctx.run(&["learn", title, "--body", body, "-q"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let prompt = |session: &str, text: &str| {
        let input = json!({"session_id": session, "hook_event_name": "UserPromptSubmit",
            "cwd": ctx.root, "prompt": text});
        hook(&ctx, &input.to_string())
    };
    let r = prompt("s-jit", "Add retries with backoff to the payment client");
    let text = injected(&r);
    assert!(
        text.contains("Retry with jittered exponential backoff"),
        "{text}"
    );
    assert!(!text.contains("CSS grid"), "{text}");
    // Within the per-prompt budget (~3 characters per token at most).
    assert!(text.chars().count() <= 800 * 4, "{}", text.len());
    // Already given to this session: not again.
    let again = prompt(
        "s-jit",
        "More retries with backoff for the payment client please",
    );
    assert!(!again.stdout.contains("jittered"), "{}", again.stdout);
    // Nothing relevant: nothing injected.
    assert_eq!(
        prompt("s-jit-2", "Write the release notes for version 3").stdout,
        ""
    );
    // Another session gets it again; a zero budget turns it off.
    assert!(
        injected(&prompt(
            "s-jit-3",
            "retries and backoff in the payment client"
        ))
        .contains("jittered")
    );
    ctx.write(".agents/config.toml", "[hooks]\nprompt_budget = 0\n");
    assert_eq!(
        prompt("s-jit-4", "retries and backoff in the payment client").stdout,
        ""
    );
}

#[test]
fn subagents_and_compactions_bring_their_own_knowledge() {
    let ctx = ctx();
    for (title, body) in [
        (
            "Retry with jittered exponential backoff",
            "The payment client retried in lockstep after an outage; spread retries with full jitter.",
        ),
        (
            "CSS grid for the settings page",
            "Use grid-template-areas for the settings page layout.",
        ),
    ] {
        assert_eq!(ctx.run(&["learn", title, "--body", body, "-q"]).code, 0);
    }
    let send = |v: Value| {
        let mut v = v;
        v["session_id"] = json!("s-sub");
        v["cwd"] = json!(ctx.root);
        hook(&ctx, &v.to_string())
    };
    // The subagent's task is the Task tool call's prompt.
    send(json!({"hook_event_name": "PreToolUse", "tool_name": "Task",
        "tool_input": {"description": "retries", "prompt": "Add retries with backoff to the payment client", "subagent_type": "general-purpose"}}));
    let r = send(
        json!({"hook_event_name": "SubagentStart", "agent_id": "a1", "agent_type": "general-purpose"}),
    );
    let v = json_of(&r);
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SubagentStart");
    let text = injected(&r);
    assert!(text.contains("jittered exponential backoff"), "{text}");
    assert!(!text.contains("CSS grid"), "{text}");
    // Once per session.
    let r = send(
        json!({"hook_event_name": "SubagentStart", "agent_id": "a2", "agent_type": "general-purpose"}),
    );
    assert_eq!(r.stdout, "");
    // After a compaction, its summary is the query.
    send(json!({"hook_event_name": "PostCompact", "trigger": "auto",
        "compact_summary": "We were restyling the settings page layout with CSS grid areas."}));
    let r = send(json!({"hook_event_name": "SessionStart", "source": "compact"}));
    assert!(
        injected(&r).contains("CSS grid for the settings page"),
        "{}",
        r.stdout
    );
    assert_eq!(hook_log(&ctx), "");
}

#[test]
fn feedback_over_sessions_changes_what_the_next_session_gets() {
    let ctx = ctx();
    ctx.write(
        ".agents/config.toml",
        "[hooks]\nstop_gates = [\"ok\"]\n\n[gates.ok]\nkind = \"command\"\ncommand = \"true\"\n",
    );
    let learn = |title: &str, body: &str| -> String {
        let r = ctx.run(&["learn", title, "--body", body, "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        json_of(&r)["id"].as_str().unwrap().to_owned()
    };
    // Both match the task's words; the first matches more of them, so it
    // ranks first until sessions show the second is the one that helps.
    let wordy = learn(
        "Webhook retries for the payment service",
        "The payment service logs each webhook it retries.",
    );
    let useful = learn(
        "Idempotency keys stop duplicate payment charges",
        "When a webhook arrives again, dedupe by the idempotency key before charging.",
    );
    let unrelated = learn(
        "CSS grid for the settings page",
        "Use grid-template-areas for the settings layout.",
    );
    let order =
        |text: &str| -> (Option<usize>, Option<usize>) { (text.find(&wordy), text.find(&useful)) };
    let task = "payment webhook retries charge customers twice";
    let first = injected(&hook(
        &ctx,
        &json!({"session_id": "s-fb-0", "hook_event_name": "UserPromptSubmit", "cwd": ctx.root, "prompt": task}).to_string(),
    ));
    let (w, u) = order(&first);
    assert!(w.is_some() && u.is_some() && w < u, "{first}");
    assert!(!first.contains(&unrelated));
    // Three sessions that read the useful entry and end with their gates passing.
    let path = ctx.run(&["knowledge", "show", &useful, "--json"]).stdout;
    let path = serde_json::from_str::<Value>(&path).unwrap()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 1..=3 {
        let sid = format!("s-fb-{i}");
        let r = hook(
            &ctx,
            &json!({"session_id": sid, "hook_event_name": "UserPromptSubmit", "cwd": ctx.root, "prompt": task}).to_string(),
        );
        assert!(injected(&r).contains(&useful));
        let read = json!({"session_id": sid, "hook_event_name": "PreToolUse", "cwd": ctx.root,
            "tool_name": "Bash", "tool_input": {"command": format!("cat {path}")}, "tool_use_id": format!("toolu_fb_{i}")});
        assert_eq!(hook(&ctx, &read.to_string()).code, 0);
        let stop = json!({"session_id": sid, "hook_event_name": "Stop", "cwd": ctx.root, "stop_hook_active": false});
        let r = hook(&ctx, &stop.to_string());
        assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    }
    assert_eq!(hook_log(&ctx), "");
    // Utility moved, maturity too (a memory write), and the next session
    // gets the useful entry first; the unrelated one still never comes.
    let shown: Value =
        serde_json::from_str(&ctx.run(&["knowledge", "show", &useful, "--json"]).stdout).unwrap();
    assert_eq!(shown["maturity"], "established", "{shown}");
    let log = ctx.git(&["log", "--format=%s", "-n", "20"]);
    assert!(log.contains("promote"), "{log}");
    let next = injected(&hook(
        &ctx,
        &json!({"session_id": "s-fb-next", "hook_event_name": "UserPromptSubmit", "cwd": ctx.root, "prompt": task}).to_string(),
    ));
    let (w, u) = order(&next);
    let explain = ctx.run(&["context", task, "--explain"]).stdout;
    assert!(u.is_some() && (w.is_none() || u < w), "{explain}\n{next}");
    assert!(!next.contains(&unrelated));
    // Every signal is journaled, once per entry and session.
    let layout = agentops_store::RepoLayout::discover(&ctx.root).unwrap();
    let j = agentops_store::Journal::open_read(&layout, &agentops_core::config::Config::default())
        .unwrap();
    let signals: Vec<(String, String, String)> = j
        .read(&agentops_store::Query {
            kinds: vec![agentops_core::EventKind::KnowledgeFeedback],
            ..agentops_store::Query::default()
        })
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.run_id.as_str().to_owned(),
                e.body["entry"].as_str().unwrap().to_owned(),
                e.body["signal"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for i in 1..=3 {
        let sid = format!("s-fb-{i}");
        for signal in ["retrieved", "used", "helpful"] {
            let n = signals
                .iter()
                .filter(|(r, e, s)| *r == sid && *e == useful && s == signal)
                .count();
            assert_eq!(n, 1, "{sid} {signal}: {signals:?}");
        }
        // The other entry was only shown.
        assert!(
            !signals
                .iter()
                .any(|(r, e, s)| *r == sid && *e == wordy && s != "retrieved")
        );
    }
    // The wordy entry was only retrieved: neutral, still provisional.
    let wordy_shown: Value =
        serde_json::from_str(&ctx.run(&["knowledge", "show", &wordy, "--json"]).stdout).unwrap();
    assert_eq!(wordy_shown["maturity"], "provisional");
    // A prompt that says an entry is wrong makes it harmful.
    let sid = "s-fb-harm";
    hook(
        &ctx,
        &json!({"session_id": sid, "hook_event_name": "UserPromptSubmit", "cwd": ctx.root, "prompt": task}).to_string(),
    );
    hook(
        &ctx,
        &json!({"session_id": sid, "hook_event_name": "UserPromptSubmit", "cwd": ctx.root,
            "prompt": format!("{wordy} is outdated, ignore it")})
        .to_string(),
    );
    let r = hook(
        &ctx,
        &json!({"session_id": sid, "hook_event_name": "Stop", "cwd": ctx.root, "stop_hook_active": false}).to_string(),
    );
    assert_eq!(r.code, 0);
    let feedback = ctx.run(&["feedback", &wordy, "retrieved", "--json"]);
    let utility = json_of(&feedback)["utility"].as_f64().unwrap();
    assert!(utility < 0.5, "{utility}");
}

#[test]
fn harvest_proposes_what_sessions_learned_and_never_twice() {
    let ctx = ctx();
    ctx.write(
        ".agents/config.toml",
        "[hooks]\nstop_gates = [\"fixed\"]\n\n[gates.fixed]\nkind = \"command\"\ncommand = \"test -f fixed.txt\"\n",
    );
    let sid = "s-harvest";
    let send = |v: Value| {
        let mut v = v;
        v["session_id"] = Value::String(sid.into());
        v["cwd"] = json!(ctx.root);
        let r = hook(&ctx, &v.to_string());
        assert_eq!(r.code, 0, "{}", r.stderr);
        r
    };
    send(json!({"hook_event_name": "UserPromptSubmit", "prompt": "ship the rate limiter"}));
    // Denied, then done another way.
    let r = send(json!({"hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": "git push --force origin main"}, "tool_use_id": "toolu_h1"}));
    assert!(r.stdout.contains("deny"), "{}", r.stdout);
    send(json!({"hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": "git push origin rate-limiter"}, "tool_use_id": "toolu_h2"}));
    send(
        json!({"hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "git push origin rate-limiter"}, "tool_use_id": "toolu_h2",
        "tool_response": {"stdout": "ok"}}),
    );
    // A tool error, then a success of the same tool.
    send(
        json!({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
        "tool_input": {"command": "cargo test --all-targets -p shop"}, "tool_use_id": "toolu_h3",
        "error": "error: package `shop` not found"}),
    );
    send(
        json!({"hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "cargo test --workspace"}, "tool_use_id": "toolu_h4",
        "tool_response": {"stdout": "ok"}}),
    );
    // A gate that fails, then passes after a file is written.
    let r = send(json!({"hook_event_name": "Stop", "stop_hook_active": false}));
    assert!(r.stdout.contains("block"), "{}", r.stdout);
    ctx.write("fixed.txt", "yes\n");
    send(
        json!({"hook_event_name": "PostToolUse", "tool_name": "Write",
        "tool_input": {"file_path": ctx.root.join("fixed.txt"), "content": "yes"}, "tool_use_id": "toolu_h5",
        "tool_response": {"success": true}}),
    );
    let r = send(json!({"hook_event_name": "Stop", "stop_hook_active": true,
        "last_assistant_message": "Shipped. Should the limit be per API key or per account?"}));
    assert_eq!(r.stdout, "");
    send(json!({"hook_event_name": "SessionEnd", "reason": "exit"}));
    // The handoff lists what harvest would propose.
    let handoff = ctx.run(&["handoff", "latest"]).stdout;
    assert!(handoff.contains("## Harvest candidates"), "{handoff}");
    assert!(
        handoff.contains("Open question: Should the limit be per API key or per account?"),
        "{handoff}"
    );
    let r = ctx.run(&["harvest", sid, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    let sources: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    for s in [
        "denied-then-instead",
        "error-then-success",
        "gate-fixed",
        "open-question",
    ] {
        assert!(sources.contains(&s), "{s} missing: {v}");
    }
    let text = v.to_string();
    assert!(
        text.contains("git push origin rate-limiter") && text.contains("cargo test --workspace"),
        "{text}"
    );
    assert!(text.contains("fixed.txt"), "{text}");
    // Printing changes nothing; --apply records each as a provisional learning.
    assert_eq!(
        ctx.run(&["knowledge", "list", "--type", "learning", "--json"])
            .stdout
            .matches("\"id\"")
            .count(),
        0
    );
    let r = ctx.run(&["harvest", sid, "--apply", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let writes = json_of(&r)["writes"].as_array().unwrap().len();
    assert_eq!(writes, sources.len());
    // Known now: never proposed twice.
    let again = json_of(&ctx.run(&["harvest", sid, "--json"]));
    assert_eq!(again["candidates"].as_array().unwrap().len(), 0, "{again}");
    let r = ctx.run(&["harvest", "--since", "1d"]);
    assert!(r.stdout.contains("no candidates"), "{}", r.stdout);

    // With a model: it writes the sections.
    let server = agentops_llm::scripted::ScriptedServer::start(
        agentops_llm::scripted::Script::default().rule(
            &["Proposed learning"],
            None,
            agentops_llm::scripted::Reply::text(
                "## Context\nA push was denied.\n## Solution\nPush the branch.\n## Learning\nNever force-push main.\n## Impact\nNo lost commits.",
            ),
        ),
    )
    .unwrap();
    let ctx2 = self::ctx();
    ctx2.write(
        ".agents/config.toml",
        &format!(
            "[harvest]\nbackend = \"openai:scripted-model\"\n\n[llm]\nopenai_base_url = \"{}\"\n",
            server.openai_base()
        ),
    );
    for v in [
        json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "git push --force origin main"}}),
        json!({"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_input": {"command": "git push origin topic"}, "tool_response": {}}),
    ] {
        let mut v = v;
        v["session_id"] = json!("s-harvest-model");
        v["cwd"] = json!(ctx2.root);
        hook(&ctx2, &v.to_string());
    }
    let r = ctx2.run_env(
        &["harvest", "s-harvest-model", "--json"],
        &[("OPENAI_API_KEY", "sk-test".into())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = &json_of(&r)["candidates"][0];
    assert_eq!(c["by_model"], true, "{c}");
    assert!(
        c["body"]
            .as_str()
            .unwrap()
            .contains("Never force-push main.")
    );
    // A backend that is not one names the setting.
    ctx2.write(".agents/config.toml", "[harvest]\nbackend = \"nonsense\"\n");
    let r = ctx2.run(&["harvest", "s-harvest-model"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("harvest.backend"), "{}", r.stderr);
}

#[test]
fn session_start_injects_a_packet_within_budget() {
    let ctx = ctx();
    for i in 0..30 {
        let r = ctx.run(&[
            "learn",
            &format!("Rate limiting note {i}: token bucket per client IP on login"),
            "--body",
            &format!(
                "Use a token bucket keyed by client IP for /login. {}",
                "Refill with jitter. ".repeat(60)
            ),
            "-q",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    ctx.run(&["index", "-q"]).ok();
    ctx.git(&["checkout", "-qb", "rate-limiting-login"]);
    let r = hook(&ctx, &event(&ctx, "session-start-startup.json"));
    let v = json_of(&r);
    let text = v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(text.contains("Knowledge for this work"), "{text}");
    assert!(text.contains("token bucket"), "{text}");
    // Default injection budget: 2,000 tokens (≈ 3 characters per token at most).
    assert!(text.chars().count() <= 10_000);
    assert!(
        text.chars().count() <= 2_000 * 4,
        "{}",
        text.chars().count()
    );
    // A smaller budget gives a smaller packet.
    ctx.write(".agents/config.toml", "[hooks]\ninjection_budget = 300\n");
    let small = json_of(&hook(&ctx, &event(&ctx, "session-start-startup.json")));
    let small = small["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(
        small.len() < text.len() && small.chars().count() <= 300 * 4,
        "{}",
        small.len()
    );
}

fn transcript(ctx: &TestContext, used: u64) -> PathBuf {
    let line = json!({"type": "assistant", "sessionId": "s-guard", "message": {"id": format!("msg_{used}"), "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": used, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 10}}});
    let p = ctx.path(&format!("t-{used}.jsonl"));
    std::fs::write(&p, format!("{line}\n")).unwrap();
    p
}

#[test]
fn prompt_guard_reminds_at_red_and_hands_off_at_critical() {
    let ctx = ctx();
    let prompt = |used: u64| {
        let input = json!({"session_id": "s-guard", "hook_event_name": "UserPromptSubmit", "cwd": ctx.root,
            "transcript_path": transcript(&ctx, used), "prompt": "Refactor the session store"});
        hook(&ctx, &input.to_string())
    };
    assert_eq!(prompt(20_000).stdout, "");
    let red = json_of(&prompt(100_000));
    let text = red["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(text.contains("50% full"), "{text}");
    assert!(!text.contains("handoff for the next session has been written"));
    let critical = json_of(&prompt(150_000));
    let text = critical["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(text.contains("critical"), "{text}");
    assert!(text.contains("has been written"), "{text}");
    let handoff = ctx.run(&["handoff", "latest"]);
    assert!(handoff.ok().contains("Refactor the session store"));
    // Only one handoff for this reason per session.
    let again = json_of(&prompt(160_000));
    assert!(!again.to_string().contains("has been written"));
}

const USER_SETTINGS: &str = r#"{
  "permissions": {
    "allow": [
      "Bash(npm run lint)",
      "Read(~/.zshrc)"
    ]
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "$CLAUDE_PROJECT_DIR/.claude/hooks/check.sh",
            "timeout": 30
          }
        ]
      },
      {
        "matcher": "Write|Edit",
        "hooks": [
          {
            "type": "command",
            "command": "prettier --write \"$FILE\""
          },
          {
            "type": "command",
            "command": "echo edited >> /tmp/log"
          }
        ]
      }
    ],
    "SessionStart": [
      {
        "matcher": "startup",
        "hooks": [
          {
            "type": "command",
            "command": "cat docs/welcome.md"
          }
        ]
      }
    ],
    "Notification": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify-send Claude \"$MESSAGE\""
          }
        ]
      }
    ]
  },
  "env": {
    "DISABLE_TELEMETRY": "1"
  },
  "model": "claude-sonnet-4-5"
}
"#;

#[test]
fn hooks_install_and_uninstall_leave_user_settings_byte_for_byte() {
    let ctx = ctx();
    ctx.write(".claude/settings.json", USER_SETTINGS);
    let dry = ctx.run(&["hooks", "install", "claude", "--dry-run"]);
    let diff = dry.ok();
    assert!(diff.contains("+    \"PostToolUseFailure\": ["), "{diff}");
    assert!(diff.contains("hook claude"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(ctx.path(".claude/settings.json")).unwrap(),
        USER_SETTINGS
    );
    let r = ctx.run(&["hooks", "install", "claude"]);
    assert!(
        r.ok().contains("installed agentops hooks for claude"),
        "{}",
        r.stdout
    );
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path(".claude/settings.json")).unwrap())
            .unwrap();
    for event in [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "Stop",
        "SubagentStop",
        "PreCompact",
        "SessionEnd",
    ] {
        let groups = installed["hooks"][event].as_array().unwrap();
        let ours: Vec<&Value> = groups
            .iter()
            .flat_map(|g| g["hooks"].as_array().unwrap())
            .filter(|h| h["command"].as_str().unwrap().ends_with("hook claude"))
            .collect();
        assert_eq!(ours.len(), 1, "{event}");
        assert!(ours[0]["timeout"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        installed["hooks"]["PreToolUse"].as_array().unwrap().len(),
        3
    );
    assert_eq!(installed["env"]["DISABLE_TELEMETRY"], "1");
    let twice = ctx.run(&["hooks", "install", "claude"]);
    assert!(twice.ok().contains("nothing changed"));
    let r = ctx.run(&["hooks", "uninstall", "claude"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(ctx.path(".claude/settings.json")).unwrap(),
        USER_SETTINGS
    );
    // Local and user scopes, and Codex.
    assert_eq!(
        ctx.run(&["hooks", "install", "claude", "--scope", "local"])
            .code,
        0
    );
    assert!(ctx.path(".claude/settings.local.json").is_file());
    assert_eq!(
        ctx.run(&["hooks", "install", "claude", "--scope", "user"])
            .code,
        0
    );
    assert!(ctx.home.join(".claude/settings.json").is_file());
    assert_eq!(ctx.run(&["hooks", "install", "codex"]).code, 0);
    let codex: Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path(".codex/hooks.json")).unwrap())
            .unwrap();
    assert!(
        codex["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap()
            .ends_with("hook codex")
    );
    // Codex clamps SessionEnd hooks to 3 s: installed within it.
    assert_eq!(codex["hooks"]["SessionEnd"][0]["hooks"][0]["timeout"], 3);
    assert_eq!(
        ctx.run(&["hooks", "install", "codex", "--scope", "local"])
            .code,
        2
    );
    assert_eq!(ctx.run(&["hooks", "uninstall", "codex"]).code, 0);
    assert!(!ctx.path(".codex/hooks.json").exists());
    // A settings file that is not JSON is refused, naming the line, and kept.
    ctx.write(
        ".claude/settings.json",
        "{\n  \"hooks\": {\n    \"Stop\": [,]\n  }\n}\n",
    );
    let r = ctx.run(&["hooks", "install", "claude"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("settings.json:3:"), "{}", r.stderr);
}

#[test]
fn sixteen_hooks_at_once_lose_nothing() {
    let ctx = ctx();
    let base: Value = serde_json::from_str(&event(&ctx, "post-tool-use.json")).unwrap();
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut v = base.clone();
            v["tool_use_id"] = Value::String(format!("toolu_concurrent_{i:02}"));
            let mut c = ctx
                .command(&["hook", "claude"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(v.to_string().as_bytes())
                .unwrap();
            c
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        assert!(o.stdout.is_empty() && o.stderr.is_empty());
    }
    assert_eq!(hook_log(&ctx), "");
    assert_eq!(sessions(&ctx)[0]["tools"], 16);
}

/// The span ids of the tool calls journaled for `session`.
fn journaled_tool_spans(ctx: &TestContext, session: &str) -> Vec<String> {
    let layout = agentops_store::RepoLayout::discover(&ctx.root).unwrap();
    let j = agentops_store::Journal::open_read(&layout, &agentops_core::config::Config::default())
        .unwrap();
    j.read(&agentops_store::Query {
        run_id: Some(agentops_core::RunId::parse(session).unwrap()),
        kinds: vec![agentops_core::EventKind::ToolCall],
        ..agentops_store::Query::default()
    })
    .unwrap()
    .iter()
    .filter_map(|e| e.span_id.as_ref().map(|s| s.as_str().to_owned()))
    .collect()
}

#[test]
fn a_tool_event_whose_hook_returned_survives_kill_9_of_anything_else() {
    use std::io::Write;
    use std::time::Duration;
    let ctx = ctx();
    let base: Value = serde_json::from_str(&event(&ctx, "post-tool-use.json")).unwrap();
    let session = "s-kill-9";
    let spawn = |i: usize| {
        let mut v = base.clone();
        v["session_id"] = Value::String(session.into());
        v["tool_use_id"] = Value::String(format!("toolu_kill_{i:03}"));
        let mut c = ctx
            .command(&["hook", "claude"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let _ = c.stdin.take().unwrap().write_all(v.to_string().as_bytes());
        c
    };
    let mut returned = Vec::new();
    let mut killed = 0;
    // Waves of 16 hooks at once; in each, some are killed at a different
    // instant (before, while and after they write), and a reader that
    // drains the spool is killed too.
    for wave in 0..6 {
        let kids: Vec<_> = (0..16)
            .map(|i| (wave * 16 + i, spawn(wave * 16 + i)))
            .collect();
        let mut drainer = ctx
            .command(&["sessions", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(300 * wave as u64));
        if wave % 2 == 1 {
            let _ = drainer.kill();
        }
        let _ = drainer.wait();
        for (i, mut c) in kids {
            if i % 3 == wave % 3 {
                let _ = c.kill();
                killed += 1;
            }
            let st = c.wait().unwrap();
            if st.success() {
                returned.push(format!("toolu_kill_{i:03}"));
            }
        }
    }
    assert!(killed > 0);
    let mut got = journaled_tool_spans(&ctx, session);
    let n = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), n, "a tool call was journaled twice");
    for id in &returned {
        assert!(got.contains(id), "{id} returned but is not in the journal");
    }
    assert!(got.len() >= returned.len());
    // Nothing left behind: no batch waiting, none set aside as unreadable.
    let spool = ctx.git_dir().join("agentops/state.spool");
    let left: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(hook_log(&ctx), "");
}

#[test]
fn hooks_run_while_memory_writes_commit() {
    let ctx = ctx();
    let mut learners: Vec<_> = (0..4)
        .map(|i| {
            ctx.command(&[
                "learn",
                &format!("Concurrent learning {i}"),
                "--body",
                "body",
                "-q",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let base: Value = serde_json::from_str(&event(&ctx, "post-tool-use.json")).unwrap();
    for i in 0..8 {
        let mut v = base.clone();
        v["tool_use_id"] = Value::String(format!("toolu_while_{i}"));
        assert_eq!(hook(&ctx, &v.to_string()).code, 0);
    }
    hook(&ctx, &event(&ctx, "user-prompt-submit.json"));
    let end = hook(&ctx, &event(&ctx, "session-end.json"));
    assert_eq!(end.code, 0);
    for l in &mut learners {
        assert!(l.wait().unwrap().success());
    }
    assert_eq!(hook_log(&ctx), "");
    assert_eq!(ctx.git(&["status", "--porcelain"]), "");
    let subjects = ctx.git(&["log", "--format=%s"]);
    assert_eq!(
        subjects
            .lines()
            .filter(|l| l.contains("learn learning-"))
            .count(),
        4,
        "{subjects}"
    );
    assert_eq!(
        subjects
            .lines()
            .filter(|l| l.contains("learn handoff-"))
            .count(),
        1,
        "{subjects}"
    );
    assert!(ctx.git_run(&["fsck", "--no-progress"]).code == 0);
}

#[test]
fn ingest_claude_stream_with_tokens_cost_and_no_duplicates() {
    let ctx = ctx();
    let f = fixtures().join("claude-code/stream-json/run-with-tool.jsonl");
    let r = ctx.run(&["ingest", "claude-stream", f.to_str().unwrap(), "--json"]);
    let v = json_of(&r);
    let s = &v["sessions"][0];
    assert_eq!(s["id"], "7f3c2a10-5b2e-4c1e-9a57-2f0d8e6b1c44");
    assert_eq!(s["llm_calls"], 2);
    assert_eq!(s["tool_calls"], 1);
    // Anthropic input excludes the cache; ours includes it (OTel GenAI).
    assert_eq!(s["usage"]["input_tokens"], 2311 + 12044 + 118 + 402 + 12044);
    assert_eq!(s["usage"]["cache_read_tokens"], 12044);
    assert_eq!(s["cost_usd"], 0.0571);
    assert_eq!(s["cost_source"], "reported");
    assert_eq!(v["duplicates"], 0);
    let again = json_of(&ctx.run(&["ingest", "claude-stream", f.to_str().unwrap(), "--json"]));
    assert_eq!(again["added"], 0);
    assert_eq!(again["duplicates"], v["added"]);
    let listed = sessions(&ctx);
    assert_eq!(listed[0]["usage"]["input_tokens"], 2429 + 12044 + 12446);
    assert_eq!(listed[0]["cost_usd"], 0.0571);
    assert_eq!(listed[0]["duration_s"], 18.734);
    // The max-turns run: an error session, its reported cost kept.
    let f = fixtures().join("claude-code/stream-json/run-max-turns.jsonl");
    let v = json_of(&ctx.run(&["ingest", "claude-stream", f.to_str().unwrap(), "--json"]));
    assert_eq!(v["sessions"][0]["cost_usd"], 1.9342);
    // From stdin too.
    let text =
        std::fs::read(fixtures().join("claude-code/stream-json/run-with-tool.jsonl")).unwrap();
    let r = ctx.run_stdin(&["ingest", "claude-stream", "-"], &text);
    assert!(r.ok().contains("0 events added"), "{}", r.stdout);
}

#[test]
fn ingest_codex_and_transcripts() {
    let ctx = ctx();
    let f = fixtures().join("codex/exec-json-run.jsonl");
    let v = json_of(&ctx.run(&[
        "ingest",
        "codex-exec",
        f.to_str().unwrap(),
        "--model",
        "gpt-5-codex",
        "--json",
    ]));
    let s = &v["sessions"][0];
    assert_eq!(s["id"], "0199a7c2-6f31-7d40-b5e2-3c8f1a9d0e11");
    assert_eq!(s["usage"]["input_tokens"], 24763);
    assert_eq!(s["usage"]["cache_read_tokens"], 19840);
    assert_eq!(s["tool_calls"], 2);
    let cost = s["cost_usd"].as_f64().unwrap();
    let expect = (4923.0 * 1.25 + 19840.0 * 0.125 + 1122.0 * 10.0) / 1e6;
    assert!((cost - expect).abs() < 1e-9, "{cost}");
    // Without a model the cost is unknown, and says how to fix it.
    let other = ctx.run(&[
        "ingest",
        "codex-exec",
        f.to_str().unwrap(),
        "--session",
        "codex-2",
    ]);
    assert!(other.ok().contains("pass --model"), "{}", other.stdout);
    let t = fixtures().join("claude-code/transcript-sample.jsonl");
    let v = json_of(&ctx.run(&["ingest", "claude-transcript", t.to_str().unwrap(), "--json"]));
    assert_eq!(v["sessions"][0]["llm_calls"], 2);
    assert_eq!(v["sessions"][0]["usage"]["output_tokens"], 275);
    // A broken stream is refused whole, naming file and line; nothing is written.
    let bad = ctx.path("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"type\":\"thread.started\",\"thread_id\":\"t-bad\"}\n{\"type\": \n",
    )
    .unwrap();
    let r = ctx.run(&["ingest", "codex-exec", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.jsonl:2: not valid JSON"),
        "{}",
        r.stderr
    );
    assert!(!ctx.run(&["sessions"]).stdout.contains("t-bad"));
    // A transcript skips what it cannot read.
    std::fs::write(
        &bad,
        "garbage\n{\"type\":\"user\",\"sessionId\":\"t-ok\",\"message\":{\"content\":\"hi\"}}\n",
    )
    .unwrap();
    let r = ctx.run(&["ingest", "claude-transcript", bad.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("bad.jsonl:1"), "{}", r.stderr);
}
