//! `agentops sync`: knowledge through the git remote.
//!
//! The memory branch (`memory.branch`, else the current branch) is fetched;
//! others' memory commits come in and this machine's go out. Local memory
//! commits not yet on the remote are replayed on top of the remote's tip
//! (a rebase done with a private index and `commit-tree`: the user's work
//! tree and index are never used for it), then the branch moves by
//! compare-and-swap and is pushed (fast-forward only; a push that lost a
//! race fetches and replays again).
//!
//! A memory commit has one parent and changes only entry files
//! (`.agents/{learnings,decisions,patterns,handoffs,runs}/**.md`). Sync
//! refuses, changing nothing, when publishing would take commits that are
//! not memory commits along (the user's unpushed work) or bringing the
//! remote in would change the user's files outside memory.
//!
//! Two machines creating the same entry id (the same title on the same
//! day) both keep their entry: the local one is renamed to the next free
//! id. The same entry edited on both sides is a conflict: reported, nothing
//! changed, until `--keep ours|theirs` says which edit stays.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agentops_core::config::Config;
use agentops_git::cmd::{self, CommandError};
use agentops_git::{HeadState, Repo};
use agentops_store::RepoLayout;
use serde::Serialize;

/// Which edit stays when both sides edited an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// This machine's edit, applied over the remote's.
    Ours,
    /// The remote's edit; this machine's is dropped.
    Theirs,
}

/// What `sync` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// The remote (default: the branch's upstream remote, else `origin`).
    pub remote: Option<String>,
    /// How to settle entries edited on both sides.
    pub keep: Option<Keep>,
}

/// An entry edited here and on the remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub id: String,
    pub path: String,
    /// The local commit with this machine's edit.
    pub ours: String,
    /// The remote tip that holds the other edit.
    pub theirs: String,
    /// How it was settled (`None`: not settled, sync changed nothing).
    pub kept: Option<Keep>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub branch: String,
    pub remote: String,
    /// Whether the branch is the one checked out (its files were updated).
    pub checked_out: bool,
    /// Remote commits brought in.
    pub received: usize,
    /// Local memory commits published.
    pub published: usize,
    /// Local memory commits replayed on the remote's tip.
    pub rebased: usize,
    /// Entries renamed because the remote already had their id: (old, new).
    pub renamed: Vec<(String, String)>,
    /// Entries edited on both sides, settled by `--keep`.
    pub settled: Vec<Conflict>,
    /// Paths whose files changed in the work tree.
    pub updated_paths: Vec<String>,
    /// The branch's tip afterwards.
    pub tip: Option<String>,
}

/// Why a sync changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Refused(String),
    #[error(
        "cannot reach remote `{remote}`: {detail}\nnothing changed; your memory commits stay here until the next sync"
    )]
    Unreachable { remote: String, detail: String },
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    #[error("git: {0}")]
    Git(String),
}

fn conflicts_message(c: &[Conflict]) -> String {
    let mut m = format!(
        "{} edited here and on the remote; nothing changed:",
        agentops_core::counted(c.len() as u64, "entry was", "entries were")
    );
    for c in c {
        m.push_str(&format!(
            "\n  {} ({}): here in {}, there in {}",
            c.id,
            c.path,
            short(&c.ours),
            short(&c.theirs)
        ));
    }
    m.push_str(
        "\nsettle it: `agentops sync --keep ours` (this machine's edit goes over the other) or `--keep theirs` (the other edit stays; this one is dropped)",
    );
    m
}

impl From<CommandError> for SyncError {
    fn from(e: CommandError) -> Self {
        SyncError::Git(e.to_string())
    }
}

impl From<agentops_git::GitError> for SyncError {
    fn from(e: agentops_git::GitError) -> Self {
        SyncError::Git(e.to_string())
    }
}

fn short(c: &str) -> &str {
    c.get(..10).unwrap_or(c)
}

/// The directories entries live in.
const MEMORY_DIRS: &[&str] = &[
    ".agents/learnings/",
    ".agents/decisions/",
    ".agents/patterns/",
    ".agents/handoffs/",
    ".agents/runs/",
];

/// Whether `path` is an entry file (what memory commits change).
pub fn is_memory_path(path: &str) -> bool {
    path.ends_with(".md") && MEMORY_DIRS.iter().any(|d| path.starts_with(d))
}

/// One path a commit changed: blobs before and after (`None`: absent).
#[derive(Debug, Clone)]
struct Changed {
    path: String,
    mode: String,
    before: Option<String>,
    after: Option<String>,
}

