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
