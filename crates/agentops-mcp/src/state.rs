//! What a running server keeps: the project, the search index held open
//! (and its vectors) so a search costs a search, not a process start, and
//! the clients to tell when memory changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};

use agentops_api::knowledge as api;
use agentops_api::semantic::Semantic;
use agentops_api::{ApiError, Project};
use agentops_context::KnowledgeIndex;
use rmcp::RoleServer;
use rmcp::service::Peer;

/// The index and, when `context.embeddings` is set, its vectors.
#[derive(Default)]
struct Warm {
    index: Option<KnowledgeIndex>,
    /// The index generation the vectors were brought up to date for.
    semantic: Option<(String, Option<Semantic>)>,
}

/// A connected client that can be told about changes.
struct Client {
    peer: Peer<RoleServer>,
    /// Resource URIs it subscribed to.
    subscribed: BTreeSet<String>,
}

/// Work for the journal writer thread.
enum Job {
    /// A tool call's span.
    Span(agentops_core::NewEvent),
    /// An entry fetched: the `used` feedback signal.
    Used {
        id: String,
        run: agentops_core::RunId,
    },
    /// Answer once everything before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// How long the journal writer lets spans queue before writing them.
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// The journal writes that need not delay an answer (spans, `used`
/// signals), on a thread of their own: written within [`BATCH_WAIT`] of
/// coming, in one transaction for whatever queued up meanwhile.
struct Writer {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Writer {
    fn start(project: Project) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let _ = std::thread::Builder::new()
            .name("agentops-mcp-journal".into())
            .spawn(move || {
                let mut journal: Option<agentops_store::Journal> = None;
                while let Ok(first) = rx.recv() {
                    // Let a burst of calls queue up: one transaction for all
                    // of them costs less than one each (a flush waits too).
                    std::thread::sleep(BATCH_WAIT);
                    let mut jobs = vec![first];
                    while jobs.len() < 512 {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    if journal.is_none() {
                        journal = project.journal().ok();
                    }
                    let Some(j) = journal.as_ref() else {
                        warn_stderr("the journal cannot be opened: tool calls are not recorded");
                        for job in jobs {
                            if let Job::Flush(done) = job {
                                let _ = done.send(());
                            }
                        }
                        continue;
                    };
                    let mut spans = Vec::new();
                    let mut failed = false;
                    for job in jobs {
                        match job {
                            Job::Span(e) => spans.push(e),
                            Job::Used { id, run } => {
                                failed |= agentops_knowledge::feedback::record(
                                    j,
                                    &id,
                                    agentops_knowledge::feedback::Signal::Used,
                                    &run,
                                )
                                .is_err();
                            }
                            Job::Flush(done) => {
                                if !spans.is_empty() {
                                    failed |= j
                                        .append_batch(
                                            std::mem::take(&mut spans),
                                            agentops_store::Durability::Relaxed,
                                        )
                                        .is_err();
                                }
                                let _ = done.send(());
                            }
                        }
                    }
                    if !spans.is_empty() {
                        failed |= j
                            .append_batch(spans, agentops_store::Durability::Relaxed)
                            .is_err();
                    }
                    if failed {
                        warn_stderr("a tool call could not be recorded in the journal");
                        journal = None;
                    }
                }
            });
        Self { tx }
    }
}

pub struct State {
    project: Project,
    writer: Writer,
    knowledge: std::sync::OnceLock<agentops_knowledge::Knowledge>,
    warm: RwLock<Warm>,
    /// Memory writes through this server, one at a time (other processes
    /// are kept apart by the knowledge crate's locks).
    writing: Mutex<()>,
    clients: Mutex<HashMap<u64, Client>>,
    /// What the entry list looked like at the last notification: entries,
    /// and the text of each subscribed resource.
    seen: Mutex<Seen>,
    next_client: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Seen {
    generation: String,
    resources: HashMap<String, u64>,
}

/// Changes to tell the clients about.
pub struct Changes {
    pub list_changed: bool,
    /// (client, uri) pairs whose resource changed.
    pub updated: Vec<(Peer<RoleServer>, String)>,
    pub peers: Vec<Peer<RoleServer>>,
}

thread_local! {
    /// The journal of the thread a tool runs on (the blocking pool's threads
    /// live on), opened once: an open costs more than a search.
    static JOURNAL: std::cell::RefCell<Option<agentops_store::Journal>> =
        const { std::cell::RefCell::new(None) };
}

fn warn_stderr(w: &str) {
    // stdout is the protocol on stdio: warnings go to stderr, which MCP
    // clients keep as the server's log.
    let mut e = std::io::stderr().lock();
    let _ = std::io::Write::write_all(&mut e, format!("agentops mcp: warning: {w}\n").as_bytes());
}

impl State {
    pub fn new(project: Project) -> Self {
        Self {
            writer: Writer::start(project.clone()),
            project,
            knowledge: std::sync::OnceLock::new(),
            warm: RwLock::new(Warm::default()),
            writing: Mutex::new(()),
            clients: Mutex::new(HashMap::new()),
            seen: Mutex::new(Seen::default()),
            next_client: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Records a tool call's span (after the answer is sent).
    pub fn record_span(&self, e: agentops_core::NewEvent) {
        let _ = self.writer.tx.send(Job::Span(e));
    }

    /// Records that an entry was used (fetched).
    pub fn record_used(&self, id: &str, run: agentops_core::RunId) {
        let _ = self.writer.tx.send(Job::Used {
            id: id.to_owned(),
            run,
        });
    }

    /// Waits (at most `limit`) until every span and signal so far is written.
    pub fn flush(&self, limit: std::time::Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.writer.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(limit);
        }
    }

    /// The knowledge of the project (its redactor built once).
    pub fn knowledge(&self) -> Result<&agentops_knowledge::Knowledge, ApiError> {
        if let Some(k) = self.knowledge.get() {
            return Ok(k);
        }
        let k = self.project.knowledge()?;
        Ok(self.knowledge.get_or_init(|| k))
    }

    /// Brings the held index up to date (opening it the first time, or
    /// again when another version rebuilt it). Returns the generation.
    pub fn catch_up(&self) -> Result<String, ApiError> {
        let mut w = self
            .warm
            .write()
            .map_err(|_| ApiError::failed("the search index lock was poisoned"))?;
        let current = match w.index.as_mut() {
            Some(idx) => idx.catch_up(&self.project.layout).is_ok(),
            None => false,
        };
        if !current {
            let (idx, refresh) = api::open_index(&self.project)?;
            for m in api::refresh_warnings(&refresh) {
                warn_stderr(&m);
            }
            w.index = Some(idx);
        }
        let Some(idx) = w.index.as_ref() else {
            return Err(ApiError::failed("the search index could not be opened"));
        };
        let generation = idx.generation();
        let stale = w.semantic.as_ref().is_none_or(|(g, _)| *g != generation);
        if stale && !self.project.config.context.embeddings.is_empty() {
            let sem = api::prepare_semantic(idx, &self.project, &warn_stderr);
            w.semantic = Some((generation.clone(), sem));
        }
        Ok(generation)
    }

    /// Runs `f` with this thread's journal (opened the first time, and again
    /// after an error). The hooks' spool is taken in when it is opened; the
    /// views that must see the latest hook events open their own.
    pub fn with_journal<T>(
        &self,
        f: impl FnOnce(&agentops_store::Journal) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        JOURNAL.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(self.project.journal()?);
            }
            let Some(j) = slot.as_ref() else {
                return Err(ApiError::failed("the journal could not be opened"));
            };
            let r = f(j);
            if r.is_err() {
                *slot = None;
            }
            r
        })
    }

