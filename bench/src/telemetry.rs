//! Issue 8 figures: OTLP export throughput to a loopback receiver (beside
//! posting pre-encoded payloads to the same receiver), `agentops trace` of a
//! 10,000-span run (beside `agentops version`, the process floor), and
//! `agentops stats` over 1,000,000 events (beside a scan of the journal, what
//! stats would cost without the rollup).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::{Durability, Journal, Query, RepoLayout};
use agentops_telemetry::export::{ExportOptions, Exporter};
use agentops_testkit::otlp_receiver::Receiver;
use serde_json::json;

use crate::corpus::git;
use crate::stats::{ms, time_process};

pub(crate) fn project(dir: &Path) -> Journal {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "-q", "-b", "main"]);
    let st = Command::new(crate::agentops_bin())
        .args(["init", "-q"])
        .current_dir(dir)
        .status()
        .expect("init");
    assert!(st.success());
    let layout = RepoLayout::discover(dir).expect("layout");
    let config = agentops_store::project::load_config(Some(&layout), vec![]).expect("config");
    Journal::open_for(&layout, &config).expect("journal")
}

/// A runner-shaped run: `phases` phases of `calls` model calls, each with a
/// tool call; bodies as the runner writes them (a ~1 KiB response).
pub(crate) fn run_events(id: &str, t0: i64, phases: usize, calls: usize) -> Vec<NewEvent> {
    let run = RunId::parse(id).expect("id");
    let ev = |ts: i64, kind: EventKind, body: serde_json::Value| {
        NewEvent::at(ts, run.clone(), kind, body)
    };
    let response = "x".repeat(1_000);
    let mut out = vec![ev(
        t0,
        EventKind::RunStarted,
        json!({"workflow": {"name": "bench"}, "goal": "g", "budget": {}}),
    )];
    let mut t = t0;
    for p in 0..phases {
        let phase = SpanId::generate();
        let agent = format!("agent{}", p % 5);
        t += 1_000;
        out.push(
            ev(t, EventKind::StepStarted, json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "model": "gpt-4.1-mini", "provider": "openai"}))
                .in_span(phase.clone(), None),
        );
        for c in 0..calls {
            t += 2_000;
            out.push(
                ev(t, EventKind::LlmCall, json!({"key": format!("k{p}-{c}"), "phase": format!("p{p}"), "attempt": 1, "turn": c, "agent": agent,
                    "provider": "openai", "model": "gpt-4.1-mini", "response_model": "gpt-4.1-mini", "response_id": format!("r{p}{c}"),
                    "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 600, "cache_creation_tokens": 0},
                    "cost_usd": 0.0003, "duration_ms": 900.0, "stop_reason": "tool_use",
                    "response": {"id": format!("r{p}{c}"), "content": [{"type": "text", "text": response}]}}))
                    .in_span(SpanId::generate(), Some(phase.clone())),
            );
            t += 500;
            out.push(
                ev(t, EventKind::ToolCall, json!({"phase": format!("p{p}"), "attempt": 1, "turn": c, "tool": "read_file", "tool_use_id": format!("t{c}"),
                    "input": "{\"path\":\"src/lib.rs\"}", "output": "fn main() {}", "is_error": false, "duration_ms": 0.4, "agent": agent}))
                    .in_span(SpanId::generate(), Some(phase.clone())),
            );
        }
        t += 1_000;
        out.push(
            ev(t, EventKind::StepCompleted, json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "commit": "abc", "duration_ms": 5000.0,
                "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 600, "cache_creation_tokens": 0}, "cost_usd": 0.0003}))
                .in_span(phase, None),
        );
    }
    out.push(ev(
        t + 1_000,
        EventKind::RunCompleted,
        json!({"status": "completed"}),
    ));
    out
}

pub(crate) fn append(j: &Journal, events: Vec<NewEvent>) {
    for chunk in events.chunks(5_000) {
        j.append_batch(chunk.to_vec(), Durability::Relaxed)
            .expect("append");
    }
}

