//! The git helper layer: open a repository, read files at a revision, commit a
//! set of paths without touching anything else, list the history of a path.
//! In-process with gix; the `git` command is used only for what gix cannot do
//! (worktrees and push, in the runner).

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::object::tree::EntryKind;

/// A git failure, with the repository and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path}: cannot open the git repository: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("git: {action}: {reason}")]
    Op { action: String, reason: String },
    #[error(
        "{path}: the index is locked by another git process (index.lock) for over {waited_ms} ms; \
if no git command is running, remove the stale lock file"
    )]
    IndexLocked { path: PathBuf, waited_ms: u64 },
    #[error(
        "{path}: exists, so git will not move the branch: another git process is updating it. If no git command is running, it was left by one that was killed: remove it (`rm {path}`) and try again"
    )]
    RefLocked { path: PathBuf },
    #[error("{path}: already exists on the target branch")]
    PathTaken { path: String },
    #[error(
        "{path}: has staged changes; commit or unstage them (`git restore --staged {path}`) before agentops rewrites it"
    )]
    StagedChanges { path: String },
}

fn op(action: impl Into<String>) -> impl FnOnce(gix::Error) -> GitError {
    let action = action.into();
    move |e| GitError::Op {
        action,
        reason: e.to_string(),
    }
}

/// Where HEAD stands, and whether a multi-step operation is under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadState {
    /// On a branch; `tip` is `None` for an unborn branch.
    Branch { name: String, tip: Option<ObjectId> },
    /// HEAD points at a commit directly.
    Detached(ObjectId),
}

/// An operation that makes committing on HEAD a bad idea.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InProgress {
    Merge,
    Rebase,
    CherryPick,
    Revert,
}

impl InProgress {
    pub fn describe(self) -> &'static str {
        match self {
            InProgress::Merge => "a merge is in progress",
            InProgress::Rebase => "a rebase is in progress",
            InProgress::CherryPick => "a cherry-pick is in progress",
            InProgress::Revert => "a revert is in progress",
        }
    }
}

/// One path to write (`Some(bytes)`) or delete (`None`), relative to the work
/// tree with `/` separators.
#[derive(Debug, Clone)]
pub struct Change {
    pub path: String,
    pub content: Option<Vec<u8>>,
    /// The path must not exist yet at the tip.
    pub create: bool,
}

/// Where a commit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The current branch; the index entries of the changed paths are updated
    /// too, so they show clean in `git status`.
    Head,
    /// Another branch (`refs/heads/<name>`), created from HEAD when missing;
    /// neither the work tree nor the index is touched.
    Branch(String),
}

/// A commit in a path's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    pub id: String,
    /// Seconds since the epoch (RFC 3339 in JSON).
    #[serde(serialize_with = "agentops_core::time::serialize_secs")]
    pub time: i64,
    pub author: String,
    pub summary: String,
    /// `Agentops-*` trailers as (key, value).
    pub trailers: Vec<(String, String)>,
}

/// An open repository.
pub struct Repo {
    repo: gix::Repository,
}

const INDEX_LOCK_WAIT: Duration = Duration::from_secs(5);
const COMMIT_ATTEMPTS: u32 = 50;
/// How long a ref lock that is not ours may stand before the commit gives up.
const REF_LOCK_WAIT: Duration = Duration::from_millis(1500);

impl Repo {
    /// Opens the repository whose work tree is `work_tree`.
    pub fn open(work_tree: &Path) -> Result<Self, GitError> {
        let mut repo = gix::open(work_tree).map_err(|e| GitError::Open {
            path: work_tree.to_path_buf(),
            reason: e.to_string(),
        })?;
        // A commit reads the same large directory trees several times.
        repo.object_cache_size_if_unset(16 * 1024 * 1024);
        Ok(Self { repo })
    }

    /// The underlying gix repository.
    pub fn gix(&self) -> &gix::Repository {
        &self.repo
    }

    /// Where HEAD stands.
    pub fn head(&self) -> Result<HeadState, GitError> {
        let head = self.repo.head().map_err(op("read HEAD"))?;
        if let Some(name) = head.referent_name() {
            let name = name.shorten().to_string();
            let tip = head.id().map(gix::Id::detach);
            Ok(HeadState::Branch { name, tip })
        } else {
            match head.id() {
                Some(id) => Ok(HeadState::Detached(id.detach())),
                None => Err(GitError::Op {
                    action: "read HEAD".into(),
                    reason: "HEAD names no branch and no commit".into(),
                }),
            }
        }
    }

    /// A merge, rebase, cherry-pick or revert that is under way, if any.
    pub fn in_progress(&self) -> Option<InProgress> {
        let gd = self.repo.git_dir();
        if gd.join("rebase-merge").exists() || gd.join("rebase-apply").exists() {
            Some(InProgress::Rebase)
        } else if gd.join("MERGE_HEAD").exists() {
            Some(InProgress::Merge)
        } else if gd.join("CHERRY_PICK_HEAD").exists() {
            Some(InProgress::CherryPick)
        } else if gd.join("REVERT_HEAD").exists() {
            Some(InProgress::Revert)
        } else {
            None
        }
    }

    /// `refs/remotes/origin/<branch>`'s commit, if fetched.
    fn remote_tip(&self, branch: &str) -> Result<Option<ObjectId>, GitError> {
        self.ref_tip(&format!("refs/remotes/origin/{branch}"))
    }

