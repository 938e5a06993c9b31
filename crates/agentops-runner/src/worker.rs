//! Workers: runs queued in the team store, executed on whichever machine is
//! free, surviving that machine dying (issue 21, docs/team.md).
//!
//! `agentops run --queue` checks a run's specs and enqueues it
//! ([`enqueue`]); `agentops worker` ([`serve`]) claims queued runs of its
//! repository with a lease, renews the lease while it works, executes each
//! run in a worktree of its own clone and journals to the team store. Every
//! checkpoint is pushed to the remote *before* the journal records it, so
//! the journal never names a checkpoint the remote lacks. A worker that dies
//! stops renewing; once its lease runs out another worker claims the run,
//! fetches its branch, recreates the worktree at the last recorded
//! checkpoint and resumes it — answering the model calls the dead worker
//! completed from the shared journal, so none is paid twice.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentops_core::config::Config;
use agentops_core::{EventKind, RunId};
use agentops_protocol::event::{self as body, PauseReason};
use agentops_store::pg::{self, Claimed, NewQueued, PgOptions, PgStore, QueueStatus};
use agentops_store::{Durability, Journal, Query, RepoLayout};
use serde::{Deserialize, Serialize};

use crate::git::git;
use crate::spec::Budget;
use crate::state::{self, RunState, RunStatus};
use crate::{Outcome, Progress, ProgressEvent, ResumeOptions, RunContext, RunError, StartOptions};

/// What a queued run is started with (the queue row's `spec`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuedSpec {
    pub workflow: String,
    pub goal: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The commit the run starts from; it is on the remote.
    pub base_commit: String,
    /// The branch it was on where it was enqueued (for `land`).
    #[serde(default)]
    pub base_branch: Option<String>,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub backend: Option<String>,
}

/// What the next resume of a queued run uses (`agentops resume` of one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueuedResume {
    #[serde(default)]
    pub budget: Budget,
}

/// Claims that end in an error this many times fail the run.
pub const MAX_ATTEMPTS: i32 = 5;

/// Enqueues a run of `opts` in the team store for the workers of the
/// repository at `remote`: the specs are checked here, the base commit must
/// be on the remote already (its remote-tracking refs), and the run's id is
/// given now.
pub fn enqueue(
    layout: &RepoLayout,
    store: &PgStore,
    remote: &str,
    opts: &StartOptions,
) -> Result<(RunId, String), RunError> {
    crate::run::check(layout, opts)?;
    let root = &layout.work_tree;
    let url = git(root, &["remote", "get-url", remote]).map_err(|_| {
        RunError::Config(format!(
            "--queue: this repository has no remote `{remote}`; workers fetch the run's base commit from it (`git remote add {remote} URL`)"
        ))
    })?;
    let rev = opts.base.as_deref().unwrap_or("HEAD");
    let base = git(
        root,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )
    .map_err(|e| match e {
        RunError::GitCommand(c) => RunError::Base(c),
        other => other,
    })?;
    let on_remote = git(
        root,
        &[
            "for-each-ref",
            "--count=1",
            "--contains",
            &base,
            &format!("refs/remotes/{remote}/"),
        ],
    )
    .unwrap_or_default();
    if on_remote.trim().is_empty() {
        return Err(RunError::State(format!(
            "--queue: the base commit {} is not on remote `{remote}` ({url}); push it first (`git push`), workers start from the remote",
            &base[..base.len().min(12)]
        )));
    }
    let base_branch = if opts.base.is_none() {
        git(root, &["symbolic-ref", "--short", "-q", "HEAD"]).ok()
    } else {
        None
    };
    let id = match &opts.id {
        Some(id) => id.clone(),
        None => crate::run::new_run_id()?,
    };
    let spec = QueuedSpec {
        workflow: opts.workflow.clone(),
        goal: opts.goal.clone(),
        vars: opts.vars.clone(),
        base_commit: base,
        base_branch,
        budget: opts.budget,
        backend: opts.backend.clone(),
    };
    let repo = pg::normalize_repo(&url);
    store.enqueue(&NewQueued {
        run_id: id.to_string(),
        repo: repo.clone(),
        workflow: opts.workflow.clone(),
        spec: serde_json::to_value(&spec)?,
    })?;
    Ok((id, repo))
}

