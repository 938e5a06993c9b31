//! `hooks install|uninstall`, `hook`, `ingest`, `sessions`, `handoff`.

use std::io::Read;

use agentops_harness::hook::{Invocation, MAX_INPUT};
use agentops_harness::install::{self, Scope};
use agentops_harness::mcp_install as install_mcp;
use agentops_harness::{Harness, ingest as ing};
use agentops_store::RepoLayout;

use super::{Code, Failure, Flags, cwd};
use crate::cli::{HandoffCommand, HooksCommand, IngestCommand};
use crate::output::{self, Output};
use crate::shared::{journal, open, parse_since};

fn harness_of(s: &str) -> Result<Harness, Failure> {
    Harness::parse(s)
        .ok_or_else(|| Failure::usage(format!("unknown harness `{s}`; allowed: claude, codex")))
}

/// The command the harness should run: plain `agentops` when that is this
/// binary on PATH, else this binary's absolute path.
pub(crate) fn hook_command(h: Harness) -> String {
    let exe = std::env::current_exe().ok();
    let on_path = agentops_store::project::find_on_path("agentops");
    let same = match (&exe, &on_path) {
        (Some(a), Some(b)) => a.canonicalize().ok() == b.canonicalize().ok(),
        _ => false,
    };
    match exe {
        Some(p) if !same => {
            let p = p.display().to_string();
            if p.contains([' ', '\'', '"', '$', '`']) {
                format!("'{}' hook {h}", p.replace('\'', "'\\''"))
            } else {
                format!("{p} hook {h}")
            }
        }
        _ => format!("agentops hook {h}"),
    }
}

/// How the harness starts the MCP server: `agentops mcp`, or this binary's
/// absolute path when `agentops` on PATH is another one.
pub(crate) fn mcp_server() -> install_mcp::Server {
    let exe = std::env::current_exe().ok();
    let on_path = agentops_store::project::find_on_path("agentops");
    let same = match (&exe, &on_path) {
        (Some(a), Some(b)) => a.canonicalize().ok() == b.canonicalize().ok(),
        _ => false,
    };
    let command = match exe {
        Some(p) if !same => p.display().to_string(),
        _ => "agentops".to_owned(),
    };
    install_mcp::Server {
        command,
        args: vec!["mcp".to_owned()],
    }
}

fn install_failure(e: install::InstallError) -> Failure {
    match e {
        install::InstallError::Io { .. } => Failure::failed(e),
        _ => Failure::usage(e),
    }
}

