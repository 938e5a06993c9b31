//! The search index over `.agents/`: tantivy (BM25) in
//! `<git-common-dir>/agentops/index/`, rebuildable from the files at any time.
//!
//! **Freshness.** Every command that reads the index first brings it up to
//! date. The cheap check stats only the knowledge directories (creating,
//! deleting or renaming a file changes its directory's mtime; agentops,
//! `git checkout` and editors that save atomically all do that) and compares
//! the `.agents` tree of HEAD (a commit, pull or checkout that changes
//! knowledge triggers a full check). Only changed directories are listed and
//! only files whose size, mtime or inode changed are read and hashed; a file
//! is re-indexed only when its content hash differs. `agentops index` runs the
//! full check, which also catches uncommitted in-place edits.
//!
//! Token counts of each entry's three tiers are taken when it is indexed, so
//! no tokenizer is loaded when a query runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentops_core::config::Config;
use agentops_knowledge::entry::{self, KNOWLEDGE_DIRS};
use agentops_knowledge::{Entry, EntryType, Maturity, Provenance};
use agentops_store::RepoLayout;
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::tokens::TokenizerKind;
use crate::vectors::{Embedder, VectorSync, Vectors};
use crate::{rank, render};

/// Bumped when the schema or the manifest changes shape: the index is rebuilt.
const FORMAT: u32 = 3;
const ANALYZER: &str = "agentops";
const MAX_QUERY_TERMS: usize = 64;
const WRITER_HEAP: usize = 64 * 1024 * 1024;
/// Pseudo-relevance feedback (docs/factor-2-context.md, "Ranking"): the
/// query is expanded from its best hit with that entry's most distinctive
/// terms, each weighted at most this share of a query term. One hit, ten
/// terms, 0.2: the best of the settings the eval tried.
const FEEDBACK_DOCS: usize = 1;
/// Decompressed doc-store blocks a reader keeps (16 KB each), per segment.
const DOC_CACHE_BLOCKS: usize = 1024;
const FEEDBACK_TERMS: usize = 10;
const FEEDBACK_WEIGHT: f64 = 0.2;
/// Query weights of the fields. The title has none of its own: it is also
/// indexed in the body (the body starts with it, or it is added), and a
/// short title field's BM25 drowned the body's evidence (eval, same doc).
const TAGS_WEIGHT: f32 = 0.5;
/// How long a reader waits for another process's index writer.
const WRITER_WAIT: Duration = Duration::from_secs(5);

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The manifest (or the file list) could not be read or written.
    #[error("{}: {source}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index: index could not be opened")]
    Unopened,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Copy)]
struct Fields {
    path: Field,
    id: Field,
    kind: Field,
    title: Field,
    tags: Field,
    tag: Field,
    body: Field,
    maturity: Field,
    created: Field,
    tok_full: Field,
    tok_summary: Field,
    tok_title: Field,
    summary: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let num = NumericOptions::default().set_stored();
    let fields = Fields {
        path: b.add_text_field("path", STRING | STORED),
        id: b.add_text_field("id", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        title: b.add_text_field("title", text.clone()),
        tags: b.add_text_field("tags", text.clone()),
        tag: b.add_text_field("tag", STRING),
        body: b.add_text_field("body", text),
        maturity: b.add_text_field("maturity", STRING | STORED),
        // Fast: the briefing takes the freshest entries without a query.
        created: b.add_i64_field("created", num.clone().set_fast()),
        tok_full: b.add_u64_field("tok_full", num.clone()),
        tok_summary: b.add_u64_field("tok_summary", num.clone()),
        tok_title: b.add_u64_field("tok_title", num),
        summary: b.add_text_field("summary", STORED),
    };
    (b.build(), fields)
}

fn register(index: &Index) {
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(
            StopWordFilter::new(Language::English)
                .unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new())),
        )
        .filter(Stemmer::new(Language::English))
        .build();
    index.tokenizers().register(ANALYZER, analyzer);
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct DirState {
    mtime_ns: i128,
    subdirs: Vec<String>,
    /// Recorded within [`RACY_NS`] of its mtime: another change in the same
    /// clock tick would leave the mtime as it is, so it is listed again.
    #[serde(default)]
    racy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct FileState {
    mtime_ns: i128,
    size: u64,
    ino: u64,
    hash: String,
    /// As for directories: a racy file is hashed again next time.
    #[serde(default)]
    racy: bool,
}

/// File times come from a coarse clock (a tick is several ms), so a change
/// within the same tick as the recording keeps the mtime: like git's "racy"
/// index entries, anything recorded this close to its mtime is not trusted.
const RACY_NS: i128 = 1_000_000_000;

/// The time racy states are judged against: when this look at the files
/// began (an open, or a long-lived process's catch-up), not when it records
/// what it saw. A slow refresh (a rebuild that loads the tokenizer takes
/// over a second in a debug build) would otherwise record as trusted a file
/// written just before it was read. Per thread: a refresh runs on one.
fn now_ns() -> i128 {
    LOOK.with(|l| match l.get() {
        Some(t) => t,
        None => {
            let t = i128::from(agentops_core::time::now_micros()) * 1_000;
            l.set(Some(t));
            t
        }
    })
}

thread_local! {
    static LOOK: std::cell::Cell<Option<i128>> = const { std::cell::Cell::new(None) };
}

/// Starts a look at the files: racy states are judged from now. (Were it
/// once per process, every file written after a long-lived process started
/// would stay racy there, hashed again on every call.)
fn new_look() {
    LOOK.with(|l| l.set(Some(i128::from(agentops_core::time::now_micros()) * 1_000)));
}

/// What lives beside the tantivy files: small enough to read on every query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    tokenizer: String,
    /// Token counts of [`render::FIXED`].
    fixed_tokens: Vec<u32>,
    /// The `.agents` tree id at HEAD when last fully checked.
    head_tree: String,
    dirs: BTreeMap<String, DirState>,
    /// Files that could not be parsed: path → problem.
    broken: BTreeMap<String, String>,
    entries: u64,
    /// Entries indexed right after a memory write, with token counts
    /// estimated (no tokenizer loaded on that path); the next full check
    /// (`agentops index`) counts them exactly.
    #[serde(default)]
    estimated: std::collections::BTreeSet<String>,
}

/// How an entry's tokens are counted when it is indexed.
#[derive(Debug, Clone, Copy)]
enum Count {
    Exact(TokenizerKind),
    /// About 3 characters per token, rounded up: over, not under, the real
    /// count, so a packet never outgrows its budget.
    Estimate,
}

impl Count {
    fn count(self, text: &str) -> u32 {
        match self {
            Count::Exact(t) => t.count(text),
            Count::Estimate => u32::try_from(text.chars().count().div_ceil(3)).unwrap_or(u32::MAX),
        }
    }
}

/// What bringing the index up to date did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refresh {
    /// Why the index was rebuilt from scratch, if it was.
    pub rebuilt: Option<String>,
    /// Whether every file was checked (else only changed directories).
    pub full_check: bool,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Entries in the index afterwards.
    pub entries: u64,
    /// Files skipped because they could not be read: `path: problem`.
    pub warnings: Vec<String>,
    /// Set when another process held the index writer and this one used the
    /// index as it was.
    pub stale: bool,
    /// Set when the state directory is read-only: the index was searched as
    /// it was, without bringing it up to date.
    pub read_only: bool,
    pub elapsed_ms: f64,
}

/// One search result with everything ranking and packets need.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub entry: Entry,
    pub score: rank::ScoreParts,
    pub snippet: String,
    pub tokens_full: u32,
    pub tokens_summary: u32,
    pub tokens_title: u32,
    pub summary: String,
}

/// Restrictions on a search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub kind: Option<EntryType>,
    pub tags: Vec<String>,
}

