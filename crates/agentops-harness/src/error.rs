//! Why a hook or a handoff could not do its work. A hook logs it and lets
//! the agent go on (its policy's verdict is made before anything can fail).

use agentops_context::index::IndexError;
use agentops_gates::GateError;
use agentops_knowledge::KnowledgeError;
use agentops_store::StoreError;

/// An error of a hook handler or a handoff, with its source.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Journal(#[from] StoreError),
    #[error(transparent)]
    Gates(#[from] GateError),
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// `hooks.stop_gates` (or `subagent_stop_gates`) names no gate.
    #[error("hooks.stop_gates names `{name}`, which is not a gate; defined: {}", defined.join(", "))]
    UnknownStopGate { name: String, defined: Vec<String> },
}
