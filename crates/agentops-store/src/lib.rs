//! The journal: one append-only table of events, written through one API
//! ([`Journal`]), behind a [`Store`] trait so that SQLite (the embedded default)
//! and Postgres share one schema and one test suite.
//!
//! Every event body is redacted by [`Journal`] before any backend sees it.

mod error;
pub mod forward;
pub mod layout;
pub mod pg;
pub mod project;
pub mod rollup;
pub mod spool;
pub mod sqlite;

pub use error::StoreError;
pub use layout::{LayoutError, RepoLayout};
pub use rollup::{RollupRow, Sums};
pub use spool::{Drained, Spool};
pub use sqlite::{OpenOptions, SCHEMA_VERSION, SqliteStore, StoreStatus};

use agentops_core::config::Config;
use agentops_core::redact::{self, Redactor};
use agentops_core::{Event, EventKind, NewEvent, RunId};

/// How durable one append must be before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// As configured (`journal.synchronous`).
    Configured,
    /// fsynced before returning, whatever the configuration (step boundaries).
    Sync,
    /// Survives the process being killed, not a power cut: no fsync, whatever
    /// the configuration. For events a resumed run re-creates anyway (tool
    /// calls between two durable model calls).
    Relaxed,
}

/// Which events to read. Empty filters match everything; results are in
/// journal order (ascending `seq`), or the reverse with `newest_first`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub run_id: Option<RunId>,
    pub kinds: Vec<EventKind>,
    /// Inclusive lower bound on `ts` (µs).
    pub since_ts: Option<i64>,
    /// Exclusive upper bound on `ts` (µs).
    pub until_ts: Option<i64>,
    /// Only events with `seq` greater than this (exporters' watermark).
    pub after_seq: Option<i64>,
    /// Only events with `seq` up to this, inclusive.
    pub max_seq: Option<i64>,
    pub limit: Option<usize>,
    /// Newest first (descending `seq`): with `limit`, the latest `limit`
    /// events, read without touching the older ones.
    pub newest_first: bool,
}

impl Query {
    /// Everything after journal position `seq`.
    pub fn after(seq: i64) -> Self {
        Self {
            after_seq: Some(seq),
            ..Self::default()
        }
    }

    /// Every event of one run or session.
    pub fn run(run_id: RunId) -> Self {
        Self {
            run_id: Some(run_id),
            ..Self::default()
        }
    }
}

/// An event as stored, borrowed from the backend while a [`Store::scan`]
/// visits it: ids and kind as text, the body as JSON text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawRef<'r> {
    pub seq: i64,
    pub ts: i64,
    pub run_id: &'r str,
    pub span_id: Option<&'r str>,
    pub parent_span_id: Option<&'r str>,
    pub kind: &'r str,
    pub body: &'r str,
}