pub fn hooks(cmd: HooksCommand, out: &Output) -> Result<Code, Failure> {
    let (args, installing) = match cmd {
        HooksCommand::Install(a) => (a, true),
        HooksCommand::Uninstall(a) => (a, false),
    };
    let h = harness_of(&args.harness)?;
    let scope = Scope::parse(&args.scope).ok_or_else(|| {
        Failure::usage(format!(
            "unknown scope `{}`; allowed: project, local, user",
            args.scope
        ))
    })?;
    let layout = RepoLayout::discover(&cwd()?).ok();
    let env = |k: &str| std::env::var(k).ok();
    let path = install::settings_path(
        h,
        scope,
        layout.as_ref().map(|l| l.work_tree.as_path()),
        &env,
    )
    .map_err(Failure::usage)?;
    let plan = if installing {
        install::plan_install(h, &path, &hook_command(h))
    } else {
        install::plan_uninstall(h, &path)
    }
    .map_err(install_failure)?;
    // The MCP server beside the hooks, planned before anything is written so
    // that a file agentops cannot edit stops both.
    let mcp = if args.no_mcp {
        None
    } else {
        let loc = install_mcp::location(
            h,
            scope,
            layout.as_ref().map(|l| l.work_tree.as_path()),
            &env,
        )
        .map_err(install_failure)?;
        Some(
            if installing {
                install_mcp::plan_install(h, &loc, &mcp_server())
            } else {
                install_mcp::plan_uninstall(h, &loc)
            }
            .map_err(install_failure)?,
        )
    };
    if out.json {
        if !args.dry_run {
            plan.apply().map_err(Failure::failed)?;
            if let Some(m) = &mcp {
                m.apply().map_err(Failure::failed)?;
            }
        }
        out.json(&serde_json::json!({
            "harness": h, "scope": args.scope, "path": plan.path, "changed": plan.changed(),
            "events": plan.events, "dry_run": args.dry_run,
            "diff": if args.dry_run { Some(plan.diff()) } else { None },
            "mcp": mcp.as_ref().map(|m| serde_json::json!({
                "path": m.path, "changed": m.changed(),
                "diff": if args.dry_run { Some(m.diff()) } else { None },
            })),
        }));
        return Ok(Code::Ok);
    }
    if args.dry_run {
        for p in std::iter::once(&plan).chain(mcp.as_ref()) {
            if p.changed() {
                out.raw(&p.diff());
            } else {
                out.line(&format!("{}: nothing to change", p.path.display()));
            }
        }
        return Ok(Code::Ok);
    }
    if let Some(m) = &mcp {
        m.apply().map_err(Failure::failed)?;
        let verb = if installing {
            "registered"
        } else {
            "unregistered"
        };
        if m.changed() {
            out.line(&format!(
                "{verb} the agentops MCP server for {h} in {}",
                m.path.display()
            ));
        } else {
            out.line(&format!(
                "{}: the agentops MCP server for {h} is already {}",
                m.path.display(),
                if installing { "registered" } else { "absent" }
            ));
        }
    }
    plan.apply().map_err(Failure::failed)?;
    let verb = if installing { "installed" } else { "removed" };
    if plan.changed() {
        out.line(&format!(
            "{verb} agentops hooks for {h} in {} ({})",
            plan.path.display(),
            plan.events.join(", ")
        ));
        if installing {
            match h {
                Harness::Claude => out.line("Claude Code reads hooks at startup: restart open sessions (or review them with /hooks)."),
                Harness::Codex => {
                    out.line("Codex runs these hooks only once you trust them, and skips untrusted ones without a word (`codex exec` too):");
                    if args.scope != "user" {
                        out.line("  1. trust the project: accept Codex's prompt when it opens here, or run `codex exec --trust` once in it (Codex 0.169+), or add `[projects.\"<this directory>\"] trust_level = \"trusted\"` to $CODEX_HOME/config.toml;");
                    }
                    out.line("  2. approve each agentops hook in Codex's /hooks (Codex asks again whenever a hook changes).");
                    out.line("agentops never trusts anything for you; `agentops doctor` says what Codex will skip.");
                }
            }
        }
    } else {
        out.line(&format!(
            "{}: agentops hooks for {h} already {}; nothing changed",
            plan.path.display(),
            if installing { "installed" } else { "absent" }
        ));
    }
    if installing && !layout.as_ref().is_some_and(|l| l.agents_dir().is_dir()) {
        // The hooks stay out of the way where there is no project.
        out.important(&format!(
            "note: {} has no .agents/ (agentops init): the hooks do nothing in repositories without it — run `agentops init` in each repository you want them in",
            layout
                .as_ref()
                .map_or_else(|| "this directory is not a git repository and".to_owned(), |l| l.work_tree.display().to_string())
        ));
    }
    Ok(Code::Ok)
}

/// `agentops hook claude|codex`: never fails the harness.
pub fn hook(harness: &str) -> Code {
    // A panic must not print a backtrace into the harness.
    std::panic::set_hook(Box::new(|_| {}));
    let Some(h) = Harness::parse(harness) else {
        return Code::Ok;
    };
    let mut input = Vec::with_capacity(8 * 1024);
    let read = std::io::stdin()
        .lock()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut input);
    let oversized = input.len() > MAX_INPUT;
    if read.is_err() {
        input.clear();
    }
    let outcome = agentops_harness::hook::run(Invocation {
        harness: h,
        input,
        oversized,
        cwd: std::env::current_dir().unwrap_or_default(),
    });
    if let Some(s) = outcome.stdout {
        output::write_out(&format!("{s}\n"));
    }
    if let Some(s) = outcome.stderr {
        output::write_err(&format!("{s}\n"));
    }
    match outcome.exit_code {
        0 => Code::Ok,
        _ => Code::Usage,
    }
}

pub fn ingest(cmd: IngestCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (source, args) = match cmd {
        IngestCommand::ClaudeStream(a) => (ing::Source::ClaudeStream, a),
        IngestCommand::CodexExec(a) => (ing::Source::CodexExec, a),
        IngestCommand::ClaudeTranscript(a) => (ing::Source::ClaudeTranscript, a),
    };
    let (layout, config) = super::open_project(flags)?;
    let j = journal(&layout, &config)?;
    if let Some(s) = &args.session {
        agentops_core::RunId::parse(s).map_err(|e| Failure::usage(format!("--session: {e}")))?;
    }
    let opts = ing::Options {
        model: args.model.clone(),
        session: args.session.clone(),
        prices: agentops_llm::PriceTable::default(),
    };
    let report = if args.file.as_os_str() == "-" {
        ing::ingest(source, std::io::stdin().lock(), "<stdin>", &j, &opts)
    } else {
        let f = std::fs::File::open(&args.file)
            .map_err(|e| Failure::usage(format!("{}: cannot open: {e}", args.file.display())))?;
        ing::ingest(
            source,
            std::io::BufReader::new(f),
            &args.file.display().to_string(),
            &j,
            &opts,
        )
    }
    .map_err(|e| match e {
        ing::IngestError::Journal(_) => Failure::failed(e),
        _ => Failure::usage(e),
    })?;
    for w in &report.warnings {
        out.warn(w);
    }
    if out.json {
        out.json(&report);
        return Ok(Code::Ok);
    }
    for s in &report.sessions {
        out.line(&format!(
            "session {}  {}  {} model calls, {} tool calls ({} failed)  tokens in {} (cache read {}, write {}) out {}  cost {}",
            s.id,
            s.model.as_deref().unwrap_or("model unknown"),
            s.llm_calls,
            s.tool_calls,
            s.tool_errors,
            s.usage.input_tokens,
            s.usage.cache_read_tokens,
            s.usage.cache_creation_tokens,
            s.usage.output_tokens,
            match (s.cost_usd, s.cost_source.as_deref()) {
                (Some(c), Some(src)) => format!("${c:.4} ({src})"),
                (Some(c), None) => format!("${c:.4}"),
                (None, Some(src)) => src.to_owned(),
                (None, None) => "unknown".to_owned(),
            }
        ));
    }
    out.line(&format!(
        "{} added, {} already in the journal",
        agentops_core::counted(report.added as u64, "event", "events"),
        report.duplicates
    ));
    Ok(Code::Ok)
}

