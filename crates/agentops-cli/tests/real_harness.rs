//! The real harness CLIs (`@anthropic-ai/claude-code`, `@openai/codex` from
//! npm) against a scripted model server on loopback: agentops's installed
//! hooks fire, their events reach the journal, and a learning recorded on
//! `main` reaches the first session's model request.
//!
//! The CLIs are found in `$AGENTOPS_HARNESS_CLIS/node_modules/.bin/`
//! (`.ci/run` installs them there). Without them the tests say so and pass,
//! unless `AGENTOPS_REQUIRE_HARNESS_CLIS=1` (as in CI), where a missing CLI
//! fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use agentops_llm::scripted::{Reply, Script, ScriptedCall, ScriptedServer};
use agentops_testkit::TestContext;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_agentops");
/// A word only the test's prompt contains, so rules match the session's own
/// requests and not the harness's side requests.
const MARK: &str = "zebracorn";

fn cli(name: &str) -> Option<PathBuf> {
    let required = std::env::var("AGENTOPS_REQUIRE_HARNESS_CLIS").is_ok_and(|v| v == "1");
    let found = std::env::var_os("AGENTOPS_HARNESS_CLIS")
        .map(|d| PathBuf::from(d).join("node_modules/.bin").join(name))
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            !required,
            "AGENTOPS_REQUIRE_HARNESS_CLIS=1 but {name} is not in $AGENTOPS_HARNESS_CLIS/node_modules/.bin"
        );
        eprintln!("skipped: {name} not installed (set AGENTOPS_HARNESS_CLIS; .ci/run does)");
    }
    found
}

/// A repository on `main` whose only knowledge is one learning.
fn project() -> (TestContext, String) {
    let ctx = TestContext::new(BIN);
    assert_eq!(ctx.run(&["init", "-q"]).code, 0);
    let r = ctx.run(&[
        "learn",
        "Deploys need the canary flag",
        "--body",
        "Run deploy.sh with --canary first; a full rollout without it paged the on-call twice.",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = serde_json::from_str::<Value>(&r.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "agentops init"]);
    (ctx, id)
}

/// The hook events the journal holds, by name.
fn journaled_events(ctx: &TestContext) -> BTreeSet<String> {
    let layout = agentops_store::RepoLayout::discover(&ctx.root).unwrap();
    let j = agentops_store::Journal::open_read(&layout, &agentops_core::config::Config::default())
        .unwrap();
    j.read(&agentops_store::Query {
        kinds: vec![agentops_core::EventKind::HookReceived],
        ..agentops_store::Query::default()
    })
    .unwrap()
    .iter()
    .filter_map(|e| e.body["event"].as_str().map(str::to_owned))
    .collect()
}

fn hook_log(ctx: &TestContext) -> String {
    std::fs::read_to_string(ctx.git_dir().join("agentops/hooks.log")).unwrap_or_default()
}

fn run_with_timeout(mut c: Command, limit: Duration) -> std::process::Output {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the harness CLI did not finish within {limit:?}");
        }
    }
}

/// The learning is in the session's first model request (of `api`, whose
/// body also contains `marker`), and every event agentops installs that a
/// plain session has fired and been journaled (PreCompact, PostCompact,
/// SubagentStart/Stop and PostToolUseFailure only fire when they happen).
fn assert_learning_and_events(
    ctx: &TestContext,
    id: &str,
    server: &ScriptedServer,
    api: &str,
    marker: &str,
    harness_stderr: &str,
) {
    let session: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| {
            let b = r.body.to_string();
            r.api == api && b.contains(MARK) && b.contains(marker)
        })
        .collect();
    assert!(!session.is_empty(), "no request of the session arrived");
    let first = session[0].body.to_string();
    assert!(
        first.contains("Deploys need the canary flag") && first.contains(id),
        "{first}"
    );
    let got = journaled_events(ctx);
    for e in [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "SessionEnd",
    ] {
        assert!(
            got.contains(e),
            "{e} never fired; journaled: {got:?}\n{harness_stderr}"
        );
    }
    assert_eq!(hook_log(ctx), "");
}

