#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Spans, views and export against a real journal (SQLite) and a real
//! OTLP/HTTP receiver on loopback.

use std::collections::HashSet;
use std::path::PathBuf;

use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::{Durability, Journal, Query, SqliteStore};
use agentops_telemetry::export::{ExportOptions, Exporter};
use agentops_telemetry::span::{AttrValue, Builder, Input, hex};
use agentops_telemetry::{ExportError, Protocol, SpanKind, build, view};
use agentops_testkit::otlp_receiver::Receiver;
use serde_json::json;

fn journal(dir: &tempfile::TempDir) -> Journal {
    let store = SqliteStore::open(
        &dir.path().join("state.db"),
        agentops_store::sqlite_open_options(true),
    )
    .unwrap();
    Journal::new(Box::new(store), &[]).unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testkit/fixtures")
}

fn ingest_fixtures(j: &Journal) {
    use agentops_harness::ingest::{Options, Source, ingest};
    let opts = Options {
        model: Some("gpt-5".into()),
        session: None,
        prices: agentops_llm::PriceTable::default(),
    };
    for (src, file) in [
        (
            Source::ClaudeStream,
            "claude-code/stream-json/run-with-tool.jsonl",
        ),
        (Source::CodexExec, "codex/exec-json-run.jsonl"),
    ] {
        let f = std::fs::File::open(fixtures().join(file)).unwrap();
        ingest(src, std::io::BufReader::new(f), file, j, &opts).unwrap();
    }
}

fn runs(j: &Journal) -> Vec<RunId> {
    let mut seen = Vec::new();
    for e in j.read(&Query::default()).unwrap() {
        if !seen.contains(&e.run_id) {
            seen.push(e.run_id);
        }
    }
    seen
}

/// The stream fixtures render the same trace every time: same span ids,
/// same tree, same numbers.
#[test]
fn stream_fixture_sessions_render_the_same_trace_every_time() {
    let mut renders = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        ingest_fixtures(&j);
        let mut text = String::new();
        let mut shape = Vec::new();
        for run in runs(&j) {
            let events = j.read(&Query::run(run.clone())).unwrap();
            let spans = build(run.as_str(), &events);
            text.push_str(&format!("## {run}\n"));
            text.push_str(&view::render_trace(&spans, 100));
            for s in &spans {
                shape.push(json!({
                    "span": hex(&s.span_id),
                    "parent": s.parent_span_id.map(|p| hex(&p)),
                    "name": s.name,
                    "status": s.status,
                    "tokens": [s.input_tokens, s.output_tokens],
                    "cost_usd": s.cost_usd.map(|c| (c * 1e6).round() / 1e6),
                    "operation": s.attr("gen_ai.operation.name").map(AttrValue::to_json),
                }));
            }
        }
        renders.push((text, shape));
    }
    assert_eq!(renders[0], renders[1], "two ingestions differ");
    insta::assert_snapshot!("stream_fixture_trace", renders[0].0);
    insta::assert_json_snapshot!("stream_fixture_spans", renders[0].1);
}

fn ev(run: &RunId, ts: i64, kind: EventKind, body: serde_json::Value) -> NewEvent {
    NewEvent::at(ts, run.clone(), kind, body)
}

