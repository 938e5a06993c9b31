//! `agentops demo`: a real multi-phase workflow end to end in a scratch
//! repository — knowledge, a context packet, three agents, a gate that fails
//! once and passes on retry, checkpoints, a budget pause and a resume, the
//! trace. Offline and without a key the model is the scripted server (a real
//! HTTP server on loopback speaking the OpenAI wire format, answering from a
//! fixed script); with `--backend` the same workflow runs on the real thing.

use std::path::{Path, PathBuf};

use agentops_llm::scripted::{Reply, Rule, Script, ScriptedCall, ScriptedServer};
use serde_json::json;

use crate::RunError;

/// The files of the demo project.
pub const FILES: &[(&str, &str)] = &[
    ("README.md", "# greet\n\nA tiny tool that greets people.\n"),
    (
        "src/greet.sh",
        "#!/bin/sh\n# Usage: greet.sh NAME\necho \"Hello, $1\"\n",
    ),
    (
        "tests/check.sh",
        "#!/bin/sh\n# The project's test: greet.sh must greet by name and refuse an empty name.\nset -e\nout=$(sh src/greet.sh Ada)\n[ \"$out\" = \"Hello, Ada!\" ] || { echo \"expected 'Hello, Ada!' got '$out'\"; exit 1; }\nif sh src/greet.sh \"\" >/dev/null 2>&1; then echo 'an empty name must fail (exit 2)'; exit 1; fi\necho ok\n",
    ),
    (
        ".agents/agents/planner.toml",
        "purpose = \"Turn the goal into a short, ordered plan.\"\nbackend = \"openai:gpt-4.1-mini\"\nprompt = \"prompts/planner.md\"\ntools = [\"read_file\", \"list_files\", \"search_knowledge\"]\nmax_turns = 6\n",
    ),
    (
        ".agents/agents/coder.toml",
        "purpose = \"Change the code in src/ to carry out the plan.\"\nbackend = \"openai:gpt-4.1-mini\"\nprompt = \"prompts/coder.md\"\ntools = [\"read_file\", \"write_file\", \"edit_file\", \"run_command\"]\nwrite_scope = [\"src/**\"]\nallow_commands = [\"^sh tests/check\\\\.sh$\"]\nmax_turns = 10\n\n[budget]\ntokens = 60000\n",
    ),
    (
        ".agents/agents/reviewer.toml",
        "purpose = \"Review the change against the plan.\"\nbackend = \"openai:gpt-4.1-mini\"\nprompt = \"prompts/reviewer.md\"\ntools = [\"read_file\", \"record_learning\"]\nwrite_scope = [\".agents/learnings/**\"]\nmax_turns = 6\n",
    ),
    (
        ".agents/prompts/planner.md",
        "You plan small changes. Read before you plan. Keep plans to five steps or fewer.\n",
    ),
    (
        ".agents/prompts/coder.md",
        "You write small, correct shell scripts. Follow the plan; run the tests.\n",
    ),
    (
        ".agents/prompts/reviewer.md",
        "You review changes. Record one learning worth keeping.\n",
    ),
    (
        ".agents/workflows/feature.toml",
        "description = \"Plan, implement and review a small change.\"\nsummary_tokens = 400\n\n[phases.plan]\nagent = \"planner\"\ntask = \"Plan this change: {{goal}}\"\n\n[phases.implement]\nagent = \"coder\"\ntask = \"Implement the plan for: {{goal}}\"\nneeds = [\"plan\"]\ngates = [\"tests\", \"scope\"]\nmax_attempts = 3\n\n[phases.review]\nagent = \"reviewer\"\ntask = \"Review the change for: {{goal}}\"\nneeds = [\"implement\"]\n",
    ),
];

/// Gates appended to the demo's config.
pub const GATES: &str = "\n[gates.tests]\nkind = \"command\"\ncommand = \"sh tests/check.sh\"\ntimeout_s = 30\n\n[gates.scope]\nkind = \"scope\"\nallow = [\"src/**\", \".agents/**\"]\n";

/// The learnings the demo starts with.
pub const LEARNINGS: &[(&str, &str, &[&str])] = &[
    (
        "Shell scripts must validate their arguments",
        "Exit with status 2 and a usage line when a required argument is empty; tests check it.",
        &["shell", "cli"],
    ),
    (
        "Greeting format ends with an exclamation mark",
        "User-facing greetings are `Hello, NAME!` — the tests compare the exact string.",
        &["greet", "style"],
    ),
    (
        "Keep changes inside src/",
        "Agents change src/ only; the scope gate refuses anything else.",
        &["scope"],
    ),
];

const FIRST_TRY: &str = "#!/bin/sh\n# Usage: greet.sh NAME\necho \"Hello, $1!\"\n";
const FIXED: &str = "#!/bin/sh\n# Usage: greet.sh NAME\nif [ -z \"$1\" ]; then\n  echo \"usage: greet.sh NAME\" >&2\n  exit 2\nfi\necho \"Hello, $1!\"\n";

