//! Model backends for a run: building them, checking their keys before anything starts, and pricing calls.

use std::collections::BTreeMap;

use agentops_gates::Gate;
use agentops_llm::{Backend, BackendSpec, Response};

use crate::RunError;
use crate::spec::{self, Agent};

use super::*;

/// What a call cost: as the backend reported it, else from the price table
/// (by the model that answered, else the one asked).
pub(super) fn call_cost(sh: &Shared<'_>, model: &str, r: &Response) -> f64 {
    let m = if r.model.is_empty() { model } else { &r.model };
    r.reported_cost_usd
        .or_else(|| sh.prices.cost(m, &r.usage))
        .unwrap_or(0.0)
}

pub(super) fn context_packet(sh: &Shared<'_>, agent: &Agent, task: &str) -> Option<String> {
    let idx = sh.index?;
    let q = agent
        .spec
        .context
        .query
        .clone()
        .unwrap_or_else(|| task.to_owned());
    let utility = |ids: &[&str]| sh.ctx.journal.utility_scores(ids);
    let hits = idx
        .search(
            &q,
            &agentops_context::index::SearchFilter::default(),
            50,
            &utility,
        )
        .ok()?;
    if hits.is_empty() {
        return None;
    }
    let p = agentops_context::packet::assemble(
        &hits,
        idx.fixed_tokens(),
        &agentops_context::packet::PacketRequest {
            budget: agent.spec.context.max_tokens,
            full_entries: usize::try_from(sh.ctx.config.context.full_entries).unwrap_or(5),
        },
    );
    (!p.text.trim().is_empty()).then_some(p.text)
}

/// Checks, before anything is created (run, branch, worktree), that every
/// API backend the workflow's phases need has its key: a missing key is a
/// configuration error naming the variable, not a paused run to clean up.
pub(super) fn preflight(
    ctx: &RunContext<'_>,
    phases: &BTreeMap<String, spec::PhaseSpec>,
    agents: &BTreeMap<String, Agent>,
    gates: &BTreeMap<String, Gate>,
    backend: Option<&str>,
) -> Result<(), RunError> {
    for (name, p) in phases {
        if let Some(agent) = agents.get(&p.agent) {
            let spec_str = backend.unwrap_or(&agent.spec.backend);
            key_check(
                ctx,
                spec_str,
                agent.spec.base_url.clone(),
                agent.spec.api_key_env.clone(),
            )
            .map_err(|e| {
                RunError::Config(format!(
                    "phase {name} (agent {}, backend {spec_str}): {e}; nothing was started",
                    agent.spec.name
                ))
            })?;
        }
        // The judges of the phase's gates (a council's through its members).
        let mut names: Vec<&String> = p.gates.iter().collect();
        let mut seen = Vec::new();
        while let Some(g) = names.pop() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            let Some(gate) = gates.get(g) else { continue };
            names.extend(gate.spec.judges());
            if let Some(b) = gate.spec.judge_backend() {
                key_check(ctx, b, None, None).map_err(|e| {
                    RunError::Config(format!(
                        "phase {name}: gate `{g}` (judge backend {b}): {e}; nothing was started"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Whether an API backend (`openai:`/`anthropic:`) has what it needs to
/// start (its key); other backends and unparsable specs pass here (the spec
/// check reports those).
pub(super) fn key_check(
    ctx: &RunContext<'_>,
    spec: &str,
    base_url: Option<String>,
    key_env: Option<String>,
) -> Result<(), agentops_llm::LlmError> {
    let Ok(bspec) = BackendSpec::parse(spec) else {
        return Ok(());
    };
    if !matches!(
        bspec,
        BackendSpec::OpenAi { .. } | BackendSpec::Anthropic { .. }
    ) {
        return Ok(());
    }
    let o = agentops_llm::BuildOptions {
        llm: &ctx.config.llm,
        workdir: ctx.layout.work_tree.clone(),
        env: ctx.env,
        base_url,
        key_env,
        children_file: None,
    };
    agentops_llm::build(&bspec, &o).map(|_| ())
}

pub(super) fn build_backend(
    sh: &Shared<'_>,
    agent: &Agent,
) -> Result<(Box<dyn Backend>, String), RunError> {
    let spec_str = sh
        .st
        .started
        .backend
        .clone()
        .unwrap_or_else(|| agent.spec.backend.clone());
    let bspec = BackendSpec::parse(&spec_str)
        .map_err(|m| RunError::Config(format!("agent {}: backend: {m}", agent.spec.name)))?;
    let model = bspec
        .model()
        .map_or_else(|| spec_str.clone(), str::to_owned);
    let o = agentops_llm::BuildOptions {
        llm: &sh.ctx.config.llm,
        workdir: sh.st.started.worktree.clone(),
        env: sh.ctx.env,
        base_url: agent.spec.base_url.clone(),
        key_env: agent.spec.api_key_env.clone(),
        children_file: Some(children_file(&sh.ctx.layout.state_dir(), &sh.st.id)),
    };
    let b = agentops_llm::build(&bspec, &o).map_err(|source| RunError::Backend {
        agent: agent.spec.name.clone(),
        source,
    })?;
    Ok((b, model))
}
