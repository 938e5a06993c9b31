//! Where things are in a TOML file, from the `toml` crate's own spans: the one
//! helper behind every `file:line:key` error (configuration, gates, agent and
//! workflow specs).

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A TOML text with its parse tree (as far as it parses), for locating keys.
pub struct Spans<'a> {
    src: &'a str,
    root: Spanned<DeTable<'a>>,
}

impl<'a> Spans<'a> {
    /// Parses `src`; a syntax error leaves the tree as far as it could be read.
    pub fn new(src: &'a str) -> Self {
        let (root, _errors) = DeTable::parse_recoverable(src);
        Self { src, root }
    }

    /// The source text.
    pub fn src(&self) -> &'a str {
        self.src
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.src, offset)
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.line_col(offset).0
    }

    /// The line where the key at `path` is written (`["gates", "tests",
    /// "command"]`); when it is absent, the line of the deepest table on the
    /// path that exists (its `[header]`); line 1 when none does.
    pub fn key_line(&self, path: &[&str]) -> usize {
        let mut line = 1;
        let mut table = self.root.get_ref();
        for (i, part) in path.iter().enumerate() {
            let Some((key, value)) = table.get_key_value(*part) else {
                break;
            };
            line = self.line(key.span().start);
            match value.get_ref() {
                DeValue::Table(t) if i + 1 < path.len() => table = t,
                _ => break,
            }
        }
        line
    }

    /// The dotted key whose name or value covers `offset`, as deep as the
    /// tree goes (`store.url`), or the table whose header it is.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let mut path = Vec::new();
        self.find(self.root.get_ref(), offset, &mut path)
            .then(|| path.join("."))
    }

    /// Pushes onto `path` the keys down to the one covering `offset`.
    fn find(&self, table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (key, value) in table.iter() {
            path.push(key.get_ref().to_string());
            if key.span().contains(&offset) {
                return true;
            }
            match value.get_ref() {
                // A `[table]`'s body is not in its value's span: look inside,
                // and count its header line as the table's.
                DeValue::Table(t)
                    if self.find(t, offset, path)
                        || self.line(key.span().start) == self.line(offset) =>
                {
                    return true;
                }
                _ if value.span().contains(&offset) => return true,
                _ => {}
            }
            path.pop();
        }
        false
    }
}

/// 1-based line and column of a byte offset in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src.as_bytes()[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const SRC: &str = "top = 1\n\n[gates.tests]\nkind = \"command\"\n\"command\" = \"cargo test\"\n\n[phases.build]\nagent = \"a\"\nctx = { window = 5 }\n";

    #[test]
    fn keys_and_tables_are_found_on_their_lines() {
        let s = Spans::new(SRC);
        assert_eq!(s.key_line(&["top"]), 1);
        assert_eq!(s.key_line(&["gates", "tests", "kind"]), 4);
        assert_eq!(s.key_line(&["gates", "tests", "command"]), 5);
        // Absent key: the table's header.
        assert_eq!(s.key_line(&["gates", "tests", "timeout_s"]), 3);
        assert_eq!(s.key_line(&["phases", "build"]), 7);
        assert_eq!(s.key_line(&["phases", "build", "ctx", "window"]), 9);
        assert_eq!(s.key_line(&["nothing", "here"]), 1);
    }

    #[test]
    fn the_key_at_an_offset_is_named() {
        let s = Spans::new(SRC);
        let at = |needle: &str| s.key_at(SRC.find(needle).unwrap());
        assert_eq!(at("\"command\"\n").as_deref(), Some("gates.tests.kind"));
        assert_eq!(at("cargo").as_deref(), Some("gates.tests.command"));
        assert_eq!(at("5 }").as_deref(), Some("phases.build.ctx.window"));
        assert_eq!(at("1\n").as_deref(), Some("top"));
    }

    #[test]
    fn a_broken_file_still_locates_what_parsed() {
        let src = "[store]\nurl = \"x\"\n[hooks\ntimeout_ms = 5\n";
        let s = Spans::new(src);
        assert_eq!(s.key_line(&["store", "url"]), 2);
        assert_eq!(line_col(src, src.find("timeout").unwrap()), (4, 1));
    }
}

