//! What the dashboard keeps between requests: folds of the journal brought
//! up to date from where they stopped (a scan of the events after their
//! position, by kind), so a page at a million events costs what changed
//! since the last page, not a read of the journal.

use std::collections::HashMap;

use agentops_core::EventKind;
use agentops_store::rollup::day_of;
use agentops_store::{Journal, Query, RollupRow, StoreError};
use serde::Deserialize;

/// One run as the runs list shows it.
#[derive(Debug, Clone, Default)]
pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub goal: String,
    /// running, paused, completed, failed, cancelled, landed.
    pub status: String,
    /// Why it paused or failed.
    pub reason: String,
    pub detail: String,
    pub started_ts: i64,
    pub last_ts: i64,
    pub phases: usize,
    pub phases_done: std::collections::BTreeSet<String>,
    pub branch: String,
}

/// A model call's latency, for percentiles.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub day: i64,
    /// Indexes into [`Folds::names`].
    pub run: u32,
    pub agent: u32,
    pub model: u32,
    pub ms: f32,
}

/// The cost page's figures, computed at `at` for journal position `seq`
/// and the window from `from_day`.
#[derive(Debug, Clone)]
pub struct CostMemo {
    pub seq: i64,
    pub from_day: i64,
    pub at: std::time::Instant,
    pub view: std::sync::Arc<crate::pages::CostView>,
}

/// The folds and the journal position they are current to.
#[derive(Debug, Default)]
pub struct Folds {
    pub seq: i64,
    pub runs: HashMap<String, RunRow>,
    pub samples: Vec<Sample>,
    names: Vec<String>,
    name_ids: HashMap<String, u32>,
    /// The rollup (by day) as of `rollup_seq`: read from the store once,
    /// then kept current from the events after that position.
    pub rollup: Vec<RollupRow>,
    rollup_seq: Option<i64>,
    /// Where each (day, run, agent, model) row is in `rollup`.
    rollup_at: HashMap<(i64, String, String, String), usize>,
    /// Each run's workflow and each session's harness.
    run_info: HashMap<String, (Option<String>, Option<String>)>,
    /// The rollup summed by run.
    pub run_sums: HashMap<String, agentops_store::Sums>,
    /// The cost page's figures for (journal position, first day), and
    /// when they were computed.
    pub cost: Option<CostMemo>,
}

/// What moves the rollup, or says which workflow or harness a run is.
const ROLLUP_KINDS: [EventKind; 8] = [
    EventKind::LlmCall,
    EventKind::ToolCall,
    EventKind::GateVerdict,
    EventKind::StepCompleted,
    EventKind::StepRetry,
    EventKind::RunStarted,
    EventKind::SessionStarted,
    EventKind::HookReceived,
];

const RUN_KINDS: [EventKind; 6] = [
    EventKind::RunStarted,
    EventKind::RunPaused,
    EventKind::RunResumed,
    EventKind::RunCompleted,
    EventKind::RunLanded,
    EventKind::StepCompleted,
];

#[derive(Deserialize)]
struct Started<'a> {
    #[serde(borrow)]
    workflow: Workflow<'a>,
    #[serde(default)]
    goal: String,
    #[serde(default)]
    branch: String,
}

#[derive(Deserialize)]
struct Workflow<'a> {
    #[serde(borrow, default)]
    name: std::borrow::Cow<'a, str>,
    #[serde(default)]
    phases: Phases,
}

/// A workflow's phases: a table of them by name (a list in older specs).
#[derive(Deserialize)]
#[serde(untagged)]
enum Phases {
    Map(HashMap<String, serde::de::IgnoredAny>),
    List(Vec<serde::de::IgnoredAny>),
}

impl Default for Phases {
    fn default() -> Self {
        Phases::List(Vec::new())
    }
}

impl Phases {
    fn len(&self) -> usize {
        match self {
            Phases::Map(m) => m.len(),
            Phases::List(l) => l.len(),
        }
    }
}

#[derive(Deserialize)]
struct Paused {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct Completed {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Step<'a> {
    #[serde(borrow, default)]
    phase: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Llm<'a> {
    #[serde(borrow, default)]
    agent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    duration_ms: Option<f64>,
}

impl Folds {
    fn name(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.name_ids.get(s) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.to_owned());
        self.name_ids.insert(s.to_owned(), i);
        i
    }

    /// The name behind an index of a [`Sample`].
    pub fn name_of(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", String::as_str)
    }