    fn branch_tip(&self, branch: &str) -> Result<Option<ObjectId>, GitError> {
        self.ref_tip(&format!("refs/heads/{branch}"))
    }

    /// The commit ref `name` points at, if it exists.
    fn ref_tip(&self, name: &str) -> Result<Option<ObjectId>, GitError> {
        match self
            .repo
            .try_find_reference(name)
            .map_err(op(format!("read {name}")))?
        {
            Some(mut r) => Ok(Some(
                r.peel_to_id()
                    .map_err(op(format!("resolve {name}")))?
                    .detach(),
            )),
            None => Ok(None),
        }
    }

    fn head_tip(&self) -> Result<Option<ObjectId>, GitError> {
        match self.head()? {
            HeadState::Branch { tip, .. } => Ok(tip),
            HeadState::Detached(id) => Ok(Some(id)),
        }
    }

    /// The tip commit of `target`.
    pub fn tip(&self, target: &Target) -> Result<Option<ObjectId>, GitError> {
        match target {
            Target::Head => self.head_tip(),
            Target::Branch(b) => self.branch_tip(b),
        }
    }

    /// The bytes of `path` at commit `rev`, or `None` when it is not there.
    pub fn read_file_at(&self, rev: ObjectId, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let tree = self.tree_of(rev)?;
        match tree
            .lookup_entry_by_path(path)
            .map_err(op(format!("look up {path}")))?
        {
            Some(e) if e.mode().is_blob() => {
                let obj = e.object().map_err(op(format!("read {path}")))?;
                Ok(Some(obj.data.clone()))
            }
            _ => Ok(None),
        }
    }

    /// Every blob under directory `dir` at commit `rev`: (path, bytes).
    pub fn read_dir_at(
        &self,
        rev: ObjectId,
        dir: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let tree = self.tree_of(rev)?;
        let Some(entry) = tree
            .lookup_entry_by_path(dir)
            .map_err(op(format!("look up {dir}")))?
        else {
            return Ok(Vec::new());
        };
        if !entry.mode().is_tree() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut stack = vec![(dir.to_owned(), entry.object_id())];
        while let Some((prefix, id)) = stack.pop() {
            let t = self
                .repo
                .find_tree(id)
                .map_err(op(format!("read tree {prefix}")))?;
            for e in t.iter() {
                let e = e.map_err(|err| GitError::Op {
                    action: format!("read tree {prefix}"),
                    reason: err.to_string(),
                })?;
                let path = format!("{prefix}/{}", e.filename());
                if e.mode().is_tree() {
                    stack.push((path, e.object_id()));
                } else if e.mode().is_blob() {
                    let blob = self
                        .repo
                        .find_blob(e.object_id())
                        .map_err(op(format!("read {path}")))?;
                    out.push((path, blob.data.clone()));
                }
            }
        }
        Ok(out)
    }

