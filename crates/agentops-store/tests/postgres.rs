//! The team store on a real PostgreSQL server (see `.ci/postgres`): the
//! conformance suite SQLite passes, then what only a server has —
//! migrations under a lock, a newer schema refused, a wrong password, a
//! server that goes away and comes back, concurrent appenders whose
//! positions commit in order, forwarded batches stored once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use agentops_core::{EventKind, NewEvent, RunId};
use agentops_store::pg::{Forwarded, PgOptions, PgStore, Tag, Target};
use agentops_store::{Durability, EventLog, Query, Rollups, Store, StoreError};
use agentops_testkit::pg::PgServer;
use agentops_testkit::store_conformance as conformance;

fn ev(run: &RunId, ts: i64, kind: EventKind, body: serde_json::Value) -> NewEvent {
    NewEvent {
        ts,
        run_id: run.clone(),
        span_id: None,
        parent_span_id: None,
        kind,
        body,
    }
}

#[test]
fn conformance_suite_on_postgres() {
    let Some(server) = PgServer::from_env("conformance_suite_on_postgres") else {
        return;
    };
    // Each fresh store is its own database, kept until the suite ends.
    let dbs = std::sync::Mutex::new(Vec::new());
    let outcome = conformance::run_all(&|| {
        let db = server.fresh_db().unwrap();
        let store = db.store();
        dbs.lock().unwrap().push(db);
        Box::new(store) as Box<dyn Store>
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn two_processes_migrating_at_once_apply_each_version_once() {
    let Some(server) = PgServer::from_env("two_processes_migrating_at_once") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let t = Arc::new(db.target());
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                PgStore::open((*t).clone(), PgOptions { migrate: true }).map(|_| ())
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    let mut c = db.client();
    let n: i64 = c
        .query_one("SELECT count(*) FROM agentops.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, agentops_store::pg::PG_SCHEMA_VERSION);
    // Opening without migrating a database that has the schema works;
    // one without it is told to migrate.
    PgStore::open(db.target(), PgOptions { migrate: false }).unwrap();
    let empty = server.fresh_db().unwrap();
    let e = PgStore::open(empty.target(), PgOptions { migrate: false }).unwrap_err();
    assert!(
        e.to_string().contains("run `agentops store migrate`"),
        "{e}"
    );
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let Some(server) = PgServer::from_env("a_newer_schema_is_refused_untouched") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    drop(db.store());
    let mut c = db.client();
    c.execute(
        "INSERT INTO agentops.schema_version (version, applied_ts) VALUES (99, 0)",
        &[],
    )
    .unwrap();
    let e = PgStore::open(db.target(), PgOptions { migrate: true }).unwrap_err();
    assert!(
        matches!(e, StoreError::PostgresNewerSchema { found: 99, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("newer than this agentops supports"), "{msg}");
    assert!(msg.starts_with("postgres://agentops@127.0.0.1:"), "{msg}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM agentops.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        n,
        agentops_store::pg::PG_SCHEMA_VERSION + 1,
        "nothing was migrated or removed"
    );
}

#[test]
fn a_wrong_password_and_an_unreachable_server_say_what_to_do() {
    let Some(server) = PgServer::from_env("a_wrong_password") else {
        return;
    };
    let wrong = |k: &str| (k == "PGPASSWORD").then(|| "not-the-password".to_owned());
    let t = Target::resolve(&server.url, &wrong).unwrap();
    let e = PgStore::open(t, PgOptions { migrate: true })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("authentication failed for user `agentops`"),
        "{e}"
    );
    assert!(
        e.contains("PGPASSWORD") && !e.contains("not-the-password"),
        "{e}"
    );
    // A port nothing listens on: a clear error after the retries.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Target::resolve(
        &format!("postgres://agentops@127.0.0.1:{port}/x"),
        &server.env(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = PgStore::open(t, PgOptions { migrate: true })
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot reach the team store"), "{e}");
    assert!(
        e.contains(&format!("postgres://agentops@127.0.0.1:{port}/x")),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A database that is not there.
    let t = Target::resolve(&server.url, &server.env())
        .unwrap()
        .with_dbname("no_such_db_here");
    let e = PgStore::open(t, PgOptions { migrate: true })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("database `no_such_db_here` does not exist"),
        "{e}"
    );
}

#[test]
fn concurrent_appenders_commit_positions_in_order() {
    let Some(server) = PgServer::from_env("concurrent_appenders") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let stores: Vec<Arc<PgStore>> = (0..4).map(|_| Arc::new(db.store())).collect();
    let reader = db.store();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = RunId::parse("run-order").unwrap();
    let writers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(w, s)| {
            let s = Arc::clone(s);
            let run = run.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let batch: Vec<NewEvent> = (0..5)
                        .map(|k| {
                            ev(
                                &run,
                                1,
                                EventKind::ToolCall,
                                serde_json::json!({"w": w, "i": i, "k": k}),
                            )
                        })
                        .collect();
                    s.append_batch(&batch, Durability::Relaxed).unwrap();
                }
            })
        })
        .collect();
    // A reader following a watermark must see every position exactly once:
    // none may commit behind one already read.
    let mut seen = Vec::new();
    let mut mark = 0;
    let follower = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                for (seq, _) in reader.positions(mark, 10_000).unwrap() {
                    assert!(seq > mark);
                    seen.push(seq);
                    mark = seq;
                }
                if done {
                    return seen;
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = follower.join().unwrap();
    assert_eq!(seen.len(), 4 * 50 * 5);
    let all: Vec<i64> = stores[0]
        .read(&Query::default())
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seen, all, "the follower saw every event, in order, once");
}

fn forwarded(n: i64, run: &str) -> Vec<Forwarded> {
    (1..=n)
        .map(|i| Forwarded {
            origin_seq: i,
            ts: 86_400_000_000 + i,
            run_id: run.to_owned(),
            span_id: None,
            parent_span_id: None,
            kind: "tool.call".into(),
            body: serde_json::json!({"tool": "Bash", "duration_ms": 2.0, "i": i}).to_string(),
        })
        .collect()
}

#[test]
fn forwarded_batches_are_stored_once_and_folded_once() {
    let Some(server) = PgServer::from_env("forwarded_batches_are_stored_once") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let s = db.store();
    let tag = Tag {
        host: "laptop-a".into(),
        user: "alice".into(),
    };
    let evs = forwarded(10, "run-fwd");
    assert_eq!(s.append_forwarded("journal-a", &tag, &evs[..6]).unwrap(), 6);
    // The same batch again (a forwarder that lost its watermark), then an
    // overlapping one: only what is new is stored.
    assert_eq!(s.append_forwarded("journal-a", &tag, &evs[..6]).unwrap(), 0);
    assert_eq!(s.append_forwarded("journal-a", &tag, &evs[4..]).unwrap(), 4);
    assert_eq!(s.forwarded_through("journal-a").unwrap(), 10);
    assert_eq!(s.forwarded_through("journal-b").unwrap(), 0);
    // Another machine's journal with the same positions is its own.
    assert_eq!(s.append_forwarded("journal-b", &tag, &evs[..3]).unwrap(), 3);
    assert_eq!(s.count().unwrap(), 13);
    let rollup = s.rollup(0).unwrap();
    let calls: i64 = rollup.iter().map(|r| r.sums.tool_calls).sum();
    assert_eq!(calls, 13, "each event folded once");
    let mut c = db.client();
    let rows = c
        .query("SELECT DISTINCT host, user_name FROM agentops.events", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "laptop-a");
    assert_eq!(rows[0].get::<_, String>(1), "alice");
}

#[test]
fn a_restarted_server_is_reconnected_to() {
    let Some(server) = PgServer::from_env("a_restarted_server_is_reconnected_to") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let s = db.store();
    let run = RunId::parse("run-restart").unwrap();
    s.append_batch(
        &[ev(&run, 1, EventKind::ToolCall, serde_json::json!({}))],
        Durability::Sync,
    )
    .unwrap();
    // Kill this store's connection from the server side (what a restart
    // does to every client), then use the store again.
    let mut admin = db.client();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert_eq!(s.count().unwrap(), 1, "a read reconnects and retries");
    s.append_batch(
        &[ev(&run, 2, EventKind::ToolCall, serde_json::json!({}))],
        Durability::Sync,
    )
    .unwrap();
    assert_eq!(s.count().unwrap(), 2);
}

fn local_journal(dir: &std::path::Path) -> agentops_store::SqliteStore {
    agentops_store::SqliteStore::open(
        &dir.join("state.db"),
        agentops_store::sqlite_open_options(true),
    )
    .unwrap()
}

#[test]
fn the_forwarder_loses_nothing_and_sends_nothing_twice() {
    use agentops_store::forward::{ForwardError, Forwarder};
    let Some(server) = PgServer::from_env("the_forwarder_loses_nothing") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let team = db.store();
    let dir = tempfile::tempdir().unwrap();
    let local = local_journal(dir.path());
    let run = RunId::parse("sess-fwd").unwrap();
    let tag = Tag {
        host: "laptop-a".into(),
        user: "alice".into(),
    };
    let batch = |n: usize, from: usize| -> Vec<NewEvent> {
        (0..n)
            .map(|i| {
                ev(
                    &run,
                    86_400_000_000 + i64::try_from(from + i).unwrap(),
                    EventKind::ToolCall,
                    serde_json::json!({"tool": "Bash", "duration_ms": 1.0, "i": from + i}),
                )
            })
            .collect()
    };
    local
        .append_batch(&batch(4_500, 0), Durability::Relaxed)
        .unwrap();
    {
        let mut f = Forwarder::claim(&local, &team, tag.clone()).unwrap();
        // A second forwarder of the same journal waits its turn.
        assert!(matches!(
            Forwarder::claim(&local, &team, tag.clone()),
            Err(ForwardError::Busy(_))
        ));
        let r = f.pass().unwrap();
        assert_eq!(
            (r.sent, r.skipped, r.batches, r.watermark),
            (4_500, 0, 3, 4_500)
        );
    }
    // More events; the local watermark is then lost (a crash between the
    // team store's commit and the local advance is the same): the next pass
    // starts from what the team store holds, so nothing goes twice.
    local
        .append_batch(&batch(10, 4_500), Durability::Relaxed)
        .unwrap();
    let mut c = db.client();
    {
        let mut f = Forwarder::claim(&local, &team, tag.clone()).unwrap();
        let r = f.pass().unwrap();
        assert_eq!((r.sent, r.skipped), (10, 0));
    }
    // The team database restored from an older backup: the rest is sent again.
    c.execute("DELETE FROM agentops.events WHERE origin_seq > 4000", &[])
        .unwrap();
    {
        let mut f = Forwarder::claim(&local, &team, tag.clone()).unwrap();
        let r = f.pass().unwrap();
        assert_eq!(r.sent, 510);
    }
    assert_eq!(team.count().unwrap(), 4_510);
    let seqs: Vec<i64> = c
        .query(
            "SELECT origin_seq FROM agentops.events ORDER BY origin_seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=4_510).collect::<Vec<i64>>(),
        "every event once, none missing"
    );
    // The team store shows the events as the local journal has them.
    let mine = local.read(&Query::default()).unwrap();
    let theirs = team.read(&Query::default()).unwrap();
    let strip = |v: &[agentops_core::Event]| -> Vec<(i64, String, serde_json::Value)> {
        let mut out: Vec<_> = v
            .iter()
            .map(|e| (e.ts, e.kind.as_str().to_owned(), e.body.clone()))
            .collect();
        out.sort_by_key(|x| x.0);
        out
    };
    assert_eq!(strip(&mine), strip(&theirs));
    let status = agentops_store::forward::local_status(&local).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].watermark, status[0].behind), (4_510, 0));
}

