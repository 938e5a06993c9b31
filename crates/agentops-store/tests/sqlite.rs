//! The SQLite journal: the shared conformance suite, many writer processes at
//! once, and files it must refuse without touching.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentops_core::config::Synchronous;
use agentops_core::{EventKind, NewEvent, RunId};
use agentops_store::sqlite_open_options as opts;
use agentops_store::{
    Durability, EventLog, Feedback, Query, SCHEMA_VERSION, SqliteStore, Store, StoreError,
};
use agentops_testkit::store_conformance as conformance;
use pretty_assertions::assert_eq;

fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(path, opts(true))
}

#[test]
fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::cell::Cell::new(0);
    let fresh = || -> Box<dyn Store> {
        counter.set(counter.get() + 1);
        Box::new(open(&dir.path().join(format!("s{}.db", counter.get()))).unwrap())
    };
    conformance::run_all(&fresh).unwrap();
}

#[test]
fn conformance_suite_with_normal_sync() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::cell::Cell::new(0);
    let fresh = || -> Box<dyn Store> {
        counter.set(counter.get() + 1);
        let mut o = opts(true);
        o.synchronous = Synchronous::Normal;
        Box::new(SqliteStore::open(&dir.path().join(format!("n{}.db", counter.get())), o).unwrap())
    };
    conformance::run_all(&fresh).unwrap();
}

#[test]
fn reopening_keeps_events_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nested/dir/state.db");
    let s = open(&p).unwrap();
    let r = RunId::parse("r").unwrap();
    s.append_batch(
        &[NewEvent::now(
            r.clone(),
            EventKind::RunStarted,
            serde_json::json!({}),
        )],
        Durability::Sync,
    )
    .unwrap();
    drop(s);
    let s = open(&p).unwrap();
    assert_eq!(s.count().unwrap(), 1);
    let st = s.status(true).unwrap();
    assert_eq!(st.schema_version, SCHEMA_VERSION);
    assert_eq!(st.journal_mode, "wal");
    assert_eq!(st.integrity.as_deref(), Some("ok"));
}

/// A journal written by one short-lived connection after another (hooks)
/// keeps a bounded WAL: without the trim at close, each opener rebuilt the
/// WAL's index from every frame, counted none as checkpointed and could
/// never start it over, so it grew with every event. A reader elsewhere
/// makes the trim wait for nothing.
#[test]
fn short_lived_writers_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let r = RunId::parse("r").unwrap();
    let body = serde_json::json!({"text": "w".repeat(6_000)});
    // One hook: open, append one event, close.
    let hook = || {
        let s = open(&p).unwrap();
        s.append_batch(
            &[NewEvent::now(r.clone(), EventKind::ToolCall, body.clone())],
            Durability::Configured,
        )
        .unwrap();
    };
    let mut longest = 0;
    for i in 0..200 {
        hook();
        longest = longest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        if i == 100 {
            // A reader holding a snapshot while writers come and go.
            let reader = rusqlite::Connection::open(&p).unwrap();
            reader
                .execute_batch("BEGIN; SELECT count(*) FROM events;")
                .unwrap();
            let t = std::time::Instant::now();
            hook();
            assert!(
                t.elapsed() < std::time::Duration::from_secs(1),
                "{:?}",
                t.elapsed()
            );
            reader.execute_batch("COMMIT").unwrap();
        }
    }
    // 128 pages and their headers, and one event's pages over.
    assert!(longest < 140 * 4120, "the WAL grew to {longest} bytes");
    let s = open(&p).unwrap();
    assert_eq!(s.count().unwrap(), 201);
    assert_eq!(s.status(true).unwrap().integrity.as_deref(), Some("ok"));
}

#[test]
fn missing_without_create_says_init() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    let err = SqliteStore::open(&p, opts(false)).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }));
    assert!(err.to_string().contains("agentops init"));
    assert!(!p.exists());
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn corrupt_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    std::fs::write(
        &p,
        b"this is not a database, it is a text file that got here somehow",
    )
    .unwrap();
    let before = file_bytes(&p);
    let err = open(&p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains("has not modified it"),
        "{msg}"
    );
    assert_eq!(file_bytes(&p), before);
}

#[test]
fn damaged_pages_are_reported_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    {
        let s = open(&p).unwrap();
        let r = RunId::parse("r").unwrap();
        let batch: Vec<NewEvent> = (0..2000)
            .map(|i| {
                NewEvent::now(
                    r.clone(),
                    EventKind::LlmCall,
                    serde_json::json!({"i": i, "pad": "x".repeat(200)}),
                )
            })
            .collect();
        s.append_batch(&batch, Durability::Sync).unwrap();
    }
    // Checkpointed (the journal leaves its WAL in place when it closes) and
    // closed: now scribble over the middle of the file.
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut bytes = file_bytes(&p);
    assert!(bytes.len() > 100_000);
    for b in &mut bytes[8192..90_000] {
        *b = 0xAB;
    }
    std::fs::write(&p, &bytes).unwrap();
    let result = open(&p).and_then(|s| s.read(&Query::default()).map(|_| s));
    match result {
        Err(e) => {
            assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        }
        Ok(s) => {
            // SQLite may open a file whose damage is past the schema pages; the
            // integrity check must then say so.
            assert_ne!(s.status(true).unwrap().integrity.as_deref(), Some("ok"));
        }
    }
    assert_eq!(file_bytes(&p), bytes, "the damaged journal was modified");
}

