//! `bench/run runner`: the runner's own cost, with the scripted model server
//! answering at once (its loopback round trip is the baseline beside it).
//!
//! - orchestration overhead per step and per model call, excluding model
//!   time: a workflow of S sequential phases run twice, with 1 and with 10
//!   model calls per phase (a `read_file` tool call between calls); overhead
//!   = wall time − time inside the model client; the difference between the
//!   two runs gives the per-call share, the rest is per step.
//! - resume of a run with 1,000 recorded calls: from the `resume` call to
//!   the first live request the server receives.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentops_core::config::Config;
use agentops_core::{EventKind, RunId};
use agentops_llm::scripted::{Reply, Rule, Script, ScriptedServer};
use agentops_runner::spec::Budget;
use agentops_runner::{Outcome, Progress, ProgressEvent, ResumeOptions, RunContext, StartOptions};
use agentops_store::{Journal, Query, RepoLayout};

struct Silent;
impl Progress for Silent {
    fn event(&self, _: &ProgressEvent) {}
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn sh(dir: &Path, args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("spawn")
        .status
        .success();
    assert!(ok, "{args:?}");
}

/// A repository with `phases` sequential phases of one agent.
fn project(
    phases: usize,
    calls: usize,
    server: &ScriptedServer,
) -> (tempfile::TempDir, RepoLayout, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    sh(root, &["git", "init", "-q", "-b", "main"]);
    sh(root, &["git", "config", "user.name", "bench"]);
    sh(root, &["git", "config", "user.email", "bench@example.com"]);
    std::fs::write(root.join("README.md"), "# bench\n").unwrap();
    sh(
        root,
        &[crate::agentops_bin().to_str().unwrap(), "init", "-q"],
    );
    let agents = root.join(".agents");
    std::fs::create_dir_all(agents.join("agents")).unwrap();
    std::fs::create_dir_all(agents.join("workflows")).unwrap();
    std::fs::write(
        agents.join("agents/worker.toml"),
        format!("purpose = \"Do one step.\"\nbackend = \"openai:gpt-4.1-mini\"\ntools = [\"read_file\"]\nmax_turns = {}\n\n[context]\nknowledge = false\n", calls + 1),
    )
    .unwrap();
    let mut wf = String::new();
    for i in 0..phases {
        wf.push_str(&format!(
            "[phases.p{i:03}]\nagent = \"worker\"\ntask = \"step {i} of {{{{goal}}}}\"\n"
        ));
        if i > 0 {
            wf.push_str(&format!("needs = [\"p{:03}\"]\n", i - 1));
        }
        wf.push('\n');
    }
    std::fs::write(agents.join("workflows/chain.toml"), wf).unwrap();
    let cfg = agents.join("config.toml");
    let mut c = std::fs::read_to_string(&cfg).unwrap();
    c = c.replacen(
        "\n[llm]\n",
        &format!("\n[llm]\nopenai_base_url = \"{}\"\n", server.openai_base()),
        1,
    );
    std::fs::write(&cfg, c).unwrap();
    sh(root, &["git", "add", "-A"]);
    sh(root, &["git", "commit", "-q", "-m", "bench project"]);
    let layout = RepoLayout::discover(root).unwrap();
    let config = agentops_store::project::load_config(Some(&layout), Vec::new()).unwrap();
    (dir, layout, config)
}

fn script(calls: usize) -> Script {
    let mut s = Script::default();
    for t in 0..calls.saturating_sub(1) {
        s.rules.push(Rule {
            turn: Some(t),
            reply: Reply::tool("read_file", serde_json::json!({"path": "README.md"})),
            ..Rule::default()
        });
    }
    s.fallback = Some(Reply::text("step done"));
    s
}

fn model_ms(j: &Journal, run: &str) -> f64 {
    let id = RunId::parse(run).unwrap();
    j.read(&Query {
        run_id: Some(id),
        kinds: vec![EventKind::LlmCall],
        ..Query::default()
    })
    .unwrap()
    .iter()
    .map(|e| e.body["duration_ms"].as_f64().unwrap_or(0.0))
    .sum()
}

/// (wall ms, model ms) of one run of `phases` × `calls`.
fn timed_run(phases: usize, calls: usize) -> (f64, f64) {
    let server = ScriptedServer::start(script(calls)).unwrap();
    let (_dir, layout, config) = project(phases, calls, &server);
    let j = Journal::open_for(&layout, &config).unwrap();
    let ctx = RunContext {
        layout: &layout,
        config: &config,
        journal: &j,
        env: &no_env,
        progress: &Silent,
        publish: None,
        lost: None,
    };
    let t = Instant::now();
    let out = agentops_runner::start(
        &ctx,
        &StartOptions {
            workflow: "chain".into(),
            goal: "bench".into(),
            ..StartOptions::default()
        },
    )
    .unwrap();
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let Outcome::Completed { run, .. } = out else {
        panic!("run did not complete: {out:?}")
    };
    assert_eq!(server.count(), phases * calls);
    (wall, model_ms(&j, &run))
}

/// Median over `n` runs of the overhead (wall − model time) and the model time.
fn overhead(phases: usize, calls: usize, n: usize) -> (f64, f64) {
    let mut v: Vec<(f64, f64)> = (0..n)
        .map(|_| timed_run(phases, calls))
        .map(|(w, m)| (w - m, m))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v[n / 2]
}

pub fn run(quick: bool) {
    let (s1, s2, n) = if quick { (4, 16, 3) } else { (5, 40, 5) };
    println!("## Runner (scripted model server on loopback answering at once)\n");
    // overhead(S, C) = per run + S × per step + S × C × per call
    let (o_a, _) = overhead(s1, 1, n);
    let (o_b, m_b) = overhead(s2, 1, n);
    let (o_c, m_c) = overhead(s2, 10, n);
    let per_call = (o_c - o_b) / (s2 as f64 * 9.0);
    let per_step = (o_b - o_a) / (s2 - s1) as f64 - per_call;
    let per_run = o_a - s1 as f64 * (per_step + per_call);
    let model_per_call = (m_b + m_c) / (s2 as f64 * 11.0);
    println!(
        "| measurement (median of {n} runs each) | agentops | baseline: one model call's round trip on loopback | target |"
    );
    println!("|---|---|---|---|");
    println!(
        "| overhead of runs of {s1}×1, {s2}×1, {s2}×10 phases×calls (wall − time in the model client) | {o_a:.1} / {o_b:.1} / {o_c:.1} ms | | |"
    );
    println!(
        "| fixed cost per run (branch + worktree, index and journal open, run summary) | {per_run:.1} ms | | |"
    );
    println!(
        "| orchestration overhead per step (prompt, checkpoint commit, durable step record) | {per_step:.2} ms | | ≤ 2 ms |"
    );
    println!(
        "| orchestration overhead per model call (request key, durable call record, tool call + record) | {per_call:.3} ms | {model_per_call:.3} ms | ≤ 0.5 ms |"
    );

    // Resume: 100 phases × 10 calls recorded, paused by a turns budget 5
    // calls into the 101st phase.
    let (ph, calls) = if quick { (21, 10) } else { (101, 10) };
    let recorded = (ph - 1) * calls + 5;
    let server = ScriptedServer::start(script(calls)).unwrap();
    let (_dir, layout, config) = project(ph, calls, &server);
    let j = Journal::open_for(&layout, &config).unwrap();
    let ctx = RunContext {
        layout: &layout,
        config: &config,
        journal: &j,
        env: &no_env,
        progress: &Silent,
        publish: None,
        lost: None,
    };
    let out = agentops_runner::start(
        &ctx,
        &StartOptions {
            workflow: "chain".into(),
            goal: "bench".into(),
            budget: Budget {
                turns: Some(recorded as u64),
                ..Budget::default()
            },
            ..StartOptions::default()
        },
    )
    .unwrap();
    let Outcome::Paused { run, .. } = out else {
        panic!("expected a pause: {out:?}")
    };
    assert_eq!(server.count(), recorded);
    // A fresh journal handle, as a new `agentops resume` process has.
    drop(j);
    let j = Journal::open_for(&layout, &config).unwrap();
    let ctx = RunContext {
        layout: &layout,
        config: &config,
        journal: &j,
        env: &no_env,
        progress: &Silent,
        publish: None,
        lost: None,
    };
    let id = RunId::parse(&run).unwrap();
    let t0 = server.elapsed();
    let start = Instant::now();
    let out = agentops_runner::resume(
        &ctx,
        &id,
        &ResumeOptions {
            budget: Budget {
                turns: Some(1_000_000),
                ..Budget::default()
            },
        },
    )
    .unwrap();
    let total = start.elapsed();
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let got = server.received();
    let first_live = got[recorded].at.saturating_sub(t0);
    println!(
        "| resume of a run with {recorded} recorded calls → first live request | {:.1} ms | (whole resume to completion: {:.1} ms) | ≤ 100 ms |",
        first_live.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0
    );
    let _ = Duration::ZERO;
}
