//! `agentops mcp`: the official TypeScript SDK client
//! (`@modelcontextprotocol/sdk`) drives every tool, resource and prompt over
//! stdio and Streamable HTTP, and its results are checked against the
//! commands' `--json`; raw JSON-RPC checks bad input, protocol revisions and
//! faults; the tool list is a snapshot.
//!
//! The SDK is found in `$AGENTOPS_MCP_SDK/node_modules` (`.ci/run` installs
//! it there). Without it the SDK tests say so and pass, unless
//! `AGENTOPS_REQUIRE_MCP_SDK=1` (as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use agentops_runner::demo;
use agentops_testkit::TestContext;
use agentops_testkit::model::ScriptedServer;
use serde_json::{Value, json};

mod common;

use common::{BIN, GOAL, run_id};

fn sdk() -> Option<PathBuf> {
    let required = std::env::var("AGENTOPS_REQUIRE_MCP_SDK").is_ok_and(|v| v == "1");
    let found = std::env::var_os("AGENTOPS_MCP_SDK")
        .map(PathBuf::from)
        .filter(|d| d.join("node_modules/@modelcontextprotocol/sdk").is_dir());
    if found.is_none() {
        assert!(
            !required,
            "AGENTOPS_REQUIRE_MCP_SDK=1 but $AGENTOPS_MCP_SDK/node_modules has no @modelcontextprotocol/sdk"
        );
        eprintln!(
            "skipped: @modelcontextprotocol/sdk not installed (set AGENTOPS_MCP_SDK; .ci/run does)"
        );
    }
    found
}

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.mjs")
}

