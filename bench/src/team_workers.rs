//! Issue 21's worker figures: queued runs of the demo workflow (scripted
//! model on loopback) drained by three worker processes, beside the same
//! runs one after another with `agentops run`; and the time from a worker's
//! kill -9 to another worker resuming its run, against the lease.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentops_core::RunId;
use agentops_llm::scripted::{Script, ScriptedServer};
use agentops_runner::demo;
use agentops_store::Journal;
use agentops_testkit::pg::{PgServer, TestDb};

const GOAL: &str = "greet.sh must greet as 'Hello, NAME!' and refuse an empty name";

pub struct Figures {
    pub runs: usize,
    pub workers: usize,
    pub runs_per_min: f64,
    pub sequential_per_min: f64,
    pub sequential_runs: usize,
    pub lease: Duration,
    pub takeovers: Vec<Duration>,
}

struct Project {
    root: PathBuf,
    remote: PathBuf,
    env: Vec<(&'static str, String)>,
    bin: PathBuf,
}

fn ok(c: &mut Command) -> String {
    let o = c.output().expect("spawn");
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Project {
    fn new(base: &Path, server: &PgServer, db: &TestDb, bin: &Path) -> Self {
        let root = base.join("project");
        let remote = base.join("remote.git");
        std::fs::create_dir_all(&root).expect("mkdir");
        let env = vec![
            ("PGPASSWORD", server.password.clone()),
            ("AGENTOPS_STORE_URL", db.url.clone()),
            ("GIT_AUTHOR_NAME", "Bench".to_owned()),
            ("GIT_AUTHOR_EMAIL", "bench@example.com".to_owned()),
            ("GIT_COMMITTER_NAME", "Bench".to_owned()),
            ("GIT_COMMITTER_EMAIL", "bench@example.com".to_owned()),
        ];
        let p = Self {
            root,
            remote,
            env,
            bin: bin.to_path_buf(),
        };
        p.git(&["init", "-q", "-b", "main"]);
        for (path, text) in demo::FILES {
            let f = p.root.join(path);
            std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            std::fs::write(&f, text).expect("write");
        }
        p.agentops(&["init", "-q"], &[]);
        let cfg = p.root.join(".agents/config.toml");
        let mut text = std::fs::read_to_string(&cfg).expect("config");
        text.push_str(demo::GATES);
        std::fs::write(&cfg, text).expect("config");
        for (title, body, tags) in demo::LEARNINGS {
            let mut args = vec!["learn", title, "--body", body, "-q"];
            for t in *tags {
                args.extend(["--tag", t]);
            }
            p.agentops(&args, &[]);
        }
        p.git(&["add", "-A"]);
        p.git(&["commit", "-q", "-m", "project"]);
        ok(Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&p.remote));
        p.git(&["remote", "add", "origin", &p.remote.to_string_lossy()]);
        p.git(&["push", "-q", "-u", "origin", "main"]);
        p
    }

    fn git(&self, args: &[&str]) -> String {
        let mut c = Command::new("git");
        c.args(args).current_dir(&self.root);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        ok(&mut c)
    }

    fn command(&self, args: &[&str], extra: &[(&str, String)]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).current_dir(&self.root);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    fn agentops(&self, args: &[&str], extra: &[(&str, String)]) -> String {
        ok(&mut self.command(args, extra))
    }

    fn enqueue(&self) -> String {
        let out = self.agentops(&["run", "--queue", "feature", GOAL, "--json"], &[]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["run"].as_str().expect("run").to_owned()
    }

    fn worker(&self, name: &str, model: &ScriptedServer, lease: Duration, drain: bool) -> Child {
        let dir = self.root.with_file_name(format!("worker-{name}"));
        let lease = format!("{}", lease.as_secs_f64());
        let mut args = vec![
            "worker",
            "--repo",
            self.remote.to_str().expect("utf-8"),
            "--dir",
            dir.to_str().expect("utf-8"),
            "--lease",
            &lease,
            "--poll",
            "0.2",
        ];
        if drain {
            args.push("--drain");
        }
        self.command(
            &args,
            &[
                ("AGENTOPS_HOST", name.to_owned()),
                ("AGENTOPS_LLM_OPENAI_BASE_URL", model.openai_base()),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
    }

    fn remote_has(&self, branch: &str) -> bool {
        Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["rev-parse", "-q", "--verify", branch])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

fn slow(ms: u64) -> Script {
    let mut s = demo::script();
    for r in &mut s.rules {
        r.reply.delay_ms = ms;
    }
    if let Some(f) = &mut s.fallback {
        f.delay_ms = ms;
    }
    s
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn measure(server: &PgServer, bin: &Path, base: &Path, quick: bool) -> Figures {
    let db = server.fresh_db().expect("database");
    let p = Project::new(base, server, &db, bin);
    let model = ScriptedServer::start(demo::script()).expect("scripted model");
    let model_env = [("AGENTOPS_LLM_OPENAI_BASE_URL", model.openai_base())];

    // The baseline: runs one after another in the project, `agentops run`.
    let sequential_runs = if quick { 3 } else { 10 };
    let t = Instant::now();
    for _ in 0..sequential_runs {
        p.agentops(&["run", "feature", GOAL, "-q"], &model_env);
    }
    let sequential_per_min = sequential_runs as f64 / t.elapsed().as_secs_f64() * 60.0;

    // Three workers draining the queue.
    let runs = if quick { 9 } else { 30 };
    let ids: Vec<String> = (0..runs).map(|_| p.enqueue()).collect();
    let t = Instant::now();
    let mut ws: Vec<Child> = (0..3)
        .map(|i| p.worker(&format!("w{i}"), &model, Duration::from_secs(30), true))
        .collect();
    for w in &mut ws {
        assert!(w.wait().expect("worker").success(), "a worker failed");
    }
    let elapsed = t.elapsed();
    let runs_per_min = runs as f64 / elapsed.as_secs_f64() * 60.0;
    let team = Journal::team(db.store(), &Default::default()).expect("journal");
    for id in &ids {
        let row = db.store().queued(id).expect("queue").expect("row");
        assert_eq!(row.status.as_str(), "completed", "run {id}: {}", row.detail);
    }

    // Takeovers: a worker killed mid-run; another, idle, resumes the run.
    let lease = Duration::from_secs(3);
    let trials = if quick { 2 } else { 5 };
    let slow_model = ScriptedServer::start(slow(100)).expect("scripted model");
    let mut takeovers = Vec::new();
    for k in 0..trials {
        let mut victim = p.worker(&format!("victim{k}"), &slow_model, lease, false);
        let run = p.enqueue();
        let id = RunId::parse(&run).expect("id");
        let branch = format!("agentops/run/{run}");
        wait("the victim's claim", Duration::from_secs(60), || {
            db.store()
                .queued(&run)
                .ok()
                .flatten()
                .is_some_and(|r| r.status.as_str() == "claimed")
        });
        // The standby is up and polling before the kill (its start-up is
        // not what is measured).
        let mut standby = p.worker("standby", &slow_model, lease, true);
        wait("the standby", Duration::from_secs(60), || {
            db.store()
                .workers(false)
                .is_ok_and(|ws| ws.iter().any(|w| w.host == "standby" && w.alive))
        });
        wait("a pushed checkpoint", Duration::from_secs(120), || {
            p.remote_has(&branch)
        });
        victim.kill().expect("kill -9");
        let killed = Instant::now();
        let _ = victim.wait();
        wait("the takeover", lease + Duration::from_secs(30), || {
            agentops_runner::worker::resumed_at(&team, &id).is_ok_and(|r| !r.is_empty())
        });
        takeovers.push(killed.elapsed());
        assert!(
            standby.wait().expect("standby").success(),
            "the standby failed"
        );
        let row = db.store().queued(&run).expect("queue").expect("row");
        assert_eq!(row.status.as_str(), "completed", "{}", row.detail);
        assert_eq!(row.takeovers, 1);
    }
    Figures {
        runs,
        workers: 3,
        runs_per_min,
        sequential_per_min,
        sequential_runs,
        lease,
        takeovers,
    }
}
