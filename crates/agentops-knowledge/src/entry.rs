//! Knowledge entries: Markdown with YAML front matter.
//!
//! ```text
//! ---
//! id: learning-20261121-retry-flaky-network-tests
//! type: learning
//! title: Retry flaky network tests
//! tags: [ci, testing]
//! created: 2026-11-21T20:12:58Z
//! source: {session: 3f0c1a9e-…}
//! maturity: provisional
//! ---
//!
//! # Retry flaky network tests
//!
//! ## Context
//! …
//! ```
//!
//! Files people write by hand, with or without front matter, are read as they
//! are: the title comes from the first heading, the type from the directory,
//! the id from the file name.

use std::fmt;
use std::path::Path;

use agentops_core::EntryId;
use serde::{Deserialize, Serialize};

/// What kind of knowledge an entry holds; decides its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryType {
    Learning,
    Decision,
    Pattern,
    AntiPattern,
    Handoff,
    Run,
}

impl EntryType {
    /// Every type, in a stable order.
    pub const ALL: [EntryType; 6] = [
        EntryType::Learning,
        EntryType::Decision,
        EntryType::Pattern,
        EntryType::AntiPattern,
        EntryType::Handoff,
        EntryType::Run,
    ];

    /// The name used in front matter and ids.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Learning => "learning",
            EntryType::Decision => "decision",
            EntryType::Pattern => "pattern",
            EntryType::AntiPattern => "anti-pattern",
            EntryType::Handoff => "handoff",
            EntryType::Run => "run",
        }
    }

    /// The directory under `.agents/` that holds this type.
    pub fn dir(self) -> &'static str {
        match self {
            EntryType::Learning => "learnings",
            EntryType::Decision => "decisions",
            EntryType::Pattern | EntryType::AntiPattern => "patterns",
            EntryType::Handoff => "handoffs",
            EntryType::Run => "runs",
        }
    }

    /// The type of a file in `dir` that does not say its own.
    pub fn from_dir(dir: &str) -> Option<Self> {
        match dir {
            "learnings" => Some(EntryType::Learning),
            "decisions" => Some(EntryType::Decision),
            "patterns" => Some(EntryType::Pattern),
            "handoffs" => Some(EntryType::Handoff),
            "runs" => Some(EntryType::Run),
            _ => None,
        }
    }

    /// Parses a type name; the error lists the allowed names.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown entry type `{s}`; allowed: {}",
                    Self::ALL.map(EntryType::as_str).join(", ")
                )
            })
    }
}

/// Whether a file name is a knowledge entry: a `.md` file that is not a
/// dotfile (temporary files, `.gitkeep`) and not a folder's `README.md`.
pub fn is_entry_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".md") && !name.eq_ignore_ascii_case("README.md")
}

/// The directories under `.agents/` that hold knowledge entries.
pub const KNOWLEDGE_DIRS: [&str; 5] = ["learnings", "decisions", "patterns", "handoffs", "runs"];

impl fmt::Display for EntryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far an entry is trusted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Maturity {
    /// New; not yet confirmed useful.
    #[default]
    Provisional,
    /// Confirmed by use.
    Established,
    /// Kept for history; no longer to be followed.
    Deprecated,
}

impl Maturity {
    pub fn as_str(self) -> &'static str {
        match self {
            Maturity::Provisional => "provisional",
            Maturity::Established => "established",
            Maturity::Deprecated => "deprecated",
        }
    }

    /// Parses a maturity name; the error lists the allowed names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "provisional" => Ok(Maturity::Provisional),
            "established" => Ok(Maturity::Established),
            "deprecated" => Ok(Maturity::Deprecated),
            _ => Err(format!(
                "unknown maturity `{s}`; allowed: provisional, established, deprecated"
            )),
        }
    }
}

impl fmt::Display for Maturity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what wrote an entry (front matter `source`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        self.run.is_none() && self.session.is_none() && self.agent.is_none()
    }

    /// The journal run this work belongs to: the run, else the harness
    /// session, else `manual` (a person at the command line).
    pub fn journal_run(&self) -> agentops_core::RunId {
        self.run
            .as_deref()
            .or(self.session.as_deref())
            .and_then(|r| agentops_core::RunId::parse(r).ok())
            .unwrap_or_else(|| {
                agentops_core::RunId::parse("manual")
                    .unwrap_or_else(|_| agentops_core::RunId::generate())
            })
    }
}

