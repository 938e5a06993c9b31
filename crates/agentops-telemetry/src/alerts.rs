//! `agentops status`: the health of the last window, and alerts with
//! configurable thresholds (`[alerts]`): error rate, context fill, slow
//! steps, budget burn.

use std::collections::{BTreeMap, HashMap, HashSet};

use agentops_core::config::AlertsConfig;
use agentops_core::{EventKind, RunId};
use agentops_store::{Journal, Query, StoreError, Sums};
use serde_json::Value;

/// One alert rule's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alert {
    /// `error_rate`, `context`, `slow_step`, `budget`, `daily_cost`.
    pub rule: String,
    pub firing: bool,
    /// What was measured, in words.
    pub message: String,
    /// Run or session the alert is about, if one.
    pub subject: Option<String>,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub window: String,
    pub since_us: i64,
    pub runs: usize,
    /// Runs started and not finished whose last word is not a pause: killed
    /// (resume them) or still running.
    pub interrupted: usize,
    /// Runs paused for a person (approval, budget, escalation).
    pub paused: usize,
    pub sessions: usize,
    pub totals: Sums,
    pub alerts: Vec<Alert>,
    /// (exporter, watermark, events behind).
    pub exporters: Vec<(String, i64, i64)>,
}

impl Status {
    pub fn firing(&self) -> usize {
        self.alerts.iter().filter(|a| a.firing).count()
    }
}