/// An open, up-to-date index.
pub struct KnowledgeIndex {
    index: Index,
    reader: IndexReader,
    f: Fields,
    manifest: Manifest,
    dir: PathBuf,
    work_tree: PathBuf,
    tokenizer: TokenizerKind,
    half_life_days: f64,
    /// Pseudo-relevance feedback on (`context.expansion`).
    expansion: bool,
    /// The `.agents` tree at HEAD, with the state of the files HEAD resolves
    /// through: a long-lived process re-reads git only when they change.
    head: Option<(HeadStamp, String)>,
    /// [`Self::generation`] for the reader's generation it was read for (a
    /// warm server asks on every call; it reads the index's meta file).
    generation: std::sync::Mutex<Option<(u64, String)>>,
    /// The manifest file as last read by [`Self::catch_up`] (mtime, size,
    /// inode), when it was older than [`RACY_NS`] then: read again only when
    /// that changes.
    manifest_stamp: Option<(i128, u64, u64)>,
}

/// What `HEAD` resolves through: `HEAD`, the ref it names, `packed-refs`
/// (mtime, size, inode of each; zeros when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeadStamp(Vec<(i128, u64, u64)>);

impl HeadStamp {
    fn of(layout: &RepoLayout) -> Self {
        let st = |p: &Path| file_stamp(p).unwrap_or((0, 0, 0));
        let head = layout.git_dir.join("HEAD");
        let mut v = vec![st(&head)];
        if let Ok(text) = std::fs::read_to_string(&head)
            && let Some(r) = text.trim().strip_prefix("ref: ")
        {
            v.push(st(&layout.common_dir.join(r)));
        }
        v.push(st(&layout.common_dir.join("packed-refs")));
        Self(v)
    }
}

/// A file's mtime, size and inode; `None` when it cannot be stat-ed.
fn file_stamp(p: &Path) -> Option<(i128, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| (mtime_ns(&m), m.len(), m.ino()))
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

fn file_state(m: &std::fs::Metadata, hash: String) -> FileState {
    use std::os::unix::fs::MetadataExt;
    let mtime_ns = mtime_ns(m);
    FileState {
        mtime_ns,
        size: m.len(),
        ino: m.ino(),
        hash,
        racy: now_ns() - mtime_ns < RACY_NS,
    }
}

fn content_hash(bytes: &[u8]) -> String {
    use sha1::Digest;
    agentops_core::ids::hex(&sha1::Sha1::digest(bytes))
}

fn dir_key(dir: &str) -> String {
    content_hash(dir.as_bytes())
}

impl KnowledgeIndex {
    /// Opens the index of `layout`, bringing it up to date first (`full`:
    /// check every file; `rebuild`: start from scratch).
    pub fn open(
        layout: &RepoLayout,
        config: &Config,
        full: bool,
        rebuild: bool,
    ) -> Result<(Self, Refresh), IndexError> {
        Self::open_waiting(layout, config, full, rebuild, WRITER_WAIT)
    }

    /// [`KnowledgeIndex::open`] that waits at most `wait` for another
    /// process's index writer before using the index as it is (`stale`).
    /// `wait` zero is the after-a-memory-write mode: it also estimates the
    /// new entries' tokens instead of loading a tokenizer (a full check
    /// counts them exactly later).
    pub fn open_waiting(
        layout: &RepoLayout,
        config: &Config,
        full: bool,
        rebuild: bool,
        wait: Duration,
    ) -> Result<(Self, Refresh), IndexError> {
        let start = Instant::now();
        // Before anything slow: racy states are judged from here.
        new_look();
        let tokenizer = TokenizerKind::of(config.context.tokenizer);
        let dir = layout.state_dir().join("index");
        let mut refresh = Refresh::default();
        if !rebuild && !writable(&dir) {
            // A read-only state directory: search the index as it is, from
            // a copy in memory (tantivy's reader takes a lock file on disk).
            if let Some(k) = Self::open_read_only(
                &dir,
                &layout.work_tree,
                tokenizer,
                config.context.half_life_days,
            )? {
                refresh.read_only = true;
                let mut k = k;
                k.expansion = config.context.expansion;
                refresh.entries = k.manifest.entries;
                refresh.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
                return Ok((k, refresh));
            }
        }
        let mut opened = if rebuild {
            refresh.rebuilt = Some("asked to rebuild".into());
            None
        } else {
            match Self::try_open(
                &dir,
                &layout.work_tree,
                tokenizer,
                config.context.half_life_days,
            ) {
                Ok(Some(k)) => Some(k),
                Ok(None) => {
                    refresh.rebuilt = Some(if dir.exists() {
                        "the index was built by another version or tokenizer".into()
                    } else {
                        "no index yet".into()
                    });
                    None
                }
                Err(e) => {
                    refresh.rebuilt = Some(format!("the index could not be read ({e})"));
                    None
                }
            }
        };
        if opened.is_none() {
            opened = Some(Self::create(
                &dir,
                &layout.work_tree,
                tokenizer,
                config.context.half_life_days,
            )?);
        }
        let Some(mut k) = opened else {
            return Err(IndexError::Unopened);
        };
        k.expansion = config.context.expansion;
        let full = full || refresh.rebuilt.is_some();
        k.refresh(layout, full, &mut refresh, wait)?;
        refresh.entries = k.manifest.entries;
        // Each message names its file (and line and field where known).
        refresh.warnings.extend(k.manifest.broken.values().cloned());
        refresh.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok((k, refresh))
    }

    /// Brings an index held open by a long-lived process (the MCP server)
    /// up to date: what another process committed to the index is read
    /// again (the manifest changed on disk), then changed entry files are
    /// indexed, never waiting for another process's writer (`stale` then).
    pub fn catch_up(&mut self, layout: &RepoLayout) -> Result<Refresh, IndexError> {
        let start = Instant::now();
        new_look();
        let mut refresh = Refresh::default();
        let path = Self::manifest_path(&self.dir);
        // The manifest is replaced (written aside and renamed), never
        // rewritten in place: the same mtime, size and inode, seen once it
        // was a clock tick old, is the same file.
        let stamp = file_stamp(&path);
        if stamp.is_none() || stamp != self.manifest_stamp {
            self.manifest_stamp = None;
            let on_disk = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
            match on_disk {
                Some(m) if m.format == FORMAT && m.tokenizer == self.tokenizer.name() => {
                    if m.entries != self.manifest.entries
                        || m.dirs != self.manifest.dirs
                        || m.head_tree != self.manifest.head_tree
                    {
                        self.manifest = m;
                        self.reader.reload()?;
                    }
                }
                // Rebuilt by another version, or removed: the caller opens it afresh.
                _ => return Err(IndexError::Unopened),
            }
            self.manifest_stamp = stamp.filter(|s| now_ns() - s.0 >= RACY_NS);
        }
        self.refresh(layout, false, &mut refresh, Duration::ZERO)?;
        refresh.entries = self.manifest.entries;
        refresh
            .warnings
            .extend(self.manifest.broken.values().cloned());
        refresh.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(refresh)
    }

    /// Whether `layout` has an index this version can use with `config`'s
    /// tokenizer (one from another format or tokenizer is rebuilt).
    pub fn is_current(layout: &RepoLayout, config: &Config) -> bool {
        let path = Self::manifest_path(&layout.state_dir().join("index"));
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .is_some_and(|m| {
                m.format == FORMAT
                    && m.tokenizer == TokenizerKind::of(config.context.tokenizer).name()
            })
    }

    fn manifest_path(dir: &Path) -> PathBuf {
        dir.join("manifest.json")
    }

    fn try_open(
        dir: &Path,
        work_tree: &Path,
        tokenizer: TokenizerKind,
        half_life_days: f64,
    ) -> Result<Option<Self>, IndexError> {
        Self::open_existing(dir, work_tree, tokenizer, half_life_days, false)
    }