/// A knowledge entry, as read from a file or about to be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: EntryId,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub title: String,
    pub tags: Vec<String>,
    /// Microseconds since the epoch, when known (RFC 3339 in JSON).
    #[serde(serialize_with = "agentops_core::time::serialize_opt_us")]
    pub created: Option<i64>,
    pub source: Provenance,
    pub maturity: Maturity,
    pub supersedes: Vec<EntryId>,
    /// Markdown after the front matter.
    pub body: String,
    /// Relative to the work tree, with `/` separators: `.agents/learnings/x.md`.
    pub path: String,
    /// Whether the file had front matter (false for plain hand-written notes).
    pub has_front_matter: bool,
}

/// An entry file that cannot be read, located to the line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{path}:{line}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Invalid {
        path: String,
        line: usize,
        field: Option<String>,
        message: String,
    },
}

impl EntryError {
    fn at(path: &str, line: usize, field: Option<&str>, message: impl Into<String>) -> Self {
        EntryError::Invalid {
            path: path.to_owned(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct FrontMatter {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    tags: Option<OneOrMany>,
    created: Option<String>,
    source: Option<Provenance>,
    maturity: Option<String>,
    supersedes: Option<OneOrMany>,
}

#[derive(Serialize)]
struct FrontMatterOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Provenance::is_empty")]
    source: &'a Provenance,
    maturity: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    supersedes: Vec<&'a str>,
}

/// The tag a handoff carries for the branch it was written on
/// (`branch:feature.login` for `feature/login`), when it makes a valid tag.
pub fn branch_tag(branch: &str) -> Option<String> {
    let t = format!("branch:{}", branch.to_ascii_lowercase().replace('/', "."));
    validate_tag(&t).is_ok().then_some(t)
}

/// Checks a tag: lowercase letters, digits, `-`, `_`, `.`, `:`; no path parts.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && !tag.starts_with(['.', '-'])
        && !tag.contains("..")
        && tag.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | ':')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` is not allowed: use lowercase letters, digits, `-`, `_`, `.`, `:` (at most 64, no leading `.` or `-`)"
        ))
    }
}

/// Splits `---\n<yaml>\n---\n<body>`; returns (yaml, body, line of the yaml's
/// first line). `None` when the text has no front matter.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if trimmed == "---" || trimmed == "..." {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Some((yaml, body));
        }
        offset += line.len();
    }
    None
}

/// The title a body gives itself: its first `# ` heading outside fenced
/// code, else its first heading of any level ([`crate::outline`]).
fn first_heading(body: &str) -> Option<String> {
    crate::outline::outline(body).title().map(str::to_owned)
}

/// The field named on a line of YAML: `key: value` → `key`.
fn field_on_line(yaml: &str, line: usize) -> Option<String> {
    let l = yaml.lines().nth(line.checked_sub(1)?)?;
    let key = l
        .trim_start()
        .trim_start_matches("- ")
        .split(':')
        .next()?
        .trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| key.to_owned())
}

/// The text of an entry file, or why it is not one: entries are UTF-8, and
/// a file that is not is skipped everywhere (list, search, packets) with this
/// message, rather than shown with replacement characters in some places.
pub fn text_of<'b>(rel: &str, bytes: &'b [u8]) -> Result<&'b str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{rel}: not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
            e.valid_up_to()
        )
    })
}