/// Computes the status at `now_us` over `cfg.window`.
pub fn status(journal: &Journal, cfg: &AlertsConfig, now_us: i64) -> Result<Status, StoreError> {
    let window_us = agentops_core::time::parse_age(&cfg.window).unwrap_or(86_400_000_000);
    let since = now_us - window_us;
    // The rollup is by day: the window's first day counts whole.
    let rows = journal
        .store()
        .rollup(agentops_store::rollup::day_of(since))?;
    let mut totals = Sums::default();
    let (mut runs, mut sessions) = (HashSet::new(), HashSet::new());
    let mut by_agent: BTreeMap<String, Sums> = BTreeMap::new();
    for r in &rows {
        totals.add(&r.sums);
        if r.workflow.is_some() {
            runs.insert(r.run_id.as_str());
        } else if r.harness.is_some() {
            // Only harness sessions: a manual `gate run` is neither.
            sessions.insert(r.run_id.as_str());
        }
        let key = if r.agent.is_empty() {
            r.harness.clone().unwrap_or_else(|| "(none)".into())
        } else {
            r.agent.clone()
        };
        by_agent.entry(key).or_default().add(&r.sums);
    }
    let mut alerts = Vec::new();

    // Error rate, overall and per agent.
    let threshold = cfg.error_rate;
    let mut worst: Option<(String, f64, i64, i64)> = None;
    for (agent, s) in &by_agent {
        let n = s.llm_calls + s.tool_calls;
        if n < i64::from(cfg.min_calls) {
            continue;
        }
        if let Some(r) = s.error_rate()
            && r > threshold
            && worst.as_ref().is_none_or(|w| r > w.1)
        {
            worst = Some((agent.clone(), r, s.llm_errors + s.tool_errors, n));
        }
    }
    let overall = totals.error_rate().unwrap_or(0.0);
    alerts.push(match worst {
        Some((agent, r, bad, n)) => Alert {
            rule: "error_rate".into(),
            firing: true,
            message: format!(
                "error rate {:.1}% over {:.0}%: {agent}: {bad} of {n} model and tool calls failed",
                r * 100.0,
                threshold * 100.0
            ),
            subject: Some(agent),
        },
        None => Alert {
            rule: "error_rate".into(),
            firing: false,
            message: format!(
                "error rate {:.1}% (threshold {:.0}%, agents with at least {} calls)",
                overall * 100.0,
                threshold * 100.0,
                cfg.min_calls
            ),
            subject: None,
        },
    });

    // Context fill: the last guard reading of each session in the window.
    let guards = journal.read(&Query {
        kinds: vec![EventKind::ContextGuard],
        since_ts: Some(since),
        ..Query::default()
    })?;
    let mut last: HashMap<&RunId, f64> = HashMap::new();
    for e in &guards {
        if let Some(p) = e.body.get("percent").and_then(Value::as_f64) {
            last.insert(&e.run_id, p);
        }
    }
    let mut over: Vec<(&RunId, f64)> = last
        .into_iter()
        .filter(|(_, p)| *p > cfg.context_percent)
        .collect();
    over.sort_by(|a, b| b.1.total_cmp(&a.1));
    alerts.push(match over.first() {
        Some((run, p)) => Alert {
            rule: "context".into(),
            firing: true,
            message: format!(
                "context {p:.0}% of the window in session {run} (over {:.0}%){}",
                cfg.context_percent,
                if over.len() > 1 {
                    format!("; {} sessions in all", over.len())
                } else {
                    String::new()
                }
            ),
            subject: Some(run.to_string()),
        },
        None => Alert {
            rule: "context".into(),
            firing: false,
            message: format!("no session over {:.0}% of its window", cfg.context_percent),
            subject: None,
        },
    });

    // Slow steps: completed ones from the rollup, running ones from the
    // journal (a step started and neither completed nor stopped).
    let limit_ms = cfg.step_seconds as f64 * 1000.0;
    let mut slow: Vec<(String, f64, bool)> = rows
        .iter()
        .filter(|r| r.sums.step_ms_max > limit_ms)
        .map(|r| (r.run_id.clone(), r.sums.step_ms_max, false))
        .collect();
    let steps = journal.read(&Query {
        kinds: vec![
            EventKind::StepStarted,
            EventKind::StepCompleted,
            EventKind::RunPaused,
            EventKind::RunCompleted,
        ],
        since_ts: Some(since),
        ..Query::default()
    })?;
    let mut open: HashMap<(RunId, String), i64> = HashMap::new();
    for e in &steps {
        let span = e
            .span_id
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        match e.kind {
            EventKind::StepStarted => {
                open.entry((e.run_id.clone(), span)).or_insert(e.ts);
            }
            EventKind::StepCompleted => {
                open.remove(&(e.run_id.clone(), span));
            }
            _ => open.retain(|(r, _), _| *r != e.run_id),
        }
    }
    for ((run, _), ts) in open {
        let ms = (now_us - ts) as f64 / 1000.0;
        if ms > limit_ms {
            slow.push((run.to_string(), ms, true));
        }
    }
    slow.sort_by(|a, b| b.1.total_cmp(&a.1));
    alerts.push(match slow.first() {
        Some((run, ms, running)) => Alert {
            rule: "slow_step".into(),
            firing: true,
            message: format!(
                "a step {} {} in run {run} (over {} s)",
                if *running {
                    "has been running for"
                } else {
                    "took"
                },
                crate::view::duration((*ms * 1000.0) as i64),
                cfg.step_seconds
            ),
            subject: Some(run.clone()),
        },
        None => Alert {
            rule: "slow_step".into(),
            firing: false,
            message: format!("no step over {} s", cfg.step_seconds),
            subject: None,
        },
    });

    // Budget burn of unfinished runs.
    let started = journal.read(&Query {
        kinds: vec![
            EventKind::RunStarted,
            EventKind::RunCompleted,
            EventKind::RunPaused,
            EventKind::RunResumed,
        ],
        ..Query::default()
    })?;
    let mut budgets: BTreeMap<RunId, Value> = BTreeMap::new();
    let mut paused_now: HashSet<RunId> = HashSet::new();
    for e in started {
        match e.kind {
            EventKind::RunStarted => {
                budgets.insert(
                    e.run_id,
                    e.body.get("budget").cloned().unwrap_or(Value::Null),
                );
            }
            EventKind::RunPaused => {
                paused_now.insert(e.run_id);
            }
            EventKind::RunResumed => {
                paused_now.remove(&e.run_id);
            }
            _ => {
                paused_now.remove(&e.run_id);
                budgets.remove(&e.run_id);
            }
        }
    }
    let paused = budgets.keys().filter(|r| paused_now.contains(*r)).count();
    let interrupted = budgets.len() - paused;
    // A run killed before its first model call has no rollup row yet.
    let started_in_window: Vec<String> = journal
        .read(&Query {
            kinds: vec![EventKind::RunStarted],
            since_ts: Some(since),
            ..Query::default()
        })?
        .into_iter()
        .map(|e| e.run_id.to_string())
        .collect();
    let mut burn: Vec<(String, String, f64)> = Vec::new();
    if !budgets.is_empty() {
        let all = journal.store().rollup(i64::MIN)?;
        let mut spent: HashMap<&str, Sums> = HashMap::new();
        for r in &all {
            spent.entry(r.run_id.as_str()).or_default().add(&r.sums);
        }
        for (run, b) in &budgets {
            let s = spent.get(run.as_str()).copied().unwrap_or_default();
            let checks = [
                (
                    "tokens",
                    b.get("tokens").and_then(Value::as_f64),
                    (s.input_tokens + s.output_tokens) as f64,
                ),
                ("usd", b.get("usd").and_then(Value::as_f64), s.cost_usd),
                (
                    "turns",
                    b.get("turns").and_then(Value::as_f64),
                    s.llm_calls as f64,
                ),
            ];
            for (what, limit, used) in checks {
                if let Some(l) = limit.filter(|l| *l > 0.0) {
                    let frac = used / l;
                    if frac >= cfg.budget_burn {
                        burn.push((run.to_string(), what.into(), frac));
                    }
                }
            }
        }
    }
    let mut daily = None;
    if let Some(limit) = cfg.daily_usd {
        let today = agentops_store::rollup::day_of(now_us);
        let cost: f64 = rows
            .iter()
            .filter(|r| r.day == today)
            .map(|r| r.sums.cost_usd)
            .sum();
        daily = Some((cost, limit));
        if cost / limit >= cfg.budget_burn {
            burn.push(("today".into(), "daily_usd".into(), cost / limit));
        }
    }
    burn.sort_by(|a, b| b.2.total_cmp(&a.2));
    alerts.push(match burn.first() {
        Some((run, what, frac)) => Alert {
            rule: "budget".into(),
            firing: true,
            message: if what == "daily_usd" {
                format!(
                    "today's cost {} is {:.0}% of alerts.daily_usd (alert at {:.0}%)",
                    crate::view::usd(daily.map_or(0.0, |d| d.0)),
                    frac * 100.0,
                    cfg.budget_burn * 100.0
                )
            } else {
                format!(
                    "run {run} has used {:.0}% of its {what} budget (alert at {:.0}%)",
                    frac * 100.0,
                    cfg.budget_burn * 100.0
                )
            },
            subject: Some(run.clone()),
        },
        None => Alert {
            rule: "budget".into(),
            firing: false,
            message: format!(
                "no unfinished run past {:.0}% of a budget{}",
                cfg.budget_burn * 100.0,
                match daily {
                    Some((c, l)) =>
                        format!("; today {} of {}", crate::view::usd(c), crate::view::usd(l)),
                    None => String::new(),
                }
            ),
            subject: None,
        },
    });

    let last_seq = journal.last_seq()?;
    let exporters = journal
        .store()
        .watermarks()?
        .into_iter()
        .map(|(n, seq, _)| (n, seq, last_seq - seq))
        .collect();
    Ok(Status {
        window: cfg.window.clone(),
        since_us: since,
        runs: {
            let mut all: HashSet<&str> = runs;
            all.extend(started_in_window.iter().map(String::as_str));
            all.len()
        },
        interrupted,
        paused,
        sessions: sessions.len(),
        totals,
        alerts,
        exporters,
    })
}

