//! A gate as written (`[gates.<name>]`) and as validated: [`GateSpec`] holds
//! one [`Check`] per kind, with exactly the fields that kind takes, so code
//! that runs a gate never unwraps an option the validation already required.
//!
//! The file and the journal (`run.started` records each gate) keep the flat
//! shape of [`RawGateSpec`]; a `GateSpec` reads and writes through it, so
//! journals written before the typed form read the same.

use serde::{Deserialize, Serialize};

use crate::{CommandSpec, GateKind, Severity};

/// How a council decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CouncilRule {
    /// Every judge passes.
    AllPass,
    /// More than half pass (the default).
    #[default]
    Majority,
    /// Any FAIL blocks; all PASS passes; otherwise WARN.
    AnyFailBlocks,
}

impl CouncilRule {
    /// Every rule, as written.
    pub const ALL: [CouncilRule; 3] = [Self::AllPass, Self::Majority, Self::AnyFailBlocks];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllPass => "all-pass",
            Self::Majority => "majority",
            Self::AnyFailBlocks => "any-fail-blocks",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A `command` gate.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandCheck {
    pub command: CommandSpec,
    /// Where to run it, relative to the work tree.
    pub dir: Option<String>,
    /// Seconds before it is killed, as written ([`CommandCheck::timeout_s`]).
    pub timeout: Option<u64>,
}

impl CommandCheck {
    /// Seconds before it is killed (default [`crate::DEFAULT_TIMEOUT_S`]).
    pub fn timeout_s(&self) -> u64 {
        self.timeout.unwrap_or(crate::DEFAULT_TIMEOUT_S)
    }
}

/// A `judge` gate: a model with a rubric.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeCheck {
    /// `openai:<model>` / `anthropic:<model>` / `replay:<file>`.
    pub backend: String,
    /// The judge's name as an agent; it may not judge that agent's work.
    pub agent: Option<String>,
    /// The rubric file, relative to `.agents/`.
    pub rubric: String,
    /// The score at or above which the change passes, as written
    /// ([`JudgeCheck::threshold`]).
    pub pass_at: Option<f64>,
}

impl JudgeCheck {
    /// The score at or above which the change passes (default 0.7).
    pub fn threshold(&self) -> f64 {
        self.pass_at.unwrap_or(0.7)
    }
}

/// Limits of a `diff` gate (at least one is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLimits {
    pub max_files: Option<u64>,
    pub max_lines: Option<u64>,
    pub warn_files: Option<u64>,
    pub warn_lines: Option<u64>,
}

/// What a gate checks: one variant per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Command(CommandCheck),
    /// Every changed path matches `allow` and none matches `deny`.
    Scope {
        allow: Vec<String>,
        deny: Vec<String>,
    },
    Diff(DiffLimits),
    /// No secret in added lines, except in paths matching `skip`.
    Secrets {
        skip: Vec<String>,
    },
    Judge(JudgeCheck),
    /// The judge gates that vote, and how they decide.
    Council {
        judges: Vec<String>,
        /// As written; unset is [`CouncilRule::Majority`].
        rule: Option<CouncilRule>,
    },
    Approval,
}

/// One validated gate definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGateSpec", into = "RawGateSpec")]
pub struct GateSpec {
    pub description: Option<String>,
    pub severity: Severity,
    pub check: Check,
}

impl GateSpec {
    /// The gate's kind.
    pub fn kind(&self) -> GateKind {
        match self.check {
            Check::Command(_) => GateKind::Command,
            Check::Scope { .. } => GateKind::Scope,
            Check::Diff(_) => GateKind::Diff,
            Check::Secrets { .. } => GateKind::Secrets,
            Check::Judge(_) => GateKind::Judge,
            Check::Council { .. } => GateKind::Council,
            Check::Approval => GateKind::Approval,
        }
    }

    /// The judge gates a council calls on (none for other kinds).
    pub fn judges(&self) -> &[String] {
        match &self.check {
            Check::Council { judges, .. } => judges,
            _ => &[],
        }
    }

    /// The most seconds the gate may take: a command's timeout, else
    /// [`crate::DEFAULT_TIMEOUT_S`].
    pub fn time_limit_s(&self) -> u64 {
        match &self.check {
            Check::Command(c) => c.timeout_s(),
            _ => crate::DEFAULT_TIMEOUT_S,
        }
    }

    /// A judge's name as an agent (none for other kinds).
    pub fn judge_agent(&self) -> Option<&str> {
        match &self.check {
            Check::Judge(j) => j.agent.as_deref(),
            _ => None,
        }
    }

