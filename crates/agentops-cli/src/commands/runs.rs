//! `agents`, `workflows`, `run`, `resume`, `pause`, `cancel`, `land`, `gc`,
//! `runs`, `show`, `demo`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use agentops_core::RunId;
use agentops_runner::spec;
use agentops_runner::{Outcome, Progress, ProgressEvent, RunContext, RunError};
use agentops_store::{Journal, RepoLayout};

use super::{Code, Failure, Flags, open_project};
use crate::cli::{AgentsCommand, BudgetArgs, RunArgs, TeamArgs, WorkflowsCommand};
use crate::output::{Output, write_err, write_out};
use crate::shared::{background, env_lookup, finish_background, journal, journal_read};

use agentops_protocol::event::ControlAction;

pub(super) fn fail(e: RunError) -> Failure {
    Failure {
        code: if e.exit_code() == 2 {
            Code::Usage
        } else {
            Code::Failure
        },
        message: e.to_string(),
    }
}

/// Progress as lines on stderr (a terminal), JSON lines on stdout
/// (`--json`), or nothing (piped, `-q`).
struct Reporter {
    mode: Mode,
    start: Instant,
    phase_start: Mutex<BTreeMap<String, Instant>>,
    /// When the last progress line was shown (for the heartbeat).
    last: Mutex<Instant>,
}

#[derive(PartialEq)]
enum Mode {
    Terminal,
    Json,
    Quiet,
}

impl Reporter {
    fn new(out: &Output) -> Self {
        let mode = if out.json {
            Mode::Json
        } else if out.quiet || !std::io::stderr().is_terminal() {
            Mode::Quiet
        } else {
            Mode::Terminal
        };
        Self::with(mode)
    }

    fn with(mode: Mode) -> Self {
        Self {
            mode,
            start: Instant::now(),
            phase_start: Mutex::new(BTreeMap::new()),
            last: Mutex::new(Instant::now()),
        }
    }

    /// On a terminal, a line every 5 s while nothing else is said (a long
    /// model or harness call), with the time it has taken; until `stop`.
    fn heartbeat(&self, stop: &std::sync::atomic::AtomicBool) {
        if self.mode != Mode::Terminal {
            return;
        }
        let every = std::time::Duration::from_secs(5);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if last.elapsed() >= every {
                let waited = self.start.elapsed().as_secs();
                write_err(&format!(
                    "    … still working ({}m{:02}s in all; Ctrl-C stops, `agentops resume` continues)\n",
                    waited / 60,
                    waited % 60
                ));
                *last = Instant::now();
            }
        }
    }
}

/// The run this process is executing, for the Ctrl-C message.
static CURRENT_RUN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// On SIGINT (Ctrl-C): say how to pick the run up again, and exit
/// 130. The journal is durable at every step boundary and every recorded
/// model call, so nothing is lost by stopping here.
fn on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        let run = CURRENT_RUN.lock().ok().and_then(|g| g.clone());
        let msg = match run {
            Some(id) => format!("\ninterrupted: agentops resume {id}\n"),
            None => "\ninterrupted before the run started; nothing to resume\n".to_owned(),
        };
        use std::io::Write;
        let _ = std::io::stderr().write_all(msg.as_bytes());
        std::process::exit(130);
    });
}

