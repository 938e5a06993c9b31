#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
//! Export to a real Arize Phoenix (PyPI `arize-phoenix`), checked through its
//! REST and GraphQL APIs: parent/child structure, model, tokens, cost.
//!
//! `.ci/run` installs Phoenix in a virtualenv and sets `AGENTOPS_PHOENIX` to
//! its `phoenix` executable (and `AGENTOPS_REQUIRE_PHOENIX=1`, so that a
//! missing Phoenix fails CI). Elsewhere the test says it was skipped.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::{Durability, Journal, Query, SqliteStore};
use agentops_telemetry::export::{ExportOptions, Exporter};
use agentops_telemetry::span::hex;
use serde_json::{Value, json};

struct Phoenix {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_phoenix() -> Option<Phoenix> {
    let Some(bin) = std::env::var_os("AGENTOPS_PHOENIX") else {
        assert!(
            std::env::var_os("AGENTOPS_REQUIRE_PHOENIX").is_none(),
            "AGENTOPS_REQUIRE_PHOENIX is set but AGENTOPS_PHOENIX (the phoenix executable) is not"
        );
        eprintln!(
            "SKIPPED: set AGENTOPS_PHOENIX to a `phoenix` executable (pip install arize-phoenix) to run this test; .ci/run does"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, grpc) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("phoenix.log")).unwrap();
    let child = Command::new(&bin)
        .arg("serve")
        .env("PHOENIX_WORKING_DIR", dir.path())
        .env("PHOENIX_PORT", port.to_string())
        .env("PHOENIX_GRPC_PORT", grpc.to_string())
        .env("PHOENIX_HOST", "127.0.0.1")
        .env("PHOENIX_TELEMETRY_ENABLED", "false")
        .env("DO_NOT_TRACK", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.to_string_lossy()));
    let p = Phoenix {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let agent = agentops_llm::api::http_agent(Duration::from_secs(5));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(180) {
        if let Ok(r) = agent.get(format!("{}/healthz", p.base)).call()
            && r.status() == 200
        {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = std::fs::read_to_string(p._dir.path().join("phoenix.log")).unwrap_or_default();
    panic!("Phoenix did not answer on {} within 180 s:\n{log}", p.base);
}

fn get(url: &str) -> Value {
    let agent = agentops_llm::api::http_agent(Duration::from_secs(30));
    let mut r = agent.get(url).call().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

fn graphql(base: &str, query: &str, vars: Value) -> Value {
    let agent = agentops_llm::api::http_agent(Duration::from_secs(30));
    let body = json!({"query": query, "variables": vars}).to_string();
    let mut r = agent
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(v.get("errors").is_none(), "graphql: {v}");
    v
}

fn ev(run: &RunId, ts: i64, kind: EventKind, body: Value) -> NewEvent {
    NewEvent::at(ts, run.clone(), kind, body)
}

#[test]
#[cfg_attr(
    not(agentops_phoenix),
    ignore = "needs AGENTOPS_PHOENIX (a `phoenix` executable, pip install arize-phoenix) at build time; .ci/run sets it"
)]
fn phoenix_shows_structure_model_tokens_and_cost() {
    let Some(phx) = start_phoenix() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("state.db"),
        agentops_store::sqlite_open_options(true),
    )
    .unwrap();
    let j = Journal::new(Box::new(store), &[]).unwrap();
    // A two-phase run on gpt-4.1-mini with cached prompt tokens, priced by
    // agentops' table.
    let prices = agentops_llm::PriceTable::default();
    let run = RunId::parse("01phoenixrun").unwrap();
    let t0 = agentops_core::time::now_micros() - 60_000_000;
    let mut evs = vec![ev(
        &run,
        t0,
        EventKind::RunStarted,
        json!({"workflow": {"name": "feature"}, "goal": "phoenix"}),
    )];
    let mut t = t0;
    let mut costs = Vec::new();
    for (p, (input, cached, output)) in [(2_000u64, 1_500u64, 120u64), (3_000, 0, 300)]
        .into_iter()
        .enumerate()
    {
        let phase = SpanId::generate();
        let usage = agentops_llm::Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cached,
            cache_creation_tokens: 0,
        };
        let cost = prices.cost("gpt-4.1-mini", &usage).unwrap();
        costs.push(cost);
        t += 1_000_000;
        evs.push(
            ev(&run, t, EventKind::StepStarted, json!({"phase": format!("p{p}"), "agent": format!("agent{p}"), "attempt": 1, "model": "gpt-4.1-mini", "provider": "openai"}))
                .in_span(phase.clone(), None),
        );
        t += 1_000_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::LlmCall,
                json!({"agent": format!("agent{p}"), "provider": "openai", "model": "gpt-4.1-mini",
                "usage": usage, "cost_usd": cost, "duration_ms": 900.0}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 1_000_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::ToolCall,
                json!({"agent": format!("agent{p}"), "tool": "read_file", "duration_ms": 3.0}),
            )
            .in_span(SpanId::generate(), Some(phase.clone())),
        );
        t += 1_000_000;
        evs.push(
            ev(
                &run,
                t,
                EventKind::StepCompleted,
                json!({"agent": format!("agent{p}"), "usage": usage, "cost_usd": cost}),
            )
            .in_span(phase, None),
        );
    }
    evs.push(ev(
        &run,
        t + 1_000_000,
        EventKind::RunCompleted,
        json!({"status": "completed"}),
    ));
    j.append_batch(evs, Durability::Relaxed).unwrap();
    let ours = agentops_telemetry::build(run.as_str(), &j.read(&Query::run(run.clone())).unwrap());
    assert_eq!(ours.len(), 7);

    let project = format!("agentops-test-{}", std::process::id());
    let mut opts = ExportOptions::new(format!("{}/v1/traces", phx.base));
    opts.resource.project = project.clone();
    let mut x = Exporter::claim(&j, opts).unwrap();
    assert_eq!(x.pass().unwrap().spans, 7);

    // Phoenix ingests asynchronously: wait for all seven.
    let url = format!("{}/v1/projects/{project}/spans?limit=100", phx.base);
    let start = Instant::now();
    let spans = loop {
        if let Some(d) = std::panic::catch_unwind(|| get(&url)).ok()
            && d["data"].as_array().map_or(0, Vec::len) >= 7
        {
            break d["data"].as_array().unwrap().clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Phoenix did not show 7 spans in project {project}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(spans.len(), 7, "exported once: {spans:#?}");
    let by_id: HashMap<String, &Value> = spans
        .iter()
        .map(|s| (s["context"]["span_id"].as_str().unwrap().to_owned(), s))
        .collect();
    // Same ids, same parents, same names, same kinds.
    for sp in &ours {
        let got = by_id
            .get(&hex(&sp.span_id))
            .unwrap_or_else(|| panic!("{} missing from Phoenix", sp.name));
        assert_eq!(got["name"], sp.name.as_str());
        assert_eq!(got["context"]["trace_id"], hex(&sp.trace_id).as_str());
        assert_eq!(
            got["parent_id"].as_str(),
            sp.parent_span_id.map(|p| hex(&p)).as_deref(),
            "{}",
            sp.name
        );
        assert_eq!(got["span_kind"], sp.kind.openinference());
        assert_eq!(got["attributes"]["session.id"], "01phoenixrun");
    }
    // Model, tokens and cost of the model calls, as Phoenix computes them.
    let llm: Vec<&&Value> = by_id.values().filter(|s| s["span_kind"] == "LLM").collect();
    assert_eq!(llm.len(), 2);
    let mut phoenix_costs = Vec::new();
    for s in llm {
        let a = &s["attributes"];
        assert_eq!(a["llm.model_name"], "gpt-4.1-mini");
        assert_eq!(a["gen_ai.request.model"], "gpt-4.1-mini");
        let prompt = a["llm.token_count.prompt"].as_u64().unwrap();
        assert!(prompt == 2_000 || prompt == 3_000, "{a}");
        let node = graphql(
            &phx.base,
            "query($id: ID!) { node(id: $id) { ... on Span { tokenCountPrompt tokenCountCompletion costSummary { total { cost } prompt { cost } completion { cost } } } } }",
            json!({"id": s["id"]}),
        );
        let n = &node["data"]["node"];
        assert_eq!(n["tokenCountPrompt"].as_u64(), Some(prompt));
        let cost = n["costSummary"]["total"]["cost"]
            .as_f64()
            .unwrap_or_else(|| panic!("Phoenix priced no cost: {n}"));
        phoenix_costs.push((prompt, cost));
    }
    phoenix_costs.sort_by_key(|c| c.0);
    // Phoenix's price for cached input must agree with ours: the first call
    // has 1,500 of 2,000 prompt tokens from the cache.
    for ((_, theirs), ours) in phoenix_costs.iter().zip(&costs) {
        assert!(
            (theirs - ours).abs() < 1e-9,
            "Phoenix cost {theirs} vs agentops {ours}"
        );
    }
    // Exporting again sends nothing.
    assert_eq!(x.pass().unwrap().spans, 0);
}