    /// A judge's backend (none for other kinds).
    pub fn judge_backend(&self) -> Option<&str> {
        match &self.check {
            Check::Judge(j) => Some(&j.backend),
            _ => None,
        }
    }
}

/// A gate as written: every key of every kind, as optional. Only parsing and
/// the journal see this shape.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateSpec {
    pub kind: Option<GateKind>,
    pub description: Option<String>,
    pub command: Option<CommandSpec>,
    pub dir: Option<String>,
    pub timeout_s: Option<u64>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub max_files: Option<u64>,
    pub max_lines: Option<u64>,
    pub warn_files: Option<u64>,
    pub warn_lines: Option<u64>,
    pub backend: Option<String>,
    pub agent: Option<String>,
    pub rubric: Option<String>,
    pub threshold: Option<f64>,
    pub judges: Option<Vec<String>>,
    pub rule: Option<String>,
    #[serde(default)]
    pub severity: Severity,
}

/// The keys a gate table takes, for error messages.
pub const GATE_KEYS: &str = "kind, description, command, dir, timeout_s, allow, deny, max_files, max_lines, warn_files, warn_lines, backend, agent, rubric, threshold, judges, rule, severity";

/// Why a raw gate is not a valid one: the key at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn problem(key: &'static str, message: impl Into<String>) -> SpecProblem {
    SpecProblem {
        key,
        message: message.into(),
    }
}

impl TryFrom<RawGateSpec> for GateSpec {
    type Error = SpecProblem;

    fn try_from(raw: RawGateSpec) -> Result<Self, SpecProblem> {
        let Some(kind) = raw.kind else {
            return Err(problem(
                "kind",
                "a gate needs `kind`: command, scope, diff, secrets, judge, council or approval",
            ));
        };
        let check = match kind {
            GateKind::Command => {
                let command = match raw.command {
                    None => {
                        return Err(problem(
                            "command",
                            "a command gate needs `command` (a shell string or an argv list)",
                        ));
                    }
                    Some(CommandSpec::Argv(v)) if v.is_empty() => {
                        return Err(problem("command", "the argv list is empty"));
                    }
                    Some(CommandSpec::Shell(s)) if s.trim().is_empty() => {
                        return Err(problem("command", "the command is empty"));
                    }
                    Some(c) => c,
                };
                if raw.timeout_s == Some(0) {
                    return Err(problem("timeout_s", "must be at least 1 second"));
                }
                Check::Command(CommandCheck {
                    command,
                    dir: raw.dir,
                    timeout: raw.timeout_s,
                })
            }
            GateKind::Scope => {
                let allow = raw.allow.unwrap_or_default();
                if allow.is_empty() {
                    return Err(problem(
                        "allow",
                        "a scope gate needs `allow`: globs of the paths changes may touch, e.g. [\"src/**\"]",
                    ));
                }
                let deny = raw.deny.unwrap_or_default();
                crate::globs(&allow).map_err(|m| problem("allow", m))?;
                crate::globs(&deny).map_err(|m| problem("deny", m))?;
                Check::Scope { allow, deny }
            }
            GateKind::Diff => {
                let limits = DiffLimits {
                    max_files: raw.max_files,
                    max_lines: raw.max_lines,
                    warn_files: raw.warn_files,
                    warn_lines: raw.warn_lines,
                };
                if limits
                    == (DiffLimits {
                        max_files: None,
                        max_lines: None,
                        warn_files: None,
                        warn_lines: None,
                    })
                {
                    return Err(problem(
                        "max_lines",
                        "a diff gate needs at least one of max_files, max_lines, warn_files, warn_lines",
                    ));
                }
                Check::Diff(limits)
            }
            GateKind::Secrets => {
                let skip = raw.deny.unwrap_or_default();
                crate::globs(&skip).map_err(|m| problem("deny", m))?;
                Check::Secrets { skip }
            }
            GateKind::Approval => Check::Approval,
            GateKind::Judge => {
                let Some(backend) = raw.backend else {
                    return Err(problem(
                        "backend",
                        "a judge gate needs `backend`, e.g. \"anthropic:claude-haiku-4-5\"",
                    ));
                };
                let parsed = agentops_llm::BackendSpec::parse(&backend)
                    .map_err(|m| problem("backend", m))?;
                if !matches!(
                    parsed,
                    agentops_llm::BackendSpec::OpenAi { .. }
                        | agentops_llm::BackendSpec::Anthropic { .. }
                        | agentops_llm::BackendSpec::Replay { .. }
                ) {
                    return Err(problem(
                        "backend",
                        "a judge needs a model API backend (openai:, anthropic: or replay:)",
                    ));
                }
                let Some(rubric) = raw.rubric else {
                    return Err(problem(
                        "rubric",
                        "a judge gate needs `rubric`: a file relative to .agents/ saying what passes",
                    ));
                };
                if let Some(threshold) = raw.threshold
                    && !(0.0..=1.0).contains(&threshold)
                {
                    return Err(problem(
                        "threshold",
                        format!("{threshold} is out of range; allowed: 0 to 1"),
                    ));
                }
                Check::Judge(JudgeCheck {
                    backend,
                    agent: raw.agent,
                    rubric,
                    pass_at: raw.threshold,
                })
            }
            GateKind::Council => {
                let judges = raw.judges.unwrap_or_default();
                if judges.is_empty() {
                    return Err(problem(
                        "judges",
                        "a council needs `judges`: the names of judge gates that vote",
                    ));
                }
                let rule = match raw.rule.as_deref() {
                    None => None,
                    Some(r) => Some(CouncilRule::parse(r).ok_or_else(|| {
                        let all: Vec<&str> = CouncilRule::ALL.iter().map(|r| r.as_str()).collect();
                        problem(
                            "rule",
                            format!("`{r}` is not a rule; allowed: {}", all.join(", ")),
                        )
                    })?),
                };
                Check::Council { judges, rule }
            }
        };
        Ok(GateSpec {
            description: raw.description,
            severity: raw.severity,
            check,
        })
    }
}

