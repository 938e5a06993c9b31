//! The team store: every store trait on PostgreSQL, in the `agentops`
//! schema of the database `store.url` names, with the same behaviour as the
//! SQLite journal (the conformance suite runs on both).
//!
//! - **Order.** Appends take one transaction-level advisory lock, so `seq`
//!   numbers become visible in the order they were given: a reader after a
//!   watermark (exporters, the dashboard's folds) never skips an event that
//!   committed late.
//! - **Durability.** A commit is durable (`synchronous_commit` as the server
//!   has it); [`Durability::Relaxed`] turns it off for that transaction.
//! - **Tags.** Every row carries the host and user it came from; events a
//!   forwarder ships also carry their origin (the local journal they came
//!   from) and their `seq` there, unique together, so a batch sent twice is
//!   stored once.
//! - **Migrations** are versioned and run under a session advisory lock, so
//!   two processes never migrate at once; a database with a newer schema is
//!   refused untouched.

mod queue;
mod target;

pub use queue::{Claimed, NewQueued, QueueStatus, QueuedRun, WorkerRow, normalize_repo};

pub use target::{Env, Target, check_url, is_postgres_url, process_env};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use agentops_core::{Event, EventKind, NewEvent, SpanId};
use postgres::types::ToSql;
use postgres::{Client, NoTls};

use crate::rollup::{RollupRow, Sums};
use crate::{
    Durability, EventLog, ExportLeases, Feedback, Query, RawRef, Rollups, StoreError, Utility,
};

/// The schema version this build writes and reads.
pub const PG_SCHEMA_VERSION: i64 = 2;

/// `pg_advisory_lock` keys: "AGOP" and a purpose.
const LOCK_MIGRATE: i64 = 0x4147_4F50_0000_0001;
const LOCK_APPEND: i64 = 0x4147_4F50_0000_0002;

/// Each entry migrates from version `index` to `index + 1`, in one
/// transaction: 1 the journal, feedback, rollups and exporter leases; 2 the
/// run queue and its workers.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE agentops.events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts             BIGINT NOT NULL,
    run_id         TEXT   NOT NULL,
    span_id        TEXT,
    parent_span_id TEXT,
    kind           TEXT   NOT NULL,
    body           TEXT   NOT NULL,
    host           TEXT   NOT NULL DEFAULT '',
    user_name      TEXT   NOT NULL DEFAULT '',
    origin         TEXT,
    origin_seq     BIGINT
);
CREATE INDEX events_by_run      ON agentops.events (run_id, seq);
CREATE INDEX events_by_kind     ON agentops.events (kind, seq);
CREATE INDEX events_by_ts       ON agentops.events (ts);
CREATE INDEX events_by_run_kind ON agentops.events (run_id, kind, seq);
CREATE INDEX events_by_host     ON agentops.events (host, user_name, seq);
CREATE UNIQUE INDEX events_origin ON agentops.events (origin, origin_seq);
CREATE TABLE agentops.utility (
    entry_id   TEXT PRIMARY KEY,
    value      DOUBLE PRECISION NOT NULL,
    events     BIGINT NOT NULL,
    updated_ts BIGINT NOT NULL
);
CREATE TABLE agentops.rollup (
    day                   BIGINT NOT NULL,
    run_id                TEXT   NOT NULL,
    agent                 TEXT   NOT NULL,
    model                 TEXT   NOT NULL,
    llm_calls             BIGINT NOT NULL DEFAULT 0,
    llm_errors            BIGINT NOT NULL DEFAULT 0,
    input_tokens          BIGINT NOT NULL DEFAULT 0,
    output_tokens         BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens     BIGINT NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd              DOUBLE PRECISION NOT NULL DEFAULT 0,
    unpriced_calls        BIGINT NOT NULL DEFAULT 0,
    llm_ms                DOUBLE PRECISION NOT NULL DEFAULT 0,
    llm_ms_max            DOUBLE PRECISION NOT NULL DEFAULT 0,
    tool_calls            BIGINT NOT NULL DEFAULT 0,
    tool_errors           BIGINT NOT NULL DEFAULT 0,
    tool_ms               DOUBLE PRECISION NOT NULL DEFAULT 0,
    gates                 BIGINT NOT NULL DEFAULT 0,
    gates_passed          BIGINT NOT NULL DEFAULT 0,
    retries               BIGINT NOT NULL DEFAULT 0,
    steps                 BIGINT NOT NULL DEFAULT 0,
    step_ms               DOUBLE PRECISION NOT NULL DEFAULT 0,
    step_ms_max           DOUBLE PRECISION NOT NULL DEFAULT 0,
    host                  TEXT   NOT NULL DEFAULT '',
    user_name             TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (day, run_id, agent, model, host, user_name)
);
CREATE TABLE agentops.runs_index (
    run_id   TEXT PRIMARY KEY,
    workflow TEXT,
    harness  TEXT,
    first_ts BIGINT NOT NULL,
    host     TEXT NOT NULL DEFAULT '',
    user_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE agentops.export_watermarks (
    name        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    updated_ts  BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE agentops.spool_drained (
    name TEXT PRIMARY KEY,
    ts   BIGINT NOT NULL
);
"#,
    r#"
CREATE TABLE agentops.queue (
    run_id      TEXT PRIMARY KEY,
    repo        TEXT   NOT NULL,
    workflow    TEXT   NOT NULL,
    spec        TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    worker      TEXT,
    lease_until BIGINT,
    not_before  BIGINT NOT NULL DEFAULT 0,
    attempts    INT    NOT NULL DEFAULT 0,
    takeovers   INT    NOT NULL DEFAULT 0,
    resume      TEXT,
    detail      TEXT   NOT NULL DEFAULT '',
    host        TEXT   NOT NULL,
    user_name   TEXT   NOT NULL,
    enqueued_ts BIGINT NOT NULL,
    updated_ts  BIGINT NOT NULL
);
CREATE INDEX queue_claimable ON agentops.queue (repo, status, enqueued_ts);
CREATE INDEX queue_by_worker ON agentops.queue (worker, status);
CREATE TABLE agentops.workers (
    id           TEXT PRIMARY KEY,
    host         TEXT   NOT NULL,
    user_name    TEXT   NOT NULL,
    pid          BIGINT NOT NULL,
    repo         TEXT   NOT NULL,
    concurrency  INT    NOT NULL,
    lease_ms     BIGINT NOT NULL,
    started_ts   BIGINT NOT NULL,
    heartbeat_ts BIGINT NOT NULL,
    stopped_ts   BIGINT
);
"#,
];

const ROLLUP_UPSERT: &str = "INSERT INTO agentops.rollup AS r (day, run_id, agent, model, llm_calls, llm_errors, input_tokens, output_tokens,
    cache_read_tokens, cache_creation_tokens, cost_usd, unpriced_calls, llm_ms, llm_ms_max, tool_calls, tool_errors, tool_ms,
    gates, gates_passed, retries, steps, step_ms, step_ms_max, host, user_name)
 SELECT *, $24::text, $25::text FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[],
    $10::int8[], $11::float8[], $12::int8[], $13::float8[], $14::float8[], $15::int8[], $16::int8[], $17::float8[], $18::int8[],
    $19::int8[], $20::int8[], $21::int8[], $22::float8[], $23::float8[])
 ON CONFLICT (day, run_id, agent, model, host, user_name) DO UPDATE SET
    llm_calls = r.llm_calls + excluded.llm_calls, llm_errors = r.llm_errors + excluded.llm_errors,
    input_tokens = r.input_tokens + excluded.input_tokens, output_tokens = r.output_tokens + excluded.output_tokens,
    cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens,
    cache_creation_tokens = r.cache_creation_tokens + excluded.cache_creation_tokens,
    cost_usd = r.cost_usd + excluded.cost_usd, unpriced_calls = r.unpriced_calls + excluded.unpriced_calls,
    llm_ms = r.llm_ms + excluded.llm_ms, llm_ms_max = greatest(r.llm_ms_max, excluded.llm_ms_max),
    tool_calls = r.tool_calls + excluded.tool_calls, tool_errors = r.tool_errors + excluded.tool_errors,
    tool_ms = r.tool_ms + excluded.tool_ms, gates = r.gates + excluded.gates, gates_passed = r.gates_passed + excluded.gates_passed,
    retries = r.retries + excluded.retries, steps = r.steps + excluded.steps, step_ms = r.step_ms + excluded.step_ms,
    step_ms_max = greatest(r.step_ms_max, excluded.step_ms_max)";

