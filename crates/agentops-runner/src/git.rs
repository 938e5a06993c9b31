//! The few git operations a run needs, through the `git` command (worktrees,
//! checkpoints, merges), as DESIGN.md prescribes.

use std::path::Path;
use std::process::Command;

use crate::RunError;

/// Runs git in `dir`; stdout on success, stderr in the error.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, RunError> {
    // No automatic gc or maintenance: run in the background, it would
    // outlive a killed run and leave `objects/maintenance.lock` behind.
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
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

/// Commits exactly `paths` (their current content, or their deletion) on
/// `branch` in-process, without running git: for steps whose every change
/// went through agentops's own file tools. The worktree's index is left as
/// it was (the next full checkpoint or reset brings it up to date).
pub fn checkpoint_paths(
    worktree: &Path,
    branch: &str,
    paths: &std::collections::BTreeSet<String>,
    message: &str,
) -> Result<String, RunError> {
    use agentops_knowledge::git::{Change, Repo, Target};
    let repo = Repo::open(worktree).map_err(|e| RunError::Git(e.to_string()))?;
    let mut changes = Vec::with_capacity(paths.len());
    for p in paths {
        let content = match std::fs::read(worktree.join(p)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(RunError::Git(format!("{p}: {e}"))),
        };
        changes.push(Change {
            path: p.clone(),
            content,
            create: false,
        });
    }
    let id = repo
        .commit(&Target::Branch(branch.to_owned()), &changes, message)
        .map_err(|e| RunError::Git(e.to_string()))?;
    Ok(id.to_string())
}

/// Commits everything in the worktree and returns the commit id; when
/// nothing changed, no commit is made and the checkpoint is HEAD.
pub fn checkpoint(worktree: &Path, message: &str) -> Result<String, RunError> {
    git(worktree, &["add", "-A"])?;
    if git(worktree, &["diff", "--cached", "--quiet"]).is_ok() {
        return git(worktree, &["rev-parse", "HEAD"]);
    }
    static IDENTITY: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let mut args = IDENTITY.get_or_init(|| identity_args(worktree)).clone();
    args.extend(
        ["commit", "-q", "--no-verify", "-m", message]
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
