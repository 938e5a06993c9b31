//! `agentops ui`: every route over real HTTP on loopback (status, content
//! type, token, cookie, Host, Origin, CSRF), the actions, secrets never
//! shown, and a real headless Chromium (the distribution's package, driven
//! by puppeteer-core) loading every page of a journal made by a workflow
//! run and a Claude Code session, clicking approve, and watching a page
//! update live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentops_runner::demo;
use agentops_testkit::TestContext;
use agentops_testkit::model::ScriptedServer;
use serde_json::Value;

mod common;

use common::{BIN, GOAL, run_id};

const SESSION: &str = "7f3c2a10-5b2e-4c1e-9a57-2f0d8e6b1c44";
/// A key the redaction rules know (`github-token`).
const SECRET: &str = "ghp_9Zq2XkR7mB4nT8vW1yL5cD3fH6jP0sA2eG4u";

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/fixtures")
}

/// A hook fixture with its paths moved into the test repository.
fn event(ctx: &TestContext, name: &str) -> String {
    let text = std::fs::read_to_string(fixtures().join("claude-code/hooks").join(name)).unwrap();
    let transcript = ctx.path("transcript.jsonl");
    text.replace(
        &format!("/home/dev/.claude/projects/-home-dev-shop/{SESSION}.jsonl"),
        transcript.to_str().unwrap(),
    )
    .replace("/home/dev/shop", ctx.root.to_str().unwrap())
}