const RUNS_UPSERT: &str =
    "INSERT INTO agentops.runs_index AS i (run_id, workflow, harness, first_ts, host, user_name)
 VALUES ($1, $2, $3, $4, $5, $6)
 ON CONFLICT (run_id) DO UPDATE SET workflow = coalesce(i.workflow, excluded.workflow),
    harness = coalesce(i.harness, excluded.harness), first_ts = least(i.first_ts, excluded.first_ts)
 WHERE (i.workflow IS NULL AND excluded.workflow IS NOT NULL)
    OR (i.harness IS NULL AND excluded.harness IS NOT NULL)
    OR excluded.first_ts < i.first_ts";

/// Where rows come from: the machine and person, for team views.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tag {
    pub host: String,
    pub user: String,
}

impl Tag {
    /// This machine and user: `AGENTOPS_HOST` / `AGENTOPS_USER` when set,
    /// else the kernel's host name and `$USER`.
    pub fn local() -> Self {
        let host = process_env("AGENTOPS_HOST")
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| process_env("HOSTNAME"))
            .or_else(|| process_env("COMPUTERNAME"))
            .unwrap_or_else(|| "unknown".into());
        let user = process_env("AGENTOPS_USER")
            .or_else(|| process_env("USER"))
            .or_else(|| process_env("LOGNAME"))
            .or_else(|| process_env("USERNAME"))
            .or_else(passwd_name)
            .unwrap_or_else(|| "unknown".into());
        Self { host, user }
    }
}

/// This process's user name from its uid and /etc/passwd (when `$USER`
/// is not set, as under cron or a service manager).
fn passwd_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_owned())
        })
}

/// Which machines' and people's rows a team view reads (`None`: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub host: Option<String>,
    pub user: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.host.is_none() && self.user.is_none()
    }
}

/// One event a forwarder ships: its position in its own journal and the
/// event as stored there.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub origin_seq: i64,
    pub ts: i64,
    pub run_id: String,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    pub kind: String,
    pub body: String,
}

/// How to open the team store.
#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Migrate (under the lock) when the schema is missing or older.
    pub migrate: bool,
}

