//! `agentops worker`, `agentops workers`, and the team side of `run
//! --queue`, `resume`, `pause`, `cancel` and `approve` for queued runs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentops_core::RunId;
use agentops_protocol::event::{self as body, ControlAction, PauseReason};
use agentops_runner::worker::{self, WorkerEvent, WorkerOptions, WorkerReport};
use agentops_runner::{ProgressEvent, RunState, RunStatus};
use agentops_store::pg::{PgOptions, PgStore, QueueStatus, QueuedRun, Tag};
use agentops_store::{Durability, Journal, RepoLayout, project};

use super::{Code, Failure, Flags, open_project};
use crate::cli::WorkerArgs;
use crate::output::{Output, write_err, write_out};
use crate::shared::env_lookup;

static STOP: AtomicBool = AtomicBool::new(false);

/// A stable, short name for a repository's clone directory.
fn clone_dir_name(repo: &str) -> String {
    let norm = agentops_store::pg::normalize_repo(repo);
    let base: String = norm
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // FNV-1a: the same name for the same repository on every run.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in norm.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{}-{:08x}",
        if base.is_empty() { "repo" } else { &base },
        h as u32
    )
}

fn default_dir(repo: &str) -> Result<PathBuf, Failure> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| Failure::usage("--dir: neither XDG_CACHE_HOME nor HOME is set"))?;
    Ok(cache
        .join("agentops")
        .join("workers")
        .join(clone_dir_name(repo)))
}

struct Lines {
    json: bool,
}

