//! Factor I through the real binary and real git: memory writes are commits of
//! exactly one path, the user's index and files are untouched, secrets never
//! reach git, and concurrent writers lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentops_testkit::{Run, TestContext};
use pretty_assertions::assert_eq;

fn ctx() -> TestContext {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", ".agents"]);
    ctx.git(&["commit", "-q", "-m", "agentops init"]);
    ctx
}

fn learn(ctx: &TestContext, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["learn", "--json"];
    all.extend_from_slice(args);
    let r = ctx.run(&all);
    serde_json::from_str(r.ok()).unwrap()
}

fn head(ctx: &TestContext) -> String {
    ctx.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn a_memory_write_commits_one_path_and_leaves_the_users_work_alone() {
    let ctx = ctx();
    // The user's state: a staged new file, a staged edit, an unstaged edit, an untracked file.
    ctx.write("staged-new.txt", "new\n");
    ctx.write("README.md", "# test repo\nstaged edit\n");
    ctx.git(&["add", "staged-new.txt", "README.md"]);
    ctx.write("README.md", "# test repo\nstaged edit\nunstaged edit\n");
    ctx.write("untracked.txt", "mine\n");
    let status_before = ctx.git(&["status", "--porcelain"]);
    let cached_before = ctx.git(&["diff", "--cached"]);
    let worktree_diff_before = ctx.git(&["diff"]);
    let parent = head(&ctx);

    let o = learn(
        &ctx,
        &[
            "Retry flaky network tests",
            "--tag",
            "ci",
            "--context",
            "CI fails 1 in 20",
            "--solution",
            "retry(3)",
            "--session",
            "sess-42",
            "--agent",
            "fixer",
            "--run",
            "01JD4X7Q8R2M5N6P7S8T9V0W1X",
        ],
    );
    let path = o["path"].as_str().unwrap();
    assert!(
        path.starts_with(".agents/learnings/20")
            && path.contains("/learning-")
            && path.ends_with("-retry-flaky-network-tests.md"),
        "{path}"
    );
    let commit = o["commit"].as_str().unwrap();
    assert_eq!(head(&ctx), commit);

    // Exactly one path changed, in a commit whose parent is the old HEAD.
    assert_eq!(ctx.git(&["rev-parse", "HEAD^"]).trim(), parent);
    assert_eq!(
        ctx.git(&["diff-tree", "--no-commit-id", "--name-status", "-r", "HEAD"]),
        format!("A\t{path}\n")
    );
    // The user's staged, unstaged and untracked changes are exactly as they were.
    assert_eq!(ctx.git(&["status", "--porcelain"]), status_before);
    assert_eq!(ctx.git(&["diff", "--cached"]), cached_before);
    assert_eq!(ctx.git(&["diff"]), worktree_diff_before);
    assert_eq!(
        std::fs::read_to_string(ctx.path("untracked.txt")).unwrap(),
        "mine\n"
    );
    // The entry is clean: in HEAD, in the index and in the work tree alike.
    assert_eq!(ctx.git(&["status", "--porcelain", "--", path]), "");
    // Provenance in trailers.
    let msg = ctx.git(&["log", "-1", "--format=%B"]);
    let entry_id = o["id"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "agentops: learn {entry_id}\n\nRetry flaky network tests\n\nAgentops-Entry: {entry_id}\nAgentops-Run: 01JD4X7Q8R2M5N6P7S8T9V0W1X\nAgentops-Session: sess-42\nAgentops-Agent: fixer\n\n"
        )
    );
    // The file is what `knowledge show` reads back.
    let shown: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "show", entry_id, "--json"]).ok()).unwrap();
    assert_eq!(shown["title"], "Retry flaky network tests");
    assert_eq!(shown["tags"], serde_json::json!(["ci"]));
    assert_eq!(shown["maturity"], "provisional");
    assert_eq!(
        shown["source"],
        serde_json::json!({"run": "01JD4X7Q8R2M5N6P7S8T9V0W1X", "session": "sess-42", "agent": "fixer"})
    );
    assert_eq!(
        shown["body"],
        "# Retry flaky network tests\n\n## Context\n\nCI fails 1 in 20\n\n## Solution\n\nretry(3)\n"
    );
    assert_eq!(ctx.run(&["-q", "doctor"]).code, 0);
}

