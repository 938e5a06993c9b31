//! Setting a repository up for agentops (`init`) and checking that everything
//! it needs is in place (`doctor`). Shared by the CLI and, later, the MCP
//! server and dashboard.

use std::path::{Path, PathBuf};

use agentops_core::config::{self, Config, ConfigError, LoadOptions};
use serde::Serialize;

use crate::layout::{LayoutError, RepoLayout};
use crate::sqlite::{OpenOptions, SqliteStore};
use crate::{SCHEMA_VERSION, StoreError};

/// The knowledge and definition directories under `.agents/`.
pub const AGENT_DIRS: &[&str] = &[
    "learnings",
    "decisions",
    "patterns",
    "handoffs",
    "runs",
    "agents",
    "workflows",
];

/// Configuration overrides given on the command line: (dotted key, value, flag).
pub type FlagOverrides = Vec<(String, String, String)>;

/// Loads the configuration for `layout` (or only the user's and the
/// environment's when outside a repository).
pub fn load_config(
    layout: Option<&RepoLayout>,
    flags: FlagOverrides,
) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::load(&LoadOptions {
        project_file: layout.map(RepoLayout::project_config),
        user_file: config::user_config_path(&env),
        env,
        flags,
    })
}

/// One thing `init` did or found already there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitStep {
    /// Path relative to the work tree when inside it, else absolute.
    pub path: String,
    pub created: bool,
    pub what: String,
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitReport {
    pub work_tree: PathBuf,
    pub steps: Vec<InitStep>,
}

impl InitReport {
    /// Whether anything was created (false on a second run).
    pub fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.created)
    }
}

/// Why `init` could not finish. Whatever it created before the error stays,
/// and a second run picks up from there.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: cannot create: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn display_path(layout: &RepoLayout, p: &Path) -> String {
    match p.strip_prefix(&layout.work_tree) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => p.display().to_string(),
    }
}

/// Creates `.agents/` with its directories and a commented `config.toml`, and
/// the journal in the state directory. Idempotent: existing files are never
/// rewritten. A project config that exists but is invalid is reported.
pub fn init(layout: &RepoLayout, flags: FlagOverrides) -> Result<InitReport, InitError> {
    let mut steps = Vec::new();
    let io = |path: &Path, e: std::io::Error| InitError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let agents = layout.agents_dir();
    for d in std::iter::once(None).chain(AGENT_DIRS.iter().map(Some)) {
        let dir = d.map_or_else(|| agents.clone(), |d| agents.join(d));
        let existed = dir.is_dir();
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        if d.is_some() {
            // git does not track empty directories.
            let keep = dir.join(".gitkeep");
            if !keep.exists() {
                std::fs::write(&keep, b"").map_err(|e| io(&keep, e))?;
            }
        }
        steps.push(InitStep {
            path: format!("{}/", display_path(layout, &dir)),
            created: !existed,
            what: match d {
                None => "agentops project directory".into(),
                Some(name) => describe_dir(name).into(),
            },
        });
    }
    let cfg_path = layout.project_config();
    let existed = cfg_path.exists();
    if !existed {
        write_new(&cfg_path, config::commented_template().as_bytes())
            .map_err(|e| io(&cfg_path, e))?;
    }
    steps.push(InitStep {
        path: display_path(layout, &cfg_path),
        created: !existed,
        what: "project configuration (every key commented, with its default)".into(),
    });
    // Validate whatever configuration is now in force before creating state.
    let cfg = load_config(Some(layout), flags)?;
    let db = match &cfg.store.url {
        Some(url) => layout.resolve_store_url(url),
        None => layout.state_db(),
    };
    let existed = db.exists();
    let store = SqliteStore::open(
        &db,
        OpenOptions {
            create: true,
            busy_timeout_ms: cfg.store.busy_timeout_ms,
            synchronous: cfg.journal.synchronous,
            read_only: false,
        },
    )?;
    drop(store);
    steps.push(InitStep {
        path: display_path(layout, &db),
        created: !existed,
        what: format!("journal (SQLite, WAL, schema {SCHEMA_VERSION}; not in git)"),
    });
    Ok(InitReport {
        work_tree: layout.work_tree.clone(),
        steps,
    })
}

