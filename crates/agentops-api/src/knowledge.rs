//! Factors I and II as operations: search, a packet for a task, one entry,
//! a memory write, a feedback signal; and the index kept current after a
//! write.

use agentops_context::packet::{self, Decision, Packet, PacketRequest};
use agentops_context::{Hit, KnowledgeIndex, Refresh, SearchFilter};
use agentops_knowledge::{EntryType, NewEntry, Provenance, WriteOutcome};
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Durability, Journal};
use serde_json::{Value, json};

use crate::semantic::{self, Semantic};
use crate::{ApiError, Project, utility_of};

/// Candidates taken from BM25 before re-ranking.
pub const CANDIDATES: usize = 50;

/// A search filter from a type name and tags; `field` names the option or
/// argument in the error (`--type`, `type`).
pub fn filter(kind: Option<&str>, tags: &[String], field: &str) -> Result<SearchFilter, ApiError> {
    Ok(SearchFilter {
        kind: kind
            .map(EntryType::parse)
            .transpose()
            .map_err(|e| ApiError::usage(format!("{field}: {e}")))?,
        tags: tags.iter().map(|t| t.to_ascii_lowercase()).collect(),
    })
}

/// What opening the index said, as warnings for a person.
pub fn refresh_warnings(r: &Refresh) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = &r.rebuilt {
        out.push(format!(
            "rebuilt the search index ({why}): {}",
            agentops_core::counted(r.entries, "entry", "entries")
        ));
    }
    if r.read_only {
        out.push("the state directory is read-only: searching the index as it is, without bringing it up to date".into());
    }
    if r.stale {
        out.push("another agentops process is updating the search index; these results may miss its latest changes".into());
    }
    for w in &r.warnings {
        out.push(format!("{w} (skipped)"));
    }
    out
}

/// The index of `p`, brought up to date.
pub fn open_index(p: &Project) -> Result<(KnowledgeIndex, Refresh), ApiError> {
    KnowledgeIndex::open(&p.layout, &p.config, false, false).map_err(ApiError::failed)
}

/// The vectors for hybrid search when `context.embeddings` is set (entries
/// lacking one embedded first, for [`semantic::SEARCH_SYNC_BUDGET`] at most).
pub fn prepare_semantic(
    idx: &KnowledgeIndex,
    p: &Project,
    warn: &dyn Fn(&str),
) -> Option<Semantic> {
    Semantic::prepare(
        idx,
        &p.config,
        Some(&p.layout.work_tree),
        Some(semantic::SEARCH_SYNC_BUDGET),
        warn,
    )
}

/// Ranked hits for `query`: lexical, hybrid with `sem`.
pub fn ranked(
    idx: &KnowledgeIndex,
    j: &Journal,
    sem: Option<&Semantic>,
    query: &str,
    f: &SearchFilter,
    candidates: usize,
    warn: &dyn Fn(&str),
) -> Result<Vec<Hit>, ApiError> {
    let utility = utility_of(j, warn);
    semantic::search(idx, sem, query, f, candidates, &utility, warn).map_err(ApiError::failed)
}

/// The best `limit` hits for `query`, with snippets.
pub fn search(
    idx: &KnowledgeIndex,
    j: &Journal,
    sem: Option<&Semantic>,
    query: &str,
    f: &SearchFilter,
    limit: usize,
    warn: &dyn Fn(&str),
) -> Result<Vec<Hit>, ApiError> {
    let hits = ranked(idx, j, sem, query, f, limit.max(CANDIDATES), warn)?;
    let mut hits: Vec<_> = hits.into_iter().take(limit).collect();
    idx.add_snippets(query, &mut hits)
        .map_err(ApiError::failed)?;
    Ok(hits)
}

/// One search hit as `agentops search --json` and the MCP `search` tool
/// give it.
pub fn hit_json(h: &Hit) -> Value {
    json!({
        "id": h.entry.id, "type": h.entry.kind, "title": h.entry.title, "tags": h.entry.tags,
        "maturity": h.entry.maturity, "path": h.entry.path, "score": h.score, "snippet": h.snippet,
    })
}

/// A packet request.
#[derive(Debug, Clone, Default)]
pub struct ContextRequest {
    pub task: String,
    pub filter: SearchFilter,
    /// Tokens; `None`: the 40% rule over `window` and `used`.
    pub budget: Option<u32>,
    pub window: Option<u64>,
    pub used: u64,
    pub source: Provenance,
}

/// A packet for a task within its budget, recorded in the journal
/// (`context.assembled`, with the entries it cited).
pub fn context(
    idx: &KnowledgeIndex,
    j: &Journal,
    sem: Option<&Semantic>,
    p: &Project,
    req: &ContextRequest,
    warn: &dyn Fn(&str),
) -> Result<Packet, ApiError> {
    let window = req.window.unwrap_or(p.config.context.window);
    let budget = req
        .budget
        .unwrap_or_else(|| packet::default_budget(p.config.context.packet_max, window, req.used));
    let hits = ranked(idx, j, sem, &req.task, &req.filter, CANDIDATES, warn)?;
    let pk = packet::assemble(
        &hits,
        idx.fixed_tokens(),
        &PacketRequest {
            budget,
            full_entries: usize::try_from(p.config.context.full_entries).unwrap_or(5),
        },
    );
    let count = |d: Decision| pk.explain.iter().filter(|x| x.decision == d).count();
    j.append(
        new_event(
            req.source.journal_run(),
            body::ContextAssembled {
                task: req.task.clone(),
                budget: u64::from(budget),
                tokens: u64::from(pk.tokens),
                cited: pk.cited.clone(),
                full: Some(count(Decision::Full)),
                summary: Some(count(Decision::Summary)),
                title: Some(count(Decision::Title)),
                dropped: Some(count(Decision::Dropped)),
                agent: req.source.agent.clone(),
                ..body::ContextAssembled::default()
            },
        ),
        Durability::Configured,
    )
    .map_err(ApiError::failed)?;
    Ok(pk)
}

