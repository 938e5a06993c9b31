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
    /// The journal to use, overriding `store.url` (a SQLite path or sqlite://
    /// URL), or the team store (a postgres:// URL).
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
    /// workflows, a commented config.toml), the journal and the search index
    /// under the git dir. Safe to run again: it never rewrites what exists.
    Init,
    /// Check that agentops can work here: git, the repository, the
    /// configuration, the journal (including an integrity check) and the
    /// optional harnesses (claude, codex). Each check says PASS, WARN or FAIL
    /// and how to fix it; exits 1 when any check fails.
    Doctor {
        /// Finish what killed agentops processes left: stale git locks they
        /// held, index entries behind HEAD, temporary files, memory writes
        /// committed but not journaled or written but not committed. (The
        /// next memory write does the same on its own.)
        #[arg(long)]
        fix: bool,
    },
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
    /// Search knowledge: full text, ranked by relevance × freshness × utility ×
    /// maturity, with snippets.
    ///
    /// Relevance is BM25 over the body (title included) and tags, expanded
    /// from the best hit (context.expansion), fused with vector search when
    /// context.embeddings is set (docs/factor-2-context.md).
    Search {
        /// What to look for, in plain words (no query syntax).
        query: String,
        /// Only this type.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only entries with this tag (repeat: all must match).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// At most this many results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Build a context packet for a task: the best entries within a token
    /// budget, in tiers (full text, one-line summaries, titles).
    ///
    /// The budget is min(context.packet_max, 0.40 × window − used): the packet
    /// never pushes the window past 40%. --budget sets it directly.
    Context(Box<ContextArgs>),
    /// Tell agentops how an entry served: retrieved, used, helpful or harmful.
    /// Utility is an exponential moving average (α = 0.1, from 0.5); after at
    /// least 3 events an entry at ≥ 0.55 is promoted, one under 0.3 deprecated
    /// (memory writes).
    Feedback {
        /// The entry's id.
        id: String,
        /// retrieved, used, helpful or harmful.
        signal: String,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Propose provisional learnings from what sessions did: commands the
    /// policy denied and what the agent did instead, gate failures and the
    /// change that fixed them, tool errors followed by a success, and the
    /// questions a handoff left open. Heuristics, no model; with
    /// `[harvest] backend` a model writes each as Context / Solution /
    /// Learning / Impact. Near-copies of existing entries are left out.
    /// Prints them; --apply records each as a memory write.
    Harvest {
        /// One session (default: every session in --since).
        session: Option<String>,
        /// Sessions active since this long ago (7d, 24h) or this date.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Record the candidates as provisional learnings (memory writes).
        #[arg(long)]
        apply: bool,
    },
    /// How full a Claude Code session's context window is, from the tail of
    /// its transcript: green ≤ 20%, amber ≤ 40%, red ≤ 60%, critical above.
    Guard {
        /// The session transcript (JSONL); only its last 512 KiB are read.
        #[arg(long, value_name = "PATH")]
        transcript: PathBuf,
        /// The context window in tokens (default: from the model's name).
        #[arg(long, value_name = "TOKENS")]
        window: Option<u64>,
    },
    /// Measure retrieval quality.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Bring the search index up to date with a full check of every file
    /// (commands do a cheap check themselves), or rebuild it.
    ///
    /// With context.embeddings set, also embed every entry that lacks a
    /// vector (exit 1 when some are left without one: the endpoint failed).
    Index {
        /// Drop the index and build it again from `.agents/`.
        #[arg(long)]
        rebuild: bool,
    },
    /// Share knowledge through the git remote: fetch the memory branch
    /// (memory.branch, else the current branch), bring in others' memory
    /// commits, replay this machine's on top and push them, then refresh the
    /// search index.
    ///
    /// Only memory commits (entry files under .agents/) are rebased or
    /// published: sync refuses, changing nothing, when your unpushed commits
    /// or the remote's new ones touch anything else, and it never touches
    /// your other files or staged changes. An entry id the remote already
    /// has is renamed to the next free one (both entries stay); an entry
    /// edited on both sides is reported until --keep says which edit stays.
    Sync {
        /// The remote (default: the branch's upstream remote, else origin).
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// For entries edited here and on the remote: keep `ours` (this
        /// machine's edit goes over the other) or `theirs` (drop this one).
        #[arg(long, value_parser = ["ours", "theirs"])]
        keep: Option<String>,
    },
    /// Validation gates: run them (for CI), list them, check the hook policy.
    #[command(subcommand)]
    Gate(GateCommand),
    /// Approve what an approval gate is waiting for, in a run or session.
    Approve(DecideArgs),
    /// Reject what an approval gate is waiting for, in a run or session.
    Reject(DecideArgs),
    /// Install or remove agentops's hooks in Claude Code or Codex settings.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Handle one harness hook event: the event JSON on stdin, the answer on
    /// stdout. Installed by `agentops hooks install`; not for typing by hand.
    ///
    /// SessionStart injects the branch's handoff and a packet searched with the
    /// branch's recent work (or a briefing of the best entries);
    /// UserPromptSubmit and SubagentStart inject the entries relevant to the
    /// prompt or the subagent's task (hooks.prompt_budget) and the prompt runs
    /// the context guard; Stop and SessionEnd give the injected entries their
    /// feedback (used, helpful, harmful) and SessionEnd writes a handoff
    /// (docs/harness.md). Tool-call events are written to the journal's spool
    /// (no journal open on the hot path) and taken in by the next open.
    ///
    /// It never gets in the agent's way: malformed input, an internal error or
    /// its time limit (hooks.timeout_ms) mean exit 0 and nothing on stdout,
    /// with a line in <git-common-dir>/agentops/hooks.log — unless
    /// policy.fail = "closed", which denies a tool call it could not check.
    Hook {
        /// claude or codex.
        #[arg(value_parser = ["claude", "codex"])]
        harness: String,
    },
    /// Serve agentops over MCP: tools (search, context, get, learn, feedback,
    /// handoff_latest, handoff_write, gate_run, gate_check, runs, run_show,
    /// trace, sessions, stats, status), resources (agentops://entry/{id},
    /// agentops://handoff/latest, agentops://run/{id}) and prompts (continue,
    /// record-learning, review-run) for any MCP client. Installed by
    /// `agentops hooks install` (docs/mcp.md).
    ///
    /// Over stdio by default (the client starts it). With --http, Streamable
    /// HTTP on ADDR (127.0.0.1:PORT, or a port; 0 picks one) at /mcp: every
    /// request needs `Authorization: Bearer <token>` (AGENTOPS_MCP_TOKEN, or
    /// a fresh one printed on stderr), and Host and Origin must be this
    /// server's. Only loopback addresses unless --bind.
    Mcp {
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Allow --http on an address beyond loopback (any Host is then
        /// accepted; the token is the only guard).
        #[arg(long, requires = "http")]
        bind: bool,
    },
    /// The local dashboard: runs (a trace waterfall per run, gate verdicts,
    /// checkpoints; approve, reject, resume, cancel, land), sessions, cost
    /// and usage, knowledge and alerts, live as the journal grows
    /// (docs/ui.md). Everything is served by this binary, offline.
    ///
    /// Serves on 127.0.0.1 (a free port unless --port) and prints the URL
    /// with its token (AGENTOPS_UI_TOKEN, or a fresh one): every request
    /// needs it (it moves into an HttpOnly cookie on the first page), Host
    /// must be this server, and a POST must come from its own page with
    /// that page's CSRF token.
    Ui {
        /// The port (0, the default, picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Open the URL in the browser ($BROWSER, else xdg-open or open).
        #[arg(long)]
        open: bool,
        /// Listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0): any
        /// Host is then accepted and the token is the only guard.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// The Claude Code and Codex plugins (hooks, the MCP server, and slash
    /// commands or skills for learn, handoff and status), written out for a
    /// user.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Read a harness's event stream into sessions and spans with tokens and
    /// cost. Ingesting the same stream twice adds nothing.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Harness sessions (from hooks and ingested streams), most recent first:
    /// duration, prompts, tools, tokens, cost, policy denials and stop blocks.
    Sessions {
        /// Only sessions active since a date (2026-11-01) or an age (7d, 12h).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many sessions.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        team: TeamArgs,
    },
    /// Handoffs: what a session left for the next one.
    #[command(subcommand)]
    Handoff(HandoffCommand),
    /// Agent specs (.agents/agents/<name>.toml): list, show, lint.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Workflows (.agents/workflows/<name>.toml): list, show, validate.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Run a workflow for a goal on its own branch (agentops/run/<id>) and
    /// worktree: phases as a DAG (independent ones in parallel), gates after
    /// each phase with retry-with-feedback, a checkpoint commit after every
    /// step, budgets enforced. Exit 0 completed, 1 failed, 3 paused (waiting
    /// for a person: an approval, a spent budget, an escalation).
    Run(Box<RunArgs>),
    /// Continue a paused or interrupted (killed) run: the worktree goes back
    /// to the last checkpoint and the interrupted step runs again, answering
    /// every model request already recorded from the journal (never paid
    /// twice), going live from the first request that differs.
    Resume {
        /// The run id (or a unique prefix).
        run: String,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// Ask a running run to pause at its next step.
    Pause {
        /// The run id (or a unique prefix).
        run: String,
    },
    /// Cancel a run (its branch stays; `agentops gc` removes its worktree).
    Cancel {
        /// The run id (or a unique prefix).
        run: String,
    },
    /// Merge a completed run (all gates passed) into the branch it started
    /// from: a merge commit when that branch is checked out and clean, else a
    /// fast-forward. Never forced.
    Land {
        /// The run id (or a unique prefix).
        run: String,
    },
    /// Remove the worktrees of finished runs (completed, cancelled, landed,
    /// failed). Branches stay.
    Gc,
    /// Claim queued runs (`run --queue`) of a repository from the team
    /// store and execute them, each in a worktree of this worker's own
    /// clone, with a lease it renews; checkpoints are pushed to the remote
    /// and the journal is the team store's. A run whose worker died is taken
    /// over when its lease runs out and resumed from its last checkpoint,
    /// recorded model calls answered from the journal. Ctrl-C hands its runs
    /// back to the queue.
    Worker(WorkerArgs),
    /// The team's workers (alive ones, or --all) with the runs each holds,
    /// and the queue.
    Workers {
        /// Stopped and silent workers too.
        #[arg(long)]
        all: bool,
    },
    /// Runs, newest first: status, phases done, tokens, cost (with a team
    /// store: every machine's, queued ones and where each runs).
    Runs {
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        team: TeamArgs,
    },
    /// One run: its phases, attempts, model and tool calls, gate verdicts.
    Show {
        /// The run id (or a unique prefix).
        run: String,
        /// Print the run's model calls as a replay recording (JSON lines) for
        /// `backend = "replay:<file>"`.
        #[arg(long)]
        recording: bool,
    },
    /// The trace of a run or a harness session as a tree: every workflow,
    /// agent, model call, tool call and gate span with a bar placing it in
    /// time, its duration, tokens (in→out, cached included) and cost.
    /// `--json` prints the spans with their OpenTelemetry attributes.
    Trace {
        /// A run id (or unique prefix) or a session id.
        id: String,
        /// Columns to fit (default: the terminal's width, else 100).
        #[arg(long, value_name = "N")]
        width: Option<usize>,
        #[command(flatten)]
        team: TeamArgs,
    },
    /// Tokens (input, cached, output), cost, latency, error rate, tool
    /// calls, gate pass rate and retries, grouped by agent, model, workflow,
    /// day or session, from the metrics rollup.
    Stats {
        /// What to group by.
        #[arg(long, default_value = "agent", value_parser = ["agent", "model", "workflow", "day", "session"])]
        by: String,
        /// From this date (2026-11-01) or age (7d, 12h) on; whole UTC days.
        #[arg(long, default_value = "7d", value_name = "WHEN")]
        since: String,
        /// Columns to fit (default: the terminal's width, else 100).
        #[arg(long, value_name = "N")]
        width: Option<usize>,
        #[command(flatten)]
        team: TeamArgs,
    },
    /// Health of the last window (`alerts.window`, default 24h) and alerts:
    /// error rate over 5%, a session's context over 40%, a step over 300 s,
    /// a run's budget burnt past 80% (thresholds under [alerts]). Exit 1
    /// when an alert fires, for cron and CI.
    Status {
        /// Look back this far instead of `alerts.window` (24h, 7d).
        #[arg(long, value_name = "AGE")]
        window: Option<String>,
        #[command(flatten)]
        team: TeamArgs,
    },
    /// Send spans to an OpenTelemetry backend.
    #[command(subcommand)]
    Export(ExportCommand),
    /// The team store: a PostgreSQL database (`store.url =
    /// "postgres://user@host:port/db"`, the password from PGPASSWORD or
    /// ~/.pgpass) where every machine's runs, sessions and costs meet
    /// (docs/team.md). Each machine keeps writing its own journal at hook
    /// speed and forwards it; `runs`, `sessions`, `stats`, `status` and
    /// `trace` then read the team store (--local: this machine only).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run a real three-phase workflow end to end in a scratch repository:
    /// knowledge, a context packet, agents, a gate that fails once and passes
    /// on retry, checkpoints, a budget pause and a resume, the trace. Offline
    /// the model is a scripted server on loopback (it says so); with
    /// --backend it runs on a real model or harness.
    Demo {
        /// A real backend instead of the scripted stand-in:
        /// openai:<model> (OPENAI_API_KEY), anthropic:<model>
        /// (ANTHROPIC_API_KEY), command:claude, command:codex.
        #[arg(long, value_name = "BACKEND")]
        backend: Option<String>,
        /// Build the scratch repository here (a new or empty directory) and
        /// keep it.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
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
    #[arg(long, value_name = "FILE", conflicts_with = "edit")]
    pub file: Option<PathBuf>,
    /// Write the body in $VISUAL or $EDITOR (the default on a terminal when
    /// no body is given).
    #[arg(long, conflicts_with = "body")]
    pub edit: bool,
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

/// `agentops context`.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// The task the packet is for.
    pub task: String,
    /// The packet's token budget (overrides the 40% rule).
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<u32>,
    /// The model's context window in tokens (default: context.window).
    #[arg(long, value_name = "TOKENS")]
    pub window: Option<u64>,
    /// Tokens already in the window.
    #[arg(long, value_name = "TOKENS", default_value_t = 0)]
    pub used: u64,
    /// md (the packet) or json (packet, scores and decisions).
    #[arg(long, default_value = "md", value_parser = ["md", "json"])]
    pub format: String,
    /// Explain every candidate: score parts, decision and why (on stderr for md).
    #[arg(long)]
    pub explain: bool,
    /// Only this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only entries with this tag (repeat: all must match).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Hit@5, MRR, Recall@10 and Precision@5 of search over labelled queries,
    /// overall and per subset: a JSONL file of {"query": "...", "expected":
    /// ["entry-id", ...]} lines, each optionally with "subset": "NAME"
    /// (default "lexical"; the checked-in set also has "paraphrase"). The
    /// ranking is the configured one (context.expansion, context.embeddings);
    /// set AGENTOPS_CONTEXT_EXPANSION=false or pass --lexical to compare.
    Retrieval {
        /// The labelled queries.
        file: PathBuf,
        /// Evaluate over the entries under this directory (an `.agents/`-style
        /// tree) instead of the repository's index.
        #[arg(long, value_name = "DIR")]
        corpus: Option<PathBuf>,
        /// Rank lexically even when context.embeddings is set.
        #[arg(long)]
        lexical: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Every agent: name, backend, purpose.
    List,
    /// One agent's spec and prompt.
    Show { name: String },
    /// Flag what makes agents hard to operate: a purpose with "and", a prompt
    /// over 2,000 tokens, a write scope of everything, tools the backend
    /// cannot offer. Exit 1 when anything is flagged.
    Lint,
}

/// Which journal a view reads when a team store is configured.
#[derive(Debug, Args, Default, Clone)]
pub struct TeamArgs {
    /// Only this machine's work (the host name it forwards as; with a team
    /// store).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only this person's work (the user name it forwards as; with a team
    /// store).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Read this machine's journal only, even with a team store.
    #[arg(long, conflicts_with_all = ["host", "user"])]
    pub local: bool,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or upgrade the team store's schema (the `agentops` schema in
    /// store.url's database): versioned migrations under a lock, so two
    /// processes never migrate at once. First use does the same; a schema
    /// newer than this agentops is refused untouched.
    Migrate,
    /// The team store's schema, size and server, and how far this
    /// machine's journal is behind it. Exit 1 when it cannot be reached.
    Status,
    /// Ship this machine's journal to the team store, tagged with host and
    /// user: everything after what the team store already holds from it, in
    /// batches it commits before the watermark moves. Nothing is lost while
    /// the database is down (the events wait here) and nothing is stored
    /// twice. Exit 1 when it cannot be reached.
    Push {
        /// Keep forwarding as the journal grows (polls every second; backs
        /// off up to 30 s while the database is down).
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Send every span completed since this endpoint's watermark over
    /// OTLP/HTTP (Phoenix, Langfuse, Jaeger, an OpenTelemetry collector).
    /// The watermark is kept in the journal per endpoint and moves only when
    /// the receiver accepts a batch: spans recorded while it was down are sent
    /// when it returns, and none is sent twice. Exit 1 when the receiver
    /// cannot be reached (the spans wait).
    Otlp {
        /// A base URL (`/v1/traces` is added) or the traces URL. Default:
        /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
        /// then `telemetry.endpoint`.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Wire format. Default: OTEL_EXPORTER_OTLP_PROTOCOL, then
        /// `telemetry.protocol` (http/protobuf).
        #[arg(long, value_parser = ["http/protobuf", "http/json"])]
        protocol: Option<String>,
        /// An extra request header (repeatable), added to
        /// OTEL_EXPORTER_OTLP_HEADERS and `telemetry.headers`.
        #[arg(long, value_name = "K=V")]
        header: Vec<String>,
        /// Keep exporting as new spans complete (polls every second; backs
        /// off up to 30 s while the receiver is down).
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// Every workflow: name, phases, description.
    List,
    /// One workflow: its phases in order, with agents, needs and gates.
    Show { name: String },
    /// Check workflows (one, or all): cycles, unknown agents or gates,
    /// missing prompt files; each error with file, line and key. Exit 2 on
    /// an error.
    Validate { name: Option<String> },
}

/// Spending limits for `run` and `resume` (override the workflow's).
#[derive(Debug, Args, Default)]
pub struct BudgetArgs {
    /// Most tokens (input + output) the whole run may use.
    #[arg(long, value_name = "N")]
    pub budget_tokens: Option<u64>,
    /// Most USD the whole run may spend.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// Most seconds the run may execute.
    #[arg(long, value_name = "N")]
    pub budget_seconds: Option<u64>,
    /// Most model calls the run may make.
    #[arg(long, value_name = "N")]
    pub budget_turns: Option<u64>,
}

/// `agentops run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow (.agents/workflows/<name>.toml).
    pub workflow: String,
    /// What the run is for; `{{goal}}` in phase tasks.
    pub goal: String,
    /// A template variable (repeat).
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Start from this revision (default: HEAD).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Use this backend for every agent (e.g. command:claude).
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    #[command(flatten)]
    pub budget: BudgetArgs,
    /// Do not run it here: check its specs and enqueue it in the team store
    /// (store.url) for a worker (`agentops worker`) to claim. The base
    /// commit must be on the remote already; prints the run's id.
    #[arg(long)]
    pub queue: bool,
    /// The remote workers fetch from (with --queue).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "origin",
        requires = "queue"
    )]
    pub remote: String,
}

/// `agentops worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Runs executed at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// The repository whose queued runs it claims (a URL or a path); it
    /// works in a clone of its own. Default: this repository's `origin`.
    #[arg(long, value_name = "URL|PATH")]
    pub repo: Option<String>,
    /// Where its clone lives (default: under $XDG_CACHE_HOME/agentops/workers/).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Seconds a claim holds without renewal (renewed every third of it);
    /// after a kill, another worker takes the run over once it runs out.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub lease: f64,
    /// Seconds between looks at an empty queue.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub poll: f64,
    /// Exit once the repository has nothing queued or claimed.
    #[arg(long)]
    pub drain: bool,
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Run gates on the working tree's changes against a base revision.
    /// Exit 0 when every gate passes or warns, 1 when one fails, 2 on a
    /// configuration error. Made for CI.
    Run {
        /// The gates to run (see `agentops gate list`).
        names: Vec<String>,
        /// Run every defined gate.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Compare with this revision (default: the merge-base with the default branch).
        #[arg(long, value_name = "REV")]
        base: Option<String>,
        /// Treat WARN as FAIL.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// List the gates defined in .agents/config.toml and .agents/gates.toml.
    List,
    /// List approvals waiting for a person (in one run or session, or all).
    Pending {
        /// Only this run or session.
        run: Option<String>,
    },
    /// Ask the hook policy whether a command or a write would be allowed
    /// (exit 1 when denied).
    #[command(subcommand)]
    Check(CheckCommand),
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Would this shell command be allowed?
    Command {
        /// The command line, as the agent would run it.
        command: String,
    },
    /// Would a write to this path be allowed?
    Write {
        /// The path, absolute or relative to the current directory.
        path: PathBuf,
    },
}

/// `agentops approve|reject`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The run or session id (`manual` for gates run by hand).
    pub run: String,
    /// Only this gate (default: every approval pending in the run).
    #[arg(long, value_name = "NAME")]
    pub gate: Option<String>,
    /// Why; kept with the decision in the journal.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Merge agentops's hook entries into the harness's settings (every other
    /// key and hook is kept; installing twice changes nothing).
    ///
    /// Claude Code: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse,
    /// PostToolUseFailure, Stop, SubagentStop, PreCompact, PostCompact,
    /// SubagentStart, SessionEnd in .claude/settings.json (project),
    /// .claude/settings.local.json (local) or ~/.claude/settings.json (user).
    /// Codex: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, Stop,
    /// SubagentStop, PreCompact, SessionEnd (3 s, Codex's limit) in
    /// .codex/hooks.json (project) or ~/.codex/hooks.json (user). Codex runs
    /// them only in a trusted project once each is approved in /hooks;
    /// agentops never trusts them for you (`agentops doctor` says what Codex
    /// will skip).
    ///
    /// It also registers the MCP server (`agentops mcp`, unless --no-mcp):
    /// Claude Code's .mcp.json (project), ~/.claude.json under the project
    /// (local) or at its top (user); Codex's [mcp_servers.agentops] in
    /// .codex/config.toml (project) or $CODEX_HOME/config.toml (user).
    Install(HooksArgs),
    /// Remove exactly the entries `install` added (hooks and MCP server).
    Uninstall(HooksArgs),
}

/// `agentops hooks install|uninstall`.
#[derive(Debug, Args)]
pub struct HooksArgs {
    /// claude or codex.
    #[arg(value_parser = ["claude", "codex"])]
    pub harness: String,
    /// project (committed, shared), local (this machine; Claude Code only) or user.
    #[arg(long, default_value = "project", value_parser = ["project", "local", "user"])]
    pub scope: String,
    /// Print the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave the MCP server registration alone (hooks only).
    #[arg(long)]
    pub no_mcp: bool,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Write the plugin and a marketplace listing it into DIR (default
    /// $XDG_DATA_HOME/agentops/plugins), then say how to load it: Claude Code
    /// `claude --plugin-dir DIR/claude`, or `claude plugin marketplace add DIR`
    /// and `claude plugin install agentops@agentops`; Codex `codex plugin
    /// marketplace add DIR` and `codex plugin add agentops@agentops`. The
    /// plugin's hooks duplicate `agentops hooks install`: use one or the other.
    Install {
        /// claude or codex.
        #[arg(value_parser = ["claude", "codex"])]
        harness: String,
        /// Where to write it.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// `claude -p --output-format stream-json --verbose` output (a file, or `-`
    /// for standard input).
    ClaudeStream(IngestArgs),
    /// `codex exec --json` output (a file, or `-`). Codex does not name the
    /// model in its stream: pass --model to price the session.
    CodexExec(IngestArgs),
    /// A Claude Code session transcript (~/.claude/projects/…/<session>.jsonl).
    /// Best effort: the format is internal to Claude Code; lines it cannot
    /// read are skipped with a warning.
    ClaudeTranscript(IngestArgs),
}

/// `agentops ingest …`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The stream: a file, or `-` for standard input.
    pub file: PathBuf,
    /// The model, when the stream does not say (for cost).
    #[arg(long)]
    pub model: Option<String>,
    /// Record under this session id instead of the stream's.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum HandoffCommand {
    /// The newest handoff for the current branch (or --branch, or --any).
    Latest {
        /// This branch instead of the current one.
        #[arg(long, conflicts_with = "any")]
        branch: Option<String>,
        /// The newest handoff on any branch.
        #[arg(long)]
        any: bool,
    },
    /// One handoff by id.
    Show {
        /// The handoff's entry id.
        id: String,
    },
}
