//! The git operations a run needs, over [`agentops_git::cmd`] (worktrees,
//! checkpoints, merges), with the runner's error.

use std::path::Path;

use crate::RunError;

/// Runs git in `dir`; stdout on success, stderr in the error.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, RunError> {
    Ok(agentops_git::cmd::run(dir, args)?)
}

/// Commits exactly `paths` on `branch` in-process (see
/// [`agentops_git::cmd::checkpoint_paths`]).
pub fn checkpoint_paths(
    worktree: &Path,
    branch: &str,
    paths: &std::collections::BTreeSet<String>,
    message: &str,
) -> Result<String, RunError> {
    Ok(agentops_git::cmd::checkpoint_paths(
        worktree, branch, paths, message,
    )?)
}

/// Commits everything in the worktree (see [`agentops_git::cmd::checkpoint`]).
pub fn checkpoint(worktree: &Path, message: &str) -> Result<String, RunError> {
    Ok(agentops_git::cmd::checkpoint(worktree, message)?)
}

/// Puts the worktree back at `commit` (see [`agentops_git::cmd::reset_to`]).
pub fn reset_to(worktree: &Path, commit: &str) -> Result<(), RunError> {
    Ok(agentops_git::cmd::reset_to(worktree, commit)?)
}
