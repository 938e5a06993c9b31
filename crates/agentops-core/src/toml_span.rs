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

/// `src` without its comments (each line's text from an unquoted `#` on),
/// every line break kept: what the `toml` parser reads is the same, and the
/// parser spends more on a comment than on anything else (a configuration
/// written by `init` is mostly comments, read by every hook). Strings
/// (basic, literal, multi-line) are skipped as the parser reads them, so a
/// `#` inside one is never touched; where the text is not valid TOML (an
/// unterminated string), nothing after the point of doubt is changed.
/// Offsets differ from `src`'s: read a location from `src` itself (parse it
/// again when there is an error to place).
pub fn strip_comments(src: &str) -> std::borrow::Cow<'_, str> {
    let b = src.as_bytes();
    let mut out: Option<String> = None;
    // `src[kept..]` is not yet copied to `out`.
    let mut kept = 0;
    let mut i = 0;
    while let Some(p) = memchr::memchr3(b'#', b'"', b'\'', b.get(i..).unwrap_or_default()) {
        i += p;
        if b[i] == b'#' {
            let end = memchr::memchr2(b'\n', b'\r', &b[i..]).map_or(b.len(), |p| i + p);
            let o = out.get_or_insert_with(|| String::with_capacity(src.len() / 2));
            o.push_str(&src[kept..i]);
            kept = end;
            i = end;
            continue;
        }
        let q = b[i];
        let basic = q == b'"';
        if b[i..].starts_with(&[q, q, q]) {
            // Multi-line: ends at the next unescaped triple quote (with up
            // to two more quotes belonging to the string).
            i += 3;
            loop {
                // An escape may have stepped past the end.
                let rest = b.get(i..).unwrap_or_default();
                let next = if basic {
                    memchr::memchr2(q, b'\\', rest)
                } else {
                    memchr::memchr(q, rest)
                };
                let Some(p) = next else {
                    // Unterminated: leave the rest as it is.
                    return finish(src, out, kept);
                };
                i += p;
                if b[i] == b'\\' {
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
                let rest = b.get(i..).unwrap_or_default();
                let Some(p) = memchr::memchr3(q, b'\\', b'\n', rest) else {
                    return finish(src, out, kept);
                };
                i += p;
                match b[i] {
                    // Unterminated on its line: leave the rest.
                    b'\n' => return finish(src, out, kept),
                    b'\\' if basic => i += 2,
                    c if c == q => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
        if i >= b.len() {
            break;
        }
    }
    finish(src, out, kept)
}

fn finish(src: &str, out: Option<String>, kept: usize) -> std::borrow::Cow<'_, str> {
    match out {
        Some(mut o) => {
            o.push_str(&src[kept.min(src.len())..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(src),
    }
}

#[cfg(test)]
mod strip_tests {
    use super::strip_comments;

    #[test]
    fn comments_go_and_strings_stay() {
        let src = concat!(
            "# top\n[a] # table\nx = \"# not\" # yes\ny = 'lit # no'\n",
            "z = \"\"\"\n# in a string\n\\\"\"\" # still in\n\"\"\" # out\n",
            "w = '''\n# kept\n''''' # gone\n",
        );
        let got = strip_comments(src);
        assert_eq!(
            got,
            concat!(
                "\n[a] \nx = \"# not\" \ny = 'lit # no'\n",
                "z = \"\"\"\n# in a string\n\\\"\"\" # still in\n\"\"\" \n",
                "w = '''\n# kept\n''''' \n",
            )
        );
        assert_eq!(got.matches('\n').count(), src.matches('\n').count());
        let a: toml::Table = toml::from_str(src).unwrap();
        let b: toml::Table = toml::from_str(&got).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_comment_that_is_not_ascii_goes_whole() {
        let src = "a = 1 # héllo ✓\r\nb = 2\n";
        assert_eq!(strip_comments(src), "a = 1 \r\nb = 2\n");
    }

    #[test]
    fn an_unterminated_string_leaves_the_rest_alone() {
        let src = "a = \"open # x\nb = 1 # c\n";
        assert_eq!(strip_comments(src), src);
        let src = "# c\na = '''open # x\nb = 1 # c\n";
        assert_eq!(strip_comments(src), "\na = '''open # x\nb = 1 # c\n");
    }

    proptest::proptest! {
        /// Wherever the original parses, the stripped text parses to the same
        /// table; wherever it does not, neither does the stripped one.
        #[test]
        fn stripping_never_changes_what_parses(src in "[a-c =\"'#\\\\\n\\[\\]0-9.]{0,80}") {
            let got = strip_comments(&src);
            proptest::prop_assert_eq!(got.matches('\n').count(), src.matches('\n').count());
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
