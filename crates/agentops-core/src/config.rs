//! Configuration: the project's `.agents/config.toml`, the user's
//! `$XDG_CONFIG_HOME/agentops/config.toml`, `AGENTOPS_*` environment variables
//! and command-line flags, merged with precedence
//! flag > env > project > user > default.
//!
//! A bad value is reported with the file, line and key, and what is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::toml_span;
use keys::SetError;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Source {
    /// A file, by path.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, by name.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(n) => write!(f, "environment variable {n}"),
            Source::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A configuration problem, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{location}: {message}")]
    Invalid {
        /// `file:line:column`, or the env var / flag name.
        location: String,
        /// The dotted key at fault, when known.
        key: Option<String>,
        message: String,
    },
}

impl ConfigError {
    fn invalid(location: String, key: Option<String>, message: String) -> Self {
        ConfigError::Invalid {
            location,
            key,
            message,
        }
    }
}

/// How hard the journal pushes each commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged event survives power loss.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a crash of agentops, not of the machine.
    Normal,
}

/// Whether memory writes become git commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryCommit {
    /// Commit every memory write.
    #[default]
    Auto,
    /// Write files only; the user commits.
    Off,
}

/// When session hooks run `agentops sync` (`memory.auto_sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoSync {
    /// Never: `agentops sync` by hand.
    #[default]
    Off,
    /// On SessionStart, before the briefing (others' knowledge comes in).
    Start,
    /// On SessionEnd, after the handoff (this session's goes out).
    End,
    /// Both.
    Both,
}

impl AutoSync {
    /// Whether a hook for `start` (SessionStart) or not (SessionEnd) syncs.
    pub fn on(self, start: bool) -> bool {
        matches!(
            (self, start),
            (AutoSync::Both, _) | (AutoSync::Start, true) | (AutoSync::End, false)
        )
    }
}

/// One `[prices]` row: USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: f64,
    pub output: f64,
    /// Default: the input price.
    pub cache_read: Option<f64>,
    /// Default: the input price.
    pub cache_write: Option<f64>,
}

/// What a harness hook does when it cannot decide (an internal error or its
/// time limit): `open` lets the agent go on, `closed` denies the tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

/// Tokenizers agentops can count with (`context.tokenizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// OpenAI's o200k_base (GPT-4o and later); the default.
    #[default]
    O200k,
    Cl100k,
}

mod checks;

/// Whether a connection URL (or libpq key=value string) carries a password:
/// `user:password@` in its authority, or a `password=` parameter.
pub fn url_has_password(url: &str) -> bool {
    if url.to_ascii_lowercase().contains("password=") {
        return true;
    }
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}
mod keys;

pub use keys::{
    AlertsConfig, Config, ContextConfig, HooksConfig, JournalConfig, KEYS, Key, LlmConfig,
    MemoryConfig, PolicyConfig, RedactionConfig, Rule, SECTIONS, StoreConfig, TelemetryConfig,
};