impl Progress for Reporter {
    fn event(&self, e: &ProgressEvent) {
        if let ProgressEvent::RunStarted { run, .. } = e
            && let Ok(mut g) = CURRENT_RUN.lock()
        {
            *g = Some(run.clone());
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                if let Ok(s) = serde_json::to_string(e) {
                    write_out(&format!("{s}\n"));
                }
            }
            Mode::Terminal => {
                if let Ok(mut l) = self.last.lock() {
                    *l = Instant::now();
                }
                let t = self.start.elapsed().as_secs_f64();
                let line = match e {
                    ProgressEvent::RunStarted {
                        run,
                        workflow,
                        branch,
                        resumed,
                        ..
                    } => format!(
                        "{} run {run} ({workflow}) on {branch}",
                        if *resumed { "resuming" } else { "starting" }
                    ),
                    ProgressEvent::PhaseStarted {
                        phase,
                        agent,
                        attempt,
                    } => {
                        if let Ok(mut m) = self.phase_start.lock() {
                            m.entry(phase.clone()).or_insert_with(Instant::now);
                        }
                        format!("  ▸ {phase:<12} {agent} — attempt {attempt}")
                    }
                    ProgressEvent::ModelCall {
                        phase,
                        tokens,
                        cost_usd,
                        ms,
                        replayed,
                        ..
                    } => {
                        if *replayed {
                            format!(
                                "    {phase:<12} model call answered from the journal ({tokens} tokens, not paid again)"
                            )
                        } else {
                            format!(
                                "    {phase:<12} model call {tokens} tokens ${cost_usd:.4} {ms:.0} ms"
                            )
                        }
                    }
                    ProgressEvent::ToolCall { phase, tool, ok } => {
                        format!(
                            "    {phase:<12} tool {tool} {}",
                            if *ok { "ok" } else { "error" }
                        )
                    }
                    ProgressEvent::Gate {
                        phase,
                        gate,
                        verdict,
                        summary,
                    } => {
                        format!("    {phase:<12} gate {gate}: {verdict} — {summary}")
                    }
                    ProgressEvent::PhaseRetry { phase, attempt } => {
                        format!(
                            "    {phase:<12} gate failed: retrying with the evidence as feedback (attempt {attempt})"
                        )
                    }
                    ProgressEvent::PhaseCompleted {
                        phase,
                        attempt,
                        tokens,
                        cost_usd,
                        seconds,
                        commit,
                        ..
                    } => format!(
                        "  ✓ {phase:<12} {tokens} tokens ${cost_usd:.4} {seconds:.1}s, attempt {attempt}, checkpoint {}",
                        &commit[..commit.len().min(10)]
                    ),
                    ProgressEvent::Paused { reason, detail } => {
                        format!("  ‖ paused ({reason}): {detail}")
                    }
                    ProgressEvent::Finished {
                        status,
                        tokens,
                        cost_usd,
                        ..
                    } => {
                        format!("  {status}: {tokens} tokens, ${cost_usd:.4}, {t:.1}s")
                    }
                };
                write_err(&format!("{line}\n"));
            }
        }
    }
}

fn open(flags: &Flags) -> Result<(RepoLayout, agentops_core::config::Config, Journal), Failure> {
    let (layout, config) = open_project(flags)?;
    let j = journal(&layout, &config)?;
    Ok((layout, config, j))
}

/// [`open`] for the commands that only read.
fn open_read(
    flags: &Flags,
) -> Result<(RepoLayout, agentops_core::config::Config, Journal), Failure> {
    let (layout, config) = open_project(flags)?;
    let j = journal_read(&layout, &config)?;
    Ok((layout, config, j))
}