    /// Brings every fold up to the journal's end.
    pub fn catch_up(&mut self, j: &Journal) -> Result<(), StoreError> {
        let last = j.last_seq()?;
        if last <= self.seq {
            return Ok(());
        }
        let from = self.seq;
        let mut runs = std::mem::take(&mut self.runs);
        j.scan(
            &Query {
                kinds: RUN_KINDS.to_vec(),
                after_seq: Some(from),
                max_seq: Some(last),
                ..Query::default()
            },
            &mut |e| fold_run(&mut runs, e.kind, e.run_id, e.ts, e.body),
        )?;
        self.runs = runs;
        let mut found: Vec<(i64, String, String, String, f32)> = Vec::new();
        j.scan(
            &Query {
                kinds: vec![EventKind::LlmCall],
                after_seq: Some(from),
                max_seq: Some(last),
                ..Query::default()
            },
            &mut |e| {
                let Ok(c) = serde_json::from_str::<Llm<'_>>(e.body) else {
                    return;
                };
                if let Some(ms) = c.duration_ms {
                    found.push((
                        day_of(e.ts),
                        e.run_id.to_owned(),
                        c.agent.as_deref().unwrap_or("").to_owned(),
                        c.model.as_deref().unwrap_or("").to_owned(),
                        ms as f32,
                    ));
                }
            },
        )?;
        for (day, run, agent, model, ms) in found {
            let s = Sample {
                day,
                run: self.name(&run),
                agent: self.name(&agent),
                model: self.name(&model),
                ms,
            };
            self.samples.push(s);
        }
        self.seq = last;
        Ok(())
    }

    /// Brings the rollup (and its sums by run) up to the folds' position:
    /// the store's rollup read once, then what the events after it add
    /// (the same [`agentops_store::rollup::delta`] the store applies).
    pub fn refresh_rollup(&mut self, j: &Journal) -> Result<(), StoreError> {
        let Some(from) = self.rollup_seq else {
            // A position the rollup is exactly current to: the same journal
            // end before and after reading it.
            let mut tries = 0;
            let (rows, at) = loop {
                let before = j.last_seq()?;
                let rows = j.store().rollup(0)?;
                let after = j.last_seq()?;
                tries += 1;
                if before == after || tries >= 5 {
                    break (rows, after);
                }
            };
            self.rollup_at.clear();
            self.run_sums.clear();
            for (i, r) in rows.iter().enumerate() {
                self.rollup_at.insert(
                    (r.day, r.run_id.clone(), r.agent.clone(), r.model.clone()),
                    i,
                );
                self.run_info
                    .entry(r.run_id.clone())
                    .or_insert_with(|| (r.workflow.clone(), r.harness.clone()));
                self.run_sums
                    .entry(r.run_id.clone())
                    .or_default()
                    .add(&r.sums);
            }
            self.rollup = rows;
            self.rollup_seq = Some(at);
            if at < self.seq {
                return self.refresh_rollup(j);
            }
            return Ok(());
        };
        if from >= self.seq {
            return Ok(());
        }
        let mut new: Vec<(i64, String, EventKind, serde_json::Value)> = Vec::new();
        j.scan(
            &Query {
                kinds: ROLLUP_KINDS.to_vec(),
                after_seq: Some(from),
                max_seq: Some(self.seq),
                ..Query::default()
            },
            &mut |e| {
                if let (Ok(kind), Ok(body)) = (
                    e.kind.parse::<EventKind>(),
                    serde_json::from_str::<serde_json::Value>(e.body),
                ) {
                    new.push((e.ts, e.run_id.to_owned(), kind, body));
                }
            },
        )?;
        let mut unsorted = false;
        for (ts, run, kind, body) in new {
            if let Some((w, h)) = agentops_store::rollup::run_info(&kind, &body) {
                let info = self.run_info.entry(run.clone()).or_default();
                info.0 = info.0.take().or(w);
                info.1 = info.1.take().or(h);
            }
            let Some((agent, model, d)) = agentops_store::rollup::delta(&kind, &body) else {
                continue;
            };
            let day = day_of(ts);
            self.run_sums.entry(run.clone()).or_default().add(&d);
            let key = (day, run, agent, model);
            match self.rollup_at.get(&key) {
                Some(&i) => self.rollup[i].sums.add(&d),
                None => {
                    let (workflow, harness) =
                        self.run_info.get(&key.1).cloned().unwrap_or_default();
                    unsorted |= self.rollup.last().is_some_and(|l| l.day > day);
                    self.rollup_at.insert(key.clone(), self.rollup.len());
                    self.rollup.push(RollupRow {
                        day,
                        run_id: key.1,
                        agent: key.2,
                        model: key.3,
                        workflow,
                        harness,
                        sums: d,
                    });
                }
            }
        }
        if unsorted {
            // A day before the last (an old stream ingested): back in order.
            self.rollup.sort_by_key(|r| r.day);
            self.rollup_at = self
                .rollup
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        (r.day, r.run_id.clone(), r.agent.clone(), r.model.clone()),
                        i,
                    )
                })
                .collect();
        }
        self.rollup_seq = Some(self.seq);
        Ok(())
    }

    /// The rollup's rows from day `from_day` on (it is ordered by day).
    pub fn rollup_from(&self, from_day: i64) -> &[RollupRow] {
        let at = self.rollup.partition_point(|r| r.day < from_day);
        &self.rollup[at..]
    }
}