fn tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub fn sessions(
    since: Option<String>,
    limit: usize,
    team: &crate::cli::TeamArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, config) = super::open_project(flags)?;
    let since_ts = match &since {
        Some(s) => Some(parse_since(s)?),
        None => None,
    };
    let j = crate::shared::view_journal(&layout, &config, team, out)?;
    let mut all = agentops_harness::sessions::list(&j, since_ts).map_err(Failure::failed)?;
    all.truncate(limit);
    if out.json {
        out.json(&all);
        return Ok(Code::Ok);
    }
    if all.is_empty() {
        out.line("no harness sessions yet: install the hooks (agentops hooks install claude) or ingest a stream (agentops ingest …)");
        return Ok(Code::Ok);
    }
    out.line(&format!(
        "{:<38} {:<7} {:<20} {:>8} {:>5} {:>9} {:>8} {:>8} {:>9} {:>6}  handoff",
        "session",
        "harness",
        "last active (UTC)",
        "duration",
        "asks",
        "tools",
        "tok in",
        "tok out",
        "cost",
        "blocks"
    ));
    for s in &all {
        let last = agentops_core::time::rfc3339(s.last);
        out.line(&format!(
            "{:<38} {:<7} {:<20} {:>8} {:>5} {:>9} {:>8} {:>8} {:>9} {:>6}  {}",
            agentops_harness::clip(&s.id, 37),
            s.harness,
            last.get(..19).unwrap_or(&last).replace('T', " "),
            duration(s.duration_s),
            s.prompts,
            if s.tool_errors > 0 {
                format!("{} ({}✗)", s.tools, s.tool_errors)
            } else {
                s.tools.to_string()
            },
            tokens(s.usage.input_tokens),
            tokens(s.usage.output_tokens),
            s.cost_usd
                .map(|c| format!("${c:.4}"))
                .unwrap_or_else(|| "-".into()),
            format!(
                "{}{}",
                s.denied + s.blocked,
                if s.escalated { "!" } else { "" }
            ),
            s.handoff.as_deref().unwrap_or("-"),
        ));
    }
    Ok(Code::Ok)
}

pub fn handoff(cmd: HandoffCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let layout = RepoLayout::discover(&cwd()?).map_err(Failure::usage)?;
    let entry = match cmd {
        HandoffCommand::Latest { branch, any } => {
            let branch = if any {
                None
            } else {
                branch.or_else(|| agentops_harness::hook::current_branch(&layout))
            };
            match agentops_harness::handoff::latest(&layout, branch.as_deref()) {
                Some(e) => e,
                None => {
                    return Err(Failure::failed(format!(
                        "no handoff yet{}: sessions write one at PreCompact and SessionEnd once the hooks are installed (agentops hooks install claude)",
                        branch
                            .map(|b| format!(" for branch `{b}` (try --any)"))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        HandoffCommand::Show { id } => {
            let (_, k, _) = open(flags)?;
            let e = k.find(&id).map_err(Failure::failed)?;
            if e.kind != agentops_knowledge::entry::EntryType::Handoff {
                return Err(Failure::usage(format!(
                    "`{id}` is a {}, not a handoff",
                    e.kind
                )));
            }
            e
        }
    };
    if out.json {
        out.json(&entry);
    } else {
        out.line(&format!("# {}\n", entry.title));
        out.line(&format!(
            "id: {}  created: {}  path: {}\n",
            entry.id,
            entry
                .created
                .map(agentops_core::time::rfc3339)
                .unwrap_or_default(),
            entry.path
        ));
        out.raw(&entry.body);
        if !entry.body.ends_with('\n') {
            out.raw("\n");
        }
    }
    Ok(Code::Ok)
}
