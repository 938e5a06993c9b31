//! Automatic feedback for the knowledge a session was given.
//!
//! - **retrieved**: every entry injected (SessionStart's packet, a prompt's
//!   just-in-time entries), once per session. Neutral: it moves utility
//!   toward the start value, so being shown often never raises an entry.
//! - **used**: the session referred to a retrieved entry after it was given:
//!   its id, its file, or its title (of at least three words or 16
//!   characters) appears in what the agent wrote — tool inputs (from the hook
//!   events) and assistant messages (from the transcript, read from where the
//!   last look stopped).
//! - **helpful**: a used entry in a session whose stop gates then pass.
//! - **harmful**: the entry's id or title within a sentence of "wrong",
//!   "outdated", "no longer", "doesn't work" … in a prompt or an assistant
//!   message.
//!
//! Each signal is given at most once per entry and session, and moves
//! utility and maturity through [`agentops_knowledge::feedback::apply`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use agentops_core::config::Config;
use agentops_core::{EventKind, RunId};
use agentops_knowledge::feedback::{self, Signal};
use agentops_knowledge::{Entry, Knowledge, Provenance};
use agentops_protocol::event::{self as body};
use agentops_store::{Journal, Query, RepoLayout};
use serde_json::Value;

use crate::Harness;
use crate::error::HarnessError;

/// The most of a transcript read at one look (its newest part).
const TRANSCRIPT_READ_CAP: u64 = 8 << 20;

/// Words that, near an entry's name, say it was contradicted.
const CONTRADICTIONS: &[&str] = &[
    "wrong",
    "incorrect",
    "outdated",
    "out of date",
    "obsolete",
    "no longer",
    "doesn't work",
    "does not work",
    "didn't work",
    "did not work",
    "not true",
    "misleading",
    "is stale",
    "contradict",
];

/// What a session was given and what it has been said about.
#[derive(Debug, Default)]
struct Ledger {
    given: BTreeSet<String>,
    signaled: BTreeMap<String, BTreeSet<Signal>>,
    /// Tool inputs of the session (the agent's own words).
    tool_text: String,
    /// The user's prompts.
    prompts: String,
}

impl Ledger {
    /// What the session was given and what was said about it, and what the
    /// session wrote (its tool inputs and prompts), read only when it was
    /// given something.
    fn read(journal: &Journal, session: &RunId) -> Result<Self, HarnessError> {
        let events = journal.read(&Query {
            run_id: Some(session.clone()),
            kinds: vec![EventKind::ContextAssembled, EventKind::KnowledgeFeedback],
            ..Query::default()
        })?;
        let mut l = Ledger::default();
        for e in &events {
            if e.kind == EventKind::ContextAssembled {
                if let Ok(c) = body::decode::<body::ContextAssembled>(e) {
                    l.given.extend(c.cited);
                }
            } else if let Ok(f) = body::decode::<body::KnowledgeFeedback>(e)
                && let Ok(s) = Signal::parse(&f.signal)
            {
                l.signaled.entry(f.entry).or_default().insert(s);
            }
        }
        if l.given.is_empty() {
            return Ok(l);
        }
        let received = journal.read(&Query {
            run_id: Some(session.clone()),
            kinds: vec![EventKind::HookReceived],
            ..Query::default()
        })?;
        for e in &received {
            let input = &e.body["input"];
            match input["hook_event_name"].as_str() {
                Some("PreToolUse") => {
                    l.tool_text.push_str(&input["tool_input"].to_string());
                    l.tool_text.push('\n');
                }
                Some("UserPromptSubmit") => {
                    if let Some(p) = input["prompt"].as_str() {
                        l.prompts.push_str(p);
                        l.prompts.push('\n');
                    }
                }
                _ => {}
            }
        }
        Ok(l)
    }

    fn has(&self, id: &str, s: Signal) -> bool {
        self.signaled.get(id).is_some_and(|x| x.contains(&s))
    }
}

/// The entries `session` was already recorded `retrieved` for: its feedback
/// events only, each read for its entry and signal (a resumed session has
/// many packets; their bodies are not needed here).
fn already_retrieved(journal: &Journal, session: &RunId) -> Result<BTreeSet<String>, HarnessError> {
    #[derive(serde::Deserialize)]
    struct Given {
        entry: String,
        signal: String,
    }
    let mut ids = BTreeSet::new();
    journal.scan(
        &Query {
            run_id: Some(session.clone()),
            kinds: vec![EventKind::KnowledgeFeedback],
            ..Query::default()
        },
        &mut |r| {
            if let Ok(g) = serde_json::from_str::<Given>(r.body)
                && Signal::parse(&g.signal) == Ok(Signal::Retrieved)
            {
                ids.insert(g.entry);
            }
        },
    )?;
    Ok(ids)
}

