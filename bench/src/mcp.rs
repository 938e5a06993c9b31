//! `agentops mcp` (issue 19): a warm server's `search` and `get` round trips
//! over stdio at 10,000 entries beside the same query as a whole `agentops
//! search` process; start to a served `initialize`; 8 HTTP clients at once.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::corpus::Layout;
use crate::stats::{Samples, ms};

/// A client on a server's stdio.
struct Stdio2 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Stdio2 {
    fn start(bin: &Path, repo: &Path) -> Self {
        let mut child = Command::new(bin)
            .arg("mcp")
            .current_dir(repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("agentops mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
            next: 1,
        }
    }

    /// Sends a request; its answer (notifications on the way are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
        self.stdin.flush().expect("flush");
        loop {
            let mut l = String::new();
            assert!(
                self.stdout.read_line(&mut l).expect("read") > 0,
                "server closed"
            );
            let v: Value = serde_json::from_str(&l).expect("json");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{v}");
                return v;
            }
        }
    }

    fn init(&mut self) {
        self.call(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        self.stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .expect("write");
    }

    fn tool(&mut self, name: &str, args: Value) -> Value {
        let v = self.call("tools/call", json!({"name": name, "arguments": args}));
        assert_ne!(v["result"]["isError"], json!(true), "{v}");
        v
    }
}

impl Drop for Stdio2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start to the `initialize` answer, `n` times.
fn start_to_initialize(bin: &Path, repo: &Path, n: usize) -> Samples {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = Stdio2::start(bin, repo);
        s.call(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        v.push(t.elapsed());
    }
    Samples::new(v)
}

/// One HTTP client's session: initialize, then `calls` searches.
fn http_client(url: &str, token: &str, queries: &[String], calls: usize) -> Result<usize, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post =
        |body: &Value, session: Option<&str>| -> Result<(u16, Option<String>, String), String> {
            let mut r = agent
                .post(url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Accept", "application/json, text/event-stream")
                .header("Content-Type", "application/json");
            if let Some(s) = session {
                r = r
                    .header("Mcp-Session-Id", s)
                    .header("Mcp-Protocol-Version", "2025-11-25");
            }
            let mut resp = r.send(body.to_string()).map_err(|e| e.to_string())?;
            let sid = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| e.to_string())?;
            Ok((status, sid, text))
        };
    let (st, sid, _) = post(
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
        None,
    )?;
    let sid = sid.ok_or(format!("initialize: status {st}, no session"))?;
    post(
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&sid),
    )?;
    let mut ok = 0;
    for i in 0..calls {
        let q = &queries[i % queries.len()];
        let (st, _, text) = post(
            &json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": q}}}),
            Some(&sid),
        )?;
        if st != 200 || !text.contains("\"hits\"") || text.contains("\"isError\":true") {
            return Err(format!(
                "call {i}: status {st}: {}",
                text.chars().take(200).collect::<String>()
            ));
        }
        ok += 1;
    }
    Ok(ok)
}