pub fn agents(cmd: AgentsCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let dir = layout.agents_dir();
    let agents = spec::load_agents(&dir).map_err(Failure::usage)?;
    match cmd {
        AgentsCommand::List => {
            if out.json {
                out.json(&agents.values().map(|a| &a.spec).collect::<Vec<_>>());
            } else if agents.is_empty() {
                out.line("no agents (add .agents/agents/<name>.toml)");
            } else {
                for a in agents.values() {
                    out.line(&format!(
                        "{:<16} {:<28} {}",
                        a.spec.name, a.spec.backend, a.spec.purpose
                    ));
                }
            }
        }
        AgentsCommand::Show { name } => {
            let a = agents.get(&name).ok_or_else(|| {
                Failure::usage(format!(
                    "no agent `{name}`; defined: {}",
                    agents.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            if out.json {
                out.json(a);
            } else {
                let s = &a.spec;
                out.line(&format!("{} — {}", s.name, s.purpose));
                out.line(&format!("  defined at  {}", a.defined_at));
                out.line(&format!("  backend     {}", s.backend));
                out.line(&format!("  tools       {}", s.tools.join(", ")));
                out.line(&format!("  read scope  {}", s.read_scope.join(", ")));
                out.line(&format!(
                    "  write scope {}",
                    if s.write_scope.is_empty() {
                        "(none)".into()
                    } else {
                        s.write_scope.join(", ")
                    }
                ));
                out.line(&format!("  max turns   {}", s.max_turns));
                out.line(&format!("  budget      {}", budget_text(&s.budget)));
                out.line("");
                out.raw(&a.prompt);
            }
        }
        AgentsCommand::Lint => {
            let tk = agentops_context::tokens::TokenizerKind::of(config.context.tokenizer);
            let count = |s: &str| tk.count(s);
            let findings: Vec<spec::Finding> = agents
                .values()
                .flat_map(|a| spec::lint(a, &count))
                .collect();
            if out.json {
                out.json(&findings);
            } else {
                for f in &findings {
                    out.important(&format!("{}: {}: {}", f.location, f.agent, f.message));
                }
                out.line(&format!(
                    "{} agent(s), {} finding(s)",
                    agents.len(),
                    findings.len()
                ));
            }
            return Ok(if findings.is_empty() {
                Code::Ok
            } else {
                Code::Failure
            });
        }
    }
    Ok(Code::Ok)
}

fn budget_text(b: &spec::Budget) -> String {
    let mut v = Vec::new();
    if let Some(t) = b.tokens {
        v.push(format!("{t} tokens"));
    }
    if let Some(u) = b.usd {
        v.push(format!("${u}"));
    }
    if let Some(s) = b.seconds {
        v.push(format!("{s} s"));
    }
    if let Some(t) = b.turns {
        v.push(format!("{t} calls"));
    }
    if v.is_empty() {
        "unlimited".into()
    } else {
        v.join(", ")
    }
}

pub fn workflows(cmd: WorkflowsCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, _) = open_project(flags)?;
    let dir = layout.agents_dir();
    match cmd {
        WorkflowsCommand::List => {
            let w = spec::load_workflows(&dir).map_err(Failure::usage)?;
            if out.json {
                out.json(&w.values().map(|w| &w.spec).collect::<Vec<_>>());
            } else if w.is_empty() {
                out.line("no workflows (add .agents/workflows/<name>.toml)");
            } else {
                for w in w.values() {
                    out.line(&format!(
                        "{:<16} {} phase(s)  {}",
                        w.spec.name,
                        w.spec.phases.len(),
                        w.spec.description
                    ));
                }
            }
        }
        WorkflowsCommand::Show { name } => {
            let w = spec::load_workflow(&dir, &name).map_err(Failure::usage)?;
            if out.json {
                out.json(&w.spec);
            } else {
                out.line(&format!("{} — {}", w.spec.name, w.spec.description));
                out.line(&format!(
                    "  budget {}; summaries ≤ {} tokens",
                    budget_text(&w.spec.budget),
                    w.spec.summary_tokens
                ));
                for (i, wave) in spec::waves(&w.spec.phases).iter().enumerate() {
                    for p in wave {
                        let ph = &w.spec.phases[p];
                        out.line(&format!(
                            "  {}. {p:<14} agent {:<12} needs [{}]  gates [{}]  attempts {}",
                            i + 1,
                            ph.agent,
                            ph.needs.join(", "),
                            ph.gates.join(", "),
                            ph.max_attempts
                        ));
                    }
                }
            }
        }
        WorkflowsCommand::Validate { name } => {
            let list = match name {
                Some(n) => vec![spec::load_workflow(&dir, &n).map_err(Failure::usage)?],
                None => spec::load_workflows(&dir)
                    .map_err(Failure::usage)?
                    .into_values()
                    .collect(),
            };
            let (agents, agent_errors) = spec::load_agents_checked(&dir);
            let gates = agentops_gates::load(&dir).map_err(Failure::usage)?;
            let mut errors = Vec::new();
            for w in &list {
                errors.extend(spec::validate(w, &agents, &agent_errors, &gates));
            }
            if out.json {
                out.json(&serde_json::json!({"workflows": list.len(), "errors": errors}));
            } else {
                for e in &errors {
                    out.important(&e.to_string());
                }
                if errors.is_empty() {
                    out.line(&format!("{} workflow(s) valid", list.len()));
                }
            }
            return Ok(if errors.is_empty() {
                Code::Ok
            } else {
                Code::Usage
            });
        }
    }
    Ok(Code::Ok)
}

fn budget(b: &BudgetArgs) -> spec::Budget {
    spec::Budget {
        tokens: b.budget_tokens,
        usd: b.budget_usd,
        seconds: b.budget_seconds,
        turns: b.budget_turns,
    }
}

fn report_outcome(outcome: &Outcome, out: &Output) -> Code {
    if out.json {
        if let Ok(s) = serde_json::to_string(outcome) {
            write_out(&format!("{s}\n"));
        }
    } else {
        match outcome {
            Outcome::Completed { run, commit } => {
                out.line(&format!(
                    "run {run} completed at {}; land it with `agentops land {run}`",
                    &commit[..commit.len().min(12)]
                ));
            }
            Outcome::Paused {
                run,
                reason,
                detail,
            } => {
                out.important(&format!("run {run} paused ({reason}): {detail}"));
            }
            Outcome::Failed { run, error } => out.important(&format!("run {run} failed: {error}")),
            Outcome::Cancelled { run } => out.important(&format!("run {run} cancelled")),
        }
    }
    match outcome.exit_code() {
        0 => Code::Ok,
        3 => Code::Paused,
        _ => Code::Failure,
    }
}

pub fn run(args: RunArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let mut vars = BTreeMap::new();
    for v in &args.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--var {v}: use --var key=value")))?;
        vars.insert(k.trim().to_owned(), val.to_owned());
    }
    let opts = agentops_runner::StartOptions {
        workflow: args.workflow,
        goal: args.goal,
        vars,
        base: args.base,
        budget: budget(&args.budget),
        backend: args.backend,
        id: None,
        base_branch: None,
        agents_dir: None,
    };
    if args.queue {
        return super::worker::enqueue(&opts, &args.remote, flags, out);
    }
    drive(open(flags)?, out, |ctx| agentops_runner::start(ctx, &opts))
}

/// Runs `f` (a start or a resume) with terminal progress and, when an
/// endpoint is configured, OTLP export in the background; reports the
/// outcome.
fn drive(
    (layout, config, j): (RepoLayout, agentops_core::config::Config, Journal),
    out: &Output,
    f: impl FnOnce(&RunContext<'_>) -> Result<Outcome, RunError>,
) -> Result<Code, Failure> {
    let reporter = Reporter::new(out);
    on_interrupt();
    let ctx = RunContext {
        layout: &layout,
        config: &config,
        journal: &j,
        env: &env_lookup,
        progress: &reporter,
        publish: None,
        lost: None,
    };
    let bg = background(&layout, &config, out);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| reporter.heartbeat(&stop));
        let o = f(&ctx);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        o
    });
    finish_background(bg, out);
    Ok(report_outcome(&outcome.map_err(fail)?, out))
}

