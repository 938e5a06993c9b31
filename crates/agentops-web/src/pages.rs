//! The pages: runs, a run (its trace waterfall, gates, checkpoints and
//! actions), sessions, a session, cost and usage, knowledge, an entry,
//! alerts. Each reads the same views the CLI prints.

use std::collections::HashMap;
use std::fmt::Write as _;

use agentops_api::ApiError;
use agentops_core::{EventKind, RunId};
use agentops_store::{Query, Sums};
use agentops_telemetry::span::{Span, SpanKind};
use agentops_telemetry::view::By;

use crate::data::{Folds, RunRow, percentile};
use crate::html::{self, Series, badge, esc, usd};
use crate::serve::{Request, Response, encode};
use crate::state::State;

/// Runs on one page of the list.
pub const PAGE: usize = 50;
/// Up to this many spans a run's page reads all its events (the timeline
/// with every model and tool call); beyond, its lifecycle events only.
const TIMELINE_SPANS: usize = 2_000;
/// How stale the cost page's figures may be while the journal moves.
const COST_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

pub fn route(state: &State, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let r = match parts.as_slice() {
        [] | [""] => return Response::redirect("/runs"),
        ["assets", "app.css"] => {
            return Response::new(200, "text/css; charset=utf-8", html::CSS.into());
        }
        ["assets", "app.js"] => {
            return Response::new(200, "text/javascript; charset=utf-8", html::JS.into());
        }
        ["assets", "icon.svg"] | ["favicon.ico"] => {
            return Response::new(200, "image/svg+xml", html::ICON.into());
        }
        ["api", "seq"] => seq(state),
        ["runs"] => runs(state, req),
        ["runs", id] => run(state, id, req),
        ["sessions"] => sessions(state, req),
        ["sessions", id] => session(state, id),
        ["cost"] => cost(state, req),
        ["knowledge"] => knowledge(state, req),
        ["knowledge", id] => entry(state, id),
        ["alerts"] => alerts(state, req),
        _ => {
            return Response::error(
                state,
                404,
                "Not found",
                &format!("nothing is served at {}", req.path),
            );
        }
    };
    r.unwrap_or_else(|e| {
        let status = if e.kind == agentops_api::ErrorKind::Usage {
            400
        } else {
            500
        };
        Response::error(state, status, "Cannot show this page", &e.to_string())
    })
}

/// A string field of an event body ("" when absent).
fn text(body: &serde_json::Value, k: &str) -> String {
    body.get(k)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned()
}

fn failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::failed(e)
}

/// The journal's position: what the live script compares.
fn seq(state: &State) -> Result<Response, ApiError> {
    let j = state.journal()?;
    Ok(Response::json(
        &serde_json::json!({"seq": j.last_seq().map_err(failed)?}),
    ))
}

/// `main` with the position it shows, so the script knows when to refresh.
fn live(state: &State, title: &str, section: &str, seq: i64, main: &str) -> Response {
    Response::html(html::page(state, title, section, Some(seq), main))
}

/// `7d`, `24h`, or a date: the start (µs) it names.
fn since(s: &str) -> Result<i64, ApiError> {
    if let Some(age) = agentops_core::time::parse_age(s) {
        return Ok(agentops_core::time::now_micros() - age);
    }
    agentops_core::time::parse_rfc3339(s).ok_or_else(|| {
        ApiError::usage(format!(
            "since `{s}`: use a date (2026-11-01) or an age (7d, 12h, 2w)"
        ))
    })
}

/// A run no process executes any more (its status says running).
fn interrupted(state: &State, id: &str) -> bool {
    RunId::parse(id).is_ok_and(|run| {
        !agentops_runner::RunState::lock_held(&state.project.layout.state_dir(), &run)
    })
}

fn select(name: &str, current: Option<&str>, options: &[String], any: &str) -> String {
    let mut s =
        format!("<select name=\"{name}\" aria-label=\"{name}\"><option value=\"\">{any}</option>");
    for o in options {
        let _ = write!(
            s,
            "<option value=\"{}\"{}>{}</option>",
            esc(o),
            if Some(o.as_str()) == current {
                " selected"
            } else {
                ""
            },
            esc(o)
        );
    }
    s.push_str("</select>");
    s
}