/// A packet as JSON; `explain` keeps why each candidate was taken or left.
pub fn packet_json(pk: &Packet, explain: bool) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(pk).map_err(ApiError::failed)?;
    if !explain && let Some(o) = v.as_object_mut() {
        o.remove("explain");
    }
    Ok(v)
}

/// A memory write: the entry committed, the index (and its vectors) brought
/// up to date. A journal that cannot be opened does not stop the write (git
/// is where knowledge lives); it is a warning of the write.
pub fn learn(p: &Project, new: NewEntry) -> Result<WriteOutcome, ApiError> {
    let k = p.knowledge()?;
    let (j, journal_error) = match Journal::open_for(&p.layout, &p.config) {
        Ok(j) => (Some(j), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut o = k.learn(new, j.as_ref())?;
    index_after_write(p, &mut o.warnings);
    if let Some(e) = journal_error {
        o.warnings.push(format!(
            "the write is done, but the journal could not record it: {e}"
        ));
    }
    Ok(o)
}

/// What a feedback signal did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedbackOutcome {
    pub id: String,
    pub signal: &'static str,
    pub utility: f64,
    pub events: u64,
    pub maturity: agentops_knowledge::Maturity,
    /// The maturity move's memory write, when there was one.
    pub write: Option<WriteOutcome>,
}

/// A feedback signal on an entry, and the maturity move it caused.
pub fn feedback(
    p: &Project,
    id: &str,
    signal: &str,
    source: &Provenance,
) -> Result<FeedbackOutcome, ApiError> {
    use agentops_knowledge::feedback::{self, Signal};
    let signal = Signal::parse(signal).map_err(ApiError::usage)?;
    let k = p.knowledge()?;
    let e = k.find(id)?;
    let j = p.journal()?;
    let mut applied = feedback::apply(&k, &j, &e, signal, source, &source.journal_run())?;
    if let Some(w) = applied.write.as_mut().filter(|w| w.changed) {
        index_after_write(p, &mut w.warnings);
    }
    Ok(FeedbackOutcome {
        id: e.id.to_string(),
        signal: signal.as_str(),
        utility: applied.utility.value,
        events: u64::from(applied.utility.events),
        maturity: applied.moved.unwrap_or(e.maturity),
        write: applied.write,
    })
}

/// Brings the search index up to date after a memory write, in-process (only
/// the changed folder is read again); what could not be done is a warning of
/// the write, which stands either way.
pub fn index_after_write(p: &Project, warnings: &mut Vec<String>) {
    use agentops_context::catchup::{CatchUp, after_write};
    match after_write(&p.layout, &p.config) {
        Ok(CatchUp::Current(idx, _)) => {
            semantic::embed_after_write(&idx, &p.config, &p.layout.work_tree, warnings);
        }
        Ok(CatchUp::TooLarge { entries }) => warnings.push(format!(
            "the search index is missing or from another agentops version ({entries}+ entries to index): run `agentops index`"
        )),
        Err(e) => warnings.push(format!(
            "the write is done, but the search index could not be updated: {e}"
        )),
    }
}

/// A handoff written by the agent itself (the MCP `handoff_write` tool):
/// what was done and what is next, tagged with the branch so the next
/// session on it finds it first.
pub fn handoff(
    p: &Project,
    title: Option<&str>,
    done: &str,
    next: Option<&str>,
    branch: Option<String>,
    source: &Provenance,
) -> Result<WriteOutcome, ApiError> {
    let title = title
        .map(str::to_owned)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| {
            let first = done
                .lines()
                .map(|l| l.trim_start_matches(['#', '-', '*', ' ']).trim())
                .find(|l| !l.is_empty())
                .unwrap_or("session handoff");
            let clipped: String = first.chars().take(80).collect();
            format!("Handoff: {clipped}")
        });
    let mut body = String::new();
    if let Some(b) = &branch {
        body.push_str(&format!("**Branch:** `{b}`\n\n"));
    }
    body.push_str("## Done\n\n");
    body.push_str(done.trim_end());
    body.push('\n');
    if let Some(n) = next.filter(|n| !n.trim().is_empty()) {
        body.push_str("\n## Next\n\n");
        body.push_str(n.trim_end());
        body.push('\n');
    }
    let mut tags = vec!["handoff".to_owned(), "mcp".to_owned()];
    tags.extend(
        branch
            .as_deref()
            .and_then(agentops_knowledge::entry::branch_tag),
    );
    learn(
        p,
        NewEntry {
            kind: Some(EntryType::Handoff),
            title,
            body,
            tags,
            supersedes: Vec::new(),
            source: source.clone(),
        },
    )
}
