//! Who holds what: records of the agentops process behind each git lock and
//! each memory write under way, so that what a killed process left behind
//! (lock files, half-made writes) can be told from what a live one holds, and
//! recovered safely.
//!
//! git's rule is never to delete a lock file one did not take. A record here
//! is written by the process that takes the lock, names its pid and the
//! kernel's start time of that process (so a reused pid is not mistaken for
//! the owner), and for `index.lock` the lock file's inode. A lock is removed
//! only when its owner is gone and the file is the very one the owner took
//! (same inode; for ref locks, created while the owner held the index lock).
//! Without `/proc` (not Linux) every owner counts as alive: nothing is
//! removed, and the error names the file to remove by hand.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One record: a process and what it holds or is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat`).
    pub start: Option<u64>,
    /// When the record was made (µs since the epoch).
    pub at_us: i64,
    /// `index.lock` and its inode, when the owner holds it.
    #[serde(default)]
    pub index_lock: Option<(PathBuf, u64)>,
    /// Ref lock files git may create while the owner commits.
    #[serde(default)]
    pub ref_locks: Vec<PathBuf>,
    /// Files of the owner's own that are removed with its record.
    #[serde(default)]
    pub scratch: Vec<PathBuf>,
    /// Work-tree paths (relative, `/`) the owner is writing.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The entry id being written, for memory-write intents.
    #[serde(default)]
    pub entry: Option<String>,
    /// `create`, `promote`, `deprecate`, …
    #[serde(default)]
    pub action: Option<String>,
}

/// A record on disk; removed when dropped (the owner finished, or failed
/// cleanly).
#[derive(Debug)]
pub struct Held {
    file: Option<PathBuf>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A dead owner's record, taken for recovery.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub record: Record,
    /// The claimed record file; [`release`] removes it once recovered.
    pub file: PathBuf,
}

/// Gives a claimed record back, for another pass to recover.
pub fn unclaim(o: &Orphan) {
    let name = o.file.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some(base) = name.as_deref().and_then(|n| n.split(".claimed-").next()) {
        let _ = std::fs::rename(&o.file, o.file.with_file_name(format!("{base}.json")));
    }
}

/// Removes an orphan's record once what it left is dealt with.
pub fn release(o: &Orphan) {
    let _ = std::fs::remove_file(&o.file);
}

/// The start time of process `pid`, from `/proc`; `None` when it is gone
/// or a zombie (killed, not yet reaped by its parent: it holds nothing).
fn proc_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether the process of `r` is still running. Unknowable (no `/proc`)
/// counts as running.
pub fn alive(r: &Record) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    match (proc_start(r.pid), r.start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `r` (filled with this process's pid and start time) into `dir`.
/// Best effort: where `dir` cannot be written the work goes on unrecorded
/// (and cannot be recovered automatically).
pub fn hold(dir: &Path, mut r: Record) -> Held {
    r.pid = std::process::id();
    r.start = proc_start(r.pid);
    r.at_us = agentops_core::time::now_micros();
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("{}-{}-{n}.json", r.pid, r.start.unwrap_or(0)));
    let Ok(text) = serde_json::to_vec(&r) else {
        return Held { file: None };
    };
    let tmp = file.with_extension("json.tmp");
    let ok = std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, text).is_ok()
        && std::fs::rename(&tmp, &file).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
    Held {
        file: ok.then_some(file),
    }
}

/// How many records in `dir` belong to processes that are gone (without
/// claiming them: for reports).
pub fn count_orphans(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| !alive(r))
        .count()
}

/// Records in `dir` whose owners are gone, each claimed by this process (a
/// rename, so two processes never recover the same one). Costs one
/// directory read when there are none.
pub fn orphans(dir: &Path) -> Vec<Orphan> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            // A record half-written by a killed process.
            if name.ends_with(".json.tmp") && owner_pid_gone(&name) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        };
        if stem.contains(".claimed-") {
            // Claimed by a recoverer that died too: take it over.
            let claimer = stem
                .rsplit(".claimed-")
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            if claimer.is_some_and(|p| proc_start(p).is_some()) {
                continue;
            }
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            continue;
        };
        if alive(&record) {
            continue;
        }
        let base = stem.split(".claimed-").next().unwrap_or(stem);
        let claimed = dir.join(format!("{base}.claimed-{me}.json"));
        if std::fs::rename(&path, &claimed).is_ok() {
            out.push(Orphan {
                record,
                file: claimed,
            });
        }
    }
    out
}

