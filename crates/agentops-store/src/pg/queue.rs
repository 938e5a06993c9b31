//! The run queue and its workers, in the team store (schema version 2).
//!
//! A queued run is one row of `agentops.queue`. A worker claims the oldest
//! claimable row of its repository — queued and due, or claimed by a worker
//! whose lease has run out — with `FOR UPDATE SKIP LOCKED`, so two workers
//! asking at the same instant never get the same run. Leases are measured
//! on the database's clock (`clock_timestamp()`), never a machine's, so
//! skewed clocks cannot steal a run. Only the holder of a live lease can
//! finish or release its row.

use std::time::Duration;

use postgres::Row;
use serde::Serialize;
use serde_json::Value;

use super::PgStore;
use crate::StoreError;

/// Microseconds now, on the database's clock.
const NOW_US: &str = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

/// Where a queued run stands in the queue (the journal says where the run
/// itself stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Waiting for a worker (or for `not_before`, after a retryable failure).
    Queued,
    /// A worker holds it (see `lease_until`).
    Claimed,
    /// Waiting for a person (approval, budget, escalation, `pause`).
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl QueueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "claimed" => Self::Claimed,
            "paused" => Self::Paused,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Nothing more will happen to it.
    pub fn finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A run to enqueue.
#[derive(Debug, Clone)]
pub struct NewQueued {
    pub run_id: String,
    /// The git remote the run's base commit is on (see [`normalize_repo`]).
    pub repo: String,
    pub workflow: String,
    /// What the worker starts it with (the runner's start options).
    pub spec: Value,
}

/// One row of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedRun {
    pub run_id: String,
    pub repo: String,
    pub workflow: String,
    pub spec: Value,
    pub status: QueueStatus,
    pub worker: Option<String>,
    /// When the holder's lease runs out (µs, database clock).
    pub lease_until: Option<i64>,
    /// Milliseconds left on the lease as of the read (negative: expired).
    pub lease_left_ms: Option<i64>,
    pub not_before: i64,
    /// Claims so far (the first start included).
    pub attempts: i32,
    /// Claims of a run whose holder's lease had run out.
    pub takeovers: i32,
    /// Options for the next resume (`agentops resume` of a queued run).
    pub resume: Option<Value>,
    pub detail: String,
    /// Who enqueued it.
    pub host: String,
    pub user: String,
    pub enqueued_ts: i64,
    pub updated_ts: i64,
}

impl QueuedRun {
    /// Claimed, and the holder's lease has not run out.
    pub fn live(&self) -> bool {
        self.status == QueueStatus::Claimed && self.lease_left_ms.is_some_and(|l| l > 0)
    }
}

/// What a claim returns.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub run: QueuedRun,
    /// The worker whose lease had run out, when this claim takes the run
    /// over.
    pub took_over_from: Option<String>,
}

/// One worker, as `agentops workers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub user: String,
    pub pid: i64,
    pub repo: String,
    pub concurrency: i32,
    pub lease_ms: i64,
    pub started_ts: i64,
    pub heartbeat_ts: i64,
    pub stopped_ts: Option<i64>,
    /// Heard from within two leases and not stopped.
    pub alive: bool,
    /// The runs it holds now.
    pub runs: Vec<String>,
}

/// One spelling of a remote for matching queued runs to workers: no
/// trailing `/` or `.git`; a local path made absolute.
pub fn normalize_repo(url: &str) -> String {
    let mut s = url.trim().to_owned();
    let is_path = !s.contains("://") && !s.contains('@') && !s.contains(':');
    if is_path {
        let p = std::path::Path::new(&s);
        if let Ok(c) = std::fs::canonicalize(p) {
            s = c.to_string_lossy().into_owned();
        }
    }
    while s.ends_with('/') {
        s.pop();
    }
    if let Some(t) = s.strip_suffix(".git")
        && !t.is_empty()
    {
        s = t.to_owned();
    }
    s
}