/// The environment variable for a dotted key: `store.url` → `AGENTOPS_STORE_URL`.
pub fn env_name(key: &str) -> String {
    format!("AGENTOPS_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Inputs to [`load`]: the files to read and the overrides that beat them.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `.agents/config.toml` of the project, if there is a project.
    pub project_file: Option<PathBuf>,
    /// The user's config file, if any.
    pub user_file: Option<PathBuf>,
    /// Environment variables (name, value); usually `std::env::vars()`.
    pub env: Vec<(String, String)>,
    /// Command-line overrides as (dotted key, value, flag name).
    pub flags: Vec<(String, String, String)>,
}

/// The user's config file: `$XDG_CONFIG_HOME/agentops/config.toml`, else
/// `$HOME/.config/agentops/config.toml`.
pub fn user_config_path(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |n: &str| {
        env.iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    };
    get("XDG_CONFIG_HOME")
        .or_else(|| get("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("agentops").join("config.toml"))
}

/// `policy.fail` read leniently, for when [`load`] fails: a hook must stay
/// closed when the project said `closed`, even if another key is misspelt or
/// the file is not valid TOML. Precedence as in [`load`]: environment, then
/// the project file, then the user's file; anything unreadable counts as unset.
pub fn lenient_fail_mode(opts: &LoadOptions) -> FailMode {
    let parse = |v: &str| match v
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase()
        .as_str()
    {
        "closed" => Some(FailMode::Closed),
        "open" => Some(FailMode::Open),
        _ => None,
    };
    if let Some(m) = opts
        .env
        .iter()
        .find(|(k, _)| k == "AGENTOPS_POLICY_FAIL")
        .and_then(|(_, v)| parse(v))
    {
        return m;
    }
    for path in [&opts.project_file, &opts.user_file].into_iter().flatten() {
        let Ok(src) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(m) = fail_mode_in(&src).and_then(parse) {
            return m;
        }
    }
    FailMode::Open
}

/// The value text of `fail` in the `[policy]` table (or `policy.fail` at the
/// top level), found line by line so a syntax error elsewhere does not hide it.
fn fail_mode_in(src: &str) -> Option<&str> {
    let mut table = "";
    let mut found = None;
    for line in src.lines() {
        let l = line.split('#').next().unwrap_or("").trim();
        if let Some(t) = l.strip_prefix('[') {
            table = t.trim_end_matches(']').trim();
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if (table == "policy" && k == "fail") || (table.is_empty() && k == "policy.fail") {
            found = Some(v.trim());
        }
    }
    found
}

/// Reads and merges every layer. Missing files are fine; unreadable or invalid
/// ones are errors.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    for path in [&opts.user_file, &opts.project_file].into_iter().flatten() {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
        };
        apply_file(&mut cfg, path, &src)?;
    }
    // Most processes have no AGENTOPS_ variable at all: then no key's name
    // is built (a hook pays for every instruction).
    let ours: Vec<&(String, String)> = opts
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("AGENTOPS_"))
        .collect();
    if !ours.is_empty() {
        for key in KEYS.iter().filter(|k| !k.name.contains('<')) {
            let name = env_name(&key.dotted());
            if let Some((_, value)) = ours.iter().find(|(k, _)| *k == name) {
                apply_override(&mut cfg, key, value, &name)?;
            }
        }
    }
    for (dotted, value, flag) in &opts.flags {
        let key = find_key(dotted).ok_or_else(|| {
            ConfigError::invalid(
                flag.clone(),
                Some(dotted.clone()),
                explain("unknown key", Some(dotted)),
            )
        })?;
        apply_override(&mut cfg, key, value, flag)?;
    }
    Ok(cfg)
}

/// Parses one config file's text without merging it (for `doctor`).
pub fn check_file(path: &Path, src: &str) -> Result<(), ConfigError> {
    apply_file(&mut Config::default(), path, src)
}

/// The key `section.name`, or the `[prices]` row it names.
fn find_key(dotted: &str) -> Option<&'static Key> {
    let (section, name) = dotted.split_once('.')?;
    KEYS.iter().find(|k| {
        k.section == section && (k.name == name || (section == "prices" && !name.is_empty()))
    })
}

/// Sets every key `src` names, in the order written; the first bad one is
/// the error, located at its key (a semantic error) or its value (a type
/// error).
fn apply_file(cfg: &mut Config, path: &Path, src: &str) -> Result<(), ConfigError> {
    // Comments cost the parser more than the keys: the text without them
    // is read first; only when it has an error is the file read as written,
    // so that the error is placed where it is in the file.
    if let std::borrow::Cow::Owned(stripped) = crate::toml_span::strip_comments(src)
        && apply_text(cfg, path, &stripped).is_ok()
    {
        return Ok(());
    }
    apply_text(cfg, path, src)
}