impl WorkerReport for Lines {
    fn event(&self, e: &WorkerEvent) {
        if self.json {
            if let Ok(s) = serde_json::to_string(e) {
                write_out(&format!("{s}\n"));
            }
            return;
        }
        let line = match e {
            WorkerEvent::Started {
                worker,
                repo,
                clone,
                concurrency,
                lease_ms,
            } => format!(
                "worker {worker} serving {repo} (clone {clone}, {concurrency} at once, lease {:.1}s)",
                *lease_ms as f64 / 1000.0
            ),
            WorkerEvent::Claimed {
                run,
                workflow,
                resume,
                took_over_from,
            } => match took_over_from {
                Some(w) => {
                    format!("{run}  took over from {w} (lease ran out); resuming {workflow}")
                }
                None if *resume => format!("{run}  resuming {workflow}"),
                None => format!("{run}  starting {workflow}"),
            },
            WorkerEvent::Progress { run, progress } => match progress {
                ProgressEvent::PhaseCompleted {
                    phase,
                    commit,
                    replayed_calls,
                    live_calls,
                    ..
                } => format!(
                    "{run}  {phase} done at {} ({live_calls} live calls, {replayed_calls} replayed), pushed",
                    &commit[..commit.len().min(12)]
                ),
                ProgressEvent::Paused { reason, detail } => {
                    format!("{run}  paused ({reason}): {detail}")
                }
                _ => return,
            },
            WorkerEvent::Settled {
                run,
                status,
                detail,
            } => format!(
                "{run}  {status}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
            WorkerEvent::Released {
                run,
                error,
                retry_in_ms,
            } => format!(
                "{run}  back to the queue, retried in {:.0}s: {error}",
                *retry_in_ms as f64 / 1000.0
            ),
            WorkerEvent::LeaseLost { run } => {
                format!("{run}  lease lost: another worker has it; stopped here")
            }
            WorkerEvent::Warning { message } => format!("warning: {message}"),
            WorkerEvent::Stopped { worker, runs } => {
                format!("worker {worker} stopped after {runs} claim(s)")
            }
        };
        write_err(&format!("{line}\n"));
    }
}

fn secs(name: &str, v: f64) -> Result<Duration, Failure> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(Failure::usage(format!(
            "--{name} {v}: give seconds between 0 and 86400"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `agentops worker`.
pub fn worker(args: WorkerArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let lease = secs("lease", args.lease)?;
    let poll = secs("poll", args.poll)?;
    if lease < Duration::from_millis(300) {
        return Err(Failure::usage("--lease: at least 0.3 seconds"));
    }
    let repo = match &args.repo {
        Some(r) => r.clone(),
        None => {
            let here = RepoLayout::discover(&crate::shared::cwd()?).map_err(|e| {
                Failure::usage(format!(
                    "{e}; give the repository whose runs to claim with --repo URL|PATH"
                ))
            })?;
            agentops_git::cmd::run(&here.work_tree, &["remote", "get-url", "origin"]).map_err(
                |_| {
                    Failure::usage(
                        "this repository has no `origin` remote; give the repository whose runs to claim with --repo URL|PATH",
                    )
                },
            )?
        }
    };
    // A relative path means the same repository from any directory.
    let repo = if std::path::Path::new(&repo).exists() {
        std::fs::canonicalize(&repo)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(repo)
    } else {
        repo
    };
    let dir = match args.dir {
        Some(d) => d,
        None => default_dir(&repo)?,
    };
    let clone = worker::prepare_clone(&repo, &dir).map_err(super::runs::fail)?;
    let layout = RepoLayout::discover(&clone).map_err(Failure::usage)?;
    let config = project::load_config(Some(&layout), flags.to_vec()).map_err(Failure::usage)?;
    let target = super::store::target(&config)?;
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            write_err(
                "\nstopping now; the runs' leases run out and another worker takes them over\n",
            );
            std::process::exit(130);
        }
        write_err(
            "\nstopping: runs stop at their next step and go back to the queue (Ctrl-C again to quit at once)\n",
        );
    });
    let report = Lines { json: out.json };
    let opts = WorkerOptions {
        layout: &layout,
        config: &config,
        target,
        repo: agentops_store::pg::normalize_repo(&repo),
        remote: "origin".into(),
        id: worker::worker_id(),
        concurrency: usize::from(args.concurrency),
        lease,
        poll,
        drain: args.drain,
        env: &env_lookup,
        report: &report,
        stop: &STOP,
    };
    worker::serve(&opts).map_err(super::runs::fail)?;
    Ok(Code::Ok)
}

fn team_store(config: &agentops_core::config::Config) -> Result<PgStore, Failure> {
    let target = super::store::target(config)?;
    PgStore::open(target, PgOptions { migrate: true }).map_err(Failure::failed)
}

fn age(us: i64) -> String {
    let s = (agentops_core::time::now_micros() - us).max(0) / 1_000_000;
    if s < 120 {
        format!("{s}s ago")
    } else if s < 7200 {
        format!("{}m ago", s / 60)
    } else {
        format!("{}h ago", s / 3600)
    }
}

/// `agentops workers`.
pub fn workers(all: bool, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (_, config) = open_project(flags)?;
    let store = team_store(&config)?;
    let workers = store.workers(all).map_err(Failure::failed)?;
    let queue = store.queue_rows(None, true, 200).map_err(Failure::failed)?;
    if out.json {
        out.json(&serde_json::json!({"workers": workers, "queue": queue}));
        return Ok(Code::Ok);
    }
    if workers.is_empty() {
        out.line("no workers (start one with `agentops worker`)");
    }
    for w in &workers {
        out.line(&format!(
            "{}  {:<7} {}@{} pid {}  {}  heartbeat {}  {}/{} busy{}",
            w.id,
            if w.alive {
                "alive"
            } else if w.stopped_ts.is_some() {
                "stopped"
            } else {
                "silent"
            },
            w.user,
            w.host,
            w.pid,
            w.repo,
            age(w.heartbeat_ts),
            w.runs.len(),
            w.concurrency,
            if w.runs.is_empty() {
                String::new()
            } else {
                format!(": {}", w.runs.join(", "))
            }
        ));
    }
    let by = |s: QueueStatus| queue.iter().filter(|q| q.status == s).count();
    out.line(&format!(
        "queue: {} queued, {} claimed, {} paused",
        by(QueueStatus::Queued),
        by(QueueStatus::Claimed),
        by(QueueStatus::Paused)
    ));
    for q in &queue {
        let at = match (&q.worker, q.status) {
            (Some(w), QueueStatus::Claimed) if q.live() => format!("on {w}"),
            (Some(w), QueueStatus::Claimed) => {
                format!("lease of {w} ran out; the next worker takes it over")
            }
            _ => q.detail.clone(),
        };
        out.line(&format!(
            "  {}  {:<8} {:<12} {}",
            q.run_id,
            q.status.as_str(),
            q.workflow,
            at
        ));
    }
    Ok(Code::Ok)
}

/// `run --queue`.
pub fn enqueue(
    opts: &agentops_runner::StartOptions,
    remote: &str,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let store = team_store(&config)?;
    let (id, repo) = worker::enqueue(&layout, &store, remote, opts).map_err(super::runs::fail)?;
    if out.json {
        out.json(&serde_json::json!({"run": id, "queued": true, "repo": repo}));
    } else {
        out.important(&format!(
            "queued run {id} for {repo}; a worker (`agentops worker`) claims it — `agentops workers` and `agentops runs` show where it is"
        ));
    }
    Ok(Code::Ok)
}

/// The team store and queue row of `run`, when store.url names a team store
/// and the run was queued there.
pub(crate) fn queued(
    config: &agentops_core::config::Config,
    run: &str,
) -> Option<(PgStore, QueuedRun)> {
    let target = agentops_store::team_target(config)?.ok()?;
    let store = PgStore::open(target, PgOptions { migrate: true }).ok()?;
    let row = store.queued(run).ok()??;
    Some((store, row))
}

/// The team journal, for commands on a queued run.
pub(crate) fn journal_for(config: &agentops_core::config::Config) -> Result<Journal, Failure> {
    let target = super::store::target(config)?;
    let store = PgStore::open(target, PgOptions { migrate: false }).map_err(Failure::failed)?;
    Journal::team(store, config).map_err(Failure::failed)
}

fn actor() -> String {
    let t = Tag::local();
    format!("{}@{}", t.user, t.host)
}

fn state(j: &Journal, layout: &RepoLayout, id: &RunId) -> Option<RunState> {
    RunState::load(j, &layout.state_dir(), id).ok()
}

/// `pause` / `cancel` of a queued run, from any machine.
pub(crate) fn control(
    layout: &RepoLayout,
    config: &agentops_core::config::Config,
    store: &PgStore,
    row: &QueuedRun,
    action: ControlAction,
) -> Result<String, Failure> {
    let j = journal_for(config)?;
    let id = RunId::parse(&row.run_id).map_err(Failure::failed)?;
    let run = &row.run_id;
    if row.live() {
        j.append(
            agentops_protocol::event::new_event(id, body::RunControl { action }),
            Durability::Sync,
        )
        .map_err(Failure::failed)?;
        let w = row.worker.clone().unwrap_or_default();
        return Ok(match action {
            ControlAction::Pause => {
                format!("asked run {run} (on worker {w}) to pause at its next step")
            }
            ControlAction::Cancel => {
                format!("asked run {run} (on worker {w}) to stop; it is cancelled at its next step")
            }
        });
    }
    let (from, to): (&[QueueStatus], QueueStatus) = match action {
        ControlAction::Pause => (&[QueueStatus::Queued], QueueStatus::Paused),
        ControlAction::Cancel => (
            &[QueueStatus::Queued, QueueStatus::Paused],
            QueueStatus::Cancelled,
        ),
    };
    let detail = format!(
        "{} by {}",
        if action == ControlAction::Pause {
            "paused"
        } else {
            "cancelled"
        },
        actor()
    );
    let Some(now) = store
        .requeue_or_set(run, from, to, &detail, None)
        .map_err(Failure::failed)?
    else {
        let fresh = store.queued(run).map_err(Failure::failed)?;
        let status = fresh.as_ref().map_or("gone", |r| r.status.as_str());
        return Err(Failure::failed(format!(
            "run {run} is {status} in the queue; {}",
            match action {
                ControlAction::Pause => "only a queued or running run can pause",
                ControlAction::Cancel => "a finished run cannot be cancelled",
            }
        )));
    };
    // The journal says so too, when the run had started.
    if let Some(st) = state(&j, layout, &id)
        && !st.status.finished()
    {
        let ev = match action {
            ControlAction::Pause if st.status == RunStatus::Running => {
                Some(agentops_protocol::event::new_event(
                    id.clone(),
                    body::RunPaused {
                        reason: PauseReason::Requested,
                        detail: format!("paused while queued ({})", actor()),
                    },
                ))
            }
            ControlAction::Pause => None,
            ControlAction::Cancel => Some(agentops_protocol::event::new_event(
                id.clone(),
                body::RunCompleted::Cancelled,
            )),
        };
        if let Some(ev) = ev {
            j.append(ev, Durability::Sync).map_err(Failure::failed)?;
        }
    }
    Ok(match now.status {
        QueueStatus::Paused => {
            format!("run {run} paused in the queue; `agentops resume {run}` queues it again")
        }
        _ => format!("run {run} cancelled (no worker will take it)"),
    })
}

/// `resume` of a queued run: back to the queue, for any worker.
pub(crate) fn resume(
    store: &PgStore,
    row: &QueuedRun,
    budget: agentops_runner::spec::Budget,
) -> Result<String, Failure> {
    let run = &row.run_id;
    let resume = serde_json::to_value(worker::QueuedResume { budget }).map_err(Failure::failed)?;
    match store
        .requeue_or_set(
            run,
            &[QueueStatus::Paused],
            QueueStatus::Queued,
            &format!("resumed by {}", actor()),
            Some(&resume),
        )
        .map_err(Failure::failed)?
    {
        Some(_) => Ok(format!(
            "run {run} queued again; the next free worker resumes it from its last checkpoint"
        )),
        None => Err(Failure::failed(match row.status {
            QueueStatus::Claimed if row.live() => format!(
                "run {run} is running on worker {}; there is nothing to resume",
                row.worker.as_deref().unwrap_or("?")
            ),
            QueueStatus::Queued => format!("run {run} is queued already"),
            s => format!(
                "run {run} is {} in the queue; there is nothing to resume",
                s.as_str()
            ),
        })),
    }
}

/// After an approval of a queued run: when it is paused and nothing is
/// waiting any more, queue it again. The line to print, if any.
pub(crate) fn after_approval(
    config: &agentops_core::config::Config,
    store: &PgStore,
    row: &QueuedRun,
) -> Option<String> {
    if row.status != QueueStatus::Paused {
        return None;
    }
    let j = journal_for(config).ok()?;
    let id = RunId::parse(&row.run_id).ok()?;
    let pending = agentops_gates::approval::pending(&j, Some(&id)).ok()?;
    if !pending.is_empty() {
        return None;
    }
    store
        .requeue_or_set(
            &row.run_id,
            &[QueueStatus::Paused],
            QueueStatus::Queued,
            &format!("approved by {}", actor()),
            None,
        )
        .ok()
        .flatten()
        .map(|_| format!("run {} queued again; a worker resumes it", row.run_id))
}

/// Where queued runs stand, over what the team journal says: a run a worker
/// holds is `running` (on that worker) wherever it is looked at, one whose
/// worker died is `interrupted` until another takes it over, and runs no
/// worker has started yet are listed as `queued`.
pub(crate) fn merge_queue(
    config: &agentops_core::config::Config,
    runs: &mut Vec<agentops_runner::RunSummary>,
    limit: usize,
) {
    let Some(Ok(target)) = agentops_store::team_target(config) else {
        return;
    };
    let Ok(store) = PgStore::open(target, PgOptions { migrate: false }) else {
        return;
    };
    let Ok(rows) = store.queue_rows(None, false, i64::try_from(limit).unwrap_or(i64::MAX)) else {
        return;
    };
    for q in &rows {
        if let Some(r) = runs.iter_mut().find(|r| r.id == q.run_id) {
            if r.status == "running" || r.status == "interrupted" {
                if q.live() {
                    r.status = "running".into();
                    r.detail = format!("on {}", q.worker.as_deref().unwrap_or("?"));
                } else if q.status == QueueStatus::Claimed {
                    r.status = "interrupted".into();
                    r.detail = format!(
                        "lease of {} ran out; the next worker takes it over",
                        q.worker.as_deref().unwrap_or("?")
                    );
                } else if q.status == QueueStatus::Queued {
                    r.status = "queued".into();
                    r.detail = q.detail.chars().take(80).collect();
                }
            }
            continue;
        }
        if q.status.finished() {
            continue;
        }
        let spec: Option<worker::QueuedSpec> = serde_json::from_value(q.spec.clone()).ok();
        runs.push(agentops_runner::RunSummary {
            id: q.run_id.clone(),
            workflow: q.workflow.clone(),
            goal: spec.as_ref().map(|s| s.goal.clone()).unwrap_or_default(),
            status: if q.live() {
                "starting".into()
            } else {
                q.status.as_str().into()
            },
            detail: q
                .worker
                .as_ref()
                .filter(|_| q.live())
                .map(|w| format!("on {w}"))
                .unwrap_or_else(|| q.detail.chars().take(80).collect()),
            started_ts: q.enqueued_ts,
            phases_done: 0,
            phases: 0,
            tokens: 0,
            cost_usd: 0.0,
            branch: format!("agentops/run/{}", q.run_id),
        });
    }
    runs.sort_by(|a, b| b.started_ts.cmp(&a.started_ts).then(b.id.cmp(&a.id)));
    runs.truncate(limit);
}