    /// The index in `dir` copied into memory, not refreshed (the state
    /// directory is read-only; tantivy's reader takes a lock file on disk).
    fn open_read_only(
        dir: &Path,
        work_tree: &Path,
        tokenizer: TokenizerKind,
        half_life_days: f64,
    ) -> Result<Option<Self>, IndexError> {
        Self::open_existing(dir, work_tree, tokenizer, half_life_days, true)
    }

    /// The index in `dir`, from disk or (`in_memory`) from a copy of its
    /// files; `None` when there is none this version and tokenizer can use.
    fn open_existing(
        dir: &Path,
        work_tree: &Path,
        tokenizer: TokenizerKind,
        half_life_days: f64,
        in_memory: bool,
    ) -> Result<Option<Self>, IndexError> {
        let mpath = Self::manifest_path(dir);
        let Ok(text) = std::fs::read(&mpath) else {
            return Ok(None);
        };
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|source| IndexError::Manifest {
                path: mpath.clone(),
                source,
            })?;
        if manifest.format != FORMAT || manifest.tokenizer != tokenizer.name() {
            return Ok(None);
        }
        let tdir = dir.join("tantivy");
        let index = if in_memory {
            use tantivy::directory::{Directory, RamDirectory};
            let ram = RamDirectory::create();
            for e in std::fs::read_dir(&tdir).map_err(io(&tdir))?.flatten() {
                let p = e.path();
                // Lock files are tantivy's, per process: not part of the index.
                if !p.is_file() || e.file_name().to_string_lossy().ends_with(".lock") {
                    continue;
                }
                let bytes = std::fs::read(&p).map_err(io(&p))?;
                ram.atomic_write(Path::new(&e.file_name()), &bytes)
                    .map_err(io(&p))?;
            }
            Index::open(ram)?
        } else {
            Index::open_in_dir(tdir)?
        };
        register(&index);
        let (schema, f) = schema();
        if index.schema() != schema {
            return Ok(None);
        }
        Self::assemble(
            index,
            f,
            manifest,
            dir,
            work_tree,
            tokenizer,
            half_life_days,
        )
        .map(Some)
    }

    /// The handle over an opened or created tantivy index.
    fn assemble(
        index: Index,
        f: Fields,
        manifest: Manifest,
        dir: &Path,
        work_tree: &Path,
        tokenizer: TokenizerKind,
        half_life_days: f64,
    ) -> Result<Self, IndexError> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            // A long-lived reader (the MCP server, the dashboard) reads the
            // same stored documents again and again: keep up to 16 MB of
            // decompressed blocks per segment (never more than the store
            // itself; a one-query process fills only what it reads).
            .doc_store_cache_num_blocks(DOC_CACHE_BLOCKS)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            f,
            manifest,
            dir: dir.to_path_buf(),
            work_tree: work_tree.to_path_buf(),
            tokenizer,
            half_life_days,
            expansion: true,
            head: None,
            generation: std::sync::Mutex::new(None),
            manifest_stamp: None,
        })
    }

    /// Turns pseudo-relevance feedback on or off (`context.expansion`).
    pub fn set_expansion(&mut self, on: bool) {
        self.expansion = on;
    }

    fn fresh_manifest(tokenizer: TokenizerKind) -> Manifest {
        Manifest {
            format: FORMAT,
            tokenizer: tokenizer.name().into(),
            fixed_tokens: render::FIXED.iter().map(|s| tokenizer.count(s)).collect(),
            ..Manifest::default()
        }
    }

    fn create(
        dir: &Path,
        work_tree: &Path,
        tokenizer: TokenizerKind,
        half_life_days: f64,
    ) -> Result<Self, IndexError> {
        // Everything under the index directory is derived: start clean, or
        // file lists left from the old index would make files look indexed.
        for sub in ["tantivy", "dirs"] {
            let p = dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io(&p))?;
            }
        }
        let _ = std::fs::remove_file(Self::manifest_path(dir));
        let tdir = dir.join("tantivy");
        std::fs::create_dir_all(&tdir).map_err(io(&tdir))?;
        let (schema, f) = schema();
        let index = Index::create_in_dir(&tdir, schema)?;
        register(&index);
        let manifest = Self::fresh_manifest(tokenizer);
        let k = Self::assemble(
            index,
            f,
            manifest,
            dir,
            work_tree,
            tokenizer,
            half_life_days,
        )?;
        k.save_manifest()?;
        Ok(k)
    }

    /// An index in memory over `entries` (tests and evaluation).
    pub fn in_memory(
        entries: &[Entry],
        tokenizer: TokenizerKind,
        half_life_days: f64,
    ) -> Result<Self, IndexError> {
        let (schema, f) = schema();
        let index = Index::create_in_ram(schema);
        register(&index);
        let mut writer: IndexWriter = index.writer(WRITER_HEAP)?;
        let now = agentops_core::time::now_micros();
        for e in entries {
            writer.add_document(doc_for(
                &f,
                e,
                e.created.unwrap_or(now),
                Count::Exact(tokenizer),
            ))?;
        }
        writer.commit()?;
        let mut manifest = Self::fresh_manifest(tokenizer);
        manifest.entries = entries.len() as u64;
        Self::assemble(
            index,
            f,
            manifest,
            Path::new(""),
            Path::new(""),
            tokenizer,
            half_life_days,
        )
    }

    fn save_manifest(&self) -> Result<(), IndexError> {
        let p = Self::manifest_path(&self.dir);
        let tmp = self
            .dir
            .join(format!(".manifest.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec(&self.manifest).map_err(|source| IndexError::Manifest {
            path: p.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io(&p))
    }

    fn dir_files_path(&self, dir: &str) -> PathBuf {
        self.dir.join("dirs").join(format!("{}.json", dir_key(dir)))
    }

    fn load_dir_files(&self, dir: &str) -> BTreeMap<String, FileState> {
        std::fs::read(self.dir_files_path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_dir_files(
        &self,
        dir: &str,
        files: &BTreeMap<String, FileState>,
    ) -> Result<(), IndexError> {
        let p = self.dir_files_path(dir);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if files.is_empty() {
            let _ = std::fs::remove_file(&p);
            return Ok(());
        }
        let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec(files).map_err(|source| IndexError::Manifest {
            path: p.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io(&p))
    }

    /// The `.agents` tree id at HEAD, or "" when there is none.
    fn head_tree(work_tree: &Path) -> String {
        let Ok(repo) = agentops_knowledge::git::Repo::open(work_tree) else {
            return String::new();
        };
        let Ok(Some(tip)) = repo.tip(&agentops_knowledge::git::Target::Head) else {
            return String::new();
        };
        let g = repo.gix();
        g.find_commit(tip)
            .ok()
            .and_then(|c| c.tree().ok())
            .and_then(|t| t.lookup_entry_by_path(".agents").ok().flatten())
            .map(|e| e.object_id().to_string())
            .unwrap_or_default()
    }

    /// Which directories changed (all of them when `full`), and the current
    /// directory tree.
    fn changed_dirs(&self, full: bool) -> (Vec<String>, BTreeMap<String, DirState>, Vec<String>) {
        let mut changed = Vec::new();
        let mut current: BTreeMap<String, DirState> = BTreeMap::new();
        let mut stack: Vec<String> = KNOWLEDGE_DIRS
            .iter()
            .map(|d| format!(".agents/{d}"))
            .collect();
        while let Some(rel) = stack.pop() {
            let abs = entry::absolute(&self.work_tree, &rel);
            let Ok(meta) = std::fs::metadata(&abs) else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            let mt = mtime_ns(&meta);
            let known = self.manifest.dirs.get(&rel);
            let state = match known {
                Some(d) if d.mtime_ns == mt && !full && !d.racy => d.clone(),
                _ => {
                    changed.push(rel.clone());
                    let mut subdirs = Vec::new();
                    if let Ok(rd) = std::fs::read_dir(&abs) {
                        for e in rd.flatten() {
                            let name = e.file_name().to_string_lossy().into_owned();
                            if !name.starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir()) {
                                subdirs.push(name);
                            }
                        }
                    }
                    subdirs.sort();
                    DirState {
                        mtime_ns: mt,
                        subdirs,
                        racy: now_ns() - mt < RACY_NS,
                    }
                }
            };
            for s in &state.subdirs {
                stack.push(format!("{rel}/{s}"));
            }
            current.insert(rel, state);
        }
        let gone: Vec<String> = self
            .manifest
            .dirs
            .keys()
            .filter(|d| !current.contains_key(*d))
            .cloned()
            .collect();
        (changed, current, gone)
    }

    /// The `.agents` tree at HEAD, read from git again only when what HEAD
    /// resolves through changed (or within a second of its change).
    fn current_head_tree(&mut self, layout: &RepoLayout) -> String {
        let stamp = HeadStamp::of(layout);
        let fresh = stamp.0.iter().all(|(m, _, _)| now_ns() - *m >= RACY_NS);
        if let Some((s, tree)) = &self.head
            && *s == stamp
            && fresh
        {
            return tree.clone();
        }
        let tree = Self::head_tree(&layout.work_tree);
        self.head = Some((stamp, tree.clone()));
        tree
    }

    fn refresh(
        &mut self,
        layout: &RepoLayout,
        full: bool,
        out: &mut Refresh,
        wait: Duration,
    ) -> Result<(), IndexError> {
        let head_tree = self.current_head_tree(layout);
        let full = full || head_tree != self.manifest.head_tree;
        let (changed, current, gone) = self.changed_dirs(full);
        if changed.is_empty() && gone.is_empty() {
            return Ok(());
        }
        // Often nothing really changed (a racy folder listed again, a folder
        // touched without its entries changing): find out read-only, and
        // then only record the fresher states, without the index writer.
        let recount = full && !self.manifest.estimated.is_empty();
        if gone.is_empty()
            && !recount
            && let Some(confirmed) = self.unchanged(&changed)
        {
            for (d, files) in &confirmed {
                self.save_dir_files(d, files)?;
            }
            self.manifest.dirs = current;
            self.manifest.head_tree = head_tree;
            // The file lists may be another process's, saved after its
            // commit: what they say is indexed is, once the reader is
            // reloaded (else a write another process indexed while this
            // one looked would stay unseen here, its folder recorded as
            // current).
            self.reader.reload()?;
            self.manifest.entries = self.reader.searcher().num_docs();
            return self.save_manifest();
        }
        // Changes: take the writer (one process at a time), then look again,
        // since another process may have done the work while we waited.
        let Some(mut writer) = self.take_writer(wait)? else {
            out.stale = true;
            return Ok(());
        };
        if let Some(fresh) = Self::try_open(
            &self.dir,
            &self.work_tree,
            self.tokenizer,
            self.half_life_days,
        )? && out.rebuilt.is_none()
        {
            self.manifest = fresh.manifest;
        }
        let full = full || head_tree != self.manifest.head_tree;
        let (changed, current, gone) = self.changed_dirs(full);
        out.full_check = full;
        // The folders' file lists are saved after the commit: a list says
        // what the index has (a process killed between the two indexes the
        // files again; never one that a list claims and the index lacks).
        let mut lists: Vec<(String, BTreeMap<String, FileState>)> = Vec::new();
        for d in &gone {
            for name in self.load_dir_files(d).keys() {
                writer.delete_term(Term::from_field_text(self.f.path, &format!("{d}/{name}")));
                self.manifest.broken.remove(&format!("{d}/{name}"));
                out.removed += 1;
            }
            lists.push((d.clone(), BTreeMap::new()));
        }
        for d in &changed {
            let mut files = self.load_dir_files(d);
            let abs = entry::absolute(&self.work_tree, d);
            let mut seen = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&abs) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !entry::is_entry_file_name(&name) {
                        continue;
                    }
                    let Ok(meta) = e.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    seen.push(name.clone());
                    let rel = format!("{d}/{name}");
                    let prev = files.get(&name);
                    // A full check counts what a write only estimated.
                    let recount = full && self.manifest.estimated.contains(&rel);
                    let same_stat = !recount
                        && prev.is_some_and(|p| {
                            let now = file_state(&meta, String::new());
                            !p.racy
                                && p.mtime_ns == now.mtime_ns
                                && p.size == now.size
                                && p.ino == now.ino
                        });
                    if same_stat {
                        continue;
                    }
                    let bytes = match std::fs::read(e.path()) {
                        Ok(b) => b,
                        Err(err) => {
                            self.manifest
                                .broken
                                .insert(rel.clone(), format!("{rel}: cannot read: {err}"));
                            continue;
                        }
                    };
                    let hash = content_hash(&bytes);
                    if !recount && prev.is_some_and(|p| p.hash == hash) {
                        files.insert(name, file_state(&meta, hash));
                        continue;
                    }
                    writer.delete_term(Term::from_field_text(self.f.path, &rel));
                    let parsed = entry::text_of(&rel, &bytes)
                        .map_err(|m| m.to_owned())
                        .and_then(|t| entry::parse(&rel, t).map_err(|e| e.to_string()));
                    match parsed {
                        Ok(entry) => {
                            let created = entry
                                .created
                                .unwrap_or_else(|| (mtime_ns(&meta) / 1000) as i64);
                            let count = if wait.is_zero() {
                                self.manifest.estimated.insert(rel.clone());
                                Count::Estimate
                            } else {
                                self.manifest.estimated.remove(&rel);
                                Count::Exact(self.tokenizer)
                            };
                            writer.add_document(doc_for(&self.f, &entry, created, count))?;
                            self.manifest.broken.remove(&rel);
                            if prev.is_some() {
                                out.updated += 1;
                            } else {
                                out.added += 1;
                            }
                        }
                        Err(err) => {
                            if prev.is_some() && !self.manifest.broken.contains_key(&rel) {
                                out.removed += 1;
                            }
                            self.manifest.broken.insert(rel, err.to_string());
                        }
                    }
                    files.insert(name, file_state(&meta, hash));
                }
            }
            let vanished: Vec<String> = files
                .keys()
                .filter(|n| !seen.contains(n))
                .cloned()
                .collect();
            for name in vanished {
                let rel = format!("{d}/{name}");
                writer.delete_term(Term::from_field_text(self.f.path, &rel));
                if self.manifest.broken.remove(&rel).is_none() {
                    out.removed += 1;
                }
                files.remove(&name);
            }
            lists.push((d.clone(), files));
        }
        writer.commit()?;
        drop(writer);
        for (d, files) in &lists {
            self.save_dir_files(d, files)?;
        }
        self.reader.reload()?;
        self.manifest.dirs = current;
        self.manifest.head_tree = head_tree;
        self.manifest.entries = self.reader.searcher().num_docs();
        self.save_manifest()
    }

    /// When no file under `dirs` differs from what is indexed, their file
    /// lists with fresh stat data (racy flags recomputed); `None` at the first
    /// real difference.
    fn unchanged(&self, dirs: &[String]) -> Option<Vec<(String, BTreeMap<String, FileState>)>> {
        let mut out = Vec::with_capacity(dirs.len());
        for d in dirs {
            let old = self.load_dir_files(d);
            let mut fresh = BTreeMap::new();
            let abs = entry::absolute(&self.work_tree, d);
            let rd = std::fs::read_dir(&abs).ok()?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !entry::is_entry_file_name(&name) {
                    continue;
                }
                let meta = e.metadata().ok()?;
                if !meta.is_file() {
                    continue;
                }
                let prev = old.get(&name)?;
                let now = file_state(&meta, prev.hash.clone());
                let same_stat = !prev.racy
                    && prev.mtime_ns == now.mtime_ns
                    && prev.size == now.size
                    && prev.ino == now.ino;
                if !same_stat {
                    let bytes = std::fs::read(e.path()).ok()?;
                    if content_hash(&bytes) != prev.hash {
                        return None;
                    }
                }
                fresh.insert(name, now);
            }
            if fresh.len() != old.len() {
                return None;
            }
            out.push((d.clone(), fresh));
        }
        Some(out)
    }

    /// The index writer, waiting up to 5 s for another process to finish.
    fn take_writer(&self, wait: Duration) -> Result<Option<IndexWriter>, IndexError> {
        let deadline = Instant::now() + wait;
        loop {
            match self.index.writer::<TantivyDocument>(WRITER_HEAP) {
                Ok(w) => return Ok(Some(w)),
                Err(tantivy::TantivyError::LockFailure(..)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(tantivy::TantivyError::LockFailure(..)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Number of entries indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token counts of the packet's fixed parts ([`render::FIXED`]).
    pub fn fixed_tokens(&self) -> &[u32] {
        &self.manifest.fixed_tokens
    }

    /// The analyzed terms of `text` (the same analysis as the index), each
    /// once, at most [`MAX_QUERY_TERMS`].
    fn query_terms(&self, text: &str) -> Vec<String> {
        let Ok(mut analyzer) = self.index.tokenizer_for_field(self.f.body) else {
            return Vec::new();
        };
        let mut terms: Vec<String> = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let t = stream.token().text.clone();
            if !terms.contains(&t) {
                terms.push(t);
            }
            if terms.len() >= MAX_QUERY_TERMS {
                break;
            }
        }
        terms
    }

    /// The query for weighted terms: each in the body and in tags (×0.5),
    /// times its weight, any of them matching.
    fn terms_query(&self, terms: &[(String, f32)]) -> Option<Box<dyn Query>> {
        if terms.is_empty() {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (t, w) in terms {
            for (field, boost) in [(self.f.tags, TAGS_WEIGHT), (self.f.body, 1.0)] {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                ));
                clauses.push((Occur::Should, Box::new(BoostQuery::new(q, boost * w))));
            }
        }
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    /// Pseudo-relevance feedback: the terms that best characterise the top
    /// [`FEEDBACK_DOCS`] hits of the first pass (frequency in them, weighted
    /// by their score, times idf), not in the query and found in at least two
    /// entries, each weighted at most [`FEEDBACK_WEIGHT`].
    fn feedback_terms(
        &self,
        searcher: &tantivy::Searcher,
        query_terms: &[String],
        top: &[(f32, tantivy::DocAddress)],
    ) -> Result<Vec<(String, f32)>, IndexError> {
        let Some(best) = top.first().map(|t| t.0).filter(|s| *s > 0.0) else {
            return Ok(Vec::new());
        };
        let Ok(mut analyzer) = self.index.tokenizer_for_field(self.f.body) else {
            return Ok(Vec::new());
        };
        let mut weight: HashMap<String, f64> = HashMap::new();
        for (score, addr) in top.iter().take(FEEDBACK_DOCS) {
            let doc: TantivyDocument = searcher.doc(*addr)?;
            let text = format!(
                "{}\n{}",
                self.text(&doc, self.f.title),
                self.text(&doc, self.f.body)
            );
            let mut tf: HashMap<String, u32> = HashMap::new();
            let mut len = 0u32;
            let mut stream = analyzer.token_stream(&text);
            while stream.advance() {
                len += 1;
                *tf.entry(stream.token().text.clone()).or_default() += 1;
            }
            let p_doc = f64::from(*score / best);
            for (t, n) in tf {
                if !query_terms.contains(&t) {
                    *weight.entry(t).or_default() += p_doc * f64::from(n) / f64::from(len.max(1));
                }
            }
        }
        let docs = searcher.num_docs().max(1) as f64;
        let mut scored: Vec<(String, f64)> = Vec::with_capacity(weight.len());
        for (t, w) in weight {
            let df = searcher.doc_freq(&Term::from_field_text(self.f.body, &t))? as f64;
            if df < 2.0 {
                continue;
            }
            let idf = (1.0 + (docs - df + 0.5) / (df + 0.5)).ln();
            scored.push((t, w * idf));
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(FEEDBACK_TERMS);
        let top_w = scored.first().map_or(1.0, |t| t.1).max(f64::MIN_POSITIVE);
        Ok(scored
            .into_iter()
            .map(|(t, w)| (t, (FEEDBACK_WEIGHT * w / top_w) as f32))
            .collect())
    }

    /// Ranked entries for `text`: BM25 candidates (at most `candidates`),
    /// re-scored with freshness, utility and maturity. `utility` maps entry ids
    /// to their utility (missing: 0.5).
    pub fn search(
        &self,
        text: &str,
        filter: &SearchFilter,
        candidates: usize,
        utility: &dyn Fn(&[&str]) -> HashMap<String, f64>,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_hybrid(text, filter, candidates, utility, None)
    }

    /// [`KnowledgeIndex::search`], fused with the entries whose stored
    /// vectors are nearest the query's (`semantic`: the vectors and the
    /// query's vector) by normalised score ([`crate::vectors::fuse`]):
    /// relevance is then in [0, 2] (2 for first in both lists).
    pub fn search_hybrid(
        &self,
        text: &str,
        filter: &SearchFilter,
        candidates: usize,
        utility: &dyn Fn(&[&str]) -> HashMap<String, f64>,
        semantic: Option<(&Vectors, &[f32])>,
    ) -> Result<Vec<Hit>, IndexError> {
        let terms = self.query_terms(text);
        let weighted: Vec<(String, f32)> = terms.iter().map(|t| (t.clone(), 1.0)).collect();
        let searcher = self.reader.searcher();
        let mut top = self.bm25(&searcher, &weighted, filter, candidates)?;
        if self.expansion && !top.is_empty() {
            // The expanded query re-scores the first pass's candidates only
            // (it could not add others: an entry needs a word of the query).
            let more = self.feedback_terms(&searcher, &terms, &top)?;
            if !more.is_empty() {
                self.add_term_scores(&searcher, &more, &mut top)?;
                top.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            }
        }
        let mut raw = Vec::with_capacity(top.len());
        for (score, addr) in &top {
            let doc: TantivyDocument = searcher.doc(*addr)?;
            raw.push((f64::from(*score), doc));
        }
        let now = agentops_core::time::now_micros();
        if let Some((vectors, q)) = semantic {
            raw = self.fuse(&searcher, raw, vectors, q, filter, candidates)?;
        }
        let ids: Vec<String> = raw.iter().map(|(_, d)| self.text(d, self.f.id)).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let util = utility(&id_refs);
        let mut hits = Vec::with_capacity(raw.len());
        for ((bm25, doc), id) in raw.into_iter().zip(ids) {
            let Some(entry) = self.entry_from(&doc) else {
                continue;
            };
            let created = doc
                .get_first(self.f.created)
                .and_then(|v| v.as_i64())
                .unwrap_or(now);
            let u = util.get(&id).copied();
            hits.push(self.hit(&doc, entry, bm25, now - created, u));
        }
        sort_hits(&mut hits);
        Ok(hits)
    }

    /// The lexical candidates `lexical` (BM25, best first) and the nearest
    /// vectors, fused by their normalised scores ([`crate::vectors::fuse`]):
    /// each document once, relevance in [0, 2].
    fn fuse(
        &self,
        searcher: &tantivy::Searcher,
        lexical: Vec<(f64, TantivyDocument)>,
        vectors: &Vectors,
        q: &[f32],
        filter: &SearchFilter,
        candidates: usize,
    ) -> Result<Vec<(f64, TantivyDocument)>, IndexError> {
        let mut docs: HashMap<String, TantivyDocument> = HashMap::new();
        let mut lex = Vec::with_capacity(lexical.len());
        for (score, d) in lexical {
            let id = self.text(&d, self.f.id);
            lex.push((id.clone(), score));
            docs.insert(id, d);
        }
        let mut near = Vec::new();
        for (id, sim) in vectors.nearest(q, candidates.max(1)) {
            if !docs.contains_key(id) {
                let Some(d) = self.doc_by_id(searcher, id)? else {
                    continue;
                };
                if !self.passes(&d, filter) {
                    continue;
                }
                docs.insert(id.to_owned(), d);
            }
            near.push((id.to_owned(), f64::from(sim)));
        }
        // Lexical candidates beyond the nearest still have a similarity.
        let floor = near.last().map_or(0.0, |n| n.1);
        let extra: Vec<(String, f64)> = lex
            .iter()
            .filter(|(id, _)| !near.iter().any(|n| &n.0 == id))
            .filter_map(|(id, _)| {
                vectors
                    .similarity(id, q)
                    .map(|s| (id.clone(), f64::from(s).min(floor)))
            })
            .collect();
        near.extend(extra);
        Ok(crate::vectors::fuse(&lex, &near)
            .into_iter()
            .filter_map(|(id, s)| docs.remove(&id).map(|d| (s, d)))
            .collect())
    }

    fn doc_by_id(
        &self,
        searcher: &tantivy::Searcher,
        id: &str,
    ) -> Result<Option<TantivyDocument>, IndexError> {
        let q = TermQuery::new(
            Term::from_field_text(self.f.id, id),
            IndexRecordOption::Basic,
        );
        match searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .first()
        {
            Some((_, addr)) => Ok(Some(searcher.doc(*addr)?)),
            None => Ok(None),
        }
    }

    /// Whether a document is of the filter's kind and has all its tags.
    fn passes(&self, d: &TantivyDocument, filter: &SearchFilter) -> bool {
        let kind_ok = filter
            .kind
            .is_none_or(|k| self.text(d, self.f.kind) == k.as_str());
        let tags: Vec<&str> = d.get_all(self.f.tags).filter_map(|v| v.as_str()).collect();
        kind_ok && filter.tags.iter().all(|t| tags.contains(&t.as_str()))
    }

    /// Identifies the index's contents: it changes with every commit.
    pub fn generation(&self) -> String {
        let searcher = self.reader.searcher();
        let reader_generation = searcher.generation().generation_id();
        if let Ok(cached) = self.generation.lock()
            && let Some((g, s)) = cached.as_ref()
            && *g == reader_generation
        {
            return s.clone();
        }
        let stamp = self.index.load_metas().map(|m| m.opstamp).unwrap_or(0);
        let s = format!("{FORMAT}-{stamp}-{}", searcher.num_docs());
        if let Ok(mut cached) = self.generation.lock() {
            *cached = Some((reader_generation, s.clone()));
        }
        s
    }

    /// Every entry's (id, hash, text to embed): title and body.
    pub fn embedding_texts(&self) -> Result<Vec<(String, String, String)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(self.len() as usize);
        for seg in searcher.segment_readers() {
            let store = seg.get_store_reader(64).map_err(io(&self.dir))?;
            for doc in store.iter::<TantivyDocument>(seg.alive_bitset()) {
                let d = doc?;
                let text = format!(
                    "{}\n\n{}",
                    self.text(&d, self.f.title),
                    self.text(&d, self.f.body)
                );
                out.push((
                    self.text(&d, self.f.id),
                    content_hash(text.as_bytes()),
                    text,
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The stored vectors of `embedder`'s model, brought up to date with the
    /// index (entries embedded until `deadline`; saved beside the index when
    /// it is on disk and writable). Cheap when nothing changed: the
    /// generation is compared first.
    pub fn vectors(
        &self,
        embedder: &dyn Embedder,
        deadline: Option<Instant>,
    ) -> Result<(Vectors, VectorSync), IndexError> {
        let on_disk = !self.dir.as_os_str().is_empty();
        let path = Vectors::path(&self.dir);
        let mut v = if on_disk {
            Vectors::load(&path, &embedder.id())
        } else {
            Vectors::empty(&embedder.id())
        };
        let generation = self.generation();
        if !v.generation.is_empty() && v.generation == generation {
            let entries = v.len();
            return Ok((
                v,
                VectorSync {
                    entries,
                    ..VectorSync::default()
                },
            ));
        }
        let wanted = self.embedding_texts()?;
        let r = v.sync(&wanted, &generation, embedder, deadline);
        if on_disk && (r.embedded > 0 || r.removed > 0 || r.missing == 0) && writable(&self.dir) {
            v.save(&path).map_err(io(&path))?;
        }
        Ok((v, r))
    }

    /// BM25 top `candidates` for weighted terms, within `filter`: entries
    /// with at least one of `terms`.
    fn bm25(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[(String, f32)],
        filter: &SearchFilter,
        candidates: usize,
    ) -> Result<Vec<(f32, tantivy::DocAddress)>, IndexError> {
        let Some(text_q) = self.terms_query(terms) else {
            return Ok(Vec::new());
        };
        let collector = TopDocs::with_limit(candidates.max(1)).order_by_score();
        if filter.kind.is_none() && filter.tags.is_empty() {
            // The union of term queries on its own: tantivy then prunes
            // with block-max WAND instead of scoring every entry with a
            // word of the query (wrapped in another boolean query, it
            // cannot).
            return Ok(searcher.search(text_q.as_ref(), &collector)?);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_q)];
        if let Some(k) = filter.kind {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.kind, k.as_str()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        for t in &filter.tags {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.tag, t),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        Ok(searcher.search(&BooleanQuery::new(clauses), &collector)?)
    }

    /// Adds to each candidate's score what the weighted `terms` score for
    /// it, as clauses of the same query would ([`Self::terms_query`]): each
    /// term's BM25 in the tags (×0.5) and the body, times its weight. A
    /// lookup per candidate in each term's postings, where a query over the
    /// candidates would score every entry with a word of the terms.
    fn add_term_scores(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[(String, f32)],
        top: &mut [(f32, tantivy::DocAddress)],
    ) -> Result<(), IndexError> {
        // Candidates by segment, in document order (postings only seek
        // forward).
        let mut order: Vec<usize> = (0..top.len()).collect();
        order.sort_by_key(|&i| top[i].1);
        let scoring = tantivy::query::EnableScoring::enabled_from_searcher(searcher);
        for (t, w) in terms {
            for (field, boost) in [(self.f.tags, TAGS_WEIGHT), (self.f.body, 1.0)] {
                let q = TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                );
                let weight = q.weight(scoring)?;
                let mut segment = None;
                let mut scorer: Option<Box<dyn tantivy::query::Scorer>> = None;
                for &i in &order {
                    let addr = top[i].1;
                    if segment != Some(addr.segment_ord) {
                        segment = Some(addr.segment_ord);
                        let reader = searcher.segment_reader(addr.segment_ord);
                        scorer = Some(weight.scorer(reader, boost * w)?);
                    }
                    let Some(sc) = scorer.as_mut() else { continue };
                    if tantivy::DocSet::doc(sc.as_ref()) <= addr.doc_id
                        && tantivy::DocSet::seek(sc.as_mut(), addr.doc_id) == addr.doc_id
                    {
                        top[i].0 += sc.score();
                    }
                }
            }
        }
        Ok(())
    }

    /// A hit for `doc`: its score (relevance `relevance`, age `age_us`,
    /// utility `u` or the start value) and its token counts.
    fn hit(
        &self,
        doc: &TantivyDocument,
        entry: Entry,
        relevance: f64,
        age_us: i64,
        u: Option<f64>,
    ) -> Hit {
        let u = u.unwrap_or(agentops_store::Utility::START);
        let age_days = age_us as f64 / 86_400e6;
        Hit {
            score: rank::score(relevance, age_days, self.half_life_days, u, entry.maturity),
            snippet: String::new(),
            tokens_full: self.num(doc, self.f.tok_full),
            tokens_summary: self.num(doc, self.f.tok_summary),
            tokens_title: self.num(doc, self.f.tok_title),
            summary: self.text(doc, self.f.summary),
            entry,
        }
    }

    /// The best entries without a query, for a session that has nothing to
    /// search with (or found too little): the `freshest` newest entries that
    /// are not handoffs or deprecated, ranked by freshness, utility and
    /// maturity (relevance 1 for all).
    pub fn briefing(
        &self,
        freshest: usize,
        utility: &dyn Fn(&[&str]) -> HashMap<String, f64>,
    ) -> Result<Vec<Hit>, IndexError> {
        let searcher = self.reader.searcher();
        let skip = |field: Field, value: &str| -> (Occur, Box<dyn Query>) {
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, value),
                    IndexRecordOption::Basic,
                )),
            )
        };
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
            skip(self.f.kind, EntryType::Handoff.as_str()),
            skip(
                self.f.maturity,
                agentops_knowledge::entry::Maturity::Deprecated.as_str(),
            ),
        ]);
        let top: Vec<(Option<i64>, tantivy::DocAddress)> = searcher.search(
            &query,
            &TopDocs::with_limit(freshest.max(1))
                .order_by_fast_field::<i64>("created", tantivy::Order::Desc),
        )?;
        let now = agentops_core::time::now_micros();
        let mut docs = Vec::with_capacity(top.len());
        for (created, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            docs.push((created.unwrap_or(now), doc));
        }
        let ids: Vec<String> = docs.iter().map(|(_, d)| self.text(d, self.f.id)).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let util = utility(&id_refs);
        let mut hits = Vec::with_capacity(docs.len());
        for ((created, doc), id) in docs.into_iter().zip(ids) {
            let Some(entry) = self.entry_from(&doc) else {
                continue;
            };
            let u = util.get(&id).copied();
            hits.push(self.hit(&doc, entry, 1.0, now - created, u));
        }
        sort_hits(&mut hits);
        Ok(hits)
    }

    /// The entries with these ids, as indexed (ids not in the index are
    /// absent): a lookup by term, never a scan of `.agents/`.
    pub fn entries_by_id(&self, ids: &[&str]) -> Result<HashMap<String, Entry>, IndexError> {
        let searcher = self.reader.searcher();
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self
                .doc_by_id(&searcher, id)?
                .and_then(|d| self.entry_from(&d))
            {
                out.insert((*id).to_owned(), e);
            }
        }
        Ok(out)
    }

    /// Fills in the snippets of `hits` for `text`: about 160 characters of
    /// the body around the first match, matches in `**bold**`. A plain scan
    /// for the query's words (matched on their first letters, so `retries`
    /// finds `retry`); re-running the stemming analyzer over every shown body
    /// cost more than the search itself.
    pub fn add_snippets(&self, text: &str, hits: &mut [Hit]) -> Result<(), IndexError> {
        let words = snippet_words(text);
        for h in hits {
            h.snippet = snippet(&h.entry.body, &words);
        }
        Ok(())
    }

    fn text(&self, doc: &TantivyDocument, f: Field) -> String {
        doc.get_first(f)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }

    fn num(&self, doc: &TantivyDocument, f: Field) -> u32 {
        doc.get_first(f)
            .and_then(|v| v.as_u64())
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn entry_from(&self, doc: &TantivyDocument) -> Option<Entry> {
        let id = agentops_core::EntryId::parse(&self.text(doc, self.f.id)).ok()?;
        let kind = EntryType::parse(&self.text(doc, self.f.kind)).ok()?;
        let maturity = Maturity::parse(&self.text(doc, self.f.maturity)).ok()?;
        let tags: Vec<String> = doc
            .get_all(self.f.tags)
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        Some(Entry {
            id,
            kind,
            title: self.text(doc, self.f.title),
            tags,
            created: doc.get_first(self.f.created).and_then(|v| v.as_i64()),
            source: Provenance::default(),
            maturity,
            supersedes: Vec::new(),
            body: self.text(doc, self.f.body),
            path: self.text(doc, self.f.path),
            has_front_matter: true,
        })
    }
}

/// How much of an entry's body is indexed (and so can reach a packet).
const INDEX_BODY_MAX: usize = 64 * 1024;

fn doc_for(f: &Fields, e: &Entry, created: i64, tokenizer: Count) -> TantivyDocument {
    // Nothing unredacted reaches the index, even from a file a person wrote.
    let r = agentops_core::redact::builtin();
    // A huge entry is indexed by its first INDEX_BODY_MAX bytes: one 20 MB
    // file must not make every search (and every packet) slow.
    let body: std::borrow::Cow<'_, str> = if e.body.len() > INDEX_BODY_MAX {
        let mut cut = INDEX_BODY_MAX;
        while !e.body.is_char_boundary(cut) {
            cut -= 1;
        }
        std::borrow::Cow::Owned(format!(
            "{}\n\n[… the rest of this entry ({} bytes in all) is not indexed: `agentops knowledge show {}`]",
            &e.body[..cut],
            e.body.len(),
            e.id
        ))
    } else {
        std::borrow::Cow::Borrowed(e.body.as_str())
    };
    let redacted;
    let e = match (r.redact(&e.title), r.redact(&body)) {
        (std::borrow::Cow::Borrowed(_), std::borrow::Cow::Borrowed(_))
            if matches!(body, std::borrow::Cow::Borrowed(_)) =>
        {
            e
        }
        (title, b) => {
            redacted = Entry {
                title: title.into_owned(),
                body: b.into_owned(),
                ..e.clone()
            };
            &redacted
        }
    };
    let mut d = TantivyDocument::default();
    d.add_text(f.path, &e.path);
    d.add_text(f.id, e.id.as_str());
    d.add_text(f.kind, e.kind.as_str());
    d.add_text(f.title, &e.title);
    for t in &e.tags {
        d.add_text(f.tags, t);
        d.add_text(f.tag, t);
    }
    d.add_text(f.body, &e.body);
    // The title is searched through the body: add it when the body lacks it.
    if !contains_ignoring_case(&e.body, &e.title) {
        d.add_text(f.body, &e.title);
    }
    d.add_text(f.maturity, e.maturity.as_str());
    d.add_i64(f.created, created);
    d.add_u64(f.tok_full, u64::from(tokenizer.count(&render::full(e))));
    d.add_u64(
        f.tok_summary,
        u64::from(tokenizer.count(&render::summary_line(e))),
    );
    d.add_u64(
        f.tok_title,
        u64::from(tokenizer.count(&render::title_line(e))),
    );
    d.add_text(f.summary, render::summary(e));
    d
}

