//! Where a repository's agentops state lives, found without spawning `git`
//! (hooks run on every tool call, so this must cost microseconds).

use std::path::{Path, PathBuf};

/// The git directories and agentops paths of one checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoLayout {
    /// The top of the working tree.
    pub work_tree: PathBuf,
    /// This checkout's git dir (`.git`, or `.git/worktrees/<name>`).
    pub git_dir: PathBuf,
    /// What `git rev-parse --git-common-dir` prints: shared by all worktrees.
    pub common_dir: PathBuf,
}

/// Why no repository layout could be found.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "{start}: not inside a git repository (searched from here up to /). \
agentops keeps its memory in git: run `git init`, or pass `-C <dir>` to point at a repository."
    )]
    NotARepo { start: PathBuf },
    #[error("{path}: cannot read the git metadata: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: expected `gitdir: <path>` in this .git file, found something else")]
    BadGitFile { path: PathBuf },
}

impl RepoLayout {
    /// Finds the repository containing `start` by walking up to the first `.git`.
    pub fn discover(start: &Path) -> Result<Self, LayoutError> {
        let start_abs = std::path::absolute(start).map_err(|e| LayoutError::Unreadable {
            path: start.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut dir: Option<&Path> = Some(&start_abs);
        while let Some(d) = dir {
            let dot_git = d.join(".git");
            match std::fs::metadata(&dot_git) {
                Ok(m) if m.is_dir() && dot_git.join("HEAD").is_file() => {
                    return Ok(Self::from_git_dir(d.to_path_buf(), dot_git));
                }
                Ok(m) if m.is_file() => {
                    let text =
                        std::fs::read_to_string(&dot_git).map_err(|e| LayoutError::Unreadable {
                            path: dot_git.clone(),
                            reason: e.to_string(),
                        })?;
                    let target = text
                        .lines()
                        .next()
                        .and_then(|l| l.strip_prefix("gitdir:"))
                        .map(str::trim)
                        .ok_or_else(|| LayoutError::BadGitFile {
                            path: dot_git.clone(),
                        })?;
                    let git_dir = d.join(target);
                    return Ok(Self::from_git_dir(d.to_path_buf(), normalize(&git_dir)));
                }
                _ => {}
            }
            dir = d.parent();
        }
        Err(LayoutError::NotARepo { start: start_abs })
    }

    fn from_git_dir(work_tree: PathBuf, git_dir: PathBuf) -> Self {
        let common_dir = std::fs::read_to_string(git_dir.join("commondir"))
            .ok()
            .map(|s| normalize(&git_dir.join(s.trim())))
            .unwrap_or_else(|| git_dir.clone());
        Self {
            work_tree,
            git_dir,
            common_dir,
        }
    }

    /// `<git-common-dir>/agentops`: the journal, index and run worktrees.
    pub fn state_dir(&self) -> PathBuf {
        self.common_dir.join("agentops")
    }

    /// The default SQLite journal.
    pub fn state_db(&self) -> PathBuf {
        self.state_dir().join("state.db")
    }

    /// `.agents/` in the working tree.
    pub fn agents_dir(&self) -> PathBuf {
        self.work_tree.join(".agents")
    }

    /// Where `.agents` (or one of its knowledge folders) really is, when a
    /// symlink takes it outside the work tree; `None` when it is inside or
    /// does not exist.
    pub fn agents_outside(&self) -> Option<PathBuf> {
        let root = self.work_tree.canonicalize().ok()?;
        let agents = self.agents_dir();
        let mut dirs = vec![agents.clone()];
        if let Ok(rd) = std::fs::read_dir(&agents) {
            dirs.extend(rd.flatten().map(|e| e.path()));
        }
        dirs.into_iter().find_map(|d| {
            let real = d.canonicalize().ok()?;
            (!real.starts_with(&root)).then_some(real)
        })
    }

    /// `.agents/config.toml`.
    pub fn project_config(&self) -> PathBuf {
        self.agents_dir().join("config.toml")
    }

    /// The file a `store.url` names: `sqlite:///abs`, `sqlite://rel` or a path,
    /// relative ones taken from the working tree's top.
    pub fn resolve_store_url(&self, url: &str) -> PathBuf {
        let p = url.strip_prefix("sqlite://").unwrap_or(url);
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.work_tree.join(p)
        }
    }
}

/// Removes `.` and `..` components lexically (the paths come from git files).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn matches_git_rev_parse_in_repo_subdir_and_worktree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap().join("repo");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(
            &root,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "x",
            ],
        );
        let l = RepoLayout::discover(&root.join("a/b")).unwrap();
        assert_eq!(l.work_tree, root);
        assert_eq!(l.common_dir, root.join(".git"));
        let wt = root.parent().unwrap().join("wt");
        git(&root, &["worktree", "add", "-q", wt.to_str().unwrap()]);
        let l = RepoLayout::discover(&wt).unwrap();
        assert_eq!(l.work_tree, wt);
        assert_eq!(l.common_dir, root.join(".git"));
        assert_eq!(l.git_dir, root.join(".git/worktrees/wt"));
        assert_eq!(l.state_db(), root.join(".git/agentops/state.db"));
    }

    #[test]
    fn outside_a_repo_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RepoLayout::discover(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not inside a git repository"), "{err}");
    }
}
