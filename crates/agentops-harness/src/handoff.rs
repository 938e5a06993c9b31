//! Handoffs: what a harness session leaves for the next one, and what the next
//! one is given at its start.
//!
//! A handoff is a knowledge entry of type `handoff` in `.agents/handoffs/`,
//! written (and committed, as a memory write) at PreCompact, SessionEnd, or
//! when the context guard reaches critical. It is built from the session's own
//! journal: the first prompt is the goal; tools used and files changed are
//! what was done; the last verdict of each gate is the state; the last
//! assistant message and a next step close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agentops_context::index::{KnowledgeIndex, SearchFilter};
use agentops_context::packet::{self, PacketRequest};
use agentops_core::config::Config;
use agentops_core::{Event, EventKind, RunId};
use agentops_knowledge::entry::{self, Entry, EntryType, Provenance};
use agentops_knowledge::memory::{Knowledge, NewEntry};
use agentops_protocol::EventBody;
use agentops_protocol::event::{HookVerdict, LlmCall, SessionEnded};
use agentops_protocol::hook::ToolKind;
use agentops_store::{Journal, Query, RepoLayout};
use serde::Serialize;
use serde_json::Value;

use crate::commit_guard::CommitGuard;
use crate::paths::{current_branch, relative_to, written_paths};
use crate::{Harness, clip};

/// What one session did, read from the journal.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub goal: Option<String>,
    pub prompts: usize,
    /// Tool name → (calls, failures).
    pub tools: BTreeMap<String, (u32, u32)>,
    pub files: BTreeSet<String>,
    /// Gate → (verdict, summary), the latest of each.
    pub gates: BTreeMap<String, (String, String)>,
    pub last_message: Option<String>,
    pub denied: usize,
    pub blocked: usize,
}

impl Facts {
    pub fn is_empty(&self) -> bool {
        self.prompts == 0 && self.tools.is_empty() && self.last_message.is_none()
    }
}

/// Reads a session's facts from its journal events.
pub fn facts(events: &[Event], work_tree: &Path) -> Facts {
    let mut f = Facts::default();
    for e in events {
        let Ok(body) = EventBody::decode(e) else {
            continue;
        };
        match body {
            EventBody::HookReceived(h) => match h.event.as_str() {
                "UserPromptSubmit" => {
                    f.prompts += 1;
                    if f.goal.is_none() {
                        f.goal = h.input["prompt"].as_str().map(|s| clip(s, 600));
                    }
                }
                "Stop" => {
                    if let Some(m) = h.input["last_assistant_message"].as_str() {
                        f.last_message = Some(clip(m, 1_200));
                    }
                }
                _ => {}
            },
            EventBody::ToolCall(t) => {
                let slot = f.tools.entry(t.name.clone()).or_default();
                slot.0 += 1;
                if t.is_error {
                    slot.1 += 1;
                } else {
                    f.files.extend(t.files.iter().cloned());
                }
                if t.files.is_empty() {
                    // Ingested tool calls carry their input instead.
                    for p in written_paths(ToolKind::of(t.harness, &t.name), &t.input) {
                        f.files.insert(relative_to(work_tree, work_tree, &p));
                    }
                }
            }
            EventBody::GateVerdict(g) => {
                f.gates.insert(
                    g.gate,
                    (g.verdict.as_str().to_owned(), clip(&g.summary, 200)),
                );
            }
            EventBody::HookDecision(d) => match d.decision {
                HookVerdict::Deny => f.denied += 1,
                HookVerdict::Block => f.blocked += 1,
                HookVerdict::Escalate => {}
            },
            EventBody::LlmCall(LlmCall {
                last_message: Some(m),
                ..
            })
            | EventBody::SessionEnded(SessionEnded {
                last_message: Some(m),
                ..
            }) => f.last_message = Some(clip(&m, 1_200)),
            _ => {}
        }
    }
    f
}