/// The demo project with its learnings, one completed run and a handoff.
fn project() -> (TestContext, String) {
    let ctx = common::demo_project(true);
    let server = ScriptedServer::start(demo::script()).unwrap();
    let r = ctx.run_env(
        &["run", "feature", GOAL],
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let run = run_id(&ctx);
    (ctx, run)
}

/// Runs the SDK client with `steps`; its JSON answer.
fn ts(ctx: &TestContext, sdk: &PathBuf, args: &[&str], steps: &Value) -> Value {
    let mut c = Command::new("node");
    c.arg(client_script())
        .args(args)
        .current_dir(ctx.path(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The server the client starts inherits the test's isolated settings.
    for (k, v) in ctx.command(&[]).get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.env("AGENTOPS_MCP_SDK", sdk);
    let mut child = c.spawn().expect("node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client output: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn cli_json(ctx: &TestContext, args: &[&str]) -> Value {
    let r = ctx.run(args);
    assert!(r.code == 0 || r.code == 1, "{args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
}

/// The same hits as `agentops search --json`: every field equal, the scores
/// as numbers (freshness moves with the clock between the two calls).
fn assert_same_hits(mcp: &Value, cli: &Value) {
    let (a, b) = (mcp.as_array().unwrap(), cli.as_array().unwrap());
    assert_eq!(a.len(), b.len(), "{mcp}\n{cli}");
    for (x, y) in a.iter().zip(b) {
        for k in ["id", "type", "title", "tags", "maturity", "path", "snippet"] {
            assert_eq!(
                x[k], y[k],
                "search `{k}` differs from `agentops search --json`"
            );
        }
        for k in ["relevance", "utility", "maturity", "total"] {
            let (p, q) = (
                x["score"][k].as_f64().unwrap(),
                y["score"][k].as_f64().unwrap(),
            );
            assert!(
                (p - q).abs() < 1e-6 * q.abs().max(1.0),
                "score.{k}: {p} vs {q}"
            );
        }
    }
}

fn structured(v: &Value) -> Value {
    assert_ne!(v["isError"], json!(true), "tool error: {v}");
    v["structuredContent"].clone()
}

/// Every tool, resource and prompt, checked against the CLI.
/// A check of one step's result.
type Check = Box<dyn Fn(&Value)>;

fn every_step(ctx: &TestContext, run: &str) -> (Value, Vec<Check>) {
    let mut steps = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let tool = |name: &str, arguments: Value| json!({"op": "callTool", "name": name, "arguments": arguments});

    steps.push(json!({"op": "listTools"}));
    checks.push(Box::new(|v| {
        let names: Vec<&str> = v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "search",
                "context",
                "get",
                "learn",
                "feedback",
                "handoff_latest",
                "handoff_write",
                "gate_run",
                "gate_check",
                "runs",
                "run_show",
                "trace",
                "sessions",
                "stats",
                "status"
            ]
        );
    }));

    let cli_search = cli_json(ctx, &["search", "validate arguments", "--json"]);
    let first = cli_search[0]["id"].as_str().unwrap().to_owned();
    steps.push(tool("search", json!({"query": "validate arguments"})));
    checks.push(Box::new(move |v| {
        let s = structured(v);
        assert_same_hits(&s["hits"], &cli_search);
        assert!(!s["hits"].as_array().unwrap().is_empty());
    }));

    let cli_packet = cli_json(
        ctx,
        &[
            "context",
            "make greet.sh refuse an empty name",
            "--format",
            "json",
        ],
    );
    steps.push(tool(
        "context",
        json!({"task": "make greet.sh refuse an empty name"}),
    ));
    checks.push(Box::new(move |v| {
        let s = structured(v);
        for k in ["budget", "tokens", "cited", "text"] {
            assert_eq!(
                s[k], cli_packet[k],
                "context `{k}` differs from `agentops context --format json`"
            );
        }
        assert!(s.get("explain").is_none());
    }));
    steps.push(tool(
        "context",
        json!({"task": "greeting format", "budget": 40, "explain": true}),
    ));
    checks.push(Box::new(|v| {
        let s = structured(v);
        assert!(s["tokens"].as_u64().unwrap() <= 40);
        assert!(!s["explain"].as_array().unwrap().is_empty());
    }));

    let cli_show = cli_json(ctx, &["knowledge", "show", &first, "--json"]);
    steps.push(tool("get", json!({"id": first})));
    checks.push(Box::new(move |v| {
        assert_eq!(
            structured(v),
            cli_show,
            "get differs from `knowledge show --json`"
        )
    }));

    steps.push(tool(
        "learn",
        json!({"title": "Billing retries need idempotency keys", "body": "## Context\nDouble charges.\n## Solution\nSend an Idempotency-Key; the key sk-live-0123456789abcdefghijklmnopqrstuv stays out.", "tags": ["billing"]}),
    ));
    checks.push(Box::new(|v| {
        let s = structured(v);
        assert!(s["commit"].as_str().is_some(), "{s}");
        assert!(s["warnings"].to_string().contains("redacted"), "{s}");
    }));
    steps.push(tool("feedback", json!({"id": first, "signal": "helpful"})));
    checks.push(Box::new(|v| {
        assert!(structured(v)["utility"].as_f64().unwrap() > 0.0)
    }));

    // Subscribed before the first handoff exists: writing one updates it.
    steps.push(json!({"op": "subscribe", "uri": "agentops://handoff/latest"}));
    checks.push(Box::new(|v| assert!(v.get("thrown").is_none(), "{v}")));
    steps.push(tool(
        "handoff_write",
        json!({"done": "Made greet.sh refuse an empty name.", "next": "Add a --shout flag."}),
    ));
    checks.push(Box::new(|v| {
        assert!(
            structured(v)["id"]
                .as_str()
                .unwrap()
                .starts_with("handoff-")
        )
    }));
    steps.push(tool("handoff_latest", json!({})));
    checks.push(Box::new(|v| {
        let s = structured(v);
        assert!(
            s["body"].as_str().unwrap().contains("Add a --shout flag."),
            "{s}"
        );
    }));

    let cli_gates = cli_json(ctx, &["gate", "run", "tests", "scope", "--json"]);
    steps.push(tool("gate_run", json!({"names": ["tests", "scope"]})));
    checks.push(Box::new(move |v| {
        let s = structured(v);
        assert_eq!(s["ok"], cli_gates["ok"]);
        let verdicts = |x: &Value| -> Vec<(String, String)> {
            x["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["name"].as_str().unwrap().to_owned(),
                        r["verdict"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        assert_eq!(verdicts(&s), verdicts(&cli_gates));
    }));
    let cli_deny = cli_json(ctx, &["gate", "check", "command", "rm -rf /", "--json"]);
    steps.push(tool("gate_check", json!({"command": "rm -rf /"})));
    checks.push(Box::new(move |v| assert_eq!(structured(v), cli_deny)));
    let cli_write = cli_json(ctx, &["gate", "check", "write", "src/greet.sh", "--json"]);
    steps.push(tool("gate_check", json!({"path": "src/greet.sh"})));
    checks.push(Box::new(move |v| assert_eq!(structured(v), cli_write)));

    let cli_runs = cli_json(ctx, &["runs", "--json"]);
    steps.push(tool("runs", json!({})));
    checks.push(Box::new(move |v| {
        assert_eq!(structured(v)["runs"], cli_runs)
    }));
    let cli_run = cli_json(ctx, &["show", run, "--json"]);
    steps.push(tool("run_show", json!({"run": run})));
    checks.push(Box::new(move |v| assert_eq!(structured(v), cli_run)));
    let cli_trace = cli_json(ctx, &["trace", run, "--json"]);
    steps.push(tool("trace", json!({"id": run})));
    checks.push(Box::new(move |v| {
        let s = structured(v);
        assert_eq!(
            s["spans"].as_array().unwrap().len(),
            cli_trace["spans"].as_array().unwrap().len()
        );
        assert_eq!(s["run"], cli_trace["run"]);
    }));
    steps.push(tool("sessions", json!({"limit": 5})));
    checks.push(Box::new(|v| assert!(structured(v)["sessions"].is_array())));
    let cli_stats = cli_json(ctx, &["stats", "--by", "workflow", "--json"]);
    steps.push(tool("stats", json!({"by": "workflow"})));
    checks.push(Box::new(move |v| {
        // The run's workflow; the calls in between add to `(other)`.
        let feature = |x: &Value| {
            x["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["key"] == json!("feature"))
                .cloned()
                .unwrap()
        };
        let (a, b) = (feature(&structured(v)), feature(&cli_stats));
        for k in [
            "input_tokens",
            "output_tokens",
            "llm_calls",
            "runs",
            "gates",
            "gates_passed",
            "steps",
        ] {
            assert_eq!(
                a[k], b[k],
                "stats `{k}` differs from `agentops stats --json`"
            );
        }
        assert!((a["cost_usd"].as_f64().unwrap() - b["cost_usd"].as_f64().unwrap()).abs() < 1e-9);
    }));
    steps.push(tool("status", json!({"window": "7d"})));
    checks.push(Box::new(|v| assert!(structured(v).is_object())));

    // Tool errors name the field; the server goes on.
    steps.push(tool("search", json!({"query": 7})));
    checks.push(Box::new(|v| {
        assert_eq!(v["isError"], json!(true));
        assert_eq!(v["_meta"]["agentops/field"], json!("query"));
        assert!(
            v["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("argument `query`: expected a string")
        );
    }));
    steps.push(tool("get", json!({"id": "learning-20990101-nothing"})));
    checks.push(Box::new(|v| assert_eq!(v["isError"], json!(true))));

    // Resources and prompts.
    steps.push(json!({"op": "listResourceTemplates"}));
    checks.push(Box::new(|v| {
        let t = v["resourceTemplates"].to_string();
        assert!(
            t.contains("agentops://entry/{id}") && t.contains("agentops://run/{id}"),
            "{t}"
        );
    }));
    steps.push(json!({"op": "listResources"}));
    checks.push(Box::new(|v| {
        let uris = v["resources"].to_string();
        assert!(
            uris.contains("agentops://handoff/latest") && uris.contains("agentops://entry/"),
            "{uris}"
        );
    }));
    steps.push(json!({"op": "readResource", "uri": format!("agentops://entry/{first}")}));
    checks.push(Box::new(|v| {
        let c = &v["contents"][0];
        assert_eq!(c["mimeType"], json!("text/markdown"));
        assert!(c["text"].as_str().unwrap().starts_with("---\n"), "{c}");
    }));
    steps.push(json!({"op": "readResource", "uri": "agentops://handoff/latest"}));
    checks.push(Box::new(|v| {
        assert!(
            v["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("--shout")
        )
    }));
    steps.push(json!({"op": "readResource", "uri": format!("agentops://run/{run}")}));
    checks.push(Box::new(|v| {
        assert!(
            v["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("\"workflow\": \"feature\"")
        )
    }));
    steps.push(json!({"op": "readResource", "uri": "agentops://nothing/here"}));
    checks.push(Box::new(|v| assert_eq!(v["code"], json!(-32002), "{v}")));
    steps.push(json!({"op": "listPrompts"}));
    checks.push(Box::new(|v| {
        let names: Vec<&str> = v["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["continue", "record-learning", "review-run"]);
    }));
    steps.push(json!({"op": "getPrompt", "name": "continue"}));
    checks.push(Box::new(|v| {
        let t = v["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(t.contains("Add a --shout flag."), "{t}");
    }));
    steps.push(
        json!({"op": "getPrompt", "name": "record-learning", "arguments": {"topic": "retries"}}),
    );
    checks.push(Box::new(|v| {
        let t = v["messages"][0]["content"]["text"].as_str().unwrap();
        for s in ["## Context", "## Solution", "## Learning", "## Impact"] {
            assert!(t.contains(s));
        }
    }));
    steps.push(json!({"op": "getPrompt", "name": "review-run", "arguments": {"run": run}}));
    checks.push(Box::new(|v| {
        assert!(
            v["messages"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .contains("## Trace")
        )
    }));
    steps.push(json!({"op": "getPrompt", "name": "review-run", "arguments": {}}));
    checks.push(Box::new(|v| {
        assert!(
            v["thrown"].as_str().unwrap().contains("`run` is required"),
            "{v}"
        )
    }));
    // Time for the last notifications to arrive.
    steps.push(json!({"op": "sleep", "ms": 1500}));
    checks.push(Box::new(|_| {}));
    (Value::Array(steps), checks)
}

fn check_all(out: &Value, checks: &[Check]) {
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), checks.len());
    for (i, (r, c)) in results.iter().zip(checks).enumerate() {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c(r)));
        assert!(caught.is_ok(), "step {i} failed on {r}");
    }
}

#[test]
fn sdk_client_drives_every_tool_resource_and_prompt_over_stdio() {
    let Some(sdk) = sdk() else { return };
    let (ctx, run) = project();
    let (steps, checks) = every_step(&ctx, &run);
    let out = ts(
        &ctx,
        &sdk,
        &["stdio", BIN, ctx.path("").to_str().unwrap()],
        &steps,
    );
    check_all(&out, &checks);
    assert!(out["instructions"].as_str().unwrap().contains("context"));
    // The memory writes told the client the entry list changed.
    assert!(
        out["notifications"]
            .to_string()
            .contains("notifications/resources/list_changed"),
        "{}",
        out["notifications"]
    );
    assert!(
        out["notifications"]
            .to_string()
            .contains("notifications/resources/updated agentops://handoff/latest"),
        "{}",
        out["notifications"]
    );
    // The secret never reached the file or git.
    let entries = ctx.git(&["log", "-p", "--all"]);
    assert!(!entries.contains("sk-live-0123456789"), "secret in git");
    assert!(entries.contains("Billing retries need idempotency keys"));
    // Each call is a span of the calling session, and `get` counted as used.
    let sessions = cli_json(&ctx, &["trace", &mcp_session(&ctx), "--json"]);
    let names: Vec<String> = sessions["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.iter().any(|n| n.contains("mcp:agentops/search")),
        "{names:?}"
    );
}

/// The session id the server journaled its calls under (the test client
/// names none, so it is the connection's `mcp-…`).
fn mcp_session(ctx: &TestContext) -> String {
    let db = ctx.git_dir().join("agentops/state.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT run_id FROM events WHERE run_id LIKE 'mcp-%' ORDER BY seq DESC LIMIT 1",
        [],
        |r| r.get::<_, String>(0),
    )
    .unwrap()
}

/// `agentops mcp --http 0 --json`: its URL and token, from its first line.
fn http_server(ctx: &TestContext, extra_env: &[(&str, &str)]) -> (Child, String, String) {
    let mut c = ctx.command(&["mcp", "--http", "0", "--json"]);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let token = v["token"].as_str().unwrap_or("").to_owned();
    (child, v["url"].as_str().unwrap().to_owned(), token)
}

/// One raw HTTP/1.1 POST; the status code and body.
fn post(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let mut req = format!(
        "POST /{path} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, resp)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

#[test]
fn http_needs_the_token_and_refuses_foreign_origins_and_hosts() {
    let ctx = common::demo_project(true);
    let (mut child, url, token) = http_server(&ctx, &[]);
    assert_eq!(token.len(), 64, "a 256-bit token is printed");
    let bearer = format!("Bearer {token}");
    assert_eq!(post(&url, &[], INIT).0, 401);
    assert_eq!(
        post(&url, &[("Authorization", "Bearer wrong")], INIT).0,
        401
    );
    let (code, body) = post(
        &url,
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        INIT,
    );
    assert_eq!(code, 403, "{body}");
    let (code, _) = post(
        &url,
        &[("Authorization", &bearer), ("Host", "evil.example:80")],
        INIT,
    );
    assert_eq!(code, 403);
    let (code, body) = post(&url, &[("Authorization", &bearer)], INIT);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("2025-11-25"), "{body}");
    let _ = child.kill();
    let _ = child.wait();

    // Beyond loopback only with --bind.
    let r = ctx.run(&["mcp", "--http", "0.0.0.0:0"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--bind"), "{}", r.stderr);
}

#[test]
fn sdk_client_over_http_matches_the_cli_and_eight_clients_at_once() {
    let Some(sdk) = sdk() else { return };
    let (ctx, run) = project();
    let (mut child, url, _) = http_server(&ctx, &[("AGENTOPS_MCP_TOKEN", "test-token-123")]);
    let (steps, checks) = every_step(&ctx, &run);
    let out = ts(&ctx, &sdk, &["http", &url, "test-token-123"], &steps);
    check_all(&out, &checks);
    // Eight clients at once, each searching and reading: no error.
    let search = json!([
        {"op": "callTool", "name": "search", "arguments": {"query": "greeting"}},
        {"op": "callTool", "name": "get", "arguments": {"id": "learning-missing"}},
        {"op": "listResources"},
    ]);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (sdk, url, steps) = (sdk.clone(), url.clone(), search.clone());
            let dir = ctx.path("");
            std::thread::spawn(move || {
                let mut c = Command::new("node");
                c.arg(client_script())
                    .args(["http", &url, "test-token-123"])
                    .current_dir(dir)
                    .env("AGENTOPS_MCP_SDK", sdk)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped());
                let mut ch = c.spawn().unwrap();
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(steps.to_string().as_bytes())
                    .unwrap();
                let o = ch.wait_with_output().unwrap();
                assert!(o.status.success());
                serde_json::from_slice::<Value>(&o.stdout).unwrap()
            })
        })
        .collect();
    for h in handles {
        let v = h.join().unwrap();
        let r = &v["results"];
        assert!(
            !r[0]["structuredContent"]["hits"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(r[1]["isError"], json!(true));
        assert!(r[2]["resources"].is_array(), "{v}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A raw JSON-RPC client on the server's stdio.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    notifications: Vec<Value>,
}

impl Raw {
    fn start(ctx: &TestContext) -> Self {
        let mut child = ctx
            .command(&["mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&l)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines: rx,
            notifications: Vec::new(),
        }
    }

    fn send(&mut self, text: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    /// The answer to request `id` (notifications on the way are kept).
    fn answer(&mut self, id: &Value) -> Value {
        loop {
            let v = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("an answer");
            if &v["id"] == id {
                return v;
            }
            self.notifications.push(v);
        }
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        self.answer(&json!(id))
    }

    fn init(&mut self, version: &str) -> Value {
        let r = self.call(
            1,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}),
        );
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        r
    }
}

#[test]
fn bad_input_gets_errors_naming_the_field_and_the_server_goes_on() {
    let ctx = common::demo_project(true);
    let mut s = Raw::start(&ctx);
    assert_eq!(
        s.init("2025-11-25")["result"]["protocolVersion"],
        json!("2025-11-25")
    );

    // Malformed JSON, then an unknown method: the server answers the next request.
    s.send("{this is not json");
    let r = s.call(2, "no/such/method", json!({}));
    assert_eq!(r["error"]["code"], json!(-32601), "{r}");
    // Wrong parameter types.
    let r = s.call(
        3,
        "tools/call",
        json!({"name": "search", "arguments": {"query": ["a"], "limit": "ten"}}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("argument `query`")
    );
    let r = s.call(
        4,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "x", "limit": "ten"}}),
    );
    assert_eq!(
        r["result"]["_meta"]["agentops/field"],
        json!("limit"),
        "{r}"
    );
    let r = s.call(
        5,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "x", "colour": 1}}),
    );
    assert_eq!(
        r["result"]["_meta"]["agentops/field"],
        json!("colour"),
        "{r}"
    );
    let r = s.call(6, "tools/call", json!({"name": "nope", "arguments": {}}));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tool `nope`"),
        "{r}"
    );
    let r = s.call(7, "tools/call", json!({"name": 5}));
    assert!(r.get("error").is_some(), "{r}");
    // A 10 MB argument: a tool error naming it, nothing written.
    let before = ctx.git(&["rev-list", "--count", "HEAD"]);
    let huge = "x".repeat(10 * 1024 * 1024);
    let r = s.call(
        8,
        "tools/call",
        json!({"name": "learn", "arguments": {"title": "Huge", "body": huge}}),
    );
    assert_eq!(
        r["result"]["_meta"]["agentops/field"],
        json!("body"),
        "{}",
        &r.to_string()[..300.min(r.to_string().len())]
    );
    assert_eq!(ctx.git(&["rev-list", "--count", "HEAD"]), before);
    // A learn with a key in it: redacted before it is stored.
    let r = s.call(9, "tools/call", json!({"name": "learn", "arguments": {"title": "Deploy key rotation", "body": "Rotated AKIAIOSFODNN7EXAMPLE today."}}));
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    let path = r["result"]["structuredContent"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !std::fs::read_to_string(ctx.path(&path))
            .unwrap()
            .contains("AKIAIOSFODNN7EXAMPLE")
    );
    let db = std::fs::read(ctx.git_dir().join("agentops/state.db")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&db).contains("AKIAIOSFODNN7EXAMPLE"),
        "secret in the journal"
    );
    // Still serving.
    let r = s.call(
        10,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "deploy key rotation"}}),
    );
    assert_eq!(
        r["result"]["structuredContent"]["hits"][0]["title"],
        json!("Deploy key rotation"),
        "{r}"
    );
    drop(s.stdin.take());
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn calls_during_concurrent_memory_writes_and_a_client_gone_mid_call() {
    let ctx = common::demo_project(true);
    let mut s = Raw::start(&ctx);
    s.init("2025-06-18");
    // Another process writes memory while the server searches and writes.
    let writer = {
        let mut c = ctx.command(&[
            "learn",
            "Written from the command line",
            "--body",
            "Concurrent write from another process.",
        ]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    };
    for i in 0..5u64 {
        let r = s.call(
            100 + i,
            "tools/call",
            json!({"name": "learn", "arguments": {"title": format!("Server write number {i}"), "body": "Written through MCP while another process writes."}}),
        );
        assert_eq!(r["result"]["isError"], json!(false), "{r}");
        let r = s.call(
            200 + i,
            "tools/call",
            json!({"name": "search", "arguments": {"query": "written"}}),
        );
        assert_eq!(r["result"]["isError"], json!(false), "{r}");
    }
    assert!(writer.wait_with_output().unwrap().status.success());
    // Both kinds of write are there, whole, and the server finds them.
    let r = s.call(
        300,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "command line concurrent", "limit": 20}}),
    );
    assert!(
        r.to_string().contains("Written from the command line"),
        "{r}"
    );
    let listed = cli_json(&ctx, &["knowledge", "list", "--json"]);
    assert_eq!(
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["title"]
                .as_str()
                .unwrap()
                .starts_with("Server write number"))
            .count(),
        5
    );
    assert_eq!(ctx.run(&["doctor"]).code, 0);
    // A client that sends a write and disconnects before the answer: no half entry.
    s.send(&json!({"jsonrpc": "2.0", "id": 400, "method": "tools/call", "params": {"name": "learn", "arguments": {"title": "Left mid call", "body": "The client went away."}}}).to_string());
    drop(s.stdin.take());
    let _ = s.child.wait();
    let r = ctx.run(&["doctor"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Whole or not at all: nothing under .agents/ is left uncommitted, and
    // if the entry was written it is committed and reads back.
    let status = ctx.git(&["status", "--porcelain", ".agents"]);
    assert!(status.trim().is_empty(), "half a write left: {status}");
    let listed = cli_json(&ctx, &["knowledge", "list", "--json"]);
    if let Some(e) = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == json!("Left mid call"))
    {
        let path = e["path"].as_str().unwrap();
        assert!(
            !ctx.git(&["log", "--oneline", "--", path]).trim().is_empty(),
            "{path} not committed"
        );
        assert_eq!(e["body"].as_str().unwrap().trim(), "The client went away.");
    }
}

#[test]
fn protocol_revisions_are_negotiated() {
    let ctx = common::demo_project(true);
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut s = Raw::start(&ctx);
        assert_eq!(s.init(v)["result"]["protocolVersion"], json!(v));
        let r = s.call(2, "tools/list", json!({}));
        assert_eq!(r["result"]["tools"].as_array().unwrap().len(), 15);
    }
    // An unknown future revision gets the newest one with a handshake.
    let mut s = Raw::start(&ctx);
    assert_eq!(
        s.init("2099-01-01")["result"]["protocolVersion"],
        json!("2025-11-25")
    );
    // 2026-07-28: no handshake; discovery, then per-request metadata.
    let mut s = Raw::start(&ctx);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let r = s.call(1, "server/discover", json!({"_meta": meta}));
    let versions = r["result"].to_string();
    assert!(
        versions.contains("2026-07-28") && versions.contains("2025-11-25"),
        "{r}"
    );
    let r = s.call(
        2,
        "tools/call",
        json!({"_meta": meta, "name": "search", "arguments": {"query": "greeting"}}),
    );
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    assert!(
        !r["result"]["structuredContent"]["hits"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{r}"
    );
}

#[test]
fn tools_list_schema_snapshot() {
    insta::assert_json_snapshot!("mcp_tools_list", agentops_mcp::tool_list());
}

#[test]
fn resources_list_is_paginated() {
    let ctx = common::demo_project(false);
    for i in 0..230 {
        ctx.write(
            &format!(".agents/learnings/note-{i:03}.md"),
            &format!(
                "---\nid: note-{i:03}\ntype: learning\ntitle: Note {i}\n---\n\nBody of note {i}.\n"
            ),
        );
    }
    assert_eq!(ctx.run(&["index", "-q"]).code, 0);
    let mut s = Raw::start(&ctx);
    s.init("2025-11-25");
    let first = s.call(2, "resources/list", json!({}));
    let page = first["result"]["resources"].as_array().unwrap();
    assert_eq!(page.len(), 200, "{first}");
    let cursor = first["result"]["nextCursor"].as_str().unwrap().to_owned();
    let second = s.call(3, "resources/list", json!({"cursor": cursor}));
    let rest = second["result"]["resources"].as_array().unwrap();
    assert_eq!(rest.len(), 30);
    assert!(second["result"].get("nextCursor").is_none());
    let mut uris: Vec<&str> = page
        .iter()
        .chain(rest)
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    uris.sort();
    uris.dedup();
    assert_eq!(uris.len(), 230);
    let bad = s.call(4, "resources/list", json!({"cursor": "xyz"}));
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("cursor"),
        "{bad}"
    );
}

