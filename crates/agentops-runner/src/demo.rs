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
            std::fs::create_dir_all(d).map_err(RunError::io(d))?;
        }
        std::fs::write(&p, text).map_err(RunError::io(&p))?;
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
            std::fs::create_dir_all(p).map_err(RunError::io(p))?;
            Ok((p.canonicalize().unwrap_or_else(|_| p.to_path_buf()), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("agentops-demo-")
                .tempdir()
                .map_err(RunError::io(std::env::temp_dir()))?;
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
    ScriptedServer::start(script()).map_err(RunError::ScriptedServer)
}

/// What the demo says as it goes, for a front end to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// The scratch repository.
    Scratch { dir: PathBuf },
    /// The model: the scripted stand-in at `url`, or the real `backend`.
    Model {
        scripted_url: Option<String>,
        backend: Option<String>,
    },
    /// Learnings written, one commit each.
    Knowledge { learnings: usize },
    /// The search index is built.
    Indexed,
    /// The workflow starts with a budget of `turns` model calls.
    Running { turns: u64 },
    /// The run paused on its budget, as scripted; it resumes now.
    Paused { reason: crate::state::PauseReason },
}

/// After the resume: requests the scripted model saw before and after the
/// pause, and the model calls recorded in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub before: usize,
    pub after: usize,
    pub calls: u64,
}

/// How the demo ended.
pub struct DemoReport {
    pub dir: PathBuf,
    pub layout: agentops_store::RepoLayout,
    pub config: agentops_core::config::Config,
    pub run: agentops_core::RunId,
    /// The resumed run's outcome.
    pub outcome: crate::Outcome,
    /// `git log --oneline` of the run branch.
    pub commits: Vec<String>,
    /// With the scripted model: what the resume paid for and replayed.
    pub replayed: Option<Replayed>,
    pub kept: bool,
    /// A kept repository's config now says the scripted model is gone.
    pub scripted_gone: bool,
    /// Removes the scratch repository when dropped (unless kept).
    pub guard: Option<tempfile::TempDir>,
}

/// The demo's options.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// A real backend instead of the scripted stand-in.
    pub backend: Option<String>,
    /// Keep the repository here.
    pub keep: Option<PathBuf>,
}

/// The goal the demo's run works on.
pub const GOAL: &str = "greet.sh must greet as 'Hello, NAME!' and refuse an empty name";

/// Runs the whole demo: a scratch project, knowledge, an index, a run that
/// pauses on its budget and resumes. `note` hears each stage; `progress`
/// hears the run.
pub fn run(
    opts: &DemoOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &dyn crate::Progress,
    note: &mut dyn FnMut(Note),
) -> Result<DemoReport, RunError> {
    use crate::spec::Budget;
    let (dir, guard) = scratch(opts.keep.as_deref())?;
    note(Note::Scratch { dir: dir.clone() });
    write_project(&dir)?;
    let layout = agentops_store::RepoLayout::discover(&dir)?;
    agentops_store::project::init(&layout, Default::default())?;
    let server = match opts.backend {
        None => Some(start_model()?),
        Some(_) => None,
    };
    let config_path = layout.project_config();
    let mut cfg_text = std::fs::read_to_string(&config_path).unwrap_or_default();
    cfg_text.push_str(GATES);
    if let Some(s) = &server {
        let line = format!("[llm]\nopenai_base_url = \"{}\"\n", s.openai_base());
        cfg_text = if cfg_text.contains("\n[llm]\n") {
            cfg_text.replacen("\n[llm]\n", &format!("\n{line}"), 1)
        } else {
            format!("{cfg_text}\n{line}")
        };
    }
    std::fs::write(&config_path, cfg_text).map_err(RunError::io(&config_path))?;
    crate::git::git(&dir, &["add", "-A"])?;
    crate::git::git(&dir, &["commit", "-q", "-m", "agentops: init, gates"])?;
    note(Note::Model {
        scripted_url: server.as_ref().map(ScriptedServer::url),
        backend: opts.backend.clone(),
    });
    let config = agentops_store::project::load_config(Some(&layout), Vec::new())?;
    // Factor I: knowledge, committed.
    let k = agentops_knowledge::Knowledge::new(layout.clone(), config.clone())?;
    let j = agentops_store::Journal::open_for(&layout, &config)?;
    for (title, body, tags) in LEARNINGS {
        k.learn(
            agentops_knowledge::NewEntry {
                kind: Some(agentops_knowledge::EntryType::Learning),
                title: (*title).into(),
                body: (*body).into(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            },
            Some(&j),
        )?;
    }
    note(Note::Knowledge {
        learnings: LEARNINGS.len(),
    });
    agentops_context::index::KnowledgeIndex::open(&layout, &config, true, false)?;
    note(Note::Indexed);
    let ctx = crate::RunContext {
        layout: &layout,
        config: &config,
        journal: &j,
        env,
        progress,
        publish: None,
        lost: None,
    };
    note(Note::Running { turns: 4 });
    let first = crate::start(
        &ctx,
        &crate::StartOptions {
            workflow: "feature".into(),
            goal: GOAL.into(),
            budget: Budget {
                turns: Some(4),
                ..Budget::default()
            },
            backend: opts.backend.clone(),
            ..Default::default()
        },
    )?;
    let crate::Outcome::Paused { run, reason, .. } = first else {
        return Err(RunError::State(format!(
            "the demo run did not pause on its budget as scripted: {first:?}"
        )));
    };
    note(Note::Paused { reason });
    let id = agentops_core::RunId::parse(&run)?;
    let before = server.as_ref().map_or(0, ScriptedServer::count);
    let outcome = crate::resume(
        &ctx,
        &id,
        &crate::ResumeOptions {
            budget: Budget {
                turns: Some(100),
                ..Budget::default()
            },
        },
    )?;
    let replayed = match &server {
        Some(s) => Some(Replayed {
            before,
            after: s.count() - before,
            calls: crate::RunState::load(&j, &layout.state_dir(), &id)?.calls,
        }),
        None => None,
    };
    let mut scripted_gone = false;
    let commits = crate::git::git(&dir, &["log", "--oneline", &crate::state::branch_of(&id)])
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    if opts.keep.is_some()
        && let Some(s) = &server
    {
        // The scripted stand-in stops with this process: leave a config
        // that says so, not one pointing at a dead port.
        let line = format!("openai_base_url = \"{}\"", s.openai_base());
        let text = std::fs::read_to_string(&config_path).unwrap_or_default();
        let gone = format!(
            "# The demo's model was a scripted stand-in at {}, gone when the demo ended.\n# To run this workflow again, point openai_base_url at an OpenAI-compatible\n# server and set OPENAI_API_KEY, or pass --backend (e.g. anthropic:claude-sonnet-4-5\n# with ANTHROPIC_API_KEY, or command:claude).\n# {line}",
            s.openai_base()
        );
        if std::fs::write(&config_path, text.replace(&line, &gone)).is_ok() {
            let _ = crate::git::git(
                &dir,
                &[
                    "commit",
                    "-q",
                    "-am",
                    "agentops demo: the scripted model is gone",
                ],
            );
        }
        scripted_gone = true;
    }
    Ok(DemoReport {
        dir,
        layout,
        config,
        run: id,
        outcome,
        commits,
        replayed,
        kept: opts.keep.is_some(),
        scripted_gone,
        guard,
    })
}
