//! `agentops ui`: the local dashboard.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Code, Failure, Flags};
use crate::output::Output;
use crate::shared::project;

pub fn serve(
    port: u16,
    open: bool,
    bind: Option<&str>,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let p = project(flags)?;
    // Fails early, with the command's message, outside a set-up repository.
    p.journal_read()?;
    let ip = match bind {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(b) => {
            let b = if b == "localhost" { "127.0.0.1" } else { b };
            b.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| {
                    Failure::usage(format!(
                        "--bind {b}: not an IP address (0.0.0.0, 192.168.1.5, ::)"
                    ))
                })?
        }
    };
    let public = !ip.is_loopback();
    if public {
        out.warn(&format!(
            "serving the dashboard on {ip}, beyond loopback: anyone who can reach it and has the token can see this repository's runs and memory and act on its runs"
        ));
    }
    let from_env = std::env::var("AGENTOPS_UI_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let token = match &from_env {
        Some(t) => t.clone(),
        None => agentops_web::new_token().map_err(Failure::failed)?,
    };
    let opts = agentops_web::UiOptions {
        addr: SocketAddr::new(ip, port),
        token: token.clone(),
        public,
        exe: std::env::current_exe().ok(),
    };
    let json = out.json;
    agentops_web::serve(p, opts, move |bound| {
        let host = if bound.ip().is_unspecified() || !public {
            format!("127.0.0.1:{}", bound.port())
        } else {
            bound.to_string()
        };
        let url = format!("http://{host}/?token={token}");
        let line = if json {
            serde_json::json!({"url": url, "token": token, "addr": bound.to_string()}).to_string()
        } else {
            format!("agentops ui: {url}")
        };
        crate::output::write_out(&format!("{line}\n"));
        if open {
            open_browser(&url);
        }
    })
    .map_err(Failure::failed)?;
    Ok(Code::Ok)
}

/// `$BROWSER URL`, else the desktop's opener; a failure is a line on
/// stderr (the URL is printed anyway).
fn open_browser(url: &str) {
    let candidates: Vec<String> = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .into_iter()
        .chain(["xdg-open".to_owned(), "open".to_owned()])
        .collect();
    for c in candidates {
        if std::process::Command::new(&c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
    crate::output::write_err(
        "agentops ui: no browser could be started (set $BROWSER); open the URL above\n",
    );
}
