//! Packet and ranking invariants, checked with the real tokenizer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use agentops_context::packet::{PacketRequest, assemble};
use agentops_context::tokens::TokenizerKind;
use agentops_context::{KnowledgeIndex, SearchFilter};
use agentops_knowledge::Entry;
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "retry",
    "flaky",
    "network",
    "cache",
    "deploy",
    "schema",
    "migration",
    "index",
    "query",
    "timeout",
    "token",
    "budget",
    "agent",
    "workflow",
    "gate",
    "review",
    "branch",
    "merge",
    "rollback",
    "latency",
    "lock",
    "queue",
    "worker",
    "postgres",
    "sqlite",
    "hook",
    "prompt",
    "model",
    "trace",
    "secret",
];

fn entry(i: usize, kind: &str, title: &str, body: &str, created: &str, tags: &[&str]) -> Entry {
    let text = format!(
        "---\nid: {kind}-20200101-e{i}\ntype: {kind}\ntitle: {title}\ntags: [{}]\ncreated: {created}\n---\n\n# {title}\n\n{body}\n",
        tags.join(", ")
    );
    agentops_knowledge::entry::parse(&format!(".agents/learnings/e{i}.md"), &text).unwrap()
}

fn no_utility(_: &[&str]) -> HashMap<String, f64> {
    HashMap::new()
}

/// One generated entry: title words, body words, kind selector (0 = anti-pattern), age in days.
type Spec = (Vec<usize>, Vec<usize>, u8, u16);

fn corpus_strategy() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(
        (
            prop::collection::vec(0..WORDS.len(), 2..5),
            prop::collection::vec(0..WORDS.len(), 5..120),
            0u8..10,
            0u16..2000,
        ),
        1..25,
    )
}

fn build(spec: &[Spec]) -> Vec<Entry> {
    let now = agentops_core::time::now_micros();
    spec.iter()
        .enumerate()
        .map(|(i, (t, b, k, age))| {
            let title: Vec<&str> = t.iter().map(|&w| WORDS[w]).collect();
            let body: Vec<&str> = b.iter().map(|&w| WORDS[w]).collect();
            let kind = if *k == 0 { "anti-pattern" } else { "learning" };
            let created = agentops_core::time::rfc3339(now - i64::from(*age) * 86_400_000_000);
            entry(
                i,
                kind,
                &title.join(" "),
                &format!("## Learning\n\n{}.", body.join(" ")),
                &created,
                &[WORDS[t[0]]],
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn packet_never_exceeds_budget_no_duplicates_deterministic(
        spec in corpus_strategy(),
        query in prop::collection::vec(0..WORDS.len(), 1..6),
        budget in 0u32..3000,
        full in 0usize..6,
    ) {
        let entries = build(&spec);
        let idx = KnowledgeIndex::in_memory(&entries, TokenizerKind::O200k, 90.0).unwrap();
        let q: Vec<&str> = query.iter().map(|&w| WORDS[w]).collect();
        let hits = idx.search(&q.join(" "), &SearchFilter::default(), 50, &no_utility).unwrap();
        let req = PacketRequest { budget, full_entries: full };
        let p = assemble(&hits, idx.fixed_tokens(), &req);
        let real = TokenizerKind::O200k.count(&p.text);
        prop_assert!(real <= budget, "packet has {real} tokens, budget {budget}\n{}", p.text);
        prop_assert!(real <= p.tokens || p.text.is_empty(), "estimate {} below real {real}", p.tokens);
        let mut ids = p.cited.clone();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), p.cited.len());
        for id in &p.cited {
            prop_assert_eq!(p.text.matches(&format!("`{id}`")).count(), 1, "{} appears more than once", id);
        }
        let again = assemble(&idx.search(&q.join(" "), &SearchFilter::default(), 50, &no_utility).unwrap(), idx.fixed_tokens(), &req);
        prop_assert_eq!(&again.text, &p.text);
        prop_assert_eq!(&again.cited, &p.cited);
        prop_assert_eq!(p.explain.len(), hits.len());
    }

    #[test]
    fn an_old_exact_match_beats_a_fresh_partial_one(
        words in prop::collection::vec(0..WORDS.len(), 2..5),
        old_days in 365u16..3650,
        filler in prop::collection::vec(0..WORDS.len(), 20..80),
    ) {
        let mut uniq = words.clone();
        uniq.sort();
        uniq.dedup();
        prop_assume!(uniq.len() >= 2);
        let q: Vec<&str> = uniq.iter().map(|&w| WORDS[w]).collect();
        let now = agentops_core::time::now_micros();
        let old = agentops_core::time::rfc3339(now - i64::from(old_days) * 86_400_000_000);
        let fresh = agentops_core::time::rfc3339(now);
        // The fresh entry shares one query word, once, in a long body of other words.
        let other: Vec<&str> = filler.iter().map(|&w| WORDS[w]).filter(|w| !q.contains(w)).collect();
        let entries = vec![
            entry(1, "learning", &q.join(" "), &format!("About {}.", q.join(" and ")), &old, &[]),
            entry(2, "learning", "Unrelated note", &format!("{} {}.", other.join(" "), q[0]), &fresh, &[]),
        ];
        let idx = KnowledgeIndex::in_memory(&entries, TokenizerKind::O200k, 90.0).unwrap();
        let hits = idx.search(&q.join(" "), &SearchFilter::default(), 10, &no_utility).unwrap();
        prop_assert_eq!(hits[0].entry.id.as_str(), "learning-20200101-e1");
    }
}

#[test]
fn utility_and_maturity_move_rank_but_filters_hold() {
    let now = agentops_core::time::rfc3339(agentops_core::time::now_micros());
    let a = entry(
        1,
        "learning",
        "cache warm up",
        "cache the build",
        &now,
        &["ci"],
    );
    let b = entry(
        2,
        "decision",
        "cache policy",
        "cache the build",
        &now,
        &["ops"],
    );
    let idx = KnowledgeIndex::in_memory(&[a, b], TokenizerKind::O200k, 90.0).unwrap();
    let boost_b = |ids: &[&str]| -> HashMap<String, f64> {
        ids.iter()
            .filter(|i| i.ends_with("e2"))
            .map(|i| ((*i).to_owned(), 1.0))
            .collect()
    };
    let hits = idx
        .search("cache build", &SearchFilter::default(), 10, &boost_b)
        .unwrap();
    assert_eq!(hits[0].entry.id.as_str(), "decision-20200101-e2");
    assert!(hits[0].score.utility > hits[1].score.utility);
    let only_ci = SearchFilter {
        kind: None,
        tags: vec!["ci".into()],
    };
    let hits = idx
        .search("cache build", &only_ci, 10, &no_utility)
        .unwrap();
    assert_eq!(hits.len(), 1);
    let only_decisions = SearchFilter {
        kind: Some(agentops_knowledge::EntryType::Decision),
        tags: vec![],
    };
    assert_eq!(
        idx.search("cache", &only_decisions, 10, &no_utility)
            .unwrap()
            .len(),
        1
    );
    // Query syntax is plain text; empty and huge queries are fine.
    for q in [
        "",
        "   ",
        "AND OR NOT",
        "\"unclosed",
        "title:cache -build",
        "(((",
        &"cache ".repeat(10_000),
    ] {
        let _ = idx
            .search(q, &SearchFilter::default(), 10, &no_utility)
            .unwrap();
    }
    assert!(
        idx.search("", &SearchFilter::default(), 10, &no_utility)
            .unwrap()
            .is_empty()
    );
}
