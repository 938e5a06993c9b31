//! `gate run | list | check`.

use agentops_core::RunId;
use agentops_gates::Verdict;
use agentops_gates::policy::PolicyDecision;

use super::{Code, Failure, Flags};
use crate::cli::{CheckCommand, DecideArgs, GateCommand};
use crate::output::Output;
use crate::shared::{journal, provenance};

pub fn run(cmd: GateCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = super::open_project(flags)?;
    match cmd {
        GateCommand::List => {
            let gates = agentops_gates::load(&layout.agents_dir()).map_err(Failure::usage)?;
            if out.json {
                out.json(&gates.values().collect::<Vec<_>>());
                return Ok(Code::Ok);
            }
            if gates.is_empty() {
                out.line("no gates defined; add [gates.<name>] to .agents/config.toml (see docs/factor-4-gates.md)");
            }
            for g in gates.values() {
                let what = g.spec.description.clone().unwrap_or_default();
                out.line(&format!(
                    "{:<16} {:<8} {}  ({})",
                    g.name,
                    format!("{:?}", g.spec.kind()).to_lowercase(),
                    what,
                    g.defined_at
                ));
            }
            Ok(Code::Ok)
        }
        GateCommand::Run {
            names,
            all,
            base,
            strict,
            source,
        } => {
            let p = crate::shared::project(flags)?;
            let run = agentops_api::gates::run(
                &p,
                &names,
                all,
                base.as_deref(),
                strict,
                &provenance(source),
            )?;
            let (results, failed, waiting) = (&run.results, run.failed, run.waiting);
            if out.json {
                // A pending approval is WAIT here as in the text, not FAIL.
                out.json(&run.to_json());
            } else {
                let width = results.iter().map(|r| r.name.len()).max().unwrap_or(0);
                for r in results {
                    let label = if r.pending {
                        "WAIT"
                    } else {
                        r.verdict.as_str()
                    };
                    let line = format!("{label}  {:<width$}  {}", r.name, r.summary);
                    if r.verdict == Verdict::Pass {
                        out.line(&line);
                    } else {
                        out.important(&line);
                        render_evidence(r, out);
                    }
                }
                let gates = |n: usize| format!("{n} gate{}", if n == 1 { "" } else { "s" });
                let summary = if failed == 0 && waiting > 0 {
                    format!(
                        "{waiting} of {} waiting for a person (agentops approve|reject)",
                        gates(results.len())
                    )
                } else if failed == 0 {
                    format!(
                        "{}: {}{}",
                        gates(results.len()),
                        if results.len() == 1 {
                            "passed"
                        } else {
                            "all passed"
                        },
                        if results.iter().any(|r| r.verdict == Verdict::Warn) {
                            " (with warnings)"
                        } else {
                            ""
                        }
                    )
                } else {
                    format!("{failed} of {} failed", gates(results.len()))
                };
                out.important(&summary);
            }
            Ok(if failed > 0 {
                Code::Failure
            } else if waiting > 0 {
                Code::Paused
            } else {
                Code::Ok
            })
        }
        GateCommand::Pending { run } => {
            let run = run
                .as_deref()
                .map(RunId::parse)
                .transpose()
                .map_err(Failure::usage)?;
            let j = journal(&layout, &config)?;
            let list =
                agentops_gates::approval::pending(&j, run.as_ref()).map_err(Failure::failed)?;
            if out.json {
                out.json(&list);
            } else if list.is_empty() {
                out.line("no approvals waiting");
            } else {
                for p in &list {
                    out.line(&format!(
                        "{}  {:<16} {}  since {}",
                        p.run,
                        p.gate,
                        p.what,
                        agentops_core::time::rfc3339(p.requested_ts)
                    ));
                }
            }
            Ok(Code::Ok)
        }
        GateCommand::Check(c) => {
            let decision = match c {
                CheckCommand::Command { command } => {
                    agentops_api::gates::check_command(&crate::shared::project(flags)?, &command)?
                }
                CheckCommand::Write { path } => agentops_api::gates::check_write(
                    &crate::shared::project(flags)?,
                    &path.to_string_lossy(),
                )?,
            };
            if out.json {
                out.json(&decision);
            } else {
                match &decision {
                    PolicyDecision::Allow => out.line("allow"),
                    PolicyDecision::Deny { reason, .. } => {
                        out.important(&format!("deny: {reason}"))
                    }
                }
            }
            Ok(if decision.is_deny() {
                Code::Failure
            } else {
                Code::Ok
            })
        }
    }
}

fn render_evidence(r: &agentops_gates::GateResult, out: &Output) {
    let e = &r.evidence;
    for key in ["offending", "findings"] {
        if let Some(items) = e.get(key).and_then(|v| v.as_array()) {
            for i in items.iter().take(50) {
                let text = match key {
                    "offending" => format!(
                        "{}: {}",
                        i["path"].as_str().unwrap_or(""),
                        i["reason"].as_str().unwrap_or("")
                    ),
                    _ => format!(
                        "{}: {}",
                        i["at"].as_str().unwrap_or(""),
                        i["rule"].as_str().unwrap_or("")
                    ),
                };
                out.important(&format!("      {text}"));
            }
            if items.len() > 50 {
                out.important(&format!(
                    "      … and {} more (--json for all)",
                    items.len() - 50
                ));
            }
        }
    }
    if let Some(tail) = e
        .get("tail")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
    {
        let lines: Vec<&str> = tail.lines().collect();
        for l in &lines[lines.len().saturating_sub(15)..] {
            out.important(&format!("      | {l}"));
        }
    }
}

/// `agentops approve|reject`.
pub fn decide(
    args: DecideArgs,
    approved: bool,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, config) = super::open_project(flags)?;
    let run = RunId::parse(&args.run).map_err(Failure::usage)?;
    // A queued run's approvals live in the team store, from any machine.
    let queued = super::worker::queued(&config, run.as_str());
    let j = match &queued {
        Some(_) => super::worker::journal_for(&config)?,
        None => journal(&layout, &config)?,
    };
    let by = agentops_api::actor(&layout);
    let decided = agentops_gates::approval::resolve(
        &j,
        &run,
        args.gate.as_deref(),
        approved,
        &by,
        &args.reason,
    )
    .map_err(Failure::failed)?;
    if decided.is_empty() {
        return Err(Failure::failed(format!(
            "nothing is waiting for approval in {run}{}; `agentops gate pending` lists what is",
            args.gate
                .as_deref()
                .map(|g| format!(" for gate `{g}`"))
                .unwrap_or_default()
        )));
    }
    let verb = if approved { "approved" } else { "rejected" };
    let requeued = queued
        .as_ref()
        .and_then(|(store, row)| super::worker::after_approval(&config, store, row));
    if out.json {
        out.json(&serde_json::json!({"run": run, "decision": verb, "gates": decided, "by": by, "requeued": requeued.is_some()}));
    } else {
        out.line(&format!("{verb} in {run}: {}", decided.join(", ")));
        if let Some(line) = requeued {
            out.line(&line);
        }
    }
    Ok(Code::Ok)
}