fn owner_pid_gone(name: &str) -> bool {
    name.split('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| Path::new("/proc/self/stat").exists() && proc_start(pid).is_none())
}

/// The inode of `path`.
pub fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

fn mtime_us(path: &Path) -> Option<i64> {
    let t = std::fs::symlink_metadata(path).ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros()).ok()
}

/// Removes the lock files a dead owner left: its `index.lock` when it is
/// the same file (inode), and ref locks created from a second before the
/// owner took its locks to a minute after. Returns the files removed.
pub fn remove_stale_locks(o: &Orphan) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let r = &o.record;
    for f in &r.scratch {
        let _ = std::fs::remove_file(f);
    }
    if let Some((lock, ino)) = &r.index_lock
        && inode(lock) == Some(*ino)
        && std::fs::remove_file(lock).is_ok()
    {
        removed.push(lock.clone());
    }
    for lock in &r.ref_locks {
        let Some(m) = mtime_us(lock) else { continue };
        if m >= r.at_us - 1_000_000
            && m <= r.at_us + 60_000_000
            && std::fs::remove_file(lock).is_ok()
        {
            removed.push(lock.clone());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_owner_is_kept_and_a_dead_one_recovered() {
        let d = tempfile::tempdir().unwrap();
        let held = hold(d.path(), Record::default());
        assert!(orphans(d.path()).is_empty(), "this process is alive");
        drop(held);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);

        // A record of a process that has exited.
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut child = child;
        child.wait().unwrap();
        let lock = d.path().join("index.lock");
        std::fs::write(&lock, b"").unwrap();
        let reflock = d.path().join("main.lock");
        std::fs::write(&reflock, b"").unwrap();
        let r = Record {
            pid,
            start: Some(1),
            at_us: agentops_core::time::now_micros(),
            index_lock: Some((lock.clone(), inode(&lock).unwrap())),
            ref_locks: vec![reflock.clone()],
            ..Record::default()
        };
        let recs = d.path().join("recs");
        std::fs::create_dir_all(&recs).unwrap();
        std::fs::write(
            recs.join(format!("{pid}-1-0.json")),
            serde_json::to_vec(&r).unwrap(),
        )
        .unwrap();
        let found = orphans(&recs);
        assert_eq!(found.len(), 1);
        assert!(orphans(&recs).is_empty(), "claimed once");
        assert_eq!(remove_stale_locks(&found[0]).len(), 2);
        assert!(!lock.exists() && !reflock.exists());
        release(&found[0]);
        assert_eq!(std::fs::read_dir(&recs).unwrap().count(), 0);
    }

    #[test]
    fn a_lock_taken_by_someone_else_after_the_owner_died_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let lock = d.path().join("index.lock");
        std::fs::write(&lock, b"old").unwrap();
        let old_ino = inode(&lock).unwrap();
        // Keep the old inode alive so the new file cannot reuse its number.
        let keep = d.path().join("old");
        std::fs::rename(&lock, &keep).unwrap();
        std::fs::write(&lock, b"new").unwrap();
        let o = Orphan {
            record: Record {
                pid: u32::MAX,
                index_lock: Some((lock.clone(), old_ino)),
                ref_locks: vec![d.path().join("HEAD.lock")],
                at_us: 0,
                ..Record::default()
            },
            file: d.path().join("none"),
        };
        std::fs::write(d.path().join("HEAD.lock"), b"").unwrap();
        assert!(remove_stale_locks(&o).is_empty());
        assert!(lock.exists() && d.path().join("HEAD.lock").exists());
    }
}