#[test]
fn doctor_checks_that_the_registered_server_answers_initialize() {
    let ctx = common::demo_project(true);
    let home = ctx.root.join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let env = [
        ("HOME", home.display().to_string()),
        ("CODEX_HOME", home.join(".codex").display().to_string()),
    ];
    let r = ctx.run_env(&["hooks", "install", "claude"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("registered the agentops MCP server for claude"),
        "{}",
        r.stdout
    );
    let r = ctx.run_env(&["hooks", "install", "codex", "--scope", "user"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = ctx.run_env(&["doctor"], &env);
    let said = format!("{}{}", d.stdout, d.stderr);
    assert!(
        said.contains("PASS  mcp (claude)") && said.contains("answers initialize (2025-11-25)"),
        "{said}"
    );
    assert!(said.contains("PASS  mcp (codex)"), "{said}");
    // A command that is gone: FAIL with the fix.
    let mcp = ctx.path(".mcp.json");
    let text = std::fs::read_to_string(&mcp).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let cmd = v["mcpServers"]["agentops"]["command"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(&mcp, text.replace(&cmd, "/nonexistent/agentops")).unwrap();
    let d = ctx.run_env(&["doctor", "--json"], &env);
    assert_eq!(d.code, 1);
    let v: Value = serde_json::from_str(&d.stdout).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mcp (claude)")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "FAIL", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("does not start"),
        "{check}"
    );
    // Uninstall takes the registrations out again, exactly.
    std::fs::write(&mcp, &text).unwrap();
    assert_eq!(ctx.run_env(&["hooks", "uninstall", "claude"], &env).code, 0);
    assert!(!mcp.exists());
    assert_eq!(
        ctx.run_env(&["hooks", "uninstall", "codex", "--scope", "user"], &env)
            .code,
        0
    );
    let cfg = std::fs::read_to_string(home.join(".codex/config.toml")).unwrap_or_default();
    assert!(!cfg.contains("mcp_servers"), "{cfg}");
}
