//! Hardening through the binary: no secret a run emits survives anywhere
//! agentops writes (git objects, the journal file, the index, an export,
//! terminal output of stored text).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use agentops_testkit::TestContext;
use agentops_testkit::model::{Reply, Script, ScriptedServer};
use agentops_testkit::otlp_receiver::Receiver;
use serde_json::json;

mod common;

use common::{BIN, run_id};

/// One secret of each shape the issue names, as (the text, a part of it that
/// must never be found).
const SECRETS: &[(&str, &str)] = &[
    (
        "sk-ant-api03-boIRoL3u6aHwnMztVuaP_coUNEhEkk_iqq8vH2BzNZV45pFCiRcDCajhDieQjEJ_Bq8F80ymm3T207gmhZRnFyy5r2xJ7AA",
        "boIRoL3u6aHwnMztVuaP",
    ),
    (
        "aws_access_key_id = AKIAG9JRSNVNQ65QDF1R",
        "AKIAG9JRSNVNQ65QDF1R",
    ),
    (
        "aws_secret_access_key = 1xLJjBictx57Y3c5wn/RpQgwXJ43A+NVj77p3kZZ",
        "1xLJjBictx57Y3c5wn",
    ),
    (
        "ghp_l4AblV7vY7AZQ3VZprkYSgy3c2Eom06Dwt0Y",
        "l4AblV7vY7AZQ3VZprkY",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAkZ8ND1S6xfB2gpBLzHfz3tVvovXkeGOhHGm5XwwU\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAkZ8ND1S6xfB2",
    ),
    (
        "postgres://app:Tr0ub4dor-3@db.internal:5432/app",
        "Tr0ub4dor-3",
    ),
];