fn describe_dir(name: &str) -> &'static str {
    match name {
        "learnings" => "what worked and what did not",
        "decisions" => "decisions and their reasons",
        "patterns" => "patterns and anti-patterns",
        "handoffs" => "state handed from one session to the next",
        "runs" => "run summaries",
        "agents" => "agent definitions (*.toml)",
        "workflows" => "workflow definitions (*.toml)",
        _ => "",
    }
}

/// Creates a file that must not exist yet, never clobbering one.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The outcome of one `doctor` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// One `doctor` check: what was found, and the fix when it is not PASS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    /// A check with its verdict, what was found and how to fix it.
    pub fn new(
        name: &str,
        status: CheckStatus,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
            fix,
        }
    }
}

/// The oldest git that agentops supports (worktrees, `init -b`).
pub const MIN_GIT: (u32, u32) = (2, 30);

/// Runs every check from `dir`. Never fails: each problem is a check's result.
pub fn doctor(dir: &Path, flags: FlagOverrides) -> Vec<Check> {
    let mut checks = vec![check_git()];
    let layout = match RepoLayout::discover(dir) {
        Ok(l) => {
            checks.push(Check::new(
                "repository",
                CheckStatus::Pass,
                format!(
                    "{} (state in {})",
                    l.work_tree.display(),
                    l.state_dir().display()
                ),
                None,
            ));
            Some(l)
        }
        Err(e) => {
            checks.push(Check::new(
                "repository",
                CheckStatus::Fail,
                e.to_string(),
                Some(
                    "run agentops inside a git repository (`git init`), or pass `-C <dir>`".into(),
                ),
            ));
            None
        }
    };
    if let Some(l) = &layout {
        checks.push(if let Some(outside) = l.agents_outside() {
            Check::new(
                "project",
                CheckStatus::Fail,
                format!(
                    ".agents resolves to {}, outside the repository ({}): agentops would write knowledge there and commit what git cannot track",
                    outside.display(),
                    l.work_tree.display()
                ),
                Some("replace the symlink with a directory inside the repository (`rm .agents && git checkout -- .agents`, or move its files in)".into()),
            )
        } else if l.agents_dir().is_dir() {
            Check::new("project", CheckStatus::Pass, ".agents/ present", None)
        } else {
            Check::new(
                "project",
                CheckStatus::Warn,
                ".agents/ does not exist yet",
                Some("run `agentops init`".into()),
            )
        });
    }
    let config = match load_config(layout.as_ref(), flags) {
        Ok(c) => {
            let files: Vec<String> = layout
                .iter()
                .map(RepoLayout::project_config)
                .chain(config::user_config_path(
                    &std::env::vars().collect::<Vec<_>>(),
                ))
                .filter(|p| p.exists())
                .map(|p| p.display().to_string())
                .collect();
            let detail = if files.is_empty() {
                "no config files; built-in defaults".to_owned()
            } else {
                format!("valid: {}", files.join(", "))
            };
            checks.push(Check::new("config", CheckStatus::Pass, detail, None));
            Some(c)
        }
        Err(e) => {
            checks.push(Check::new(
                "config",
                CheckStatus::Fail,
                e.to_string(),
                Some("correct the value named above (see docs/configuration.md)".into()),
            ));
            None
        }
    };
    if let (Some(l), Some(c)) = (&layout, &config) {
        checks.push(check_store(l, c));
        if let Some(spool) = check_spool(l, c) {
            checks.push(spool);
        }
    }
    for (tool, purpose) in [
        ("claude", "Claude Code hooks and the command:claude backend"),
        ("codex", "Codex hooks and the command:codex backend"),
    ] {
        checks.push(match find_on_path(tool) {
            Some(p) => Check::new(tool, CheckStatus::Pass, p.display().to_string(), None),
            None => Check::new(
                tool,
                CheckStatus::Warn,
                format!("not found on PATH (optional: needed for {purpose})"),
                Some(format!(
                    "install {tool} if you use it; everything else works without it"
                )),
            ),
        });
    }
    checks
}

