//! `agentops mcp`: the same powers as the commands, as MCP tools, resources
//! and prompts, for any MCP-capable harness. Built on the official Rust SDK
//! (`rmcp`), which negotiates the protocol revision (2024-11-05 through
//! 2025-11-25 with `initialize`, and 2026-07-28 per request).
//!
//! Transports: stdio (the default; a harness starts the server per
//! session) and Streamable HTTP (`--http`), which requires a bearer token
//! and checks `Host` and `Origin` against DNS rebinding.
//!
//! Every tool calls the same library function as its command (through
//! `agentops-api`), is journaled as a `tool.call` span of the calling
//! session, and a fetched entry counts as used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentops_api::Project;
use rmcp::ServiceExt;

mod args;
mod content;
mod http;
mod server;
mod state;
mod tools;

pub use http::{HttpOptions, PATH, new_token};
pub use server::Handler;
pub use state::State;

/// How often the server looks for memory writes by other processes (hooks,
/// commands, `git pull`) to tell its clients.
const WATCH: Duration = Duration::from_secs(1);

/// Calls tool `name` in-process, as a client's `tools/call` would, without
/// the transport or the journal span (for benchmarks: the tool's own cost).
pub fn call_tool(
    state: &State,
    name: &str,
    arguments: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let session = agentops_knowledge::Provenance {
        run: None,
        session: Some("mcp-bench".into()),
        agent: Some("mcp".into()),
    };
    tools::call(state, &session, name, arguments.as_object().cloned()).map_err(|e| e.message)
}

/// The tool list as `tools/list` gives it (for docs and the schema snapshot).
pub fn tool_list() -> Vec<serde_json::Value> {
    tools::list()
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))
}

fn watch(state: &Arc<State>) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            server::notify(&state).await;
        }
    });
}

/// Serves one client on stdin/stdout until it closes stdin.
pub fn serve_stdio(project: Project) -> Result<(), String> {
    let rt = runtime()?;
    rt.block_on(async move {
        let state = Arc::new(State::new(project));
        let running = Handler::new(state.clone())
            .serve(rmcp::transport::stdio_pipes())
            .await
            .map_err(|e| format!("MCP session over stdio: {e}"))?;
        watch(&state);
        // Warm the index while the client sends its first requests.
        let warm = state.clone();
        tokio::task::spawn_blocking(move || {
            let _ = warm.catch_up();
        });
        let r = running.waiting().await;
        // What the last calls recorded reaches the journal before exit.
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || st.flush(Duration::from_secs(5))).await;
        r.map_err(|e| format!("MCP session over stdio: {e}"))?;
        Ok::<(), String>(())
    })?;
    // Blocking tasks (a tool call the client gave up on) finish on their own;
    // a memory write is atomic either way.
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// Serves Streamable HTTP until the process is stopped; `ready` gets the
/// bound address (port 0 picks a free one).
pub fn serve_http(
    project: Project,
    opts: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let rt = runtime()?;
    rt.block_on(async move {
        let state = Arc::new(State::new(project));
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| format!("--http {}: cannot listen: {e}", opts.addr))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("--http {}: {e}", opts.addr))?;
        watch(&state);
        let warm = state.clone();
        tokio::task::spawn_blocking(move || {
            let _ = warm.catch_up();
        });
        ready(addr);
        http::serve(listener, addr, state, opts).await
    })
}