const ZERO: &str = "0000000000000000000000000000000000000000";

struct Git<'a> {
    dir: &'a Path,
    index: PathBuf,
}

impl Git<'_> {
    fn run(&self, args: &[&str]) -> Result<String, SyncError> {
        Ok(cmd::run(self.dir, args)?)
    }

    fn ok(&self, args: &[&str]) -> Option<String> {
        cmd::run(self.dir, args).ok()
    }

    /// With the private index.
    fn idx(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, SyncError> {
        let index = self.index.to_string_lossy();
        let out = cmd::run_with(self.dir, args, &[("GIT_INDEX_FILE", &index)], stdin)?;
        Ok(String::from_utf8_lossy(&out).trim_end().to_owned())
    }

    fn rev(&self, r: &str) -> Option<String> {
        self.ok(&["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")])
    }

    fn list(&self, args: &[&str]) -> Result<Vec<String>, SyncError> {
        Ok(self
            .run(args)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn subject(&self, c: &str) -> String {
        self.ok(&["log", "-1", "--format=%s", c])
            .unwrap_or_default()
    }

    /// What `c` changed against its only parent; `None` for a merge or a
    /// root commit.
    fn changes(&self, c: &str) -> Result<Option<Vec<Changed>>, SyncError> {
        let parents = self.run(&["rev-list", "--parents", "-n", "1", c])?;
        if parents.split_whitespace().count() != 2 {
            return Ok(None);
        }
        let raw = cmd::run_bytes(
            self.dir,
            &[
                "diff-tree",
                "-r",
                "-z",
                "--no-renames",
                "--no-commit-id",
                &format!("{c}^"),
                c,
            ],
        )?;
        let mut out = Vec::new();
        let mut fields = raw.split(|b| *b == 0);
        while let Some(meta) = fields.next() {
            if meta.is_empty() {
                continue;
            }
            let Some(path) = fields.next() else { break };
            let meta = String::from_utf8_lossy(meta);
            let m: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
            if m.len() < 5 {
                continue;
            }
            let blob = |s: &str| (s != ZERO).then(|| s.to_owned());
            out.push(Changed {
                path: String::from_utf8_lossy(path).into_owned(),
                mode: if m[1] == "000000" { m[0] } else { m[1] }.to_owned(),
                before: blob(m[2]),
                after: blob(m[3]),
            });
        }
        Ok(Some(out))
    }

    fn is_memory_commit(&self, c: &str) -> Result<bool, SyncError> {
        Ok(self
            .changes(c)?
            .is_some_and(|ch| ch.iter().all(|x| is_memory_path(&x.path))))
    }

    /// The blob at `path` in the private index.
    fn staged(&self, path: &str) -> Result<Option<String>, SyncError> {
        let out = self.idx(&["ls-files", "-s", "--", path], None)?;
        Ok(out
            .lines()
            .find_map(|l| l.split_whitespace().nth(1).map(str::to_owned)))
    }
}

/// Runs one sync of `layout`'s memory branch.
pub fn sync(
    layout: &RepoLayout,
    config: &Config,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let root = &layout.work_tree;
    let repo = Repo::open(root)?;
    let head = repo.head()?;
    let (branch, checked_out) = match (&config.memory.branch, &head) {
        (Some(b), HeadState::Branch { name, .. }) => (b.clone(), name == b),
        (Some(b), HeadState::Detached(_)) => (b.clone(), false),
        (None, HeadState::Branch { name, .. }) => (name.clone(), true),
        (None, HeadState::Detached(_)) => {
            return Err(SyncError::Refused(
                "HEAD is detached: memory commits go on a branch; check one out or set memory.branch".into(),
            ));
        }
    };
    if checked_out && let Some(p) = repo.in_progress() {
        return Err(SyncError::Refused(format!(
            "{}: finish it first (sync would move branch {branch})",
            p.describe()
        )));
    }
    let state = layout.state_dir();
    std::fs::create_dir_all(&state)
        .map_err(|e| SyncError::Git(format!("{}: {e}", state.display())))?;
    let git = Git {
        dir: root,
        index: state.join(format!("sync-index-{}", std::process::id())),
    };
    let remote = match &opts.remote {
        Some(r) => r.clone(),
        None => git
            .ok(&["config", &format!("branch.{branch}.remote")])
            .filter(|r| !r.is_empty() && r != ".")
            .unwrap_or_else(|| "origin".into()),
    };
    if git.ok(&["remote", "get-url", &remote]).is_none() {
        return Err(SyncError::Refused(format!(
            "no git remote `{remote}`: add the team's repository (`git remote add {remote} URL`) or name one with --remote"
        )));
    }
    let mut last = None;
    for _ in 0..5 {
        let r = attempt(&git, &branch, &remote, checked_out, opts);
        let _ = std::fs::remove_file(&git.index);
        match r {
            Ok(Step::Done(mut rep)) => {
                rep.branch = branch;
                rep.remote = remote;
                rep.checked_out = checked_out;
                return Ok(rep);
            }
            Ok(Step::Again(why)) => last = Some(why),
            Err(e) => return Err(e),
        }
    }
    Err(SyncError::Git(format!(
        "gave up after 5 attempts: {}",
        last.unwrap_or_default()
    )))
}

enum Step {
    Done(SyncReport),
    /// Lost a race (the remote or the branch moved): fetch and go again.
    Again(String),
}

fn attempt(
    git: &Git<'_>,
    branch: &str,
    remote: &str,
    checked_out: bool,
    opts: &SyncOptions,
) -> Result<Step, SyncError> {
    let tracking = format!("refs/remotes/{remote}/{branch}");
    let fetched = cmd::run(
        git.dir,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            remote,
            &format!("+refs/heads/{branch}:{tracking}"),
        ],
    );
    match fetched {
        Ok(_) => {}
        Err(CommandError::Failed { stderr, .. }) if stderr.contains("couldn't find remote ref") => {
            // Not on the remote yet: the first publish creates it.
            let _ = git.ok(&["update-ref", "-d", &tracking]);
        }
        Err(CommandError::Failed { stderr, .. }) => {
            return Err(SyncError::Unreachable {
                remote: remote.into(),
                detail: stderr,
            });
        }
        Err(e) => return Err(e.into()),
    }
    let local_ref = format!("refs/heads/{branch}");
    let local = git.rev(&local_ref);
    let theirs = git.rev(&tracking);
    let mut rep = SyncReport::default();
    let Some(local) = local else {
        // No memory branch here yet: take the remote's.
        let Some(theirs) = theirs else {
            rep.tip = None;
            return Ok(Step::Done(rep));
        };
        if git.ok(&["update-ref", &local_ref, &theirs, ZERO]).is_none() {
            return Ok(Step::Again(format!("{local_ref} appeared while syncing")));
        }
        rep.received = git.list(&["rev-list", &theirs])?.len();
        rep.tip = Some(theirs);
        return Ok(Step::Done(rep));
    };
    let ours_only = match &theirs {
        Some(t) => git.list(&[
            "rev-list",
            "--reverse",
            "--topo-order",
            &local,
            &format!("^{t}"),
        ])?,
        None => git.list(&[
            "rev-list",
            "--reverse",
            "--topo-order",
            &local,
            "--not",
            &format!("--remotes={remote}"),
        ])?,
    };
    let theirs_only = match &theirs {
        Some(t) => git.list(&["rev-list", t, &format!("^{local}")])?,
        None => Vec::new(),
    };
    let mut code = Vec::new();
    for c in &ours_only {
        if !git.is_memory_commit(c)? {
            code.push(c.clone());
        }
    }
    let memory_here = ours_only.len() - code.len();
    if !code.is_empty() && (memory_here > 0 || !theirs_only.is_empty()) {
        let list: Vec<String> = code
            .iter()
            .take(5)
            .map(|c| format!("  {} {}", short(c), git.subject(c)))
            .collect();
        return Err(SyncError::Refused(format!(
            "branch {branch} has {} not on {remote}/{branch} that {} not memory commits:\n{}\n\
agentops sync publishes and rebases memory commits only, never your work: push it yourself (`git push`) \
or pull (`git pull --rebase`) first, or keep memory on a branch of its own (memory.branch = \"agentops/memory\")",
            agentops_core::counted(code.len() as u64, "commit", "commits"),
            if code.len() == 1 { "is" } else { "are" },
            list.join("\n")
        )));
    }
    if checked_out {
        let mut foreign = Vec::new();
        for c in &theirs_only {
            if !git.is_memory_commit(c)? {
                foreign.push(c.clone());
            }
        }
        if !foreign.is_empty() {
            let list: Vec<String> = foreign
                .iter()
                .take(5)
                .map(|c| format!("  {} {}", short(c), git.subject(c)))
                .collect();
            return Err(SyncError::Refused(format!(
                "{remote}/{branch} has {} that {} not memory commits:\n{}\n\
bringing {} in would change your files: `git pull` yourself, then `agentops sync`",
                agentops_core::counted(foreign.len() as u64, "commit", "commits"),
                if foreign.len() == 1 { "is" } else { "are" },
                list.join("\n"),
                if foreign.len() == 1 { "it" } else { "them" }
            )));
        }
    }
    let new_tip = match &theirs {
        None => local.clone(),
        Some(_) if theirs_only.is_empty() => local.clone(),
        Some(t) if memory_here == 0 => t.clone(),
        Some(t) => {
            let r = replay(git, t, &ours_only, opts.keep, &mut rep)?;
            rep.rebased = memory_here;
            r
        }
    };
    rep.received = theirs_only.len();
    if new_tip != local {
        // Compare-and-swap: a commit made meanwhile makes the sync start over.
        let move_ref = || {
            git.ok(&[
                "update-ref",
                "-m",
                "agentops sync",
                &local_ref,
                &new_tip,
                &local,
            ])
            .is_some()
        };
        if checked_out {
            // Two-tree merge into the user's index and work tree: only the
            // paths that differ between the tips change, and git refuses
            // when one of them has a change of the user's.
            let paths = git.list(&["diff", "--name-only", &local, &new_tip])?;
            if let Err(e) = cmd::run(git.dir, &["read-tree", "-m", "-u", &local, &new_tip]) {
                return Err(SyncError::Refused(format!(
                    "your uncommitted changes touch entries sync would update; commit or stash them first\n{e}"
                )));
            }
            if !move_ref() {
                let _ = cmd::run(git.dir, &["read-tree", "-m", "-u", &new_tip, &local]);
                return Ok(Step::Again(format!("{branch} moved while syncing")));
            }
            rep.updated_paths = paths;
        } else if !move_ref() {
            return Ok(Step::Again(format!("{branch} moved while syncing")));
        }
    }
    if memory_here > 0 {
        match cmd::run(
            git.dir,
            &[
                "push",
                "--quiet",
                remote,
                &format!("{new_tip}:refs/heads/{branch}"),
            ],
        ) {
            Ok(_) => {
                let _ = git.ok(&["update-ref", &tracking, &new_tip]);
                rep.published = memory_here;
            }
            Err(CommandError::Failed { stderr, .. })
                if stderr.contains("rejected")
                    || stderr.contains("non-fast-forward")
                    || stderr.contains("fetch first") =>
            {
                return Ok(Step::Again(format!("{remote} moved while publishing")));
            }
            Err(CommandError::Failed { stderr, .. }) => {
                return Err(SyncError::Unreachable {
                    remote: remote.into(),
                    detail: format!(
                        "{stderr} (the remote's memory commits were brought in; yours are kept here)"
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    rep.tip = Some(new_tip);
    Ok(Step::Done(rep))
}

/// The id an entry file names (its file stem).
fn id_of(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The path and id for `path`'s entry renamed to the first id not taken in
/// the private index.
fn free_name(git: &Git<'_>, path: &str) -> Result<(String, String), SyncError> {
    let id = id_of(path);
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    // `learning-20261202-x` → `learning-20261202-x-2`; `…-x-2` → `…-x-3`.
    let (stem, mut n) = match id.rsplit_once('-') {
        Some((s, k)) if k.parse::<u32>().is_ok_and(|k| (2..1000).contains(&k)) => {
            (s.to_owned(), k.parse::<u32>().unwrap_or(1))
        }
        _ => (id.clone(), 1),
    };
    loop {
        n += 1;
        let new_id = format!("{stem}-{n}");
        let new_path = format!("{dir}/{new_id}.md");
        if git.staged(&new_path)?.is_none() {
            return Ok((new_path, new_id));
        }
        if n > 10_000 {
            return Err(SyncError::Git(format!("no free id for {id}")));
        }
    }
}

/// `blob`'s text with its front matter's `id:` set to `new_id`, written as
/// a new blob.
fn renamed_blob(
    git: &Git<'_>,
    blob: &str,
    old_id: &str,
    new_id: &str,
) -> Result<String, SyncError> {
    let text = cmd::run_bytes(git.dir, &["cat-file", "blob", blob])?;
    let text = String::from_utf8_lossy(&text);
    let mut out = String::with_capacity(text.len() + 4);
    let mut in_front = false;
    let mut done = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if i == 0 && bare == "---" {
            in_front = true;
        } else if in_front && bare == "---" {
            in_front = false;
        } else if in_front
            && !done
            && let Some(v) = bare.strip_prefix("id:")
            && v.trim().trim_matches(['"', '\'']) == old_id
        {
            out.push_str(&format!("id: {new_id}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
    }
    let id = cmd::run_with(
        git.dir,
        &["hash-object", "-w", "--stdin"],
        &[],
        Some(out.as_bytes()),
    )?;
    Ok(String::from_utf8_lossy(&id).trim().to_owned())
}

/// Replays the memory commits of `ours` on `onto`; returns the new tip.
fn replay(
    git: &Git<'_>,
    onto: &str,
    ours: &[String],
    keep: Option<Keep>,
    rep: &mut SyncReport,
) -> Result<String, SyncError> {
    let _ = std::fs::remove_file(&git.index);
    git.idx(&["read-tree", onto], None)?;
    let mut tip = onto.to_owned();
    // Local paths renamed on the way: later commits follow them.
    let mut renames: HashMap<String, (String, String, String)> = HashMap::new();
    let mut conflicts = Vec::new();
    for c in ours {
        let Some(changes) = git.changes(c)? else {
            continue;
        };
        let mut info = String::new();
        for ch in changes {
            let (path, blob_after) = match renames.get(&ch.path) {
                Some((new_path, old_id, new_id)) => (
                    new_path.clone(),
                    match &ch.after {
                        Some(b) => Some(renamed_blob(git, b, old_id, new_id)?),
                        None => None,
                    },
                ),
                None => (ch.path.clone(), ch.after.clone()),
            };
            let there = git.staged(&path)?;
            let base = if renames.contains_key(&ch.path) {
                there.clone()
            } else {
                ch.before.clone()
            };
            let apply = if there == base || there == blob_after {
                blob_after
            } else if ch.before.is_none() && !renames.contains_key(&ch.path) {
                // Created on both sides under one id: ours takes the next.
                let (new_path, new_id) = free_name(git, &path)?;
                let old_id = id_of(&path);
                let blob = match &ch.after {
                    Some(b) => renamed_blob(git, b, &old_id, &new_id)?,
                    None => continue,
                };
                rep.renamed.push((old_id.clone(), new_id.clone()));
                renames.insert(ch.path.clone(), (new_path.clone(), old_id, new_id));
                info.push_str(&format!("{} {blob}\t{new_path}\n", ch.mode));
                continue;
            } else {
                let conflict = Conflict {
                    id: id_of(&path),
                    path: path.clone(),
                    ours: c.clone(),
                    theirs: onto.to_owned(),
                    kept: keep,
                };
                match keep {
                    Some(Keep::Ours) => {
                        rep.settled.push(conflict);
                        blob_after
                    }
                    Some(Keep::Theirs) => {
                        rep.settled.push(conflict);
                        continue;
                    }
                    None => {
                        if !conflicts.iter().any(|x: &Conflict| x.path == path) {
                            conflicts.push(conflict);
                        }
                        continue;
                    }
                }
            };
            match apply {
                Some(b) => info.push_str(&format!("{} {b}\t{path}\n", ch.mode)),
                None => info.push_str(&format!("0 {ZERO}\t{path}\n")),
            }
        }
        if !conflicts.is_empty() {
            continue;
        }
        if !info.is_empty() {
            git.idx(&["update-index", "--index-info"], Some(info.as_bytes()))?;
        }
        let tree = git.idx(&["write-tree"], None)?;
        if git
            .ok(&["rev-parse", &format!("{tip}^{{tree}}")])
            .as_deref()
            == Some(tree.as_str())
        {
            // Already there (the same change on both sides).
            continue;
        }
        let fmt = |f: &str| {
            git.ok(&["log", "-1", "--date=raw", &format!("--format={f}"), c])
                .unwrap_or_default()
        };
        let message = cmd::run_bytes(git.dir, &["log", "-1", "--format=%B", c])?;
        let (an, ae, ad) = (fmt("%an"), fmt("%ae"), fmt("%ad"));
        let out = cmd::run_with(
            git.dir,
            &["commit-tree", &tree, "-p", &tip, "-F", "-"],
            &[
                ("GIT_AUTHOR_NAME", &an),
                ("GIT_AUTHOR_EMAIL", &ae),
                ("GIT_AUTHOR_DATE", &ad),
            ],
            Some(&message),
        )?;
        tip = String::from_utf8_lossy(&out).trim().to_owned();
    }
    if !conflicts.is_empty() {
        return Err(SyncError::Conflicts(conflicts));
    }
    Ok(tip)
}