/// Records `retrieved` for each of `cited` not given to `session` before.
pub fn retrieved(
    journal: &Journal,
    session: &RunId,
    cited: &[String],
) -> Result<usize, HarnessError> {
    if cited.is_empty() {
        return Ok(0);
    }
    let given = already_retrieved(journal, session)?;
    let mut fresh: Vec<&str> = cited
        .iter()
        .map(String::as_str)
        .filter(|id| !given.contains(*id))
        .collect();
    fresh.sort_unstable();
    fresh.dedup();
    // Retrieval is neutral: it never moves a maturity, so no entry is read;
    // one transaction for all of them.
    feedback::record_many(journal, &fresh, Signal::Retrieved, session)?;
    Ok(fresh.len())
}

/// What a look at the session concluded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// (entry id, signal) given now.
    pub signals: Vec<(String, Signal)>,
    /// Whether a maturity move was written (the index must catch up).
    pub moved: bool,
}

/// Looks at what the session did since the last look and gives `used`,
/// `helpful` (when `gates_passed`) and `harmful` to the entries it was
/// given.
pub fn settle(
    layout: &RepoLayout,
    config: &Config,
    journal: &Journal,
    harness: Harness,
    session: &RunId,
    transcript: Option<&Path>,
    gates_passed: bool,
) -> Result<Settled, HarnessError> {
    let ledger = Ledger::read(journal, session)?;
    let mut out = Settled::default();
    if ledger.given.is_empty() {
        return Ok(out);
    }
    let said = transcript
        .map(|t| assistant_text_since(layout, session, t))
        .unwrap_or_default();
    let agent = format!("{}\n{said}", ledger.tool_text);
    let agent_lc = agent.to_lowercase();
    let words_lc = format!("{agent_lc}\n{}", ledger.prompts.to_lowercase());
    let k = Knowledge::new(layout.clone(), config.clone())?;
    let source = source(harness, session);
    // The given entries as indexed (a lookup, not a scan of `.agents/`).
    let entries = {
        let (idx, _) = agentops_context::KnowledgeIndex::open_waiting(
            layout,
            config,
            false,
            false,
            std::time::Duration::ZERO,
        )?;
        let ids: Vec<&str> = ledger.given.iter().map(String::as_str).collect();
        idx.entries_by_id(&ids)?
    };
    for id in &ledger.given {
        let Some(entry) = entries.get(id).cloned() else {
            continue;
        };
        let mut give = Vec::new();
        let used_before = ledger.has(id, Signal::Used);
        let used_now = !used_before && referred(&agent, &agent_lc, &entry);
        if used_now {
            give.push(Signal::Used);
        }
        if gates_passed && (used_before || used_now) && !ledger.has(id, Signal::Helpful) {
            give.push(Signal::Helpful);
        }
        if !ledger.has(id, Signal::Harmful) && contradicted(&words_lc, &entry) {
            give.push(Signal::Harmful);
        }
        let mut entry = entry;
        for s in give {
            let applied = feedback::apply(&k, journal, &entry, s, &source, session)?;
            if let Some(m) = applied.moved {
                out.moved |= applied.write.as_ref().is_some_and(|w| w.changed);
                entry.maturity = m;
            }
            out.signals.push((id.clone(), s));
        }
    }
    Ok(out)
}

fn source(harness: Harness, session: &RunId) -> Provenance {
    Provenance {
        run: None,
        session: Some(session.as_str().to_owned()),
        agent: Some(harness.as_str().to_owned()),
    }
}

/// A title long enough that finding it is not a coincidence.
fn distinctive_title(e: &Entry) -> Option<String> {
    let t = e.title.trim().to_lowercase();
    (t.split_whitespace().count() >= 3 || t.chars().count() >= 16).then_some(t)
}

/// Whether `text` (and its lowercase `lc`) refers to `e`.
fn referred(text: &str, lc: &str, e: &Entry) -> bool {
    let id = e.id.as_str();
    if text.contains(id) {
        return true;
    }
    if !e.path.is_empty() && text.contains(e.path.as_str()) {
        return true;
    }
    distinctive_title(e).is_some_and(|t| lc.contains(&t))
}

