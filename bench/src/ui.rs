//! Issue 20 figures: `agentops ui`'s time per page over a journal of
//! 10,000 runs and 1,000,000 events — the runs list, the cost page, and a
//! 10,000-span run's detail — measured as loopback HTTP round trips to a
//! running server (after its first page, reported apart), beside the CLI
//! commands that show the same (whole processes); and the size of the
//! assets embedded in the binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::{Durability, Journal};
use serde_json::json;

use crate::stats::{Samples, ms, time_process};
use crate::telemetry::{append, project, run_events};

const TOKEN: &str = "bench-token";

/// One small run: five phases of six model calls and tool calls each,
/// ending as most runs do (some paused for a person, some failed).
fn small_run(r: usize, t0: i64) -> Vec<NewEvent> {
    let run = RunId::parse(&format!("01bench{r:06}")).expect("id");
    let ev = |ts: i64, kind: EventKind, body: serde_json::Value| {
        NewEvent::at(ts, run.clone(), kind, body)
    };
    let workflow = ["feature", "bugfix", "review"][r % 3];
    let mut out = vec![ev(
        t0,
        EventKind::RunStarted,
        json!({"workflow": {"name": workflow, "phases": {"p0": {}, "p1": {}, "p2": {}, "p3": {}, "p4": {}}},
               "goal": format!("bench goal {r}"), "branch": format!("agentops/run/01bench{r:06}"), "agents": {}, "gates": {}}),
    )];
    let mut t = t0;
    for p in 0..5 {
        let phase = SpanId::generate();
        let agent = format!("agent{p}");
        t += 1_000;
        out.push(
            ev(t, EventKind::StepStarted, json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "model": "gpt-4.1-mini"}))
                .in_span(phase.clone(), None),
        );
        for c in 0..6 {
            t += 2_000;
            out.push(
                ev(t, EventKind::LlmCall, json!({"key": format!("k{p}-{c}"), "phase": format!("p{p}"), "turn": c, "agent": agent,
                    "provider": "openai", "model": if r.is_multiple_of(2) { "gpt-4.1-mini" } else { "gpt-4.1" },
                    "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 600, "cache_creation_tokens": 0},
                    "cost_usd": 0.0003, "duration_ms": 400.0 + (r % 900) as f64}))
                    .in_span(SpanId::generate(), Some(phase.clone())),
            );
            t += 500;
            out.push(
                ev(t, EventKind::ToolCall, json!({"phase": format!("p{p}"), "turn": c, "tool": "read_file", "tool_use_id": format!("t{c}"),
                    "output": "fn main() {}", "is_error": false, "duration_ms": 0.4, "agent": agent}))
                    .in_span(SpanId::generate(), Some(phase.clone())),
            );
        }
        t += 1_000;
        out.push(
            ev(t, EventKind::GateVerdict, json!({"gate": "tests", "kind": "command", "verdict": if r.is_multiple_of(7) && p == 4 { "FAIL" } else { "PASS" }, "summary": "ok"}))
                .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 1_000;
        out.push(
            ev(t, EventKind::StepCompleted, json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "commit": "abc", "duration_ms": 5000.0}))
                .in_span(phase, None),
        );
    }
    out.push(if r.is_multiple_of(50) {
        ev(
            t + 1_000,
            EventKind::RunPaused,
            json!({"reason": "approval", "detail": "gate deploy waits"}),
        )
    } else if r.is_multiple_of(37) {
        ev(
            t + 1_000,
            EventKind::RunCompleted,
            json!({"status": "failed", "error": "a model call failed"}),
        )
    } else {
        ev(
            t + 1_000,
            EventKind::RunCompleted,
            json!({"status": "completed"}),
        )
    });
    out
}

fn get(addr: SocketAddr, path: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let status = std::str::from_utf8(&raw[..raw.len().min(12)])
        .ok()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw.len())
}

fn timed(addr: SocketAddr, path: &str, n: usize) -> (Duration, Samples, usize) {
    let t = Instant::now();
    let (st, bytes) = get(addr, path);
    let first = t.elapsed();
    assert_eq!(st, 200, "{path}");
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (st, _) = get(addr, path);
        v.push(t.elapsed());
        assert_eq!(st, 200, "{path}");
    }
    (first, Samples::new(v), bytes)
}