fn check_git() -> Check {
    match agentops_git::cmd::version() {
        Ok(text) => match parse_git_version(&text) {
            Some(v) if v >= MIN_GIT => Check::new("git", CheckStatus::Pass, text, None),
            Some(_) => Check::new(
                "git",
                CheckStatus::Fail,
                format!("{text} is older than {}.{}", MIN_GIT.0, MIN_GIT.1),
                Some(format!("install git {}.{} or newer", MIN_GIT.0, MIN_GIT.1)),
            ),
            None => Check::new(
                "git",
                CheckStatus::Warn,
                format!("cannot read the version in `{text}`"),
                None,
            ),
        },
        _ => Check::new(
            "git",
            CheckStatus::Fail,
            "git not found on PATH",
            Some("install git (e.g. `apt-get install git`)".into()),
        ),
    }
}

/// Reads `(major, minor)` from `git version 2.47.3`.
pub fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().nth(2)?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

fn check_store(layout: &RepoLayout, cfg: &Config) -> Check {
    let path = match &cfg.store.url {
        Some(url) => layout.resolve_store_url(url),
        None => layout.state_db(),
    };
    let opened = SqliteStore::open(
        &path,
        OpenOptions {
            create: false,
            busy_timeout_ms: cfg.store.busy_timeout_ms,
            synchronous: cfg.journal.synchronous,
            read_only: false,
        },
    );
    // What hooks left in the spool counts as the journal's.
    if let Ok(s) = &opened {
        let _ = crate::Spool::beside(&path).drain(s);
    }
    match opened.and_then(|s| s.status(true)) {
        Ok(st) if st.integrity.as_deref() == Some("ok") => Check::new(
            "store",
            CheckStatus::Pass,
            format!(
                "{}: schema {}, {} events, {} mode, {} KiB",
                st.path.display(),
                st.schema_version,
                st.events,
                st.journal_mode,
                st.size_bytes / 1024
            ),
            None,
        ),
        Ok(st) => Check::new(
            "store",
            CheckStatus::Fail,
            format!(
                "{}: integrity check failed: {}",
                st.path.display(),
                st.integrity.unwrap_or_default()
            ),
            Some(format!(
                "stop agentops processes, move the file aside (`mv {0} {0}.broken`), run `agentops init`, and recover events with `sqlite3 {0}.broken .recover`",
                st.path.display()
            )),
        ),
        Err(StoreError::Missing { path }) => Check::new(
            "store",
            CheckStatus::Warn,
            format!("{}: no journal yet", path.display()),
            Some("run `agentops init`".into()),
        ),
        Err(e) => Check::new("store", CheckStatus::Fail, e.to_string(), None),
    }
}

/// The hook spool: what waits (the store check above drained what it
/// could), and what was set aside as unreadable. Silent when all is well.
fn check_spool(layout: &RepoLayout, cfg: &Config) -> Option<Check> {
    let path = match &cfg.store.url {
        Some(url) => layout.resolve_store_url(url),
        None => layout.state_db(),
    };
    let spool = crate::Spool::beside(&path);
    let bad = spool.quarantined();
    let waiting = spool.waiting();
    if bad.is_empty() && waiting == 0 {
        return None;
    }
    let mut detail = Vec::new();
    if waiting > 0 {
        detail.push(format!(
            "{} from hooks not yet in the journal ({})",
            agentops_core::counted(
                u64::try_from(waiting).unwrap_or(u64::MAX),
                "event",
                "events"
            ),
            spool.dir().display()
        ));
    }
    if !bad.is_empty() {
        detail.push(format!(
            "{} could not be read and {} kept in {}",
            crate::counted_batches(bad.len()),
            if bad.len() == 1 { "is" } else { "are" },
            spool.dir().join("bad").display()
        ));
    }
    Some(Check::new(
        "spool",
        CheckStatus::Warn,
        detail.join("; "),
        Some(if bad.is_empty() {
            "they are taken in when the journal can be opened for writing; see the store check"
                .into()
        } else {
            "look at the files (JSON lines of events); remove them once you have what you need"
                .into()
        }),
    ))
}

/// The first executable named `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions() {
        assert_eq!(parse_git_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(
            parse_git_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39))
        );
        assert_eq!(
            parse_git_version("git version 2.45.windows.1"),
            Some((2, 45))
        );
        assert_eq!(parse_git_version("nonsense"), None);
    }
}