/// The script the stand-in model answers from. Rules key on what the
/// request contains and on its turn, so a resumed run gets the same answers.
pub fn script() -> Script {
    let mut s = Script::default();
    let mut rule = |contains: &[&str], not: &[&str], turn: usize, reply: Reply| {
        s.rules.push(Rule {
            contains: contains.iter().map(|x| (*x).to_owned()).collect(),
            not_contains: not.iter().map(|x| (*x).to_owned()).collect(),
            turn: Some(turn),
            times: None,
            reply,
        });
    };
    let call = |name: &str, input: serde_json::Value| ScriptedCall {
        name: name.into(),
        input,
    };
    // planner
    rule(
        &["# Task (plan)"],
        &[],
        0,
        Reply {
            text: "Reading the script first.".into(),
            tool_calls: vec![call("read_file", json!({"path": "src/greet.sh"}))],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (plan)"],
        &[],
        1,
        Reply::text(
            "Plan:\n1. Greet as `Hello, NAME!` (the knowledge says tests compare the exact string).\n2. Refuse an empty name with exit 2 and a usage line.\n3. Run tests/check.sh.",
        ),
    );
    // coder, first attempt: misses the empty-name check
    rule(
        &["# Task (implement)"],
        &["Feedback from the previous attempt"],
        0,
        Reply {
            text: "Adding the exclamation mark.".into(),
            tool_calls: vec![call(
                "write_file",
                json!({"path": "src/greet.sh", "content": FIRST_TRY}),
            )],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (implement)"],
        &["Feedback from the previous attempt"],
        1,
        Reply::text("Updated the greeting to `Hello, NAME!`."),
    );
    // coder, second attempt: the gate's feedback is in the task
    rule(
        &["# Task (implement)", "an empty name must fail"],
        &[],
        0,
        Reply {
            text: "The gate says an empty name must fail; adding the check.".into(),
            tool_calls: vec![call(
                "write_file",
                json!({"path": "src/greet.sh", "content": FIXED}),
            )],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (implement)", "an empty name must fail"],
        &[],
        1,
        Reply {
            text: "Running the tests.".into(),
            tool_calls: vec![call("run_command", json!({"command": "sh tests/check.sh"}))],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (implement)", "an empty name must fail"],
        &[],
        2,
        Reply::text(
            "greet.sh now greets `Hello, NAME!` and exits 2 with a usage line on an empty name; tests/check.sh passes.",
        ),
    );
    // reviewer
    rule(
        &["# Task (review)"],
        &[],
        0,
        Reply {
            text: "Checking the result.".into(),
            tool_calls: vec![call("read_file", json!({"path": "src/greet.sh"}))],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (review)"],
        &[],
        1,
        Reply {
            text: "Recording what we learned.".into(),
            tool_calls: vec![call(
                "record_learning",
                json!({"title": "Feed gate output back to the agent", "body": "The first attempt missed the empty-name check; the test gate's output, fed back, fixed it on the second attempt.", "tags": ["gates", "retry"]}),
            )],
            ..Reply::default()
        },
    );
    rule(
        &["# Task (review)"],
        &[],
        2,
        Reply::text("Approved: matches the plan, tests pass, change confined to src/."),
    );
    s
}

/// Writes the demo project into `dir` (an empty directory) and commits it.
pub fn write_project(dir: &Path) -> Result<(), RunError> {
    let g = |args: &[&str]| crate::git::git(dir, args);
    g(&["init", "-q", "-b", "main"])?;
    g(&["config", "user.name", "agentops demo"])?;
    g(&["config", "user.email", "demo@agentops.invalid"])?;
    for (path, text) in FILES {
        let p = dir.join(path);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)
                .map_err(|e| RunError::Git(format!("{}: {e}", d.display())))?;
        }
        std::fs::write(&p, text).map_err(|e| RunError::Git(format!("{}: {e}", p.display())))?;
    }
    g(&["add", "-A"])?;
    g(&["commit", "-q", "-m", "greet: initial version"])?;
    Ok(())
}

/// A scratch directory for the demo (kept when `keep` is given).
pub fn scratch(keep: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), RunError> {
    match keep {
        Some(p) => {
            if p.exists()
                && std::fs::read_dir(p)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(RunError::Config(format!(
                    "{} is not empty; give a new or empty directory",
                    p.display()
                )));
            }
            std::fs::create_dir_all(p)
                .map_err(|e| RunError::Config(format!("{}: {e}", p.display())))?;
            Ok((p.canonicalize().unwrap_or_else(|_| p.to_path_buf()), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("agentops-demo-")
                .tempdir()
                .map_err(|e| RunError::Config(e.to_string()))?;
            Ok((
                t.path()
                    .canonicalize()
                    .unwrap_or_else(|_| t.path().to_path_buf()),
                Some(t),
            ))
        }
    }
}

/// Starts the stand-in model.
pub fn start_model() -> Result<ScriptedServer, RunError> {
    ScriptedServer::start(script())
        .map_err(|e| RunError::Config(format!("cannot start the scripted model server: {e}")))
}