    fn tree_of(&self, commit: ObjectId) -> Result<gix::Tree<'_>, GitError> {
        self.repo
            .find_commit(commit)
            .map_err(op("find commit"))?
            .tree()
            .map_err(op("read commit tree"))
    }

    fn signature(&self) -> gix::actor::Signature {
        // Identity as git resolves it (environment, then config); the time in
        // UTC. `Repository::committer()` would also work out the local time
        // offset, which scans the zoneinfo database (~3 ms per process).
        let cfg = self.repo.config_snapshot();
        let pick = |env: &str, key: &str, fallback: &str| -> gix::bstr::BString {
            std::env::var(env)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Into::into)
                .or_else(|| cfg.string(key))
                .unwrap_or_else(|| fallback.into())
        };
        gix::actor::Signature {
            name: pick("GIT_COMMITTER_NAME", "user.name", "agentops"),
            email: pick("GIT_COMMITTER_EMAIL", "user.email", "agentops@localhost"),
            time: gix::date::Time::new(agentops_core::time::now_micros() / 1_000_000, 0),
        }
    }

    /// Commits `changes` on top of `target`'s tip: each path's blob is written
    /// and edited into the tip's tree, so nothing else in the commit differs
    /// from its parent. The ref moves by compare-and-swap; when another writer
    /// moved it first, the commit is rebuilt on the new tip and tried again.
    ///
    /// With [`Target::Head`], the index entries of exactly these paths are
    /// updated (under git's `index.lock`), so they show clean in `git status`
    /// while every other staged change stays as it was. A path whose index
    /// entry differs from HEAD (the user staged a change to it) is refused.
    ///
    /// A change marked `create` fails with [`GitError::PathTaken`] when its
    /// path already exists at the tip (another writer took the name).
    pub fn commit(
        &self,
        target: &Target,
        changes: &[Change],
        message: &str,
    ) -> Result<ObjectId, GitError> {
        // What a killed agentops commit left (locks, an index behind HEAD)
        // is put right on the way: one directory read when there is nothing.
        let orphans = RefCell::new(Vec::new());
        let recovered = RefCell::new(Vec::new());
        self.claim_orphans(&orphans, &recovered);
        // Recorded before any lock is taken, so that a lock this process
        // leaves when killed is known to be its own (see crate::locks).
        let record = crate::locks::Record {
            ref_locks: self.ref_locks(target),
            paths: changes.iter().map(|c| c.path.clone()).collect(),
            ..crate::locks::Record::default()
        };
        let (lock, _held) = match target {
            Target::Head => (
                Some(self.lock_index_recovering(&orphans, &recovered, record)?),
                None,
            ),
            Target::Branch(_) => {
                if !orphans.borrow().is_empty() {
                    // No index lock of our own to repair under: a pass of its own.
                    for o in orphans.take() {
                        crate::locks::unclaim(&o);
                    }
                    self.recover()?;
                }
                (None, Some(crate::locks::hold(&self.locks_dir(), record)))
            }
        };
        // Read once, under the lock: nobody else can change it until we rename.
        let mut index = match &lock {
            Some(_) => Some(self.load_index()?),
            None => None,
        };
        let mut pause = Duration::from_millis(1);
        let mut last_err = None;
        let ref_wait = Instant::now();
        for _ in 0..COMMIT_ATTEMPTS {
            match self.try_commit(target, changes, message, index.as_ref()) {
                Ok(id) => {
                    if let (Some(lock), Some(index)) = (&lock, index.as_mut()) {
                        let repairs = self.repairs(index, &orphans.borrow(), changes)?;
                        let mut all = changes.to_vec();
                        all.extend(repairs.iter().cloned());
                        self.update_index(lock, index, &all)?;
                        note_repairs(&repairs, &recovered);
                        for o in orphans.borrow().iter() {
                            crate::locks::release(o);
                        }
                    }
                    return Ok(id);
                }
                Err(e @ (GitError::StagedChanges { .. } | GitError::PathTaken { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    // A ref lock we did not take: wait a little (a live git
                    // holds it for milliseconds), recovering a killed agentops
                    // writer's, then say which file it is.
                    if let Some(lock) = self.ref_locks(target).into_iter().find(|l| l.exists()) {
                        self.claim_orphans(&orphans, &recovered);
                        if lock.exists() && ref_wait.elapsed() > REF_LOCK_WAIT {
                            return Err(GitError::RefLocked { path: lock });
                        }
                    }
                    last_err = Some(e);
                    std::thread::sleep(
                        pause
                            + Duration::from_micros(u64::from(
                                Instant::now().elapsed().subsec_nanos() % 1000,
                            )),
                    );
                    pause = (pause * 2).min(Duration::from_millis(40));
                }
            }
        }
        Err(last_err.unwrap_or(GitError::Op {
            action: "commit".into(),
            reason: "gave up".into(),
        }))
    }

    fn lock_index(
        &self,
        on_busy: &dyn Fn(),
        record: crate::locks::Record,
    ) -> Result<IndexLock, GitError> {
        let cfg = self.repo.config_snapshot();
        let skip = cfg
            .boolean("index.skipHash")
            .or_else(|| cfg.boolean("feature.manyFiles"))
            .unwrap_or(false);
        let fsync = cfg
            .string("core.fsync")
            .is_some_and(|v| fsync_names_index(&v.to_str_lossy()));
        let dir = self.locks_dir();
        IndexLock::acquire(
            &self.repo.index_path(),
            skip,
            fsync,
            on_busy,
            |ino, scratch| {
                let mut r = record;
                let lock = lock_path_of(&self.repo.index_path());
                r.index_lock = Some((lock, ino));
                r.scratch = vec![scratch.to_path_buf()];
                crate::locks::hold(&dir, r)
            },
        )
    }

    /// Where lock ownership records live: `<git-common-dir>/agentops/locks`.
    fn locks_dir(&self) -> PathBuf {
        self.repo.common_dir().join("agentops").join("locks")
    }

    /// The ref lock files git may create while committing to `target`.
    fn ref_locks(&self, target: &Target) -> Vec<PathBuf> {
        let common = self.repo.common_dir();
        match target {
            Target::Branch(b) => vec![common.join(format!("refs/heads/{b}.lock"))],
            Target::Head => {
                let mut v = vec![self.repo.git_dir().join("HEAD.lock")];
                if let Ok(HeadState::Branch { name, .. }) = self.head() {
                    v.push(common.join(format!("refs/heads/{name}.lock")));
                }
                v
            }
        }
    }

    /// Claims the records of killed agentops committers and removes the
    /// lock files they left (only the very files they took; see
    /// [`crate::locks`]). Their paths are repaired later, under the index lock.
    fn claim_orphans(
        &self,
        orphans: &RefCell<Vec<crate::locks::Orphan>>,
        done: &RefCell<Vec<String>>,
    ) {
        for o in crate::locks::orphans(&self.locks_dir()) {
            for f in crate::locks::remove_stale_locks(&o) {
                done.borrow_mut().push(format!(
                    "removed {} left by agentops process {} (killed)",
                    f.display(),
                    o.record.pid
                ));
            }
            orphans.borrow_mut().push(o);
        }
    }

    /// `index.lock`, recovering locks of killed agentops processes while it
    /// waits (a writer killed while others wait would otherwise stall them).
    fn lock_index_recovering(
        &self,
        orphans: &RefCell<Vec<crate::locks::Orphan>>,
        done: &RefCell<Vec<String>>,
        record: crate::locks::Record,
    ) -> Result<IndexLock, GitError> {
        self.lock_index(&|| self.claim_orphans(orphans, done), record)
    }

    /// Index entries to restore for the paths of killed commits: where HEAD
    /// has the path, the index does not agree, and the work tree holds
    /// exactly what HEAD holds (a kill after the branch moved and before the
    /// index was written leaves a staged deletion, which the user's next
    /// `git commit` would make).
    fn repairs(
        &self,
        index: &gix::index::File,
        orphans: &[crate::locks::Orphan],
        skip: &[Change],
    ) -> Result<Vec<Change>, GitError> {
        let (Some(tip), Some(work_tree)) = (self.head_tip()?, self.repo.workdir()) else {
            return Ok(Vec::new());
        };
        let tree = self.tree_of(tip)?;
        let mut out: Vec<Change> = Vec::new();
        for p in orphans.iter().flat_map(|o| o.record.paths.iter()) {
            if out.iter().chain(skip).any(|c| &c.path == p) {
                continue;
            }
            let Some(head_id) = tree
                .lookup_entry_by_path(p.as_str())
                .map_err(op(format!("look up {p}")))?
                .map(|e| e.object_id())
            else {
                continue;
            };
            if index
                .entry_by_path(p.as_bytes().as_bstr())
                .is_some_and(|e| e.id == head_id)
            {
                continue;
            }
            let Ok(bytes) = std::fs::read(absolute(work_tree, p)) else {
                continue;
            };
            let on_disk =
                gix::objs::compute_hash(self.repo.object_hash(), gix::object::Kind::Blob, &bytes)
                    .ok();
            if on_disk == Some(head_id) {
                out.push(Change {
                    path: p.clone(),
                    content: Some(bytes),
                    create: false,
                });
            }
        }
        Ok(out)
    }

    /// Puts right what agentops processes killed mid-commit left: stale lock
    /// files and index entries behind HEAD (see [`Self::commit`], which does
    /// the same before every commit). Returns what it did, a line each.
    pub fn recover(&self) -> Result<Vec<String>, GitError> {
        let orphans = RefCell::new(Vec::new());
        let done = RefCell::new(Vec::new());
        self.claim_orphans(&orphans, &done);
        if orphans.borrow().iter().any(|o| !o.record.paths.is_empty())
            && self.repo.workdir().is_some()
        {
            let lock =
                self.lock_index_recovering(&orphans, &done, crate::locks::Record::default())?;
            let mut index = self.load_index()?;
            let repairs = self.repairs(&index, &orphans.borrow(), &[])?;
            if !repairs.is_empty() {
                self.update_index(&lock, &mut index, &repairs)?;
                note_repairs(&repairs, &done);
            }
        }
        for o in orphans.borrow().iter() {
            crate::locks::release(o);
        }
        Ok(done.into_inner())
    }

    fn try_commit(
        &self,
        target: &Target,
        changes: &[Change],
        message: &str,
        index: Option<&gix::index::File>,
    ) -> Result<ObjectId, GitError> {
        // A branch that does not exist yet starts from the remote's copy
        // (`origin/<branch>`, what `agentops sync` shares), else from HEAD,
        // so it can be merged back like any other branch.
        let tip = match (target, self.tip(target)?) {
            (Target::Branch(b), None) => match self.remote_tip(b)? {
                Some(t) => Some(t),
                None => self.head_tip()?,
            },
            (_, tip) => tip,
        };
        let base_tree = match tip {
            Some(c) => self.tree_of(c)?.id,
            None => ObjectId::empty_tree(self.repo.object_hash()),
        };
        if let Some(index) = index {
            self.refuse_staged(index, changes, tip)?;
        }
        if let Some(t) = tip {
            let tree = self.tree_of(t)?;
            for c in changes.iter().filter(|c| c.create) {
                if tree
                    .lookup_entry_by_path(c.path.as_str())
                    .map_err(op(format!("look up {}", c.path)))?
                    .is_some()
                {
                    return Err(GitError::PathTaken {
                        path: c.path.clone(),
                    });
                }
            }
        }
        // The plumbing editor: gix's validating editor checks that every entry
        // of each rewritten tree exists, one object lookup per entry (40 ms on
        // a 2,000-entry directory). We add only blobs we just wrote, at paths
        // whose components we validated.
        for c in changes {
            validate_path(&c.path)?;
        }
        let mut editor = self
            .repo
            .edit_tree(base_tree)
            .map_err(op("edit tree"))?
            .detach();
        for c in changes {
            let components = c.path.split('/');
            match &c.content {
                Some(bytes) => {
                    let blob = self
                        .repo
                        .write_blob(bytes)
                        .map_err(op(format!("write blob for {}", c.path)))?;
                    editor
                        .upsert(components, EntryKind::Blob, blob.detach())
                        .map_err(|e| GitError::Op {
                            action: format!("edit tree at {}", c.path),
                            reason: e.to_string(),
                        })?;
                }
                None => {
                    editor.remove(components).map_err(|e| GitError::Op {
                        action: format!("remove {} from tree", c.path),
                        reason: e.to_string(),
                    })?;
                }
            }
        }
        let tree = editor
            .write(|t| self.repo.write_object(t).map(gix::Id::detach))
            .map_err(op("write tree"))?;
        if Some(tree) == tip.map(|t| self.tree_of(t).map(|t| t.id)).transpose()? {
            // Nothing changed: the content is already committed.
            return tip.ok_or_else(|| GitError::Op {
                action: "commit".into(),
                reason: "empty change on an unborn branch".into(),
            });
        }
        let sig = self.signature();
        let mut buf = gix::date::parse::TimeBuf::default();
        let sig_ref = sig.to_ref(&mut buf);
        let refname = match target {
            Target::Head => "HEAD".to_owned(),
            Target::Branch(b) => format!("refs/heads/{b}"),
        };
        let id = self
            .repo
            .commit_as(sig_ref, sig_ref, refname.as_str(), message, tree, tip)
            .map_err(op(format!("commit to {refname}")))?;
        Ok(id.detach())
    }

    fn refuse_staged(
        &self,
        index: &gix::index::File,
        changes: &[Change],
        tip: Option<ObjectId>,
    ) -> Result<(), GitError> {
        for c in changes {
            let Some(entry) = index.entry_by_path(c.path.as_bytes().as_bstr()) else {
                continue;
            };
            let head_id = match tip {
                Some(t) => {
                    let tree = self.tree_of(t)?;
                    tree.lookup_entry_by_path(c.path.as_str())
                        .map_err(op(format!("look up {}", c.path)))?
                        .map(|e| e.object_id())
                }
                None => None,
            };
            if head_id != Some(entry.id) {
                return Err(GitError::StagedChanges {
                    path: c.path.clone(),
                });
            }
        }
        Ok(())
    }

    fn load_index(&self) -> Result<gix::index::File, GitError> {
        let hash = self.repo.object_hash();
        let index_path = self.repo.index_path();
        if index_path.exists() {
            read_index(&index_path, hash)
        } else {
            Ok(gix::index::File::from_state(
                gix::index::State::new(hash),
                index_path,
            ))
        }
    }

    fn update_index(
        &self,
        lock: &IndexLock,
        index: &mut gix::index::File,
        changes: &[Change],
    ) -> Result<(), GitError> {
        let hash = self.repo.object_hash();
        let work_tree = self
            .repo
            .workdir()
            .map(Path::to_path_buf)
            .ok_or_else(|| GitError::Op {
                action: "update index".into(),
                reason: "the repository has no work tree".into(),
            })?;
        let paths: Vec<&BStr> = changes
            .iter()
            .map(|c| c.path.as_bytes().as_bstr())
            .collect();
        index.remove_entries(|_, p, _| paths.contains(&p));
        for c in changes {
            let Some(bytes) = &c.content else { continue };
            let file = absolute(&work_tree, &c.path);
            // The index records the file as it is in the work tree, so the
            // entry is only clean when the work tree holds what we committed.
            let on_disk = std::fs::read(&file).ok();
            if on_disk.as_deref() != Some(bytes.as_slice()) {
                continue;
            }
            let meta =
                gix::index::fs::Metadata::from_path_no_follow(&file).map_err(|e| GitError::Op {
                    action: format!("stat {}", c.path),
                    reason: e.to_string(),
                })?;
            let stat = gix::index::entry::Stat::from_fs(&meta).map_err(|e| GitError::Op {
                action: format!("stat {}", c.path),
                reason: e.to_string(),
            })?;
            let id =
                gix::objs::compute_hash(hash, gix::object::Kind::Blob, bytes).map_err(|e| {
                    GitError::Op {
                        action: format!("hash {}", c.path),
                        reason: e.to_string(),
                    }
                })?;
            index.dangerously_push_entry(
                stat,
                id,
                gix::index::entry::Flags::empty(),
                gix::index::entry::Mode::FILE,
                c.path.as_bytes().as_bstr(),
            );
        }
        index.sort_entries();
        // The tree-cache would describe the old entries; git rebuilds it.
        index.remove_tree();
        lock.commit(index)
    }

    /// Commits on `target` that changed `path` (a file or a directory), newest
    /// first, at most `limit`.
    pub fn history(
        &self,
        target: &Target,
        path: &str,
        limit: usize,
    ) -> Result<Vec<CommitInfo>, GitError> {
        let Some(tip) = self.tip(target)? else {
            return Ok(Vec::new());
        };
        let walk = self
            .repo
            .rev_walk([tip])
            .first_parent_only()
            .all()
            .map_err(|e| GitError::Op {
                action: "walk history".into(),
                reason: e.to_string(),
            })?;
        let mut out = Vec::new();
        for info in walk {
            let info = info.map_err(|e| GitError::Op {
                action: "walk history".into(),
                reason: e.to_string(),
            })?;
            let commit = self.repo.find_commit(info.id).map_err(op("read commit"))?;
            let here = self.path_id(&commit, path)?;
            let parent = match commit.parent_ids().next() {
                Some(p) => {
                    let pc = self
                        .repo
                        .find_commit(p.detach())
                        .map_err(op("read parent"))?;
                    self.path_id(&pc, path)?
                }
                None => None,
            };
            if here == parent {
                continue;
            }
            let message = commit.message_raw_sloppy().to_str_lossy().into_owned();
            let author = commit.author().map_err(op("read author"))?;
            let time = author.time().map(|t| t.seconds).unwrap_or(0);
            out.push(CommitInfo {
                id: info.id.to_string(),
                time,
                author: format!("{} <{}>", author.name, author.email),
                summary: message.lines().next().unwrap_or("").to_owned(),
                trailers: trailers(&message),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The last `commits` commits of HEAD's history (merges left out) that
    /// changed something outside `.agents/`, newest first, each as its subject
    /// and the paths it changed there (at most `max_paths` per commit) —
    /// what `git log -n<commits> --no-merges --name-only -- . ':(exclude).agents'`
    /// says, in-process and bounded: at most `examine` commits are looked at,
    /// so a history of thousands of memory commits costs no more than a
    /// short one. Nothing (no error) where there is no history.
    pub fn recent_commits(
        &self,
        commits: usize,
        examine: usize,
        max_paths: usize,
    ) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let Ok(head) = self.repo.head_id() else {
            return out;
        };
        let Ok(walk) = self.repo.rev_walk([head.detach()]).all() else {
            return out;
        };
        for info in walk.take(examine) {
            let Ok(info) = info else { break };
            let Ok(commit) = self.repo.find_commit(info.id) else {
                break;
            };
            let mut parents = commit.parent_ids();
            let first = parents.next();
            if parents.next().is_some() {
                continue;
            }
            let Ok(tree) = commit.tree_id() else { continue };
            let before = match first {
                Some(p) => match self.repo.find_commit(p.detach()).and_then(|c| c.tree_id()) {
                    Ok(t) => Some(t.detach()),
                    Err(_) => continue,
                },
                None => None,
            };
            let mut paths = Vec::new();
            self.changed_paths(before, Some(tree.detach()), "", max_paths, &mut paths);
            if paths.is_empty() {
                continue;
            }
            let subject = commit
                .message_raw_sloppy()
                .lines()
                .next()
                .map(|l| l.to_str_lossy().trim().to_owned())
                .unwrap_or_default();
            out.push((subject, paths));
            if out.len() >= commits {
                break;
            }
        }
        out
    }

    /// The paths (files, submodules) that differ between trees `a` and `b`
    /// (either absent: everything in the other), under `prefix`, `.agents/`
    /// at the root left out; at most `max` in `out`.
    fn changed_paths(
        &self,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
        prefix: &str,
        max: usize,
        out: &mut Vec<String>,
    ) {
        if a == b || out.len() >= max {
            return;
        }
        let read = |id: Option<ObjectId>| -> Vec<(String, ObjectId, bool)> {
            let Some(id) = id else { return Vec::new() };
            let Ok(tree) = self.repo.find_tree(id) else {
                return Vec::new();
            };
            let Ok(decoded) = tree.decode() else {
                return Vec::new();
            };
            decoded
                .entries
                .iter()
                .map(|e| {
                    (
                        e.filename.to_str_lossy().into_owned(),
                        e.oid.to_owned(),
                        e.mode.is_tree(),
                    )
                })
                .filter(|(name, _, _)| !(prefix.is_empty() && name == ".agents"))
                .collect()
        };
        let (old, new) = (read(a), read(b));
        let olds: std::collections::HashMap<&str, (ObjectId, bool)> = old
            .iter()
            .map(|(n, id, t)| (n.as_str(), (*id, *t)))
            .collect();
        let news: std::collections::HashSet<&str> =
            new.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut visit =
            |name: &str, was: Option<(ObjectId, bool)>, is: Option<(ObjectId, bool)>| {
                if out.len() >= max
                    || was.map(|w| w.0) == is.map(|i| i.0) && was.map(|w| w.1) == is.map(|i| i.1)
                {
                    return;
                }
                let path = format!("{prefix}{name}");
                let tree_of = |x: Option<(ObjectId, bool)>| x.filter(|(_, t)| *t).map(|(id, _)| id);
                let (ta, tb) = (tree_of(was), tree_of(is));
                if ta.is_some() || tb.is_some() {
                    self.changed_paths(ta, tb, &format!("{path}/"), max, out);
                }
                // A file on either side (also where a file became a folder).
                if (was.is_some_and(|w| !w.1) || is.is_some_and(|i| !i.1)) && out.len() < max {
                    out.push(path);
                }
            };
        for (name, id, t) in &new {
            visit(name, olds.get(name.as_str()).copied(), Some((*id, *t)));
        }
        for (name, id, t) in &old {
            if !news.contains(name.as_str()) {
                visit(name, Some((*id, *t)), None);
            }
        }
    }

    fn path_id(&self, commit: &gix::Commit<'_>, path: &str) -> Result<Option<ObjectId>, GitError> {
        let tree = commit.tree().map_err(op("read tree"))?;
        Ok(tree
            .lookup_entry_by_path(path)
            .map_err(op(format!("look up {path}")))?
            .map(|e| e.object_id()))
    }
}

/// Refuses paths that git would refuse or that could leave the work tree:
/// empty, `.`/`..` components, `.git`, backslashes, NUL.
/// `<index>.lock`.
fn lock_path_of(index_path: &Path) -> PathBuf {
    let mut name = index_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn note_repairs(repairs: &[Change], done: &RefCell<Vec<String>>) {
    for r in repairs {
        done.borrow_mut().push(format!(
            "{}: index entry restored to match HEAD (a killed commit had left it staged as deleted)",
            r.path
        ));
    }
}

fn validate_path(path: &str) -> Result<(), GitError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"))
        || path.contains(['\\', '\0']);
    if bad {
        return Err(GitError::Op {
            action: format!("write {path}"),
            reason: "not a safe repository path".into(),
        });
    }
    Ok(())
}

/// Whether a `core.fsync` value makes git flush the index: `index`, or the
/// aggregates `added` and `all` (a `-` prefix removes; `none` clears).
fn fsync_names_index(value: &str) -> bool {
    let mut on = false;
    for word in value.split(',').map(str::trim) {
        match word {
            "none" => on = false,
            "index" | "added" | "all" => on = true,
            "-index" | "-added" | "-all" => on = false,
            _ => {}
        }
    }
    on
}

/// `Agentops-*` trailers in a commit message.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    message
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.starts_with("Agentops-")
                .then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn read_index(path: &Path, hash: gix::hash::Kind) -> Result<gix::index::File, GitError> {
    // The trailing checksum is not verified on read (a megabyte of SHA-1 for a
    // 10,000-entry index); the entries are still fully decoded and checked,
    // and the index we write carries a fresh checksum.
    gix::index::File::at(path, hash, true, gix::index::decode::Options::default()).map_err(|e| {
        GitError::Op {
            action: format!("read {}", path.display()),
            reason: e.to_string(),
        }
    })
}

/// git's `index.lock`: created exclusively, written, renamed over the index.
/// Dropping it without [`IndexLock::commit`] removes the lock file.
struct IndexLock {
    lock_path: PathBuf,
    index_path: PathBuf,
    file: std::sync::Mutex<Option<std::fs::File>>,
    /// `index.skipHash`: write a null trailing checksum, as git does then.
    skip_hash: bool,
    /// Whether `core.fsync` asks for the index to be flushed (git's default
    /// does not: the index can be rebuilt from HEAD and the work tree).
    fsync: bool,
    /// The ownership record; dropped after the lock file is gone.
    held: Option<crate::locks::Held>,
}

impl IndexLock {
    /// Takes `index.lock` the way git does (it must not exist), but through
    /// a hard link from a scratch file of ours, so that `record` — written
    /// with the scratch file's inode before the lock exists — names the lock
    /// at every instant this process could be killed.
    fn acquire(
        index_path: &Path,
        skip_hash: bool,
        fsync: bool,
        on_busy: &dyn Fn(),
        record: impl FnOnce(u64, &Path) -> crate::locks::Held,
    ) -> Result<Self, GitError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let lock_path = lock_path_of(index_path);
        let scratch = index_path.with_file_name(format!(
            "index.lock.agentops-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let io = |what: &Path, e: std::io::Error| GitError::Op {
            action: format!("create {}", what.display()),
            reason: e.to_string(),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&scratch)
            .map_err(|e| io(&scratch, e))?;
        let Some(ino) = crate::locks::inode(&scratch) else {
            let _ = std::fs::remove_file(&scratch);
            return Err(GitError::Op {
                action: format!("stat {}", scratch.display()),
                reason: "no inode".into(),
            });
        };
        let held = record(ino, &scratch);
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut next_check = Duration::ZERO;
        let taken = loop {
            match std::fs::hard_link(&scratch, &lock_path) {
                Ok(()) => break Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // The holder may be a killed agentops process: recover
                    // its lock now rather than wait it out.
                    if start.elapsed() >= next_check {
                        on_busy();
                        next_check = start.elapsed() + Duration::from_millis(50);
                        continue;
                    }
                    if start.elapsed() > INDEX_LOCK_WAIT {
                        break Err(GitError::IndexLocked {
                            path: lock_path.clone(),
                            waited_ms: u64::try_from(start.elapsed().as_millis())
                                .unwrap_or(u64::MAX),
                        });
                    }
                    std::thread::sleep(
                        pause
                            + Duration::from_micros(u64::from(
                                Instant::now().elapsed().subsec_nanos() % 1000,
                            )),
                    );
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                // A file system without hard links: git's own exclusive create.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    let _ = std::fs::remove_file(&scratch);
                    drop(file);
                    return Self::acquire_plain(index_path, skip_hash, fsync, start).map(
                        |mut l| {
                            l.held = Some(held);
                            l
                        },
                    );
                }
                Err(e) => break Err(io(&lock_path, e)),
            }
        };
        let _ = std::fs::remove_file(&scratch);
        taken?;
        Ok(Self {
            lock_path,
            index_path: index_path.to_path_buf(),
            file: std::sync::Mutex::new(Some(file)),
            skip_hash,
            fsync,
            held: Some(held),
        })
    }

    /// `index.lock` by exclusive create, for file systems without hard links.
    fn acquire_plain(
        index_path: &Path,
        skip_hash: bool,
        fsync: bool,
        start: Instant,
    ) -> Result<Self, GitError> {
        let lock_path = lock_path_of(index_path);
        let mut pause = Duration::from_millis(1);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
            {
                Ok(f) => {
                    return Ok(Self {
                        lock_path,
                        index_path: index_path.to_path_buf(),
                        file: std::sync::Mutex::new(Some(f)),
                        skip_hash,
                        fsync,
                        held: None,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() > INDEX_LOCK_WAIT {
                        return Err(GitError::IndexLocked {
                            path: lock_path,
                            waited_ms: u64::try_from(start.elapsed().as_millis())
                                .unwrap_or(u64::MAX),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(GitError::Op {
                        action: format!("create {}", lock_path.display()),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    fn commit(&self, index: &gix::index::File) -> Result<(), GitError> {
        let io = |e: std::io::Error| GitError::Op {
            action: format!("write {}", self.index_path.display()),
            reason: e.to_string(),
        };
        let mut guard = self.file.lock().map_err(|_| GitError::Op {
            action: "write index".into(),
            reason: "lock poisoned".into(),
        })?;
        let Some(file) = guard.take() else {
            return Err(GitError::Op {
                action: "write index".into(),
                reason: "index lock already used".into(),
            });
        };
        // Serialize without hashing, then hash the whole buffer in one pass:
        // hashing through the writer costs a hasher update per field, which
        // was the largest single cost of a memory write at 10,000 entries.
        let size_hint = std::fs::metadata(&self.index_path).map_or(0, |m| m.len() as usize);
        let mut buf = Vec::with_capacity(size_hint.max(index.entries().len() * 128) + 4096);
        let skip_hash = self.skip_hash;
        index
            .write_to(
                &mut buf,
                gix::index::write::Options {
                    skip_hash: true,
                    ..Default::default()
                },
            )
            .map_err(|e| GitError::Op {
                action: format!("write {}", self.index_path.display()),
                reason: e.to_string(),
            })?;
        let hash_len = index.object_hash().len_in_bytes();
        if !skip_hash && buf.len() >= hash_len {
            let body = buf.len() - hash_len;
            let digest = match index.object_hash() {
                // The index checksum guards against torn writes, not attacks:
                // plain SHA-1 (SHA-NI where the CPU has it) is several times
                // faster than gix's collision-detecting SHA-1 on a megabyte.
                gix::hash::Kind::Sha1 => {
                    use sha1::Digest;
                    sha1::Sha1::digest(&buf[..body]).to_vec()
                }
                other => {
                    let mut h = gix::hash::hasher(other);
                    h.update(&buf[..body]);
                    h.try_finalize()
                        .map_err(|e| GitError::Op {
                            action: "hash index".into(),
                            reason: e.to_string(),
                        })?
                        .as_slice()
                        .to_vec()
                }
            };
            buf[body..].copy_from_slice(&digest);
        }
        let mut file = file;
        file.write_all(&buf).map_err(io)?;
        if self.fsync {
            file.sync_all().map_err(io)?;
        }
        drop(file);
        std::fs::rename(&self.lock_path, &self.index_path).map_err(io)
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        // After a successful commit the lock file was renamed away; otherwise
        // release it so git can take the index again.
        let unused = self.file.lock().map(|g| g.is_some()).unwrap_or(true);
        if unused {
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

/// Joins a repository-relative path (`/`-separated) onto the work tree.
pub fn absolute(work_tree: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .fold(work_tree.to_path_buf(), |p, c| p.join(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `recent_commits` says what `git log --no-merges --name-only` outside
    /// `.agents/` says: memory-only commits and merges left out, nested,
    /// deleted and renamed paths, a file that became a folder, the root commit.
    #[test]
    fn recent_commits_agree_with_git_log() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let git = |args: &[&str]| {
            let o = std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        };
        let write = |p: &str, t: &str| {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        let commit = |message: &str| {
            git(&["add", "-A"]);
            git(&["commit", "-qm", message]);
        };
        git(&["init", "-q"]);
        assert!(
            Repo::open(dir)
                .unwrap()
                .recent_commits(8, 200, 100)
                .is_empty()
        );
        write("README.md", "r");
        write("src/a/b.rs", "1");
        commit("Start");
        write(".agents/learnings/x.md", "x");
        commit("agentops: learn x");
        write("src/a/b.rs", "2");
        write(".agents/learnings/y.md", "y");
        commit("Change b and learn y");
        git(&["checkout", "-qb", "side"]);
        write("side.txt", "s");
        commit("Side work");
        git(&["checkout", "-q", "main"]);
        git(&["rm", "-q", "README.md"]);
        write("notes", "a file");
        commit("Drop the readme");
        git(&["rm", "-q", "notes"]);
        write("notes/today.md", "now a folder");
        commit("Notes become a folder");
        git(&["merge", "-q", "--no-ff", "-m", "Merge side", "side"]);
        let repo = Repo::open(dir).unwrap();
        let ours = repo.recent_commits(8, 200, 100);
        let log = git(&[
            "-c",
            "diff.renames=false",
            "log",
            "-n8",
            "--no-merges",
            "--format=%x1e%s",
            "--name-only",
            "--",
            ".",
            ":(exclude).agents",
        ]);
        let mut theirs: Vec<(String, Vec<String>)> = Vec::new();
        for block in log.split('\u{1e}').filter(|b| !b.trim().is_empty()) {
            let mut lines = block.lines();
            let subject = lines.next().unwrap().to_owned();
            let mut paths: Vec<String> =
                lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
            paths.sort();
            theirs.push((subject, paths));
        }
        let mut ours_sorted: Vec<(String, Vec<String>)> = ours
            .into_iter()
            .map(|(s, mut p)| {
                p.sort();
                (s, p)
            })
            .collect();
        // The walk's order among commits of two branches may differ from
        // git's date order; the set of commits and their paths may not.
        ours_sorted.sort();
        theirs.sort();
        assert_eq!(ours_sorted, theirs);
        assert!(
            ours_sorted
                .iter()
                .all(|(s, _)| s != "Merge side" && s != "agentops: learn x")
        );
        // Bounded: the newest one, and no more than `examine` looked at.
        assert_eq!(repo.recent_commits(1, 200, 100).len(), 1);
        assert!(repo.recent_commits(8, 2, 100).len() <= 2);
        // At most `max_paths` per commit.
        assert!(
            repo.recent_commits(8, 200, 1)
                .iter()
                .all(|(_, p)| p.len() == 1)
        );
    }

    #[test]
    fn core_fsync_values() {
        assert!(!fsync_names_index(""));
        assert!(!fsync_names_index("committed"));
        assert!(fsync_names_index("committed,index"));
        assert!(fsync_names_index("added"));
        assert!(fsync_names_index("all"));
        assert!(!fsync_names_index("all,-index"));
        assert!(!fsync_names_index("index,none"));
    }

    #[test]
    fn trailers_are_parsed() {
        assert_eq!(
            trailers("subject\n\nbody\n\nAgentops-Run: r1\nSigned-off-by: x\nAgentops-Agent: a\n"),
            vec![
                ("Agentops-Run".to_owned(), "r1".to_owned()),
                ("Agentops-Agent".to_owned(), "a".to_owned())
            ]
        );
    }
}