/// A small workflow run as the runner journals it.
fn runner_run(j: &Journal, id: &str, t0: i64, phases: usize) -> RunId {
    let run = RunId::parse(id).unwrap();
    let mut evs = vec![ev(
        &run,
        t0,
        EventKind::RunStarted,
        json!({"workflow": {"name": "feature"}, "goal": "g", "branch": "x"}),
    )];
    let mut t = t0;
    for p in 0..phases {
        let phase = SpanId::generate();
        let agent = format!("agent{p}");
        t += 1_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::StepStarted,
                json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "model": "gpt-4.1-mini", "provider": "openai"}),
            )
            .in_span(phase.clone(), None),
        );
        t += 1_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::LlmCall,
                json!({"phase": format!("p{p}"), "agent": agent, "provider": "openai", "model": "gpt-4.1-mini",
                       "response_model": "gpt-4.1-mini-2025-04-14", "response_id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "stop_reason": "tool_use",
                       "usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 600, "cache_creation_tokens": 0},
                       "cost_usd": 0.00046, "duration_ms": 800.0}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 900_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::ToolCall,
                json!({"phase": format!("p{p}"), "agent": agent, "tool": "run_command", "tool_use_id": "call_abc123XYZ456def789GHI0",
                       "is_error": true, "output": "exit 1", "duration_ms": 50.0}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 1_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::GateVerdict,
                json!({"gate": "tests", "kind": "command", "verdict": "PASS", "summary": "ok", "duration_ms": 5.0, "agent": agent}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 10_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::StepCompleted,
                json!({"phase": format!("p{p}"), "attempt": 1, "agent": agent, "commit": "abc", "duration_ms": 912.0,
                       "usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 600, "cache_creation_tokens": 0}, "cost_usd": 0.00046}),
            )
            .in_span(phase, None),
        );
    }
    evs.push(ev(
        &run,
        t + 1_000,
        EventKind::RunCompleted,
        json!({"status": "completed"}),
    ));
    j.append_batch(evs, Durability::Relaxed).unwrap();
    run
}

/// `trace` and export read rows without building JSON trees; they must
/// build exactly what the parsed events build, in one go or in two steps
/// (an exporter's builder resumes where the last pass stopped), whatever
/// the bodies hold.
#[test]
fn raw_reads_build_what_parsed_events_build() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    ingest_fixtures(&j);
    runner_run(&j, "run-raw", 1_000, 3);
    let odd = RunId::parse("run-odd").unwrap();
    let p = SpanId::generate();
    j.append_batch(
        vec![
            ev(&odd, 1, EventKind::RunStarted, json!({"workflow": "not an object", "goal": "a \"quote\"\nand a newline"})),
            ev(&odd, 2, EventKind::StepStarted, json!({"agent": 7, "attempt": "2", "phase": "é", "model": null}))
                .in_span(p.clone(), None),
            ev(&odd, 3, EventKind::LlmCall, json!({"model": "m\u{e9}\t", "usage": "lots", "cost_usd": "free", "error": "bad\nthing", "response": {"content": [{"text": "x\"y"}]}}))
                .in_span(SpanId::generate(), Some(p.clone())),
            ev(&odd, 4, EventKind::RunPaused, json!({"reason": "budget", "detail": ["x"]})),
            ev(&odd, 5, EventKind::RunResumed, json!([])),
            ev(&odd, 6, EventKind::ToolCall, json!({"name": "Bash", "ok": false, "errors": [1], "duration_ms": 1e3}))
                .in_span(SpanId::generate(), Some(p.clone())),
            ev(&odd, 7, EventKind::StepRetry, json!({"feedback": "again"})).in_span(p.clone(), None),
            ev(&odd, 8, EventKind::GateVerdict, json!({"gate": "g", "verdict": "FAIL", "pending": "no"}))
                .in_span(SpanId::generate(), Some(SpanId::generate())),
        ],
        Durability::Relaxed,
    )
    .unwrap();
    let all = runs(&j);
    assert_eq!(all.len(), 4);
    for run in all {
        let events = j.read(&Query::run(run.clone())).unwrap();
        let parsed = build(run.as_str(), &events);
        assert!(!parsed.is_empty());
        let raw = agentops_telemetry::span::read(&j, &run).unwrap();
        assert_eq!(raw, parsed, "{run}");
        let mut b = Builder::new(run.as_str());
        let half = events.len() / 2;
        for e in &events[..half] {
            b.push(&Input::from_event(e));
        }
        assert!(!b.spans().is_empty());
        for e in &events[half..] {
            b.push(&Input::from_event(e));
        }
        assert_eq!(b.finish(), parsed, "{run} in two steps");
    }
}

/// A row whose body is not JSON stops `trace` and export with the event's
/// position, instead of being skipped or panicking; nothing is marked sent.
#[test]
fn a_malformed_event_is_named_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    let run = runner_run(&j, "run-bad", 1_000, 2);
    let c = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM events WHERE run_id = 'run-bad' AND kind = 'llm.call' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute("UPDATE events SET body = '{not json' WHERE seq = ?1", [seq])
        .unwrap();
    let err = agentops_telemetry::span::read(&j, &run)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("event {seq} is malformed")), "{err}");
    let r = Receiver::start().unwrap();
    let mut x = Exporter::claim(&j, ExportOptions::new(r.url())).unwrap();
    let err = x.pass().unwrap_err().to_string();
    assert!(err.contains(&format!("event {seq} is malformed")), "{err}");
    assert_eq!(x.watermark(), 0);
    assert!(r.spans().is_empty());
}