/// The schema state of a database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PgStatus {
    pub target: String,
    pub schema_version: i64,
    pub supported: i64,
    pub events: u64,
    pub last_seq: i64,
    pub server_version: String,
    /// The connection is encrypted (the server says so).
    pub encrypted: bool,
    /// What the server's certificate was verified against (with TLS).
    pub tls_roots: Option<String>,
}

/// The Postgres backend.
pub struct PgStore {
    target: Target,
    tag: Tag,
    filter: Filter,
    conn: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target.shown())
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// What one connection error means, in words a user can act on.
fn describe(target: &Target, e: &postgres::Error) -> String {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return format!(
                "authentication failed for user `{}` ({}); set PGPASSWORD or add the password to ~/.pgpass (it is never read from store.url)",
                target.user(),
                db.message()
            );
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return format!(
                "database `{}` does not exist; create it (`createdb {}`) or point store.url at another",
                target.dbname(),
                target.dbname()
            );
        }
        if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            return format!(
                "permission denied ({}); the user needs CREATE on the database for the `agentops` schema, or run `agentops store migrate` as one who has it",
                db.message()
            );
        }
        return format!("Postgres error {}: {}", code.code(), db.message());
    }
    if e.is_closed() {
        return format!(
            "the connection to the team store closed ({e}); agentops will reconnect on the next call"
        );
    }
    // The client's own words for I/O and protocol errors, with the cause.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if msg.contains("certificate") {
        return format!(
            "cannot reach the team store over TLS: {msg}. The server's certificate is not trusted \
(or not for this host name): point sslrootcert= in store.url, or PGSSLROOTCERT, at the CA that signed it"
        );
    }
    if msg.contains("does not support TLS") || msg.contains("server does not support") {
        return format!(
            "the team store does not accept TLS ({msg}): enable ssl on the server, or use sslmode=disable on a trusted network"
        );
    }
    format!(
        "cannot reach the team store: {msg}. Is PostgreSQL running there and reachable from this machine?"
    )
}

/// The connection is gone or the server is going away (a restart, a
/// failover): worth reconnecting. Class 08 is "connection exception", 57
/// "operator intervention" (admin or crash shutdown, cannot connect now).
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => c.code().starts_with("08") || c.code().starts_with("57P"),
        None => e.as_db_error().is_none(),
    }
}

/// The TLS handshake was refused (a certificate not trusted, a server
/// without TLS): retrying cannot cure it.
fn is_tls_refusal(e: &postgres::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        let t = s.to_string();
        if t.contains("certificate") || t.contains("does not support TLS") {
            return true;
        }
        src = s.source();
    }
    false
}

impl PgStore {
    /// Connects to `target` and checks (or, with `migrate`, brings up) its
    /// schema. Retries the connection with backoff for about two seconds
    /// before saying the server cannot be reached.
    pub fn open(target: Target, opts: PgOptions) -> Result<Self, StoreError> {
        let s = Self::connect(target)?;
        s.prepare(opts.migrate)?;
        Ok(s)
    }

    /// Connects without looking at the schema (for [`PgStore::migrate`]).
    pub fn connect(target: Target) -> Result<Self, StoreError> {
        let s = Self {
            target,
            tag: Tag::local(),
            filter: Filter::default(),
            conn: Mutex::new(None),
        };
        let client = s.connect_with_backoff()?;
        *s.lock() = Some(client);
        Ok(s)
    }

