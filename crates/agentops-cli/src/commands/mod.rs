//! One function per verb: call the library, render the result.

use agentops_store::project::{self, CheckStatus};
use agentops_store::{RepoLayout, SCHEMA_VERSION};
use clap::CommandFactory;

use crate::cli::{Command, Shell};
use crate::output::Output;

mod context;
mod gate;
mod harness;
mod knowledge;
mod mcp;
mod observe;
mod plugin;
mod runs;
mod store;
mod ui;
mod worker;

pub use crate::shared::{Code, Failure, Flags};
pub(crate) use crate::shared::{cwd, open_project};

/// `agentops hook <harness>` without argument parsing (see `main`).
pub fn hook_fast(harness: &str) -> Code {
    harness::hook(harness)
}

pub fn run(cmd: Command, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    if !matches!(cmd, Command::Hook { .. }) {
        let env: Vec<(String, String)> = std::env::vars().collect();
        for w in agentops_core::config::unknown_env(&env) {
            out.warn(&w);
        }
    }
    match cmd {
        Command::Init => init(flags, out),
        Command::Doctor { fix } => doctor(fix, flags, out),
        Command::Learn(args) => knowledge::learn(*args, flags, out),
        Command::Knowledge(cmd) => knowledge::run(cmd, flags, out),
        Command::Search {
            query,
            kind,
            tags,
            limit,
        } => context::search(&query, kind, tags, limit, flags, out),
        Command::Context(args) => context::context(*args, flags, out),
        Command::Feedback { id, signal, source } => {
            context::feedback(&id, &signal, source, flags, out)
        }
        Command::Harvest {
            session,
            since,
            apply,
        } => knowledge::harvest(session.as_deref(), &since, apply, flags, out),
        Command::Guard { transcript, window } => context::guard(&transcript, window, flags, out),
        Command::Eval(crate::cli::EvalCommand::Retrieval {
            file,
            corpus,
            lexical,
        }) => context::eval(&file, corpus.as_deref(), lexical, flags, out),
        Command::Index { rebuild } => context::index(rebuild, flags, out),
        Command::Sync { remote, keep } => knowledge::sync(remote, keep.as_deref(), flags, out),
        Command::Gate(cmd) => gate::run(cmd, flags, out),
        Command::Approve(args) => gate::decide(args, true, flags, out),
        Command::Reject(args) => gate::decide(args, false, flags, out),
        Command::Hooks(cmd) => harness::hooks(cmd, out),
        Command::Hook { harness } => Ok(harness::hook(&harness)),
        Command::Plugin(cmd) => plugin::run(cmd, out),
        Command::Mcp { http, bind } => mcp::serve(http.as_deref(), bind, flags, out),
        Command::Ui { port, open, bind } => ui::serve(port, open, bind.as_deref(), flags, out),
        Command::Ingest(cmd) => harness::ingest(cmd, flags, out),
        Command::Sessions { since, limit, team } => {
            harness::sessions(since, limit, &team, flags, out)
        }
        Command::Handoff(cmd) => harness::handoff(cmd, flags, out),
        Command::Agents(cmd) => runs::agents(cmd, flags, out),
        Command::Workflows(cmd) => runs::workflows(cmd, flags, out),
        Command::Run(args) => runs::run(*args, flags, out),
        Command::Resume { run, budget } => runs::resume(&run, &budget, flags, out),
        Command::Pause { run } => runs::control(
            &run,
            agentops_protocol::event::ControlAction::Pause,
            flags,
            out,
        ),
        Command::Cancel { run } => runs::control(
            &run,
            agentops_protocol::event::ControlAction::Cancel,
            flags,
            out,
        ),
        Command::Land { run } => runs::land(&run, flags, out),
        Command::Gc => runs::gc(flags, out),
        Command::Runs { limit, team } => runs::list(limit, &team, flags, out),
        Command::Worker(args) => worker::worker(args, flags, out),
        Command::Workers { all } => worker::workers(all, flags, out),
        Command::Show { run, recording } => runs::show(&run, recording, flags, out),
        Command::Trace { id, width, team } => observe::trace(&id, width, &team, flags, out),
        Command::Stats {
            by,
            since,
            width,
            team,
        } => observe::stats(&by, &since, width, &team, flags, out),
        Command::Status { window, team } => observe::status(window, &team, flags, out),
        Command::Store(cmd) => store::run(cmd, flags, out),
        Command::Export(cmd) => observe::export(cmd, flags, out),
        Command::Demo { backend, keep } => runs::demo(backend, keep, out),
        Command::Version => {
            version(out);
            Ok(Code::Ok)
        }
        Command::Completions { shell } => {
            completions(shell);
            Ok(Code::Ok)
        }
    }
}

