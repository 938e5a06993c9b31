//! The hook spool: where hooks leave their events without opening the
//! journal.
//!
//! A PreToolUse or PostToolUse hook runs on every tool call of someone
//! else's agent. Opening SQLite, committing one event and checkpointing the
//! WAL when the last connection closes is most of such a process's cost, so
//! those hooks write their events (already redacted) to a file of their own
//! here instead, and the next process that opens the journal takes them in.
//!
//! What holds:
//! - **Nothing half-written is ever read.** Each batch is written to a
//!   hidden temporary file and renamed to `<ts>-<pid>-<n>.jsonl`; only
//!   renamed files are read. A process killed before the rename leaves a
//!   temporary file nobody reads (removed after a minute); its write never
//!   returned.
//! - **A batch whose write returned is never lost.** It is in the file
//!   system when the rename returns, so a `kill -9` of the hook (or of
//!   anything else) cannot undo it; with `hooks.sync_tool_events` the file
//!   and the directory are fsynced first, so a power cut cannot either.
//!   Taken into the journal, the events are as durable as
//!   `journal.synchronous` makes them.
//! - **Taken in once.** The drain appends a batch and records its file name
//!   in the same transaction ([`EventLog::append_once`]), then removes the
//!   file: a drain that dies between the two, or two drains at once, never
//!   append a batch twice.
//! - **In order.** Names start with the batch's first timestamp, so batches
//!   are taken in the order they happened; every open of the journal drains
//!   first, so what is written directly comes after what was spooled before.
//! - A file that cannot be parsed (a disk error, a foreign file) is moved to
//!   `bad/` and counted, never deleted and never a reason to fail.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use agentops_core::NewEvent;

use crate::{Durability, EventLog, StoreError};

/// Temporary files older than this belong to a process that died.
const STALE_TMP: Duration = Duration::from_secs(60);
/// Batches taken in per transaction.
const DRAIN_CHUNK: usize = 512;

/// The spool directory of one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    dir: PathBuf,
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Batches appended to the journal.
    pub batches: usize,
    /// Files that could not be parsed, moved to `bad/`.
    pub quarantined: Vec<PathBuf>,
}

