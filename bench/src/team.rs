//! Issue 21 figures, on a real PostgreSQL server on loopback (the one
//! `AGENTOPS_PG_URL` names, else one `.ci/postgres start` starts and the
//! suite stops): batched appends to the team store beside the same batches
//! to SQLite; the forwarder's throughput over a backlog and its lag behind a
//! busy journal; hook latency with `store.url` on Postgres beside without;
//! three workers draining queued demo runs beside the same runs one after
//! another, and kill -9 to takeover (`team_workers.rs`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentops_core::config::Synchronous;
use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::forward::{self, Forwarder};
use agentops_store::pg::Tag;
use agentops_store::{Durability, Journal, OpenOptions, SqliteStore};
use agentops_testkit::pg::PgServer;
use serde_json::json;

use crate::stats::{Samples, ms, time_interleaved};

/// A tool-call event as a hook records it: about 400 bytes of JSON.
fn event(run: &RunId, i: usize) -> NewEvent {
    NewEvent::now(
        run.clone(),
        EventKind::ToolCall,
        json!({
            "tool": "Bash",
            "input": {"command": format!("cargo test -p agentops-store --test sqlite -- case_{i}"), "description": "Run the store tests"},
            "duration_ms": 1234,
            "ok": true,
            "cwd": "/home/dev/projects/agentops",
            "output_tail": "test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.36s",
        }),
    )
    .in_span(SpanId::generate(), None)
}

fn sqlite(path: &Path) -> SqliteStore {
    SqliteStore::open(
        path,
        OpenOptions {
            create: true,
            busy_timeout_ms: 10_000,
            synchronous: Synchronous::Full,
            read_only: false,
        },
    )
    .expect("open sqlite")
}

/// The server to measure on, and the directory of one this suite started.
pub struct Server {
    pub pg: PgServer,
    started: Option<String>,
}

impl Server {
    pub fn get() -> Self {
        if let Some(pg) = PgServer::from_env("bench") {
            return Self { pg, started: None };
        }
        let o = Command::new(".ci/postgres")
            .arg("start")
            .output()
            .expect("run .ci/postgres start (from the repository root)");
        assert!(
            o.status.success(),
            ".ci/postgres start failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let var = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{k} missing from .ci/postgres start: {text}"))
                .to_owned()
        };
        Self {
            pg: PgServer {
                url: var("AGENTOPS_PG_URL"),
                password: var("AGENTOPS_PG_PASSWORD"),
            },
            started: Some(var("AGENTOPS_PG_DIR")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new(".ci/postgres").args(["stop", dir]).output();
        }
    }
}

