//! The forwarder: ships this machine's journal to the team store, the way
//! the OTLP exporter ships spans — a watermark and a lease in the local
//! journal (`forward:<target>`), so two processes never forward at once.
//!
//! Nothing is lost: events stay in the local journal until the team store
//! has committed them, and a pass picks up after what the team store holds
//! from this journal (its origin), whatever the local watermark says — a
//! team database restored from an older backup gets the rest again.
//! Nothing is sent twice: each event goes with its origin and local `seq`,
//! unique together in the team store.

use std::time::{Duration, Instant};

use crate::pg::{Forwarded, PgStore, Tag};
use crate::{ExportLeases, Query, Store, StoreError};

/// How long a forwarder's lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);

/// Events per team-store transaction.
pub const BATCH: usize = 2_000;

fn lease_until() -> i64 {
    agentops_core::time::now_micros() + i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX)
}

/// The marker row naming this journal's origin id in its watermark table.
const ORIGIN_PREFIX: &str = "journal-origin:";

/// This journal's origin id: made once (a ULID) and kept in its own
/// watermark table, so a journal made again is a new origin.
pub fn origin_of(local: &dyn ExportLeases) -> Result<String, StoreError> {
    let existing = local
        .watermarks()?
        .into_iter()
        .filter_map(|(name, _, _)| name.strip_prefix(ORIGIN_PREFIX).map(str::to_owned))
        .min();
    if let Some(o) = existing {
        return Ok(o);
    }
    let id = agentops_core::ids::Ulid::generate()
        .to_string()
        .to_ascii_lowercase();
    let name = format!("{ORIGIN_PREFIX}{id}");
    let now = agentops_core::time::now_micros();
    // A row with no lease: only its name matters.
    local.claim_export(&name, "origin", now, 0)?;
    local.release_export(&name, "origin")?;
    // Two processes making one at the same instant both keep the smaller.
    local
        .watermarks()?
        .into_iter()
        .filter_map(|(name, _, _)| name.strip_prefix(ORIGIN_PREFIX).map(str::to_owned))
        .min()
        .ok_or_else(|| StoreError::Internal("the journal's origin id was not kept".into()))
}

/// The watermark's name for a team store.
pub fn watermark_name(team: &PgStore) -> String {
    format!("forward:{}", team.target().shown())
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Events the team store did not have yet.
    pub sent: usize,
    /// Events it already had (sent before a lost acknowledgement).
    pub skipped: usize,
    pub batches: usize,
    /// The local position forwarded through.
    pub watermark: i64,
    /// The local journal's last position.
    pub local_last: i64,
    pub elapsed_ms: f64,
}

/// Why a pass could not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(
        "another agentops process is forwarding this journal to {0}; try again when it is done"
    )]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A forwarder holding its lease while it lives.
pub struct Forwarder<'a> {
    local: &'a dyn Store,
    team: &'a PgStore,
    tag: Tag,
    origin: String,
    name: String,
    owner: String,
    watermark: i64,
}

impl std::fmt::Debug for Forwarder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("origin", &self.origin)
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl<'a> Forwarder<'a> {
    /// Claims the lease for forwarding `local` to `team`, tagging events
    /// with `tag`.
    pub fn claim(local: &'a dyn Store, team: &'a PgStore, tag: Tag) -> Result<Self, ForwardError> {
        let name = watermark_name(team);
        let owner = format!(
            "{}-{}",
            std::process::id(),
            agentops_core::ids::Ulid::generate()
        );
        let now = agentops_core::time::now_micros();
        // The local watermark is only shown (`store status`): where to
        // start is what the team store holds from this journal.
        local
            .claim_export(&name, &owner, now, lease_until())?
            .ok_or_else(|| ForwardError::Busy(team.target().shown().to_owned()))?;
        let origin = origin_of(local)?;
        let through = team.forwarded_through(&origin)?;
        Ok(Self {
            local,
            team,
            tag,
            origin,
            name,
            owner,
            watermark: through,
        })
    }

    /// This journal's origin id in the team store.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Ships everything after the watermark, in batches, each committed by
    /// the team store before the watermark moves past it.
    pub fn pass(&mut self) -> Result<Report, ForwardError> {
        let started = Instant::now();
        let mut report = Report::default();
        loop {
            let mut batch: Vec<Forwarded> = Vec::with_capacity(BATCH);
            let q = Query {
                after_seq: Some(self.watermark),
                limit: Some(BATCH),
                ..Query::default()
            };
            self.local.scan(&q, &mut |r| {
                batch.push(Forwarded {
                    origin_seq: r.seq,
                    ts: r.ts,
                    run_id: r.run_id.to_owned(),
                    span_id: r.span_id.map(str::to_owned),
                    parent_span_id: r.parent_span_id.map(str::to_owned),
                    kind: r.kind.to_owned(),
                    body: r.body.to_owned(),
                });
            })?;
            let Some(last) = batch.last().map(|e| e.origin_seq) else {
                break;
            };
            let n = batch.len();
            let sent = self
                .team
                .append_forwarded(&self.origin, &self.tag, &batch)?;
            report.sent += sent;
            report.skipped += n - sent;
            report.batches += 1;
            self.advance(last)?;
            if n < BATCH {
                break;
            }
        }
        report.watermark = self.watermark;
        report.local_last = self.local.last_seq()?;
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }

    fn advance(&mut self, seq: i64) -> Result<(), ForwardError> {
        if !self
            .local
            .advance_export(&self.name, &self.owner, seq, lease_until())?
        {
            return Err(ForwardError::Busy(self.team.target().shown().to_owned()));
        }
        self.watermark = seq;
        Ok(())
    }
}