    /// The same store, writing rows tagged `tag` (tests, workers acting
    /// for another user).
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tag = tag;
        self
    }

    /// The same store, reading only rows that match `filter` (events,
    /// positions, counts and the rollup; writes are not filtered).
    pub fn filtered(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The target as shown (no password).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What rows appended here are tagged with.
    pub fn tag(&self) -> &Tag {
        &self.tag
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Client>> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        StoreError::Postgres {
            target: self.target.shown().to_owned(),
            detail: describe(&self.target, e),
        }
    }

    fn connect_once(&self) -> Result<Client, postgres::Error> {
        match &self.target.tls {
            Some(tls) => self
                .target
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (**tls).clone(),
                )),
            None => self.target.config.connect(NoTls),
        }
    }

    /// Whether this store's connection is encrypted (the server's own
    /// view, `pg_stat_ssl`).
    pub fn encrypted(&self) -> Result<bool, StoreError> {
        self.with(true, |c| {
            Ok(c.query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )?
            .is_some_and(|r| r.get::<_, bool>(0)))
        })
    }

    fn connect_with_backoff(&self) -> Result<Client, StoreError> {
        let mut delay = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            match self.connect_once() {
                Ok(c) => return Ok(c),
                // Authentication, a missing database or a certificate that
                // is not trusted will not get better.
                Err(e) if !is_connection_error(&e) || is_tls_refusal(&e) || tries >= 4 => {
                    return Err(self.err(&e));
                }
                Err(_) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                    tries += 1;
                }
            }
        }
    }

    /// Runs `f` on the connection, reconnecting first when it was lost.
    /// `retry`: run `f` once more on a fresh connection when it failed
    /// because the connection dropped (reads and idempotent writes only).
    fn with<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        for attempt in 0..2 {
            if guard.as_ref().is_none_or(Client::is_closed) {
                *guard = Some(self.connect_with_backoff()?);
            }
            let Some(client) = guard.as_mut() else {
                return Err(StoreError::Internal("no Postgres connection".into()));
            };
            match f(client) {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_error(&e) => {
                    *guard = None;
                    if !retry || attempt == 1 {
                        return Err(self.err(&e));
                    }
                }
                Err(e) => return Err(self.err(&e)),
            }
        }
        Err(StoreError::Internal("unreachable retry".into()))
    }

    /// The schema version in the database (0 when there is none).
    fn version(c: &mut Client) -> Result<i64, postgres::Error> {
        let exists: bool = c
            .query_one(
                "SELECT to_regclass('agentops.schema_version') IS NOT NULL",
                &[],
            )?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<i64> = c
            .query_one("SELECT max(version) FROM agentops.schema_version", &[])?
            .get(0);
        Ok(v.unwrap_or(0))
    }

    fn prepare(&self, migrate: bool) -> Result<(), StoreError> {
        let found = self.with(true, Self::version)?;
        if found > PG_SCHEMA_VERSION {
            return Err(StoreError::PostgresNewerSchema {
                target: self.target.shown().to_owned(),
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        if found == PG_SCHEMA_VERSION {
            return Ok(());
        }
        if !migrate {
            return Err(StoreError::Postgres {
                target: self.target.shown().to_owned(),
                detail: format!(
                    "the team store's schema is at version {found}, this agentops needs {PG_SCHEMA_VERSION}; run `agentops store migrate`"
                ),
            });
        }
        self.migrate().map(|_| ())
    }

    /// Brings the schema to [`PG_SCHEMA_VERSION`] under a session advisory
    /// lock (a second process waits, then finds nothing to do); returns the
    /// versions applied.
    pub fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let target = self.target.shown().to_owned();
        self.with(false, |c| {
            c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_MIGRATE])?;
            let result = (|| {
                let mut applied = Vec::new();
                let found = Self::version(c)?;
                if found > PG_SCHEMA_VERSION {
                    return Ok(Err(found));
                }
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
                    let to = i64::try_from(i + 1).unwrap_or(i64::MAX);
                    let mut tx = c.transaction()?;
                    tx.batch_execute(
                        "CREATE SCHEMA IF NOT EXISTS agentops;
                         CREATE TABLE IF NOT EXISTS agentops.schema_version (version BIGINT PRIMARY KEY, applied_ts BIGINT NOT NULL)",
                    )?;
                    tx.batch_execute(sql)?;
                    tx.execute(
                        "INSERT INTO agentops.schema_version (version, applied_ts) VALUES ($1, $2)",
                        &[&to, &agentops_core::time::now_micros()],
                    )?;
                    tx.commit()?;
                    applied.push(to);
                }
                Ok(Ok(applied))
            })();
            let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_MIGRATE]);
            result
        })?
        .map_err(|found| StoreError::PostgresNewerSchema {
            target,
            found,
            supported: PG_SCHEMA_VERSION,
        })
    }

    /// Schema, size and server of the team store.
    pub fn status(&self) -> Result<PgStatus, StoreError> {
        let (schema_version, server_version) = self.with(true, |c| {
            let v = Self::version(c)?;
            let s: String = c.query_one("SHOW server_version", &[])?.get(0);
            Ok((v, s))
        })?;
        Ok(PgStatus {
            target: self.target.shown().to_owned(),
            schema_version,
            supported: PG_SCHEMA_VERSION,
            events: self.count()?,
            last_seq: self.last_seq()?,
            server_version,
            encrypted: self.encrypted()?,
            tls_roots: self.target.tls_roots().map(str::to_owned),
        })
    }

    /// The highest `seq` of `origin` stored here (0 when none): where a
    /// forwarder resumes, whatever its own watermark says.
    pub fn forwarded_through(&self, origin: &str) -> Result<i64, StoreError> {
        self.with(true, |c| {
            let v: Option<i64> = c
                .query_one(
                    "SELECT max(origin_seq) FROM agentops.events WHERE origin = $1",
                    &[&origin],
                )?
                .get(0);
            Ok(v.unwrap_or(0))
        })
    }

    /// Stores events shipped from journal `origin`, tagged `tag`, each at
    /// most once (a row of the same origin and `origin_seq` already here is
    /// skipped), folding the new ones into the rollup; returns how many
    /// were new. Idempotent, so retried after a lost connection.
    pub fn append_forwarded(
        &self,
        origin: &str,
        tag: &Tag,
        events: &[Forwarded],
    ) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        // Bodies are folded only for rows that were new.
        let parsed: Vec<Option<(EventKind, serde_json::Value)>> = events
            .iter()
            .map(|e| {
                Some((
                    e.kind.parse::<EventKind>().ok()?,
                    serde_json::from_str(&e.body).ok()?,
                ))
            })
            .collect();
        let cols = Columns::of_forwarded(events);
        let by_origin: HashMap<i64, usize> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.origin_seq, i))
            .collect();
        let origin_seqs: Vec<i64> = events.iter().map(|e| e.origin_seq).collect();
        self.with(true, |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_APPEND])?;
            let rows = tx.query(
                "INSERT INTO agentops.events (ts, run_id, span_id, parent_span_id, kind, body, host, user_name, origin, origin_seq)
                 SELECT t.ts, t.run_id, t.span_id, t.parent_span_id, t.kind, t.body, $7, $8, $9, t.origin_seq
                 FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $10::int8[])
                      WITH ORDINALITY AS t(ts, run_id, span_id, parent_span_id, kind, body, origin_seq, ord)
                 ORDER BY t.ord
                 ON CONFLICT (origin, origin_seq) DO NOTHING
                 RETURNING origin_seq",
                &[
                    &cols.ts,
                    &cols.run_id,
                    &cols.span_id,
                    &cols.parent_span_id,
                    &cols.kind,
                    &cols.body,
                    &tag.host,
                    &tag.user,
                    &origin,
                    &origin_seqs,
                ],
            )?;
            let mut fresh: Vec<usize> = rows
                .iter()
                .filter_map(|r| by_origin.get(&r.get::<_, i64>(0)).copied())
                .collect();
            fresh.sort_unstable();
            let folded = fresh.iter().filter_map(|&i| {
                parsed[i]
                    .as_ref()
                    .map(|(k, b)| (events[i].ts, events[i].run_id.as_str(), k, b))
            });
            fold(&mut tx, folded, tag)?;
            tx.commit()?;
            Ok(fresh.len())
        })
    }

    fn append_tx(
        &self,
        tx: &mut postgres::Transaction<'_>,
        events: &[NewEvent],
        bodies: &[String],
    ) -> Result<Vec<i64>, postgres::Error> {
        let cols = Columns::of_new(events, bodies);
        let rows = tx.query(
            "INSERT INTO agentops.events (ts, run_id, span_id, parent_span_id, kind, body, host, user_name)
             SELECT t.ts, t.run_id, t.span_id, t.parent_span_id, t.kind, t.body, $7, $8
             FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                  WITH ORDINALITY AS t(ts, run_id, span_id, parent_span_id, kind, body, ord)
             ORDER BY t.ord
             RETURNING seq",
            &[
                &cols.ts,
                &cols.run_id,
                &cols.span_id,
                &cols.parent_span_id,
                &cols.kind,
                &cols.body,
                &self.tag.host,
                &self.tag.user,
            ],
        )?;
        // Identity values are drawn in insertion order.
        let mut seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        seqs.sort_unstable();
        fold(
            tx,
            events
                .iter()
                .map(|e| (e.ts, e.run_id.as_str(), &e.kind, &e.body)),
            &self.tag,
        )?;
        Ok(seqs)
    }

    fn begin<'c>(
        c: &'c mut Client,
        durability: Durability,
    ) -> Result<postgres::Transaction<'c>, postgres::Error> {
        let mut tx = c.transaction()?;
        if durability == Durability::Relaxed {
            tx.batch_execute("SET LOCAL synchronous_commit = off")?;
        }
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_APPEND])?;
        Ok(tx)
    }

    fn bad_row(&self, seq: i64, reason: String) -> StoreError {
        StoreError::BadRow {
            path: PathBuf::from(self.target.shown()),
            seq,
            reason,
        }
    }

    fn to_event(&self, r: &postgres::Row) -> Result<Event, StoreError> {
        let seq: i64 = r.get(0);
        crate::parse_event(
            seq,
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
        .map_err(|why| self.bad_row(seq, why))
    }
}

