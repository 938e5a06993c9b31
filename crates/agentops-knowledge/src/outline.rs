//! What a Markdown body is made of, for titles and for the index: its ATX
//! headings and its prose outside fenced code blocks, and the code inside
//! them. A `# ` line inside a fence is code (a shell comment, a Python
//! comment), not a heading.

/// A body split into headings, prose and code.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outline {
    /// (level 1–6, text) of each heading outside fences, in order.
    pub headings: Vec<(u8, String)>,
    /// Every line outside fences, headings included.
    pub prose: String,
    /// The lines inside fences (the fence lines themselves left out).
    pub code: String,
}

impl Outline {
    /// The title a body gives itself: its first level-1 heading, else its
    /// first heading of any level.
    pub fn title(&self) -> Option<&str> {
        self.headings
            .iter()
            .find(|(l, _)| *l == 1)
            .or_else(|| self.headings.first())
            .map(|(_, t)| t.as_str())
    }
}

/// A fence opening or closing line: (its character, its length, the rest).
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let t = line.trim_start_matches(' ');
    // Indented by four or more spaces it is an indented code line instead.
    if line.len() - t.len() > 3 {
        return None;
    }
    let c = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|x| *x == c).count();
    (n >= 3).then(|| (c, n, &t[n..]))
}

/// An ATX heading: `#`–`######`, then a space (or nothing), then its text
/// without closing `#`s.
fn heading(line: &str) -> Option<(u8, String)> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let n = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&n) {
        return None;
    }
    let rest = &t[n..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    // `## #` closes to nothing; a `#` glued to a word stays.
    let text = if rest.trim().chars().all(|c| c == '#') {
        ""
    } else {
        text
    };
    (!text.is_empty()).then(|| (u8::try_from(n).unwrap_or(6), text.to_owned()))
}

/// Splits `body` (CommonMark fences: three or more backticks or tildes; a
/// fence closes with the same character, at least as many, and nothing
/// after; an unclosed fence runs to the end).
pub fn outline(body: &str) -> Outline {
    let mut o = Outline::default();
    let mut open: Option<(char, usize)> = None;
    for line in body.lines() {
        match open {
            Some((c, n)) => {
                if let Some((c2, n2, rest)) = fence(line)
                    && c2 == c
                    && n2 >= n
                    && rest.trim().is_empty()
                {
                    open = None;
                } else {
                    o.code.push_str(line);
                    o.code.push('\n');
                }
            }
            None => {
                // A backtick fence's info string may not contain a backtick.
                if let Some((c, n, rest)) = fence(line)
                    && !(c == '`' && rest.contains('`'))
                {
                    open = Some((c, n));
                    continue;
                }
                if let Some(h) = heading(line) {
                    o.headings.push(h);
                }
                o.prose.push_str(line);
                o.prose.push('\n');
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_line_in_a_fence_is_code_not_a_title() {
        let body = "Some words first.\n\n```sh\n# do something monadic idk\nls\n```\n\n## Retry with jittered backoff\n\nText.\n";
        let o = outline(body);
        assert_eq!(o.title(), Some("Retry with jittered backoff"));
        assert_eq!(
            o.headings,
            vec![(2, "Retry with jittered backoff".to_owned())]
        );
        assert_eq!(o.code, "# do something monadic idk\nls\n");
        assert!(!o.prose.contains("monadic") && o.prose.contains("Text."));
    }

    #[test]
    fn a_level_one_heading_wins_over_an_earlier_lower_one() {
        let o = outline("## Context\n\nx\n\n# The real title #\n\n### Detail\n");
        assert_eq!(o.title(), Some("The real title"));
        assert_eq!(o.headings.len(), 3);
    }

    #[test]
    fn fences_close_as_commonmark_says() {
        // A longer fence holds a shorter one; tildes do not close backticks.
        let o = outline("````md\n```\n# inside\n```\n~~~\n````\n# Title\n");
        assert_eq!(o.title(), Some("Title"));
        assert_eq!(o.code, "```\n# inside\n```\n~~~\n");
        // Unclosed: the rest is code.
        let o = outline("# Top\n~~~\n# never a heading\n");
        assert_eq!(o.headings, vec![(1, "Top".to_owned())]);
        // Four spaces in: an indented code line, no fence, no heading.
        let o = outline("    ```\n    # not a heading\n# Yes\n");
        assert_eq!(o.title(), Some("Yes"));
    }

    #[test]
    fn what_is_not_a_heading() {
        for l in ["#hashtag", "####### seven", "#", "## ##", "#\tTabbed"] {
            let o = outline(l);
            match l {
                "#\tTabbed" => assert_eq!(o.title(), Some("Tabbed")),
                _ => assert_eq!(o.title(), None, "{l}"),
            }
        }
    }
}