/// `src` with every comment turned into spaces: the same length, so every
/// span, line and column is where it was in `src`. The `toml` parser spends
/// more on a comment than on anything else, and a configuration written by
/// `init` is mostly comments, read by every hook. Strings (basic, literal,
/// multi-line) are skipped as the parser reads them, so a `#` inside one is
/// never touched; where the text is not valid TOML (an unterminated string),
/// nothing after the point of doubt is changed, and the parser reports the
/// same error.
pub fn blank_comments(src: &str) -> std::borrow::Cow<'_, str> {
    let b = src.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map_or(b.len(), |p| i + p);
                let o = out.get_or_insert_with(|| b.to_vec());
                o[i..end].fill(b' ');
                i = end;
            }
            q @ (b'"' | b'\'') => {
                let basic = q == b'"';
                if b[i..].starts_with(&[q, q, q]) {
                    // Multi-line: ends at the next unescaped triple quote
                    // (with up to two more quotes belonging to the string).
                    i += 3;
                    loop {
                        if i >= b.len() {
                            // Unterminated: leave the rest as it is.
                            return finish(src, out);
                        }
                        if basic && b[i] == b'\\' {
                            i += 2;
                        } else if b[i..].starts_with(&[q, q, q]) {
                            while i < b.len() && b[i] == q {
                                i += 1;
                            }
                            break;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    i += 1;
                    loop {
                        if i >= b.len() || b[i] == b'\n' {
                            // Unterminated on its line: leave the rest.
                            return finish(src, out);
                        }
                        if basic && b[i] == b'\\' {
                            i += 2;
                        } else if b[i] == q {
                            i += 1;
                            break;
                        } else {
                            i += 1;
                        }
                    }
                }
            }
            _ => i += 1,
        }
    }
    finish(src, out)
}

fn finish(src: &str, out: Option<Vec<u8>>) -> std::borrow::Cow<'_, str> {
    match out {
        // Only ASCII bytes of comments were replaced by ASCII spaces, whole
        // characters each: the text is still UTF-8.
        Some(o) => match String::from_utf8(o) {
            Ok(s) => std::borrow::Cow::Owned(s),
            Err(_) => std::borrow::Cow::Borrowed(src),
        },
        None => std::borrow::Cow::Borrowed(src),
    }
}

#[cfg(test)]
mod blank_tests {
    use super::blank_comments;

    #[test]
    fn comments_become_spaces_and_strings_stay() {
        let src = "# top\n[a] # table\nx = \"# not\" # yes\ny = 'lit # no'\nz = \"\"\"\n# in a string\n\\\"\"\" # still in\n\"\"\" # out\nw = '''\n# kept\n''''' # gone\n";
        let got = blank_comments(src);
        assert_eq!(got.len(), src.len());
        assert_eq!(
            got,
            "     \n[a]        \nx = \"# not\"      \ny = 'lit # no'\nz = \"\"\"\n# in a string\n\\\"\"\" # still in\n\"\"\"      \nw = '''\n# kept\n'''''       \n"
        );
        let a: toml::Table = toml::from_str(src).unwrap();
        let b: toml::Table = toml::from_str(&got).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn comment_bytes_that_are_not_ascii_are_blanked_whole() {
        let src = "a = 1 # héllo ✓\r\nb = 2\n";
        let got = blank_comments(src);
        assert_eq!(got.len(), src.len());
        assert!(
            got.starts_with("a = 1 ") && got.ends_with("\r\nb = 2\n"),
            "{got:?}"
        );
    }

    #[test]
    fn an_unterminated_string_leaves_the_rest_alone() {
        let src = "a = \"open # x\nb = 1 # c\n";
        assert_eq!(blank_comments(src), src);
    }

    proptest::proptest! {
        /// Wherever the original parses, the blanked text parses to the same
        /// table; wherever it does not, neither does the blanked one.
        #[test]
        fn blanking_never_changes_what_parses(src in "[a-c =\"'#\\\\\n\\[\\]0-9.]{0,80}") {
            let got = blank_comments(&src);
            proptest::prop_assert_eq!(got.len(), src.len());
            let a = toml::from_str::<toml::Table>(&src);
            let b = toml::from_str::<toml::Table>(&got);
            match (a, b) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => proptest::prop_assert!(false, "{src:?}: {a:?} vs {b:?}"),
            }
        }
    }
}
