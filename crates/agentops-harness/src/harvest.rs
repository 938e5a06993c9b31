//! `agentops harvest`: provisional learnings proposed from what sessions did.
//!
//! Heuristics, no model needed, each over one session's events in order:
//! - **a denied command and what the agent did instead**: a `hook.decision`
//!   deny, then the next shell command that succeeded;
//! - **a gate failure and the change that fixed it**: a gate's FAIL, then its
//!   PASS, with the files written in between;
//! - **a tool error followed by a success**: a failed command, then the next
//!   successful call of the same tool with a different command;
//! - **open questions** a handoff of the session left (its last message's
//!   questions).
//!
//! Candidates are deduplicated among themselves and against the knowledge
//! already there (no near-copy of an entry is proposed twice). With
//! `[harvest] backend`, a model rewrites each as Context / Solution /
//! Learning / Impact.

use std::collections::BTreeSet;

use agentops_core::config::Config;
use agentops_core::{Event, RunId};
use agentops_protocol::event::{EventBody, HookVerdict, Verdict};
use agentops_store::{Journal, Query, RepoLayout};
use serde::Serialize;

use crate::clip;
use crate::error::HarnessError;

/// What a candidate was found from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    DeniedThenInstead,
    GateFixed,
    ErrorThenSuccess,
    OpenQuestion,
}

/// One proposed learning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub title: String,
    /// Markdown: Context, Solution, Learning, Impact.
    pub body: String,
    pub tags: Vec<String>,
    pub session: String,
    pub source: Source,
    /// Rewritten by the configured model.
    pub by_model: bool,
}

