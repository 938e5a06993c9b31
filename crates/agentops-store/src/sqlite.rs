//! The SQLite journal: WAL mode, one `events` table, versioned migrations.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentops_core::config::Synchronous;
use agentops_core::{Event, EventKind, NewEvent, SpanId};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params_from_iter};

use crate::{
    Durability, EventLog, ExportLeases, Feedback, Query, RawRef, RollupRow, Rollups, StoreError,
    Sums, Utility,
};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 5;

/// The oldest schema a read-only open reads as it is: what came after it
/// (the spool's drain records) is never read.
const READS_FROM: i64 = 3;

/// `PRAGMA application_id` of an agentops journal: "AGOP".
const APPLICATION_ID: i64 = 0x4147_4F50;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             INTEGER NOT NULL,
    run_id         TEXT    NOT NULL,
    span_id        TEXT,
    parent_span_id TEXT,
    kind           TEXT    NOT NULL,
    body           TEXT    NOT NULL
);
CREATE INDEX events_by_run  ON events (run_id, seq);
CREATE INDEX events_by_kind ON events (kind, seq);
CREATE INDEX events_by_ts   ON events (ts);
"#,
    r#"
CREATE TABLE utility (
    entry_id   TEXT PRIMARY KEY,
    value      REAL    NOT NULL,
    events     INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE rollup (
    day                   INTEGER NOT NULL,
    run_id                TEXT    NOT NULL,
    agent                 TEXT    NOT NULL,
    model                 TEXT    NOT NULL,
    llm_calls             INTEGER NOT NULL DEFAULT 0,
    llm_errors            INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd              REAL    NOT NULL DEFAULT 0,
    unpriced_calls        INTEGER NOT NULL DEFAULT 0,
    llm_ms                REAL    NOT NULL DEFAULT 0,
    llm_ms_max            REAL    NOT NULL DEFAULT 0,
    tool_calls            INTEGER NOT NULL DEFAULT 0,
    tool_errors           INTEGER NOT NULL DEFAULT 0,
    tool_ms               REAL    NOT NULL DEFAULT 0,
    gates                 INTEGER NOT NULL DEFAULT 0,
    gates_passed          INTEGER NOT NULL DEFAULT 0,
    retries               INTEGER NOT NULL DEFAULT 0,
    steps                 INTEGER NOT NULL DEFAULT 0,
    step_ms               REAL    NOT NULL DEFAULT 0,
    step_ms_max           REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (day, run_id, agent, model)
);
CREATE TABLE runs_index (
    run_id   TEXT PRIMARY KEY,
    workflow TEXT,
    harness  TEXT,
    first_ts INTEGER NOT NULL
);
CREATE TABLE export_watermarks (
    name        TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    updated_ts  INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
CREATE TABLE spool_drained (
    name TEXT PRIMARY KEY,
    ts   INTEGER NOT NULL
);
"#,
    // One kind of one run or session (its feedback, its prompts) without
    // reading the rest of it, or every run's events of that kind.
    r#"
CREATE INDEX events_by_run_kind ON events (run_id, kind, seq);
"#,
];

const ROLLUP_UPSERT: &str = "INSERT INTO rollup (day, run_id, agent, model, llm_calls, llm_errors, input_tokens, output_tokens,
    cache_read_tokens, cache_creation_tokens, cost_usd, unpriced_calls, llm_ms, llm_ms_max, tool_calls, tool_errors, tool_ms,
    gates, gates_passed, retries, steps, step_ms, step_ms_max)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
 ON CONFLICT (day, run_id, agent, model) DO UPDATE SET
    llm_calls = llm_calls + excluded.llm_calls, llm_errors = llm_errors + excluded.llm_errors,
    input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
    cost_usd = cost_usd + excluded.cost_usd, unpriced_calls = unpriced_calls + excluded.unpriced_calls,
    llm_ms = llm_ms + excluded.llm_ms, llm_ms_max = max(llm_ms_max, excluded.llm_ms_max),
    tool_calls = tool_calls + excluded.tool_calls, tool_errors = tool_errors + excluded.tool_errors,
    tool_ms = tool_ms + excluded.tool_ms, gates = gates + excluded.gates, gates_passed = gates_passed + excluded.gates_passed,
    retries = retries + excluded.retries, steps = steps + excluded.steps, step_ms = step_ms + excluded.step_ms,
    step_ms_max = max(step_ms_max, excluded.step_ms_max)";