fn find(j: &Journal, run: &str) -> Result<RunId, Failure> {
    agentops_runner::run::find_run(j, run).map_err(fail)
}

/// Prints what a command on a queued run did.
fn queued_done(out: &Output, run: &str, what: &str, msg: &str) -> Code {
    if out.json {
        out.json(&serde_json::json!({"run": run, "action": what, "queued": true, "message": msg}));
    } else {
        out.line(msg);
    }
    Code::Ok
}

pub fn resume(run: &str, b: &BudgetArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (_, config) = open_project(flags)?;
    if let Some((store, row)) = super::worker::queued(&config, run) {
        let msg = super::worker::resume(&store, &row, budget(b))?;
        return Ok(queued_done(out, &row.run_id, "resume", &msg));
    }
    let opened = open(flags)?;
    let id = find(&opened.2, run)?;
    drive(opened, out, |ctx| {
        agentops_runner::resume(
            ctx,
            &id,
            &agentops_runner::ResumeOptions { budget: budget(b) },
        )
    })
}

pub fn control(
    run: &str,
    action: ControlAction,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    if let Some((store, row)) = super::worker::queued(&config, run) {
        let msg = super::worker::control(&layout, &config, &store, &row, action)?;
        let what = if action == ControlAction::Pause {
            "pause"
        } else {
            "cancel"
        };
        return Ok(queued_done(out, &row.run_id, what, &msg));
    }
    let (layout, _, j) = open(flags)?;
    let id = find(&j, run)?;
    let msg = match action {
        ControlAction::Pause => agentops_runner::pause(&layout, &j, &id),
        ControlAction::Cancel => agentops_runner::cancel(&layout, &j, &id),
    }
    .map_err(fail)?;
    if out.json {
        out.json(&serde_json::json!({"run": id, "action": action, "message": msg}));
    } else {
        out.line(&msg);
    }
    Ok(Code::Ok)
}

