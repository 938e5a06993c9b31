//! Factor IV as operations: run named gates, check a command or a write
//! against the policy.

use agentops_gates::policy::{CommandPolicy, PolicyDecision};
use agentops_gates::{Gate, GateResult, Verdict};
use agentops_knowledge::Provenance;
use serde_json::{Value, json};

use crate::{ApiError, Project};

/// What running gates gave.
pub struct GateRun {
    pub results: Vec<GateResult>,
    pub strict: bool,
    /// Results that block (a failure; a warning when strict), pending ones apart.
    pub failed: usize,
    /// Approvals waiting for a person.
    pub waiting: usize,
}

impl GateRun {
    /// As `agentops gate run --json` gives it: a pending approval is `WAIT`.
    pub fn to_json(&self) -> Value {
        let shown: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if r.pending {
                    v["verdict"] = "WAIT".into();
                }
                v
            })
            .collect();
        json!({ "ok": self.failed == 0, "strict": self.strict, "results": shown })
    }
}

/// Runs the gates named (`all`: every gate defined), each verdict journaled.
pub fn run(
    p: &Project,
    names: &[String],
    all: bool,
    base: Option<&str>,
    strict: bool,
    source: &Provenance,
) -> Result<GateRun, ApiError> {
    let gates = agentops_gates::load(&p.layout.agents_dir()).map_err(ApiError::usage)?;
    if names.is_empty() && !all {
        return Err(ApiError::usage(
            "name the gates to run, or pass --all (see `agentops gate list`)",
        ));
    }
    let selected: Vec<&Gate> = if all {
        gates.values().collect()
    } else {
        names
            .iter()
            .map(|n| {
                gates.get(n).ok_or_else(|| {
                    ApiError::usage(agentops_gates::GateError::Unknown {
                        name: n.clone(),
                        defined: gates.keys().cloned().collect(),
                    })
                })
            })
            .collect::<Result<_, _>>()?
    };
    let j = p.journal()?;
    let run = source.journal_run();
    let every: Vec<&Gate> = gates.values().collect();
    let env = |name: &str| std::env::var(name).ok();
    let judges = agentops_gates::JudgeEnv {
        llm: &p.config.llm,
        agents_dir: p.layout.agents_dir(),
        env: &env,
        worker: source.agent.clone(),
    };
    let results = agentops_gates::run_gates_with(
        &selected,
        &every,
        &p.layout.work_tree,
        base,
        Some(&j),
        &run,
        Some(&judges),
        None,
    )
    .map_err(ApiError::failed)?;
    let blocking = |v: Verdict| v == Verdict::Fail || (strict && v == Verdict::Warn);
    let failed = results
        .iter()
        .filter(|r| blocking(r.verdict) && !r.pending)
        .count();
    let waiting = results.iter().filter(|r| r.pending).count();
    Ok(GateRun {
        results,
        strict,
        failed,
        waiting,
    })
}

/// The policy's verdict for a shell command.
pub fn check_command(p: &Project, command: &str) -> Result<PolicyDecision, ApiError> {
    let policy = CommandPolicy::from_config(&p.config.policy).map_err(ApiError::usage)?;
    Ok(policy.check(command))
}

/// The policy's verdict for writing `path` (relative to the project's cwd).
pub fn check_write(p: &Project, path: &str) -> Result<PolicyDecision, ApiError> {
    let scope = agentops_gates::policy::write_scope(&p.config.policy.write_scope)
        .map_err(ApiError::usage)?;
    Ok(agentops_gates::policy::check_write(
        std::path::Path::new(path),
        &p.cwd,
        &p.layout.work_tree,
        &scope,
    ))
}