/// Whether `needle` occurs in `hay`, ASCII case ignored.
fn contains_ignoring_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Whether files can be created in `dir` (or where it would be created):
/// false on a read-only file system or directory.
fn writable(dir: &Path) -> bool {
    let mut d = dir;
    while !d.exists() {
        match d.parent() {
            Some(p) => d = p,
            None => return true,
        }
    }
    let probe = d.join(format!(".agentops-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
        ),
    }
}

/// The lowercase prefixes a snippet matches: each query word of 3+ letters
/// without its last three letters (at least four kept): a cheap stand-in for
/// its stem, so `retries` matches `retry` and `networking` matches `network`.
fn snippet_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        if w.chars().count() < 3 {
            continue;
        }
        let p = crate::relevance::prefix(&w.to_lowercase());
        if !out.contains(&p) {
            out.push(p);
        }
        if out.len() >= 16 {
            break;
        }
    }
    out
}

/// Best first; ties by id, then path, so the order is stable.
fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.score
            .total
            .partial_cmp(&a.score.total)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.entry.id.cmp(&b.entry.id))
            .then_with(|| a.entry.path.cmp(&b.entry.path))
    });
}

/// The byte ranges of the words (runs of letters and digits) of `text`.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start: Option<usize> = None;
    text.char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .filter_map(move |(i, c)| {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
                None
            } else {
                start.take().map(|s0| (s0, i))
            }
        })
}

