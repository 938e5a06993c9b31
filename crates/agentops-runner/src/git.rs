//! The few git operations a run needs, through the `git` command (worktrees,
//! checkpoints, merges), as DESIGN.md prescribes.

use std::path::Path;
use std::process::Command;

use crate::RunError;

/// Runs git in `dir`; stdout on success, stderr in the error.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, RunError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| RunError::Git(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    } else {
        Err(RunError::Git(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether git knows who commits; if not, checkpoints are authored by
/// `agentops <agentops@localhost>`.
fn identity_args(dir: &Path) -> Vec<String> {
    let has = |k: &str| git(dir, &["config", k]).is_ok_and(|v| !v.is_empty());
    let mut v = Vec::new();
    if !has("user.name") {
        v.extend(["-c".into(), "user.name=agentops".into()]);
    }
    if !has("user.email") {
        v.extend(["-c".into(), "user.email=agentops@localhost".into()]);
    }
    v
}

/// Commits everything in the worktree (an empty commit if nothing changed)
/// and returns the commit id.
pub fn checkpoint(worktree: &Path, message: &str) -> Result<String, RunError> {
    git(worktree, &["add", "-A"])?;
    let mut args = identity_args(worktree);
    args.extend(
        [
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "-m",
            message,
        ]
        .into_iter()
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    git(worktree, &refs)?;
    git(worktree, &["rev-parse", "HEAD"])
}

/// Puts the worktree back at `commit`: tracked files reset, untracked
/// files removed (ignored ones kept), stale locks of a killed process gone.
pub fn reset_to(worktree: &Path, commit: &str) -> Result<(), RunError> {
    if let Ok(gd) = git(worktree, &["rev-parse", "--absolute-git-dir"]) {
        // The run lock is ours: a lock file here is left by a killed run.
        let _ = std::fs::remove_file(Path::new(&gd).join("index.lock"));
        let _ = std::fs::remove_file(Path::new(&gd).join("HEAD.lock"));
    }
    if let Ok(common) = git(worktree, &["rev-parse", "--git-common-dir"]) {
        let common = if Path::new(&common).is_absolute() {
            Path::new(&common).to_path_buf()
        } else {
            worktree.join(common)
        };
        if let Ok(branch) = git(worktree, &["symbolic-ref", "-q", "HEAD"]) {
            let _ = std::fs::remove_file(common.join(format!("{branch}.lock")));
        }
    }
    git(worktree, &["reset", "-q", "--hard", commit])?;
    git(worktree, &["clean", "-fdq"])?;
    Ok(())
}
