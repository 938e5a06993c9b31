//! The command line: every verb, its flags and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operational discipline for AI agents: memory in git, budgeted context,
/// small agents, validation gates, observability and resumable sessions.
#[derive(Debug, Parser)]
#[command(
    name = "agentops",
    version,
    disable_version_flag = true,
    propagate_version = true,
    after_help = "Exit codes: 0 success, 1 a failure the command reports (gate FAIL, run failed, doctor FAIL), \
2 usage or configuration error, 3 paused and waiting for a person.\n\
Configuration: .agents/config.toml, $XDG_CONFIG_HOME/agentops/config.toml and AGENTOPS_* variables; see docs/configuration.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every verb takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Run as if started in DIR (like `git -C`).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only warnings, failures and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up agentops in this git repository: `.agents/` (knowledge, agents,
    /// workflows, a commented config.toml) and the journal under the git dir.
    /// Safe to run again: it never rewrites what exists.
    Init,
    /// Check that agentops can work here: git, the repository, the
    /// configuration, the journal (including an integrity check) and the
    /// optional harnesses (claude, codex). Each check says PASS, WARN or FAIL
    /// and how to fix it; exits 1 when any check fails.
    Doctor,
    /// Print the version of agentops and of the journal schema it writes.
    Version,
    /// Print a shell completion script.
    ///
    /// bash: `agentops completions bash > ~/.local/share/bash-completion/completions/agentops`;
    /// zsh: `agentops completions zsh > "${fpath[1]}/_agentops"`;
    /// fish: `agentops completions fish > ~/.config/fish/completions/agentops.fish`.
    Completions {
        /// The shell to generate for.
        shell: Shell,
    },
}

/// Shells with completion support.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
