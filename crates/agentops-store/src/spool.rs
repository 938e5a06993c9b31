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
//! - **One append per batch, no file per call.** A batch is appended in one
//!   `write` to `open.log` while the writer holds a shared lock on it;
//!   creating a file per call cost up to a millisecond or more where the
//!   file system had to search for a free inode. A drain first renames the
//!   log aside to a sealed batch file `<ts>-<pid>-<n>.jsonl` and takes an
//!   exclusive lock on it before reading, so a writer that was appending
//!   finishes first, and a writer that opened the log just before the rename
//!   sees, once it holds its lock, that the path names a new log and writes
//!   there instead. Locks die with their process: a `kill -9` never leaves
//!   one behind.
//! - **A batch whose write returned is never lost.** It is in the file
//!   system when the write returns, so a `kill -9` of the hook (or of
//!   anything else) cannot undo it; with `hooks.sync_tool_events` the log is
//!   fsynced first, so a power cut cannot either. Taken into the journal, the
//!   events are as durable as `journal.synchronous` makes them.
//! - **Taken in once.** The drain appends a sealed file's events and records
//!   its name in the same transaction ([`EventLog::append_once`]), then
//!   removes the file while still holding its lock: a drain that dies
//!   between the two, or two drains at once, never append a batch twice.
//! - **In order.** Sealed files are named by the time they were sealed, and
//!   a log's lines are in the order they were written, so events are taken
//!   in the order they happened; every open of the journal drains first, so
//!   what is written directly comes after what was spooled before.
//! - A line that is not an event (a torn write, a foreign line) is copied to
//!   `bad/` and counted, never a reason to fail; the good lines beside it
//!   are taken in. Batch files written one per call by earlier versions are
//!   read the same way.

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
/// Where hooks append their batches until a drain renames it aside.
const OPEN_LOG: &str = "open.log";

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

    /// Writes one batch; returns once it is in the spool's open log (and,
    /// with `sync`, on disk).
    ///
    /// The batch is appended, in one `write`, to `open.log` under a shared
    /// lock; no file is created per call (on a busy file system creating
    /// a file costs up to a millisecond or more, allocating an inode). A
    /// drain renames the log aside and takes an exclusive lock before it
    /// reads it, so a writer either finished before the drain read the file,
    /// or finds, once it holds its lock, that the path names another file
    /// now, and writes there.
    pub fn write(&self, events: &[NewEvent], sync: bool) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
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
        let path = self.dir.join(OPEN_LOG);
        for _ in 0..100 {
            let (mut file, created) = match open_append(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create", e))?;
                    open_append(&path).map_err(|e| io("cannot open the spool log", e))?
                }
                Err(e) => return Err(io("cannot open the spool log", e)),
            };
            match file.try_lock_shared() {
                Ok(()) => {}
                // A drain holds it: it has been renamed aside already.
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io("cannot lock the spool log", e));
                }
            }
            if !same_file(&file, &path) {
                // Renamed aside (and perhaps drained) between the open and
                // the lock: the path names a newer log.
                continue;
            }
            file.write_all(text.as_bytes())
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
                .map_err(|e| io("cannot write the spool log", e))?;
            if sync && created {
                std::fs::File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("cannot sync", e))?;
            }
            return Ok(());
        }
        Err(io(
            "cannot write the spool log",
            std::io::Error::other("it was drained a hundred times while this batch waited"),
        ))
    }

    /// Whether any batch is waiting (a `stat` and one directory read; false
    /// when the spool does not exist).
    pub fn has_pending(&self) -> bool {
        if std::fs::metadata(self.dir.join(OPEN_LOG)).is_ok_and(|m| m.len() > 0) {
            return true;
        }
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

    /// How many batches wait: lines of the open log (a batch is one or
    /// more lines; each counts) plus sealed files. For `doctor`, which
    /// reads the files.
    pub fn waiting(&self) -> usize {
        let log = std::fs::read(self.dir.join(OPEN_LOG))
            .map(|t| t.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count())
            .unwrap_or(0);
        log + self.pending().len()
    }

    /// Renames the open log aside as a sealed batch file (named, like
    /// every batch file, by the time, so that it sorts after the batches
    /// before it), when it holds anything.
    fn seal(&self) {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = self.dir.join(OPEN_LOG);
        if !std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            return;
        }
        let ts = u64::try_from(agentops_core::time::now_micros()).unwrap_or(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{ts:016x}-{:08x}-{n:04x}.jsonl", std::process::id());
        // Another drain may have sealed it first: then there is nothing to do.
        let _ = std::fs::rename(&path, self.dir.join(name));
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
        self.seal();
        let names = self.pending();
        let mut out = Drained::default();
        for chunk in names.chunks(DRAIN_CHUNK) {
            let mut batches = Vec::with_capacity(chunk.len());
            // Each file's exclusive lock is held until it is removed: a
            // writer still appending to it (it was the open log a moment
            // ago) finishes first, and a second drain waits and then finds
            // it gone.
            let mut held = Vec::with_capacity(chunk.len());
            for name in chunk {
                let path = self.dir.join(name);
                let Some(file) = lock_exclusive(&path) else {
                    continue;
                };
                match read_batch(&path) {
                    Ok(Some((events, bad))) => {
                        if !bad.is_empty() {
                            out.quarantined.extend(self.keep_aside(name, &bad));
                        }
                        if events.is_empty() {
                            let _ = std::fs::remove_file(&path);
                        } else {
                            batches.push((name.clone(), events));
                            held.push(file);
                        }
                    }
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
            drop(held);
            log.forget_once(&keys)?;
        }
        Ok(out)
    }

    /// Writes the lines of `name` that are not events to `bad/<name>`
    /// (the good ones are taken in); returns the file written.
    fn keep_aside(&self, name: &str, lines: &[Vec<u8>]) -> Option<PathBuf> {
        let bad = self.dir.join("bad");
        std::fs::create_dir_all(&bad).ok()?;
        let to = bad.join(name);
        let mut text = Vec::new();
        for l in lines {
            text.extend_from_slice(l);
            text.push(b'\n');
        }
        std::fs::write(&to, text).ok()?;
        Some(to)
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

/// The open log for appending, and whether this call created it.
fn open_append(path: &Path) -> std::io::Result<(std::fs::File, bool)> {
    let mut o = std::fs::OpenOptions::new();
    o.append(true);
    match o.open(path) {
        Ok(f) => return Ok((f, false)),
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    o.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map(|f| (f, true))
}

/// Whether `path` still names the file `file` is open on.
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// `path` opened and locked exclusively, once it still names the file
/// locked (another drain may have removed it while this one waited); `None`
/// when it is gone or stays locked for 5 s (a writer stopped mid-write:
/// taken in by a later drain).
fn lock_exclusive(path: &Path) -> Option<std::fs::File> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let file = std::fs::File::open(path).ok()?;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return None,
        }
    }
    same_file(&file, path).then_some(file)
}

/// A batch file's events and the lines that are not events (a torn write
/// of a killed process, a foreign line); `None` when the file is gone.
#[allow(clippy::type_complexity)]
fn read_batch(path: &Path) -> Result<Option<(Vec<NewEvent>, Vec<Vec<u8>>)>, String> {
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        // A line that is not UTF-8 is kept aside byte for byte, never
        // repaired into an event that says something else.
        match serde_json::from_slice::<NewEvent>(line) {
            Ok(e) => events.push(e),
            Err(_) => bad.push(line.to_vec()),
        }
    }
    if events.is_empty() && bad.is_empty() {
        return Err("no events".into());
    }
    if events.is_empty() {
        return Err("no line is an event".into());
    }
    Ok(Some((events, bad)))
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
        // A batch file written one per call by an earlier version comes
        // first (its name is older), then the log in the order written.
        std::fs::create_dir_all(spool.dir()).unwrap();
        std::fs::write(
            spool.dir().join("0000000000000001-00000001-0000.jsonl"),
            serde_json::to_string(&ev(0)).unwrap() + "\n",
        )
        .unwrap();
        for n in [3, 1, 2] {
            spool.write(&[ev(n), ev(n * 10)], true).unwrap();
        }
        assert!(spool.has_pending());
        spool.seal();
        // A batch already recorded (a drain that died before removing its
        // file) is not appended again.
        let first = spool.pending()[0].clone();
        assert_eq!(spool.pending().len(), 2);
        let d = spool.drain(&s).unwrap();
        assert_eq!(d.batches, 2);
        assert!(!spool.has_pending());
        let got: Vec<i64> = s
            .read(&Query::default())
            .unwrap()
            .iter()
            .map(|e| e.body["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, [0, 3, 30, 1, 10, 2, 20]);
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
    fn a_torn_line_is_kept_aside_and_the_rest_taken_in() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let spool = Spool::beside(&tmp.path().join("state.db"));
        spool.write(&[ev(1)], false).unwrap();
        // What a writer killed inside its write would leave.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(spool.dir().join(OPEN_LOG))
            .unwrap();
        f.write_all(b"{\"ts\":1000002,\"run_").unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        spool.write(&[ev(3)], false).unwrap();
        let d = spool.drain(&s).unwrap();
        assert_eq!(d.batches, 1);
        assert_eq!(d.quarantined.len(), 1);
        let kept = std::fs::read_to_string(&d.quarantined[0]).unwrap();
        assert_eq!(kept, "{\"ts\":1000002,\"run_\n");
        assert_eq!(s.count().unwrap(), 2);
        assert!(!spool.has_pending());
    }

    #[test]
    fn writers_and_drains_at_once_lose_nothing_and_double_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        let s = store(tmp.path());
        let spool = Spool::beside(&db);
        let writers = 8;
        let per = 150;
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            for w in 0..writers {
                let spool = spool.clone();
                sc.spawn(move || {
                    for i in 0..per {
                        spool
                            .write(&[ev(w * 10_000 + i), ev(-(w * 10_000 + i) - 1)], false)
                            .unwrap();
                    }
                });
            }
            // Two drains racing each other and the writers, each with its
            // own connection.
            for _ in 0..2 {
                let spool = spool.clone();
                let stop = &stop;
                let db = db.clone();
                sc.spawn(move || {
                    let s = SqliteStore::open(&db, OpenOptions::default()).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        spool.drain(&s).unwrap();
                    }
                });
            }
            // Writers finish (a lost event would keep the count short: the
            // assertions below say so after 30 s); then the drains stop.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while spool_writes_pending(&s, writers * per * 2)
                && std::time::Instant::now() < deadline
            {
                spool.drain(&s).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::Relaxed);
        });
        spool.drain(&s).unwrap();
        let mut got: Vec<i64> = s
            .read(&Query::default())
            .unwrap()
            .iter()
            .map(|e| e.body["n"].as_i64().unwrap())
            .collect();
        assert_eq!(
            got.len() as i64,
            writers * per * 2,
            "every event exactly once"
        );
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len() as i64, writers * per * 2);
        assert!(!spool.has_pending());
    }

    fn spool_writes_pending(s: &SqliteStore, want: i64) -> bool {
        (s.count().unwrap() as i64) < want
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
