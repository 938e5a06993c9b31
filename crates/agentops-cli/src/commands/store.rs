//! `agentops store`: the team store's schema, status and forwarding.

use agentops_store::forward::{self, ForwardError, Forwarder};
use agentops_store::pg::{PgOptions, PgStore, Tag, Target};
use agentops_store::{Journal, RepoLayout};

use super::{Code, Failure, Flags, open_project};
use crate::cli::StoreCommand;
use crate::output::Output;

pub(crate) fn target(config: &agentops_core::config::Config) -> Result<Target, Failure> {
    agentops_store::team_target(config)
        .ok_or_else(|| {
            Failure::usage(
                "no team store: set store.url = \"postgres://user@host:port/db\" in .agents/config.toml, \
AGENTOPS_STORE_URL, or pass --store postgres://… (docs/team.md)",
            )
        })?
        .map_err(Failure::usage)
}

fn local(layout: &RepoLayout, config: &agentops_core::config::Config) -> Result<Journal, Failure> {
    crate::shared::journal(layout, config)
}

pub fn run(cmd: StoreCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let target = target(&config)?;
    match cmd {
        StoreCommand::Migrate => {
            let applied = PgStore::connect(target)
                .and_then(|t| t.migrate())
                .map_err(Failure::failed)?;
            report_migrate(&applied, out);
            Ok(Code::Ok)
        }
        StoreCommand::Status => {
            let j = local(&layout, &config)?;
            let mine = forward::local_status(j.store()).map_err(Failure::failed)?;
            let shown = target.shown().to_owned();
            let behind = mine.iter().find(|s| s.target == shown).cloned();
            let team = PgStore::open(target, PgOptions { migrate: false }).and_then(|t| t.status());
            let origin = forward::origin_of(j.store()).map_err(Failure::failed)?;
            let tag = Tag::local();
            if out.json {
                out.json(&serde_json::json!({
                    "target": shown,
                    "team": team.as_ref().ok(),
                    "error": team.as_ref().err().map(ToString::to_string),
                    "origin": origin,
                    "host": tag.host,
                    "user": tag.user,
                    "forwarding": behind,
                    "local_last_seq": j.last_seq().map_err(Failure::failed)?,
                }));
            } else {
                out.line(&format!("team store: {shown}"));
                match &team {
                    Ok(s) => {
                        out.line(&format!(
                            "  schema {} (this agentops: {}), {} events, PostgreSQL {}",
                            s.schema_version, s.supported, s.events, s.server_version
                        ));
                        out.line(&match (&s.tls_roots, s.encrypted) {
                            (Some(roots), true) => format!(
                                "  TLS: encrypted, the server's certificate verified against {roots}"
                            ),
                            _ => "  TLS: off (plain text; sslmode=verify-full in store.url encrypts)"
                                .to_owned(),
                        });
                    }
                    Err(e) => out.line(&format!("  unreachable: {e}")),
                }
                out.line(&format!(
                    "this machine: {}@{} (journal origin {origin})",
                    tag.user, tag.host
                ));
                match &behind {
                    Some(b) => out.line(&format!(
                        "  forwarded through {} of {} ({} behind){}",
                        b.watermark,
                        b.local_last,
                        agentops_core::counted(
                            u64::try_from(b.behind).unwrap_or(0),
                            "event",
                            "events"
                        ),
                        if b.updated_us > 0 {
                            format!(", last at {}", agentops_core::time::rfc3339(b.updated_us))
                        } else {
                            String::new()
                        }
                    )),
                    None => out.line(&format!(
                        "  nothing forwarded yet ({} in this journal; `agentops store push`)",
                        agentops_core::counted(
                            u64::try_from(j.last_seq().map_err(Failure::failed)?).unwrap_or(0),
                            "event",
                            "events"
                        )
                    )),
                }
            }
            Ok(if team.is_ok() {
                Code::Ok
            } else {
                Code::Failure
            })
        }
        StoreCommand::Push { follow } => {
            let j = local(&layout, &config)?;
            let tag = Tag::local();
            if follow {
                out.line(&format!(
                    "forwarding this journal to {} as {}@{}; Ctrl-C stops",
                    target.shown(),
                    tag.user,
                    tag.host
                ));
                let mut on = |r: &Result<forward::Report, ForwardError>| match r {
                    Ok(rep) => out.line(&format!(
                        "sent {}; forwarded through {} of {}",
                        agentops_core::counted(rep.sent as u64, "event", "events"),
                        rep.watermark,
                        rep.local_last
                    )),
                    Err(e) => out.warn(&format!("forwarding: {e} (retrying)")),
                };
                forward::follow(
                    j.store(),
                    &target,
                    &tag,
                    std::time::Duration::from_secs(1),
                    &|| false,
                    &mut on,
                )
                .map_err(Failure::failed)?;
                return Ok(Code::Ok);
            }
            let team =
                PgStore::open(target, PgOptions { migrate: true }).map_err(Failure::failed)?;
            let mut f = Forwarder::claim(j.store(), &team, tag.clone()).map_err(Failure::failed)?;
            let rep = f.pass().map_err(Failure::failed)?;
            if out.json {
                out.json(&serde_json::json!({
                    "target": team.target().shown(),
                    "origin": f.origin(),
                    "host": tag.host,
                    "user": tag.user,
                    "report": rep,
                }));
            } else {
                out.line(&format!(
                    "sent {} to {} in {} ({} already there); forwarded through {} of {}",
                    agentops_core::counted(rep.sent as u64, "event", "events"),
                    team.target().shown(),
                    agentops_core::counted(rep.batches as u64, "batch", "batches"),
                    rep.skipped,
                    rep.watermark,
                    rep.local_last
                ));
            }
            Ok(Code::Ok)
        }
    }
}

fn report_migrate(applied: &[i64], out: &Output) {
    if out.json {
        out.json(&serde_json::json!({
            "applied": applied,
            "schema_version": agentops_store::pg::PG_SCHEMA_VERSION,
        }));
    } else if applied.is_empty() {
        out.line(&format!(
            "the team store's schema is current (version {})",
            agentops_store::pg::PG_SCHEMA_VERSION
        ));
    } else {
        out.line(&format!(
            "migrated the team store to schema version {} (applied {})",
            agentops_store::pg::PG_SCHEMA_VERSION,
            applied
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}