const RUNS_UPSERT: &str = "INSERT INTO runs_index (run_id, workflow, harness, first_ts) VALUES (?1, ?2, ?3, ?4)
 ON CONFLICT (run_id) DO UPDATE SET workflow = coalesce(runs_index.workflow, excluded.workflow),
    harness = coalesce(runs_index.harness, excluded.harness), first_ts = min(runs_index.first_ts, excluded.first_ts)
 WHERE (runs_index.workflow IS NULL AND excluded.workflow IS NOT NULL)
    OR (runs_index.harness IS NULL AND excluded.harness IS NOT NULL)
    OR excluded.first_ts < runs_index.first_ts";

/// Folds one event into the rollup tables (inside the caller's transaction).
fn fold(
    tx: &rusqlite::Transaction<'_>,
    ts: i64,
    run_id: &str,
    kind: &EventKind,
    body: &serde_json::Value,
) -> rusqlite::Result<()> {
    if let Some((agent, model, d)) = crate::rollup::delta(kind, body) {
        let mut stmt = tx.prepare_cached(ROLLUP_UPSERT)?;
        stmt.execute(rusqlite::params![
            crate::rollup::day_of(ts),
            run_id,
            agent,
            model,
            d.llm_calls,
            d.llm_errors,
            d.input_tokens,
            d.output_tokens,
            d.cache_read_tokens,
            d.cache_creation_tokens,
            d.cost_usd,
            d.unpriced_calls,
            d.llm_ms,
            d.llm_ms_max,
            d.tool_calls,
            d.tool_errors,
            d.tool_ms,
            d.gates,
            d.gates_passed,
            d.retries,
            d.steps,
            d.step_ms,
            d.step_ms_max,
        ])?;
    }
    if let Some((workflow, harness)) = crate::rollup::run_info(kind, body) {
        let mut stmt = tx.prepare_cached(RUNS_UPSERT)?;
        stmt.execute(rusqlite::params![run_id, workflow, harness, ts])?;
    }
    Ok(())
}

/// Folds every event already in the journal into the rollup (the migration
/// that introduced it).
fn backfill(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("SELECT ts, run_id, kind, body FROM events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (ts, run_id, kind, body): (i64, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (Ok(kind), Ok(body)) = (
            kind.parse::<EventKind>(),
            serde_json::from_str::<serde_json::Value>(&body),
        ) else {
            continue;
        };
        fold(tx, ts, &run_id, &kind, &body)?;
    }
    Ok(())
}

/// How to open a SQLite journal.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Create (and migrate) the file when it does not exist.
    pub create: bool,
    /// Open for reading only: no migration, no journal-mode switch; works
    /// in a read-only directory (falling back to SQLite's `immutable` mode
    /// when the WAL index cannot be created there).
    pub read_only: bool,
    /// How long to wait for other writers before giving up.
    pub busy_timeout_ms: u64,
    pub synchronous: Synchronous,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: true,
            read_only: false,
            busy_timeout_ms: 10_000,
            synchronous: Synchronous::Full,
        }
    }
}

/// What `doctor` reports about a journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoreStatus {
    pub path: PathBuf,
    pub schema_version: i64,
    pub events: u64,
    pub journal_mode: String,
    pub size_bytes: u64,
    /// `None` when the integrity check was not asked for.
    pub integrity: Option<String>,
}

/// A journal in one SQLite file, shared safely by many processes.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    synchronous: Synchronous,
    busy_timeout: Duration,
    /// Opened to write: on close it trims the WAL ([`SqliteStore::trim_wal`]).
    writable: bool,
}

