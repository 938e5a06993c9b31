//! One phase attempt: the turn loop (replay cache, model calls, tool dispatch), its gates, its checkpoint.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use agentops_core::SpanId;
use agentops_gates::{Gate, GateResult, Next, Verdict};
use agentops_llm::{Backend, Message, Request, Response};
use agentops_protocol::event::{self as body, ControlAction};
use agentops_store::{Durability, Query};

use crate::RunError;
use crate::spec::Agent;
use crate::state::{PauseReason, PhaseDone};
use crate::tools::{ToolEnv, ToolOutput};

use super::*;

/// Whether something asks this run to stop: a control event, a budget.
pub(super) fn check_stop(
    sh: &Shared<'_>,
    phase: &str,
    agent: &Agent,
) -> Result<Option<PhaseResult>, RunError> {
    if sh.stop.load(Ordering::Relaxed) || lost(sh) {
        return Ok(Some(PhaseResult::Stopped));
    }
    let controls = sh.ctx.journal.read(&Query {
        run_id: Some(sh.st.id.clone()),
        kinds: vec![EventKind::RunControl],
        after_seq: Some(sh.st.segment_seq),
        ..Query::default()
    })?;
    if let Some(c) = controls.last() {
        sh.stop.store(true, Ordering::Relaxed);
        let cancel = matches!(
            body::decode::<body::RunControl>(c),
            Ok(body::RunControl {
                action: ControlAction::Cancel
            })
        );
        return Ok(Some(if cancel {
            PhaseResult::Cancelled
        } else {
            PhaseResult::Paused {
                reason: PauseReason::Requested,
                detail: "paused on request (`agentops pause`)".into(),
            }
        }));
    }
    let (spent, by_phase) = sh
        .spent
        .lock()
        .map(|g| (g.0, g.1.get(phase).copied().unwrap_or_default()))
        .unwrap_or_default();
    let secs = (sh.st.active_us as f64 / 1e6) + sh.segment.elapsed().as_secs_f64();
    let found = crate::budget::exceeded(
        &sh.st.budget,
        &spent,
        secs,
        (&agent.spec.name, &agent.spec.budget),
        &by_phase,
    )
    .map(|e| PhaseResult::Paused {
        reason: PauseReason::Budget,
        detail: e.detail(sh.st.id.as_str()),
    });
    if found.is_some() {
        sh.stop.store(true, Ordering::Relaxed);
    }
    Ok(found)
}

