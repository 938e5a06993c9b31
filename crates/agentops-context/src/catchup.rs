//! Keeping the index there and current without a rebuild on anyone's clock:
//! after a memory write, at `init`, and before SessionStart searches.
//!
//! An index that exists is brought up to date in-process (only the folders
//! whose entries changed are read again). One that is missing is built
//! in-process when the repository has at most [`SYNC_BUILD_LIMIT`] entries
//! (a fraction of a second); beyond that the caller is told to build it in
//! the background, so a bulk import never blocks a hook.

use agentops_core::config::Config;
use agentops_knowledge::entry::{self, KNOWLEDGE_DIRS};
use agentops_store::RepoLayout;

use crate::index::{IndexError, KnowledgeIndex, Refresh};

/// The most entries an index is built for synchronously when it is missing.
pub const SYNC_BUILD_LIMIT: usize = 2_000;

/// What [`catch_up`] did.
pub enum CatchUp {
    /// The index is current; here it is, opened.
    Current(Box<KnowledgeIndex>, Refresh),
    /// There is no usable index and too many entries to build one now.
    TooLarge { entries: usize },
}

/// Entry files under `.agents/`, counted up to `limit + 1` (enough to
/// decide; a directory walk, no file is read).
pub fn count_entries(layout: &RepoLayout, limit: usize) -> usize {
    let mut n = 0;
    let mut stack: Vec<std::path::PathBuf> = KNOWLEDGE_DIRS
        .iter()
        .map(|d| layout.agents_dir().join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            match e.file_type() {
                Ok(t) if t.is_dir() && !name.starts_with('.') => stack.push(e.path()),
                Ok(t) if t.is_file() && entry::is_entry_file_name(&name) => {
                    n += 1;
                    if n > limit {
                        return n;
                    }
                }
                _ => {}
            }
        }
    }
    n
}

/// Whether `layout` has a built index (its manifest is written last).
pub fn exists(layout: &RepoLayout) -> bool {
    layout
        .state_dir()
        .join("index")
        .join("manifest.json")
        .is_file()
}

/// Brings the index up to date, building it when it is missing and small
/// enough (see the module doc). Waits for another process's index writer as
/// a reader does.
pub fn catch_up(layout: &RepoLayout, config: &Config) -> Result<CatchUp, IndexError> {
    catch_up_waiting(layout, config, std::time::Duration::from_secs(5))
}

/// After a memory write, and on a hook's clock: the same, but when another
/// process holds the index writer it does not wait (that process, or the
/// next reader, sees the changed folder), and new entries' tokens are
/// estimated rather than a tokenizer loaded.
pub fn after_write(layout: &RepoLayout, config: &Config) -> Result<CatchUp, IndexError> {
    catch_up_waiting(layout, config, std::time::Duration::ZERO)
}

fn catch_up_waiting(
    layout: &RepoLayout,
    config: &Config,
    wait: std::time::Duration,
) -> Result<CatchUp, IndexError> {
    // One from another version or tokenizer is rebuilt: as costly as none.
    if !exists(layout) || !KnowledgeIndex::is_current(layout, config) {
        let entries = count_entries(layout, SYNC_BUILD_LIMIT);
        if entries > SYNC_BUILD_LIMIT {
            return Ok(CatchUp::TooLarge { entries });
        }
    }
    let (idx, refresh) = KnowledgeIndex::open_waiting(layout, config, false, false, wait)?;
    Ok(CatchUp::Current(Box::new(idx), refresh))
}