const COLUMNS: &str = "q.run_id, q.repo, q.workflow, q.spec, q.status, q.worker, q.lease_until, q.not_before, q.attempts, q.takeovers, q.resume, q.detail, q.host, q.user_name, q.enqueued_ts, q.updated_ts";

fn row_to_run(r: &Row, now: i64) -> QueuedRun {
    let spec: String = r.get(3);
    let resume: Option<String> = r.get(10);
    let status: String = r.get(4);
    let lease_until: Option<i64> = r.get(6);
    QueuedRun {
        run_id: r.get(0),
        repo: r.get(1),
        workflow: r.get(2),
        spec: serde_json::from_str(&spec).unwrap_or(Value::Null),
        status: QueueStatus::parse(&status).unwrap_or(QueueStatus::Failed),
        worker: r.get(5),
        lease_until,
        lease_left_ms: lease_until.map(|l| (l - now) / 1000),
        not_before: r.get(7),
        attempts: r.get(8),
        takeovers: r.get(9),
        resume: resume.and_then(|s| serde_json::from_str(&s).ok()),
        detail: r.get(11),
        host: r.get(12),
        user: r.get(13),
        enqueued_ts: r.get(14),
        updated_ts: r.get(15),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn now_of(c: &mut postgres::Client) -> Result<i64, postgres::Error> {
    Ok(c.query_one(&format!("SELECT {NOW_US}"), &[])?.get(0))
}

impl PgStore {
    /// Adds a run to the queue, tagged with this machine and user.
    pub fn enqueue(&self, run: &NewQueued) -> Result<QueuedRun, StoreError> {
        let spec = serde_json::to_string(&run.spec)
            .map_err(|e| StoreError::Internal(format!("queue spec: {e}")))?;
        let tag = self.tag.clone();
        let row = self.with(false, |c| {
            c.query_one(
                &format!(
                    "INSERT INTO agentops.queue AS q (run_id, repo, workflow, spec, status, host, user_name, enqueued_ts, updated_ts)
                     VALUES ($1, $2, $3, $4, 'queued', $5, $6, {NOW_US}, {NOW_US})
                     RETURNING {COLUMNS}, {NOW_US}"
                ),
                &[&run.run_id, &run.repo, &run.workflow, &spec, &tag.host, &tag.user],
            )
        })?;
        Ok(row_to_run(&row, row.get(16)))
    }

    /// Claims the oldest claimable run of `repo` for `worker`, with a lease
    /// of `lease`: a queued one that is due, or a claimed one whose lease
    /// has run out (a takeover). `None` when there is none.
    pub fn claim(
        &self,
        repo: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let lease = micros(lease);
        // Not retried blindly: a lost answer may have claimed a run, and its
        // lease then runs out and the run is claimed again — never lost.
        let row = self.with(false, |c| {
            c.query_opt(
                &format!(
                    "UPDATE agentops.queue AS q
                        SET status = 'claimed', worker = $2, lease_until = {NOW_US} + $3,
                            attempts = q.attempts + 1,
                            takeovers = q.takeovers + CASE WHEN c.was = 'claimed' THEN 1 ELSE 0 END,
                            updated_ts = {NOW_US}
                       FROM (SELECT run_id, status AS was, worker AS prev
                               FROM agentops.queue
                              WHERE repo = $1
                                AND ((status = 'queued' AND not_before <= {NOW_US})
                                  OR (status = 'claimed' AND lease_until < {NOW_US}))
                              ORDER BY enqueued_ts, run_id
                              LIMIT 1
                              FOR UPDATE SKIP LOCKED) AS c
                      WHERE q.run_id = c.run_id
                  RETURNING {COLUMNS}, {NOW_US}, c.was, c.prev"
                ),
                &[&repo, &worker, &lease],
            )
        })?;
        Ok(row.map(|r| {
            let was: String = r.get(17);
            let prev: Option<String> = r.get(18);
            Claimed {
                run: row_to_run(&r, r.get(16)),
                took_over_from: if was == "claimed" { prev } else { None },
            }
        }))
    }

    /// Renews the leases of every run `worker` holds and its heartbeat;
    /// returns the runs it still holds (a run missing here was taken over:
    /// its lease ran out before this renewal).
    pub fn renew(&self, worker: &str, lease: Duration) -> Result<Vec<String>, StoreError> {
        let lease = micros(lease);
        self.with(true, |c| {
            c.execute(
                &format!("UPDATE agentops.workers SET heartbeat_ts = {NOW_US} WHERE id = $1"),
                &[&worker],
            )?;
            let rows = c.query(
                &format!(
                    "UPDATE agentops.queue SET lease_until = {NOW_US} + $2, updated_ts = {NOW_US}
                      WHERE worker = $1 AND status = 'claimed' AND lease_until >= {NOW_US}
                  RETURNING run_id"
                ),
                &[&worker, &lease],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// The holder ends its claim: `status` (paused, completed, failed,
    /// cancelled), or back to queued after `retry_in` when a retry may cure
    /// it. False when `worker` no longer holds the run.
    pub fn settle(
        &self,
        run_id: &str,
        worker: &str,
        status: QueueStatus,
        detail: &str,
        retry_in: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let delay = retry_in.map(micros).unwrap_or(0);
        let n = self.with(true, |c| {
            c.execute(
                &format!(
                    "UPDATE agentops.queue
                        SET status = $3, detail = $4, not_before = {NOW_US} + $5,
                            lease_until = NULL, updated_ts = {NOW_US}
                      WHERE run_id = $1 AND worker = $2 AND status = 'claimed'"
                ),
                &[&run_id, &worker, &status.as_str(), &detail, &delay],
            )
        })?;
        Ok(n == 1)
    }

    /// Moves a run that no worker is executing (`from`, or claimed with a
    /// lease that ran out) to `to`, with `resume` options when given; the
    /// row as it is now, or `None` when it was not in such a state.
    pub fn requeue_or_set(
        &self,
        run_id: &str,
        from: &[QueueStatus],
        to: QueueStatus,
        detail: &str,
        resume: Option<&Value>,
    ) -> Result<Option<QueuedRun>, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let resume = resume.map(Value::to_string);
        let row = self.with(true, |c| {
            c.query_opt(
                &format!(
                    "UPDATE agentops.queue AS q
                        SET status = $3, detail = $4, resume = coalesce($5, q.resume),
                            not_before = 0, lease_until = NULL, updated_ts = {NOW_US}
                      WHERE run_id = $1
                        AND (status = ANY($2) OR (status = 'claimed' AND lease_until < {NOW_US}))
                  RETURNING {COLUMNS}, {NOW_US}"
                ),
                &[&run_id, &from, &to.as_str(), &detail, &resume],
            )
        })?;
        Ok(row.map(|r| row_to_run(&r, r.get(16))))
    }

    /// The queue row of `run_id`, or of the one run whose id starts with it.
    pub fn queued(&self, prefix: &str) -> Result<Option<QueuedRun>, StoreError> {
        let like = format!("{}%", prefix.replace(['%', '_', '\\'], ""));
        let rows = self.with(true, |c| {
            let now = now_of(c)?;
            let rows = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM agentops.queue AS q WHERE run_id = $1 OR run_id LIKE $2 ORDER BY run_id = $1 DESC LIMIT 2"
                ),
                &[&prefix, &like],
            )?;
            Ok((now, rows))
        })?;
        let (now, rows) = rows;
        let exact = rows
            .first()
            .is_some_and(|r| r.get::<_, String>(0) == prefix);
        if rows.len() == 1 || exact {
            Ok(rows.first().map(|r| row_to_run(r, now)))
        } else {
            Ok(None)
        }
    }

    /// Rows of the queue, newest first (`repo` narrows to one remote;
    /// `active` keeps queued, claimed and paused ones).
    pub fn queue_rows(
        &self,
        repo: Option<&str>,
        active: bool,
        limit: i64,
    ) -> Result<Vec<QueuedRun>, StoreError> {
        let (now, rows) = self.with(true, |c| {
            let now = now_of(c)?;
            let rows = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM agentops.queue AS q
                      WHERE ($1::text IS NULL OR repo = $1)
                        AND (NOT $2 OR status IN ('queued', 'claimed', 'paused'))
                   ORDER BY enqueued_ts DESC, run_id DESC LIMIT $3"
                ),
                &[&repo, &active, &limit],
            )?;
            Ok((now, rows))
        })?;
        Ok(rows.iter().map(|r| row_to_run(r, now)).collect())
    }

    /// Whether `repo` has runs a worker may still get: queued, or claimed
    /// by anyone (a claim whose holder dies comes back).
    pub fn queue_pending(&self, repo: &str) -> Result<u64, StoreError> {
        let n: i64 = self.with(true, |c| {
            Ok(c.query_one(
                "SELECT count(*) FROM agentops.queue WHERE repo = $1 AND status IN ('queued', 'claimed')",
                &[&repo],
            )?
            .get(0))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records a worker starting (or starting again under the same id).
    pub fn register_worker(
        &self,
        id: &str,
        pid: i64,
        repo: &str,
        concurrency: i32,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let tag = self.tag.clone();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.with(true, |c| {
            c.execute(
                &format!(
                    "INSERT INTO agentops.workers (id, host, user_name, pid, repo, concurrency, lease_ms, started_ts, heartbeat_ts)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, {NOW_US}, {NOW_US})
                     ON CONFLICT (id) DO UPDATE SET host = excluded.host, user_name = excluded.user_name, pid = excluded.pid,
                        repo = excluded.repo, concurrency = excluded.concurrency, lease_ms = excluded.lease_ms,
                        started_ts = excluded.started_ts, heartbeat_ts = excluded.heartbeat_ts, stopped_ts = NULL"
                ),
                &[&id, &tag.host, &tag.user, &pid, &repo, &concurrency, &lease_ms],
            )
        })?;
        Ok(())
    }

    /// Records a worker stopping on its own (its claims were settled).
    pub fn stop_worker(&self, id: &str) -> Result<(), StoreError> {
        self.with(true, |c| {
            c.execute(
                &format!("UPDATE agentops.workers SET stopped_ts = {NOW_US} WHERE id = $1"),
                &[&id],
            )
        })?;
        Ok(())
    }

    /// Workers, newest heartbeat first, with the runs each holds (`all`:
    /// stopped and silent ones too).
    pub fn workers(&self, all: bool) -> Result<Vec<WorkerRow>, StoreError> {
        let rows = self.with(true, |c| {
            c.query(
                &format!(
                    "SELECT w.id, w.host, w.user_name, w.pid, w.repo, w.concurrency, w.lease_ms, w.started_ts,
                            w.heartbeat_ts, w.stopped_ts,
                            (w.stopped_ts IS NULL AND w.heartbeat_ts + 2000 * w.lease_ms >= {NOW_US}) AS alive,
                            coalesce(array_agg(q.run_id ORDER BY q.run_id) FILTER (WHERE q.run_id IS NOT NULL), '{{}}') AS runs
                       FROM agentops.workers w
                  LEFT JOIN agentops.queue q ON q.worker = w.id AND q.status = 'claimed'
                   GROUP BY w.id
                   ORDER BY w.heartbeat_ts DESC"
                ),
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| WorkerRow {
                id: r.get(0),
                host: r.get(1),
                user: r.get(2),
                pid: r.get(3),
                repo: r.get(4),
                concurrency: r.get(5),
                lease_ms: r.get(6),
                started_ts: r.get(7),
                heartbeat_ts: r.get(8),
                stopped_ts: r.get(9),
                alive: r.get(10),
                runs: r.get(11),
            })
            .filter(|w| all || w.alive || !w.runs.is_empty())
            .collect())
    }
}
