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

/// Publishes `commit` of the run's branch where the context asks (a
/// worker's push to the remote), before the journal records it; the error
/// says what failed.
pub(super) fn publish(sh: &Shared<'_>, commit: &str) -> Result<(), String> {
    match sh.ctx.publish {
        Some(p) => {
            let _turn = sh.commit_lock.lock();
            p(&sh.st.started.branch, commit)
                .map_err(|e| format!("cannot publish checkpoint {commit}: {e}"))
        }
        None => Ok(()),
    }
}

/// This process no longer owns the run (see [`super::RunContext::lost`]).
pub(super) fn lost(sh: &Shared<'_>) -> bool {
    sh.ctx
        .lost
        .is_some_and(|l| l.load(std::sync::atomic::Ordering::Relaxed))
}