/// A repository whose journal holds run `01tracerun`: 100 phases × 50 calls
/// × (model + tool) + 100 agents + root = 10,101 spans. `agentops-bench
/// trace-repo DIR` leaves one behind for profiling.
pub fn trace_repo(repo: &Path) -> Journal {
    let j = project(repo);
    append(&j, run_events("01tracerun", 1_700_000_000_000_000, 100, 50));
    j
}

/// Harness session `s` as hooks record it: per tool call two hook events and
/// a tool span; a model call every third tool call; on one of the last 30
/// days.
pub(crate) fn hook_session(s: usize, now: i64) -> Vec<NewEvent> {
    let sid = RunId::parse(&format!("session-{s:05}")).expect("id");
    let day = (s % 30) as i64;
    let mut batch = Vec::with_capacity(1_000);
    for k in 0..100 {
        let ts = now - day * 86_400_000_000 - (100 - k) * 1_000_000;
        let ev =
            |kind: EventKind, body: serde_json::Value| NewEvent::at(ts, sid.clone(), kind, body);
        batch.push(ev(
            EventKind::HookReceived,
            json!({"harness": "claude", "event": "PreToolUse", "input": {"tool_name": "Bash"}}),
        ));
        batch.push(ev(
            EventKind::HookReceived,
            json!({"harness": "claude", "event": "PostToolUse", "input": {"tool_name": "Bash"}}),
        ));
        batch.push(ev(EventKind::ToolCall, json!({"source": "hook", "harness": "claude", "name": "Bash", "ok": k % 17 != 0, "duration_ms": 120.0})));
        if k % 3 == 0 {
            batch.push(ev(EventKind::LlmCall, json!({"source": "claude-transcript", "provider": "anthropic", "model": if s.is_multiple_of(2) { "claude-sonnet-4-5" } else { "claude-haiku-4-5" },
                "usage": {"input_tokens": 30000, "output_tokens": 400, "cache_read_tokens": 25000, "cache_creation_tokens": 1000}, "cost_usd": 0.02, "duration_ms": 2500.0})));
        }
    }
    batch
}