    /// Runs `f` on the current index (and vectors).
    pub fn with_index<T>(
        &self,
        f: impl FnOnce(&KnowledgeIndex, Option<&Semantic>, &dyn Fn(&str)) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.catch_up()?;
        let w = self
            .warm
            .read()
            .map_err(|_| ApiError::failed("the search index lock was poisoned"))?;
        let Some(idx) = w.index.as_ref() else {
            return Err(ApiError::failed("the search index could not be opened"));
        };
        let sem = w.semantic.as_ref().and_then(|(_, s)| s.as_ref());
        f(idx, sem, &warn_stderr)
    }

    /// A memory write through this server, one at a time.
    pub fn write<T>(&self, f: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
        let _g = self
            .writing
            .lock()
            .map_err(|_| ApiError::failed("the memory write lock was poisoned"))?;
        f()
    }

    /// Registers a client for notifications; returns its number.
    pub fn connect(&self, peer: Peer<RoleServer>) -> u64 {
        let n = self
            .next_client
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut c) = self.clients.lock() {
            c.insert(
                n,
                Client {
                    peer,
                    subscribed: BTreeSet::new(),
                },
            );
        }
        n
    }

    /// Subscribes `client` to `uri`, whose text is `now` (`None`: unsubscribes).
    pub fn subscribe(&self, client: u64, uri: &str, now: Option<&str>) {
        if let Ok(mut c) = self.clients.lock()
            && let Some(cl) = c.get_mut(&client)
        {
            match now {
                Some(text) => {
                    cl.subscribed.insert(uri.to_owned());
                    if let Ok(mut seen) = self.seen.lock() {
                        seen.resources.insert(uri.to_owned(), hash(text));
                    }
                }
                None => {
                    cl.subscribed.remove(uri);
                }
            }
        }
    }

    /// What changed since the last look: the entry list (any memory write,
    /// from this server or another process), and each subscribed resource.
    /// `text` renders a resource (None: it is gone).
    pub fn changes(&self, text: &dyn Fn(&str) -> Option<String>) -> Changes {
        let generation = self.catch_up().unwrap_or_default();
        let mut out = Changes {
            list_changed: false,
            updated: Vec::new(),
            peers: Vec::new(),
        };
        let Ok(mut clients) = self.clients.lock() else {
            return out;
        };
        clients.retain(|_, c| !c.peer.is_transport_closed());

        let Ok(mut seen) = self.seen.lock() else {
            return out;
        };
        if seen.generation.is_empty() {
            seen.generation = generation.clone();
        } else if seen.generation != generation {
            seen.generation = generation;
            out.list_changed = true;
        }
        let mut now = HashMap::new();
        for c in clients.values() {
            for uri in &c.subscribed {
                let h = *now
                    .entry(uri.clone())
                    .or_insert_with(|| hash(&text(uri).unwrap_or_default()));
                match seen.resources.get(uri) {
                    Some(old) if *old != h => out.updated.push((c.peer.clone(), uri.clone())),
                    _ => {}
                }
            }
        }
        seen.resources = now;
        out.peers = clients.values().map(|c| c.peer.clone()).collect();
        out
    }
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
