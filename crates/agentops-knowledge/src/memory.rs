//! The knowledge base of one repository: write entries as commits, list,
//! find, change maturity, and read their history.

use std::path::{Path, PathBuf};

use agentops_core::config::{Config, MemoryCommit};
use agentops_core::redact::Redactor;
use agentops_core::{EntryId, EventKind};
use agentops_protocol::event::KnowledgeWrite;
use agentops_store::{Durability, Journal, RepoLayout};
use serde::Serialize;

use crate::entry::{self, Entry, EntryError, EntryType, KNOWLEDGE_DIRS, Maturity, Provenance};
use crate::git::{Change, CommitInfo, GitError, HeadState, Repo, Target};

/// Why a knowledge operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("no knowledge entry `{id}`{}", if suggestions.is_empty() { String::new() } else { format!("; did you mean: {}", suggestions.join(", ")) })]
    NotFound {
        id: String,
        suggestions: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] agentops_store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KnowledgeError + '_ {
    move |e| KnowledgeError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A new entry to write.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub kind: Option<EntryType>,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub supersedes: Vec<String>,
    pub source: Provenance,
}

/// What a memory write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    pub id: String,
    pub path: String,
    /// `create`, `promote`, `deprecate`.
    pub action: String,
    /// Whether anything changed (false when the entry already had that maturity).
    pub changed: bool,
    /// The commit, when one was made.
    pub commit: Option<String>,
    /// The branch committed to.
    pub branch: Option<String>,
    /// Why the write was not committed, when it was not.
    pub deferred: Option<String>,
    /// What went wrong after the write was done (e.g. the journal could not
    /// record it): the write stands, so a retry would duplicate it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Which entries to list. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<EntryType>,
    /// Every tag listed must be on the entry.
    pub tags: Vec<String>,
    pub maturity: Option<Maturity>,
    /// Only entries created at or after this time (µs).
    pub since: Option<i64>,
}

/// Entries and the files that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub entries: Vec<Entry>,
    /// One line per skipped file: `path:line: field: problem`.
    pub warnings: Vec<String>,
}

/// A commit in the history of an entry or of all knowledge.
pub type HistoryItem = CommitInfo;

enum Plan {
    /// Write the file and commit it on the current branch.
    Head { branch: String },
    /// Commit to another branch; the work tree is not touched.
    Branch(String),
    /// Write the file only, for this reason.
    FileOnly(String),
}

/// The knowledge base of one repository.
pub struct Knowledge {
    layout: RepoLayout,
    config: Config,
    redactor: Option<Redactor>,
}

impl Knowledge {
    /// Knowledge for `layout` with `config` (redaction extras, memory settings).
    pub fn new(layout: RepoLayout, config: Config) -> Result<Self, KnowledgeError> {
        let redactor = if config.redaction.extra_patterns.is_empty() {
            None
        } else {
            Some(
                Redactor::with_extra(&config.redaction.extra_patterns)
                    .map_err(|e| KnowledgeError::Invalid(e.to_string()))?,
            )
        };
        Ok(Self {
            layout,
            config,
            redactor,
        })
    }

    fn redactor(&self) -> &Redactor {
        self.redactor
            .as_ref()
            .unwrap_or_else(|| agentops_core::redact::builtin())
    }

    fn redact(&self, s: &str) -> String {
        self.redactor().redact(s).into_owned()
    }

    fn repo(&self) -> Result<Repo, KnowledgeError> {
        Ok(Repo::open(&self.layout.work_tree)?)
    }

    fn plan(&self, repo: &Repo) -> Result<Plan, KnowledgeError> {
        if self.config.memory.commit == MemoryCommit::Off {
            return Ok(Plan::FileOnly("memory.commit = \"off\"".into()));
        }
        let head = repo.head()?;
        if let Some(b) = &self.config.memory.branch {
            let on_it = matches!(&head, HeadState::Branch { name, .. } if name == b);
            if !on_it {
                return Ok(Plan::Branch(b.clone()));
            }
        }
        if let Some(p) = repo.in_progress() {
            return Ok(Plan::FileOnly(p.describe().into()));
        }
        match head {
            HeadState::Branch { name, .. } => Ok(Plan::Head { branch: name }),
            HeadState::Detached(_) => Ok(Plan::FileOnly("HEAD is detached".into())),
        }
    }

