//! The checkpoint of a phase that passed its gates: one commit on the run's
//! branch, of the paths the tools wrote or of the whole work tree.

use super::Shared;
use super::dispatch::Changes;
use crate::RunError;
use crate::git::{checkpoint, checkpoint_paths};

/// Commits the attempt's changes and returns the commit id. Phases running in
/// parallel share the work tree, so commits take turns.
pub(super) fn commit_checkpoint(
    sh: &Shared<'_>,
    phase: &str,
    attempt: u32,
    changes: &Changes,
) -> Result<String, RunError> {
    let s = &sh.st.started;
    let _turn = sh.commit_lock.lock();
    let msg = format!("agentops: {phase} (run {}, attempt {attempt})", sh.st.id);
    if changes.all_files {
        checkpoint(&s.worktree, &msg)
    } else {
        checkpoint_paths(&s.worktree, &s.branch, &changes.wrote, &msg)
    }
}
