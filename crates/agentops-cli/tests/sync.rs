//! `agentops sync` through a real bare git remote with two clones:
//! interleaved learns on both end identical (and `git fsck` clean), the
//! user's staged and unstaged work untouched; one id made on both machines
//! keeps both entries; one entry edited on both is a reported conflict
//! until `--keep`; unpushed code commits, code on the remote and an
//! unreachable remote are refused with nothing changed; a memory branch of
//! its own works beside unpushed work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use agentops_testkit::{Run, TestContext};
use serde_json::Value;

struct Team {
    remote: PathBuf,
    a: TestContext,
    b: TestContext,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_agentops")
}

/// A bare remote, clone A (which set agentops up and pushed) and clone B.
/// `memory`: a line for the `[memory]` table of A's config, committed.
fn team(memory: &str) -> Team {
    let a = TestContext::new(bin());
    // Beside A's work tree, in its temporary directory.
    let remote = a.root.parent().unwrap().join("team.git");
    a.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        remote.to_str().unwrap(),
    ]);
    a.run(&["init"]).ok();
    if !memory.is_empty() {
        let cfg = a.path(".agents/config.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = text.replacen("[memory]\n", &format!("[memory]\n{memory}\n"), 1);
        std::fs::write(&cfg, text).unwrap();
    }
    a.git(&["add", ".agents"]);
    a.git(&["commit", "-q", "-m", "agentops init"]);
    a.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    a.git(&["push", "-q", "-u", "origin", "main"]);
    let b = TestContext::empty(bin());
    b.git(&["clone", "-q", remote.to_str().unwrap(), "."]);
    Team { remote, a, b }
}

fn learn(ctx: &TestContext, title: &str) -> String {
    learn_body(ctx, title, &format!("What we found about {title}."))
}

fn learn_body(ctx: &TestContext, title: &str, body: &str) -> String {
    let r = ctx.run(&["learn", title, "--body", body, "--json"]);
    let v: Value = serde_json::from_str(r.ok()).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn sync(ctx: &TestContext, args: &[&str]) -> Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    ctx.run(&all)
}