#[test]
fn same_title_gets_a_disambiguated_id() {
    let ctx = ctx();
    let a = learn(&ctx, &["Same title", "--body", "one"]);
    let b = learn(&ctx, &["Same title", "--body", "two"]);
    let c = learn(&ctx, &["Same title", "--body", "three"]);
    let a = a["id"].as_str().unwrap();
    assert_eq!(b["id"].as_str().unwrap(), format!("{a}-2"));
    assert_eq!(c["id"].as_str().unwrap(), format!("{a}-3"));
}

#[test]
fn secrets_never_reach_git_or_the_journal() {
    let ctx = ctx();
    let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let pw = "hunter2-correct-horse";
    learn(
        &ctx,
        &[
            "Deploy with token",
            "--body",
            &format!("export GITHUB_TOKEN={secret}\nDB_PASSWORD={pw}\n"),
            "--context",
            &format!("used {secret}"),
        ],
    );
    let everything = ctx.git(&["log", "-p", "--all", "--format=%B"]);
    assert!(
        !everything.contains(secret) && !everything.contains(pw),
        "{everything}"
    );
    assert!(everything.contains("[REDACTED:github-token]"));
    let objects = ctx.git(&["rev-list", "--all", "--objects"]);
    for line in objects.lines() {
        let id = line.split(' ').next().unwrap();
        let content = ctx.git(&["cat-file", "-p", id]);
        assert!(!content.contains(secret), "object {id} holds the secret");
    }
    let db = std::fs::read(ctx.git_dir().join("agentops/state.db")).unwrap();
    let wal = std::fs::read(ctx.git_dir().join("agentops/state.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

#[test]
fn every_write_is_journaled_with_its_commit() {
    let ctx = ctx();
    let o = learn(&ctx, &["Journal me", "--body", "x", "--session", "sess-7"]);
    let id = o["id"].as_str().unwrap().to_owned();
    let p = ctx.run(&["knowledge", "promote", &id, "--json"]);
    let promoted: serde_json::Value = serde_json::from_str(p.ok()).unwrap();
    let store = agentops_store::SqliteStore::open(
        &ctx.git_dir().join("agentops/state.db"),
        agentops_store::sqlite_open_options(false),
    )
    .unwrap();
    use agentops_store::EventLog;
    let events = store
        .read(&agentops_store::Query {
            kinds: vec![agentops_core::EventKind::KnowledgeWrite],
            ..Default::default()
        })
        .unwrap();
    let bodies: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e.run_id.to_string(),
                e.body["action"].as_str().unwrap().to_owned(),
                e.body["entry"].as_str().unwrap().to_owned(),
                e.body["commit"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        bodies,
        vec![
            (
                "sess-7".into(),
                "create".into(),
                id.clone(),
                o["commit"].as_str().unwrap().to_owned()
            ),
            (
                "manual".into(),
                "promote".into(),
                id.clone(),
                promoted["commit"].as_str().unwrap().to_owned()
            ),
        ]
    );
}

#[test]
fn works_on_an_unborn_branch() {
    let ctx = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    ctx.git(&["init", "-q", "-b", "trunk"]);
    ctx.write("staged.txt", "s\n");
    ctx.git(&["add", "staged.txt"]);
    let o = learn(&ctx, &["First ever", "--body", "root commit"]);
    assert_eq!(ctx.git(&["rev-list", "--count", "trunk"]), "1\n");
    assert_eq!(
        ctx.git(&["rev-parse", "trunk"]).trim(),
        o["commit"].as_str().unwrap()
    );
    assert_eq!(
        ctx.git(&["ls-tree", "-r", "--name-only", "HEAD"]),
        format!("{}\n", o["path"].as_str().unwrap())
    );
    // staged.txt is still staged (and only staged), the entry is clean.
    assert_eq!(ctx.git(&["status", "--porcelain"]), "A  staged.txt\n");
}

#[test]
fn merge_in_progress_and_detached_head_defer_the_commit() {
    let ctx = ctx();
    ctx.git(&["checkout", "-q", "-b", "side"]);
    ctx.write("README.md", "side\n");
    ctx.git(&["commit", "-qam", "side"]);
    ctx.git(&["checkout", "-q", "main"]);
    ctx.write("README.md", "main\n");
    ctx.git(&["commit", "-qam", "main"]);
    let merge = ctx.git_run(&["merge", "side"]);
    assert_ne!(merge.code, 0, "expected a conflict");
    let before = head(&ctx);
    let r = ctx.run(&["learn", "During a merge", "--body", "x"]);
    let text = r.ok();
    assert!(
        text.contains("not committed: a merge is in progress"),
        "{text}"
    );
    assert_eq!(head(&ctx), before);
    let listed: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "list", "--json"]).ok()).unwrap();
    assert_eq!(listed["entries"][0]["title"], "During a merge");
    ctx.git(&["merge", "--abort"]);

    ctx.git(&["checkout", "-q", "--detach", "HEAD"]);
    let o = learn(&ctx, &["While detached", "--body", "x"]);
    assert_eq!(o["commit"], serde_json::Value::Null);
    assert_eq!(o["deferred"], "HEAD is detached");
    assert_eq!(head(&ctx), before);
}

