//! Agent and workflow specs (`.agents/agents/<name>.toml`,
//! `.agents/workflows/<name>.toml`): parsing with errors that name file, line
//! and key; `lint` for agents; `validate` for workflows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use agentops_llm::BackendSpec;

/// The built-in tools API backends can offer.
pub const TOOLS: &[&str] = &[
    "read_file",
    "list_files",
    "search_files",
    "search_knowledge",
    "write_file",
    "edit_file",
    "run_command",
    "record_learning",
];

pub use agentops_protocol::event::Budget;

/// What context an agent gets injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    /// Inject a context packet from the knowledge index.
    #[serde(default = "yes")]
    pub knowledge: bool,
    /// Token budget of the packet.
    #[serde(default = "default_packet")]
    pub max_tokens: u32,
    /// Search query (default: the task).
    #[serde(default)]
    pub query: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_packet() -> u32 {
    1_500
}

impl Default for ContextSpec {
    fn default() -> Self {
        Self {
            knowledge: true,
            max_tokens: default_packet(),
            query: None,
        }
    }
}

/// `.agents/agents/<name>.toml`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Defaults to the file name.
    #[serde(default)]
    pub name: String,
    /// One sentence, one responsibility.
    pub purpose: String,
    /// `openai:<model>`, `anthropic:<model>`, `command:claude`,
    /// `command:codex`, `command:<argv>`, `replay:<file>`.
    pub backend: String,
    /// The system prompt's file, relative to `.agents/`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Or the system prompt inline.
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    /// Globs the agent may read (default: everything).
    #[serde(default = "everything")]
    pub read_scope: Vec<String>,
    /// Globs the agent may write (default: nothing).
    #[serde(default)]
    pub write_scope: Vec<String>,
    /// Regular expressions of the commands `run_command` may run.
    #[serde(default)]
    pub allow_commands: Vec<String>,
    #[serde(default = "default_turns")]
    pub max_turns: u32,
    /// Most output tokens per response.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Another OpenAI-compatible or Anthropic endpoint for this agent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding this endpoint's key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub context: ContextSpec,
}

fn everything() -> Vec<String> {
    vec!["**".into()]
}
fn default_turns() -> u32 {
    20
}
fn default_max_tokens() -> u32 {
    4_096
}

/// An agent with its prompt read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub spec: AgentSpec,
    /// The system prompt's text.
    pub prompt: String,
    pub defined_at: String,
}

/// One phase of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub agent: String,
    /// The task, with `{{goal}}` and `{{<var>}}` placeholders.
    pub task: String,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub gates: Vec<String>,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    3
}

/// `.agents/workflows/<name>.toml`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Most tokens of an earlier phase's summary a later phase sees.
    #[serde(default = "default_summary")]
    pub summary_tokens: u32,
    /// The whole run's limits.
    #[serde(default)]
    pub budget: Budget,
    /// Defaults for `--var`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub phases: BTreeMap<String, PhaseSpec>,
}

fn default_summary() -> u32 {
    1_000
}

/// A workflow as loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub spec: WorkflowSpec,
    pub defined_at: String,
    /// Line of each phase's table, for errors.
    #[serde(skip)]
    pub lines: BTreeMap<String, usize>,
    #[serde(skip)]
    pub src: String,
}

/// A spec problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SpecError {
    /// `file:line`
    pub location: String,
    pub message: String,
}

/// The line of `key` inside table `table` (dotted, `None`: top level), or of
/// the table header when the key is absent.
pub fn locate(src: &str, table: Option<&str>, key: Option<&str>) -> usize {
    let mut path: Vec<&str> = table.map(|t| t.split('.').collect()).unwrap_or_default();
    path.extend(key);
    agentops_core::toml_span::Spans::new(src).key_line(&path)
}