/// A WAL longer than this (128 pages of 4 KiB with their frame headers) is
/// checkpointed and truncated when a writing connection closes.
const WAL_TRIM_BYTES: u64 = 128 * (4096 + 24);

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if self.writable {
            self.trim_wal();
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

impl SqliteStore {
    /// Opens (and if asked, creates) the journal at `path`, migrating it to
    /// [`SCHEMA_VERSION`]. Never deletes, truncates or rewrites an existing file
    /// it cannot read: it reports it.
    pub fn open(path: &Path, opts: OpenOptions) -> Result<Self, StoreError> {
        let exists = path.exists();
        if !exists {
            if !opts.create {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Unreadable {
                    path: path.to_path_buf(),
                    reason: format!("cannot create {}: {e}", parent.display()),
                })?;
            }
        } else {
            check_header(path)?;
        }
        if opts.read_only {
            return Self::open_read_only(path, opts);
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if opts.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| StoreError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                reason: "the file is read-only for this user".into(),
            });
        }
        // The last connection to close would checkpoint the WAL into the
        // database (two fsyncs) and delete `-wal` and `-shm`, which the next
        // process (the next hook, a second later) creates again: 3–5 ms of
        // every short-lived process. The WAL stays (SQLite reads it on every
        // open, so nothing written is less durable or less seen) until it is
        // longer than 128 pages: then the closing writer checkpoints and
        // truncates it (`trim_wal`).
        let _ = conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        );
        let store = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            synchronous: opts.synchronous,
            busy_timeout: Duration::from_millis(opts.busy_timeout_ms),
            writable: true,
        };
        store.prepare()?;
        Ok(store)
    }

    fn open_read_only(path: &Path, opts: OpenOptions) -> Result<Self, StoreError> {
        let unreadable = |e: rusqlite::Error| StoreError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let probe = |uri: &str| -> Result<Connection, rusqlite::Error> {
            let c = Connection::open_with_flags(uri, flags)?;
            c.busy_timeout(Duration::from_millis(opts.busy_timeout_ms))?;
            // Reading needs the WAL index: this is where a read-only
            // directory without one fails.
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(c)
        };
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = format!("file:{}", uri_path(&abs));
        let conn = match probe(&format!("{base}?mode=ro")) {
            Ok(c) => c,
            Err(e) if is_corrupt(&e) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                });
            }
            // Nobody can be writing where we cannot create the WAL index.
            Err(_) => match probe(&format!("{base}?immutable=1")) {
                Ok(c) => c,
                Err(e) if is_corrupt(&e) => {
                    return Err(StoreError::Corrupt {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    });
                }
                Err(e) => return Err(unreadable(e)),
            },
        };
        let store = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            synchronous: opts.synchronous,
            busy_timeout: Duration::from_millis(opts.busy_timeout_ms),
            writable: false,
        };
        let (app_id, version): (i64, i64) = store.with_conn(|c| {
            let app: i64 = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let ver: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok((app, ver))
        })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if app_id != APPLICATION_ID {
            return Err(StoreError::NotJournal {
                path: path.to_path_buf(),
            });
        }
        if version < READS_FROM {
            return Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                reason: format!(
                    "the journal has schema {version} and this agentops reads {READS_FROM} to {SCHEMA_VERSION}; run any command that writes (e.g. `agentops doctor --fix`) to migrate it"
                ),
            });
        }
        Ok(store)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self, e: rusqlite::Error) -> StoreError {
        // SQLite says "disk I/O error" (or "database or disk is full") when
        // the disk is full: say that, with the file.
        if matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
        ) && disk_is_full(&self.path)
        {
            return StoreError::DiskFull {
                path: self.path.clone(),
                detail: e.to_string(),
            };
        }
        if is_corrupt(&e) {
            StoreError::Corrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            }
        } else {
            StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            }
        }
    }

    /// Runs `f`, retrying while another process holds the lock, up to the busy
    /// timeout. SQLite's own busy handler covers most waits; this loop covers
    /// the cases where SQLite returns BUSY at once (WAL recovery, snapshot
    /// conflicts), so "database is locked" never reaches the user.
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(500);
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Internal("journal connection lock poisoned".into()))?;
        loop {
            match f(&mut conn) {
                Ok(v) => return Ok(v),
                Err(e) if is_busy(&e) => {
                    if start.elapsed() >= self.busy_timeout {
                        return Err(StoreError::Busy {
                            path: self.path.clone(),
                            waited_ms: u64::try_from(start.elapsed().as_millis())
                                .unwrap_or(u64::MAX),
                        });
                    }
                    // Jitter from the clock's low bits keeps retrying writers apart.
                    let jitter = u64::from(Instant::now().elapsed().subsec_nanos() % 500);
                    std::thread::sleep(pause + Duration::from_micros(jitter));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(self.sql_err(e)),
            }
        }
    }

    /// Checkpoints the WAL into the database and truncates it, when it is
    /// longer than [`WAL_TRIM_BYTES`], without waiting for anyone.
    ///
    /// The WAL stays when a connection closes (see `open`), and its index in
    /// `-shm` does not outlive the last connection: the next process to open
    /// the journal rebuilds it by reading every frame, and counts none of
    /// them as checkpointed, so it can never start the WAL over. Left to
    /// SQLite's passive checkpoints, a journal written by short processes
    /// (hooks) keeps one ever longer WAL, read whole and copied again by
    /// every one of them. Truncating it here bounds both. Busy (a writer or
    /// a reader elsewhere) it does what it can without waiting, and a later
    /// close finishes.
    fn trim_wal(&self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if std::fs::metadata(&wal).map_or(true, |m| m.len() <= WAL_TRIM_BYTES) {
            return;
        }
        let Ok(conn) = self.conn.lock() else { return };
        if conn.busy_timeout(Duration::ZERO).is_ok() {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let _ = conn.busy_timeout(self.busy_timeout);
    }

    fn prepare(&self) -> Result<(), StoreError> {
        let timeout = self.busy_timeout;
        let sync = match self.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        self.with_conn(|c| {
            c.busy_timeout(timeout)?;
            c.pragma_update(None, "synchronous", sync)?;
            // A long-running writer checkpoints as it goes, every 128 pages
            // (not SQLite's 1,000), as `trim_wal` does at close.
            c.pragma_update(None, "wal_autocheckpoint", 128)?;
            Ok(())
        })?;
        // One read transaction: another process may commit the migration
        // between separate reads, and a mix of before (no application id)
        // and after (tables, a version) would look like a foreign database.
        let (app_id, version, tables): (i64, i64, i64) = self.with_conn(|c| {
            let tx = c.transaction()?;
            let app: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let ver: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok((app, ver, n))
        })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if app_id != APPLICATION_ID && (tables > 0 || version > 0) {
            return Err(StoreError::NotJournal {
                path: self.path.clone(),
            });
        }
        // WAL is persistent in the file; only the first opener switches it.
        let mode: String =
            self.with_conn(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            self.with_conn(|c| {
                let _: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
                Ok(())
            })?;
        }
        if version < SCHEMA_VERSION {
            self.migrate()?;
        }
        Ok(())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let newer = self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Another process may have migrated while we waited for the lock.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Ok(Some(version));
            }
            let start = usize::try_from(version).unwrap_or(0);
            for m in MIGRATIONS.iter().skip(start) {
                tx.execute_batch(m)?;
            }
            if (1..3).contains(&version) {
                backfill(&tx)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(None)
        })?;
        match newer {
            Some(found) => Err(StoreError::NewerSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            }),
            None => Ok(()),
        }
    }

    /// Schema, size and (when `integrity`) the result of `PRAGMA quick_check`.
    pub fn status(&self, integrity: bool) -> Result<StoreStatus, StoreError> {
        let (schema_version, events, journal_mode, check) = self.with_conn(|c| {
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let n: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            let m: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let q: Option<String> = if integrity {
                Some(c.query_row("PRAGMA quick_check", [], |r| r.get(0))?)
            } else {
                None
            };
            Ok((v, n, m, q))
        })?;
        let size_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(StoreStatus {
            path: self.path.clone(),
            schema_version,
            events: u64::try_from(events).unwrap_or(0),
            journal_mode,
            size_bytes,
            integrity: check,
        })
    }

    fn row_to_event(&self, row: Row) -> Result<Event, StoreError> {
        crate::parse_event(
            row.seq,
            row.ts,
            &row.run_id,
            row.span_id.as_deref(),
            row.parent_span_id.as_deref(),
            &row.kind,
            &row.body,
        )
        .map_err(|reason| StoreError::BadRow {
            path: self.path.clone(),
            seq: row.seq,
            reason,
        })
    }
}