/// A batch as columns, for one `unnest` insert.
struct Columns<'a> {
    ts: Vec<i64>,
    run_id: Vec<&'a str>,
    span_id: Vec<Option<&'a str>>,
    parent_span_id: Vec<Option<&'a str>>,
    kind: Vec<&'a str>,
    body: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of_new(events: &'a [NewEvent], bodies: &'a [String]) -> Self {
        Self {
            ts: events.iter().map(|e| e.ts).collect(),
            run_id: events.iter().map(|e| e.run_id.as_str()).collect(),
            span_id: events
                .iter()
                .map(|e| e.span_id.as_ref().map(SpanId::as_str))
                .collect(),
            parent_span_id: events
                .iter()
                .map(|e| e.parent_span_id.as_ref().map(SpanId::as_str))
                .collect(),
            kind: events.iter().map(|e| e.kind.as_str()).collect(),
            body: bodies.iter().map(String::as_str).collect(),
        }
    }

    fn of_forwarded(events: &'a [Forwarded]) -> Self {
        Self {
            ts: events.iter().map(|e| e.ts).collect(),
            run_id: events.iter().map(|e| e.run_id.as_str()).collect(),
            span_id: events.iter().map(|e| e.span_id.as_deref()).collect(),
            parent_span_id: events.iter().map(|e| e.parent_span_id.as_deref()).collect(),
            kind: events.iter().map(|e| e.kind.as_str()).collect(),
            body: events.iter().map(|e| e.body.as_str()).collect(),
        }
    }
}

