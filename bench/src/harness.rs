//! Issue 6 figures: hook latency, whole process, in a repository with 10,000
//! entries, beside `true` (the process-spawn floor) in the same run; and 16
//! hook processes at once.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::corpus::{Layout, Rng, entry_text, knowledge_repo};
use crate::stats::{Samples, ms, time_interleaved, time_process_input, time_process_inputs};

pub fn hook_once(bin: &Path, dir: &Path, input: &str) -> String {
    let mut c = Command::new(bin)
        .args(["hook", "claude"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("wait");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn run(quick: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let bin = crate::agentops_bin();
    let n = if quick { 2_000 } else { 10_000 };
    knowledge_repo(&repo, n, &bin, Layout::Monthly);
    let st = Command::new(&bin)
        .args(["index", "-q"])
        .current_dir(&repo)
        .status()
        .expect("index");
    assert!(st.success());
    let cwd = repo.to_str().expect("utf-8");
    // A goal in the corpus's words, so the packet has something to find.
    let (_, text) = entry_text(&mut Rng::new(42), 7);
    let goal = text
        .lines()
        .find_map(|l| l.strip_prefix("title: "))
        .unwrap_or("retry budget")
        .to_owned();
    let sid = "bench-session-0001";
    let ev = |v: serde_json::Value| v.to_string();
    let prompt = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "UserPromptSubmit", "prompt": goal}),
    );
    let pre = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": "cargo test -p shop-auth"}, "tool_use_id": "toolu_pre"}),
    );
    let deny = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": "git push --force origin main"}, "tool_use_id": "toolu_deny"}),
    );
    let edit = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": "Edit",
        "tool_input": {"file_path": format!("{cwd}/src/lib.rs"), "old_string": "a", "new_string": "b"}, "tool_use_id": "toolu_edit"}),
    );
    let post = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "PostToolUse", "tool_name": "Edit",
        "tool_input": {"file_path": format!("{cwd}/src/lib.rs")}, "tool_response": {"success": true}, "duration_ms": 9}),
    );
    let end = ev(
        json!({"session_id": sid, "cwd": cwd, "hook_event_name": "SessionEnd", "reason": "exit"}),
    );
    let start = ev(
        json!({"session_id": "bench-session-0002", "cwd": cwd, "hook_event_name": "SessionStart",
        "source": "resume", "model": "claude-sonnet-4-5"}),
    );
    // A session that leaves a handoff, so SessionStart injects handoff + packet.
    hook_once(&bin, &repo, &prompt);
    hook_once(&bin, &repo, &post);
    hook_once(&bin, &repo, &end);
    let injected = hook_once(&bin, &repo, &start);
    assert!(
        injected.contains("Handoff from the last session"),
        "{injected}"
    );
    let packet = injected.contains("Knowledge for this work");

    let runs = if quick { 30 } else { 200 };
    let b = bin.to_str().expect("utf-8");
    // This binary doing nothing: a hook event outside any repository.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let hook = [b, "hook", "claude"];
    // Interleaved: one run of each per round, so the VM's drift moves the
    // floors and the hooks alike.
    let t = time_interleaved(
        &[
            (&["true"], &repo, None),
            (&hook, &outside, Some(b"{}")),
            (&hook, &repo, Some(pre.as_bytes())),
            (&hook, &repo, Some(deny.as_bytes())),
            (&hook, &repo, Some(edit.as_bytes())),
            (&hook, &repo, Some(post.as_bytes())),
        ],
        runs,
    );
    let [floor, bin_floor, t_pre, t_deny, t_edit, t_post] =
        <[_; 6]>::try_from(t).expect("six timings");
    let t_start = time_process_input(
        &[b, "hook", "claude"],
        &repo,
        Some(start.as_bytes()),
        runs / 2,
    );
    // A prompt in a new session each time, so the JIT search injects.
    let t_prompt = time_process_inputs(
        &[b, "hook", "claude"],
        &repo,
        &|i| {
            Some(
                json!({"session_id": format!("bench-prompt-{i:04}"), "cwd": cwd,
                    "hook_event_name": "UserPromptSubmit", "prompt": goal})
                .to_string()
                .into_bytes(),
            )
        },
        runs / 2,
    );
    let jit = hook_once(
        &bin,
        &repo,
        &json!({"session_id": "bench-prompt-check", "cwd": cwd,
            "hook_event_name": "UserPromptSubmit", "prompt": goal})
        .to_string(),
    )
    .contains("additionalContext");

    // 16 hook processes at once, 10 rounds: every event journaled, no error.
    let rounds = 10;
    let t = Instant::now();
    for r in 0..rounds {
        let kids: Vec<_> = (0..16)
            .map(|i| {
                let e = ev(json!({"session_id": "bench-concurrent", "cwd": cwd, "hook_event_name": "PostToolUse",
                    "tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": format!("toolu_c{r}_{i}"),
                    "tool_response": {"success": true}}));
                let mut c = Command::new(&bin)
                    .args(["hook", "claude"])
                    .current_dir(&repo)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn");
                c.stdin.take().expect("stdin").write_all(e.as_bytes()).expect("write");
                c
            })
            .collect();
        for k in kids {
            let o = k.wait_with_output().expect("wait");
            assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty());
        }
    }
    let concurrent = t.elapsed();
    let out = Command::new(&bin)
        .args(["sessions", "--json", "--limit", "100"])
        .current_dir(&repo)
        .output()
        .expect("sessions");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let tools = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "bench-concurrent"))
        .map(|s| s["tools"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    let log = std::fs::read_to_string(repo.join(".git/agentops/hooks.log")).unwrap_or_default();

    println!(
        "## harness ({}, {n} entries)",
        if quick { "quick" } else { "full" }
    );
    println!();
    println!("| measurement (whole process) | median | p99 | target |");
    println!("|---|---|---|---|");
    println!(
        "| `true` (process-spawn floor) | {} | {} | – |",
        ms(floor.median()),
        ms(floor.pct(0.99))
    );
    let row = |name: &str, s: &Samples, target: &str| {
        println!(
            "| {name} | {} | {} | {target} |",
            ms(s.median()),
            ms(s.pct(0.99))
        );
    };
    row(
        "`agentops hook claude` outside a repository (this binary's floor)",
        &bin_floor,
        "–",
    );
    const HOT: &str = "≤ 1.5 ms · ≤ 5 ms";
    row("PreToolUse, Bash allowed", &t_pre, HOT);
    row("PreToolUse, Bash denied (force-push)", &t_deny, HOT);
    row("PreToolUse, Edit inside the project", &t_edit, HOT);
    row("PostToolUse (tool span)", &t_post, HOT);
    row(
        &format!(
            "SessionStart, handoff{} injected",
            if packet { " + packet" } else { "" }
        ),
        &t_start,
        "≤ 15 ms median",
    );
    row(
        &format!(
            "UserPromptSubmit, JIT search{}",
            if jit {
                " (entries injected)"
            } else {
                " (nothing injected)"
            }
        ),
        &t_prompt,
        "≤ 15 ms median",
    );
    println!(
        "| 16 hook processes at once × {rounds} rounds | {} per round | – | no lost event, no error |",
        ms(concurrent / rounds)
    );
    println!();
    println!(
        "concurrent: {tools} of {} tool spans journaled; hook error log: {}",
        16 * rounds,
        if log.is_empty() {
            "empty".to_owned()
        } else {
            format!("{} lines", log.lines().count())
        }
    );
    for l in log.lines().take(3) {
        println!("hook error log: {l}");
    }
    let hot = [&t_pre, &t_deny, &t_edit, &t_post];
    let ok = hot.iter().all(|s| {
        s.median() <= Duration::from_micros(1_500) && s.pct(0.99) <= Duration::from_millis(5)
    }) && t_start.median() <= Duration::from_millis(15)
        && t_prompt.median() <= Duration::from_millis(15)
        && tools == 16 * rounds as u64
        && log.is_empty();
    println!("targets met: {}", if ok { "yes" } else { "NO" });
    // For profiling: keep the repository (`BENCH_KEEP=1`).
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept: {}", repo.display());
        std::mem::forget(tmp);
    }
}
