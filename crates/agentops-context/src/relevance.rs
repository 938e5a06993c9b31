//! Whether an entry is about what a prompt asks, without a model: the share
//! of the prompt's content words (stopwords out, matched on their first
//! letters so `retries` finds `retry`) that the entry's title, tags or body
//! contain. A search always ranks something first; this says whether the
//! first is worth a prompt's tokens.

use agentops_knowledge::entry::Entry;

/// Words too common to say what a prompt is about.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "into", "what", "when", "where", "which",
    "how", "why", "who", "are", "was", "were", "been", "have", "has", "had", "can", "could",
    "would", "should", "will", "shall", "may", "might", "must", "you", "your", "our", "ours",
    "their", "them", "they", "its", "it's", "there", "here", "then", "than", "also", "just",
    "please", "make", "sure", "need", "want", "like", "some", "any", "all", "not", "but", "about",
    "over", "under", "after", "before", "again", "each", "every", "use", "using", "get", "let",
    "add", "fix", "change", "update", "code", "file", "files", "now", "new", "one", "two",
];

/// How much of a prompt an entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct content words of the prompt the entry contains.
    pub matched: usize,
    /// Distinct content words of the prompt (at most 16).
    pub words: usize,
}

impl Coverage {
    /// At least two words, and at least `min_share` of them (over at most
    /// eight: a long prompt is not held to covering all of it).
    pub fn relevant(&self, min_share: f64) -> bool {
        let over = self.words.clamp(1, 8) as f64;
        self.matched >= 2.min(self.words) && self.matched as f64 / over >= min_share
    }
}

/// The prompt's content words as lowercase prefixes.
pub fn content_words(prompt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in prompt.split(|c: char| !c.is_alphanumeric()) {
        let lower = w.to_lowercase();
        let n = lower.chars().count();
        if n < 3 || STOPWORDS.contains(&lower.as_str()) || lower.chars().all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let p: String = lower
            .chars()
            .take(n.saturating_sub(3).max(4).min(n))
            .collect();
        if !out.contains(&p) {
            out.push(p);
        }
        if out.len() >= 16 {
            break;
        }
    }
    out
}

/// The first letters a word is matched on (`retries` → `retr`, so it
/// finds `retry`): all but the last three, at least four.
pub(crate) fn prefix(lower: &str) -> String {
    let n = lower.chars().count();
    lower
        .chars()
        .take(n.saturating_sub(3).max(4).min(n))
        .collect()
}

/// How much of `words` (from [`content_words`]) `entry` covers.
pub fn coverage(words: &[String], entry: &Entry) -> Coverage {
    let text = format!("{} {} {}", entry.title, entry.tags.join(" "), entry.body).to_lowercase();
    let present: std::collections::HashSet<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .collect();
    let matched = words
        .iter()
        .filter(|p| present.iter().any(|w| w.starts_with(p.as_str())))
        .count();
    Coverage {
        matched,
        words: words.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, body: &str) -> Entry {
        agentops_knowledge::entry::parse(
            ".agents/learnings/learning-20260101-x.md",
            &format!("---\nid: learning-20260101-x\ntype: learning\ntitle: {title}\ntags: []\ncreated: \"2026-01-01T00:00:00Z\"\nmaturity: provisional\n---\n\n{body}\n"),
        )
        .unwrap()
    }

    #[test]
    fn a_prompt_about_the_entry_is_covered_and_an_unrelated_one_is_not() {
        let e = entry(
            "Retry with jittered exponential backoff",
            "Clients that retry in lockstep after an outage overload the server; add jitter.",
        );
        let on = content_words("Please add retries with backoff to the payment client");
        assert!(coverage(&on, &e).relevant(0.34), "{:?}", coverage(&on, &e));
        let off = content_words("Fix the CSS grid layout of the settings page");
        assert!(
            !coverage(&off, &e).relevant(0.34),
            "{:?}",
            coverage(&off, &e)
        );
        // Stopwords and short words say nothing.
        assert!(content_words("can you do it for me please").is_empty());
    }
}
