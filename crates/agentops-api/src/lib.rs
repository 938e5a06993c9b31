//! The operations the front ends share. The `agentops` command, the MCP
//! server and (later) the dashboard each parse their own input and render
//! their own output; what happens in between is one call here, returning a
//! typed value whose JSON form is the same everywhere (`agentops search
//! --json` and the MCP `search` tool give the same rows).
//!
//! Nothing here prints: what a caller should pass on to a person comes back
//! as warnings (or through a `warn` callback while a search runs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agentops_core::config::Config;
use agentops_knowledge::{Knowledge, KnowledgeError};
use agentops_store::{Journal, RepoLayout, project};

pub mod gates;
pub mod guard;
pub mod knowledge;
pub mod runs;
pub mod semantic;

/// Whether an error is the caller's (bad input or configuration: exit 2, a
/// tool error naming the field) or the operation's (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Usage,
    Failed,
}

/// An operation's failure, said so that a person can act on it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn usage(e: impl std::fmt::Display) -> Self {
        Self {
            kind: ErrorKind::Usage,
            message: e.to_string(),
        }
    }

    pub fn failed(e: impl std::fmt::Display) -> Self {
        Self {
            kind: ErrorKind::Failed,
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<KnowledgeError> for ApiError {
    fn from(e: KnowledgeError) -> Self {
        match e {
            KnowledgeError::Invalid(_) | KnowledgeError::Entry(_) => Self::usage(e),
            KnowledgeError::NotFound { .. }
            | KnowledgeError::Git(_)
            | KnowledgeError::Io { .. }
            | KnowledgeError::Store(_) => Self::failed(e),
        }
    }
}

/// Configuration overrides (`-c key=value` and the like): key, value, where.
pub type Overrides = Vec<(String, String, String)>;

/// A repository with agentops in it, and its configuration in force.
#[derive(Debug, Clone)]
pub struct Project {
    pub layout: RepoLayout,
    pub config: Config,
    /// The directory the caller works in (paths of a write check are
    /// relative to it).
    pub cwd: PathBuf,
}

impl Project {
    /// The repository around `dir`.
    pub fn open(dir: &Path, overrides: Overrides) -> Result<Self, ApiError> {
        let layout = RepoLayout::discover(dir).map_err(ApiError::usage)?;
        let config = project::load_config(Some(&layout), overrides).map_err(ApiError::usage)?;
        Ok(Self {
            layout,
            config,
            cwd: dir.to_path_buf(),
        })
    }

    pub fn knowledge(&self) -> Result<Knowledge, ApiError> {
        Knowledge::new(self.layout.clone(), self.config.clone()).map_err(ApiError::usage)
    }

    /// The journal, for writing.
    pub fn journal(&self) -> Result<Journal, ApiError> {
        Journal::open_for(&self.layout, &self.config).map_err(ApiError::failed)
    }

    /// The journal opened read-only: works on a read-only state directory;
    /// a damaged or missing journal is an error, never an empty answer.
    pub fn journal_read(&self) -> Result<Journal, ApiError> {
        Journal::open_read(&self.layout, &self.config).map_err(ApiError::failed)
    }
}

/// Utility scores for ranking. A journal that cannot be read ranks as if
/// there were no feedback, and says so once through `warn`.
pub fn utility_of<'j>(
    j: &'j Journal,
    warn: &'j dyn Fn(&str),
) -> impl Fn(&[&str]) -> HashMap<String, f64> + 'j {
    let warned = std::cell::Cell::new(false);
    move |ids: &[&str]| match j.utility(ids) {
        Ok(m) => m.into_iter().map(|(k, v)| (k, v.value)).collect(),
        Err(e) => {
            if !warned.replace(true) {
                warn(&format!(
                    "ranking without feedback: the journal cannot be read ({e})"
                ));
            }
            HashMap::new()
        }
    }
}

/// Who is acting, for approvals: `$USER`, `$LOGNAME`, git's user.name.
pub fn actor(layout: &RepoLayout) -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| agentops_git::cmd::user_name(&layout.work_tree))
        .unwrap_or_else(|| "someone".into())
}