/// What a worker reports as it goes (the CLI prints it).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "worker_event", rename_all = "snake_case")]
pub enum WorkerEvent {
    Started {
        worker: String,
        repo: String,
        clone: String,
        concurrency: usize,
        lease_ms: u64,
    },
    Claimed {
        run: String,
        workflow: String,
        resume: bool,
        took_over_from: Option<String>,
    },
    Progress {
        run: String,
        progress: ProgressEvent,
    },
    Settled {
        run: String,
        status: String,
        detail: String,
    },
    /// Back to the queue, to be tried again after `retry_in_ms`.
    Released {
        run: String,
        error: String,
        retry_in_ms: u64,
    },
    LeaseLost {
        run: String,
    },
    Warning {
        message: String,
    },
    Stopped {
        worker: String,
        runs: usize,
    },
}

/// Receives a worker's events.
pub trait WorkerReport: Sync {
    fn event(&self, e: &WorkerEvent);
}

/// How a worker works.
pub struct WorkerOptions<'a> {
    /// Its clone of the repository (the layout and config come from it).
    pub layout: &'a RepoLayout,
    pub config: &'a Config,
    pub target: pg::Target,
    /// The remote its runs come from (the clone's `origin`), normalized.
    pub repo: String,
    pub remote: String,
    pub id: String,
    pub concurrency: usize,
    pub lease: Duration,
    pub poll: Duration,
    /// Exit once the repository has nothing queued or claimed.
    pub drain: bool,
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    pub report: &'a dyn WorkerReport,
    /// Set to stop: runs stop at their next step and go back to the queue.
    pub stop: &'a AtomicBool,
}

/// A worker id: host, process and a random tail.
pub fn worker_id() -> String {
    let tag = pg::Tag::local();
    let tail = agentops_core::ids::Ulid::generate().to_string();
    format!(
        "{}-{}-{}",
        tag.host,
        std::process::id(),
        tail[tail.len() - 4..].to_ascii_lowercase()
    )
}

/// The file that marks a clone as a worker's own (its checkout is reset to
/// its upstream before every run: never a person's repository).
const CLONE_MARK: &str = "agentops-worker-clone";

/// Clones `repo` into `dir` when it is not there yet; the clone's path. A
/// directory that holds a repository this worker did not clone is refused:
/// a worker resets its clone's checkout, which would lose a person's work.
pub fn prepare_clone(repo: &str, dir: &Path) -> Result<PathBuf, RunError> {
    if dir.join(".git").exists() {
        if !dir.join(".git").join(CLONE_MARK).is_file() {
            return Err(RunError::Config(format!(
                "--dir {}: a repository agentops worker did not clone; a worker resets its clone's checkout, so give it a directory of its own (new or empty)",
                dir.display()
            )));
        }
        return std::fs::canonicalize(dir).map_err(RunError::io(dir));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(RunError::io(dir))?
            .next()
            .is_some()
    {
        return Err(RunError::Config(format!(
            "--dir {}: not empty and not a worker's clone; give a new or empty directory",
            dir.display()
        )));
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(RunError::io(parent))?;
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    agentops_git::cmd::run(
        parent,
        &[
            "clone",
            "-q",
            "--no-recurse-submodules",
            repo,
            &dir.to_string_lossy(),
        ],
    )
    .map_err(|source| RunError::GitStep {
        message: format!("cannot clone {repo} into {}", dir.display()),
        source,
    })?;
    let mark = dir.join(".git").join(CLONE_MARK);
    std::fs::write(&mark, format!("cloned from {repo} by agentops worker\n"))
        .map_err(RunError::io(&mark))?;
    std::fs::canonicalize(dir).map_err(RunError::io(dir))
}

struct Held {
    lost: Arc<AtomicBool>,
}

struct Worker<'a> {
    o: &'a WorkerOptions<'a>,
    held: Mutex<HashMap<String, Held>>,
    /// Git operations on the clone's shared refs, one at a time.
    git_turn: Mutex<()>,
    active: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

/// Serves the queue until `stop` (or, with `drain`, until nothing is left);
/// returns how many runs it worked on.
pub fn serve(o: &WorkerOptions<'_>) -> Result<usize, RunError> {
    let control = PgStore::open(o.target.clone(), PgOptions { migrate: true })?;
    control.register_worker(
        &o.id,
        i64::from(std::process::id()),
        &o.repo,
        i32::try_from(o.concurrency).unwrap_or(i32::MAX),
        o.lease,
    )?;
    o.report.event(&WorkerEvent::Started {
        worker: o.id.clone(),
        repo: o.repo.clone(),
        clone: o.layout.work_tree.display().to_string(),
        concurrency: o.concurrency,
        lease_ms: u64::try_from(o.lease.as_millis()).unwrap_or(u64::MAX),
    });
    let w = Worker {
        o,
        held: Mutex::new(HashMap::new()),
        git_turn: Mutex::new(()),
        active: 0.into(),
        done: 0.into(),
    };
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| w.renew_loop(&control, &finished));
        let slots: Vec<_> = (0..o.concurrency.max(1))
            .map(|_| s.spawn(|| w.slot_loop()))
            .collect();
        for h in slots {
            let _ = h.join();
        }
        finished.store(true, Ordering::Relaxed);
    });
    let _ = control.stop_worker(&o.id);
    let n = w.done.load(Ordering::Relaxed);
    o.report.event(&WorkerEvent::Stopped {
        worker: o.id.clone(),
        runs: n,
    });
    Ok(n)
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
}

