//! The runner through the binary: workflows end to end on both API wire
//! formats against the scripted model server, parallel phases, budget pauses
//! and resume, command harnesses driven by fake `claude` and `codex`, and
//! kill -9 at random instants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agentops_runner::demo;
use agentops_testkit::TestContext;
use agentops_testkit::model::{IdStyle, Reply, Rule, Script, ScriptedServer};
use serde_json::Value;

mod common;

use common::{BIN, GOAL, run_id};

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/fixtures")
}

fn project() -> TestContext {
    common::demo_project(true)
}

fn openai_env(s: &ScriptedServer) -> Vec<(&'static str, String)> {
    vec![("AGENTOPS_LLM_OPENAI_BASE_URL", s.openai_base())]
}

fn show(ctx: &TestContext, id: &str) -> Value {
    serde_json::from_str(ctx.run(&["show", id, "--json"]).ok()).unwrap()
}

/// Response ids of the calls the journal recorded (completed calls).
fn recorded_reply_ids(ctx: &TestContext, id: &str) -> HashSet<String> {
    ctx.run(&["show", id, "--recording"])
        .ok()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["response"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn final_file(ctx: &TestContext, id: &str, path: &str) -> String {
    ctx.git(&["show", &format!("agentops/run/{id}:{path}")])
}

#[test]
fn three_phases_end_to_end_on_both_api_backends() {
    for wire in ["openai", "anthropic"] {
        let server = ScriptedServer::start(demo::script()).unwrap();
        let ctx = project();
        let env = if wire == "openai" {
            openai_env(&server)
        } else {
            for a in ["planner", "coder", "reviewer"] {
                let p = ctx.path(&format!(".agents/agents/{a}.toml"));
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5");
                std::fs::write(p, t).unwrap();
            }
            ctx.git(&["commit", "-qam", "anthropic agents"]);
            vec![
                ("AGENTOPS_LLM_ANTHROPIC_BASE_URL", server.url()),
                ("ANTHROPIC_API_KEY", "sk-ant-test-0000".to_owned()),
            ]
        };
        let main_before = ctx.git(&["rev-parse", "main"]);
        let r = ctx.run_env(&["run", "feature", GOAL], &env);
        assert_eq!(r.code, 0, "{wire}: {}\n{}", r.stdout, r.stderr);
        let id = run_id(&ctx);
        // The work landed on the run branch, not on main.
        assert_eq!(ctx.git(&["rev-parse", "main"]), main_before);
        let greet = final_file(&ctx, &id, "src/greet.sh");
        assert!(
            greet.contains("exit 2") && greet.contains("Hello, $1!"),
            "{greet}"
        );
        let summary = final_file(&ctx, &id, &format!(".agents/runs/{id}.md"));
        assert!(summary.contains("| implement | coder | 2 |"), "{summary}");
        let log = ctx.git(&["log", "--format=%s", &format!("main..agentops/run/{id}")]);
        // implement and review changed files (a checkpoint commit each), plan
        // only read (its checkpoint is the commit it started from), then the
        // completion commit with the run summary.
        assert_eq!(log.lines().count(), 3, "{log}");
        // The server saw the real wire format, every phase, the gate feedback
        // on the retry, the knowledge packet and the earlier phase's summary.
        let got = server.received();
        assert_eq!(got.len(), 10, "{wire}");
        assert!(got.iter().all(|g| g.api == wire && g.stream));
        let text = |i: usize| got[i].body.to_string();
        assert!(
            text(0).contains("Greeting format ends with an exclamation mark"),
            "packet missing"
        );
        let second_attempt = got
            .iter()
            .position(|g| {
                g.body
                    .to_string()
                    .contains("Feedback from the previous attempt")
            })
            .unwrap();
        assert!(text(second_attempt).contains("an empty name must fail"));
        assert!(text(2).contains("Earlier phases") && text(2).contains("Refuse an empty name"));
        let s = show(&ctx, &id);
        assert_eq!(s["status"], "completed");
        assert_eq!(s["calls"], 10);
        assert!(
            s["cost_usd"].as_f64().unwrap() > 0.0,
            "priced from the table"
        );
        // land merges into main; gc removes the worktree.
        ctx.run(&["land", &id]).ok();
        assert!(ctx.path("src/greet.sh").exists());
        assert!(
            std::fs::read_to_string(ctx.path("src/greet.sh"))
                .unwrap()
                .contains("exit 2")
        );
        let wt = ctx.git_dir().join("agentops/worktrees").join(&id);
        assert!(wt.exists());
        ctx.run(&["gc"]).ok();
        assert!(!wt.exists());
        let again = ctx.run(&["land", &id]);
        assert_eq!(again.code, 1, "landing twice is refused");
    }
}

#[test]
fn budget_exhaustion_pauses_with_exit_3_then_resume_never_pays_twice() {
    let server = ScriptedServer::start(demo::script()).unwrap();
    let ctx = project();
    let env = openai_env(&server);
    let r = ctx.run_env(&["run", "feature", GOAL, "--budget-turns", "4"], &env);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("paused (budget)"), "{}", r.stdout);
    let id = run_id(&ctx);
    let runs = ctx.run(&["runs"]).ok().to_owned();
    assert!(runs.contains("paused") && runs.contains("budget"), "{runs}");
    let before: Vec<_> = server.received();
    assert_eq!(before.len(), 4);
    // Resuming with the same budget pauses again at once, paying nothing.
    let again = ctx.run_env(&["resume", &id], &env);
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert_eq!(server.count(), 4);
    let done = ctx.run_env(&["resume", &id, "--budget-turns", "50"], &env);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    let all = server.received();
    assert_eq!(
        all.len(),
        10,
        "4 before the pause + 6 new; the 2 of the interrupted phase came from the journal"
    );
    let first_bodies: HashSet<String> = before.iter().map(|r| r.body.to_string()).collect();
    assert!(
        all[4..]
            .iter()
            .all(|r| !first_bodies.contains(&r.body.to_string())),
        "a completed call was sent again"
    );
    let bad = ctx.run_env(&["resume", &id], &env);
    assert_eq!(bad.code, 1, "a completed run cannot resume");
}

#[test]
fn independent_phases_run_in_parallel() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init"]).ok();
    ctx.write(".agents/agents/writer.toml", "purpose = \"Write one file.\"\nbackend = \"openai:gpt-4.1-mini\"\ntools = [\"write_file\"]\nwrite_scope = [\"out/**\"]\n");
    ctx.write(
        ".agents/workflows/fan.toml",
        "[phases.plan]\nagent = \"writer\"\ntask = \"plan {{goal}}\"\n\n[phases.api]\nagent = \"writer\"\ntask = \"api {{goal}}\"\nneeds = [\"plan\"]\n\n[phases.ui]\nagent = \"writer\"\ntask = \"ui {{goal}}\"\nneeds = [\"plan\"]\n\n[phases.review]\nagent = \"writer\"\ntask = \"review {{goal}}\"\nneeds = [\"api\", \"ui\"]\n",
    );
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-q", "-m", "fan"]);
    let mut script = Script::default();
    for p in ["api", "ui"] {
        script.rules.push(Rule {
            contains: vec![format!("# Task ({p})")],
            turn: Some(0),
            reply: Reply {
                delay_ms: 400,
                ..Reply::tool(
                    "write_file",
                    serde_json::json!({"path": format!("out/{p}.txt"), "content": p}),
                )
            },
            ..Rule::default()
        });
    }
    script.fallback = Some(Reply::text("done"));
    let server = ScriptedServer::start(script).unwrap();
    let r = ctx.run_env(&["run", "fan", "x"], &openai_env(&server));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let order: Vec<String> = server
        .received()
        .iter()
        .map(|g| {
            let s = g.body.to_string();
            let phase = ["plan", "api", "ui", "review"]
                .into_iter()
                .find(|p| s.contains(&format!("# Task ({p})")))
                .unwrap();
            format!("{phase}{}", g.turn)
        })
        .collect();
    // Both middle phases asked before either got its first answer.
    assert_eq!(&order[0], "plan0");
    let mut mid: Vec<&str> = order[1..3].iter().map(String::as_str).collect();
    mid.sort_unstable();
    assert_eq!(mid, vec!["api0", "ui0"], "{order:?}");
    assert_eq!(order.last().unwrap(), "review0");
    let id = run_id(&ctx);
    assert_eq!(final_file(&ctx, &id, "out/api.txt"), "api");
    assert_eq!(final_file(&ctx, &id, "out/ui.txt"), "ui");
}