pub fn land(run: &str, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let (j, id) = match super::worker::queued(&config, run) {
        Some((store, row)) => {
            // A worker ran it: its branch is on the remote, its journal in
            // the team store (read on the connection that found the row).
            let j = Journal::team(store, &config).map_err(Failure::failed)?;
            let id = find(&j, &row.run_id)?;
            let branch = format!("agentops/run/{id}");
            let remote = "origin";
            agentops_git::cmd::run(
                &layout.work_tree,
                &[
                    "fetch",
                    "-q",
                    remote,
                    &format!("+refs/heads/{branch}:refs/heads/{branch}"),
                ],
            )
            .map_err(|e| Failure::failed(format!("cannot fetch {branch} from {remote}: {e}")))?;
            (j, id)
        }
        None => {
            let (_, _, j) = open(flags)?;
            let id = find(&j, run)?;
            (j, id)
        }
    };
    let r = agentops_runner::land(&layout, &j, &id).map_err(fail)?;
    if out.json {
        out.json(&r);
    } else {
        out.line(&format!(
            "landed run {} into {} ({}) at {}",
            r.run,
            r.into,
            r.how,
            &r.commit[..r.commit.len().min(12)]
        ));
    }
    Ok(Code::Ok)
}

pub fn gc(flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, _, j) = open(flags)?;
    let removed = agentops_runner::gc(&layout, &j).map_err(fail)?;
    if out.json {
        out.json(&serde_json::json!({"removed": removed}));
    } else {
        out.line(&format!(
            "removed {} worktree(s){}",
            removed.len(),
            if removed.is_empty() {
                String::new()
            } else {
                format!(": {}", removed.join(", "))
            }
        ));
    }
    Ok(Code::Ok)
}

pub fn list(limit: usize, team: &TeamArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    let j = crate::shared::view_journal(&layout, &config, team, out)?;
    let mut runs = agentops_runner::list_runs(&j, &layout.state_dir(), limit).map_err(fail)?;
    if !team.local {
        super::worker::merge_queue(&config, &mut runs, limit);
    }
    if out.json {
        out.json(&runs);
        return Ok(Code::Ok);
    }
    if runs.is_empty() {
        out.line("no runs yet (`agentops run WORKFLOW \"goal\"`)");
    }
    for r in &runs {
        out.line(&format!(
            "{}  {:<11} {:<12} {}/{} phases  {:>8} tok  ${:.4}  {}{}",
            r.id,
            r.status,
            r.workflow,
            r.phases_done,
            r.phases,
            r.tokens,
            r.cost_usd,
            r.goal
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(50)
                .collect::<String>(),
            if r.detail.is_empty() {
                String::new()
            } else {
                format!("  ({})", r.detail)
            }
        ));
    }
    Ok(Code::Ok)
}

pub fn show(run: &str, recording: bool, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let (layout, config) = open_project(flags)?;
    if let Some((store, _)) = super::worker::queued(&config, run) {
        // A queued run is journaled in the team store, wherever it ran.
        let j = Journal::team(store, &config).map_err(Failure::failed)?;
        let id = find(&j, run)?;
        return render_run(&layout, &j, &id, recording, out);
    }
    let (layout, _, j) = open_read(flags)?;
    let id = find(&j, run)?;
    render_run(&layout, &j, &id, recording, out)
}