/// Whether `lc` (lowercase) names `e` within a sentence of a contradiction.
fn contradicted(lc: &str, e: &Entry) -> bool {
    let mut names = vec![e.id.as_str().to_lowercase()];
    names.extend(distinctive_title(e));
    for name in &names {
        let mut from = 0;
        while let Some(i) = lc[from..].find(name.as_str()) {
            let at = from + i;
            let start = floor_char(lc, at.saturating_sub(160));
            let end = floor_char(lc, (at + name.len() + 160).min(lc.len()));
            let window = &lc[start..end];
            // Only the sentence (or line) the name is in.
            let rel = at - start;
            let s = window[..rel]
                .rfind(['.', '!', '?', '\n'])
                .map_or(0, |i| i + 1);
            let e_ = window[rel..]
                .find(['.', '!', '?', '\n'])
                .map_or(window.len(), |i| rel + i);
            let sentence = &window[s..e_];
            if CONTRADICTIONS.iter().any(|c| sentence.contains(c)) {
                return true;
            }
            from = at + name.len();
        }
    }
    false
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where the last look at `session`'s transcript stopped.
fn offset_file(layout: &RepoLayout, session: &RunId) -> PathBuf {
    layout
        .state_dir()
        .join("feedback")
        .join(format!("{session}.offset"))
}

/// What the assistant wrote in the transcript since the last look (messages
/// and tool inputs, Claude Code's and Codex's shapes), and moves the mark.
/// Best effort: an unreadable transcript says nothing.
fn assistant_text_since(layout: &RepoLayout, session: &RunId, transcript: &Path) -> String {
    let mark = offset_file(layout, session);
    let from: u64 = std::fs::read_to_string(&mark)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let Ok(mut f) = std::fs::File::open(transcript) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // A transcript that shrank was replaced: read it from the start.
    let from = if from > len { 0 } else { from };
    let start = from.max(len.saturating_sub(TRANSCRIPT_READ_CAP));
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if f.take(len - start).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    // Only whole lines: a line still being written is read next time.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let mut out = String::new();
    for line in text.lines() {
        if !(line.contains("assistant") || line.contains("function_call")) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(part) = assistant_part(&v) {
            strings(part, &mut out);
        }
    }
    if let Some(dir) = mark.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&mark, (start + complete as u64).to_string());
    out
}

/// The assistant-authored part of a transcript line, if it is one: Claude
/// Code's `{"type":"assistant","message":…}`, Codex's response items with
/// `role: "assistant"` or a function call.
fn assistant_part(v: &Value) -> Option<&Value> {
    if v["type"] == "assistant" {
        return Some(&v["message"]["content"]);
    }
    let p = &v["payload"];
    if p["role"] == "assistant" {
        return Some(&p["content"]);
    }
    match p["type"].as_str() {
        Some("function_call" | "custom_tool_call" | "local_shell_call") => Some(p),
        _ => None,
    }
}

/// Every string in `v`, one per line.
fn strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(id: &str, title: &str) -> Entry {
        let text = format!("---\nid: {id}\ntitle: {title}\n---\n\nbody\n");
        agentops_knowledge::entry::parse(&format!(".agents/learnings/{id}.md"), &text).unwrap()
    }

    #[test]
    fn references_need_the_id_the_file_or_a_distinctive_title() {
        let e = entry("retry-budget-7f3a", "Retry with a jittered budget");
        let t = |s: &str| referred(s, &s.to_lowercase(), &e);
        assert!(t("see retry-budget-7f3a"));
        assert!(t("cat .agents/learnings/retry-budget-7f3a.md"));
        assert!(t("As the note says: retry with a JITTERED budget."));
        assert!(!t("retry the request"));
        let short = entry("x-1", "Retry");
        assert!(!referred("retry", "retry", &short));
    }

    #[test]
    fn a_contradiction_must_be_in_the_sentence_that_names_the_entry() {
        let e = entry("retry-budget-7f3a", "Retry with a jittered budget");
        let c = |s: &str| contradicted(&s.to_lowercase(), &e);
        assert!(c(
            "The retry with a jittered budget advice is outdated now."
        ));
        assert!(c("retry-budget-7f3a is wrong: the client already retries"));
        assert!(!c("That was wrong. Retry with a jittered budget fixed it."));
        assert!(!c("Retry with a jittered budget worked."));
    }

    #[test]
    fn assistant_text_comes_from_both_harnesses_shapes() {
        let claude = serde_json::json!({"type": "assistant", "message": {"role": "assistant",
            "content": [{"type": "text", "text": "using A"}, {"type": "tool_use", "input": {"command": "cat B"}}]}});
        let user = serde_json::json!({"type": "user", "message": {"role": "user", "content": "C"}});
        let codex = serde_json::json!({"type": "response_item", "payload": {"type": "function_call",
            "name": "shell", "arguments": "{\"command\":[\"cat\",\"D\"]}"}});
        let mut out = String::new();
        for v in [&claude, &user, &codex] {
            if let Some(p) = assistant_part(v) {
                strings(p, &mut out);
            }
        }
        assert!(out.contains("using A") && out.contains("cat B") && out.contains("cat"));
        assert!(out.contains("D") && !out.contains('C'));
    }
}