fn fake_harness(ctx: &TestContext, name: &str, fixture: &str) -> std::path::PathBuf {
    let bin = ctx.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\n# A stand-in `{name}`: reads the task on stdin, edits a file, replays a recorded stream.\ncat > .task-seen\nmkdir -p src && echo 'changed by {name}' > src/{name}.txt\nrm .task-seen\ncat '{}'\n",
        fixtures().join(fixture).display()
    );
    let p = bin.join(name);
    std::fs::write(&p, script).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&p)
        .status()
        .unwrap();
    bin
}

#[test]
fn command_backends_drive_fake_claude_and_codex_from_the_stream_fixtures() {
    for (harness, fixture, input_tokens, cost) in [
        (
            "claude",
            "claude-code/stream-json/run-with-tool.jsonl",
            2_429 + 12_044 + 12_446,
            Some(0.0571),
        ),
        ("codex", "codex/exec-json-run.jsonl", 24_763, None),
    ] {
        let ctx = TestContext::new(BIN);
        ctx.run(&["init"]).ok();
        ctx.write(".agents/agents/impl.toml", &format!("purpose = \"Implement the change.\"\nbackend = \"command:{harness}\"\nwrite_scope = [\"src/**\"]\n"));
        ctx.write(
            ".agents/workflows/one.toml",
            "[phases.build]\nagent = \"impl\"\ntask = \"Do {{goal}}\"\ngates = [\"scope\"]\n",
        );
        let cfg = ctx.path(".agents/config.toml");
        let mut t = std::fs::read_to_string(&cfg).unwrap();
        t.push_str("\n[gates.scope]\nkind = \"scope\"\nallow = [\"src/**\", \".agents/**\"]\n");
        std::fs::write(&cfg, t).unwrap();
        ctx.git(&["add", "-A"]);
        ctx.git(&["commit", "-q", "-m", "one"]);
        let bin = fake_harness(&ctx, harness, fixture);
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let r = ctx.run_env(
            &["run", "one", "rate limiting", "--json"],
            &[("PATH", path)],
        );
        assert_eq!(r.code, 0, "{harness}: {}\n{}", r.stdout, r.stderr);
        // --json streams progress events as JSON lines.
        let events: Vec<Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            events.iter().any(|e| e["event"] == "phase_completed"),
            "{}",
            r.stdout
        );
        let id = run_id(&ctx);
        assert_eq!(
            final_file(&ctx, &id, &format!("src/{harness}.txt")).trim_end(),
            format!("changed by {harness}")
        );
        let rec: Vec<Value> = ctx
            .run(&["show", &id, "--recording"])
            .ok()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rec.len(), 1);
        assert_eq!(
            rec[0]["response"]["usage"]["input_tokens"], input_tokens,
            "{harness}"
        );
        let s = show(&ctx, &id);
        if let Some(c) = cost {
            assert!(
                (s["cost_usd"].as_f64().unwrap() - c).abs() < 1e-9,
                "reported cost used: {s}"
            );
        }
        assert!(
            rec[0]["response"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .len()
                > 10
        );
    }
}

