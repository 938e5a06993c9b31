//! The behaviour every store backend must show, trait by trait, as checks
//! that return a description of the first difference. SQLite runs them in
//! its tests; a Postgres backend runs the same ones.

use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use serde_json::json;

use agentops_store::{Durability, EventLog, ExportLeases, Feedback, Journal, Query, Store};

/// A check's failure, saying what differed.
pub type Outcome = Result<(), String>;

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(what()) }
}

fn run(s: &str) -> Result<RunId, String> {
    RunId::parse(s).map_err(|e| e.to_string())
}

fn ev(run_id: &RunId, ts: i64, kind: EventKind, body: serde_json::Value) -> NewEvent {
    NewEvent {
        ts,
        run_id: run_id.clone(),
        span_id: None,
        parent_span_id: None,
        kind,
        body,
    }
}

/// The [`EventLog`] checks, each on a fresh empty log from `fresh`.
pub fn event_log(fresh: &dyn Fn() -> Box<dyn EventLog>) -> Outcome {
    round_trip(fresh().as_ref())?;
    batches_are_ordered(fresh().as_ref())?;
    keyed_batches_are_appended_once(fresh().as_ref())?;
    queries_filter(fresh().as_ref())
}

/// [`EventLog::append_once`]: a key is appended once, a batch whose source is
/// gone not at all, and a forgotten key is new again.
pub fn keyed_batches_are_appended_once(store: &dyn EventLog) -> Outcome {
    let r = run("conf-once")?;
    let batch = |n: i64| vec![ev(&r, n, EventKind::HookReceived, json!({ "n": n }))];
    let batches = vec![("a".to_owned(), batch(1)), ("b".to_owned(), batch(2))];
    let n = store
        .append_once(&batches, &|_| true, Durability::Sync)
        .map_err(|e| e.to_string())?;
    ensure(n == 2, || {
        format!("first append_once appended {n} batches, not 2")
    })?;
    let n = store
        .append_once(&batches, &|_| true, Durability::Sync)
        .map_err(|e| e.to_string())?;
    ensure(n == 0, || {
        format!("the same keys were appended again ({n})")
    })?;
    let gone = vec![("c".to_owned(), batch(3))];
    let n = store
        .append_once(&gone, &|k| k != "c", Durability::Sync)
        .map_err(|e| e.to_string())?;
    ensure(n == 0, || {
        "a batch whose source is gone was appended".into()
    })?;
    store
        .forget_once(&["a".to_owned()])
        .map_err(|e| e.to_string())?;
    let n = store
        .append_once(&batches[..1], &|_| true, Durability::Sync)
        .map_err(|e| e.to_string())?;
    ensure(n == 1, || "a forgotten key was not appended again".into())?;
    let got: Vec<i64> = store
        .read(&Query::run(r.clone()))
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|e| e.body["n"].as_i64())
        .collect();
    ensure(got == [1, 2, 1], || {
        format!("journal holds {got:?}, not [1, 2, 1]")
    })
}

/// The [`Feedback`] checks.
pub fn feedback(fresh: &dyn Fn() -> Box<dyn Feedback>) -> Outcome {
    utility_moves_as_an_ema(fresh().as_ref())
}

/// The [`ExportLeases`] checks.
pub fn export(fresh: &dyn Fn() -> Box<dyn ExportLeases>) -> Outcome {
    export_leases(fresh().as_ref())
}

/// The [`Rollups`] checks: the rollup follows appends, so they need a whole
/// store.
pub fn rollups(fresh: &dyn Fn() -> Box<dyn Store>) -> Outcome {
    rollup_sums_appends(fresh().as_ref())
}

/// Every check, trait by trait, each on a fresh empty store from `fresh`;
/// and the [`Journal`] over it redacts.
pub fn run_all(fresh: &dyn Fn() -> Box<dyn Store>) -> Outcome {
    // Trait upcasting: a whole store seen through one of its traits.
    event_log(&|| fresh() as Box<dyn EventLog>)?;
    feedback(&|| fresh() as Box<dyn Feedback>)?;
    export(&|| fresh() as Box<dyn ExportLeases>)?;
    rollups(fresh)?;
    journal_redacts(fresh())
}