/// `agentops show`'s output for one run.
fn render_run(
    layout: &RepoLayout,
    j: &Journal,
    id: &RunId,
    recording: bool,
    out: &Output,
) -> Result<Code, Failure> {
    if recording {
        for r in agentops_runner::view::recording(j, id).map_err(fail)? {
            let line = serde_json::json!({"key": r.key, "response": r.response});
            write_out(&format!("{line}\n"));
        }
        return Ok(Code::Ok);
    }
    if out.json {
        out.json(&agentops_api::runs::detail_json(layout, j, id)?);
        return Ok(Code::Ok);
    }
    let d = agentops_runner::view::run_detail(j, &layout.state_dir(), id).map_err(fail)?;
    let (st, status) = (&d.state, &d.status);
    out.line(&format!(
        "run {id} — {} ({status})",
        st.started.workflow.name
    ));
    out.line(&format!("  goal      {}", st.started.goal));
    out.line(&format!(
        "  branch    {}  worktree {}",
        st.started.branch,
        st.started.worktree.display()
    ));
    out.line(&format!(
        "  spent     {} tokens, ${:.4}, {} model calls; budget {}",
        st.spent.tokens,
        st.spent.usd,
        st.calls,
        budget_text(&st.budget)
    ));
    if let agentops_runner::RunStatus::Paused { reason, detail } = &st.status {
        out.line(&format!(
            "  paused    {reason}: {}",
            detail.lines().next().unwrap_or("")
        ));
    }
    out.line("");
    for t in &d.timeline {
        out.line(&format!(
            "  {} {}",
            agentops_core::time::rfc3339(t.ts).get(11..19).unwrap_or(""),
            t.step.text()
        ));
    }
    Ok(Code::Ok)
}

pub fn demo(backend: Option<String>, keep: Option<PathBuf>, out: &Output) -> Result<Code, Failure> {
    use agentops_runner::demo::{self, Note};
    let say = |s: &str| {
        if !out.json {
            out.line(s);
        }
    };
    let reporter = Reporter::with(if out.json {
        Mode::Json
    } else if out.quiet {
        Mode::Quiet
    } else {
        Mode::Terminal
    });
    let opts = demo::DemoOptions { backend, keep };
    let report = demo::run(&opts, &env_lookup, &reporter, &mut |n| match n {
        Note::Scratch { dir } => say(&format!(
            "agentops demo — a scratch repository at {}",
            dir.display()
        )),
        Note::Model {
            scripted_url: Some(url),
            ..
        } => say(&format!(
            "model: a SCRIPTED stand-in — a real HTTP server on {url} speaking the OpenAI chat-completions wire format, answering from a fixed script (no key, no network). Run `agentops demo --backend anthropic:claude-sonnet-4-5` (ANTHROPIC_API_KEY), `--backend openai:gpt-4.1-mini` (OPENAI_API_KEY) or `--backend command:claude` for the real thing."
        )),
        Note::Model { backend, .. } => say(&format!(
            "model: {} (real)",
            backend.as_deref().unwrap_or("")
        )),
        Note::Knowledge { learnings } => say(&format!(
            "1. knowledge: {learnings} learnings written to .agents/learnings/, one commit each"
        )),
        Note::Indexed => say(
            "2. context: search index built; every phase gets a packet of the learnings relevant to its task",
        ),
        Note::Running { turns } => say(&format!(
            "3. run: workflow `feature` (plan → implement → review) with a budget of {turns} model calls, so it pauses midway"
        )),
        Note::Paused { reason } => say(&format!(
            "4. paused ({reason}) with exit code 3 — as `agentops run` would; resuming with a larger budget:"
        )),
    })
    .map_err(fail)?;
    let code = report_outcome(&report.outcome, out);
    if let Some(r) = report.replayed {
        say(&format!(
            "5. resume: the worktree went back to the last checkpoint; recorded calls were answered from the journal — the model server saw {} requests before the pause and {} after, {} calls recorded in all",
            r.before, r.after, r.calls
        ));
    }
    say("6. the trace:");
    if !out.json {
        let j = journal(&report.layout, &report.config)?;
        render_run(&report.layout, &j, &report.run, false, out)?;
        say("\ncommits on the run branch (one checkpoint per completed step):");
        for l in &report.commits {
            say(&format!("  {l}"));
        }
    }
    if report.scripted_gone {
        say(
            "the scripted model stopped with the demo: .agents/config.toml says how to point the kept repository at a real one",
        );
    }
    if report.kept {
        say(&format!(
            "\nkept: cd {} && agentops show {run}; agentops land {run}",
            report.dir.display(),
            run = report.run
        ));
    } else {
        say(
            "\nthe scratch repository is removed now; `agentops demo --keep DIR` keeps it to land, inspect or resume by hand",
        );
    }
    Ok(code)
}
