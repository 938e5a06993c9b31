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
    #[error("{0}")]
    Git(String),
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
}

impl RunError {
    /// The exit code DESIGN.md assigns: 2 for usage and configuration, 1 for
    /// the rest — a run that is not there included, as for every other
    /// "not found" (`trace`, `knowledge show`, `handoff show`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Spec(_) | RunError::Config(_) => 2,
            _ => 1,
        }
    }
}