/// [`apply_file`] on `src` as given; locations are offsets into `src`.
fn apply_text(cfg: &mut Config, path: &Path, src: &str) -> Result<(), ConfigError> {
    let root = DeTable::parse(src).map_err(|e| syntax_error(path, src, &e))?;
    let at_line =
        |offset: usize| format!("{}:{}", path.display(), toml_span::line_col(src, offset).0);
    let at_col = |offset: usize| {
        let (line, col) = toml_span::line_col(src, offset);
        format!("{}:{line}:{col}", path.display())
    };
    for (section, value) in root.get_ref() {
        let section_name: &str = section.get_ref();
        if section_name == "gates" {
            // `[gates.<name>]`: validated by the gates engine, which reports
            // its own file:line:key errors.
            continue;
        }
        let known = section_name == "prices" || SECTIONS.iter().any(|(s, _)| *s == section_name);
        let DeValue::Table(table) = value.get_ref() else {
            let message = if known {
                format!(
                    "key `{section_name}`: is a table; write `[{section_name}]` and its keys below it"
                )
            } else {
                explain(&format!("unknown key `{section_name}`"), Some(section_name))
            };
            return Err(ConfigError::invalid(
                at_col(section.span().start),
                Some(section_name.into()),
                message,
            ));
        };
        if !known {
            return Err(ConfigError::invalid(
                at_col(section.span().start),
                Some(section_name.into()),
                explain(
                    &format!("unknown table `[{section_name}]`"),
                    Some(section_name),
                ),
            ));
        }
        for (name, value) in table {
            let dotted = format!("{section_name}.{}", name.get_ref());
            let Some(key) = find_key(&dotted) else {
                return Err(ConfigError::invalid(
                    at_col(name.span().start),
                    Some(dotted.clone()),
                    explain(
                        &format!("unknown field `{}`", name.get_ref()),
                        Some(&dotted),
                    ),
                ));
            };
            let start = value.span().start;
            (key.set)(cfg, name.get_ref(), ValueDeserializer::from(value.clone())).map_err(
                |e| match e {
                    SetError::Type(err) => ConfigError::invalid(
                        at_col(err.span().map_or(start, |s| s.start)),
                        Some(dotted.clone()),
                        explain(err.message(), Some(&dotted)),
                    ),
                    SetError::Invalid(m) => ConfigError::invalid(
                        at_line(name.span().start),
                        Some(dotted.clone()),
                        format!("key `{dotted}`: {m}"),
                    ),
                },
            )?;
        }
    }
    Ok(())
}

/// A file that is not valid TOML, located at the error.
fn syntax_error(path: &Path, src: &str, e: &toml::de::Error) -> ConfigError {
    let start = e.span().map_or(0, |s| s.start);
    let (line, col) = toml_span::line_col(src, start);
    let key = toml_span::Spans::new(src)
        .key_at(start)
        .or_else(|| header_at(src, line));
    let mut message = explain(e.message(), key.as_deref());
    if e.message().contains("duplicate")
        && let Some(k) = &key
        && let Some(first) = src
            .lines()
            .position(|l| l.trim() == format!("[{k}]"))
            .map(|i| i + 1)
            .filter(|&first| first != line)
    {
        message = format!(
            "table `[{k}]` is defined twice: first at line {first}, again at line {line}; merge them into one"
        );
    }
    ConfigError::invalid(format!("{}:{line}:{col}", path.display()), key, message)
}

/// The table named by a `[header]` on 1-based `line`, if that line is one.
fn header_at(src: &str, line: usize) -> Option<String> {
    let l = src.lines().nth(line.checked_sub(1)?)?.trim();
    let name = l.strip_prefix('[')?.split(']').next()?.trim();
    (!name.is_empty() && !name.starts_with('[')).then(|| name.to_owned())
}

/// One key from an environment variable or flag. Typed values (numbers,
/// booleans, lists) are given in TOML syntax; a value that does not parse as
/// TOML, or that the key does not take as typed, is taken as a plain string.
fn apply_override(
    cfg: &mut Config,
    key: &Key,
    value: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let dotted = key.dotted();
    let plain = || Spanned::new(0..value.len(), DeValue::String(Cow::Borrowed(value)));
    let typed = DeValue::parse(value)
        .ok()
        .filter(|v| !matches!(v.get_ref(), DeValue::String(_)));
    let mut result = (key.set)(
        cfg,
        key.name,
        ValueDeserializer::from(typed.clone().unwrap_or_else(plain)),
    );
    if typed.is_some() && matches!(result, Err(SetError::Type(_))) {
        // `AGENTOPS_TELEMETRY_PROJECT=true` names a project called "true".
        if (key.set)(cfg, key.name, ValueDeserializer::from(plain())).is_ok() {
            result = Ok(());
        }
    }
    result.map_err(|e| {
        let message = match e {
            SetError::Type(err) => explain(err.message(), Some(&dotted)),
            SetError::Invalid(m) => format!("key `{dotted}`: {m}"),
        };
        ConfigError::invalid(origin.to_owned(), Some(dotted.clone()), message)
    })
}

fn explain(message: &str, key: Option<&str>) -> String {
    let msg = message.trim();
    match key {
        Some(k) => match find_key(k) {
            Some(known) => format!("key `{k}`: {msg}; allowed: {}", known.rule.allowed()),
            None => {
                let close = close_keys(k);
                if close.is_empty() {
                    format!("key `{k}`: {msg}; every key is listed in docs/configuration.md")
                } else {
                    format!("key `{k}`: {msg}; did you mean {}?", close.join(" or "))
                }
            }
        },
        None => msg.to_owned(),
    }
}