pub fn run(quick: bool) {
    let n_entries = if quick { 2_000 } else { 10_000 };
    let rounds = if quick { 100 } else { 400 };
    let bin = crate::agentops_bin();
    println!("## mcp ({})", if quick { "quick" } else { "full" });
    println!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    crate::corpus::knowledge_repo(&repo, n_entries, &bin, Layout::Monthly);
    crate::corpus::rebuild_index(&bin, &repo);
    let queries = crate::context::queries(50);

    println!(
        "| measurement | agentops mcp (warm server) | baseline: a whole `agentops search` process | target |"
    );
    println!("|---|---|---|---|");
    // Warm: one server, the index held open.
    let mut s = Stdio2::start(&bin, &repo);
    s.init();
    for q in queries.iter().take(10) {
        s.tool("search", json!({"query": q}));
    }
    let mut search = Vec::with_capacity(rounds);
    let mut ids = Vec::new();
    for i in 0..rounds {
        let q = &queries[i % queries.len()];
        let t = Instant::now();
        let v = s.tool("search", json!({"query": q}));
        search.push(t.elapsed());
        if let Some(id) = v["result"]["structuredContent"]["hits"][0]["id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    let search = Samples::new(search);
    let mut get = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let id = &ids[i % ids.len()];
        let t = Instant::now();
        s.tool("get", json!({"id": id}));
        get.push(t.elapsed());
    }
    let get = Samples::new(get);
    // The baseline: the same queries as whole processes.
    let bin_s = bin.display().to_string();
    let mut whole = Vec::new();
    for i in 0..(rounds / 4).max(20) {
        let q = &queries[i % queries.len()];
        let t = Instant::now();
        let st = Command::new(&bin_s)
            .args(["search", q, "--json"])
            .current_dir(&repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("search");
        assert!(st.success());
        whole.push(t.elapsed());
    }
    let whole = Samples::new(whole);
    println!(
        "| `search` tool round trip, stdio, {n_entries} entries (median / p99) | {} / {} | {} / {} | ≤ 2 ms |",
        ms(search.median()),
        ms(search.pct(0.99)),
        ms(whole.median()),
        ms(whole.pct(0.99))
    );
    println!(
        "| `get` tool round trip, stdio (median / p99) | {} / {} | – | ≤ 1 ms |",
        ms(get.median()),
        ms(get.pct(0.99))
    );
    drop(s);
    // The same tools in-process (no transport, no span): what the tool costs.
    let state =
        agentops_mcp::State::new(agentops_api::Project::open(&repo, Vec::new()).expect("project"));
    state.catch_up().expect("index");
    let mut catch_up = Vec::new();
    let mut tool_search = Vec::new();
    let mut tool_get = Vec::new();
    for i in 0..rounds {
        let q = &queries[i % queries.len()];
        let t = Instant::now();
        state.catch_up().expect("catch up");
        catch_up.push(t.elapsed());
        let t = Instant::now();
        agentops_mcp::call_tool(&state, "search", json!({"query": q})).expect("search");
        tool_search.push(t.elapsed());
        let t = Instant::now();
        agentops_mcp::call_tool(&state, "get", json!({"id": ids[i % ids.len()]})).expect("get");
        tool_get.push(t.elapsed());
    }
    let (catch_up, tool_search, tool_get) = (
        Samples::new(catch_up),
        Samples::new(tool_search),
        Samples::new(tool_get),
    );
    println!(
        "| in-process: `search` tool / of it the index catch-up / `get` tool (medians) | {} / {} / {} | – | – |",
        ms(tool_search.median()),
        ms(catch_up.median()),
        ms(tool_get.median())
    );
    let init = start_to_initialize(&bin, &repo, if quick { 20 } else { 50 });
    println!(
        "| start to a served `initialize` (median / p99) | {} / {} | – | ≤ 20 ms |",
        ms(init.median()),
        ms(init.pct(0.99))
    );

    // 8 clients at once over Streamable HTTP.
    let token = "bench-token-0123456789";
    let mut child = Command::new(&bin)
        .args(["mcp", "--http", "0", "--json"])
        .current_dir(&repo)
        .env("AGENTOPS_MCP_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentops mcp --http");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("url line");
    let url = serde_json::from_str::<Value>(&line).expect("json")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let per_client = if quick { 100 } else { 500 };
    let t = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (url, q) = (url.clone(), queries.clone());
            std::thread::spawn(move || http_client(&url, token, &q, per_client))
        })
        .collect();
    let mut calls = 0;
    let mut errors = Vec::new();
    for h in handles {
        match h.join().expect("client") {
            Ok(n) => calls += n,
            Err(e) => errors.push(e),
        }
    }
    let took = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "| 8 HTTP clients at once, `search` ({} calls) | {:.0} calls/s, {} errors | – | report; no error |",
        calls,
        calls as f64 / took.as_secs_f64(),
        errors.len()
    );
    for e in errors.iter().take(3) {
        println!("\nerror: {e}");
    }
}