/// The status as text, `width` columns at most.
pub fn render(s: &Status, width: usize) -> String {
    use crate::view::{thousands, usd};
    use std::fmt::Write as _;
    let mut out = String::new();
    let t = &s.totals;
    let _ = writeln!(
        out,
        "agentops status — last {} (whole UTC days in the rollup)",
        s.window
    );
    let _ = writeln!(
        out,
        "  runs {} ({} paused, {} interrupted or running) · harness sessions {}",
        s.runs, s.paused, s.interrupted, s.sessions
    );
    let _ = writeln!(
        out,
        "  model calls {} · tokens {} in ({} cached) / {} out · cost {}",
        thousands(t.llm_calls),
        thousands(t.input_tokens),
        thousands(t.cache_read_tokens),
        thousands(t.output_tokens),
        usd(t.cost_usd)
    );
    let _ = writeln!(
        out,
        "  tool calls {} · errors {} · gates {} ({} passed) · retries {}",
        thousands(t.tool_calls),
        t.error_rate()
            .map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "–".into()),
        thousands(t.gates),
        thousands(t.gates_passed),
        thousands(t.retries)
    );
    for (name, seq, behind) in &s.exporters {
        let _ = writeln!(
            out,
            "  export {name}: watermark {seq}, {behind} events behind"
        );
    }
    let _ = writeln!(out, "alerts:");
    for a in &s.alerts {
        let line = format!(
            "  {} {:<10} {}",
            if a.firing { "FIRING" } else { "ok    " },
            a.rule,
            a.message
        );
        let line = if line.chars().count() > width {
            let mut l: String = line.chars().take(width.saturating_sub(1)).collect();
            l.push('…');
            l
        } else {
            line
        };
        let _ = writeln!(out, "{line}");
    }
    out
}