/// Candidates from `events` (one session's, in order).
pub fn from_session(session: &RunId, events: &[Event]) -> Vec<Candidate> {
    let mut out = Vec::new();
    let bodies: Vec<EventBody> = events
        .iter()
        .filter_map(|e| EventBody::decode(e).ok())
        .collect();
    let sid = session.as_str().to_owned();
    let mut push = |title: String,
                    context: String,
                    solution: String,
                    learning: String,
                    source: Source,
                    tags: &[&str]| {
        out.push(Candidate {
            title: clip(&title, 90),
            body: sections(&context, &solution, &learning, impact(source)),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            session: sid.clone(),
            source,
            by_model: false,
        });
    };
    // The command each PreToolUse asked for, in order (denials name the tool,
    // not the command).
    let mut last_asked: Option<String> = None;
    let mut denied: Option<(String, String, String)> = None; // (command, rule, reason)
    let mut failed: Option<(String, String, String)> = None; // (tool, command, error)
    let mut gate_failed: std::collections::BTreeMap<String, (String, BTreeSet<String>)> =
        std::collections::BTreeMap::new();
    for b in &bodies {
        match b {
            EventBody::HookReceived(h) if h.event == "PreToolUse" => {
                last_asked = h.input["tool_input"]["command"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| h.input["tool_input"]["cmd"].as_str().map(str::to_owned));
            }
            EventBody::HookDecision(d) if d.decision == HookVerdict::Deny => {
                if let Some(cmd) = last_asked.take() {
                    denied = Some((
                        cmd,
                        d.rule.clone().unwrap_or_default(),
                        d.reason.clone().unwrap_or_default(),
                    ));
                }
            }
            EventBody::ToolCall(t) => {
                for f in &t.files {
                    for (_, files) in gate_failed.values_mut() {
                        files.insert(f.clone());
                    }
                }
                let cmd = t.command.clone();
                if !t.is_error
                    && let (Some((d_cmd, rule, reason)), Some(c)) = (&denied, &cmd)
                    && c != d_cmd
                {
                    push(
                        format!("Instead of `{}`: `{}`", clip(d_cmd, 40), clip(c, 40)),
                        format!(
                            "The agent ran `{d_cmd}`; the policy denied it ({rule}): {}",
                            clip(reason, 300)
                        ),
                        format!("It ran `{c}` instead, which succeeded."),
                        format!("Use `{c}` rather than `{d_cmd}` here."),
                        Source::DeniedThenInstead,
                        &["policy"],
                    );
                    denied = None;
                }
                if t.is_error {
                    if let Some(c) = &cmd {
                        failed = Some((
                            t.name.clone(),
                            c.clone(),
                            t.error.clone().unwrap_or_default(),
                        ));
                    }
                } else if let Some((tool, f_cmd, err)) = &failed
                    && *tool == t.name
                    && let Some(c) = &cmd
                    && c != f_cmd
                {
                    push(
                        format!("When `{}` fails, `{}` works", clip(f_cmd, 40), clip(c, 40)),
                        format!(
                            "`{f_cmd}` failed: {}",
                            clip(err.lines().next().unwrap_or(""), 300)
                        ),
                        format!("`{c}` succeeded right after."),
                        format!("Run `{c}` rather than `{f_cmd}`."),
                        Source::ErrorThenSuccess,
                        &["tooling"],
                    );
                    failed = None;
                }
            }
            EventBody::GateVerdict(g) => match g.verdict {
                Verdict::Fail => {
                    gate_failed
                        .entry(g.gate.clone())
                        .or_insert_with(|| (clip(&g.summary, 300), BTreeSet::new()));
                }
                Verdict::Pass => {
                    if let Some((summary, files)) = gate_failed.remove(&g.gate) {
                        let changed = if files.is_empty() {
                            "no file recorded".to_owned()
                        } else {
                            files
                                .iter()
                                .take(10)
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        push(
                            format!("Making gate `{}` pass", g.gate),
                            format!("Gate `{}` failed: {summary}", g.gate),
                            format!("It passed after changes to {changed}."),
                            format!(
                                "When `{}` fails like this, look at {changed} first.",
                                g.gate
                            ),
                            Source::GateFixed,
                            &["gates"],
                        );
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// The questions a handoff's last message left open.
pub fn open_questions(session: &RunId, handoff_body: &str) -> Vec<Candidate> {
    let last = handoff_body
        .split("\n## Last message\n")
        .nth(1)
        .map(|s| s.split("\n## ").next().unwrap_or(""))
        .unwrap_or("");
    let mut out = Vec::new();
    for q in questions(last) {
        out.push(Candidate {
            title: clip(&format!("Open question: {q}"), 90),
            body: sections(
                &format!("A session ended with this question open: {q}"),
                "(not answered yet)",
                "Answer it and record the answer with `agentops learn`.",
                impact(Source::OpenQuestion),
            ),
            tags: vec!["open-question".into()],
            session: session.as_str().to_owned(),
            source: Source::OpenQuestion,
            by_model: false,
        });
    }
    out
}

/// Sentences of `text` that end with a question mark.
pub fn questions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '.' | '!' | '?' | '\n') {
            let s = cur.trim().to_owned();
            if c == '?' && s.split_whitespace().count() >= 3 {
                out.push(s.trim_start_matches(['-', '*', ' ']).to_owned());
            }
            cur.clear();
        }
    }
    out
}

fn impact(s: Source) -> &'static str {
    match s {
        Source::DeniedThenInstead => "Saves a denied tool call and the turn spent on it.",
        Source::GateFixed => "Shortens the way from a failing gate to a passing one.",
        Source::ErrorThenSuccess => "Saves a failed command and its retry.",
        Source::OpenQuestion => "Keeps an unresolved question from being lost between sessions.",
    }
}

fn sections(context: &str, solution: &str, learning: &str, impact: &str) -> String {
    format!(
        "## Context\n\n{context}\n\n## Solution\n\n{solution}\n\n## Learning\n\n{learning}\n\n## Impact\n\n{impact}\n"
    )
}

/// Every candidate of `sessions`, deduplicated, and not near-copies of what
/// the index already holds.
pub fn harvest(
    layout: &RepoLayout,
    config: &Config,
    journal: &Journal,
    sessions: &[RunId],
) -> Result<Vec<Candidate>, HarnessError> {
    let mut all = Vec::new();
    for s in sessions {
        let events = journal.read(&Query::run(s.clone()))?;
        all.extend(from_session(s, &events));
        for e in &events {
            if let Ok(EventBody::HandoffWritten(h)) = EventBody::decode(e)
                && let Ok(text) = std::fs::read_to_string(layout.work_tree.join(&h.path))
            {
                all.extend(open_questions(s, &text));
            }
        }
    }
    let mut seen = BTreeSet::new();
    all.retain(|c| seen.insert(c.title.to_lowercase()));
    known_elsewhere(layout, config, &mut all)?;
    Ok(all)
}

/// Drops candidates the index already has a near-copy of: an entry whose
/// title and body cover at least 80% of the candidate's title words.
fn known_elsewhere(
    layout: &RepoLayout,
    config: &Config,
    all: &mut Vec<Candidate>,
) -> Result<(), HarnessError> {
    use agentops_context::relevance::{content_words, coverage};
    if all.is_empty() || !agentops_context::catchup::exists(layout) {
        return Ok(());
    }
    let (idx, _) = agentops_context::KnowledgeIndex::open_waiting(
        layout,
        config,
        false,
        false,
        std::time::Duration::from_secs(2),
    )?;
    let none = |_: &[&str]| std::collections::HashMap::new();
    let mut keep = Vec::with_capacity(all.len());
    for c in all.drain(..) {
        let words = content_words(&c.title);
        let hits = idx.search(
            &c.title,
            &agentops_context::SearchFilter::default(),
            5,
            &none,
        )?;
        // Handoffs list the candidates themselves: they are not knowledge.
        let copy = !words.is_empty()
            && hits
                .iter()
                .filter(|h| h.entry.kind != agentops_knowledge::EntryType::Handoff)
                .any(|h| {
                    h.entry.title.eq_ignore_ascii_case(&c.title)
                        || coverage(&words, &h.entry).relevant(0.8)
                });
        if !copy {
            keep.push(c);
        }
    }
    *all = keep;
    Ok(())
}

/// Has the `[harvest] backend` model write each candidate as Context /
/// Solution / Learning / Impact from what the heuristics found (a candidate
/// whose answer lacks those sections keeps its own text). Errors name the
/// setting.
pub fn rewrite_with_model(
    layout: &RepoLayout,
    config: &Config,
    backend: &str,
    candidates: &mut [Candidate],
) -> Result<usize, String> {
    use agentops_llm::{BackendSpec, Message, Request};
    let spec = BackendSpec::parse(backend).map_err(|e| format!("harvest.backend: {e}"))?;
    let env = |k: &str| std::env::var(k).ok();
    let model = agentops_llm::build(
        &spec,
        &agentops_llm::BuildOptions {
            llm: &config.llm,
            workdir: layout.work_tree.clone(),
            env: &env,
            base_url: None,
            key_env: None,
            children_file: None,
        },
    )
    .map_err(|e| format!("harvest.backend `{backend}`: {e}"))?;
    let mut n = 0;
    for c in candidates.iter_mut() {
        let req = Request {
            model: spec.model().unwrap_or(backend).to_owned(),
            system: "You turn what an AI coding session did into one reusable learning for the team's knowledge base. Answer with Markdown only, exactly four sections: ## Context, ## Solution, ## Learning, ## Impact. Keep to the facts given; do not invent commands, files or numbers.".into(),
            messages: vec![Message::user(format!(
                "Proposed learning: {}\n\n{}",
                c.title, c.body
            ))],
            tools: Vec::new(),
            max_tokens: 800,
            temperature: Some(0.0),
        };
        let resp = model
            .complete(&req, &mut |_| {})
            .map_err(|e| format!("harvest.backend `{backend}`: {e}"))?;
        let text = resp.text();
        let has_all = ["## Context", "## Solution", "## Learning", "## Impact"]
            .iter()
            .all(|h| text.contains(h));
        if has_all {
            let start = text.find("## Context").unwrap_or(0);
            c.body = format!("{}\n", text[start..].trim());
            c.by_model = true;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn questions_are_whole_sentences_with_a_question_mark() {
        assert_eq!(
            questions(
                "Done. Should the retry budget be per client? Maybe.\n- Is the cache shared across pods?"
            ),
            [
                "Should the retry budget be per client?",
                "Is the cache shared across pods?"
            ]
        );
        assert!(questions("Why? Done.").is_empty());
    }
}
