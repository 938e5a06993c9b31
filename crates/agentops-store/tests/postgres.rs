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
