//! Factor IV — Validation Gates: one engine used between workflow phases,
//! standalone in CI (`agentops gate run`), and inside harnesses through hooks
//! (the [`policy`] checks).
//!
//! Gates are defined under `[gates.<name>]` in `.agents/config.toml` or in
//! `.agents/gates.toml`. Kinds: `command`, `scope`, `diff`, `secrets`,
//! `judge` (a model with a rubric), `council` (several judges and a consensus
//! rule), `approval`.

/// How long a `command` gate may run when `timeout_s` is not set.
pub const DEFAULT_TIMEOUT_S: u64 = 600;

pub mod approval;
pub mod diff;
pub mod judge;
pub mod policy;
mod run;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use judge::JudgeEnv;
pub use run::{Next, escalation, feedback_message, run_gates, run_gates_with};
pub use spec::{Check, CommandCheck, CouncilRule, DiffLimits, GateSpec, JudgeCheck, RawGateSpec};

pub use agentops_protocol::event::{GateKind, Verdict};

/// What one gate found.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub name: String,
    pub kind: GateKind,
    pub verdict: Verdict,
    /// One line for people.
    pub summary: String,
    /// Kind-specific details (never a secret's value).
    pub evidence: serde_json::Value,
    pub duration_ms: f64,
    /// An approval that waits for a person (the verdict is FAIL until then).
    pub pending: bool,
}

/// A gate's command: a shell string or an argv list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    Shell(String),
    Argv(Vec<String>),
}

/// How a failing gate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure blocks (FAIL).
    #[default]
    Fail,
    /// A failure only warns (WARN).
    Warn,
}

/// A validated gate.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub name: String,
    pub spec: GateSpec,
    /// Where it was defined: `file:line`.
    pub defined_at: String,
}

/// Why gates could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{location}: {message}")]
    Config { location: String, message: String },
    #[error("no gate named `{name}`; defined: {}", if defined.is_empty() { "none (add [gates.<name>] to .agents/config.toml)".to_owned() } else { defined.join(", ") })]
    Unknown { name: String, defined: Vec<String> },
    #[error(transparent)]
    Git(#[from] agentops_git::CommandError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    gates: BTreeMap<String, RawGateSpec>,
}

pub(crate) fn globs(pats: &[String]) -> Result<globset::GlobSet, String> {
    let mut b = globset::GlobSetBuilder::new();
    for p in pats {
        let g = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("`{p}` is not a valid glob: {e}"))?;
        b.add(g);
    }
    b.build().map_err(|e| e.to_string())
}

fn parse_file(path: &Path, src: &str, out: &mut BTreeMap<String, Gate>) -> Result<(), GateError> {
    let doc: Doc = toml::from_str(src).map_err(|e| GateError::Config {
        location: format!(
            "{}:{}",
            path.display(),
            e.span()
                .map_or(1, |s| agentops_core::toml_span::line_col(src, s.start).0)
        ),
        message: format!("{}; gate keys: {}", e.message().trim(), spec::GATE_KEYS),
    })?;
    let spans = agentops_core::toml_span::Spans::new(src);
    for (name, raw) in doc.gates {
        let at = |key: Option<&str>| {
            let line = match key {
                Some(k) => spans.key_line(&["gates", &name, k]),
                None => spans.key_line(&["gates", &name]),
            };
            format!("{}:{line}", path.display())
        };
        let bad = |key: &str, message: String| GateError::Config {
            location: at(Some(key)),
            message: format!("gates.{name}.{key}: {message}"),
        };
        if agentops_core::RunId::parse(&name).is_err() {
            return Err(GateError::Config {
                location: at(None),
                message: format!("gate name `{name}`: use letters, digits, `-`, `_`"),
            });
        }
        let spec = GateSpec::try_from(raw).map_err(|p| bad(p.key, p.message))?;
        if let Check::Judge(j) = &spec.check {
            let dir = path.parent().unwrap_or(Path::new("."));
            if !dir.join(&j.rubric).is_file() {
                return Err(bad(
                    "rubric",
                    format!(
                        "`{}` does not exist (the path is relative to .agents/)",
                        dir.join(&j.rubric).display()
                    ),
                ));
            }
        }
        let defined_at = at(None);
        if let Some(prev) = out.get(&name) {
            return Err(GateError::Config {
                location: defined_at,
                message: format!("gate `{name}` is already defined at {}", prev.defined_at),
            });
        }
        out.insert(
            name.clone(),
            Gate {
                name,
                spec,
                defined_at,
            },
        );
    }
    Ok(())
}

/// Every gate defined in `.agents/config.toml` and `.agents/gates.toml`.
pub fn load(agents_dir: &Path) -> Result<BTreeMap<String, Gate>, GateError> {
    let mut out = BTreeMap::new();
    for file in ["config.toml", "gates.toml"] {
        let path = agents_dir.join(file);
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(GateError::Io { path, source: e });
            }
        };
        parse_file(&path, &src, &mut out)?;
    }
    // A council's judges must be judge gates.
    for g in out.values() {
        for j in g.spec.judges() {
            match out.get(j) {
                Some(x) if x.spec.kind() == GateKind::Judge => {}
                _ => {
                    return Err(GateError::Config {
                        location: g.defined_at.clone(),
                        message: format!("gates.{}.judges: `{j}` is not a judge gate", g.name),
                    });
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn compile_globs(pats: &[String]) -> globset::GlobSet {
    globs(pats).unwrap_or_else(|_| globset::GlobSet::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<BTreeMap<String, Gate>, GateError> {
        let mut out = BTreeMap::new();
        parse_file(Path::new(".agents/config.toml"), src, &mut out).map(|()| out)
    }

    #[test]
    fn valid_definitions() {
        let g = parse(
            "[store]\nbusy_timeout_ms = 100\n\n[gates.tests]\nkind = \"command\"\ncommand = \"cargo test\"\ntimeout_s = 900\n\n[gates.scope]\nkind = \"scope\"\nallow = [\"src/**\", \"docs/**\"]\n\n[gates.size]\nkind = \"diff\"\nmax_files = 20\n\n[gates.secrets]\nkind = \"secrets\"\n",
        )
        .unwrap();
        assert_eq!(
            g.keys().cloned().collect::<Vec<_>>(),
            vec!["scope", "secrets", "size", "tests"]
        );
        assert_eq!(g["tests"].defined_at, ".agents/config.toml:4");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[gates.t]\nkind = \"command\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            ".agents/config.toml:1: gates.t.command: a command gate needs `command` (a shell string or an argv list)"
        );
        let e = parse("[gates.s]\nkind = \"scope\"\nallow = [\"src/[\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(".agents/config.toml:3: gates.s.allow: `src/[` is not a valid glob"),
            "{e}"
        );
        let e = parse("[gates.x]\nkind = \"command\"\ncommand = \"true\"\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(".agents/config.toml:4: unknown field `timeout`"),
            "{e}"
        );
        let e = parse("[gates.x]\nkind = \"lint\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(".agents/config.toml:2: unknown variant `lint`"),
            "{e}"
        );
        let e = parse("[gates.j]\nkind = \"judge\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(".agents/config.toml:1: gates.j.backend: a judge gate needs `backend`"),
            "{e}"
        );
        let e = parse("[gates.c]\nkind = \"council\"\njudges = [\"j\"]\nrule = \"unanimous\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(".agents/config.toml:4: gates.c.rule: `unanimous` is not a rule"),
            "{e}"
        );
        let e = parse("[gates.d]\nkind = \"diff\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs at least one of max_files"), "{e}");
    }
}