#[test]
fn runner_events_become_genai_spans() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    let run = runner_run(&j, "01runabc", 1_700_000_000_000_000, 1);
    let spans = build(run.as_str(), &j.read(&Query::run(run.clone())).unwrap());
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "invoke_workflow feature",
            "invoke_agent agent0",
            "chat gpt-4.1-mini",
            "execute_tool run_command",
            "gate tests"
        ]
    );
    let root = &spans[0];
    assert_eq!(root.kind, SpanKind::Workflow);
    assert!(root.parent_span_id.is_none());
    let agent = &spans[1];
    assert_eq!(agent.parent_span_id, Some(root.span_id));
    for s in &spans[2..] {
        assert_eq!(s.parent_span_id, Some(agent.span_id), "{}", s.name);
    }
    for s in &spans {
        assert_eq!(
            s.attr("session.id"),
            Some(&AttrValue::from("01runabc")),
            "{}",
            s.name
        );
        assert_eq!(s.trace_id, root.trace_id);
        assert!(s.done_seq.is_some(), "{} is complete", s.name);
    }
    let chat = &spans[2];
    let a = |k: &str| chat.attr(k).cloned();
    assert_eq!(a("gen_ai.operation.name"), Some("chat".into()));
    assert_eq!(a("gen_ai.provider.name"), Some("openai".into()));
    assert_eq!(a("gen_ai.request.model"), Some("gpt-4.1-mini".into()));
    assert_eq!(
        a("gen_ai.response.model"),
        Some("gpt-4.1-mini-2025-04-14".into())
    );
    assert_eq!(a("gen_ai.usage.input_tokens"), Some(AttrValue::Int(1000)));
    assert_eq!(a("gen_ai.usage.output_tokens"), Some(AttrValue::Int(100)));
    assert_eq!(
        a("gen_ai.usage.cache_read.input_tokens"),
        Some(AttrValue::Int(600))
    );
    assert_eq!(
        a("gen_ai.usage.cache_creation.input_tokens"),
        Some(AttrValue::Int(0))
    );
    assert_eq!(a("gen_ai.agent.name"), Some("agent0".into()));
    // Provider ids pass the journal's redaction (handles, not secrets).
    assert_eq!(
        a("gen_ai.response.id"),
        Some("chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".into())
    );
    assert_eq!(a("gen_ai.conversation.id"), Some("01runabc".into()));
    assert_eq!(a("openinference.span.kind"), Some("LLM".into()));
    assert_eq!(a("llm.token_count.prompt"), Some(AttrValue::Int(1000)));
    assert_eq!(
        a("llm.token_count.prompt_details.cache_read"),
        Some(AttrValue::Int(600))
    );
    assert_eq!(chat.end_us - chat.start_us, 800_000);
    let tool = &spans[3];
    assert_eq!(
        tool.attr("gen_ai.tool.name"),
        Some(&AttrValue::from("run_command"))
    );
    assert_eq!(
        tool.attr("error.type"),
        Some(&AttrValue::from("tool_error"))
    );
    assert_eq!(
        tool.attr("gen_ai.tool.call.id"),
        Some(&AttrValue::from("call_abc123XYZ456def789GHI0"))
    );
    assert_eq!(tool.end_us - tool.start_us, 50_000);
    assert_eq!(
        spans[4].attr("openinference.span.kind"),
        Some(&AttrValue::from("GUARDRAIL"))
    );
    // Building again gives the same ids.
    let again = build(run.as_str(), &j.read(&Query::run(run.clone())).unwrap());
    assert_eq!(
        spans.iter().map(|s| s.span_id).collect::<Vec<_>>(),
        again.iter().map(|s| s.span_id).collect::<Vec<_>>()
    );
}