/// The known keys `key` is probably a misspelling of (a few edits away, or
/// the same name in another table), as `` `a.b` ``; the keys of its table
/// when nothing is that close.
fn close_keys(key: &str) -> Vec<String> {
    let leaf = |k: &str| k.rsplit('.').next().unwrap_or(k).to_owned();
    let limit = (key.len() / 4).max(2);
    let dotted: Vec<String> = KEYS.iter().map(Key::dotted).collect();
    let mut close: Vec<String> = dotted
        .iter()
        .filter(|k| edits(k, key) <= limit || (leaf(k) == leaf(key) && key.contains('.')))
        .map(|k| format!("`{k}`"))
        .collect();
    if close.is_empty() {
        let table = key.split_once('.').map_or(key, |(t, _)| t);
        close = dotted
            .iter()
            .filter(|k| k.split_once('.').is_some_and(|(t, _)| t == table))
            .map(|k| format!("`{k}`"))
            .collect();
    }
    close.truncate(6);
    close
}

/// Levenshtein distance (keys are short).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `AGENTOPS_*` variables in `env` that configure nothing: a misspelt key
/// (`AGENTOPS_MEMORY_COMIT`) is otherwise ignored silently. One warning each,
/// with the variable it was probably meant to be.
pub fn unknown_env(env: &[(String, String)]) -> Vec<String> {
    // Variables agentops reads that are not configuration keys.
    const OTHERS: &[&str] = &[
        "AGENTOPS_RUN_ID",
        "AGENTOPS_SESSION_ID",
        "AGENTOPS_AGENT",
        "AGENTOPS_TASK_FILE",
        "AGENTOPS_PHOENIX",
        "AGENTOPS_REQUIRE_PHOENIX",
        "AGENTOPS_TEST_CHILD_WRITER",
        "AGENTOPS_MCP_TOKEN",
        "AGENTOPS_UI_TOKEN",
        "AGENTOPS_CHROMIUM",
        "AGENTOPS_PUPPETEER",
        "AGENTOPS_REQUIRE_BROWSER",
        "AGENTOPS_MCP_SDK",
        "AGENTOPS_REQUIRE_MCP_SDK",
        "AGENTOPS_HOST",
        "AGENTOPS_USER",
        "AGENTOPS_PG_URL",
        "AGENTOPS_PG_PASSWORD",
        "AGENTOPS_PG_DIR",
        "AGENTOPS_PG_CA",
        "AGENTOPS_PG_BIN",
        "AGENTOPS_REQUIRE_POSTGRES",
    ];
    let known: Vec<String> = KEYS
        .iter()
        .filter(|k| !k.name.contains('<'))
        .map(|k| env_name(&k.dotted()))
        .collect();
    env.iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("AGENTOPS_") && k.len() > "AGENTOPS_".len())
        .filter(|k| {
            !known.contains(k)
                && !OTHERS.contains(&k.as_str())
                && !k.starts_with("AGENTOPS_PRICES_")
        })
        .map(|k| {
            let best = known
                .iter()
                .map(|n| (edits(n, k), n))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, n)| format!("; did you mean {n}?"))
                .unwrap_or_default();
            format!("environment variable {k} is not an agentops setting and is ignored{best}")
        })
        .collect()
}

/// Whether `name` is acceptable as a git branch name (a conservative subset of
/// `git check-ref-format --branch`).
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