#[test]
fn claude_code_fires_every_installed_hook_and_its_model_gets_the_learning() {
    let Some(claude) = cli("claude") else { return };
    let (ctx, id) = project();
    let r = ctx.run(&["hooks", "install", "claude"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = Script::default()
        .rule(
            &[MARK, "Bash"],
            Some(0),
            Reply {
                tool_calls: vec![ScriptedCall {
                    name: "Bash".into(),
                    input: json!({"command": "echo hello-from-the-agent", "description": "say hello"}),
                }],
                ..Reply::default()
            },
        )
        .rule(&[MARK, "Bash"], Some(1), Reply::text("Done: said hello."));
    let server = ScriptedServer::start(script).unwrap();
    let home = ctx.root.join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(&claude);
    c.args([
        "-p",
        &format!("{MARK}: say hello with a shell command"),
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
    ])
    .current_dir(&ctx.root)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", &home)
    .env("ANTHROPIC_BASE_URL", server.url())
    .env("ANTHROPIC_API_KEY", "sk-ant-test-dummy")
    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    .env("DISABLE_AUTOUPDATER", "1")
    .env("IS_SANDBOX", "1");
    let out = run_with_timeout(c, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello-from-the-agent"), "{stdout}");
    assert_learning_and_events(&ctx, &id, &server, "anthropic", "Bash", "");
    // The session is known, with its tool call.
    let s = ctx.run(&["sessions", "--json"]);
    let v: Value = serde_json::from_str(&s.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|s| s["harness"] == "claude" && s["tools"].as_u64() >= Some(1)),
        "{v}"
    );
}

#[test]
fn codex_fires_every_installed_hook_and_its_model_gets_the_learning() {
    let Some(codex) = cli("codex") else { return };
    let (ctx, id) = project();
    let r = ctx.run(&["hooks", "install", "codex"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // What the install says about trust, and what doctor reads before the
    // person trusted anything.
    assert!(r.stdout.contains("codex exec --trust"), "{}", r.stdout);
    let home = ctx.root.join(".home");
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let doctor = ctx.run_env(
        &["doctor"],
        &[("CODEX_HOME", codex_home.display().to_string())],
    );
    let said = format!("{}{}", doctor.stdout, doctor.stderr);
    assert!(
        said.contains("Codex skips the agentops hooks silently") && said.contains("not trusted"),
        "{said}"
    );
    let script = Script::default()
        .rule(
            &[MARK],
            Some(0),
            Reply {
                tool_calls: vec![ScriptedCall {
                    name: "exec_command".into(),
                    input: json!({"cmd": "echo hello-from-codex"}),
                }],
                ..Reply::default()
            },
        )
        .rule(&[MARK], Some(1), Reply::text("Done: said hello."));
    let server = ScriptedServer::start(script).unwrap();
    let root = std::fs::canonicalize(&ctx.root).unwrap();
    // The person's side: a model provider, and the project trusted.
    codex_config(&codex_home, &server, &root);
    let mut c = Command::new(&codex);
    c.args([
        "exec",
        // Standing in for approving each hook in /hooks.
        "--dangerously-bypass-hook-trust",
        "--dangerously-bypass-approvals-and-sandbox",
        &format!("{MARK}: say hello with a shell command"),
    ])
    .current_dir(&ctx.root)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", &home)
    .env("CODEX_HOME", &codex_home)
    .env("OPENAI_API_KEY", "sk-test-dummy");
    let out = run_with_timeout(c, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let received = server.received();
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{:#?}",
        received
            .iter()
            .map(|r| (&r.path, r.status))
            .collect::<Vec<_>>()
    );
    assert_learning_and_events(&ctx, &id, &server, "responses", MARK, &stderr);
}

/// The person's side of Codex: the scripted model as its provider, and the
/// project at `root` trusted.
fn codex_config(codex_home: &std::path::Path, server: &ScriptedServer, root: &std::path::Path) {
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            "model = \"scripted-model\"\nmodel_provider = \"scripted\"\n\n[model_providers.scripted]\nname = \"scripted\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\n\n[projects.{:?}]\ntrust_level = \"trusted\"\n",
            server.url(),
            root.display().to_string()
        ),
    )
    .unwrap();
}

/// Runs `claude -p` in `ctx` against `server` with `extra` arguments.
fn claude_session(
    claude: &std::path::Path,
    ctx: &TestContext,
    server: &ScriptedServer,
    prompt: &str,
    extra: &[&str],
) -> std::process::Output {
    let home = ctx.root.join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(claude);
    c.args([
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
    ])
    .args(extra)
    .current_dir(&ctx.root)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", &home)
    .env("ANTHROPIC_BASE_URL", server.url())
    .env("ANTHROPIC_API_KEY", "sk-ant-test-dummy")
    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    .env("DISABLE_AUTOUPDATER", "1")
    .env("IS_SANDBOX", "1");
    run_with_timeout(c, Duration::from_secs(120))
}

/// The scripted model calls `tool` (an agentops MCP tool as Claude Code
/// names it) with a search, then answers; the tool's result must come back
/// in the next request.
fn mcp_script(tool: &str) -> Script {
    Script::default()
        .rule(
            &[MARK, tool],
            Some(0),
            Reply {
                tool_calls: vec![ScriptedCall {
                    name: tool.into(),
                    input: json!({"query": "canary rollout paged on-call"}),
                }],
                ..Reply::default()
            },
        )
        .rule(
            &[MARK, tool],
            Some(1),
            Reply::text("Found it: use --canary."),
        )
}

fn assert_tool_result_reached_the_model(
    server: &ScriptedServer,
    tool: &str,
    id: &str,
    out: &std::process::Output,
) {
    let session: Vec<String> = server
        .received()
        .into_iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains(MARK) && b.contains(tool))
        .collect();
    assert!(
        session.len() >= 2,
        "the model was not asked again after the tool call ({} requests)\n{}\n{}",
        session.len(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let last = session.last().unwrap();
    // The search tool's JSON result, with the learning's id and snippet.
    assert!(
        last.contains("tool_result")
            && last.contains("hits")
            && last.contains(id)
            && last.contains("canary"),
        "{last}"
    );
}

#[test]
fn claude_code_calls_an_agentops_mcp_tool_registered_by_hooks_install() {
    let Some(claude) = cli("claude") else { return };
    let (ctx, id) = project();
    // Local scope: ~/.claude.json under this project (no approval prompt).
    let home = ctx.root.join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let r = ctx.run_env(
        &["hooks", "install", "claude", "--scope", "local"],
        &[("HOME", home.display().to_string())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tool = "mcp__agentops__search";
    let server = ScriptedServer::start(mcp_script(tool)).unwrap();
    let out = claude_session(
        &claude,
        &ctx,
        &server,
        &format!("{MARK}: how do we deploy?"),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_tool_result_reached_the_model(&server, tool, &id, &out);
    // The call is a span in the journal, of the session the hooks saw.
    let conn = rusqlite::Connection::open(ctx.git_dir().join("agentops/state.db")).unwrap();
    let run: String = conn
        .query_row(
            "SELECT run_id FROM events WHERE kind = 'tool.call' AND body LIKE '%mcp:agentops/search%'",
            [],
            |r| r.get(0),
        )
        .expect("the MCP call's span");
    let sessions: Value = serde_json::from_str(&ctx.run(&["sessions", "--json"]).stdout).unwrap();
    assert!(
        sessions.to_string().contains(&run),
        "span under {run}, sessions: {sessions}"
    );
}

#[test]
fn claude_code_loads_the_plugin_and_calls_its_mcp_tool() {
    let Some(claude) = cli("claude") else { return };
    let (ctx, id) = project();
    let dir = ctx.root.join(".plugins");
    let r = ctx.run(&[
        "plugin",
        "install",
        "claude",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The plugin is valid by Claude Code's own check.
    let v = Command::new(&claude)
        .args(["plugin", "validate", "--strict"])
        .arg(dir.join("claude"))
        .env("HOME", ctx.root.join(".home"))
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let tool = "mcp__plugin_agentops_agentops__search";
    let server = ScriptedServer::start(mcp_script(tool)).unwrap();
    let plugin = dir.join("claude");
    let out = claude_session(
        &claude,
        &ctx,
        &server,
        &format!("{MARK}: how do we deploy?"),
        &["--plugin-dir", plugin.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_tool_result_reached_the_model(&server, tool, &id, &out);
    // The plugin's hooks fired too.
    let got = journaled_events(&ctx);
    assert!(
        got.contains("SessionStart") && got.contains("Stop"),
        "{got:?}"
    );
}

#[test]
fn codex_calls_an_agentops_mcp_tool_registered_by_hooks_install() {
    let Some(codex) = cli("codex") else { return };
    let (ctx, id) = project();
    // Project scope: .codex/config.toml, which Codex reads in a trusted project.
    let r = ctx.run(&["hooks", "install", "codex", "--no-mcp"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let home = ctx.root.join(".home");
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let tool = "mcp__agentops__search";
    let script = Script::default()
        .rule(
            &[MARK, "agentops"],
            Some(0),
            Reply {
                tool_calls: vec![ScriptedCall {
                    name: tool.into(),
                    input: json!({"query": "canary rollout paged on-call"}),
                }],
                ..Reply::default()
            },
        )
        .rule(&[MARK], Some(1), Reply::text("Found it: use --canary."));
    let server = ScriptedServer::start(script).unwrap();
    let root = std::fs::canonicalize(&ctx.root).unwrap();
    codex_config(&codex_home, &server, &root);
    // The user scope: agentops merges its table into the person's config.toml.
    let r = ctx.run_env(
        &["hooks", "install", "codex", "--scope", "user"],
        &[("CODEX_HOME", codex_home.display().to_string())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cfg = std::fs::read_to_string(codex_home.join("config.toml")).unwrap();
    assert!(
        cfg.starts_with("model = \"scripted-model\"") && cfg.contains("[mcp_servers.agentops]"),
        "{cfg}"
    );
    // Codex itself lists it.
    let list = Command::new(&codex)
        .args(["mcp", "list", "--json"])
        .current_dir(&ctx.root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("CODEX_HOME", &codex_home)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("\"agentops\""),
        "{listed}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let mut c = Command::new(&codex);
    c.args([
        "exec",
        "--dangerously-bypass-hook-trust",
        "--dangerously-bypass-approvals-and-sandbox",
        &format!("{MARK}: how do we deploy? search agentops"),
    ])
    .current_dir(&ctx.root)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", &home)
    .env("CODEX_HOME", &codex_home)
    .env("OPENAI_API_KEY", "sk-test-dummy");
    let out = run_with_timeout(c, Duration::from_secs(120));
    let bodies: Vec<String> = server
        .received()
        .into_iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains(MARK))
        .collect();
    assert!(
        out.status.success() && bodies.len() >= 2,
        "{}\n{}\n{:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        bodies
            .first()
            .map(|b| b.chars().take(4000).collect::<String>())
    );
    let last = bodies.last().unwrap();
    assert!(last.contains("hits") && last.contains(&id), "{last}");
}

#[test]
fn codex_installs_the_plugin_and_lists_its_mcp_server() {
    let Some(codex) = cli("codex") else { return };
    let (ctx, _) = project();
    let dir = ctx.root.join(".plugins");
    let r = ctx.run(&[
        "plugin",
        "install",
        "codex",
        "--dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let home = ctx.root.join(".home");
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(&codex)
            .args(args)
            .current_dir(&ctx.root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("CODEX_HOME", &codex_home)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "codex {args:?}: {said}");
        said
    };
    run(&["plugin", "marketplace", "add", dir.to_str().unwrap()]);
    let said = run(&["plugin", "add", "agentops@agentops"]);
    assert!(said.contains("Added plugin `agentops`"), "{said}");
    let said = run(&["plugin", "list"]);
    assert!(
        said.contains("agentops@agentops") && said.contains("installed, enabled"),
        "{said}"
    );
    // Its MCP server is one Codex will start, running this binary.
    let said = run(&["mcp", "list", "--json"]);
    assert!(
        said.contains("\"agentops\"") && said.contains(BIN),
        "{said}"
    );
}