pub(super) fn run_phase(
    sh: &Shared<'_>,
    phase: &str,
    summaries: &BTreeMap<String, PhaseDone>,
) -> Result<PhaseResult, RunError> {
    let id = &sh.st.id;
    let s = &sh.st.started;
    let p = &s.workflow.phases[phase];
    let agent = s
        .agents
        .get(&p.agent)
        .ok_or_else(|| RunError::Config(format!("agent `{}` is missing from the run", p.agent)))?;
    let (backend, model) = match build_backend(sh, agent) {
        Ok(b) => b,
        Err(e) => {
            sh.stop.store(true, Ordering::Relaxed);
            return Ok(PhaseResult::Paused {
                reason: PauseReason::Error,
                detail: e.to_string(),
            });
        }
    };
    let tools = if backend.offers_tools() {
        crate::tools::specs(&agent.spec.tools)
    } else {
        Vec::new()
    };
    let scope = |g: &[String]| agentops_gates::policy::write_scope(g).map_err(RunError::Config);
    let env = ToolEnv {
        root: s
            .worktree
            .canonicalize()
            .unwrap_or_else(|_| s.worktree.clone()),
        read_scope: scope(&agent.spec.read_scope)?,
        write_scope: scope(&agent.spec.write_scope)?,
        write_scope_empty: agent.spec.write_scope.is_empty(),
        allow_commands: agent
            .spec
            .allow_commands
            .iter()
            .filter_map(|r| regex::Regex::new(r).ok())
            .collect(),
        policy: &sh.policy,
        command_timeout: Duration::from_secs(120),
        search: sh.search,
        agent: agent.spec.name.clone(),
        run_id: id.to_string(),
        created_us: sh.st.started_ts,
        redactor: sh.ctx.journal.redactor(),
    };
    let gates: Vec<&Gate> = p.gates.iter().filter_map(|g| sh.gates.get(g)).collect();
    let max_attempts = p.max_attempts + sh.st.extra_attempts;
    let phase_start = Instant::now();
    let mut feedback: Option<String> = None;
    let (mut live, mut replayed) = (0u32, 0u32);
    // What the step changed: known paths when every change went through our
    // file tools, else everything (a command or a harness ran).
    let mut changes = Changes {
        all_files: backend.has_side_effects(),
        ..Changes::default()
    };
    let mut phase_usage = agentops_llm::Usage::default();
    let mut phase_cost = 0.0;
    let phase_span = SpanId::generate();
    let limits = Turns {
        max_turns: agent.spec.max_turns,
        offers_tools: backend.offers_tools(),
    };
    for attempt in 1..=max_attempts {
        sh.ctx.progress.event(&ProgressEvent::PhaseStarted {
            phase: phase.into(),
            agent: agent.spec.name.clone(),
            attempt,
        });
        sh.ctx.journal.append(
            event(
                id,
                body::StepStarted {
                    phase: phase.to_owned(),
                    attempt,
                    agent: agent.spec.name.clone(),
                    model: model.clone(),
                    provider: backend.provider().to_owned(),
                },
            )
            .in_span(phase_span.clone(), None),
            Durability::Relaxed,
        )?;
        let first = phase_message(sh, phase, agent, summaries, feedback.as_deref())?;
        let req = Request {
            model: model.clone(),
            system: system_prompt(agent),
            messages: vec![Message::user(first)],
            tools: tools.clone(),
            max_tokens: agent.spec.max_tokens,
            temperature: agent.spec.temperature,
        };
        let mut host = PhaseHost {
            sh,
            phase,
            attempt,
            agent,
            backend: backend.as_ref(),
            model: &model,
            env: &env,
            span: &phase_span,
            changes: &mut changes,
        };
        let turns = match run_turns(&mut host, limits, req)? {
            Ok(t) => t,
            Err(stop) => return Ok(stop),
        };
        live += turns.live;
        replayed += turns.replayed;
        phase_usage.add(&turns.usage);
        phase_cost += turns.cost_usd;
        let last_text = turns.last_text;
        // Gates on the worktree against the run's base.
        let results: Vec<GateResult> = if gates.is_empty() {
            Vec::new()
        } else {
            let all: Vec<&Gate> = sh.gates.values().collect();
            let judges = agentops_gates::JudgeEnv {
                llm: &sh.ctx.config.llm,
                agents_dir: sh.ctx.layout.agents_dir(),
                env: sh.ctx.env,
                worker: Some(agent.spec.name.clone()),
            };
            agentops_gates::run_gates_with(
                &gates,
                &all,
                &s.worktree,
                Some(&s.base_commit),
                Some(sh.ctx.journal),
                id,
                Some(&judges),
                Some(&phase_span),
            )
            .map_err(|source| RunError::Gates {
                context: format!("phase {phase}: gates: "),
                source,
            })?
        };
        for r in &results {
            sh.ctx.progress.event(&ProgressEvent::Gate {
                phase: phase.into(),
                gate: r.name.clone(),
                verdict: r.verdict.as_str().into(),
                summary: r.summary.clone(),
            });
        }
        if let Some(pending) = results.iter().find(|r| r.pending) {
            sh.stop.store(true, Ordering::Relaxed);
            return Ok(PhaseResult::Paused {
                reason: PauseReason::Approval,
                detail: format!(
                    "phase {phase}: gate `{}` waits for a person: agentops approve {id} --gate {} (then agentops resume {id})",
                    pending.name, pending.name
                ),
            });
        }
        match agentops_gates::escalation(&results, attempt, max_attempts, 1_000, sh.count) {
            Next::Proceed => {
                let commit = commit_checkpoint(sh, phase, attempt, &changes)?;
                if let Err(detail) = publish(sh, &commit) {
                    return Ok(PhaseResult::Paused {
                        reason: PauseReason::Other("remote".into()),
                        detail,
                    });
                }
                // The summary reaches later phases, the run summary and git:
                // redacted here, once.
                let summary = sh
                    .ctx
                    .journal
                    .redactor()
                    .redact(&clip_tokens(
                        last_text.trim(),
                        s.workflow.summary_tokens as usize,
                        sh.count,
                    ))
                    .into_owned();
                sh.ctx.journal.append(
                    event(
                        id,
                        body::StepCompleted {
                            phase: phase.to_owned(),
                            attempt,
                            commit: commit.clone(),
                            summary: summary.clone(),
                            usage: phase_usage,
                            cost_usd: phase_cost,
                            duration_ms: phase_start.elapsed().as_secs_f64() * 1000.0,
                            agent: agent.spec.name.clone(),
                            gates: results
                                .iter()
                                .map(|r| body::GateOutcome {
                                    gate: r.name.clone(),
                                    verdict: r.verdict,
                                })
                                .collect(),
                        },
                    )
                    .in_span(phase_span.clone(), None),
                    Durability::Sync,
                )?;
                sh.ctx.progress.event(&ProgressEvent::PhaseCompleted {
                    phase: phase.into(),
                    attempt,
                    tokens: phase_usage.total(),
                    cost_usd: phase_cost,
                    seconds: phase_start.elapsed().as_secs_f64(),
                    commit: commit.clone(),
                    replayed_calls: replayed,
                    live_calls: live,
                });
                return Ok(PhaseResult::Done(PhaseDone {
                    commit,
                    summary,
                    attempt,
                    usage: phase_usage,
                    cost_usd: phase_cost,
                }));
            }
            Next::Retry { feedback: f } => {
                sh.ctx.journal.append(
                    event(
                        id,
                        body::StepRetry {
                            phase: phase.to_owned(),
                            attempt,
                            feedback: f.clone(),
                            agent: agent.spec.name.clone(),
                        },
                    )
                    .in_span(phase_span.clone(), None),
                    Durability::Relaxed,
                )?;
                sh.ctx.progress.event(&ProgressEvent::PhaseRetry {
                    phase: phase.into(),
                    attempt: attempt + 1,
                });
                feedback = Some(f);
            }
            Next::Escalate { feedback: f } => {
                sh.stop.store(true, Ordering::Relaxed);
                let failed: Vec<&str> = results
                    .iter()
                    .filter(|r| r.verdict == Verdict::Fail)
                    .map(|r| r.name.as_str())
                    .collect();
                return Ok(PhaseResult::Paused {
                    reason: PauseReason::Escalation,
                    detail: format!(
                        "phase {phase} failed gate(s) {} after {attempt} attempts; look at the worktree, then `agentops resume {id}` (more attempts) or `agentops cancel {id}`.\n{f}",
                        failed.join(", ")
                    ),
                });
            }
        }
    }
    Ok(PhaseResult::Paused {
        reason: PauseReason::Escalation,
        detail: format!("phase {phase}: no attempts left"),
    })
}