#[test]
fn kill_nine_at_random_instants_then_resume_reaches_the_same_tree() {
    kill_and_resume(IdStyle::Provider, 24, 12, 0x5eed_1234_abcd);
}

/// Servers whose ids are not provider-shaped (llama.cpp's opaque random
/// ids, UUIDs, numbers): redaction keeps them, so resume pays for nothing twice.
#[test]
fn kill_nine_then_resume_pays_nothing_twice_whatever_the_id_shape() {
    for (style, seed) in [
        (IdStyle::Opaque, 0x0a11_5eed),
        (IdStyle::Uuid, 0x0b22_5eed),
        (IdStyle::Numeric, 0x0c33_5eed),
    ] {
        kill_and_resume(style, 10, 2, seed);
    }
}

fn styled(style: IdStyle) -> Script {
    let mut s = demo::script();
    s.id_style = style;
    s
}

fn kill_and_resume(style: IdStyle, trials: usize, min_interrupted: usize, seed: u64) {
    // The uninterrupted result.
    let server = ScriptedServer::start(styled(style)).unwrap();
    let ctx = project();
    let env = openai_env(&server);
    ctx.run_env(&["run", "feature", GOAL], &env).ok();
    let base_id = run_id(&ctx);
    let want = final_file(&ctx, &base_id, "src/greet.sh");
    // Calls one whole run makes (the script is deterministic).
    let per_run = server.received().len();
    let started = Instant::now();
    let _ = ctx.run_env(&["run", "feature", GOAL], &env);
    let full = started.elapsed();
    let mut rand = common::xorshift(seed);
    let mut interrupted = 0;
    // At least `trials` kills; more (up to three times as many) while fewer
    // than `min_interrupted` landed mid-run: on a loaded machine a run starts
    // slower than the one timed above, and more kills land before it is
    // recorded, which proves nothing either way.
    let mut trial = 0;
    while trial < trials || (interrupted < min_interrupted && trial < 3 * trials) {
        trial += 1;
        let server = ScriptedServer::start(styled(style)).unwrap();
        let env = openai_env(&server);
        let runs_before = ctx.run(&["runs", "--json"]).ok().to_owned();
        let mut c = ctx.command(&["run", "feature", GOAL]);
        for (k, v) in &env {
            c.env(k, v);
        }
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = Duration::from_micros(rand() % (full.as_micros() as u64).max(1));
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if ctx.run(&["runs", "--json"]).ok() == runs_before {
            continue; // killed before the run was recorded: nothing to resume
        }
        let id = run_id(&ctx);
        let before_kill = server.received();
        let recorded_at_kill = recorded_reply_ids(&ctx, &id);
        let recorded_calls = ctx.run(&["show", &id, "--recording"]).ok().lines().count();
        if status.success() || show(&ctx, &id)["status"] == "completed" {
            // It finished (at least in the journal) before the kill landed.
        } else {
            interrupted += 1;
            let r = ctx.run_env(&["resume", &id], &env);
            assert_eq!(
                r.code, 0,
                "{style:?} trial {trial}: {}\n{}",
                r.stdout, r.stderr
            );
        }
        assert_eq!(final_file(&ctx, &id, "src/greet.sh"), want, "trial {trial}");
        let learning = ctx.git(&[
            "ls-tree",
            "-r",
            "--name-only",
            &format!("agentops/run/{id}"),
            ".agents/learnings",
        ]);
        assert_eq!(
            learning
                .lines()
                .filter(|l| l.contains(&format!("run-{id}")))
                .count(),
            1,
            "trial {trial}"
        );
        // The server never saw a request again whose answer was recorded.
        let after = server.received();
        // Exactly the calls not recorded were made again: none twice (a
        // resent call may differ in its body, e.g. ids, so count them).
        assert_eq!(
            after.len() - before_kill.len(),
            per_run - recorded_calls,
            "{style:?} trial {trial}: {} calls after the kill, {recorded_calls} of {per_run} were recorded",
            after.len() - before_kill.len()
        );
        for old in &before_kill {
            let completed = old
                .reply_id
                .as_ref()
                .is_some_and(|r| recorded_at_kill.contains(r));
            if completed {
                let repeats = after[before_kill.len()..]
                    .iter()
                    .filter(|n| n.body == old.body)
                    .count();
                assert_eq!(
                    repeats, 0,
                    "{style:?} trial {trial}: completed call {} was sent again",
                    old.n
                );
            }
        }
        let s = show(&ctx, &id);
        assert_eq!(s["status"], "completed", "trial {trial}");
        assert!(
            !ctx.git_dir().join("objects/maintenance.lock").exists(),
            "trial {trial}: git maintenance left its lock"
        );
    }
    assert!(
        interrupted >= min_interrupted,
        "{style:?}: only {interrupted} of {trial} trials were interrupted mid-run"
    );
}