#[test]
fn memory_commit_off_writes_the_file_only() {
    let ctx = ctx();
    let before = head(&ctx);
    let r: Run = ctx
        .command(&["learn", "--json", "Not committed", "--body", "x"])
        .env("AGENTOPS_MEMORY_COMMIT", "off")
        .output()
        .unwrap()
        .into();
    let o: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(o["deferred"], "memory.commit = \"off\"");
    assert_eq!(head(&ctx), before);
    assert!(ctx.path(o["path"].as_str().unwrap()).is_file());
}

#[test]
fn memory_branch_receives_commits_without_touching_the_work_tree() {
    let ctx = ctx();
    std::fs::write(
        ctx.path(".agents/config.toml"),
        "[memory]\nbranch = \"agentops/memory\"\n",
    )
    .unwrap();
    let before = head(&ctx);
    let status_before = ctx.git(&["status", "--porcelain"]);
    let o = learn(
        &ctx,
        &[
            "On the memory branch",
            "--body",
            "kept apart",
            "--tag",
            "mem",
        ],
    );
    assert_eq!(o["branch"], "agentops/memory");
    assert_eq!(head(&ctx), before);
    assert_eq!(ctx.git(&["status", "--porcelain"]), status_before);
    let path = o["path"].as_str().unwrap();
    assert!(!ctx.path(path).exists());
    assert_eq!(
        ctx.git(&["rev-parse", "agentops/memory"]).trim(),
        o["commit"].as_str().unwrap()
    );
    // Reads see the branch.
    let id = o["id"].as_str().unwrap();
    let listed: serde_json::Value = serde_json::from_str(
        ctx.run(&["knowledge", "list", "--tag", "mem", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(listed["entries"][0]["id"], id);
    let p: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "promote", id, "--json"]).ok()).unwrap();
    assert_eq!(p["branch"], "agentops/memory");
    let hist: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "history", id, "--json"]).ok()).unwrap();
    assert_eq!(hist.as_array().unwrap().len(), 2);
    // A second write builds on the branch.
    learn(&ctx, &["Second on the branch", "--body", "y"]);
    // The branch started from HEAD (2 commits) and holds the 3 memory writes.
    assert_eq!(ctx.git(&["rev-list", "--count", "agentops/memory"]), "5\n");
    ctx.git(&["merge-base", "--is-ancestor", &before, "agentops/memory"]);
}

#[test]
fn hand_written_files_are_read_and_never_rewritten() {
    let ctx = ctx();
    let plain = "Some notes first.\n\n# Prefer small PRs\n\nReview is faster.\n";
    let partial = "---\ntags: [review]\nowner: alice\n---\n# Two reviewers for schema changes\n";
    ctx.write(".agents/patterns/small-prs.md", plain);
    ctx.write(".agents/decisions/two-reviewers.md", partial);
    ctx.write(".agents/learnings/README.md", "# About this folder\n");
    let listed: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "list", "--json"]).ok()).unwrap();
    let mut got: Vec<(String, String, String)> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
                e["title"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "small-prs".into(),
                "pattern".into(),
                "Prefer small PRs".into()
            ),
            (
                "two-reviewers".into(),
                "decision".into(),
                "Two reviewers for schema changes".into()
            ),
        ]
    );
    ctx.run(&["knowledge", "show", "small-prs"]).ok();
    ctx.run(&["knowledge", "history"]).ok();
    assert_eq!(
        std::fs::read_to_string(ctx.path(".agents/patterns/small-prs.md")).unwrap(),
        plain
    );
    assert_eq!(
        std::fs::read_to_string(ctx.path(".agents/decisions/two-reviewers.md")).unwrap(),
        partial
    );
    // Asked to: only the maturity line is added; unknown fields survive.
    ctx.run(&["knowledge", "promote", "two-reviewers"]).ok();
    assert_eq!(
        std::fs::read_to_string(ctx.path(".agents/decisions/two-reviewers.md")).unwrap(),
        "---\ntags: [review]\nowner: alice\nmaturity: established\n---\n# Two reviewers for schema changes\n"
    );
    ctx.run(&["knowledge", "deprecate", "small-prs"]).ok();
    let shown: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "show", "small-prs", "--json"]).ok()).unwrap();
    assert_eq!(shown["maturity"], "deprecated");
    assert_eq!(shown["title"], "Prefer small PRs");
    let r = ctx.run(&["knowledge", "deprecate", "small-prs"]);
    assert!(r.ok().contains("already deprecated; nothing changed"));
}