/// Parses an entry file. `path` is relative to the work tree (for messages and
/// for the type and id of files without front matter).
pub fn parse(path: &str, text: &str) -> Result<Entry, EntryError> {
    let p = Path::new(path);
    let stem = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let dir_type = p
        .parent()
        .and_then(|d| {
            d.components()
                .filter_map(|c| c.as_os_str().to_str())
                .find_map(EntryType::from_dir)
        })
        .unwrap_or(EntryType::Learning);
    let file_id = || {
        EntryId::parse(&stem).map_err(|e| {
            EntryError::at(
                path,
                1,
                None,
                format!("the file name is not a usable id: {e}"),
            )
        })
    };
    let Some((yaml, body)) = split_front_matter(text) else {
        if text.starts_with("---") {
            return Err(EntryError::at(
                path,
                1,
                None,
                "front matter starts with `---` but has no closing `---` line",
            ));
        }
        return Ok(Entry {
            id: file_id()?,
            kind: dir_type,
            title: first_heading(text).unwrap_or_else(|| stem.replace(['-', '_'], " ")),
            tags: Vec::new(),
            created: None,
            source: Provenance::default(),
            maturity: Maturity::Provisional,
            supersedes: Vec::new(),
            body: text.to_owned(),
            path: path.to_owned(),
            has_front_matter: false,
        });
    };
    // Front matter lines start at line 2 of the file.
    let fm: FrontMatter = if yaml.trim().is_empty() {
        FrontMatter::default()
    } else {
        serde_saphyr::from_str(yaml).map_err(|e| {
            let yaml_line = e
                .location()
                .map_or(1, |l| usize::try_from(l.line()).unwrap_or(1));
            let field = field_on_line(yaml, yaml_line);
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .trim()
                .to_owned();
            EntryError::at(path, yaml_line + 1, field.as_deref(), first)
        })?
    };
    let line_of = |field: &str| -> usize {
        yaml.lines()
            .position(|l| l.trim_start().starts_with(&format!("{field}:")))
            .map_or(1, |i| i + 2)
    };
    let id = match fm.id {
        Some(s) => EntryId::parse(s.trim())
            .map_err(|e| EntryError::at(path, line_of("id"), Some("id"), e.to_string()))?,
        None => file_id()?,
    };
    let kind = match fm.kind {
        Some(s) => EntryType::parse(s.trim())
            .map_err(|e| EntryError::at(path, line_of("type"), Some("type"), e))?,
        None => dir_type,
    };
    let many = |v: Option<OneOrMany>| match v {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    };
    let tags = many(fm.tags);
    for t in &tags {
        validate_tag(t).map_err(|e| EntryError::at(path, line_of("tags"), Some("tags"), e))?;
    }
    let supersedes = many(fm.supersedes)
        .iter()
        .map(|s| EntryId::parse(s.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            EntryError::at(
                path,
                line_of("supersedes"),
                Some("supersedes"),
                e.to_string(),
            )
        })?;
    let created = match fm.created {
        Some(s) => Some(agentops_core::time::parse_rfc3339(&s).ok_or_else(|| {
            EntryError::at(
                path,
                line_of("created"),
                Some("created"),
                format!(
                    "`{s}` is not a date; use RFC 3339, e.g. 2026-11-21T20:12:58Z or 2026-11-21"
                ),
            )
        })?),
        None => None,
    };
    let maturity = match fm.maturity {
        Some(s) => Maturity::parse(s.trim())
            .map_err(|e| EntryError::at(path, line_of("maturity"), Some("maturity"), e))?,
        None => Maturity::Provisional,
    };
    let title = fm
        .title
        .filter(|t| !t.trim().is_empty())
        .or_else(|| first_heading(body))
        .unwrap_or_else(|| stem.replace(['-', '_'], " "));
    Ok(Entry {
        id,
        kind,
        title,
        tags,
        created,
        source: fm.source.unwrap_or_default(),
        maturity,
        supersedes,
        body: body.strip_prefix('\n').unwrap_or(body).to_owned(),
        path: path.to_owned(),
        has_front_matter: true,
    })
}

/// Renders an entry as the file agentops writes.
pub fn render(e: &Entry) -> Result<String, String> {
    let fm = FrontMatterOut {
        id: e.id.as_str(),
        kind: e.kind.as_str(),
        title: &e.title,
        tags: &e.tags,
        created: e.created.map(agentops_core::time::rfc3339),
        source: &e.source,
        maturity: e.maturity.as_str(),
        supersedes: e.supersedes.iter().map(EntryId::as_str).collect(),
    };
    let yaml =
        serde_saphyr::to_string(&fm).map_err(|err| format!("cannot render front matter: {err}"))?;
    let mut out = String::with_capacity(yaml.len() + e.body.len() + 16);
    out.push_str("---\n");
    out.push_str(&yaml);
    if !yaml.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("---\n\n");
    out.push_str(&e.body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Sets `maturity:` in an existing file's text, changing nothing else: the
/// line is replaced, or added before the closing `---`, or front matter is
/// added to a file without it.
pub fn set_maturity_in_text(text: &str, entry: &Entry, maturity: Maturity) -> String {
    let line = format!("maturity: {}", maturity.as_str());
    if let Some((yaml, body)) = split_front_matter(text) {
        let mut lines: Vec<String> = yaml.lines().map(str::to_owned).collect();
        match lines.iter().position(|l| l.starts_with("maturity:")) {
            Some(i) => lines[i] = line,
            None => lines.push(line),
        }
        let mut out = String::from("---\n");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str("---\n");
        out.push_str(body);
        out
    } else {
        format!(
            "---\nid: {}\ntype: {}\ntitle: {}\n{line}\n---\n\n{text}",
            entry.id,
            entry.kind,
            serde_saphyr::to_string(&entry.title)
                .unwrap_or_else(|_| format!("{:?}", entry.title))
                .trim_end()
        )
    }
}

/// A slug for ids: lowercase ASCII words joined by `-`, at most 48 characters,
/// cut at a word boundary.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    if out.len() > 48 {
        let cut = out[..48].rfind('-').filter(|&i| i >= 16).unwrap_or(48);
        out.truncate(cut);
    }
    if out.is_empty() {
        "entry".to_owned()
    } else {
        out
    }
}