impl From<GateSpec> for RawGateSpec {
    fn from(g: GateSpec) -> Self {
        let mut raw = RawGateSpec {
            kind: Some(g.kind()),
            description: g.description,
            severity: g.severity,
            ..RawGateSpec::default()
        };
        match g.check {
            Check::Command(c) => {
                raw.command = Some(c.command);
                raw.dir = c.dir;
                raw.timeout_s = c.timeout;
            }
            Check::Scope { allow, deny } => {
                raw.allow = Some(allow);
                raw.deny = (!deny.is_empty()).then_some(deny);
            }
            Check::Diff(l) => {
                raw.max_files = l.max_files;
                raw.max_lines = l.max_lines;
                raw.warn_files = l.warn_files;
                raw.warn_lines = l.warn_lines;
            }
            Check::Secrets { skip } => raw.deny = (!skip.is_empty()).then_some(skip),
            Check::Judge(j) => {
                raw.backend = Some(j.backend);
                raw.agent = j.agent;
                raw.rubric = Some(j.rubric);
                raw.threshold = j.pass_at;
            }
            Check::Council { judges, rule } => {
                raw.judges = Some(judges);
                raw.rule = rule.map(|r| r.as_str().to_owned());
            }
            Check::Approval => {}
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// The journal's shape: a gate written by the release before the typed
    /// form (every key present, unset ones null) reads, and writes back with
    /// its kind's keys.
    #[test]
    fn old_journal_gates_read_and_round_trip() {
        let old = r#"{"kind":"command","description":null,"command":"cargo test","dir":null,"timeout_s":900,"allow":null,"deny":null,"max_files":null,"max_lines":null,"warn_files":null,"warn_lines":null,"backend":null,"agent":null,"rubric":null,"threshold":null,"judges":null,"rule":null,"severity":"fail"}"#;
        let g: GateSpec = serde_json::from_str(old).unwrap();
        assert_eq!(
            g.check,
            Check::Command(CommandCheck {
                command: CommandSpec::Shell("cargo test".into()),
                dir: None,
                timeout: Some(900)
            })
        );
        assert_eq!(serde_json::to_string(&g).unwrap(), old);
        let council = r#"{"kind":"council","judges":["a","b"],"severity":"warn"}"#;
        let g: GateSpec = serde_json::from_str(council).unwrap();
        assert_eq!(g.judges(), ["a", "b"]);
        assert_eq!(g.severity, Severity::Warn);
        assert!(matches!(g.check, Check::Council { rule: None, .. }));
        let bad = serde_json::from_str::<GateSpec>(r#"{"kind":"scope"}"#).unwrap_err();
        assert!(
            bad.to_string()
                .contains("allow: a scope gate needs `allow`"),
            "{bad}"
        );
    }
}