    fn abs(&self, rel: &str) -> PathBuf {
        entry::absolute(&self.layout.work_tree, rel)
    }

    /// Writes a new entry (redacted) and commits it. Returns where it went.
    pub fn learn(
        &self,
        new: NewEntry,
        journal: Option<&Journal>,
    ) -> Result<WriteOutcome, KnowledgeError> {
        let kind = new.kind.unwrap_or(EntryType::Learning);
        let title = self.redact(new.title.trim());
        if title.is_empty() {
            return Err(KnowledgeError::Invalid(
                "the title is empty: give the entry a title".into(),
            ));
        }
        let mut tags = Vec::new();
        for t in &new.tags {
            let t = t.trim().to_ascii_lowercase();
            entry::validate_tag(&t).map_err(KnowledgeError::Invalid)?;
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let mut supersedes = Vec::new();
        for s in &new.supersedes {
            let id = EntryId::parse(s.trim())
                .map_err(|e| KnowledgeError::Invalid(format!("--supersedes: {e}")))?;
            self.find(id.as_str())?;
            supersedes.push(id);
        }
        let source = Provenance {
            run: new.source.run.as_deref().map(|s| self.redact(s)),
            session: new.source.session.as_deref().map(|s| self.redact(s)),
            agent: new.source.agent.as_deref().map(|s| self.redact(s)),
        };
        let mut found = self.redactor().findings(&new.title);
        let (body, in_body) = self.redactor().redact_and_find(&new.body);
        let body = body.into_owned();
        found.extend(in_body);
        let created = agentops_core::time::now_micros();
        self.ensure_inside()?;
        let recovered = self.reconcile(journal);
        let repo = self.repo()?;
        let plan = self.plan(&repo)?;
        let mut n = 1;
        loop {
            let id = entry::make_id(kind, created, &title, n)
                .map_err(|e| KnowledgeError::Invalid(e.to_string()))?;
            let path = entry::entry_path(kind, &id, created);
            let e = Entry {
                id: id.clone(),
                kind,
                title: title.clone(),
                tags: tags.clone(),
                created: Some(created),
                source: source.clone(),
                maturity: Maturity::Provisional,
                supersedes: supersedes.clone(),
                body: body.clone(),
                path: path.clone(),
                has_front_matter: true,
            };
            let text = entry::render(&e).map_err(KnowledgeError::Invalid)?;
            let message = commit_message(&format!("learn {id}"), &title, &id, &source);
            // Recorded before anything is touched: if this process is killed,
            // the next memory write finishes or undoes what it left.
            let intent = self.intend(&path, id.as_str(), "create");
            let result = self.write_and_commit(&repo, &plan, &path, &text, None, true, &message);
            match result {
                Ok(mut outcome) => {
                    outcome.action = "create".into();
                    self.journal(journal, &mut outcome, &source);
                    drop(intent);
                    outcome.warnings.splice(0..0, recovered);
                    if text.len() as u64 > self.config.memory.warn_bytes {
                        outcome.warnings.push(format!(
                            "{path} is {} bytes, over memory.warn_bytes ({}): written, but search indexes only its first 64 KiB; consider a shorter entry that links to the rest",
                            text.len(),
                            self.config.memory.warn_bytes
                        ));
                    }
                    if !found.is_empty() {
                        let mut rules: Vec<&str> = found.iter().map(|f| f.rule.as_str()).collect();
                        rules.sort_unstable();
                        rules.dedup();
                        outcome.warnings.push(format!(
                            "redacted {} secret{} ({}) before writing the entry",
                            found.len(),
                            if found.len() == 1 { "" } else { "s" },
                            rules.join(", ")
                        ));
                    }
                    return Ok(outcome);
                }
                Err(Claim::Taken) => n += 1,
                Err(Claim::Failed(e)) => return Err(e),
            }
        }
    }

    /// Writes `text` at `path` (claiming it when `create`), commits per plan,
    /// and restores the previous state of the file when the commit fails.
    #[allow(clippy::too_many_arguments)]
    fn write_and_commit(
        &self,
        repo: &Repo,
        plan: &Plan,
        path: &str,
        text: &str,
        previous: Option<&[u8]>,
        create: bool,
        message: &str,
    ) -> Result<WriteOutcome, Claim> {
        let file = self.abs(path);
        let mut outcome = WriteOutcome {
            id: Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned(),
            path: path.to_owned(),
            action: String::new(),
            changed: true,
            commit: None,
            branch: None,
            deferred: None,
            warnings: Vec::new(),
        };
        let change = Change {
            path: path.to_owned(),
            content: Some(text.as_bytes().to_vec()),
            create,
        };
        match plan {
            Plan::Branch(b) => {
                match repo.commit(&Target::Branch(b.clone()), &[change], message) {
                    Ok(id) => {
                        outcome.commit = Some(id.to_string());
                        outcome.branch = Some(b.clone());
                    }
                    Err(GitError::PathTaken { .. }) => return Err(Claim::Taken),
                    Err(e) => return Err(Claim::Failed(e.into())),
                }
                // Keep a work-tree copy of an entry that is there in sync.
                if !create && file.exists() {
                    write_atomic(&file, text.as_bytes()).map_err(Claim::Failed)?;
                }
                Ok(outcome)
            }
            Plan::Head { .. } | Plan::FileOnly(_) => {
                if create {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| Claim::Failed(io(dir)(e)))?;
                    }
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&file)
                    {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            return Err(Claim::Taken);
                        }
                        Err(e) => return Err(Claim::Failed(io(&file)(e))),
                    }
                }
                let rollback = |e: KnowledgeError| {
                    let _ = match previous {
                        Some(old) => write_atomic(&file, old).map(|_| ()),
                        None => std::fs::remove_file(&file).map_err(io(&file)),
                    };
                    Claim::Failed(e)
                };
                write_atomic(&file, text.as_bytes()).map_err(rollback)?;
                match plan {
                    Plan::Head { branch } => match repo.commit(&Target::Head, &[change], message) {
                        Ok(id) => {
                            outcome.commit = Some(id.to_string());
                            outcome.branch = Some(branch.clone());
                        }
                        Err(GitError::PathTaken { .. }) => {
                            let _ = std::fs::remove_file(&file);
                            return Err(Claim::Taken);
                        }
                        Err(e) => return Err(rollback(e.into())),
                    },
                    Plan::FileOnly(reason) => outcome.deferred = Some(reason.clone()),
                    Plan::Branch(_) => {}
                }
                Ok(outcome)
            }
        }
    }

    /// Records a done write in the journal. The write stands whatever
    /// happens here: a failure becomes a warning on the outcome.
    fn journal(&self, journal: Option<&Journal>, o: &mut WriteOutcome, source: &Provenance) {
        let Some(j) = journal else { return };
        let run = source.journal_run();
        if let Err(e) = j.append(
            agentops_protocol::event::new_event(run, write_body(o, source, false)),
            Durability::Configured,
        ) {
            o.warnings.push(format!(
                "the write is done{}, but the journal could not record it: {e}",
                if o.commit.is_some() {
                    " and committed"
                } else {
                    ""
                }
            ));
        }
    }

    /// Refuses to write when `.agents` (or a folder in it) is a symlink out
    /// of the repository: the file would land elsewhere and the commit would
    /// hold a blob git cannot match to the work tree.
    fn ensure_inside(&self) -> Result<(), KnowledgeError> {
        match self.layout.agents_outside() {
            Some(real) => Err(KnowledgeError::Invalid(format!(
                "{}: resolves to {}, outside the repository ({}); agentops writes knowledge only inside the repository. Replace the symlink with a directory (`agentops doctor` says the same)",
                self.layout.agents_dir().display(),
                real.display(),
                self.layout.work_tree.display()
            ))),
            None => Ok(()),
        }
    }

    /// `e` as it may be shown: title and body redacted with the project's
    /// rules (a file a person wrote may hold a secret; agentops never prints
    /// one back).
    pub fn for_display(&self, mut e: Entry) -> Entry {
        if let std::borrow::Cow::Owned(t) = self.redactor().redact(&e.title) {
            e.title = t;
        }
        if let std::borrow::Cow::Owned(b) = self.redactor().redact(&e.body) {
            e.body = b;
        }
        e
    }

    fn intents_dir(&self) -> PathBuf {
        self.layout.state_dir().join("intents")
    }

    fn intend(&self, path: &str, entry: &str, action: &str) -> crate::locks::Held {
        crate::locks::hold(
            &self.intents_dir(),
            crate::locks::Record {
                paths: vec![path.to_owned()],
                entry: Some(entry.to_owned()),
                action: Some(action.to_owned()),
                ..crate::locks::Record::default()
            },
        )
    }

    /// Memory writes of killed agentops processes that have not been put
    /// right yet (see [`Self::reconcile`]).
    pub fn interrupted(&self) -> usize {
        crate::locks::count_orphans(&self.intents_dir())
    }

    /// Finishes what memory writes of killed agentops processes left: their
    /// stale git locks and index entries (see [`Repo::recover`]), their
    /// temporary files, an entry committed but not journaled (journaled now,
    /// marked `recovered`), an entry written but not committed (committed
    /// now), an entry file claimed but never written (removed). Runs before
    /// every memory write (one directory read when there is nothing) and from
    /// `doctor --fix`. Returns what it did, a line each.
    pub fn reconcile(&self, journal: Option<&Journal>) -> Vec<String> {
        let orphans = crate::locks::orphans(&self.intents_dir());
        if orphans.is_empty() {
            return Vec::new();
        }
        let mut notes = Vec::new();
        let repo = match self.repo() {
            Ok(r) => r,
            Err(e) => {
                for o in &orphans {
                    crate::locks::unclaim(o);
                }
                return vec![format!("interrupted memory writes not recovered: {e}")];
            }
        };
        match repo.recover() {
            Ok(n) => notes.extend(n),
            Err(e) => notes.push(format!("git locks not recovered: {e}")),
        }
        let journaled: Vec<String> = journal
            .and_then(|j| {
                j.read(&agentops_store::Query {
                    kinds: vec![EventKind::KnowledgeWrite],
                    ..agentops_store::Query::default()
                })
                .ok()
            })
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                agentops_protocol::event::decode::<KnowledgeWrite>(e)
                    .ok()
                    .and_then(|w| w.commit)
            })
            .collect();
        for o in &orphans {
            match self.reconcile_one(&repo, o, journal, &journaled) {
                Ok(Some(n)) => notes.push(n),
                Ok(None) => {}
                Err(e) => {
                    notes.push(format!(
                        "{}: an interrupted write could not be recovered: {e}",
                        o.record.paths.join(", ")
                    ));
                    crate::locks::unclaim(o);
                    continue;
                }
            }
            crate::locks::release(o);
        }
        notes
    }

    fn reconcile_one(
        &self,
        repo: &Repo,
        o: &crate::locks::Orphan,
        journal: Option<&Journal>,
        journaled: &[String],
    ) -> Result<Option<String>, KnowledgeError> {
        let Some(path) = o.record.paths.first() else {
            return Ok(None);
        };
        let file = self.abs(path);
        // write_atomic's temporary file of the killed process.
        if let (Some(dir), Some(name)) = (file.parent(), file.file_name()) {
            let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), o.record.pid));
            let _ = std::fs::remove_file(tmp);
        }
        let target = match self.memory_branch_tip(repo)? {
            Some(b) => Target::Branch(b),
            None => Target::Head,
        };
        let tip = repo.tip(&target)?;
        let committed = match tip {
            Some(t) => repo.read_file_at(t, path)?,
            None => None,
        };
        let on_disk = std::fs::read(&file).ok();
        let id = o.record.entry.clone().unwrap_or_default();
        let action = o.record.action.clone().unwrap_or_else(|| "create".into());
        let source = Provenance::default();
        match (committed, on_disk) {
            (Some(c), disk) if disk.is_none() || disk.as_deref() == Some(c.as_slice()) => {
                // Committed. Journaled? A commit that touched the path after
                // the intent was made and that no knowledge.write names.
                let last = repo.history(&target, path, 1)?;
                let Some(commit) = last.first() else {
                    return Ok(None);
                };
                if journaled.iter().any(|c| c == &commit.id)
                    || commit.time * 1_000_000 < o.record.at_us - 2_000_000
                {
                    return Ok(None);
                }
                let mut outcome = WriteOutcome {
                    id: id.clone(),
                    path: path.clone(),
                    action,
                    changed: true,
                    commit: Some(commit.id.clone()),
                    branch: match &target {
                        Target::Branch(b) => Some(b.clone()),
                        Target::Head => None,
                    },
                    deferred: None,
                    warnings: Vec::new(),
                };
                self.journal_recovered(journal, &mut outcome, &source);
                Ok(Some(format!(
                    "{path}: journaled a memory write a killed agentops process had committed ({})",
                    &commit.id[..commit.id.len().min(12)]
                )))
            }
            (None, Some(d)) if d.is_empty() => {
                std::fs::remove_file(&file).map_err(io(&file))?;
                Ok(Some(format!(
                    "{path}: removed the empty file a killed agentops process had claimed"
                )))
            }
            (_, Some(d)) => {
                // Written but not committed: commit it now, as the write meant to.
                let text = String::from_utf8_lossy(&d).into_owned();
                entry::parse(path, &text)?;
                let plan = self.plan(repo)?;
                let message = format!(
                    "agentops: recover {id}\n\nA memory write interrupted by a killed agentops process, committed on the next write.\n\nAgentops-Entry: {id}\n"
                );
                let mut outcome = self
                    .write_and_commit(repo, &plan, path, &text, None, false, &message)
                    .map_err(|c| match c {
                        Claim::Failed(e) => e,
                        Claim::Taken => KnowledgeError::Invalid("unexpected path conflict".into()),
                    })?;
                outcome.id = id;
                outcome.action = action;
                self.journal_recovered(journal, &mut outcome, &source);
                Ok(Some(match &outcome.commit {
                    Some(c) => format!(
                        "{path}: committed a memory write a killed agentops process had left uncommitted ({})",
                        &c[..c.len().min(12)]
                    ),
                    None => format!(
                        "{path}: a memory write a killed agentops process left is in the work tree, not committed ({})",
                        outcome.deferred.as_deref().unwrap_or("committing is off")
                    ),
                }))
            }
            (_, None) => Ok(None),
        }
    }

    fn journal_recovered(
        &self,
        journal: Option<&Journal>,
        o: &mut WriteOutcome,
        source: &Provenance,
    ) {
        let Some(j) = journal else { return };
        if let Err(e) = j.append(
            agentops_protocol::event::new_event(source.journal_run(), write_body(o, source, true)),
            Durability::Configured,
        ) {
            o.warnings.push(format!(
                "the journal could not record a recovered write: {e}"
            ));
        }
    }

    fn memory_branch_tip(&self, repo: &Repo) -> Result<Option<String>, KnowledgeError> {
        match &self.config.memory.branch {
            Some(b) => {
                let on_it = matches!(repo.head()?, HeadState::Branch { ref name, .. } if name == b);
                Ok(if on_it { None } else { Some(b.clone()) })
            }
            None => Ok(None),
        }
    }

    /// Every entry in `.agents/` (and on the memory branch, when one is
    /// configured), newest first. Files that cannot be read are skipped with a
    /// warning naming the file, line and field.
    pub fn list(&self, filter: &Filter) -> Result<Listing, KnowledgeError> {
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        let agents = self.layout.agents_dir();
        for dir in KNOWLEDGE_DIRS {
            let root = agents.join(dir);
            let mut files = Vec::new();
            collect_md(&root, &mut files);
            for f in files {
                let rel = rel_path(&self.layout.work_tree, &f);
                match std::fs::read(&f) {
                    Ok(bytes) => match entry::text_of(&rel, &bytes) {
                        Ok(text) => match entry::parse(&rel, text) {
                            Ok(e) => entries.push(e),
                            Err(e) => warnings.push(e.to_string()),
                        },
                        Err(m) => warnings.push(m),
                    },
                    Err(e) => warnings.push(format!("{rel}: cannot read: {e}")),
                }
            }
        }
        if self.config.memory.branch.is_some() {
            let repo = self.repo()?;
            if let Some(b) = self.memory_branch_tip(&repo)?
                && let Some(tip) = repo.tip(&Target::Branch(b))?
            {
                for (path, bytes) in repo.read_dir_at(tip, ".agents")? {
                    if entries.iter().any(|e: &Entry| e.path == path) {
                        continue;
                    }
                    let in_knowledge_dir = path
                        .split('/')
                        .nth(1)
                        .is_some_and(|d| KNOWLEDGE_DIRS.contains(&d));
                    let name = path.rsplit('/').next().unwrap_or(&path);
                    if !in_knowledge_dir || !entry::is_entry_file_name(name) {
                        continue;
                    }
                    match entry::parse(&path, &String::from_utf8_lossy(&bytes)) {
                        Ok(e) => entries.push(e),
                        Err(e) => warnings.push(e.to_string()),
                    }
                }
            }
        }
        entries.retain(|e| {
            filter.kind.is_none_or(|k| k == e.kind)
                && filter.maturity.is_none_or(|m| m == e.maturity)
                && filter.tags.iter().all(|t| e.tags.contains(t))
                && filter
                    .since
                    .is_none_or(|s| e.created.is_some_and(|c| c >= s))
        });
        entries.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(Listing { entries, warnings })
    }

    /// The entry with `id`.
    pub fn find(&self, id: &str) -> Result<Entry, KnowledgeError> {
        let id = EntryId::parse(id).map_err(|e| KnowledgeError::Invalid(e.to_string()))?;
        // Entries agentops wrote live at .agents/<dir>/<yyyy-mm>/<id>.md;
        // hand-written ones usually at .agents/<dir>/<id>.md.
        if let Some(rel) = entry::generated_path(&id)
            && let Ok(text) = std::fs::read_to_string(self.abs(&rel))
        {
            let e = entry::parse(&rel, &text)?;
            if e.id == id {
                return Ok(e);
            }
        }
        let mut dirs: Vec<&str> = EntryType::ALL
            .iter()
            .filter(|t| id.as_str().starts_with(&format!("{}-", t.as_str())))
            .map(|t| t.dir())
            .collect();
        for d in KNOWLEDGE_DIRS {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        for d in dirs {
            let rel = format!(".agents/{d}/{id}.md");
            let file = self.abs(&rel);
            if let Ok(text) = std::fs::read_to_string(&file) {
                let e = entry::parse(&rel, &text)?;
                if e.id == id {
                    return Ok(e);
                }
            }
        }
        let listing = self.list(&Filter::default())?;
        let mut suggestions: Vec<String> = Vec::new();
        for e in listing.entries {
            if e.id == id {
                return Ok(e);
            }
            if e.id.as_str().contains(id.as_str()) && suggestions.len() < 5 {
                suggestions.push(e.id.to_string());
            }
        }
        Err(KnowledgeError::NotFound {
            id: id.to_string(),
            suggestions,
        })
    }

    /// Sets an entry's maturity as a memory write. Only the `maturity:` line
    /// changes; a file without front matter gains a minimal one.
    pub fn set_maturity(
        &self,
        id: &str,
        maturity: Maturity,
        source: &Provenance,
        journal: Option<&Journal>,
    ) -> Result<WriteOutcome, KnowledgeError> {
        let e = self.find(id)?;
        let action = match maturity {
            Maturity::Established => "promote",
            Maturity::Deprecated => "deprecate",
            Maturity::Provisional => "reset",
        };
        if e.maturity == maturity {
            return Ok(WriteOutcome {
                id: e.id.to_string(),
                path: e.path,
                action: action.into(),
                changed: false,
                commit: None,
                branch: None,
                deferred: None,
                warnings: Vec::new(),
            });
        }
        self.ensure_inside()?;
        let recovered = self.reconcile(journal);
        let repo = self.repo()?;
        let plan = self.plan(&repo)?;
        let file = self.abs(&e.path);
        let _intent = self.intend(&e.path, e.id.as_str(), action);
        let old = match std::fs::read(&file) {
            Ok(b) => b,
            Err(_) => {
                // Only on the memory branch.
                let b = self
                    .memory_branch_tip(&repo)?
                    .ok_or_else(|| KnowledgeError::NotFound {
                        id: id.into(),
                        suggestions: Vec::new(),
                    })?;
                let tip =
                    repo.tip(&Target::Branch(b))?
                        .ok_or_else(|| KnowledgeError::NotFound {
                            id: id.into(),
                            suggestions: Vec::new(),
                        })?;
                repo.read_file_at(tip, &e.path)?
                    .ok_or_else(|| KnowledgeError::NotFound {
                        id: id.into(),
                        suggestions: Vec::new(),
                    })?
            }
        };
        let text = entry::set_maturity_in_text(&String::from_utf8_lossy(&old), &e, maturity);
        let message = commit_message(
            &format!("{action} {}", e.id),
            &format!("{} → {maturity}", e.title),
            &e.id,
            source,
        );
        let mut outcome = self
            .write_and_commit(&repo, &plan, &e.path, &text, Some(&old), false, &message)
            .map_err(|c| match c {
                Claim::Failed(e) => e,
                Claim::Taken => KnowledgeError::Invalid("unexpected path conflict".into()),
            })?;
        outcome.id = e.id.to_string();
        outcome.action = action.into();
        self.journal(journal, &mut outcome, source);
        outcome.warnings.splice(0..0, recovered);
        Ok(outcome)
    }

    /// The commits that changed one entry, or all of `.agents/`, newest first.
    pub fn history(
        &self,
        id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, KnowledgeError> {
        let path = match id {
            Some(id) => self.find(id)?.path,
            None => ".agents".to_owned(),
        };
        let repo = self.repo()?;
        let target = match self.memory_branch_tip(&repo)? {
            Some(b) => Target::Branch(b),
            None => Target::Head,
        };
        Ok(repo.history(&target, &path, limit)?)
    }
}

enum Claim {
    /// The path was taken by another writer: pick the next id.
    Taken,
    Failed(KnowledgeError),
}

fn commit_message(subject: &str, title: &str, id: &EntryId, source: &Provenance) -> String {
    let mut m = format!("agentops: {subject}\n\n{title}\n\nAgentops-Entry: {id}\n");
    if let Some(r) = &source.run {
        m.push_str(&format!("Agentops-Run: {r}\n"));
    }
    if let Some(s) = &source.session {
        m.push_str(&format!("Agentops-Session: {s}\n"));
    }
    if let Some(a) = &source.agent {
        m.push_str(&format!("Agentops-Agent: {a}\n"));
    }
    m
}

fn collect_md(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_md(&p, out),
            Ok(t) if t.is_file() && entry::is_entry_file_name(&name) => out.push(p),
            _ => {}
        }
    }
}

fn rel_path(work_tree: &Path, p: &Path) -> String {
    // A name that is not UTF-8 keeps its place (shown with U+FFFD), so a
    // warning names the file, not its folder.
    p.strip_prefix(work_tree)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes through a temporary file and a rename, so a reader never sees half
/// an entry and a crash leaves the old content or the new.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KnowledgeError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // Every error path removes the temporary file (a full disk fails the
    // write or the sync half-way).
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
}
/// The `knowledge.write` body of a done write.
fn write_body(o: &WriteOutcome, source: &Provenance, recovered: bool) -> KnowledgeWrite {
    KnowledgeWrite {
        entry: o.id.clone(),
        path: o.path.clone(),
        action: o.action.clone(),
        commit: o.commit.clone(),
        branch: o.branch.clone(),
        deferred: o.deferred.clone(),
        agent: source.agent.clone(),
        recovered,
    }
}
