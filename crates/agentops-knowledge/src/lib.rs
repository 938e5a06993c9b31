//! Factor I — Git as Knowledge OS. Knowledge entries are Markdown files with
//! YAML front matter under `.agents/`; every memory write is a git commit of
//! exactly that one path, made in-process with gix, leaving the user's index
//! and every other file as they were.

pub mod entry;
pub mod feedback;
pub use agentops_git::locks;
pub use agentops_git::repo as git;
pub mod memory;
pub mod outline;
pub mod sync;

pub use entry::{Entry, EntryError, EntryType, Maturity, Provenance};

pub use memory::{Filter, Knowledge, KnowledgeError, Listing, NewEntry, WriteOutcome};
