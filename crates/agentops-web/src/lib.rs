//! `agentops ui`: a local dashboard over the journal and the memory — runs
//! with their trace waterfalls, harness sessions, cost and usage, the
//! knowledge browser and alerts — served by the binary itself, its assets
//! embedded (no CDN, works offline).
//!
//! Pages are rendered on the server from the same views the CLI prints
//! (`agentops-api`, `agentops-telemetry`, `agentops-runner`); a little
//! JavaScript keeps a page live by asking for the journal's position and
//! fetching the page again when it moved. Every request needs the token;
//! `Host` is checked against DNS rebinding; a POST needs a same-origin
//! `Origin` and the CSRF token of the page it came from.

mod actions;
mod data;
mod html;
mod pages;
mod serve;
mod state;

use std::net::SocketAddr;

pub use serve::{Request, Response, UiOptions, handle};
pub use state::State;

/// What the embedded assets (stylesheet, script, icon) add to the binary.
pub const EMBEDDED_BYTES: usize = html::CSS.len() + html::JS.len() + html::ICON.len();

/// A fresh random token (256 bits, hex).
pub fn new_token() -> Result<String, String> {
    agentops_api::guard::new_token("the dashboard's token")
}

/// Serves the dashboard until the process ends; `ready` is told the bound
/// address once the listener is up.
pub fn serve(
    project: agentops_api::Project,
    opts: UiOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the dashboard's runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| format!("{}: cannot listen: {e}", opts.addr))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("{}: {e}", opts.addr))?;
        let csrf = new_token()?;
        let state = std::sync::Arc::new(State::new(project, opts.clone(), addr, csrf));
        // The first page should not pay for folding the journal.
        let warm = state.clone();
        tokio::task::spawn_blocking(move || warm.warm());
        ready(addr);
        serve::accept(listener, state).await
    })
}