#[test]
fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    drop(open(&p).unwrap());
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let before = file_bytes(&p);
    let err = open(&p).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 5),
        "{msg}"
    );
    assert!(msg.contains("Upgrade agentops"), "{msg}");
    assert_eq!(file_bytes(&p), before);
}

#[test]
fn foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE users(id INTEGER); INSERT INTO users VALUES (1);")
            .unwrap();
    }
    let err = open(&p).unwrap_err();
    assert!(matches!(err, StoreError::NotJournal { .. }), "{err}");
    let c = rusqlite::Connection::open(&p).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn unreadable_file_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Unreadable for everyone, root included: a directory where the file should be.
    let p = dir.path().join("state.db");
    std::fs::create_dir(&p).unwrap();
    let err = open(&p).unwrap_err();
    assert!(matches!(err, StoreError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot open the journal", p.display())),
        "{err}"
    );
    assert!(p.is_dir(), "the path was replaced");
    // Permissions, where they bind (not for root, who reads anything).
    let p = dir.path().join("locked.db");
    drop(open(&p).unwrap());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::File::open(&p).is_ok();
    let result = open(&p);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    if !readable {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("permissions"));
    }
}

const CHILD_ENV: &str = "AGENTOPS_TEST_CHILD_WRITER";
const WRITERS: usize = 8;
const PER_WRITER: usize = 150;

/// The body each writer process of the test below runs.
#[test]
#[ignore = "run as a child process by many_processes_append_at_once_and_lose_nothing"]
fn child_writer() {
    let spec = std::env::var(CHILD_ENV).expect("run by the multi-process test");
    let (path, who) = spec.split_once('|').unwrap();
    let s = open(Path::new(path)).unwrap_or_else(|e| panic!("writer {who}: {e}"));
    let r = RunId::parse(&format!("writer-{who}")).unwrap();
    for i in 0..PER_WRITER {
        let e = NewEvent::now(
            r.clone(),
            EventKind::HookReceived,
            serde_json::json!({"i": i}),
        );
        if i % 10 == 0 {
            // Mix in small batches with the single appends.
            s.append_batch(&[e.clone(), e], Durability::Configured)
                .unwrap();
        } else {
            s.append_batch(&[e], Durability::Sync).unwrap();
        }
    }
}

#[test]
fn many_processes_append_at_once_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p: PathBuf = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_writer",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|{w}", p.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = open(&p).unwrap();
    let per_writer_events = PER_WRITER + PER_WRITER / 10;
    assert_eq!(s.count().unwrap() as usize, WRITERS * per_writer_events);
    for w in 0..WRITERS {
        let got = s
            .read(&Query::run(RunId::parse(&format!("writer-{w}")).unwrap()))
            .unwrap();
        assert_eq!(got.len(), per_writer_events, "writer {w}");
        let is: Vec<i64> = got.iter().map(|e| e.body["i"].as_i64().unwrap()).collect();
        let mut expected = Vec::new();
        for i in 0..PER_WRITER as i64 {
            expected.push(i);
            if i % 10 == 0 {
                expected.push(i);
            }
        }
        assert_eq!(is, expected, "writer {w}'s events out of order");
    }
    let all = s.read(&Query::default()).unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn a_version_1_journal_is_migrated_in_place_keeping_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.db");
    {
        // What agentops 0.1 with schema 1 left behind.
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, run_id TEXT NOT NULL,
               span_id TEXT, parent_span_id TEXT, kind TEXT NOT NULL, body TEXT NOT NULL);
             CREATE INDEX events_by_run ON events (run_id, seq);
             CREATE INDEX events_by_kind ON events (kind, seq);
             CREATE INDEX events_by_ts ON events (ts);
             INSERT INTO events (ts, run_id, kind, body) VALUES (1, 'old-run', 'run.started', '{\"goal\":\"x\"}');
             PRAGMA application_id = 1095192400;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = open(&p).unwrap();
    assert_eq!(s.status(true).unwrap().schema_version, SCHEMA_VERSION);
    let old = s
        .read(&Query::run(RunId::parse("old-run").unwrap()))
        .unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].body, serde_json::json!({"goal": "x"}));
    // The v2 table works.
    let u = s.apply_feedback("e1", 1.0, 0.1, 5).unwrap();
    assert!((u.value - 0.55).abs() < 1e-9);
}
