//! The exact text of each tier of an entry and of the packet's fixed parts.
//! Token counts are taken on these strings when an entry is indexed, so a
//! packet can be assembled within budget without loading a tokenizer.

use agentops_knowledge::Entry;

/// The packet's first lines.
pub const HEADER: &str = "# Context packet\n\nEntries ranked for this task. `agentops knowledge show <id>` prints any entry in full.\n";
/// Section headings, in packet order.
pub const WARNINGS: &str = "\n## Warnings: anti-patterns\n\n";
pub const KNOWLEDGE: &str = "\n## Knowledge\n\n";
pub const SUMMARIES: &str = "\n## Summaries\n\n";
pub const MORE: &str = "\n## More entries\n\n";

/// Every fixed string, for counting once per index.
pub const FIXED: [&str; 5] = [HEADER, WARNINGS, KNOWLEDGE, SUMMARIES, MORE];

fn meta(e: &Entry) -> String {
    let mut m = format!("`{}` · {} · {}", e.id, e.kind, e.maturity);
    if !e.tags.is_empty() {
        m.push_str(" · ");
        m.push_str(&e.tags.join(", "));
    }
    m
}

/// The body without a leading `# Title` line that repeats the title.
pub fn body_without_title(e: &Entry) -> &str {
    let b = e.body.trim_start_matches('\n');
    match b.split_once('\n') {
        Some((first, rest)) if first.trim_start().starts_with("# ") => {
            rest.trim_start_matches('\n')
        }
        None if b.trim_start().starts_with("# ") => "",
        _ => b,
    }
}

/// Full tier: title, metadata, whole body.
pub fn full(e: &Entry) -> String {
    let body = body_without_title(e).trim_end();
    let mut s = format!("### {}\n\n{}\n", one_line(&e.title), meta(e));
    if !body.is_empty() {
        s.push('\n');
        s.push_str(body);
        s.push('\n');
    }
    s.push('\n');
    s
}

/// Summary tier: one line.
pub fn summary_line(e: &Entry) -> String {
    let sum = summary(e);
    if sum.is_empty() {
        title_line(e)
    } else {
        format!("- `{}` {}: {}\n", e.id, one_line(&e.title), sum)
    }
}

/// Title tier: id and title.
pub fn title_line(e: &Entry) -> String {
    format!("- `{}` {}\n", e.id, one_line(&e.title))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A one-sentence summary: the first paragraph of the Learning section, else
/// of Solution, else of the body; at most about 200 characters.
pub fn summary(e: &Entry) -> String {
    let body = body_without_title(e);
    let section = |name: &str| -> Option<String> {
        let mut lines = body.lines().skip_while(|l| {
            let t = l.trim();
            !(t.starts_with("## ") && t[3..].trim().eq_ignore_ascii_case(name))
        });
        lines.next()?;
        let para: Vec<&str> = lines
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect();
        (!para.is_empty()).then(|| para.join(" "))
    };
    let text = section("Learning")
        .or_else(|| section("Solution"))
        .or_else(|| {
            let para: Vec<&str> = body
                .lines()
                .skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .collect();
            (!para.is_empty()).then(|| para.join(" "))
        })
        .unwrap_or_default();
    let text = one_line(&text);
    if text.chars().count() <= 200 {
        return text;
    }
    let cut: String = text.chars().take(200).collect();
    let cut = cut
        .rfind(' ')
        .map_or(cut.as_str(), |i| &cut[..i])
        .to_owned();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn entry(body: &str) -> Entry {
        agentops_knowledge::entry::parse(
            ".agents/learnings/x.md",
            &format!(
                "---\nid: learning-20260101-x\ntitle: Retry flaky tests\ntags: [ci]\n---\n\n{body}"
            ),
        )
        .unwrap()
    }

    #[test]
    fn tiers() {
        let e = entry(
            "# Retry flaky tests\n\n## Context\n\nCI flakes.\n\n## Learning\n\nRetry network tests\nthree times.\n",
        );
        assert_eq!(
            full(&e),
            "### Retry flaky tests\n\n`learning-20260101-x` · learning · provisional · ci\n\n## Context\n\nCI flakes.\n\n## Learning\n\nRetry network tests\nthree times.\n\n"
        );
        assert_eq!(
            summary_line(&e),
            "- `learning-20260101-x` Retry flaky tests: Retry network tests three times.\n"
        );
        assert_eq!(
            title_line(&e),
            "- `learning-20260101-x` Retry flaky tests\n"
        );
        let e = entry("Just a paragraph\nof text.\n\nSecond.\n");
        assert_eq!(summary(&e), "Just a paragraph of text.");
        let e = entry(&format!("{}\n", "word ".repeat(100)));
        let s = summary(&e);
        assert!(s.ends_with('…') && s.chars().count() <= 201, "{s}");
    }
}