/// An event comes back exactly as written, with a positive `seq`.
pub fn round_trip(store: &dyn EventLog) -> Outcome {
    let r = run("run-a")?;
    let span = SpanId::parse("01JD4X7Q8R2M5N6P7S8T9V0W1X").map_err(|e| e.to_string())?;
    let parent = SpanId::parse("01JD4X7Q8R2M5N6P7S8T9V0W1Y").map_err(|e| e.to_string())?;
    let e = ev(
        &r,
        1_700_000_000_000_000,
        EventKind::ToolCall,
        json!({"tool": "Bash", "n": 1, "nested": {"a": [1, 2]}}),
    )
    .in_span(span.clone(), Some(parent.clone()));
    let seqs = store
        .append_batch(std::slice::from_ref(&e), Durability::Sync)
        .map_err(|e| e.to_string())?;
    ensure(seqs.len() == 1 && seqs[0] > 0, || {
        format!("append returned {seqs:?}")
    })?;
    let got = store.read(&Query::default()).map_err(|e| e.to_string())?;
    ensure(got.len() == 1, || {
        format!("read {} events, wrote 1", got.len())
    })?;
    let g = &got[0];
    ensure(
        g.seq == seqs[0]
            && g.ts == e.ts
            && g.run_id == r
            && g.kind == e.kind
            && g.body == e.body
            && g.span_id.as_ref() == Some(&span)
            && g.parent_span_id.as_ref() == Some(&parent),
        || format!("read back {g:?}, wrote {e:?}"),
    )?;
    // A kind from a newer writer survives.
    store
        .append_batch(
            &[ev(
                &r,
                1,
                EventKind::Other("future.kind".into()),
                json!(null),
            )],
            Durability::Configured,
        )
        .map_err(|e| e.to_string())?;
    let got = store
        .read(&Query {
            kinds: vec![EventKind::Other("future.kind".into())],
            ..Query::default()
        })
        .map_err(|e| e.to_string())?;
    ensure(got.len() == 1, || format!("unknown kind: read {got:?}"))?;
    ensure(store.count().map_err(|e| e.to_string())? == 2, || {
        "count is not 2".into()
    })
}

/// A batch gets consecutive, increasing `seq`s, after everything before it.
pub fn batches_are_ordered(store: &dyn EventLog) -> Outcome {
    let r = run("run-b")?;
    let first = store
        .append_batch(
            &[ev(&r, 1, EventKind::RunStarted, json!({}))],
            Durability::Configured,
        )
        .map_err(|e| e.to_string())?;
    let batch: Vec<NewEvent> = (0..100)
        .map(|i| ev(&r, 2 + i, EventKind::LlmCall, json!({"i": i})))
        .collect();
    let seqs = store
        .append_batch(&batch, Durability::Configured)
        .map_err(|e| e.to_string())?;
    ensure(seqs.len() == 100, || {
        format!("{} seqs for 100 events", seqs.len())
    })?;
    ensure(seqs.windows(2).all(|w| w[1] == w[0] + 1), || {
        format!("seqs not consecutive: {seqs:?}")
    })?;
    ensure(seqs[0] > first[0], || {
        "batch seq not after earlier event".into()
    })?;
    let last = store.last_seq().map_err(|e| e.to_string())?;
    ensure(last == seqs[99], || {
        format!("last_seq {last}, expected {}", seqs[99])
    })?;
    let got = store
        .read(&Query::after(first[0]))
        .map_err(|e| e.to_string())?;
    let is: Vec<i64> = got
        .iter()
        .filter_map(|e| e.body.get("i").and_then(serde_json::Value::as_i64))
        .collect();
    ensure(is == (0..100).collect::<Vec<_>>(), || {
        format!("batch read back out of order: {is:?}")
    })?;
    ensure(
        store
            .append_batch(&[], Durability::Configured)
            .map_err(|e| e.to_string())?
            .is_empty(),
        || "empty batch returned seqs".into(),
    )
}

