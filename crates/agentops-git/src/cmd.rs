//! The `git` command: one runner with the settings every call needs, and
//! the operations built on it.

use std::path::Path;
use std::process::Command;

/// A git command that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {args}: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] crate::GitError),
}

/// `git -C dir <args>` with no automatic gc or maintenance (run in the
/// background, it would outlive a killed run and leave
/// `objects/maintenance.lock` behind), paths unquoted, and never a prompt.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args([
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
            "-c",
            "core.quotePath=false",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}

/// Runs git in `dir`; its standard output as bytes on success, its
/// standard error in the error.
pub fn run_bytes(dir: &Path, args: &[&str]) -> Result<Vec<u8>, CommandError> {
    let out = command(dir, args).output().map_err(CommandError::Spawn)?;
    finished(out, args)
}

/// A finished git's standard output, or its standard error as the error.
fn finished(out: std::process::Output, args: &[&str]) -> Result<Vec<u8>, CommandError> {
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(CommandError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs git in `dir` with extra environment (`GIT_INDEX_FILE`, author
/// identity) and `stdin` written to it; its standard output as bytes on
/// success, its standard error in the error. Identity falls back to
/// `agentops <agentops@localhost>` when git knows none (a commit needs one).
pub fn run_with(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, CommandError> {
    use std::io::Write;
    let ident = identity_args(dir);
    let mut all: Vec<&str> = ident.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    let mut c = command(dir, &all);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    })
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(CommandError::Spawn)?;
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(input).map_err(CommandError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(CommandError::Spawn)?;
    finished(out, args)
}

/// Runs git in `dir`; standard output without its trailing newline.
pub fn run(dir: &Path, args: &[&str]) -> Result<String, CommandError> {
    run_bytes(dir, args).map(|o| String::from_utf8_lossy(&o).trim_end().to_owned())
}

/// Runs git in `dir`; its trimmed output when it succeeded and printed
/// something.
pub fn output_ok(dir: &Path, args: &[&str]) -> Option<String> {
    run_bytes(dir, args)
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Runs git in `dir` for at most `limit`: its output (untrimmed) when it
/// succeeded in time; killed and `None` when later.
pub fn output_within(dir: &Path, args: &[&str], limit: std::time::Duration) -> Option<String> {
    let mut child = command(dir, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    match rx.recv_timeout(limit) {
        Ok(buf) => {
            let ok = child.wait().is_ok_and(|s| s.success());
            ok.then(|| String::from_utf8_lossy(&buf).into_owned())
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// `git --version`'s text (`git version 2.47.3`).
pub fn version() -> Result<String, CommandError> {
    let out = Command::new("git")
        .arg("--version")
        .output()
        .map_err(CommandError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(CommandError::Failed {
            args: "--version".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The configured `user.name` in `dir`, if any.
pub fn user_name(dir: &Path) -> Option<String> {
    output_ok(dir, &["config", "user.name"])
}

/// Whether git knows who commits; if not, commits are authored by
/// `agentops <agentops@localhost>`.
fn identity_args(dir: &Path) -> Vec<String> {
    let has = |k: &str| run(dir, &["config", k]).is_ok_and(|v| !v.is_empty());
    let mut v = Vec::new();
    if !has("user.name") {
        v.extend(["-c".into(), "user.name=agentops".into()]);
    }
    if !has("user.email") {
        v.extend(["-c".into(), "user.email=agentops@localhost".into()]);
    }
    v
}

/// Commits everything in the worktree and returns the commit id; when
/// nothing changed, no commit is made and the checkpoint is HEAD.
pub fn checkpoint(worktree: &Path, message: &str) -> Result<String, CommandError> {
    run(worktree, &["add", "-A"])?;
    if run(worktree, &["diff", "--cached", "--quiet"]).is_ok() {
        return run(worktree, &["rev-parse", "HEAD"]);
    }
    static IDENTITY: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let mut args = IDENTITY.get_or_init(|| identity_args(worktree)).clone();
    args.extend(
        ["commit", "-q", "--no-verify", "-m", message]
            .into_iter()
            .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(worktree, &refs)?;
    run(worktree, &["rev-parse", "HEAD"])
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
) -> Result<String, CommandError> {
    use crate::{Change, Repo, Target};
    let repo = Repo::open(worktree)?;
    let mut changes = Vec::with_capacity(paths.len());
    for p in paths {
        let content = match std::fs::read(worktree.join(p)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(CommandError::Io {
                    path: p.clone(),
                    source,
                });
            }
        };
        changes.push(Change {
            path: p.clone(),
            content,
            create: false,
        });
    }
    let id = repo.commit(&Target::Branch(branch.to_owned()), &changes, message)?;
    Ok(id.to_string())
}

/// Puts the worktree back at `commit`: tracked files reset, untracked
/// files removed (ignored ones kept), stale locks of a killed process gone.
/// Only for run worktrees, whose lock the caller holds.
pub fn reset_to(worktree: &Path, commit: &str) -> Result<(), CommandError> {
    if let Ok(gd) = run(worktree, &["rev-parse", "--absolute-git-dir"]) {
        // The run lock is ours: a lock file here is left by a killed run.
        let _ = std::fs::remove_file(Path::new(&gd).join("index.lock"));
        let _ = std::fs::remove_file(Path::new(&gd).join("HEAD.lock"));
    }
    if let Ok(common) = run(worktree, &["rev-parse", "--git-common-dir"]) {
        let common = if Path::new(&common).is_absolute() {
            Path::new(&common).to_path_buf()
        } else {
            worktree.join(common)
        };
        if let Ok(branch) = run(worktree, &["symbolic-ref", "-q", "HEAD"]) {
            let _ = std::fs::remove_file(common.join(format!("{branch}.lock")));
        }
    }
    run(worktree, &["reset", "-q", "--hard", commit])?;
    run(worktree, &["clean", "-fdq"])?;
    Ok(())
}

/// The patch of the work tree against `base`, untracked files (the first
/// 200) included as additions: what a judge reads. Empty when git fails.
pub fn patch_with_untracked(root: &Path, base: &str) -> String {
    let mut p = run_bytes(
        root,
        &["diff", "--no-color", "--no-ext-diff", "-M", base, "--"],
    )
    .map(|o| String::from_utf8_lossy(&o).into_owned())
    .unwrap_or_default();
    let untracked = run_bytes(root, &["ls-files", "--others", "--exclude-standard"])
        .map(|o| String::from_utf8_lossy(&o).into_owned())
        .unwrap_or_default();
    for f in untracked.lines().take(200) {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            p.push_str(&format!("--- /dev/null\n+++ b/{f}\n"));
            for l in t.lines() {
                p.push('+');
                p.push_str(l);
                p.push('\n');
            }
        }
    }
    p
}

/// What the branch has been about lately: the subjects of its last
/// `commits` commits and the paths they and the work tree changed (memory
/// commits and `.agents/` paths left out: they are agentops's own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentWork {
    pub subjects: Vec<String>,
    pub paths: Vec<String>,
    /// Whether `git status` answered within its time (its paths are in).
    pub status_in_time: bool,
}

/// Reads [`RecentWork`]: the commits in-process ([`crate::repo::Repo::recent_commits`],
/// at most 200 looked at: no `git log` process, whose start alone costs
/// more than the walk), the work tree's changes with one `git status` (no
/// pager, no untracked scan; none with a zero `status_within`). Anything git
/// cannot say is left out: a fresh repository has no commits.
pub fn recent_work(dir: &Path, commits: usize, status_within: std::time::Duration) -> RecentWork {
    let mut out = RecentWork::default();
    // `.agents/` is excluded by pathspec: `status` never lists it.
    let outside = ["--", ".", ":(exclude).agents"];
    // Not `output_ok`: a status line starts with a space that trimming would eat.
    // `--no-optional-locks`: status never takes `index.lock` to refresh the
    // index, so it never collides with the person's own git commands, and
    // stopping it at its time limit cannot leave a stale lock behind.
    let status_args: Vec<&str> = [
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]
    .into_iter()
    .chain(outside)
    .collect();
    // `status` runs beside the walk; it reads the whole index (slow with
    // many entries), so it has `status_within` and is left out when later.
    let (log, status) = std::thread::scope(|s| {
        let status = s.spawn(|| {
            (!status_within.is_zero())
                .then(|| output_within(dir, &status_args, status_within))
                .flatten()
        });
        let log = crate::repo::Repo::open(dir)
            .map(|r| r.recent_commits(commits, 200, 100))
            .unwrap_or_default();
        (log, status.join().ok().flatten())
    });
    out.status_in_time = status.is_some();
    for (subject, paths) in log {
        if subject.is_empty() || subject.starts_with("agentops:") {
            continue;
        }
        out.subjects.push(subject);
        out.paths.extend(paths);
    }
    if let Some(status) = status {
        out.paths.extend(
            status
                .lines()
                .filter_map(|l| l.get(3..))
                .map(|p| p.rsplit(" -> ").next().unwrap_or(p).trim().to_owned()),
        );
    }
    out.paths.retain(|p| !p.starts_with(".agents/"));
    let mut seen = std::collections::BTreeSet::new();
    out.paths.retain(|p| seen.insert(p.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_names_its_arguments_and_stderr() {
        let d = tempfile::tempdir().unwrap();
        let e = run(d.path(), &["rev-parse", "HEAD"]).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("git rev-parse HEAD: "), "{text}");
        assert!(text.contains("not a git repository"), "{text}");
        assert!(version().unwrap().starts_with("git version "));
    }

    #[test]
    fn recent_work_reads_status_without_ever_locking_the_index() {
        let d = tempfile::tempdir().unwrap();
        let g = |args: &[&str]| {
            run(
                d.path(),
                &[&["-c", "user.name=t", "-c", "user.email=t@t"], args].concat(),
            )
            .unwrap()
        };
        g(&["init", "-q"]);
        std::fs::write(d.path().join("billing.rs"), "a").unwrap();
        g(&["add", "billing.rs"]);
        g(&["commit", "-qm", "Round invoices to cents"]);
        std::fs::write(d.path().join("billing.rs"), "b").unwrap();
        let w = recent_work(d.path(), 8, std::time::Duration::from_secs(10));
        assert!(w.status_in_time);
        assert_eq!(w.subjects, ["Round invoices to cents"]);
        assert_eq!(w.paths, ["billing.rs"]);
        // Stopped at once, again and again: never a stale index.lock.
        for _ in 0..20 {
            let _ = recent_work(d.path(), 8, std::time::Duration::from_micros(1));
            assert!(!d.path().join(".git/index.lock").exists());
        }
        let w = recent_work(d.path(), 8, std::time::Duration::ZERO);
        assert!(!w.status_in_time);
    }
}