/// Folds events into the rollup and the runs index, one upsert per table:
/// the batch's deltas summed per cell first.
fn fold<'e>(
    tx: &mut postgres::Transaction<'_>,
    events: impl Iterator<Item = (i64, &'e str, &'e EventKind, &'e serde_json::Value)>,
    tag: &Tag,
) -> Result<(), postgres::Error> {
    let mut cells: HashMap<(i64, String, String, String), Sums> = HashMap::new();
    let mut runs: HashMap<String, (Option<String>, Option<String>, i64)> = HashMap::new();
    for (ts, run_id, kind, body) in events {
        if let Some((agent, model, d)) = crate::rollup::delta(kind, body) {
            cells
                .entry((crate::rollup::day_of(ts), run_id.to_owned(), agent, model))
                .or_default()
                .add(&d);
        }
        if let Some((workflow, harness)) = crate::rollup::run_info(kind, body) {
            let e = runs.entry(run_id.to_owned()).or_insert((None, None, ts));
            e.0 = e.0.take().or(workflow);
            e.1 = e.1.take().or(harness);
            e.2 = e.2.min(ts);
        }
    }
    if !cells.is_empty() {
        let mut cols = RollupCols::default();
        for ((day, run, agent, model), s) in cells {
            cols.push(day, run, agent, model, &s);
        }
        let p: [&(dyn ToSql + Sync); 25] = [
            &cols.day,
            &cols.run_id,
            &cols.agent,
            &cols.model,
            &cols.llm_calls,
            &cols.llm_errors,
            &cols.input_tokens,
            &cols.output_tokens,
            &cols.cache_read_tokens,
            &cols.cache_creation_tokens,
            &cols.cost_usd,
            &cols.unpriced_calls,
            &cols.llm_ms,
            &cols.llm_ms_max,
            &cols.tool_calls,
            &cols.tool_errors,
            &cols.tool_ms,
            &cols.gates,
            &cols.gates_passed,
            &cols.retries,
            &cols.steps,
            &cols.step_ms,
            &cols.step_ms_max,
            &tag.host,
            &tag.user,
        ];
        tx.execute(ROLLUP_UPSERT, &p)?;
    }
    for (run, (workflow, harness, ts)) in runs {
        tx.execute(
            RUNS_UPSERT,
            &[&run, &workflow, &harness, &ts, &tag.host, &tag.user],
        )?;
    }
    Ok(())
}

#[derive(Default)]
struct RollupCols {
    day: Vec<i64>,
    run_id: Vec<String>,
    agent: Vec<String>,
    model: Vec<String>,
    llm_calls: Vec<i64>,
    llm_errors: Vec<i64>,
    input_tokens: Vec<i64>,
    output_tokens: Vec<i64>,
    cache_read_tokens: Vec<i64>,
    cache_creation_tokens: Vec<i64>,
    cost_usd: Vec<f64>,
    unpriced_calls: Vec<i64>,
    llm_ms: Vec<f64>,
    llm_ms_max: Vec<f64>,
    tool_calls: Vec<i64>,
    tool_errors: Vec<i64>,
    tool_ms: Vec<f64>,
    gates: Vec<i64>,
    gates_passed: Vec<i64>,
    retries: Vec<i64>,
    steps: Vec<i64>,
    step_ms: Vec<f64>,
    step_ms_max: Vec<f64>,
}

impl RollupCols {
    fn push(&mut self, day: i64, run: String, agent: String, model: String, s: &Sums) {
        self.day.push(day);
        self.run_id.push(run);
        self.agent.push(agent);
        self.model.push(model);
        self.llm_calls.push(s.llm_calls);
        self.llm_errors.push(s.llm_errors);
        self.input_tokens.push(s.input_tokens);
        self.output_tokens.push(s.output_tokens);
        self.cache_read_tokens.push(s.cache_read_tokens);
        self.cache_creation_tokens.push(s.cache_creation_tokens);
        self.cost_usd.push(s.cost_usd);
        self.unpriced_calls.push(s.unpriced_calls);
        self.llm_ms.push(s.llm_ms);
        self.llm_ms_max.push(s.llm_ms_max);
        self.tool_calls.push(s.tool_calls);
        self.tool_errors.push(s.tool_errors);
        self.tool_ms.push(s.tool_ms);
        self.gates.push(s.gates);
        self.gates_passed.push(s.gates_passed);
        self.retries.push(s.retries);
        self.steps.push(s.steps);
        self.step_ms.push(s.step_ms);
        self.step_ms_max.push(s.step_ms_max);
    }
}

/// The `SELECT` for `q` with `$n` parameters.
fn select(q: &Query, filter: &Filter) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut sql = String::from(
        "SELECT seq, ts, run_id, span_id, parent_span_id, kind, body FROM agentops.events WHERE TRUE",
    );
    let mut arg = |sql: &mut String, cond: &str, v: Box<dyn ToSql + Sync>| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(r) = &q.run_id {
        arg(&mut sql, " AND run_id = ?", Box::new(r.as_str().to_owned()));
    }
    if let Some(h) = &filter.host {
        arg(&mut sql, " AND host = ?", Box::new(h.clone()));
    }
    if let Some(u) = &filter.user {
        arg(&mut sql, " AND user_name = ?", Box::new(u.clone()));
    }
    if !q.kinds.is_empty() {
        let kinds: Vec<String> = q.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        arg(&mut sql, " AND kind = ANY(?)", Box::new(kinds));
    }
    if let Some(t) = q.since_ts {
        arg(&mut sql, " AND ts >= ?", Box::new(t));
    }
    if let Some(t) = q.until_ts {
        arg(&mut sql, " AND ts < ?", Box::new(t));
    }
    if let Some(s) = q.after_seq {
        arg(&mut sql, " AND seq > ?", Box::new(s));
    }
    if let Some(s) = q.max_seq {
        arg(&mut sql, " AND seq <= ?", Box::new(s));
    }
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    });
    if let Some(l) = q.limit {
        arg(
            &mut sql,
            " LIMIT ?",
            Box::new(i64::try_from(l).unwrap_or(i64::MAX)),
        );
    }
    (sql, args)
}

fn refs(args: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|b| b.as_ref()).collect()
}

/// Rows fetched per round trip while scanning.
const SCAN_CHUNK: i32 = 5_000;