fn parse_toml<T: for<'de> Deserialize<'de>>(
    path: &Path,
    src: &str,
    keys: &str,
) -> Result<T, SpecError> {
    toml::from_str(src).map_err(|e| SpecError {
        location: format!(
            "{}:{}",
            path.display(),
            e.span()
                .map_or(1, |s| agentops_core::toml_span::line_col(src, s.start).0)
        ),
        message: format!("{}; keys: {keys}", e.message().trim()),
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const AGENT_KEYS: &str = "name, purpose, backend, prompt, instructions, tools, read_scope, write_scope, allow_commands, max_turns, max_tokens, temperature, base_url, api_key_env, [budget] tokens/usd/seconds/turns, [context] knowledge/max_tokens/query";
const WORKFLOW_KEYS: &str = "name, description, summary_tokens, [budget], [vars], [phases.<name>] agent/task/needs/gates/max_attempts";

/// Parses one agent file; `agents_dir` resolves its prompt file.
pub fn parse_agent(path: &Path, src: &str, agents_dir: &Path) -> Result<Agent, SpecError> {
    let mut spec: AgentSpec = parse_toml(path, src, AGENT_KEYS)?;
    let at = |key: Option<&str>| format!("{}:{}", path.display(), locate(src, None, key));
    let err = |key: &str, message: String| SpecError {
        location: at(Some(key)),
        message: format!("`{key}`: {message}"),
    };
    let file_name = stem(path);
    if spec.name.is_empty() {
        spec.name = file_name.clone();
    } else if spec.name != file_name {
        return Err(err(
            "name",
            format!(
                "`{}` differs from the file name `{file_name}`; make them the same",
                spec.name
            ),
        ));
    }
    if !valid_name(&spec.name) {
        return Err(err(
            "name",
            "use letters, digits, `-` and `_` (at most 64)".into(),
        ));
    }
    if spec.purpose.trim().is_empty() {
        return Err(err(
            "purpose",
            "say in one sentence what this agent is for".into(),
        ));
    }
    let backend = BackendSpec::parse(&spec.backend).map_err(|m| err("backend", m))?;
    for t in &spec.tools {
        if !TOOLS.contains(&t.as_str()) {
            return Err(err(
                "tools",
                format!("unknown tool `{t}`; built-in tools: {}", TOOLS.join(", ")),
            ));
        }
    }
    if !backend.offers_tools() && !spec.tools.is_empty() {
        return Err(err(
            "tools",
            format!(
                "`{}` runs its own tools; built-in tools are for API backends (remove `tools`)",
                spec.backend
            ),
        ));
    }
    for (key, list) in [
        ("read_scope", &spec.read_scope),
        ("write_scope", &spec.write_scope),
    ] {
        agentops_gates::policy::write_scope(list).map_err(|m| err(key, m))?;
    }
    for p in &spec.allow_commands {
        regex::Regex::new(p).map_err(|e| {
            err(
                "allow_commands",
                format!("`{p}` is not a valid regular expression: {e}"),
            )
        })?;
    }
    if spec.max_turns == 0 || spec.max_turns > 1_000 {
        return Err(err(
            "max_turns",
            format!("{} is out of range; allowed: 1 to 1000", spec.max_turns),
        ));
    }
    if spec.max_tokens == 0 {
        return Err(err("max_tokens", "must be at least 1".into()));
    }
    let prompt = match (&spec.prompt, &spec.instructions) {
        (Some(_), Some(_)) => {
            return Err(err(
                "instructions",
                "give `prompt` (a file) or `instructions` (inline), not both".into(),
            ));
        }
        (Some(file), None) => {
            let p = agents_dir.join(file);
            std::fs::read_to_string(&p).map_err(|e| {
                err(
                    "prompt",
                    format!(
                        "cannot read `{}`: {e} (the path is relative to .agents/)",
                        p.display()
                    ),
                )
            })?
        }
        (None, Some(text)) => text.clone(),
        (None, None) => String::new(),
    };
    Ok(Agent {
        spec,
        prompt,
        defined_at: at(None),
    })
}

/// Parses one workflow file (structure only; [`validate`] checks it against
/// agents and gates).
pub fn parse_workflow(path: &Path, src: &str) -> Result<Workflow, SpecError> {
    let mut spec: WorkflowSpec = parse_toml(path, src, WORKFLOW_KEYS)?;
    let file_name = stem(path);
    if spec.name.is_empty() {
        spec.name = file_name.clone();
    } else if spec.name != file_name {
        return Err(SpecError {
            location: format!("{}:{}", path.display(), locate(src, None, Some("name"))),
            message: format!(
                "`name`: `{}` differs from the file name `{file_name}`",
                spec.name
            ),
        });
    }
    let lines = spec
        .phases
        .keys()
        .map(|k| (k.clone(), locate(src, Some(&format!("phases.{k}")), None)))
        .collect();
    Ok(Workflow {
        defined_at: format!("{}:1", path.display()),
        spec,
        lines,
        src: src.to_owned(),
    })
}

fn read_dir_toml(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

fn read(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|e| SpecError {
        location: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

/// Every agent under `.agents/agents/`.
pub fn load_agents(agents_dir: &Path) -> Result<BTreeMap<String, Agent>, SpecError> {
    let mut out = BTreeMap::new();
    for p in read_dir_toml(&agents_dir.join("agents")) {
        let a = parse_agent(&p, &read(&p)?, agents_dir)?;
        out.insert(a.spec.name.clone(), a);
    }
    Ok(out)
}

/// Every agent under `.agents/agents/`, with the ones that do not load kept
/// apart (by file name) so a workflow check can say which agent is broken.
pub fn load_agents_checked(
    agents_dir: &Path,
) -> (BTreeMap<String, Agent>, BTreeMap<String, SpecError>) {
    let mut agents = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for p in read_dir_toml(&agents_dir.join("agents")) {
        match read(&p).and_then(|src| parse_agent(&p, &src, agents_dir)) {
            Ok(a) => {
                agents.insert(stem(&p), a);
            }
            Err(e) => {
                errors.insert(stem(&p), e);
            }
        }
    }
    (agents, errors)
}

/// Every workflow under `.agents/workflows/` (parsed, not validated).
pub fn load_workflows(agents_dir: &Path) -> Result<BTreeMap<String, Workflow>, SpecError> {
    let mut out = BTreeMap::new();
    for p in read_dir_toml(&agents_dir.join("workflows")) {
        let w = parse_workflow(&p, &read(&p)?)?;
        out.insert(w.spec.name.clone(), w);
    }
    Ok(out)
}

/// One workflow by name.
pub fn load_workflow(agents_dir: &Path, name: &str) -> Result<Workflow, SpecError> {
    let p = agents_dir.join("workflows").join(format!("{name}.toml"));
    if !p.is_file() {
        let known: Vec<String> = read_dir_toml(&agents_dir.join("workflows"))
            .iter()
            .map(|p| stem(p))
            .collect();
        return Err(SpecError {
            location: p.display().to_string(),
            message: format!(
                "no workflow `{name}`; defined: {}",
                if known.is_empty() {
                    "none (add .agents/workflows/<name>.toml)".into()
                } else {
                    known.join(", ")
                }
            ),
        });
    }
    parse_workflow(&p, &read(&p)?)
}

/// A lint finding: not an error, a smell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub location: String,
    pub agent: String,
    pub message: String,
}

/// Flags what makes an agent hard to operate: a purpose with "and", a
/// prompt over 2,000 tokens, a write scope of everything, tools its backend
/// cannot offer.
pub fn lint(agent: &Agent, count: &dyn Fn(&str) -> u32) -> Vec<Finding> {
    let mut out = Vec::new();
    let loc = agent
        .defined_at
        .rsplit_once(':')
        .map_or(agent.defined_at.clone(), |(f, _)| f.to_owned());
    let src = std::fs::read_to_string(&loc).unwrap_or_default();
    let at = |key: &str| format!("{loc}:{}", locate(&src, None, Some(key)));
    let s = &agent.spec;
    let words: Vec<String> = s
        .purpose
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.iter().any(|w| w == "and") || s.purpose.contains('&') {
        out.push(Finding {
            location: at("purpose"),
            agent: s.name.clone(),
            message:
                "purpose has \"and\": one agent, one responsibility — split it into two agents"
                    .into(),
        });
    }
    let tokens = count(&agent.prompt);
    if tokens > 2_000 {
        out.push(Finding {
            location: at(if s.prompt.is_some() { "prompt" } else { "instructions" }),
            agent: s.name.clone(),
            message: format!("the prompt is {tokens} tokens (over 2,000): move reference material into knowledge entries the context packet brings when relevant"),
        });
    }
    if s.write_scope
        .iter()
        .any(|g| matches!(g.trim(), "**" | "*" | "**/*" | "/" | "./**" | "/**"))
    {
        out.push(Finding {
            location: at("write_scope"),
            agent: s.name.clone(),
            message: "write_scope covers everything: name the directories this agent should change (e.g. [\"src/**\", \"tests/**\"])".into(),
        });
    }
    if let Ok(b) = BackendSpec::parse(&s.backend)
        && !b.offers_tools()
        && !s.tools.is_empty()
    {
        out.push(Finding {
            location: at("tools"),
            agent: s.name.clone(),
            message: format!("`{}` cannot offer built-in tools", s.backend),
        });
    }
    if s.tools
        .iter()
        .any(|t| t == "write_file" || t == "edit_file")
        && s.write_scope.is_empty()
    {
        out.push(Finding {
            location: at("tools"),
            agent: s.name.clone(),
            message: "has write tools but an empty write_scope: every write will be refused".into(),
        });
    }
    if s.tools.iter().any(|t| t == "run_command") && s.allow_commands.is_empty() {
        out.push(Finding {
            location: at("allow_commands"),
            agent: s.name.clone(),
            message: "has run_command but no allow_commands: every command will be refused".into(),
        });
    }
    out
}

/// Checks a workflow against the agents and gates that exist: unknown
/// agents, gates or `needs`, cycles, missing prompt files (through
/// `agent_errors`), attempts out of range, empty tasks.
pub fn validate(
    w: &Workflow,
    agents: &BTreeMap<String, Agent>,
    agent_errors: &BTreeMap<String, SpecError>,
    gates: &BTreeMap<String, agentops_gates::Gate>,
) -> Vec<SpecError> {
    let mut out = judge_conflicts(w, gates);
    let file = w.defined_at.trim_end_matches(":1").to_owned();
    let at = |phase: &str, key: Option<&str>| {
        format!(
            "{file}:{}",
            locate(&w.src, Some(&format!("phases.{phase}")), key)
        )
    };
    if w.spec.phases.is_empty() {
        out.push(SpecError {
            location: w.defined_at.clone(),
            message: "no phases: add [phases.<name>] with agent and task".into(),
        });
    }
    for (name, p) in &w.spec.phases {
        if !valid_name(name) {
            out.push(SpecError {
                location: at(name, None),
                message: format!("phase name `{name}`: use letters, digits, `-`, `_`"),
            });
        }
        if let Some(e) = agent_errors.get(&p.agent) {
            out.push(SpecError {
                location: at(name, Some("agent")),
                message: format!("phases.{name}.agent: agent `{}` is invalid: {e}", p.agent),
            });
        } else if !agents.contains_key(&p.agent) {
            out.push(SpecError {
                location: at(name, Some("agent")),
                message: format!(
                    "phases.{name}.agent: no agent `{}`; defined: {}",
                    p.agent,
                    if agents.is_empty() {
                        "none (add .agents/agents/<name>.toml)".into()
                    } else {
                        agents.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            });
        }
        for g in &p.gates {
            if !gates.contains_key(g) {
                out.push(SpecError {
                    location: at(name, Some("gates")),
                    message: format!(
                        "phases.{name}.gates: no gate `{g}`; defined: {}",
                        if gates.is_empty() {
                            "none (add [gates.<name>] to .agents/config.toml)".into()
                        } else {
                            gates.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                });
            }
        }
        for n in &p.needs {
            if !w.spec.phases.contains_key(n) {
                out.push(SpecError {
                    location: at(name, Some("needs")),
                    message: format!("phases.{name}.needs: no phase `{n}` in this workflow"),
                });
            }
        }
        if p.max_attempts == 0 || p.max_attempts > 20 {
            out.push(SpecError {
                location: at(name, Some("max_attempts")),
                message: format!(
                    "phases.{name}.max_attempts: {} is out of range; allowed: 1 to 20",
                    p.max_attempts
                ),
            });
        }
        if p.task.trim().is_empty() {
            out.push(SpecError {
                location: at(name, Some("task")),
                message: format!("phases.{name}.task: empty"),
            });
        }
    }
    if let Some(cycle) = find_cycle(&w.spec.phases) {
        out.push(SpecError {
            location: at(&cycle[0], Some("needs")),
            message: format!("phases form a cycle: {}", cycle.join(" → ")),
        });
    }
    out
}

/// Phases judged by their own agent: a `judge` gate (or a council's judge)
/// whose `agent` is the phase's agent is a configuration error.
fn judge_conflicts(w: &Workflow, gates: &BTreeMap<String, agentops_gates::Gate>) -> Vec<SpecError> {
    let file = w.defined_at.trim_end_matches(":1").to_owned();
    let mut out = Vec::new();
    for (name, p) in &w.spec.phases {
        for g in &p.gates {
            let Some(gate) = gates.get(g) else { continue };
            let mut judges = vec![gate];
            for j in gate.spec.judges() {
                judges.extend(gates.get(j));
            }
            for j in judges {
                if j.spec.judge_agent() == Some(p.agent.as_str()) {
                    out.push(SpecError {
                        location: format!("{file}:{}", locate(&w.src, Some(&format!("phases.{name}")), Some("gates"))),
                        message: format!(
                            "phases.{name}.gates: judge `{}` is agent `{}`, the agent whose work it would judge; a judge must be another agent",
                            j.name, p.agent
                        ),
                    });
                }
            }
        }
    }
    out
}

/// `{{name}}` placeholders in a template.
pub fn placeholders(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        out.push(after[..j].trim().to_owned());
        rest = &after[j + 2..];
    }
    out
}

/// Fills `{{goal}}` and `{{var}}`; an unknown placeholder is an error.
pub fn render_task(t: &str, goal: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let name = after[..j].trim();
        if name == "goal" {
            out.push_str(goal);
        } else if let Some(v) = vars.get(name) {
            out.push_str(v);
        } else {
            return Err(format!(
                "the task uses `{{{{{name}}}}}`: pass --var {name}=… (known: goal{})",
                vars.keys().map(|k| format!(", {k}")).collect::<String>()
            ));
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn find_cycle(phases: &BTreeMap<String, PhaseSpec>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        phases: &BTreeMap<String, PhaseSpec>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n).copied() {
            Some(2) => return None,
            Some(1) => {
                let i = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut c = stack[i..].to_vec();
                c.push(n.to_owned());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        if let Some(p) = phases.get(n) {
            for d in &p.needs {
                if phases.contains_key(d)
                    && let Some(c) = visit(d, phases, state, stack)
                {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in phases.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, phases, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// Phases in waves: each wave's phases need only earlier waves.
pub fn waves(phases: &BTreeMap<String, PhaseSpec>) -> Vec<Vec<String>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while done.len() < phases.len() {
        let wave: Vec<String> = phases
            .iter()
            .filter(|(n, p)| !done.contains(*n) && p.needs.iter().all(|d| done.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        if wave.is_empty() {
            break;
        }
        done.extend(wave.iter().cloned());
        out.push(wave);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(src: &str) -> Workflow {
        parse_workflow(Path::new(".agents/workflows/feature.toml"), src).unwrap()
    }

    #[test]
    fn cycles_unknown_agents_and_gates_are_located() {
        let w = wf(
            "[phases.a]\nagent = \"planner\"\ntask = \"x\"\nneeds = [\"b\"]\n\n[phases.b]\nagent = \"ghost\"\ntask = \"y\"\nneeds = [\"a\"]\ngates = [\"nope\"]\n",
        );
        let errs = validate(&w, &BTreeMap::new(), &BTreeMap::new(), &BTreeMap::new());
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("feature.toml:7") && e.contains("no agent `ghost`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("feature.toml:10") && e.contains("no gate `nope`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("cycle: a → b → a")),
            "{text:?}"
        );
    }

    #[test]
    fn waves_group_independent_phases() {
        let w = wf(
            "[phases.plan]\nagent=\"p\"\ntask=\"t\"\n[phases.api]\nagent=\"c\"\ntask=\"t\"\nneeds=[\"plan\"]\n[phases.ui]\nagent=\"c\"\ntask=\"t\"\nneeds=[\"plan\"]\n[phases.review]\nagent=\"r\"\ntask=\"t\"\nneeds=[\"api\",\"ui\"]\n",
        );
        assert_eq!(
            waves(&w.spec.phases),
            vec![
                vec!["plan".to_owned()],
                vec!["api".into(), "ui".into()],
                vec!["review".into()]
            ]
        );
    }

    #[test]
    fn templates_fill_and_refuse_unknowns() {
        let mut vars = BTreeMap::new();
        vars.insert("module".to_owned(), "auth".to_owned());
        assert_eq!(
            render_task("Do {{goal}} in {{ module }}.", "X", &vars).unwrap(),
            "Do X in auth."
        );
        assert!(
            render_task("{{nope}}", "X", &vars)
                .unwrap_err()
                .contains("--var nope=")
        );
    }

    #[test]
    fn agent_errors_name_the_key_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agents/coder.toml");
        let e = parse_agent(
            &p,
            "purpose = \"Write code.\"\nbackend = \"gpt4\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("coder.toml:2: `backend`"), "{e}");
        let e = parse_agent(
            &p,
            "purpose = \"Write code.\"\nbackend = \"openai:m\"\ntools = [\"teleport\"]\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("coder.toml:3: `tools`: unknown tool `teleport`"),
            "{e}"
        );
        let e = parse_agent(
            &p,
            "purpose = \"Write code.\"\nbackend = \"command:claude\"\ntools = [\"read_file\"]\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("runs its own tools"), "{e}");
        let e = parse_agent(
            &p,
            "purpose = \"Write code.\"\nbackend = \"openai:m\"\nprompt = \"prompts/none.md\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("coder.toml:3: `prompt`: cannot read"),
            "{e}"
        );
        let e = parse_agent(
            &p,
            "purpose = \"Write code.\"\nbackend = \"openai:m\"\nmax_turns = \"x\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("coder.toml:3"), "{e}");
    }

    #[test]
    fn lint_flags_smells() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agents/doer.toml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let src = "purpose = \"Plan and build everything.\"\nbackend = \"openai:m\"\ntools = [\"write_file\", \"run_command\"]\nwrite_scope = [\"**\"]\ninstructions = \"hi\"\n";
        std::fs::write(&p, src).unwrap();
        let a = parse_agent(&p, src, dir.path()).unwrap();
        let f = lint(&a, &|t: &str| if t == "hi" { 2_500 } else { 1 });
        let msgs: Vec<&str> = f.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(f.len(), 4, "{msgs:?}");
        assert!(f[0].location.ends_with("doer.toml:1"));
        assert!(
            msgs.iter()
                .any(|m| m.contains("2500 tokens") || m.contains("2,000"))
        );
        assert!(msgs.iter().any(|m| m.contains("covers everything")));
        assert!(msgs.iter().any(|m| m.contains("no allow_commands")));
    }
}