pub fn run(quick: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = if quick { 5 } else { 15 };

    // --- export throughput -------------------------------------------------
    let repo = tmp.path().join("export");
    let j = project(&repo);
    let (n_runs, phases, calls) = if quick { (4, 50, 25) } else { (10, 100, 50) };
    for r in 0..n_runs {
        append(
            &j,
            run_events(
                &format!("run{r:03}"),
                1_700_000_000_000_000 + r * 1_000_000_000,
                phases,
                calls,
            ),
        );
    }
    let receiver = Receiver::start().expect("receiver");
    let mut export_rates = Vec::new();
    let mut spans_sent = 0;
    for round in 0..3 {
        let mut opts = ExportOptions::new(format!("{}?round={round}", receiver.url()));
        opts.batch_spans = 1_000;
        let t = Instant::now();
        let mut x = Exporter::claim(&j, opts).expect("claim");
        let rep = x.pass().expect("export");
        let d = t.elapsed();
        spans_sent = rep.spans;
        export_rates.push(rep.spans as f64 / d.as_secs_f64());
    }
    export_rates.sort_by(f64::total_cmp);
    let export_rate = export_rates[1];
    // Baseline: the same receiver taking pre-encoded payloads of the same
    // spans (no journal read, no span building, no encoding).
    let mut payloads = Vec::new();
    let mut total = 0;
    for r in 0..n_runs {
        let id = format!("run{r:03}");
        let events = j
            .read(&Query::run(RunId::parse(&id).expect("id")))
            .expect("read");
        let spans = agentops_telemetry::build(&id, &events);
        for chunk in spans.chunks(1_000) {
            let refs: Vec<&agentops_telemetry::Span> = chunk.iter().collect();
            payloads.push(agentops_telemetry::otlp::encode(
                agentops_telemetry::Protocol::Protobuf,
                &agentops_telemetry::Resource::default(),
                &refs,
            ));
            total += chunk.len();
        }
    }
    let agent = agentops_llm::api::http_agent(Duration::from_secs(30));
    let t = Instant::now();
    for p in &payloads {
        let r = agent
            .post(receiver.url())
            .header("content-type", "application/x-protobuf")
            .send(&p[..])
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    let raw_rate = total as f64 / t.elapsed().as_secs_f64();

    // --- trace of a 10,000-span run ---------------------------------------
    let repo = tmp.path().join("trace");
    let j = trace_repo(&repo);
    let spans = agentops_telemetry::build(
        "01tracerun",
        &j.read(&Query::run(RunId::parse("01tracerun").expect("id")))
            .expect("read"),
    )
    .len();
    let bin = crate::agentops_bin();
    let bin = bin.to_str().expect("utf-8 path");
    let trace = time_process(&[bin, "trace", "01tracerun", "--width", "120"], &repo, runs);
    let trace_json = time_process(&[bin, "trace", "01tracerun", "--json"], &repo, runs);
    let floor = time_process(&[bin, "version"], &repo, runs);

    // --- stats over 1,000,000 events ---------------------------------------
    let repo = tmp.path().join("stats");
    let j = project(&repo);
    let n_events: usize = if quick { 200_000 } else { 1_000_000 };
    let now = agentops_core::time::now_micros();
    let t = Instant::now();
    let mut written = 0usize;
    let mut s = 0usize;
    while written < n_events {
        let batch = hook_session(s, now);
        written += batch.len();
        j.append_batch(batch, Durability::Relaxed).expect("append");
        s += 1;
    }
    let load = t.elapsed();
    let total_events = j.count().expect("count");
    let stats = time_process(&[bin, "stats", "--since", "30d"], &repo, runs);
    let stats_model = time_process(
        &[bin, "stats", "--by", "model", "--since", "30d"],
        &repo,
        runs,
    );
    // Baseline: what stats would cost by scanning the journal's model and
    // tool events (in-process, no process start).
    let t = Instant::now();
    let scanned = j
        .read(&Query {
            kinds: vec![EventKind::LlmCall, EventKind::ToolCall],
            ..Query::default()
        })
        .expect("scan");
    let mut tokens = 0i64;
    for e in &scanned {
        tokens += e
            .body
            .pointer("/usage/input_tokens")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
    }
    let scan = t.elapsed();
    assert!(tokens > 0);

    println!("## telemetry ({})", if quick { "quick" } else { "full" });
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    println!(
        "| OTLP/HTTP protobuf export to a loopback receiver, {spans_sent} spans from the journal ({n_runs} runs), batches of 1,000, median of 3 | {export_rate:.0} spans/s | the same receiver taking the same spans pre-encoded: {raw_rate:.0} spans/s | ≥ 50,000 spans/s |"
    );
    println!(
        "| `agentops trace RUN --width 120`, whole process, {spans}-span run | median {} · p99 {} | `agentops version`: median {} | ≤ 100 ms |",
        ms(trace.median()),
        ms(trace.pct(0.99)),
        ms(floor.median())
    );
    println!(
        "| `agentops trace RUN --json`, whole process, same run | median {} · p99 {} | | |",
        ms(trace_json.median()),
        ms(trace_json.pct(0.99))
    );
    println!(
        "| `agentops stats --since 30d`, whole process, {total_events} events over 30 days | median {} · p99 {} | scanning the journal's {} model and tool events in-process: {} | ≤ 500 ms |",
        ms(stats.median()),
        ms(stats.pct(0.99)),
        scanned.len(),
        ms(scan)
    );
    println!(
        "| `agentops stats --by model --since 30d`, same journal | median {} · p99 {} | | |",
        ms(stats_model.median()),
        ms(stats_model.pct(0.99))
    );
    println!();
    println!(
        "loading {total_events} events (with the rollup folded on append): {:.1} s, {:.1} µs/event",
        load.as_secs_f64(),
        load.as_secs_f64() * 1e6 / total_events as f64
    );
    let met = export_rate >= 50_000.0
        && trace.median() <= Duration::from_millis(100)
        && stats.median() <= Duration::from_millis(500);
    println!();
    println!("targets met: {}", if met { "yes" } else { "NO" });
}