fn runs(state: &State, req: &Request) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let status = req.param("status");
    let workflow = req.param("workflow");
    let from = req.param("since").map(since).transpose()?;
    let page = req
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let (seq, body) = state.with_folds(&j, |f| {
        let seq = f.seq;
        f.refresh_rollup(&j).map_err(failed)?;
        let f = &*f;
        let sums = &f.run_sums;
        // A running run no process holds is `interrupted` (killed).
        let lost: std::collections::HashSet<&str> = f
            .runs
            .values()
            .filter(|r| r.status == "running" && interrupted(state, &r.id))
            .map(|r| r.id.as_str())
            .collect();
        fn status_in<'a>(lost: &std::collections::HashSet<&str>, r: &'a RunRow) -> &'a str {
            if lost.contains(r.id.as_str()) {
                "interrupted"
            } else {
                r.status.as_str()
            }
        }
        let status_of = |r: &RunRow| status_in(&lost, r).to_owned();
        let mut workflows: Vec<String> = f.runs.values().map(|r| r.workflow.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        workflows.dedup();
        let statuses: Vec<String> = [
            "running",
            "paused",
            "interrupted",
            "completed",
            "failed",
            "cancelled",
            "landed",
        ]
        .map(String::from)
        .to_vec();
        let mut rows: Vec<&RunRow> = f
            .runs
            .values()
            .filter(|r| {
                status.is_none_or(|s| status_in(&lost, r) == s)
                    && workflow.is_none_or(|w| r.workflow == w)
                    && from.is_none_or(|t| r.started_ts >= t)
            })
            .collect();
        // Paused runs first (someone has to act), then the newest.
        rows.sort_unstable_by(|a, b| {
            (b.status == "paused")
                .cmp(&(a.status == "paused"))
                .then(b.started_ts.cmp(&a.started_ts))
                .then(b.id.cmp(&a.id))
        });
        let total = rows.len();
        let pages = total.div_ceil(PAGE).max(1);
        let shown = &rows[((page - 1) * PAGE).min(total)..(page * PAGE).min(total)];
        let mut s = String::from("<h1>Runs</h1>");
        let _ = write!(
            s,
            "<form class=\"filters\" method=\"get\" action=\"/runs\">{}{}<input type=\"text\" name=\"since\" placeholder=\"since (7d, 2026-11-01)\" value=\"{}\" aria-label=\"since\"><button type=\"submit\" class=\"quiet\">Filter</button></form>",
            select("status", status, &statuses, "any status"),
            select("workflow", workflow, &workflows, "any workflow"),
            esc(req.param("since").unwrap_or(""))
        );
        let _ = write!(
            s,
            "<div id=\"runs-list\" data-live><p class=\"muted\" id=\"runs-count\" data-total=\"{total}\">{} {}</p>",
            total,
            if total == 1 { "run" } else { "runs" }
        );
        if shown.is_empty() {
            s.push_str("<p class=\"muted\">no runs match (<code>agentops run WORKFLOW \"goal\"</code> starts one; <code>agentops demo</code> shows one)</p>");
        } else {
            s.push_str("<table class=\"runs\"><thead><tr><th>run</th><th>status</th><th>workflow</th><th>goal</th><th>started (UTC)</th><th class=\"n\">duration</th><th class=\"n\">phases</th><th class=\"n\">tokens</th><th class=\"n\">cost</th><th class=\"n\">gates</th></tr></thead><tbody>");
            for r in shown {
                let r = *r;
                let st = status_of(r);
                let st = st.as_str();
                let su = sums.get(r.id.as_str()).copied().unwrap_or_default();
                let reason = if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(
                        " <span class=\"muted reason\">{}</span>",
                        esc(&r.reason.chars().take(80).collect::<String>())
                    )
                };
                let gates = if su.gates == 0 {
                    "–".to_owned()
                } else {
                    format!("{}/{}", su.gates_passed, su.gates)
                };
                let _ = write!(
                    s,
                    "<tr data-run=\"{id}\" data-status=\"{st}\"><td><a class=\"mono\" href=\"/runs/{id}\">{id}</a></td><td>{}{reason}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}/{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{gates}</td></tr>",
                    badge(st),
                    esc(&r.workflow),
                    esc(&r.goal.lines().next().unwrap_or("").chars().take(90).collect::<String>()),
                    html::when(r.started_ts),
                    html::duration_us(r.last_ts - r.started_ts),
                    r.phases_done.len(),
                    r.phases,
                    html::tokens(su.input_tokens + su.output_tokens),
                    usd(su.cost_usd),
                    id = esc(&r.id),
                    st = esc(st),
                );
            }
            s.push_str("</tbody></table>");
        }
        if pages > 1 {
            let q = |p: usize| {
                let mut v: Vec<String> = req
                    .query
                    .iter()
                    .filter(|(k, _)| k != "page")
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect();
                v.push(format!("page={p}"));
                format!("/runs?{}", v.join("&"))
            };
            s.push_str("<div class=\"pager\">");
            if page > 1 {
                let _ = write!(s, "<a href=\"{}\">← newer</a>", esc(&q(page - 1)));
            }
            let _ = write!(s, "<span class=\"muted\">page {page} of {pages}</span>");
            if page < pages {
                let _ = write!(s, "<a href=\"{}\">older →</a>", esc(&q(page + 1)));
            }
            s.push_str("</div>");
        }
        s.push_str("</div>");
        Ok((seq, s))
    })?;
    Ok(live(state, "Runs", "runs", seq, &body))
}

/// Span rows: depth-first from the roots, children by start.
fn ordered(spans: &[Span]) -> Vec<(usize, &Span)> {
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    let ids: std::collections::HashSet<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_us, i));
    by_start(&mut roots);
    for v in children.values_mut() {
        by_start(v);
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (0, i)).collect();
    while let Some((d, i)) = stack.pop() {
        out.push((d, &spans[i]));
        if let Some(c) = children.get(&spans[i].span_id) {
            for &k in c.iter().rev() {
                stack.push((d + 1, k));
            }
        }
    }
    out
}

fn kind_word(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Workflow => "workflow",
        SpanKind::Agent => "agent",
        SpanKind::Llm => "llm",
        SpanKind::Tool => "tool",
        SpanKind::Gate => "gate",
        SpanKind::Session => "session",
    }
}