/// The turn loop's effects inside a phase attempt: the journal's replay
/// cache, live calls journaled before any tool acts on them, tools.
struct PhaseHost<'a, 's> {
    sh: &'a Shared<'s>,
    phase: &'a str,
    attempt: u32,
    agent: &'a Agent,
    backend: &'a dyn Backend,
    model: &'a str,
    env: &'a ToolEnv<'a>,
    span: &'a SpanId,
    changes: &'a mut Changes,
}

impl TurnHost for PhaseHost<'_, '_> {
    fn key(&self, req: &Request) -> String {
        req.key_redacted(self.sh.ctx.journal.redactor())
    }

    fn recorded(&mut self, key: &str) -> Option<Response> {
        if self.backend.has_side_effects() {
            return None;
        }
        self.sh
            .recorded
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(key).and_then(VecDeque::pop_front))
    }

    fn replayed(&mut self, turn: u32, r: &Response) {
        self.sh.ctx.progress.event(&ProgressEvent::ModelCall {
            phase: self.phase.into(),
            turn,
            tokens: r.usage.total(),
            cost_usd: 0.0,
            ms: 0.0,
            replayed: true,
        });
    }

    fn call(
        &mut self,
        req: &Request,
        key: &str,
        turn: u32,
    ) -> Result<Result<Response, PhaseResult>, RunError> {
        let (sh, phase, attempt, agent) = (self.sh, self.phase, self.attempt, self.agent);
        let id = &sh.st.id;
        if let Some(stop) = check_stop(sh, phase, agent)? {
            return Ok(Err(stop));
        }
        let call = || call_body(key, phase, attempt, turn, agent, self.backend, self.model);
        let t = Instant::now();
        let started_us = agentops_core::time::now_micros();
        let r = match self.backend.complete(req, &mut |_| {}) {
            Ok(r) => r,
            Err(e) => {
                sh.ctx.journal.append(
                    event(
                        id,
                        body::LlmCall {
                            error: Some(e.to_string()),
                            error_type: Some(e.kind.as_str().to_owned()),
                            replayable: Some(false),
                            cost_usd: Some(0.0),
                            ..call()
                        },
                    )
                    .in_span(SpanId::generate(), Some(self.span.clone())),
                    Durability::Sync,
                )?;
                sh.stop.store(true, Ordering::Relaxed);
                return Ok(Err(PhaseResult::Paused {
                    reason: PauseReason::Error,
                    detail: format!("phase {phase}: {e}"),
                }));
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let cost = call_cost(sh, self.model, &r);
        let mut ev = event(
            id,
            body::LlmCall {
                response_model: Some(r.model.clone()),
                response_id: Some(r.id.clone()),
                usage: r.usage,
                cost_usd: Some(cost),
                duration_ms: Some(ms),
                replayable: Some(!self.backend.has_side_effects()),
                stop_reason: Some(r.stop_reason.clone()),
                response: Some(r.clone()),
                messages: Some(req.messages.len()),
                ..call()
            },
        )
        .in_span(SpanId::generate(), Some(self.span.clone()));
        ev.ts = started_us;
        // Durable before any tool acts on it: a kill after this line never
        // pays for the call again.
        sh.ctx.journal.append(ev, Durability::Sync)?;
        if let Ok(mut g) = sh.spent.lock() {
            g.0.add(&r.usage, cost);
            g.1.entry(phase.to_owned()).or_default().add(&r.usage, cost);
        }
        sh.ctx.progress.event(&ProgressEvent::ModelCall {
            phase: phase.into(),
            turn,
            tokens: r.usage.total(),
            cost_usd: cost,
            ms,
            replayed: false,
        });
        Ok(Ok(r))
    }

    fn cost(&self, r: &Response) -> f64 {
        call_cost(self.sh, self.model, r)
    }

    fn tool(
        &mut self,
        turn: u32,
        tid: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<ToolOutput, RunError> {
        let t = Instant::now();
        let env = self.env;
        let out = dispatch(&self.agent.spec.tools, name, input, self.changes, |n, i| {
            env.execute(n, i)
        });
        self.sh.ctx.journal.append(
            event(
                &self.sh.st.id,
                body::ToolCall {
                    phase: Some(self.phase.to_owned()),
                    attempt: Some(self.attempt),
                    turn: Some(turn),
                    agent: Some(self.agent.spec.name.clone()),
                    ..tool_body(name, tid, input, &out, t.elapsed().as_secs_f64() * 1000.0)
                },
            )
            .in_span(SpanId::generate(), Some(self.span.clone())),
            Durability::Relaxed,
        )?;
        self.sh.ctx.progress.event(&ProgressEvent::ToolCall {
            phase: self.phase.into(),
            tool: name.to_owned(),
            ok: !out.is_error,
        });
        Ok(out)
    }
}