/// The first doc line of a section without its `` `[name]`: `` prefix,
/// capitalised, then the rest.
fn section_doc(doc: &[&str]) -> Vec<String> {
    doc.iter()
        .enumerate()
        .map(|(i, l)| {
            let l = l.trim();
            if i > 0 {
                return l.to_owned();
            }
            let l = l.split_once("`: ").map_or(l, |(_, rest)| rest);
            let mut c = l.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// A commented `config.toml` for `agentops init`, listing every key with its
/// doc and default (or, for a key unset by default, an example).
pub fn commented_template() -> String {
    let mut out = String::from(
        r#"# agentops project configuration. Every key is optional; each `# key = value`
# line shows the default (or, for a key unset by default, an example).
# Precedence: command-line flag > AGENTOPS_* environment variable
# (e.g. AGENTOPS_MEMORY_COMMIT=off) > this file > the user's
# $XDG_CONFIG_HOME/agentops/config.toml > built-in default.
# Never put secrets here: name the environment variable that holds them.
"#,
    );
    for (section, doc) in SECTIONS {
        out.push_str(&format!("\n[{section}]\n"));
        for line in section_doc(doc) {
            out.push_str(&format!("# {line}\n"));
        }
        for key in KEYS.iter().filter(|k| k.section == *section) {
            for line in key.doc {
                out.push_str(&format!("#{line}\n"));
            }
            match ((key.value)(&Config::default()), key.example) {
                (Some(default), Some(example)) => {
                    out.push_str(&format!("# {} = {default}   # e.g. {example}\n", key.name))
                }
                (Some(default), None) => out.push_str(&format!("# {} = {default}\n", key.name)),
                (None, example) => out.push_str(&format!(
                    "# (unset by default)\n# {} = {}\n",
                    key.name,
                    example.unwrap_or("\"\"")
                )),
            }
        }
    }
    let prices = KEYS.iter().find(|k| k.section == "prices");
    out.push_str("\n# [prices]\n");
    for line in prices.map_or(&[][..], |k| k.doc) {
        out.push_str(&format!("#{line}\n"));
    }
    out.push_str(&format!(
        "# \"my-finetune\" = {}\n",
        prices.and_then(|k| k.example).unwrap_or("{}")
    ));
    out.push_str(
        r#"
# Gates: checks that block bad work, run by `agentops gate run` (and between
# workflow phases). Kinds: command, scope, diff, secrets, judge, council, approval
# (docs/factor-4-gates.md).
# [gates.tests]
# kind = "command"
# command = "cargo test"
# timeout_s = 900
#
# [gates.scope]
# kind = "scope"
# allow = ["src/**", "tests/**", "docs/**"]
#
# [gates.size]
# kind = "diff"
# max_files = 30
# max_lines = 1500
#
# [gates.secrets]
# kind = "secrets"
"#,
    );
    out
}

/// The keys table of docs/configuration.md (between its `keys` markers), as
/// derived from [`KEYS`]: a test keeps the two the same.
pub fn keys_markdown() -> String {
    let mut out = String::from("| key | default | allowed | what it does |\n|---|---|---|---|\n");
    for key in KEYS {
        let default = (key.value)(&Config::default()).map_or_else(
            || {
                if key.section == "prices" {
                    "built-in table".to_owned()
                } else {
                    "unset".to_owned()
                }
            },
            |d| format!("`{d}`"),
        );
        let doc = key
            .doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "| `{}` | {default} | {} | {} |\n",
            key.dotted(),
            key.rule.allowed().replace('|', "\\|"),
            doc.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The error of loading `text` as the project file `name`.
    fn load_err(dir: &Path, name: &str, text: &str) -> (PathBuf, String) {
        let p = write(dir, name, text);
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        (p, err)
    }

    #[test]
    fn fail_mode_is_read_leniently_from_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |project: &str, env: &[(&str, &str)]| LoadOptions {
            project_file: Some(write(dir.path(), "p.toml", project)),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        // A typo elsewhere (load fails) and a syntax error do not hide it.
        let typo = "[memory]\ncomit = \"auto\"\n\n[policy]\nfail = \"closed\"  # no surprises\n";
        assert!(load(&opts(typo, &[])).is_err());
        assert_eq!(lenient_fail_mode(&opts(typo, &[])), FailMode::Closed);
        let broken = "[policy\nfail = 'closed'\n[[[ nonsense";
        assert_eq!(lenient_fail_mode(&opts(broken, &[])), FailMode::Closed);
        assert_eq!(
            lenient_fail_mode(&opts("policy.fail = \"closed\"\n", &[])),
            FailMode::Closed
        );
        // Another table's `fail` is not the policy's.
        assert_eq!(
            lenient_fail_mode(&opts("[gates.x]\nfail = \"closed\"\n", &[])),
            FailMode::Open
        );
        assert_eq!(
            lenient_fail_mode(&opts(typo, &[("AGENTOPS_POLICY_FAIL", "open")])),
            FailMode::Open
        );
        assert_eq!(lenient_fail_mode(&LoadOptions::default()), FailMode::Open);
    }

    #[test]
    fn template_parses_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", &commented_template());
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg, Config::default());
    }

    /// Uncommenting every `# key = value` line of the template gives a valid
    /// file whose keys with a default keep it (the examples are valid too).
    #[test]
    fn uncommented_template_keeps_the_defaults() {
        let template = commented_template();
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let sections = &template[..template.find("\n# [prices]").unwrap()];
        let uncommented: String = sections
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| names.contains(&k)) =>
                {
                    rest.to_owned()
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", &uncommented);
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        let defaults = Config::default();
        let mut set = 0;
        for key in KEYS.iter().filter(|k| k.section != "prices") {
            assert!(
                uncommented.contains(&format!("\n{} = ", key.name)),
                "the template lacks `{}`",
                key.dotted()
            );
            if let Some(d) = (key.value)(&defaults) {
                assert_eq!((key.value)(&cfg), Some(d), "{}", key.dotted());
                set += 1;
            } else {
                assert!((key.value)(&cfg).is_some(), "{}: example", key.dotted());
            }
        }
        assert!(set > 30, "{set}");
    }

    #[test]
    fn precedence_flag_env_project_user() {
        let dir = tempfile::tempdir().unwrap();
        let user = write(
            dir.path(),
            "user.toml",
            "[memory]\ncommit = \"off\"\nbranch = \"user-branch\"\n[store]\nbusy_timeout_ms = 200\n",
        );
        let project = write(
            dir.path(),
            "project.toml",
            "[memory]\nbranch = \"project-branch\"\n[store]\nbusy_timeout_ms = 300\n",
        );
        let opts = LoadOptions {
            project_file: Some(project),
            user_file: Some(user),
            env: vec![("AGENTOPS_STORE_BUSY_TIMEOUT_MS".into(), "400".into())],
            flags: vec![],
        };
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.memory.commit, MemoryCommit::Off);
        assert_eq!(cfg.memory.branch.as_deref(), Some("project-branch"));
        assert_eq!(cfg.store.busy_timeout_ms, 400);
        let cfg = load(&LoadOptions {
            flags: vec![(
                "store.busy_timeout_ms".into(),
                "500".into(),
                "--busy-timeout".into(),
            )],
            ..opts
        })
        .unwrap();
        assert_eq!(cfg.store.busy_timeout_ms, 500);
    }

    #[test]
    fn bad_enum_value_names_file_line_key_and_allowed_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "config.toml",
            "# comment\n[memory]\nbranch = \"main\"\ncommit = \"sometimes\"\n",
        );
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err();
        let ConfigError::Invalid {
            location,
            key,
            message,
        } = err
        else {
            panic!("wrong error")
        };
        assert_eq!(location, format!("{}:4:10", p.display()));
        assert_eq!(key.as_deref(), Some("memory.commit"));
        assert!(message.contains("`auto`"), "{message}");
        assert!(
            message.contains("allowed: \"auto\" or \"off\""),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (p, err) = load_err(dir.path(), "config.toml", "[store]\nurll = \"x\"\n");
        assert!(
            err.starts_with(&format!("{}:2:1: key `store.urll`", p.display())),
            "{err}"
        );
        assert!(err.contains("unknown field `urll`"), "{err}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "config.toml",
            "[redaction]\n\nextra_patterns = [\"(\"]\n",
        );
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3: key `redaction.extra_patterns`",
                p.display()
            )),
            "{err}"
        );
        let (p, err) = load_err(
            dir.path(),
            "c2.toml",
            "[store]\nurl = \"postgres://app:hunter2@db/team\"\n",
        );
        assert!(
            err.contains("PGPASSWORD") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(
            err.starts_with(&format!("{}:2: key `store.url`", p.display())),
            "{err}"
        );
        // Comments are not read for the keys, but an error is still placed
        // at its line and column in the file as written.
        let (p, err) = load_err(
            dir.path(),
            "c3.toml",
            "# one\n# two\n[hooks] # three\n# four\n  injection_budget = \"lots\" # five\n",
        );
        assert!(
            err.starts_with(&format!(
                "{}:5:22: key `hooks.injection_budget`",
                p.display()
            )),
            "{err}"
        );
        let (p, err) = load_err(dir.path(), "c4.toml", "# a\n# b\n[hooks]\n# c\nnope = 1\n");
        assert!(
            err.starts_with(&format!("{}:5:1: key `hooks.nope`", p.display())),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load(&LoadOptions {
            env: vec![("AGENTOPS_JOURNAL_SYNCHRONOUS".into(), "maybe".into())],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("AGENTOPS_JOURNAL_SYNCHRONOUS: key `journal.synchronous`"),
            "{err}"
        );
        let err = load(&LoadOptions {
            env: vec![("AGENTOPS_STORE_BUSY_TIMEOUT_MS".into(), "soon".into())],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("store.busy_timeout_ms"), "{err}");
    }

    #[test]
    fn syntax_error_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let (p, err) = load_err(dir.path(), "config.toml", "[store]\nurl = \n");
        assert!(err.starts_with(&format!("{}:2:", p.display())), "{err}");
    }

    #[test]
    fn context_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "c.toml",
            "[context]\npacket_max = 2000\ntokenizer = \"cl100k\"\nwindows = { \"my-model\" = 32000 }\n",
        );
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.context.packet_max, 2000);
        assert_eq!(cfg.context.tokenizer, Tokenizer::Cl100k);
        assert_eq!(cfg.context.windows.get("my-model"), Some(&32000));
        let (p, err) = load_err(dir.path(), "d.toml", "[context]\n\npacket_max = 5\n");
        assert!(
            err.starts_with(&format!(
                "{}:3: key `context.packet_max`: 5 is out of range",
                p.display()
            )),
            "{err}"
        );
        let p = write(
            dir.path(),
            "e.toml",
            "[context]\nembeddings = \"openai:nomic-embed-text\"\nembeddings_base_url = \"http://127.0.0.1:11434/v1/\"\nembeddings_key_env = \"OLLAMA_KEY\"\nexpansion = false\n",
        );
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.context.embeddings, "openai:nomic-embed-text");
        assert_eq!(
            cfg.context.embeddings_key_env.as_deref(),
            Some("OLLAMA_KEY")
        );
        assert!(!cfg.context.expansion);
        for (text, want) in [
            (
                "embeddings = \"cohere:embed\"",
                "is not an embedding provider",
            ),
            ("embeddings = \"openai:\"", "names no model"),
            (
                "embeddings_base_url = \"localhost:11434\"",
                "not an http:// or https:// URL",
            ),
            (
                "embeddings_key_env = \"sk-abc123 \"",
                "not an environment variable name",
            ),
            ("embeddings_timeout_ms = 5", "out of range"),
        ] {
            let (p, err) = load_err(dir.path(), "f.toml", &format!("[context]\n{text}\n"));
            let key = text.split(' ').next().unwrap();
            assert!(
                err.starts_with(&format!("{}:2: key `context.{key}`", p.display()))
                    && err.contains(want),
                "{err}"
            );
        }
    }

    #[test]
    fn branch_names() {
        assert!(valid_branch_name("agentops/memory"));
        assert!(!valid_branch_name("../x"));
        assert!(!valid_branch_name("-x"));
        assert!(!valid_branch_name("a b"));
    }

    /// The keys table of docs/configuration.md is the one derived from
    /// [`KEYS`] (`AGENTOPS_BLESS=1` rewrites it), and every key is reachable
    /// as an `AGENTOPS_*` variable.
    #[test]
    fn docs_table_is_derived_from_the_keys() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- keys:begin -->\n", "<!-- keys:end -->");
        let a = docs
            .find(begin)
            .expect("docs/configuration.md lacks the keys:begin marker")
            + begin.len();
        let b = docs
            .find(end)
            .expect("docs/configuration.md lacks the keys:end marker");
        let want = keys_markdown();
        if std::env::var_os("AGENTOPS_BLESS").is_some() && docs[a..b] != want {
            std::fs::write(path, format!("{}{want}{}", &docs[..a], &docs[b..])).unwrap();
            return;
        }
        assert_eq!(
            docs[a..b],
            want,
            "docs/configuration.md's keys table differs from KEYS: run with AGENTOPS_BLESS=1"
        );
        for key in KEYS.iter().filter(|k| k.section != "prices") {
            let name = env_name(&key.dotted());
            let cfg = load(&LoadOptions {
                env: vec![(name.clone(), "\u{1}bad".into())],
                ..Default::default()
            });
            // Every variable is read: a value no key takes is refused by name,
            // unless the key takes any string.
            if let Err(e) = cfg {
                assert!(
                    e.to_string()
                        .starts_with(&format!("{name}: key `{}`", key.dotted())),
                    "{e}"
                );
            }
        }
    }
}
