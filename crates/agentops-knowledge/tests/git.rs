//! The git helper layer against real repositories: multi-path commits,
//! deletions, reads at a revision, history, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use agentops_knowledge::git::{Change, GitError, Repo, Target};
use pretty_assertions::assert_eq;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("docs/a.md"), "a\n").unwrap();
    std::fs::write(root.join("docs/b.md"), "b\n").unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "base"]);
    (tmp, root)
}

fn change(path: &str, content: Option<&str>) -> Change {
    Change {
        path: path.into(),
        content: content.map(|c| c.as_bytes().to_vec()),
        create: false,
    }
}

#[test]
fn commits_several_paths_and_a_deletion_in_one_commit() {
    let (_t, root) = repo();
    std::fs::write(root.join("docs/c.md"), "c\n").unwrap();
    std::fs::write(root.join("docs/a.md"), "a2\n").unwrap();
    std::fs::remove_file(root.join("docs/b.md")).unwrap();
    let r = Repo::open(&root).unwrap();
    let id = r
        .commit(
            &Target::Head,
            &[
                change("docs/c.md", Some("c\n")),
                change("docs/a.md", Some("a2\n")),
                change("docs/b.md", None),
            ],
            "three changes\n\nAgentops-Run: r1\n",
        )
        .unwrap();
    assert_eq!(git(&root, &["rev-parse", "HEAD"]).trim(), id.to_string());
    assert_eq!(
        git(
            &root,
            &["diff-tree", "--no-commit-id", "--name-status", "-r", "HEAD"]
        ),
        "M\tdocs/a.md\nD\tdocs/b.md\nA\tdocs/c.md\n"
    );
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    assert_eq!(
        r.read_file_at(id, "docs/c.md").unwrap().as_deref(),
        Some(&b"c\n"[..])
    );
    assert_eq!(r.read_file_at(id, "docs/b.md").unwrap(), None);
    let files = r.read_dir_at(id, "docs").unwrap();
    let mut names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["docs/a.md", "docs/c.md"]);
    let hist = r.history(&Target::Head, "docs/b.md", 10).unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].summary, "three changes");
    assert_eq!(
        hist[0].trailers,
        vec![("Agentops-Run".to_owned(), "r1".to_owned())]
    );
    assert_eq!(hist[1].summary, "base");
    let fsck = Command::new("git")
        .args(["fsck", "--strict"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(fsck.status.success());
}

#[test]
fn a_created_path_that_exists_is_taken() {
    let (_t, root) = repo();
    let r = Repo::open(&root).unwrap();
    let mut c = change("docs/a.md", Some("other\n"));
    c.create = true;
    let err = r.commit(&Target::Head, &[c], "x").unwrap_err();
    assert!(matches!(err, GitError::PathTaken { .. }), "{err}");
    assert!(!root.join(".git/index.lock").exists());
}

#[test]
fn staged_content_of_the_same_path_is_never_committed_over() {
    let (_t, root) = repo();
    std::fs::write(root.join("docs/a.md"), "staged by the user\n").unwrap();
    git(&root, &["add", "docs/a.md"]);
    let r = Repo::open(&root).unwrap();
    let before = git(&root, &["rev-parse", "HEAD"]);
    let err = r
        .commit(
            &Target::Head,
            &[change("docs/a.md", Some("agentops\n"))],
            "x",
        )
        .unwrap_err();
    assert!(matches!(err, GitError::StagedChanges { .. }), "{err}");
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), before);
    assert_eq!(
        git(&root, &["diff", "--cached", "--name-only"]),
        "docs/a.md\n"
    );
    assert!(!root.join(".git/index.lock").exists());
}

#[test]
fn unsafe_paths_are_refused() {
    let (_t, root) = repo();
    let r = Repo::open(&root).unwrap();
    for p in [
        "../escape.md",
        "docs/../../x",
        ".git/config",
        "/abs",
        "a//b",
        "",
    ] {
        let err = r.commit(&Target::Branch("side".into()), &[change(p, Some("x"))], "x");
        assert!(err.is_err(), "{p} was accepted");
    }
}

#[test]
fn a_held_index_lock_is_waited_for_then_reported() {
    let (_t, root) = repo();
    std::fs::write(root.join(".git/index.lock"), "").unwrap();
    let r = Repo::open(&root).unwrap();
    let t = std::time::Instant::now();
    let err = r
        .commit(&Target::Head, &[change("docs/n.md", Some("n\n"))], "x")
        .unwrap_err();
    assert!(matches!(err, GitError::IndexLocked { .. }), "{err}");
    assert!(t.elapsed() >= std::time::Duration::from_secs(4));
    // Someone else's lock is left where it was.
    assert!(root.join(".git/index.lock").exists());
}