/// The demo project with an approval gate on its review phase; one run
/// paused for that approval; a Claude Code session (hooks: a prompt, a
/// denied command, an edit, a stop; its stream ingested for tokens and
/// cost); a learning whose body held a key.
fn journal() -> (TestContext, ScriptedServer, String) {
    let ctx = common::demo_project(true);
    let cfg = ctx.path(".agents/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[gates.deploy]\nkind = \"approval\"\ndescription = \"ship it\"\n");
    std::fs::write(&cfg, text).unwrap();
    let wf = ctx.path(".agents/workflows/feature.toml");
    let text = std::fs::read_to_string(&wf).unwrap().replace(
        "needs = [\"implement\"]\n",
        "needs = [\"implement\"]\ngates = [\"deploy\"]\n",
    );
    std::fs::write(&wf, text).unwrap();
    ctx.git(&["commit", "-qam", "review waits for a person"]);
    let server = ScriptedServer::start(demo::script()).unwrap();
    let r = ctx.run_env(
        &["run", "feature", GOAL],
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    assert_eq!(r.code, 3, "paused for approval\n{}\n{}", r.stdout, r.stderr);
    std::fs::copy(
        fixtures().join("claude-code/transcript-sample.jsonl"),
        ctx.path("transcript.jsonl"),
    )
    .unwrap();
    for name in [
        "session-start-startup.json",
        "user-prompt-submit.json",
        "pre-tool-use-bash-dangerous.json",
        "post-tool-use.json",
        "user-prompt-submit.json",
        "stop.json",
    ] {
        let input = event(&ctx, name).replace(
            "Add rate limiting to the /login endpoint",
            &format!("Add rate limiting; the token is {SECRET}"),
        );
        let r = ctx.run_stdin(&["hook", "claude"], input.as_bytes());
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    }
    let stream = fixtures().join("claude-code/stream-json/run-with-tool.jsonl");
    ctx.run(&["ingest", "claude-stream", stream.to_str().unwrap()])
        .ok();
    ctx.run(&[
        "learn",
        "Rotate the deploy token",
        "--body",
        &format!("The old token {SECRET} leaked in a log; rotate it every 90 days."),
        "--tag",
        "deploy",
    ])
    .ok();
    let id = run_id(&ctx);
    (ctx, server, id)
}

/// A running `agentops ui`.
struct Ui {
    child: Child,
    addr: SocketAddr,
    token: String,
    url: String,
}

impl Ui {
    fn start(ctx: &TestContext, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["ui", "--json"])
            .current_dir(&ctx.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        Self {
            child,
            addr: v["addr"].as_str().unwrap().parse().unwrap(),
            token: v["token"].as_str().unwrap().to_owned(),
            url: v["url"].as_str().unwrap().to_owned(),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// A request with the token as a bearer header.
    fn get(&self, path: &str) -> Resp {
        let auth = format!("Bearer {}", self.token);
        http(
            self.addr,
            "GET",
            path,
            &[("Host", &self.host()), ("Authorization", &auth)],
            "",
        )
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTP/1.1 by hand, so that every header (Host among them) is the test's.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn csrf(page: &str) -> String {
    let at = page.find("<meta name=\"csrf\" content=\"").unwrap() + 27;
    page[at..at + 64].to_owned()
}

fn stats_cost(ctx: &TestContext) -> f64 {
    let v: Value =
        serde_json::from_str(ctx.run(&["stats", "--json", "--since", "30d"]).ok()).unwrap();
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["cost_usd"].as_f64().unwrap_or(0.0))
        .sum()
}

fn trace_spans(ctx: &TestContext, id: &str) -> usize {
    let v: Value = serde_json::from_str(ctx.run(&["trace", id, "--json"]).ok()).unwrap();
    v["spans"].as_array().unwrap().len()
}

fn wait_status(ctx: &TestContext, id: &str, want: &str) -> String {
    let t = Instant::now();
    loop {
        let v: Value = serde_json::from_str(ctx.run(&["show", id, "--json"]).ok()).unwrap();
        let st = v["status"].as_str().unwrap_or("").to_owned();
        if st == want || t.elapsed() > Duration::from_secs(90) {
            return st;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_route_answers_with_its_type_and_only_with_the_token() {
    let (ctx, server, id) = journal();
    let ui = Ui::start(
        &ctx,
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    let entry: Value =
        serde_json::from_str(ctx.run(&["search", "rotate deploy token", "--json"]).ok()).unwrap();
    let entry_id = entry[0]["id"].as_str().unwrap().to_owned();
    let html = "text/html; charset=utf-8";
    let routes: Vec<(String, u16, &str)> = vec![
        ("/runs".into(), 200, html),
        (
            "/runs?status=paused&workflow=feature&since=7d".into(),
            200,
            html,
        ),
        (format!("/runs/{id}"), 200, html),
        (format!("/runs/{}", &id[..10]), 200, html),
        ("/sessions".into(), 200, html),
        (format!("/sessions/{SESSION}"), 200, html),
        ("/cost".into(), 200, html),
        ("/cost?since=7d".into(), 200, html),
        ("/knowledge".into(), 200, html),
        (
            "/knowledge?q=greeting+format&type=learning".into(),
            200,
            html,
        ),
        (format!("/knowledge/{entry_id}"), 200, html),
        ("/alerts".into(), 200, html),
        ("/alerts?window=7d".into(), 200, html),
        ("/api/seq".into(), 200, "application/json"),
        ("/assets/app.css".into(), 200, "text/css; charset=utf-8"),
        (
            "/assets/app.js".into(),
            200,
            "text/javascript; charset=utf-8",
        ),
        ("/assets/icon.svg".into(), 200, "image/svg+xml"),
        // Errors are pages too, with the message.
        ("/nowhere".into(), 404, html),
        ("/runs/no-such-run".into(), 500, html),
        ("/knowledge/l-nope".into(), 500, html),
        ("/cost?since=yesterday".into(), 400, html),
        ("/knowledge?q=x&type=novel".into(), 400, html),
        ("/alerts?window=0s".into(), 400, html),
    ];
    let mut pages = String::new();
    for (path, status, ctype) in &routes {
        let r = ui.get(path);
        assert_eq!(r.status, *status, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some(*ctype), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert!(
            r.header("content-security-policy").is_some_and(
                |c| c.contains("default-src 'none'") && c.contains("frame-ancestors 'none'")
            ),
            "{path}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        if *status >= 400 && ctype == &html {
            assert!(r.body.contains("id=\"error\""), "{path}: {}", r.body);
        }
        pages.push_str(&r.body);
        // Without the token: 401, whatever the route (assets included).
        let bare = http(ui.addr, "GET", path, &[("Host", &ui.host())], "");
        assert_eq!(bare.status, 401, "{path}");
        assert!(bare.header("www-authenticate").is_some());
        let wrong = http(
            ui.addr,
            "GET",
            path,
            &[("Host", &ui.host()), ("Authorization", "Bearer 00")],
            "",
        );
        assert_eq!(wrong.status, 401, "{path}");
        // A foreign Host (DNS rebinding) is refused before anything else.
        let auth = format!("Bearer {}", ui.token);
        let rebound = http(
            ui.addr,
            "GET",
            path,
            &[("Host", "attacker.example:80"), ("Authorization", &auth)],
            "",
        );
        assert_eq!(rebound.status, 403, "{path}");
    }
    // What the pages show is what the CLI says.
    let runs = ui.get("/runs").body;
    assert!(
        runs.contains(&format!("data-run=\"{id}\" data-status=\"paused\"")),
        "{runs}"
    );
    assert!(runs.contains("approval"), "the pause's reason is beside it");
    assert!(
        ui.get("/runs?status=completed")
            .body
            .contains("data-total=\"0\"")
    );
    let run = ui.get(&format!("/runs/{id}")).body;
    assert_eq!(
        run.matches("<rect class=\"span").count(),
        trace_spans(&ctx, &id),
        "one bar per span"
    );
    assert!(run.contains("data-pending=\"deploy\""));
    // The pause says what to run, the run id intact (an id, not a secret).
    assert!(
        run.contains(&format!("agentops approve {id} --gate deploy")),
        "{run}"
    );
    assert!(run.contains("data-action=\"approve\"") && run.contains("data-action=\"reject\""));
    assert!(run.contains("class=\"checkpoint\""), "checkpoints listed");
    let cost = ui.get("/cost?since=30d").body;
    let total = stats_cost(&ctx);
    assert!(total > 0.0);
    assert!(
        cost.contains(&format!("id=\"cost-total\" data-total=\"{total}\"")),
        "cost total {total} as in stats --json"
    );
    let seq: Value = serde_json::from_str(&ui.get("/api/seq").body).unwrap();
    assert!(seq["seq"].as_i64().unwrap() > 0);
    let session = ui.get(&format!("/sessions/{SESSION}")).body;
    assert!(session.contains("class=\"denial\""), "the denied command");
    assert!(
        session.contains("<rect class=\"b-"),
        "a context-guard reading"
    );
    let search = ui.get("/knowledge?q=greeting+format").body;
    let cli: Value = serde_json::from_str(
        ctx.run(&["search", "greeting format", "--json", "--limit", "20"])
            .ok(),
    )
    .unwrap();
    let want: Vec<String> = cli
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("data-id=\"{}\"", h["id"].as_str().unwrap()))
        .collect();
    let mut at = 0;
    for w in &want {
        let i = search[at..]
            .find(w.as_str())
            .unwrap_or_else(|| panic!("{w} in order"));
        at += i + w.len();
    }
    // The key never shows, on any page; the entry shows it redacted.
    assert!(!pages.contains(SECRET), "a secret reached a page");
    let e = ui.get(&format!("/knowledge/{entry_id}")).body;
    assert!(e.contains("[REDACTED:github-token]"), "{e}");
    assert!(e.contains("class=\"commit\""), "history");
    // PUT and the like.
    let auth = format!("Bearer {}", ui.token);
    let put = http(
        ui.addr,
        "PUT",
        "/runs",
        &[("Host", &ui.host()), ("Authorization", &auth)],
        "",
    );
    assert_eq!(put.status, 405);
    drop(server);
}

#[test]
fn the_token_moves_to_an_httponly_cookie_and_posts_need_origin_and_csrf() {
    let (ctx, server, id) = journal();
    let ui = Ui::start(
        &ctx,
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    let path = ui.url.trim_start_matches(&ui.origin()).to_owned();
    let first = http(ui.addr, "GET", &path, &[("Host", &ui.host())], "");
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |method: &str, path: &str, extra: &[(&str, &str)], body: &str| {
        let mut h = vec![("Host", ui.host()), ("Cookie", pair.clone())];
        for (k, v) in extra {
            h.push((k, (*v).to_owned()));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(ui.addr, method, path, &h, body)
    };
    let page = with_cookie("GET", &format!("/runs/{id}"), &[], "");
    assert_eq!(page.status, 200);
    let token = csrf(&page.body);
    let origin = ui.origin();
    let post = |extra: &[(&str, &str)], body: &str| {
        with_cookie("POST", &format!("/runs/{id}/approve"), extra, body)
    };
    let form = format!("csrf={token}&gate=deploy");
    // No Origin, a foreign one, no CSRF token, a wrong one: refused.
    assert_eq!(post(&[], &form).status, 403);
    assert_eq!(
        post(&[("Origin", "http://evil.example")], &form).status,
        403
    );
    assert_eq!(post(&[("Origin", &origin)], "gate=deploy").status, 403);
    assert_eq!(
        post(&[("Origin", &origin)], "csrf=00&gate=deploy").status,
        403
    );
    // Nothing was decided.
    assert!(
        ctx.run(&["gate", "pending"]).ok().contains("deploy"),
        "still pending"
    );
    // Without the session token, even a well-formed POST is refused.
    let bare = http(
        ui.addr,
        "POST",
        &format!("/runs/{id}/approve"),
        &[("Host", &ui.host()), ("Origin", &origin)],
        &form,
    );
    assert_eq!(bare.status, 401);
    // An unknown action, and one that cannot apply, say so.
    let odd = with_cookie(
        "POST",
        &format!("/runs/{id}/explode"),
        &[("Origin", &origin)],
        &format!("csrf={token}"),
    );
    assert_eq!(odd.status, 400, "{}", odd.body);
    let land = with_cookie(
        "POST",
        &format!("/runs/{id}/land"),
        &[("Origin", &origin)],
        &format!("csrf={token}"),
    );
    assert_eq!(land.status, 409, "a paused run cannot land: {}", land.body);
    // The real thing: approved, resumed by a process of its own, completed.
    let ok = post(&[("Origin", &origin)], &form);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(
        ok.header("location")
            .unwrap()
            .starts_with(&format!("/runs/{id}?note="))
    );
    assert_eq!(wait_status(&ctx, &id, "completed"), "completed");
    assert_eq!(ctx.run(&["gate", "pending"]).ok(), "no approvals waiting\n");
    let again = post(&[("Origin", &origin)], &form);
    assert_eq!(again.status, 409, "nothing waits any more");
    // Land, from the page: the same library call as `agentops land`.
    let page = with_cookie("GET", &format!("/runs/{id}"), &[], "");
    assert!(page.body.contains("data-action=\"land\""));
    let landed = with_cookie(
        "POST",
        &format!("/runs/{id}/land"),
        &[("Origin", &origin)],
        &format!("csrf={}", csrf(&page.body)),
    );
    assert_eq!(landed.status, 303, "{}", landed.body);
    let v: Value = serde_json::from_str(ctx.run(&["show", &id, "--json"]).ok()).unwrap();
    assert_eq!(v["status"], "landed");
    // The dashboard kept its rollup current from the events the resumed
    // run wrote: its total is still the store's (past its 1 s refresh).
    std::thread::sleep(Duration::from_millis(1_100));
    let cost = with_cookie("GET", "/cost?since=30d", &[], "").body;
    let total = stats_cost(&ctx);
    assert!(
        cost.contains(&format!("id=\"cost-total\" data-total=\"{total}\"")),
        "cost total {total} after the run completed"
    );
    let runs = with_cookie("GET", "/runs", &[], "").body;
    assert!(runs.contains(&format!("data-run=\"{id}\" data-status=\"landed\"")));
    // The run's page was built before the run went on; its spans were
    // brought up to date from the events after: still `agentops trace`'s.
    let page = with_cookie("GET", &format!("/runs/{id}"), &[], "").body;
    assert_eq!(
        page.matches("<rect class=\"span").count(),
        trace_spans(&ctx, &id),
        "one bar per span after the run went on"
    );
    drop(server);
}

#[test]
fn loopback_unless_bind_and_a_clear_error_outside_a_repository() {
    let ctx = TestContext::empty(BIN);
    let r = ctx.run(&["ui"]);
    assert_ne!(r.code, 0);
    assert!(
        !r.stderr.is_empty() && !r.stderr.contains("panicked"),
        "{}",
        r.stderr
    );
    let ctx = common::demo_project(false);
    let r = ctx.run(&["ui", "--bind", "not-an-address"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--bind not-an-address"), "{}", r.stderr);
    // --bind beyond loopback warns, and then any Host is served (the token
    // is the guard).
    let mut child = Command::new(BIN)
        .args(["ui", "--json", "--bind", "0.0.0.0"])
        .current_dir(&ctx.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let port: u16 = v["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let auth = format!("Bearer {}", v["token"].as_str().unwrap());
    let r = http(
        addr,
        "GET",
        "/runs",
        &[("Host", "box.lan:8080"), ("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 200);
    let _ = child.kill();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = child.wait();
    assert!(err.contains("beyond loopback"), "{err}");
}

/// The browser test: skipped without Chromium and puppeteer-core (set
/// AGENTOPS_CHROMIUM and AGENTOPS_PUPPETEER; `.ci/run` installs both),
/// failing instead when AGENTOPS_REQUIRE_BROWSER=1.
#[test]
fn a_real_browser_loads_every_page_approves_and_sees_live_updates() {
    let chromium = std::env::var("AGENTOPS_CHROMIUM")
        .ok()
        .filter(|c| !c.is_empty());
    let puppeteer = std::env::var("AGENTOPS_PUPPETEER")
        .ok()
        .filter(|c| !c.is_empty());
    let (Some(chromium), Some(puppeteer)) = (chromium, puppeteer) else {
        assert!(
            std::env::var("AGENTOPS_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AGENTOPS_REQUIRE_BROWSER=1 but AGENTOPS_CHROMIUM or AGENTOPS_PUPPETEER is not set"
        );
        eprintln!("skipped: set AGENTOPS_CHROMIUM and AGENTOPS_PUPPETEER to run the browser test");
        return;
    };
    let (ctx, server, id) = journal();
    let spans = trace_spans(&ctx, &id);
    let total = stats_cost(&ctx);
    let query = "greeting format";
    let cli: Value =
        serde_json::from_str(ctx.run(&["search", query, "--json", "--limit", "20"]).ok()).unwrap();
    let hits: Vec<String> = cli
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    let ui = Ui::start(
        &ctx,
        &[("AGENTOPS_LLM_OPENAI_BASE_URL", server.openai_base())],
    );
    // Screenshots are artifacts of the test run (docs/ui.md shows them).
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let input = serde_json::json!({
        "url": ui.url, "chromium": chromium, "shots": shots, "bin": BIN,
        "repo": ctx.root, "hook_input": event(&ctx, "post-tool-use.json"),
        "paused_run": id, "session": SESSION, "query": query,
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/browser.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(input.to_string())
        .env("AGENTOPS_PUPPETEER", &puppeteer)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let p = &v["pages"];
    assert_eq!(v["console_errors"], serde_json::json!([]), "{v:#}");
    // The cookie is HttpOnly; the token left the address bar.
    assert!(v["cookie"][0]["httpOnly"].as_bool().unwrap(), "{v:#}");
    assert!(
        !p["runs"]["url"].as_str().unwrap().contains("token="),
        "{v:#}"
    );
    assert_eq!(p["runs"]["rows"], 1, "{v:#}");
    assert_eq!(p["runs"]["first_status"], "paused");
    // The waterfall: one bar per span, as many as `agentops trace`.
    assert_eq!(p["run"]["bars"], spans, "{v:#}");
    assert_eq!(p["run"]["rows"], spans);
    assert_eq!(p["run"]["declared"], spans);
    for k in ["agent", "gate", "llm", "tool", "workflow"] {
        assert!(
            p["run"]["kinds"].as_array().unwrap().iter().any(|x| x == k),
            "{k} spans: {v:#}"
        );
    }
    assert!(
        p["run"]["tooltip"].as_str().unwrap().contains("tokens"),
        "{v:#}"
    );
    assert_eq!(p["run"]["pending"], 1);
    assert!(
        p["run"]["gates"].as_u64().unwrap() >= 2 && p["run"]["checkpoints"].as_u64().unwrap() >= 2
    );
    assert_eq!(p["sessions"]["rows"], 1, "{v:#}");
    assert!(
        p["session"]["bars"].as_u64().unwrap() > 0 && p["session"]["guard"].as_u64().unwrap() >= 1,
        "{v:#}"
    );
    assert_eq!(p["session"]["denials"], 1);
    // The cost total is `agentops stats --json`'s.
    assert!(
        (p["cost"]["total"].as_f64().unwrap() - total).abs() < 1e-9,
        "{v:#} vs {total}"
    );
    assert!(p["cost"]["charts"].as_u64().unwrap() >= 5 && p["cost"]["bars"].as_u64().unwrap() > 0);
    assert_eq!(
        p["cost"]["tables"],
        serde_json::json!(["model", "agent", "workflow", "day"])
    );
    // Knowledge: the same ranking as `agentops search`.
    assert_eq!(p["knowledge"]["ids"], serde_json::json!(hits), "{v:#}");
    assert!(p["entry"]["commits"].as_u64().unwrap() >= 1, "{v:#}");
    assert!(p["alerts"]["rules"].as_u64().unwrap() >= 1, "{v:#}");
    // Live: the hook's event shows within a second, without a reload.
    let live = &v["live"];
    assert_ne!(live["before"], live["after"], "{v:#}");
    assert!(
        live["ms"].as_u64().unwrap() <= 1000,
        "live update in {} ms",
        live["ms"]
    );
    assert_eq!(live["reloaded"], false);
    // Approve: the run resumed and completed; its trace grew.
    assert_eq!(v["approve"]["button"], true, "{v:#}");
    assert!(
        v["approve"]["note"].as_str().unwrap().contains("approved"),
        "{v:#}"
    );
    assert_eq!(v["approve"]["status"], "completed", "{v:#}");
    assert!(v["approve"]["bars_after"].as_u64().unwrap() > spans as u64);
    assert_eq!(v["screenshots"].as_array().unwrap().len(), 9, "{v:#}");
    drop(server);
}