/// Cached input is priced at the cached rate: 600 of 1,000 prompt tokens
/// from the cache cost less than 1,000 uncached ones.
#[test]
fn cached_tokens_are_priced_at_the_cached_rate() {
    let t = agentops_llm::PriceTable::default();
    let cached = agentops_llm::Usage {
        input_tokens: 1000,
        output_tokens: 100,
        cache_read_tokens: 600,
        cache_creation_tokens: 0,
    };
    let uncached = agentops_llm::Usage {
        cache_read_tokens: 0,
        ..cached
    };
    // gpt-4.1-mini: $0.40 in, $0.10 cached, $1.60 out per million.
    let c = t.cost("gpt-4.1-mini", &cached).unwrap();
    assert!((c - (400.0 * 0.40 + 600.0 * 0.10 + 100.0 * 1.60) / 1e6).abs() < 1e-12);
    assert!(c < t.cost("gpt-4.1-mini", &uncached).unwrap());
    // Anthropic: cache writes at 1.25×, reads at 0.1× of input.
    let write = agentops_llm::Usage {
        input_tokens: 1000,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_creation_tokens: 1000,
    };
    let w = t.cost("claude-sonnet-4-5", &write).unwrap();
    assert!((w - 1000.0 * 3.75 / 1e6).abs() < 1e-12, "{w}");
}

fn count_unique(r: &Receiver) -> (usize, usize) {
    let spans = r.spans();
    let unique: HashSet<[u8; 8]> = spans.iter().map(|s| s.1).collect();
    (spans.len(), unique.len())
}

/// Receiver down: spans stay; up: all delivered once; restart: nothing
/// again; a 503 spell: kept and delivered after.
#[test]
fn receiver_down_then_up_delivers_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    runner_run(&j, "run-one", 1_700_000_000_000_000, 3);
    // A port nobody listens on.
    let port = {
        let r = Receiver::start().unwrap();
        r.port()
    };
    let url = format!("http://127.0.0.1:{port}/v1/traces");
    let mut opts = ExportOptions::new(&url);
    opts.batch_spans = 4;
    {
        let mut x = Exporter::claim(&j, opts.clone()).unwrap();
        match x.pass() {
            Err(ExportError::Unavailable { pending, .. }) => assert_eq!(pending, 13),
            other => panic!("expected unavailable, got {other:?}"),
        }
        assert_eq!(x.watermark(), 0);
    }
    let r = Receiver::start_on(port).unwrap();
    {
        let mut x = Exporter::claim(&j, opts.clone()).unwrap();
        let rep = x.pass().unwrap();
        assert_eq!(rep.spans, 13);
        assert!(rep.requests >= 4, "batches of ≤ 4: {rep:?}");
        assert_eq!(x.watermark(), j.last_seq().unwrap());
    }
    assert_eq!(count_unique(&r), (13, 13));
    // A restarted exporter sends nothing again.
    {
        let mut x = Exporter::claim(&j, opts.clone()).unwrap();
        assert_eq!(x.pass().unwrap().spans, 0);
    }
    // New spans while the receiver answers 503: kept, then delivered.
    runner_run(&j, "run-two", 1_700_000_100_000_000, 2);
    r.fail_with(Some(503));
    {
        let mut x = Exporter::claim(&j, opts.clone()).unwrap();
        assert!(matches!(x.pass(), Err(ExportError::Unavailable { .. })));
    }
    r.fail_with(None);
    {
        let mut x = Exporter::claim(&j, opts).unwrap();
        assert_eq!(x.pass().unwrap().spans, 9);
    }
    assert_eq!(count_unique(&r), (22, 22));
    // Every child's parent arrived too.
    let spans = r.spans();
    let ids: HashSet<[u8; 8]> = spans.iter().map(|s| s.1).collect();
    for s in &spans {
        if let Some(p) = s.2 {
            assert!(ids.contains(&p), "{} has no parent", s.3);
        }
    }
}