pub fn run(quick: bool) {
    let server = Server::get();
    let tmp = tempfile::tempdir().expect("tempdir");
    let total = if quick { 40_000 } else { 200_000 };
    let run_id = RunId::generate();

    // 1. Batched appends, 1,000 per transaction, durable (fsync per commit
    //    on both: synchronous_commit=on, synchronous=FULL).
    let db = server.pg.fresh_db().expect("database");
    let team = Journal::team(db.store(), &Default::default()).expect("journal");
    let local = Journal::new(Box::new(sqlite(&tmp.path().join("batched.db"))), &[]).expect("j");
    let mut rates = Vec::new();
    for j in [&team, &local] {
        let t = Instant::now();
        for chunk in 0..total / 1000 {
            let batch: Vec<NewEvent> = (0..1000)
                .map(|i| event(&run_id, chunk * 1000 + i))
                .collect();
            j.append_batch(batch, Durability::Sync).expect("append");
        }
        rates.push(total as f64 / t.elapsed().as_secs_f64());
    }
    assert_eq!(team.count().expect("count"), total as u64);

    // 2. The forwarder over a backlog: `total` events in a local journal,
    //    passes until the team store holds them all.
    let db2 = server.pg.fresh_db().expect("database");
    let backlog = sqlite(&tmp.path().join("backlog.db"));
    {
        let j = Journal::new(Box::new(sqlite(&tmp.path().join("backlog.db"))), &[]).expect("j");
        for chunk in 0..total / 1000 {
            let batch: Vec<NewEvent> = (0..1000)
                .map(|i| event(&run_id, chunk * 1000 + i))
                .collect();
            j.append_batch(batch, Durability::Sync).expect("append");
        }
    }
    let team2 = db2.store();
    let tag = Tag {
        host: "bench-host".into(),
        user: "bench".into(),
    };
    let t = Instant::now();
    let mut f = Forwarder::claim(&backlog, &team2, tag.clone()).expect("claim");
    let mut sent = 0;
    loop {
        let r = f.pass().expect("pass");
        sent += r.sent;
        if r.watermark >= r.local_last {
            break;
        }
    }
    let fwd_rate = sent as f64 / t.elapsed().as_secs_f64();
    assert_eq!(sent, total);
    drop(f);

    // 3. Lag: a journal taking 1,000 events/s (50 every 50 ms) while
    //    `store push --follow`'s loop (1 s poll) forwards it; the lag of a
    //    batch is from its local commit to the team store holding it.
    let db3 = server.pg.fresh_db().expect("database");
    let path3 = tmp.path().join("busy.db");
    let busy = Arc::new(Journal::new(Box::new(sqlite(&path3)), &[]).expect("j"));
    let origin = forward::origin_of(busy.store()).expect("origin");
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let stop = stop.clone();
        let target = db3.target();
        let tag = tag.clone();
        let path3 = path3.clone();
        std::thread::spawn(move || {
            let store = sqlite(&path3);
            forward::follow(
                &store,
                &target,
                &tag,
                Duration::from_secs(1),
                &|| stop.load(Ordering::Relaxed),
                &mut |r| {
                    if let Err(e) = r {
                        eprintln!("forwarding: {e}");
                    }
                },
            )
            .expect("follow");
        })
    };
    let seconds = if quick { 5 } else { 20 };
    let mut appended: Vec<(i64, Instant)> = Vec::new();
    let watcher = db3.store();
    let mut lags = Vec::new();
    let t = Instant::now();
    let mut next = Instant::now();
    let mut i = 0;
    while t.elapsed() < Duration::from_secs(seconds) || !appended.is_empty() {
        if t.elapsed() < Duration::from_secs(seconds) && Instant::now() >= next {
            let batch: Vec<NewEvent> = (0..50).map(|k| event(&run_id, i + k)).collect();
            i += 50;
            let seqs = busy.append_batch(batch, Durability::Sync).expect("append");
            appended.push((*seqs.last().expect("seq"), Instant::now()));
            next += Duration::from_millis(50);
        }
        let through = watcher.forwarded_through(&origin).expect("through");
        let now = Instant::now();
        appended.retain(|(seq, at)| {
            if *seq <= through {
                lags.push(now - *at);
                false
            } else {
                true
            }
        });
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            t.elapsed() < Duration::from_secs(seconds + 60),
            "the forwarder fell behind"
        );
    }
    stop.store(true, Ordering::Relaxed);
    follower.join().expect("follower");
    let lag = Samples::new(lags);

    // 4. Hook latency: a PreToolUse hook, whole process, in a repository
    //    without store.url and in one with store.url on the server
    //    (interleaved, same run).
    let bin = crate::agentops_bin();
    let db4 = server.pg.fresh_db().expect("database");
    let mk = |name: &str, url: Option<&str>| {
        let repo = tmp.path().join(name);
        std::fs::create_dir_all(&repo).expect("mkdir");
        let ok = |c: &mut Command| assert!(c.status().expect("spawn").success());
        ok(Command::new("git")
            .args(["init", "-q", "-b", "main"])
            .current_dir(&repo));
        ok(Command::new(&bin).args(["init", "-q"]).current_dir(&repo));
        if let Some(url) = url {
            let cfg = repo.join(".agents/config.toml");
            let text = std::fs::read_to_string(&cfg).expect("config");
            assert!(
                text.contains("[store]\n"),
                "no [store] table in {}",
                cfg.display()
            );
            let text = text.replacen("[store]\n", &format!("[store]\nurl = \"{url}\"\n"), 1);
            std::fs::write(&cfg, text).expect("config");
        }
        repo
    };
    let plain = mk("plain", None);
    let teamed = mk("team", Some(&db4.url));
    let pre = |repo: &Path| {
        json!({"session_id": "bench-session-0001", "cwd": repo, "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": "cargo test -p shop-auth"},
            "tool_use_id": "toolu_pre"})
        .to_string()
        .into_bytes()
    };
    let (pre_plain, pre_team) = (pre(&plain), pre(&teamed));
    let bin_s = bin.to_str().expect("utf-8");
    let argv: &[&str] = &[bin_s, "hook", "claude"];
    let n = if quick { 100 } else { 400 };
    let hooks = time_interleaved(
        &[
            (argv, &plain, Some(&pre_plain)),
            (argv, &teamed, Some(&pre_team)),
        ],
        n,
    );
    // Hooks never reached the server: its events wait in the local journal.
    let j = Journal::team(db4.store(), &Default::default()).expect("journal");
    assert_eq!(j.count().expect("count"), 0, "a hook wrote to Postgres");

    // 5. Workers: queued demo runs drained by three workers, beside the
    //    same runs one after another; kill -9 to takeover.
    let wf = crate::team_workers::measure(&server.pg, &bin, tmp.path(), quick);
    let take = Samples::new(wf.takeovers.clone());

    println!("## team ({})", if quick { "quick" } else { "full" });
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    println!(
        "| batched append to Postgres, 1,000 events/tx, synchronous_commit=on, redacted | {:.0} events/s ({total} events) | SQLite, synchronous=FULL: {:.0} events/s | ≥ 20,000 events/s |",
        rates[0], rates[1]
    );
    println!(
        "| forwarder throughput, a {total}-event backlog, 2,000 events/tx | {fwd_rate:.0} events/s | – | – |"
    );
    println!(
        "| forwarder lag (1 s poll), journal taking 1,000 events/s for {seconds} s | median {} · p99 {} · max {} | – | – |",
        ms(lag.median()),
        ms(lag.pct(0.99)),
        ms(lag.pct(1.0))
    );
    println!(
        "| hook latency, PreToolUse, whole process, `store.url` on Postgres | median {} · p99 {} | no `store.url`: median {} · p99 {} | unchanged |",
        ms(hooks[1].median()),
        ms(hooks[1].pct(0.99)),
        ms(hooks[0].median()),
        ms(hooks[0].pct(0.99))
    );
    println!(
        "| {} queued runs of the demo workflow (scripted model), {} workers (`agentops worker --drain`) | {:.1} runs/min | one after another (`agentops run`, {} runs): {:.1} runs/min | – |",
        wf.runs, wf.workers, wf.runs_per_min, wf.sequential_runs, wf.sequential_per_min
    );
    println!(
        "| kill -9 of a worker mid-run → another worker resumes it (run.resumed), lease {:.0} s, {} trials | median {} · max {} | – | ≤ lease + 2 s |",
        wf.lease.as_secs_f64(),
        wf.takeovers.len(),
        ms(take.median()),
        ms(take.pct(1.0))
    );
    let takeover_ok = take.pct(1.0) <= wf.lease + Duration::from_secs(2);
    let unchanged =
        hooks[1].median().as_secs_f64() <= hooks[0].median().as_secs_f64() * 1.10 + 0.0002;
    let pass = rates[0] >= 20_000.0 && unchanged && takeover_ok;
    println!();
    println!("targets met: {}", if pass { "yes" } else { "NO" });
}