#[test]
fn a_team_view_filtered_by_host_reads_only_that_machine() {
    let Some(server) = PgServer::from_env("a_team_view_filtered_by_host") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let team = db.store();
    let a = Tag {
        host: "host-a".into(),
        user: "alice".into(),
    };
    let b = Tag {
        host: "host-b".into(),
        user: "bob".into(),
    };
    team.append_forwarded("ja", &a, &forwarded(3, "run-a"))
        .unwrap();
    team.append_forwarded("jb", &b, &forwarded(5, "run-b"))
        .unwrap();
    let only = |host: Option<&str>, user: Option<&str>| {
        db.store().filtered(agentops_store::pg::Filter {
            host: host.map(str::to_owned),
            user: user.map(str::to_owned),
        })
    };
    assert_eq!(only(None, None).count().unwrap(), 8);
    assert_eq!(only(Some("host-a"), None).count().unwrap(), 3);
    assert_eq!(only(None, Some("bob")).count().unwrap(), 5);
    assert_eq!(only(Some("host-a"), Some("bob")).count().unwrap(), 0);
    let ra = only(Some("host-a"), None).read(&Query::default()).unwrap();
    assert!(ra.iter().all(|e| e.run_id.as_str() == "run-a"));
    let tool_calls =
        |s: &PgStore| -> i64 { s.rollup(0).unwrap().iter().map(|r| r.sums.tool_calls).sum() };
    assert_eq!(tool_calls(&only(None, None)), 8);
    assert_eq!(tool_calls(&only(Some("host-b"), None)), 5);
    assert_eq!(
        only(Some("host-b"), None).positions(0, 100).unwrap().len(),
        5
    );
}