impl Drop for Forwarder<'_> {
    fn drop(&mut self) {
        let _ = self.local.release_export(&self.name, &self.owner);
    }
}

/// Where forwarding stands, from the local journal alone (no connection):
/// the watermark per team store and how far behind it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LocalStatus {
    pub target: String,
    pub watermark: i64,
    pub local_last: i64,
    /// Local events not forwarded yet.
    pub behind: i64,
    /// When the watermark last moved (µs), 0 when never.
    pub updated_us: i64,
}

/// The forwarding state of `local` for each team store it has forwarded to.
pub fn local_status(local: &dyn Store) -> Result<Vec<LocalStatus>, StoreError> {
    let last = local.last_seq()?;
    Ok(local
        .watermarks()?
        .into_iter()
        .filter_map(|(name, seq, updated)| {
            name.strip_prefix("forward:").map(|t| LocalStatus {
                target: t.to_owned(),
                watermark: seq,
                local_last: last,
                behind: (last - seq).max(0),
                updated_us: updated,
            })
        })
        .collect())
}

/// What [`follow`] reports after each pass that sent something or failed.
pub type OnPass<'f> = &'f mut dyn FnMut(&Result<Report, ForwardError>);

/// Forwards `local` to the team store at `target` until `stop` says so:
/// a pass every `poll`, and while the team store cannot be reached (down at
/// start, down mid-way, restarting) a retry with backoff up to 30 s — the
/// events wait in the local journal. Another forwarder holding the lease
/// is waited out the same way.
pub fn follow(
    local: &dyn Store,
    target: &crate::pg::Target,
    tag: &Tag,
    poll: Duration,
    stop: &dyn Fn() -> bool,
    on_pass: OnPass<'_>,
) -> Result<(), ForwardError> {
    let max = Duration::from_secs(30);
    let mut backoff = Duration::from_secs(1);
    let wait = |d: Duration| -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if stop() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50).min(d));
        }
        stop()
    };
    loop {
        let team = match PgStore::open(target.clone(), crate::pg::PgOptions { migrate: true }) {
            Ok(t) => t,
            Err(e) => {
                let r = Err(ForwardError::Store(e));
                on_pass(&r);
                if wait(backoff) {
                    return Ok(());
                }
                backoff = (backoff * 2).min(max);
                continue;
            }
        };
        let mut f = match Forwarder::claim(local, &team, tag.clone()) {
            Ok(f) => f,
            Err(e @ ForwardError::Busy(_))
            | Err(e @ ForwardError::Store(StoreError::Postgres { .. })) => {
                on_pass(&Err(e));
                if wait(backoff) {
                    return Ok(());
                }
                backoff = (backoff * 2).min(max);
                continue;
            }
            Err(e) => return Err(e),
        };
        loop {
            let r = f.pass();
            match &r {
                Ok(rep) => {
                    backoff = Duration::from_secs(1);
                    if rep.batches > 0 {
                        on_pass(&r);
                    }
                    if wait(poll) {
                        return Ok(());
                    }
                    // Renews the lease.
                    let mark = f.watermark;
                    f.advance(mark)?;
                }
                Err(ForwardError::Store(StoreError::Postgres { .. }))
                | Err(ForwardError::Busy(_)) => {
                    on_pass(&r);
                    if wait(backoff) {
                        return Ok(());
                    }
                    backoff = (backoff * 2).min(max);
                    break;
                }
                Err(_) => return r.map(|_| ()),
            }
        }
    }
}
