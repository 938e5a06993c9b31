//! What several commands share: the exit codes and `Failure`, opening the project, its knowledge and its
//! journal; provenance flags; `--since`; rendering a memory write; the
//! background exporter of a run. Commands import this module, never each
//! other.

use agentops_knowledge::{Knowledge, KnowledgeError, Provenance, WriteOutcome};
use agentops_store::{Journal, RepoLayout, project};
use agentops_telemetry::export;

use crate::cli::SourceArgs;
use crate::output::Output;

/// Exit codes (see `agentops --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    /// Paused: waiting for a person.
    Paused = 3,
}

/// An error that ends the command, with its exit code.
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl From<agentops_api::ApiError> for Failure {
    fn from(e: agentops_api::ApiError) -> Self {
        Self {
            code: match e.kind {
                agentops_api::ErrorKind::Usage => Code::Usage,
                agentops_api::ErrorKind::Failed => Code::Failure,
            },
            message: e.message,
        }
    }
}

impl Failure {
    pub(crate) fn usage(e: impl std::fmt::Display) -> Self {
        Self {
            code: Code::Usage,
            message: e.to_string(),
        }
    }

    pub(crate) fn failed(e: impl std::fmt::Display) -> Self {
        Self {
            code: Code::Failure,
            message: e.to_string(),
        }
    }
}

pub(crate) fn cwd() -> Result<std::path::PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))
}

/// The repository around the current directory and its configuration.
/// The project around the current directory, for a library call.
pub(crate) fn project(flags: &Flags) -> Result<agentops_api::Project, Failure> {
    Ok(agentops_api::Project::open(&cwd()?, flags.to_vec())?)
}

pub(crate) fn open_project(
    flags: &Flags,
) -> Result<(RepoLayout, agentops_core::config::Config), Failure> {
    let layout = RepoLayout::discover(&cwd()?).map_err(Failure::usage)?;
    let config = project::load_config(Some(&layout), flags.to_vec()).map_err(Failure::usage)?;
    Ok((layout, config))
}

/// Configuration overrides from global flags.
pub type Flags = [(String, String, String)];

pub(crate) fn open(
    flags: &Flags,
) -> Result<(RepoLayout, Knowledge, agentops_core::config::Config), Failure> {
    let (layout, config) = open_project(flags)?;
    let k = Knowledge::new(layout.clone(), config.clone()).map_err(Failure::usage)?;
    Ok((layout, k, config))
}

pub(crate) fn journal(
    layout: &RepoLayout,
    config: &agentops_core::config::Config,
) -> Result<Journal, Failure> {
    Journal::open_for(layout, config).map_err(Failure::failed)
}

/// The journal for a command that only reads: opened read-only, so it works
/// on a read-only `.git/agentops/`; a damaged or missing journal is an error
/// (exit 1, the message `doctor` gives), never an empty answer.
pub(crate) fn journal_read(
    layout: &RepoLayout,
    config: &agentops_core::config::Config,
) -> Result<Journal, Failure> {
    Journal::open_read(layout, config).map_err(Failure::failed)
}

/// The journal a view reads: the team store when `store.url` names one
/// (after forwarding what this machine has not sent yet, so its own work
/// shows), narrowed by --host / --user; this machine's journal with
/// --local, without a team store, or — with a warning — when the team
/// store cannot be reached.
pub(crate) fn view_journal(
    layout: &RepoLayout,
    config: &agentops_core::config::Config,
    team: &crate::cli::TeamArgs,
    out: &crate::output::Output,
) -> Result<Journal, Failure> {
    let target = match agentops_store::team_target(config) {
        Some(t) if !team.local => t.map_err(Failure::usage)?,
        Some(_) => return journal_read(layout, config),
        None => {
            if team.host.is_some() || team.user.is_some() {
                return Err(Failure::usage(
                    "--host and --user filter a team store's views; store.url names none (docs/team.md)",
                ));
            }
            return journal_read(layout, config);
        }
    };
    let shown = target.shown().to_owned();
    let filter = agentops_store::pg::Filter {
        host: team.host.clone(),
        user: team.user.clone(),
    };
    // One connection: the forwarding pass, then the view over it.
    let team_journal =
        agentops_store::pg::PgStore::open(target, agentops_store::pg::PgOptions { migrate: true })
            .and_then(|team_store| {
                // Best effort: what this machine has not forwarded yet.
                if let Ok(local) = Journal::open_for(layout, config) {
                    let tag = agentops_store::pg::Tag::local();
                    if let Ok(mut f) =
                        agentops_store::forward::Forwarder::claim(local.store(), &team_store, tag)
                    {
                        let _ = f.pass();
                    }
                }
                Journal::team(team_store.filtered(filter), config)
            });
    match team_journal {
        Ok(j) => Ok(j),
        Err(e) => {
            if team.host.is_some() || team.user.is_some() {
                return Err(Failure::failed(e));
            }
            out.warn(&format!(
                "{e}\nshowing this machine's journal only (the team store at {shown} could not be read)"
            ));
            journal_read(layout, config)
        }
    }
}