/// A row as selected, for parsing into an [`Event`].
struct Row {
    seq: i64,
    ts: i64,
    run_id: String,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    kind: String,
    body: String,
}

/// The `SELECT` for `q` and its arguments: seq, ts, run_id, span_id,
/// parent_span_id, kind, body.
fn select(q: &Query) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut sql = String::from(
        "SELECT seq, ts, run_id, span_id, parent_span_id, kind, body FROM events WHERE 1=1",
    );
    if let Some(r) = &q.run_id {
        sql.push_str(" AND run_id = ?");
        args.push(r.as_str().to_owned().into());
    }
    if !q.kinds.is_empty() {
        sql.push_str(" AND kind IN (");
        for (i, k) in q.kinds.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(k.as_str().to_owned().into());
        }
        sql.push(')');
    }
    if let Some(t) = q.since_ts {
        sql.push_str(" AND ts >= ?");
        args.push(t.into());
    }
    if let Some(t) = q.until_ts {
        sql.push_str(" AND ts < ?");
        args.push(t.into());
    }
    if let Some(s) = q.after_seq {
        sql.push_str(" AND seq > ?");
        args.push(s.into());
    }
    if let Some(s) = q.max_seq {
        sql.push_str(" AND seq <= ?");
        args.push(s.into());
    }
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    });
    if let Some(l) = q.limit {
        sql.push_str(" LIMIT ?");
        args.push(i64::try_from(l).unwrap_or(i64::MAX).into());
    }
    (sql, args)
}