/// The event log: the append-only journal itself. What every backend must
/// have; the other traits are what the views and exporters add on top.
/// Implementations store what they are given verbatim; redaction is
/// [`Journal`]'s job.
pub trait EventLog: Send + Sync {
    /// Appends events in one transaction; returns their `seq` numbers in order.
    fn append_batch(
        &self,
        events: &[NewEvent],
        durability: Durability,
    ) -> Result<Vec<i64>, StoreError>;
    /// Appends each keyed batch at most once, all in one transaction: a
    /// batch is skipped when its key was appended before or when
    /// `still_pending(key)` (asked under the write lock) says its source is
    /// gone. Returns how many batches were appended. The spool's drain.
    fn append_once(
        &self,
        batches: &[(String, Vec<NewEvent>)],
        still_pending: &dyn Fn(&str) -> bool,
        durability: Durability,
    ) -> Result<usize, StoreError>;
    /// Forgets keys of [`EventLog::append_once`] whose sources are gone.
    fn forget_once(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Reads events matching `query`, in `seq` order.
    fn read(&self, query: &Query) -> Result<Vec<Event>, StoreError>;
    /// Visits events matching `query` as stored, in `seq` order, without
    /// copying or parsing them (for readers that take only the fields they
    /// need). Each row is visited once.
    fn scan(&self, query: &Query, f: &mut dyn FnMut(RawRef<'_>)) -> Result<(), StoreError>;
    /// The position and run of up to `limit` events after `after_seq`, in
    /// order (an exporter's scan for what is new).
    fn positions(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError>;
    /// The highest `seq` in the journal (0 when empty).
    fn last_seq(&self) -> Result<i64, StoreError>;
    /// Number of events.
    fn count(&self) -> Result<u64, StoreError>;
}

/// Knowledge utility: feedback moves an entry's score.
pub trait Feedback: Send + Sync {
    /// The utility of each of `ids` that has had feedback.
    fn utility(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Utility>, StoreError>;
    /// Moves an entry's utility toward `target` by `alpha` (an exponential
    /// moving average starting at [`Utility::START`]), atomically.
    fn apply_feedback(
        &self,
        id: &str,
        target: f64,
        alpha: f64,
        ts: i64,
    ) -> Result<Utility, StoreError>;
    /// [`Feedback::apply_feedback`] for several entries (an id may repeat),
    /// in one transaction, which may be durable only once the caller's next
    /// synced write is (hooks batch it with their events); the utilities in
    /// order.
    fn apply_feedback_many(
        &self,
        items: &[(&str, f64)],
        alpha: f64,
        ts: i64,
    ) -> Result<Vec<Utility>, StoreError> {
        items
            .iter()
            .map(|(id, target)| self.apply_feedback(id, *target, alpha, ts))
            .collect()
    }
}

/// The metrics rollup, kept current by appends (see [`rollup`]).
pub trait Rollups: Send + Sync {
    /// The rollup from UTC day `since_day` on.
    fn rollup(&self, since_day: i64) -> Result<Vec<RollupRow>, StoreError>;
}

/// Exporter (and forwarder) watermarks with leases, so that two processes
/// never ship the same events.
pub trait ExportLeases: Send + Sync {
    /// Every exporter's watermark: (name, seq, updated µs).
    fn watermarks(&self) -> Result<Vec<(String, i64, i64)>, StoreError>;
    /// Claims exporter `name` for `owner` until `until_us` unless another
    /// owner holds an unexpired lease at `now_us`; returns the watermark
    /// (0 for a new exporter) when claimed.
    fn claim_export(
        &self,
        name: &str,
        owner: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Moves exporter `name`'s watermark to `seq` and renews the lease, if
    /// `owner` still holds it; false when the lease was lost.
    fn advance_export(
        &self,
        name: &str,
        owner: &str,
        seq: i64,
        until_us: i64,
    ) -> Result<bool, StoreError>;
    /// Gives up `owner`'s lease on exporter `name`.
    fn release_export(&self, name: &str, owner: &str) -> Result<(), StoreError>;
}

/// A whole backend: every trait above. Implemented for anything that has
/// them all; [`Journal`] holds one.
pub trait Store: EventLog + Feedback + Rollups + ExportLeases {}

impl<T: EventLog + Feedback + Rollups + ExportLeases> Store for T {}

/// How useful an entry has proved: an EMA of feedback in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Utility {
    pub value: f64,
    /// How many feedback events moved it.
    pub events: u32,
}

impl Utility {
    /// Where every entry starts.
    pub const START: f64 = 0.5;
}

/// The one write path to the journal: redacts, then appends.
pub struct Journal {
    store: Box<dyn Store>,
    redactor: Option<Redactor>,
}

impl Journal {
    /// Wraps a backend, redacting with the built-in rules plus `extra_patterns`.
    pub fn new(store: Box<dyn Store>, extra_patterns: &[String]) -> Result<Self, StoreError> {
        let redactor = Self::redactor_for(extra_patterns)?;
        Ok(Self { store, redactor })
    }

    /// The redactor for a project's configuration: the built-in rules, plus
    /// its `extra_patterns` compiled when there are any.
    fn redactor_for(extra_patterns: &[String]) -> Result<Option<Redactor>, StoreError> {
        if extra_patterns.is_empty() {
            return Ok(None);
        }
        Redactor::with_extra(extra_patterns)
            .map(Some)
            .map_err(|e| StoreError::Config(e.to_string()))
    }

    /// Opens the journal a project's configuration points at, creating and
    /// migrating it when missing, and takes in what hooks left in its spool
    /// (a drain that fails leaves the spool for the next open).
    pub fn open_for(layout: &RepoLayout, config: &Config) -> Result<Self, StoreError> {
        let path = store_path(layout, config);
        let store = SqliteStore::open(
            &path,
            sqlite::OpenOptions {
                create: true,
                busy_timeout_ms: config.store.busy_timeout_ms,
                synchronous: config.journal.synchronous,
                read_only: false,
            },
        )?;
        let j = Self::new(Box::new(store), &config.redaction.extra_patterns)?;
        let _ = Spool::beside(&path).drain(j.store.as_ref());
        Ok(j)
    }

    /// Leaves `events` (redacted) in the spool of the journal `config` points
    /// at, without opening the journal: the hooks' hot path. The next open
    /// of the journal takes them in, in order; see [`spool`] for what
    /// survives what (fsynced first with `hooks.sync_tool_events`).
    pub fn spool_for(
        layout: &RepoLayout,
        config: &Config,
        mut events: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let extra = Self::redactor_for(&config.redaction.extra_patterns)?;
        let r = extra.as_ref().unwrap_or_else(|| redact::builtin());
        for e in &mut events {
            r.redact_json(&mut e.body);
        }
        Spool::beside(&store_path(layout, config)).write(&events, config.hooks.sync_tool_events)
    }

    /// Opens the journal for reading only: nothing is created, migrated or
    /// written, so read-only commands work on a read-only `.git/agentops/`
    /// (and never create a journal that is not there).
    pub fn open_read(layout: &RepoLayout, config: &Config) -> Result<Self, StoreError> {
        let path = store_path(layout, config);
        // Events hooks left behind belong in what is read: take them in
        // first when the journal can be written.
        if Spool::beside(&path).has_pending()
            && let Ok(j) = Self::open_for(layout, config)
        {
            return Ok(j);
        }
        let store = SqliteStore::open(
            &path,
            sqlite::OpenOptions {
                create: false,
                read_only: true,
                busy_timeout_ms: config.store.busy_timeout_ms,
                synchronous: config.journal.synchronous,
            },
        )?;
        Self::new(Box::new(store), &config.redaction.extra_patterns)
    }

    /// The team store as a journal (reads show every machine's events, or
    /// those its filter keeps).
    pub fn team(store: pg::PgStore, config: &Config) -> Result<Self, StoreError> {
        Self::new(Box::new(store), &config.redaction.extra_patterns)
    }

    /// The backend, for what the journal does not wrap (rollup, exporter
    /// watermarks).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The rules bodies are redacted with (built-in plus the project's
    /// `extra_patterns`): the one redaction path for text written elsewhere.
    pub fn redactor(&self) -> &Redactor {
        self.redactor.as_ref().unwrap_or_else(|| redact::builtin())
    }

    /// Appends one event (redacted) and returns its `seq`.
    pub fn append(&self, event: NewEvent, durability: Durability) -> Result<i64, StoreError> {
        let seqs = self.append_batch(vec![event], durability)?;
        seqs.first()
            .copied()
            .ok_or(StoreError::Internal("append returned no seq".into()))
    }

    /// Appends events (redacted) in one transaction.
    pub fn append_batch(
        &self,
        mut events: Vec<NewEvent>,
        durability: Durability,
    ) -> Result<Vec<i64>, StoreError> {
        let r = self.redactor();
        for e in &mut events {
            r.redact_json(&mut e.body);
        }
        self.store.append_batch(&events, durability)
    }

    /// Reads events matching `query`.
    pub fn read(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.store.read(query)
    }

    /// Visits events matching `query` as stored (see [`Store::scan`]).
    pub fn scan(&self, query: &Query, f: &mut dyn FnMut(RawRef<'_>)) -> Result<(), StoreError> {
        self.store.scan(query, f)
    }

    /// The position and run of up to `limit` events after `after_seq`.
    pub fn positions(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.store.positions(after_seq, limit)
    }

    /// The highest `seq` (0 when empty).
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        self.store.last_seq()
    }

    /// Number of events.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.store.count()
    }

    /// Utility of entries that have had feedback.
    pub fn utility(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Utility>, StoreError> {
        self.store.utility(ids)
    }

    /// The utility value of each of `ids` (entries without feedback are
    /// absent), in the form search ranking takes; a journal that cannot be
    /// read ranks as if there were no feedback.
    pub fn utility_scores(&self, ids: &[&str]) -> std::collections::HashMap<String, f64> {
        self.utility(ids)
            .map(|m| m.into_iter().map(|(k, v)| (k, v.value)).collect())
            .unwrap_or_default()
    }

    /// Applies one feedback signal to each of several entries, in one
    /// transaction.
    pub fn apply_feedback_many(
        &self,
        items: &[(&str, f64)],
        alpha: f64,
    ) -> Result<Vec<Utility>, StoreError> {
        self.store
            .apply_feedback_many(items, alpha, agentops_core::time::now_micros())
    }

    /// Applies one feedback signal to an entry's utility.
    pub fn apply_feedback(&self, id: &str, target: f64, alpha: f64) -> Result<Utility, StoreError> {
        self.store
            .apply_feedback(id, target, alpha, agentops_core::time::now_micros())
    }
}

/// Bodies as JSON text, for backends that store text.
pub(crate) fn encode_bodies(events: &[NewEvent]) -> Result<Vec<String>, StoreError> {
    events
        .iter()
        .map(|e| serde_json::to_string(&e.body))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Internal(format!("cannot encode event body: {e}")))
}

/// An event from its stored columns; what is wrong with it otherwise.
pub(crate) fn parse_event(
    seq: i64,
    ts: i64,
    run_id: &str,
    span_id: Option<&str>,
    parent_span_id: Option<&str>,
    kind: &str,
    body: &str,
) -> Result<Event, String> {
    use agentops_core::SpanId;
    let run_id = RunId::parse(run_id).map_err(|e| e.to_string())?;
    let span_id = span_id
        .map(SpanId::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let parent_span_id = parent_span_id
        .map(SpanId::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let kind: EventKind = kind
        .parse()
        .map_err(|e: agentops_core::event::EventKindError| e.to_string())?;
    let body = serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    Ok(Event {
        seq,
        ts,
        run_id,
        span_id,
        parent_span_id,
        kind,
        body,
    })
}

/// "1 batch", "3 batches".
pub(crate) fn counted_batches(n: usize) -> String {
    agentops_core::counted(u64::try_from(n).unwrap_or(u64::MAX), "batch", "batches")
}

/// The journal file the configuration points at: the default one when
/// `store.url` names a team store (this machine's journal is forwarded
/// there, never replaced by it).
fn store_path(layout: &RepoLayout, config: &Config) -> std::path::PathBuf {
    match &config.store.url {
        Some(url) if !pg::is_postgres_url(url) => layout.resolve_store_url(url),
        _ => layout.state_db(),
    }
}

/// The team store `store.url` names, when it names one.
pub fn team_target(config: &Config) -> Option<Result<pg::Target, StoreError>> {
    let url = config
        .store
        .url
        .as_deref()
        .filter(|u| pg::is_postgres_url(u))?;
    Some(pg::Target::resolve(url, &pg::process_env))
}

/// Options for [`SqliteStore::open`]: create when missing, 10 s busy timeout,
/// `synchronous = FULL`.
pub fn sqlite_open_options(create: bool) -> sqlite::OpenOptions {
    sqlite::OpenOptions {
        create,
        ..sqlite::OpenOptions::default()
    }
}