fn fold_run(runs: &mut HashMap<String, RunRow>, kind: &str, run: &str, ts: i64, body: &str) {
    if kind == EventKind::RunStarted.as_str() {
        let Ok(s) = serde_json::from_str::<Started<'_>>(body) else {
            return;
        };
        let r = runs.entry(run.to_owned()).or_default();
        r.id = run.to_owned();
        r.workflow = s.workflow.name.into_owned();
        r.phases = s.workflow.phases.len();
        r.goal = s.goal;
        r.branch = s.branch;
        r.status = "running".into();
        r.started_ts = ts;
        r.last_ts = ts;
        return;
    }
    let Some(r) = runs.get_mut(run) else {
        return;
    };
    r.last_ts = r.last_ts.max(ts);
    match kind {
        "run.paused" => {
            if let Ok(p) = serde_json::from_str::<Paused>(body) {
                r.status = "paused".into();
                r.reason = p.reason;
                r.detail = p.detail;
            }
        }
        "run.resumed" => {
            r.status = "running".into();
            r.reason.clear();
            r.detail.clear();
        }
        "run.completed" => {
            if let Ok(c) = serde_json::from_str::<Completed>(body) {
                r.status = if c.status.is_empty() {
                    "completed".into()
                } else {
                    c.status
                };
                r.reason = c.error.chars().take(200).collect();
                r.detail.clear();
            }
        }
        "run.landed" => {
            r.status = "landed".into();
            r.reason.clear();
        }
        "step.completed" => {
            if let Ok(s) = serde_json::from_str::<Step<'_>>(body) {
                r.phases_done.insert(s.phase.into_owned());
            }
        }
        _ => {}
    }
}

/// `p` (0–1) of `v`, which it sorts.
pub fn percentile(v: &mut [f32], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let k = ((v.len() - 1) as f64 * p).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    Some(f64::from(*x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_few() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 0.5), Some(3.0));
        assert_eq!(percentile(&mut v, 0.95), Some(5.0));
        assert_eq!(percentile(&mut [], 0.5), None);
    }

    #[test]
    fn a_run_folds_through_pause_resume_and_completion() {
        let mut m = HashMap::new();
        fold_run(
            &mut m,
            "run.started",
            "r1",
            10,
            r#"{"workflow":{"name":"feature","phases":{"plan":{},"code":{}}},"goal":"g","branch":"b","agents":{},"gates":{}}"#,
        );
        assert_eq!(m["r1"].status, "running");
        assert_eq!(m["r1"].phases, 2);
        fold_run(
            &mut m,
            "run.paused",
            "r1",
            20,
            r#"{"reason":"approval","detail":"gate deploy"}"#,
        );
        assert_eq!(
            (m["r1"].status.as_str(), m["r1"].reason.as_str()),
            ("paused", "approval")
        );
        fold_run(
            &mut m,
            "step.completed",
            "r1",
            25,
            r#"{"phase":"plan","commit":"c"}"#,
        );
        fold_run(&mut m, "run.resumed", "r1", 30, r#"{"from":"paused"}"#);
        fold_run(
            &mut m,
            "run.completed",
            "r1",
            40,
            r#"{"status":"failed","error":"boom"}"#,
        );
        let r = &m["r1"];
        assert_eq!((r.status.as_str(), r.reason.as_str()), ("failed", "boom"));
        assert_eq!((r.last_ts, r.phases_done.len()), (40, 1));
        // Events of a run never started (a harness session) are ignored.
        fold_run(&mut m, "run.paused", "s-1", 50, r#"{"reason":"x"}"#);
        assert!(!m.contains_key("s-1"));
    }
}

#[cfg(test)]
mod real_body {
    /// A `run.started` body as the demo writes it (copied from a journal).
    #[test]
    fn the_demo_run_started_body_folds() {
        let b = include_str!("../tests/data/run_started.json");
        let mut m = std::collections::HashMap::new();
        super::fold_run(&mut m, "run.started", "r", 1, b.trim());
        let r = &m["r"];
        assert_eq!((r.workflow.as_str(), r.phases), ("feature", 3));
        assert!(!r.goal.is_empty() && !r.branch.is_empty());
    }
}