pub fn run(quick: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let j: Journal = project(&repo);
    let n_runs: usize = if quick { 2_000 } else { 10_000 };
    let now = agentops_core::time::now_micros();
    let t = Instant::now();
    let mut batch = Vec::new();
    for r in 0..n_runs {
        // Over the last 30 days, the newest last.
        let t0 = now - ((n_runs - r) as i64) * (30 * 86_400_000_000 / n_runs as i64);
        batch.extend(small_run(r, t0));
        if batch.len() >= 20_000 {
            j.append_batch(std::mem::take(&mut batch), Durability::Relaxed)
                .expect("append");
        }
    }
    j.append_batch(batch, Durability::Relaxed).expect("append");
    // The 10,000-span run: 100 phases × 50 calls × (model + tool).
    // Its `run.started` as a real run writes it (the run page reads the
    // workflow, agents and budget from it).
    let mut trace_run = run_events("01tracerun", now - 3_600_000_000, 100, 50);
    trace_run[0].body = serde_json::from_str(include_str!(
        "../../crates/agentops-web/tests/data/run_started.json"
    ))
    .expect("run.started body");
    append(&j, trace_run);
    // Harness sessions up to the million: per tool call two hook events and
    // a tool span, a model call every third.
    let target: u64 = if quick { 200_000 } else { 1_000_000 };
    let mut s = 0usize;
    while j.count().expect("count") < target {
        let batch = crate::telemetry::hook_session(s, now);
        j.append_batch(batch, Durability::Relaxed).expect("append");
        s += 1;
    }
    let events = j.count().expect("count");
    let load = t.elapsed();

    let bin = crate::agentops_bin();
    let mut child = Command::new(&bin)
        .args(["ui", "--json"])
        .env("AGENTOPS_UI_TOKEN", TOKEN)
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("agentops ui");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("url");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    let addr: SocketAddr = v["addr"].as_str().expect("addr").parse().expect("addr");
    let n = if quick { 20 } else { 50 };
    let (runs_first, runs, runs_bytes) = timed(addr, "/runs", n);
    let (_, runs_filtered, _) = timed(addr, "/runs?status=paused&workflow=feature", n);
    let (cost_first, cost, cost_bytes) = timed(addr, "/cost?since=30d", n);
    let (trace_first, trace, trace_bytes) = timed(addr, "/runs/01tracerun", n.min(20));
    // After each journal write (a model call of a new run's phase), the
    // page folds what changed and recomputes its figures: what a live page
    // pays.
    let mut after_runs = Vec::new();
    let mut after_cost = Vec::new();
    let live = RunId::parse("01benchlive").expect("id");
    for k in 0..n.min(20) {
        j.append(
            NewEvent::at(
                agentops_core::time::now_micros(),
                live.clone(),
                EventKind::LlmCall,
                json!({"model": "gpt-4.1-mini", "agent": "agent0", "usage": {"input_tokens": 100, "output_tokens": 10}, "cost_usd": 0.0001, "duration_ms": 300.0 + k as f64}),
            ),
            Durability::Relaxed,
        )
        .expect("append");
        let t = Instant::now();
        assert_eq!(get(addr, "/runs").0, 200);
        after_runs.push(t.elapsed());
        j.append(
            NewEvent::at(
                agentops_core::time::now_micros(),
                live.clone(),
                EventKind::LlmCall,
                json!({"model": "gpt-4.1-mini", "agent": "agent0", "usage": {"input_tokens": 100, "output_tokens": 10}, "cost_usd": 0.0001, "duration_ms": 300.0}),
            ),
            Durability::Relaxed,
        )
        .expect("append");
        // Past the page's once-a-second refresh, so this is a recompute.
        std::thread::sleep(Duration::from_millis(1_050));
        let t = Instant::now();
        assert_eq!(get(addr, "/cost?since=30d").0, 200);
        after_cost.push(t.elapsed());
    }
    let (after_runs, after_cost) = (Samples::new(after_runs), Samples::new(after_cost));
    let _ = child.kill();
    let _ = child.wait();

    let b = bin.to_str().expect("utf-8 path");
    let k = if quick { 3 } else { 5 };
    let cli_runs = time_process(&[b, "runs", "--limit", "50", "--json"], &repo, k);
    let cli_stats = time_process(&[b, "stats", "--since", "30d", "--json"], &repo, k);
    let cli_trace = time_process(&[b, "trace", "01tracerun", "--json"], &repo, k);
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);

    println!("## ui ({})", if quick { "quick" } else { "full" });
    println!();
    println!(
        "Journal: {n_runs} runs + one 10,101-span run, {events} events (written in {:.1} s).",
        load.as_secs_f64()
    );
    println!();
    println!(
        "| page | server round trip, median / p99 (first page) | baseline: the CLI command, whole process (median) | target |"
    );
    println!("|---|---|---|---|");
    println!(
        "| runs list `/runs` (page 1 of {}, {} KB) | {} / {} ({}) | `agentops runs --limit 50 --json`: {} | ≤ 50 ms |",
        n_runs.div_ceil(50),
        runs_bytes / 1024,
        ms(runs.median()),
        ms(runs.pct(0.99)),
        ms(runs_first),
        ms(cli_runs.median())
    );
    println!(
        "| runs list filtered by status and workflow | {} / {} | – | ≤ 50 ms |",
        ms(runs_filtered.median()),
        ms(runs_filtered.pct(0.99))
    );
    println!(
        "| cost page `/cost?since=30d` ({} KB) | {} / {} ({}) | `agentops stats --since 30d --json`: {} | ≤ 50 ms |",
        cost_bytes / 1024,
        ms(cost.median()),
        ms(cost.pct(0.99)),
        ms(cost_first),
        ms(cli_stats.median())
    );
    println!(
        "| run detail of the 10,101-span run ({} KB) | {} / {} ({}) | `agentops trace RUN --json`: {} | ≤ 100 ms |",
        trace_bytes / 1024,
        ms(trace.median()),
        ms(trace.pct(0.99)),
        ms(trace_first),
        ms(cli_trace.median())
    );
    println!(
        "| runs list right after a journal write (folds and rollup caught up) | {} / {} | – | – |",
        ms(after_runs.median()),
        ms(after_runs.pct(0.99))
    );
    println!(
        "| cost page right after a journal write, its figures recomputed (at most once a second) | {} / {} | – | – |",
        ms(after_cost.median()),
        ms(after_cost.pct(0.99))
    );
    println!(
        "| assets embedded in the binary (CSS, JS, icon) | {} bytes | the whole binary: {:.1} MB | report |",
        agentops_web::EMBEDDED_BYTES,
        size as f64 / 1e6
    );
    println!();
}