impl EventLog for PgStore {
    fn append_batch(
        &self,
        events: &[NewEvent],
        durability: Durability,
    ) -> Result<Vec<i64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = crate::encode_bodies(events)?;
        // Not retried: whether a commit whose answer was lost happened is
        // unknown, and a retry could store the batch twice.
        self.with(false, |c| {
            let mut tx = Self::begin(c, durability)?;
            let seqs = self.append_tx(&mut tx, events, &bodies)?;
            tx.commit()?;
            Ok(seqs)
        })
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
        // Keyed, so a retry cannot append a batch twice.
        self.with(true, |c| {
            let mut tx = Self::begin(c, durability)?;
            let mut appended = 0;
            for ((key, events), bodies) in batches.iter().zip(&bodies) {
                let seen = tx
                    .query_opt(
                        "SELECT 1 FROM agentops.spool_drained WHERE name = $1",
                        &[key],
                    )?
                    .is_some();
                if seen || !still_pending(key) {
                    continue;
                }
                self.append_tx(&mut tx, events, bodies)?;
                tx.execute(
                    "INSERT INTO agentops.spool_drained (name, ts) VALUES ($1, $2)",
                    &[key, &now],
                )?;
                appended += 1;
            }
            tx.commit()?;
            Ok(appended)
        })
    }

    fn forget_once(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let old = agentops_core::time::now_micros() - 7 * 86_400 * 1_000_000;
        self.with(true, |c| {
            c.execute(
                "DELETE FROM agentops.spool_drained WHERE name = ANY($1) OR ts < $2",
                &[&keys, &old],
            )?;
            Ok(())
        })
    }

    fn read(&self, q: &Query) -> Result<Vec<Event>, StoreError> {
        let (sql, args) = select(q, &self.filter);
        let rows = self.with(true, |c| c.query(&sql, &refs(&args)))?;
        rows.iter().map(|r| self.to_event(r)).collect()
    }

    fn scan(&self, q: &Query, f: &mut dyn FnMut(RawRef<'_>)) -> Result<(), StoreError> {
        let (sql, args) = select(q, &self.filter);
        // A retry after a dropped connection must not hand a row over twice.
        let mut delivered: Option<i64> = None;
        let newest_first = q.newest_first;
        self.with(true, |c| {
            let mut tx = c.build_transaction().read_only(true).start()?;
            let portal = tx.bind(sql.as_str(), &refs(&args))?;
            loop {
                let rows = tx.query_portal(&portal, SCAN_CHUNK)?;
                if rows.is_empty() {
                    break;
                }
                for r in &rows {
                    let seq: i64 = r.get(0);
                    if delivered.is_some_and(|d| if newest_first { seq >= d } else { seq <= d }) {
                        continue;
                    }
                    f(RawRef {
                        seq,
                        ts: r.get(1),
                        run_id: r.get(2),
                        span_id: r.get(3),
                        parent_span_id: r.get(4),
                        kind: r.get(5),
                        body: r.get(6),
                    });
                    delivered = Some(seq);
                }
                if rows.len() < usize::try_from(SCAN_CHUNK).unwrap_or(usize::MAX) {
                    break;
                }
            }
            tx.commit()
        })
    }

    fn positions(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(true, |c| {
            let rows = c.query(
                "SELECT seq, run_id FROM agentops.events WHERE seq > $1
                   AND ($3::text IS NULL OR host = $3) AND ($4::text IS NULL OR user_name = $4)
                 ORDER BY seq LIMIT $2",
                &[&after_seq, &limit, &self.filter.host, &self.filter.user],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn last_seq(&self) -> Result<i64, StoreError> {
        self.with(true, |c| {
            let v: Option<i64> = if self.filter.is_empty() {
                c.query_one("SELECT max(seq) FROM agentops.events", &[])?.get(0)
            } else {
                c.query_one(
                    "SELECT max(seq) FROM agentops.events
                     WHERE ($1::text IS NULL OR host = $1) AND ($2::text IS NULL OR user_name = $2)",
                    &[&self.filter.host, &self.filter.user],
                )?
                .get(0)
            };
            Ok(v.unwrap_or(0))
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.with(true, |c| {
            Ok(c.query_one(
                "SELECT count(*) FROM agentops.events
                 WHERE ($1::text IS NULL OR host = $1) AND ($2::text IS NULL OR user_name = $2)",
                &[&self.filter.host, &self.filter.user],
            )?
            .get(0))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

const FEEDBACK_UPSERT: &str = "INSERT INTO agentops.utility AS u (entry_id, value, events, updated_ts)
 VALUES ($1, (1.0 - $3::float8) * 0.5 + $3::float8 * $2::float8, 1, $4)
 ON CONFLICT (entry_id) DO UPDATE SET value = (1.0 - $3::float8) * u.value + $3::float8 * $2::float8,
    events = u.events + 1, updated_ts = $4
 RETURNING value, events";

impl Feedback for PgStore {
    fn utility(&self, ids: &[&str]) -> Result<HashMap<String, Utility>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<&str> = ids.to_vec();
        let rows = self.with(true, |c| {
            c.query(
                "SELECT entry_id, value, events FROM agentops.utility WHERE entry_id = ANY($1)",
                &[&ids],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                let events: i64 = r.get(2);
                (
                    r.get::<_, String>(0),
                    Utility {
                        value: r.get(1),
                        events: u32::try_from(events).unwrap_or(u32::MAX),
                    },
                )
            })
            .collect())
    }

    fn apply_feedback(
        &self,
        id: &str,
        target: f64,
        alpha: f64,
        ts: i64,
    ) -> Result<Utility, StoreError> {
        let mut v = self.apply_feedback_many(&[(id, target)], alpha, ts)?;
        v.pop()
            .ok_or_else(|| StoreError::Internal("no utility returned".into()))
    }

    fn apply_feedback_many(
        &self,
        items: &[(&str, f64)],
        alpha: f64,
        ts: i64,
    ) -> Result<Vec<Utility>, StoreError> {
        // Not retried: a lost answer may hide an applied signal.
        self.with(false, |c| {
            let mut tx = c.transaction()?;
            let stmt = tx.prepare(FEEDBACK_UPSERT)?;
            let mut out = Vec::with_capacity(items.len());
            for (id, target) in items {
                let r = tx.query_one(&stmt, &[id, target, &alpha, &ts])?;
                let events: i64 = r.get(1);
                out.push(Utility {
                    value: r.get(0),
                    events: u32::try_from(events).unwrap_or(u32::MAX),
                });
            }
            tx.commit()?;
            Ok(out)
        })
    }
}

impl Rollups for PgStore {
    fn rollup(&self, since_day: i64) -> Result<Vec<RollupRow>, StoreError> {
        let rows = self.with(true, |c| {
            // Cells of one (day, run, agent, model) from several hosts (a
            // run another worker took over) are summed unless filtered.
            c.query(
                "SELECT r.day, r.run_id, r.agent, r.model, min(i.workflow), min(i.harness),
                        sum(r.llm_calls)::int8, sum(r.llm_errors)::int8, sum(r.input_tokens)::int8,
                        sum(r.output_tokens)::int8, sum(r.cache_read_tokens)::int8,
                        sum(r.cache_creation_tokens)::int8, sum(r.cost_usd), sum(r.unpriced_calls)::int8,
                        sum(r.llm_ms), max(r.llm_ms_max), sum(r.tool_calls)::int8, sum(r.tool_errors)::int8,
                        sum(r.tool_ms), sum(r.gates)::int8, sum(r.gates_passed)::int8, sum(r.retries)::int8,
                        sum(r.steps)::int8, sum(r.step_ms), max(r.step_ms_max)
                 FROM agentops.rollup r LEFT JOIN agentops.runs_index i ON i.run_id = r.run_id
                 WHERE r.day >= $1 AND ($2::text IS NULL OR r.host = $2) AND ($3::text IS NULL OR r.user_name = $3)
                 GROUP BY r.day, r.run_id, r.agent, r.model
                 ORDER BY r.day, r.run_id, r.agent, r.model",
                &[&since_day, &self.filter.host, &self.filter.user],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| RollupRow {
                day: r.get(0),
                run_id: r.get(1),
                agent: r.get(2),
                model: r.get(3),
                workflow: r.get(4),
                harness: r.get(5),
                sums: Sums {
                    llm_calls: r.get(6),
                    llm_errors: r.get(7),
                    input_tokens: r.get(8),
                    output_tokens: r.get(9),
                    cache_read_tokens: r.get(10),
                    cache_creation_tokens: r.get(11),
                    cost_usd: r.get(12),
                    unpriced_calls: r.get(13),
                    llm_ms: r.get(14),
                    llm_ms_max: r.get(15),
                    tool_calls: r.get(16),
                    tool_errors: r.get(17),
                    tool_ms: r.get(18),
                    gates: r.get(19),
                    gates_passed: r.get(20),
                    retries: r.get(21),
                    steps: r.get(22),
                    step_ms: r.get(23),
                    step_ms_max: r.get(24),
                },
            })
            .collect())
    }
}

impl ExportLeases for PgStore {
    fn watermarks(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = self.with(true, |c| {
            c.query(
                "SELECT name, seq, updated_ts FROM agentops.export_watermarks ORDER BY name",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn claim_export(
        &self,
        name: &str,
        owner: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.with(true, |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO agentops.export_watermarks (name, seq, updated_ts, lease_owner, lease_until)
                 VALUES ($1, 0, $2, NULL, 0) ON CONFLICT (name) DO NOTHING",
                &[&name, &now_us],
            )?;
            let r = tx.query_one(
                "SELECT seq, lease_owner, lease_until FROM agentops.export_watermarks WHERE name = $1 FOR UPDATE",
                &[&name],
            )?;
            let (seq, lease_owner, lease_until): (i64, Option<String>, i64) =
                (r.get(0), r.get(1), r.get(2));
            if lease_owner.as_deref().is_some_and(|o| o != owner) && lease_until > now_us {
                tx.rollback()?;
                return Ok(None);
            }
            tx.execute(
                "UPDATE agentops.export_watermarks SET lease_owner = $2, lease_until = $3 WHERE name = $1",
                &[&name, &owner, &until_us],
            )?;
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
        let n = self.with(true, |c| {
            c.execute(
                "UPDATE agentops.export_watermarks SET seq = greatest(seq, $3), updated_ts = $4, lease_until = $5
                 WHERE name = $1 AND lease_owner = $2",
                &[&name, &owner, &seq, &now, &until_us],
            )
        })?;
        Ok(n == 1)
    }

    fn release_export(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.with(true, |c| {
            c.execute(
                "UPDATE agentops.export_watermarks SET lease_owner = NULL, lease_until = 0 WHERE name = $1 AND lease_owner = $2",
                &[&name, &owner],
            )
        })?;
        Ok(())
    }
}