/// Column `i` as text, or `None` for NULL.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Whether the file system holding `path` has no room left: a probe write
/// of one page beside it fails with "no space left on device".
fn disk_is_full(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let probe = dir.join(format!(".agentops-space-{}", std::process::id()));
    let full = std::fs::write(&probe, [0u8; 4096])
        .is_err_and(|e| e.kind() == std::io::ErrorKind::StorageFull);
    let _ = std::fs::remove_file(&probe);
    full
}

/// How long an empty journal file may be a creator's, not a truncation.
const EMPTY_GRACE: Duration = Duration::from_secs(10);

/// `path` for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut f = std::fs::File::open(path).map_err(|e| StoreError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match f.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => {
                return Err(StoreError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        }
    }
    // An empty file is a valid empty database to SQLite, and is what a
    // creator leaves for the few milliseconds before its first write; one
    // that stays empty was truncated (a full disk, a bad copy): opening it
    // would silently start a new journal over the lost one.
    if read == 0 {
        let age = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        return if age < EMPTY_GRACE {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "the file is empty (0 bytes): it was truncated".into(),
            })
        };
    }
    if read == 16 && &header == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file does not start with the SQLite header".into(),
        })
    }
}

impl SqliteStore {
    /// Runs `f` in one immediate transaction with `durability` applied for
    /// its commit.
    fn write_tx<T>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // (pragma to set for this append, pragma to restore after)
        let switch = match (durability, self.synchronous) {
            (Durability::Sync, Synchronous::Normal) => Some(("FULL", "NORMAL")),
            (Durability::Relaxed, Synchronous::Full) => Some(("NORMAL", "FULL")),
            _ => None,
        };
        self.with_conn(|c| {
            if let Some((now, _)) = switch {
                c.pragma_update(None, "synchronous", now)?;
            }
            let result = (|| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            })();
            if let Some((_, after)) = switch {
                c.pragma_update(None, "synchronous", after)?;
            }
            result
        })
    }
}