fn version(out: &Output) {
    let v = env!("CARGO_PKG_VERSION");
    if out.json {
        out.json(&serde_json::json!({ "version": v, "journal_schema": SCHEMA_VERSION }));
    } else {
        out.line(&format!("agentops {v} (journal schema {SCHEMA_VERSION})"));
    }
}

fn completions(shell: Shell) {
    let mut cmd = crate::cli::Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "agentops", &mut std::io::stdout());
}

fn init(flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let layout = RepoLayout::discover(&cwd()?).map_err(Failure::usage)?;
    let report = project::init(&layout, flags.to_vec()).map_err(|e| match e {
        project::InitError::Layout(_) | project::InitError::Config(_) => Failure::usage(e),
        project::InitError::Io { .. } | project::InitError::Store(_) => Failure::failed(e),
    })?;
    // The search index exists from the start, so the first session's
    // briefing never waits for it.
    let mut warnings = Vec::new();
    match project::load_config(Some(&layout), flags.to_vec()) {
        Ok(config) => crate::shared::index_after_write(&layout, &config, &mut warnings),
        Err(e) => warnings.push(format!("the search index was not built: {e}")),
    }
    for w in &warnings {
        out.warn(w);
    }
    if out.json {
        out.json(&report);
        return Ok(Code::Ok);
    }
    if report.changed() {
        out.line(&format!(
            "Initialised agentops in {}",
            report.work_tree.display()
        ));
    } else {
        out.line(&format!(
            "agentops is already set up in {}; nothing changed",
            report.work_tree.display()
        ));
    }
    let width = report.steps.iter().map(|s| s.path.len()).max().unwrap_or(0);
    for s in &report.steps {
        let verb = if s.created { "created" } else { "exists " };
        out.line(&format!("  {verb}  {:<width$}  {}", s.path, s.what));
    }
    if report.changed() {
        out.line(
            "Next: commit .agents/ to share it: git add .agents && git commit -m \"agentops init\"",
        );
        out.line("      then run `agentops doctor` to check the setup.");
    }
    Ok(Code::Ok)
}

/// Interrupted memory writes (a killed agentops process), and with `fix`
/// their recovery; `None` outside a project.
fn memory_check(fix: bool, flags: &Flags, out: &Output) -> Option<project::Check> {
    let (layout, config) = open_project(flags).ok()?;
    if !layout.agents_dir().is_dir() || layout.agents_outside().is_some() {
        return None;
    }
    let k = agentops_knowledge::Knowledge::new(layout.clone(), config.clone()).ok()?;
    if fix {
        let j = agentops_store::Journal::open_for(&layout, &config).ok();
        for note in k.reconcile(j.as_ref()) {
            out.line(&format!("fixed: {note}"));
        }
    }
    let n = k.interrupted();
    Some(if n == 0 {
        project::Check::new(
            "memory",
            CheckStatus::Pass,
            "no interrupted memory writes",
            None,
        )
    } else {
        project::Check::new(
            "memory",
            CheckStatus::Warn,
            format!(
                "{n} memory write{} interrupted by a killed agentops process",
                if n == 1 { "" } else { "s" }
            ),
            Some("run `agentops doctor --fix` (the next memory write also finishes them)".into()),
        )
    })
}

/// Whether Codex will run the agentops hooks installed for it (project and
/// user files): read from Codex's own configuration, never changed.
fn codex_trust_checks(dir: &std::path::Path) -> Vec<project::Check> {
    use agentops_harness::codex_trust;
    let env = |k: &str| std::env::var(k).ok();
    let Some(config) = codex_trust::codex_config(&env) else {
        return Vec::new();
    };
    let tree = RepoLayout::discover(dir).ok().map(|l| l.work_tree);
    let mut files: Vec<(std::path::PathBuf, Option<std::path::PathBuf>)> = Vec::new();
    if let Some(t) = &tree {
        files.push((t.join(".codex/hooks.json"), Some(t.clone())));
    }
    if let Some(dir) = config.parent() {
        files.push((dir.join("hooks.json"), None));
    }
    let mut checks = Vec::new();
    for (file, project) in files {
        let check = match codex_trust::read(&config, &file, project.as_deref()) {
            Ok(None) => continue,
            Err(e) => project::Check::new(
                "codex trust",
                CheckStatus::Warn,
                format!("cannot tell whether Codex runs the agentops hooks: {e}"),
                None,
            ),
            Ok(Some(t)) => {
                let unapproved = t.unapproved();
                let untrusted_project = t.project_trusted == Some(false);
                if unapproved.is_empty() && !untrusted_project {
                    project::Check::new(
                        "codex trust",
                        CheckStatus::Pass,
                        format!(
                            "{}: {} agentops hooks approved{} ({})",
                            t.hooks_file.display(),
                            t.hooks.len(),
                            if t.project_trusted.is_some() {
                                ", project trusted"
                            } else {
                                ""
                            },
                            t.config.display()
                        ),
                        None,
                    )
                } else {
                    let mut what = Vec::new();
                    if untrusted_project {
                        what.push(format!(
                            "the project {} is not trusted",
                            project.as_deref().unwrap_or(dir).display()
                        ));
                    }
                    if !unapproved.is_empty() {
                        what.push(format!("not approved: {}", unapproved.join(", ")));
                    }
                    let mut fix = Vec::new();
                    if untrusted_project {
                        fix.push("trust the project (accept Codex's prompt, or run `codex exec --trust` once in it)".to_owned());
                    }
                    if !unapproved.is_empty() {
                        fix.push("approve the agentops hooks in Codex's /hooks".to_owned());
                    }
                    project::Check::new(
                        "codex trust",
                        CheckStatus::Warn,
                        format!(
                            "{}: Codex skips the agentops hooks silently: {} ({})",
                            t.hooks_file.display(),
                            what.join("; "),
                            t.config.display()
                        ),
                        Some(format!(
                            "{}; agentops never does this for you",
                            fix.join(", then ")
                        )),
                    )
                }
            }
        };
        checks.push(check);
    }
    checks
}