/// Whether `word`, lowercased, starts with one of `prefixes` (lowercase).
/// Without an allocation for the usual ASCII word: a snippet looks at every
/// word of a body up to its first match.
fn word_matches(word: &str, prefixes: &[String]) -> bool {
    if word.is_ascii() {
        let w = word.as_bytes();
        return prefixes
            .iter()
            .any(|p| w.len() >= p.len() && w[..p.len()].eq_ignore_ascii_case(p.as_bytes()));
    }
    let w = word.to_lowercase();
    prefixes.iter().any(|p| w.starts_with(p.as_str()))
}

/// About 160 characters of `body` around its first word starting with one of
/// `words`, on one line, matches in `**bold**`.
fn snippet(body: &str, words: &[String]) -> String {
    // Found in the body as it is (the words are the same with its
    // whitespace collapsed): the first matching word and the six before it
    // (or the first words).
    let mut recent: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut from = None;
    for (a, b) in word_spans(body) {
        if recent.len() == 7 {
            recent.pop_front();
        }
        recent.push_back(a);
        if word_matches(&body[a..b], words) {
            from = recent.front().copied();
            break;
        }
    }
    let from = from.unwrap_or_else(|| word_spans(body).next().map_or(0, |s| s.0));
    // Only the window is put on one line: its words up to 160 bytes on, and
    // enough after them to know whether a word is cut off (a letter or digit
    // at byte 160 or later).
    let mut flat = String::new();
    let mut cut = false;
    for token in body[from..].split_whitespace() {
        if !flat.is_empty() {
            flat.push(' ');
        }
        let start = flat.len();
        flat.push_str(token);
        if token
            .char_indices()
            .any(|(i, c)| start + i >= 160 && c.is_alphanumeric())
        {
            cut = true;
            break;
        }
    }
    let mut to = 0;
    let mut out = String::new();
    let mut last = 0;
    for (a, b) in word_spans(&flat) {
        if b > 160 {
            break;
        }
        if word_matches(&flat[a..b], words) {
            out.push_str(&flat[last..a]);
            out.push_str("**");
            out.push_str(&flat[a..b]);
            out.push_str("**");
            last = b;
        }
        to = b;
    }
    if !cut {
        // The window reaches the end: keep the closing punctuation.
        to = flat.len();
    }
    out.push_str(&flat[last..to.max(last)]);
    let mut s = String::new();
    if !body[..from].trim_start().is_empty() {
        s.push('…');
    }
    s.push_str(out.trim());
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn snippets_bold_matches_near_the_first_one() {
        let w = snippet_words("Retries for NETWORK tests");
        assert_eq!(w, vec!["retr", "for", "netw", "test"]);
        let body = "Intro words here. Then many more words before the point. We retried the network call; network tests pass.";
        assert_eq!(
            snippet(body, &snippet_words("retries network")),
            "…more words before the point. We **retried** the **network** call; **network** tests pass."
        );
        assert_eq!(snippet("", &w), "");
        assert_eq!(
            snippet("héllo wörld ünïcode", &snippet_words("wörld")),
            "héllo **wörld** ünïcode"
        );
        let long = "x ".repeat(500);
        assert!(snippet(&long, &w).chars().count() < 200);
    }

    fn learning(id: &str, title: &str) -> String {
        format!(
            "---\nid: {id}\ntype: learning\ntitle: {title}\ncreated: 2026-01-01T00:00:00Z\n---\n\n# {title}\n\nBody of {title}.\n"
        )
    }

    #[test]
    fn a_write_another_process_indexed_while_this_one_looked_is_seen() {
        // A long-lived reader (the MCP server) and a memory write's
        // after-write catch-up (another index over the same files): the
        // reader's look at the folders reads the file lists the other saved
        // after its commit, and must then see what they list.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(git.success());
        let folder = root.join(".agents/learnings");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("learning-20260101-first.md"),
            learning("learning-20260101-first", "First lesson"),
        )
        .unwrap();
        let layout = RepoLayout::discover(root).unwrap();
        let config = Config::default();
        let (mut warm, _) =
            KnowledgeIndex::open_waiting(&layout, &config, false, false, Duration::ZERO).unwrap();
        assert_eq!(warm.len(), 1);
        std::fs::write(
            folder.join("learning-20260101-second.md"),
            learning("learning-20260101-second", "Zanzibar rotation"),
        )
        .unwrap();
        let (writer, _) =
            KnowledgeIndex::open_waiting(&layout, &config, false, false, Duration::ZERO).unwrap();
        assert_eq!(writer.len(), 2);
        // The reader read the manifest before the writer saved its own, and
        // looks at the folders now.
        new_look();
        warm.refresh(&layout, false, &mut Refresh::default(), Duration::ZERO)
            .unwrap();
        warm.catch_up(&layout).unwrap();
        assert_eq!(warm.len(), 2);
        let hits = warm
            .search("zanzibar", &SearchFilter::default(), 10, &|_| {
                HashMap::new()
            })
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].entry.id.as_str(), "learning-20260101-second");
    }

    /// The snippet as first written: the whole body put on one line, every
    /// word of it lowercased and matched.
    fn snippet_whole_body(body: &str, words: &[String]) -> String {
        let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut spans: Vec<(usize, usize, bool)> = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in flat
            .char_indices()
            .chain(std::iter::once((flat.len(), ' ')))
        {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
            } else if let Some(s0) = start.take() {
                let w = flat[s0..i].to_lowercase();
                let hit = words.iter().any(|p| w.starts_with(p.as_str()));
                spans.push((s0, i, hit));
            }
        }
        let first = spans.iter().position(|s| s.2).unwrap_or(0);
        let from = spans.get(first.saturating_sub(6)).map_or(0, |s| s.0);
        let (mut to, mut last, mut cut) = (from, from, false);
        let mut out = String::new();
        for &(a, b, hit) in spans.iter().skip(first.saturating_sub(6)) {
            if b - from > 160 {
                cut = true;
                break;
            }
            if hit {
                out.push_str(&flat[last..a]);
                out.push_str("**");
                out.push_str(&flat[a..b]);
                out.push_str("**");
                last = b;
            }
            to = b;
        }
        if !cut {
            to = flat.len();
        }
        out.push_str(&flat[last..to.max(last)]);
        let mut s = String::new();
        if from > 0 {
            s.push('…');
        }
        s.push_str(out.trim());
        if to < flat.len() {
            s.push('…');
        }
        s
    }

    #[test]
    fn a_snippet_is_what_the_whole_body_on_one_line_gives() {
        // Random bodies of words, punctuation, runs of whitespace and
        // non-ASCII letters (the window found in the body as it is must be
        // the one found in the body on one line).
        let parts = [
            "retry",
            "Retried",
            "network",
            "NETWORK",
            "the",
            "a",
            "wörld",
            "ΣΊΣΥΦΟΣ",
            "--",
            "...",
            "(x)",
            "==========",
            "\n\n",
            "  ",
            "\t",
            " ",
            "é",
            "42",
            "net-work",
            "x",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let queries = ["retries network", "wörld", "σίσυφος", "zzz", "x 42", ""];
        for _ in 0..3_000 {
            let n = (next() % 120) as usize;
            let mut body = String::new();
            for _ in 0..n {
                body.push_str(parts[(next() % parts.len() as u64) as usize]);
                if next() % 3 > 0 {
                    body.push(' ');
                }
            }
            let q = queries[(next() % queries.len() as u64) as usize];
            let w = snippet_words(q);
            assert_eq!(
                snippet(&body, &w),
                snippet_whole_body(&body, &w),
                "body {body:?}, query {q:?}"
            );
        }
    }
}
