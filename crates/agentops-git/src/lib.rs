//! Every git operation agentops makes goes through this crate: memory
//! commits through a private index with `gix` ([`repo`]), the ownership
//! records that let a killed process's locks be proven stale ([`locks`]),
//! and the `git` command for what gix does not do here — worktrees,
//! checkpoints of a whole tree, merges, diffs, identity ([`cmd`]). Nothing
//! else in agentops spawns git.

pub mod cmd;
pub mod locks;
pub mod repo;

pub use cmd::CommandError;
pub use repo::{Change, CommitInfo, GitError, HeadState, Repo, Target};