/// Each MCP registration of agentops (Claude Code and Codex, every scope):
/// does its command start here and answer `initialize`?
fn mcp_checks(dir: &std::path::Path) -> Vec<project::Check> {
    use agentops_harness::Harness;
    use agentops_harness::install::Scope;
    use agentops_harness::mcp_install as m;
    let env = |k: &str| std::env::var(k).ok();
    let tree = RepoLayout::discover(dir).ok().map(|l| l.work_tree);
    let mut checks = Vec::new();
    for h in [Harness::Claude, Harness::Codex] {
        for scope in [Scope::Project, Scope::Local, Scope::User] {
            let Ok(loc) = m::location(h, scope, tree.as_deref(), &env) else {
                continue;
            };
            let name = format!("mcp ({h})");
            let server = match m::registered(h, &loc) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    checks.push(project::Check::new(
                        &name,
                        CheckStatus::Warn,
                        format!("cannot read the MCP registration: {e}"),
                        None,
                    ));
                    continue;
                }
            };
            let at = match &loc.project {
                Some(p) => format!("{} (project {p})", loc.path.display()),
                None => loc.path.display().to_string(),
            };
            let cmd = format!("{} {}", server.command, server.args.join(" "));
            let run_in = tree.clone().unwrap_or_else(|| dir.to_path_buf());
            checks.push(
                match m::probe(&server, &run_in, std::time::Duration::from_secs(10)) {
                    Ok((version, took)) => project::Check::new(
                        &name,
                        CheckStatus::Pass,
                        format!(
                            "{at}: `{cmd}` answers initialize ({version}) in {:.0} ms",
                            took.as_secs_f64() * 1000.0
                        ),
                        None,
                    ),
                    Err(why) => project::Check::new(
                        &name,
                        CheckStatus::Fail,
                        format!("{at}: `{cmd}`: {why}"),
                        Some(format!(
                            "install again (agentops hooks install {h}), or fix the command in {}",
                            loc.path.display()
                        )),
                    ),
                },
            );
        }
    }
    checks
}

fn doctor(fix: bool, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let mut checks = project::doctor(&cwd()?, flags.to_vec());
    if let Some(c) = memory_check(fix, flags, out) {
        checks.push(c);
    }
    checks.extend(codex_trust_checks(&cwd()?));
    checks.extend(mcp_checks(&cwd()?));
    let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
    if out.json {
        out.json(&serde_json::json!({ "ok": !failed, "checks": checks }));
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &checks {
            let status = match c.status {
                CheckStatus::Pass => "PASS",
                CheckStatus::Warn => "WARN",
                CheckStatus::Fail => "FAIL",
            };
            let line = format!("{status}  {:<width$}  {}", c.name, c.detail);
            if c.status == CheckStatus::Pass {
                out.line(&line);
            } else {
                out.important(&line);
            }
            if let Some(fix) = &c.fix {
                let pad = " ".repeat(width + 8);
                let fix_line = format!("{pad}fix: {fix}");
                if c.status == CheckStatus::Pass {
                    out.line(&fix_line);
                } else {
                    out.important(&fix_line);
                }
            }
        }
        if out.verbose > 0 {
            // The configuration in force, after every layer.
            let layout = RepoLayout::discover(&cwd()?).ok();
            if let Ok(cfg) = project::load_config(layout.as_ref(), flags.to_vec()) {
                out.line("effective configuration:");
                if let Ok(text) = serde_json::to_string_pretty(&cfg) {
                    for l in text.lines() {
                        out.line(&format!("  {l}"));
                    }
                }
            }
        }
    }
    Ok(if failed { Code::Failure } else { Code::Ok })
}