/// Spans of a run still going wait until their step or run completes, and
/// are sent once then.
#[test]
fn open_spans_wait_for_their_completion() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    let run = RunId::parse("run-open").unwrap();
    let phase = SpanId::generate();
    j.append_batch(
        vec![
            ev(
                &run,
                1,
                EventKind::RunStarted,
                json!({"workflow": {"name": "w"}}),
            ),
            ev(
                &run,
                2,
                EventKind::StepStarted,
                json!({"agent": "a", "phase": "p"}),
            )
            .in_span(phase.clone(), None),
            ev(
                &run,
                3,
                EventKind::LlmCall,
                json!({"agent": "a", "model": "m", "usage": {}}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        ],
        Durability::Relaxed,
    )
    .unwrap();
    let r = Receiver::start().unwrap();
    let opts = ExportOptions::new(r.url());
    let mut x = Exporter::claim(&j, opts).unwrap();
    let rep = x.pass().unwrap();
    assert_eq!((rep.spans, rep.open_spans), (1, 2));
    j.append_batch(
        vec![
            ev(&run, 4, EventKind::StepCompleted, json!({"agent": "a"})).in_span(phase, None),
            ev(
                &run,
                5,
                EventKind::RunCompleted,
                json!({"status": "completed"}),
            ),
        ],
        Durability::Relaxed,
    )
    .unwrap();
    assert_eq!(x.pass().unwrap().spans, 2);
    assert_eq!(count_unique(&r), (3, 3));
}

#[test]
fn json_protocol_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    runner_run(&j, "run-json", 1_700_000_000_000_000, 2);
    let r = Receiver::start().unwrap();
    let cfg = agentops_core::config::Config::default().telemetry;
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://127.0.0.1:{}", r.port())),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("authorization=Bearer%20abc,x-team=ops".into()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/json".into()),
        _ => None,
    };
    let opts = agentops_telemetry::export::resolve(&cfg, &env, None, None, &["x-team=core".into()])
        .unwrap()
        .unwrap();
    assert_eq!(opts.endpoint, r.url());
    assert_eq!(opts.protocol, Protocol::Json);
    let mut x = Exporter::claim(&j, opts).unwrap();
    assert_eq!(x.pass().unwrap().spans, 9);
    assert_eq!(r.bad_requests(), 0);
    assert_eq!(count_unique(&r), (9, 9));
    let h = r.last_headers();
    let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("authorization").as_deref(), Some("Bearer abc"));
    assert_eq!(get("x-team").as_deref(), Some("core"));
    assert_eq!(get("content-type").as_deref(), Some("application/json"));
    // gRPC is refused with a clear message.
    let grpc = |k: &str| (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned());
    let cfg2 = agentops_core::config::TelemetryConfig {
        endpoint: Some("http://x".into()),
        ..cfg
    };
    let e = agentops_telemetry::export::resolve(&cfg2, &grpc, None, None, &[]).unwrap_err();
    assert!(e.contains("grpc") && e.contains("http/protobuf"), "{e}");
}

#[test]
fn a_second_exporter_of_the_same_endpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    let opts = ExportOptions::new("http://127.0.0.1:9/v1/traces");
    let first = Exporter::claim(&j, opts.clone()).unwrap();
    assert!(matches!(
        Exporter::claim(&j, opts.clone()),
        Err(ExportError::Busy(_))
    ));
    drop(first);
    assert!(Exporter::claim(&j, opts).is_ok());
}

/// Stats come from the rollup the journal keeps on append.
#[test]
fn stats_group_by_agent_model_workflow_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(&dir);
    runner_run(&j, "run-s1", 1_700_000_000_000_000, 2);
    runner_run(&j, "run-s2", 1_700_100_000_000_000, 1);
    ingest_fixtures(&j);
    let rows = j.store().rollup(0).unwrap();
    let by_agent = view::group(&rows, view::By::Agent);
    let a0 = by_agent.iter().find(|g| g.key == "agent0").unwrap();
    assert_eq!((a0.runs, a0.sums.llm_calls, a0.sums.tool_calls), (2, 2, 2));
    assert_eq!(a0.sums.tool_errors, 2);
    assert_eq!(a0.sums.gates_passed, 2);
    assert_eq!(a0.sums.cache_read_tokens, 1200);
    let wf = view::group(&rows, view::By::Workflow);
    let keys: Vec<&str> = wf.iter().map(|g| g.key.as_str()).collect();
    assert!(keys.contains(&"feature"), "{keys:?}");
    assert!(keys.contains(&"(claude sessions)"), "{keys:?}");
    assert!(keys.contains(&"(codex sessions)"), "{keys:?}");
    let days = view::group(&rows, view::By::Day);
    assert!(days.iter().any(|g| g.key == "2023-11-14"), "{days:?}");
    let t = view::render_stats(&by_agent, view::By::Agent, 80);
    assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
}