/// The trace waterfall: one row and one bar per span on a shared axis,
/// with latency, tokens and cost beside it and in the bar's tooltip.
pub fn waterfall(spans: &[Span]) -> String {
    if spans.is_empty() {
        return "<p class=\"muted\">no spans yet</p>".into();
    }
    let now = agentops_core::time::now_micros();
    let t0 = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    let end = |s: &Span| {
        if s.done_seq.is_none() && s.end_us <= s.start_us {
            now.max(s.start_us)
        } else {
            s.end_us.max(s.start_us)
        }
    };
    let t1 = spans.iter().map(end).max().unwrap_or(t0).max(t0 + 1);
    let total = (t1 - t0) as f64;
    let mut s = String::with_capacity(spans.len() * 420);
    let _ = write!(
        s,
        "<table class=\"waterfall\" id=\"waterfall\" data-spans=\"{}\"><thead><tr><th>span</th><th>kind</th><th>{} · 0 → {}</th><th class=\"n\">latency</th><th class=\"n\">tokens in/out</th><th class=\"n\">cost</th><th>status</th></tr></thead><tbody>",
        spans.len(),
        html::when(t0),
        html::duration_us(t1 - t0)
    );
    for (depth, sp) in ordered(spans) {
        let e = end(sp);
        let x = (sp.start_us - t0) as f64 / total * 100.0;
        let w = ((e - sp.start_us) as f64 / total * 100.0).max(0.3);
        let lat = html::duration_us(e - sp.start_us);
        let cost = sp.cost_usd.map(usd).unwrap_or_else(|| "–".into());
        let tok = if sp.input_tokens + sp.output_tokens > 0 {
            format!(
                "{} / {}",
                html::tokens(sp.input_tokens),
                html::tokens(sp.output_tokens)
            )
        } else {
            "–".into()
        };
        let kind = kind_word(sp.kind);
        let _ = write!(
            s,
            "<tr class=\"span-row\" data-kind=\"{kind}\"><td class=\"name d{}\" title=\"{name}\">{name}</td><td class=\"muted\">{kind}</td><td class=\"bar\"><svg class=\"track\" viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\"><rect class=\"span k-{kind}{}\" x=\"{x:.3}\" y=\"1\" width=\"{w:.3}\" height=\"8\"><title>{name} · {lat} · {tok} tokens · {cost}</title></rect></svg></td><td class=\"n\">{lat}</td><td class=\"n\">{tok}</td><td class=\"n\">{cost}</td><td>{}</td></tr>",
            depth.min(4),
            if sp.error.is_some() { " err" } else { "" },
            badge(&sp.status),
            name = esc(&sp.name),
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn kv(items: &[(&str, String)]) -> String {
    let mut s = String::from("<dl class=\"kv\">");
    for (k, v) in items {
        let _ = write!(s, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    s.push_str("</dl>");
    s
}

fn run(state: &State, id: &str, req: &Request) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let seq = j.last_seq().map_err(failed)?;
    let run = agentops_api::runs::resolve(&j, id)?;
    let is_run = !j
        .read(&Query {
            run_id: Some(run.clone()),
            kinds: vec![EventKind::RunStarted],
            limit: Some(1),
            ..Query::default()
        })
        .map_err(failed)?
        .is_empty();
    if !is_run {
        return Ok(Response::redirect(&format!(
            "/sessions/{}",
            encode(run.as_str())
        )));
    }
    let layout = &state.project.layout;
    let state_dir = layout.state_dir();
    let spans = state.spans(&j, &run)?;
    // The run's state from its lifecycle and phase events — not from its
    // model calls, whose answers make up most of a long run's journal
    // (what they cost comes from the rollup).
    let mut kinds: Vec<EventKind> = EventKind::KNOWN
        .iter()
        .filter(|k| !matches!(k, EventKind::LlmCall | EventKind::ToolCall))
        .cloned()
        .collect();
    let small = spans.len() <= TIMELINE_SPANS;
    if small {
        kinds.extend([EventKind::LlmCall, EventKind::ToolCall]);
    }
    let events = j
        .read(&Query {
            run_id: Some(run.clone()),
            kinds,
            ..Query::default()
        })
        .map_err(failed)?;
    let mut st = agentops_runner::RunState::from_events(&run, &state_dir, &events)
        .map_err(agentops_api::runs::run_error)?;
    if !small {
        let sums = state.with_folds(&j, |f| {
            f.refresh_rollup(&j).map_err(failed)?;
            Ok(f.run_sums.get(run.as_str()).copied().unwrap_or_default())
        })?;
        st.spent.tokens = u64::try_from(sums.input_tokens + sums.output_tokens).unwrap_or(0);
        st.spent.usd = sums.cost_usd;
        st.calls = u64::try_from(sums.llm_calls).unwrap_or(0);
    }
    let status = if st.interrupted(&state_dir) {
        "interrupted".to_owned()
    } else {
        st.status.label().to_owned()
    };
    let timeline = agentops_runner::view::timeline(&events);
    let st = &st;
    let pending = agentops_gates::approval::pending(&j, Some(&run)).map_err(failed)?;
    let mut s = format!(
        "<h1>Run <span class=\"mono\">{}</span> {}</h1>",
        esc(run.as_str()),
        badge(&status)
    );
    let mut acts = String::new();
    if let Some(note) = req.param("note") {
        let _ = write!(acts, "<p class=\"notice\" id=\"note\">{}</p>", esc(note));
    }
    let base = format!("/runs/{}", encode(run.as_str()));
    for p in &pending {
        let _ = write!(
            acts,
            "<div class=\"notice\" data-pending=\"{}\">Gate <b>{}</b> waits for a person{}: ",
            esc(&p.gate),
            esc(&p.gate),
            if p.what.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&p.what))
            }
        );
        let gate = format!(
            "<input type=\"hidden\" name=\"gate\" value=\"{}\">",
            esc(&p.gate)
        );
        acts.push_str(&html::action(
            state,
            &format!("{base}/approve"),
            "Approve and resume",
            "",
            &gate,
        ));
        acts.push_str(&html::action(
            state,
            &format!("{base}/reject"),
            "Reject",
            "danger",
            &gate,
        ));
        acts.push_str("</div>");
    }
    if let agentops_runner::RunStatus::Paused { reason, detail } = &st.status {
        let _ = write!(
            acts,
            "<p class=\"notice\">Paused ({}): {}</p>",
            esc(reason.as_str()),
            esc(detail.lines().next().unwrap_or(""))
        );
    }
    let paused = matches!(st.status, agentops_runner::RunStatus::Paused { .. });
    if (paused && pending.is_empty()) || status == "interrupted" {
        acts.push_str(&html::action(
            state,
            &format!("{base}/resume"),
            "Resume",
            "",
            "",
        ));
    }
    if !st.status.finished() {
        acts.push_str(&html::action(
            state,
            &format!("{base}/cancel"),
            "Cancel",
            "danger",
            "",
        ));
    }
    if matches!(st.status, agentops_runner::RunStatus::Completed { .. }) {
        acts.push_str(&html::action(
            state,
            &format!("{base}/land"),
            "Land",
            "",
            "",
        ));
    }
    let _ = write!(
        s,
        "<div class=\"actions\" id=\"actions\" data-live>{acts}</div>"
    );
    let _ = write!(
        s,
        "<div id=\"run-head\" data-live><div class=\"cards\"><div class=\"card\"><div class=\"k\">workflow</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">tokens</div><div class=\"v\" id=\"run-tokens\">{}</div></div><div class=\"card\"><div class=\"k\">cost</div><div class=\"v\" id=\"run-cost\">{}</div></div><div class=\"card\"><div class=\"k\">model calls</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">phases</div><div class=\"v\">{}/{}</div></div></div>",
        esc(&st.started.workflow.name),
        html::tokens(i64::try_from(st.spent.tokens).unwrap_or(i64::MAX)),
        usd(st.spent.usd),
        st.calls,
        st.completed.len(),
        st.started.workflow.phases.len()
    );
    s.push_str(&kv(&[
        ("goal", esc(&st.started.goal)),
        (
            "branch",
            format!("<code>{}</code>", esc(&st.started.branch)),
        ),
        (
            "base",
            format!(
                "<code>{}</code>",
                esc(st
                    .started
                    .base_commit
                    .get(..12)
                    .unwrap_or(&st.started.base_commit))
            ),
        ),
        ("started", html::when(st.started_ts)),
        (
            "budget",
            esc(&serde_json::to_string(&st.budget).unwrap_or_default()),
        ),
    ]));
    s.push_str("</div>");
    let _ = write!(
        s,
        "<h2>Trace</h2><div id=\"trace\" data-live>{}</div>",
        waterfall(&spans)
    );
    // Gate verdicts with their evidence.
    let verdicts: Vec<&agentops_core::Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::GateVerdict | EventKind::ApprovalResolved))
        .collect();
    s.push_str("<h2>Gates</h2><div id=\"gates\" data-live>");
    if verdicts.is_empty() {
        s.push_str("<p class=\"muted\">no gate has run yet</p>");
    } else {
        s.push_str("<table class=\"gates\"><thead><tr><th>time</th><th>gate</th><th>kind</th><th>verdict</th><th>summary</th><th>evidence</th></tr></thead><tbody>");
        for e in verdicts {
            let b = &e.body;
            let str_of = |k: &str| text(b, k);
            let (gate, kind, verdict, summary, evidence) = if e.kind == EventKind::ApprovalResolved
            {
                let ok = b.get("approved").and_then(serde_json::Value::as_bool) == Some(true);
                (
                    str_of("gate"),
                    "approval".to_owned(),
                    if ok { "approved" } else { "rejected" }.to_owned(),
                    format!("by {} {}", str_of("by"), str_of("reason")),
                    String::new(),
                )
            } else {
                let pending = b.get("pending").and_then(serde_json::Value::as_bool) == Some(true);
                (
                    str_of("gate"),
                    str_of("kind"),
                    if pending {
                        "wait".to_owned()
                    } else {
                        str_of("verdict")
                    },
                    str_of("summary"),
                    match b.get("evidence") {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                    },
                )
            };
            let _ = write!(
                s,
                "<tr class=\"gate-row\"><td class=\"mono\">{}</td><td>{}</td><td class=\"muted\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html::when(e.ts),
                esc(&gate),
                esc(&kind),
                badge(&verdict),
                esc(&summary),
                if evidence.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<details><summary>evidence</summary><pre>{}</pre></details>",
                        esc(&evidence)
                    )
                }
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div>");
    // Checkpoints: the commit each phase ended on.
    s.push_str("<h2>Checkpoints</h2><div id=\"checkpoints\" data-live>");
    if st.completed.is_empty() {
        s.push_str("<p class=\"muted\">no phase has completed yet</p>");
    } else {
        s.push_str("<table><thead><tr><th>phase</th><th>commit</th><th class=\"n\">attempt</th><th class=\"n\">cost</th><th>summary</th></tr></thead><tbody>");
        for (phase, p) in &st.completed {
            let _ = write!(
                s,
                "<tr class=\"checkpoint\"><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(phase),
                esc(p.commit.get(..12).unwrap_or(&p.commit)),
                p.attempt,
                usd(p.cost_usd),
                esc(&p.summary.chars().take(300).collect::<String>())
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div>");
    // The run summary, once written (in the run's worktree, or landed).
    let rel = format!(".agents/runs/{}.md", run.as_str());
    let summary = std::fs::read_to_string(st.started.worktree.join(&rel))
        .or_else(|_| std::fs::read_to_string(layout.work_tree.join(&rel)));
    if let Ok(text) = summary {
        let _ = write!(
            s,
            "<h2>Summary</h2><pre id=\"summary\">{}</pre>",
            esc(&j.redactor().redact(&text))
        );
    }
    s.push_str("<h2>Timeline</h2>");
    if !small {
        s.push_str("<p class=\"muted\">phases, gates and pauses; the model and tool calls are in the trace above (all of it: <code>agentops show RUN</code>)</p>");
    }
    s.push_str("<table id=\"timeline\"><tbody>");
    for t in &timeline {
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
            html::when(t.ts),
            esc(&t.step.text())
        );
    }
    s.push_str("</tbody></table>");
    Ok(live(
        state,
        &format!("Run {}", run.as_str()),
        "runs",
        seq,
        &s,
    ))
}

fn sessions(state: &State, req: &Request) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let seq = j.last_seq().map_err(failed)?;
    // The last week unless asked: a journal of a million hook events is
    // not read for a page.
    let since_s = req.param("since").unwrap_or("7d");
    let from = since(since_s)?;
    let all = agentops_harness::sessions::list(&j, Some(from)).map_err(failed)?;
    let mut s = String::from("<h1>Sessions</h1>");
    let _ = write!(
        s,
        "<form class=\"filters\" method=\"get\" action=\"/sessions\">active since <input type=\"text\" name=\"since\" placeholder=\"7d, 2026-11-01\" value=\"{}\" aria-label=\"since\"><button type=\"submit\" class=\"quiet\">Filter</button></form>",
        esc(since_s)
    );
    s.push_str("<div id=\"sessions-list\" data-live>");
    if all.is_empty() {
        s.push_str("<p class=\"muted\">no harness sessions yet: <code>agentops hooks install claude</code> (or codex), or <code>agentops ingest</code> a stream</p>");
    } else {
        s.push_str("<table class=\"sessions\"><thead><tr><th>session</th><th>harness</th><th>last active (UTC)</th><th class=\"n\">duration</th><th class=\"n\">prompts</th><th class=\"n\">tools</th><th class=\"n\">denials</th><th class=\"n\">tokens in/out</th><th class=\"n\">cost</th><th>handoff</th></tr></thead><tbody>");
        for x in all.iter().take(500) {
            let _ = write!(
                s,
                "<tr data-session=\"{id}\"><td><a class=\"mono\" href=\"/sessions/{}\">{id}</a>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n tools\">{}{}</td><td class=\"n\">{}{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td></tr>",
                encode(&x.id),
                if x.ended {
                    ""
                } else {
                    " <span class=\"badge s-running\">live</span>"
                },
                esc(&x.harness),
                html::when(x.last),
                html::duration_us((x.duration_s * 1e6) as i64),
                x.prompts,
                x.tools,
                if x.tool_errors > 0 {
                    format!(" ({} failed)", x.tool_errors)
                } else {
                    String::new()
                },
                x.denied + x.blocked,
                if x.escalated { " !" } else { "" },
                html::tokens(i64::try_from(x.usage.input_tokens).unwrap_or(i64::MAX)),
                html::tokens(i64::try_from(x.usage.output_tokens).unwrap_or(i64::MAX)),
                x.cost_usd.map(usd).unwrap_or_else(|| "–".into()),
                esc(x.handoff.as_deref().unwrap_or("–")),
                id = esc(&x.id),
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div>");
    Ok(live(state, "Sessions", "sessions", seq, &s))
}

/// The context guard's readings as a band over time.
fn guard_band(events: &[agentops_core::Event]) -> String {
    if events.is_empty() {
        return "<p class=\"muted\">no context-guard readings in this session</p>".into();
    }
    let t0 = events.first().map_or(0, |e| e.ts);
    let t1 = events.last().map_or(0, |e| e.ts).max(t0 + 1);
    // The last reading holds until the session's end: give it a share.
    let span = (t1 - t0) as f64 * 1.05;
    let mut s = String::from(
        "<div class=\"band\" id=\"guard\"><svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\">",
    );
    for (i, e) in events.iter().enumerate() {
        let next = events.get(i + 1).map_or(t0 + span as i64, |n| n.ts);
        let band = e
            .body
            .get("band")
            .and_then(|v| v.as_str())
            .unwrap_or("green");
        let pct = e
            .body
            .get("percent")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let x = (e.ts - t0) as f64 / span * 100.0;
        let w = ((next - e.ts) as f64 / span * 100.0).max(0.5);
        let _ = write!(
            s,
            "<rect class=\"b-{}\" x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"10\" data-band=\"{}\"><title>{} · {pct:.0}% of the window · {}</title></rect>",
            esc(band),
            esc(band),
            html::when(e.ts),
            esc(band)
        );
    }
    s.push_str("</svg></div>");
    s
}

fn session(state: &State, id: &str) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let seq = j.last_seq().map_err(failed)?;
    let run = agentops_api::runs::resolve(&j, id)?;
    let of = |kinds: Vec<EventKind>| {
        j.read(&Query {
            run_id: Some(run.clone()),
            kinds,
            ..Query::default()
        })
        .map_err(failed)
    };
    let guard = of(vec![EventKind::ContextGuard])?;
    let decisions = of(vec![EventKind::HookDecision])?;
    let handoffs = of(vec![EventKind::HandoffWritten])?;
    let spans = state.spans(&j, &run)?;
    // The session's summary from the events since its first (not the
    // whole journal's sessions).
    let first = j
        .read(&Query {
            run_id: Some(run.clone()),
            limit: Some(1),
            ..Query::default()
        })
        .map_err(failed)?
        .first()
        .map(|e| e.ts);
    let summary = agentops_harness::sessions::list(&j, first)
        .map_err(failed)?
        .into_iter()
        .find(|x| x.id == run.as_str());
    let mut s = format!(
        "<h1>Session <span class=\"mono\">{}</span></h1>",
        esc(run.as_str())
    );
    s.push_str("<div id=\"session-head\" data-live>");
    if let Some(x) = &summary {
        let _ = write!(
            s,
            "<div class=\"cards\"><div class=\"card\"><div class=\"k\">harness</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">duration</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">tools</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">denials</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">tokens in/out</div><div class=\"v\">{} / {}</div></div><div class=\"card\"><div class=\"k\">cost</div><div class=\"v\">{}</div></div></div>",
            esc(&x.harness),
            html::duration_us((x.duration_s * 1e6) as i64),
            x.tools,
            x.denied + x.blocked,
            html::tokens(i64::try_from(x.usage.input_tokens).unwrap_or(i64::MAX)),
            html::tokens(i64::try_from(x.usage.output_tokens).unwrap_or(i64::MAX)),
            x.cost_usd.map(usd).unwrap_or_else(|| "–".into()),
        );
    }
    s.push_str("<h2>Context window</h2>");
    s.push_str(&guard_band(&guard));
    s.push_str("</div>");
    s.push_str("<h2>Denials and blocks</h2><div id=\"denials\" data-live>");
    if decisions.is_empty() {
        s.push_str("<p class=\"muted\">none</p>");
    } else {
        s.push_str("<table><thead><tr><th>time</th><th>decision</th><th>tool</th><th>rule</th><th>reason</th></tr></thead><tbody>");
        for e in &decisions {
            let g = |k: &str| text(&e.body, k);
            let _ = write!(
                s,
                "<tr class=\"denial\"><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                html::when(e.ts),
                badge(&g("decision")),
                esc(&g("tool")),
                esc(&g("rule")),
                esc(&g("reason"))
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div><h2>Handoffs</h2><div id=\"handoffs\" data-live>");
    if handoffs.is_empty() {
        s.push_str("<p class=\"muted\">none written</p>");
    } else {
        s.push_str("<table><tbody>");
        for e in &handoffs {
            let g = |k: &str| text(&e.body, k);
            let _ = write!(
                s,
                "<tr><td class=\"mono\">{}</td><td><a class=\"mono\" href=\"/knowledge/{}\">{}</a></td><td>{}</td></tr>",
                html::when(e.ts),
                encode(&g("id")),
                esc(&g("id")),
                esc(&g("trigger"))
            );
        }
        s.push_str("</tbody></table>");
    }
    let _ = write!(
        s,
        "</div><h2>Trace</h2><div id=\"trace\" data-live>{}</div>",
        waterfall(&spans)
    );
    Ok(live(
        state,
        &format!("Session {}", run.as_str()),
        "sessions",
        seq,
        &s,
    ))
}

/// Latency (p50, p95) by group key.
type Latency = HashMap<String, (Option<f64>, Option<f64>)>;

/// What the cost page shows for a window: computed once per journal
/// position and first day, then only formatted.
#[derive(Debug)]
pub struct CostView {
    total: Sums,
    runs: usize,
    days: Vec<agentops_telemetry::view::Group>,
    /// Latency (p50, p95) by day label.
    lat_day: HashMap<String, (Option<f64>, Option<f64>)>,
    by: Vec<(By, Vec<agentops_telemetry::view::Group>, Latency)>,
}

/// Latency percentiles of the samples from `from_day`, grouped by `key`
/// (an index; `label` names it).
fn latency_by(
    f: &Folds,
    from_day: i64,
    key: &dyn Fn(&crate::data::Sample) -> u32,
    label: &dyn Fn(u32) -> String,
) -> HashMap<String, (Option<f64>, Option<f64>)> {
    let mut m: HashMap<u32, Vec<f32>> = HashMap::new();
    for x in f.samples.iter().filter(|x| x.day >= from_day) {
        m.entry(key(x)).or_default().push(x.ms);
    }
    let mut out: HashMap<String, (Option<f64>, Option<f64>)> = HashMap::new();
    for (k, mut v) in m {
        let p50 = percentile(&mut v, 0.5);
        let p95 = percentile(&mut v, 0.95);
        out.insert(label(k), (p50, p95));
    }
    out
}

fn cost_view(f: &Folds, from_day: i64) -> CostView {
    let rows = f.rollup_from(from_day);
    let mut total = Sums::default();
    let mut runs: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // The workflow (or harness) of each run and session, for latency.
    let mut workflow_of: HashMap<&str, String> = HashMap::new();
    for r in rows {
        total.add(&r.sums);
        if runs.insert(r.run_id.as_str()) {
            workflow_of.insert(r.run_id.as_str(), By::Workflow.key(r));
        }
    }
    let group = |by| agentops_telemetry::view::group(rows, by);
    let lat_day = latency_by(f, from_day, &|x| u32::try_from(x.day).unwrap_or(0), &|d| {
        html::day(i64::from(d))
    });
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    // Workflow keys as indexes into `wf`.
    let mut wf: Vec<String> = workflow_of
        .values()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    wf.push("(other)".into());
    let wf_index: HashMap<&str, u32> = wf
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i as u32))
        .collect();
    let other = (wf.len() - 1) as u32;
    let run_wf: HashMap<&str, u32> = workflow_of
        .iter()
        .map(|(run, k)| (*run, wf_index.get(k.as_str()).copied().unwrap_or(other)))
        .collect();
    let by = vec![
        (
            By::Model,
            group(By::Model),
            latency_by(f, from_day, &|x| x.model, &|m| {
                or(f.name_of(m), "(no model)")
            }),
        ),
        (
            By::Agent,
            group(By::Agent),
            latency_by(f, from_day, &|x| x.agent, &|a| or(f.name_of(a), "(none)")),
        ),
        (
            By::Workflow,
            group(By::Workflow),
            latency_by(
                f,
                from_day,
                &|x| run_wf.get(f.name_of(x.run)).copied().unwrap_or(other),
                &|i| wf[i as usize].clone(),
            ),
        ),
    ];
    CostView {
        total,
        runs: runs.len(),
        days: group(By::Day),
        lat_day,
        by,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn ms(x: Option<f64>) -> String {
    x.map(|v| {
        if v >= 1000.0 {
            format!("{:.2} s", v / 1000.0)
        } else {
            format!("{v:.0} ms")
        }
    })
    .unwrap_or_else(|| "–".into())
}

fn cost(state: &State, req: &Request) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let since_s = req.param("since").unwrap_or("30d").to_owned();
    let from = since(&since_s)?;
    let from_day = agentops_store::rollup::day_of(from);
    let (seq, v) = state.with_folds(&j, |f| {
        f.refresh_rollup(&j).map_err(failed)?;
        let seq = f.seq;
        // Computed again when the journal moved, at most once a second: a
        // busy journal moves with every tool call, and every open cost
        // page asks again when it does.
        let v = match &f.cost {
            Some(m)
                if m.from_day == from_day && (m.seq == seq || m.at.elapsed() < COST_REFRESH) =>
            {
                m.view.clone()
            }
            _ => {
                let view = std::sync::Arc::new(cost_view(f, from_day));
                f.cost = Some(crate::data::CostMemo {
                    seq,
                    from_day,
                    at: std::time::Instant::now(),
                    view: view.clone(),
                });
                view
            }
        };
        Ok((seq, v))
    })?;
    let total = &v.total;
    let mut s = format!(
        "<h1>Cost and usage <span class=\"muted\">since {}</span></h1>",
        esc(&since_s)
    );
    let _ = write!(
        s,
        "<form class=\"filters\" method=\"get\" action=\"/cost\"><input type=\"text\" name=\"since\" value=\"{}\" aria-label=\"since\"><button type=\"submit\" class=\"quiet\">Show</button></form>",
        esc(&since_s)
    );
    let _ = write!(
        s,
        "<div id=\"cost-body\" data-live><div class=\"cards\"><div class=\"card\"><div class=\"k\">cost</div><div class=\"v\" id=\"cost-total\" data-total=\"{}\">{}</div></div><div class=\"card\"><div class=\"k\">tokens in (cached)</div><div class=\"v\">{} ({})</div></div><div class=\"card\"><div class=\"k\">tokens out</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">model calls</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">runs and sessions</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">error rate</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">gate pass rate</div><div class=\"v\">{}</div></div></div>",
        total.cost_usd,
        usd(total.cost_usd),
        html::tokens(total.input_tokens),
        html::tokens(total.cache_read_tokens),
        html::tokens(total.output_tokens),
        html::tokens(total.llm_calls),
        v.runs,
        pct(total.error_rate()),
        pct((total.gates > 0).then(|| total.gates_passed as f64 / total.gates as f64)),
    );
    let days = &v.days;
    if days.is_empty() {
        s.push_str("<p class=\"muted\">nothing recorded in this window (runs, harness sessions and gates fill it)</p>");
    } else {
        let labels: Vec<String> = days.iter().map(|g| g.key.clone()).collect();
        let col = |f: &dyn Fn(&agentops_telemetry::view::Group) -> f64| -> Vec<f64> {
            days.iter().map(f).collect()
        };
        let tok = |x: f64| html::tokens(x as i64);
        s.push_str("<h2>Tokens by day</h2>");
        s.push_str(&html::bars(
            "chart-tokens",
            &labels,
            &[
                Series {
                    name: "input, not cached",
                    class: "c1",
                    values: col(&|g| {
                        (g.sums.input_tokens - g.sums.cache_read_tokens).max(0) as f64
                    }),
                },
                Series {
                    name: "input, cached",
                    class: "c2",
                    values: col(&|g| g.sums.cache_read_tokens as f64),
                },
                Series {
                    name: "output",
                    class: "c3",
                    values: col(&|g| g.sums.output_tokens as f64),
                },
            ],
            true,
            &tok,
        ));
        s.push_str("<div class=\"grid2\"><div><h2>Cost by day</h2>");
        s.push_str(&html::bars(
            "chart-cost",
            &labels,
            &[Series {
                name: "cost",
                class: "c4",
                values: col(&|g| g.sums.cost_usd),
            }],
            false,
            &usd,
        ));
        s.push_str("</div><div><h2>Model latency by day (p50, p95)</h2>");
        let lat = |k: usize| -> Vec<f64> {
            labels
                .iter()
                .map(|l| {
                    v.lat_day
                        .get(l)
                        .and_then(|p| if k == 0 { p.0 } else { p.1 })
                        .unwrap_or(0.0)
                })
                .collect()
        };
        s.push_str(&html::bars(
            "chart-latency",
            &labels,
            &[
                Series {
                    name: "p50",
                    class: "c1",
                    values: lat(0),
                },
                Series {
                    name: "p95",
                    class: "c2",
                    values: lat(1),
                },
            ],
            false,
            &|x| ms(Some(x)),
        ));
        s.push_str("</div><div><h2>Error rate by day</h2>");
        s.push_str(&html::bars(
            "chart-errors",
            &labels,
            &[Series {
                name: "model and tool errors",
                class: "c5",
                values: col(&|g| g.error_rate.unwrap_or(0.0) * 100.0),
            }],
            false,
            &|x| format!("{x:.0}%"),
        ));
        s.push_str("</div><div><h2>Gate pass rate by day</h2>");
        s.push_str(&html::bars(
            "chart-gates",
            &labels,
            &[Series {
                name: "gates passed",
                class: "c6",
                values: col(&|g| g.gate_pass_rate.unwrap_or(0.0) * 100.0),
            }],
            false,
            &|x| format!("{x:.0}%"),
        ));
        s.push_str("</div></div>");
        let day_table = (By::Day, v.days.clone(), v.lat_day.clone());
        for (by, groups, lat) in v.by.iter().chain(std::iter::once(&day_table)) {
            let title = match by {
                By::Model => "By model",
                By::Agent => "By agent",
                By::Workflow => "By workflow",
                _ => "By day",
            };
            let _ = write!(
                s,
                "<h2>{title}</h2><table class=\"by\" data-by=\"{}\"><thead><tr><th>{}</th><th class=\"n\">runs</th><th class=\"n\">model calls</th><th class=\"n\">tokens in</th><th class=\"n\">cached</th><th class=\"n\">tokens out</th><th class=\"n\">cost</th><th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">errors</th><th class=\"n\">gates passed</th></tr></thead><tbody>",
                by.as_str(),
                by.as_str()
            );
            for g in groups {
                let (p50, p95) = lat.get(&g.key).copied().unwrap_or((None, None));
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-cost=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(&g.key),
                    g.runs,
                    html::tokens(g.sums.llm_calls),
                    html::tokens(g.sums.input_tokens),
                    html::tokens(g.sums.cache_read_tokens),
                    html::tokens(g.sums.output_tokens),
                    g.sums.cost_usd,
                    usd(g.sums.cost_usd),
                    ms(p50),
                    ms(p95),
                    pct(g.error_rate),
                    pct(g.gate_pass_rate),
                );
            }
            s.push_str("</tbody></table>");
        }
    }
    s.push_str("</div>");
    Ok(live(state, "Cost and usage", "cost", seq, &s))
}

fn knowledge(state: &State, req: &Request) -> Result<Response, ApiError> {
    let q = req.param("q").unwrap_or("").to_owned();
    let kind = req.param("type");
    let f = agentops_api::knowledge::filter(kind, &[], "type")?;
    let mut s = String::from("<h1>Knowledge</h1>");
    let types: Vec<String> = agentops_knowledge::EntryType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    let _ = write!(
        s,
        "<form class=\"search\" method=\"get\" action=\"/knowledge\"><input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"search memory (the same ranking as agentops search)\" aria-label=\"query\" autofocus>{}<button type=\"submit\">Search</button></form>",
        esc(&q),
        select("type", kind, &types, "any type")
    );
    let j = state.journal()?;
    if q.trim().is_empty() {
        // The newest writes.
        let writes = j
            .read(&Query {
                kinds: vec![EventKind::KnowledgeWrite],
                newest_first: true,
                limit: Some(50),
                ..Query::default()
            })
            .map_err(failed)?;
        s.push_str("<h2>Recent writes</h2>");
        if writes.is_empty() {
            s.push_str("<p class=\"muted\">no memory writes recorded yet (<code>agentops learn</code>)</p>");
        } else {
            s.push_str("<table class=\"writes\"><tbody>");
            for e in &writes {
                let g = |k: &str| text(&e.body, k);
                let _ = write!(
                    s,
                    "<tr><td class=\"mono\">{}</td><td><a class=\"mono\" href=\"/knowledge/{}\">{}</a></td><td>{}</td><td class=\"muted mono\">{}</td></tr>",
                    html::when(e.ts),
                    encode(&g("entry")),
                    esc(&g("entry")),
                    esc(&g("action")),
                    esc(&g("path"))
                );
            }
            s.push_str("</tbody></table>");
        }
        return Ok(Response::html(html::page(
            state,
            "Knowledge",
            "knowledge",
            None,
            &s,
        )));
    }
    let hits = state
        .with_index(|idx| agentops_api::knowledge::search(idx, &j, None, &q, &f, 20, &|_| {}))?;
    let _ = write!(
        s,
        "<p class=\"muted\" id=\"hit-count\">{} results</p>",
        hits.len()
    );
    s.push_str("<ol class=\"hits\" id=\"hits\">");
    for h in &hits {
        let _ = write!(
            s,
            "<li class=\"hit\" data-id=\"{id}\"><a href=\"/knowledge/{id}\"><b>{}</b></a> <span class=\"muted\">{} · {} · score {:.3}</span><div class=\"snippet\">{}</div></li>",
            esc(&h.entry.title),
            esc(h.entry.kind.as_str()),
            esc(h.entry.maturity.as_str()),
            h.score.total,
            esc(&h.snippet),
            id = esc(h.entry.id.as_str()),
        );
    }
    s.push_str("</ol>");
    Ok(Response::html(html::page(
        state,
        &format!("{q} · Knowledge"),
        "knowledge",
        None,
        &s,
    )))
}

fn entry(state: &State, id: &str) -> Result<Response, ApiError> {
    let k = state.project.knowledge()?;
    let e = k.find(id).map_err(ApiError::from)?;
    let e = k.for_display(e);
    let j = state.journal()?;
    let utility = j.utility(&[e.id.as_str()]).map_err(failed)?;
    let u = utility.get(e.id.as_str());
    let history = k.history(Some(e.id.as_str()), 50).map_err(ApiError::from)?;
    // Which sessions and runs were given it (packets that cited it) and
    // which used it (feedback).
    let mut given: Vec<(i64, String)> = Vec::new();
    j.scan(
        &Query {
            kinds: vec![EventKind::ContextAssembled],
            ..Query::default()
        },
        &mut |r| {
            if r.body.contains(e.id.as_str())
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(r.body)
                && v.get("cited")
                    .and_then(|c| c.as_array())
                    .is_some_and(|c| c.iter().any(|x| x.as_str() == Some(e.id.as_str())))
            {
                given.push((r.ts, r.run_id.to_owned()));
            }
        },
    )
    .map_err(failed)?;
    let mut used: Vec<(i64, String, String)> = Vec::new();
    j.scan(
        &Query {
            kinds: vec![EventKind::KnowledgeFeedback],
            ..Query::default()
        },
        &mut |r| {
            if r.body.contains(e.id.as_str())
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(r.body)
                && v.get("entry").and_then(|x| x.as_str()) == Some(e.id.as_str())
            {
                let sig = v
                    .get("signal")
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_owned();
                used.push((r.ts, r.run_id.to_owned(), sig));
            }
        },
    )
    .map_err(failed)?;
    let mut s = format!(
        "<h1>{} <span class=\"muted mono\">{}</span></h1>",
        esc(&e.title),
        esc(e.id.as_str())
    );
    let source = [
        e.source.run.as_deref().map(|r| format!("run {r}")),
        e.source.session.as_deref().map(|r| format!("session {r}")),
        e.source.agent.as_deref().map(|r| format!("agent {r}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    s.push_str(&kv(&[
        ("type", esc(e.kind.as_str())),
        ("maturity", badge(e.maturity.as_str())),
        (
            "utility",
            match u {
                Some(u) => format!(
                    "<span id=\"utility\">{:.3}</span> <span class=\"muted\">after {} feedback events</span>",
                    u.value, u.events
                ),
                None => format!(
                    "<span id=\"utility\">{:.3}</span> <span class=\"muted\">(no feedback yet)</span>",
                    agentops_store::Utility::START
                ),
            },
        ),
        ("tags", esc(&e.tags.join(", "))),
        (
            "created",
            e.created.map(html::when).unwrap_or_else(|| "–".into()),
        ),
        ("source", esc(&source)),
        (
            "supersedes",
            esc(&e
                .supersedes
                .iter()
                .map(|x| x.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", ")),
        ),
        ("path", format!("<code>{}</code>", esc(&e.path))),
    ]));
    let _ = write!(
        s,
        "<pre class=\"md\" id=\"entry-body\">{}</pre>",
        esc(&e.body)
    );
    s.push_str("<div class=\"grid2\"><div><h2>Given to</h2>");
    if given.is_empty() {
        s.push_str("<p class=\"muted\">no packet has cited it yet</p>");
    } else {
        s.push_str("<table id=\"given\"><tbody>");
        for (ts, r) in given.iter().rev().take(100) {
            let _ = write!(
                s,
                "<tr><td class=\"mono\">{}</td><td><a class=\"mono\" href=\"/runs/{}\">{}</a></td></tr>",
                html::when(*ts),
                encode(r),
                esc(r)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div><div><h2>Feedback</h2>");
    if used.is_empty() {
        s.push_str("<p class=\"muted\">no feedback yet</p>");
    } else {
        s.push_str("<table id=\"used\"><tbody>");
        for (ts, r, sig) in used.iter().rev().take(100) {
            let _ = write!(
                s,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td><a class=\"mono\" href=\"/runs/{}\">{}</a></td></tr>",
                html::when(*ts),
                badge(sig),
                encode(r),
                esc(r)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</div></div><h2>History</h2><table id=\"history\"><thead><tr><th>commit</th><th>time</th><th>author</th><th>summary</th><th>trailers</th></tr></thead><tbody>");
    for c in &history {
        let _ = write!(
            s,
            "<tr class=\"commit\"><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(c.id.get(..12).unwrap_or(&c.id)),
            html::when(c.time * 1_000_000),
            esc(&c.author),
            esc(&c.summary),
            esc(&c
                .trailers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "))
        );
    }
    s.push_str("</tbody></table>");
    Ok(Response::html(html::page(
        state,
        &e.title,
        "knowledge",
        None,
        &s,
    )))
}

fn alerts(state: &State, req: &Request) -> Result<Response, ApiError> {
    let j = state.journal()?;
    let seq = j.last_seq().map_err(failed)?;
    let mut cfg = state.project.config.alerts.clone();
    if let Some(w) = req.param("window") {
        if agentops_core::time::parse_age(w).is_none_or(|a| a <= 0) {
            return Err(ApiError::usage(format!(
                "window `{w}`: not an age (24h, 7d, 30m)"
            )));
        }
        cfg.window = w.to_owned();
    }
    let st = agentops_telemetry::alerts::status(&j, &cfg, agentops_core::time::now_micros())
        .map_err(failed)?;
    let v = serde_json::to_value(&st).map_err(failed)?;
    let mut s = String::from("<h1>Alerts</h1><div id=\"alerts\" data-live>");
    let _ = write!(
        s,
        "<p id=\"firing\" data-firing=\"{}\">{}</p>",
        st.firing(),
        if st.firing() == 0 {
            "nothing is firing".to_owned()
        } else {
            format!("{} firing", st.firing())
        }
    );
    if !st.alerts.is_empty() {
        s.push_str("<table class=\"alerts\"><thead><tr><th>rule</th><th>state</th><th>about</th><th>what was measured</th></tr></thead><tbody>");
        for a in &st.alerts {
            let about = a
                .subject
                .as_deref()
                .map(|x| {
                    format!(
                        "<a class=\"mono\" href=\"/runs/{}\">{}</a>",
                        encode(x),
                        esc(x)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                s,
                "<tr class=\"alert\" data-rule=\"{}\" data-firing=\"{}\"><td>{}</td><td>{}</td><td>{about}</td><td>{}</td></tr>",
                esc(&a.rule),
                a.firing,
                esc(&a.rule),
                badge(if a.firing { "firing" } else { "ok" }),
                esc(&a.message),
            );
        }
        s.push_str("</tbody></table>");
    }
    let _ = write!(
        s,
        "<div class=\"cards\"><div class=\"card\"><div class=\"k\">runs in the window</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">paused</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">interrupted</div><div class=\"v\">{}</div></div><div class=\"card\"><div class=\"k\">sessions</div><div class=\"v\">{}</div></div></div>",
        st.runs, st.paused, st.interrupted, st.sessions
    );
    let _ = write!(
        s,
        "<details><summary>as <code>agentops status --json</code></summary><pre>{}</pre></details></div>",
        esc(&serde_json::to_string_pretty(&v).unwrap_or_default())
    );
    Ok(live(state, "Alerts", "alerts", seq, &s))
}