/// The delay before a run that failed `attempts` times is tried again.
fn backoff(attempts: i32) -> Duration {
    let n = u32::try_from(attempts.clamp(1, 6)).unwrap_or(1);
    Duration::from_secs(2u64.pow(n)).min(Duration::from_secs(60))
}

impl Worker<'_> {
    fn warn(&self, message: String) {
        self.o.report.event(&WorkerEvent::Warning { message });
    }

    /// Renews this worker's leases every third of a lease; a run missing
    /// from the renewal (taken over), or every run when the store has been
    /// unreachable for a whole lease, is marked lost.
    fn renew_loop(&self, control: &PgStore, finished: &AtomicBool) {
        let every = (self.o.lease / 3).max(Duration::from_millis(100));
        let mut last_ok = Instant::now();
        let mut last_try = Instant::now();
        while !finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            if self.o.stop.load(Ordering::Relaxed) {
                // Stopping: every run stops at its next step and goes back.
                let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                for h in held.values() {
                    h.lost.store(true, Ordering::Relaxed);
                }
            }
            if finished.load(Ordering::Relaxed) || last_try.elapsed() < every {
                continue;
            }
            last_try = Instant::now();
            match control.renew(&self.o.id, self.o.lease) {
                Ok(still) => {
                    last_ok = Instant::now();
                    let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    for (run, h) in held.iter() {
                        if !still.contains(run) && !h.lost.swap(true, Ordering::Relaxed) {
                            self.o
                                .report
                                .event(&WorkerEvent::LeaseLost { run: run.clone() });
                        }
                    }
                }
                Err(e) => {
                    self.warn(format!("cannot renew leases: {e}"));
                    if last_ok.elapsed() >= self.o.lease {
                        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                        for (run, h) in held.iter() {
                            if !h.lost.swap(true, Ordering::Relaxed) {
                                self.o
                                    .report
                                    .event(&WorkerEvent::LeaseLost { run: run.clone() });
                            }
                        }
                    }
                }
            }
        }
    }

    fn slot_loop(&self) {
        let store = match PgStore::open(self.o.target.clone(), PgOptions { migrate: false }) {
            Ok(s) => s,
            Err(e) => {
                self.warn(format!("cannot open the team store: {e}"));
                return;
            }
        };
        let mut idle_delay = self.o.poll;
        while !self.o.stop.load(Ordering::Relaxed) {
            let claimed = match store.claim(&self.o.repo, &self.o.id, self.o.lease) {
                Ok(c) => c,
                Err(e) => {
                    self.warn(format!("cannot claim from the queue: {e}"));
                    sleep_unless(self.o.stop, idle_delay);
                    idle_delay = (idle_delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            idle_delay = self.o.poll;
            let Some(c) = claimed else {
                if self.o.drain
                    && self.active.load(Ordering::Relaxed) == 0
                    && store.queue_pending(&self.o.repo).is_ok_and(|n| n == 0)
                {
                    return;
                }
                sleep_unless(self.o.stop, self.o.poll);
                continue;
            };
            self.active.fetch_add(1, Ordering::Relaxed);
            self.work(&store, c);
            self.active.fetch_sub(1, Ordering::Relaxed);
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Executes one claimed run and settles its queue row.
    fn work(&self, store: &PgStore, c: Claimed) {
        let run = c.run.run_id.clone();
        let lost = Arc::new(AtomicBool::new(false));
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.clone(), Held { lost: lost.clone() });
        let result = self.execute(&c, &lost);
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run);
        let settle = |status: QueueStatus, detail: &str, retry: Option<Duration>| {
            match store.settle(&run, &self.o.id, status, detail, retry) {
                Ok(true) => {
                    if let Some(d) = retry {
                        self.o.report.event(&WorkerEvent::Released {
                            run: run.clone(),
                            error: detail.to_owned(),
                            retry_in_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                        });
                    } else {
                        self.o.report.event(&WorkerEvent::Settled {
                            run: run.clone(),
                            status: status.as_str().into(),
                            detail: detail.to_owned(),
                        });
                    }
                }
                Ok(false) => self.o.report.event(&WorkerEvent::LeaseLost { run: run.clone() }),
                Err(e) => self.warn(format!(
                    "run {run}: cannot settle its queue row ({e}); its lease runs out and another worker picks it up"
                )),
            }
        };
        if lost.load(Ordering::Relaxed) && !self.o.stop.load(Ordering::Relaxed) {
            // Another worker owns it now; its row is not ours to touch.
            self.o.report.event(&WorkerEvent::LeaseLost { run });
            return;
        }
        match result {
            Ok(Outcome::Completed { commit, .. }) => {
                settle(QueueStatus::Completed, &commit, None);
            }
            Ok(Outcome::Paused { reason, detail, .. }) => {
                if reason == PauseReason::Other("remote".into()) {
                    settle(QueueStatus::Queued, &detail, Some(backoff(c.run.attempts)));
                } else {
                    settle(QueueStatus::Paused, &format!("{reason}: {detail}"), None);
                }
            }
            Ok(Outcome::Failed { error, .. }) => settle(QueueStatus::Failed, &error, None),
            Ok(Outcome::Cancelled { .. }) => settle(QueueStatus::Cancelled, "", None),
            Err(e) if self.o.stop.load(Ordering::Relaxed) => {
                // Stopping: hand the run back at once.
                settle(
                    QueueStatus::Queued,
                    &format!("worker {} stopped: {e}", self.o.id),
                    Some(Duration::ZERO),
                );
            }
            Err(e) if c.run.attempts >= MAX_ATTEMPTS => {
                let error = format!("{e} (after {} attempts)", c.run.attempts);
                if let Ok(rid) = RunId::parse(&run)
                    && let Ok(j) = self.journal()
                    && RunState::load(&j, &self.o.layout.state_dir(), &rid)
                        .is_ok_and(|s| !s.status.finished())
                {
                    let _ = j.append(
                        agentops_protocol::event::new_event(
                            rid,
                            body::RunCompleted::Failed {
                                error: error.clone(),
                                phase: None,
                            },
                        ),
                        Durability::Sync,
                    );
                }
                settle(QueueStatus::Failed, &error, None);
            }
            Err(e) => settle(
                QueueStatus::Queued,
                &e.to_string(),
                Some(backoff(c.run.attempts)),
            ),
        }
    }

    fn journal(&self) -> Result<Journal, RunError> {
        let store = PgStore::open(self.o.target.clone(), PgOptions { migrate: false })?;
        Ok(Journal::team(store, self.o.config)?)
    }

    fn clone_git(&self, args: &[&str]) -> Result<String, RunError> {
        git(&self.o.layout.work_tree, args)
    }

    /// Fetches the remote and brings the clone's own checkout to its
    /// upstream (the knowledge runs search); one at a time.
    fn refresh(&self) -> Result<(), RunError> {
        let _turn = self.git_turn.lock().unwrap_or_else(|p| p.into_inner());
        self.clone_git(&["fetch", "-q", "--prune", &self.o.remote])
            .map_err(|e| RunError::State(format!("cannot fetch {}: {e}", self.o.repo)))?;
        if self
            .clone_git(&["rev-parse", "-q", "--verify", "@{upstream}"])
            .is_ok()
        {
            let _ = self.clone_git(&["reset", "-q", "--hard", "@{upstream}"]);
        }
        Ok(())
    }

    fn execute(&self, c: &Claimed, lost: &Arc<AtomicBool>) -> Result<Outcome, RunError> {
        let o = self.o;
        let run = &c.run.run_id;
        let id = RunId::parse(run)?;
        let spec: QueuedSpec = serde_json::from_value(c.run.spec.clone())
            .map_err(|e| RunError::Config(format!("queue row of run {run}: spec: {e}")))?;
        let journal = self.journal()?;
        let state_dir = o.layout.state_dir();
        let existing = match RunState::load(&journal, &state_dir, &id) {
            Ok(st) => Some(st),
            Err(RunError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        o.report.event(&WorkerEvent::Claimed {
            run: run.clone(),
            workflow: spec.workflow.clone(),
            resume: existing.is_some(),
            took_over_from: c.took_over_from.clone(),
        });
        if let Some(done) = existing
            .as_ref()
            .and_then(|st| finished_outcome(run, &st.status))
        {
            // The journal is ahead of the row (a worker died settling it).
            return Ok(done);
        }
        self.refresh()?;
        let branch = state::branch_of(&id);
        let wt = state::worktree_of(&state_dir, &id);
        let remote = o.remote.clone();
        let clone = o.layout.work_tree.clone();
        let publish = move |branch: &str, _commit: &str| -> Result<(), String> {
            let spec = format!("+refs/heads/{branch}:refs/heads/{branch}");
            let mut delay = Duration::from_millis(500);
            let mut last = String::new();
            for attempt in 0..4 {
                match agentops_git::cmd::run(&clone, &["push", "-q", &remote, &spec]) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
                if attempt < 3 {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
            Err(format!("push to `{remote}` failed 4 times: {last}"))
        };
        let progress = RunProgress {
            run: run.clone(),
            report: o.report,
        };
        let ctx = RunContext {
            layout: o.layout,
            config: o.config,
            journal: &journal,
            env: o.env,
            progress: &progress,
            publish: Some(&publish),
            lost: Some(lost),
        };
        match existing {
            None => {
                {
                    let _turn = self.git_turn.lock().unwrap_or_else(|p| p.into_inner());
                    // What an earlier claim left before the run was recorded.
                    if wt.exists() {
                        let _ = self.clone_git(&[
                            "worktree",
                            "remove",
                            "--force",
                            &wt.to_string_lossy(),
                        ]);
                    }
                    let _ = self.clone_git(&["worktree", "prune"]);
                    let _ = self.clone_git(&["branch", "-q", "-D", &branch]);
                    self.ensure_commit(&spec.base_commit)?;
                }
                let specs = self.export_specs(&id, &spec.base_commit)?;
                let outcome = crate::run::start(
                    &ctx,
                    &StartOptions {
                        workflow: spec.workflow.clone(),
                        goal: spec.goal.clone(),
                        vars: spec.vars.clone(),
                        base: Some(spec.base_commit.clone()),
                        budget: spec.budget,
                        backend: spec.backend.clone(),
                        id: Some(id.clone()),
                        base_branch: spec.base_branch.clone(),
                        agents_dir: Some(specs.join(".agents")),
                    },
                );
                let _ = std::fs::remove_dir_all(&specs);
                outcome
            }
            Some(st) => {
                {
                    let _turn = self.git_turn.lock().unwrap_or_else(|p| p.into_inner());
                    let tracking = format!("refs/remotes/{}/{branch}", o.remote);
                    let fetched = self
                        .clone_git(&[
                            "fetch",
                            "-q",
                            &o.remote,
                            &format!("+refs/heads/{branch}:{tracking}"),
                        ])
                        .is_ok();
                    let at = st
                        .last_checkpoint
                        .clone()
                        .unwrap_or_else(|| st.started.base_commit.clone());
                    self.ensure_commit(&at).map_err(|_| {
                        RunError::State(format!(
                            "run {run}: its last checkpoint {} is not on remote `{}`{}",
                            &at[..at.len().min(12)],
                            o.remote,
                            if fetched {
                                ""
                            } else {
                                " (its branch could not be fetched)"
                            }
                        ))
                    })?;
                    if !wt.exists() {
                        let _ = self.clone_git(&["worktree", "prune"]);
                        let parent = state_dir.join("worktrees");
                        std::fs::create_dir_all(&parent).map_err(RunError::io(&parent))?;
                        self.clone_git(&[
                            "worktree",
                            "add",
                            "-q",
                            "-B",
                            &branch,
                            &wt.to_string_lossy(),
                            &at,
                        ])?;
                    }
                }
                // The options of the last `agentops resume` (the same
                // limits again when a takeover resumes it once more).
                let resume = c
                    .run
                    .resume
                    .clone()
                    .and_then(|v| serde_json::from_value::<QueuedResume>(v).ok())
                    .unwrap_or_default();
                crate::run::resume(
                    &ctx,
                    &id,
                    &ResumeOptions {
                        budget: resume.budget,
                    },
                )
            }
        }
    }

    /// `commit` is in the clone (fetched already).
    fn ensure_commit(&self, commit: &str) -> Result<(), RunError> {
        self.clone_git(&["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .map(|_| ())
            .map_err(|_| {
                RunError::State(format!(
                    "commit {} is not on remote `{}` ({})",
                    &commit[..commit.len().min(12)],
                    self.o.remote,
                    self.o.repo
                ))
            })
    }

    /// The base commit's `.agents/` in a directory of its own: the specs a
    /// queued run starts with are those of its base, whatever the clone's
    /// checkout holds.
    fn export_specs(&self, id: &RunId, base: &str) -> Result<PathBuf, RunError> {
        let dir = self
            .o
            .layout
            .state_dir()
            .join("worker-specs")
            .join(id.as_str());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(RunError::io(&dir))?;
        let tar = agentops_git::cmd::run_bytes(
            &self.o.layout.work_tree,
            &["archive", "--format=tar", base, ".agents"],
        )?;
        let mut child = std::process::Command::new("tar")
            .args(["-x", "-f", "-", "-C"])
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(RunError::io("tar"))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(&tar).map_err(RunError::io("tar"))?;
        }
        let out = child.wait_with_output().map_err(RunError::io("tar"))?;
        if !out.status.success() {
            return Err(RunError::State(format!(
                "cannot unpack the specs of {base}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(dir)
    }
}

/// How a run the journal says is finished ended (`None`: not finished).
fn finished_outcome(run: &str, status: &RunStatus) -> Option<Outcome> {
    let run = run.to_owned();
    Some(match status {
        RunStatus::Completed { commit } | RunStatus::Landed { commit } => Outcome::Completed {
            run,
            commit: commit.clone(),
        },
        RunStatus::Cancelled => Outcome::Cancelled { run },
        RunStatus::Failed { error } => Outcome::Failed {
            run,
            error: error.clone(),
        },
        RunStatus::Running | RunStatus::Paused { .. } => return None,
    })
}

struct RunProgress<'a> {
    run: String,
    report: &'a dyn WorkerReport,
}

impl Progress for RunProgress<'_> {
    fn event(&self, e: &ProgressEvent) {
        self.report.event(&WorkerEvent::Progress {
            run: self.run.clone(),
            progress: e.clone(),
        });
    }
}

/// The journal events that say when run `id` was resumed (µs), for the
/// takeover figures.
pub fn resumed_at(journal: &Journal, id: &RunId) -> Result<Vec<i64>, RunError> {
    Ok(journal
        .read(&Query {
            run_id: Some(id.clone()),
            kinds: vec![EventKind::RunResumed],
            ..Query::default()
        })?
        .iter()
        .map(|e| e.ts)
        .collect())
}
