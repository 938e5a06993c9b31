//! The working tree's changes against a base revision, as gates see them:
//! changed paths (renames, deletions, binaries, untracked files) with line
//! counts, and the added lines with their line numbers.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::GateError;

/// The tree id of git's empty tree (the base of an unborn branch).
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    pub path: String,
    /// The source of a rename or copy.
    pub old_path: Option<String>,
    /// `A`dded, `M`odified, `D`eleted, `R`enamed, `C`opied, `T`ype change, `?` untracked.
    pub status: char,
    pub added: u64,
    pub deleted: u64,
    pub binary: bool,
}

/// An added line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddedLine {
    pub path: String,
    pub line: u64,
    pub text: String,
}

/// Everything that changed since `base`.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The revision compared against.
    pub base: String,
    pub files: Vec<ChangedFile>,
    #[serde(skip)]
    pub added_lines: Vec<AddedLine>,
}

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, GateError> {
    let out = Command::new("git")
        .args(["-c", "core.quotePath=false"])
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| GateError::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(GateError::Git(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn git_ok(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The default base: the merge-base of HEAD with the default branch
/// (`origin/HEAD`, else `main`, else `master`); HEAD itself when on that
/// branch; the empty tree on an unborn branch.
pub fn default_base(root: &Path) -> String {
    let Some(head) = git_ok(root, &["rev-parse", "--verify", "-q", "HEAD"]) else {
        return EMPTY_TREE.into();
    };
    for candidate in ["origin/HEAD", "main", "master"] {
        if git_ok(root, &["rev-parse", "--verify", "-q", candidate]).is_some()
            && let Some(mb) = git_ok(root, &["merge-base", "HEAD", candidate])
        {
            return mb;
        }
    }
    head
}

/// Collects the changes of the working tree (tracked and untracked, not
/// ignored) against `base`.
pub fn collect(root: &Path, base: &str) -> Result<Diff, GateError> {
    let mut files = Vec::new();
    let name_status = git(root, &["diff", "--name-status", "-z", "-M", base, "--"])?;
    let mut parts = name_status.split(|&b| b == 0).filter(|p| !p.is_empty());
    while let Some(st) = parts.next() {
        let status = st.first().map_or('M', |&b| char::from(b));
        let first = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let (path, old_path) = if matches!(status, 'R' | 'C') {
            let second = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            (second, Some(first))
        } else {
            (first, None)
        };
        files.push(ChangedFile {
            path,
            old_path,
            status,
            added: 0,
            deleted: 0,
            binary: false,
        });
    }
    let numstat = git(root, &["diff", "--numstat", "-z", "-M", base, "--"])?;
    let mut parts = numstat.split(|&b| b == 0);
    while let Some(rec) = parts.next() {
        if rec.is_empty() {
            continue;
        }
        let rec = String::from_utf8_lossy(rec);
        let mut fields = rec.splitn(3, '\t');
        let (a, d, p) = (
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        // A rename's numstat has an empty path field followed by old\0new\0.
        let path = if p.is_empty() {
            let _old = parts.next();
            String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned()
        } else {
            p.to_owned()
        };
        if let Some(f) = files.iter_mut().find(|f| f.path == path) {
            if a == "-" {
                f.binary = true;
            } else {
                f.added = a.parse().unwrap_or(0);
                f.deleted = d.parse().unwrap_or(0);
            }
        }
    }
    let mut added_lines = parse_added(&git(
        root,
        &[
            "diff",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "-M",
            base,
            "--",
        ],
    )?);
    let untracked = git(root, &["ls-files", "--others", "--exclude-standard", "-z"])?;
    for p in untracked.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(p).into_owned();
        let full = root.join(&path);
        let meta = std::fs::symlink_metadata(&full).ok();
        let bytes = if meta.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
            std::fs::read_link(&full)
                .map(|t| t.to_string_lossy().into_owned().into_bytes())
                .unwrap_or_default()
        } else {
            std::fs::read(&full).unwrap_or_default()
        };
        let binary = bytes.iter().take(8000).any(|&b| b == 0);
        let mut added = 0;
        if !binary {
            for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
                added += 1;
                added_lines.push(AddedLine {
                    path: path.clone(),
                    line: i as u64 + 1,
                    text: line.to_owned(),
                });
            }
        }
        files.push(ChangedFile {
            path,
            old_path: None,
            status: '?',
            added,
            deleted: 0,
            binary,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Diff {
        base: base.to_owned(),
        files,
        added_lines,
    })
}

/// Unquotes a path git printed in C style (`"a\tb"`).
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) else {
        return s.to_owned();
    };
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            match c {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'0'..=b'7' if i + 3 < b.len() => {
                    let oct = &inner[i + 1..i + 4];
                    out.push(u8::from_str_radix(oct, 8).unwrap_or(b'?'));
                    i += 4;
                    continue;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `+` lines of a `-U0` patch with their new line numbers.
fn parse_added(patch: &[u8]) -> Vec<AddedLine> {
    let text = String::from_utf8_lossy(patch);
    let mut out = Vec::new();
    let mut path: Option<String> = None;
    let mut line = 0u64;
    for l in text.lines() {
        if let Some(p) = l.strip_prefix("+++ ") {
            path = if p == "/dev/null" {
                None
            } else {
                let p = unquote(p);
                Some(p.strip_prefix("b/").map(str::to_owned).unwrap_or(p))
            };
        } else if l.starts_with("@@ ") {
            // @@ -a,b +c,d @@
            line = l
                .split_whitespace()
                .find(|t| t.starts_with('+'))
                .and_then(|t| t[1..].split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let (Some(p), Some(content)) = (&path, l.strip_prefix('+')) {
            out.push(AddedLine {
                path: p.clone(),
                line,
                text: content.to_owned(),
            });
            line += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn added_lines_from_a_patch() {
        let patch = b"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +2,2 @@\n+one\n+two\n@@ -9 +11 @@\n-old\n+new\ndiff --git a/y b/y\n+++ \"b/sp ace\\tq\"\n@@ -0,0 +1 @@\n++plus\n";
        let got: Vec<(String, u64, String)> = parse_added(patch)
            .into_iter()
            .map(|a| (a.path, a.line, a.text))
            .collect();
        assert_eq!(
            got,
            vec![
                ("x".into(), 2, "one".into()),
                ("x".into(), 3, "two".into()),
                ("x".into(), 11, "new".into()),
                ("sp ace\tq".into(), 1, "+plus".into()),
            ]
        );
    }
}