fn queued(i: usize) -> agentops_store::pg::NewQueued {
    agentops_store::pg::NewQueued {
        run_id: format!("run{i:04}"),
        repo: "/r/team".into(),
        workflow: "feature".into(),
        spec: serde_json::json!({"n": i}),
    }
}

#[test]
fn workers_claiming_at_the_same_instant_never_share_a_run() {
    let Some(server) = PgServer::from_env("workers_claiming_at_the_same_instant") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let store = db.store();
    for i in 0..40 {
        store.enqueue(&queued(i)).unwrap();
    }
    // Another repository's run is never claimed here.
    store
        .enqueue(&agentops_store::pg::NewQueued {
            repo: "/r/other".into(),
            ..queued(999)
        })
        .unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let hs: Vec<_> = (0..8)
        .map(|w| {
            let t = db.target();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let s = PgStore::open(t, PgOptions { migrate: false }).unwrap();
                barrier.wait();
                let mut got = Vec::new();
                while let Some(c) = s
                    .claim(
                        "/r/team",
                        &format!("w{w}"),
                        std::time::Duration::from_secs(60),
                    )
                    .unwrap()
                {
                    assert!(c.took_over_from.is_none());
                    got.push(c.run.run_id);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<String> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    let want: Vec<String> = (0..40).map(|i| format!("run{i:04}")).collect();
    assert_eq!(all, want, "each run claimed exactly once");
    assert_eq!(store.queue_pending("/r/team").unwrap(), 40);
}

#[test]
fn a_lease_that_runs_out_is_taken_over_and_only_its_holder_settles() {
    use agentops_store::pg::QueueStatus;
    use std::time::Duration;
    let Some(server) = PgServer::from_env("a_lease_that_runs_out") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let store = db.store();
    store.enqueue(&queued(1)).unwrap();
    store
        .register_worker("a", 1, "/r/team", 1, Duration::from_millis(300))
        .unwrap();
    let c = store
        .claim("/r/team", "a", Duration::from_millis(300))
        .unwrap()
        .unwrap();
    assert_eq!(c.run.attempts, 1);
    assert!(c.run.live());
    // Renewed, it stays a's.
    assert_eq!(
        store.renew("a", Duration::from_millis(300)).unwrap(),
        vec!["run0001"]
    );
    assert!(
        store
            .claim("/r/team", "b", Duration::from_secs(5))
            .unwrap()
            .is_none()
    );
    assert_eq!(store.workers(false).unwrap()[0].runs, vec!["run0001"]);
    // a stops renewing: once the lease runs out, b takes it over.
    std::thread::sleep(Duration::from_millis(400));
    let t = store
        .claim("/r/team", "b", Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert_eq!(t.took_over_from.as_deref(), Some("a"));
    assert_eq!((t.run.attempts, t.run.takeovers), (2, 1));
    // a's renewal no longer holds it, and a cannot settle it.
    assert!(store.renew("a", Duration::from_secs(5)).unwrap().is_empty());
    assert!(
        !store
            .settle("run0001", "a", QueueStatus::Completed, "", None)
            .unwrap()
    );
    assert!(
        store
            .settle("run0001", "b", QueueStatus::Paused, "approval", None)
            .unwrap()
    );
    // Paused: nobody claims it until it is queued again, with resume options.
    assert!(
        store
            .claim("/r/team", "c", Duration::from_secs(5))
            .unwrap()
            .is_none()
    );
    let resume = serde_json::json!({"budget": {"turns": 9}});
    let row = store
        .requeue_or_set(
            "run0001",
            &[QueueStatus::Paused],
            QueueStatus::Queued,
            "resumed",
            Some(&resume),
        )
        .unwrap()
        .unwrap();
    assert_eq!(row.status, QueueStatus::Queued);
    let c = store
        .claim("/r/team", "c", Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(c.took_over_from.is_none());
    assert_eq!(
        c.run.resume,
        Some(resume),
        "the claim carries the resume options"
    );
    // A retry later: not claimable before its time.
    assert!(
        store
            .settle(
                "run0001",
                "c",
                QueueStatus::Queued,
                "remote away",
                Some(Duration::from_secs(60))
            )
            .unwrap()
    );
    assert!(
        store
            .claim("/r/team", "d", Duration::from_secs(5))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.queued("run00").unwrap().unwrap().detail,
        "remote away"
    );
    store.stop_worker("a").unwrap();
    assert!(store.workers(false).unwrap().iter().all(|w| w.id != "a"));
    assert!(
        store
            .workers(true)
            .unwrap()
            .iter()
            .any(|w| w.id == "a" && !w.alive)
    );
}

#[test]
fn tls_connections_are_encrypted_and_the_certificate_verified() {
    let Some(server) = PgServer::from_env("tls connections") else {
        return;
    };
    let Some(ca) = std::env::var("AGENTOPS_PG_CA")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        assert!(
            std::env::var("AGENTOPS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "AGENTOPS_PG_CA is not set: .ci/postgres start enables TLS and prints it"
        );
        eprintln!("SKIPPED tls connections: no AGENTOPS_PG_CA (a server without TLS)");
        return;
    };
    let db = server.fresh_db().unwrap();
    let pw = server.password.clone();
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let env = move |k: &str| match k {
        "PGPASSWORD" => Some(pw.clone()),
        "HOME" => Some(home_s.clone()),
        _ => None,
    };
    let open = |url: &str, env: &dyn Fn(&str) -> Option<String>| {
        Target::resolve(url, env).and_then(|t| PgStore::open(t, PgOptions { migrate: true }))
    };
    // verify-full against the CA that signed the server's certificate.
    let url = format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url);
    let s = open(&url, &env).unwrap();
    assert!(
        s.encrypted().unwrap(),
        "pg_stat_ssl says the connection is encrypted"
    );
    let st = s.status().unwrap();
    assert!(
        st.encrypted && st.tls_roots.as_deref() == Some(ca.as_str()),
        "{st:?}"
    );
    assert!(!st.target.contains("sslrootcert"), "{}", st.target);
    // require is verified too (there is no unverified TLS); PGSSLMODE and
    // PGSSLROOTCERT work as in libpq.
    let with_env = {
        let env = env.clone();
        let ca = ca.clone();
        move |k: &str| match k {
            "PGSSLMODE" => Some("require".to_owned()),
            "PGSSLROOTCERT" => Some(ca.clone()),
            _ => env(k),
        }
    };
    assert!(open(&db.url, &with_env).unwrap().encrypted().unwrap());
    // Without the CA: the Mozilla roots do not know it — refused, saying how.
    let e = open(&format!("{}?sslmode=require", db.url), &env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("not trusted") && e.contains("sslrootcert"),
        "{e}"
    );
    assert!(!e.contains(&server.password));
    // The server's certificate presented for another name (connecting to
    // its address as `db.example`): refused.
    let wrong = db.url.replace("127.0.0.1", "db.example");
    let e = open(
        &format!("{wrong}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
        &env,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("not trusted (or not for this host name)"), "{e}");
    // A bad mode or root file: configuration errors naming them.
    let e = open(&format!("{}?sslmode=sometimes", db.url), &env)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sslmode `sometimes`"), "{e}");
    let e = open(
        &format!("{}?sslmode=require&sslrootcert=/nonexistent/ca.pem", db.url),
        &env,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    // disable (and no sslmode at all): plain text, as before.
    assert!(
        !open(&format!("{}?sslmode=disable", db.url), &env)
            .unwrap()
            .encrypted()
            .unwrap()
    );
    assert!(!open(&db.url, &env).unwrap().encrypted().unwrap());
}