/// Reads by run, kind, time range, after a seq, with a limit, newest first.
pub fn queries_filter(store: &dyn EventLog) -> Outcome {
    let a = run("run-a")?;
    let b = run("run-b")?;
    let mut events = Vec::new();
    for i in 0..10 {
        let r = if i % 2 == 0 { &a } else { &b };
        let kind = if i < 5 {
            EventKind::StepStarted
        } else {
            EventKind::StepCompleted
        };
        events.push(ev(
            r,
            1000 + i,
            kind,
            json!({"i": i, "big": "x".repeat(100)}),
        ));
    }
    let seqs = store
        .append_batch(&events, Durability::Configured)
        .map_err(|e| e.to_string())?;
    let ids = |q: Query| -> Result<Vec<i64>, String> {
        Ok(store
            .read(&q)
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|e| e.body.get("i").and_then(serde_json::Value::as_i64))
            .collect())
    };
    let by_run = ids(Query::run(a.clone()))?;
    ensure(by_run == vec![0, 2, 4, 6, 8], || {
        format!("by run: {by_run:?}")
    })?;
    let by_kind = ids(Query {
        kinds: vec![EventKind::StepCompleted],
        ..Query::default()
    })?;
    ensure(by_kind == vec![5, 6, 7, 8, 9], || {
        format!("by kind: {by_kind:?}")
    })?;
    let both = ids(Query {
        run_id: Some(b.clone()),
        kinds: vec![EventKind::StepStarted, EventKind::StepCompleted],
        ..Query::default()
    })?;
    ensure(both == vec![1, 3, 5, 7, 9], || {
        format!("run+kinds: {both:?}")
    })?;
    let range = ids(Query {
        since_ts: Some(1003),
        until_ts: Some(1006),
        ..Query::default()
    })?;
    ensure(range == vec![3, 4, 5], || format!("time range: {range:?}"))?;
    let after = ids(Query::after(seqs[7]))?;
    ensure(after == vec![8, 9], || format!("after seq: {after:?}"))?;
    let limited = ids(Query {
        after_seq: Some(seqs[1]),
        limit: Some(3),
        ..Query::default()
    })?;
    ensure(limited == vec![2, 3, 4], || format!("limit: {limited:?}"))?;
    let between = ids(Query {
        after_seq: Some(seqs[1]),
        max_seq: Some(seqs[3]),
        ..Query::default()
    })?;
    ensure(between == vec![2, 3], || format!("max_seq: {between:?}"))?;
    let newest = ids(Query {
        run_id: Some(a.clone()),
        limit: Some(2),
        newest_first: true,
        ..Query::default()
    })?;
    ensure(newest == vec![8, 6], || format!("newest first: {newest:?}"))?;
    let mut scanned = Vec::new();
    store
        .scan(
            &Query {
                kinds: vec![EventKind::StepStarted],
                newest_first: true,
                ..Query::default()
            },
            &mut |r| scanned.push(r.seq),
        )
        .map_err(|e| e.to_string())?;
    ensure(
        scanned == vec![seqs[4], seqs[3], seqs[2], seqs[1], seqs[0]],
        || format!("scan newest first: {scanned:?}"),
    )?;
    // Raw rows: the same events, bodies as JSON text.
    let parsed = store
        .read(&Query::run(b.clone()))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    store
        .scan(&Query::run(b.clone()), &mut |r| {
            raw.push((
                r.seq,
                r.ts,
                r.run_id.to_owned(),
                r.kind.to_owned(),
                r.span_id.map(str::to_owned),
                serde_json::from_str::<serde_json::Value>(r.body).ok(),
            ))
        })
        .map_err(|e| e.to_string())?;
    ensure(
        raw.len() == parsed.len()
            && raw.iter().zip(&parsed).all(|(r, e)| {
                r.0 == e.seq
                    && r.1 == e.ts
                    && r.2 == e.run_id.as_str()
                    && r.3 == e.kind.as_str()
                    && r.4.as_deref() == e.span_id.as_ref().map(|s| s.as_str())
                    && r.5.as_ref() == Some(&e.body)
            }),
        || format!("scan: {raw:?}"),
    )?;
    let pos = store.positions(seqs[6], 2).map_err(|e| e.to_string())?;
    ensure(
        pos == vec![
            (seqs[7], b.as_str().to_owned()),
            (seqs[8], a.as_str().to_owned()),
        ],
        || format!("positions: {pos:?}"),
    )
}

/// Bodies are redacted before they reach the backend.
pub fn journal_redacts(store: Box<dyn Store>) -> Outcome {
    let journal = Journal::new(store, &[]).map_err(|e| e.to_string())?;
    let r = run("run-s")?;
    let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    journal
        .append(
            ev(&r, 1, EventKind::HookReceived, json!({"command": format!("git push https://{secret}@github.com/o/r"), "api_key": "plain-value-1"})),
            Durability::Sync,
        )
        .map_err(|e| e.to_string())?;
    let got = journal.read(&Query::run(r)).map_err(|e| e.to_string())?;
    let text = serde_json::to_string(&got).map_err(|e| e.to_string())?;
    ensure(
        !text.contains(secret) && !text.contains("plain-value-1"),
        || format!("secret stored: {text}"),
    )?;
    ensure(
        text.contains("[REDACTED:github-token]") && text.contains("[REDACTED:sensitive-field]"),
        || format!("no redaction markers: {text}"),
    )
}

/// Feedback moves utility as an EMA from 0.5, per entry, counting events.
pub fn utility_moves_as_an_ema(store: &dyn Feedback) -> Outcome {
    let none = store.utility(&["a", "b"]).map_err(|e| e.to_string())?;
    ensure(none.is_empty(), || {
        format!("utility before feedback: {none:?}")
    })?;
    let u = store
        .apply_feedback("a", 1.0, 0.1, 1)
        .map_err(|e| e.to_string())?;
    ensure((u.value - 0.55).abs() < 1e-9 && u.events == 1, || {
        format!("after one helpful: {u:?}")
    })?;
    let u = store
        .apply_feedback("a", 0.0, 0.1, 2)
        .map_err(|e| e.to_string())?;
    ensure((u.value - 0.495).abs() < 1e-9 && u.events == 2, || {
        format!("after harmful: {u:?}")
    })?;
    store
        .apply_feedback("b", 1.0, 0.5, 3)
        .map_err(|e| e.to_string())?;
    let all = store.utility(&["a", "b", "c"]).map_err(|e| e.to_string())?;
    ensure(
        all.len() == 2 && (all["b"].value - 0.75).abs() < 1e-9,
        || format!("utility map: {all:?}"),
    )
}