#[test]
fn specs_are_validated_and_linted_with_file_line_and_key() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init"]).ok();
    ctx.write(".agents/agents/doer.toml", "purpose = \"Plan and build.\"\nbackend = \"openai:gpt-4.1-mini\"\ntools = [\"write_file\"]\nwrite_scope = [\"**\"]\n");
    ctx.write(".agents/workflows/bad.toml", "[phases.a]\nagent = \"doer\"\ntask = \"x\"\nneeds = [\"b\"]\n\n[phases.b]\nagent = \"ghost\"\ntask = \"y\"\nneeds = [\"a\"]\ngates = [\"missing\"]\n");
    let v = ctx.run(&["workflows", "validate"]);
    assert_eq!(v.code, 2);
    assert!(
        v.stdout
            .contains("bad.toml:7: phases.b.agent: no agent `ghost`"),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("bad.toml:10: phases.b.gates: no gate `missing`"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("cycle"), "{}", v.stdout);
    let r = ctx.run(&["run", "bad", "goal"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml:7"), "{}", r.stderr);
    let l = ctx.run(&["agents", "lint"]);
    assert_eq!(l.code, 1);
    assert!(
        l.stdout.contains("doer.toml:1: doer: purpose has \"and\""),
        "{}",
        l.stdout
    );
    assert!(
        l.stdout
            .contains("doer.toml:4: doer: write_scope covers everything"),
        "{}",
        l.stdout
    );
    ctx.write(
        ".agents/agents/broken.toml",
        "purpose = \"x\"\nbackend = \"gpt\"\n",
    );
    let b = ctx.run(&["agents", "list"]);
    assert_eq!(b.code, 2);
    assert!(
        b.stderr.contains("broken.toml:2: `backend`"),
        "{}",
        b.stderr
    );
    // A missing key: a clear error naming the variable before anything is
    // created (exit 2).
    std::fs::remove_file(ctx.path(".agents/agents/broken.toml")).unwrap();
    ctx.write(
        ".agents/agents/planner.toml",
        "purpose = \"Plan.\"\nbackend = \"anthropic:claude-haiku-4-5\"\n",
    );
    ctx.write(
        ".agents/workflows/p.toml",
        "[phases.plan]\nagent = \"planner\"\ntask = \"plan {{goal}}\"\n",
    );
    let mut c = ctx.command(&["run", "p", "x"]);
    c.env_remove("ANTHROPIC_API_KEY");
    let r: agentops_testkit::Run = c.output().unwrap().into();
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ANTHROPIC_API_KEY"), "{}", r.stderr);
}

#[test]
fn demo_runs_end_to_end_offline_and_says_what_stands_in() {
    let ctx = TestContext::empty(BIN);
    let dir = ctx.home.join("demo");
    let r = ctx.run(&["demo", "--keep", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("SCRIPTED stand-in"), "{}", r.stdout);
    assert!(r.stdout.contains("paused (budget)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("gate tests: FAIL") && r.stdout.contains("gate tests: PASS"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("completed at"), "{}", r.stdout);
    // The kept repository holds the finished run, ready to land.
    let runs = std::process::Command::new(BIN)
        .args(["runs", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(v[0]["status"], "completed");
    // What users see, pinned: the demo's story, and each view of its run.
    let id = v[0]["id"].as_str().unwrap().to_owned();
    let d = dir.to_str().unwrap();
    let settings = ctx.insta_settings_with(&[
        (r"\b01[0-9a-hjkmnp-tv-z]{24}\b", "[RUN]"),
        (r"\b\d\d:\d\d:\d\d\b", "[HH:MM:SS]"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d", "[DATE]"),
        (r"[█▒·]+", "[BAR]"),
        (r"\b[0-9a-f]{7,12}\b", "[SHA]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"\[DURATION\] +", "[DURATION] "),
        (r" +\[DURATION\]", " [DURATION]"),
    ]);
    let _g = settings.bind_to_scope();
    insta::assert_snapshot!("demo_story", r.stdout);
    insta::assert_snapshot!("demo_runs", ctx.run(&["-C", d, "runs"]).ok());
    insta::assert_snapshot!("demo_show", ctx.run(&["-C", d, "show", &id]).ok());
    insta::assert_snapshot!(
        "demo_trace",
        ctx.run(&["-C", d, "trace", &id, "--width", "120"]).ok()
    );
    let gate = ctx.run(&["-C", d, "gate", "run", "tests", "scope"]);
    insta::assert_snapshot!(
        "demo_gate_run",
        format!("exit {}\n{}", gate.code, gate.stdout)
    );
    let status = ctx.run(&["-C", d, "status"]);
    insta::assert_snapshot!(
        "demo_status",
        format!("exit {}\n{}", status.code, status.stdout)
    );
    let again = ctx.run(&["demo", "--keep", dir.to_str().unwrap()]);
    assert_eq!(again.code, 2, "a non-empty directory is refused");
}

#[test]
fn judge_and_council_gates_against_the_scripted_server() {
    let ctx = TestContext::new(BIN);
    ctx.run(&["init"]).ok();
    ctx.write(
        ".agents/rubrics/quality.md",
        "PASS only if the change adds a test for the rate limiter.\n",
    );
    let cfg = ctx.path(".agents/config.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str(
        "\n[gates.quality]\nkind = \"judge\"\nbackend = \"openai:judge-a\"\nrubric = \"rubrics/quality.md\"\nagent = \"reviewer\"\n\n[gates.second]\nkind = \"judge\"\nbackend = \"anthropic:judge-b\"\nrubric = \"rubrics/quality.md\"\n\n[gates.third]\nkind = \"judge\"\nbackend = \"openai:judge-c\"\nrubric = \"rubrics/quality.md\"\n\n[gates.panel]\nkind = \"council\"\njudges = [\"quality\", \"second\", \"third\"]\nrule = \"majority\"\n\n[gates.strict]\nkind = \"council\"\njudges = [\"quality\", \"second\", \"third\"]\nrule = \"any-fail-blocks\"\n",
    );
    std::fs::write(&cfg, t).unwrap();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-q", "-m", "gates"]);
    ctx.write(
        "src/limiter.rs",
        "pub fn allow() -> bool { true }\n#[test] fn limits() { assert!(allow()); }\n",
    );
    let judge_script = |a: &str| {
        Script::default()
            .rule(&["judge-a"], None, Reply::text(a))
            .rule(
                &["judge-b"],
                None,
                Reply::text("After review. Verdict: FAIL — the test asserts nothing useful."),
            )
            .rule(
                &["judge-c"],
                None,
                Reply::text("```json\n{\"score\": 0.95, \"reasons\": [\"a test was added\"]}\n```"),
            )
    };
    let server = ScriptedServer::start(judge_script(
        "{\"score\": 0.9, \"verdict\": \"PASS\", \"reasons\": [\"test added\"]}",
    ))
    .unwrap();
    let env = vec![
        ("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base()),
        ("AGENTOPS_LLM_ANTHROPIC_BASE_URL", server.url()),
    ];
    let r = ctx.run_env(
        &["gate", "run", "quality", "--base", "HEAD", "--json"],
        &env,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["results"][0]["verdict"], "PASS");
    assert_eq!(v["results"][0]["evidence"]["score"], 0.9);
    let asked = server.received()[0].body.to_string();
    assert!(
        asked.contains("adds a test for the rate limiter") && asked.contains("pub fn allow()"),
        "rubric and diff reach the judge"
    );
    // Council: 2 of 3 pass → majority passes, any-fail-blocks fails.
    let r = ctx.run_env(&["gate", "run", "panel", "--base", "HEAD", "--json"], &env);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let votes = v["results"][0]["evidence"]["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 3);
    assert_eq!(votes[1]["verdict"], "FAIL");
    let r = ctx.run_env(&["gate", "run", "strict", "--base", "HEAD"], &env);
    assert_eq!(r.code, 1, "{}", r.stdout);
    // Malformed judge output is a FAIL with the text as evidence, not a crash.
    server.set_script(judge_script("Looks great to me!"));
    let r = ctx.run_env(
        &["gate", "run", "quality", "--base", "HEAD", "--json"],
        &env,
    );
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["results"][0]["evidence"]["unparsed"],
        "Looks great to me!"
    );
    // A judge may not judge its own agent's work.
    ctx.write(
        ".agents/agents/reviewer.toml",
        "purpose = \"Review.\"\nbackend = \"openai:gpt-4.1-mini\"\n",
    );
    ctx.write(
        ".agents/workflows/self.toml",
        "[phases.review]\nagent = \"reviewer\"\ntask = \"review {{goal}}\"\ngates = [\"panel\"]\n",
    );
    let r = ctx.run(&["workflows", "validate", "self"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("self.toml:4") && r.stdout.contains("whose work it would judge"),
        "{}",
        r.stdout
    );
    // Configuration errors name file, line and key.
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str("\n[gates.bad]\nkind = \"judge\"\nbackend = \"openai:m\"\n");
    std::fs::write(&cfg, t).unwrap();
    let r = ctx.run(&["gate", "list"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("gates.bad.rubric"), "{}", r.stderr);
}