/// The id for a new entry: `<type>-<yyyymmdd>-<slug>`, with `-N` appended for
/// the N-th entry of the same name.
pub fn make_id(
    kind: EntryType,
    created_us: i64,
    title: &str,
    n: u32,
) -> Result<EntryId, agentops_core::IdError> {
    let c = agentops_core::time::civil_from_micros(created_us);
    let base = format!(
        "{}-{:04}{:02}{:02}-{}",
        kind.as_str(),
        c.year,
        c.month,
        c.day,
        slug(title)
    );
    if n <= 1 {
        EntryId::parse(&base)
    } else {
        EntryId::parse(&format!("{base}-{n}"))
    }
}

/// The relative path of a new entry: `.agents/<dir>/<yyyy-mm>/<id>.md`, the
/// month of its creation. Monthly folders keep every git tree small (a memory
/// write rewrites only its folder's tree) and stay under the 1,000 files a
/// forge's web view lists per folder.
pub fn entry_path(kind: EntryType, id: &EntryId, created_us: i64) -> String {
    let c = agentops_core::time::civil_from_micros(created_us);
    format!(
        ".agents/{}/{:04}-{:02}/{}.md",
        kind.dir(),
        c.year,
        c.month,
        id
    )
}

/// Where an id agentops generated would live (`<type>-<yyyymmdd>-…` gives the
/// month folder); `None` for ids of another shape.
pub fn generated_path(id: &EntryId) -> Option<String> {
    let s = id.as_str();
    let kind = EntryType::ALL
        .into_iter()
        .filter(|t| s.starts_with(&format!("{}-", t.as_str())))
        .max_by_key(|t| t.as_str().len())?;
    let date = s.get(kind.as_str().len() + 1..kind.as_str().len() + 9)?;
    if !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        ".agents/{}/{}-{}/{}.md",
        kind.dir(),
        &date[..4],
        &date[4..6],
        s
    ))
}

pub use agentops_git::repo::absolute;

