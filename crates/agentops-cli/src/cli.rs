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
    /// The journal to use, overriding `store.url` (a SQLite path or sqlite:// URL).
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
}

impl Global {
    /// The configuration overrides these flags make: (key, value, flag).
    pub fn overrides(&self) -> Vec<(String, String, String)> {
        let mut v = Vec::new();
        if let Some(s) = &self.store {
            v.push(("store.url".to_owned(), s.clone(), "--store".to_owned()));
        }
        v
    }
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
    /// Record a piece of knowledge as a Markdown entry in `.agents/` and commit
    /// it (only that file: your index and other files are untouched).
    ///
    /// The body comes from --body, --file, standard input when it is not a
    /// terminal, or $EDITOR. Secrets in the title, tags or body are redacted
    /// before anything is written.
    Learn(Box<LearnArgs>),
    /// List, show, and manage knowledge entries.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
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

/// `agentops learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// The entry's title (one line).
    pub title: String,
    /// The body, as Markdown.
    #[arg(long, conflicts_with = "file")]
    pub body: Option<String>,
    /// Read the body from FILE (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// learning, decision, pattern, anti-pattern, handoff or run.
    #[arg(long = "type", value_name = "TYPE", default_value = "learning")]
    pub kind: String,
    /// A tag (repeatable): lowercase letters, digits, `-`, `_`, `.`, `:`.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The id of an entry this one replaces (repeatable).
    #[arg(long, value_name = "ID")]
    pub supersedes: Vec<String>,
    /// Body section "Context": the situation.
    #[arg(long)]
    pub context: Option<String>,
    /// Body section "Solution": what was done.
    #[arg(long)]
    pub solution: Option<String>,
    /// Body section "Learning": what to remember.
    #[arg(long)]
    pub learning: Option<String>,
    /// Body section "Impact": what it changed.
    #[arg(long)]
    pub impact: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Provenance recorded in front matter and commit trailers.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The run this write belongs to (Agentops-Run trailer).
    #[arg(long, env = "AGENTOPS_RUN_ID", value_name = "ID")]
    pub run: Option<String>,
    /// The harness session this write belongs to (Agentops-Session trailer).
    #[arg(long, env = "AGENTOPS_SESSION_ID", value_name = "ID")]
    pub session: Option<String>,
    /// The agent that wrote it (Agentops-Agent trailer).
    #[arg(long, env = "AGENTOPS_AGENT", value_name = "NAME")]
    pub agent: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// List entries, newest first. Files that cannot be read are skipped with a
    /// warning naming file, line and field.
    List {
        /// Only this type.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only entries with this tag (repeat: all must match).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Only this maturity: provisional, established, deprecated.
        #[arg(long)]
        maturity: Option<String>,
        /// Only entries created since a date (2026-11-01) or an age (7d, 12h, 2w).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Show one entry.
    Show {
        /// The entry's id.
        id: String,
    },
    /// The git history of one entry, or of all knowledge, with provenance.
    History {
        /// The entry's id; all of `.agents/` when omitted.
        id: Option<String>,
        /// At most this many commits.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Mark an entry established (trusted), as a memory write.
    Promote {
        id: String,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Mark an entry deprecated (kept for history, no longer followed).
    Deprecate {
        id: String,
        #[command(flatten)]
        source: SourceArgs,
    },
}