/// Appends fold model calls, tool calls, gates and steps into the rollup by
/// (day, run, agent, model), with the run's workflow.
pub fn rollup_sums_appends(store: &dyn Store) -> Outcome {
    let r = run("run-r")?;
    let day = agentops_store::rollup::DAY_US;
    let call = |ts: i64, tokens: i64, cost: f64| {
        ev(
            &r,
            ts,
            EventKind::LlmCall,
            json!({"agent": "coder", "model": "gpt-5", "cost_usd": cost, "duration_ms": 10.0,
                   "usage": {"input_tokens": tokens, "output_tokens": 5, "cache_read_tokens": 10, "cache_creation_tokens": 0}}),
        )
    };
    store
        .append_batch(
            &[
                ev(
                    &r,
                    day * 10,
                    EventKind::RunStarted,
                    json!({"workflow": {"name": "feature"}}),
                ),
                call(day * 10 + 1, 100, 0.25),
                call(day * 10 + 2, 50, 0.25),
                ev(
                    &r,
                    day * 10 + 3,
                    EventKind::ToolCall,
                    json!({"agent": "coder", "is_error": true}),
                ),
                ev(
                    &r,
                    day * 10 + 4,
                    EventKind::GateVerdict,
                    json!({"verdict": "PASS"}),
                ),
                call(day * 11, 1, 0.5),
            ],
            Durability::Sync,
        )
        .map_err(|e| e.to_string())?;
    let rows = store.rollup(0).map_err(|e| e.to_string())?;
    let find = |d: i64, agent: &str, model: &str| {
        rows.iter()
            .find(|x| x.day == d && x.agent == agent && x.model == model)
            .cloned()
    };
    let a = find(10, "coder", "gpt-5").ok_or_else(|| format!("no day-10 call row: {rows:?}"))?;
    ensure(
        a.sums.llm_calls == 2
            && a.sums.input_tokens == 150
            && a.sums.cache_read_tokens == 20
            && (a.sums.cost_usd - 0.5).abs() < 1e-9
            && a.workflow.as_deref() == Some("feature"),
        || format!("day-10 model row: {a:?}"),
    )?;
    let t = find(10, "coder", "").ok_or_else(|| format!("no tool row: {rows:?}"))?;
    ensure(t.sums.tool_calls == 1 && t.sums.tool_errors == 1, || {
        format!("tool row: {t:?}")
    })?;
    let g = find(10, "", "").ok_or_else(|| format!("no gate row: {rows:?}"))?;
    ensure(g.sums.gates == 1 && g.sums.gates_passed == 1, || {
        format!("gate row: {g:?}")
    })?;
    let later = store.rollup(11).map_err(|e| e.to_string())?;
    ensure(later.len() == 1 && later[0].sums.llm_calls == 1, || {
        format!("rollup since day 11: {later:?}")
    })
}

/// One exporter holds a lease; another is refused until it expires or is
/// released; only the holder moves the watermark, which never goes back.
pub fn export_leases(store: &dyn ExportLeases) -> Outcome {
    let e = |x: agentops_store::StoreError| x.to_string();
    ensure(
        store.claim_export("otlp:a", "one", 100, 200).map_err(e)? == Some(0),
        || "first claim should start at 0".into(),
    )?;
    ensure(
        store
            .claim_export("otlp:a", "two", 150, 250)
            .map_err(e)?
            .is_none(),
        || "a second owner claimed a live lease".into(),
    )?;
    ensure(
        store.advance_export("otlp:a", "one", 42, 300).map_err(e)?,
        || "the holder could not advance".into(),
    )?;
    ensure(
        !store.advance_export("otlp:a", "two", 99, 300).map_err(e)?,
        || "a non-holder advanced the watermark".into(),
    )?;
    ensure(
        store.advance_export("otlp:a", "one", 7, 300).map_err(e)?,
        || "advance".into(),
    )?;
    ensure(
        store.claim_export("otlp:a", "two", 301, 400).map_err(e)? == Some(42),
        || "an expired lease should pass to the next owner at the watermark".into(),
    )?;
    store.release_export("otlp:a", "two").map_err(e)?;
    ensure(
        store.claim_export("otlp:a", "three", 302, 400).map_err(e)? == Some(42),
        || "a released lease should be free".into(),
    )?;
    let w = store.watermarks().map_err(e)?;
    ensure(w.len() == 1 && w[0].0 == "otlp:a" && w[0].1 == 42, || {
        format!("watermarks: {w:?}")
    })
}
