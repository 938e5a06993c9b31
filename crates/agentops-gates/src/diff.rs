//! The working tree's changes against a base revision, as gates see them:
//! changed paths (renames, deletions, binaries, untracked files) with line
//! counts, and the added lines with their line numbers.

use std::path::Path;

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
    Ok(agentops_git::cmd::run_bytes(root, args)?)
}

fn git_ok(root: &Path, args: &[&str]) -> Option<String> {
    agentops_git::cmd::output_ok(root, args)
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
/// ignored) against `base`. One `git diff` run gives everything (statuses,
/// renames, binaries, line counts, added lines): on a large diff git spends
/// its time reading the files, so it must not be asked three times.
pub fn collect(root: &Path, base: &str) -> Result<Diff, GateError> {
    let patch = git(
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
    )?;
    let (mut files, mut added_lines) = parse_patch(&patch);
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

/// The path of a side of a `diff --git` header when both sides name the
/// same path: `a/<p> b/<p>`.
fn header_path(rest: &str) -> String {
    if let Some(after) = rest.strip_prefix('"') {
        // Quoted: `"a/…" "b/…"` (or mixed); take the second quoted part.
        if let Some(pos) = after.find("\" ").map(|p| p + 2) {
            let second = after[pos..].trim();
            let u = unquote(second);
            return u.strip_prefix("b/").map(str::to_owned).unwrap_or(u);
        }
    }
    let n = rest.len();
    if n > 5 && (n - 5).is_multiple_of(2) {
        let half = (n - 5) / 2;
        if rest.is_char_boundary(2 + half) {
            return rest[2..2 + half].to_owned();
        }
    }
    rest.rsplit_once(" b/")
        .map_or_else(|| rest.to_owned(), |(_, b)| b.to_owned())
}

/// Files and added lines from a `git diff -U0 -M` patch.
fn parse_patch(patch: &[u8]) -> (Vec<ChangedFile>, Vec<AddedLine>) {
    let text = String::from_utf8_lossy(patch);
    let mut files: Vec<ChangedFile> = Vec::new();
    let mut added_lines = Vec::new();
    let mut line_no = 0u64;
    let mut in_hunk = false;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("diff --git ") {
            files.push(ChangedFile {
                path: header_path(rest),
                old_path: None,
                status: 'M',
                added: 0,
                deleted: 0,
                binary: false,
            });
            in_hunk = false;
            continue;
        }
        let Some(f) = files.last_mut() else { continue };
        if !in_hunk {
            if l.starts_with("new file mode") {
                f.status = 'A';
            } else if l.starts_with("deleted file mode") {
                f.status = 'D';
            } else if let Some(p) = l.strip_prefix("rename from ") {
                f.old_path = Some(unquote(p));
                f.status = 'R';
            } else if let Some(p) = l.strip_prefix("rename to ") {
                f.path = unquote(p);
            } else if let Some(p) = l.strip_prefix("copy from ") {
                f.old_path = Some(unquote(p));
                f.status = 'C';
            } else if let Some(p) = l.strip_prefix("copy to ") {
                f.path = unquote(p);
            } else if l.starts_with("Binary files ") || l == "GIT binary patch" {
                f.binary = true;
            } else if let Some(p) = l.strip_prefix("+++ ").filter(|p| *p != "/dev/null") {
                let p = unquote(p);
                f.path = p.strip_prefix("b/").map(str::to_owned).unwrap_or(p);
            } else if let Some(p) = l
                .strip_prefix("--- ")
                .filter(|p| *p != "/dev/null" && f.status == 'D')
            {
                let p = unquote(p);
                f.path = p.strip_prefix("a/").map(str::to_owned).unwrap_or(p);
            }
        }
        if l.starts_with("@@ ") {
            in_hunk = true;
            line_no = l
                .split_whitespace()
                .find(|t| t.starts_with('+'))
                .and_then(|t| t[1..].split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if in_hunk {
            if let Some(content) = l.strip_prefix('+') {
                f.added += 1;
                added_lines.push(AddedLine {
                    path: f.path.clone(),
                    line: line_no,
                    text: content.to_owned(),
                });
                line_no += 1;
            } else if l.starts_with('-') {
                f.deleted += 1;
            }
        }
    }
    (files, added_lines)
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

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn files_and_added_lines_from_one_patch() {
        let patch = concat!(
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +2,2 @@\n+one\n+two\n@@ -9 +11 @@\n-old\n+new\n",
            "diff --git \"a/sp ace\\tq\" \"b/sp ace\\tq\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/sp ace\\tq\"\n@@ -0,0 +1 @@\n++plus\n",
            "diff --git a/old name b/new name\nsimilarity index 90%\nrename from old name\nrename to new name\n",
            "diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n",
            "diff --git a/img.png b/img.png\nindex 1..2 100644\nBinary files a/img.png and b/img.png differ\n",
        );
        let (files, added) = parse_patch(patch.as_bytes());
        let f: Vec<(String, Option<String>, char, u64, u64, bool)> = files
            .into_iter()
            .map(|f| (f.path, f.old_path, f.status, f.added, f.deleted, f.binary))
            .collect();
        assert_eq!(
            f,
            vec![
                ("x".into(), None, 'M', 3, 1, false),
                ("sp ace\tq".into(), None, 'A', 1, 0, false),
                ("new name".into(), Some("old name".into()), 'R', 0, 0, false),
                ("gone".into(), None, 'D', 0, 1, false),
                ("img.png".into(), None, 'M', 0, 0, true),
            ]
        );
        let got: Vec<(String, u64, String)> = added
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