/// The handoff's title and Markdown body.
pub fn render(
    f: &Facts,
    branch: Option<&str>,
    session: &str,
    harness: Harness,
    trigger: &str,
) -> (String, String) {
    let goal = f
        .goal
        .clone()
        .unwrap_or_else(|| "(no prompt recorded)".into());
    let title = clip(goal.lines().next().unwrap_or(""), 70);
    let mut b = String::new();
    b.push_str(&format!(
        "**Branch:** `{}` · **Session:** `{session}` ({harness}) · **Trigger:** {trigger}\n\n",
        branch.unwrap_or("(detached)")
    ));
    b.push_str(&format!("## Goal\n\n{goal}\n\n## Done\n\n"));
    if f.tools.is_empty() {
        b.push_str("- No tool calls recorded.\n");
    } else {
        let tools: Vec<String> = f
            .tools
            .iter()
            .map(|(n, (c, e))| {
                if *e > 0 {
                    format!("{n} ×{c} ({e} failed)")
                } else {
                    format!("{n} ×{c}")
                }
            })
            .collect();
        b.push_str(&format!("- Tools: {}\n", tools.join(", ")));
    }
    if !f.files.is_empty() {
        let files: Vec<&str> = f.files.iter().map(String::as_str).take(40).collect();
        let more = f.files.len().saturating_sub(40);
        b.push_str(&format!(
            "- Files changed: {}{}\n",
            files
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if f.denied > 0 || f.blocked > 0 {
        b.push_str(&format!(
            "- Policy denied {} tool call(s); stop gates blocked {} time(s).\n",
            f.denied, f.blocked
        ));
    }
    b.push_str("\n## Gates\n\n");
    if f.gates.is_empty() {
        b.push_str("- None ran in this session.\n");
    }
    for (g, (v, s)) in &f.gates {
        b.push_str(&format!("- `{g}`: {v} — {s}\n"));
    }
    if let Some(m) = &f.last_message {
        b.push_str(&format!("\n## Last message\n\n{m}\n"));
    }
    let failing: Vec<&String> = f
        .gates
        .iter()
        .filter(|(_, (v, _))| v == "FAIL")
        .map(|(g, _)| g)
        .collect();
    let next = if !failing.is_empty() {
        format!(
            "Make the failing gate(s) pass: {} (`agentops gate run {}`), then continue toward the goal.",
            failing
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", "),
            failing
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )
    } else if trigger == "context-critical" || trigger == "PreCompact" {
        NEXT_AFTER_COMPACTION.into()
    } else {
        NEXT_BY_DEFAULT.into()
    };
    b.push_str(&format!("\n## Next step\n\n{next}\n"));
    (title, b)
}

/// The next step of a handoff whose session filled its context.
const NEXT_AFTER_COMPACTION: &str = "The context filled up mid-task: re-read the goal and the files changed, check them with the tests, and carry on from the last message.";
/// The next step of a handoff with nothing more specific to say.
const NEXT_BY_DEFAULT: &str = "Check the goal against the last message: if it is met, review and commit the changes; otherwise continue from where the last message leaves off.";

/// What of a handoff the packet is searched with: its goal and next step,
/// leaving out agentops's own wording of a next step (which says nothing
/// about the work and would only add common words to the query).
fn handoff_query(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["## Goal", "## Next step"] {
        if let Some(s) = body.split(section).nth(1) {
            let said = s.split("\n## ").next().unwrap_or("").trim();
            if !said.is_empty() && said != NEXT_BY_DEFAULT && said != NEXT_AFTER_COMPACTION {
                out.push(said.to_owned());
            }
        }
    }
    out
}

/// What [`write_for_session`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub id: String,
    pub path: String,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub deferred: Option<String>,
}

/// Writes the handoff of `session` (unless it did nothing, or nothing
/// happened since its last handoff).
pub fn write_for_session(
    layout: &RepoLayout,
    config: &Config,
    journal: &Journal,
    harness: Harness,
    session: &RunId,
    trigger: &str,
    event: &Value,
) -> Result<Option<Written>, crate::error::HarnessError> {
    let events = journal.read(&Query::run(session.clone()))?;
    let last_handoff = events
        .iter()
        .filter(|e| e.kind == EventKind::HandoffWritten)
        .map(|e| e.seq)
        .max();
    // Work is a tool call (file changes come through them) or gate
    // activity: a session that only talked writes no handoff at its end, so
    // it never replaces a substantive one as the latest. A full context
    // (the guard's critical band, a compaction) is work by itself: the
    // prompts so far are what the next session must know.
    let long = matches!(trigger, "context-critical" | "PreCompact");
    let last_work = events
        .iter()
        .filter(|e| {
            matches!(e.kind, EventKind::ToolCall | EventKind::GateVerdict)
                || (long
                    && matches!(
                        EventBody::decode(e),
                        Ok(EventBody::HookReceived(h)) if h.event == "UserPromptSubmit"
                    ))
        })
        .map(|e| e.seq)
        .max();
    if last_work.is_none() || last_handoff.is_some_and(|h| last_work.is_some_and(|w| h > w)) {
        return Ok(None);
    }
    let f = facts(&events, &layout.work_tree);
    if f.is_empty() {
        return Ok(None);
    }
    let branch = current_branch(layout);
    let why = match event
        .get("reason")
        .or_else(|| event.get("trigger"))
        .and_then(Value::as_str)
    {
        Some(r) if !r.is_empty() && trigger != "context-critical" => format!("{trigger} ({r})"),
        _ => trigger.to_owned(),
    };
    let (title, mut body) = render(&f, branch.as_deref(), session.as_str(), harness, &why);
    // What `agentops harvest` would propose from this session.
    let mut proposed: Vec<String> = crate::harvest::from_session(session, &events)
        .into_iter()
        .map(|c| c.title)
        .collect();
    proposed.extend(
        crate::harvest::questions(f.last_message.as_deref().unwrap_or(""))
            .into_iter()
            .map(|q| format!("Open question: {q}")),
    );
    if !proposed.is_empty() {
        body.push_str("\n## Harvest candidates\n\n");
        for p in proposed.iter().take(10) {
            body.push_str(&format!("- {p}\n"));
        }
        body.push_str(&format!(
            "\nRecord them as provisional learnings: `agentops harvest {} --apply` (or look first without `--apply`).\n",
            session.as_str()
        ));
    }
    let mut tags = vec!["handoff".to_owned(), harness.as_str().to_owned()];
    tags.extend(branch.as_deref().and_then(entry::branch_tag));
    let k = Knowledge::new(layout.clone(), config.clone())?;
    let _guard = CommitGuard::enter();
    let out = k.learn(
        NewEntry {
            kind: Some(EntryType::Handoff),
            title,
            body,
            tags,
            supersedes: Vec::new(),
            source: Provenance {
                run: None,
                session: Some(session.as_str().to_owned()),
                agent: Some(harness.as_str().to_owned()),
            },
        },
        Some(journal),
    )?;
    // The next session's briefing searches it: keep the index current
    // (in-process, only the handoffs folder is read again).
    let _ = agentops_context::catchup::after_write(layout, config);
    Ok(Some(Written {
        id: out.id,
        path: out.path,
        branch,
        commit: out.commit,
        deferred: out.deferred,
    }))
}

/// The branch a handoff body names (`**Branch:** `x``).
pub fn branch_of(body: &str) -> Option<&str> {
    let rest = body.split("**Branch:** `").nth(1)?;
    rest.split('`').next()
}

/// The newest handoff for `branch` (any branch when `None`), read from
/// `.agents/handoffs/` newest month first.
pub fn latest(layout: &RepoLayout, branch: Option<&str>) -> Option<Entry> {
    let root = layout.agents_dir().join("handoffs");
    // Month folders (yyyy-mm) newest first, then the top folder (older, flat files).
    let mut order: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .ok()?
        .filter_map(Result::ok)
        .map(|d| d.path())
        .filter(|p| p.is_dir())
        .collect();
    order.sort_by(|a, b| b.cmp(a));
    order.push(root);
    for dir in order {
        let mut best: Option<Entry> = None;
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in rd.filter_map(Result::ok) {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if !entry::is_entry_file_name(&name) || !f.path().is_file() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(f.path()) else {
                continue;
            };
            let rel = relative_to(
                &layout.work_tree,
                &layout.work_tree,
                &f.path().to_string_lossy(),
            );
            let Ok(e) = entry::parse(&rel, &text) else {
                continue;
            };
            if e.kind != EntryType::Handoff
                || e.maturity == agentops_knowledge::entry::Maturity::Deprecated
                || branch.is_some_and(|b| branch_of(&e.body) != Some(b))
            {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|x| (e.created, &e.id) > (x.created, &x.id))
            {
                best = Some(e);
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// What SessionStart injects.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Injection {
    pub text: String,
    pub query: String,
    pub budget: u32,
    /// Estimated tokens of the whole text.
    pub tokens: u32,
    pub cited: Vec<String>,
    pub handoff: Option<String>,
    pub index_note: Option<String>,
    /// The packet was filled with the best entries (the query found too
    /// little, or there was nothing to search with).
    pub briefing: bool,
}

/// Fewer query hits than this and the briefing tops the packet up.
const BRIEFING_BELOW: usize = 3;
/// How many of the freshest entries the briefing ranks.
const BRIEFING_POOL: usize = 300;

/// A path as query words: its folders and its file name without extension.
fn path_words(p: &str) -> String {
    let p = p
        .rsplit_once('.')
        .map_or(p, |(stem, ext)| if ext.contains('/') { p } else { stem });
    p.replace(['/', '-', '_', '.'], " ")
}

/// The index, current: caught up in-process (built, when it is missing and
/// the repository small); a note instead when it is being built elsewhere or
/// too large to build on the hook's clock (then built in the background).
fn open_index(
    layout: &RepoLayout,
    config: &Config,
    index_dir: &Path,
) -> Result<KnowledgeIndex, String> {
    if !agentops_context::catchup::exists(layout) && index_dir.is_dir() {
        // A folder without its manifest is an index being built (by a
        // background `agentops index`): opening it would start a second build.
        let recent = std::fs::metadata(index_dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(60));
        if recent {
            return Err(
                "the search index is being built in the background; the handoff alone this time"
                    .into(),
            );
        }
    }
    // The hook's clock: never wait on another writer, never load a tokenizer.
    match agentops_context::catchup::after_write(layout, config) {
        Ok(agentops_context::catchup::CatchUp::Current(idx, _)) => Ok(*idx),
        Ok(agentops_context::catchup::CatchUp::TooLarge { entries }) => {
            spawn_index(layout);
            Err(format!(
                "no search index yet and more than {entries} entries: started `agentops index` in the background"
            ))
        }
        Err(e) => Err(format!("the search index could not be opened: {e}")),
    }
}

/// Candidates SessionStart's search ranks (each is a stored document to
/// read; a packet of 2,000 tokens holds far fewer).
const SEARCH_CANDIDATES: usize = 24;

/// A git index larger than this (about 10,000 entries) is not read by
/// `git status` on SessionStart's clock.
const LARGE_GIT_INDEX: u64 = 1 << 20;

/// How long SessionStart waits for `git status` (the work tree's changed
/// paths): it reads the whole git index, which many knowledge entries make
/// slow; later, the query goes without them.
const WORK_TREE_STATUS_WITHIN: std::time::Duration = std::time::Duration::from_millis(12);

/// How many of the latest tool calls stand for the work tree's changes
/// when `git status` cannot answer in time.
const RECENT_TOOL_CALLS: usize = 200;

/// Tokens of text not in the index, estimated without a tokenizer (loading
/// one costs 100–250 ms, too much for a hook): a conservative 3 characters
/// per token.
fn estimate_tokens(s: &str) -> u32 {
    u32::try_from(s.chars().count().div_ceil(3)).unwrap_or(u32::MAX)
}

/// The latest handoff for `branch` and a context packet for the work at hand,
/// within `hooks.injection_budget` tokens.
pub fn session_context(
    layout: &RepoLayout,
    config: &Config,
    journal: &Journal,
    branch: Option<&str>,
    model: Option<&str>,
    first_prompt: Option<&str>,
) -> Result<Injection, crate::error::HarnessError> {
    let mut inj = Injection::default();
    let window = agentops_context::guard::window_for(model, &config.context).0;
    let budget = u32::try_from(config.hooks.injection_budget)
        .unwrap_or(2_000)
        .min(packet::default_budget(
            config.hooks.injection_budget,
            window,
            0,
        ));
    inj.budget = budget;
    let mut text = String::new();
    let mut used = 0u32;
    let mut query_words = Vec::new();
    let index_dir = layout.state_dir().join("index");
    // `git status` reads the whole git index: with a large one it cannot
    // answer on the hook's clock, so the files the sessions' tools wrote
    // (the journal knows them) stand for the work tree's changes.
    let large_index =
        std::fs::metadata(layout.git_dir.join("index")).is_ok_and(|m| m.len() > LARGE_GIT_INDEX);
    let status_within = if large_index {
        std::time::Duration::ZERO
    } else {
        WORK_TREE_STATUS_WITHIN
    };
    // The index's catch-up runs on its own thread from the start, beside
    // everything that builds the query: the handoff, the branch's commits
    // (and `git status`), the files the tools wrote.
    let opened = std::thread::scope(|s| {
        let opened = s.spawn(|| open_index(layout, config, &index_dir));
        if let Some(h) = latest(layout, branch) {
            // At most half the budget for the handoff.
            let max_chars = (budget as usize * 3) / 2;
            let body = clip_to(&h.body, max_chars);
            let block = format!(
                "## Handoff from the last session ({}, `{}`)\n\n{}\n",
                h.created
                    .map(agentops_core::time::rfc3339)
                    .unwrap_or_default(),
                h.id,
                body.trim()
            );
            used += estimate_tokens(&block);
            text.push_str(&block);
            query_words.extend(handoff_query(&h.body));
            inj.handoff = Some(h.id.to_string());
        }
        if let Some(b) = branch
            && !matches!(b, "main" | "master" | "trunk" | "develop")
        {
            query_words.push(b.replace(['/', '-', '_'], " "));
        }
        // What the branch has been about: recent commit subjects and the
        // paths they and the work tree changed (file stems and folders as
        // words).
        let recent = agentops_git::cmd::recent_work(&layout.work_tree, 8, status_within);
        query_words.extend(recent.subjects.iter().take(8).cloned());
        query_words.extend(recent.paths.iter().take(40).map(|p| path_words(p)));
        if !recent.status_in_time {
            query_words.extend(
                written_recently(journal)
                    .iter()
                    .take(40)
                    .map(|p| path_words(p)),
            );
        }
        opened.join().ok()
    });
    let remaining = budget.saturating_sub(used).saturating_sub(60);
    // Too little room left for a packet: the index is not used.
    let opened = opened.filter(|_| remaining > 100);
    if let Some(p) = first_prompt {
        query_words.insert(0, clip(p, 400));
    }
    inj.query = clip(&query_words.join(" "), 800);
    if let Some(opened) = opened {
        match opened {
            Ok(idx) => {
                let utility = |ids: &[&str]| journal.utility_scores(ids);
                let mut hits: Vec<_> = if inj.query.trim().is_empty() {
                    Vec::new()
                } else {
                    idx.search(
                        &inj.query,
                        &SearchFilter::default(),
                        SEARCH_CANDIDATES,
                        &utility,
                    )?
                    .into_iter()
                    .filter(|h| h.entry.kind != EntryType::Handoff)
                    .collect()
                };
                // Too little found (or nothing to search with): the best
                // entries by maturity, utility and freshness fill the budget.
                if hits.len() < BRIEFING_BELOW {
                    inj.briefing = true;
                    let have: BTreeSet<String> =
                        hits.iter().map(|h| h.entry.id.to_string()).collect();
                    hits.extend(
                        idx.briefing(BRIEFING_POOL, &utility)?
                            .into_iter()
                            .filter(|h| !have.contains(&h.entry.id.to_string())),
                    );
                }
                if !hits.is_empty() {
                    let p = packet::assemble(
                        &hits,
                        idx.fixed_tokens(),
                        &PacketRequest {
                            budget: remaining,
                            full_entries: usize::try_from(config.context.full_entries).unwrap_or(5),
                        },
                    );
                    if !p.cited.is_empty() {
                        text.push_str("\n## Knowledge for this work (agentops context packet)\n\n");
                        text.push_str(p.text.trim());
                        text.push('\n');
                        used += p.tokens + 20;
                        inj.cited = p.cited;
                    }
                }
                drop_aside(idx);
            }
            Err(note) => inj.index_note = Some(note),
        }
    }
    if !text.is_empty() {
        let head = format!(
            "agentops: state carried over for this repository{}. Expand any entry with `agentops knowledge show <id>`; search with `agentops search <words>`.\n\n",
            branch
                .map(|b| format!(" (branch `{b}`)"))
                .unwrap_or_default()
        );
        used += estimate_tokens(&head);
        text.insert_str(0, &head);
    }
    inj.tokens = used;
    inj.text = text;
    Ok(inj)
}

/// Files the latest [`RECENT_TOOL_CALLS`] tool calls of the last week wrote,
/// newest first, outside `.agents/`: the work tree's recent changes as the
/// journal saw them. Bounded, whatever the journal's size.
fn written_recently(journal: &Journal) -> Vec<String> {
    let since = agentops_core::time::now_micros() - 7 * 86_400 * 1_000_000;
    let mut files = Vec::new();
    let _ = journal.scan(
        &Query {
            kinds: vec![EventKind::ToolCall],
            since_ts: Some(since),
            // The latest tool calls only, newest first: a long history of
            // spans is never read on the hook's clock.
            limit: Some(RECENT_TOOL_CALLS),
            newest_first: true,
            ..Query::default()
        },
        &mut |r| {
            // Only the files: most tool spans name none, and the rest of a
            // body is skipped, not built.
            #[derive(serde::Deserialize)]
            struct Files {
                #[serde(default)]
                files: Vec<String>,
            }
            if r.body.contains("\"files\"")
                && let Ok(v) = serde_json::from_str::<Files>(r.body)
            {
                files.extend(v.files.into_iter().rev());
            }
        },
    );
    let mut seen = BTreeSet::new();
    files.retain(|f| !f.starts_with(".agents/") && seen.insert(f.clone()));
    files
}

fn clip_to(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max_chars).collect();
    let cut = cut
        .rfind('\n')
        .map(|i| &cut[..i])
        .unwrap_or(&cut)
        .to_owned();
    format!("{cut}\n[… handoff cut to fit the budget; `agentops handoff latest` shows all of it]")
}

/// Drops `idx` on a thread of its own: closing an index unmaps and closes
/// dozens of files (about a millisecond), which the hook's answer need not
/// wait for (a hook process that exits first leaves it to the kernel).
fn drop_aside(idx: KnowledgeIndex) {
    // No thread to be had: the closure, and the index with it, is dropped
    // here by `spawn`.
    let _ = std::thread::Builder::new()
        .name("index-close".into())
        .spawn(move || drop(idx));
}

/// Builds the search index in a detached process (the first session in a
/// repository must not wait for it).
fn spawn_index(layout: &RepoLayout) {
    if let Ok(exe) = std::env::current_exe() {
        let _ = std::process::Command::new(exe)
            .arg("-C")
            .arg(&layout.work_tree)
            .arg("-q")
            .arg("index")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use agentops_protocol::event::{ToolCall, new_event};
    use agentops_store::Durability;

    #[test]
    fn a_handoff_is_searched_with_its_goal_and_a_next_step_of_its_own() {
        let body = |next: &str| {
            format!(
                "# x\n\n## Goal\n\nRound invoices to cents\n\n## Done\n\n- Tools: Edit ×1\n\n## Next step\n\n{next}\n"
            )
        };
        assert_eq!(
            handoff_query(&body(NEXT_BY_DEFAULT)),
            ["Round invoices to cents"]
        );
        assert_eq!(
            handoff_query(&body(NEXT_AFTER_COMPACTION)),
            ["Round invoices to cents"]
        );
        assert_eq!(
            handoff_query(&body("Port the rounding to the refunds path")),
            [
                "Round invoices to cents",
                "Port the rounding to the refunds path"
            ]
        );
        assert!(handoff_query("no sections").is_empty());
    }

    #[test]
    fn files_written_recently_are_newest_first_without_knowledge() {
        let dir = tempfile::tempdir().unwrap();
        let store = agentops_store::SqliteStore::open(
            &dir.path().join("state.db"),
            agentops_store::OpenOptions::default(),
        )
        .unwrap();
        let j = Journal::new(Box::new(store), &[]).unwrap();
        let run = RunId::parse("s-files").unwrap();
        for files in [
            vec!["src/old.rs"],
            vec![".agents/learnings/x.md", "src/new.rs"],
            vec!["src/old.rs"],
        ] {
            j.append(
                new_event(
                    run.clone(),
                    ToolCall {
                        name: "Write".into(),
                        files: files.into_iter().map(str::to_owned).collect(),
                        ..ToolCall::default()
                    },
                ),
                Durability::Relaxed,
            )
            .unwrap();
        }
        assert_eq!(written_recently(&j), ["src/old.rs", "src/new.rs"]);
    }
}
