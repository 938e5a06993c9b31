//! The run queue and workers through the binary, on a real PostgreSQL server
//! (`.ci/postgres`) and a bare git remote: a queued run claimed by one
//! worker, that worker killed with SIGKILL mid-run, another taking the run
//! over once the lease runs out and finishing it from the last pushed
//! checkpoint — the scripted model's requests counted, none completed before
//! the kill sent again; two workers sharing a queue, each run done once;
//! enqueue refusals; pause, resume and cancel of queued runs from another
//! machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use agentops_runner::demo;
use agentops_testkit::TestContext;
use agentops_testkit::model::{Script, ScriptedServer};
use agentops_testkit::pg::{PgServer, TestDb};
use serde_json::Value;

mod common;

use common::GOAL;

struct Team {
    project: TestContext,
    remote: PathBuf,
    env: Vec<(&'static str, String)>,
    _db: TestDb,
    db_client: std::cell::RefCell<postgres::Client>,
}

fn slow(delay_ms: u64) -> Script {
    let mut s = demo::script();
    for r in &mut s.rules {
        r.reply.delay_ms = delay_ms;
    }
    if let Some(f) = &mut s.fallback {
        f.delay_ms = delay_ms;
    }
    s
}

impl Team {
    fn new(server: &PgServer) -> Self {
        let db = server.fresh_db().unwrap();
        let project = common::demo_project(true);
        let remote = project.path("../remote.git");
        let out = std::process::Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&remote)
            .output()
            .unwrap();
        assert!(out.status.success());
        project.git(&["remote", "add", "origin", &remote.to_string_lossy()]);
        project.git(&["push", "-q", "-u", "origin", "main"]);
        let env = server.child_env(&db);
        let db_client = std::cell::RefCell::new(db.client());
        Self {
            project,
            remote,
            env,
            _db: db,
            db_client,
        }
    }

    fn env_with(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut e = self.env.clone();
        e.extend(extra.iter().cloned());
        e
    }