impl Spool {
    /// The spool of the journal at `db` (`state.db` → `state.spool/`).
    pub fn beside(db: &Path) -> Self {
        Self {
            dir: db.with_extension("spool"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one batch; returns once it is a complete file in the spool
    /// (and, with `sync`, on disk).
    pub fn write(&self, events: &[NewEvent], sync: bool) -> Result<(), StoreError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut text = String::with_capacity(512 * events.len());
        for e in events {
            let line = serde_json::to_string(e)
                .map_err(|e| StoreError::Internal(format!("cannot encode a spooled event: {e}")))?;
            text.push_str(&line);
            text.push('\n');
        }
        let io = |what: &str, e: std::io::Error| StoreError::Spool {
            path: self.dir.clone(),
            reason: format!("{what}: {e}"),
        };
        let ts = u64::try_from(first.ts).unwrap_or(0);
        let pid = std::process::id();
        loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let name = format!("{ts:016x}-{pid:08x}-{n:04x}.jsonl");
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let file = match create_new(&tmp) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create", e))?;
                    create_new(&tmp).map_err(|e| io("cannot create a spool file", e))?
                }
                Err(e) => return Err(io("cannot create a spool file", e)),
            };
            let mut file = file;
            let written = file
                .write_all(text.as_bytes())
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
            drop(file);
            if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, self.dir.join(&name))) {
                let _ = std::fs::remove_file(&tmp);
                return Err(io("cannot write a spool file", e));
            }
            if sync {
                std::fs::File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("cannot sync", e))?;
            }
            return Ok(());
        }
    }

    /// Whether any batch is waiting (one directory read; false when the
    /// spool does not exist).
    pub fn has_pending(&self) -> bool {
        std::fs::read_dir(&self.dir).is_ok_and(|mut d| {
            d.any(|e| {
                e.is_ok_and(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.ends_with(".jsonl") && !n.starts_with('.'))
                })
            })
        })
    }

    /// The waiting batches' file names, oldest first.
    pub fn pending(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut names: Vec<String> = Vec::new();
        for e in dir.flatten() {
            let Some(n) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if n.starts_with('.') {
                if n.ends_with(".tmp")
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP)
                {
                    let _ = std::fs::remove_file(e.path());
                }
                continue;
            }
            if n.ends_with(".jsonl") {
                names.push(n);
            }
        }
        names.sort();
        names
    }

    /// Appends every waiting batch to `log`, in order, each exactly once, and
    /// removes its file.
    pub fn drain(&self, log: &dyn EventLog) -> Result<Drained, StoreError> {
        let names = self.pending();
        let mut out = Drained::default();
        for chunk in names.chunks(DRAIN_CHUNK) {
            let mut batches = Vec::with_capacity(chunk.len());
            for name in chunk {
                let path = self.dir.join(name);
                match read_batch(&path) {
                    Ok(Some(events)) => batches.push((name.clone(), events)),
                    // Taken in (and removed) by another drain meanwhile.
                    Ok(None) => {}
                    Err(_) => {
                        let bad = self.dir.join("bad");
                        let _ = std::fs::create_dir_all(&bad);
                        let to = bad.join(name);
                        if std::fs::rename(&path, &to).is_ok() {
                            out.quarantined.push(to);
                        }
                    }
                }
            }
            let dir = &self.dir;
            out.batches += log.append_once(
                &batches,
                &|key: &str| dir.join(key).exists(),
                Durability::Configured,
            )?;
            let keys: Vec<String> = batches.into_iter().map(|(k, _)| k).collect();
            for k in &keys {
                let _ = std::fs::remove_file(self.dir.join(k));
            }
            log.forget_once(&keys)?;
        }
        Ok(out)
    }

    /// Files that could not be parsed, kept in `bad/`.
    pub fn quarantined(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("bad"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// A batch's events; `None` when the file is gone.
fn read_batch(path: &Path) -> Result<Option<Vec<NewEvent>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        events.push(
            serde_json::from_str::<NewEvent>(line).map_err(|e| format!("line {}: {e}", i + 1))?,
        );
    }
    if events.is_empty() {
        return Err("no events".into());
    }
    Ok(Some(events))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{OpenOptions, Query, SqliteStore};
    use agentops_core::{EventKind, RunId};

    fn store(dir: &Path) -> SqliteStore {
        SqliteStore::open(&dir.join("state.db"), OpenOptions::default()).unwrap()
    }

    fn ev(n: i64) -> NewEvent {
        NewEvent::at(
            1_000_000 + n,
            RunId::parse("s-spool").unwrap(),
            "hook.received".parse::<EventKind>().unwrap(),
            serde_json::json!({ "n": n }),
        )
    }

    #[test]
    fn batches_are_taken_in_once_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let spool = Spool::beside(&tmp.path().join("state.db"));
        assert!(!spool.has_pending());
        for n in [3, 1, 2] {
            spool.write(&[ev(n), ev(n * 10)], true).unwrap();
        }
        assert!(spool.has_pending());
        // A batch already recorded (a drain that died before removing its
        // file) is not appended again.
        let first = spool.pending()[0].clone();
        let d = spool.drain(&s).unwrap();
        assert_eq!(d.batches, 3);
        assert!(!spool.has_pending());
        let got: Vec<i64> = s
            .read(&Query::default())
            .unwrap()
            .iter()
            .map(|e| e.body["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, [1, 10, 2, 20, 3, 30]);
        std::fs::write(
            spool.dir().join(&first),
            serde_json::to_string(&ev(1)).unwrap(),
        )
        .unwrap();
        // The record was forgotten once the file was gone, so a file of the
        // same name is new; but one still present when recorded is skipped.
        let batch = vec![(first.clone(), vec![ev(1)])];
        assert_eq!(
            s.append_once(&batch, &|_| true, Durability::Relaxed)
                .unwrap(),
            1
        );
        assert_eq!(
            s.append_once(&batch, &|_| true, Durability::Relaxed)
                .unwrap(),
            0
        );
        // A source that is gone is not appended.
        let other = vec![("other.jsonl".to_owned(), vec![ev(5)])];
        assert_eq!(
            s.append_once(&other, &|_| false, Durability::Relaxed)
                .unwrap(),
            0
        );
    }

    #[test]
    fn unreadable_files_are_kept_aside_and_temporary_ones_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let spool = Spool::beside(&tmp.path().join("state.db"));
        spool.write(&[ev(1)], false).unwrap();
        std::fs::write(spool.dir().join("0000000000000000-0-0.jsonl"), "{not json").unwrap();
        std::fs::write(spool.dir().join(".half.jsonl.tmp"), "{\"ts\":").unwrap();
        let d = spool.drain(&s).unwrap();
        assert_eq!(d.batches, 1);
        assert_eq!(d.quarantined.len(), 1);
        assert_eq!(spool.quarantined().len(), 1);
        assert!(spool.dir().join(".half.jsonl.tmp").exists());
        assert_eq!(s.count().unwrap(), 1);
    }
}