/// Builds a body from the standard sections, skipping empty ones.
pub fn body_from_sections(title: &str, sections: &[(&str, Option<&str>)], extra: &str) -> String {
    let mut out = format!("# {title}\n");
    if !extra.trim().is_empty() {
        out.push('\n');
        out.push_str(extra.trim_end());
        out.push('\n');
    }
    for (name, text) in sections {
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            out.push_str(&format!("\n## {name}\n\n{}\n", t.trim_end()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    fn sample() -> Entry {
        Entry {
            id: EntryId::parse("learning-20261121-retry-flaky-tests").unwrap(),
            kind: EntryType::Learning,
            title: "Retry: flaky tests [ci]".into(),
            tags: vec!["ci".into(), "testing".into()],
            created: Some(1_795_291_978_000_000),
            source: Provenance {
                session: Some("s-1".into()),
                ..Provenance::default()
            },
            maturity: Maturity::Provisional,
            supersedes: vec![EntryId::parse("learning-20260101-old").unwrap()],
            body: "# Retry\n\n## Context\n\nNetwork tests flake.\n".into(),
            path: ".agents/learnings/learning-20261121-retry-flaky-tests.md".into(),
            has_front_matter: true,
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let e = sample();
        let text = render(&e).unwrap();
        assert!(
            text.starts_with("---\nid: learning-20261121-retry-flaky-tests\ntype: learning\n"),
            "{text}"
        );
        let back = parse(&e.path, &text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn hand_written_without_front_matter() {
        let e = parse(
            ".agents/decisions/use-postgres.md",
            "Intro line\n\n# Use Postgres for teams\n\nBecause.\n",
        )
        .unwrap();
        assert_eq!(e.id.as_str(), "use-postgres");
        assert_eq!(e.kind, EntryType::Decision);
        assert_eq!(e.title, "Use Postgres for teams");
        assert!(!e.has_front_matter);
        let e = parse(".agents/patterns/no_heading.md", "just text\n").unwrap();
        assert_eq!(e.title, "no heading");
    }

    #[test]
    fn hand_written_with_partial_front_matter() {
        let e = parse(
            ".agents/patterns/p.md",
            "---\ntags: ci\n---\n# Cache the toolchain\n",
        )
        .unwrap();
        assert_eq!(e.kind, EntryType::Pattern);
        assert_eq!(e.title, "Cache the toolchain");
        assert_eq!(e.tags, vec!["ci".to_owned()]);
        assert_eq!(e.id.as_str(), "p");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = parse(
            ".agents/learnings/x.md",
            "---\nid: x\ntitle: t\nmaturity: golden\n---\nbody\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            ".agents/learnings/x.md:4: field `maturity`: unknown maturity `golden`; allowed: provisional, established, deprecated"
        );
        let err = parse(".agents/learnings/x.md", "---\nid: ../../etc/passwd\n---\n").unwrap_err();
        assert!(
            err.to_string().starts_with(
                ".agents/learnings/x.md:2: field `id`: entry id `../../etc/passwd` contains `/`"
            ),
            "{err}"
        );
        let err = parse(".agents/learnings/x.md", "---\ntags: [ok, ../up]\n---\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(".agents/learnings/x.md:2: field `tags`: tag `../up`"),
            "{err}"
        );
        let err = parse(
            ".agents/learnings/x.md",
            "---\ntitle: t\ncreated: yesterday\n---\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(".agents/learnings/x.md:3: field `created`"),
            "{err}"
        );
        let err = parse(
            ".agents/learnings/x.md",
            "---\ntitle: t\n  bad: [unclosed\n---\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(".agents/learnings/x.md:"),
            "{err}"
        );
        let err = parse(".agents/learnings/x.md", "---\ntitle: never closed\n").unwrap_err();
        assert!(err.to_string().contains("no closing `---`"), "{err}");
    }

    #[test]
    fn maturity_edit_keeps_everything_else() {
        let text = "---\nid: x\ncustom_field: keep me\nmaturity: provisional\n---\n\nBody stays.\n";
        let e = parse(".agents/learnings/x.md", text).unwrap();
        let out = set_maturity_in_text(text, &e, Maturity::Established);
        assert_eq!(
            out,
            "---\nid: x\ncustom_field: keep me\nmaturity: established\n---\n\nBody stays.\n"
        );
        let plain = "# Hand note\n\ntext\n";
        let e = parse(".agents/learnings/hand-note.md", plain).unwrap();
        let out = set_maturity_in_text(plain, &e, Maturity::Deprecated);
        let back = parse(".agents/learnings/hand-note.md", &out).unwrap();
        assert_eq!(back.maturity, Maturity::Deprecated);
        assert_eq!(back.title, "Hand note");
        assert!(out.ends_with("\n\n# Hand note\n\ntext\n"));
    }

    #[test]
    fn slugs_and_ids() {
        assert_eq!(
            slug("Retry flaky network tests!"),
            "retry-flaky-network-tests"
        );
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("日本語"), "entry");
        let long = slug("a very long title that goes on and on well past the limit of characters");
        assert!(long.len() <= 48 && !long.ends_with('-'), "{long}");
        let id = make_id(
            EntryType::AntiPattern,
            1_795_291_978_000_000,
            "Don't sleep in tests",
            2,
        )
        .unwrap();
        assert_eq!(id.as_str(), "anti-pattern-20261121-don-t-sleep-in-tests-2");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "(---\n)?[ -~\n]{0,300}") {
            let _ = parse(".agents/learnings/p.md", &s);
        }

        #[test]
        fn rendered_entries_parse_back(title in "[ -~]{1,60}", body in "[ -~\n]{0,200}", tag in "[a-z][a-z0-9-]{0,10}") {
            prop_assume!(!title.trim().is_empty());
            let mut e = sample();
            e.title = title;
            e.body = body;
            e.tags = vec![tag];
            let text = render(&e).unwrap();
            let back = parse(&e.path, &text).unwrap();
            prop_assert_eq!(back.title, e.title);
            prop_assert_eq!(back.tags, e.tags);
        }
    }
}