/// Inserts `events` (bodies encoded as `bodies`) and folds them into the
/// rollup; returns their `seq` numbers.
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[NewEvent],
    bodies: &[String],
) -> rusqlite::Result<Vec<i64>> {
    let mut seqs = Vec::with_capacity(events.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO events (ts, run_id, span_id, parent_span_id, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (e, body) in events.iter().zip(bodies) {
            stmt.execute(rusqlite::params![
                e.ts,
                e.run_id.as_str(),
                e.span_id.as_ref().map(SpanId::as_str),
                e.parent_span_id.as_ref().map(SpanId::as_str),
                e.kind.as_str(),
                body,
            ])?;
            seqs.push(tx.last_insert_rowid());
        }
    }
    for e in events {
        fold(tx, e.ts, e.run_id.as_str(), &e.kind, &e.body)?;
    }
    Ok(seqs)
}

impl EventLog for SqliteStore {
    fn append_batch(
        &self,
        events: &[NewEvent],
        durability: Durability,
    ) -> Result<Vec<i64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = crate::encode_bodies(events)?;
        self.write_tx(durability, |tx| insert_events(tx, events, &bodies))
    }

    fn append_once(
        &self,
        batches: &[(String, Vec<NewEvent>)],
        still_pending: &dyn Fn(&str) -> bool,
        durability: Durability,
    ) -> Result<usize, StoreError> {
        if batches.is_empty() {
            return Ok(0);
        }
        let bodies: Vec<Vec<String>> = batches
            .iter()
            .map(|(_, evs)| crate::encode_bodies(evs))
            .collect::<Result<_, _>>()?;
        let now = agentops_core::time::now_micros();
        self.write_tx(durability, |tx| {
            let mut appended = 0;
            let mut seen = tx.prepare_cached("SELECT 1 FROM spool_drained WHERE name = ?1")?;
            let mut mark =
                tx.prepare_cached("INSERT INTO spool_drained (name, ts) VALUES (?1, ?2)")?;
            for ((key, events), bodies) in batches.iter().zip(&bodies) {
                // Under the write lock: a batch another drainer committed is
                // either recorded here or already gone from the spool.
                if seen.exists([key])? || !still_pending(key) {
                    continue;
                }
                insert_events(tx, events, bodies)?;
                mark.execute(rusqlite::params![key, now])?;
                appended += 1;
            }
            Ok(appended)
        })
    }

    fn forget_once(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        // A week-old record cannot matter to a drainer any more, whatever
        // happened to its file.
        let old = agentops_core::time::now_micros() - 7 * 86_400 * 1_000_000;
        self.write_tx(Durability::Relaxed, |tx| {
            let mut del = tx.prepare_cached("DELETE FROM spool_drained WHERE name = ?1")?;
            for k in keys {
                del.execute([k])?;
            }
            tx.execute("DELETE FROM spool_drained WHERE ts < ?1", [old])?;
            Ok(())
        })
    }

    fn read(&self, q: &Query) -> Result<Vec<Event>, StoreError> {
        let (sql, args) = select(q);
        let rows = self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
                Ok(Row {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                    run_id: r.get(2)?,
                    span_id: r.get(3)?,
                    parent_span_id: r.get(4)?,
                    kind: r.get(5)?,
                    body: r.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        // Parsing bodies is most of a large read: split it over two threads.
        if rows.len() >= 4_096 {
            let mid = rows.len() / 2;
            let mut rows = rows;
            let back = rows.split_off(mid);
            let (a, b) = std::thread::scope(|s| {
                let h = s.spawn(|| {
                    back.into_iter()
                        .map(|r| self.row_to_event(r))
                        .collect::<Result<Vec<_>, _>>()
                });
                let a = rows
                    .into_iter()
                    .map(|r| self.row_to_event(r))
                    .collect::<Result<Vec<_>, _>>();
                (a, h.join())
            });
            let mut a = a?;
            a.extend(
                b.map_err(|_| StoreError::Internal("a journal reader thread panicked".into()))??,
            );
            return Ok(a);
        }
        rows.into_iter().map(|r| self.row_to_event(r)).collect()
    }

    fn scan(&self, q: &Query, f: &mut dyn FnMut(RawRef<'_>)) -> Result<(), StoreError> {
        let (sql, args) = select(q);
        // A retry after a busy error must not hand a row over twice.
        let mut delivered: Option<i64> = None;
        let newest_first = q.newest_first;
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let handed =
                    delivered.is_some_and(|d| if newest_first { seq >= d } else { seq <= d });
                if handed {
                    continue;
                }
                f(RawRef {
                    seq,
                    ts: r.get(1)?,
                    run_id: text(r, 2)?.unwrap_or_default(),
                    span_id: text(r, 3)?,
                    parent_span_id: text(r, 4)?,
                    kind: text(r, 5)?.unwrap_or_default(),
                    body: text(r, 6)?.unwrap_or_default(),
                });
                delivered = Some(seq);
            }
            Ok(())
        })
    }

    fn positions(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, run_id FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![after_seq, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    fn last_seq(&self) -> Result<i64, StoreError> {
        self.with_conn(|c| {
            c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.with_conn(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Feedback for SqliteStore {
    fn utility(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Utility>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT entry_id, value, events FROM utility WHERE entry_id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let rows: Vec<(String, f64, i64)> = self.with_conn(|c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                rows.collect()
            })?;
            for (id, value, events) in rows {
                out.insert(
                    id,
                    Utility {
                        value,
                        events: u32::try_from(events).unwrap_or(u32::MAX),
                    },
                );
            }
        }
        Ok(out)
    }

    fn apply_feedback(
        &self,
        id: &str,
        target: f64,
        alpha: f64,
        ts: i64,
    ) -> Result<Utility, StoreError> {
        let mut v = self.feedback_tx(&[(id, target)], alpha, ts, Durability::Configured)?;
        v.pop()
            .ok_or_else(|| StoreError::Internal("no utility returned".into()))
    }

    fn apply_feedback_many(
        &self,
        items: &[(&str, f64)],
        alpha: f64,
        ts: i64,
    ) -> Result<Vec<Utility>, StoreError> {
        // Automatic feedback comes in batches with the hook's own events,
        // whose synced commit makes this one durable too (WAL order).
        self.feedback_tx(items, alpha, ts, Durability::Relaxed)
    }
}

impl SqliteStore {
    fn feedback_tx(
        &self,
        items: &[(&str, f64)],
        alpha: f64,
        ts: i64,
        durability: Durability,
    ) -> Result<Vec<Utility>, StoreError> {
        self.write_tx(durability, |tx| {
            let mut out = Vec::with_capacity(items.len());
            for (id, target) in items {
                let prev: Option<(f64, i64)> = tx
                    .query_row("SELECT value, events FROM utility WHERE entry_id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map(Some)
                    .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
                let (value, events) = prev.unwrap_or((Utility::START, 0));
                let value = (1.0 - alpha) * value + alpha * target;
                let events = events + 1;
                tx.execute(
                    "INSERT INTO utility (entry_id, value, events, updated_ts) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(entry_id) DO UPDATE SET value = excluded.value, events = excluded.events, updated_ts = excluded.updated_ts",
                    rusqlite::params![id, value, events, ts],
                )?;
                out.push(Utility {
                    value,
                    events: u32::try_from(events).unwrap_or(u32::MAX),
                });
            }
            Ok(out)
        })
    }
}

impl Rollups for SqliteStore {
    fn rollup(&self, since_day: i64) -> Result<Vec<RollupRow>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.day, r.run_id, r.agent, r.model, i.workflow, i.harness,
                        r.llm_calls, r.llm_errors, r.input_tokens, r.output_tokens, r.cache_read_tokens,
                        r.cache_creation_tokens, r.cost_usd, r.unpriced_calls, r.llm_ms, r.llm_ms_max,
                        r.tool_calls, r.tool_errors, r.tool_ms, r.gates, r.gates_passed, r.retries,
                        r.steps, r.step_ms, r.step_ms_max
                 FROM rollup r LEFT JOIN runs_index i ON i.run_id = r.run_id
                 WHERE r.day >= ?1 ORDER BY r.day, r.run_id, r.agent, r.model",
            )?;
            let rows = stmt.query_map([since_day], |r| {
                Ok(RollupRow {
                    day: r.get(0)?,
                    run_id: r.get(1)?,
                    agent: r.get(2)?,
                    model: r.get(3)?,
                    workflow: r.get(4)?,
                    harness: r.get(5)?,
                    sums: Sums {
                        llm_calls: r.get(6)?,
                        llm_errors: r.get(7)?,
                        input_tokens: r.get(8)?,
                        output_tokens: r.get(9)?,
                        cache_read_tokens: r.get(10)?,
                        cache_creation_tokens: r.get(11)?,
                        cost_usd: r.get(12)?,
                        unpriced_calls: r.get(13)?,
                        llm_ms: r.get(14)?,
                        llm_ms_max: r.get(15)?,
                        tool_calls: r.get(16)?,
                        tool_errors: r.get(17)?,
                        tool_ms: r.get(18)?,
                        gates: r.get(19)?,
                        gates_passed: r.get(20)?,
                        retries: r.get(21)?,
                        steps: r.get(22)?,
                        step_ms: r.get(23)?,
                        step_ms_max: r.get(24)?,
                    },
                })
            })?;
            rows.collect()
        })
    }
}

impl ExportLeases for SqliteStore {
    fn watermarks(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, seq, updated_ts FROM export_watermarks ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    fn claim_export(
        &self,
        name: &str,
        owner: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, Option<String>, i64)> = tx
                .query_row(
                    "SELECT seq, lease_owner, lease_until FROM export_watermarks WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map(Some)
                .or_else(|e| {
                    if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                })?;
            let seq = match row {
                Some((_, Some(o), until)) if o != owner && until > now_us => return Ok(None),
                Some((seq, _, _)) => {
                    tx.execute(
                        "UPDATE export_watermarks SET lease_owner = ?2, lease_until = ?3 WHERE name = ?1",
                        rusqlite::params![name, owner, until_us],
                    )?;
                    seq
                }
                None => {
                    tx.execute(
                        "INSERT INTO export_watermarks (name, seq, updated_ts, lease_owner, lease_until) VALUES (?1, 0, ?2, ?3, ?4)",
                        rusqlite::params![name, now_us, owner, until_us],
                    )?;
                    0
                }
            };
            tx.commit()?;
            Ok(Some(seq))
        })
    }

    fn advance_export(
        &self,
        name: &str,
        owner: &str,
        seq: i64,
        until_us: i64,
    ) -> Result<bool, StoreError> {
        let now = agentops_core::time::now_micros();
        let n = self.with_conn(|c| {
            c.execute(
                "UPDATE export_watermarks SET seq = max(seq, ?3), updated_ts = ?4, lease_until = ?5
                 WHERE name = ?1 AND lease_owner = ?2",
                rusqlite::params![name, owner, seq, now, until_us],
            )
        })?;
        Ok(n == 1)
    }

    fn release_export(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "UPDATE export_watermarks SET lease_owner = NULL, lease_until = 0 WHERE name = ?1 AND lease_owner = ?2",
                rusqlite::params![name, owner],
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index each query shape reads: some kinds of a run through the
    /// run-and-kind index (only what is asked for, never every run's events
    /// of that kind, which grow with the whole journal); a kind alone
    /// through the kind's, newest first without a sort.
    #[test]
    fn queries_read_the_narrowest_index() {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("j.db"), OpenOptions::default()).unwrap();
        let plan = |q: &Query| -> String {
            let (sql, args) = select(q);
            s.with_conn(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows =
                    st.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
            })
            .unwrap()
        };
        let run = agentops_core::RunId::parse("s1").unwrap();
        let p = plan(&Query {
            run_id: Some(run.clone()),
            kinds: vec![EventKind::KnowledgeFeedback],
            ..Query::default()
        });
        assert!(p.contains("events_by_run_kind"), "{p}");
        let p = plan(&Query::run(run.clone()));
        assert!(
            p.contains("events_by_run ") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        let p = plan(&Query {
            kinds: vec![EventKind::ToolCall],
            since_ts: Some(1),
            limit: Some(200),
            newest_first: true,
            ..Query::default()
        });
        assert!(
            p.contains("events_by_kind") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
    }
}
