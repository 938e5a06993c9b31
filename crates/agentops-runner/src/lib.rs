//! Factors III and VI — small specialised agents composed into workflows,
//! run durably: each run on its own branch and worktree, a checkpoint commit
//! after every step, every model call recorded under the hash of its request
//! so that a resumed run never pays twice.
//!
//! The state of a run is derived from its journal events (DESIGN.md, "Runs,
//! checkpoints and resume"); nothing else is kept.

pub mod budget;
pub mod demo;
pub mod git;
pub mod run;
pub mod spec;
pub mod state;
pub mod tools;
pub mod view;
pub mod worker;

pub use run::{
    LandReport, Outcome, Progress, ProgressEvent, ResumeOptions, RunContext, StartOptions, cancel,
    gc, land, pause, resume, start,
};
pub use state::{RunState, RunStatus, RunSummary, list_runs};

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Specs or config at fault (exit 2).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Spec(Vec<spec::SpecError>),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    GitCommand(#[from] agentops_git::CommandError),
    #[error("journal: {0}")]
    Store(#[from] agentops_store::StoreError),
    #[error("{0}")]
    NotFound(String),
    /// Another process is executing the run.
    #[error("{0}")]
    Busy(String),
    /// The run cannot do that in its state.
    #[error("{0}")]
    State(String),
    /// A file or directory the run needs could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A git step failed; `message` says what it means for the run.
    #[error("{message} ({source})")]
    GitStep {
        message: String,
        #[source]
        source: agentops_git::CommandError,
    },
    /// `--base` does not name a commit.
    #[error("--base: {0}")]
    Base(#[source] agentops_git::CommandError),
    /// Gates could not be loaded or run; `context` says where (`phase x: `).
    #[error("{context}{source}")]
    Gates {
        context: String,
        #[source]
        source: agentops_gates::GateError,
    },
    /// An agent's backend could not be built.
    #[error("agent {agent}: {source}")]
    Backend {
        agent: String,
        #[source]
        source: agentops_llm::LlmError,
    },
    #[error(transparent)]
    Project(#[from] agentops_store::project::InitError),
    #[error(transparent)]
    Layout(#[from] agentops_store::LayoutError),
    #[error(transparent)]
    Settings(#[from] agentops_core::config::ConfigError),
    #[error(transparent)]
    Knowledge(#[from] agentops_knowledge::memory::KnowledgeError),
    #[error(transparent)]
    Index(#[from] agentops_context::index::IndexError),
    #[error("cannot encode the run: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Id(#[from] agentops_core::IdError),
    #[error("cannot start the scripted model server: {0}")]
    ScriptedServer(#[source] std::io::Error),
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RunError::Io { path, source }
    }
}

impl RunError {
    /// The exit code DESIGN.md assigns: 2 for usage and configuration, 1 for
    /// the rest — a run that is not there included, as for every other
    /// "not found" (`trace`, `knowledge show`, `handoff show`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Spec(_)
            | RunError::Config(_)
            | RunError::Base(_)
            | RunError::Gates { .. }
            | RunError::Backend { .. }
            | RunError::Project(_)
            | RunError::Layout(_)
            | RunError::Settings(_)
            | RunError::Knowledge(_)
            | RunError::Index(_)
            | RunError::ScriptedServer(_) => 2,
            RunError::GitCommand(_)
            | RunError::Store(_)
            | RunError::NotFound(_)
            | RunError::Busy(_)
            | RunError::State(_)
            | RunError::Io { .. }
            | RunError::GitStep { .. }
            | RunError::Encode(_)
            | RunError::Id(_) => 1,
        }
    }
}