pub(crate) fn knowledge_failure(e: KnowledgeError) -> Failure {
    match e {
        KnowledgeError::Invalid(_) | KnowledgeError::Entry(_) => Failure::usage(e),
        KnowledgeError::NotFound { .. }
        | KnowledgeError::Git(_)
        | KnowledgeError::Io { .. }
        | KnowledgeError::Store(_) => Failure::failed(e),
    }
}

pub(crate) fn provenance(s: SourceArgs) -> Provenance {
    Provenance {
        run: s.run.filter(|v| !v.is_empty()),
        session: s.session.filter(|v| !v.is_empty()),
        agent: s.agent.filter(|v| !v.is_empty()),
    }
}

/// Brings the search index up to date after a memory write (see
/// [`agentops_api::knowledge::index_after_write`]).
pub(crate) fn index_after_write(
    layout: &RepoLayout,
    config: &agentops_core::config::Config,
    warnings: &mut Vec<String>,
) {
    let p = agentops_api::Project {
        layout: layout.clone(),
        config: config.clone(),
        cwd: layout.work_tree.clone(),
    };
    agentops_api::knowledge::index_after_write(&p, warnings);
}

pub(crate) fn render_write(o: &WriteOutcome, out: &Output, verb: &str) {
    for w in &o.warnings {
        out.warn(w);
    }
    if out.json {
        out.json(o);
        return;
    }
    out.line(&format!("{verb} {}", o.id));
    out.line(&format!("  file    {}", o.path));
    match (&o.commit, &o.deferred) {
        (Some(c), _) => out.line(&format!(
            "  commit  {} on {}",
            &c[..c.len().min(12)],
            o.branch.as_deref().unwrap_or("HEAD")
        )),
        (None, Some(reason)) => out.important(&format!(
            "  not committed: {reason}. Commit it yourself when ready: git add {} && git commit",
            o.path
        )),
        (None, None) => {}
    }
}

pub(crate) fn parse_since(s: &str) -> Result<i64, Failure> {
    if let Some(age) = agentops_core::time::parse_age(s) {
        return Ok(agentops_core::time::now_micros() - age);
    }
    agentops_core::time::parse_rfc3339(s).ok_or_else(|| {
        Failure::usage(format!(
            "--since `{s}`: use a date (2026-11-01) or an age (7d, 12h, 2w)"
        ))
    })
}

pub(crate) fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Starts the background exporter of `agentops run` when an endpoint is
/// configured and `telemetry.export_in_run` is on.
pub(crate) fn background(
    layout: &agentops_store::RepoLayout,
    config: &agentops_core::config::Config,
    out: &Output,
) -> Option<export::Background> {
    if !config.telemetry.export_in_run {
        return None;
    }
    let mut opts = match export::resolve(&config.telemetry, &env_lookup, None, None, &[]) {
        Ok(Some(o)) => o,
        Ok(None) => return None,
        Err(e) => {
            out.warn(&format!(
                "telemetry: {e}; spans are not exported during this run"
            ));
            return None;
        }
    };
    opts.timeout = std::time::Duration::from_secs(3);
    let (layout, config) = (layout.clone(), config.clone());
    Some(export::Background::start(
        Box::new(move || Journal::open_for(&layout, &config)),
        opts,
    ))
}

/// Says what the background exporter did.
pub(crate) fn finish_background(bg: Option<export::Background>, out: &Output) {
    let Some(bg) = bg else { return };
    let r = bg.finish();
    match r.error {
        None => out.line(&format!("exported {} spans to {}", r.spans, r.endpoint)),
        Some(e) => out.warn(&format!(
            "export to {}: {e} (the spans wait in the journal; `agentops export otlp` sends them)",
            r.endpoint
        )),
    }
}
