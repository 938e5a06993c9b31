//! Factor V through the binary: `trace`, `stats`, `status`, `export otlp`
//! and the background export of `agentops run`, against a real workflow run
//! (scripted model on loopback) and a real OTLP receiver on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use agentops_runner::demo;
use agentops_testkit::TestContext;
use agentops_testkit::model::ScriptedServer;
use agentops_testkit::otlp_receiver::Receiver;
use serde_json::Value;

mod common;

use common::{GOAL, run_id};

fn project() -> TestContext {
    common::demo_project(false)
}

#[test]
fn a_run_is_traced_counted_alerted_on_and_exported_once() {
    let server = ScriptedServer::start(demo::script()).unwrap();
    let receiver = Receiver::start().unwrap();
    let ctx = project();
    // The run exports in the background to the endpoint the standard
    // variable names.
    let env = vec![
        ("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", receiver.port()),
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1".to_owned()),
    ];
    let r = ctx.run_env(&["run", "feature", GOAL], &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = run_id(&ctx);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("exported") && all.contains("spans to"),
        "{all}"
    );

    // trace: the tree, with every phase, call, tool and gate.
    let t = ctx.run(&["trace", &id, "--width", "100"]);
    let text = t.ok();
    assert!(text.starts_with("invoke_workflow feature"), "{text}");
    for needle in [
        "├─ invoke_agent planner",
        "chat gpt-4.1-mini",
        "execute_tool write_file",
        "gate tests",
        "FAIL",
        "└─ invoke_agent reviewer",
        "$",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    let j: Value = serde_json::from_str(ctx.run(&["trace", &id, "--json"]).ok()).unwrap();
    let spans = j["spans"].as_array().unwrap();
    let llm: Vec<&Value> = spans.iter().filter(|s| s["kind"] == "llm").collect();
    assert_eq!(llm.len(), 10);
    for s in spans {
        assert_eq!(s["attributes"]["session.id"], id.as_str());
    }
    assert_eq!(llm[0]["attributes"]["gen_ai.provider.name"], "openai");
    // A prefix of the id works too.
    assert_eq!(ctx.run(&["trace", &id[..8]]).ok(), text);

    // The background exporter sent every completed span exactly once, with
    // the header; a later export sends nothing more.
    let got = receiver.spans();
    let unique: HashSet<[u8; 8]> = got.iter().map(|s| s.1).collect();
    assert_eq!(got.len(), unique.len(), "no span twice");
    assert_eq!(got.len(), spans.len(), "every span of the trace");
    assert!(
        receiver
            .last_headers()
            .contains(&("x-api-key".into(), "k1".into()))
    );
    let again = ctx.run_env(&["export", "otlp", "--endpoint", &receiver.url()], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("sent 0 spans"), "{}", again.stdout);

    // stats: by agent, model, workflow, day; fits the width.
    let s = ctx.run(&["stats", "--width", "70"]);
    let st = s.ok();
    assert!(st.starts_with("agent"), "{st}");
    assert!(st.contains("coder") && st.contains("planner"), "{st}");
    assert!(st.lines().all(|l| l.chars().count() <= 70), "{st}");
    let js: Value =
        serde_json::from_str(ctx.run(&["stats", "--by", "model", "--json"]).ok()).unwrap();
    let m = js["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "gpt-4.1-mini")
        .unwrap();
    assert_eq!(m["llm_calls"], 10);
    assert!(m["cost_usd"].as_f64().unwrap() > 0.0);
    let wf = ctx.run(&["stats", "--by", "workflow"]);
    assert!(wf.ok().contains("feature"));
    assert_eq!(ctx.run(&["stats", "--since", "soon"]).code, 2);

    // status: healthy → 0; a daily budget it burns past → 1, naming it.
    let ok = ctx.run(&["status"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(ok.stdout.contains("ok     budget"), "{}", ok.stdout);
    let burn = ctx.run_env(
        &["status"],
        &[("AGENTOPS_ALERTS_DAILY_USD", "0.0001".into())],
    );
    assert_eq!(burn.code, 1, "{}", burn.stdout);
    assert!(
        burn.stdout.contains("FIRING budget") && burn.stdout.contains("daily_usd"),
        "{}",
        burn.stdout
    );
    let js: Value = serde_json::from_str(
        ctx.run_env(
            &["status", "--json"],
            &[("AGENTOPS_ALERTS_DAILY_USD", "0.0001".into())],
        )
        .stdout
        .as_str(),
    )
    .unwrap();
    assert_eq!(js["alerts"].as_array().unwrap().len(), 4);
    let bad = ctx.run_env(&["status"], &[("AGENTOPS_ALERTS_ERROR_RATE", "2".into())]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("alerts.error_rate"), "{}", bad.stderr);
}

#[test]
fn export_keeps_spans_while_the_receiver_is_down() {
    let server = ScriptedServer::start(demo::script()).unwrap();
    let ctx = project();
    let r = ctx.run_env(
        &["run", "feature", GOAL],
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let port = Receiver::start().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1/traces");
    let down = ctx.run(&["export", "otlp", "--endpoint", &url]);
    assert_eq!(down.code, 1);
    assert!(
        down.stderr.contains("spans wait") && down.stderr.contains("export otlp"),
        "{}",
        down.stderr
    );
    let receiver = Receiver::start_on(port).unwrap();
    let up = ctx.run(&[
        "export",
        "otlp",
        "--endpoint",
        &url,
        "--protocol",
        "http/json",
    ]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let n = receiver.span_count();
    assert!(n > 20, "{n}");
    assert_eq!(receiver.bad_requests(), 0);
    assert!(
        ctx.run(&["export", "otlp", "--endpoint", &url])
            .stdout
            .contains("sent 0 spans")
    );
    assert_eq!(receiver.span_count(), n);
    // No endpoint anywhere: a usage error saying how to name one.
    let none = ctx.run(&["export", "otlp"]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{}",
        none.stderr
    );
    let _ = run_id(&ctx);
}