#[test]
fn broken_front_matter_is_skipped_with_file_line_and_field() {
    let ctx = ctx();
    learn(&ctx, &["A good entry", "--body", "fine"]);
    ctx.write(
        ".agents/learnings/broken.md",
        "---\ntitle: Broken\nmaturity: golden\n---\nbody\n",
    );
    let r = ctx.run(&["knowledge", "list"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("A good entry"));
    assert_eq!(
        r.stderr,
        "warning: .agents/learnings/broken.md:3: field `maturity`: unknown maturity `golden`; allowed: provisional, established, deprecated (skipped)\n"
    );
    let r = ctx.run(&["knowledge", "show", "broken"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: .agents/learnings/broken.md:3: field `maturity`"),
        "{}",
        r.stderr
    );
}

#[test]
fn ids_and_tags_cannot_escape_agents() {
    let ctx = ctx();
    for args in [
        vec!["learn", "t", "--body", "x", "--tag", "../../etc"],
        vec!["learn", "t", "--body", "x", "--tag", "a/b"],
        vec!["learn", "t", "--body", "x", "--supersedes", "../x"],
        vec!["learn", "t", "--body", "x", "--type", "../learning"],
        vec!["knowledge", "show", "../../etc/passwd"],
        vec!["knowledge", "promote", "/etc/passwd"],
    ] {
        let r = ctx.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    // Titles only feed a slug: nothing outside `.agents/learnings/`.
    let o = learn(&ctx, &["../../../../tmp/evil", "--body", "x"]);
    assert!(
        o["path"]
            .as_str()
            .unwrap()
            .starts_with(".agents/learnings/20")
    );
    assert!(o["id"].as_str().unwrap().ends_with("-tmp-evil"));
    let r = ctx.run(&["knowledge", "show", "no-such-entry"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no knowledge entry `no-such-entry`"));
    let r = ctx.run(&[
        "learn",
        "t",
        "--body",
        "x",
        "--supersedes",
        "learning-20200101-nothing",
    ]);
    assert_eq!(r.code, 1);
}

#[test]
fn list_filters_and_history() {
    let ctx = ctx();
    learn(&ctx, &["Alpha", "--body", "a", "--tag", "x", "--tag", "y"]);
    let b = learn(
        &ctx,
        &["Beta", "--body", "b", "--tag", "x", "--type", "decision"],
    );
    learn(&ctx, &["Gamma", "--body", "g", "--type", "anti-pattern"]);
    let titles = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["knowledge", "list", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(ctx.run(&all).ok()).unwrap();
        let mut t: Vec<String> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    assert_eq!(titles(&[]), vec!["Alpha", "Beta", "Gamma"]);
    assert_eq!(titles(&["--tag", "x"]), vec!["Alpha", "Beta"]);
    assert_eq!(titles(&["--tag", "x", "--tag", "y"]), vec!["Alpha"]);
    assert_eq!(titles(&["--type", "decision"]), vec!["Beta"]);
    assert_eq!(titles(&["--type", "anti-pattern"]), vec!["Gamma"]);
    assert_eq!(titles(&["--since", "1d"]), vec!["Alpha", "Beta", "Gamma"]);
    assert_eq!(titles(&["--since", "2999-01-01"]), Vec::<String>::new());
    ctx.run(&["knowledge", "promote", b["id"].as_str().unwrap()])
        .ok();
    assert_eq!(titles(&["--maturity", "established"]), vec!["Beta"]);
    assert_eq!(
        ctx.run(&["knowledge", "list", "--maturity", "gold"]).code,
        2
    );
    assert_eq!(
        ctx.run(&["knowledge", "list", "--since", "someday"]).code,
        2
    );

    let hist: serde_json::Value = serde_json::from_str(
        ctx.run(&["knowledge", "history", b["id"].as_str().unwrap(), "--json"])
            .ok(),
    )
    .unwrap();
    let summaries: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        summaries,
        vec![
            format!("agentops: promote {id}"),
            format!("agentops: learn {id}")
        ]
    );
    let all: serde_json::Value =
        serde_json::from_str(ctx.run(&["knowledge", "history", "--json"]).ok()).unwrap();
    // Four memory writes plus the commit that added .agents/.
    assert_eq!(all.as_array().unwrap().len(), 5);
}

#[test]
fn body_from_stdin_and_file() {
    let ctx = ctx();
    let mut child = ctx
        .command(&["learn", "--json", "From stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped body\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let o: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(ctx.path(o["path"].as_str().unwrap())).unwrap();
    assert!(text.ends_with("# From stdin\n\npiped body\n"), "{text}");
    ctx.write("notes.md", "from a file\n");
    let o = learn(&ctx, &["From file", "--file", "notes.md"]);
    let text = std::fs::read_to_string(ctx.path(o["path"].as_str().unwrap())).unwrap();
    assert!(text.ends_with("# From file\n\nfrom a file\n"), "{text}");
    assert_eq!(ctx.run(&["learn", "x", "--file", "missing.md"]).code, 2);
}

const WRITERS: usize = 8;
const WRITES: usize = 50;

#[test]
fn eight_processes_fifty_writes_each_lose_nothing() {
    let ctx = ctx();
    ctx.write("user-file.txt", "untouched\n");
    ctx.git(&["add", "user-file.txt"]);
    let status_before = ctx.git(&["status", "--porcelain"]);
    let base = head(&ctx);
    let script = format!(
        "for i in $(seq 1 {WRITES}); do \"$0\" learn -q \"shared title $((i % 5))\" --body \"writer $1 write $i\" --tag w$1 || exit 1; done"
    );
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            ctx.shell(&script, &[&w.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let total = WRITERS * WRITES;
    assert_eq!(
        ctx.git(&["rev-list", "--count", &format!("{base}..HEAD")])
            .trim(),
        total.to_string()
    );
    let files = ctx.git(&["ls-tree", "-r", "--name-only", "HEAD", ".agents/learnings/"]);
    let entries: Vec<&str> = files.lines().filter(|l| l.ends_with(".md")).collect();
    assert_eq!(entries.len(), total);
    // Every write's body is there exactly once.
    let mut bodies = Vec::new();
    for e in &entries {
        let text = std::fs::read_to_string(ctx.path(e)).unwrap();
        bodies.push(text.lines().last().unwrap().to_owned());
    }
    bodies.sort();
    let mut expected: Vec<String> = (0..WRITERS)
        .flat_map(|w| (1..=WRITES).map(move |i| format!("writer {w} write {i}")))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected);
    // Each commit adds exactly one file.
    let log = ctx.git(&[
        "log",
        "--format=",
        "--name-status",
        &format!("{base}..HEAD"),
    ]);
    assert_eq!(log.lines().filter(|l| l.starts_with("A\t")).count(), total);
    assert_eq!(
        log.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("A\t"))
            .count(),
        0
    );
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--strict"])
        .current_dir(&ctx.root)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert_eq!(ctx.git(&["status", "--porcelain"]), status_before);
    assert!(!ctx.git_dir().join("index.lock").exists());
}

#[test]
fn body_from_the_editor() {
    let ctx = ctx();
    // A scripted editor: fills two sections of the template, leaves two empty.
    let editor = ctx.home.join("fake-editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/^## Context$/## Context\\n\\nThe build cache went stale./; s/^## Learning$/## Learning\\n\\nKey caches on the lockfile./' \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r: Run = ctx
        .command(&["learn", "--json", "--edit", "Stale build cache"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .output()
        .unwrap()
        .into();
    let o: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    let shown: serde_json::Value = serde_json::from_str(
        ctx.run(&["knowledge", "show", o["id"].as_str().unwrap(), "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(
        shown["body"],
        "# Stale build cache\n\n## Context\n\nThe build cache went stale.\n\n## Learning\n\nKey caches on the lockfile.\n"
    );
    // An editor that leaves the template empty aborts: nothing is written.
    let before = head(&ctx);
    let r: Run = ctx
        .command(&["learn", "--edit", "Nothing"])
        .env("EDITOR", "true")
        .env_remove("VISUAL")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("the body is empty; nothing written"),
        "{}",
        r.stderr
    );
    assert_eq!(head(&ctx), before);
    // No editor at all: a clear usage error.
    let r: Run = ctx
        .command(&["learn", "--edit", "Nothing"])
        .env_remove("EDITOR")
        .env_remove("VISUAL")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("set $EDITOR"), "{}", r.stderr);
}
