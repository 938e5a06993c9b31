//! What an agent is told: its system prompt, the phase message with earlier phases' summaries, the context packet.

use std::collections::{BTreeMap, BTreeSet};

use crate::RunError;
use crate::spec::{self, Agent};
use crate::state::PhaseDone;

use super::*;

pub(super) fn ancestors(phases: &BTreeMap<String, spec::PhaseSpec>, name: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = phases
        .get(name)
        .map(|p| p.needs.clone())
        .unwrap_or_default();
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone())
            && let Some(p) = phases.get(&n)
        {
            stack.extend(p.needs.iter().cloned());
        }
    }
    // In workflow order.
    spec::waves(phases)
        .into_iter()
        .flatten()
        .filter(|p| seen.contains(p))
        .collect()
}

pub(super) fn clip_tokens(text: &str, max: usize, count: &dyn Fn(&str) -> usize) -> String {
    if count(text) <= max {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        let keep = chars.len() * 9 / 10;
        chars.truncate(keep);
        let s: String = chars.iter().collect();
        if count(&s) + 8 <= max {
            return format!("{s}\n[summary cut to {max} tokens]");
        }
    }
    String::new()
}

pub(super) fn system_prompt(agent: &Agent) -> String {
    let mut s = String::new();
    if !agent.prompt.trim().is_empty() {
        s.push_str(agent.prompt.trim());
        s.push_str("\n\n");
    }
    s.push_str(&format!(
        "You are the `{}` agent. Your one purpose: {}\nDo only this phase's task. When you are done, answer with a short summary of what you did and what the next phase should know.",
        agent.spec.name,
        agent.spec.purpose.trim()
    ));
    if !agent.spec.write_scope.is_empty() {
        s.push_str(&format!(
            "\nYou may change only: {}.",
            agent.spec.write_scope.join(", ")
        ));
    }
    s
}

pub(super) fn phase_message(
    sh: &Shared<'_>,
    phase: &str,
    agent: &Agent,
    summaries: &BTreeMap<String, PhaseDone>,
    feedback: Option<&str>,
) -> Result<String, RunError> {
    let s = &sh.st.started;
    let p = &s.workflow.phases[phase];
    let task = spec::render_task(&p.task, &s.goal, &s.vars).map_err(RunError::Config)?;
    let mut m = format!(
        "# Task ({phase})\n\n{task}\n\n# Goal of the run\n\n{}\n",
        s.goal
    );
    let before = ancestors(&s.workflow.phases, phase);
    if !before.is_empty() {
        m.push_str("\n# Earlier phases\n");
        for b in before {
            if let Some(d) = summaries.get(&b) {
                let clipped = clip_tokens(
                    d.summary.trim(),
                    s.workflow.summary_tokens as usize,
                    sh.count,
                );
                m.push_str(&format!(
                    "\n## {b} ({})\n\n{clipped}\n",
                    s.workflow.phases[&b].agent
                ));
            }
        }
    }
    if agent.spec.context.knowledge
        && let Some(packet) = context_packet(sh, agent, &task)
    {
        m.push_str("\n# Relevant knowledge\n\n");
        m.push_str(&packet);
    }
    if let Some(f) = feedback {
        m.push_str("\n# Feedback from the previous attempt\n\n");
        m.push_str(f);
    }
    Ok(m)
}
