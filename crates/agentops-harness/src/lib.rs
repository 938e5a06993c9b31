//! Harness integration: agentops inside Claude Code and Codex.
//!
//! - [`install`]: merge hook entries into the harness's settings and take
//!   exactly them out again;
//! - [`hook`]: `agentops hook claude|codex`, one event on stdin, an answer on
//!   stdout, never in the agent's way;
//! - [`handoff`]: what a session leaves for the next one;
//! - [`ingest`]: `claude -p --output-format stream-json`, `codex exec --json`
//!   and Claude Code transcripts into sessions and spans with tokens and cost;
//! - [`sessions`]: the harness sessions the journal knows;
//! - [`feedback`]: automatic feedback on the knowledge a session was given;
//! - [`harvest`]: provisional learnings proposed from what sessions did.

pub mod codex_trust;
mod commit_guard;
pub mod error;
pub mod feedback;
pub mod handoff;
pub mod harvest;
pub mod hook;
pub mod ingest;
pub mod install;
pub mod json;
pub mod mcp_install;
pub mod paths;
pub mod sessions;

pub use agentops_protocol::Harness;

/// Cuts every string in `v` longer than `max` bytes (on a character
/// boundary), saying how much was cut, so that one huge tool output never
/// bloats the journal.
pub fn cap_strings(v: &mut serde_json::Value, max: usize) {
    match v {
        serde_json::Value::String(s) if s.len() > max => {
            let mut cut = max;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = s.len() - cut;
            s.truncate(cut);
            s.push_str(&format!("…[{dropped} bytes cut]"));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| cap_strings(x, max)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| cap_strings(x, max)),
        _ => {}
    }
}

/// The first `max` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}