fn ids(ctx: &TestContext) -> Vec<String> {
    let r = ctx.run(&["knowledge", "list", "--json"]);
    let v: Value = serde_json::from_str(r.ok()).unwrap();
    let list = v
        .get("entries")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = list
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

fn head(ctx: &TestContext, r: &str) -> String {
    ctx.git(&["rev-parse", r]).trim().to_owned()
}

fn fsck(dir: &Path) {
    let o = std::process::Command::new("git")
        .args(["fsck", "--strict", "--no-dangling"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git fsck in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn interleaved_learns_on_two_clones_end_identical() {
    let t = team("");
    // The user's own work in B: a staged file and an unstaged edit.
    t.b.write("notes.txt", "staged work\n");
    t.b.git(&["add", "notes.txt"]);
    t.b.write("README.md", "# test repo\nunstaged edit\n");

    let a1 = learn(&t.a, "Pin the cargo registry mirror in CI");
    let b1 = learn(&t.b, "Flaky login test waits on the mail stub");
    let r = sync(&t.a, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 memory commit published"),
        "{}",
        r.stdout
    );
    let b2 = learn(&t.b, "Deadlock in the payment worker pool");
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 commit received") && r.stdout.contains("2 memory commits published"),
        "{}",
        r.stdout
    );
    let a3 = learn(&t.a, "Use the staging bucket for screenshots");
    let r = sync(&t.a, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Again: nothing left to do.
    let r = sync(&t.a, &[]);
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);

    assert_eq!(head(&t.a, "main"), head(&t.b, "main"));
    assert_eq!(head(&t.a, "main"), head(&t.a, "origin/main"));
    let want = {
        let mut v = vec![a1.clone(), b1.clone(), b2.clone(), a3.clone()];
        v.sort();
        v
    };
    assert_eq!(ids(&t.a), want);
    assert_eq!(ids(&t.b), want);
    // Every commit after init is a memory commit with its trailer, authors kept.
    let log =
        t.b.git(&["log", "--format=%an|%s", "origin/main~4..origin/main"]);
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(
        log.lines()
            .all(|l| l.starts_with("Test Author|agentops: learn ")),
        "{log}"
    );
    // B's own work is as it was: staged file still staged, edit still unstaged.
    let status = t.b.git(&["status", "--porcelain"]);
    assert!(status.contains("A  notes.txt"), "{status}");
    assert!(status.contains(" M README.md"), "{status}");
    assert_eq!(status.lines().count(), 2, "{status}");
    // The index was refreshed: B finds A's entries.
    let r = t.b.run(&["search", "staging bucket screenshots", "--json"]);
    assert!(r.ok().contains(&a3), "{}", r.stdout);
    for d in [&t.a.root, &t.b.root, &t.remote] {
        fsck(d);
    }
}

#[test]
fn one_id_made_on_both_machines_keeps_both_entries() {
    let t = team("");
    let a = learn_body(&t.a, "Retry flaky network calls", "Back off exponentially.");
    let b = learn_body(&t.b, "Retry flaky network calls", "Cap retries at three.");
    assert_eq!(a, b, "same title, same day: the same id on both machines");
    assert_eq!(sync(&t.a, &[]).code, 0);
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let renamed = format!("{b}-2");
    assert!(
        r.stdout.contains(&format!("renamed {b} → {renamed}")),
        "{}",
        r.stdout
    );
    assert_eq!(sync(&t.a, &[]).code, 0);
    assert_eq!(ids(&t.a), vec![a.clone(), renamed.clone()]);
    assert_eq!(ids(&t.b), vec![a.clone(), renamed.clone()]);
    // The renamed file says its new id, and B's work tree has both.
    let r = t.b.run(&["knowledge", "show", &renamed, "--json"]);
    let v: Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["id"], renamed.as_str());
    assert_eq!(t.b.git(&["status", "--porcelain"]), "");
    let both = t.a.run(&["search", "retry flaky network", "--json"]);
    assert!(
        both.ok().contains(&renamed) && both.ok().contains("at three"),
        "{}",
        both.stdout
    );
    fsck(&t.b.root);
}

#[test]
fn one_entry_edited_on_both_machines_is_a_conflict_until_keep() {
    let t = team("");
    let id = learn(&t.a, "Cache the node modules between jobs");
    assert_eq!(sync(&t.a, &[]).code, 0);
    assert_eq!(sync(&t.b, &[]).code, 0);
    t.a.run(&["knowledge", "promote", &id]).ok();
    assert_eq!(sync(&t.a, &[]).code, 0);
    t.b.run(&["knowledge", "deprecate", &id]).ok();
    let before = head(&t.b, "main");
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains(&id), "{}", r.stderr);
    assert!(r.stderr.contains("--keep ours"), "{}", r.stderr);
    // Nothing changed: B's edit is still there, the remote has A's.
    assert_eq!(head(&t.b, "main"), before);
    let maturity = |ctx: &TestContext| -> String {
        let r = ctx.run(&["knowledge", "show", &id, "--json"]);
        let v: Value = serde_json::from_str(r.ok()).unwrap();
        v["maturity"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(maturity(&t.b), "deprecated");
    // Keep ours: B's edit goes over A's, and A gets it.
    let r = sync(&t.b, &["--keep", "ours"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("kept this machine's edit"),
        "{}",
        r.stdout
    );
    assert_eq!(sync(&t.a, &[]).code, 0);
    assert_eq!(maturity(&t.a), "deprecated");
    assert_eq!(head(&t.a, "main"), head(&t.b, "main"));
    // And the other way: A promotes again, B edits the body; keep theirs.
    t.a.run(&["knowledge", "promote", &id]).ok();
    assert_eq!(sync(&t.a, &[]).code, 0);
    let b_edit = t.b.run(&["knowledge", "show", &id, "--json"]);
    assert_eq!(b_edit.code, 0);
    let shown: Value = serde_json::from_str(b_edit.ok()).unwrap();
    let cfg = t.b.path(shown["path"].as_str().unwrap());
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\nA note added on B.\n")).unwrap();
    t.b.git(&["commit", "-q", "-am", "agentops: edit note"]);
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let r = sync(&t.b, &["--keep", "theirs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(maturity(&t.b), "established");
    assert_eq!(head(&t.a, "origin/main"), head(&t.b, "main"));
    fsck(&t.b.root);
}

#[test]
fn code_commits_and_unreachable_remotes_are_refused_with_nothing_changed() {
    let t = team("");
    // Unpushed code in B: sync will not publish it.
    t.b.write("src.txt", "code\n");
    t.b.git(&["add", "src.txt"]);
    t.b.git(&["commit", "-q", "-m", "wip: parser"]);
    learn(&t.b, "Parser needs a lookahead of two");
    let before = head(&t.b, "main");
    let remote_before = head(&t.a, "origin/main");
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("not memory commits"), "{}", r.stderr);
    assert!(r.stderr.contains("wip: parser"), "{}", r.stderr);
    assert!(r.stderr.contains("memory.branch"), "{}", r.stderr);
    assert_eq!(head(&t.b, "main"), before);
    let ls = t.a.git(&["ls-remote", "origin", "main"]);
    assert!(ls.starts_with(&remote_before), "{ls}");

    // Code on the remote: A pushes it; A's clone C-like pull is the user's job.
    t.a.write("lib.txt", "library\n");
    t.a.git(&["add", "lib.txt"]);
    t.a.git(&["commit", "-q", "-m", "feat: library"]);
    t.a.git(&["push", "-q", "origin", "main"]);
    let c = TestContext::empty(bin());
    c.git(&["clone", "-q", t.remote.to_str().unwrap(), "."]);
    c.git(&["reset", "-q", "--hard", "HEAD~1"]);
    learn(&c, "Library loading order matters");
    let before = head(&c, "main");
    let r = sync(&c, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("feat: library"), "{}", r.stderr);
    assert!(r.stderr.contains("git pull"), "{}", r.stderr);
    assert_eq!(head(&c, "main"), before);
    assert!(!c.path("lib.txt").exists());

    // An unreachable remote.
    c.git(&["remote", "set-url", "origin", "/nonexistent/team.git"]);
    let r = sync(&c, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("cannot reach remote `origin`"),
        "{}",
        r.stderr
    );
    assert_eq!(head(&c, "main"), before);
    // No remote at all.
    c.git(&["remote", "remove", "origin"]);
    let r = sync(&c, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no git remote `origin`"), "{}", r.stderr);
}

#[test]
fn a_memory_branch_of_its_own_syncs_beside_unpushed_work() {
    let t = team("branch = \"agentops/memory\"");
    t.a.git(&["commit", "-q", "--allow-empty", "-m", "noop"]);
    t.a.git(&["push", "-q", "origin", "main"]);
    t.b.git(&["pull", "-q"]);
    // Unpushed code on both: the memory branch does not carry it.
    t.b.write("wip.txt", "wip\n");
    t.b.git(&["add", "wip.txt"]);
    t.b.git(&["commit", "-q", "-m", "wip"]);
    let a1 = learn(&t.a, "Memory branch entry from A");
    assert_eq!(sync(&t.a, &[]).code, 0);
    // B takes the team's memory branch before its first learn.
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b1 = learn(&t.b, "Memory branch entry from B");
    let r = sync(&t.b, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sync(&t.a, &[]).code, 0);
    assert_eq!(head(&t.a, "agentops/memory"), head(&t.b, "agentops/memory"));
    let files = t.a.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        "agentops/memory",
        ".agents/learnings",
    ]);
    assert!(files.contains(&a1) && files.contains(&b1), "{files}");
    // main untouched on both; B's wip commit not on the remote.
    assert!(
        !t.a.git(&["ls-remote", "origin"])
            .contains(&head(&t.b, "main"))
    );
    assert_eq!(t.b.git(&["log", "-1", "--format=%s", "main"]).trim(), "wip");
}

fn hook(ctx: &TestContext, v: Value) -> Run {
    ctx.run_stdin(&["hook", "claude"], v.to_string().as_bytes())
}

#[test]
fn auto_sync_brings_knowledge_in_at_session_start_and_out_at_session_end() {
    let t = team("auto_sync = \"both\"");
    let a1 = learn(&t.a, "Rotate the staging TLS certificate monthly");
    assert_eq!(sync(&t.a, &[]).code, 0);
    let sid = "5f0c2d7e-1111-4a2b-9c3d-000000000001";
    let start = hook(
        &t.b,
        serde_json::json!({"session_id": sid, "cwd": t.b.root, "hook_event_name": "SessionStart",
            "source": "startup", "prompt": "rotate the staging TLS certificate"}),
    );
    assert_eq!(start.code, 0, "{}", start.stderr);
    // A's entry came in before the briefing was made, and is in it.
    assert!(ids(&t.b).contains(&a1), "{:?}", ids(&t.b));
    assert!(start.stdout.contains(&a1), "{}", start.stdout);
    let end = hook(
        &t.b,
        serde_json::json!({"session_id": sid, "cwd": t.b.root, "hook_event_name": "SessionEnd",
            "reason": "exit"}),
    );
    assert_eq!(end.code, 0, "{}", end.stderr);
    // The session's handoff went out with SessionEnd.
    assert_eq!(head(&t.b, "main"), head(&t.b, "origin/main"));
    assert_eq!(sync(&t.a, &[]).code, 0);
    let handoffs =
        t.a.git(&["ls-tree", "-r", "--name-only", "main", ".agents/handoffs"]);
    assert_eq!(handoffs.lines().count(), 1, "{handoffs}");
    fsck(&t.remote);
}
