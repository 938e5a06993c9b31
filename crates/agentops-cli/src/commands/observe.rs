//! `trace`, `stats`, `status`, `export otlp`: factor V's views and export.

use agentops_core::RunId;
use agentops_store::Journal;
use agentops_telemetry::{ExportError, Exporter, alerts, export, view};

use super::{Code, Failure, Flags, open_project};
use crate::cli::ExportCommand;
use crate::cli::TeamArgs;
use crate::output::{Output, write_out};
use crate::shared::{env_lookup, journal, parse_since, view_journal};

/// The width to fit: `--width`, the terminal's, `COLUMNS`, else 100.
fn width(flag: Option<usize>) -> usize {
    if let Some(w) = flag {
        return w.max(40);
    }
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return usize::from(w).max(40);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100usize)
        .max(40)
}

fn resolve(j: &Journal, id: &str) -> Result<RunId, Failure> {
    Ok(agentops_api::runs::resolve(j, id)?)
}

pub fn trace(
    id: &str,
    w: Option<usize>,
    team: &TeamArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let j = view_journal(&layout, &config, team, out)?;
    let run = resolve(&j, id)?;
    let spans = agentops_telemetry::span::read(&j, &run).map_err(Failure::failed)?;
    if out.json {
        out.json(&view::trace_json(run.as_str(), &spans));
    } else {
        write_out(&view::render_trace(&spans, width(w)));
    }
    // The process ends after printing: freeing tens of thousands of spans
    // one by one would cost a tenth of the command.
    std::mem::forget(spans);
    Ok(Code::Ok)
}

pub fn stats(
    by: &str,
    since: &str,
    w: Option<usize>,
    team: &TeamArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let by = view::By::parse(by).ok_or_else(|| Failure::usage(format!("--by {by}: unknown")))?;
    let from = parse_since(since)?;
    let (layout, config) = open_project(flags)?;
    let j = view_journal(&layout, &config, team, out)?;
    let rows = j
        .store()
        .rollup(agentops_store::rollup::day_of(from))
        .map_err(Failure::failed)?;
    let groups = view::group(&rows, by);
    if out.json {
        out.json(&serde_json::json!({"by": by.as_str(), "since": since, "groups": groups}));
    } else if groups.is_empty() {
        out.line(&format!(
            "nothing recorded since {since} (runs, harness sessions and gates fill this)"
        ));
    } else {
        write_out(&view::render_stats(&groups, by, width(w)));
    }
    Ok(Code::Ok)
}

pub fn status(
    window: Option<String>,
    team: &TeamArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, mut config) = open_project(flags)?;
    if let Some(w) = window {
        if agentops_core::time::parse_age(&w).is_none_or(|a| a <= 0) {
            return Err(Failure::usage(format!(
                "--window {w}: not an age (24h, 7d, 30m)"
            )));
        }
        config.alerts.window = w;
    }
    let j = view_journal(&layout, &config, team, out)?;
    let s = alerts::status(&j, &config.alerts, agentops_core::time::now_micros())
        .map_err(Failure::failed)?;
    if out.json {
        out.json(&s);
    } else {
        write_out(&alerts::render(&s, width(None)));
    }
    Ok(if s.firing() > 0 {
        Code::Failure
    } else {
        Code::Ok
    })
}

pub fn export(cmd: ExportCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let ExportCommand::Otlp {
        endpoint,
        protocol,
        header,
        follow,
    } = cmd;
    let (layout, config) = open_project(flags)?;
    let opts = export::resolve(
        &config.telemetry,
        &env_lookup,
        endpoint.as_deref(),
        protocol.as_deref(),
        &header,
    )
    .map_err(Failure::usage)?
    .ok_or_else(|| {
        Failure::usage(
            "no OTLP endpoint: pass --endpoint URL, set OTEL_EXPORTER_OTLP_ENDPOINT, or set telemetry.endpoint in .agents/config.toml",
        )
    })?;
    let url = opts.endpoint.clone();
    let proto = opts.protocol.as_str();
    let j = journal(&layout, &config)?;
    let mut exp = Exporter::claim(&j, opts).map_err(Failure::failed)?;
    if follow {
        out.line(&format!(
            "exporting to {url} ({proto}) from journal position {}; Ctrl-C stops",
            exp.watermark()
        ));
        let mut on = |r: &Result<agentops_telemetry::Report, ExportError>| match r {
            Ok(rep) => out.line(&format!(
                "sent {} ({}); watermark {}",
                agentops_core::counted(rep.spans as u64, "span", "spans"),
                agentops_core::counted(rep.requests as u64, "request", "requests"),
                rep.watermark
            )),
            Err(e) => out.warn(&format!("export: {e}")),
        };
        exp.follow(std::time::Duration::from_secs(1), &|| false, &mut on)
            .map_err(Failure::failed)?;
        return Ok(Code::Ok);
    }
    match exp.pass() {
        Ok(rep) => {
            if out.json {
                out.json(&serde_json::json!({"endpoint": url, "protocol": proto, "report": rep}));
            } else {
                out.line(&format!(
                    "sent {} in {} ({} KiB) to {url} ({proto}); watermark {}{}",
                    agentops_core::counted(rep.spans as u64, "span", "spans"),
                    agentops_core::counted(rep.requests as u64, "request", "requests"),
                    rep.bytes / 1024,
                    rep.watermark,
                    if rep.open_spans > 0 {
                        format!(
                            "; {} still open (running steps, live sessions) go when they complete",
                            agentops_core::counted(rep.open_spans as u64, "span", "spans")
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            Ok(Code::Ok)
        }
        Err(e @ ExportError::Unavailable { .. }) => Err(Failure::failed(format!(
            "{e}; run `agentops export otlp` again (or with --follow)"
        ))),
        Err(e) => Err(Failure::failed(e)),
    }
}