    fn run(&self, args: &[&str], extra: &[(&'static str, String)]) -> agentops_testkit::Run {
        self.project.run_env(args, &self.env_with(extra))
    }

    fn enqueue(&self) -> String {
        let r = self.run(&["run", "--queue", "feature", GOAL, "--json"], &[]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v["run"].as_str().unwrap().to_owned()
    }

    fn worker(&self, name: &str, model: &ScriptedServer, extra: &[&str]) -> (Child, PathBuf) {
        let log = self.project.path(&format!("../{name}.log"));
        let dir = self.project.path(&format!("../{name}"));
        let mut args = vec![
            "worker".to_owned(),
            "--repo".into(),
            self.remote.to_string_lossy().into_owned(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
            "--lease".into(),
            "2".into(),
            "--poll".into(),
            "0.2".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.project.command(&refs);
        for (k, v) in self.env_with(&[
            ("AGENTOPS_HOST", name.to_owned()),
            ("AGENTOPS_LLM_OPENAI_BASE_URL", model.openai_base()),
        ]) {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    }

    fn sql_count(&self, sql: &str, run: &str) -> i64 {
        self.db_client
            .borrow_mut()
            .query_one(sql, &[&run])
            .unwrap()
            .get(0)
    }

    /// Response ids of the model calls the team journal recorded for `run`.
    fn recorded_reply_ids(&self, run: &str) -> HashSet<String> {
        self.db_client
            .borrow_mut()
            .query(
                "SELECT body FROM agentops.events WHERE run_id = $1 AND kind = 'llm.call'",
                &[&run],
            )
            .unwrap()
            .iter()
            .filter_map(|r| {
                let v: Value = serde_json::from_str(&r.get::<_, String>(0)).ok()?;
                (v["replayable"] == true)
                    .then(|| v["response"]["id"].as_str().map(str::to_owned))?
            })
            .collect()
    }

    fn queue_status(&self, run: &str) -> String {
        self.db_client
            .borrow_mut()
            .query_one(
                "SELECT status FROM agentops.queue WHERE run_id = $1",
                &[&run],
            )
            .unwrap()
            .get(0)
    }

    fn remote_has(&self, branch: &str) -> bool {
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["rev-parse", "-q", "--verify", branch])
            .output()
            .unwrap()
            .status
            .success()
    }

    fn remote_file(&self, branch: &str, path: &str) -> String {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["show", &format!("{branch}:{path}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn now_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child, log: &Path, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!(
                "worker did not finish in {timeout:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_workers_run_is_taken_over_and_no_completed_call_is_paid_twice() {
    let Some(server) = PgServer::from_env("worker takeover") else {
        return;
    };
    let team = Team::new(&server);
    // Calls one whole run makes, uninterrupted (the script is deterministic).
    let whole = ScriptedServer::start(demo::script()).unwrap();
    let r = team.run(
        &["run", "feature", GOAL],
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", whole.openai_base())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let per_run = whole.received().len();
    assert!(per_run >= 6, "the demo workflow makes {per_run} calls");

    let model = ScriptedServer::start(slow(150)).unwrap();
    let run = team.enqueue();
    assert_eq!(team.queue_status(&run), "queued");
    let branch = format!("agentops/run/{run}");
    let (mut a, a_log) = team.worker("host-a", &model, &[]);
    // Kill it once its first checkpoint is on the remote and a few more
    // calls of the next phase were answered.
    wait_for(
        "the first checkpoint on the remote",
        Duration::from_secs(90),
        || team.remote_has(&branch),
    );
    let at_checkpoint = model.count();
    wait_for("calls of the second phase", Duration::from_secs(60), || {
        model.count() >= at_checkpoint + 2
    });
    a.kill().unwrap(); // SIGKILL
    let killed_us = now_us();
    a.wait().unwrap();
    let before_kill = model.received();
    let recorded_at_kill = team.recorded_reply_ids(&run);
    let recorded_calls = recorded_at_kill.len();
    assert!(
        recorded_calls >= 2,
        "{}",
        std::fs::read_to_string(&a_log).unwrap()
    );
    assert!(
        recorded_calls < per_run,
        "the kill landed after the run's last call"
    );
    assert_eq!(team.queue_status(&run), "claimed");

    let (mut b, b_log) = team.worker("host-b", &model, &["--drain"]);
    let status = wait_exit(&mut b, &b_log, Duration::from_secs(120));
    let b_text = std::fs::read_to_string(&b_log).unwrap();
    eprintln!("{b_text}");
    assert!(status.success(), "{b_text}");
    assert!(
        b_text.contains(&format!("{run}  took over from host-a-")),
        "{b_text}"
    );
    // One takeover, which waited for the lease to run out: the last renewal
    // was at most a third of the 2 s lease before the kill, so not before
    // 4/3 s after it (a worker that did not wait would resume at once).
    let resumed: Vec<i64> = team
        .db_client
        .borrow_mut()
        .query(
            "SELECT ts FROM agentops.events WHERE run_id = $1 AND kind = 'run.resumed'",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(resumed.len(), 1);
    let waited_ms = (resumed[0] - killed_us) / 1000;
    assert!(
        (1_300..30_000).contains(&waited_ms),
        "resumed {waited_ms} ms after the kill\n{b_text}"
    );
    assert_eq!(team.queue_status(&run), "completed");

    // Exactly the calls not recorded were made again, none recorded twice.
    let after = model.received();
    assert_eq!(
        after.len() - before_kill.len(),
        per_run - recorded_calls,
        "{} calls after the kill, {recorded_calls} of {per_run} were recorded\n{b_text}",
        after.len() - before_kill.len()
    );
    for old in &before_kill {
        if old
            .reply_id
            .as_ref()
            .is_some_and(|r| recorded_at_kill.contains(r))
        {
            let repeats = after[before_kill.len()..]
                .iter()
                .filter(|n| n.body == old.body)
                .count();
            assert_eq!(repeats, 0, "completed call {} was sent again", old.n);
        }
    }
    // The finished work is on the remote: the fixed script and one learning.
    let greet = team.remote_file(&branch, "src/greet.sh");
    assert!(
        greet.contains("exit 2") && greet.contains("Hello, $1!"),
        "{greet}"
    );
    assert!(
        team.remote_file(&branch, &format!(".agents/runs/{run}.md"))
            .contains("feature")
    );
    // Every machine sees it: completed, in the team views.
    let runs: Value = serde_json::from_str(team.run(&["runs", "--json"], &[]).ok()).unwrap();
    let row = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run.as_str())
        .unwrap_or_else(|| panic!("{runs}"));
    assert_eq!(row["status"], "completed", "{row}");
    // Both workers' events are in the team store, tagged with their hosts.
    let hosts: i64 = team.sql_count(
        "SELECT count(DISTINCT host) FROM agentops.events WHERE run_id = $1",
        &run,
    );
    assert_eq!(hosts, 2, "host-a and host-b");
}

#[test]
fn two_workers_share_a_queue_and_a_remote_away_mid_run_is_retried() {
    let Some(server) = PgServer::from_env("two workers share a queue") else {
        return;
    };
    let team = Team::new(&server);
    let model = ScriptedServer::start(slow(100)).unwrap();
    let first = team.enqueue();
    let (mut a, a_log) = team.worker("host-a", &model, &["--drain"]);
    // The remote goes away once the run is under way (fetched, calling the
    // model): its first checkpoint cannot be pushed.
    wait_for("the first model call", Duration::from_secs(60), || {
        model.count() >= 1
    });
    let away = team.remote.with_extension("away");
    std::fs::rename(&team.remote, &away).unwrap();
    wait_for("the run back in the queue", Duration::from_secs(60), || {
        std::fs::read_to_string(&a_log)
            .unwrap()
            .contains(&format!("{first}  back to the queue"))
    });
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert!(
        log.contains("cannot publish checkpoint") && log.contains("push to `origin` failed"),
        "{log}"
    );
    std::fs::rename(&away, &team.remote).unwrap();
    // More runs, and a second worker with two slots.
    let more: Vec<String> = (0..3).map(|_| team.enqueue()).collect();
    let (mut b, b_log) = team.worker("host-b", &model, &["--drain", "--concurrency", "2"]);
    for (c, log) in [(&mut a, &a_log), (&mut b, &b_log)] {
        let s = wait_exit(c, log, Duration::from_secs(180));
        assert!(s.success(), "{}", std::fs::read_to_string(log).unwrap());
    }
    let logs = format!(
        "{}\n{}",
        std::fs::read_to_string(&a_log).unwrap(),
        std::fs::read_to_string(&b_log).unwrap()
    );
    for run in std::iter::once(&first).chain(&more) {
        assert_eq!(team.queue_status(run), "completed", "{run}\n{logs}");
        assert_eq!(
            logs.matches(&format!("{run}  completed")).count(),
            1,
            "{run} completed once\n{logs}"
        );
        let greet = team.remote_file(&format!("agentops/run/{run}"), "src/greet.sh");
        assert!(greet.contains("exit 2"), "{run}: {greet}");
    }
    // The run that met the missing remote paid for no call twice: its
    // journal holds as many recorded calls as a whole run makes, and the
    // model saw four runs' worth plus nothing.
    let calls: Vec<i64> = std::iter::once(&first)
        .chain(&more)
        .map(|r| {
            team.sql_count(
                "SELECT count(*) FROM agentops.events WHERE run_id = $1 AND kind = 'llm.call'",
                r,
            )
        })
        .collect();
    assert!(calls.iter().all(|&c| c == calls[1]), "{calls:?}");
    assert_eq!(model.count() as i64, calls.iter().sum::<i64>(), "{logs}");
    // Both workers worked; `workers --all` lists them, stopped.
    let w: Value =
        serde_json::from_str(team.run(&["workers", "--all", "--json"], &[]).ok()).unwrap();
    let ids: Vec<&str> = w["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["host"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"host-a") && ids.contains(&"host-b"), "{w}");
    assert!(
        w["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["alive"] == false)
    );
    assert_eq!(w["queue"].as_array().unwrap().len(), 0, "{w}");
}

#[test]
fn enqueue_refusals_and_pause_resume_cancel_from_another_machine() {
    let Some(server) = PgServer::from_env("enqueue refusals") else {
        return;
    };
    let team = Team::new(&server);
    // No team store.
    let r = team.project.run(&["run", "--queue", "feature", GOAL]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no team store"), "{}", r.stderr);
    // A workflow that is not there: nothing queued.
    let r = team.run(&["run", "--queue", "nope", GOAL], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
    // A base commit the remote does not have.
    team.project.write("notes.txt", "local only\n");
    team.project.git(&["add", "notes.txt"]);
    team.project.git(&["commit", "-q", "-m", "unpushed"]);
    let r = team.run(&["run", "--queue", "feature", GOAL], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("push it first"), "{}", r.stderr);
    team.project.git(&["reset", "-q", "--hard", "origin/main"]);
    let mut c = team.db_client.borrow_mut();
    let n: i64 = c
        .query_one("SELECT count(*) FROM agentops.queue", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(c);

    // A worker never works in a person's repository: its clone's checkout
    // is reset before every run.
    let r = team.run(
        &[
            "worker",
            "--repo",
            &team.remote.to_string_lossy(),
            "--dir",
            &team.project.path(".").to_string_lossy(),
            "--drain",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("did not clone"), "{}", r.stderr);
    let r = team.run(&["worker", "--lease", "0", "--drain"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--lease 0"), "{}", r.stderr);

    // Another machine: its own repository, the same team store.
    let other = TestContext::new(common::BIN);
    other.run(&["init"]).ok();
    let on_b =
        |args: &[&str]| other.run_env(args, &team.env_with(&[("AGENTOPS_HOST", "host-b".into())]));
    let x = team.enqueue();
    let r = on_b(&["pause", &x[..12]]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("paused in the queue"), "{}", r.stdout);
    assert_eq!(team.queue_status(&x), "paused");
    let runs: Value = serde_json::from_str(on_b(&["runs", "--json"]).ok()).unwrap();
    assert_eq!(runs[0]["id"], x.as_str(), "{runs}");
    assert_eq!(runs[0]["status"], "paused", "{runs}");
    assert_eq!(on_b(&["resume", &x]).code, 0);
    assert_eq!(team.queue_status(&x), "queued");
    let r = on_b(&["resume", &x]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("queued already"), "{}", r.stderr);
    assert_eq!(on_b(&["cancel", &x]).code, 0);
    assert_eq!(team.queue_status(&x), "cancelled");
    let r = on_b(&["pause", &x]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cancelled in the queue"), "{}", r.stderr);
    // A worker finds nothing to do: the cancelled run is never started.
    let model = ScriptedServer::start(slow(150)).unwrap();
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(60)).success());
    assert_eq!(model.count(), 0);

    // A running run paused from the other machine, resumed, finished.
    let y = team.enqueue();
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    wait_for("the run under way", Duration::from_secs(60), || {
        model.count() >= 1
    });
    let r = on_b(&["pause", &y]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(on worker host-a-"), "{}", r.stdout);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(60)).success());
    assert_eq!(team.queue_status(&y), "paused");
    let shown: Value = serde_json::from_str(on_b(&["show", &y, "--json"]).ok()).unwrap();
    assert_eq!(shown["status"], "paused", "{shown}");
    assert_eq!(on_b(&["resume", &y]).code, 0);
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(120)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("{y}  resuming feature")), "{text}");
    assert_eq!(team.queue_status(&y), "completed", "{text}");
}

#[test]
fn an_approval_from_another_machine_sends_a_paused_run_back_to_the_queue_and_it_lands() {
    let Some(server) = PgServer::from_env("approval of a queued run") else {
        return;
    };
    let team = Team::new(&server);
    // The review phase waits for a person's sign-off.
    let wf = team.project.path(".agents/workflows/feature.toml");
    let text = std::fs::read_to_string(&wf).unwrap();
    std::fs::write(
        &wf,
        text.replace(
            "needs = [\"implement\"]\n",
            "needs = [\"implement\"]\ngates = [\"signoff\"]\n",
        ),
    )
    .unwrap();
    let cfg = team.project.path(".agents/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[gates.signoff]\nkind = \"approval\"\ndescription = \"a person reads the review\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    team.project
        .git(&["commit", "-q", "-am", "sign-off before review"]);
    team.project.git(&["push", "-q"]);
    let model = ScriptedServer::start(demo::script()).unwrap();
    let run = team.enqueue();
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(120)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(team.queue_status(&run), "paused", "{text}");
    assert!(text.contains("paused (approval)"), "{text}");

    let other = TestContext::new(common::BIN);
    other.run(&["init"]).ok();
    let env = team.env_with(&[("AGENTOPS_HOST", "host-b".into())]);
    let pending = other.run_env(&["gate", "pending"], &env);
    let r = other.run_env(&["approve", &run, "--gate", "signoff"], &env);
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, pending.stdout);
    assert!(r.stdout.contains("queued again"), "{}", r.stdout);
    assert_eq!(team.queue_status(&run), "queued");
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(120)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(team.queue_status(&run), "completed", "{text}");
    // Landed from the machine that queued it: the branch comes from the
    // remote, the run from the team store.
    let r = team.run(&["land", &run], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        team.project
            .git(&["show", "main:src/greet.sh"])
            .contains("exit 2")
    );
    let shown: Value = serde_json::from_str(team.run(&["show", &run, "--json"], &[]).ok()).unwrap();
    assert_eq!(shown["status"], "landed", "{shown}");
}

#[test]
fn ctrl_c_hands_a_workers_runs_back_to_the_queue_at_once() {
    let Some(server) = PgServer::from_env("ctrl-c hands runs back") else {
        return;
    };
    let team = Team::new(&server);
    let model = ScriptedServer::start(slow(150)).unwrap();
    let run = team.enqueue();
    let (mut a, a_log) = team.worker("host-a", &model, &[]);
    wait_for("the run under way", Duration::from_secs(60), || {
        model.count() >= 2
    });
    let sent = std::process::Command::new("kill")
        .args(["-INT", &a.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_exit(&mut a, &a_log, Duration::from_secs(30));
    let text = std::fs::read_to_string(&a_log).unwrap();
    assert!(status.success(), "{text}");
    assert!(text.contains("go back to the queue"), "{text}");
    // Back in the queue at once, not after its lease.
    assert_eq!(team.queue_status(&run), "queued", "{text}");
    let started = Instant::now();
    let (mut b, b_log) = team.worker("host-b", &model, &["--drain"]);
    assert!(wait_exit(&mut b, &b_log, Duration::from_secs(120)).success());
    let text = std::fs::read_to_string(&b_log).unwrap();
    assert!(text.contains(&format!("{run}  resuming feature")), "{text}");
    assert!(!text.contains("took over"), "{text}");
    assert_eq!(team.queue_status(&run), "completed", "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn the_team_store_dropping_every_connection_mid_run_loses_nothing() {
    let Some(server) = PgServer::from_env("team store restart mid-run") else {
        return;
    };
    let team = Team::new(&server);
    let model = ScriptedServer::start(slow(150)).unwrap();
    let run = team.enqueue();
    let (mut w, log) = team.worker("host-a", &model, &["--drain"]);
    wait_for("the run under way", Duration::from_secs(60), || {
        model.count() >= 2
    });
    // What a server restart does to every client: their connections end.
    let n: i64 = team
        .db_client
        .borrow_mut()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(n >= 2, "the worker's connections: {n}");
    let status = wait_exit(&mut w, &log, Duration::from_secs(120));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert_eq!(team.queue_status(&run), "completed", "{text}");
    let greet = team.remote_file(&format!("agentops/run/{run}"), "src/greet.sh");
    assert!(greet.contains("exit 2"), "{greet}\n{text}");
    // Every call the journal recorded was paid once: the model saw the
    // recorded calls plus at most the ones whose recording was cut off.
    let recorded = team.recorded_reply_ids(&run).len();
    assert!(
        model.count() >= recorded && model.count() <= recorded + 2,
        "{} calls, {recorded} recorded\n{text}",
        model.count()
    );
}

#[test]
fn kill_nine_of_a_worker_at_random_instants_then_takeover_pays_nothing_twice() {
    let Some(server) = PgServer::from_env("worker kill -9 at random instants") else {
        return;
    };
    let team = Team::new(&server);
    let model = ScriptedServer::start(slow(40)).unwrap();
    // One whole queued run: its calls and how long it takes from the
    // worker's start.
    let first = team.enqueue();
    let t = Instant::now();
    let (mut w, log) = team.worker("whole", &model, &["--drain"]);
    assert!(wait_exit(&mut w, &log, Duration::from_secs(120)).success());
    let full = t.elapsed();
    assert_eq!(team.queue_status(&first), "completed");
    let per_run = model.count();
    let want = team.remote_file(&format!("agentops/run/{first}"), "src/greet.sh");
    let mut rand = common::xorshift(
        std::env::var("AGENTOPS_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x7a3e_11d5_9c01),
    );
    let mut mid_run = 0;
    // Six kills; more (up to 18) while fewer than two landed mid-run (one
    // that lands while the worker clones proves nothing either way).
    let mut trial = 0;
    while trial < 6 || (mid_run < 2 && trial < 18) {
        trial += 1;
        let run = team.enqueue();
        let before = model.count();
        let (mut a, _) = team.worker(&format!("a{trial}"), &model, &[]);
        let at = Duration::from_micros(rand() % (full.as_micros() as u64).max(1));
        std::thread::sleep(at);
        a.kill().unwrap(); // SIGKILL
        a.wait().unwrap();
        let sent_at_kill = model.received();
        let recorded = team.recorded_reply_ids(&run);
        if !recorded.is_empty() && recorded.len() < per_run {
            mid_run += 1;
        }
        let (mut b, b_log) = team.worker(&format!("b{trial}"), &model, &["--drain"]);
        let s = wait_exit(&mut b, &b_log, Duration::from_secs(120));
        let text = std::fs::read_to_string(&b_log).unwrap();
        assert!(s.success(), "trial {trial}: {text}");
        assert_eq!(
            team.queue_status(&run),
            "completed",
            "trial {trial}: {text}"
        );
        let branch = format!("agentops/run/{run}");
        assert_eq!(
            team.remote_file(&branch, "src/greet.sh"),
            want,
            "trial {trial}"
        );
        // Exactly the calls not recorded at the kill were made again.
        let after = model.received();
        let this_run = sent_at_kill.len() - before;
        assert_eq!(
            after.len() - sent_at_kill.len(),
            per_run - recorded.len(),
            "trial {trial} (killed after {at:?}, {this_run} calls sent, {} recorded): {text}",
            recorded.len()
        );
        for old in &sent_at_kill[before..] {
            if old.reply_id.as_ref().is_some_and(|r| recorded.contains(r)) {
                assert_eq!(
                    after[sent_at_kill.len()..]
                        .iter()
                        .filter(|n| n.body == old.body)
                        .count(),
                    0,
                    "trial {trial}: completed call {} was sent again",
                    old.n
                );
            }
        }
    }
    assert!(
        mid_run >= 2,
        "only {mid_run} of {trial} kills landed mid-run"
    );
}