fn all_secrets() -> String {
    SECRETS
        .iter()
        .map(|(s, _)| *s)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The parts of `haystack` (bytes, compared case-insensitively) that are secrets.
fn leaks(what: &str, haystack: &[u8]) -> Vec<String> {
    let lower = String::from_utf8_lossy(haystack).to_ascii_lowercase();
    SECRETS
        .iter()
        .filter(|(_, part)| lower.contains(&part.to_ascii_lowercase()))
        .map(|(_, part)| format!("{what}: {part}"))
        .collect()
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn secrets_a_run_emits_reach_no_store() {
    let secrets = all_secrets();
    let one_line = secrets.replace('\n', " ");
    let script = Script::default()
        .rule(
            &[],
            Some(0),
            Reply::tool(
                "run_command",
                json!({"command": format!("echo '{one_line}'")}),
            ),
        )
        .rule(
            &[],
            Some(1),
            Reply::tool(
                "record_learning",
                json!({"title": "Deploy with ghp_l4AblV7vY7AZQ3VZprkYSgy3c2Eom06Dwt0Y", "body": secrets, "tags": ["deploy"]}),
            ),
        )
        .rule(
            &[],
            Some(2),
            Reply::text(format!("Done. For the next phase:\n{secrets}")),
        );
    let server = ScriptedServer::start(script).unwrap();
    let receiver = Receiver::start().unwrap();
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.write(
        ".agents/agents/leaky.toml",
        "purpose = \"Report what the deploy needs.\"\nbackend = \"openai:gpt-4.1-mini\"\ntools = [\"run_command\", \"record_learning\"]\nallow_commands = [\"^echo \"]\nwrite_scope = [\".agents/learnings/**\"]\nmax_turns = 5\n",
    );
    ctx.write(
        ".agents/workflows/leak.toml",
        "description = \"One phase that prints secrets.\"\n\n[phases.report]\nagent = \"leaky\"\ntask = \"Report: {{goal}}\"\n",
    );
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "project"]);
    let env = vec![("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())];
    let goal = "ship it; the key is ghp_l4AblV7vY7AZQ3VZprkYSgy3c2Eom06Dwt0Y";
    let r = ctx.run_env(&["run", "leak", goal], &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = run_id(&ctx);
    // The model did see the secrets (they were really emitted).
    assert!(
        server
            .received()
            .iter()
            .any(|g| g.body.to_string().contains("Tr0ub4dor-3"))
    );
    let land = ctx.run(&["land", &id]);
    assert_eq!(land.code, 0, "{}\n{}", land.stdout, land.stderr);
    ctx.run(&["learn", "Rotate keys", "--body", &secrets]).ok();
    ctx.run(&["index"]).ok();

    let mut found = Vec::new();
    // Every git object, loose or packed, decompressed.
    let cat = std::process::Command::new("git")
        .current_dir(&ctx.root)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    assert!(cat.status.success());
    assert!(cat.stdout.len() > 1000, "git objects were read");
    found.extend(leaks("git objects", &cat.stdout));
    // The journal, its WAL, the index: every file agentops keeps.
    let mut files = Vec::new();
    files_under(&ctx.git_dir().join("agentops"), &mut files);
    assert!(files.iter().any(|f| f.ends_with("state.db")));
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("/index/"))
    );
    for f in &files {
        found.extend(leaks(
            &f.display().to_string(),
            &std::fs::read(f).unwrap_or_default(),
        ));
    }
    // The work tree after landing, and what commands show of stored text.
    let mut tree = Vec::new();
    files_under(&ctx.path(".agents"), &mut tree);
    for f in &tree {
        found.extend(leaks(&f.display().to_string(), &std::fs::read(f).unwrap()));
    }
    for args in [
        vec!["search", "deploy"],
        vec!["search", "rsa private key"],
        vec!["context", "deploy keys", "--explain"],
        vec!["show", &id],
        vec!["show", &id, "--json"],
        vec!["trace", &id, "--json"],
        vec!["knowledge", "list", "--json"],
        vec!["knowledge", "history"],
        vec!["runs"],
    ] {
        let r = ctx.run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        found.extend(leaks(&format!("{args:?}"), r.stdout.as_bytes()));
    }
    let hits = ctx.run(&["search", "deploy"]);
    assert!(hits.stdout.contains("REDACTED"), "{}", hits.stdout);
    // An export.
    let ex = ctx.run(&[
        "export",
        "otlp",
        "--endpoint",
        &receiver.url(),
        "--protocol",
        "http/json",
    ]);
    assert_eq!(ex.code, 0, "{}", ex.stderr);
    assert!(receiver.span_count() > 3);
    found.extend(leaks(
        "export",
        format!("{:?}", receiver.spans()).as_bytes(),
    ));
    assert!(found.is_empty(), "secrets found:\n{}", found.join("\n"));
}

fn project_with_history() -> TestContext {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.run(&[
        "learn",
        "Retry flaky tests",
        "--body",
        "retry the network call",
    ])
    .ok();
    ctx.run(&["gate", "check", "command", "git push --force"]);
    ctx.run(&["index"]).ok();
    ctx
}

/// Runs `sh -c script` (with `$0` the binary) in a private mount namespace
/// where `.git/agentops` is read-only; `None` where that cannot be made.
fn with_read_only_state(ctx: &TestContext, script: &str) -> Option<String> {
    let dir = ctx.git_dir().join("agentops");
    let full = format!(
        "mount --bind '{d}' '{d}' && mount -o remount,ro,bind '{d}' || exit 97; touch '{d}/probe' 2>/dev/null && exit 98; {script}",
        d = dir.display()
    );
    let out = ctx.shell_private_mounts(&full).output().ok()?;
    match out.status.code() {
        Some(97 | 98) | None => {
            println!("SKIPPED (read-only state directory): this machine cannot mount one");
            None
        }
        _ => Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

#[test]
fn read_only_commands_work_on_a_read_only_state_directory() {
    let ctx = project_with_history();
    let script = r#"for c in "search retry" "runs" "stats" "sessions" "status" "knowledge list" "trace 01nonexistent"; do
  "$0" $c >/tmp/out.$$ 2>&1; echo "[$c] exit $?"; cat /tmp/out.$$; done; rm -f /tmp/out.$$"#;
    let Some(out) = with_read_only_state(&ctx, script) else {
        return;
    };
    for (cmd, code) in [
        ("search retry", 0),
        ("runs", 0),
        ("stats", 0),
        ("sessions", 0),
        ("status", 0),
        ("knowledge list", 0),
        ("trace 01nonexistent", 1),
    ] {
        assert!(
            out.contains(&format!("[{cmd}] exit {code}")),
            "{cmd}: {out}"
        );
    }
    assert!(out.contains("Retry flaky tests"), "{out}");
    assert!(out.contains("read-only"), "{out}");
    assert!(!out.contains("Read-only file system"), "{out}");
}

#[test]
fn a_damaged_journal_fails_read_commands_loudly_and_never_undoes_a_write() {
    for damage in ["truncated", "garbled"] {
        let ctx = project_with_history();
        let db = ctx.git_dir().join("agentops/state.db");
        // The journal leaves its WAL in place when it closes: fold it into
        // the file first, so that the damage below hits the events.
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
        let bytes = std::fs::read(&db).unwrap();
        match damage {
            "truncated" => {
                std::fs::write(&db, b"").unwrap();
                // Older than a creator's first write.
                let ok = std::process::Command::new("touch")
                    .args(["-d", "1 minute ago"])
                    .arg(&db)
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
            _ => {
                let mut b = bytes.clone();
                for x in b.iter_mut().skip(4096) {
                    *x ^= 0x5a;
                }
                std::fs::write(&db, b).unwrap();
            }
        }
        for f in ["state.db-wal", "state.db-shm"] {
            let _ = std::fs::remove_file(ctx.git_dir().join("agentops").join(f));
        }
        let doctor = ctx.run(&["doctor"]);
        assert_eq!(doctor.code, 1, "{damage}: {}", doctor.stdout);
        assert!(doctor.stdout.contains("FAIL  store"), "{}", doctor.stdout);
        for cmd in [&["stats"][..], &["runs"], &["sessions"], &["status"]] {
            let r = ctx.run(cmd);
            assert_eq!(r.code, 1, "{damage} {cmd:?}: {}{}", r.stdout, r.stderr);
            assert!(
                r.stderr.contains("not a readable SQLite database"),
                "{damage} {cmd:?}: {}",
                r.stderr
            );
        }
        // Search still finds (knowledge lives in git), and says what it lacks.
        // (a journal that cannot be opened at all fails it like the others).
        let r = ctx.run(&["search", "retry"]);
        let loud_failure = r.code == 1 && r.stderr.contains("not a readable SQLite database");
        let warned = r.code == 0
            && r.stdout.contains("Retry flaky tests")
            && r.stderr.contains("journal cannot be read");
        assert!(loud_failure || warned, "{damage}: {}{}", r.stdout, r.stderr);
        // A memory write still commits, says so, and warns about the journal.
        let before = ctx.git(&["rev-list", "--count", "HEAD"]);
        let r = ctx.run(&[
            "learn",
            "Written while the journal is broken",
            "--body",
            "x",
        ]);
        assert_eq!(r.code, 0, "{damage}: {}", r.stderr);
        assert!(r.stdout.contains("commit"), "{}", r.stdout);
        assert!(
            r.stderr.contains("journal could not record it"),
            "{}",
            r.stderr
        );
        let after = ctx.git(&["rev-list", "--count", "HEAD"]);
        assert_eq!(
            after.trim().parse::<u32>().unwrap(),
            before.trim().parse::<u32>().unwrap() + 1
        );
        // Nothing was rewritten.
        if damage == "truncated" {
            assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
        }
    }
}

/// Every memory write the journal recorded, by commit.
fn journaled_commits(ctx: &TestContext) -> Vec<String> {
    let layout = agentops_store::RepoLayout::discover(&ctx.root).unwrap();
    let j = agentops_store::Journal::open_read(&layout, &agentops_core::config::Config::default())
        .unwrap();
    let mut v: Vec<String> = j
        .read(&agentops_store::Query {
            kinds: vec![agentops_core::EventKind::KnowledgeWrite],
            ..agentops_store::Query::default()
        })
        .unwrap()
        .iter()
        .filter_map(|e| e.body["commit"].as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

fn learn_child(ctx: &TestContext, n: u64) -> std::process::Child {
    ctx.command(&[
        "learn",
        &format!("Crash note {n}"),
        "--body",
        "what a killed write left",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn kill_nine_at_any_instant_of_learn_leaves_nothing_to_trip_on() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "init"]);
    let t = std::time::Instant::now();
    assert_eq!(ctx.run(&["learn", "Warm up", "--body", "x"]).code, 0);
    let one = t.elapsed();
    let mut rand = common::xorshift(0x1ea2_0f5e_ed00);
    let mut n = 0;
    let check_next = |ctx: &TestContext, n: &mut u64, what: &str| {
        *n += 1;
        let t = std::time::Instant::now();
        let r = ctx.run(&["learn", &format!("After a kill {n}"), "--body", "y"]);
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        // What this catches is a lock a killed learn left behind, which
        // would cost the next one a lock timeout (the index writer's 5 s,
        // the journal's 10 s busy timeout); 2.5 s of slack keeps a loaded
        // 2-core CI runner (the workers' tests start several processes at
        // once) from looking like one.
        assert!(
            t.elapsed() < one * 4 + std::time::Duration::from_millis(2500),
            "{what}: the next learn waited {:?} (one takes {one:?})",
            t.elapsed()
        );
    };
    // Alone: 60 kills at random instants, each followed by a learn that
    // must succeed at once.
    for trial in 0..60 {
        n += 1;
        let mut c = learn_child(&ctx, n);
        std::thread::sleep(std::time::Duration::from_micros(
            rand() % (one.as_micros() as u64 * 12 / 10).max(1),
        ));
        let _ = c.kill();
        let _ = c.wait();
        check_next(&ctx, &mut n, &format!("alone, trial {trial}"));
    }
    // Among concurrent learns: one of eight killed; the other seven succeed.
    for round in 0..12 {
        let mut kids: Vec<_> = (0..8)
            .map(|_| {
                n += 1;
                learn_child(&ctx, n)
            })
            .collect();
        let victim = (rand() % 8) as usize;
        std::thread::sleep(std::time::Duration::from_micros(
            rand() % (one.as_micros() as u64 * 3).max(1),
        ));
        let _ = kids[victim].kill();
        for (i, k) in kids.into_iter().enumerate() {
            let out = k.wait_with_output().unwrap();
            if i != victim {
                assert!(
                    out.status.success(),
                    "round {round}: a concurrent learn failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        check_next(&ctx, &mut n, &format!("concurrent, round {round}"));
    }
    // Nothing left behind: no staged deletion, every entry tracked and
    // clean, no temporary files, no lock files, journal and commits agree.
    let status = ctx.git(&["status", "--porcelain", "--", ".agents"]);
    assert_eq!(status, "", "git status after the kills");
    let mut files = Vec::new();
    files_under(&ctx.path(".agents"), &mut files);
    let tmp: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    for lock in ["index.lock", "HEAD.lock"] {
        assert!(!ctx.git_dir().join(lock).exists(), "{lock} left");
    }
    let mut commits: Vec<String> = ctx
        .git(&[
            "log",
            "--format=%H",
            "--grep=^agentops: ",
            "--",
            ".agents/learnings",
        ])
        .lines()
        .map(str::to_owned)
        .collect();
    commits.sort();
    let journaled = journaled_commits(&ctx);
    let unjournaled: Vec<String> = commits
        .iter()
        .filter(|c| !journaled.contains(c))
        .map(|c| ctx.git(&["log", "-1", "--format=%h %s", c]))
        .collect();
    let uncommitted: Vec<&String> = journaled.iter().filter(|c| !commits.contains(c)).collect();
    assert!(
        unjournaled.is_empty() && uncommitted.is_empty() && journaled.len() == commits.len(),
        "journal and commits disagree: committed, not journaled: {unjournaled:?}; journaled, not committed: {uncommitted:?}; {} events, {} commits",
        journaled.len(),
        commits.len()
    );
    let doctor = ctx.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("no interrupted memory writes"),
        "{}",
        doctor.stdout
    );
}

#[test]
fn a_full_disk_leaves_no_partial_files_and_says_so() {
    let ctx = TestContext::new(BIN);
    // A 4 MiB tmpfs in a private mount namespace, a repository on it, and
    // the disk filled up.
    let script = r#"set -u
m="$PWD/small"; mkdir -p "$m"
mount -t tmpfs -o size=4m tmpfs "$m" || exit 97
cd "$m" && git init -q r && cd r && git commit -q --allow-empty -m init || exit 96
"$0" init -q >/dev/null 2>&1 && git add -A && git commit -qm agentops || exit 95
"$0" learn "Before the disk filled" --body "fine" >/dev/null 2>&1 || exit 94
body="$m/../body.txt"; head -c 300000 /dev/urandom | base64 > "$body"
# A session stream whose events need more room than the journal's WAL has.
awk 'BEGIN{print "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s-full\",\"model\":\"claude-sonnet-4-5\"}"; for(i=0;i<4000;i++) printf "{\"type\":\"assistant\",\"session_id\":\"s-full\",\"message\":{\"id\":\"msg_%d\",\"model\":\"claude-sonnet-4-5\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"step %d of the work\"}],\"usage\":{\"input_tokens\":20,\"output_tokens\":10}}}\n", i, i}' > "$m/../stream.jsonl"
dd if=/dev/zero of="$m/filler" bs=64k >/dev/null 2>&1
"$0" learn "When the disk is full" --file "$body" >"$m/../out" 2>"$m/../err"; echo "exit $?"
echo "--stderr"; cat "$m/../err"
echo "--tmp"; find .agents -name '*.tmp'
echo "--status"; git --no-optional-locks status --porcelain -- .agents
echo "--journal"; "$0" ingest claude-stream "$m/../stream.jsonl" 2>&1
echo "--end"
rm -f "$m/filler"
"$0" learn "After space came back" --body "fine" >/dev/null 2>&1; echo "after $?"
"#;
    let out = ctx
        .shell_private_mounts(script)
        .current_dir(ctx.root.parent().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(97) || !text.contains("exit") {
        println!(
            "SKIPPED (full disk): cannot mount a small tmpfs here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let section = |name: &str| {
        text.lines()
            .skip_while(|l| *l != format!("--{name}"))
            .skip(1)
            .take_while(|l| !l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!text.starts_with("exit 0"), "{text}");
    let err = section("stderr");
    assert!(
        err.contains("No space left on device") && err.contains(".agents/learnings"),
        "{err}"
    );
    assert_eq!(section("tmp"), "", "temporary files left: {text}");
    assert_eq!(section("status"), "", "{text}");
    // The journal says the same, not SQLite's "disk I/O error" alone.
    assert!(
        section("journal").contains("state.db: no space left on device"),
        "{text}"
    );
    assert!(text.contains("after 0"), "{text}");
}

#[test]
fn empty_or_mismatched_input_is_refused_with_a_reason() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "init"]);
    let head = ctx.git(&["rev-parse", "HEAD"]);
    // learn with nothing on standard input: refused, nothing committed.
    let r = ctx.run_stdin(&["learn", "Nothing here"], b"");
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("the body is empty"), "{}", r.stderr);
    let r = ctx.run(&["learn", "Blank", "--body", "  \n"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(ctx.git(&["rev-parse", "HEAD"]), head);
    // A secret redacted from a learning is said in one line.
    let r = ctx.run(&[
        "learn",
        "Deploy token",
        "--body",
        "use ghp_l4AblV7vY7AZQ3VZprkYSgy3c2Eom06Dwt0Y to push",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("redacted"))
        .collect();
    assert_eq!(said.len(), 1, "{}", r.stderr);
    assert!(said[0].contains("1 secret (github-token)"), "{}", said[0]);
    // eval on an empty file: no queries, exit 2.
    ctx.write("empty.jsonl", "");
    let r = ctx.run(&["eval", "retrieval", "empty.jsonl"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no queries"), "{}", r.stderr);
    // A Claude stream given as a Codex one (and the other way): named.
    ctx.write(
        "claude.jsonl",
        "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s-1\",\"model\":\"claude-sonnet-4-5\"}\n{\"type\":\"result\",\"subtype\":\"success\",\"session_id\":\"s-1\"}\n",
    );
    let r = ctx.run(&["ingest", "codex-exec", "claude.jsonl"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("looks like claude-stream"),
        "{}",
        r.stderr
    );
    ctx.write(
        "codex.jsonl",
        "{\"type\":\"thread.started\",\"thread_id\":\"t-1\"}\n{\"type\":\"turn.started\"}\n",
    );
    let r = ctx.run(&["ingest", "claude-stream", "codex.jsonl"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("looks like codex-exec"), "{}", r.stderr);
}

#[test]
fn a_missing_api_key_stops_a_run_before_anything_is_created() {
    let ctx = common::demo_project(false);
    for a in ["planner", "coder", "reviewer"] {
        let p = ctx.path(&format!(".agents/agents/{a}.toml"));
        let t = std::fs::read_to_string(&p)
            .unwrap()
            .replace("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5");
        std::fs::write(p, t).unwrap();
    }
    ctx.git(&["commit", "-qam", "anthropic agents"]);
    let r: agentops_testkit::Run = ctx
        .command(&["run", "feature", "anything"])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ANTHROPIC_API_KEY"), "{}", r.stderr);
    assert_eq!(ctx.git(&["branch", "--list", "agentops/run/*"]), "");
    assert_eq!(ctx.git(&["worktree", "list"]).lines().count(), 1);
    let runs = ctx.run(&["runs", "--json"]);
    assert_eq!(runs.stdout.trim(), "[]", "{}", runs.stdout);
    // The same with --backend on the command line.
    let r: agentops_testkit::Run = ctx
        .command(&[
            "run",
            "feature",
            "anything",
            "--backend",
            "anthropic:claude-sonnet-4-5",
        ])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(ctx.git(&["branch", "--list", "agentops/run/*"]), "");
}

#[test]
fn user_scope_hooks_say_where_they_do_nothing() {
    let ctx = TestContext::new(BIN);
    let r = ctx.run(&["hooks", "install", "claude", "--scope", "user"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("the hooks do nothing in repositories without it"),
        "{}",
        r.stdout
    );
    ctx.run(&["init", "-q"]).ok();
    let r = ctx.run(&["hooks", "install", "claude", "--scope", "user"]);
    assert!(!r.stdout.contains("do nothing"), "{}", r.stdout);
}

#[test]
fn quickstart_runs_with_an_installed_agentops_outside_the_source_tree() {
    let ctx = TestContext::empty(BIN);
    let script = ctx.root.join("quickstart");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/quickstart"),
        &script,
    )
    .unwrap();
    let run = |agentops: Option<&str>| {
        let mut c = std::process::Command::new("bash");
        c.arg(&script)
            .current_dir(&ctx.root)
            .env("HOME", &ctx.root)
            // The script keeps its scratch repository for the reader: here
            // it goes with the test's directory.
            .env("TMPDIR", &ctx.root)
            .env("PATH", "/usr/bin:/bin")
            .env_remove("AGENTOPS");
        if let Some(a) = agentops {
            c.env("AGENTOPS", a);
        }
        c.output().unwrap()
    };
    let out = run(Some(BIN));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Binary: {BIN}")));
    let out = run(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agentops not found"));
}

#[test]
fn config_mistakes_name_the_close_match_and_the_first_table() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    let r = ctx.run_env(
        &["knowledge", "list"],
        &[("AGENTOPS_MEMORY_COMIT", "off".into())],
    );
    assert_eq!(r.code, 0);
    assert!(
        r.stderr
            .contains("AGENTOPS_MEMORY_COMIT is not an agentops setting")
            && r.stderr.contains("did you mean AGENTOPS_MEMORY_COMMIT?"),
        "{}",
        r.stderr
    );
    ctx.write(".agents/config.toml", "[memory]\ncomit = \"auto\"\n");
    let r = ctx.run(&["knowledge", "list"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("did you mean `memory.commit`?"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("telemetry.endpoint"),
        "lists every key: {}",
        r.stderr
    );
    ctx.write(
        ".agents/config.toml",
        "[hooks]\ntimeout_ms = 100\n\n[memory]\n\n[hooks]\nhandoffs = true\n",
    );
    let r = ctx.run(&["knowledge", "list"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("first at line 1, again at line 6"),
        "{}",
        r.stderr
    );
}

#[test]
fn not_found_is_one_exit_code_everywhere() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    for args in [
        &["show", "01nosuchrun"][..],
        &["trace", "01nosuchrun"],
        &["knowledge", "show", "learning-nope"],
        &["handoff", "show", "handoff-nope"],
        &["resume", "01nosuchrun"],
    ] {
        let r = ctx.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn status_counts_interrupted_runs_and_not_gate_runs_as_sessions() {
    let ctx = common::demo_project(false);
    assert!(ctx.run(&["gate", "run", "scope"]).code <= 1);
    let s = ctx.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(
        v["sessions"], 0,
        "a manual gate run is not a harness session: {v}"
    );
    // A run killed mid-way: the model takes its time answering.
    let mut script = agentops_runner::demo::script();
    for r in &mut script.rules {
        r.reply.delay_ms = 400;
    }
    let server = ScriptedServer::start(script).unwrap();
    let mut child = ctx
        .command(&["run", "feature", common::GOAL])
        .env("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.received().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let s = ctx.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["runs"], 1, "{v}");
    assert_eq!(v["interrupted"], 1, "{v}");
    assert_eq!(v["paused"], 0, "{v}");
    let text = ctx.run(&["status"]);
    assert!(
        text.stdout.contains("1 interrupted or running"),
        "{}",
        text.stdout
    );
}

#[test]
fn one_word_for_times_verdicts_and_counts() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    let cfg = ctx.path(".agents/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[gates.deploy]\nkind = \"approval\"\n\n[gates.scope]\nkind = \"scope\"\nallow = [\"**\"]\n");
    std::fs::write(&cfg, text).unwrap();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "init"]);
    ctx.run(&["learn", "Times are RFC 3339", "--body", "one form"])
        .ok();
    let rfc = |s: &str| {
        s.len() >= 20
            && s.as_bytes()[4] == b'-'
            && s.contains('T')
            && (s.ends_with('Z') || s.contains('+'))
    };
    let list: serde_json::Value =
        serde_json::from_str(&ctx.run(&["knowledge", "list", "--json"]).stdout).unwrap();
    let created = list["entries"][0]["created"].as_str().unwrap().to_owned();
    assert!(rfc(&created), "{created}");
    let hist: serde_json::Value =
        serde_json::from_str(&ctx.run(&["knowledge", "history", "--json"]).stdout).unwrap();
    assert!(rfc(hist[0]["time"].as_str().unwrap()), "{hist}");
    // One gate: singular.
    let r = ctx.run(&["gate", "run", "scope"]);
    assert!(r.stdout.ends_with("1 gate: passed\n"), "{}", r.stdout);
    // A pending approval says WAIT in text and JSON alike.
    let r = ctx.run(&["gate", "run", "deploy"]);
    assert!(r.stdout.starts_with("WAIT"), "{}", r.stdout);
    let j: serde_json::Value =
        serde_json::from_str(&ctx.run(&["gate", "run", "deploy", "--json"]).stdout).unwrap();
    assert_eq!(j["results"][0]["verdict"], "WAIT", "{j}");
}

#[test]
fn a_command_step_that_changed_nothing_makes_no_commit() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.write(
        ".agents/agents/looker.toml",
        "purpose = \"Look at the code and report.\"\nbackend = \"command:echo looked, nothing to change\"\n",
    );
    ctx.write(
        ".agents/workflows/look.toml",
        "description = \"One phase that changes nothing.\"\n\n[phases.look]\nagent = \"looker\"\ntask = \"Look: {{goal}}\"\n",
    );
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "project"]);
    let r = ctx.run(&["run", "look", "anything"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let id = run_id(&ctx);
    let log = ctx.git(&["log", "--format=%s", &format!("main..agentops/run/{id}")]);
    // Only the completion commit with the run summary: no empty checkpoint.
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("completed"), "{log}");
    // And its start time in JSON is RFC 3339, like every time there.
    let runs: serde_json::Value =
        serde_json::from_str(&ctx.run(&["runs", "--json"]).stdout).unwrap();
    let started = runs[0]["started"].as_str().unwrap_or_default();
    assert!(started.contains('T') && started.ends_with('Z'), "{runs}");
}

#[test]
fn ctrl_c_during_a_run_says_how_to_resume() {
    let ctx = common::demo_project(false);
    let mut script = agentops_runner::demo::script();
    for r in &mut script.rules {
        r.reply.delay_ms = 300;
    }
    let server = ScriptedServer::start(script).unwrap();
    let child = ctx
        .command(&["run", "feature", common::GOAL])
        .env("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.received().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let id = run_id(&ctx);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("interrupted: agentops resume {id}")),
        "{err}"
    );
    let r = ctx.run_env(
        &["resume", &id],
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

fn pid_alive(pid: &str) -> bool {
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "not a pid: {pid:?}"
    );
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_killed_run_leaves_no_harness_running_and_resume_makes_sure() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    // A harness that starts a helper of its own, then works for a long time
    // the first time and finishes at once the second.
    ctx.write(
        "slow.sh",
        "if [ -f \"$HOME/second\" ]; then echo done; exit 0; fi\n: > \"$HOME/second\"\nsleep 60 &\necho $! > \"$HOME/helper.pid\"\necho $$ > \"$HOME/harness.pid\"\nsleep 60\necho late\n",
    );
    ctx.write(
        ".agents/agents/slow.toml",
        "purpose = \"Work slowly.\"\nbackend = \"command:sh slow.sh\"\n",
    );
    ctx.write(
        ".agents/workflows/slow.toml",
        "description = \"One slow phase.\"\n\n[phases.work]\nagent = \"slow\"\ntask = \"Work: {{goal}}\"\n",
    );
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "project"]);
    let home = ctx.root.parent().unwrap().join("home");
    let mut child = ctx
        .command(&["run", "slow", "anything"])
        .env("HOME", &home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // A pid file exists before the shell has written the number into it:
    // only a number counts (an empty one would name /proc//stat, which is
    // /proc/stat, and always looks alive).
    let read = |n: &str| {
        std::fs::read_to_string(home.join(n))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    while (read("harness.pid").is_none() || read("helper.pid").is_none())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let harness = read("harness.pid").expect("the harness started");
    let helper = read("helper.pid").expect("the helper started");
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    // The harness dies with agentops (the kernel's parent-death signal).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pid_alive(&harness) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!pid_alive(&harness), "the harness outlived agentops");
    // Its helper, in the same process group, is stopped by the resume
    // before the step runs again.
    assert!(
        pid_alive(&helper),
        "the helper is expected to outlive the harness"
    );
    let id = run_id(&ctx);
    let r = ctx.run_env(&["resume", &id], &[("HOME", home.display().to_string())]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        !pid_alive(&helper),
        "the helper is still running after resume"
    );
}

#[test]
fn token_counts_are_one_normalised_number_everywhere() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    // The harness's result counts more than the one call the stream shows
    // (subagents, retries): its totals are the session's, everywhere.
    ctx.write(
        "s.jsonl",
        concat!(
            "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s-tok\",\"model\":\"claude-sonnet-4-5\"}\n",
            "{\"type\":\"assistant\",\"session_id\":\"s-tok\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":2000,\"cache_creation_input_tokens\":250,\"output_tokens\":10}}}\n",
            "{\"type\":\"result\",\"subtype\":\"success\",\"session_id\":\"s-tok\",\"total_cost_usd\":0.01,\"duration_ms\":1000,\"num_turns\":2,\"result\":\"hi\",\"usage\":{\"input_tokens\":40,\"cache_read_input_tokens\":4000,\"cache_creation_input_tokens\":250,\"output_tokens\":30}}\n",
        ),
    );
    let r = ctx.run(&["ingest", "claude-stream", "s.jsonl"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // input = uncached 40 + cache reads 4000 + cache writes 250.
    assert!(
        r.stdout
            .contains("tokens in 4290 (cache read 4000, write 250) out 30"),
        "{}",
        r.stdout
    );
    let s: serde_json::Value =
        serde_json::from_str(&ctx.run(&["sessions", "--json"]).stdout).unwrap();
    assert_eq!(s[0]["usage"]["input_tokens"], 4290, "{s}");
    assert_eq!(s[0]["usage"]["cache_read_tokens"], 4000);
    let t = ctx.run(&["trace", "s-tok"]);
    assert!(t.stdout.contains("4,290→30"), "{}", t.stdout);
}

#[test]
fn a_file_that_is_not_utf8_is_skipped_the_same_way_everywhere() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    std::fs::write(
        ctx.path(".agents/learnings/latin1.md"),
        b"# Caf\xe9 notes\n\nflaky caf\xe9 tests retried\n",
    )
    .unwrap();
    use std::os::unix::ffi::OsStrExt;
    let odd = std::ffi::OsStr::from_bytes(b"odd-\xff.md");
    std::fs::write(
        ctx.path(".agents/learnings").join(odd),
        b"# Odd name\n\nflaky odd tests\n",
    )
    .unwrap();
    let list = ctx.run(&["knowledge", "list"]);
    assert!(
        list.stderr
            .contains("latin1.md: not UTF-8 text (invalid byte at offset 5)"),
        "{}",
        list.stderr
    );
    assert!(!list.stdout.contains("Caf"), "{}", list.stdout);
    let search = ctx.run(&["search", "flaky"]);
    assert!(
        search
            .stderr
            .contains("latin1.md: not UTF-8 text (invalid byte at offset 5)"),
        "{}",
        search.stderr
    );
    assert!(!search.stdout.contains('\u{fffd}'), "{}", search.stdout);
    // A file whose name is not UTF-8 is named (with U+FFFD), not its folder.
    assert!(
        list.stderr.contains(".agents/learnings/odd-\u{fffd}.md"),
        "{}",
        list.stderr
    );
}

#[test]
fn a_kept_demo_says_which_backend_to_configure() {
    let ctx = TestContext::empty(BIN);
    let kept = ctx.root.join("kept");
    let r: agentops_testkit::Run = ctx
        .command(&["demo", "--keep", kept.to_str().unwrap()])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let cfg = std::fs::read_to_string(kept.join(".agents/config.toml")).unwrap();
    assert!(
        cfg.contains("scripted stand-in") && cfg.contains("# openai_base_url"),
        "{cfg}"
    );
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&kept)
        .output()
        .unwrap();
    assert!(
        status.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let r: agentops_testkit::Run = ctx
        .command(&["-C", kept.to_str().unwrap(), "run", "feature", "again"])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("OPENAI_API_KEY"), "{}", r.stderr);
}

#[test]
fn a_huge_entry_is_written_with_a_warning_and_keeps_search_fast() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.run(&["learn", "Small note", "--body", "zebra crossing"])
        .ok();
    ctx.run(&["index"]).ok();
    let t = std::time::Instant::now();
    assert_eq!(ctx.run(&["search", "zebra"]).code, 0);
    let small = t.elapsed();
    let big = format!("aardvark {}", "lorem ipsum dolor sit amet ".repeat(100_000));
    ctx.write("big.md", &big);
    let r = ctx.run(&["learn", "Huge log", "--file", "big.md"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("over memory.warn_bytes"), "{}", r.stderr);
    ctx.run(&["index"]).ok();
    let t = std::time::Instant::now();
    let s = ctx.run(&["search", "aardvark"]);
    let after = t.elapsed();
    assert!(s.stdout.contains("Huge log"), "{}", s.stdout);
    assert!(
        after < small * 3 + std::time::Duration::from_millis(300),
        "search took {after:?} with the huge entry, {small:?} without"
    );
    // The size is a setting.
    ctx.write(".agents/config.toml", "[memory]\nwarn_bytes = 100000000\n");
    let r = ctx.run(&["learn", "Huge log again", "--file", "big.md"]);
    assert!(!r.stderr.contains("warn_bytes"), "{}", r.stderr);
}

#[test]
fn a_long_call_on_a_terminal_shows_it_is_still_working() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED (terminal heartbeat): `script` (util-linux) is not installed");
        return;
    }
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.write(
        ".agents/agents/w.toml",
        "purpose = \"Wait.\"\nbackend = \"command:sh slow.sh\"\n",
    );
    ctx.write(
        ".agents/workflows/w.toml",
        "[phases.w]\nagent = \"w\"\ntask = \"wait {{goal}}\"\n",
    );
    ctx.write("slow.sh", "sleep 6; echo done\n");
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "project"]);
    // On a terminal (a pty from `script`): a heartbeat while the call lasts.
    let out = ctx
        .shell("script -qec \"$0 run w x\" /dev/null", &[])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("still working"), "{text}");
    // Piped: quiet.
    let r = ctx.run(&["run", "w", "again"]);
    assert!(!r.stderr.contains("still working"), "{}", r.stderr);
}

#[test]
fn agents_symlinked_out_of_the_repository_is_refused() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "init"]);
    let outside = ctx.root.parent().unwrap().join("elsewhere");
    std::fs::rename(ctx.path(".agents"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.path(".agents")).unwrap();
    let head = ctx.git(&["rev-parse", "HEAD"]);
    let r = ctx.run(&["learn", "Leaks out", "--body", "x"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("outside the repository") && r.stderr.contains("elsewhere"),
        "{}",
        r.stderr
    );
    assert_eq!(ctx.git(&["rev-parse", "HEAD"]), head, "nothing committed");
    assert!(
        !outside
            .join("learnings")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().path().is_dir() }),
        "nothing written outside"
    );
    let d = ctx.run(&["doctor"]);
    assert_eq!(d.code, 1, "{}", d.stdout);
    assert!(
        d.stdout.contains("FAIL  project") && d.stdout.contains("outside the repository"),
        "{}",
        d.stdout
    );
}

#[test]
fn a_secret_in_a_hand_written_entry_is_never_printed_back() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.write(
        ".agents/learnings/deploy.md",
        "# Deploy notes\n\nThe token is ghp_l4AblV7vY7AZQ3VZprkYSgy3c2Eom06Dwt0Y for now.\n",
    );
    for args in [
        &["knowledge", "show", "deploy"][..],
        &["knowledge", "show", "deploy", "--json"],
        &["knowledge", "list", "--json"],
        &["search", "deploy token"],
        &["context", "deploy token"],
    ] {
        let r = ctx.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            !r.stdout.contains("l4AblV7vY7AZQ3VZprkY"),
            "{args:?}: {}",
            r.stdout
        );
    }
    assert!(
        ctx.run(&["knowledge", "show", "deploy"])
            .stdout
            .contains("[REDACTED:github-token]")
    );
}

#[test]
fn a_foreign_lock_is_named_with_the_fix_and_never_removed() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "init"]);
    for lock in ["refs/heads/main.lock", "index.lock"] {
        let path = ctx.git_dir().join(lock);
        std::fs::write(&path, b"").unwrap();
        let t = std::time::Instant::now();
        let r = ctx.run(&["learn", "Blocked", "--body", "x"]);
        assert_eq!(r.code, 1, "{lock}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&path.display().to_string()),
            "{lock}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("remove"), "{lock}: {}", r.stderr);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(8),
            "{lock}: {:?}",
            t.elapsed()
        );
        assert!(
            path.exists(),
            "{lock}: a lock agentops did not take was removed"
        );
        assert_eq!(
            ctx.git(&["status", "--porcelain"]),
            "",
            "{lock}: something left"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_judge_without_its_key_stops_the_run_before_anything_is_created() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init", "-q"]).ok();
    ctx.write(
        ".agents/agents/doer.toml",
        "purpose = \"Do the task.\"\nbackend = \"openai:gpt-4.1-mini\"\n",
    );
    ctx.write(".agents/rubric.md", "Is the change correct?\n");
    ctx.write(
        ".agents/workflows/judged.toml",
        "[phases.do]\nagent = \"doer\"\ntask = \"do {{goal}}\"\ngates = [\"review\"]\n",
    );
    let cfg = ctx.path(".agents/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[gates.review]\nkind = \"judge\"\nbackend = \"anthropic:claude-haiku-4-5\"\nrubric = \"rubric.md\"\n");
    std::fs::write(&cfg, text).unwrap();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "project"]);
    let r: agentops_testkit::Run = ctx
        .command(&["run", "judged", "x"])
        .env("AGENTOPS_LLM_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("gate `review`") && r.stderr.contains("ANTHROPIC_API_KEY"),
        "{}",
        r.stderr
    );
    assert_eq!(ctx.git(&["branch", "--list", "agentops/run/*"]), "");
}
