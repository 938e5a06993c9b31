//! `agentops mcp`: the MCP server over stdio or Streamable HTTP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Code, Failure, Flags};
use crate::output::Output;
use crate::shared::project;

/// `--http`: `HOST:PORT`, `[V6]:PORT` or a bare port (on 127.0.0.1).
fn address(s: &str) -> Result<SocketAddr, Failure> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let s2 = s.replace("localhost:", "127.0.0.1:");
    s2.parse::<SocketAddr>().map_err(|_| {
        Failure::usage(format!(
            "--http {s}: not an address (127.0.0.1:8765, [::1]:8765, or a port)"
        ))
    })
}

pub fn serve(http: Option<&str>, bind: bool, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let p = project(flags)?;
    // Fails early, with the command's message, outside a set-up repository.
    p.knowledge()?;
    let Some(http) = http else {
        agentops_mcp::serve_stdio(p).map_err(Failure::failed)?;
        return Ok(Code::Ok);
    };
    let addr = address(http)?;
    if !addr.ip().is_loopback() && !bind {
        return Err(Failure::usage(format!(
            "--http {http}: not a loopback address; pass --bind to serve beyond this machine (the token is then the only guard)"
        )));
    }
    if bind && !addr.ip().is_loopback() {
        out.warn(&format!(
            "serving MCP on {addr}, beyond loopback: anyone who can reach it and has the token can read and write this repository's memory"
        ));
    }
    let from_env = std::env::var("AGENTOPS_MCP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let token = match &from_env {
        Some(t) => t.clone(),
        None => agentops_mcp::new_token().map_err(Failure::failed)?,
    };
    let from_env = from_env.is_some();
    let opts = agentops_mcp::HttpOptions {
        addr,
        token: token.clone(),
        public: bind,
    };
    let json = out.json;
    agentops_mcp::serve_http(p, opts, move |bound| {
        let url = format!("http://{bound}{}", agentops_mcp::PATH);
        // On stderr: stdout stays free (and the token is not in a pipe's log
        // by accident). With --json one line a program can read.
        let line = if json {
            serde_json::json!({"url": url, "token": if from_env { None } else { Some(&token) }})
                .to_string()
        } else if from_env {
            format!("agentops mcp: serving {url} (token from AGENTOPS_MCP_TOKEN)")
        } else {
            format!("agentops mcp: serving {url}\nagentops mcp: token {token}")
        };
        crate::output::write_err(&format!("{line}\n"));
    })
    .map_err(Failure::failed)?;
    Ok(Code::Ok)
}
